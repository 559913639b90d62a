/*
 * smtp_io.h - bounded line reader, block reader, reply writer, deadlines
 *
 * Reads go through one buffer; before a read that would wait, the reply
 * buffer is written out, which is all RFC 2920 PIPELINING needs: replies
 * to a pipelined group leave together, and nothing waits on a reply that
 * was never sent. A line longer than the caller's bound is reported as
 * too long as soon as the bound is passed (never stored whole), and the
 * rest of it, up to its LF, is dropped by the next read.
 *
 * Deadlines (CLOCK_MONOTONIC, one model for plain and TLS): a command
 * line must arrive whole within timeout_ms of the start of its read (or
 * of the flush of the replies before it); a write (a flush of replies)
 * must be taken whole by the client within timeout_ms; DATA reads stop
 * at read_deadline, which the caller sets for the whole phase, and each
 * of them waits at most timeout_ms. Once a write has failed or timed
 * out, later writes fail at once, so the close never waits on a client
 * that does not read. smtp_io_discard_input drops what is buffered (the
 * plaintext after STARTTLS, RFC 3207 and CVE-2011-0411).
 */
#ifndef SMTPIPE_SMTP_IO_H
#define SMTPIPE_SMTP_IO_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct tls_conn;
struct reply_buf;

#define SMTP_IO_BUFFER (64 * 1024)

enum smtp_io_status {
	SMTP_IO_OK = 1,
	SMTP_IO_EOF = 0,
	SMTP_IO_ERROR = -1, /* errno set */
	SMTP_IO_TIMEOUT = -2,
};

/* How long a line may grow: max octets, or long_max when it starts with
 * long_prefix (ASCII case ignored), e.g. RFC 4954's longer AUTH lines */
struct smtp_io_limit {
	size_t max;
	const char *long_prefix; /* NULL: none */
	size_t long_max;
};

struct smtp_io {
	int fd_in;
	int fd_out;
	int timeout_ms;                /* idle bound; each line and each write as a whole */
	struct timespec read_deadline; /* no read waits past it (smtp_io_read_block) */
	bool line_clock_unset;         /* a line's read_deadline starts at its first wait */
	bool skipping;                 /* dropping the rest of a too-long line */
	bool write_failed;             /* a write failed or timed out: no more waits */
	bool write_timed_out;          /* the last timeout was a write's (for the log) */
	bool not_socket;               /* fd_out is a pipe or file: write(), not send() */
	struct tls_conn *tls;          /* NULL while plaintext */
	struct reply_buf *replies;     /* flushed before any read would block */
	const sigset_t *waitmask;      /* signal mask while waiting (ppoll), or NULL */
	char *buf;                     /* SMTP_IO_BUFFER bytes */
	size_t start;                  /* first unread byte */
	size_t end;                    /* one past the last buffered byte */
	size_t used;                   /* the most of buf ever filled: wiped at free */
	unsigned long long bytes_in;
	unsigned long long bytes_out;
};

int smtp_io_init(struct smtp_io *io, int fd_in, int fd_out, int timeout_ms);
void smtp_io_free(struct smtp_io *io);

/* smtp_io_deadline - *d = now + ms on CLOCK_MONOTONIC */
void smtp_io_deadline(struct timespec *d, long long ms);
/* smtp_io_read_line - next line without its LF or CRLF, within one
 * timeout; *line points into the buffer until the next call. A line
 * longer than its limit (terminator excluded) is returned empty with
 * *too_long set as soon as it is known to be too long; the next call
 * first drops the rest of it up to its LF. */
enum smtp_io_status smtp_io_read_line(struct smtp_io *io, const struct smtp_io_limit *lim,
                                      const char **line, size_t *len, bool *too_long);
/* smtp_io_read_block - whatever is buffered, reading more if nothing
 * is, until io->read_deadline; *data stays valid until smtp_io_consume */
enum smtp_io_status smtp_io_read_block(struct smtp_io *io, const char **data, size_t *len);
void smtp_io_consume(struct smtp_io *io, size_t n);
/* smtp_io_discard_input - drop everything buffered (before a TLS handshake) */
void smtp_io_discard_input(struct smtp_io *io);
/* smtp_io_write - write all n bytes within one timeout */
enum smtp_io_status smtp_io_write(struct smtp_io *io, const void *data, size_t n);
/* smtp_io_flush - write the reply buffer and empty it */
enum smtp_io_status smtp_io_flush(struct smtp_io *io, struct reply_buf *rb);
/* smtp_io_close - write what rb holds (rb may be NULL) and end TLS
 * (close_notify), both within one timeout, or not at all once a write
 * has failed; the descriptors are the caller's */
void smtp_io_close(struct smtp_io *io, struct reply_buf *rb);

/* Accessors, so that a caller never reaches into struct smtp_io. */
/* smtp_io_set_replies - the buffer written before any read would wait */
void smtp_io_set_replies(struct smtp_io *io, struct reply_buf *rb);
/* smtp_io_set_waitmask - the signal mask while waiting (ppoll), or NULL */
void smtp_io_set_waitmask(struct smtp_io *io, const sigset_t *mask);
/* smtp_io_set_tls - reads and writes go through c from now on */
void smtp_io_set_tls(struct smtp_io *io, struct tls_conn *c);
/* smtp_io_set_read_deadline - no smtp_io_read_block waits past d */
void smtp_io_set_read_deadline(struct smtp_io *io, const struct timespec *d);
/* smtp_io_write_timed_out - the last timeout was a write's (for the log) */
bool smtp_io_write_timed_out(const struct smtp_io *io);
/* smtp_io_bytes - bytes read and written so far (either may be NULL) */
void smtp_io_bytes(const struct smtp_io *io, unsigned long long *in, unsigned long long *out);

#endif
