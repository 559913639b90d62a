/*
 * test_smtp_cmd.c - verbs, paths, parameters and HELO names
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp_cmd.h"

static void test_verbs(void **state)
{
	static const struct {
		const char *line;
		enum smtp_verb want;
		const char *args;
		bool bad_sep;
	} cases[] = {
	    {"EHLO x", VERB_EHLO, "x", false},
	    {"ehlo x", VERB_EHLO, "x", false},
	    {"QUIT", VERB_QUIT, "", false},
	    {"MAIL FROM:<a>", VERB_MAIL, "FROM:<a>", false},
	    {"MAIL\tFROM:<a>", VERB_MAIL, NULL, true},
	    {"STARTTLS", VERB_STARTTLS, "", false},
	    {"STARTTLSX", VERB_UNKNOWN, NULL, false},
	    {"ETRN x", VERB_NOT_IMPLEMENTED, "x", false},
	    {"", VERB_UNKNOWN, NULL, false},
	    {"GET / HTTP/1.1", VERB_UNKNOWN, NULL, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args;
		size_t al;
		bool bad;
		enum smtp_verb v =
		    smtp_cmd_verb(cases[i].line, strlen(cases[i].line), &args, &al, &bad);
		if (v != cases[i].want || bad != cases[i].bad_sep)
			fail_msg("'%s': got verb %d bad %d, want %d %d", cases[i].line, v, bad,
			         cases[i].want, cases[i].bad_sep);
		if (cases[i].args &&
		    (al != strlen(cases[i].args) || memcmp(args, cases[i].args, al)))
			fail_msg("'%s': got args '%.*s', want '%s'", cases[i].line, (int)al, args,
			         cases[i].args);
	}
}

static void test_paths(void **state)
{
	static const struct {
		const char *args;
		bool utf8;
		enum path_error want;
		const char *addr;
		const char *rest;
	} cases[] = {
	    {"FROM:<a@b.example>", false, PATH_OK, "a@b.example", ""},
	    {"from:<a@b> SIZE=10", false, PATH_OK, "a@b", "SIZE=10"},
	    {"FROM: <a@b>", false, PATH_OK, "a@b", ""},
	    {"FROM:a@b BODY=8BITMIME", false, PATH_OK, "a@b", "BODY=8BITMIME"},
	    {"FROM:<>", false, PATH_OK, "", ""},
	    {"FROM:<@r1,@r2:a@b>", false, PATH_OK, "a@b", ""},
	    {"FROM:<\"a b>c\"@d>", false, PATH_OK, "\"a b>c\"@d", ""},
	    {"FROM:<\"$(touch x);|`y`\"@d>", false, PATH_OK, "\"$(touch x);|`y`\"@d", ""},
	    {"FROM:<a@[127.0.0.1]>", false, PATH_OK, "a@[127.0.0.1]", ""},
	    {"FROM:<a@[IPv6:::1]>", false, PATH_OK, "a@[IPv6:::1]", ""},
	    {"FROM:<postmaster>", false, PATH_OK, "postmaster", ""},
	    {"FROM:<-oQ/tmp@b>", false, PATH_REFUSED, NULL, NULL},
	    {"FROM:-f@b", false, PATH_REFUSED, NULL, NULL},
	    {"FROM:<a\tb@c>", false, PATH_REFUSED, NULL, NULL},
	    {"FROM:<a\x7f@c>", false, PATH_REFUSED, NULL, NULL},
	    {"FROM:<a b@c>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a;b@c>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@b", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@b>x", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<\"a@b>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<@a>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@.b>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:", false, PATH_SYNTAX, NULL, NULL},
	    {"TO:<a@b>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@@b>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@b@c>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<\"a@b\"@c>", false, PATH_OK, "\"a@b\"@c", ""},
	    {"FROM:<a@b..c>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@-b.c>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@b-.c>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@b-c.d_e.f9>", false, PATH_OK, "a@b-c.d_e.f9", ""},
	    {"FROM:<a@b!c>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@[300.1.1.1]>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@[1.2.3]>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@[]>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@[IPv6:1::2::3]>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@[ipv6:2001:db8::1]>", false, PATH_OK, "a@[ipv6:2001:db8::1]", ""},
	    {"FROM:<a@[x-tag:some-thing]>", false, PATH_OK, "a@[x-tag:some-thing]", ""},
	    {"FROM:<a@[tag:a[b]>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@[nocolon]>", false, PATH_SYNTAX, NULL, NULL},
	    {"FROM:<a@bb"
	     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.c>",
	     false, PATH_SYNTAX, NULL, NULL}, /* a 70-octet label */
	    {"FROM:<\xc3\xa9@b>", false, PATH_8BIT, NULL, NULL},
	    {"FROM:<a@\xc3\xa9t\xc3\xa9.fr>", true, PATH_OK, "a@\xc3\xa9t\xc3\xa9.fr", ""},
	    {"FROM:<\xc3\xa9@b>", true, PATH_OK, "\xc3\xa9@b", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char addr[BOUND_PATH + 1];
		const char *rest;
		size_t rl;
		enum path_error pe = smtp_cmd_path(cases[i].args, strlen(cases[i].args),
		                                   "FROM:", addr, &rest, &rl, cases[i].utf8);
		if (pe != cases[i].want)
			fail_msg("'%s': got %d, want %d", cases[i].args, pe, cases[i].want);
		if (pe == PATH_OK &&
		    (strcmp(addr, cases[i].addr) != 0 || rl != strlen(cases[i].rest) ||
		     memcmp(rest, cases[i].rest, rl)))
			fail_msg("'%s': got '%s' rest '%.*s', want '%s' '%s'", cases[i].args, addr,
			         (int)rl, rest, cases[i].addr, cases[i].rest);
	}
}

static void test_path_lengths(void **state)
{
	char args[600], addr[BOUND_PATH + 1];
	const char *rest;
	size_t rl;
	/* local part 64 ok, 65 too long */
	for (int lp = 64; lp <= 65; lp++) {
		int n = snprintf(args, sizeof(args), "FROM:<%.*s@example.org>", lp,
		                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		                 "aaaaaaaaaaaa");
		enum path_error pe =
		    smtp_cmd_path(args, (size_t)n, "FROM:", addr, &rest, &rl, false);
		if (pe != (lp == 64 ? PATH_OK : PATH_TOO_LONG))
			fail_msg("local part of %d: got %d", lp, pe);
	}
	/* a whole path of 254 octets inside <> is fine, 255 is not */
	for (int total = 254; total <= 255; total++) {
		char a[300];
		memset(a, 'd', sizeof(a));
		memcpy(a, "x@", 2);
		a[total] = '\0';
		for (int k = 60; k < total; k += 61)
			a[k] = '.'; /* keep labels short */
		int n = snprintf(args, sizeof(args), "FROM:<%s>", a);
		enum path_error pe =
		    smtp_cmd_path(args, (size_t)n, "FROM:", addr, &rest, &rl, false);
		if (pe != (total == 254 ? PATH_OK : PATH_TOO_LONG))
			fail_msg("path of %d: got %d", total, pe);
	}
}

static void test_mail_params(void **state)
{
	static const struct {
		const char *p;
		enum param_error want;
		unsigned long long size;
		bool utf8;
	} cases[] = {
	    {"", PARAM_OK, 0, false},
	    {"SIZE=1000", PARAM_OK, 1000, false},
	    {"size=1000 body=8bitmime", PARAM_OK, 1000, false},
	    {"BODY=7BIT SMTPUTF8", PARAM_OK, 0, true},
	    {"AUTH=<>", PARAM_OK, 0, false},
	    {"SIZE=99999999999999999999", PARAM_OK, ~0ULL, false},
	    {"SIZE=", PARAM_SYNTAX, 0, false},
	    {"SIZE=12a", PARAM_SYNTAX, 0, false},
	    {"SIZE=1 SIZE=2", PARAM_SYNTAX, 0, false},
	    {"BODY=BINARYMIME", PARAM_SYNTAX, 0, false},
	    {"SMTPUTF8=yes", PARAM_SYNTAX, 0, false},
	    {"RET=HDRS", PARAM_UNSUPPORTED, 0, false},
	    {"X-FOO", PARAM_UNSUPPORTED, 0, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mail_params mp;
		enum param_error pe = smtp_cmd_mail_params(cases[i].p, strlen(cases[i].p), &mp);
		if (pe != cases[i].want)
			fail_msg("'%s': got %d, want %d", cases[i].p, pe, cases[i].want);
		if (pe == PARAM_OK && (mp.size != cases[i].size || mp.smtputf8 != cases[i].utf8))
			fail_msg("'%s': got size %llu utf8 %d", cases[i].p, mp.size, mp.smtputf8);
	}
	assert_int_equal(smtp_cmd_rcpt_params("", 0), PARAM_OK);
	assert_int_equal(smtp_cmd_rcpt_params("NOTIFY=NEVER", 12), PARAM_UNSUPPORTED);
}

static void test_domains(void **state)
{
	assert_true(smtp_cmd_domain_ok("mail.example", 12));
	assert_true(smtp_cmd_domain_ok("[192.0.2.1]", 11));
	assert_false(smtp_cmd_domain_ok("", 0));
	assert_false(smtp_cmd_domain_ok("a b", 3));
	assert_false(smtp_cmd_domain_ok("a\nReceived: x", 13));
	assert_false(smtp_cmd_domain_ok("a(b)", 4));
	assert_false(smtp_cmd_domain_ok("\xc3\xa9", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verbs),        cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_path_lengths), cmocka_unit_test(test_mail_params),
	    cmocka_unit_test(test_domains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
