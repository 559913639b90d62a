/*
 * test_auth.c - base64, PLAIN messages and the credential check
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"

static void test_b64(void **state)
{
	static const struct {
		const char *in;
		long n;
		const char *out;
	} cases[] = {
	    {"", 0, ""},
	    {"YQ==", 1, "a"},
	    {"YWI=", 2, "ab"},
	    {"YWJj", 3, "abc"},
	    {"AGFsaWNlAHB3", 9, "\0alice\0pw"},
	    {"YQ=", -1, NULL},
	    {"YQ", -1, NULL},
	    {"Y===", -1, NULL},
	    {"=YWJ", -1, NULL},
	    {"YW=j", -1, NULL},
	    {"YWJj YWJj", -1, NULL},
	    {"YW!j", -1, NULL},
	    {"YQ==YQ==", -1, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		long n = auth_b64_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		if (n != cases[i].n)
			fail_msg("'%s': got %ld, want %ld", cases[i].in, n, cases[i].n);
		if (n > 0 && memcmp(out, cases[i].out, (size_t)n))
			fail_msg("'%s': wrong bytes", cases[i].in);
	}
	char big[100], out[8];
	memset(big, 'A', sizeof(big));
	assert_int_equal(auth_b64_decode(big, sizeof(big), out, sizeof(out)), -1);
	char enc[16];
	assert_int_equal(auth_b64_encode("ab", 2, enc, sizeof(enc)), 4);
	assert_string_equal(enc, "YWI=");
}

static void test_plain_split(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
		int rc;
		const char *zid, *user, *pass;
	} cases[] = {
	    {"\0alice\0pw", 9, 0, "", "alice", "pw"},
	    {"alice\0alice\0pw", 14, 0, "alice", "alice", "pw"},
	    {"alice\0pw", 8, -1, NULL, NULL, NULL},
	    {"\0\0pw", 4, -1, NULL, NULL, NULL},
	    {"\0alice\0", 7, -1, NULL, NULL, NULL},
	    {"\0a\0b\0c", 6, -1, NULL, NULL, NULL},
	    {"", 0, -1, NULL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *z, *u, *p;
		size_t zl, ul, pl;
		int rc = auth_plain_split(cases[i].msg, cases[i].len, &z, &zl, &u, &ul, &p, &pl);
		if (rc != cases[i].rc)
			fail_msg("case %zu: got %d, want %d", i, rc, cases[i].rc);
		if (rc == 0 && (zl != strlen(cases[i].zid) || ul != strlen(cases[i].user) ||
		                pl != strlen(cases[i].pass) || memcmp(u, cases[i].user, ul) ||
		                memcmp(p, cases[i].pass, pl)))
			fail_msg("case %zu: wrong parts", i);
	}
}

static void test_check(void **state)
{
	struct auth_secret s = {.user = strdup("alice"),
	                        .password = strdup("s3cret"),
	                        .user_len = 5,
	                        .password_len = 6};
	static const struct {
		const char *u, *p;
		bool ok;
	} cases[] = {
	    {"alice", "s3cret", true},
	    {"alice", "s3cre", false},
	    {"alice", "s3cret!", false},
	    {"alicf", "s3cret", false},
	    {"", "", false},
	    {"alice", "", false},
	    {"ALICE", "s3cret", false},
	    {"alice", "S3cret", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (auth_check(&s, cases[i].u, strlen(cases[i].u), cases[i].p,
		               strlen(cases[i].p)) != cases[i].ok)
			fail_msg("%s/%s: got %d", cases[i].u, cases[i].p, !cases[i].ok);
	assert_false(auth_check(NULL, "alice", 5, "s3cret", 6));
	auth_secret_wipe(&s);
	assert_null(s.password);
}

static void test_brake(void **state)
{
	assert_int_equal(auth_brake_init(false), 0);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	auth_brake_wait(); /* no failure yet: no delay */
	auth_brake_failed();
	auth_brake_wait(); /* a recent failure: the delay */
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	if (s < 0.9 || s > 1.9)
		fail_msg("got %.2f s, want one delay of about 1 s", s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64),
	    cmocka_unit_test(test_plain_split),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_brake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
