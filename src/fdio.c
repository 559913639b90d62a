/*
 * fdio.c - writing a whole buffer to a descriptor (see fdio.h)
 */
#include "fdio.h"

#include <errno.h>
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
