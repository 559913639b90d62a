/*
 * queue_format.h - the queue's envelope and state files, its IDs, and
 *                  the backoff and expiry arithmetic: pure functions
 *
 * Both files are lines "key=value"; every address and text is
 * %-encoded (bytes outside 0x21-0x7e, '%' and '=' as %XX), so no byte
 * of a client's can end a line or start a field, whatever the engine
 * let through. The envelope ("smtpipe-queue=1", id, arrival, sender,
 * the client's facts for the command's environment, one rcpt= a
 * recipient) never changes; the state (attempts, next, last-ms, since,
 * error, and once given up on gave-up and bounce) is replaced whole. tests/unit/test_queue.c holds
 * them.
 */
#ifndef SMTPIPE_QUEUE_FORMAT_H
#define SMTPIPE_QUEUE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver.h"

#define QUEUE_ID_LEN 25

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
	/* given up on (a permanent failure, or expired): the message only
	 * waits to move to DIR/failed, never to be delivered again, and its
	 * bounce, when it has one, is made already (queue_run.c, give_up) */
	enum queue_gave_up { QUEUE_LIVE, QUEUE_GAVE_UP_FAILED, QUEUE_GAVE_UP_EXPIRED } gave_up;
	char bounce[QUEUE_ID_LEN + 1]; /* that bounce's ID; "" for none (a <> sender) */
};

/* queue_encode - src as %-encoding into dst (NUL-terminated); the
 * length, or (size_t)-1 when cap is too small */
size_t queue_encode(char *dst, size_t cap, const char *src, size_t len);
/* queue_decode - undo queue_encode in place; -1 on a malformed or NUL
 * escape */
int queue_decode(char *s);
/* queue_env_format - the envelope file's text for d (malloc'ed, *len
 * bytes, NUL-terminated), or NULL when out of memory */
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
/* queue_next_clamp - the next attempt to wait for: next, but never
 * more than retry_max seconds after written, the moment the state file
 * was last written (its ctime: a next far in the future, edited by hand
 * or garbled, must not hold a message until --queue-flush) */
long long queue_next_clamp(long long next, long long written, unsigned retry_max);
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

#endif
