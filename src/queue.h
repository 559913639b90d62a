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
 * (attempts, next attempt, last error; replaced whole by rename). A
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
 * from under a running command. The runner holds an flock on DIR/lock,
 * so that two runners never run one queue.
 *
 * The envelope and state files are lines "key=value"; every address
 * and text is %-encoded (bytes outside 0x21-0x7e, '%' and '=' as %XX),
 * so no byte of a client's can end a line or start a field. Their
 * formatting and parsing, and the backoff and expiry arithmetic, are
 * pure functions (tests/unit/test_queue.c).
 */
#ifndef SMTPIPE_QUEUE_H
#define SMTPIPE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "deliver.h"

#define QUEUE_ID_LEN 25

struct spool;

/* The envelope of a queued message, parsed in place from its file. */
struct queue_env {
	char id[QUEUE_ID_LEN + 1];
	long long arrival;  /* seconds since the epoch */
	const char *sender; /* "" for <> */
	const char **rcpts;
	size_t nrcpt;
	const char *client, *listener, *auth_user; /* NULL: not set */
	long client_uid;                           /* < 0: not set */
	char *text;                                /* the file's bytes (owned) */
};

/* What the runner knows of a message's attempts. */
struct queue_state {
	unsigned attempts;
	long long next;    /* the next attempt, seconds since the epoch; 0: now */
	long long last_ms; /* the last attempt, ms since the epoch; 0: never */
	long long since;   /* the lifetime counts from here (arrival, or a requeue) */
	char error[200];   /* the last failure, "" for none */
};

/* An open queue directory. */
struct queue {
	int dir, tmp, q, failed; /* descriptors, -1 when closed */
	int lock;                /* DIR/lock while held, else -1 */
	const char *path;
};

enum queue_where { QUEUE_Q, QUEUE_FAILED };

/* --- pure functions --- */

/* queue_encode - src as %-encoding into dst (NUL-terminated); the
 * length, or (size_t)-1 when cap is too small */
size_t queue_encode(char *dst, size_t cap, const char *src, size_t len);
/* queue_decode - undo queue_encode in place; -1 on a malformed or NUL
 * escape */
int queue_decode(char *s);
/* queue_env_format - the envelope file's text for d (malloc'ed, *len
 * bytes), or NULL when out of memory */
char *queue_env_format(const struct delivery *d, const char *id, long long arrival, size_t *len);
/* queue_env_parse - parse text (len bytes, NUL-terminated at text[len],
 * taken over by e) into e; -1 when it is not an envelope */
int queue_env_parse(char *text, size_t len, struct queue_env *e);
/* queue_env_free - what queue_env_parse allocated */
void queue_env_free(struct queue_env *e);
/* queue_state_format - the state file's text; its length, or 0 when cap
 * is too small */
size_t queue_state_format(const struct queue_state *s, char *buf, size_t cap);
/* queue_state_parse - parse a state file; -1 when malformed */
int queue_state_parse(const char *text, size_t len, struct queue_state *s);
/* queue_backoff - seconds before the next attempt after the attempts-th
 * failed one: retry, doubled for each attempt after the first, at most
 * retry_max */
unsigned long long queue_backoff(unsigned attempts, unsigned retry, unsigned retry_max);
/* queue_expired - whether a message whose lifetime began at since is
 * past lifetime seconds at now */
bool queue_expired(long long since, unsigned long long lifetime, long long now);
/* queue_parse_duration - "90", "90s", "15m", "2h", "5d" into seconds;
 * -1 unless a whole number with one optional suffix, 1 to 10 years */
int queue_parse_duration(const char *s, unsigned long long *secs);
/* queue_id_valid - whether s has the form of a queue ID */
bool queue_id_valid(const char *s);
/* queue_new_id - a fresh ID for arrival time now (seconds), usec */
void queue_new_id(char id[QUEUE_ID_LEN + 1], long long now, long usec);

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
/* queue_msg_open - open the message directory and "msg" of id in where
 * and take its lock (without waiting): 0; 1 when a delivery holds it;
 * -1 with errno (ENOENT: no such message) */
int queue_msg_open(const struct queue *q, enum queue_where where, const char *id, int *mdir,
                   int *msg);
/* queue_msg_read - env and state of the message directory mdir (state
 * without a file: nothing tried yet, since = arrival); -1 with errno */
int queue_msg_read(int mdir, struct queue_env *e, struct queue_state *s);
/* queue_state_read - the state of mdir alone: 0; 1 when nothing was
 * tried yet (s zeroed); -1 with errno */
int queue_state_read(int mdir, struct queue_state *s);
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
 * errno */
int queue_lock(struct queue *q, long *holder);
/* queue_list - every message of both places, one a line (or a JSON
 * array with json), to out; 0, or -1 with errno */
int queue_list(const struct queue *q, bool json, long long now, FILE *out);

#endif
