/*
 * fuzz_engine.c - arbitrary bytes through the engine and the DATA decoder
 *
 * The input is split the way smtp_io splits it: lines end at LF, a
 * trailing CR is dropped, lines over BOUND_AUTH_LINE are "too long".
 * After a 354 the rest goes through the DATA decoder in blocks whose
 * sizes come from the input itself, then back to lines. The first byte
 * picks the features (STARTTLS, required TLS, AUTH) and small limits so
 * the limit paths are reached too. AUTH checks accept alice/secret.
 * Built by run.sh with libFuzzer, or with replay_main.c for ctest.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bounds.h"
#include "config.h"
#include "data.h"
#include "deliver.h"
#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct reply_buf out; /* the session would have flushed it */

/* check_envelope - what a delivery command is given is sane */
static void check_envelope(const struct engine_event *ev, const struct config *cfg)
{
	const struct delivery *dv = &ev->envelope;
	if (dv->nrcpt == 0 || dv->nrcpt > cfg->max_recipients)
		__builtin_trap(); /* DATA needs 1..max recipients */
	for (size_t i = 0; i < dv->nrcpt; i++)
		if (dv->rcpts[i][0] == '-' || dv->rcpts[i][0] == '\0')
			__builtin_trap(); /* never an option, never empty */
	if (dv->sender[0] == '-' || dv->rcpts[dv->nrcpt] != NULL)
		__builtin_trap();
}

/* feed_data - message text until the end of data; returns bytes used,
 * *closed when the engine ended the session */
static size_t feed_data(struct engine *e, const struct config *cfg, const uint8_t *p, size_t n,
                        uint8_t blockseed, bool *closed)
{
	static char dec[BOUND_AUTH_LINE * 8];
	struct data_decoder d;
	data_decoder_init(&d, cfg->max_message_size, cfg->max_line_length - 2);
	size_t pos = 0, block = 1 + (blockseed % 64) * 97;
	while (pos < n && !d.done) {
		size_t len = n - pos < block ? n - pos : block, w;
		if (len > sizeof(dec) - 2)
			len = sizeof(dec) - 2;
		pos += data_decode(&d, (const char *)p + pos, len, dec, &w);
		if (w > len + 2)
			__builtin_trap(); /* the decoder's output bound */
	}
	if (!d.done)
		return pos;
	out.len = 0;
	const struct engine_event *ev = engine_data_end(e, &d, blockseed == 7 ? 28 : 0);
	if (out.len == 0 && ev->kind != ENGINE_EV_DELIVER)
		__builtin_trap(); /* a refused message gets its reply */
	if (ev->kind == ENGINE_EV_DELIVER) {
		check_envelope(ev, cfg);
		struct delivery_result r = {.code = blockseed & 1 ? 250 : 451};
		memcpy(r.text, "x", 2);
		ev = engine_delivered(e, &r);
	}
	*closed = ev->kind == ENGINE_EV_CLOSE;
	return pos;
}

/* auth_ok - the check of the transcripts: alice/secret */
static bool auth_ok(const struct engine_event *ev)
{
	const struct engine_credentials *c = &ev->cred;
	return c->user_len == 5 && memcmp(c->user, "alice", 5) == 0 && c->pass_len == 6 &&
	       memcmp(c->pass, "secret", 6) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t sel = data[0];
	struct config cfg = {
	    .max_recipients = sel & 0x10 ? 3 : 100,
	    .max_message_size = sel & 0x20 ? 64 : 1 << 20,
	    .max_line_length = sel & 0x40 ? 20 : 1000,
	    .max_errors = sel & 0x80 ? 5 : 20,
	};
	struct engine_features feat = {
	    .hostname = "fuzz.example",
	    .starttls = sel & 1,
	    .tls_required = sel & 2,
	    .auth = sel & 4,
	};
	out.len = 0;
	struct engine *e = engine_new(&cfg, &feat, "192.0.2.1", "FUZZ", &out);
	if (!e)
		return 0;
	const uint8_t *p = data + 1, *end = data + size;
	bool closed = false;
	while (p < end && !closed) {
		out.len = 0; /* the session would have flushed */
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const uint8_t *next = nl ? nl + 1 : end;
		bool too_long = len > BOUND_AUTH_LINE;
		size_t l = too_long ? 0 : len;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		const struct engine_event *ev = engine_line(e, (const char *)p, l, too_long);
		p = next;
		if (out.len == 0 && ev->kind != ENGINE_EV_AUTH)
			__builtin_trap(); /* every command gets a reply */
		if (ev->kind == ENGINE_EV_DATA)
			p += feed_data(e, &cfg, p, (size_t)(end - p), (uint8_t)len, &closed);
		else if (ev->kind == ENGINE_EV_STARTTLS)
			ev = engine_tls_started(e, "fuzz TLS");
		else if (ev->kind == ENGINE_EV_AUTH)
			ev = engine_auth_result(e, auth_ok(ev));
		if (ev->kind == ENGINE_EV_CLOSE)
			closed = true;
	}
	engine_free(e);
	return 0;
}
