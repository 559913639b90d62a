/*
 * spool.c - hold one whole message, in memory while small, else in an
 *           unlinked file
 *
 * Up to BOUND_SPOOL_MEMORY bytes the content stays in memory and reaches a
 * delivery command through a pipe filled before the command starts,
 * without ever waiting: when the pipe is smaller than the content (a
 * user over fs.pipe-user-pages-soft gets 4-8 KiB), the content moves to
 * a spool file and the command reads that. Larger content spills
 * to an unlinked file in the spool directory, written in large blocks;
 * each reader gets its own descriptor at offset 0, so spool_unread can
 * tell afterwards how much the reader left. Errors are sticky in
 * sp->error so a full disk is answered once, at the end of DATA.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "fdio.h"

#define SPOOL_BLOCK (256 * 1024) /* write size once spilled */

/* spool_init - see spool.h */
void spool_init(struct spool *sp, const char *dir)
{
	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	sp->dir = dir && *dir ? dir : "/tmp";
}

/* spill - move the content to an unlinked file */
static int spill(struct spool *sp)
{
	int fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/smtpipe.XXXXXX", sp->dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return -1;
	sp->fd = fd;
	return 0;
}

/* spool_check - see spool.h: the spill a large message will need, made
 * and dropped now, so that a bad --spool-dir is one line at start-up
 * rather than a 452 for every message over the memory bound */
int spool_check(const char *dir, char *err, size_t errlen)
{
	struct spool sp;
	spool_init(&sp, dir);
	if (spill(&sp) < 0) {
		snprintf(err, errlen, "cannot spool large messages in %s (--spool-dir): %s", sp.dir,
		         strerror(errno));
		return -1;
	}
	close(sp.fd);
	return 0;
}

/* flush_mem - write the memory buffer to the spill file */
static int flush_mem(struct spool *sp)
{
	if (fdio_write_all(sp->fd, sp->mem, sp->mem_len, NULL) < 0)
		return -1;
	sp->mem_len = 0;
	return 0;
}

/* fail - remember the first error */
static int fail(struct spool *sp)
{
	if (!sp->error)
		sp->error = errno ? errno : EIO;
	errno = sp->error;
	return -1;
}

/* spool_write - see spool.h */
int spool_write(struct spool *sp, const void *buf, size_t n)
{
	if (sp->error)
		return fail(sp);
	if (sp->fd < 0 && sp->size + n > BOUND_SPOOL_MEMORY && spill(sp) < 0)
		return fail(sp);
	size_t want = sp->fd < 0 ? BOUND_SPOOL_MEMORY : SPOOL_BLOCK;
	if (!sp->mem || sp->mem_cap < want) {
		char *m = realloc(sp->mem, want);
		if (!m)
			return fail(sp);
		sp->mem = m;
		sp->mem_cap = want;
	}
	const char *p = buf;
	while (n > 0) {
		size_t room = sp->mem_cap - sp->mem_len;
		size_t k = n < room ? n : room;
		memcpy(sp->mem + sp->mem_len, p, k);
		sp->mem_len += k;
		if (sp->mem_len > sp->mem_used)
			sp->mem_used = sp->mem_len;
		sp->size += k;
		p += k;
		n -= k;
		if (sp->mem_len == sp->mem_cap && sp->fd >= 0 && flush_mem(sp) < 0)
			return fail(sp);
	}
	return 0;
}

/* spool_finish - see spool.h */
int spool_finish(struct spool *sp)
{
	if (sp->error)
		return fail(sp);
	if (sp->fd >= 0 && flush_mem(sp) < 0)
		return fail(sp);
	return 0;
}

/* spool_input_fd - see spool.h */
int spool_input_fd(struct spool *sp)
{
	if (sp->fd >= 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", sp->fd);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) { /* no /proc: share the offset, rewound */
			fd = fcntl(sp->fd, F_DUPFD_CLOEXEC, 0);
			if (fd >= 0)
				lseek(fd, 0, SEEK_SET);
		}
		return fd;
	}
	/* The pipe is filled before the command starts, so a write must
	 * never wait: a user over fs.pipe-user-pages-soft gets pipes of 4-8
	 * KiB, and a blocking write would hang the session for good. What
	 * does not fit goes to the spool file instead. */
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fcntl(p[1], F_SETFL, O_NONBLOCK); /* the write end only: the reader blocks */
	int rc = fdio_write_all(p[1], sp->mem, sp->mem_len, NULL);
	int e = errno;
	close(p[1]);
	if (rc == 0)
		return p[0];
	close(p[0]);
	if (e != EAGAIN) {
		errno = e;
		return -1;
	}
	if (spill(sp) < 0 || flush_mem(sp) < 0)
		return fail(sp);
	return spool_input_fd(sp);
}

/* spool_unread - see spool.h */
size_t spool_unread(struct spool *sp, int fd)
{
	if (sp->fd >= 0) {
		off_t pos = lseek(fd, 0, SEEK_CUR);
		return pos < 0 ? (size_t)-1 : sp->size - (size_t)pos;
	}
	int left = 0;
	if (ioctl(fd, FIONREAD, &left) < 0)
		return (size_t)-1;
	return (size_t)left;
}

/* spool_read_at - see spool.h */
ssize_t spool_read_at(struct spool *sp, void *buf, size_t n, size_t off)
{
	if (off >= sp->size)
		return 0;
	if (n > sp->size - off)
		n = sp->size - off;
	if (sp->fd < 0) {
		memcpy(buf, sp->mem + off, n);
		return (ssize_t)n;
	}
	return pread(sp->fd, buf, n, (off_t)off);
}

/* spool_reset - see spool.h */
void spool_reset(struct spool *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	sp->mem_len = 0;
	sp->size = 0;
	sp->error = 0;
}

/* spool_free - see spool.h */
void spool_free(struct spool *sp)
{
	spool_reset(sp);
	if (sp->mem) /* the messages' text, gone before the next client */
		explicit_bzero(sp->mem, sp->mem_used);
	free(sp->mem);
	sp->mem = NULL;
	sp->mem_cap = 0;
}
