/*
 * queue.c - the on-disk queue (queue.h): a directory per message,
 *           made in tmp/ and moved into q/ by one fsynced rename
 *
 * Why a directory per message: the text never changes once queued and
 * the attempts change often, so they live in two files; one rename of
 * the directory that holds both makes them appear (and disappear)
 * together, which two files renamed one after the other could not. The
 * state is replaced whole (state.new, fsync, rename, fsync of the
 * directory), so a reader sees the old state or the new one.
 */
#include "queue.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "fdio.h"
#include "log.h"
#include "spool.h"

#define QUEUE_BLOCK (64 * 1024)

/* pid_in - a process id written as decimal text; false if it is not one */
static bool pid_in(const char *s, long *pid)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 1 || v > INT_MAX)
		return false;
	*pid = v;
	return true;
}

/* open_dir - name under at as a queue directory (made 0700 with
 * create): no symbolic link, owned by us (or anyone, with any_owner),
 * not writable by group or others; fd or -1 with why filled */
static int open_dir(int at, const char *name, bool create, bool any_owner, char *why, size_t cap)
{
	if (create && mkdirat(at, name, 0700) < 0 && errno != EEXIST) {
		snprintf(why, cap, "cannot make %s: %s", name, strerror(errno));
		return -1;
	}
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat ln;
		bool link = fstatat(at, name, &ln, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ln.st_mode);
		snprintf(why, cap, "%s: %s", name,
		         e == ELOOP || link ? "it is a symbolic link"
		         : e == ENOTDIR     ? "not a directory"
		                            : strerror(e));
		errno = e;
		return -1;
	}
	struct stat st;
	const char *bad = NULL;
	if (fstat(fd, &st) < 0)
		bad = strerror(errno);
	else if (st.st_uid != geteuid() && !(any_owner && geteuid() == 0))
		bad = "owned by another user";
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		bad = "writable by group or others";
	if (bad) {
		snprintf(why, cap, "%s: %s", name, bad);
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* queue_open - see queue.h */
int queue_open(struct queue *q, const char *path, bool create, bool any_owner, char *err,
               size_t errlen)
{
	char why[300];
	q->dir = q->tmp = q->q = q->failed = q->lock = q->lock_dir = -1;
	q->path = path;
	char trim[PATH_MAX];
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(trim)) {
		snprintf(err, errlen, "--queue: the path is too long");
		return -1;
	}
	memcpy(trim, path, n);
	trim[n] = '\0';
	if ((q->dir = open_dir(AT_FDCWD, trim, create, any_owner, why, sizeof(why))) >= 0 &&
	    (q->tmp = open_dir(q->dir, "tmp", create, any_owner, why, sizeof(why))) >= 0 &&
	    (q->q = open_dir(q->dir, "q", create, any_owner, why, sizeof(why))) >= 0 &&
	    (q->failed = open_dir(q->dir, "failed", create, any_owner, why, sizeof(why))) >= 0)
		return 0;
	snprintf(err, errlen, "cannot use queue %s: %s", path, why);
	int e = errno;
	queue_close(q);
	errno = e;
	return -1;
}

/* queue_close - see queue.h */
void queue_close(struct queue *q)
{
	int *fds[] = {&q->dir, &q->tmp, &q->q, &q->failed, &q->lock, &q->lock_dir};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

/* write_file - name in at, new (never an old file, never a link), mode
 * 0600, all of buf, fsynced; -1 with errno (nothing left) */
static int write_file(int at, const char *name, const char *buf, size_t len)
{
	int fd = openat(at, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fdio_write_all(fd, buf, len, NULL) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlinkat(at, name, 0);
		errno = e;
		return -1;
	}
	return close(fd);
}

/* read_file - name in at, a regular file of at most max bytes, into a
 * malloc'ed NUL-terminated buffer (and its stat into *sto, when given);
 * -1 with errno */
static int read_file(int at, const char *name, size_t max, char **buf, size_t *len,
                     struct stat *sto)
{
	int fd = openat(at, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	int e = 0;
	*buf = NULL;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if ((size_t)st.st_size > max)
		e = EFBIG;
	else if (!(*buf = malloc((size_t)st.st_size + 1)))
		e = ENOMEM;
	size_t got = 0;
	while (!e && got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (e) {
		free(*buf);
		*buf = NULL;
		errno = e;
		return -1;
	}
	(*buf)[got] = '\0';
	*len = got;
	if (sto)
		*sto = st;
	return 0;
}

/* remove_in - a message directory name in at and the files in it, and
 * those of the directories in it down to depth more levels (a message's
 * staged bounce); -1 with errno */
static int remove_in(int at, const char *name, int depth)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? unlinkat(at, name, 0) : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(fd, de->d_name, 0) < 0 && errno == EISDIR && depth > 0)
			remove_in(fd, de->d_name, depth - 1);
	closedir(d);
	return unlinkat(at, name, AT_REMOVEDIR);
}

/* remove_tree - a message directory name in at, with what it holds; -1
 * with errno */
static int remove_tree(int at, const char *name)
{
	return remove_in(at, name, 1);
}

/* copy_spool - the spool's whole content into fd; -1 with errno */
static int copy_spool(struct spool *sp, int fd)
{
	static char buf[QUEUE_BLOCK];
	size_t off = 0;
	int rc = 0;
	for (;;) {
		ssize_t n = spool_read_at(sp, buf, sizeof(buf), off);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		if (fdio_write_all(fd, buf, (size_t)n, NULL) < 0) {
			rc = -1;
			break;
		}
		off += (size_t)n;
	}
	/* the message's text, gone before the next client (--session-reuse) */
	explicit_bzero(buf, sp->size < sizeof(buf) ? sp->size : sizeof(buf));
	return rc;
}

/* build - a message directory of the spool's content and envelope d,
 * durably, in tmp/name of opened q; -1 with errno, *what saying which
 * step failed, and nothing left */
static int build(const struct queue *q, const struct delivery *d, struct spool *sp, const char *id,
                 long long now, const char *name, const char **what)
{
	*what = "make the message directory in tmp";
	if (mkdirat(q->tmp, name, 0700) < 0)
		return -1;
	int mdir = openat(q->tmp, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int fd = -1, rc = -1;
	size_t elen = 0;
	char *env = NULL;
	if (mdir < 0)
		goto out;
	*what = "write the message";
	fd = openat(mdir, "msg", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || copy_spool(sp, fd) < 0 || fsync(fd) < 0)
		goto out;
	*what = "write the envelope";
	if (!(env = queue_env_format(d, id, now, &elen))) {
		errno = ENOMEM;
		goto out;
	}
	if (write_file(mdir, "env", env, elen) < 0)
		goto out;
	*what = "sync the message directory";
	if (fsync(mdir) < 0)
		goto out;
	rc = 0;
out:;
	int e = errno;
	if (env) /* the envelope, gone before the next client (--session-reuse) */
		explicit_bzero(env, elen);
	free(env);
	if (fd >= 0)
		close(fd);
	if (mdir >= 0)
		close(mdir);
	if (rc < 0)
		remove_tree(q->tmp, name);
	errno = e;
	return rc;
}

/* store - queue_store's work in opened q; -1 with errno and *what
 * saying which step failed */
static int store(const struct queue *q, const struct delivery *d, struct spool *sp, const char *id,
                 long long now, const char **what)
{
	char name[QUEUE_ID_LEN + 32];
	snprintf(name, sizeof(name), "%s.%ld", id, (long)getpid());
	if (build(q, d, sp, id, now, name, what) < 0)
		return -1;
	int rc = -1;
	*what = "move the message into q";
	if (renameat2(q->tmp, name, q->q, id, RENAME_NOREPLACE) < 0)
		goto out;
	*what = "sync q";
	if (fsync(q->q) < 0) { /* not durable: take it back out, the client retries */
		int e = errno;
		if (renameat(q->q, id, q->tmp, name) < 0)
			log_msg(LOG_ERR,
			        "event=queue-error queue-id=%s error=\"cannot take the message "
			        "back after a failed fsync\"",
			        id);
		errno = e;
		goto out;
	}
	rc = 0;
out:;
	int e = errno;
	if (rc < 0) /* not in q: taken back out of tmp too */
		remove_tree(q->tmp, name);
	errno = e;
	return rc;
}

/* queue_store - see queue.h */
void queue_store(const char *path, const struct delivery *d, struct spool *sp,
                 char id[QUEUE_ID_LEN + 1], struct delivery_result *r)
{
	struct queue q;
	char err[512];
	const char *what = "open the queue";
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long now = (long long)ts.tv_sec;
	memset(r, 0, sizeof(*r));
	r->exit_status = -1;
	id[0] = '\0';
	int rc = queue_open(&q, path, false, false, err, sizeof(err));
	if (rc == 0) {
		char nid[QUEUE_ID_LEN + 1];
		queue_new_id(nid, now, ts.tv_nsec / 1000);
		rc = store(&q, d, sp, nid, now, &what);
		if (rc == 0)
			memcpy(id, nid, sizeof(nid));
		else
			snprintf(err, sizeof(err), "cannot %s: %s", what, strerror(errno));
		int e = errno;
		queue_close(&q);
		errno = e;
	}
	if (rc == 0) {
		r->code = 250;
		snprintf(r->text, sizeof(r->text), "2.0.0 Ok: queued as %s", id);
		return;
	}
	bool full = errno == ENOSPC || errno == EDQUOT;
	log_msg(LOG_ERR, "event=queue-error queue=%s error=\"%s\"", path, err);
	r->code = full ? 452 : 451;
	snprintf(r->text, sizeof(r->text), "%s",
	         full ? "4.3.1 Insufficient system storage" : "4.3.0 Cannot queue the message");
}

/* queue_bounce_stage - see queue.h */
int queue_bounce_stage(const struct queue *q, int mdir, const struct delivery *d, struct spool *sp,
                       char id[QUEUE_ID_LEN + 1], char *err, size_t errlen)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char name[QUEUE_ID_LEN + 32];
	const char *what = "replace a bounce left in the message";
	queue_new_id(id, (long long)ts.tv_sec, ts.tv_nsec / 1000);
	snprintf(name, sizeof(name), "%s.%ld", id, (long)getpid());
	/* a bounce made by an attempt cut before its state said so: it
	 * never left the message, so it is made anew */
	if ((remove_in(mdir, QUEUE_BOUNCE, 0) < 0 && errno != ENOENT) ||
	    build(q, d, sp, id, (long long)ts.tv_sec, name, &what) < 0)
		goto fail;
	what = "move the bounce into the message";
	if (renameat2(q->tmp, name, mdir, QUEUE_BOUNCE, RENAME_NOREPLACE) < 0) {
		int e = errno;
		remove_tree(q->tmp, name);
		errno = e;
		goto fail;
	}
	what = "sync the message directory";
	if (fsync(mdir) < 0)
		goto fail;
	return 0;
fail:;
	int e = errno;
	snprintf(err, errlen, "cannot %s: %s", what, strerror(e));
	errno = e;
	return -1;
}

/* queue_bounce_drop - see queue.h */
void queue_bounce_drop(int mdir)
{
	remove_in(mdir, QUEUE_BOUNCE, 0);
}

/* queue_bounce_queue - see queue.h */
int queue_bounce_queue(const struct queue *q, int mdir, const char *id)
{
	if (renameat2(mdir, QUEUE_BOUNCE, q->q, id, RENAME_NOREPLACE) < 0)
		return errno == ENOENT ? 1 : -1;
	return fsync(q->q) < 0 || fsync(mdir) < 0 ? -1 : 0;
}

/* queue_msg_open - see queue.h */
int queue_msg_open(const struct queue *q, enum queue_where where, const char *id, int *mdir,
                   int *msg)
{
	int at = where == QUEUE_Q ? q->q : q->failed;
	*mdir = *msg = -1;
	if (!queue_id_valid(id)) {
		errno = ENOENT;
		return -1;
	}
	int m = openat(at, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (m < 0)
		return -1;
	int f = openat(m, "msg", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (f < 0) {
		int e = errno;
		close(m);
		errno = e;
		return -1;
	}
	if (flock(f, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(f);
		close(m);
		if (e == EWOULDBLOCK)
			return 1;
		errno = e;
		return -1;
	}
	/* still there once locked: a removal takes the lock before its rename */
	struct stat a, b;
	if (fstat(m, &a) < 0 || fstatat(at, id, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(f);
		close(m);
		errno = ENOENT;
		return -1;
	}
	*mdir = m;
	*msg = f;
	return 0;
}

/* queue_msg_read - see queue.h */
int queue_msg_read(int mdir, struct queue_env *e, struct queue_state *s)
{
	char *text;
	size_t len;
	memset(e, 0, sizeof(*e));
	if (read_file(mdir, "env", BOUND_QUEUE_ENVELOPE, &text, &len, NULL) < 0)
		return -1;
	if (queue_env_parse(text, len, e) < 0) {
		queue_env_free(e);
		errno = EINVAL;
		return -1;
	}
	int rc = read_file(mdir, "state", 1024, &text, &len, NULL);
	if (rc == 0) {
		rc = queue_state_parse(text, len, s);
		free(text);
	} else if (errno == ENOENT) {
		memset(s, 0, sizeof(*s)); /* nothing tried yet */
		s->since = e->arrival;
		return 0;
	}
	if (rc < 0) { /* unreadable or garbled: started anew */
		memset(s, 0, sizeof(*s));
		s->since = e->arrival;
		return 1;
	}
	return 0;
}

/* queue_state_read - see queue.h */
int queue_state_read(int mdir, struct queue_state *s, long long *written)
{
	char *text;
	size_t len;
	struct stat st;
	memset(s, 0, sizeof(*s));
	*written = 0;
	if (read_file(mdir, "state", 1024, &text, &len, &st) < 0)
		return errno == ENOENT ? 1 : -1;
	*written = (long long)st.st_ctim.tv_sec;
	int rc = queue_state_parse(text, len, s);
	free(text);
	if (rc < 0)
		errno = EINVAL;
	return rc;
}

/* queue_state_write - see queue.h */
int queue_state_write(int mdir, const struct queue_state *s)
{
	char buf[1024];
	size_t n = queue_state_format(s, buf, sizeof(buf));
	if (!n) {
		errno = EOVERFLOW;
		return -1;
	}
	unlinkat(mdir, "state.new", 0); /* a leftover of a crash */
	if (write_file(mdir, "state.new", buf, n) < 0)
		return -1;
	if (renameat(mdir, "state.new", mdir, "state") < 0) {
		int e = errno;
		unlinkat(mdir, "state.new", 0);
		errno = e;
		return -1;
	}
	return fsync(mdir);
}

/* queue_remove - see queue.h */
int queue_remove(const struct queue *q, enum queue_where where, const char *id)
{
	int at = where == QUEUE_Q ? q->q : q->failed;
	char del[QUEUE_ID_LEN + 8];
	snprintf(del, sizeof(del), "%s.del", id);
	remove_tree(q->tmp, del); /* a leftover of an earlier crash */
	if (renameat(at, id, q->tmp, del) < 0 || fsync(at) < 0)
		return -1;
	remove_tree(q->tmp, del); /* what is left is cleaned at the next start */
	return 0;
}

/* queue_fail - see queue.h */
int queue_fail(const struct queue *q, const char *id)
{
	if (renameat2(q->q, id, q->failed, id, RENAME_NOREPLACE) < 0)
		return -1;
	if (fsync(q->failed) < 0 || fsync(q->q) < 0)
		return -1;
	return 0;
}

/* queue_requeue - see queue.h */
int queue_requeue(const struct queue *q, const char *id)
{
	int mdir, msg;
	int rc = queue_msg_open(q, QUEUE_FAILED, id, &mdir, &msg);
	if (rc != 0)
		return rc;
	struct queue_env e;
	struct queue_state s;
	rc = queue_msg_read(mdir, &e, &s);
	if (rc >= 0) { /* a garbled state is replaced here anyway */
		queue_env_free(&e);
		s.attempts = 0;
		s.next = 0;
		s.last_ms = 0;
		s.gave_up = QUEUE_LIVE; /* given up on once: live again */
		s.bounce[0] = '\0';
		s.since = (long long)time(NULL);
		rc = queue_state_write(mdir, &s);
		struct stat st;
		/* root administering another user's queue: the file stays theirs */
		if (rc == 0 && geteuid() == 0 && fstat(q->dir, &st) == 0 && st.st_uid != 0) {
			int sf = openat(mdir, "state", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (sf >= 0) {
				if (fchown(sf, st.st_uid, st.st_gid) < 0)
					rc = -1;
				close(sf);
			}
		}
	}
	if (rc == 0 && (renameat2(q->failed, id, q->q, id, RENAME_NOREPLACE) < 0 ||
	                fsync(q->q) < 0 || fsync(q->failed) < 0))
		rc = -1;
	int e2 = errno;
	close(msg);
	close(mdir);
	errno = e2;
	return rc;
}

/* cmp_id - qsort: by name, which is by arrival second */
static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* queue_ids - see queue.h */
char (*queue_ids(const struct queue *q, enum queue_where where, size_t *n))[QUEUE_ID_LEN + 1]
{
	int fd =
	    openat(where == QUEUE_Q ? q->q : q->failed, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*n = 0;
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return NULL;
	}
	size_t cap = 0;
	char(*ids)[QUEUE_ID_LEN + 1] = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			char(*m)[QUEUE_ID_LEN + 1] = realloc(ids, cap * sizeof(*ids));
			if (!m) {
				free(ids);
				closedir(d);
				*n = 0;
				errno = ENOMEM;
				return NULL;
			}
			ids = m;
		}
		memcpy(ids[(*n)++], de->d_name, QUEUE_ID_LEN + 1);
	}
	closedir(d);
	if (ids)
		qsort(ids, *n, sizeof(*ids), cmp_id);
	return ids;
}

/* queue_clean_tmp - see queue.h */
unsigned queue_clean_tmp(const struct queue *q)
{
	int fd = openat(q->tmp, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	unsigned removed = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *dot = strchr(de->d_name, '.');
		char id[QUEUE_ID_LEN + 1];
		if (!dot || dot - de->d_name != QUEUE_ID_LEN)
			continue;
		memcpy(id, de->d_name, QUEUE_ID_LEN);
		id[QUEUE_ID_LEN] = '\0';
		if (!queue_id_valid(id))
			continue;
		long pid;
		bool gone = strcmp(dot, ".del") == 0;
		if (!gone && pid_in(dot + 1, &pid))
			gone = kill((pid_t)pid, 0) < 0 && errno == ESRCH;
		if (gone && remove_tree(q->tmp, de->d_name) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

/* open_lock - open DIR/lock (made with create), a regular file; fd,
 * or -1 with errno */
static int open_lock(const struct queue *q, bool create)
{
	int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (create ? O_CREAT : 0);
	int fd = openat(q->dir, "lock", flags, 0600);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* read_holder - the pid that the lock file fd names into *holder (left
 * alone when it names none) */
static void read_holder(int fd, long *holder)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		pid_in(buf, holder);
	}
}

/* write_pid - our pid, alone, into the lock file fd; -1 with errno */
static int write_pid(int fd)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	return ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n ? -1 : 0;
}

/* queue_lock - see queue.h */
int queue_lock(struct queue *q, bool create, long *holder)
{
	*holder = 0;
	int fd = open_lock(q, create);
	if (fd < 0)
		return -1;
	int d = openat(q->dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0 || flock(d, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (d >= 0)
			close(d);
		d = -1;
		if (e == EWOULDBLOCK) { /* a runner, whatever became of its file */
			read_holder(fd, holder);
			close(fd);
			return 1;
		}
		/* no flock on a directory here (some network filesystems):
		 * the file alone, as before */
		log_msg(LOG_WARNING, "event=queue-lock-dir-unsupported queue=%s error=\"%s\"",
		        q->path, strerror(e));
	}
	int rc = 0, e = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) { /* a runner of an earlier version */
		e = errno;
		rc = e == EWOULDBLOCK ? 1 : -1;
		if (rc == 1)
			read_holder(fd, holder);
	} else if (write_pid(fd) < 0) {
		e = errno;
		rc = -1;
	}
	if (rc != 0) {
		close(fd);
		if (d >= 0)
			close(d);
		errno = e;
		return rc;
	}
	q->lock = fd;
	q->lock_dir = d;
	return 0;
}

/* queue_lock_check - see queue.h */
int queue_lock_check(struct queue *q)
{
	struct stat a, b;
	if (q->lock < 0)
		return 0;
	if (fstat(q->lock, &a) == 0 && fstatat(q->dir, "lock", &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return 0;
	int fd = open_lock(q, true);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || write_pid(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(q->lock);
	q->lock = fd;
	return 1;
}

/* json_string - s as a JSON string: printable ASCII as it is, every
 * other byte as \u00XX */
static void json_string(FILE *out, const char *s)
{
	putc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p > 0x7e)
			fprintf(out, "\\u%04x", *p);
		else
			putc(*p, out);
	}
	putc('"', out);
}

/* list_one - one message's line or JSON object; false when it is gone */
static bool list_one(const struct queue *q, enum queue_where where, const char *id, bool json,
                     bool first, long long now, FILE *out)
{
	int at = where == QUEUE_Q ? q->q : q->failed;
	int mdir = openat(at, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (mdir < 0)
		return false;
	struct queue_env e;
	struct queue_state s;
	struct stat st;
	const char *state = where == QUEUE_FAILED ? "failed" : "queued";
	if (fstatat(mdir, "msg", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    queue_msg_read(mdir, &e, &s) < 0) {
		/* its files removed or garbled by hand: shown, so that it can
		 * be seen and deleted, never silently hidden */
		close(mdir);
		if (json)
			fprintf(
			    out,
			    "%s\n  {\"id\": \"%s\", \"state\": \"%s\", \"arrival\": null, "
			    "\"age\": null, \"size\": null, \"sender\": null, \"recipients\": [], "
			    "\"attempts\": 0, \"next_attempt\": 0, \"last_error\": \"unreadable\"}",
			    first ? "" : ",", id, state);
		else
			fprintf(out, "%s %-6s unreadable\n", id, state);
		return true;
	}
	close(mdir);
	long long age = now - e.arrival;
	if (json) {
		fprintf(out,
		        "%s\n  {\"id\": \"%s\", \"state\": \"%s\", \"arrival\": %lld, "
		        "\"age\": %lld, \"size\": %lld, \"sender\": ",
		        first ? "" : ",", e.id, state, e.arrival, age, (long long)st.st_size);
		json_string(out, e.sender);
		fputs(", \"recipients\": [", out);
		for (size_t i = 0; i < e.nrcpt; i++) {
			fputs(i ? ", " : "", out);
			json_string(out, e.rcpts[i]);
		}
		fprintf(out,
		        "], \"attempts\": %u, \"next_attempt\": %lld, \"last_error\": ", s.attempts,
		        s.next);
		json_string(out, s.error);
		fputs("}", out);
	} else {
		char sender[BOUND_PATH * 4 + 8], text[sizeof(s.error) * 4 + 8];
		log_escape(sender, sizeof(sender), e.sender, strlen(e.sender));
		fprintf(out, "%s %-6s age=%llds size=%lld attempts=%u from=<%s> to=", e.id, state,
		        age, (long long)st.st_size, s.attempts, sender);
		for (size_t i = 0; i < e.nrcpt; i++) {
			char r[BOUND_PATH * 4 + 8];
			log_escape(r, sizeof(r), e.rcpts[i], strlen(e.rcpts[i]));
			fprintf(out, "%s<%s>", i ? "," : "", r);
		}
		log_escape(text, sizeof(text), s.error, strlen(s.error));
		fprintf(out, " last-error=\"%s\"\n", text);
	}
	queue_env_free(&e);
	return true;
}

/* queue_list - see queue.h */
int queue_list(const struct queue *q, bool json, long long now, FILE *out)
{
	bool first = true;
	if (json)
		fputs("[", out);
	for (int w = QUEUE_Q; w <= QUEUE_FAILED; w++) {
		size_t n;
		char(*ids)[QUEUE_ID_LEN + 1] = queue_ids(q, (enum queue_where)w, &n);
		for (size_t i = 0; i < n; i++)
			if (list_one(q, (enum queue_where)w, ids[i], json, first, now, out))
				first = false;
		free(ids);
	}
	if (json)
		fputs(first ? "]\n" : "\n]\n", out);
	return fflush(out) == 0 ? 0 : -1;
}
