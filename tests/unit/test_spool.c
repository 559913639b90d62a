/*
 * test_spool.c - one whole message: in memory while small, then in an
 *                unlinked file in the spool directory; every reader from
 *                the first byte; errors sticky until the end of DATA
 *
 * Real files in a temporary directory, a real pipe, and a real write
 * error (RLIMIT_FSIZE gives EFBIG, as a quota would).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bounds.h"
#include "fdio.h"
#include "spool.h"

static char dir[] = "/tmp/test_spool.XXXXXX";

/* entries - files in the spool directory (a spilled spool leaves none) */
static int entries(void)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* pattern - n bytes that tell their offsets apart */
static char *pattern(size_t n)
{
	char *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (i * 7 + i / 251) % 26);
	return p;
}

/* write_in - the content written in pieces of k bytes */
static void write_in(struct spool *sp, const char *p, size_t n, size_t k)
{
	for (size_t off = 0; off < n; off += k)
		assert_int_equal(spool_write(sp, p + off, n - off < k ? n - off : k), 0);
}

/* read_fd - everything a descriptor gives */
static size_t read_fd(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t r;
	while (got < cap && (r = read(fd, buf + got, cap - got)) > 0)
		got += (size_t)r;
	return got;
}

/* check_content - spool_read_at and spool_input_fd both give want */
static void check_content(struct spool *sp, const char *want, size_t n)
{
	char *got = malloc(n + 1);
	assert_non_null(got);
	size_t off = 0;
	ssize_t r;
	while ((r = spool_read_at(sp, got + off, 4093, off)) > 0) /* odd reads */
		off += (size_t)r;
	if (r < 0 || off != n || memcmp(got, want, n) != 0)
		fail_msg("spool_read_at: got %zu bytes (r %zd), want the %zu written", off, r, n);
	for (int pass = 0; pass < 2; pass++) { /* each reader from the first byte */
		int fd = spool_input_fd(sp);
		assert_true(fd >= 0);
		size_t k = read_fd(fd, got, n + 1);
		if (k != n || memcmp(got, want, n) != 0)
			fail_msg("spool_input_fd pass %d: got %zu bytes, want the %zu written",
			         pass, k, n);
		assert_int_equal(spool_unread(sp, fd), 0);
		close(fd);
	}
	free(got);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

/* Small content stays in memory; up to the memory bound no file is made. */
static void test_memory(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 1000, BOUND_SPOOL_MEMORY};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct spool sp;
		char *p = pattern(sizes[i] + 1);
		spool_init(&sp, dir);
		write_in(&sp, p, sizes[i], 333);
		assert_int_equal(spool_finish(&sp), 0);
		if (sp.fd != -1)
			fail_msg("%zu bytes: got a spill file, want memory", sizes[i]);
		assert_int_equal(sp.size, sizes[i]);
		check_content(&sp, p, sizes[i]);
		spool_free(&sp);
		free(p);
	}
}

/* One byte past the memory bound spills to a file nobody else can
 * open (unlinked); reset drops it and the next message starts small. */
static void test_file(void **state)
{
	(void)state;
	static const size_t sizes[] = {BOUND_SPOOL_MEMORY + 1, 3 * 1024 * 1024 + 17};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct spool sp;
		char *p = pattern(sizes[i]);
		spool_init(&sp, dir);
		write_in(&sp, p, sizes[i], 65521);
		assert_int_equal(spool_finish(&sp), 0);
		if (sp.fd < 0)
			fail_msg("%zu bytes: got memory, want a spill file", sizes[i]);
		assert_int_equal(entries(), 0);
		check_content(&sp, p, sizes[i]);
		/* a reader that stops early is told how much it left */
		int fd = spool_input_fd(&sp);
		char buf[100];
		assert_int_equal(read(fd, buf, sizeof(buf)), sizeof(buf));
		assert_int_equal(spool_unread(&sp, fd), sizes[i] - sizeof(buf));
		close(fd);
		spool_reset(&sp);
		assert_int_equal(sp.fd, -1);
		assert_int_equal(spool_write(&sp, "next\n", 5), 0);
		check_content(&sp, "next\n", 5);
		spool_free(&sp);
		free(p);
	}
}

/* A small message's pipe: what the reader leaves is counted too. */
static void test_pipe_unread(void **state)
{
	(void)state;
	struct spool sp;
	spool_init(&sp, dir);
	assert_int_equal(spool_write(&sp, "0123456789", 10), 0);
	assert_int_equal(spool_finish(&sp), 0);
	int fd = spool_input_fd(&sp);
	char buf[4];
	assert_int_equal(read(fd, buf, 4), 4);
	assert_int_equal(spool_unread(&sp, fd), 6);
	close(fd);
	spool_free(&sp);
}

/* A spool directory that is not there: spool_check says which and why
 * at start-up; a spool past memory fails, and the error is sticky. */
static void test_bad_dir(void **state)
{
	(void)state;
	char err[256];
	const char *missing = "/nonexistent/smtpipe-spool";
	assert_int_equal(spool_check(missing, err, sizeof(err)), -1);
	if (!strstr(err, missing) || !strstr(err, "--spool-dir") || !strstr(err, strerror(ENOENT)))
		fail_msg("got '%s', want the directory, --spool-dir and the reason", err);
	assert_int_equal(spool_check(dir, err, sizeof(err)), 0);
	assert_int_equal(entries(), 0);

	struct spool sp;
	char *p = pattern(BOUND_SPOOL_MEMORY + 1);
	spool_init(&sp, missing);
	assert_int_equal(spool_write(&sp, p, BOUND_SPOOL_MEMORY), 0);
	errno = 0;
	assert_int_equal(spool_write(&sp, p, 1), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(spool_write(&sp, "x", 1), -1); /* sticky */
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_finish(&sp), -1);
	assert_int_equal(errno, ENOENT);
	spool_reset(&sp); /* the next message starts clean */
	assert_int_equal(spool_write(&sp, "ok", 2), 0);
	assert_int_equal(spool_finish(&sp), 0);
	spool_free(&sp);
	free(p);
}

/* A write error after the spill (a file size limit, as a quota): the
 * first error is kept and spool_finish reports it. */
static void test_write_error(void **state)
{
	(void)state;
	struct rlimit old, small = {.rlim_cur = 300 * 1024};
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	size_t n = 2 * 1024 * 1024;
	char *p = pattern(n);
	struct spool sp;
	spool_init(&sp, dir);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	int rc = 0;
	for (size_t off = 0; off < n && rc == 0; off += 4096)
		rc = spool_write(&sp, p + off, 4096);
	int e = errno;
	int fin = spool_finish(&sp);
	int fe = errno;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	if (rc != -1 || e != EFBIG || fin != -1 || fe != EFBIG)
		fail_msg("got write %d (%s), finish %d (%s), want -1 EFBIG for both", rc,
		         strerror(e), fin, strerror(fe));
	spool_free(&sp);
	free(p);
}

/* fdio_write_all: all of it to a file; to a full non-blocking pipe,
 * EAGAIN and how much went in before it. */
static void test_write_all(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof(path), "%s/w", dir);
	FILE *f = fopen(path, "w+");
	assert_non_null(f);
	size_t n = 1024 * 1024, done = 0;
	char *p = pattern(n);
	assert_int_equal(fdio_write_all(fileno(f), p, n, &done), 0);
	assert_int_equal(done, n);
	fclose(f);
	unlink(path);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	assert_int_equal(fdio_write_all(fds[1], p, n, &done), -1);
	assert_int_equal(errno, EAGAIN);
	if (done == 0 || done >= n)
		fail_msg("got %zu bytes written before EAGAIN, want some, not all", done);
	char *back = malloc(done);
	assert_non_null(back);
	close(fds[1]);
	assert_int_equal(read_fd(fds[0], back, done), done);
	assert_memory_equal(back, p, done);
	close(fds[0]);
	free(back);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_memory),      cmocka_unit_test(test_file),
	    cmocka_unit_test(test_pipe_unread), cmocka_unit_test(test_bad_dir),
	    cmocka_unit_test(test_write_error), cmocka_unit_test(test_write_all),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
