/*
 * test_auth_file.c - --auth-file parsing and checking, --auth-accept-any
 *
 * Hashes are made here with libxcrypt (crypt_gensalt_rn + crypt_rn), the
 * same library auth.c checks them with; the integration tests
 * (test_users.py) also use hashes from openssl passwd -6.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

/* hash - a crypt(3) hash of pw with a fresh salt of method prefix */
static const char *hash(const char *prefix, const char *pw, char *out, size_t cap)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)));
	const char *h = crypt_rn(pw, setting, &cd, sizeof(cd));
	assert_non_null(h);
	snprintf(out, cap, "%s", h);
	return out;
}

/* fill - tmpl with every '@' replaced by h */
static void fill(char *out, size_t cap, const char *tmpl, const char *h)
{
	size_t o = 0;
	for (const char *t = tmpl; *t && o + 1 < cap; t++) {
		size_t k = *t == '@' ? strlen(h) : 1;
		if (o + k >= cap)
			break;
		memcpy(out + o, *t == '@' ? h : t, k);
		o += k;
	}
	out[o] = '\0';
}

static bool check(const struct auth_secret *s, const char *user, const char *pass)
{
	return auth_check(s, user, strlen(user), pass, strlen(pass));
}

static void test_parse_errors(void **state)
{
	char y[CRYPT_OUTPUT_SIZE], err[256];
	hash("$y$", "pw", y, sizeof(y));
	struct {
		const char *tmpl; /* @: a good hash */
		const char *want;
	} cases[] = {
	    {"alice:$1$abcdefgh$0123456789abcdefghijkl\n", "line 1: a legacy hash"},
	    {"alice:ab01FAX.bQRSU\n", "line 1: a legacy hash"},
	    {"# c\n\nalice:@\nalice:@\n", "line 4: the user is given twice"},
	    {"alice\n", "line 1: not user:hash"},
	    {":@\n", "line 1: the user name is empty"},
	    {"alice:\n", "line 1: not a crypt(3) hash"},
	    {"alice:!\n", "line 1: not a crypt(3) hash"},
	    {"# only a comment\n\n", "no user:hash line"},
	    {"", "no user:hash line"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		fill(text, sizeof(text), cases[i].tmpl, y);
		err[0] = '\0';
		if (auth_file_parse(text, strlen(text), "F", err, sizeof(err)) != -1 ||
		    !strstr(err, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
	}
	char longname[256 + CRYPT_OUTPUT_SIZE + 8];
	memset(longname, 'u', 256);
	fill(longname + 256, sizeof(longname) - 256, ":@\n", y);
	assert_int_equal(auth_file_parse(longname, strlen(longname), "F", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "over 255 bytes"));
	assert_int_equal(auth_file_parse("a:b\0c\n", 6, "F", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
}

static void test_check_yescrypt_and_sha512(void **state)
{
	char y[CRYPT_OUTPUT_SIZE], s6[CRYPT_OUTPUT_SIZE], text[1024], err[256];
	hash("$y$", "alice pw", y, sizeof(y));
	hash("$6$", "bob pw", s6, sizeof(s6));
	snprintf(text, sizeof(text), "# users\r\nalice:%s\r\n\nbob:%s", y, s6); /* no final LF */
	assert_int_equal(auth_file_parse(text, strlen(text), "F", err, sizeof(err)), 0);
	struct auth_secret s = {.file = true};
	assert_true(check(&s, "alice", "alice pw"));
	assert_true(check(&s, "bob", "bob pw"));
	assert_false(check(&s, "alice", "bob pw"));
	assert_false(check(&s, "bob", "alice pw"));
	assert_false(check(&s, "carol", "alice pw"));
	assert_false(check(&s, "alic", "alice pw"));
	assert_false(check(&s, "alice ", "alice pw"));
	assert_false(check(&s, "alice", "alice p"));
	assert_false(check(&s, "alice", ""));
	/* a NUL cuts what crypt sees: never a match on the part before it */
	assert_false(auth_check(&s, "alice", 5, "alice pw\0junk", 13));
	/* the user reaches the command through the session, at spawn
	 * (cmd_template_env): the check itself writes no environment */
	unsetenv("SMTPIPE_AUTH_USER");
	assert_true(check(&s, "bob", "bob pw"));
	assert_null(getenv("SMTPIPE_AUTH_USER"));
	/* a failed parse keeps the table */
	assert_int_equal(auth_file_parse("x:$1$a$b\n", 9, "F", err, sizeof(err)), -1);
	assert_true(check(&s, "alice", "alice pw"));
	/* a new one replaces it */
	snprintf(text, sizeof(text), "carol:%s\n", s6);
	assert_int_equal(auth_file_parse(text, strlen(text), "F", err, sizeof(err)), 0);
	assert_true(check(&s, "carol", "bob pw"));
	assert_false(check(&s, "bob", "bob pw"));
}

static void test_auth_and_file_together(void **state)
{
	char y[CRYPT_OUTPUT_SIZE], text[512], err[256];
	hash("$y$", "file pw", y, sizeof(y));
	snprintf(text, sizeof(text), "alice:%s\n", y);
	assert_int_equal(auth_file_parse(text, strlen(text), "F", err, sizeof(err)), 0);
	char user[] = "dave", pw[] = "dave pw";
	struct auth_secret s = {
	    .user = user, .password = pw, .user_len = 4, .password_len = 7, .file = true};
	assert_true(check(&s, "dave", "dave pw"));
	assert_true(check(&s, "alice", "file pw"));
	assert_false(check(&s, "alice", "dave pw"));
	assert_false(check(&s, "dave", "file pw"));
	s.file = false; /* --auth alone: the file's users are not asked */
	assert_false(check(&s, "alice", "file pw"));
}

static void test_accept_any(void **state)
{
	struct auth_secret s = {.accept_any = true};
	unsetenv("SMTPIPE_AUTH_USER");
	assert_true(check(&s, "anyone", "anything"));
	assert_null(getenv("SMTPIPE_AUTH_USER")); /* given at spawn, not by auth_check */
	assert_false(check(&s, "anyone", ""));
	assert_false(auth_check(&s, "a\0b", 3, "x", 1)); /* no NUL in the environment */
	assert_false(auth_check(NULL, "a", 1, "x", 1));
	struct auth_secret off = {0};
	assert_false(check(&off, "anyone", "anything"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_check_yescrypt_and_sha512),
	    cmocka_unit_test(test_auth_and_file_together),
	    cmocka_unit_test(test_accept_any),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
