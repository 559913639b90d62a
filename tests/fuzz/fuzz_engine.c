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

#include "config.h"
#include "data.h"
#include "deliver.h"
#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* feed_data - message text until the end of data; returns bytes used */
static size_t feed_data(struct engine *e, const uint8_t *p, size_t n, uint8_t blockseed)
{
	static char out[BOUND_AUTH_LINE * 8];
	struct data_decoder d;
	data_decoder_init(&d, e->cfg->max_message_size, e->cfg->max_line_length - 2);
	size_t pos = 0, block = 1 + (blockseed % 64) * 97;
	while (pos < n && !d.done) {
		size_t len = n - pos < block ? n - pos : block, w;
		if (len > sizeof(out) - 2)
			len = sizeof(out) - 2;
		pos += data_decode(&d, (const char *)p + pos, len, out, &w);
		if (w > len + 2)
			__builtin_trap(); /* the decoder's output bound */
	}
	if (!d.done)
		return pos;
	if (engine_data_end(e, &d, blockseed == 7 ? 28 : 0) == ENGINE_EV_DELIVER) {
		struct delivery dv;
		engine_envelope(e, &dv);
		if (dv.nrcpt == 0 || dv.nrcpt > e->cfg->max_recipients)
			__builtin_trap(); /* DATA needs 1..max recipients */
		for (size_t i = 0; i < dv.nrcpt; i++)
			if (dv.rcpts[i][0] == '-' || dv.rcpts[i][0] == '\0')
				__builtin_trap(); /* never an option, never empty */
		if (dv.sender[0] == '-')
			__builtin_trap();
		struct delivery_result r = {.code = blockseed & 1 ? 250 : 451};
		memcpy(r.text, "x", 2);
		engine_delivered(e, &r);
	}
	return pos;
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
	static struct engine e;
	engine_init(&e, &cfg, &feat, "192.0.2.1", "FUZZ");
	const uint8_t *p = data + 1, *end = data + size;
	while (p < end && e.state != STATE_CLOSED) {
		e.out.len = 0; /* the session would have flushed */
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const uint8_t *next = nl ? nl + 1 : end;
		bool too_long = len > BOUND_AUTH_LINE;
		size_t l = too_long ? 0 : len;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		enum engine_event ev = engine_line(&e, (const char *)p, l, too_long);
		p = next;
		if (e.out.len == 0 && ev != ENGINE_EV_AUTH)
			__builtin_trap(); /* every command gets a reply */
		if (ev == ENGINE_EV_DATA)
			p += feed_data(&e, p, (size_t)(end - p), (uint8_t)len);
		else if (ev == ENGINE_EV_STARTTLS)
			engine_tls_started(&e);
		else if (ev == ENGINE_EV_AUTH)
			engine_auth_result(
			    &e, e.auth_user_len == 5 && memcmp(e.auth_user, "alice", 5) == 0 &&
			            e.auth_pass_len == 6 && memcmp(e.auth_pass, "secret", 6) == 0);
	}
	engine_free(&e);
	return 0;
}
