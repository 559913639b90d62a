/*
 * engine.c - the SMTP server state machine
 *
 * A command table says where each verb is allowed and what it needs
 * (HELO first, TLS under --tls-required, AUTH under --auth); the
 * dispatcher answers 500/501/503/530 before any handler runs, so the
 * handlers stay short. A client mistake gets its reply, counts as an
 * error, and the session goes on; at cfg->max_errors it ends with 421.
 * The transaction resets on RSET, HELO/EHLO, STARTTLS and after each
 * message. The engine makes no system calls beyond the log.
 */
#include "engine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "config.h"
#include "data.h"
#include "deliver.h"
#include "log.h"

enum {
	CMD_NEEDS_HELO = 1 << 0, /* 503 before HELO/EHLO */
	CMD_NO_ARGS = 1 << 1,    /* 501 with an argument */
	CMD_NEEDS_TLS = 1 << 2,  /* 530 without TLS under --tls-required */
	CMD_NEEDS_AUTH = 1 << 3, /* 530 before AUTH under --auth */
};

/* A flag of struct engine's flags known only here: the AUTH LOGIN user
 * did not fit auth_user, so the check that follows must fail (a cut
 * name must never be compared as if it were the whole). */
#define FLAG_LOGIN_USER_LONG (1u << 8)

typedef enum engine_event (*cmd_fn)(struct engine *e, const char *args, size_t len);

static enum engine_event cmd_helo(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_ehlo(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_mail(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_rcpt(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_data(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_rset(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_noop(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_quit(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_help(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_vrfy(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_expn(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_starttls(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_auth(struct engine *e, const char *args, size_t len);
static enum engine_event cmd_not_implemented(struct engine *e, const char *args, size_t len);

static const struct command {
	enum smtp_verb verb;
	cmd_fn fn;
	unsigned flags;
} commands[] = {
    {VERB_HELO, cmd_helo, 0},
    {VERB_EHLO, cmd_ehlo, 0},
    {VERB_MAIL, cmd_mail, CMD_NEEDS_HELO | CMD_NEEDS_TLS | CMD_NEEDS_AUTH},
    {VERB_RCPT, cmd_rcpt, CMD_NEEDS_HELO | CMD_NEEDS_TLS | CMD_NEEDS_AUTH},
    {VERB_DATA, cmd_data, CMD_NEEDS_HELO | CMD_NO_ARGS | CMD_NEEDS_TLS | CMD_NEEDS_AUTH},
    {VERB_RSET, cmd_rset, CMD_NO_ARGS},
    {VERB_NOOP, cmd_noop, 0},
    {VERB_QUIT, cmd_quit, 0},
    {VERB_HELP, cmd_help, 0},
    {VERB_VRFY, cmd_vrfy, 0},
    {VERB_EXPN, cmd_expn, 0},
    {VERB_STARTTLS, cmd_starttls, CMD_NEEDS_HELO | CMD_NO_ARGS},
    {VERB_AUTH, cmd_auth, CMD_NEEDS_HELO | CMD_NEEDS_TLS},
    {VERB_BDAT, cmd_not_implemented, 0},
    {VERB_NOT_IMPLEMENTED, cmd_not_implemented, 0},
};

/* tx_reset - forget the transaction, keep the recipient buffer */
static void tx_reset(struct transaction *tx)
{
	tx->sender[0] = '\0';
	memset(&tx->params, 0, sizeof(tx->params));
	tx->rcpt_used = 0;
	tx->nrcpt = 0;
	free(tx->rcpts);
	tx->rcpts = NULL;
}

/* wipe_credentials - the decoded user and password are gone after use */
static void wipe_credentials(struct engine *e)
{
	explicit_bzero(e->auth_pass, sizeof(e->auth_pass));
	e->auth_pass_len = 0;
}

/* engine_init - see engine.h */
void engine_init(struct engine *e, const struct config *cfg, const struct engine_features *feat,
                 const char *peer, const char *id)
{
	memset(e, 0, sizeof(*e));
	e->cfg = cfg;
	e->feat = *feat;
	if (!e->feat.hostname)
		e->feat.hostname = "localhost";
	snprintf(e->peer, sizeof(e->peer), "%s", peer);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->state = STATE_CONNECTED;
	reply_add(&e->out, 220, true, "%s ESMTP smtpipe", e->feat.hostname);
}

/* engine_free - release the transaction and wipe credentials */
void engine_free(struct engine *e)
{
	tx_reset(&e->tx);
	free(e->tx.rcpt_buf);
	e->tx.rcpt_buf = NULL;
	wipe_credentials(e);
}

/* engine_line_limit - AUTH lines may be long (RFC 4954 4); commands are
 * checked against BOUND_COMMAND_LINE by the engine itself */
size_t engine_line_limit(const struct engine *e)
{
	return BOUND_AUTH_LINE;
}

/* log_rejected - one line for a refused command, so that a client can
 * be debugged from the log: 5xx at info, the rest at debug; the verb
 * and the reply are the server's own words, never the AUTH data */
static void log_rejected(const struct engine *e, int code, const char *text)
{
	log_msg(code >= 500 ? LOG_INFO : LOG_DEBUG,
	        "event=command-rejected client=%s command=%s reply=\"%d %s\"", e->peer,
	        e->verb ? e->verb : "UNKNOWN", code, text);
}

/* count_error - reply to a client mistake that is logged elsewhere; the
 * error cap ends the session with 421 (Postfix smtpd_hard_error_limit) */
static enum engine_event count_error(struct engine *e, int code, const char *text)
{
	reply_add(&e->out, code, true, "%s", text);
	e->errors++;
	if (e->cfg->max_errors && e->errors >= e->cfg->max_errors) {
		log_msg(LOG_NOTICE, "event=too-many-errors errors=%u client=%s", e->errors,
		        e->peer);
		reply_add(&e->out, 421, true, "4.7.0 %s Error: too many errors", e->feat.hostname);
		e->state = STATE_CLOSED;
		return ENGINE_EV_CLOSE;
	}
	return ENGINE_EV_NONE;
}

/* client_error - reply to a client mistake, log it, count it */
static enum engine_event client_error(struct engine *e, int code, const char *text)
{
	log_rejected(e, code, text);
	return count_error(e, code, text);
}

/* in_transaction - MAIL has been accepted */
static bool in_transaction(const struct engine *e)
{
	return e->state == STATE_MAIL || e->state == STATE_RCPT;
}

static enum engine_event auth_response(struct engine *e, const char *line, size_t len,
                                       bool too_long);

/* engine_line - see engine.h */
enum engine_event engine_line(struct engine *e, const char *line, size_t len, bool too_long)
{
	if (e->state == STATE_CLOSED)
		return ENGINE_EV_CLOSE;
	if (e->state == STATE_AUTH_PLAIN || e->state == STATE_AUTH_USER ||
	    e->state == STATE_AUTH_PASS) {
		e->verb = "AUTH"; /* a response line: its text is never logged */
		return auth_response(e, line, len, too_long);
	}
	e->verb = NULL;
	if (memchr(line, '\0', len))
		return client_error(e, 500, "5.5.2 Error: NUL byte in command");

	const char *args;
	size_t alen;
	bool bad_sep;
	enum smtp_verb verb = smtp_cmd_verb(line, len, &args, &alen, &bad_sep);
	e->verb = bad_sep ? NULL : smtp_cmd_verb_name(verb);
	/* RFC 5321 4.5.3.1.4, except AUTH whose line RFC 4954 allows longer */
	if (too_long || (verb != VERB_AUTH && len > BOUND_COMMAND_LINE - 2))
		return client_error(e, 500, "5.5.2 Error: line too long");
	if (verb == VERB_UNKNOWN || bad_sep)
		return client_error(e, 500, "5.5.2 Error: command not recognized");

	const struct command *c = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].verb == verb)
			c = &commands[i];
	while (alen > 0 && args[alen - 1] == ' ') /* trailing blanks are noise */
		alen--;
	if ((c->flags & CMD_NEEDS_HELO) && e->state == STATE_CONNECTED)
		return client_error(e, 503, "5.5.1 Error: send HELO/EHLO first");
	if ((c->flags & CMD_NO_ARGS) && alen > 0) {
		char text[64];
		snprintf(text, sizeof(text), "5.5.4 Syntax: %s", smtp_cmd_verb_name(verb));
		return client_error(e, 501, text);
	}
	if ((c->flags & CMD_NEEDS_TLS) && e->feat.tls_required && !(e->flags & FLAG_TLS))
		return client_error(e, 530, "5.7.0 Must issue a STARTTLS command first");
	if ((c->flags & CMD_NEEDS_AUTH) && e->feat.auth && !(e->flags & FLAG_AUTHED))
		return client_error(e, 530, "5.7.0 Authentication required");
	return c->fn(e, args, alen);
}

/* greet - what HELO and EHLO share */
static bool greet(struct engine *e, const char *args, size_t len, const char *verb)
{
	if (!smtp_cmd_domain_ok(args, len)) {
		char text[64];
		snprintf(text, sizeof(text), "5.5.4 Syntax: %s hostname", verb);
		client_error(e, 501, text);
		return false;
	}
	memcpy(e->helo, args, len);
	e->helo[len] = '\0';
	tx_reset(&e->tx);
	e->state = STATE_READY;
	char esc[sizeof(e->helo) * 4];
	log_escape(esc, sizeof(esc), e->helo, len);
	log_msg(LOG_DEBUG, "event=helo verb=%s name=\"%s\"", verb, esc);
	return true;
}

/* cmd_helo - RFC 5321 4.1.1.1, plain SMTP */
static enum engine_event cmd_helo(struct engine *e, const char *args, size_t len)
{
	if (greet(e, args, len, "HELO")) {
		e->flags &= ~(unsigned)FLAG_ESMTP;
		reply_add(&e->out, 250, true, "%s", e->feat.hostname);
	}
	return e->state == STATE_CLOSED ? ENGINE_EV_CLOSE : ENGINE_EV_NONE;
}

/* cmd_ehlo - RFC 5321 4.1.1.1 with the extensions we offer */
static enum engine_event cmd_ehlo(struct engine *e, const char *args, size_t len)
{
	if (!greet(e, args, len, "EHLO"))
		return e->state == STATE_CLOSED ? ENGINE_EV_CLOSE : ENGINE_EV_NONE;
	e->flags |= FLAG_ESMTP;
	struct reply_buf *o = &e->out;
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

/* path_reply - the reply for a refused path */
static enum engine_event path_reply(struct engine *e, enum path_error pe, bool sender)
{
	switch (pe) {
	case PATH_TOO_LONG:
		return client_error(e, 501,
		                    sender ? "5.1.7 Sender address too long"
		                           : "5.1.3 Recipient address too long");
	case PATH_REFUSED:
		return client_error(e, 553,
		                    sender ? "5.1.7 Sender address not allowed"
		                           : "5.1.3 Recipient address not allowed");
	case PATH_8BIT:
		return client_error(e, 553, "5.6.7 8-bit address needs the SMTPUTF8 parameter");
	default:
		return client_error(e, 501,
		                    sender ? "5.1.7 Bad sender address syntax"
		                           : "5.1.3 Bad recipient address syntax");
	}
}

/* cmd_mail - RFC 5321 4.1.1.2 with SIZE, BODY, SMTPUTF8, AUTH= */
static enum engine_event cmd_mail(struct engine *e, const char *args, size_t len)
{
	if (in_transaction(e))
		return client_error(e, 503, "5.5.1 Error: nested MAIL command");
	char addr[BOUND_PATH + 1];
	const char *rest;
	size_t rlen;
	enum path_error pe = smtp_cmd_path(args, len, "FROM:", addr, &rest, &rlen, true);
	if (pe != PATH_OK)
		return path_reply(e, pe, true);
	struct mail_params mp;
	switch (smtp_cmd_mail_params(rest, rlen, &mp)) {
	case PARAM_SYNTAX:
		return client_error(e, 501, "5.5.4 Bad MAIL parameter syntax");
	case PARAM_UNSUPPORTED:
		return client_error(e, 555, "5.5.4 Unsupported MAIL parameter");
	case PARAM_OK:
		break;
	}
	if (!mp.smtputf8) {
		pe = smtp_cmd_path(args, len, "FROM:", addr, &rest, &rlen, false);
		if (pe != PATH_OK)
			return path_reply(e, pe, true);
	}
	if (mp.size_given && mp.size > e->cfg->max_message_size)
		return client_error(e, 552, "5.3.4 Message size exceeds fixed limit");
	tx_reset(&e->tx);
	memcpy(e->tx.sender, addr, strlen(addr) + 1);
	e->tx.params = mp;
	e->state = STATE_MAIL;
	char esc[BOUND_PATH * 4 + 8];
	log_escape(esc, sizeof(esc), addr, strlen(addr));
	log_msg(LOG_DEBUG, "event=mail size=%llu from=\"%s\"", mp.size, esc);
	reply_add(&e->out, 250, true, "2.1.0 Ok");
	return ENGINE_EV_NONE;
}

/* add_rcpt - keep one recipient in the transaction's buffer */
static bool add_rcpt(struct transaction *tx, const char *addr)
{
	size_t n = strlen(addr) + 1;
	if (tx->rcpt_used + n > tx->rcpt_cap) {
		size_t cap = tx->rcpt_cap ? tx->rcpt_cap * 2 : 1024;
		while (cap < tx->rcpt_used + n)
			cap *= 2;
		char *nb = realloc(tx->rcpt_buf, cap);
		if (!nb)
			return false;
		tx->rcpt_buf = nb;
		tx->rcpt_cap = cap;
	}
	memcpy(tx->rcpt_buf + tx->rcpt_used, addr, n);
	tx->rcpt_used += n;
	tx->nrcpt++;
	return true;
}

/* cmd_rcpt - RFC 5321 4.1.1.3 */
static enum engine_event cmd_rcpt(struct engine *e, const char *args, size_t len)
{
	if (!in_transaction(e))
		return client_error(e, 503, "5.5.1 Error: need MAIL command");
	char addr[BOUND_PATH + 1];
	const char *rest;
	size_t rlen;
	enum path_error pe =
	    smtp_cmd_path(args, len, "TO:", addr, &rest, &rlen, e->tx.params.smtputf8);
	if (pe == PATH_OK && addr[0] == '\0')
		pe = PATH_SYNTAX; /* RCPT TO:<> */
	if (pe != PATH_OK)
		return path_reply(e, pe, false);
	if (smtp_cmd_rcpt_params(rest, rlen) != PARAM_OK)
		return client_error(e, 555, "5.5.4 Unsupported RCPT parameter");
	/* RFC 5321 4.5.3.1.10: 452 asks the client to send the rest later. */
	if (e->tx.nrcpt >= e->cfg->max_recipients) {
		log_msg(LOG_NOTICE, "event=too-many-recipients limit=%u client=%s",
		        e->cfg->max_recipients, e->peer);
		reply_add(&e->out, 452, true, "4.5.3 Too many recipients");
		return ENGINE_EV_NONE;
	}
	if (!add_rcpt(&e->tx, addr)) {
		reply_add(&e->out, 452, true, "4.3.1 Insufficient system storage");
		return ENGINE_EV_NONE;
	}
	e->state = STATE_RCPT;
	char esc[BOUND_PATH * 4 + 8];
	log_escape(esc, sizeof(esc), addr, strlen(addr));
	log_msg(LOG_DEBUG, "event=rcpt to=\"%s\"", esc);
	reply_add(&e->out, 250, true, "2.1.5 Ok");
	return ENGINE_EV_NONE;
}

/* cmd_data - RFC 5321 4.1.1.4; RFC 2920 3.1: 554 when no recipient
 * was accepted, so a pipelining client does not send the text */
static enum engine_event cmd_data(struct engine *e, const char *args, size_t len)
{
	if (e->state == STATE_MAIL)
		return client_error(e, 554, "5.5.1 Error: no valid recipients");
	if (e->state != STATE_RCPT)
		return client_error(e, 503, "5.5.1 Error: need RCPT command");
	e->state = STATE_DATA;
	reply_add(&e->out, 354, true, "End data with <CR><LF>.<CR><LF>");
	return ENGINE_EV_DATA;
}

/* cmd_rset - RFC 5321 4.1.1.5 */
static enum engine_event cmd_rset(struct engine *e, const char *args, size_t len)
{
	tx_reset(&e->tx);
	if (e->state != STATE_CONNECTED)
		e->state = STATE_READY;
	reply_add(&e->out, 250, true, "2.0.0 Ok");
	return ENGINE_EV_NONE;
}

/* cmd_noop - RFC 5321 4.1.1.9: an argument is allowed and ignored */
static enum engine_event cmd_noop(struct engine *e, const char *args, size_t len)
{
	reply_add(&e->out, 250, true, "2.0.0 Ok");
	return ENGINE_EV_NONE;
}

/* cmd_quit - RFC 5321 4.1.1.10 */
static enum engine_event cmd_quit(struct engine *e, const char *args, size_t len)
{
	reply_add(&e->out, 221, true, "2.0.0 Bye");
	e->state = STATE_CLOSED;
	return ENGINE_EV_CLOSE;
}

/* cmd_help - RFC 5321 4.1.1.8 */
static enum engine_event cmd_help(struct engine *e, const char *args, size_t len)
{
	reply_add(&e->out, 214, false, "2.0.0 smtpipe: commands supported:");
	reply_add(&e->out, 214, false, "2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY");
	if (e->feat.starttls || e->feat.auth) /* no empty 214-2.0.0 line */
		reply_add(&e->out, 214, false, "2.0.0   %s%s%s", e->feat.starttls ? "STARTTLS" : "",
		          e->feat.starttls && e->feat.auth ? " " : "", e->feat.auth ? "AUTH" : "");
	reply_add(&e->out, 214, true, "2.0.0 End of HELP info");
	return ENGINE_EV_NONE;
}

/* cmd_vrfy - RFC 5321 3.5.3: 252, we neither confirm nor deny */
static enum engine_event cmd_vrfy(struct engine *e, const char *args, size_t len)
{
	if (len == 0)
		return client_error(e, 501, "5.5.4 Syntax: VRFY address");
	reply_add(&e->out, 252, true, "2.5.0 Cannot VRFY user, but will accept message");
	return ENGINE_EV_NONE;
}

/* cmd_expn - mailing lists are not ours to expand */
static enum engine_event cmd_expn(struct engine *e, const char *args, size_t len)
{
	log_rejected(e, 502, "5.5.1 EXPN not implemented");
	reply_add(&e->out, 502, true, "5.5.1 EXPN not implemented");
	return ENGINE_EV_NONE;
}

/* cmd_not_implemented - known verbs we do not offer (BDAT without
 * CHUNKING, TURN, ETRN, ...) */
static enum engine_event cmd_not_implemented(struct engine *e, const char *args, size_t len)
{
	return client_error(e, 502, "5.5.1 Error: command not implemented");
}

/* cmd_starttls - RFC 3207 */
static enum engine_event cmd_starttls(struct engine *e, const char *args, size_t len)
{
	if (!e->feat.starttls)
		return client_error(e, 502, "5.5.1 Error: command not implemented");
	if (e->flags & FLAG_TLS)
		return client_error(e, 503, "5.5.1 Error: TLS already active");
	tx_reset(&e->tx);
	reply_add(&e->out, 220, true, "2.0.0 Ready to start TLS");
	return ENGINE_EV_STARTTLS;
}

/* engine_tls_started - RFC 3207 4.2: forget everything, expect EHLO */
void engine_tls_started(struct engine *e)
{
	e->flags |= FLAG_TLS;
	e->flags &= ~(unsigned)FLAG_ESMTP;
	e->helo[0] = '\0';
	tx_reset(&e->tx);
	e->state = STATE_CONNECTED;
}

/* auth_credentials - store decoded credentials for the session's check;
 * a field over its buffer leaves pass_len 0, which never matches (an
 * empty password is refused at start-up) */
static enum engine_event auth_credentials(struct engine *e, const char *user, size_t ulen,
                                          const char *pass, size_t plen)
{
	e->auth_user_len = ulen < sizeof(e->auth_user) ? ulen : sizeof(e->auth_user) - 1;
	memmove(e->auth_user, user, e->auth_user_len); /* LOGIN passes auth_user itself */
	e->auth_user[e->auth_user_len] = '\0';
	if (plen < sizeof(e->auth_pass) && ulen < sizeof(e->auth_user)) {
		memcpy(e->auth_pass, pass, plen);
		e->auth_pass_len = plen;
	} else {
		e->auth_pass_len = 0;
	}
	e->state = STATE_READY;
	return ENGINE_EV_AUTH;
}

/* auth_plain - decode a PLAIN response (RFC 4616 2) */
static enum engine_event auth_plain(struct engine *e, const char *b64, size_t len)
{
	char buf[BOUND_AUTH_LINE];
	long n = (len == 1 && b64[0] == '=') ? 0 : auth_b64_decode(b64, len, buf, sizeof(buf));
	e->state = STATE_READY;
	if (n < 0)
		return client_error(e, 501, "5.5.2 Invalid base64 data");
	const char *zid, *user, *pass;
	size_t zl, ul, pl;
	if (auth_plain_split(buf, (size_t)n, &zid, &zl, &user, &ul, &pass, &pl) < 0) {
		explicit_bzero(buf, sizeof(buf));
		return client_error(e, 501, "5.5.2 Malformed PLAIN response");
	}
	/* We only act as the user who logs in: an authzid must name them. */
	bool zid_ok = zl == 0 || (zl == ul && memcmp(zid, user, ul) == 0);
	enum engine_event ev = auth_credentials(e, user, ul, pass, zid_ok ? pl : 0);
	if (!zid_ok)
		e->auth_pass_len = 0;
	explicit_bzero(buf, sizeof(buf));
	return ev;
}

/* auth_response - a line after a 334 challenge */
static enum engine_event auth_response(struct engine *e, const char *line, size_t len,
                                       bool too_long)
{
	enum engine_state st = e->state;
	if (len == 1 && line[0] == '*') {
		e->state = STATE_READY;
		e->flags &= ~FLAG_LOGIN_USER_LONG;
		wipe_credentials(e);
		return client_error(e, 501, "5.7.0 Authentication cancelled");
	}
	if (too_long) {
		e->state = STATE_READY;
		wipe_credentials(e);
		return client_error(e, 500, "5.5.2 Error: line too long");
	}
	if (st == STATE_AUTH_PLAIN)
		return auth_plain(e, line, len);
	char buf[BOUND_AUTH_LINE];
	long n = auth_b64_decode(line, len, buf, sizeof(buf));
	if (n < 0) {
		e->state = STATE_READY;
		wipe_credentials(e);
		return client_error(e, 501, "5.5.2 Invalid base64 data");
	}
	if (st == STATE_AUTH_USER) {
		size_t ul = (size_t)n < sizeof(e->auth_user) ? (size_t)n : sizeof(e->auth_user) - 1;
		memcpy(e->auth_user, buf, ul);
		e->auth_user[ul] = '\0';
		e->auth_user_len = ul; /* cut for the log only: */
		if ((size_t)n >= sizeof(e->auth_user))
			e->flags |= FLAG_LOGIN_USER_LONG;
		e->state = STATE_AUTH_PASS;
		reply_add(&e->out, 334, true, "UGFzc3dvcmQ6"); /* "Password:" */
		return ENGINE_EV_NONE;
	}
	enum engine_event ev = auth_credentials(e, e->auth_user, e->auth_user_len, buf, (size_t)n);
	if (e->flags & FLAG_LOGIN_USER_LONG)
		e->auth_pass_len = 0; /* as PLAIN does: never matches */
	e->flags &= ~FLAG_LOGIN_USER_LONG;
	explicit_bzero(buf, sizeof(buf));
	return ev;
}

/* cmd_auth - RFC 4954 4 with PLAIN and LOGIN */
static enum engine_event cmd_auth(struct engine *e, const char *args, size_t len)
{
	if (!e->feat.auth)
		return client_error(e, 503, "5.5.1 Error: authentication not enabled");
	if (e->flags & FLAG_AUTHED)
		return client_error(e, 503, "5.5.1 Error: already authenticated");
	if (in_transaction(e))
		return client_error(e, 503,
		                    "5.5.1 Error: AUTH not permitted during a mail transaction");
	const char *sp = memchr(args, ' ', len);
	size_t ml = sp ? (size_t)(sp - args) : len;
	const char *ir = sp ? sp + 1 : NULL;
	size_t irl = sp ? len - ml - 1 : 0;
	if (ml == 0)
		return client_error(e, 501, "5.5.4 Syntax: AUTH mechanism");
	if (ml == 5 && strncasecmp(args, "PLAIN", 5) == 0) {
		snprintf(e->auth_mech, sizeof(e->auth_mech), "PLAIN");
		if (ir)
			return auth_plain(e, ir, irl);
		e->state = STATE_AUTH_PLAIN;
		/* RFC 4954 4: "334" SP [base64] CRLF, so an empty challenge is
		 * "334 " (GNU SASL refuses a second space as bad base64) */
		reply_add(&e->out, 334, true, "%s", "");
		return ENGINE_EV_NONE;
	}
	if (ml == 5 && strncasecmp(args, "LOGIN", 5) == 0) {
		snprintf(e->auth_mech, sizeof(e->auth_mech), "LOGIN");
		e->flags &= ~FLAG_LOGIN_USER_LONG;
		e->state = STATE_AUTH_USER;
		if (ir) /* an initial response carries the user name */
			return auth_response(e, ir, irl, false);
		reply_add(&e->out, 334, true, "VXNlcm5hbWU6"); /* "Username:" */
		return ENGINE_EV_NONE;
	}
	return client_error(e, 504, "5.5.4 Unrecognized authentication type");
}

/* engine_auth_result - the session checked the credentials */
void engine_auth_result(struct engine *e, bool ok)
{
	wipe_credentials(e);
	if (ok) {
		e->flags |= FLAG_AUTHED;
		reply_add(&e->out, 235, true, "2.7.0 Authentication successful");
	} else {
		/* the session logs event=auth-failed */
		count_error(e, 535, "5.7.8 Authentication credentials invalid");
	}
}

/* envelope_ready - the recipient list for the delivery; out of memory
 * is a reason to try again later (451), never a permanent failure */
static bool envelope_ready(struct engine *e)
{
	struct transaction *tx = &e->tx;
	free(tx->rcpts);
	tx->rcpts = calloc(tx->nrcpt + 1, sizeof(*tx->rcpts));
	if (!tx->rcpts) {
		log_msg(LOG_ERR, "event=rejected reason=out-of-memory client=%s nrcpt=%zu", e->peer,
		        tx->nrcpt);
		reply_add(&e->out, 451, true, "4.3.0 Out of memory, try again later");
		tx_reset(tx);
		return false;
	}
	const char *p = tx->rcpt_buf;
	for (size_t i = 0; i < tx->nrcpt; i++) {
		tx->rcpts[i] = p;
		p += strlen(p) + 1;
	}
	return true;
}

/* engine_data_end - see engine.h */
enum engine_event engine_data_end(struct engine *e, const struct data_decoder *d, int spool_error)
{
	e->state = STATE_READY;
	const char *why = NULL;
	enum engine_event ev = ENGINE_EV_NONE;
	if (d->too_big) {
		why = "too-big";
		ev = count_error(e, 552, "5.3.4 Message size exceeds fixed limit");
	} else if (d->line_too_long) {
		why = "line-too-long";
		ev = count_error(e, 500, "5.5.2 Error: line too long in message text");
	} else if (spool_error) {
		char dir[1024];
		log_escape(dir, sizeof(dir), e->cfg->spool_dir ? e->cfg->spool_dir : "",
		           e->cfg->spool_dir ? strlen(e->cfg->spool_dir) : 0);
		log_msg(LOG_ERR,
		        "event=rejected reason=spool-error client=%s size=%zu spool-dir=\"%s\" "
		        "error=\"%s\"",
		        e->peer, d->size, dir, strerror(spool_error));
		reply_add(&e->out, 452, true, "4.3.1 Insufficient system storage");
		tx_reset(&e->tx);
		return ENGINE_EV_NONE;
	} else {
		return envelope_ready(e) ? ENGINE_EV_DELIVER : ENGINE_EV_NONE;
	}
	log_msg(LOG_NOTICE, "event=rejected reason=%s client=%s size=%zu longest-line=%zu", why,
	        e->peer, d->size, d->longest);
	tx_reset(&e->tx);
	return ev;
}

/* engine_envelope - see engine.h */
void engine_envelope(struct engine *e, struct delivery *d)
{
	struct transaction *tx = &e->tx; /* rcpts: built by engine_data_end */
	d->sender = tx->sender;
	d->rcpts = tx->rcpts;
	d->nrcpt = tx->rcpts ? tx->nrcpt : 0;
	d->id = e->id;
}

/* engine_received - RFC 5321 4.4 trace header, protocol names of RFC 3848 */
size_t engine_received(const struct engine *e, const char *hostname, const char *tls_desc,
                       time_t now, char *buf, size_t cap)
{
	char date[64];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* RFC 3848 and RFC 6531 7: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP... */
	const char *base = e->tx.params.smtputf8     ? "UTF8SMTP"
	                   : (e->flags & FLAG_ESMTP) ? "ESMTP"
	                                             : "SMTP";
	char with[16];
	snprintf(with, sizeof(with), "%s%s%s", base, (e->flags & FLAG_TLS) ? "S" : "",
	         (e->flags & FLAG_AUTHED) ? "A" : "");
	char tls[160] = "";
	if (tls_desc && (e->flags & FLAG_TLS))
		snprintf(tls, sizeof(tls), "\n\t(%s)", tls_desc);
	char rcpt[BOUND_PATH + 16] = "";
	if (e->tx.nrcpt == 1)
		snprintf(rcpt, sizeof(rcpt), "\n\tfor <%s>", e->tx.rcpt_buf);
	int n = snprintf(
	    buf, cap, "Received: from %s ([%s])\n\tby %s (smtpipe) with %s id %s.%u%s%s;\n\t%s\n",
	    e->helo[0] ? e->helo : "unknown", e->peer, hostname, with, e->id, e->messages + 1, tls,
	    rcpt, date);
	return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

/* engine_delivered - the delivery result becomes the reply */
void engine_delivered(struct engine *e, const struct delivery_result *r)
{
	if (r->code == 250)
		e->messages++;
	reply_add(&e->out, r->code, true, "%s", r->text);
	tx_reset(&e->tx);
	e->state = STATE_READY;
}

/* engine_unfinished - see engine.h */
const char *engine_unfinished(const struct engine *e)
{
	switch (e->state) {
	case STATE_AUTH_PLAIN:
	case STATE_AUTH_USER:
	case STATE_AUTH_PASS:
		return "mid-auth";
	case STATE_MAIL:
	case STATE_RCPT:
	case STATE_DATA:
		return "mid-transaction";
	default:
		return NULL;
	}
}

/* engine_timeout - RFC 5321 4.5.3.2: 421 and close */
void engine_timeout(struct engine *e)
{
	reply_add(&e->out, 421, true, "4.4.2 %s Error: timeout exceeded", e->feat.hostname);
	e->state = STATE_CLOSED;
}

/* engine_shutdown - the daemon is going away */
void engine_shutdown(struct engine *e)
{
	reply_add(&e->out, 421, true, "4.3.2 %s Service shutting down", e->feat.hostname);
	e->state = STATE_CLOSED;
}
