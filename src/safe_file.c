/*
 * safe_file.c - open a file or directory of ours in a shared directory
 *
 * See safe_file.h for the contract. The checks run on the descriptor,
 * so nothing can be swapped between the check and the use; the look at
 * the name after a failed open only chooses the words of the reason.
 */
#include "safe_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* owned_ok - uid is ours, or root's where the rules allow it */
static bool owned_ok(uid_t uid, const struct safe_file_rules *r)
{
	return uid == geteuid() || (r->root_may_own && uid == 0);
}

/* wrong_type - the reason for a file of the wrong type */
static const char *wrong_type(const struct safe_file_rules *r)
{
	return r->directory ? "not a directory" : "not a regular file";
}

/* open_failed - why the open of name failed with e, in the words the
 * checks on a descriptor would use */
static const char *open_failed(int at, const char *name, int e, const struct safe_file_rules *r)
{
	struct stat ln;
	bool seen = fstatat(at, name, &ln, AT_SYMLINK_NOFOLLOW) == 0;
	bool other_type = seen && (r->directory ? !S_ISDIR(ln.st_mode) : !S_ISREG(ln.st_mode));
	if (e == ELOOP || (seen && S_ISLNK(ln.st_mode)))
		return "it is a symbolic link";
	/* ENXIO: a FIFO with no reader; ENOTDIR and EISDIR only name the
	 * last component when the rules ask for the other type */
	if (e == ENXIO || other_type || (r->directory ? e == ENOTDIR : e == EISDIR))
		return wrong_type(r);
	if (seen && e == EACCES && !owned_ok(ln.st_uid, r))
		return "owned by another user";
	return strerror(e);
}

/* refused - why the open descriptor fd may not be used, or NULL */
static const char *refused(int fd, const struct safe_file_rules *r, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return strerror(errno);
	if (r->directory ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
		return wrong_type(r);
	if (!owned_ok(st->st_uid, r))
		return "owned by another user";
	if (st->st_mode & r->forbidden)
		return r->mode_why;
	if (r->one_link && st->st_nlink != 1)
		return "it has more than one hard link";
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return strerror(errno);
	return NULL;
}

/* safe_file_open - see safe_file.h */
int safe_file_open(int at, const char *name, int flags, mode_t mode,
                   const struct safe_file_rules *rules, struct stat *st, char *why, size_t whylen)
{
	flags |= O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	if (rules->directory)
		flags |= O_DIRECTORY;
	int fd = openat(at, name, flags, mode);
	if (fd < 0) {
		int e = errno;
		snprintf(why, whylen, "%s", open_failed(at, name, e, rules));
		errno = e;
		return -1;
	}
	struct stat own;
	const char *bad = refused(fd, rules, st ? st : &own);
	if (bad) {
		snprintf(why, whylen, "%s", bad);
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}
