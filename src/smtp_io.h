/*
 * smtp_io.h - bounded line reader, block reader, reply writer, deadlines
 *
 * Reads go through one buffer; before a read that would wait, the reply
 * buffer is written out, which is all RFC 2920 PIPELINING needs: replies
 * to a pipelined group leave together, and nothing waits on a reply that
 * was never sent. a line longer than the caller's bound is
 * consumed up to its LF and reported as too long, never stored whole.
 * Every wait is a poll() deadline of timeout_ms; TLS, once started,
 * sits under the same calls. smtp_io_discard_input drops what is
 * buffered (the plaintext after STARTTLS, RFC 3207 and CVE-2011-0411).
 */
#ifndef SMTPIPE_SMTP_IO_H
#define SMTPIPE_SMTP_IO_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_conn;
struct reply_buf;

#define SMTP_IO_BUFFER (64 * 1024)

enum smtp_io_status {
	SMTP_IO_OK = 1,
	SMTP_IO_EOF = 0,
	SMTP_IO_ERROR = -1, /* errno set */
	SMTP_IO_TIMEOUT = -2,
};

struct smtp_io {
	int fd_in;
	int fd_out;
	int timeout_ms;
	bool not_socket;           /* fd_out is a pipe or file: write(), not send() */
	struct tls_conn *tls;      /* NULL while plaintext */
	struct reply_buf *replies; /* flushed before any read would block */
	const sigset_t *waitmask;  /* signal mask while waiting (ppoll), or NULL */
	char *buf;                 /* SMTP_IO_BUFFER bytes */
	size_t start;              /* first unread byte */
	size_t end;                /* one past the last buffered byte */
	unsigned long long bytes_in;
	unsigned long long bytes_out;
};

int smtp_io_init(struct smtp_io *io, int fd_in, int fd_out, int timeout_ms);
void smtp_io_free(struct smtp_io *io);

/* smtp_io_read_line - next line without its LF or CRLF; *line points
 * into the buffer until the next call. A line longer than max octets
 * (terminator excluded) is skipped up to its LF and returned cut to max
 * with *too_long set. */
enum smtp_io_status smtp_io_read_line(struct smtp_io *io, size_t max, const char **line,
                                      size_t *len, bool *too_long);
/* smtp_io_read_block - whatever is buffered, reading more if nothing
 * is; *data stays valid until smtp_io_consume */
enum smtp_io_status smtp_io_read_block(struct smtp_io *io, const char **data, size_t *len);
void smtp_io_consume(struct smtp_io *io, size_t n);
/* smtp_io_pending - whether input is waiting (buffered here or in TLS,
 * or readable on the descriptor right now) */
bool smtp_io_pending(struct smtp_io *io);
/* smtp_io_discard_input - drop everything buffered (before a TLS handshake) */
void smtp_io_discard_input(struct smtp_io *io);
/* smtp_io_write - write all n bytes (within the deadline) */
enum smtp_io_status smtp_io_write(struct smtp_io *io, const void *data, size_t n);
/* smtp_io_flush - write the reply buffer and empty it */
enum smtp_io_status smtp_io_flush(struct smtp_io *io, struct reply_buf *rb);

#endif
