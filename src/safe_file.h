/*
 * safe_file.h - open a file or directory of ours that may sit in a
 *               directory others can write
 *
 * The mailbox, a Maildir's directories, --log=FILE, the pid file, the
 * AUTH brake's state and --auth-file may all be named in a shared
 * directory (/tmp, /run) where another local user can plant something
 * first. safe_file_open opens without following a final symbolic link
 * (O_NOFOLLOW) and without waiting on a FIFO (O_NONBLOCK, cleared once
 * the descriptor is known to be what it should be), then checks the
 * open descriptor (fstat, no race with the name): the right type, the
 * owner, no forbidden mode bits, no second hard link, as the caller's
 * rules say. Anything else is closed again and refused.
 *
 * Results: a descriptor (O_CLOEXEC), or -1 with why filled (a short
 * reason, without the path: the caller says what and where) and errno
 * set: the open's errno, or EPERM for a file the rules refuse. The
 * reasons are fixed texts that tests and users grep for: "it is a
 * symbolic link", "not a regular file", "not a directory", "owned by
 * another user", "it has more than one hard link", the rule's own
 * mode_why, else strerror(errno). When the open itself fails, the name
 * is looked at (without following it) to say which of these it was: in
 * a sticky directory the kernel may only say EACCES.
 */
#ifndef SMTPIPE_SAFE_FILE_H
#define SMTPIPE_SAFE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

struct safe_file_rules {
	bool directory;       /* a directory (O_DIRECTORY), else a regular file */
	bool root_may_own;    /* root's besides ours (else ours only) */
	bool one_link;        /* refuse a file with another hard link */
	mode_t forbidden;     /* refuse when any of these mode bits is set */
	const char *mode_why; /* the reason then */
};

/* safe_file_open - name under at (AT_FDCWD: a path) with flags (the
 * access mode, O_CREAT, O_APPEND...; the safety flags are added) and
 * mode for a file it creates; st (if not NULL) gets the file's status */
int safe_file_open(int at, const char *name, int flags, mode_t mode,
                   const struct safe_file_rules *rules, struct stat *st, char *why, size_t whylen);

#endif
