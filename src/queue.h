/*
 * queue.h - the on-disk queue of --queue=DIR: store, read, list,
 *           delete, requeue, the runner's lock
 *
 * Layout (smtpipe(8) QUEUE): DIR/tmp (messages being written, and
 * messages being removed), DIR/q (queued), DIR/failed (bounced or
 * expired), DIR/lock (the runner's lock and its pid). One message is
 * one directory DIR/q/ID holding "msg" (the text as a delivery command
 * gets it: LF lines, the Received: header first; never changed),
 * "env" (the envelope: never changed) and, once tried, "state"
 * (attempts, next attempt, last error; replaced whole by rename) and,
 * for a moment while it is given up on, its bounce (QUEUE_BOUNCE). A
 * message is made in DIR/tmp/ID.PID, its files and the directory
 * fsynced, then moved into DIR/q by one rename and DIR/q fsynced: that
 * rename is the moment it is queued, so a crash before it leaves only
 * a leftover in tmp/ (removed by the next runner) and a crash after it
 * loses nothing. Removal is the reverse: one rename out of q/ into
 * tmp/ID.del, fsync, then the files go.
 *
 * Every directory is opened without following a symbolic link and
 * used only when owned by the effective user (root may administer any
 * queue) and writable by no one else; every file is opened O_NOFOLLOW
 * and made mode 0600. IDs are 25 upper-case hex digits: 8 of the
 * arrival second and 5 of its microsecond (so that names sort in the
 * order of arrival), then 12 random (getrandom); never from a client.
 *
 * A delivery holds an flock on the message's "msg" file: --queue-delete
 * and --queue-requeue take the same lock, so they never pull a message
 * from under a running command. The runner holds an flock on DIR/lock
 * and one on DIR itself, so that two runners never run one queue, even
 * once DIR/lock was removed or replaced (queue_lock).
 *
 * The envelope and state files, and the backoff and expiry arithmetic,
 * are queue_format.h's pure functions.
 */
#ifndef SMTPIPE_QUEUE_H
#define SMTPIPE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "deliver.h"
#include "queue_format.h"

struct spool;

/* An open queue directory. */
struct queue {
	int dir, tmp, q, failed; /* descriptors, -1 when closed */
	int lock;                /* DIR/lock while held, else -1 */
	int lock_dir;            /* DIR itself, locked with it, else -1 */
	const char *path;
};

enum queue_where { QUEUE_Q, QUEUE_FAILED };

/* --- the directory --- */

/* queue_open - open (with create: make, mode 0700) DIR and its tmp, q
 * and failed, each checked as above (any_owner: root administering a
 * queue that another user owns); -1 with err filled */
int queue_open(struct queue *q, const char *path, bool create, bool any_owner, char *err,
               size_t errlen);
/* queue_close - close what is open, the runner's lock included */
void queue_close(struct queue *q);
/* queue_store - make a queued message of the spool's whole content and
 * envelope d, durably, and fill r: 250 "2.0.0 Ok: queued as ID" (id
 * filled), 452 4.3.1 for a full disk or quota, 451 4.3.0 otherwise
 * (logged); nothing is left behind on failure */
void queue_store(const char *path, const struct delivery *d, struct spool *sp,
                 char id[QUEUE_ID_LEN + 1], struct delivery_result *r);
/* The name of a bounce inside the directory of the message it reports
 * on: made there (whole, fsynced), recorded in the message's state,
 * then moved into DIR/q by one rename, so that a failed later step
 * never makes a second one (queue_run.c, give_up). */
#define QUEUE_BOUNCE "bounce"

/* queue_bounce_stage - make a message of the spool's whole content and
 * envelope d (built in tmp/, fsynced) and move it into the message
 * directory mdir as QUEUE_BOUNCE, replacing one left there; 0 with id
 * (its new ID) filled, -1 with errno and err filled */
int queue_bounce_stage(const struct queue *q, int mdir, const struct delivery *d, struct spool *sp,
                       char id[QUEUE_ID_LEN + 1], char *err, size_t errlen);
/* queue_bounce_drop - remove mdir's QUEUE_BOUNCE, if there */
void queue_bounce_drop(int mdir);
/* queue_bounce_queue - move mdir's QUEUE_BOUNCE into DIR/q as id, by
 * one rename, fsynced: 0; 1 when it is not there (queued before); -1
 * with errno */
int queue_bounce_queue(const struct queue *q, int mdir, const char *id);
/* queue_msg_open - open the message directory and "msg" of id in where
 * and take its lock (without waiting): 0; 1 when a delivery holds it;
 * -1 with errno (ENOENT: no such message) */
int queue_msg_open(const struct queue *q, enum queue_where where, const char *id, int *mdir,
                   int *msg);
/* queue_msg_read - env and state of the message directory mdir (state
 * without a file: nothing tried yet, since = arrival): 0; 1 when the
 * state file was unreadable or malformed and so was started anew the
 * same way (the state is bookkeeping, never worth the message); -1 with
 * errno when the envelope is */
int queue_msg_read(int mdir, struct queue_env *e, struct queue_state *s);
/* queue_state_read - the state of mdir alone, and when its file was
 * last written (*written: its ctime, seconds; 0 without a file): 0; 1
 * when nothing was tried yet (s zeroed); -1 with errno */
int queue_state_read(int mdir, struct queue_state *s, long long *written);
/* queue_state_write - replace the state of mdir durably; -1 with errno */
int queue_state_write(int mdir, const struct queue_state *s);
/* queue_remove - take id out of where (one rename, fsynced), then its
 * files; -1 with errno */
int queue_remove(const struct queue *q, enum queue_where where, const char *id);
/* queue_fail - move id from q/ to failed/, fsynced; -1 with errno */
int queue_fail(const struct queue *q, const char *id);
/* queue_requeue - move id from failed/ back to q/, due now, attempts
 * and lifetime started anew; 1 when a delivery holds it, -1 with errno */
int queue_requeue(const struct queue *q, const char *id);
/* queue_ids - the IDs in where, sorted (oldest first); malloc'ed array
 * of *n entries, free() it; NULL with errno on failure (or n 0) */
char (*queue_ids(const struct queue *q, enum queue_where where, size_t *n))[QUEUE_ID_LEN + 1];
/* queue_clean_tmp - remove from tmp/ what no process is writing any
 * more (ID.PID whose PID is gone, ID.del); the number removed */
unsigned queue_clean_tmp(const struct queue *q);
/* queue_lock - take DIR/lock without waiting and write our pid in it:
 * 0; 1 when another process holds it (*holder: its pid, or 0); -1 with
 * errno (ENOENT: no lock file, and create false). DIR itself is locked
 * too (flock on the directory), and first: a file can be removed or
 * replaced under its holder, and the next runner would then lock a new
 * one; the directory cannot be, so two runners never run one queue.
 * The file is kept for the pid (--queue-flush) and for runners of
 * earlier versions, which lock only it. */
int queue_lock(struct queue *q, bool create, long *holder);
/* queue_lock_check - whether DIR/lock is still the file q holds; when
 * it was removed or replaced, make a new one ours (locked, our pid in
 * it): 0 when it was ours, 1 when made ours again; -1 with errno when
 * it cannot be (EWOULDBLOCK: a process that does not lock DIR holds the
 * new one, an earlier version's runner) */
int queue_lock_check(struct queue *q);
/* queue_list - every message of both places, one a line (or a JSON
 * array with json), to out; 0, or -1 with errno */
int queue_list(const struct queue *q, bool json, long long now, FILE *out);

#endif
