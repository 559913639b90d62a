/*
 * smtp_io.c - buffered, bounded, deadline-bound SMTP input and output
 *
 * One 64 KiB input buffer serves command lines and DATA blocks alike;
 * DATA is read in blocks as large as the kernel gives. Every wait is a
 * poll() with the session timeout; with TLS active the same calls go
 * through tls.c, which applies the same deadline inside GnuTLS.
 * Results: SMTP_IO_OK, SMTP_IO_EOF, SMTP_IO_TIMEOUT, or SMTP_IO_ERROR
 * with errno (EINTR is returned, not retried, so the session can act
 * on SIGTERM).
 */
#include "smtp_io.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
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

/* smtp_io_free - release the buffer (the descriptors are the caller's) */
void smtp_io_free(struct smtp_io *io)
{
	free(io->buf);
	io->buf = NULL;
}

/* wait_fd - poll one descriptor until the deadline */
static enum smtp_io_status wait_fd(const struct smtp_io *io, int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
	int n = ppoll(&p, 1, timeout_ms < 0 ? NULL : &ts, io->waitmask);
	if (n < 0)
		return SMTP_IO_ERROR;
	if (n == 0)
		return SMTP_IO_TIMEOUT;
	return SMTP_IO_OK;
}

/* fill - read more input after what is buffered (compacting first) */
static enum smtp_io_status fill(struct smtp_io *io)
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
	if (io->replies && io->replies->len > 0 && !buffered_tls) {
		enum smtp_io_status st = smtp_io_flush(io, io->replies);
		if (st != SMTP_IO_OK)
			return st;
	}
	ssize_t n;
	if (io->tls) {
		/* Wait here, under the session's signal mask, unless GnuTLS
		 * already holds data; a record arriving in pieces is then
		 * bounded by GnuTLS's own timeout. */
		if (!buffered_tls) {
			enum smtp_io_status st = wait_fd(io, io->fd_in, POLLIN, io->timeout_ms);
			if (st != SMTP_IO_OK)
				return st;
		}
		n = tls_conn_read(io->tls, io->buf + io->end, room, io->timeout_ms);
		if (n < 0 && errno == ETIMEDOUT)
			return SMTP_IO_TIMEOUT;
		if (n < 0 && errno == EAGAIN)
			return SMTP_IO_OK; /* a record with no data, e.g. a TLS 1.3 ticket */
	} else {
		enum smtp_io_status st = wait_fd(io, io->fd_in, POLLIN, io->timeout_ms);
		if (st != SMTP_IO_OK)
			return st;
		n = read(io->fd_in, io->buf + io->end, room);
	}
	if (n < 0)
		return SMTP_IO_ERROR;
	if (n == 0)
		return SMTP_IO_EOF;
	io->end += (size_t)n;
	io->bytes_in += (unsigned long long)n;
	return SMTP_IO_OK;
}

/* smtp_io_read_line - see smtp_io.h */
enum smtp_io_status smtp_io_read_line(struct smtp_io *io, size_t max, const char **line,
                                      size_t *len, bool *too_long)
{
	size_t scanned = 0; /* bytes after start known to hold no LF */
	bool skipping = false;
	*too_long = false;
	for (;;) {
		char *s = io->buf + io->start;
		char *nl = memchr(s + scanned, '\n', io->end - io->start - scanned);
		if (nl) {
			size_t n = (size_t)(nl - s);
			io->start += n + 1;
			if (skipping) {
				*line = "";
				*len = 0;
				*too_long = true;
				return SMTP_IO_OK;
			}
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
			/* too long to keep: drop it and skip to its LF */
			skipping = true;
			io->start = io->end;
			scanned = 0;
		}
		enum smtp_io_status st = fill(io);
		if (st != SMTP_IO_OK)
			return st;
	}
}

/* smtp_io_read_block - see smtp_io.h */
enum smtp_io_status smtp_io_read_block(struct smtp_io *io, const char **data, size_t *len)
{
	if (io->start == io->end) {
		enum smtp_io_status st = fill(io);
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

/* smtp_io_pending - buffered input, here or inside TLS */
bool smtp_io_pending(struct smtp_io *io)
{
	return io->start < io->end || (io->tls && tls_conn_pending(io->tls) > 0);
}

/* smtp_io_discard_input - RFC 3207 5: nothing sent before the handshake
 * may be acted on after it */
void smtp_io_discard_input(struct smtp_io *io)
{
	io->start = io->end = 0;
}

/* write_plain - as much as the descriptor takes now, waiting only when
 * it takes nothing: a socket with room gets one send() and no poll; the
 * pipes of --inetd (ENOTSOCK) wait for POLLOUT before each write */
static ssize_t write_plain(struct smtp_io *io, const char *p, size_t n, enum smtp_io_status *st)
{
	*st = SMTP_IO_OK;
	if (!io->not_socket) {
		ssize_t w = send(io->fd_out, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* full: wait for room, then the caller sends again */
			if ((*st = wait_fd(io, io->fd_out, POLLOUT, io->timeout_ms)) == SMTP_IO_OK)
				errno = EAGAIN;
			return -1;
		}
		if (w >= 0 || errno != ENOTSOCK)
			return w;
		io->not_socket = true;
	}
	*st = wait_fd(io, io->fd_out, POLLOUT, io->timeout_ms);
	return *st == SMTP_IO_OK ? write(io->fd_out, p, n) : -1;
}

/* smtp_io_write - all of it, within the deadline */
enum smtp_io_status smtp_io_write(struct smtp_io *io, const void *data, size_t n)
{
	const char *p = data;
	while (n > 0) {
		ssize_t w;
		if (io->tls) {
			w = tls_conn_write(io->tls, p, n, io->timeout_ms);
			if (w < 0 && errno == ETIMEDOUT)
				return SMTP_IO_TIMEOUT;
		} else {
			enum smtp_io_status st;
			w = write_plain(io, p, n, &st);
			if (st == SMTP_IO_ERROR && errno == EINTR)
				continue;
			if (st != SMTP_IO_OK)
				return st;
		}
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return SMTP_IO_ERROR;
		}
		p += w;
		n -= (size_t)w;
		io->bytes_out += (unsigned long long)w;
	}
	return SMTP_IO_OK;
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
