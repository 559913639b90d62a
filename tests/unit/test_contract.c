/*
 * test_contract.c - the delivery command contract of README.md, as a
 *                   table over every exit status and every signal
 *
 * README ("Delivery results"): exit 0 is 250; 68, 69, 71 and 75
 * (sysexits' NOHOST, UNAVAILABLE, OSERR, TEMPFAIL) are 451; any other
 * status is 554; killed by a signal or over --delivery-timeout is 451.
 * The rule is written here once, independently of deliver_pipe.c, and
 * deliver_map_status is checked against it for 0-255 and signals 1-64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "deliver_pipe.h"

/* readme_rule - the reply code README.md promises for an exit status */
static int readme_rule(int status)
{
	switch (status) {
	case 0:
		return 250;
	case 68: /* EX_NOHOST */
	case 69: /* EX_UNAVAILABLE */
	case 71: /* EX_OSERR */
	case 75: /* EX_TEMPFAIL */
		return 451;
	default:
		return 554;
	}
}

/* exited - a waitpid() status for a normal exit */
static int exited(int status)
{
	return (status & 0xff) << 8;
}

/* check_text - the text starts with the enhanced code of the reply's
 * class (RFC 3463: the first digit of both agree) */
static void check_text(const char *what, int code, const char *text)
{
	char want = (char)('0' + code / 100);
	if (text[0] != want || text[1] != '.')
		fail_msg("%s: got text '%s' for %d, want an enhanced code %c.x.x", what, text, code,
		         want);
}

static void test_every_exit_status(void **state)
{
	int wrong = 0;
	for (int st = 0; st <= 255; st++) {
		struct delivery_result r;
		memset(&r, 0xa5, sizeof(r));
		deliver_map_status(exited(st), false, &r);
		int want = readme_rule(st);
		char what[32];
		snprintf(what, sizeof(what), "exit %d", st);
		if (r.code != want) {
			print_error("exit %d: got %d (%s), want %d\n", st, r.code, r.text, want);
			wrong++;
			continue;
		}
		check_text(what, r.code, r.text);
		if (r.exit_status != st || r.signal != 0 || r.timed_out)
			fail_msg("exit %d: got exit_status=%d signal=%d timed_out=%d, want %d 0 0",
			         st, r.exit_status, r.signal, r.timed_out, st);
		/* a failure names the status, so the client can tell why */
		char num[16];
		snprintf(num, sizeof(num), "exit %d)", st);
		if (st != 0 && !strstr(r.text, num))
			fail_msg("exit %d: got text '%s', want it to hold '%s'", st, r.text, num);
	}
	if (wrong)
		fail_msg("%d of 256 exit statuses mapped against README's rule", wrong);
}

static void test_every_signal(void **state)
{
	for (int sig = 1; sig <= 64; sig++) {
		struct delivery_result r;
		memset(&r, 0xa5, sizeof(r));
		deliver_map_status(sig, false, &r); /* WIFSIGNALED: low 7 bits */
		if (!WIFSIGNALED(sig))
			continue;
		char what[32];
		snprintf(what, sizeof(what), "signal %d", sig);
		if (r.code != 451)
			fail_msg("signal %d: got %d (%s), want 451", sig, r.code, r.text);
		check_text(what, r.code, r.text);
		if (r.signal != sig || r.exit_status != -1 || r.timed_out)
			fail_msg(
			    "signal %d: got signal=%d exit_status=%d timed_out=%d, want %d -1 0",
			    sig, r.signal, r.exit_status, r.timed_out, sig);
		/* with a core dump, the same */
		deliver_map_status(sig | 0x80, false, &r);
		if (r.code != 451 || r.signal != sig)
			fail_msg("signal %d with core: got %d signal=%d, want 451 %d", sig, r.code,
			         r.signal, sig);
	}
}

static void test_timed_out_wins(void **state)
{
	/* over the time limit, whatever the status the kill produced */
	static const int statuses[] = {0, 1 << 8, 75 << 8, 9, 15};
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct delivery_result r;
		deliver_map_status(statuses[i], true, &r);
		if (r.code != 451 || !r.timed_out)
			fail_msg("timed out with status %#x: got %d timed_out=%d, want 451 1",
			         statuses[i], r.code, r.timed_out);
		if (strcmp(r.text, "4.4.7 Delivery command timed out") != 0)
			fail_msg("timed out: got '%s', want '4.4.7 Delivery command timed out'",
			         r.text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_exit_status),
	    cmocka_unit_test(test_every_signal),
	    cmocka_unit_test(test_timed_out_wins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
