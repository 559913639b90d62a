/*
 * test_engine.c - the engine driven from transcripts, with no socket
 *
 * Each case is a transcript: "C: " lines go to the engine, "S: " lines
 * must match the next reply line by prefix, "S= " must match it byte
 * for byte, "S~ " skips reply lines up to one that matches. After each C line every reply line must
 * have been matched. Message text after a 354 goes through the real DATA decoder; deliveries
 * succeed with 250 unless the case says otherwise. AUTH checks accept alice/secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "data.h"
#include "deliver.h"
#include "engine.h"

struct tcase {
	const char *name;
	bool starttls, tls_required, auth;
	unsigned max_recipients; /* 0: 100 */
	size_t max_size;         /* 0: 1 MB */
	unsigned max_errors;     /* 0: 20 */
	int deliver_code;        /* 0: 250 */
	const char *transcript;
};

static const struct tcase cases[] = {
    {"happy path EHLO", .transcript = "S: 220 test.example ESMTP\n"
                                      "C: EHLO client.example\n"
                                      "S: 250-test.example Hello client.example\n"
                                      "S: 250-PIPELINING\nS: 250-SIZE 1048576\nS: 250-8BITMIME\n"
                                      "S: 250-ENHANCEDSTATUSCODES\nS: 250-SMTPUTF8\nS: 250 HELP\n"
                                      "C: MAIL FROM:<a@b.example>\nS: 250 2.1.0 Ok\n"
                                      "C: RCPT TO:<c@d.example>\nS: 250 2.1.5 Ok\n"
                                      "C: DATA\nS: 354 \n"
                                      "C: Subject: x\nC: \nC: body\nC: .\nS: 250 2.0.0 Ok\n"
                                      "C: QUIT\nS: 221 2.0.0 Bye\n"},
    {"HELO then a message",
     .transcript = "S: 220 \nC: HELO c\nS: 250 test.example\n"
                   "C: MAIL FROM:<>\nS: 250 2.1.0\nC: RCPT TO:<postmaster>\nS: 250 2.1.5\n"
                   "C: DATA\nS: 354\nC: .\nS: 250 2.0.0\n"},
    {"commands before HELO", .transcript =
                                 "S: 220 \n"
                                 "C: MAIL FROM:<a@b>\nS: 503 5.5.1 Error: send HELO/EHLO first\n"
                                 "C: RCPT TO:<a@b>\nS: 503 5.5.1\nC: DATA\nS: 503 5.5.1\n"
                                 "C: STARTTLS\nS: 503 5.5.1\nC: AUTH PLAIN\nS: 503 5.5.1\n"
                                 "C: NOOP\nS: 250 2.0.0 Ok\nC: RSET\nS: 250 2.0.0 Ok\n"
                                 "C: HELP\nS: 214-\nS: 214-\nS: 214 2.0.0 End\n"
                                 "C: VRFY bob\nS: 252 2.5.0\nC: EXPN list\nS: 502 5.5.1\n"
                                 "C: QUIT\nS: 221 2.0.0\n"},
    {"out of order commands keep the session",
     .transcript = "S: 220 \nC: EHLO c\nS~ 250 HELP\n"
                   "C: RCPT TO:<a@b>\nS: 503 5.5.1 Error: need MAIL command\n"
                   "C: DATA\nS: 503 5.5.1 Error: need RCPT command\n"
                   "C: MAIL FROM:<a@b>\nS: 250 2.1.0\n"
                   "C: MAIL FROM:<a@b>\nS: 503 5.5.1 Error: nested MAIL command\n"
                   "C: DATA\nS: 554 5.5.1 Error: no valid recipients\n"
                   "C: RCPT TO:<c@d>\nS: 250 2.1.5\n"
                   "C: NOOP\nS: 250 2.0.0\nC: VRFY x\nS: 252\nC: HELP\nS~ 214 2.0.0 End\n"
                   "C: DATA\nS: 354\nC: .\nS: 250 2.0.0\n"
                   "C: RSET\nS: 250 2.0.0\nC: NOOP\nS: 250 2.0.0\n"},
    {"three messages in one session, RSET between",
     .transcript = "S: 220 \nC: EHLO c\nS~ 250 HELP\n"
                   "C: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<c@d>\nS: 250\nC: DATA\nS: 354\nC: "
                   "1\nC: .\nS: 250\n"
                   "C: RSET\nS: 250 2.0.0\n"
                   "C: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<c@d>\nS: 250\nC: DATA\nS: 354\nC: "
                   "2\nC: .\nS: 250\n"
                   "C: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<c@d>\nS: 250\nC: RSET\nS: 250\n"
                   "C: DATA\nS: 503 5.5.1\n"
                   "C: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<c@d>\nS: 250\nC: DATA\nS: 354\nC: "
                   "3\nC: .\nS: 250\n"},
    {"syntax errors", .max_errors = 100,
     .transcript = "S: 220 \nC: FOO\nS: 500 5.5.2 Error: command not recognized\n"
                   "C: EHLO\nS: 501 5.5.4 Syntax: EHLO hostname\n"
                   "C: HELO a b\nS: 501 5.5.4\nC: EHLO a\x01"
                   "b\nS: 501 5.5.4\n"
                   "C: EHLO c\nS~ 250 HELP\n"
                   "C: MAIL\nS: 501 5.1.7\nC: MAIL TO:<a@b>\nS: 501 5.1.7\n"
                   "C: MAIL FROM:<a@b\nS: 501 5.1.7\n"
                   "C: MAIL FROM:<-oQ/tmp/x@b>\nS: 553 5.1.7\n"
                   "C: MAIL FROM:<a@b> FOO=bar\nS: 555 5.5.4\n"
                   "C: MAIL FROM:<a@b> SIZE=abc\nS: 501 5.5.4\n"
                   "C: MAIL FROM:<a@b> SIZE=99999999999\nS: 552 5.3.4\n"
                   "C: MAIL FROM:<a@b> BODY=8BITMIME SIZE=100\nS: 250 2.1.0\n"
                   "C: RCPT TO:<>\nS: 501 5.1.3\nC: RCPT TO:<-x@y>\nS: 553 5.1.3\n"
                   "C: RCPT TO:<a@b> NOTIFY=NEVER\nS: 555 5.5.4\n"
                   "C: RCPT TO:<\xc3\xa9@b>\nS: 553 5.6.7\n"
                   "C: DATA x\nS: 501 5.5.4 Syntax: DATA\n"
                   "C: RSET x\nS: 501 5.5.4\nC: VRFY\nS: 501 5.5.4\n"
                   "C: TURN\nS: 502 5.5.1\nC: BDAT 10 LAST\nS: 502 5.5.1\n"
                   "C: STARTTLS\nS: 502 5.5.1\nC: AUTH PLAIN\nS: 503 5.5.1\n"
                   "C: MAIL:FROM:<a@b>\nS: 500 5.5.2\n"},
    {"blank after colon and no brackets are tolerated",
     .transcript = "S: 220 \nC: ehlo c\nS~ 250 HELP\n"
                   "C: mail from: <a@b>\nS: 250 2.1.0\nC: rcpt to:c@d\nS: 250 2.1.5\n"
                   "C: RCPT TO:<@r1,@r2:e@f>\nS: 250 2.1.5\n"
                   "C: RCPT TO:<\"x y;|z\"@d>\nS: 250 2.1.5\n"
                   "C: RCPT TO:<u@[IPv6:::1]>\nS: 250 2.1.5\n"},
    {"SMTPUTF8 allows 8-bit addresses", .transcript =
                                            "S: 220 \nC: EHLO c\nS~ 250 HELP\n"
                                            "C: MAIL FROM:<\xc3\xa9@b> SMTPUTF8\nS: 250 2.1.0\n"
                                            "C: RCPT TO:<\xc3\xa9@b>\nS: 250 2.1.5\n"},
    {"NUL and long lines", .transcript = "S: 220 \nC: EHLO c\nS~ 250 HELP\n"
                                         "C: NOOP <LONG506>\nS: 500 5.5.2 Error: line too long\n"
                                         "C: NOOP <LONG505>\nS: 250 2.0.0\n"
                                         "C: <TOOLONG>\nS: 500 5.5.2 Error: line too long\n"
                                         "C: NO<NUL>OP\nS: 500 5.5.2 Error: NUL\n"},
    {"recipient limit", .max_recipients = 2,
     .transcript = "S: 220 \nC: EHLO c\nS~ 250 HELP\nC: MAIL FROM:<a@b>\nS: 250\n"
                   "C: RCPT TO:<1@b>\nS: 250 2.1.5\nC: RCPT TO:<2@b>\nS: 250 2.1.5\n"
                   "C: RCPT TO:<3@b>\nS: 452 4.5.3 Too many recipients\n"
                   "C: DATA\nS: 354\nC: .\nS: 250 2.0.0\n"},
    {"message size limit", .max_size = 10,
     .transcript =
         "S: 220 \nC: EHLO c\nS~ 250 HELP\nC: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<1@b>\nS: 250\n"
         "C: DATA\nS: 354\nC: 0123456789abcdef\nC: .\nS: 552 5.3.4\n"
         "C: MAIL FROM:<a@b> SIZE=11\nS: 552 5.3.4\n"
         "C: MAIL FROM:<a@b> SIZE=10\nS: 250\n"},
    {"text line limit",
     .transcript =
         "S: 220 \nC: EHLO c\nS~ 250 HELP\nC: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<1@b>\nS: 250\n"
         "C: DATA\nS: 354\nC: <LONG999>\nC: .\nS: 500 5.5.2 Error: line too long in message text\n"
         "C: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<1@b>\nS: 250\n"
         "C: DATA\nS: 354\nC: <LONG998>\nC: .\nS: 250 2.0.0\n"},
    {"error cap ends the session", .max_errors = 3,
     .transcript = "S: 220 \nC: X\nS: 500\nC: Y\nS: 500\nC: Z\nS: 500\nS: 421 4.7.0\n"},
    {"delivery failure is the reply", .deliver_code = 451,
     .transcript =
         "S: 220 \nC: EHLO c\nS~ 250 HELP\nC: MAIL FROM:<a@b>\nS: 250\nC: RCPT TO:<1@b>\nS: 250\n"
         "C: DATA\nS: 354\nC: x\nC: .\nS: 451 4.3.0\n"
         "C: MAIL FROM:<a@b>\nS: 250 2.1.0\n"},
    {"STARTTLS offered, then required TLS", .starttls = true, .tls_required = true, .auth = true,
     .transcript = "S: 220 \nC: EHLO c\nS: 250-\nS: 250-PIPELINING\nS: 250-SIZE\nS: 250-8BITMIME\n"
                   "S: 250-ENHANCEDSTATUSCODES\nS: 250-SMTPUTF8\nS: 250-STARTTLS\nS: 250 HELP\n"
                   "C: MAIL FROM:<a@b>\nS: 530 5.7.0 Must issue a STARTTLS command first\n"
                   "C: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nS: 530 5.7.0 Must issue a STARTTLS\n"
                   "C: STARTTLS now\nS: 501 5.5.4\n"
                   "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n"
                   "C: MAIL FROM:<a@b>\nS: 503 5.5.1 Error: send HELO/EHLO first\n"
                   "C: EHLO c\nS~ 250-AUTH PLAIN LOGIN\nS: 250 HELP\n"
                   "C: STARTTLS\nS: 503 5.5.1 Error: TLS already active\n"
                   "C: MAIL FROM:<a@b>\nS: 530 5.7.0 Authentication required\n"
                   "C: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nS: 235 2.7.0\n"
                   "C: MAIL FROM:<a@b>\nS: 250 2.1.0\n"},
    {"AUTH PLAIN forms", .auth = true,
     .transcript = "S: 220 \nC: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nS: 503 5.5.1 Error: send HELO\n"
                   "C: EHLO c\nS~ 250-AUTH PLAIN LOGIN\nS: 250 HELP\n"
                   "C: MAIL FROM:<a@b>\nS: 530 5.7.0 Authentication required\n"
                   "C: AUTH CRAM-MD5\nS: 504 5.5.4\n"
                   "C: AUTH PLAIN !!!\nS: 501 5.5.2 Invalid base64\n"
                   "C: AUTH PLAIN YWxpY2U=\nS: 501 5.5.2 Malformed PLAIN\n"
                   "C: AUTH PLAIN AGFsaWNlAHdyb25n\nS: 535 5.7.8\n"
                   "C: AUTH PLAIN\nS: 334 \nC: *\nS: 501 5.7.0 Authentication cancelled\n"
                   "C: AUTH PLAIN\nS: 334 \nC: Ym9iAGFsaWNlAHNlY3JldA==\nS: 535 5.7.8\n"
                   "C: AUTH PLAIN\nS: 334 \nC: YWxpY2UAYWxpY2UAc2VjcmV0\nS: 235 2.7.0\n"
                   "C: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nS: 503 5.5.1 Error: already authenticated\n"
                   "C: MAIL FROM:<a@b>\nS: 250 2.1.0\n"},
    {"AUTH LOGIN forms", .auth = true,
     .transcript = "S: 220 \nC: EHLO c\nS~ 250 HELP\n"
                   "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: YWxpY2U=\nS: 334 UGFzc3dvcmQ6\n"
                   "C: d3Jvbmc=\nS: 535 5.7.8\n"
                   "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: *\nS: 501 5.7.0\n"
                   "C: AUTH LOGIN YWxpY2U=\nS: 334 UGFzc3dvcmQ6\nC: c2VjcmV0\nS: 235 2.7.0\n"},
    {"AUTH during a transaction", .auth = true,
     .transcript = "S: 220 \nC: EHLO c\nS~ 250 HELP\n"
                   "C: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nS: 235\nC: MAIL FROM:<a@b>\nS: 250\n"
                   "C: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nS: 503 5.5.1\n"},
    {"HELP without STARTTLS and AUTH has no empty line",
     .transcript = "S: 220 \nC: HELP\nS= 214-2.0.0 smtpipe: commands supported:\n"
                   "S= 214-2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY\n"
                   "S= 214 2.0.0 End of HELP info\n"},
    {"HELP with STARTTLS", .starttls = true,
     .transcript = "S: 220 \nC: HELP\nS: 214-\nS: 214-\nS= 214-2.0.0   STARTTLS\n"
                   "S= 214 2.0.0 End of HELP info\n"},
    {"HELP with AUTH", .auth = true,
     .transcript = "S: 220 \nC: HELP\nS: 214-\nS: 214-\nS= 214-2.0.0   AUTH\n"
                   "S= 214 2.0.0 End of HELP info\n"},
    {"HELP with STARTTLS and AUTH", .starttls = true, .auth = true,
     .transcript = "S: 220 \nC: HELP\nS: 214-\nS: 214-\nS= 214-2.0.0   STARTTLS AUTH\n"
                   "S= 214 2.0.0 End of HELP info\n"},
    {"AUTH challenges byte for byte", .auth = true,
     .transcript = "S: 220 \nC: EHLO c\nS~ 250 HELP\n"
                   "C: AUTH PLAIN\nS= 334 \nC: *\nS= 501 5.7.0 Authentication cancelled\n"
                   "C: AUTH LOGIN\nS= 334 VXNlcm5hbWU6\nC: YWxpY2U=\nS= 334 UGFzc3dvcmQ6\n"
                   "C: c2VjcmV0\nS= 235 2.7.0 Authentication successful\n"},
    {"AUTH not enabled",
     .transcript =
         "S: 220 \nC: EHLO c\nS~ 250 HELP\nC: AUTH PLAIN AGFsaWNlAHNlY3JldA==\nS: 503 5.5.1\n"},
};

/*
 * __wrap_calloc - the engine makes no system calls, so an allocation that
 * fails is the only way to reach its out-of-memory path. This binary is
 * linked with -Wl,--wrap=calloc (tests/CMakeLists.txt): the calls to
 * calloc() in the engine's object come here and go on to the real one,
 * except that once fail_next_calloc is set the next call fails as the
 * real one would. A link-time wrap, not a replacement of the symbol, so
 * that ASan and valgrind keep their own allocators.
 */
static bool fail_next_calloc;
void *__real_calloc(size_t n, size_t size);

void *__wrap_calloc(size_t n, size_t size)
{
	if (fail_next_calloc) {
		fail_next_calloc = false;
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, size);
}

/* expand - replace <LONGn>, <TOOLONG> and <NUL> in a C line */
static size_t expand(const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		unsigned n;
		int used = 0;
		if (sscanf(in + i, "<LONG%u>%n", &n, &used) == 1 && used > 0) {
			memset(out + o, 'x', n);
			o += n;
			i += (size_t)used;
		} else if (strncmp(in + i, "<TOOLONG>", 9) == 0) {
			memset(out + o, 'y', 20000);
			o += 20000;
			i += 9;
		} else if (strncmp(in + i, "<NUL>", 5) == 0) {
			out[o++] = '\0';
			i += 5;
		} else {
			out[o++] = in[i++];
		}
	}
	return o;
}

/* Lines from the engine's log hook, kept for the cases that look. */
static char logged[64][512];
static size_t nlogged;

static void record_log(int prio, const char *line)
{
	if (nlogged < sizeof(logged) / sizeof(logged[0]))
		snprintf(logged[nlogged++], sizeof(logged[0]), "%d %s", prio, line);
}

/* was_logged - whether a recorded line holds text */
static bool was_logged(const char *text)
{
	for (size_t i = 0; i < nlogged; i++)
		if (strstr(logged[i], text))
			return true;
	return false;
}

/* check_alice - the AUTH check of the transcripts: alice/secret */
static bool check_alice(const struct engine_event *ev)
{
	const struct engine_credentials *c = &ev->cred;
	return c->user_len == 5 && memcmp(c->user, "alice", 5) == 0 && c->pass_len == 6 &&
	       memcmp(c->pass, "secret", 6) == 0;
}

/* end_of_data - the decoder saw the end: deliver with code */
static void end_of_data(struct engine *e, const struct data_decoder *d, int code)
{
	const struct engine_event *ev = engine_data_end(e, d, 0);
	if (ev->kind != ENGINE_EV_DELIVER)
		return;
	struct delivery_result r = {.code = code};
	snprintf(r.text, sizeof(r.text), "%s", r.code == 250 ? "2.0.0 Ok" : "4.3.0 failed");
	engine_delivered(e, &r);
}

/* command - one C line to the engine, its event carried out as the
 * session would; returns whether message text follows */
static bool command(struct engine *e, const char *line, size_t n)
{
	const struct engine_event *ev = engine_line(e, line, n > 19000 ? 0 : n, n > 19000);
	if (ev->kind == ENGINE_EV_STARTTLS)
		engine_tls_started(e, NULL);
	else if (ev->kind == ENGINE_EV_AUTH)
		engine_auth_result(e, check_alice(ev));
	return ev->kind == ENGINE_EV_DATA;
}

/* match_reply - the next reply lines against one S line; fails the test */
static void match_reply(const struct tcase *tc, const struct reply_buf *out, size_t *rpos,
                        const char *p, size_t len)
{
	bool skip = p[1] == '~', exact = p[1] == '=';
	for (;;) {
		if (*rpos >= out->len)
			fail_msg("%s: want '%.*s', got no more replies", tc->name, (int)len, p);
		const char *r = out->data + *rpos;
		const char *crlf = strstr(r, "\r\n");
		size_t rl = (size_t)(crlf - r);
		*rpos += rl + 2;
		if (rl >= len - 3 && memcmp(r, p + 3, len - 3) == 0 && (!exact || rl == len - 3))
			return;
		if (!skip)
			fail_msg("%s: got '%.*s', want '%.*s'", tc->name, (int)rl, r, (int)len - 3,
			         p + 3);
	}
}

/* run_case - play one transcript */
static void run_case(const struct tcase *tc)
{
	struct config cfg = {
	    .max_recipients = tc->max_recipients ? tc->max_recipients : 100,
	    .max_message_size = tc->max_size ? tc->max_size : 1048576,
	    .max_line_length = 1000,
	    .max_errors = tc->max_errors ? tc->max_errors : 20,
	};
	struct engine_features feat = {.hostname = "test.example",
	                               .starttls = tc->starttls,
	                               .tls_required = tc->tls_required,
	                               .auth = tc->auth};
	static struct reply_buf out;
	out.len = 0;
	struct engine *e = engine_new(&cfg, &feat, "127.0.0.1", "TESTID", &out);
	assert_non_null(e);
	size_t rpos = 0; /* reply bytes matched so far */
	bool in_data = false;
	struct data_decoder d;
	static char line[32768], dec[32768];
	for (const char *p = tc->transcript; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (strncmp(p, "C: ", 3) == 0) {
			if (rpos != out.len)
				fail_msg("%s: unmatched reply before '%.*s': got '%.*s'", tc->name,
				         (int)len, p, (int)(out.len - rpos), out.data + rpos);
			out.len = rpos = 0;
			size_t n = expand(p + 3, len - 3, line);
			if (in_data) {
				line[n++] = '\r';
				line[n++] = '\n';
				size_t used;
				data_decode(&d, line, n, dec, &used);
				if (d.done) {
					in_data = false;
					end_of_data(e, &d,
					            tc->deliver_code ? tc->deliver_code : 250);
				}
			} else if (command(e, line, n)) {
				in_data = true;
				data_decoder_init(&d, cfg.max_message_size, 998);
			}
		} else if (strncmp(p, "S: ", 3) == 0 || strncmp(p, "S~ ", 3) == 0 ||
		           strncmp(p, "S= ", 3) == 0) {
			match_reply(tc, &out, &rpos, p, len);
		}
		p += len + (nl != NULL);
	}
	engine_free(e);
}

static void test_transcripts(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* session - a new engine for the cases below, replies into out, log
 * lines recorded */
static struct engine *session(const struct config *cfg, bool auth, struct reply_buf *out)
{
	struct engine_features feat = {.hostname = "mx.example", .auth = auth, .log = record_log};
	nlogged = 0;
	out->len = 0;
	struct engine *e = engine_new(cfg, &feat, "192.0.2.1", "ABC", out);
	assert_non_null(e);
	return e;
}

/* feed - lines to the engine, replies dropped; the last event */
static const struct engine_event *feed(struct engine *e, struct reply_buf *out,
                                       const char *const *lines, size_t n)
{
	const struct engine_event *ev = NULL;
	for (size_t i = 0; i < n; i++) {
		out->len = 0;
		ev = engine_line(e, lines[i], strlen(lines[i]), false);
	}
	return ev;
}

/* test_engines_at_once - the first engine's static slot and the heap
 * serve engines side by side, and a slot used before starts clean */
static void test_engines_at_once(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	static struct reply_buf o1, o2, o3;
	const char *mail[] = {"EHLO a.example", "MAIL FROM:<a@b>"};
	const char *rcpt[] = {"EHLO b.example", "RCPT TO:<c@d>"};
	struct engine *e1 = session(&cfg, false, &o1);
	feed(e1, &o1, mail, 2);
	struct engine *e2 = session(&cfg, false, &o2);
	assert_ptr_not_equal(e1, e2);
	feed(e2, &o2, rcpt, 2);
	if (o2.len < 3 || memcmp(o2.data, "503", 3) != 0)
		fail_msg("second engine: got '%.*s' for RCPT, want 503", (int)o2.len, o2.data);
	o1.len = 0;
	engine_line(e1, "RCPT TO:<c@d>", 13, false);
	if (o1.len < 3 || memcmp(o1.data, "250", 3) != 0)
		fail_msg("first engine: got '%.*s' for RCPT, want 250", (int)o1.len, o1.data);
	engine_free(e1);
	struct engine *e3 = session(&cfg, false, &o3); /* e1's storage again */
	feed(e3, &o3, rcpt, 2);
	if (o3.len < 3 || memcmp(o3.data, "503", 3) != 0)
		fail_msg("engine after a freed one: got '%.*s' for RCPT, want 503", (int)o3.len,
		         o3.data);
	engine_free(e3);
	engine_free(e2);
}

/* test_received - the trace header is safe and complete */
static void test_received(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	static struct reply_buf out;
	struct engine *e = session(&cfg, false, &out);
	const char *lines[] = {"EHLO client.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"};
	const struct engine_event *ev = feed(e, &out, lines, 4);
	assert_int_equal(ev->kind, ENGINE_EV_DATA);
	char buf[1024];
	size_t n = engine_received(&ev->trace, 0, buf, sizeof(buf));
	const char *want = "Received: from client.example ([192.0.2.1])\n"
	                   "\tby mx.example (smtpipe) with ESMTP id ABC.1\n"
	                   "\tfor <c@d>;\n"
	                   "\tThu, 01 Jan 1970 00:00:00 +0000\n";
	if (n != strlen(want) || strcmp(buf, want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", buf, want);
	assert_null(strchr(buf, '\r'));
	engine_free(e);
}

/* test_received_tls - after STARTTLS the header names the protocol
 * with S and A and carries the TLS session given to engine_tls_started */
static void test_received_tls(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	static struct reply_buf out;
	struct engine *e = session(&cfg, true, &out);
	const char *lines[] = {"EHLO c", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="};
	assert_int_equal(feed(e, &out, lines, 2)->kind, ENGINE_EV_AUTH);
	engine_auth_result(e, true);
	engine_tls_started(e, "TLS1.3 AES");
	const char *msg[] = {"HELO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>", "DATA"};
	const struct engine_event *ev = feed(e, &out, msg, 5);
	assert_int_equal(ev->kind, ENGINE_EV_DATA);
	char buf[1024];
	engine_received(&ev->trace, 0, buf, sizeof(buf));
	const char *want = "Received: from c ([192.0.2.1])\n"
	                   "\tby mx.example (smtpipe) with SMTPSA id ABC.1\n"
	                   "\t(TLS1.3 AES);\n"
	                   "\tThu, 01 Jan 1970 00:00:00 +0000\n";
	if (strcmp(buf, want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", buf, want);
	engine_free(e);
}

/* test_recipient_list_out_of_memory - issue 12.14: a failed allocation
 * of the recipient list is a 451 to try again, never a permanent 554,
 * and the session goes on */
static void test_recipient_list_out_of_memory(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	static struct reply_buf out;
	struct engine *e = session(&cfg, false, &out);
	const char *lines[] = {"EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>",
	                       "DATA"};
	assert_int_equal(feed(e, &out, lines, 5)->kind, ENGINE_EV_DATA);
	struct data_decoder d;
	data_decoder_init(&d, cfg.max_message_size, 998);
	char dec[64];
	size_t n;
	data_decode(&d, ".\r\n", 3, dec, &n);
	assert_true(d.done);
	out.len = 0;
	fail_next_calloc = true;
	const struct engine_event *ev = engine_data_end(e, &d, 0);
	fail_next_calloc = false;
	if (ev->kind != ENGINE_EV_NONE || out.len < 9 || memcmp(out.data, "451 4.3.0", 9) != 0)
		fail_msg("got event %d reply '%.*s', want no delivery and 451 4.3.0", (int)ev->kind,
		         (int)out.len, out.data);
	/* the session goes on: the next message is delivered to its list */
	assert_int_equal(feed(e, &out, lines + 1, 4)->kind, ENGINE_EV_DATA);
	data_decoder_init(&d, cfg.max_message_size, 998);
	data_decode(&d, ".\r\n", 3, dec, &n);
	ev = engine_data_end(e, &d, 0);
	assert_int_equal(ev->kind, ENGINE_EV_DELIVER);
	assert_int_equal(ev->envelope.nrcpt, 2);
	assert_string_equal(ev->envelope.sender, "a@b");
	assert_string_equal(ev->envelope.rcpts[0], "c@d");
	assert_string_equal(ev->envelope.rcpts[1], "e@f");
	assert_null(ev->envelope.rcpts[2]);
	assert_string_equal(ev->envelope.id, "ABC");
	assert_int_equal(ev->msgno, 1);
	engine_free(e);
}

/* login - AUTH LOGIN with user and password, checked by the real
 * auth_check against s; returns the reply code to the password */
static int login(const struct auth_secret *s, const char *user, const char *pass)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	static struct reply_buf out;
	struct engine *e = session(&cfg, true, &out);
	static char b64[4096];
	const char *lines[] = {"EHLO c", "AUTH LOGIN"};
	assert_true(feed(e, &out, lines, 2)->auth_response);
	auth_b64_encode(user, strlen(user), b64, sizeof(b64));
	out.len = 0;
	assert_int_equal(engine_line(e, b64, strlen(b64), false)->kind, ENGINE_EV_NONE);
	auth_b64_encode(pass, strlen(pass), b64, sizeof(b64));
	out.len = 0;
	const struct engine_event *ev = engine_line(e, b64, strlen(b64), false);
	if (ev->kind != ENGINE_EV_AUTH)
		fail_msg("user of %zu bytes: got no check, want one", strlen(user));
	engine_auth_result(
	    e, auth_check(s, ev->cred.user, ev->cred.user_len, ev->cred.pass, ev->cred.pass_len));
	int code = atoi(out.data);
	engine_free(e);
	return code;
}

/* test_login_user_compared_whole - issue 12.9: a LOGIN user longer than
 * the engine's buffer is refused, not cut to the configured name */
static void test_login_user_compared_whole(void **state)
{
	static char user[256], longer[400];
	memset(user, 'u', 255);
	snprintf(longer, sizeof(longer), "%s%s", user, "-and-anything");
	struct auth_secret s = {
	    .user = user, .password = "secret", .user_len = 255, .password_len = 6};
	static const struct {
		const char *user, *pass;
		int want;
	} tries[] = {{user, "secret", 235}, {longer, "secret", 535}, {user, "wrong", 535}};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		int got = login(&s, tries[i].user, tries[i].pass);
		if (got != tries[i].want)
			fail_msg("user of %zu bytes, password %s: got %d, want %d",
			         strlen(tries[i].user), tries[i].pass, got, tries[i].want);
	}
}

/* test_credentials_wiped - the AUTH event carries the credentials, the
 * result wipes them, and no log line ever holds the password */
static void test_credentials_wiped(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	static struct reply_buf out;
	struct engine *e = session(&cfg, true, &out);
	const char *lines[] = {"EHLO c", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="};
	const struct engine_event *ev = feed(e, &out, lines, 2);
	assert_int_equal(ev->kind, ENGINE_EV_AUTH);
	assert_string_equal(ev->cred.mech, "PLAIN");
	assert_true(check_alice(ev));
	const char *pass = ev->cred.pass, *user = ev->cred.user; /* inside the engine */
	ev = engine_auth_result(e, false);
	for (size_t i = 0; i < 6; i++)
		if (pass[i] != '\0' || user[i] != '\0')
			fail_msg("byte %zu of the credentials survived the check", i);
	assert_null(ev->cred.pass);
	assert_int_equal(ev->cred.pass_len, 0);
	for (size_t i = 0; i < nlogged; i++)
		if (strstr(logged[i], "secret") || strstr(logged[i], "AGFsaWNl"))
			fail_msg("a log line holds the credentials: %s", logged[i]);
	engine_free(e);
}

/* test_state_changes_logged - every state change is one debug line by
 * name, through the hook, never anything else at debug for it */
static void test_state_changes_logged(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	static struct reply_buf out;
	struct engine *e = session(&cfg, false, &out);
	const char *lines[] = {"EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"};
	feed(e, &out, lines, 4);
	struct data_decoder d;
	data_decoder_init(&d, cfg.max_message_size, 998);
	char dec[64];
	size_t n;
	data_decode(&d, ".\r\n", 3, dec, &n);
	end_of_data(e, &d, 250);
	const char *quit[] = {"QUIT"};
	feed(e, &out, quit, 1);
	static const char *const want[] = {
	    "7 event=state from=connected to=ready", "7 event=state from=ready to=mail",
	    "7 event=state from=mail to=rcpt",       "7 event=state from=rcpt to=data",
	    "7 event=state from=data to=ready",      "7 event=state from=ready to=closed",
	};
	size_t got = 0;
	for (size_t i = 0; i < nlogged; i++) {
		if (!strstr(logged[i], "event=state "))
			continue;
		if (got >= sizeof(want) / sizeof(want[0]) || strcmp(logged[i], want[got]) != 0)
			fail_msg("state line %zu: got '%s', want '%s'", got, logged[i],
			         got < sizeof(want) / sizeof(want[0]) ? want[got] : "(none)");
		got++;
	}
	assert_int_equal(got, sizeof(want) / sizeof(want[0]));
	assert_true(was_logged("event=mail size=0 from=\"a@b\""));
	engine_free(e);
}

/* test_why_it_ends - the CLOSE event says why, so that the session
 * never reads a reply back to know */
static void test_why_it_ends(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 2};
	static struct reply_buf out;
	struct engine *e = session(&cfg, true, &out);
	const char *quit[] = {"QUIT"}, *junk[] = {"X", "Y"}, *mid[] = {"EHLO c", "AUTH LOGIN"};
	const struct engine_event *ev = feed(e, &out, quit, 1);
	assert_int_equal(ev->kind, ENGINE_EV_CLOSE);
	assert_int_equal(ev->end, ENGINE_END_QUIT);
	/* after the end every line is answered by CLOSE, with no reply */
	ev = feed(e, &out, junk, 1);
	assert_int_equal(ev->kind, ENGINE_EV_CLOSE);
	assert_int_equal(ev->end, ENGINE_END_QUIT);
	assert_int_equal(out.len, 0);
	engine_free(e);

	e = session(&cfg, true, &out);
	ev = feed(e, &out, junk, 2);
	assert_int_equal(ev->kind, ENGINE_EV_CLOSE);
	assert_int_equal(ev->end, ENGINE_END_ERRORS);
	assert_true(was_logged("5 event=too-many-errors errors=2 client=192.0.2.1"));
	engine_free(e);

	e = session(&cfg, true, &out);
	assert_int_equal(engine_timeout(e)->end, ENGINE_END_TIMEOUT);
	engine_free(e);
	e = session(&cfg, true, &out);
	assert_int_equal(engine_shutdown(e)->end, ENGINE_END_SHUTDOWN);
	assert_non_null(strstr(out.data, "421 4.3.2 mx.example Service shutting down\r\n"));
	engine_free(e);

	e = session(&cfg, true, &out);
	assert_null(engine_gone(e)->unfinished);
	engine_free(e);
	e = session(&cfg, true, &out);
	feed(e, &out, mid, 2);
	ev = engine_gone(e);
	assert_int_equal(ev->end, ENGINE_END_GONE);
	assert_string_equal(ev->unfinished, "mid-auth");
	engine_free(e);
}

/* test_refusals_before_handlers - the dispatcher's order: HELO first,
 * then 501, then 530 (TLS, then AUTH), then what is not offered or
 * already done, then the state */
static void test_refusals_before_handlers(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 100};
	static const struct {
		bool starttls, tls_required, auth;
		const char *setup, *line, *want;
	} refusals[] = {
	    {0, 0, 0, "", "DATA x", "503 5.5.1 Error: send HELO/EHLO first"},
	    {0, 0, 0, "EHLO c", "DATA x", "501 5.5.4 Syntax: DATA"},
	    {0, 1, 1, "EHLO c", "DATA x", "501 5.5.4 Syntax: DATA"},
	    {0, 1, 1, "EHLO c", "DATA", "530 5.7.0 Must issue a STARTTLS command first"},
	    {0, 0, 1, "EHLO c", "DATA", "530 5.7.0 Authentication required"},
	    {0, 0, 0, "EHLO c", "DATA", "503 5.5.1 Error: need RCPT command"},
	    {0, 0, 0, "EHLO c", "STARTTLS", "502 5.5.1 Error: command not implemented"},
	    {0, 1, 0, "EHLO c", "AUTH PLAIN", "530 5.7.0 Must issue a STARTTLS"},
	    {0, 0, 0, "EHLO c", "AUTH PLAIN", "503 5.5.1 Error: authentication not enabled"},
	    {0, 0, 0, "EHLO c", "RCPT TO:<a@b>", "503 5.5.1 Error: need MAIL command"},
	    {1, 0, 0, "EHLO c", "STARTTLS x", "501 5.5.4 Syntax: STARTTLS"},
	    {0, 0, 0, "EHLO c", "ETRN x", "502 5.5.1 Error: command not implemented"},
	    {0, 0, 0, "", "RSET x", "501 5.5.4 Syntax: RSET"},
	};
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		struct engine_features feat = {.hostname = "mx.example",
		                               .starttls = refusals[i].starttls,
		                               .tls_required = refusals[i].tls_required,
		                               .auth = refusals[i].auth};
		static struct reply_buf out;
		struct engine *e = engine_new(&cfg, &feat, "192.0.2.1", "ABC", &out);
		if (refusals[i].setup[0])
			feed(e, &out, &refusals[i].setup, 1);
		feed(e, &out, &refusals[i].line, 1);
		if (out.len < strlen(refusals[i].want) ||
		    memcmp(out.data, refusals[i].want, strlen(refusals[i].want)) != 0)
			fail_msg("'%s' after '%s': got '%.*s', want '%s'", refusals[i].line,
			         refusals[i].setup, (int)out.len, out.data, refusals[i].want);
		engine_free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcripts),
	    cmocka_unit_test(test_received),
	    cmocka_unit_test(test_engines_at_once),
	    cmocka_unit_test(test_received_tls),
	    cmocka_unit_test(test_recipient_list_out_of_memory),
	    cmocka_unit_test(test_login_user_compared_whole),
	    cmocka_unit_test(test_credentials_wiped),
	    cmocka_unit_test(test_state_changes_logged),
	    cmocka_unit_test(test_why_it_ends),
	    cmocka_unit_test(test_refusals_before_handlers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
