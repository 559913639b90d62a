/*
 * deliver_maildir.c - one message into a Maildir: tmp/, fsync, new/,
 *                     fsync of new/, then 250
 *
 * The name is the one qmail's and Dovecot's readers know: seconds,
 * "M" microseconds, "P" pid, "Q" a counter of this process, the host,
 * and ",S=" the file's size (which lets Dovecot skip a stat). Every
 * session is a process of its own, so pid, time and counter make it
 * unique; O_EXCL in tmp/ and a move into new/ that never replaces
 * (renameat2 RENAME_NOREPLACE, or link+unlink where the file system has
 * no such rename) keep two writers from ever sharing a file. The
 * directories are opened one by one (openat, O_NOFOLLOW) and checked
 * on every delivery, so a symbolic link planted in a shared directory
 * never leads a root daemon elsewhere, and a test that removes the
 * Maildir between two messages gets a new one.
 */
#include "deliver_maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "deliver_mbox.h"
#include "fdio.h"
#include "log.h"
#include "safe_file.h"
#include "spool.h"

#define MAILDIR_BLOCK (64 * 1024)
#define MAILDIR_TRIES 8 /* names tried in tmp/ before giving up */

/* A Maildir's directories: owned by us or root, not writable by
 * everyone, never reached through a symbolic link (safe_file.h) */
static const struct safe_file_rules dir_rules = {.directory = true,
                                                 .root_may_own = true,
                                                 .forbidden = S_IWOTH,
                                                 .mode_why = "writable by every user"};

/* open_dir - name under at (AT_FDCWD: a path) as a directory of ours,
 * made (0700) when missing; the descriptor, or -1 with why filled
 * (naming the directory by label: no path, so why is safe to log as it
 * is) and errno set */
static int open_dir(int at, const char *name, const char *label, char *why, size_t cap)
{
	if (mkdirat(at, name, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(why, cap, "cannot make %s: %s", label, strerror(e));
		errno = e;
		return -1;
	}
	char bad[96];
	int fd = safe_file_open(at, name, O_RDONLY, 0, &dir_rules, NULL, bad, sizeof(bad));
	if (fd < 0) {
		int e = errno;
		snprintf(why, cap, "%s: %s", label, bad);
		errno = e;
	}
	return fd;
}

/* trimmed - path without trailing slashes (a trailing slash would make
 * open() follow a final symbolic link whatever O_NOFOLLOW says); NULL
 * when it does not fit */
static const char *trimmed(const char *path, char *buf, size_t cap)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= cap)
		return NULL;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return buf;
}

/* open_maildir - DIR, and in it tmp and new (cur made and checked);
 * 0, or -1 with why filled and the opened ones closed */
static int open_maildir(const char *path, int *dfd, int *tfd, int *nfd, char *why, size_t cap)
{
	char buf[PATH_MAX];
	const char *dir = trimmed(path, buf, sizeof(buf));
	*dfd = *tfd = *nfd = -1;
	if (!dir) {
		snprintf(why, cap, "the path is too long");
		errno = ENAMETOOLONG;
		return -1;
	}
	int cfd = -1;
	if ((*dfd = open_dir(AT_FDCWD, dir, "the Maildir", why, cap)) >= 0 &&
	    (*tfd = open_dir(*dfd, "tmp", "tmp", why, cap)) >= 0 &&
	    (*nfd = open_dir(*dfd, "new", "new", why, cap)) >= 0 &&
	    (cfd = open_dir(*dfd, "cur", "cur", why, cap)) >= 0) {
		close(cfd);
		return 0;
	}
	int e = errno;
	for (int *fd = dfd; fd; fd = fd == dfd ? tfd : fd == tfd ? nfd : NULL)
		if (*fd >= 0) {
			close(*fd);
			*fd = -1;
		}
	errno = e;
	return -1;
}

/* deliver_maildir_check - see deliver_maildir.h */
int deliver_maildir_check(const char *dir, char *err, size_t errlen)
{
	char why[256];
	int dfd, tfd, nfd;
	if (open_maildir(dir, &dfd, &tfd, &nfd, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot use Maildir %s: %s", dir, why);
		return -1;
	}
	close(nfd);
	close(tfd);
	close(dfd);
	return 0;
}

/* deliver_maildir_name - see deliver_maildir.h */
size_t deliver_maildir_name(char *buf, size_t cap, long long sec, long usec, long pid,
                            unsigned long counter, const char *host, size_t size)
{
	int n = snprintf(buf, cap, "%lld.M%06ldP%ldQ%lu.", sec, usec, pid, counter);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	size_t o = (size_t)n;
	for (const char *h = host; *h; h++) {
		const char *esc = *h == '/'    ? "\\057"
		                  : *h == ':'  ? "\\072"
		                  : *h == ','  ? "\\054"
		                  : *h == '\\' ? "\\134"
		                               : NULL;
		size_t k = esc ? 4 : 1;
		if (o + k >= cap)
			return 0;
		memcpy(buf + o, esc ? esc : h, k);
		o += k;
	}
	n = snprintf(buf + o, cap - o, ",S=%zu", size);
	if (n < 0 || (size_t)n >= cap - o)
		return 0;
	return o + (size_t)n;
}

/* The message into the file in blocks; with fd -1 only counted (the
 * size of the envelope headers, for the file's name). */
struct wbuf {
	struct fdio_block b; /* first: wbuf_flush is handed the block */
	int fd;
	size_t total;
};

/* wbuf_flush - write what is buffered, all of it */
static int wbuf_flush(struct fdio_block *b)
{
	const struct wbuf *w = (const struct wbuf *)b;
	int rc = fdio_write_all(w->fd, b->buf, b->len, NULL);
	b->len = 0;
	return rc;
}

/* wbuf_put - a deliver_put_fn: buffer (or only count) n bytes */
static int wbuf_put(void *arg, const char *p, size_t n)
{
	struct wbuf *w = arg;
	w->total += n;
	return w->fd < 0 ? 0 : fdio_block_put(&w->b, p, n);
}

/* write_message - envelope headers and the spool as it is, into fd */
static int write_message(int fd, const struct delivery *d, struct spool *sp)
{
	static char block[MAILDIR_BLOCK], in[MAILDIR_BLOCK];
	static struct wbuf w = {.b = {.buf = block, .cap = sizeof(block), .flush = wbuf_flush}};
	w.fd = fd;
	w.b.len = 0;
	w.total = 0;
	int rc = deliver_envelope_headers(d, wbuf_put, &w) < 0 ? -1 : 0;
	for (size_t off = 0; rc == 0;) {
		ssize_t n = spool_read_at(sp, in, sizeof(in), off);
		if (n <= 0) {
			rc = n < 0 ? -1 : wbuf_flush(&w.b);
			break;
		}
		off += (size_t)n;
		rc = wbuf_put(&w, in, (size_t)n) < 0 ? -1 : 0;
	}
	/* the message's text, gone before the next client (--session-reuse) */
	fdio_block_wipe(&w.b);
	explicit_bzero(in, sp->size < sizeof(in) ? sp->size : sizeof(in));
	return rc;
}

/* header_size - the bytes deliver_envelope_headers gives for d */
static size_t header_size(const struct delivery *d)
{
	static struct wbuf count = {.fd = -1};
	count.total = 0;
	deliver_envelope_headers(d, wbuf_put, &count);
	return count.total;
}

/* move_new - tmp/name to new/name, never replacing a file there */
static int move_new(int tfd, int nfd, const char *name)
{
	if (renameat2(tfd, name, nfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (linkat(tfd, name, nfd, name, 0) < 0)
		return -1;
	unlinkat(tfd, name, 0);
	return 0;
}

/* store - the steps of deliver_maildir_run; 0, or an errno with why
 * filled; nothing is left behind in new/ or tmp/ on failure */
static int store(const char *path, const char *host, const struct delivery *d, struct spool *sp,
                 char *why, size_t cap)
{
	static unsigned long counter;
	int dfd, tfd, nfd, fd = -1, err = 0;
	char name[NAME_MAX + 1];
	if (open_maildir(path, &dfd, &tfd, &nfd, why, cap) < 0)
		return errno;
	size_t size = header_size(d) + sp->size;
	for (int i = 0; i < MAILDIR_TRIES && fd < 0; i++) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		if (!deliver_maildir_name(name, sizeof(name), (long long)tv.tv_sec,
		                          (long)tv.tv_usec, (long)getpid(), ++counter, host,
		                          size)) {
			err = ENAMETOOLONG;
			break;
		}
		fd = openat(tfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		err = fd < 0 ? errno : 0;
		if (fd < 0 && err != EEXIST)
			break;
	}
	if (fd < 0) {
		snprintf(why, cap, "cannot create a file in tmp: %s", strerror(err));
		goto out;
	}
	bool moved = false;
	errno = 0;
	int w = write_message(fd, d, sp) < 0 || fsync(fd) < 0 ? -1 : 0;
	err = w < 0 ? (errno ? errno : EIO) : 0;
	if (close(fd) < 0 && !err) /* closed either way (Linux) */
		err = errno;
	if (err) {
		snprintf(why, cap, "cannot write the message in tmp: %s", strerror(err));
	} else if (move_new(tfd, nfd, name) < 0) {
		err = errno;
		snprintf(why, cap, "cannot move the message into new: %s", strerror(err));
	} else if (moved = true, fsync(nfd) < 0) {
		err = errno;
		snprintf(why, cap, "cannot sync new: %s", strerror(err));
	}
	if (err && moved) { /* not durable: taken back, the client tries again */
		unlinkat(nfd, name, 0);
		fsync(nfd);
	} else if (err) {
		unlinkat(tfd, name, 0);
	}
out:
	close(nfd);
	close(tfd);
	close(dfd);
	return err;
}

/* deliver_maildir_run - see deliver_maildir.h */
void deliver_maildir_run(const char *dir, const char *host, const struct delivery *d,
                         struct spool *sp, struct delivery_result *r)
{
	char why[256] = "";
	memset(r, 0, sizeof(*r));
	r->exit_status = -1;
	errno = 0;
	int err = store(dir, host, d, sp, why, sizeof(why));
	if (!err) {
		r->code = 250;
		snprintf(r->text, sizeof(r->text), "2.0.0 Ok: stored in Maildir");
		return;
	}
	char md[1024];
	log_escape(md, sizeof(md), dir, strlen(dir));
	log_msg(LOG_ERR, "event=maildir-error maildir=%s error=\"%s\"", md, why);
	deliver_storage_failed(r, err, "4.3.0 Cannot store in Maildir");
}
