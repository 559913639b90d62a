/*
 * test_deliver_maildir.c - the Maildir file name: unique parts, the
 * host's escapes, Dovecot's ",S=", and a buffer that is too small
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "deliver_maildir.h"

static void test_names(void **state)
{
	struct {
		const char *host;
		long usec;
		size_t size;
		const char *want;
	} cases[] = {
	    {"mx.example.org", 42, 1234, "1700000000.M000042P321Q7.mx.example.org,S=1234"},
	    {"[IPv6:2001:db8::1]", 999999, 0,
	     "1700000000.M999999P321Q7.[IPv6\\0722001\\072db8\\072\\0721],S=0"},
	    {"a/b,c\\d", 0, 5, "1700000000.M000000P321Q7.a\\057b\\054c\\134d,S=5"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		size_t n = deliver_maildir_name(buf, sizeof(buf), 1700000000LL, cases[i].usec, 321,
		                                7, cases[i].host, cases[i].size);
		if (n != strlen(cases[i].want) || strcmp(buf, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\" (%zu), want \"%s\"", i, buf, n,
			         cases[i].want);
	}
}

static void test_too_small(void **state)
{
	const char *want = "1700000000.M000001P2Q3.h,S=4";
	char buf[64];
	for (size_t cap = 0; cap <= strlen(want); cap++)
		if (deliver_maildir_name(buf, cap, 1700000000LL, 1, 2, 3, "h", 4) != 0)
			fail_msg("cap %zu: got a name, want 0", cap);
	assert_int_equal(deliver_maildir_name(buf, strlen(want) + 1, 1700000000LL, 1, 2, 3, "h", 4),
	                 strlen(want));
	assert_string_equal(buf, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_too_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
