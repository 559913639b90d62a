/*
 * fdio.h - writing a whole buffer to a descriptor
 *
 * write(2) may write less than asked (a pipe, a signal, a full disk);
 * every caller that means "all of it" (the spool, the mbox append, the
 * spool's pipe to the delivery command) uses fdio_write_all, which
 * retries after EINTR and a short write and stops at the first error,
 * saying how much was written before it: the mbox append truncates
 * that much back, the spool's pipe falls back to a file on EAGAIN.
 */
#ifndef SMTPIPE_FDIO_H
#define SMTPIPE_FDIO_H

#include <stddef.h>

/* fdio_write_all - write n bytes of buf to fd: 0, or -1 with errno set
 * (EAGAIN for a non-blocking descriptor that is full); *done (if not
 * NULL) is the number of bytes written either way */
int fdio_write_all(int fd, const void *buf, size_t n, size_t *done);

struct fdio_block {
	char *buf; /* cap bytes, the caller's */
	size_t cap;
	size_t len;  /* bytes waiting in buf */
	size_t used; /* the most of buf ever filled: fdio_block_wipe */
	/* write buf[0..len) and set len to 0: 0, or -1 to stop */
	int (*flush)(struct fdio_block *b);
};

/* fdio_block_put - n bytes of p into b, flushed each time b is full:
 * 0, or -1 when a flush failed */
int fdio_block_put(struct fdio_block *b, const void *p, size_t n);
/* fdio_block_wipe - zero as much of b's buffer as was ever filled (a
 * message's text), and empty it */
void fdio_block_wipe(struct fdio_block *b);

#endif
