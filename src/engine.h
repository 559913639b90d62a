/*
 * engine.h - the SMTP state machine (RFC 5321 server side)
 *
 * Parsed lines in, replies and events out; no system calls, so unit
 * tests drive it from transcripts with no socket. struct engine is
 * private to the engine (engine.c, engine_tx.c, engine_auth.c, through
 * engine_impl.h): the session learns everything it needs from the
 * events, never from the engine's state.
 *
 * The contract, one call and one event at a time (every call returns
 * the event, valid until the next call; its strings point into the
 * engine and live as long):
 *
 *   e = engine_new(cfg, &features, peer, id, &replies)  queues the 220
 *   ev = engine_line(e, line, len, too_long)
 *     NONE      read the next line; ev->auth_response says that it is
 *               an AUTH response (RFC 4954: up to BOUND_AUTH_LINE)
 *     DATA      354 queued: write engine_received(&ev->trace, now, ..)
 *               to the spool, read the text, then engine_data_end
 *     STARTTLS  220 queued: flush, drop buffered input, handshake, then
 *               engine_tls_started (or end the session)
 *     AUTH      check ev->cred (mechanism, user, password), log the
 *               result, then engine_auth_result, which wipes them
 *     CLOSE     flush and end; ev->end says why: QUIT (221), ERRORS
 *               (the error cap's 421), TIMEOUT, SHUTDOWN, GONE
 *   ev = engine_data_end(e, decoder, spool_errno)
 *     DELIVER   hand ev->envelope on (sender, recipients, id; message
 *               ev->msgno of the session), then engine_delivered
 *     NONE, CLOSE  the refusal is queued, nothing to deliver
 *   ev = engine_delivered(e, result)      the result is the reply
 *   ev = engine_opening(e) after engine_new: the connect stage's
 *     fault (faults.h), if any: NONE, or CLOSE (drop, or a refusal)
 *   ev = engine_timeout(e) / engine_shutdown(e)   421 queued, CLOSE
 *
 * Faults (--fault): the engine consults the rules of feat->faults at
 * each stage; a reply is queued as any reply (so pipelined replies stay
 * in order), a drop is CLOSE with end FAULT and nothing queued for the
 * command, and a delay is ev->delay_s on the event that the session
 * carries out after that many seconds (at most its idle timeout),
 * holding the replies. An AUTH fault answers before the check, outside
 * the brake; a dot fault never delivers (invariant 1).
 *   ev = engine_gone(e)    the client went away: CLOSE, ev->unfinished
 *   engine_free(e)         wipes what is left of the credentials
 *
 * One message costs three calls: engine_line("DATA"), engine_data_end
 * and engine_delivered (engine_received is a pure formatter).
 *
 * Logging: the engine never logs by itself. Its lines (refused
 * commands, limits, and every state change at LOG_DEBUG as
 * "event=state from=ready to=mail") go to the features' log hook,
 * already formatted and with client text escaped; without a hook (unit
 * tests, the fuzzer) they are dropped.
 */
#ifndef SMTPIPE_ENGINE_H
#define SMTPIPE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "deliver.h"
#include "reply.h"

struct config;
struct data_decoder;
struct engine;
struct faults;

enum engine_event_kind {
	ENGINE_EV_NONE,
	ENGINE_EV_DATA,
	ENGINE_EV_DELIVER,
	ENGINE_EV_STARTTLS,
	ENGINE_EV_AUTH,
	ENGINE_EV_CLOSE,
};

/* Why a session ends (ENGINE_EV_CLOSE). */
enum engine_end {
	ENGINE_END_NONE,
	ENGINE_END_QUIT,     /* 221 after QUIT */
	ENGINE_END_ERRORS,   /* 421 at the error cap */
	ENGINE_END_TIMEOUT,  /* 421 after engine_timeout */
	ENGINE_END_SHUTDOWN, /* 421 after engine_shutdown */
	ENGINE_END_GONE,     /* the client went away (engine_gone) */
	ENGINE_END_FAULT,    /* a fault rule: drop, or a 421 or refused greeting */
};

/* Decoded AUTH credentials; wiped by engine_auth_result. */
struct engine_credentials {
	const char *mech; /* "PLAIN" or "LOGIN", for the log */
	const char *user; /* client text: escape it before logging */
	size_t user_len;
	const char *pass; /* a length of 0 never matches (cut or bad authzid) */
	size_t pass_len;
};

/* What the Received: header of a message says (RFC 5321 4.4). */
struct engine_trace {
	const char *helo;     /* the client's HELO/EHLO name, or "unknown" */
	const char *peer;     /* the client's address */
	const char *by;       /* our host name */
	const char *with;     /* RFC 3848 protocol: ESMTP, ESMTPSA, UTF8SMTP... */
	const char *tls;      /* the TLS session, or NULL */
	const char *id;       /* the session id */
	unsigned msgno;       /* the message's number in the session, from 1 */
	const char *for_rcpt; /* the one recipient, or NULL with several */
};

struct engine_event {
	enum engine_event_kind kind;
	bool auth_response;             /* the next line answers a 334 */
	enum engine_end end;            /* CLOSE */
	const char *unfinished;         /* GONE: "mid-auth", "mid-transaction" or NULL */
	struct engine_credentials cred; /* AUTH */
	struct engine_trace trace;      /* DATA */
	struct delivery envelope;       /* DELIVER */
	unsigned msgno;                 /* DELIVER: as trace.msgno */
	unsigned delay_s;               /* a fault: carry the event out this much later */
};

/* What the engine may offer, fixed for the process. */
struct engine_features {
	const char *hostname;        /* in the greeting, EHLO and Received: */
	bool starttls;               /* TLS credentials are loaded */
	bool tls_required;           /* STARTTLS before AUTH and MAIL */
	bool auth;                   /* --auth given: AUTH offered and required */
	const struct faults *faults; /* --fault rules, or NULL */
	/* the log hook: one formatted line at a syslog priority; NULL drops
	 * them; log_enabled (may be NULL) saves formatting dropped lines */
	void (*log)(int prio, const char *line);
	int (*log_enabled)(int prio);
};

/* engine_new - a new session whose replies go to out; queues the 220
 * greeting; NULL when out of memory */
struct engine *engine_new(const struct config *cfg, const struct engine_features *feat,
                          const char *peer, const char *id, struct reply_buf *out);
/* engine_opening - the event of the connect stage (see above) */
const struct engine_event *engine_opening(struct engine *e);
/* engine_free - release the session and wipe the credentials (NULL is fine) */
void engine_free(struct engine *e);
/* engine_line - one line from the client, without its line ending;
 * too_long: it was longer than the session's bound and is not given */
const struct engine_event *engine_line(struct engine *e, const char *line, size_t len,
                                       bool too_long);
/* engine_data_end - the decoder saw the end of data (or the spool
 * failed: spool_error is an errno); DELIVER, or the refusal queued */
const struct engine_event *engine_data_end(struct engine *e, const struct data_decoder *d,
                                           int spool_error);
/* engine_delivered - queue the reply for the delivery result, reset the
 * transaction */
const struct engine_event *engine_delivered(struct engine *e, const struct delivery_result *r);
/* engine_tls_started - after a successful handshake (tls_desc, for
 * Received:, may be NULL): forget everything, expect EHLO (RFC 3207 4.2) */
const struct engine_event *engine_tls_started(struct engine *e, const char *tls_desc);
/* engine_auth_result - after ENGINE_EV_AUTH; wipes the credentials */
const struct engine_event *engine_auth_result(struct engine *e, bool ok);
/* engine_timeout - queue 421 and close */
const struct engine_event *engine_timeout(struct engine *e);
/* engine_shutdown - the daemon is stopping: 421 and close */
const struct engine_event *engine_shutdown(struct engine *e);
/* engine_gone - the client went away: close, saying what it left undone */
const struct engine_event *engine_gone(struct engine *e);

/* engine_received - the Received: header for trace (LF line endings,
 * folded) into buf; returns its length; a pure function */
size_t engine_received(const struct engine_trace *t, time_t now, char *buf, size_t cap);

#endif
