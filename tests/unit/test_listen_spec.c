/*
 * test_listen_spec.c - --listen values: endpoints, options, refusals
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "listen_spec.h"

static void test_accepted(void **state)
{
	static const struct {
		const char *text;
		enum listen_kind kind;
		const char *host, *path;
		unsigned port;
		bool tls;
		int mode;
		const char *owner, *name;
	} cases[] = {
	    {"127.0.0.1:25", LISTEN_INET, "127.0.0.1", "", 25, false, -1, "", "127.0.0.1:25"},
	    {"[::1]:25", LISTEN_INET6, "::1", "", 25, false, -1, "", "[::1]:25"},
	    {"127.0.0.1:465,tls", LISTEN_INET, "127.0.0.1", "", 465, true, -1, "", "127.0.0.1:465"},
	    {"[::]:0", LISTEN_INET6, "::", "", 0, false, -1, "", "[::]:0"},
	    {"*:2525", LISTEN_ANY, "*", "", 2525, false, -1, "", "*:2525"},
	    {"*:65535,tls", LISTEN_ANY, "*", "", 65535, true, -1, "", "*:65535"},
	    {"0.0.0.0:0", LISTEN_INET, "0.0.0.0", "", 0, false, -1, "", "0.0.0.0:0"},
	    {"unix:/run/smtpipe.sock", LISTEN_UNIX, "", "/run/smtpipe.sock", 0, false, -1, "",
	     "unix:/run/smtpipe.sock"},
	    {"unix:rel.sock,mode=0660,owner=mail:mail", LISTEN_UNIX, "", "rel.sock", 0, false, 0660,
	     "mail:mail", "unix:rel.sock"},
	    {"unix:/s,mode=600,owner=nobody,tls", LISTEN_UNIX, "", "/s", 0, true, 0600, "nobody",
	     "unix:/s"},
	    {"unix:/s,mode=0", LISTEN_UNIX, "", "/s", 0, false, 0, "", "unix:/s"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct listen_spec ls;
		char err[256] = "", name[200];
		if (listen_spec_parse(cases[i].text, &ls, err, sizeof(err)) < 0)
			fail_msg("'%s': refused (%s), want accepted", cases[i].text, err);
		listen_spec_name(&ls, name, sizeof(name));
		if (ls.kind != cases[i].kind || strcmp(ls.host, cases[i].host) ||
		    strcmp(ls.path, cases[i].path) || ls.port != cases[i].port ||
		    ls.tls != cases[i].tls || ls.mode != cases[i].mode ||
		    strcmp(ls.owner, cases[i].owner) || strcmp(name, cases[i].name))
			fail_msg(
			    "'%s': got kind %d host '%s' path '%s' port %u tls %d mode %o owner "
			    "'%s' name '%s', want %d '%s' '%s' %u %d %o '%s' '%s'",
			    cases[i].text, ls.kind, ls.host, ls.path, ls.port, ls.tls, ls.mode,
			    ls.owner, name, cases[i].kind, cases[i].host, cases[i].path,
			    cases[i].port, cases[i].tls, cases[i].mode, cases[i].owner,
			    cases[i].name);
	}
}

static void test_refused(void **state)
{
	static const struct {
		const char *text, *want; /* a part of the message */
	} cases[] = {
	    {"127.0.0.1", "has no port"},
	    {"127.0.0.1:", "not a port number"},
	    {"127.0.0.1:65536", "not a port number"},
	    {"127.0.0.1:-1", "not a port number"},
	    {"127.0.0.1:2x", "not a port number"},
	    {"127.0.0.1:000025", "not a port number"},
	    {"::1:25", "in brackets"},
	    {"[::1]25", "not [IPv6]:PORT"},
	    {"[::1]", "not [IPv6]:PORT"},
	    {"[127.0.0.1]:25", "not an IPv6 address"},
	    {"localhost:25", "not an IPv4 address"},
	    {"1.2.3:25", "not an IPv4 address"},
	    {":25", "not an address"},
	    {"**:25", "not an IPv4 address"},
	    {"unix:", "needs a path"},
	    {"unix:/a,mode=0888", "not an octal mode"},
	    {"unix:/a,mode=01777", "not an octal mode"},
	    {"unix:/a,mode=", "unknown option"},
	    {"unix:/a,owner=", "unknown option"},
	    {"unix:/a,owner=:g", "not owner=USER[:GROUP]"},
	    {"unix:/a,owner=u:", "not owner=USER[:GROUP]"},
	    {"unix:/a,", "unknown option"},
	    {"unix:/a,TLS", "unknown option"},
	    {"127.0.0.1:25,mode=0600", "unix: sockets only"},
	    {"[::1]:25,owner=mail", "unix: sockets only"},
	    {"127.0.0.1:25,tls,starttls", "unknown option"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct listen_spec ls;
		char err[256] = "";
		if (listen_spec_parse(cases[i].text, &ls, err, sizeof(err)) == 0)
			fail_msg("'%s': accepted, want refused", cases[i].text);
		if (!strstr(err, cases[i].want) || strncmp(err, "--listen: ", 10))
			fail_msg("'%s': got message '%s', want '--listen: ...%s...'", cases[i].text,
			         err, cases[i].want);
	}
}

static void test_long_path(void **state)
{
	char text[300], err[256];
	struct listen_spec ls;
	size_t max = sizeof(ls.path) - 1; /* sun_path holds max bytes and the NUL */
	memcpy(text, "unix:", 5);
	memset(text + 5, 'a', max);
	text[5 + max] = '\0';
	assert_int_equal(listen_spec_parse(text, &ls, err, sizeof(err)), 0);
	assert_int_equal(strlen(ls.path), max);
	text[5 + max] = 'a';
	text[6 + max] = '\0';
	assert_int_equal(listen_spec_parse(text, &ls, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepted),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_long_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
