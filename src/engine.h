/*
 * engine.h - the SMTP state machine (RFC 5321 server side)
 *
 * Parsed lines in, replies (into a reply_buf) and events out; no system
 * calls, so unit tests drive it from transcripts with no socket. The
 * session carries out the events: it reads message text after
 * ENGINE_EV_DATA, delivers after ENGINE_EV_DELIVER, runs the TLS
 * handshake after ENGINE_EV_STARTTLS, checks credentials after
 * ENGINE_EV_AUTH, and closes after ENGINE_EV_CLOSE. Every command in
 * every state has its reply and the session goes on; only QUIT, the
 * error cap and a timeout end it.
 */
#ifndef SMTPIPE_ENGINE_H
#define SMTPIPE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "bounds.h"
#include "reply.h"
#include "smtp_cmd.h"

struct config;
struct data_decoder;
struct delivery;
struct delivery_result;

enum engine_state {
	STATE_CONNECTED,  /* before HELO/EHLO */
	STATE_READY,      /* greeted, no transaction */
	STATE_MAIL,       /* MAIL accepted, no recipient yet */
	STATE_RCPT,       /* at least one recipient */
	STATE_DATA,       /* reading message text */
	STATE_AUTH_PLAIN, /* waiting for the PLAIN response after 334 */
	STATE_AUTH_USER,  /* LOGIN: waiting for the user name */
	STATE_AUTH_PASS,  /* LOGIN: waiting for the password */
	STATE_CLOSED,
};

/* facts about the session, as flag bits */
enum {
	FLAG_ESMTP = 1 << 0,  /* greeted with EHLO */
	FLAG_TLS = 1 << 1,    /* TLS is active */
	FLAG_AUTHED = 1 << 2, /* AUTH succeeded */
};

enum engine_event {
	ENGINE_EV_NONE,     /* read the next line */
	ENGINE_EV_DATA,     /* 354 sent: feed message text, then engine_data_end */
	ENGINE_EV_DELIVER,  /* message complete: deliver, then engine_delivered */
	ENGINE_EV_STARTTLS, /* 220 queued: flush, discard input, handshake, engine_tls_started */
	ENGINE_EV_AUTH,     /* credentials decoded: check, then engine_auth_result */
	ENGINE_EV_CLOSE,    /* flush and end the session */
};

/* What the engine may offer, fixed for the process. */
struct engine_features {
	const char *hostname; /* in the greeting, EHLO and Received: */
	bool starttls;        /* TLS credentials are loaded */
	bool tls_required;    /* STARTTLS before AUTH and MAIL */
	bool auth;            /* --auth given: AUTH offered and required */
};

/* One transaction (MAIL .. end of DATA); reset by RSET, HELO/EHLO,
 * STARTTLS and after each message. */
struct transaction {
	char sender[BOUND_PATH + 1];
	struct mail_params params;
	char *rcpt_buf; /* recipients, NUL-separated */
	size_t rcpt_used;
	size_t rcpt_cap;
	const char **rcpts; /* pointers into rcpt_buf, built at delivery */
	size_t nrcpt;
};

struct engine {
	const struct config *cfg;
	struct engine_features feat;
	enum engine_state state;
	unsigned flags;
	unsigned errors;
	unsigned messages; /* accepted so far */
	struct reply_buf out;
	struct transaction tx;
	char helo[256];       /* client's HELO/EHLO name */
	char peer[64];        /* client address for logs and Received */
	char id[24];          /* session id */
	char auth_user[256];  /* decoded, for the check and the log */
	char auth_pass[1024]; /* wiped after every check */
	size_t auth_user_len;
	size_t auth_pass_len;
	char auth_mech[8]; /* "PLAIN" or "LOGIN", for the log */
	const char *verb;  /* the command being answered, for the log */
};

/* engine_init - a new session; queues the 220 greeting */
void engine_init(struct engine *e, const struct config *cfg, const struct engine_features *feat,
                 const char *peer, const char *id);
void engine_free(struct engine *e);
/* engine_line_limit - the longest line the session should accept now */
size_t engine_line_limit(const struct engine *e);
/* engine_line - one line from the client, without its line ending */
enum engine_event engine_line(struct engine *e, const char *line, size_t len, bool too_long);
/* engine_data_end - the decoder saw the end of data (or the spool
 * failed: spool_error is an errno); returns DELIVER or NONE with the
 * reply queued */
enum engine_event engine_data_end(struct engine *e, const struct data_decoder *d, int spool_error);
/* engine_envelope - the envelope of the message about to be delivered */
void engine_envelope(struct engine *e, struct delivery *d);
/* engine_received - the Received: header for the current message (LF
 * line endings, folded), into buf; returns its length */
size_t engine_received(const struct engine *e, const char *hostname, const char *tls_desc,
                       time_t now, char *buf, size_t cap);
/* engine_delivered - queue the reply for the delivery result, reset the
 * transaction */
void engine_delivered(struct engine *e, const struct delivery_result *r);
/* engine_tls_started - after a successful handshake: reset to CONNECTED */
void engine_tls_started(struct engine *e);
/* engine_auth_result - after ENGINE_EV_AUTH; wipes the credentials */
void engine_auth_result(struct engine *e, bool ok);
/* engine_unfinished - what a client that goes away now leaves undone,
 * for the log: "mid-auth", "mid-transaction", or NULL */
const char *engine_unfinished(const struct engine *e);
/* engine_timeout - queue 421 and close */
void engine_timeout(struct engine *e);
/* engine_shutdown - the daemon is stopping: 421 and close */
void engine_shutdown(struct engine *e);

#endif
