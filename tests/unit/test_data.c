/*
 * test_data.c - the DATA decoder: unstuffing, endings, smuggling, limits
 *
 * Every case is decoded whole, byte by byte, and split at every offset:
 * the decoder must give the same output and stop at the same byte
 * whatever the block boundaries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

struct dcase {
	const char *name;
	const char *in;
	const char *out; /* decoded content */
	long consumed;   /* where the end was found; -1: not ended */
	bool too_big, line_too_long;
	size_t max_size, max_line;
	long size;      /* RFC 1870 size to expect; 0: not checked */
	long out_limit; /* with line_too_long: at most this much output */
};

static const struct dcase cases[] = {
    {"empty message", ".\r\n", "", 3},
    {"one line", "hi\r\n.\r\n", "hi\n", 7},
    {"dot unstuffing", "..x\r\n.\r\n", ".x\n", 8},
    {"double dot line", "..\r\n.\r\n", ".\n", 7},
    {"dot in the middle", "a.b\r\n.\r\n", "a.b\n", 8},
    {"pipelined command after the end", "x\r\n.\r\nQUIT\r\n", "x\n", 6},
    {"bare LF dot LF does not end", "a\n.\nMAIL FROM:<x>\r\n.\r\n", "a\n.\nMAIL FROM:<x>\n", 22},
    {"bare CR dot CR does not end", "a\r.\rb\r\n.\r\n", "a\r.\rb\n", 10},
    {"LF dot CRLF does not end", "a\n.\r\nb\r\n.\r\n", "a\n.\nb\n", 11},
    {"CRLF dot LF does not end", "a\r\n.\nb\r\n.\r\n", "a\n\nb\n", 11},
    {"CRLF dot CR x does not end", "a\r\n.\rb\r\n.\r\n", "a\n\rb\n", 11},
    {"dot CR CR LF", "a\r\n.\r\r\n.\r\n", "a\n\r\n", 10},
    {"smuggled second message",
     "a\r\n\n.\r\nMAIL FROM:<e@v>\r\nRCPT TO:<v@x>\r\nDATA\r\nevil\r\n.\r\n",
     "a\n\n.\nMAIL FROM:<e@v>\nRCPT TO:<v@x>\nDATA\nevil\n", 54},
    {"bare CRs kept", "a\rb\r\r\n.\r\n", "a\rb\r\n", 9},
    {"8-bit bytes kept", "\xc3\xa9\xff\r\n.\r\n", "\xc3\xa9\xff\n", 8},
    {"not ended", "abc\r\n.x\r\n", "abc\nx\n", -1},
    {"ends only at dot alone", "a\r\n. \r\n.\r\n", "a\n \n", 10},
    {"size limit", "0123456789\r\n.\r\n", "012345", 15, .too_big = true, .max_size = 6},
    {"size exactly at limit", "01234\r\n.\r\n", "01234\n", 10, .max_size = 7},
    {"line limit", "12345\r\n.\r\n", "12345\n", 10, .line_too_long = true, .max_line = 4},
    {"line at limit", "1234\r\n.\r\n", "1234\n", 9, .max_line = 4},
    {"bare LF splits lines for the limit", "12\n34\r\n.\r\n", "12\n34\n", 10, .max_line = 2},
    /* RFC 1870: the size counts CRLF pairs, not the terminating dot
     * line nor the dots doubled for transparency */
    {"size counts CRLF as two", "ab\r\ncd\r\n.\r\n", "ab\ncd\n", 11, .size = 8},
    {"size at the limit with CRLF", "ab\r\ncd\r\n.\r\n", "ab\ncd\n", 11, .max_size = 8, .size = 8},
    {"size one over the limit with CRLF", "ab\r\ncd\r\n.\r\n", "ab\ncd\n", 11, .too_big = true,
     .max_size = 7, .size = 8},
    {"size without the doubled dot", "..ab\r\n.\r\n", ".ab\n", 9, .max_size = 5, .size = 5},
    {"size of bare LF and bare CR", "a\nb\rc\r\n.\r\n", "a\nb\rc\n", 10, .size = 7},
    {"size of dot CR x", "a\r\n.\rb\r\n.\r\n", "a\n\rb\n", 11, .size = 7},
    {"size of an empty message", ".\r\n", "", 3, .size = -1},
    /* RFC 5321 4.5.3.1.6: the transparency dot is not in the length */
    {"transparency dot not in the line length", "..abc\r\n.\r\n", ".abc\n", 10, .max_line = 4},
    {"dot line over the limit", "..abcd\r\n.\r\n", ".abcd\n", 11, .line_too_long = true,
     .max_line = 4, .out_limit = 4},
    /* past a too-long line nothing more is written (the session
     * spools nothing it will refuse) */
    {"no output past a long line", "ok\r\n12345\r\nmore\r\n.\r\n", "ok\n12345\nmore\n", 20,
     .line_too_long = true, .max_line = 4, .out_limit = 7},
};

/* decode_in_blocks - decode with blocks of size step (0: split at cut) */
static void decode_in_blocks(const struct dcase *c, size_t len, size_t step, size_t cut, char *out,
                             size_t *olen, long *consumed, struct data_decoder *d)
{
	data_decoder_init(d, c->max_size, c->max_line);
	size_t pos = 0, o = 0;
	char *buf = malloc(len + 3);
	*consumed = -1;
	while (pos < len && !d->done) {
		size_t n = step ? step : (pos < cut ? cut - pos : len - pos);
		if (n > len - pos)
			n = len - pos;
		size_t w;
		size_t used = data_decode(d, c->in + pos, n, buf, &w);
		memcpy(out + o, buf, w);
		o += w;
		pos += used;
		if (d->done)
			*consumed = (long)pos;
		else if (used != n)
			fail_msg("%s: consumed %zu of %zu without the end", c->name, used, n);
	}
	free(buf);
	*olen = o;
}

static void check(const struct dcase *c, const char *how, const char *out, size_t olen,
                  long consumed, const struct data_decoder *d)
{
	/* past the size limit the output is cut wherever a block ended */
	bool cut = c->too_big || c->line_too_long;
	if (!cut && (olen != strlen(c->out) || memcmp(out, c->out, olen) != 0))
		fail_msg("%s (%s): got '%.*s', want '%s'", c->name, how, (int)olen, out, c->out);
	if (cut && (olen > strlen(c->out) || memcmp(out, c->out, olen) != 0))
		fail_msg("%s (%s): got '%.*s', want a prefix of '%s'", c->name, how, (int)olen, out,
		         c->out);
	if (c->out_limit && (long)olen > c->out_limit)
		fail_msg("%s (%s): wrote %zu bytes past the long line, want at most %ld", c->name,
		         how, olen, c->out_limit);
	long size = c->size < 0 ? 0 : c->size;
	if (c->size && (long)d->size != size)
		fail_msg("%s (%s): size %zu, want %ld (RFC 1870)", c->name, how, d->size, size);
	if (consumed != c->consumed)
		fail_msg("%s (%s): consumed %ld, want %ld", c->name, how, consumed, c->consumed);
	if (d->too_big != c->too_big || d->line_too_long != c->line_too_long)
		fail_msg("%s (%s): too_big %d line_too_long %d, want %d %d", c->name, how,
		         d->too_big, d->line_too_long, c->too_big, c->line_too_long);
}

static void test_cases(void **state)
{
	char out[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dcase *c = &cases[i];
		size_t len = strlen(c->in), olen;
		long consumed;
		struct data_decoder d;
		decode_in_blocks(c, len, len, 0, out, &olen, &consumed, &d);
		check(c, "whole", out, olen, consumed, &d);
		decode_in_blocks(c, len, 1, 0, out, &olen, &consumed, &d);
		check(c, "bytewise", out, olen, consumed, &d);
		for (size_t cut = 1; cut < len; cut++) {
			char how[32];
			snprintf(how, sizeof(how), "cut at %zu", cut);
			decode_in_blocks(c, len, 0, cut, out, &olen, &consumed, &d);
			check(c, how, out, olen, consumed, &d);
		}
	}
}

/* test_large - 10 MB of random lines survive unchanged */
static void test_large(void **state)
{
	size_t n = 10 * 1024 * 1024;
	char *in = malloc(n + 8), *want = malloc(n), *out = malloc(n + 8);
	size_t w = 0, i = 0;
	srand(7);
	while (i < n - 200) {
		size_t l = (size_t)rand() % 120;
		bool stuffed = rand() % 5 == 0;
		if (stuffed) {
			in[i++] = '.'; /* stuffed */
			in[i++] = '.';
			want[w++] = '.';
		}
		for (size_t k = 0; k < l; k++) {
			char ch = (char)(' ' + rand() % 94);
			if (k == 0 && ch == '.' && !stuffed)
				in[i++] = '.'; /* a leading dot must be stuffed */
			in[i++] = ch;
			want[w++] = ch;
		}
		in[i++] = '\r';
		in[i++] = '\n';
		want[w++] = '\n';
	}
	memcpy(in + i, ".\r\n", 3);
	i += 3;
	struct data_decoder d;
	data_decoder_init(&d, 0, 998);
	size_t o = 0, pos = 0;
	while (!d.done && pos < i) {
		size_t chunk = 65536 < i - pos ? 65536 : i - pos, wr;
		pos += data_decode(&d, in + pos, chunk, out + o, &wr);
		o += wr;
	}
	assert_true(d.done);
	assert_int_equal(pos, i);
	assert_int_equal(o, w);
	assert_memory_equal(out, want, w);
	free(in);
	free(want);
	free(out);
}

/* test_size_past_limit - past max_size nothing more is written, but
 * size keeps counting every octet (RFC 1870's count, CRLF as two): the
 * session's --max-discard budget relies on it to stop reading an
 * endless message (issue 19.8),
 * for lines and for a stream with no line end at all (/dev/zero) */
static void test_size_past_limit(void **state)
{
	static char in[65536], out[65536 + 2];
	const struct {
		const char *name;
		char fill;
		bool lines;
	} streams[] = {{"text lines", 'x', true}, {"NUL bytes, no LF", '\0', false}};
	for (size_t k = 0; k < sizeof(streams) / sizeof(streams[0]); k++) {
		memset(in, streams[k].fill, sizeof(in));
		if (streams[k].lines)
			for (size_t i = 78; i + 1 < sizeof(in); i += 80)
				memcpy(in + i, "\r\n", 2);
		struct data_decoder d;
		data_decoder_init(&d, 1000, 0);
		size_t written = 0, fed = 0;
		for (int round = 0; round < 32; round++) {
			size_t wr, used = data_decode(&d, in, sizeof(in), out, &wr);
			written += wr;
			fed += used;
			if (used != sizeof(in) || d.done)
				fail_msg("%s: consumed %zu of %zu, done %d, want all and not done",
				         streams[k].name, used, sizeof(in), d.done);
		}
		size_t want = fed; /* no dot stuffing here: every octet counts */
		if (!d.too_big || written > 1000 || d.size != want)
			fail_msg("%s: too_big %d written %zu size %zu, want 1 <=1000 %zu",
			         streams[k].name, d.too_big, written, d.size, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_large),
	    cmocka_unit_test(test_size_past_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
