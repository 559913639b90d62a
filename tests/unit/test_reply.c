/*
 * test_reply.c - reply lines as the client reads them: the code, the
 *                separator of a multi-line reply, the enhanced code, no
 *                line break of the text's own, the cut that never
 *                overflows, and the half-full flush rule
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "reply.h"

/* text - the buffer as a C string */
static const char *text(const struct reply_buf *rb)
{
	static char out[BOUND_REPLY_BUFFER + 1];
	memcpy(out, rb->data, rb->len);
	out[rb->len] = '\0';
	return out;
}

/* last_code - the code of the last line in the buffer, 0 when empty,
 * as a client reads it */
static int last_code(const struct reply_buf *rb)
{
	if (rb->len < 5)
		return 0;
	size_t i = rb->len - 2; /* at the final CRLF */
	while (i > 0 && rb->data[i - 1] != '\n')
		i--;
	const char *p = rb->data + i;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* One reply per case: what reply_add writes, byte for byte. */
static void test_format(void **state)
{
	(void)state;
	static const struct {
		int code;
		const char *arg;
		const char *want;
	} cases[] = {
	    {250, "2.0.0 Ok", "250 2.0.0 Ok\r\n"},
	    {354, "End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>\r\n"},
	    {451, "4.3.0 Cannot append to mailbox", "451 4.3.0 Cannot append to mailbox\r\n"},
	    {550, "5.1.1 <a@b> unknown", "550 5.1.1 <a@b> unknown\r\n"},
	    {221, "2.0.0 Bye", "221 2.0.0 Bye\r\n"},
	    /* a line break in the text (an echoed argument) is a blank */
	    {501, "5.5.4 x\r\n250 forged", "501 5.5.4 x  250 forged\r\n"},
	    {501, "5.5.4 a\nb\rc", "501 5.5.4 a b c\r\n"},
	    {220, "", "220 \r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply_buf rb = {.len = 0};
		reply_add(&rb, cases[i].code, true, "%s", cases[i].arg);
		if (strcmp(text(&rb), cases[i].want) != 0)
			fail_msg("%d '%s': got '%s', want '%s'", cases[i].code, cases[i].arg,
			         text(&rb), cases[i].want);
		if (last_code(&rb) != cases[i].code)
			fail_msg("%d: got last code %d", cases[i].code, last_code(&rb));
	}
}

/* RFC 5321 4.2.1: "250-" on every line but the last, "250 " on it. */
static void test_multiline(void **state)
{
	(void)state;
	struct reply_buf rb = {.len = 0};
	reply_add(&rb, 250, false, "mx.example.org");
	reply_add(&rb, 250, false, "PIPELINING");
	reply_add(&rb, 250, false, "SIZE %lu", 1024UL);
	reply_add(&rb, 250, true, "ENHANCEDSTATUSCODES");
	assert_string_equal(text(&rb), "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1024\r\n"
	                               "250 ENHANCEDSTATUSCODES\r\n");
	assert_int_equal(last_code(&rb), 250);
	/* pipelined replies follow one another; the last code is the last's */
	reply_add(&rb, 354, true, "Go ahead");
	assert_int_equal(last_code(&rb), 354);
}

/* An argument longer than the buffer is cut: the buffer is never
 * overrun, the line still ends in CRLF, and a full buffer takes nothing. */
static void test_cut(void **state)
{
	(void)state;
	static char big[BOUND_REPLY_BUFFER * 2];
	memset(big, 'x', sizeof(big) - 1);
	struct reply_buf rb = {.len = 0};
	reply_add(&rb, 250, true, "first");
	size_t before = rb.len;
	reply_add(&rb, 501, true, "5.5.4 %s", big);
	if (rb.len > sizeof(rb.data) || rb.len < sizeof(rb.data) - 8)
		fail_msg("got length %zu, want the buffer (%zu) filled, not overrun", rb.len,
		         sizeof(rb.data));
	if (memcmp(rb.data + rb.len - 2, "\r\n", 2) != 0)
		fail_msg("got no CRLF at the end of the cut line");
	if (memcmp(rb.data + before, "501 5.5.4 xxx", 13) != 0)
		fail_msg("got '%.13s' at the start of the cut line", rb.data + before);
	size_t full = rb.len;
	reply_add(&rb, 250, true, "2.0.0 Ok");
	if (rb.len != full)
		fail_msg("a full buffer: got length %zu after one more reply, want %zu", rb.len,
		         full);
}

/* The session flushes when no input waits, or once the buffer is half
 * full (reply.h); below half it may keep collecting. */
static void test_half_full(void **state)
{
	(void)state;
	struct reply_buf rb = {.len = 0};
	assert_false(reply_half_full(&rb));
	assert_int_equal(last_code(&rb), 0);
	size_t half = sizeof(rb.data) / 2;
	while (rb.len + 16 < half) {
		reply_add(&rb, 250, true, "2.1.5 Ok");
		if (rb.len < half && reply_half_full(&rb))
			fail_msg("at %zu of %zu bytes: got half full", rb.len, sizeof(rb.data));
	}
	while (rb.len < half)
		reply_add(&rb, 250, true, "2.1.5 Ok");
	if (!reply_half_full(&rb))
		fail_msg("at %zu of %zu bytes: got not half full", rb.len, sizeof(rb.data));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_multiline),
	    cmocka_unit_test(test_cut),
	    cmocka_unit_test(test_half_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
