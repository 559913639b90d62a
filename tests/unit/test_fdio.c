/*
 * test_fdio.c - fdio_write_all over a real pipe (all of it, and how much
 *               before an error) and fdio_block_put (flushed each time
 *               the block is full, in order, stopping at a failed flush)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdio.h"

/* A block that records what its flushes wrote, and fails the flush
 * numbered fail_at (0: never). */
struct rec {
	struct fdio_block b; /* first: the flush is handed the block */
	char got[64];
	size_t n;
	int flushes;
	int fail_at;
};

static int rec_flush(struct fdio_block *b)
{
	struct rec *r = (struct rec *)b;
	if (++r->flushes == r->fail_at)
		return -1;
	memcpy(r->got + r->n, b->buf, b->len);
	r->n += b->len;
	b->len = 0;
	return 0;
}

static void test_block_put(void **state)
{
	(void)state;
	static const struct {
		const char *pieces[4];
		size_t cap;
		int fail_at;
		int want_rc;
		const char *want_flushed, *want_left;
	} cases[] = {
	    {{"abcdefghij", NULL}, 4, 0, 0, "abcdefgh", "ij"},
	    {{"ab", "cd", "e", NULL}, 4, 0, 0, "abcd", "e"},
	    {{"abcd", NULL}, 4, 0, 0, "abcd", ""},
	    {{"", "abc", NULL}, 4, 0, 0, "", "abc"},
	    {{"abcdefghij", NULL}, 4, 2, -1, "abcd", "efgh"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char block[16];
		struct rec r = {.b = {.buf = block, .cap = cases[i].cap, .flush = rec_flush},
		                .fail_at = cases[i].fail_at};
		int rc = 0;
		for (int k = 0; rc == 0 && cases[i].pieces[k]; k++)
			rc = fdio_block_put(&r.b, cases[i].pieces[k], strlen(cases[i].pieces[k]));
		r.got[r.n] = '\0';
		if (rc != cases[i].want_rc || strcmp(r.got, cases[i].want_flushed) != 0 ||
		    r.b.len != strlen(cases[i].want_left) ||
		    memcmp(block, cases[i].want_left, r.b.len) != 0)
			fail_msg(
			    "case %zu: got rc %d, flushed '%s', %zu left; want rc %d, '%s', '%s' "
			    "left",
			    i, rc, r.got, r.b.len, cases[i].want_rc, cases[i].want_flushed,
			    cases[i].want_left);
	}
}

/* read_all_and_exit - a reader child: everything on fd until EOF, then
 * exit 0 when it was exactly want[0..n), else 1 */
__attribute__((noreturn)) static void read_all_and_exit(int fd, const char *want, size_t n)
{
	static char in[256 * 1024 + 1];
	size_t got = 0;
	if (n >= sizeof(in))
		_exit(1);
	ssize_t r;
	while (got < sizeof(in) && (r = read(fd, in + got, sizeof(in) - got)) > 0)
		got += (size_t)r;
	_exit(got == n && memcmp(in, want, n) == 0 ? 0 : 1);
}

/* More than a pipe holds in one write, read on the other side as it is
 * written; then a pipe with no reader: -1, EPIPE, nothing counted. */
static void test_write_all(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	static char big[256 * 1024];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the reader: exits 0 when it read exactly big */
		close(p[1]);
		read_all_and_exit(p[0], big, sizeof(big));
	}
	close(p[0]);
	size_t done = 0;
	int rc = fdio_write_all(p[1], big, sizeof(big), &done);
	close(p[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (rc != 0 || done != sizeof(big) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("got rc %d, done %zu, reader status %#x; want 0, %zu, exit 0", rc, done,
		         status, sizeof(big));
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	done = 99;
	rc = fdio_write_all(p[1], big, 10, &done);
	if (rc != -1 || errno != EPIPE || done != 0)
		fail_msg("no reader: got rc %d errno %d done %zu, want -1 EPIPE 0", rc, errno,
		         done);
	close(p[1]);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* A short write goes on where it stopped (never from the start): the reader
 * waits until the pipe is full, so the writer is inside its one big
 * write(), then interrupts it with SIGUSR1 (no SA_RESTART): write()
 * returns what it wrote so far, and fdio_write_all must go on from
 * there, never from the start again. */
static void test_write_all_after_a_short_write(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int cap = fcntl(p[1], F_GETPIPE_SZ);
	assert_true(cap > 0);
	static char big[256 * 1024];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('A' + (i / 7) % 26);
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* exit 0: exactly big; 2: the pipe never filled */
		close(p[1]);
		int queued = 0;
		for (int tries = 0; tries < 300000; tries++) { /* a hang guard */
			if (ioctl(p[0], FIONREAD, &queued) == 0 && queued >= cap)
				break;
			usleep(100);
		}
		if (queued < cap)
			_exit(2);
		kill(getppid(), SIGUSR1);
		read_all_and_exit(p[0], big, sizeof(big));
	}
	close(p[0]);
	size_t done = 0;
	int rc = fdio_write_all(p[1], big, sizeof(big), &done);
	close(p[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	sigaction(SIGUSR1, &old, NULL);
	if (rc != 0 || done != sizeof(big) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("got rc %d, done %zu, reader status %#x; want 0, %zu, exit 0", rc, done,
		         status, sizeof(big));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_block_put),
	    cmocka_unit_test(test_write_all),
	    cmocka_unit_test(test_write_all_after_a_short_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
