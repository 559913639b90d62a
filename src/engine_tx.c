/*
 * engine_tx.c - the mail transaction of the engine: MAIL, RCPT, DATA,
 *               the end of the message and its delivery's reply
 *
 * One struct transaction (engine_impl.h) lives from MAIL to the end of
 * DATA: the sender and its parameters, the recipients in one growing
 * buffer. DATA hands the session the trace of the Received: header in
 * an ENGINE_EV_DATA event; the end of the message (engine_data_end)
 * answers a refusal or hands the envelope on in ENGINE_EV_DELIVER; the
 * delivery's result (engine_delivered) becomes the reply. The
 * transaction resets after each message, and on RSET, HELO/EHLO and
 * STARTTLS (engine.c). Part of the engine: no system calls.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounds.h"
#include "config.h"
#include "data.h"
#include "engine_impl.h"
#include "faults.h"
#include "log.h"
#include "smtp_cmd.h"

/* engine_tx_reset - forget the transaction, keep the recipient buffer */
void engine_tx_reset(struct transaction *tx)
{
	tx->sender[0] = '\0';
	memset(&tx->params, 0, sizeof(tx->params));
	tx->rcpt_used = 0;
	tx->nrcpt = 0;
	free(tx->rcpts);
	tx->rcpts = NULL;
}

/* path_reply - the reply for a refused path */
static enum engine_event_kind path_reply(struct engine *e, enum path_error pe, bool sender)
{
	switch (pe) {
	case PATH_TOO_LONG:
		return engine_client_error(e, 501,
		                           sender ? "5.1.7 Sender address too long"
		                                  : "5.1.3 Recipient address too long");
	case PATH_REFUSED:
		return engine_client_error(e, 553,
		                           sender ? "5.1.7 Sender address not allowed"
		                                  : "5.1.3 Recipient address not allowed");
	case PATH_8BIT:
		return engine_client_error(e, 553,
		                           "5.6.7 8-bit address needs the SMTPUTF8 parameter");
	default:
		return engine_client_error(e, 501,
		                           sender ? "5.1.7 Bad sender address syntax"
		                                  : "5.1.3 Bad recipient address syntax");
	}
}

/* engine_cmd_mail - RFC 5321 4.1.1.2 with SIZE, BODY, SMTPUTF8, AUTH= */
enum engine_event_kind engine_cmd_mail(struct engine *e, const char *args, size_t len)
{
	char addr[BOUND_PATH + 1];
	const char *rest;
	size_t rlen;
	enum path_error pe = smtp_cmd_path(args, len, "FROM:", addr, &rest, &rlen, true);
	if (pe != PATH_OK)
		return path_reply(e, pe, true);
	struct mail_params mp;
	switch (smtp_cmd_mail_params(rest, rlen, &mp)) {
	case PARAM_SYNTAX:
		return engine_client_error(e, 501, "5.5.4 Bad MAIL parameter syntax");
	case PARAM_UNSUPPORTED:
		return engine_client_error(e, 555, "5.5.4 Unsupported MAIL parameter");
	case PARAM_OK:
		break;
	}
	if (!mp.smtputf8) {
		pe = smtp_cmd_path(args, len, "FROM:", addr, &rest, &rlen, false);
		if (pe != PATH_OK)
			return path_reply(e, pe, true);
	}
	if (mp.size_given && mp.size > e->cfg->max_message_size)
		return engine_client_error(e, 552, "5.3.4 Message size exceeds fixed limit");
	const struct fault_rule *r = engine_fault(e, FAULT_MAIL, addr);
	if (r)
		return engine_fault_act(e, r);
	engine_tx_reset(&e->tx);
	memcpy(e->tx.sender, addr, strlen(addr) + 1);
	e->tx.params = mp;
	engine_set_state(e, STATE_MAIL);
	char esc[BOUND_PATH * 4 + 8];
	log_escape(esc, sizeof(esc), addr, strlen(addr));
	engine_log(e, LOG_DEBUG, "event=mail size=%llu from=\"%s\"", mp.size, esc);
	reply_add(e->out, 250, true, "2.1.0 Ok");
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

/* engine_cmd_rcpt - RFC 5321 4.1.1.3 */
enum engine_event_kind engine_cmd_rcpt(struct engine *e, const char *args, size_t len)
{
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
		return engine_client_error(e, 555, "5.5.4 Unsupported RCPT parameter");
	const struct fault_rule *r = engine_fault(e, FAULT_RCPT, addr);
	if (r) /* the recipient is not added */
		return engine_fault_act(e, r);
	/* RFC 5321 4.5.3.1.10: 452 asks the client to send the rest later. */
	if (e->tx.nrcpt >= e->cfg->max_recipients) {
		engine_log(e, LOG_NOTICE, "event=too-many-recipients limit=%u client=%s",
		           e->cfg->max_recipients, e->peer);
		reply_add(e->out, 452, true, "4.5.3 Too many recipients");
		return ENGINE_EV_NONE;
	}
	if (!add_rcpt(&e->tx, addr)) {
		reply_add(e->out, 452, true, "4.3.1 Insufficient system storage");
		return ENGINE_EV_NONE;
	}
	engine_set_state(e, STATE_RCPT);
	char esc[BOUND_PATH * 4 + 8];
	log_escape(esc, sizeof(esc), addr, strlen(addr));
	engine_log(e, LOG_DEBUG, "event=rcpt to=\"%s\"", esc);
	reply_add(e->out, 250, true, "2.1.5 Ok");
	return ENGINE_EV_NONE;
}

/* trace - what the Received: header of the message says; RFC 3848 and
 * RFC 6531 7 name the protocol: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP... */
static void trace(struct engine *e, struct engine_trace *t)
{
	const char *base = e->tx.params.smtputf8     ? "UTF8SMTP"
	                   : (e->flags & FLAG_ESMTP) ? "ESMTP"
	                                             : "SMTP";
	snprintf(e->with, sizeof(e->with), "%s%s%s", base, (e->flags & FLAG_TLS) ? "S" : "",
	         (e->flags & FLAG_AUTHED) ? "A" : "");
	t->helo = e->helo[0] ? e->helo : "unknown";
	t->peer = e->peer;
	t->by = e->feat.hostname;
	t->with = e->with;
	t->tls = (e->flags & FLAG_TLS) && e->has_tls_desc ? e->tls_desc : NULL;
	t->id = e->id;
	t->msgno = e->messages + 1;
	t->for_rcpt = e->tx.nrcpt == 1 ? e->tx.rcpt_buf : NULL;
}

/* engine_cmd_data - RFC 5321 4.1.1.4 (the table refused it without recipients) */
enum engine_event_kind engine_cmd_data(struct engine *e, const char *args, size_t len)
{
	(void)args, (void)len;
	const struct fault_rule *r = engine_fault(e, FAULT_DATA, e->tx.sender);
	if (r) /* the transaction stays as it was: RSET, or DATA again */
		return engine_fault_act(e, r);
	engine_set_state(e, STATE_DATA);
	reply_add(e->out, 354, true, "End data with <CR><LF>.<CR><LF>");
	trace(e, &e->ev.trace);
	return ENGINE_EV_DATA;
}

/* --- the end of DATA and delivery ---------------------------------- */

/* envelope_ready - the recipient list for the delivery; out of memory
 * is a reason to try again later (451), never a permanent failure */
static bool envelope_ready(struct engine *e)
{
	struct transaction *tx = &e->tx;
	free(tx->rcpts);
	tx->rcpts = calloc(tx->nrcpt + 1, sizeof(*tx->rcpts));
	if (!tx->rcpts) {
		engine_log(e, LOG_ERR, "event=rejected reason=out-of-memory client=%s nrcpt=%zu",
		           e->peer, tx->nrcpt);
		reply_add(e->out, 451, true, "4.3.0 Out of memory, try again later");
		engine_tx_reset(tx);
		return false;
	}
	const char *p = tx->rcpt_buf;
	for (size_t i = 0; i < tx->nrcpt; i++) {
		tx->rcpts[i] = p;
		p += strlen(p) + 1;
	}
	e->ev.envelope = (struct delivery){
	    .sender = tx->sender, .rcpts = tx->rcpts, .nrcpt = tx->nrcpt, .id = e->id};
	e->ev.msgno = e->messages + 1;
	return true;
}

/* spool_failed - 452: the disk, not the client, is at fault */
static void spool_failed(struct engine *e, const struct data_decoder *d, int spool_error)
{
	const char *dir = e->cfg->spool_dir ? e->cfg->spool_dir : "";
	char esc[1024];
	log_escape(esc, sizeof(esc), dir, strlen(dir));
	engine_log(
	    e, LOG_ERR,
	    "event=rejected reason=spool-error client=%s size=%zu spool-dir=\"%s\" error=\"%s\"",
	    e->peer, d->size, esc, strerror(spool_error));
	reply_add(e->out, 452, true, "4.3.1 Insufficient system storage");
}

/* engine_data_end - see engine.h */
const struct engine_event *engine_data_end(struct engine *e, const struct data_decoder *d,
                                           int spool_error)
{
	engine_begin(e);
	engine_set_state(e, STATE_READY);
	const char *why = NULL;
	enum engine_event_kind k = ENGINE_EV_NONE;
	if (d->too_big) {
		why = "too-big";
		k = engine_count_error(e, 552, "5.3.4 Message size exceeds fixed limit");
	} else if (d->line_too_long) {
		why = "line-too-long";
		k = engine_count_error(e, 500, "5.5.2 Error: line too long in message text");
	} else if (spool_error) {
		spool_failed(e, d, spool_error);
	} else {
		/* invariant 1: a dot fault answers instead of a delivery */
		const struct fault_rule *r = engine_fault(e, FAULT_DOT, e->tx.sender);
		if (r) {
			engine_tx_reset(&e->tx);
			return engine_emit(e, engine_fault_act(e, r));
		}
		return engine_emit(e, envelope_ready(e) ? ENGINE_EV_DELIVER : ENGINE_EV_NONE);
	}
	if (why)
		engine_log(e, LOG_NOTICE,
		           "event=rejected reason=%s client=%s size=%zu longest-line=%zu", why,
		           e->peer, d->size, d->longest);
	engine_tx_reset(&e->tx);
	return engine_emit(e, k);
}

/* engine_received - RFC 5321 4.4 trace header */
size_t engine_received(const struct engine_trace *t, time_t now, char *buf, size_t cap)
{
	char date[64];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	char tls[160] = "";
	if (t->tls)
		snprintf(tls, sizeof(tls), "\n\t(%s)", t->tls);
	char rcpt[BOUND_PATH + 16] = "";
	if (t->for_rcpt)
		snprintf(rcpt, sizeof(rcpt), "\n\tfor <%s>", t->for_rcpt);
	int n = snprintf(
	    buf, cap, "Received: from %s ([%s])\n\tby %s (smtpipe) with %s id %s.%u%s%s;\n\t%s\n",
	    t->helo, t->peer, t->by, t->with, t->id, t->msgno, tls, rcpt, date);
	return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

/* engine_delivered - the delivery result becomes the reply */
const struct engine_event *engine_delivered(struct engine *e, const struct delivery_result *r)
{
	engine_begin(e);
	if (r->code == 250)
		e->messages++;
	reply_add(e->out, r->code, true, "%s", r->text);
	engine_tx_reset(&e->tx);
	engine_set_state(e, STATE_READY);
	return engine_emit(e, ENGINE_EV_NONE);
}
