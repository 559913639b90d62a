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
	static struct engine e;
	engine_init(&e, &cfg, &feat, "127.0.0.1", "TESTID");
	size_t rpos = 0; /* reply bytes matched so far */
	bool in_data = false;
	struct data_decoder d;
	static char line[32768], dec[32768];
	const char *p = tc->transcript;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (strncmp(p, "C: ", 3) == 0) {
			if (rpos != e.out.len)
				fail_msg("%s: unmatched reply before '%.*s': got '%.*s'", tc->name,
				         (int)len, p, (int)(e.out.len - rpos), e.out.data + rpos);
			e.out.len = rpos = 0;
			size_t n = expand(p + 3, len - 3, line);
			if (in_data) {
				line[n++] = '\r';
				line[n++] = '\n';
				size_t out;
				data_decode(&d, line, n, dec, &out);
				if (d.done) {
					in_data = false;
					if (engine_data_end(&e, &d, 0) == ENGINE_EV_DELIVER) {
						struct delivery dv;
						engine_envelope(&e, &dv);
						struct delivery_result r = {
						    .code =
						        tc->deliver_code ? tc->deliver_code : 250};
						snprintf(r.text, sizeof(r.text), "%s",
						         r.code == 250 ? "2.0.0 Ok"
						                       : "4.3.0 failed");
						engine_delivered(&e, &r);
					}
				}
			} else {
				enum engine_event ev =
				    engine_line(&e, line, n > 19000 ? 0 : n, n > 19000);
				if (ev == ENGINE_EV_DATA) {
					in_data = true;
					data_decoder_init(&d, cfg.max_message_size, 998);
				} else if (ev == ENGINE_EV_STARTTLS) {
					engine_tls_started(&e);
				} else if (ev == ENGINE_EV_AUTH) {
					bool ok = e.auth_user_len == 5 &&
					          memcmp(e.auth_user, "alice", 5) == 0 &&
					          e.auth_pass_len == 6 &&
					          memcmp(e.auth_pass, "secret", 6) == 0;
					engine_auth_result(&e, ok);
				}
			}
		} else if (strncmp(p, "S: ", 3) == 0 || strncmp(p, "S~ ", 3) == 0 ||
		           strncmp(p, "S= ", 3) == 0) {
			bool skip = p[1] == '~', exact = p[1] == '=';
			for (;;) {
				if (rpos >= e.out.len)
					fail_msg("%s: want '%.*s', got no more replies", tc->name,
					         (int)len, p);
				const char *r = e.out.data + rpos;
				const char *crlf = strstr(r, "\r\n");
				size_t rl = (size_t)(crlf - r);
				rpos += rl + 2;
				if (rl >= len - 3 && memcmp(r, p + 3, len - 3) == 0 &&
				    (!exact || rl == len - 3))
					break;
				if (!skip)
					fail_msg("%s: got '%.*s', want '%.*s'", tc->name, (int)rl,
					         r, (int)len - 3, p + 3);
			}
		}
		p += len + (nl != NULL);
	}
	engine_free(&e);
}

static void test_transcripts(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* test_received - the trace header is safe and complete */
static void test_received(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	struct engine_features feat = {.hostname = "mx.example"};
	static struct engine e;
	engine_init(&e, &cfg, &feat, "192.0.2.1", "ABC");
	const char *lines[] = {"EHLO client.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>"};
	for (size_t i = 0; i < 3; i++)
		engine_line(&e, lines[i], strlen(lines[i]), false);
	char buf[1024];
	size_t n = engine_received(&e, "mx.example", NULL, 0, buf, sizeof(buf));
	const char *want = "Received: from client.example ([192.0.2.1])\n"
	                   "\tby mx.example (smtpipe) with ESMTP id ABC.1\n"
	                   "\tfor <c@d>;\n"
	                   "\tThu, 01 Jan 1970 00:00:00 +0000\n";
	if (n != strlen(want) || strcmp(buf, want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", buf, want);
	assert_null(strchr(buf, '\r'));
	engine_free(&e);
}

/* feed - lines to the engine, replies dropped */
static enum engine_event feed(struct engine *e, const char *const *lines, size_t n)
{
	enum engine_event ev = ENGINE_EV_NONE;
	for (size_t i = 0; i < n; i++) {
		e->out.len = 0;
		ev = engine_line(e, lines[i], strlen(lines[i]), false);
	}
	return ev;
}

/* test_recipient_list_out_of_memory - issue 12.14: a failed allocation
 * of the recipient list is a 451 to try again, never a permanent 554,
 * and the session goes on */
static void test_recipient_list_out_of_memory(void **state)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	struct engine_features feat = {.hostname = "mx.example"};
	static struct engine e;
	engine_init(&e, &cfg, &feat, "192.0.2.1", "ABC");
	const char *lines[] = {"EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>",
	                       "DATA"};
	assert_int_equal(feed(&e, lines, 5), ENGINE_EV_DATA);
	struct data_decoder d;
	data_decoder_init(&d, cfg.max_message_size, 998);
	char dec[64];
	size_t out;
	data_decode(&d, ".\r\n", 3, dec, &out);
	assert_true(d.done);
	e.out.len = 0;
	fail_next_calloc = true;
	enum engine_event ev = engine_data_end(&e, &d, 0);
	fail_next_calloc = false;
	if (ev != ENGINE_EV_NONE || e.out.len < 9 || memcmp(e.out.data, "451 4.3.0", 9) != 0)
		fail_msg("got event %d reply '%.*s', want no delivery and 451 4.3.0", (int)ev,
		         (int)e.out.len, e.out.data);
	/* the session goes on: the next message is delivered to its list */
	assert_int_equal(feed(&e, lines + 1, 4), ENGINE_EV_DATA);
	data_decoder_init(&d, cfg.max_message_size, 998);
	data_decode(&d, ".\r\n", 3, dec, &out);
	assert_int_equal(engine_data_end(&e, &d, 0), ENGINE_EV_DELIVER);
	struct delivery dv;
	engine_envelope(&e, &dv);
	assert_int_equal(dv.nrcpt, 2);
	assert_string_equal(dv.rcpts[0], "c@d");
	assert_string_equal(dv.rcpts[1], "e@f");
	assert_null(dv.rcpts[2]);
	engine_free(&e);
}

/* login - AUTH LOGIN with user and password, checked by the real
 * auth_check against s; returns the reply code to the password */
static int login(const struct auth_secret *s, const char *user, const char *pass)
{
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	struct engine_features feat = {.hostname = "mx.example", .auth = true};
	static struct engine e;
	engine_init(&e, &cfg, &feat, "192.0.2.1", "ABC");
	static char b64[4096];
	const char *lines[] = {"EHLO c", "AUTH LOGIN"};
	feed(&e, lines, 2);
	auth_b64_encode(user, strlen(user), b64, sizeof(b64));
	e.out.len = 0;
	assert_int_equal(engine_line(&e, b64, strlen(b64), false), ENGINE_EV_NONE);
	auth_b64_encode(pass, strlen(pass), b64, sizeof(b64));
	e.out.len = 0;
	if (engine_line(&e, b64, strlen(b64), false) != ENGINE_EV_AUTH)
		fail_msg("user of %zu bytes: got no check, want one", strlen(user));
	engine_auth_result(
	    &e, auth_check(s, e.auth_user, e.auth_user_len, e.auth_pass, e.auth_pass_len));
	int code = atoi(e.out.data);
	engine_free(&e);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcripts),
	    cmocka_unit_test(test_received),
	    cmocka_unit_test(test_recipient_list_out_of_memory),
	    cmocka_unit_test(test_login_user_compared_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
