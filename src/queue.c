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

/* --- pure functions ------------------------------------------------------ */

/* plain - a byte that queue_encode leaves as it is */
static bool plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%' && c != '=';
}

/* queue_encode - see queue.h */
size_t queue_encode(char *dst, size_t cap, const char *src, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t k = plain(c) ? 1 : 3;
		if (o + k >= cap)
			return (size_t)-1;
		if (k == 1) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (o >= cap)
		return (size_t)-1;
	dst[o] = '\0';
	return o;
}

/* hexval - one hex digit's value, or -1 */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* queue_decode - see queue.h */
int queue_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		*o++ = (char)(hi << 4 | lo);
		p += 2;
	}
	*o = '\0';
	return 0;
}

/* put_field - "key=ENCODED\n" appended to the malloc'ed buffer; -1 on ENOMEM */
static int put_field(char **buf, size_t *len, size_t *cap, const char *key, const char *val)
{
	size_t vl = strlen(val), need = *len + strlen(key) + 1 + vl * 3 + 2;
	if (need > *cap) {
		size_t nc = *cap * 2 > need ? *cap * 2 : need;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	*len += (size_t)sprintf(*buf + *len, "%s=", key);
	*len += queue_encode(*buf + *len, *cap - *len, val, vl);
	(*buf)[(*len)++] = '\n';
	return 0;
}

/* queue_env_format - see queue.h */
char *queue_env_format(const struct delivery *d, const char *id, long long arrival, size_t *len)
{
	size_t cap = 512, n = 0;
	char *buf = malloc(cap), num[32];
	if (!buf)
		return NULL;
	n = (size_t)sprintf(buf, "smtpipe-queue=1\n");
	snprintf(num, sizeof(num), "%lld", arrival);
	int rc = put_field(&buf, &n, &cap, "id", id) | put_field(&buf, &n, &cap, "arrival", num) |
	         put_field(&buf, &n, &cap, "sender", d->sender);
	if (d->client)
		rc |= put_field(&buf, &n, &cap, "client", d->client);
	if (d->listener)
		rc |= put_field(&buf, &n, &cap, "listener", d->listener);
	if (d->client_uid >= 0) {
		snprintf(num, sizeof(num), "%ld", d->client_uid);
		rc |= put_field(&buf, &n, &cap, "client-uid", num);
	}
	if (d->auth_user)
		rc |= put_field(&buf, &n, &cap, "auth-user", d->auth_user);
	for (size_t i = 0; i < d->nrcpt && rc == 0; i++)
		rc |= put_field(&buf, &n, &cap, "rcpt", d->rcpts[i]);
	if (rc) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* number - a whole decimal number (a leading '-' with negative); -1 if not */
static int number(const char *s, bool negative, long long *v)
{
	char *end;
	if (!*s || (!negative && *s == '-') || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* next_line - the next "key=value" line of *p (split in place); false at the end */
static bool next_line(char **p, char *end, char **key, char **val)
{
	if (*p >= end)
		return false;
	char *nl = memchr(*p, '\n', (size_t)(end - *p));
	char *line = *p;
	if (!nl)
		nl = end;
	*nl = '\0';
	*p = nl + 1;
	char *eq = strchr(line, '=');
	*key = line;
	*val = eq ? eq + 1 : NULL;
	if (eq)
		*eq = '\0';
	return true;
}

/* queue_env_parse - see queue.h */
int queue_env_parse(char *text, size_t len, struct queue_env *e)
{
	memset(e, 0, sizeof(*e));
	e->client_uid = -1;
	e->text = text;
	if (memchr(text, '\0', len))
		return -1;
	size_t cap = 0;
	char *p = text, *end = text + len, *key, *val;
	bool magic = false, has_id = false, has_arrival = false;
	while (next_line(&p, end, &key, &val)) {
		if (!val || queue_decode(val) < 0)
			return -1;
		long long v;
		if (strcmp(key, "smtpipe-queue") == 0) {
			magic = strcmp(val, "1") == 0;
		} else if (strcmp(key, "id") == 0) {
			if (!queue_id_valid(val))
				return -1;
			memcpy(e->id, val, QUEUE_ID_LEN + 1);
			has_id = true;
		} else if (strcmp(key, "arrival") == 0) {
			if (number(val, false, &e->arrival) < 0)
				return -1;
			has_arrival = true;
		} else if (strcmp(key, "sender") == 0) {
			e->sender = val;
		} else if (strcmp(key, "client") == 0) {
			e->client = val;
		} else if (strcmp(key, "listener") == 0) {
			e->listener = val;
		} else if (strcmp(key, "auth-user") == 0) {
			e->auth_user = val;
		} else if (strcmp(key, "client-uid") == 0) {
			if (number(val, false, &v) < 0 || v > LONG_MAX)
				return -1;
			e->client_uid = (long)v;
		} else if (strcmp(key, "rcpt") == 0) {
			if (e->nrcpt == cap) {
				cap = cap ? cap * 2 : 8;
				const char **r = realloc(e->rcpts, cap * sizeof(*r));
				if (!r)
					return -1;
				e->rcpts = r;
			}
			e->rcpts[e->nrcpt++] = val;
		} /* an unknown key: from a later version, ignored */
	}
	if (!magic || !has_id || !has_arrival || !e->sender || e->nrcpt == 0)
		return -1;
	return 0;
}

/* queue_env_free - see queue.h */
void queue_env_free(struct queue_env *e)
{
	free(e->rcpts);
	free(e->text);
	e->rcpts = NULL;
	e->text = NULL;
}

/* queue_state_format - see queue.h */
size_t queue_state_format(const struct queue_state *s, char *buf, size_t cap)
{
	char err[sizeof(s->error) * 3];
	if (queue_encode(err, sizeof(err), s->error, strlen(s->error)) == (size_t)-1)
		return 0;
	int n = snprintf(buf, cap, "attempts=%u\nnext=%lld\nlast-ms=%lld\nsince=%lld\nerror=%s\n",
	                 s->attempts, s->next, s->last_ms, s->since, err);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* queue_state_parse - see queue.h */
int queue_state_parse(const char *text, size_t len, struct queue_state *s)
{
	char buf[1024];
	if (len >= sizeof(buf) || memchr(text, '\0', len))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(s, 0, sizeof(*s));
	char *p = buf, *end = buf + len, *key, *val;
	unsigned seen = 0;
	while (next_line(&p, end, &key, &val)) {
		long long v;
		if (!val || queue_decode(val) < 0)
			return -1;
		if (strcmp(key, "error") == 0) {
			if (strlen(val) >= sizeof(s->error))
				return -1;
			strcpy(s->error, val);
			seen |= 16;
			continue;
		}
		if (number(val, false, &v) < 0)
			return -1;
		if (strcmp(key, "attempts") == 0 && v <= UINT_MAX) {
			s->attempts = (unsigned)v;
			seen |= 1;
		} else if (strcmp(key, "next") == 0) {
			s->next = v;
			seen |= 2;
		} else if (strcmp(key, "last-ms") == 0) {
			s->last_ms = v;
			seen |= 4;
		} else if (strcmp(key, "since") == 0) {
			s->since = v;
			seen |= 8;
		} else if (strcmp(key, "attempts") == 0) {
			return -1;
		}
	}
	return seen == 31 ? 0 : -1;
}

/* queue_backoff - see queue.h */
unsigned long long queue_backoff(unsigned attempts, unsigned retry, unsigned retry_max)
{
	unsigned long long d = retry;
	for (unsigned i = 1; i < attempts && d < retry_max; i++)
		d *= 2;
	return d > retry_max ? retry_max : d;
}

/* queue_expired - see queue.h */
bool queue_expired(long long since, unsigned long long lifetime, long long now)
{
	if (now < since) /* the clock went back: not yet */
		return false;
	return (unsigned long long)(now - since) >= lifetime;
}

/* queue_parse_duration - see queue.h */
int queue_parse_duration(const char *s, unsigned long long *secs)
{
	const unsigned long long most = 10ULL * 366 * 86400;
	unsigned long long v = 0, unit = 1;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > most)
			return -1;
	}
	if (*p) {
		unit = *p == 's' ? 1 : *p == 'm' ? 60 : *p == 'h' ? 3600 : *p == 'd' ? 86400 : 0;
		if (!unit || p[1])
			return -1;
	}
	if (v == 0 || v * unit > most)
		return -1;
	*secs = v * unit;
	return 0;
}

/* queue_id_valid - see queue.h */
bool queue_id_valid(const char *s)
{
	for (size_t i = 0; i < QUEUE_ID_LEN; i++)
		if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i]))
			return false;
	return s[QUEUE_ID_LEN] == '\0';
}

/* queue_new_id - see queue.h */
void queue_new_id(char id[QUEUE_ID_LEN + 1], long long now, long usec)
{
	unsigned long long r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r)) /* blocks only before the pool is ready */
		r = (unsigned long long)clock() ^ (unsigned long long)getpid() << 32;
	snprintf(id, QUEUE_ID_LEN + 1, "%08llX%05lX%012llX",
	         (unsigned long long)now & 0xFFFFFFFFULL, (unsigned long)usec & 0xFFFFFUL,
	         r & 0xFFFFFFFFFFFFULL);
}

/* --- the directory ------------------------------------------------------- */

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
	q->dir = q->tmp = q->q = q->failed = q->lock = -1;
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
	int *fds[] = {&q->dir, &q->tmp, &q->q, &q->failed, &q->lock};
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
 * malloc'ed NUL-terminated buffer; -1 with errno */
static int read_file(int at, const char *name, size_t max, char **buf, size_t *len)
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
	return 0;
}

/* remove_tree - a message directory name in at and the files in it;
 * -1 with errno */
static int remove_tree(int at, const char *name)
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
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(d);
	return unlinkat(at, name, AT_REMOVEDIR);
}

/* copy_spool - the spool's whole content into fd; -1 with errno */
static int copy_spool(struct spool *sp, int fd)
{
	static char buf[QUEUE_BLOCK];
	size_t off = 0;
	for (;;) {
		ssize_t n = spool_read_at(sp, buf, sizeof(buf), off);
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (fdio_write_all(fd, buf, (size_t)n, NULL) < 0)
			return -1;
		off += (size_t)n;
	}
}

/* store - queue_store's work in opened q; -1 with errno and *what
 * saying which step failed */
static int store(const struct queue *q, const struct delivery *d, struct spool *sp, const char *id,
                 long long now, const char **what)
{
	char name[QUEUE_ID_LEN + 32];
	snprintf(name, sizeof(name), "%s.%ld", id, (long)getpid());
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
	if (read_file(mdir, "env", BOUND_QUEUE_ENVELOPE, &text, &len) < 0)
		return -1;
	if (queue_env_parse(text, len, e) < 0) {
		queue_env_free(e);
		errno = EINVAL;
		return -1;
	}
	if (read_file(mdir, "state", 1024, &text, &len) < 0) {
		if (errno != ENOENT) {
			queue_env_free(e);
			return -1;
		}
		memset(s, 0, sizeof(*s));
		s->since = e->arrival;
		return 0;
	}
	int rc = queue_state_parse(text, len, s);
	free(text);
	if (rc < 0) {
		queue_env_free(e);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* queue_state_read - see queue.h */
int queue_state_read(int mdir, struct queue_state *s)
{
	char *text;
	size_t len;
	memset(s, 0, sizeof(*s));
	if (read_file(mdir, "state", 1024, &text, &len) < 0)
		return errno == ENOENT ? 1 : -1;
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
	if (rc == 0) {
		queue_env_free(&e);
		s.attempts = 0;
		s.next = 0;
		s.last_ms = 0;
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
		long long pid;
		bool gone = strcmp(dot, ".del") == 0;
		if (!gone && number(dot + 1, false, &pid) == 0 && pid > 0 && pid <= INT_MAX)
			gone = kill((pid_t)pid, 0) < 0 && errno == ESRCH;
		if (gone && remove_tree(q->tmp, de->d_name) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

/* queue_lock - see queue.h */
int queue_lock(struct queue *q, long *holder)
{
	*holder = 0;
	int fd =
	    openat(q->dir, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		close(fd);
		if (e != EWOULDBLOCK) {
			errno = e;
			return -1;
		}
		long long v;
		if (n > 0) {
			buf[n] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			if (number(buf, false, &v) == 0 && v > 1 && v <= INT_MAX)
				*holder = (long)v;
		}
		return 1;
	}
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	q->lock = fd;
	return 0;
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
	if (fstatat(mdir, "msg", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    queue_msg_read(mdir, &e, &s) < 0) {
		close(mdir);
		return false;
	}
	close(mdir);
	const char *state = where == QUEUE_FAILED ? "failed" : "queued";
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
