/*
 * smtp_io.c - buffered, bounded, deadline-bound SMTP input and output
 *
 * One 64 KiB input buffer serves command lines and DATA blocks alike;
 * DATA is read in blocks as large as the kernel gives. Every wait is a
 * ppoll() until an absolute deadline (see smtp_io.h for which); with
 * TLS active the same calls go through tls.c, whose transport functions
 * wait under the same deadline, so GnuTLS never blocks on its own.
 * Results: SMTP_IO_OK, SMTP_IO_EOF, SMTP_IO_TIMEOUT, or SMTP_IO_ERROR
 * with errno (EINTR is returned, not retried, so the session can act
 * on SIGTERM).
 */
#include "smtp_io.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "reply.h"
#include "tls.h"

/* smtp_io_init - attach to the descriptors; -1 when out of memory */
int smtp_io_init(struct smtp_io *io, int fd_in, int fd_out, int timeout_ms)
{
	memset(io, 0, sizeof(*io));
	io->fd_in = fd_in;
	io->fd_out = fd_out;
	io->timeout_ms = timeout_ms;
	io->buf = malloc(SMTP_IO_BUFFER);
	return io->buf ? 0 : -1;
}

/* smtp_io_free - wipe the buffer as far as the client filled it (it
 * held AUTH lines, and the message), then release it; the descriptors
 * are the caller's */
void smtp_io_free(struct smtp_io *io)
{
	if (io->buf)
		explicit_bzero(io->buf, io->used);
	free(io->buf);
	io->buf = NULL;
}

/* later - t + ms */
static struct timespec later(const struct timespec *t, long long ms)
{
	struct timespec d = *t;
	d.tv_sec += (time_t)(ms / 1000);
	d.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (d.tv_nsec >= 1000000000L) {
		d.tv_sec++;
		d.tv_nsec -= 1000000000L;
	}
	return d;
}

/* smtp_io_deadline - see smtp_io.h */
void smtp_io_deadline(struct timespec *d, long long ms)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	*d = later(&now, ms);
}

/* time_left - from now (read here when NULL) until the deadline, never
 * negative */
static struct timespec time_left(const struct timespec *deadline, const struct timespec *now)
{
	struct timespec clock, t;
	if (!now) {
		clock_gettime(CLOCK_MONOTONIC, &clock);
		now = &clock;
	}
	t.tv_sec = deadline->tv_sec - now->tv_sec;
	t.tv_nsec = deadline->tv_nsec - now->tv_nsec;
	if (t.tv_nsec < 0) {
		t.tv_sec--;
		t.tv_nsec += 1000000000L;
	}
	if (t.tv_sec < 0)
		t.tv_sec = t.tv_nsec = 0;
	return t;
}

/* take_signals - let the signals that the wait mask admits run their
 * handlers now. ppoll() reports a ready descriptor rather than a pending
 * signal, so a client that never stops sending (/dev/zero) would hide
 * SIGTERM for ever; 1 when a signal was taken (the caller says EINTR) */
static int take_signals(const sigset_t *waitmask)
{
	sigset_t pending, old;
	if (!waitmask || sigpending(&pending) < 0)
		return 0;
	bool any = false;
	for (int sig = 1; sig < NSIG && !any; sig++)
		any = sigismember(&pending, sig) == 1 && sigismember(waitmask, sig) == 0;
	if (!any)
		return 0;
	sigprocmask(SIG_SETMASK, waitmask, &old); /* the handlers run here */
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 1;
}

/* wait_fd - poll one descriptor until the deadline; now, when not
 * NULL, is the clock as the caller just read it */
static enum smtp_io_status wait_fd(const struct smtp_io *io, int fd, short events,
                                   const struct timespec *deadline, const struct timespec *now)
{
	struct pollfd p = {.fd = fd, .events = events};
	struct timespec ts = time_left(deadline, now);
	int n = ppoll(&p, 1, &ts, io->waitmask);
	if (n < 0)
		return SMTP_IO_ERROR;
	if (n == 0)
		return SMTP_IO_TIMEOUT;
	if (take_signals(io->waitmask)) {
		errno = EINTR;
		return SMTP_IO_ERROR;
	}
	return SMTP_IO_OK;
}

/* earlier - the sooner of the read deadline and one idle timeout from now */
static struct timespec earlier(const struct smtp_io *io, const struct timespec *now)
{
	struct timespec idle = later(now, io->timeout_ms);
	const struct timespec *r = &io->read_deadline;
	if (r->tv_sec < idle.tv_sec || (r->tv_sec == idle.tv_sec && r->tv_nsec < idle.tv_nsec))
		return *r;
	return idle;
}

/* fill - read more input after what is buffered (compacting first);
 * flushing the replies first restarts a line's clock when line_clock is
 * set: the client cannot be asked to send before it has the answer. The
 * clock is read once, here, for the line's deadline, the idle bound and
 * the wait: nothing between that read and the wait can block. */
static enum smtp_io_status fill(struct smtp_io *io, bool line_clock)
{
	if (io->start == io->end) {
		io->start = io->end = 0;
	} else if (io->end == SMTP_IO_BUFFER && io->start > 0) {
		memmove(io->buf, io->buf + io->start, io->end - io->start);
		io->end -= io->start;
		io->start = 0;
	}
	size_t room = SMTP_IO_BUFFER - io->end;
	if (room == 0)
		return SMTP_IO_OK;
	bool buffered_tls = io->tls && tls_conn_pending(io->tls) > 0;
	bool flushed = false;
	if (io->replies && io->replies->len > 0 && !buffered_tls) {
		enum smtp_io_status st = smtp_io_flush(io, io->replies);
		if (st != SMTP_IO_OK)
			return st;
		flushed = true;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (line_clock && (flushed || io->line_clock_unset))
		io->read_deadline = later(&now, io->timeout_ms);
	if (line_clock)
		io->line_clock_unset = false;
	struct timespec deadline = earlier(io, &now);
	ssize_t n;
	if (io->tls) {
		/* tls.c waits under the same deadline and signal mask; a
		 * signal is looked at first, as GnuTLS may not wait at all */
		if (take_signals(io->waitmask)) {
			errno = EINTR;
			return SMTP_IO_ERROR;
		}
		n = tls_conn_read(io->tls, io->buf + io->end, room, &deadline, io->waitmask);
		if (n < 0 && errno == ETIMEDOUT) {
			io->write_timed_out = false;
			return SMTP_IO_TIMEOUT;
		}
		if (n < 0 && errno == EAGAIN)
			return SMTP_IO_OK; /* a record with no data, e.g. a TLS 1.3 ticket */
	} else {
		enum smtp_io_status st = wait_fd(io, io->fd_in, POLLIN, &deadline, &now);
		if (st == SMTP_IO_TIMEOUT)
			io->write_timed_out = false;
		if (st != SMTP_IO_OK)
			return st;
		n = read(io->fd_in, io->buf + io->end, room);
	}
	if (n < 0)
		return SMTP_IO_ERROR;
	if (n == 0)
		return SMTP_IO_EOF;
	io->end += (size_t)n;
	if (io->end > io->used)
		io->used = io->end;
	io->bytes_in += (unsigned long long)n;
	return SMTP_IO_OK;
}

/* line_max - the limit for the line at start, given what is buffered */
static size_t line_max(const struct smtp_io *io, const struct smtp_io_limit *lim)
{
	if (!lim->long_prefix)
		return lim->max;
	size_t pl = strlen(lim->long_prefix), have = io->end - io->start;
	if (have >= pl && strncasecmp(io->buf + io->start, lim->long_prefix, pl) == 0)
		return lim->long_max;
	return lim->max;
}

/* skip_rest - drop the rest of a too-long line up to its LF; OK once
 * the LF is consumed */
static enum smtp_io_status skip_rest(struct smtp_io *io)
{
	while (io->skipping) {
		char *nl = memchr(io->buf + io->start, '\n', io->end - io->start);
		if (nl) {
			io->start = (size_t)(nl - io->buf) + 1;
			io->skipping = false;
			break;
		}
		io->start = io->end;
		enum smtp_io_status st = fill(io, true);
		if (st != SMTP_IO_OK)
			return st;
	}
	return SMTP_IO_OK;
}

/* smtp_io_read_line - see smtp_io.h */
enum smtp_io_status smtp_io_read_line(struct smtp_io *io, const struct smtp_io_limit *lim,
                                      const char **line, size_t *len, bool *too_long)
{
	size_t scanned = 0; /* bytes after start known to hold no LF */
	*too_long = false;
	io->line_clock_unset = true; /* set by the first fill: no clock read when buffered */
	enum smtp_io_status st = skip_rest(io);
	if (st != SMTP_IO_OK)
		return st;
	for (;;) {
		char *s = io->buf + io->start;
		size_t max = line_max(io, lim);
		char *nl = memchr(s + scanned, '\n', io->end - io->start - scanned);
		if (nl) {
			size_t n = (size_t)(nl - s);
			io->start += n + 1;
			if (n > 0 && s[n - 1] == '\r')
				n--;
			if (n > max) {
				*too_long = true;
				n = 0;
			}
			*line = s;
			*len = n;
			return SMTP_IO_OK;
		}
		scanned = io->end - io->start;
		if (scanned > max + 1) {
			/* RFC 5321 4.5.3.1.4: say so now, drop the rest later */
			io->skipping = true;
			io->start = io->end;
			*line = "";
			*len = 0;
			*too_long = true;
			return SMTP_IO_OK;
		}
		st = fill(io, true);
		if (st != SMTP_IO_OK)
			return st;
	}
}

/* smtp_io_read_block - see smtp_io.h */
enum smtp_io_status smtp_io_read_block(struct smtp_io *io, const char **data, size_t *len)
{
	if (io->start == io->end) {
		enum smtp_io_status st = fill(io, false);
		if (st != SMTP_IO_OK)
			return st;
	}
	*data = io->buf + io->start;
	*len = io->end - io->start;
	return SMTP_IO_OK;
}

/* smtp_io_consume - the caller used n bytes of the block */
void smtp_io_consume(struct smtp_io *io, size_t n)
{
	io->start += n;
}

/* smtp_io_discard_input - RFC 3207 5: nothing sent before the handshake
 * may be acted on after it */
void smtp_io_discard_input(struct smtp_io *io)
{
	io->start = io->end = 0;
	io->skipping = false;
}

/* A write's deadline, one timeout (ms) from when it is first needed:
 * a write that a socket with room takes at once reads no clock. The
 * time before that first need is one send() that cannot block. */
struct write_deadline {
	long long ms;
	bool set;
	struct timespec at;
};

/* deadline_of - the write's deadline, fixed at the first call */
static const struct timespec *deadline_of(struct write_deadline *d)
{
	if (!d->set) {
		smtp_io_deadline(&d->at, d->ms);
		d->set = true;
	}
	return &d->at;
}

/* write_plain - as much as the descriptor takes now, waiting only when
 * it takes nothing: a socket with room gets one send() and no poll; the
 * pipes of --inetd (ENOTSOCK) wait for POLLOUT before each write, of at
 * most PIPE_BUF bytes, which a pipe with room takes without blocking */
static ssize_t write_plain(struct smtp_io *io, const char *p, size_t n,
                           struct write_deadline *deadline, enum smtp_io_status *st)
{
	*st = SMTP_IO_OK;
	if (!io->not_socket) {
		ssize_t w = send(io->fd_out, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* full: wait for room, then the caller sends again */
			if ((*st = wait_fd(io, io->fd_out, POLLOUT, deadline_of(deadline), NULL)) ==
			    SMTP_IO_OK)
				errno = EAGAIN;
			return -1;
		}
		if (w >= 0 || errno != ENOTSOCK)
			return w;
		io->not_socket = true;
	}
	*st = wait_fd(io, io->fd_out, POLLOUT, deadline_of(deadline), NULL);
	return *st == SMTP_IO_OK ? write(io->fd_out, p, n < PIPE_BUF ? n : PIPE_BUF) : -1;
}

/* write_until - all n bytes before the deadline */
static enum smtp_io_status write_until(struct smtp_io *io, const char *p, size_t n,
                                       struct write_deadline *deadline)
{
	if (io->write_failed) {
		errno = EPIPE;
		return SMTP_IO_ERROR;
	}
	while (n > 0) {
		ssize_t w;
		enum smtp_io_status st = SMTP_IO_OK;
		if (io->tls) {
			w = tls_conn_write(io->tls, p, n, deadline_of(deadline));
			if (w < 0 && errno == ETIMEDOUT)
				st = SMTP_IO_TIMEOUT;
		} else {
			w = write_plain(io, p, n, deadline, &st);
			if (st == SMTP_IO_ERROR && errno == EINTR)
				continue; /* SIGTERM: this write still ends by its deadline */
		}
		if (st == SMTP_IO_OK && w < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			st = SMTP_IO_ERROR;
		}
		if (st != SMTP_IO_OK) {
			io->write_failed = true;
			io->write_timed_out = st == SMTP_IO_TIMEOUT;
			return st;
		}
		p += w;
		n -= (size_t)w;
		io->bytes_out += (unsigned long long)w;
	}
	return SMTP_IO_OK;
}

/* smtp_io_write - all of it, within one timeout for the whole write (a
 * client reading a byte now and then cannot stretch it) */
enum smtp_io_status smtp_io_write(struct smtp_io *io, const void *data, size_t n)
{
	struct write_deadline deadline = {.ms = io->timeout_ms};
	return write_until(io, data, n, &deadline);
}

/* smtp_io_flush - send the replies gathered so far */
enum smtp_io_status smtp_io_flush(struct smtp_io *io, struct reply_buf *rb)
{
	if (rb->len == 0)
		return SMTP_IO_OK;
	enum smtp_io_status st = smtp_io_write(io, rb->data, rb->len);
	rb->len = 0;
	return st;
}

/* smtp_io_close - see smtp_io.h */
void smtp_io_close(struct smtp_io *io, struct reply_buf *rb)
{
	/* one deadline for the last replies and the bye */
	struct write_deadline deadline = {.ms = io->write_failed ? 0 : io->timeout_ms};
	if (rb && rb->len > 0)
		write_until(io, rb->data, rb->len, &deadline);
	if (rb)
		rb->len = 0;
	if (io->tls)
		tls_conn_close(io->tls, deadline_of(&deadline));
	io->tls = NULL;
}

/* smtp_io_set_replies - see smtp_io.h */
void smtp_io_set_replies(struct smtp_io *io, struct reply_buf *rb)
{
	io->replies = rb;
}

/* smtp_io_set_waitmask - see smtp_io.h */
void smtp_io_set_waitmask(struct smtp_io *io, const sigset_t *mask)
{
	io->waitmask = mask;
}

/* smtp_io_set_tls - see smtp_io.h */
void smtp_io_set_tls(struct smtp_io *io, struct tls_conn *c)
{
	io->tls = c;
}

/* smtp_io_set_read_deadline - see smtp_io.h */
void smtp_io_set_read_deadline(struct smtp_io *io, const struct timespec *d)
{
	io->read_deadline = *d;
}

/* smtp_io_write_timed_out - see smtp_io.h */
bool smtp_io_write_timed_out(const struct smtp_io *io)
{
	return io->write_timed_out;
}

/* smtp_io_bytes - see smtp_io.h */
void smtp_io_bytes(const struct smtp_io *io, unsigned long long *in, unsigned long long *out)
{
	if (in)
		*in = io->bytes_in;
	if (out)
		*out = io->bytes_out;
}
