/*
 * engine_auth.c - the SASL exchange of the engine (RFC 4954, RFC 4616)
 *
 * AUTH PLAIN and LOGIN: the challenges, the base64 responses, and the
 * decoded credentials handed to the session in an ENGINE_EV_AUTH event,
 * wiped once the session has checked them. Part of the engine: no
 * system calls, and struct engine is shared with engine.c only through
 * engine_impl.h.
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "bounds.h"
#include "engine_impl.h"
#include "faults.h"

/* auth_credentials - hand decoded credentials to the session's check;
 * a field over its buffer leaves pass_len 0, which never matches (an
 * empty password is refused at start-up) */
static enum engine_event_kind auth_credentials(struct engine *e, const char *user, size_t ulen,
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
	engine_set_state(e, STATE_READY);
	return ENGINE_EV_AUTH;
}

/* credentials_event - the event carries what auth_credentials kept;
 * an auth fault answers instead, before any check and outside the
 * brake: it never lets anyone in, so no guess is tried and nothing
 * about the secret can be timed, and it costs other clients no turn */
static enum engine_event_kind credentials_event(struct engine *e)
{
	const struct fault_rule *r = engine_fault(e, FAULT_AUTH, e->auth_user);
	if (r) {
		engine_wipe_credentials(e);
		return engine_fault_act(e, r);
	}
	e->ev.cred = (struct engine_credentials){.mech = e->auth_mech,
	                                         .user = e->auth_user,
	                                         .user_len = e->auth_user_len,
	                                         .pass = e->auth_pass,
	                                         .pass_len = e->auth_pass_len};
	return ENGINE_EV_AUTH;
}

/* auth_plain - decode a PLAIN response (RFC 4616 2) */
static enum engine_event_kind auth_plain(struct engine *e, const char *b64, size_t len)
{
	char buf[BOUND_AUTH_LINE];
	long n = (len == 1 && b64[0] == '=') ? 0 : auth_b64_decode(b64, len, buf, sizeof(buf));
	engine_set_state(e, STATE_READY);
	if (n < 0)
		return engine_client_error(e, 501, "5.5.2 Invalid base64 data");
	const char *zid, *user, *pass;
	size_t zl, ul, pl;
	if (auth_plain_split(buf, (size_t)n, &zid, &zl, &user, &ul, &pass, &pl) < 0) {
		explicit_bzero(buf, sizeof(buf));
		return engine_client_error(e, 501, "5.5.2 Malformed PLAIN response");
	}
	/* We only act as the user who logs in: an authzid must name them. */
	bool zid_ok = zl == 0 || (zl == ul && memcmp(zid, user, ul) == 0);
	auth_credentials(e, user, ul, pass, zid_ok ? pl : 0);
	if (!zid_ok)
		e->auth_pass_len = 0;
	explicit_bzero(buf, sizeof(buf));
	return credentials_event(e);
}

/* auth_login_user - the LOGIN user name; the password is asked next */
static enum engine_event_kind auth_login_user(struct engine *e, const char *buf, size_t n)
{
	size_t ul = n < sizeof(e->auth_user) ? n : sizeof(e->auth_user) - 1;
	memcpy(e->auth_user, buf, ul);
	e->auth_user[ul] = '\0';
	e->auth_user_len = ul; /* cut for the log only: */
	if (n >= sizeof(e->auth_user))
		e->flags |= FLAG_LOGIN_USER_LONG;
	engine_set_state(e, STATE_AUTH_PASS);
	reply_add(e->out, 334, true, "UGFzc3dvcmQ6"); /* "Password:" */
	return ENGINE_EV_NONE;
}

/* auth_abort - a cancelled or unusable response: back to READY */
static enum engine_event_kind auth_abort(struct engine *e, int code, const char *text)
{
	engine_set_state(e, STATE_READY);
	e->flags &= ~(unsigned)FLAG_LOGIN_USER_LONG;
	engine_wipe_credentials(e);
	return engine_client_error(e, code, text);
}

/* auth_response - a line after a 334 challenge */
enum engine_event_kind engine_auth_response(struct engine *e, const char *line, size_t len,
                                            bool too_long)
{
	if (len == 1 && line[0] == '*')
		return auth_abort(e, 501, "5.7.0 Authentication cancelled");
	if (too_long)
		return auth_abort(e, 500, "5.5.2 Error: line too long");
	if (e->state == STATE_AUTH_PLAIN)
		return auth_plain(e, line, len);
	char buf[BOUND_AUTH_LINE];
	long n = auth_b64_decode(line, len, buf, sizeof(buf));
	if (n < 0)
		return auth_abort(e, 501, "5.5.2 Invalid base64 data");
	if (e->state == STATE_AUTH_USER) {
		enum engine_event_kind k = auth_login_user(e, buf, (size_t)n);
		explicit_bzero(buf, sizeof(buf));
		return k;
	}
	auth_credentials(e, e->auth_user, e->auth_user_len, buf, (size_t)n);
	if (e->flags & FLAG_LOGIN_USER_LONG)
		e->auth_pass_len = 0; /* as PLAIN does: never matches */
	e->flags &= ~(unsigned)FLAG_LOGIN_USER_LONG;
	explicit_bzero(buf, sizeof(buf));
	return credentials_event(e);
}

/* engine_cmd_auth - RFC 4954 4 with PLAIN and LOGIN (offered, not yet
 * authenticated, outside a transaction: the table checked) */
enum engine_event_kind engine_cmd_auth(struct engine *e, const char *args, size_t len)
{
	const char *sp = memchr(args, ' ', len);
	size_t ml = sp ? (size_t)(sp - args) : len;
	const char *ir = sp ? sp + 1 : NULL;
	size_t irl = sp ? len - ml - 1 : 0;
	if (ml == 0)
		return engine_client_error(e, 501, "5.5.4 Syntax: AUTH mechanism");
	if (ml == 5 && strncasecmp(args, "PLAIN", 5) == 0) {
		snprintf(e->auth_mech, sizeof(e->auth_mech), "PLAIN");
		if (ir)
			return auth_plain(e, ir, irl);
		engine_set_state(e, STATE_AUTH_PLAIN);
		/* RFC 4954 4: "334" SP [base64] CRLF, so an empty challenge is
		 * "334 " (GNU SASL refuses a second space as bad base64) */
		reply_add(e->out, 334, true, "%s", "");
		return ENGINE_EV_NONE;
	}
	if (ml == 5 && strncasecmp(args, "LOGIN", 5) == 0) {
		snprintf(e->auth_mech, sizeof(e->auth_mech), "LOGIN");
		e->flags &= ~(unsigned)FLAG_LOGIN_USER_LONG;
		engine_set_state(e, STATE_AUTH_USER);
		if (ir) /* an initial response carries the user name */
			return engine_auth_response(e, ir, irl, false);
		reply_add(e->out, 334, true, "VXNlcm5hbWU6"); /* "Username:" */
		return ENGINE_EV_NONE;
	}
	return engine_client_error(e, 504, "5.5.4 Unrecognized authentication type");
}

/* engine_auth_result - the session checked the credentials */
const struct engine_event *engine_auth_result(struct engine *e, bool ok)
{
	engine_begin(e);
	engine_wipe_credentials(e);
	if (ok) {
		e->flags |= FLAG_AUTHED;
		reply_add(e->out, 235, true, "2.7.0 Authentication successful");
		return engine_emit(e, ENGINE_EV_NONE);
	}
	/* the session logs event=auth-failed */
	return engine_emit(e,
	                   engine_count_error(e, 535, "5.7.8 Authentication credentials invalid"));
}
