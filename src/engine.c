/*
 * engine.c - the SMTP server state machine
 *
 * One command table, indexed by verb, says in which states each verb is
 * allowed, what it needs (TLS under --tls-required, AUTH under --auth,
 * a feature that is offered, a fact not yet true) and what the refusal
 * says; the dispatcher answers 503/501/530 (and 502, 554) before any
 * handler runs, so the handlers stay short. A client mistake gets its
 * reply, counts as an error, and the session goes on; at
 * cfg->max_errors it ends with 421. The transaction resets on RSET,
 * HELO/EHLO, STARTTLS and after each message. The engine makes no
 * system calls: its log lines go to the session's hook (engine.h).
 *
 * Here: the engine's life, the error count, the fault hooks, the
 * command table and its dispatcher, and the commands outside a
 * transaction. The transaction (MAIL, RCPT, DATA, the end of the
 * message) is engine_tx.c's, AUTH engine_auth.c's; they share
 * struct engine through engine_impl.h.
 */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bounds.h"
#include "config.h"
#include "faults.h"
#include "log.h"
#include "engine_impl.h"
#include "smtp_cmd.h"

/* for the debug log of every state change */
static const char *const state_names[] = {
    [STATE_CONNECTED] = "connected", [STATE_READY] = "ready",
    [STATE_MAIL] = "mail",           [STATE_RCPT] = "rcpt",
    [STATE_DATA] = "data",           [STATE_AUTH_PLAIN] = "auth-plain",
    [STATE_AUTH_USER] = "auth-user", [STATE_AUTH_PASS] = "auth-pass",
    [STATE_CLOSED] = "closed",
};

/* engine_log - one line to the session's log hook, if it wants lines at prio */
void engine_log(const struct engine *e, int prio, const char *fmt, ...)
{
	if (!e->feat.log || (e->feat.log_enabled && !e->feat.log_enabled(prio)))
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->feat.log(prio, line);
}

/* engine_set_state - every state change, logged by name */
void engine_set_state(struct engine *e, enum engine_state st)
{
	if (st != e->state)
		engine_log(e, LOG_DEBUG, "event=state from=%s to=%s", state_names[e->state],
		           state_names[st]);
	e->state = st;
}

/* in_auth - the next line answers a 334 challenge */
static bool in_auth(const struct engine *e)
{
	return e->state == STATE_AUTH_PLAIN || e->state == STATE_AUTH_USER ||
	       e->state == STATE_AUTH_PASS;
}

/* engine_begin - every public call starts from an empty event */
void engine_begin(struct engine *e)
{
	memset(&e->ev, 0, sizeof(e->ev));
}

/* engine_emit - the event of the call that ends now */
const struct engine_event *engine_emit(struct engine *e, enum engine_event_kind kind)
{
	e->ev.kind = kind;
	e->ev.auth_response = in_auth(e);
	if (kind == ENGINE_EV_CLOSE)
		e->ev.end = e->end;
	return &e->ev;
}

/* close_session - the session ends for why */
static enum engine_event_kind close_session(struct engine *e, enum engine_end why)
{
	engine_set_state(e, STATE_CLOSED);
	e->end = why;
	return ENGINE_EV_CLOSE;
}

/* engine_wipe_credentials - the decoded user and password are gone after use */
void engine_wipe_credentials(struct engine *e)
{
	explicit_bzero(e->auth_user, sizeof(e->auth_user));
	explicit_bzero(e->auth_pass, sizeof(e->auth_pass));
	e->auth_user_len = 0;
	e->auth_pass_len = 0;
	memset(&e->ev.cred, 0, sizeof(e->ev.cred));
}

/* The first engine of a process lives here, zeroed (a session process
 * has exactly one: no heap chunk and no malloc arena page of its own
 * after fork); any other at the same time comes from the heap. */
static struct engine first_engine;
static bool first_engine_used;

/* engine_new - see engine.h */
struct engine *engine_new(const struct config *cfg, const struct engine_features *feat,
                          const char *peer, const char *id, struct reply_buf *out)
{
	struct engine *e = first_engine_used ? calloc(1, sizeof(*e)) : &first_engine;
	if (!e)
		return NULL;
	first_engine_used = true; /* zero until now: engine_free clears it */
	e->cfg = cfg;
	e->feat = *feat;
	if (!e->feat.hostname)
		e->feat.hostname = "localhost";
	e->out = out;
	snprintf(e->peer, sizeof(e->peer), "%s", peer);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->state = STATE_CONNECTED;
	/* a refused greeting ends the session at once (a client that
	 * waits for QUIT's turn, RFC 5321 3.1, has learnt what it needs) */
	const struct fault_rule *r = engine_fault(e, FAULT_CONNECT, e->peer);
	e->opening_delay = e->ev.delay_s;
	if (r && r->action == FAULT_REPLY) {
		reply_add(e->out, r->code, true, "%s", r->text);
		e->opening = close_session(e, ENGINE_END_FAULT);
	} else if (r) {
		e->opening = close_session(e, ENGINE_END_FAULT);
	} else {
		reply_add(e->out, 220, true, "%s ESMTP smtpipe", e->feat.hostname);
	}
	return e;
}

/* engine_opening - see engine.h */
const struct engine_event *engine_opening(struct engine *e)
{
	engine_begin(e);
	e->ev.delay_s = e->opening_delay;
	return engine_emit(e, e->opening);
}

/* engine_free - release the transaction and wipe credentials */
void engine_free(struct engine *e)
{
	if (!e)
		return;
	engine_tx_reset(&e->tx);
	free(e->tx.rcpt_buf);
	engine_wipe_credentials(e);
	if (e == &first_engine) {
		explicit_bzero(e, sizeof(*e)); /* zero again for the next engine_new */
		first_engine_used = false;
	} else {
		free(e);
	}
}

/* log_rejected - one line for a refused command, so that a client can
 * be debugged from the log: 5xx at info, the rest at debug; the verb
 * and the reply are the server's own words, never the AUTH data */
static void log_rejected(const struct engine *e, int code, const char *text)
{
	engine_log(e, code >= 500 ? LOG_INFO : LOG_DEBUG,
	           "event=command-rejected client=%s command=%s reply=\"%d %s\"", e->peer,
	           e->verb ? e->verb : "UNKNOWN", code, text);
}

/* engine_count_error - reply to a client mistake that is logged elsewhere; the
 * error cap ends the session with 421 (Postfix smtpd_hard_error_limit) */
enum engine_event_kind engine_count_error(struct engine *e, int code, const char *text)
{
	reply_add(e->out, code, true, "%s", text);
	e->errors++;
	if (e->cfg->max_errors && e->errors >= e->cfg->max_errors) {
		engine_log(e, LOG_NOTICE, "event=too-many-errors errors=%u client=%s", e->errors,
		           e->peer);
		reply_add(e->out, 421, true, "4.7.0 %s Error: too many errors", e->feat.hostname);
		return close_session(e, ENGINE_END_ERRORS);
	}
	return ENGINE_EV_NONE;
}

/* engine_client_error - reply to a client mistake, log it, count it */
enum engine_event_kind engine_client_error(struct engine *e, int code, const char *text)
{
	log_rejected(e, code, text);
	return engine_count_error(e, code, text);
}

/* --- faults (faults.h) -------------------------------------------- */

/* engine_fault - the rule that fires at stage for arg, logged (server facts
 * first, the client's text escaped last), or NULL; a delay is put on
 * the event and NULL returned, so the command goes on as usual */
const struct fault_rule *engine_fault(struct engine *e, enum fault_stage stage, const char *arg)
{
	size_t index;
	unsigned long long nth;
	const struct fault_rule *r = faults_fire(e->feat.faults, stage, arg, &index, &nth);
	if (!r)
		return NULL;
	char esc[BOUND_PATH * 4 + 8];
	log_escape(esc, sizeof(esc), arg ? arg : "", arg ? strlen(arg) : 0);
	if (r->action == FAULT_REPLY)
		engine_log(
		    e, LOG_NOTICE,
		    "event=fault stage=%s rule=%zu nth=%llu action=reply reply=\"%d %s\" client=%s "
		    "arg=\"%s\"",
		    faults_stage_name(stage), index, nth, r->code, r->text, e->peer, esc);
	else if (r->action == FAULT_DROP)
		engine_log(
		    e, LOG_NOTICE,
		    "event=fault stage=%s rule=%zu nth=%llu action=drop client=%s arg=\"%s\"",
		    faults_stage_name(stage), index, nth, e->peer, esc);
	else
		engine_log(e, LOG_NOTICE,
		           "event=fault stage=%s rule=%zu nth=%llu action=delay delay=%u client=%s "
		           "arg=\"%s\"",
		           faults_stage_name(stage), index, nth, r->delay, e->peer, esc);
	if (r->action == FAULT_DELAY) {
		e->ev.delay_s = r->delay;
		return NULL;
	}
	return r;
}

/* engine_fault_act - carry out a reply or drop rule: a drop queues nothing and
 * closes; a reply is queued in turn, and a 421 closes as 421 does */
enum engine_event_kind engine_fault_act(struct engine *e, const struct fault_rule *r)
{
	if (r->action == FAULT_REPLY)
		reply_add(e->out, r->code, true, "%s", r->text);
	if (r->action == FAULT_DROP || r->code == 421)
		return close_session(e, ENGINE_END_FAULT);
	return ENGINE_EV_NONE;
}

/* --- the command table ------------------------------------------- */

/* A handler gets the arguments without trailing blanks; one that needs
 * none casts them to void (-Wunused-parameter). */
typedef enum engine_event_kind (*cmd_fn)(struct engine *e, const char *args, size_t len);

static enum engine_event_kind cmd_helo(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_ehlo(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_rset(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_noop(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_quit(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_help(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_vrfy(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_expn(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_starttls(struct engine *e, const char *args, size_t len);
static enum engine_event_kind cmd_not_implemented(struct engine *e, const char *args, size_t len);

#define ST(s) (1u << (s))
/* the states in which the engine reads commands */
#define ST_GREETED (ST(STATE_READY) | ST(STATE_MAIL) | ST(STATE_RCPT))
#define ST_ANY     (ST(STATE_CONNECTED) | ST_GREETED)

enum {
	CMD_NO_ARGS = 1 << 0,    /* 501 with an argument */
	CMD_BEFORE_TLS = 1 << 1, /* allowed before STARTTLS under --tls-required (else 530) */
	CMD_NEEDS_AUTH = 1 << 2, /* 530 before AUTH under --auth */
	/* RFC 2920 3.1: the last command of a pipelined group; smtp_io
	 * writes the replies before any read that would wait, which sends
	 * every group's replies in time, so this records the RFC's list
	 * for the reader and the tests (test_engine.c) */
	CMD_ENDS_GROUP = 1 << 3,
};

/* A reply the dispatcher gives instead of running a handler; states:
 * where it applies (for a refusal by state). */
struct refusal {
	unsigned states;
	int code;
	const char *text;
};

/* needs: a feature that must be offered (FEAT_*), else not_offered;
 * once: a fact (FLAG_*) that the verb makes true, refused with again
 * when it already is; wrong_state: the first entry whose states hold
 * the current one, when states does not (before HELO/EHLO, always
 * "send HELO/EHLO first", which comes before the 501 and 530 checks) */
enum { FEAT_STARTTLS = 1 << 0, FEAT_AUTH = 1 << 1 };

static const struct command {
	cmd_fn fn;
	unsigned states;
	unsigned flags;
	unsigned needs, once;
	struct refusal not_offered, again;
	struct refusal wrong_state[2];
} commands[] = {
    [VERB_HELO] = {.fn = cmd_helo, .states = ST_ANY, .flags = CMD_BEFORE_TLS},
    [VERB_EHLO] = {.fn = cmd_ehlo, .states = ST_ANY, .flags = CMD_BEFORE_TLS | CMD_ENDS_GROUP},
    [VERB_MAIL] = {.fn = engine_cmd_mail,
                   .states = ST(STATE_READY),
                   .flags = CMD_NEEDS_AUTH,
                   .wrong_state = {{ST_ANY, 503, "5.5.1 Error: nested MAIL command"}}},
    [VERB_RCPT] = {.fn = engine_cmd_rcpt,
                   .states = ST(STATE_MAIL) | ST(STATE_RCPT),
                   .flags = CMD_NEEDS_AUTH,
                   .wrong_state = {{ST_ANY, 503, "5.5.1 Error: need MAIL command"}}},
    /* RFC 2920 3.1: 554 when no recipient was accepted, so that a
     * pipelining client does not send the text */
    [VERB_DATA] = {.fn = engine_cmd_data,
                   .states = ST(STATE_RCPT),
                   .flags = CMD_NO_ARGS | CMD_NEEDS_AUTH | CMD_ENDS_GROUP,
                   .wrong_state = {{ST(STATE_MAIL), 554, "5.5.1 Error: no valid recipients"},
                                   {ST_ANY, 503, "5.5.1 Error: need RCPT command"}}},
    [VERB_RSET] = {.fn = cmd_rset, .states = ST_ANY, .flags = CMD_NO_ARGS | CMD_BEFORE_TLS},
    [VERB_NOOP] = {.fn = cmd_noop, .states = ST_ANY, .flags = CMD_BEFORE_TLS | CMD_ENDS_GROUP},
    [VERB_QUIT] = {.fn = cmd_quit, .states = ST_ANY, .flags = CMD_BEFORE_TLS | CMD_ENDS_GROUP},
    [VERB_HELP] = {.fn = cmd_help, .states = ST_ANY, .flags = CMD_BEFORE_TLS},
    [VERB_VRFY] = {.fn = cmd_vrfy, .states = ST_ANY, .flags = CMD_BEFORE_TLS | CMD_ENDS_GROUP},
    [VERB_EXPN] = {.fn = cmd_expn, .states = ST_ANY, .flags = CMD_BEFORE_TLS | CMD_ENDS_GROUP},
    [VERB_STARTTLS] = {.fn = cmd_starttls,
                       .states = ST_GREETED,
                       .flags = CMD_NO_ARGS | CMD_BEFORE_TLS | CMD_ENDS_GROUP,
                       .needs = FEAT_STARTTLS,
                       .once = FLAG_TLS,
                       .not_offered = {0, 502, "5.5.1 Error: command not implemented"},
                       .again = {0, 503, "5.5.1 Error: TLS already active"}},
    [VERB_AUTH] = {.fn = engine_cmd_auth,
                   .states = ST(STATE_READY),
                   .flags = CMD_ENDS_GROUP,
                   .needs = FEAT_AUTH,
                   .once = FLAG_AUTHED,
                   .not_offered = {0, 503, "5.5.1 Error: authentication not enabled"},
                   .again = {0, 503, "5.5.1 Error: already authenticated"},
                   .wrong_state = {{ST_ANY, 503,
                                    "5.5.1 Error: AUTH not permitted during a mail transaction"}}},
    [VERB_BDAT] = {.fn = cmd_not_implemented, .states = ST_ANY, .flags = CMD_BEFORE_TLS},
    [VERB_NOT_IMPLEMENTED] = {.fn = cmd_not_implemented,
                              .states = ST_ANY,
                              .flags = CMD_BEFORE_TLS | CMD_ENDS_GROUP},
};

/* offered - the FEAT_* bits of what this process offers */
static unsigned offered(const struct engine *e)
{
	return (e->feat.starttls ? FEAT_STARTTLS : 0) | (e->feat.auth ? FEAT_AUTH : 0);
}

/* refuse - the dispatcher's checks in the order of their replies; NULL
 * when the handler may run; *syntax is set for the 501 */
static const struct refusal *refuse(const struct engine *e, const struct command *c, size_t alen,
                                    bool *syntax)
{
	static const struct refusal helo_first = {0, 503, "5.5.1 Error: send HELO/EHLO first"},
	                            need_tls = {0, 530,
	                                        "5.7.0 Must issue a STARTTLS command first"},
	                            need_auth = {0, 530, "5.7.0 Authentication required"},
	                            sequence = {0, 503, "5.5.1 Error: bad sequence of commands"};
	*syntax = false;
	if (e->state == STATE_CONNECTED && !(c->states & ST(STATE_CONNECTED)))
		return &helo_first;
	if ((c->flags & CMD_NO_ARGS) && alen > 0) {
		*syntax = true;
		return NULL;
	}
	if (!(c->flags & CMD_BEFORE_TLS) && e->feat.tls_required && !(e->flags & FLAG_TLS))
		return &need_tls;
	if ((c->flags & CMD_NEEDS_AUTH) && e->feat.auth && !(e->flags & FLAG_AUTHED))
		return &need_auth;
	if (c->needs && !(offered(e) & c->needs))
		return &c->not_offered;
	if (c->once && (e->flags & c->once))
		return &c->again;
	if (c->states & ST(e->state))
		return NULL;
	for (size_t i = 0; i < 2; i++)
		if (c->wrong_state[i].states & ST(e->state))
			return &c->wrong_state[i];
	return &sequence; /* a state that reads no commands: a bug */
}

/* dispatch - one command line: refusals first, then the handler */
static enum engine_event_kind dispatch(struct engine *e, const char *line, size_t len,
                                       bool too_long)
{
	e->verb = NULL;
	if (memchr(line, '\0', len))
		return engine_client_error(e, 500, "5.5.2 Error: NUL byte in command");
	const char *args;
	size_t alen;
	bool bad_sep;
	enum smtp_verb verb = smtp_cmd_verb(line, len, &args, &alen, &bad_sep);
	e->verb = bad_sep ? NULL : smtp_cmd_verb_name(verb);
	/* RFC 5321 4.5.3.1.4, except AUTH whose line RFC 4954 allows longer */
	if (too_long || (verb != VERB_AUTH && len > BOUND_COMMAND_LINE - 2))
		return engine_client_error(e, 500, "5.5.2 Error: line too long");
	if (verb == VERB_UNKNOWN || bad_sep)
		return engine_client_error(e, 500, "5.5.2 Error: command not recognized");
	const struct command *c = &commands[verb];
	while (alen > 0 && args[alen - 1] == ' ') /* trailing blanks are noise */
		alen--;
	bool syntax;
	const struct refusal *r = refuse(e, c, alen, &syntax);
	if (syntax) {
		char text[64];
		snprintf(text, sizeof(text), "5.5.4 Syntax: %s", smtp_cmd_verb_name(verb));
		return engine_client_error(e, 501, text);
	}
	if (r)
		return engine_client_error(e, r->code, r->text);
	return c->fn(e, args, alen);
}

/* engine_line - see engine.h */
const struct engine_event *engine_line(struct engine *e, const char *line, size_t len,
                                       bool too_long)
{
	engine_begin(e);
	if (e->state == STATE_CLOSED)
		return engine_emit(e, ENGINE_EV_CLOSE);
	if (in_auth(e)) {
		e->verb = "AUTH"; /* a response line: its text is never logged */
		return engine_emit(e, engine_auth_response(e, line, len, too_long));
	}
	return engine_emit(e, dispatch(e, line, len, too_long));
}

/* --- the handlers ------------------------------------------------- */

/* greet - what HELO and EHLO share; false when the command was
 * refused (by a fault too: *k is then its event) */
static bool greet(struct engine *e, const char *args, size_t len, const char *verb,
                  enum engine_event_kind *k)
{
	*k = ENGINE_EV_NONE;
	if (!smtp_cmd_domain_ok(args, len)) {
		char text[64];
		snprintf(text, sizeof(text), "5.5.4 Syntax: %s hostname", verb);
		engine_client_error(e, 501, text);
		*k = e->state == STATE_CLOSED ? ENGINE_EV_CLOSE : ENGINE_EV_NONE;
		return false;
	}
	char name[sizeof(e->helo)];
	memcpy(name, args, len);
	name[len] = '\0';
	const struct fault_rule *r = engine_fault(e, FAULT_HELO, name);
	if (r) {
		*k = engine_fault_act(e, r);
		return false;
	}
	memcpy(e->helo, args, len);
	e->helo[len] = '\0';
	engine_tx_reset(&e->tx);
	engine_set_state(e, STATE_READY);
	char esc[sizeof(e->helo) * 4];
	log_escape(esc, sizeof(esc), e->helo, len);
	engine_log(e, LOG_DEBUG, "event=helo verb=%s name=\"%s\"", verb, esc);
	return true;
}

/* cmd_helo - RFC 5321 4.1.1.1, plain SMTP */
static enum engine_event_kind cmd_helo(struct engine *e, const char *args, size_t len)
{
	enum engine_event_kind k;
	if (greet(e, args, len, "HELO", &k)) {
		e->flags &= ~(unsigned)FLAG_ESMTP;
		reply_add(e->out, 250, true, "%s", e->feat.hostname);
	}
	return k;
}

/* cmd_ehlo - RFC 5321 4.1.1.1 with the extensions we offer */
static enum engine_event_kind cmd_ehlo(struct engine *e, const char *args, size_t len)
{
	enum engine_event_kind k;
	if (!greet(e, args, len, "EHLO", &k))
		return k;
	e->flags |= FLAG_ESMTP;
	struct reply_buf *o = e->out;
	reply_add(o, 250, false, "%s Hello %s", e->feat.hostname, e->helo);
	reply_add(o, 250, false, "PIPELINING");
	reply_add(o, 250, false, "SIZE %zu", e->cfg->max_message_size);
	reply_add(o, 250, false, "8BITMIME");
	reply_add(o, 250, false, "ENHANCEDSTATUSCODES");
	reply_add(o, 250, false, "SMTPUTF8");
	if (e->feat.starttls && !(e->flags & FLAG_TLS))
		reply_add(o, 250, false, "STARTTLS");
	/* Under --tls-required AUTH is hidden until TLS is up. */
	if (e->feat.auth && (!e->feat.tls_required || (e->flags & FLAG_TLS)))
		reply_add(o, 250, false, "AUTH PLAIN LOGIN");
	reply_add(o, 250, true, "HELP");
	return ENGINE_EV_NONE;
}

/* cmd_rset - RFC 5321 4.1.1.5 */
static enum engine_event_kind cmd_rset(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	engine_tx_reset(&e->tx);
	if (e->state != STATE_CONNECTED)
		engine_set_state(e, STATE_READY);
	reply_add(e->out, 250, true, "2.0.0 Ok");
	return ENGINE_EV_NONE;
}

/* cmd_noop - RFC 5321 4.1.1.9: an argument is allowed and ignored */
static enum engine_event_kind cmd_noop(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	reply_add(e->out, 250, true, "2.0.0 Ok");
	return ENGINE_EV_NONE;
}

/* cmd_quit - RFC 5321 4.1.1.10 */
static enum engine_event_kind cmd_quit(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	const struct fault_rule *r = engine_fault(e, FAULT_QUIT, e->peer);
	if (r) { /* the session ends all the same */
		engine_fault_act(e, r);
		return close_session(e, ENGINE_END_FAULT);
	}
	reply_add(e->out, 221, true, "2.0.0 Bye");
	return close_session(e, ENGINE_END_QUIT);
}

/* cmd_help - RFC 5321 4.1.1.8 */
static enum engine_event_kind cmd_help(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	reply_add(e->out, 214, false, "2.0.0 smtpipe: commands supported:");
	reply_add(e->out, 214, false, "2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY");
	if (e->feat.starttls || e->feat.auth) /* no empty 214-2.0.0 line */
		reply_add(e->out, 214, false, "2.0.0   %s%s%s", e->feat.starttls ? "STARTTLS" : "",
		          e->feat.starttls && e->feat.auth ? " " : "", e->feat.auth ? "AUTH" : "");
	reply_add(e->out, 214, true, "2.0.0 End of HELP info");
	return ENGINE_EV_NONE;
}

/* cmd_vrfy - RFC 5321 3.5.3: 252, we neither confirm nor deny */
static enum engine_event_kind cmd_vrfy(struct engine *e, const char *args, size_t len)
{
	(void)args;
	if (len == 0)
		return engine_client_error(e, 501, "5.5.4 Syntax: VRFY address");
	reply_add(e->out, 252, true, "2.5.0 Cannot VRFY user, but will accept message");
	return ENGINE_EV_NONE;
}

/* cmd_expn - mailing lists are not ours to expand (not counted as an
 * error: a client may ask) */
static enum engine_event_kind cmd_expn(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	log_rejected(e, 502, "5.5.1 EXPN not implemented");
	reply_add(e->out, 502, true, "5.5.1 EXPN not implemented");
	return ENGINE_EV_NONE;
}

/* cmd_not_implemented - known verbs we do not offer (BDAT without
 * CHUNKING, TURN, ETRN, ...) */
static enum engine_event_kind cmd_not_implemented(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	return engine_client_error(e, 502, "5.5.1 Error: command not implemented");
}

/* cmd_starttls - RFC 3207 (offered, no TLS yet: the table checked) */
static enum engine_event_kind cmd_starttls(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	engine_tx_reset(&e->tx);
	reply_add(e->out, 220, true, "2.0.0 Ready to start TLS");
	return ENGINE_EV_STARTTLS;
}

/* engine_tls_started - RFC 3207 4.2: forget everything, expect EHLO */
const struct engine_event *engine_tls_started(struct engine *e, const char *tls_desc)
{
	engine_begin(e);
	snprintf(e->tls_desc, sizeof(e->tls_desc), "%s", tls_desc ? tls_desc : "");
	e->has_tls_desc = tls_desc != NULL;
	e->flags |= FLAG_TLS;
	e->flags &= ~(unsigned)FLAG_ESMTP;
	e->helo[0] = '\0';
	engine_tx_reset(&e->tx);
	engine_set_state(e, STATE_CONNECTED);
	return engine_emit(e, ENGINE_EV_NONE);
}

/* --- the end of the session ---------------------------------------- */

/* engine_gone - see engine.h */
const struct engine_event *engine_gone(struct engine *e)
{
	engine_begin(e);
	if (in_auth(e))
		e->ev.unfinished = "mid-auth";
	else if (e->state == STATE_MAIL || e->state == STATE_RCPT || e->state == STATE_DATA)
		e->ev.unfinished = "mid-transaction";
	if (e->state != STATE_CLOSED)
		close_session(e, ENGINE_END_GONE);
	return engine_emit(e, ENGINE_EV_CLOSE);
}

/* engine_timeout - RFC 5321 4.5.3.2: 421 and close */
const struct engine_event *engine_timeout(struct engine *e)
{
	engine_begin(e);
	reply_add(e->out, 421, true, "4.4.2 %s Error: timeout exceeded", e->feat.hostname);
	return engine_emit(e, close_session(e, ENGINE_END_TIMEOUT));
}

/* engine_shutdown - the daemon is going away */
const struct engine_event *engine_shutdown(struct engine *e)
{
	engine_begin(e);
	reply_add(e->out, 421, true, "4.3.2 %s Service shutting down", e->feat.hostname);
	return engine_emit(e, close_session(e, ENGINE_END_SHUTDOWN));
}
