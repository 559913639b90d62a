/*
 * deliver_mbox.c - append one message to an mbox (RFC 4155, mboxrd)
 *
 * Locking: an fcntl() write lock on the whole file, held for the
 * append. That is what mutt (its default), mailutils and Python's
 * mailbox module take; no ".lock" dotlock, which needs a writable
 * directory and is only for readers that know no fcntl. The append is
 * atomic for readers that lock: the old size is saved, the message is
 * written in large blocks, and on a write error the file is truncated
 * back to the saved size (a full disk gives 452 4.3.1, so the client
 * tries again later; other errors 451). The lock is released before the
 * fsync that precedes the 250, so that concurrent deliveries' fsyncs
 * overlap; if that fsync fails, the message is taken back out unless
 * another writer has appended after it.
 */
#include "deliver_mbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "clock.h"
#include "fdio.h"
#include "log.h"
#include "safe_file.h"
#include "spool.h"

#define MBOX_BLOCK (64 * 1024)

static int lock(int fd);

/* The mailbox: a regular file with one link that belongs to us or to
 * root, so that another user of a shared directory (/tmp) cannot point
 * a root daemon at a file of their choice (safe_file.h) */
static const struct safe_file_rules mbox_rules = {.root_may_own = true, .one_link = true};

/* mbox_open - open path for appending, as deliver_mbox.h says; the
 * descriptor, or -1 with why filled */
static int mbox_open(const char *path, char *why, size_t cap)
{
	return safe_file_open(AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT, 0600, &mbox_rules,
	                      NULL, why, cap);
}

/* deliver_mbox_check - see deliver_mbox.h */
int deliver_mbox_check(const char *path, char *err, size_t errlen)
{
	char why[96];
	if (strcmp(path, "-") == 0) { /* open for writing, and lockable */
		int fl = fcntl(STDOUT_FILENO, F_GETFL);
		struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY) {
			snprintf(err, errlen,
			         "--mailbox=-: standard output is not open for writing");
			return -1;
		}
		if (fcntl(STDOUT_FILENO, F_GETLK, &lk) < 0) {
			snprintf(err, errlen, "--mailbox=-: standard output cannot be locked: %s",
			         strerror(errno));
			return -1;
		}
		return 0;
	}
	int fd = mbox_open(path, why, sizeof(why));
	if (fd < 0) {
		snprintf(err, errlen, "cannot open mailbox %s for appending: %s", path, why);
		return -1;
	}
	close(fd);
	return 0;
}

struct out {
	struct fdio_block b; /* first: out_flush is handed the block */
	int fd;
	off_t written;   /* bytes appended by this delivery */
	bool stream;     /* --mailbox=-: standard output, maybe a pipe */
	long long until; /* with stream: the deadline of every write */
};

/* stream_ready - standard output can take PIPE_BUF bytes without
 * blocking (what POLLOUT means for a pipe), before o's deadline: a
 * reader that stops reading costs a 451, never a hung session */
static int stream_ready(const struct out *o)
{
	for (;;) {
		long long left = o->until - clock_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = {.fd = o->fd, .events = POLLOUT};
		int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0 && (p.revents & (POLLERR | POLLNVAL))) {
			errno = EPIPE;
			return -1;
		}
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* out_flush - write the block, all of it */
static int out_flush(struct fdio_block *b)
{
	struct out *o = (struct out *)b;
	if (!o->stream) {
		size_t done;
		int rc = fdio_write_all(o->fd, b->buf, b->len, &done);
		o->written += (off_t)done;
		b->len = 0; /* on an error the caller truncates the append back */
		return rc;
	}
	const char *p = b->buf; /* standard output: PIPE_BUF at a time, when ready */
	while (b->len > 0) {
		if (stream_ready(o) < 0)
			return -1;
		size_t k = b->len > PIPE_BUF ? PIPE_BUF : b->len;
		ssize_t w = write(o->fd, p, k);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		b->len -= (size_t)w;
		o->written += w;
	}
	return 0;
}

/* out_put - buffer n bytes */
static int out_put(struct out *o, const char *p, size_t n)
{
	return fdio_block_put(&o->b, p, n);
}

/* is_from_line - does the line (after any '>') start with "From "? */
static bool is_from_line(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] == '>')
		i++;
	return n - i >= 5 && memcmp(p + i, "From ", 5) == 0;
}

/* separator - "From SENDER DATE\n": RFC 4155's address has no blanks,
 * so blanks in a quoted local part become '_' (the line is only a
 * separator; the message itself keeps the real address) */
static size_t separator(char *buf, size_t cap, const char *sender)
{
	time_t now = time(NULL);
	struct tm tm;
	char date[32];
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	int n = snprintf(buf, cap, "From %s %s\n", sender[0] ? sender : "MAILER-DAEMON", date);
	size_t alen = strlen(sender[0] ? sender : "MAILER-DAEMON");
	for (size_t i = 5; i < 5 + alen && i < cap; i++)
		if (buf[i] == ' ' || buf[i] == '\t')
			buf[i] = '_';
	return n < 0 ? 0 : (size_t)n;
}

/* deliver_storage_failed - see deliver_mbox.h */
void deliver_storage_failed(struct delivery_result *r, int err, const char *text)
{
	bool full = err == ENOSPC || err == EDQUOT || err == EFBIG;
	r->code = full ? 452 : 451;
	snprintf(r->text, sizeof(r->text), "%s", full ? "4.3.1 Insufficient system storage" : text);
}

/* deliver_envelope_headers - see deliver_mbox.h */
int deliver_envelope_headers(const struct delivery *d, deliver_put_fn *put, void *arg)
{
	char line[BOUND_PATH + 32];
	int n = snprintf(line, sizeof(line), "Return-Path: <%s>\n", d->sender);
	if (n < 0 || (size_t)n >= sizeof(line) || put(arg, line, (size_t)n) < 0 ||
	    put(arg, "X-Envelope-To: ", 15) < 0)
		return -1;
	/* one recipient a line: RFC 5322 folding, which
	 * email.utils.getaddresses() and every header reader unfold */
	for (size_t i = 0; i < d->nrcpt; i++) {
		n = snprintf(line, sizeof(line), "%s<%s>%s", i ? "\t" : "", d->rcpts[i],
		             i + 1 < d->nrcpt ? ",\n" : "\n");
		if (n < 0 || (size_t)n >= sizeof(line) || put(arg, line, (size_t)n) < 0)
			return -1;
	}
	if (d->nrcpt == 0 && put(arg, "\n", 1) < 0)
		return -1;
	return 0;
}

/* put_out - deliver_put_fn for a struct out */
static int put_out(void *arg, const char *p, size_t n)
{
	return out_put(arg, p, n);
}

static char in[MBOX_BLOCK]; /* the spool, read for copy_quoted */

/* copy_quoted - the spool into o, ">From " quoted, ending in "\n\n" */
static int copy_quoted(struct out *o, struct spool *sp)
{
	size_t off = 0;
	bool line_start = true;
	char last = '\n';
	char carry[1024]; /* an unfinished short line at the end of a read */
	size_t ncarry = 0;
	for (;;) {
		ssize_t n = spool_read_at(sp, in + ncarry, sizeof(in) - ncarry, off);
		if (n < 0)
			return -1;
		memcpy(in, carry, ncarry);
		size_t len = ncarry + (size_t)n;
		bool eof = n == 0;
		off += (size_t)n;
		ncarry = 0;
		if (len == 0)
			break;
		size_t i = 0;
		while (i < len) {
			if (line_start) {
				/* a line cut by the read: decide when it is whole */
				if (!eof && len - i < sizeof(carry) &&
				    !memchr(in + i, '\n', len - i)) {
					ncarry = len - i;
					memcpy(carry, in + i, ncarry);
					break;
				}
				if (is_from_line(in + i, len - i) && out_put(o, ">", 1) < 0)
					return -1;
			}
			const char *nl = memchr(in + i, '\n', len - i);
			size_t end = nl ? (size_t)(nl - in) + 1 : len;
			if (out_put(o, in + i, end - i) < 0)
				return -1;
			last = in[end - 1];
			line_start = nl != NULL;
			i = end;
		}
		if (eof)
			break;
	}
	if (last != '\n' && out_put(o, "\n", 1) < 0)
		return -1;
	return out_put(o, "\n", 1);
}

static volatile sig_atomic_t lock_expired;

/* on_lock_alarm - the wait for the lock is over: F_SETLKW returns EINTR */
static void on_lock_alarm(int sig)
{
	(void)sig;
	lock_expired = 1;
}

/* lock - an fcntl write lock, waiting up to BOUND_MBOX_LOCK_SECONDS. The kernel
 * wakes a waiter as soon as the lock is free (held for well under a
 * millisecond here, while polling with sleeps left a busy mailbox idle
 * a third of the time); an alarm without SA_RESTART bounds the wait. */
static int lock(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) == 0)
		return 0;
	if (errno != EACCES && errno != EAGAIN)
		return -1;
	struct sigaction sa = {.sa_handler = on_lock_alarm}, old_sa;
	sigemptyset(&sa.sa_mask);
	/* it repeats each second: an alarm that fired just before fcntl()
	 * began to wait is followed by one that interrupts it */
	struct itimerval arm = {.it_interval = {1, 0}, .it_value = {BOUND_MBOX_LOCK_SECONDS, 0}},
	                 disarm = {0};
	lock_expired = 0;
	sigaction(SIGALRM, &sa, &old_sa);
	setitimer(ITIMER_REAL, &arm, NULL);
	int rc;
	while ((rc = fcntl(fd, F_SETLKW, &fl)) < 0 && errno == EINTR && !lock_expired)
		;
	int saved = lock_expired ? ETIMEDOUT : errno;
	setitimer(ITIMER_REAL, &disarm, NULL);
	sigaction(SIGALRM, &old_sa, NULL);
	errno = saved;
	return rc;
}

/* withdraw - the fsync failed after the lock was released: take the
 * message back out while it is still the last one; once another writer
 * has appended it stays, and the 4xx can only lead to a second copy */
static bool withdraw(int fd, off_t size, off_t end)
{
	struct stat st;
	if (lock(fd) < 0 || fstat(fd, &st) < 0 || st.st_size != end || ftruncate(fd, size) < 0)
		return false;
	fsync(fd);
	return true;
}

static char block[MBOX_BLOCK];
static struct out o = {.b = {.buf = block, .cap = sizeof(block), .flush = out_flush}};

/* stdout_run - --mailbox=-: the message in mbox form on standard
 * output, whole: every session of the daemon shares that descriptor, so
 * each message is written under an fcntl lock on it (sessions are
 * processes), in PIPE_BUF pieces each of which waits at most until the
 * deadline; fsynced when it is a regular file. Nothing written can be
 * taken back: a failure after the first byte leaves a torn message
 * (logged as such) before the 451. 0, or an errno */
static int stdout_run(const struct delivery *d, struct spool *sp, bool *torn)
{
	struct stat st;
	o.fd = STDOUT_FILENO;
	o.stream = true;
	o.until = clock_now_ms() + BOUND_MBOX_STDOUT_SECONDS * 1000LL;
	*torn = false;
	if (lock(o.fd) < 0)
		return errno;
	char sep[BOUND_PATH + 64];
	size_t n = separator(sep, sizeof(sep), d->sender);
	int err = 0;
	if (out_put(&o, sep, n) < 0 || deliver_envelope_headers(d, put_out, &o) < 0 ||
	    copy_quoted(&o, sp) < 0 || out_flush(&o.b) < 0)
		err = errno ? errno : EIO;
	else if (fstat(o.fd, &st) == 0 && S_ISREG(st.st_mode) && fsync(o.fd) < 0)
		err = errno;
	*torn = err && o.written > 0;
	struct flock unlock = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
	fcntl(o.fd, F_SETLK, &unlock);
	return err;
}

/* deliver_mbox_run - see deliver_mbox.h */
void deliver_mbox_run(const char *path, const struct delivery *d, struct spool *sp,
                      struct delivery_result *r)
{
	struct stat st;
	off_t size = -1;
	int err = 0;
	char why[96] = "";
	memset(r, 0, sizeof(*r));
	r->exit_status = -1;
	o.b.len = 0;
	o.written = 0;
	o.stream = false;
	if (strcmp(path, "-") == 0) {
		bool torn;
		err = stdout_run(d, sp, &torn);
		o.fd = -1; /* standard output stays open */
		if (err)
			snprintf(why, sizeof(why), "%s%s",
			         err == ETIMEDOUT && !torn ? "locked by another writer"
			                                   : strerror(err),
			         torn ? "; the message on standard output is torn" : "");
		goto done;
	}
	o.fd = mbox_open(path, why, sizeof(why));
	if (o.fd < 0) {
		err = EPERM; /* why says what */
		goto done;
	}
	if (lock(o.fd) < 0 || fstat(o.fd, &st) < 0) {
		err = errno;
		goto done;
	}
	size = st.st_size;
	char sep[BOUND_PATH + 64];
	size_t n = separator(sep, sizeof(sep), d->sender);
	if (out_put(&o, sep, n) < 0 || deliver_envelope_headers(d, put_out, &o) < 0 ||
	    copy_quoted(&o, sp) < 0 || out_flush(&o.b) < 0) {
		err = errno ? errno : EIO;
		if (ftruncate(o.fd, size) == 0)
			fsync(o.fd); /* no reader ever sees a torn message */
		goto done;
	}
	/* whole now for every reader that locks: let the next writer in
	 * while this one waits for the disk, so that concurrent sessions'
	 * fsyncs overlap (one journal commit can serve several) */
	struct flock unlock = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
	fcntl(o.fd, F_SETLK, &unlock);
	if (fsync(o.fd) < 0) {
		err = errno;
		if (!withdraw(o.fd, size, size + o.written))
			size = -1; /* kept: logged as restored-size=-1 */
	}
done:
	if (o.fd >= 0)
		close(o.fd); /* also releases the lock */
	/* the message's text, gone before the next client (--session-reuse) */
	fdio_block_wipe(&o.b);
	explicit_bzero(in, sp->size < sizeof(in) ? sp->size : sizeof(in));
	if (!err) {
		r->code = 250;
		snprintf(r->text, sizeof(r->text), "2.0.0 Ok: appended to mailbox");
		return;
	}
	if (!why[0] && err == ETIMEDOUT) /* else mbox_open said what */
		snprintf(why, sizeof(why), "locked by another writer for %d s",
		         BOUND_MBOX_LOCK_SECONDS);
	else if (!why[0])
		snprintf(why, sizeof(why), "%s", strerror(err));
	char mbox[1024];
	log_escape(mbox, sizeof(mbox), path, strlen(path));
	log_msg(LOG_ERR, "event=mailbox-error mailbox=%s error=\"%s\" restored-size=%lld", mbox,
	        why, (long long)size);
	deliver_storage_failed(r, err, "4.3.0 Cannot append to mailbox");
}
