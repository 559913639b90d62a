/*
 * engine_impl.h - what engine.c, engine_auth.c and engine_tx.c share,
 *                 and no other file may include: the engine's state
 *                 and its helpers
 *
 * struct engine stays private to the engine (engine.h names it only);
 * the SASL exchange lives in engine_auth.c and the mail transaction
 * (MAIL, RCPT, DATA, the end of the message) in engine_tx.c, beside the
 * command table and the dispatcher in engine.c, and all use these
 * helpers. Every helper works on the event
 * of the public call under way (engine_begin .. engine_emit).
 */
#ifndef SMTPIPE_ENGINE_IMPL_H
#define SMTPIPE_ENGINE_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "bounds.h"
#include "engine.h"
#include "faults.h"
#include "reply.h"
#include "smtp_cmd.h"

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
	/* the AUTH LOGIN user did not fit auth_user, so the check that
	 * follows must fail (a cut name is never compared as the whole) */
	FLAG_LOGIN_USER_LONG = 1 << 3,
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
	struct reply_buf *out;
	enum engine_state state;
	enum engine_end end; /* why, once CLOSED */
	unsigned flags;
	unsigned errors;
	unsigned messages; /* accepted so far */
	struct transaction tx;
	char helo[256];     /* client's HELO/EHLO name */
	char peer[64];      /* client address for logs and Received */
	char id[24];        /* session id */
	char tls_desc[160]; /* the TLS session, for Received */
	bool has_tls_desc;
	char with[16];        /* the Received: protocol of the message */
	char auth_user[256];  /* decoded, for the check and the log */
	char auth_pass[1024]; /* wiped after every check */
	size_t auth_user_len;
	size_t auth_pass_len;
	char auth_mech[8]; /* "PLAIN" or "LOGIN", for the log */
	const char *verb;  /* the command being answered, for the log */
	struct engine_event ev;
	/* the connect stage's fault, for engine_opening */
	enum engine_event_kind opening;
	unsigned opening_delay;
};

/* engine_log - one line to the session's log hook, if it wants lines
 * at prio; client text in it is escaped by the caller (log_escape) */
__attribute__((format(printf, 3, 4))) void engine_log(const struct engine *e, int prio,
                                                      const char *fmt, ...);
/* engine_set_state - every state change, logged by name */
void engine_set_state(struct engine *e, enum engine_state st);
/* engine_begin - every public call starts from an empty event */
void engine_begin(struct engine *e);
/* engine_emit - the event of the call that ends now */
const struct engine_event *engine_emit(struct engine *e, enum engine_event_kind kind);
/* engine_client_error - reply to a client mistake, log it, count it */
enum engine_event_kind engine_client_error(struct engine *e, int code, const char *text);
/* engine_count_error - reply and count; the error cap ends the session */
enum engine_event_kind engine_count_error(struct engine *e, int code, const char *text);
/* engine_fault - the --fault rule that fires at stage for arg, or NULL */
const struct fault_rule *engine_fault(struct engine *e, enum fault_stage stage, const char *arg);
/* engine_fault_act - carry out a reply or drop rule */
enum engine_event_kind engine_fault_act(struct engine *e, const struct fault_rule *r);
/* engine_wipe_credentials - the decoded user and password are gone */
void engine_wipe_credentials(struct engine *e);

/* engine_tx_reset - forget the transaction, keep the recipient buffer
 * (engine_tx.c) */
void engine_tx_reset(struct transaction *tx);
/* engine_cmd_mail, engine_cmd_rcpt, engine_cmd_data - the transaction's
 * commands (engine_tx.c) */
enum engine_event_kind engine_cmd_mail(struct engine *e, const char *args, size_t len);
enum engine_event_kind engine_cmd_rcpt(struct engine *e, const char *args, size_t len);
enum engine_event_kind engine_cmd_data(struct engine *e, const char *args, size_t len);

/* engine_cmd_auth - the AUTH command (engine_auth.c) */
enum engine_event_kind engine_cmd_auth(struct engine *e, const char *args, size_t len);
/* engine_auth_response - a line after a 334 challenge (engine_auth.c) */
enum engine_event_kind engine_auth_response(struct engine *e, const char *line, size_t len,
                                            bool too_long);

#endif
