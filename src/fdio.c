/*
 * fdio.c - writing a whole buffer to a descriptor (see fdio.h)
 */
#include "fdio.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* fdio_write_all - see fdio.h */
int fdio_write_all(int fd, const void *buf, size_t n, size_t *done)
{
	const char *p = buf;
	size_t left = n;
	int rc = 0;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -1;
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	if (done)
		*done = n - left;
	return rc;
}

/* fdio_block_put - see fdio.h */
int fdio_block_put(struct fdio_block *b, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		size_t k = b->cap - b->len < n ? b->cap - b->len : n;
		memcpy(b->buf + b->len, s, k);
		b->len += k;
		if (b->len > b->used)
			b->used = b->len;
		s += k;
		n -= k;
		if (b->len == b->cap && b->flush(b) < 0)
			return -1;
	}
	return 0;
}

/* fdio_block_wipe - see fdio.h */
void fdio_block_wipe(struct fdio_block *b)
{
	explicit_bzero(b->buf, b->used);
	b->used = 0;
	b->len = 0;
}
