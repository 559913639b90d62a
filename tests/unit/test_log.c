/*
 * test_log.c - log lines in real files: format, levels, session prefix,
 *              one write per line under concurrent writers, escaping
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#include "coverage.h" /* last: a child's _exit() writes its gcov counters */

static char dir[64];
static char path[128];

/* read_all - the whole file as a NUL-terminated malloc'd string */
static char *read_all(const char *p, size_t *len)
{
	FILE *f = fopen(p, "r");
	if (!f)
		fail_msg("cannot open %s: %s", p, strerror(errno));
	char *buf = NULL;
	size_t cap = 0, n = 0, got;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* open_file_log - log to a fresh file in dir at level */
static void open_file_log(const char *progname, int level)
{
	struct config cfg = {
	    .progname = progname, .log_dest = LOG_DEST_FILE, .log_file = path, .log_level = level};
	char err[256];
	unlink(path);
	if (log_open(&cfg, err, sizeof(err)) != 0)
		fail_msg("log_open %s: got -1 (%s), want 0", path, err);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_log.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/smtpipe.log", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_close();
	log_set_session("");
	unlink(path);
	rmdir(dir);
	return 0;
}

/* match - whether s matches the extended regular expression re */
static int match(const char *re, const char *s)
{
	regex_t rx;
	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		fail_msg("bad regex %s", re);
	int r = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return r;
}

static void test_escape(void **state)
{
	(void)state;
	static const struct {
		const char *src;
		size_t len; /* 0: strlen(src) */
		size_t cap;
		const char *want;
	} cases[] = {
	    {"alice@example.org", 0, 64, "alice@example.org"},
	    {"", 0, 8, ""},
	    {"say \"hi\"", 0, 64, "say\\x20\\x22hi\\x22"},
	    {"back\\slash", 0, 64, "back\\x5cslash"},
	    {"a\r\nb", 0, 64, "a\\x0d\\x0ab"},
	    {"tab\there", 0, 64, "tab\\x09here"},
	    {"nul\0x", 5, 64, "nul\\x00x"},
	    {"\x7f\x80\xff", 0, 64, "\\x7f\\x80\\xff"},
	    {"caf\xc3\xa9", 0, 64, "caf\\xc3\\xa9"},
	    {"key=value <x>", 0, 64, "key\\x3dvalue\\x20<x>"},
	    /* issue 19.1: no quote, blank or key= survives to end a value */
	    {"x\" client=203.0.113.7 x=\"", 0, 64,
	     "x\\x22\\x20client\\x3d203.0.113.7\\x20x\\x3d\\x22"},
	    /* issue 19.7: U+202E and a C1 control stay visible as bytes */
	    {"a\xe2\x80\xae"
	     "b\xc2\x85",
	     0, 64, "a\\xe2\\x80\\xaeb\\xc2\\x85"},
	    {"<a@b.example>!#$%&'*+-/?^_`{|}~", 0, 64, "<a@b.example>!#$%&'*+-/?^_`{|}~"},
	    /* exactly fits: never cut */
	    {"abc", 0, 4, "abc"},
	    {"abcdefgh", 0, 9, "abcdefgh"},
	    {"\n", 0, 5, "\\x0a"},
	    /* one over: cut with "..." */
	    {"abcdefghi", 0, 9, "abcde..."},
	    {"abcd", 0, 4, "..."},
	    /* a cut never splits an escape */
	    {"ab\ncdefgh", 0, 9, "ab..."},
	    {"abcd\"fgh", 0, 9, "abcd..."},
	    {"abcd efgh", 0, 9, "abcd..."},
	    /* too small for "..." */
	    {"abc", 0, 3, "ab"},
	    {"abc", 0, 1, ""},
	    {"\n", 0, 3, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dst[64];
		memset(dst, 'Z', sizeof(dst));
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].src);
		size_t got = log_escape(dst, cases[i].cap, cases[i].src, len);
		if (strcmp(dst, cases[i].want) != 0)
			fail_msg("case %zu cap %zu: got '%s', want '%s'", i, cases[i].cap, dst,
			         cases[i].want);
		if (got != strlen(dst))
			fail_msg("case %zu: got return %zu, want strlen %zu", i, got, strlen(dst));
		if (cases[i].cap < sizeof(dst) && dst[cases[i].cap] != 'Z')
			fail_msg("case %zu: wrote past cap %zu", i, cases[i].cap);
	}
	char dst[4] = "ZZZ";
	if (log_escape(dst, 0, "abc", 3) != 0 || dst[0] != 'Z')
		fail_msg("cap 0: got a write, want none");
}

static void test_line_format(void **state)
{
	(void)state;
	open_file_log("smtpipe", LOG_INFO);
	time_t before = time(NULL);
	log_msg(LOG_INFO, "event=connect client=%s", "127.0.0.1");
	log_set_session("3f2a");
	log_msg(LOG_NOTICE, "event=helo name=%s", "x");
	log_set_session("");
	log_msg(LOG_INFO, "event=stop");
	log_close();
	char *text = read_all(path, NULL);
	char want[256];
	snprintf(want, sizeof(want),
	         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z smtpipe\\[%ld\\]: "
	         "event=connect client=127\\.0\\.0\\.1\n"
	         "[0-9TZ:-]{20} smtpipe\\[%ld\\]: session=3f2a event=helo name=x\n"
	         "[0-9TZ:-]{20} smtpipe\\[%ld\\]: event=stop\n$",
	         (long)getpid(), (long)getpid(), (long)getpid());
	if (!match(want, text))
		fail_msg("got\n%s\nwant /%s/", text, want);
	/* the time stamp is UTC: it reads back as the time of writing */
	struct tm tm = {0};
	if (!strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm))
		fail_msg("got time stamp '%.20s', want ISO 8601", text);
	time_t t = timegm(&tm);
	if (t < before - 1 || t > time(NULL) + 1)
		fail_msg("got time %ld, want about %ld (UTC)", (long)t, (long)before);
	free(text);
}

static void test_progname_and_append(void **state)
{
	(void)state;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old line\n", 9), 9);
	close(fd);
	struct config cfg = {.progname = "mockmta",
	                     .log_dest = LOG_DEST_FILE,
	                     .log_file = path,
	                     .log_level = LOG_INFO};
	char err[256];
	assert_int_equal(log_open(&cfg, err, sizeof(err)), 0);
	log_msg(LOG_INFO, "event=x");
	log_close();
	char *text = read_all(path, NULL);
	char want[128];
	snprintf(want, sizeof(want), "^old line\n[0-9TZ:-]{20} mockmta\\[%ld\\]: event=x\n$",
	         (long)getpid());
	if (!match(want, text))
		fail_msg("got\n%s\nwant /%s/ (append, not truncate)", text, want);
	free(text);
}

static void test_new_file_mode(void **state)
{
	(void)state;
	mode_t old = umask(0);
	open_file_log("smtpipe", LOG_INFO);
	umask(old);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	if ((st.st_mode & 07777) != 0640)
		fail_msg("got mode %o, want 640", st.st_mode & 07777);
	int flags = -1;
	/* the descriptor is not inherited by delivery commands */
	for (int fd = 3; fd < 64; fd++) {
		char link[64], target[256];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strcmp(target, path) == 0)
				flags = fcntl(fd, F_GETFD);
		}
	}
	if (flags < 0 || !(flags & FD_CLOEXEC))
		fail_msg("got fd flags %d, want FD_CLOEXEC on the log file", flags);
}

static void test_levels(void **state)
{
	(void)state;
	static const struct {
		int level;
		int prio;
		int written;
	} cases[] = {
	    {LOG_INFO, LOG_INFO, 1},      {LOG_INFO, LOG_DEBUG, 0},      {LOG_INFO, LOG_WARNING, 1},
	    {LOG_WARNING, LOG_NOTICE, 0}, {LOG_WARNING, LOG_WARNING, 1}, {LOG_DEBUG, LOG_DEBUG, 1},
	    {LOG_EMERG, LOG_ERR, 1}, /* errors always */
	    {LOG_EMERG, LOG_CRIT, 1},     {LOG_EMERG, LOG_WARNING, 0},   {LOG_CRIT, LOG_ERR, 1},
	    {LOG_ERR, LOG_WARNING, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		open_file_log("smtpipe", cases[i].level);
		if (log_enabled(cases[i].prio) != cases[i].written)
			fail_msg("level %d prio %d: got log_enabled %d, want %d", cases[i].level,
			         cases[i].prio, log_enabled(cases[i].prio), cases[i].written);
		log_msg(cases[i].prio, "event=case n=%zu", i);
		log_close();
		size_t len;
		char *text = read_all(path, &len);
		if ((len > 0) != cases[i].written)
			fail_msg("level %d prio %d: got '%s', want %s", cases[i].level,
			         cases[i].prio, text, cases[i].written ? "a line" : "nothing");
		free(text);
	}
}

static void test_none_and_closed(void **state)
{
	(void)state;
	struct config cfg = {
	    .progname = "smtpipe", .log_dest = LOG_DEST_NONE, .log_level = LOG_DEBUG};
	char err[64];
	assert_int_equal(log_open(&cfg, err, sizeof(err)), 0);
	for (int p = LOG_EMERG; p <= LOG_DEBUG; p++)
		if (log_enabled(p))
			fail_msg("--log=none prio %d: got enabled, want nothing", p);
	log_close();
	if (log_enabled(LOG_ERR))
		fail_msg("after log_close: got enabled, want nothing");
}

static void test_open_failure(void **state)
{
	(void)state;
	char bad[192];
	snprintf(bad, sizeof(bad), "%s/no/such/dir/x.log", dir);
	struct config cfg = {.progname = "smtpipe",
	                     .log_dest = LOG_DEST_FILE,
	                     .log_file = bad,
	                     .log_level = LOG_INFO};
	char err[256] = "";
	if (log_open(&cfg, err, sizeof(err)) != -1)
		fail_msg("log_open %s: got success, want -1", bad);
	if (!strstr(err, bad) || !strstr(err, "No such file") || strchr(err, '\n'))
		fail_msg("got err '%s', want one line naming %s and the reason", err, bad);
	if (log_enabled(LOG_ERR))
		fail_msg("after a failed open: got enabled, want nothing");
}

/* test_refuses_links_and_fifos - issue 19.11: --log=FILE is opened as
 * root in a directory the service user may write: a symlink, a FIFO
 * (which would hang a blocking open) and a second hard link are each
 * refused with one line, and the target is left untouched */
static void test_refuses_links_and_fifos(void **state)
{
	(void)state;
	char target[192], other[192];
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	static const struct {
		const char *what, *want;
	} cases[] = {{"symlink", "symbolic link"},
	             {"fifo", "not a regular file"},
	             {"hardlink", "more than one hard link"},
	             {"directory", "not a regular file"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unlink(path);
		rmdir(path);
		int rc = 0;
		if (i == 0)
			rc = symlink(target, path);
		else if (i == 1)
			rc = mkfifo(path, 0600);
		else if (i == 2)
			rc = link(target, path);
		else
			rc = mkdir(path, 0700);
		assert_int_equal(rc, 0);
		struct config cfg = {.progname = "smtpipe",
		                     .log_dest = LOG_DEST_FILE,
		                     .log_file = path,
		                     .log_level = LOG_INFO};
		char err[256] = "";
		/* a FIFO with no reader: a blocking open would wait here forever */
		if (log_open(&cfg, err, sizeof(err)) != -1)
			fail_msg("%s: got success, want -1", cases[i].what);
		if (!strstr(err, path) || !strstr(err, cases[i].want) || strchr(err, '\n'))
			fail_msg("%s: got err '%s', want one line naming %s and '%s'",
			         cases[i].what, err, path, cases[i].want);
		if (log_open_file(path, err, sizeof(err)) != -1)
			fail_msg("%s: log_open_file: got success, want -1", cases[i].what);
	}
	/* a FIFO with a reader opens without blocking, and is refused too */
	unlink(path);
	rmdir(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	int rd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	char err[256] = "";
	if (log_open_file(path, err, sizeof(err)) != -1 || !strstr(err, "not a regular file"))
		fail_msg("fifo with a reader: got '%s', want refused as not a regular file", err);
	close(rd);
	unlink(path);
	struct stat st;
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);
	unlink(target);
	unlink(other);
}

static void test_stderr(void **state)
{
	(void)state;
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	struct config cfg = {
	    .progname = "mockmta", .log_dest = LOG_DEST_STDERR, .log_level = LOG_DEBUG};
	char err[64];
	assert_int_equal(log_open(&cfg, err, sizeof(err)), 0);
	log_msg(LOG_DEBUG, "event=debug-line");
	log_close();
	/* closing the log must not close stderr */
	int still_open = fcntl(STDERR_FILENO, F_GETFD) >= 0;
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (!still_open)
		fail_msg("log_close closed stderr, want it left open");
	char *text = read_all(path, NULL);
	char want[128];
	snprintf(want, sizeof(want), "^[0-9TZ:-]{20} mockmta\\[%ld\\]: event=debug-line\n$",
	         (long)getpid());
	if (!match(want, text))
		fail_msg("got '%s', want /%s/", text, want);
	free(text);
}

static void test_long_line_is_one_line(void **state)
{
	(void)state;
	open_file_log("smtpipe", LOG_INFO);
	static char big[10000];
	memset(big, 'x', sizeof(big) - 1);
	log_msg(LOG_INFO, "event=big text=%s", big);
	log_msg(LOG_INFO, "event=after");
	log_close();
	char *text = read_all(path, NULL);
	char *nl = strchr(text, '\n');
	if (!nl || !strstr(nl + 1, "event=after\n") ||
	    strchr(nl + 1, '\n') != text + strlen(text) - 1)
		fail_msg("got %zu bytes, want a cut first line then event=after", strlen(text));
	if (strncmp(strstr(text, "text="), "text=xxxx", 9) != 0)
		fail_msg("got a first line without its text");
	free(text);
}

/* The session processes share one log file: with one write() per line on
 * an O_APPEND descriptor, no line is ever torn or interleaved. */
static void test_concurrent_writers(void **state)
{
	(void)state;
	enum { WRITERS = 8, LINES = 300, FILL = 1500 };
	open_file_log("smtpipe", LOG_INFO);
	static char fill[FILL + 1];
	pid_t pids[WRITERS];
	for (int w = 0; w < WRITERS; w++) {
		memset(fill, 'a' + w, FILL);
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			for (int i = 0; i < LINES; i++)
				log_msg(LOG_INFO, "event=w w=%d i=%04d fill=%s end", w, i, fill);
			_exit(0);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		int st;
		assert_int_equal(waitpid(pids[w], &st, 0), pids[w]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	log_close();
	char *text = read_all(path, NULL);
	int count[WRITERS] = {0};
	size_t lines = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		int w, i;
		char *f = strstr(line, "fill=");
		if (!f || sscanf(strstr(line, "event=w"), "event=w w=%d i=%d", &w, &i) != 2 ||
		    w < 0 || w >= WRITERS || strlen(f) != 5 + FILL + 4 ||
		    strcmp(f + 5 + FILL, " end") != 0)
			fail_msg("line %zu torn: '%.80s...'", lines, line);
		for (int k = 0; k < FILL; k++)
			if (f[5 + k] != 'a' + w)
				fail_msg("line %zu of writer %d holds '%c'", lines, w, f[5 + k]);
		count[w]++;
		lines++;
	}
	for (int w = 0; w < WRITERS; w++)
		if (count[w] != LINES)
			fail_msg("writer %d: got %d lines, want %d", w, count[w], LINES);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_progname_and_append, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_new_file_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_none_and_closed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuses_links_and_fifos, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stderr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_line_is_one_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
