/*
 * test_prefork.c - the shared session slots: claims within the
 *                  per-client limit, exact across real processes
 *
 * Real processes on the real MAP_SHARED table: several children claim
 * and free their slots for one client key as fast as they can, and a
 * second shared page counts how many of them hold a session at once;
 * it must never exceed the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prefork.h"

static const unsigned char client_a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
static const unsigned char client_b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2};

/* test_claims_count_by_key - the limit counts sessions of one key only;
 * a refused claim leaves the slot as it was; limit 0 refuses nothing */
static void test_claims_count_by_key(void **state)
{
	char err[256];
	unsigned n;
	assert_int_equal(prefork_open(6, err, sizeof(err)), 0);
	for (unsigned i = 0; i < 6; i++)
		prefork_set(i, PREFORK_SPARE);
	assert_int_equal(prefork_claim(0, client_a, 2, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(prefork_claim(1, client_a, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(prefork_claim(2, client_b, 2, &n), 0); /* another client */
	assert_int_equal(n, 0);
	assert_int_equal(prefork_claim(3, client_a, 2, &n), -1); /* the third of a */
	assert_int_equal(n, 2);
	assert_int_equal(prefork_state(3), PREFORK_SPARE); /* still waiting */
	assert_int_equal(prefork_state(1), PREFORK_SESSION);
	assert_int_equal(prefork_claim(4, client_a, 0, &n), 0); /* no limit */
	prefork_set(0, PREFORK_FREE); /* a session of a ended: room again */
	assert_int_equal(prefork_claim(5, client_a, 3, &n), 0);
	assert_int_equal(n, 2); /* 1 and 4 */
	prefork_close();
}

/* test_generation_and_stop - SIGHUP's new generation, SIGTERM's flag */
static void test_generation_and_stop(void **state)
{
	char err[256];
	assert_int_equal(prefork_open(1, err, sizeof(err)), 0);
	unsigned g = prefork_generation();
	prefork_retire();
	assert_int_not_equal(prefork_generation(), g);
	assert_false(prefork_stopping());
	prefork_stop();
	assert_true(prefork_stopping());
	prefork_close();
}

enum { WORKERS = 4, LIMIT = 1, ROUNDS = 200000 }; /* LIMIT 1: two cores suffice to race */

/* test_limit_exact_across_processes - WORKERS processes claim for the
 * same client at once; at no moment do more than LIMIT hold a session */
static void test_limit_exact_across_processes(void **state)
{
	char err[256];
	assert_int_equal(prefork_open(WORKERS, err, sizeof(err)), 0);
	struct watch {
		_Atomic int ready, inside, most;
	} *w = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(w != MAP_FAILED);
	pid_t pids[WORKERS];
	for (unsigned i = 0; i < WORKERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			unsigned n;
			atomic_fetch_add(&w->ready, 1); /* all start together */
			while (atomic_load(&w->ready) < WORKERS)
				;
			for (int r = 0; r < ROUNDS; r++) {
				prefork_set(i, PREFORK_SPARE);
				if (prefork_claim(i, client_a, LIMIT, &n) == 0) {
					int now = atomic_fetch_add(&w->inside, 1) + 1;
					int most = atomic_load(&w->most);
					while (now > most &&
					       !atomic_compare_exchange_weak(&w->most, &most, now))
						;
					atomic_fetch_sub(&w->inside, 1);
				}
				prefork_set(i, PREFORK_FREE);
			}
			_exit(0);
		}
	}
	for (unsigned i = 0; i < WORKERS; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	if (atomic_load(&w->most) > LIMIT)
		fail_msg("got %d sessions of one client at once, want at most %d",
		         atomic_load(&w->most), LIMIT);
	assert_true(atomic_load(&w->most) >= 1);
	munmap(w, sizeof(*w));
	prefork_close();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_claims_count_by_key),
	    cmocka_unit_test(test_generation_and_stop),
	    cmocka_unit_test(test_limit_exact_across_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
