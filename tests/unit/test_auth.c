/*
 * test_auth.c - base64, PLAIN messages, the credential check and the brake
 *
 * Table-driven: every failure says what came back and what was wanted.
 * The brake tests run in child processes, each with its own brake, and
 * measure delays loosely (the delay is 1 s: >= 0.5 s is "delayed",
 * < 0.5 s is "not delayed"), as issue 3 asks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bounds.h"

#include "coverage.h" /* last: a child's _exit() writes its gcov counters */

/* Strings with NULs inside need their length: S("a\0b") */
#define S(lit) lit, sizeof(lit) - 1

/* test_b64_decode - valid input, bad characters, bad padding */
static void test_b64_decode(void **state)
{
	static const struct {
		const char *in;
		long n; /* -1: refused */
		const char *out;
	} cases[] = {
	    {"", 0, ""},
	    {"YQ==", 1, "a"},
	    {"YWI=", 2, "ab"},
	    {"YWJj", 3, "abc"},
	    {"YWJjZA==", 4, "abcd"},
	    {"AGFsaWNlAHB3", 9, "\0alice\0pw"},
	    {"+/+/", 3, "\xfb\xff\xbf"},
	    {"AAAA", 3, "\0\0\0"},
	    /* not a multiple of four, or padding missing */
	    {"YQ=", -1, NULL},
	    {"YQ", -1, NULL},
	    {"Y", -1, NULL},
	    {"YWJjZ", -1, NULL},
	    /* padding in the wrong place, too much of it, data after it */
	    {"Y===", -1, NULL},
	    {"====", -1, NULL},
	    {"=YWJ", -1, NULL},
	    {"YW=j", -1, NULL},
	    {"YQ=a", -1, NULL},
	    {"YQ==YQ==", -1, NULL},
	    {"YQ==YWJj", -1, NULL},
	    /* pad bits not zero: a second spelling of "a" and of "ab" */
	    {"YR==", -1, NULL},
	    {"YWJ=", -1, NULL},
	    /* characters outside the alphabet */
	    {"YWJj YWJj", -1, NULL},
	    {"YW!j", -1, NULL},
	    {"YW-j", -1, NULL}, /* base64url */
	    {"YW_j", -1, NULL},
	    {"YWJj\r\n", -1, NULL},
	    {"YW\x80j", -1, NULL},
	    {"YW.j", -1, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		long n = auth_b64_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		if (n != cases[i].n)
			fail_msg("decode '%s': got %ld, want %ld", cases[i].in, n, cases[i].n);
		if (n >= 0 && (memcmp(out, cases[i].out, (size_t)n) || out[n] != '\0'))
			fail_msg("decode '%s': wrong bytes", cases[i].in);
	}
	/* a NUL inside the input is not base64 either */
	long n = auth_b64_decode(S("YW\0j"), (char[8]){0}, 8);
	if (n != -1)
		fail_msg("decode with a NUL: got %ld, want -1", n);
}

/* test_b64_too_long - the output buffer bounds the input */
static void test_b64_too_long(void **state)
{
	static const struct {
		const char *in;
		size_t cap;
		long n;
	} cases[] = {
	    {"YWJj", 4, 3},      /* three bytes and the NUL fit */
	    {"YWJj", 3, -1},     /* no room for the NUL */
	    {"YWJjZA==", 7, 4},  /* room for six and the NUL: enough */
	    {"YWJjZA==", 6, -1}, /* the longest decoding would not fit */
	    {"", 1, 0},          {"", 0, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[16];
		long n = auth_b64_decode(cases[i].in, strlen(cases[i].in), out, cases[i].cap);
		if (n != cases[i].n)
			fail_msg("decode '%s' into %zu: got %ld, want %ld", cases[i].in,
			         cases[i].cap, n, cases[i].n);
	}
	/* an AUTH line of the largest size RFC 4954 allows, into a small buffer */
	char *big = malloc(BOUND_AUTH_LINE);
	assert_non_null(big);
	memset(big, 'A', BOUND_AUTH_LINE);
	char out[512];
	long n = auth_b64_decode(big, BOUND_AUTH_LINE, out, sizeof(out));
	free(big);
	if (n != -1)
		fail_msg("decode %d bytes into %zu: got %ld, want -1", BOUND_AUTH_LINE, sizeof(out),
		         n);
}

/* test_b64_encode - known answers, the buffer bound, and a round trip */
static void test_b64_encode(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} cases[] = {
	    {S(""), ""},
	    {S("a"), "YQ=="},
	    {S("ab"), "YWI="},
	    {S("abc"), "YWJj"},
	    {S("\0alice\0pw"), "AGFsaWNlAHB3"},
	    {S("Username:"), "VXNlcm5hbWU6"},
	    {S("Password:"), "UGFzc3dvcmQ6"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char enc[64];
		size_t n = auth_b64_encode(cases[i].in, cases[i].n, enc, sizeof(enc));
		if (n != strlen(cases[i].out) || strcmp(enc, cases[i].out))
			fail_msg("encode case %zu: got '%s' (%zu), want '%s'", i, enc, n,
			         cases[i].out);
	}
	char small[4];
	size_t n = auth_b64_encode("a", 1, small, sizeof(small));
	if (n != 0)
		fail_msg("encode into 4 bytes: got %zu, want 0 (no room for the NUL)", n);
	/* every byte value and every length mod 3 survive a round trip */
	unsigned char raw[256];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= sizeof(raw); len++) {
		char enc[400], dec[400];
		size_t e = auth_b64_encode(raw, len, enc, sizeof(enc));
		long d = auth_b64_decode(enc, e, dec, sizeof(dec));
		if (d != (long)len || memcmp(dec, raw, len))
			fail_msg("round trip of %zu bytes: got %ld bytes back", len, d);
	}
}

/* test_plain_split - RFC 4616 messages: authzid\0authcid\0passwd */
static void test_plain_split(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
		int rc;
		const char *zid, *user, *pass;
	} cases[] = {
	    /* authzid empty, equal to the user, or another (the engine decides) */
	    {S("\0alice\0pw"), 0, "", "alice", "pw"},
	    {S("alice\0alice\0pw"), 0, "alice", "alice", "pw"},
	    {S("bob\0alice\0pw"), 0, "bob", "alice", "pw"},
	    {S("\0alice\0p w \"x\""), 0, "", "alice", "p w \"x\""},
	    /* missing NULs */
	    {S("alicepw"), -1, NULL, NULL, NULL},
	    {S("alice\0pw"), -1, NULL, NULL, NULL},
	    {S("\0alicepw"), -1, NULL, NULL, NULL},
	    /* extra NULs */
	    {S("\0a\0b\0c"), -1, NULL, NULL, NULL},
	    {S("\0alice\0pw\0"), -1, NULL, NULL, NULL},
	    {S("\0\0alice\0pw"), -1, NULL, NULL, NULL},
	    {S("\0\0\0"), -1, NULL, NULL, NULL},
	    /* empty parts */
	    {S("\0\0pw"), -1, NULL, NULL, NULL},
	    {S("\0alice\0"), -1, NULL, NULL, NULL},
	    {S("\0\0"), -1, NULL, NULL, NULL},
	    {S(""), -1, NULL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *z, *u, *p;
		size_t zl, ul, pl;
		int rc = auth_plain_split(cases[i].msg, cases[i].len, &z, &zl, &u, &ul, &p, &pl);
		if (rc != cases[i].rc)
			fail_msg("split case %zu: got %d, want %d", i, rc, cases[i].rc);
		if (rc != 0)
			continue;
		if (zl != strlen(cases[i].zid) || memcmp(z, cases[i].zid, zl))
			fail_msg("split case %zu: got authzid '%.*s', want '%s'", i, (int)zl, z,
			         cases[i].zid);
		if (ul != strlen(cases[i].user) || memcmp(u, cases[i].user, ul))
			fail_msg("split case %zu: got user '%.*s', want '%s'", i, (int)ul, u,
			         cases[i].user);
		if (pl != strlen(cases[i].pass) || memcmp(p, cases[i].pass, pl))
			fail_msg("split case %zu: got password '%.*s', want '%s'", i, (int)pl, p,
			         cases[i].pass);
	}
}

/* test_check - both fields must match exactly, whatever the lengths */
static void test_check(void **state)
{
	struct auth_secret s = {.user = strdup("alice"),
	                        .password = strdup("s3cret"),
	                        .user_len = 5,
	                        .password_len = 6};
	static const struct {
		const char *u;
		size_t ulen;
		const char *p;
		size_t plen;
		bool ok;
	} cases[] = {
	    {S("alice"), S("s3cret"), true},
	    /* wrong user, wrong password */
	    {S("alicf"), S("s3cret"), false},
	    {S("ALICE"), S("s3cret"), false},
	    {S("bob"), S("s3cret"), false},
	    {S("alice"), S("S3cret"), false},
	    {S("alice"), S("s3creT"), false},
	    /* a prefix, or longer */
	    {S("alic"), S("s3cret"), false},
	    {S("alice"), S("s3cre"), false},
	    {S("alice"), S("s"), false},
	    {S("alicee"), S("s3cret"), false},
	    {S("alice"), S("s3cret!"), false},
	    {S("alice"), S("s3crets3cret"), false},
	    /* a NUL after the right bytes is still longer */
	    {S("alice"), S("s3cret\0"), false},
	    {S("alice\0"), S("s3cret"), false},
	    /* empty */
	    {S(""), S(""), false},
	    {S("alice"), S(""), false},
	    {S(""), S("s3cret"), false},
	    /* the fields swapped */
	    {S("s3cret"), S("alice"), false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = auth_check(&s, cases[i].u, cases[i].ulen, cases[i].p, cases[i].plen);
		if (got != cases[i].ok)
			fail_msg("check '%.*s'/'%.*s': got %d, want %d", (int)cases[i].ulen,
			         cases[i].u, (int)cases[i].plen, cases[i].p, got, cases[i].ok);
	}
	if (auth_check(NULL, "alice", 5, "s3cret", 6))
		fail_msg("check with no account: got true, want false");
	auth_secret_wipe(&s);
	if (s.password || s.user || s.password_len || s.user_len)
		fail_msg("wipe: got fields left set, want all cleared");
	if (auth_check(&s, "alice", 5, "s3cret", 6))
		fail_msg("check after wipe: got true, want false");
}

/* cycles - a fine-grained clock for the constant-time test: the cycle
 * counter where there is one (serialised, so the call is inside), else
 * the monotonic clock in nanoseconds */
static uint64_t cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned lo, hi;
	__asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* welch_t2 - Welch's t statistic, squared (no libm), of two samples,
 * each trimmed to its fastest 80 % so that interrupts and preemption
 * on a busy machine weigh nothing; *ma and *mb get the trimmed means */
static double welch_t2(uint64_t *a, uint64_t *b, size_t n, double *ma, double *mb)
{
	qsort(a, n, sizeof(*a), cmp_u64);
	qsort(b, n, sizeof(*b), cmp_u64);
	size_t k = n * 8 / 10;
	double sa = 0, sb = 0, va = 0, vb = 0;
	for (size_t i = 0; i < k; i++) {
		sa += (double)a[i];
		sb += (double)b[i];
	}
	*ma = sa / (double)k;
	*mb = sb / (double)k;
	for (size_t i = 0; i < k; i++) {
		va += ((double)a[i] - *ma) * ((double)a[i] - *ma);
		vb += ((double)b[i] - *mb) * ((double)b[i] - *mb);
	}
	va /= (double)(k - 1);
	vb /= (double)(k - 1);
	double se2 = va / (double)k + vb / (double)k;
	double d = *ma - *mb;
	return se2 > 0 ? d * d / se2 : (d == 0 ? 0 : 1e300);
}

/* test_check_constant_time - a guess wrong in its first byte and one
 * wrong in its last byte of a 64 KiB password take the same time. An
 * early-exit comparison (memcmp) answers the first in a few cycles and
 * the second after reading 64 KiB, so |t| is in the hundreds; the real
 * comparison gives |t| near 1. The runs alternate between the two
 * kinds in a pseudo-random order, so drift and load on a busy machine
 * fall on both alike; the threshold (|t| < 10) is far from both. */
static void test_check_constant_time(void **state)
{
	enum { LEN = 64 * 1024, RUNS = 3000, WARM = 200 };
	char *pw = malloc(LEN), *guess = malloc(LEN);
	uint64_t *first = calloc(RUNS, sizeof(uint64_t)), *last = calloc(RUNS, sizeof(uint64_t));
	assert_non_null(pw);
	assert_non_null(guess);
	assert_non_null(first);
	assert_non_null(last);
	for (size_t i = 0; i < LEN; i++)
		pw[i] = (char)('!' + (i * 7919) % 90);
	memcpy(guess, pw, LEN);
	struct auth_secret s = {
	    .user = strdup("alice"), .password = pw, .user_len = 5, .password_len = LEN};
	size_t nf = 0, nl = 0;
	unsigned rnd = 12345;
	volatile bool sink = false;
	for (size_t run = 0; nf < RUNS || nl < RUNS; run++) {
		rnd = rnd * 1103515245u + 12345u;
		bool at_first = nl >= RUNS || (nf < RUNS && (rnd >> 16) & 1);
		size_t pos = at_first ? 0 : LEN - 1;
		guess[pos] ^= 0x20;
		uint64_t t0 = cycles();
		sink = auth_check(&s, "alice", 5, guess, LEN);
		uint64_t t1 = cycles();
		guess[pos] ^= 0x20;
		if (sink)
			fail_msg("a guess with one byte wrong: got true, want false");
		if (run < WARM)
			continue;
		if (at_first)
			first[nf++] = t1 - t0;
		else
			last[nl++] = t1 - t0;
	}
	double mf, ml;
	double t2 = welch_t2(first, last, RUNS, &mf, &ml);
	if (!(t2 < 100.0))
		fail_msg("first-byte vs last-byte mismatch: got t^2=%.1f (means %.0f vs %.0f), "
		         "want |t| < 10: the comparison's time depends on where it differs",
		         t2, mf, ml);
	print_message("constant time: t^2=%.2f, means %.0f and %.0f\n", t2, mf, ml);
	s.password = NULL;
	free(s.user);
	free(pw);
	free(guess);
	free(first);
	free(last);
}

static long long chosen; /* the delay the last auth_brake_wait() chose, ms */

/* seconds - the time one auth_brake_wait() takes; the delay it chose
 * goes to chosen: "no delay" is asserted on that, never on the clock,
 * which a busy machine can stretch without limit */
static double seconds(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	chosen = auth_brake_wait();
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

/* in_child - run fn in a child process (a fresh brake for each test);
 * the child exits 0 or prints why it failed */
static void in_child(const char *what, int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s: the child failed (wait status %d)", what, st);
}

/* brake_local - without auth_brake_init the brake still works, for
 * this process alone */
static int brake_local(void)
{
	double t = seconds();
	if (chosen != 0) {
		printf("no failure yet: the brake chose %lld ms, want no delay\n", chosen);
		return 1;
	}
	auth_brake_failed();
	t = seconds();
	if (t < 0.5) {
		printf("after a failure: got %.2f s, want a delay of about 1 s\n", t);
		return 1;
	}
	return 0;
}

/* brake_shared - a failure in one session process delays an attempt
 * in another: the state is in the shared mapping */
static int brake_shared(void)
{
	char err[256];
	if (auth_brake_init(NULL, err, sizeof(err)) != 0)
		return 1;
	double t = seconds();
	if (chosen != 0) {
		printf("no check yet: the brake chose %lld ms, want no delay\n", chosen);
		return 1;
	}
	sleep(2);           /* the first check's slot is long past */
	pid_t pid = fork(); /* another session that fails */
	if (pid == 0) {
		auth_brake_failed();
		_exit(0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	t = seconds();
	if (t < 0.5) {
		printf("after another session's failure: got %.2f s, want a delay\n", t);
		return 1;
	}
	return 0;
}

/* parallel - n processes check at once, each after its own
 * auth_brake_init(state) when state is set (--inetd) or sharing the
 * parent's (the daemon); every gap between their slots is at least
 * half the 1 s delay (a lower bound: a busy machine only widens it) */
static int parallel(int n, const char *state)
{
	char err[256];
	if (!state && auth_brake_init(NULL, err, sizeof(err)) != 0)
		return 1;
	int fds[2];
	if (pipe(fds) < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			if (state && auth_brake_init(state, err, sizeof(err)) != 0) {
				printf("init %s: got \"%s\", want 0\n", state, err);
				_exit(1);
			}
			auth_brake_wait();
			struct timespec ts;
			clock_gettime(CLOCK_BOOTTIME, &ts);
			double at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
			_exit(write(fds[1], &at, sizeof(at)) == sizeof(at) ? 0 : 1);
		}
	}
	close(fds[1]);
	double at[16];
	int got = 0;
	while (got < n && read(fds[0], &at[got], sizeof(at[0])) == sizeof(at[0]))
		got++;
	for (int i = 0; i < n; i++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
	}
	if (got != n) {
		printf("got %d checks, want %d\n", got, n);
		return 1;
	}
	for (int i = 1; i < n; i++) /* they arrive in order */
		if (at[i] - at[i - 1] < 0.5) {
			printf("checks %d and %d: got %.2f s apart, want >= 0.5 s\n", i - 1, i,
			       at[i] - at[i - 1]);
			return 1;
		}
	return 0;
}

static char state_dir[64];

/* brake_parallel - sessions of one daemon take turns */
static int brake_parallel(void)
{
	return parallel(3, NULL);
}

/* brake_file - --inetd processes take turns through the state file */
static int brake_file(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/state", state_dir);
	return parallel(3, path);
}

/* brake_file_refused - a symbolic link, a file open to others, a
 * directory: 1 and a reason, and every check of this process waits */
static int brake_file_refused(void)
{
	char link[128], target[128], open_file[128], err[256];
	snprintf(link, sizeof(link), "%s/link", state_dir);
	/* the target in this test's own directory: a build that follows the
	 * link creates it there, never in a place other runs look at */
	snprintf(target, sizeof(target), "%s/link-target", state_dir);
	snprintf(open_file, sizeof(open_file), "%s/open", state_dir);
	if (symlink(target, link) < 0)
		return 1;
	int fd = open(open_file, O_CREAT | O_WRONLY, 0600);
	if (fd < 0 || fchmod(fd, 0666) < 0)
		return 1;
	close(fd);
	const struct {
		const char *path, *want;
	} cases[] = {
	    {link, "cannot open"},
	    {open_file, "readable or writable by others"},
	    {state_dir, "cannot open"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		int rc = auth_brake_init(cases[i].path, err, sizeof(err));
		if (rc != 1 || !strstr(err, cases[i].want)) {
			printf("%s: got %d \"%s\", want 1 and \"%s\"\n", cases[i].path, rc, err,
			       cases[i].want);
			return 1;
		}
	}
	if (access(target, F_OK) == 0) {
		printf("the link was followed\n");
		return 1;
	}
	double t = seconds();
	if (t < 0.5) {
		printf("no shared state: got %.2f s, want a delay of each check\n", t);
		return 1;
	}
	return 0;
}

static void test_brake_local(void **state)
{
	in_child("process-local brake", brake_local);
}

static void test_brake_shared(void **state)
{
	in_child("shared brake", brake_shared);
}

static void test_brake_parallel(void **state)
{
	in_child("parallel sessions", brake_parallel);
}

static void test_brake_file(void **state)
{
	in_child("--inetd processes", brake_file);
}

static void test_brake_file_refused(void **state)
{
	in_child("a state file that is refused", brake_file_refused);
}

static int make_state_dir(void **state)
{
	snprintf(state_dir, sizeof(state_dir), "/tmp/test_auth.XXXXXX");
	return mkdtemp(state_dir) ? 0 : -1;
}

static int remove_state_dir(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_decode),
	    cmocka_unit_test(test_b64_too_long),
	    cmocka_unit_test(test_b64_encode),
	    cmocka_unit_test(test_plain_split),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_brake_local),
	    cmocka_unit_test(test_brake_shared),
	    cmocka_unit_test(test_brake_parallel),
	    cmocka_unit_test(test_brake_file),
	    cmocka_unit_test(test_brake_file_refused),
	    cmocka_unit_test(test_check_constant_time),
	};
	return cmocka_run_group_tests(tests, make_state_dir, remove_state_dir);
}
