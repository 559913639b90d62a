/*
 * test_deliver_mbox.c - the mbox append on real files in a temporary
 *                       directory: the separator and the envelope
 *                       headers, mboxrd quoting (also
 *                       across the copy's block boundaries), the lock
 *                       (waited for, and given up after its bound), the
 *                       truncation back to the old size on a write
 *                       error, and the files it refuses
 *
 * A second process holds the lock; the test sees the deliverer waiting
 * for it in /proc/locks before it lets go, never by sleeping.
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
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "deliver_mbox.h"
#include "spool.h"

#include "coverage.h" /* last: a child's _exit() writes its gcov counters */

static char dir[] = "/tmp/test_deliver_mbox.XXXXXX";
static char box[128];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(box, sizeof(box), "%s/box", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(box);
	return rmdir(dir);
}

/* slurp - the whole mailbox; *n its size */
static char *slurp(size_t *n)
{
	FILE *f = fopen(box, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	rewind(f);
	char *buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	*n = (size_t)len;
	return buf;
}

/* spooled - content in a spool, ready for delivery */
static void spooled(struct spool *sp, const char *content, size_t n)
{
	spool_init(sp, dir);
	assert_int_equal(spool_write(sp, content, n), 0);
	assert_int_equal(spool_finish(sp), 0);
}

/* deliver_spool - the spool from sender appended to box; the reply
 * code; the spool is freed */
static int deliver_spool(const char *sender, struct spool *sp, struct delivery_result *r)
{
	const char *rcpts[] = {"rcpt@example.org"};
	struct delivery d = {.sender = sender, .rcpts = rcpts, .nrcpt = 1, .id = "T"};
	deliver_mbox_run(box, &d, sp, r);
	spool_free(sp);
	return r->code;
}

/* deliver - content from sender appended to box; the reply code */
static int deliver(const char *sender, const char *content, size_t n, struct delivery_result *r)
{
	struct spool sp;
	spooled(&sp, content, n);
	return deliver_spool(sender, &sp, r);
}

/* quoted - what mboxrd makes of content: ">" before every line that
 * matches ^>*From , a final LF if missing, and the blank line after */
static char *quoted(const char *content, size_t n, size_t *outlen)
{
	char *out = malloc(2 * n + 3);
	assert_non_null(out);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(content + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - content) + 1 : n;
		size_t j = i;
		while (j < end && content[j] == '>')
			j++;
		if (end - j >= 5 && memcmp(content + j, "From ", 5) == 0)
			out[o++] = '>';
		memcpy(out + o, content + i, end - i);
		o += end - i;
		i = end;
	}
	if (n && content[n - 1] != '\n')
		out[o++] = '\n';
	out[o++] = '\n';
	*outlen = o;
	return out;
}

/* check_message - the mailbox is the separator for sender (as the
 * separator writes it), the envelope headers for sender (as given) and
 * the one recipient deliver() gives, then the quoted content; returns
 * the size */
static size_t check_message(const char *want_sender, const char *sender, const char *content,
                            size_t n)
{
	size_t len, qlen, elen;
	char *got = slurp(&len);
	char *quote = quoted(content, n, &qlen);
	char env[600];
	elen = (size_t)snprintf(env, sizeof(env),
	                        "Return-Path: <%s>\nX-Envelope-To: <rcpt@example.org>\n", sender);
	char *want = malloc(elen + qlen);
	assert_non_null(want);
	memcpy(want, env, elen);
	memcpy(want + elen, quote, qlen);
	free(quote);
	qlen += elen;
	char prefix[300];
	snprintf(prefix, sizeof(prefix), "From %s ", want_sender);
	const char *nl = memchr(got, '\n', len);
	if (strncmp(got, prefix, strlen(prefix)) != 0 || !nl)
		fail_msg("got separator '%.80s', want it to start with '%s'", got, prefix);
	/* "Www Mmm dd hh:mm:ss yyyy" (asctime's layout) after the sender */
	size_t date = (size_t)(nl - got) - strlen(prefix);
	if (date != 24)
		fail_msg("got a date of %zu characters in '%.*s', want 24", date, (int)(nl - got),
		         got);
	size_t body = (size_t)(nl - got) + 1;
	if (len - body != qlen || memcmp(got + body, want, qlen) != 0)
		fail_msg("got %zu bytes of message, want %zu quoted: got '%.200s'", len - body,
		         qlen, got + body);
	free(got);
	free(want);
	return len;
}

/* The separator: the sender, MAILER-DAEMON for <>, blanks as '_'. */
static void test_separator(void **state)
{
	(void)state;
	static const struct {
		const char *sender, *want;
	} cases[] = {
	    {"a@example.org", "a@example.org"},
	    {"", "MAILER-DAEMON"},
	    {"\"john smith\"@example.org", "\"john_smith\"@example.org"},
	    {"\"a\tb\"@x", "\"a_b\"@x"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct delivery_result r;
		unlink(box);
		if (deliver(cases[i].sender, "Subject: s\n\nhi\n", 15, &r) != 250)
			fail_msg("'%s': got %d %s, want 250", cases[i].sender, r.code, r.text);
		check_message(cases[i].want, cases[i].sender, "Subject: s\n\nhi\n", 15);
	}
}

/* mboxrd: every ^>*From  line gets one more '>', nothing else changes. */
static void test_quoting(void **state)
{
	(void)state;
	static const char *const cases[] = {
	    "Subject: q\n\nFrom here\n>From there\n>>From x\nFrom\nFromage\n From y\nfrom z\n",
	    "From the first line\n",
	    "no final newline\nFrom last",
	    "",
	    "\n",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct delivery_result r;
		unlink(box);
		size_t n = strlen(cases[i]);
		if (deliver("s@x", cases[i], n, &r) != 250)
			fail_msg("case %zu: got %d %s, want 250", i, r.code, r.text);
		check_message("s@x", "s@x", cases[i], n);
	}
}

/* A large message whose "From " lines fall on every offset around the
 * copy's 64 KiB blocks, some longer than the carry buffer. */
static void test_quoting_blocks(void **state)
{
	(void)state;
	size_t cap = 600 * 1024, n = 0;
	char *m = malloc(cap);
	assert_non_null(m);
	for (unsigned k = 0; n + 3000 < cap; k++) {
		size_t filler = (k * 37) % 1500 + (k % 11 == 0 ? 1200 : 0);
		n += (size_t)sprintf(m + n, "%sFrom %u ", k % 3 ? "" : ">", k);
		memset(m + n, 'a' + k % 26, filler);
		n += filler;
		m[n++] = '\n';
	}
	struct delivery_result r;
	unlink(box);
	assert_int_equal(deliver("s@x", m, n, &r), 250);
	check_message("s@x", "s@x", m, n);
	free(m);
}

/* Two deliveries: both messages, in order. */
static void test_append(void **state)
{
	(void)state;
	struct delivery_result r;
	unlink(box);
	assert_int_equal(deliver("a@x", "one\n", 4, &r), 250);
	size_t first;
	free(slurp(&first));
	assert_int_equal(deliver("b@x", "two\n", 4, &r), 250);
	size_t len;
	char *got = slurp(&len);
	if (!strstr(got, "\none\n\nFrom b@x ") || memcmp(got + len - 6, "\ntwo\n\n", 6) != 0)
		fail_msg("got '%s', want both messages in order", got);
	assert_true(len > first);
	free(got);
}

/* holds_lock - a process that holds the mailbox's write lock until the
 * test writes a byte to *release (or closes it) */
static pid_t holds_lock(int *release)
{
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]); /* else its read below never sees the end */
		close(ready[0]);
		int fd = open(box, O_WRONLY | O_CREAT, 0600);
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
			_exit(1);
		char c = 'r';
		(void)!write(ready[1], &c, 1);
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release = go[1];
	return pid;
}

/* deliver_in_child - a delivery in another process; its code comes back
 * as the exit status (0: 250, 1: 451, 2: other) */
static pid_t deliver_in_child(int release)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(release); /* the holder's, not ours to keep open */
		struct delivery_result r;
		int code = deliver("w@x", "waited\n", 7, &r);
		_exit(code == 250 ? 0 : code == 451 ? 1 : 2);
	}
	return pid;
}

/* blocked_on - whether /proc/locks shows pid waiting for a lock */
static bool blocked_on(pid_t pid)
{
	FILE *f = fopen("/proc/locks", "r");
	assert_non_null(f);
	char line[256], want[32];
	bool found = false;
	snprintf(want, sizeof(want), " %ld ", (long)pid);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "->") && strstr(line, want))
			found = true;
	fclose(f);
	return found;
}

/* A delivery waits for another writer's lock and appends once it is
 * free. */
static void test_lock_waits(void **state)
{
	(void)state;
	unlink(box);
	int release;
	pid_t holder = holds_lock(&release);
	pid_t writer = deliver_in_child(release);
	struct timespec tick = {0, 10 * 1000 * 1000};
	/* the writer must be seen waiting long before its own 10 s bound */
	for (int i = 0; i < 3000 && !blocked_on(writer); i++)
		nanosleep(&tick, NULL);
	if (!blocked_on(writer))
		fail_msg("got no waiting lock of the writer in /proc/locks");
	close(release);
	int st;
	assert_int_equal(waitpid(holder, &st, 0), holder);
	assert_int_equal(waitpid(writer, &st, 0), writer);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("got writer status %#x, want exit 0 (250)", st);
	size_t len;
	char *got = slurp(&len);
	assert_non_null(strstr(got, "\nwaited\n\n"));
	free(got);
}

/* A lock held past BOUND_MBOX_LOCK_SECONDS: 451, and nothing written. */
static void test_lock_gives_up(void **state)
{
	(void)state;
	unlink(box);
	int release;
	pid_t holder = holds_lock(&release);
	struct delivery_result r;
	assert_int_equal(deliver("w@x", "late\n", 5, &r), 451);
	assert_string_equal(r.text, "4.3.0 Cannot append to mailbox");
	close(release);
	int st;
	assert_int_equal(waitpid(holder, &st, 0), holder);
	struct stat sb;
	assert_int_equal(stat(box, &sb), 0);
	assert_int_equal(sb.st_size, 0);
}

/* A write error mid-append (a file size limit, as a full quota): 452
 * 4.3.1, and the mailbox is back to its old bytes exactly. */
static void test_truncate_back(void **state)
{
	(void)state;
	unlink(box);
	struct delivery_result r;
	assert_int_equal(deliver("a@x", "kept\n", 5, &r), 250);
	size_t before;
	char *old = slurp(&before);
	size_t n = 512 * 1024;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	for (size_t i = 99; i < n; i += 100)
		big[i] = '\n';
	struct rlimit lim, small;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &lim), 0);
	small = lim;
	small.rlim_cur = before + 100 * 1024;
	signal(SIGXFSZ, SIG_IGN);
	struct spool sp;
	spooled(&sp, big, n); /* before the limit: only the append meets it */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	int code = deliver_spool("b@x", &sp, &r);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	signal(SIGXFSZ, SIG_DFL);
	if (code != 452 || strcmp(r.text, "4.3.1 Insufficient system storage") != 0)
		fail_msg("got %d %s, want 452 4.3.1 Insufficient system storage", code, r.text);
	size_t after;
	char *now = slurp(&after);
	if (after != before || memcmp(now, old, before) != 0)
		fail_msg("got %zu bytes after the failed append, want the %zu from before", after,
		         before);
	free(now);
	free(old);
	free(big);
}

/* What the mailbox must not be: a symbolic link, a FIFO, a directory,
 * a file with a second link. 451 at delivery, a reason at start-up,
 * and the file behind it untouched. */
static void test_refused(void **state)
{
	(void)state;
	char target[160], other[160], err[256];
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	static const struct {
		const char *kind, *want;
	} cases[] = {
	    {"symlink", "symbolic link"},
	    {"fifo", "not a regular file"},
	    {"dir", "not a regular file"},
	    {"hardlink", "more than one hard link"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unlink(box);
		rmdir(box);
		unlink(target);
		int fd = open(target, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
		if (strcmp(cases[i].kind, "symlink") == 0)
			assert_int_equal(symlink(target, box), 0);
		else if (strcmp(cases[i].kind, "fifo") == 0)
			assert_int_equal(mkfifo(box, 0600), 0);
		else if (strcmp(cases[i].kind, "dir") == 0)
			assert_int_equal(mkdir(box, 0700), 0);
		else
			assert_int_equal(link(target, box), 0);
		if (deliver_mbox_check(box, err, sizeof(err)) != -1 || !strstr(err, cases[i].want))
			fail_msg("%s: got '%s', want '%s'", cases[i].kind, err, cases[i].want);
		struct delivery_result r;
		if (deliver("a@x", "no\n", 3, &r) != 451)
			fail_msg("%s: got %d %s, want 451", cases[i].kind, r.code, r.text);
		struct stat sb;
		assert_int_equal(stat(target, &sb), 0);
		if (sb.st_size != 0)
			fail_msg("%s: got %lld bytes in the file behind it, want 0", cases[i].kind,
			         (long long)sb.st_size);
	}
	rmdir(box);
	unlink(box);
	unlink(target);
	unlink(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_separator),      cmocka_unit_test(test_quoting),
	    cmocka_unit_test(test_quoting_blocks), cmocka_unit_test(test_append),
	    cmocka_unit_test(test_lock_waits),     cmocka_unit_test(test_lock_gives_up),
	    cmocka_unit_test(test_truncate_back),  cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
