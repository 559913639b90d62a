/*
 * data.c - decode message text: dot-unstuffing, CRLF to LF, the end
 *
 * A byte-level state machine whose common case (the middle of a line)
 * is one memchr for LF and one memcpy, so that 100 MB messages cost
 * little more than a copy. States:
 *   LINE_START  just after CRLF (or at the start of DATA)
 *   DOT         CRLF "."        a leading dot: dropped (RFC 5321 4.5.2)
 *   DOT_CR      CRLF "." CR     LF here ends the data
 *   TEXT        inside a line
 *   CR          a CR was the last byte of the previous block
 * Only CRLF starts a line, so a dot after a bare LF or bare CR is plain
 * content and no sequence but CRLF "." CRLF ends the message.
 */
#include "data.h"

#include <string.h>

enum {
	DS_LINE_START,
	DS_DOT,
	DS_DOT_CR,
	DS_TEXT,
	DS_CR,
};

/* data_decoder_init - ready for a new message */
void data_decoder_init(struct data_decoder *d, size_t max_size, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->state = DS_LINE_START;
	d->max_size = max_size;
	d->max_line = max_line;
}

/* emit - n output bytes that stand for octets on the wire (RFC 1870
 * counts CRLF as two, so the LF made of one counts 2); nothing is
 * written once the message is too big or a line too long, since the
 * session will refuse it */
static void emit(struct data_decoder *d, char *out, size_t *o, const char *p, size_t n,
                 size_t octets)
{
	d->size += octets;
	if (d->max_size && d->size > d->max_size)
		d->too_big = true;
	if (n == 0 || d->too_big || d->line_too_long)
		return;
	memcpy(out + *o, p, n);
	*o += n;
}

/* line_grew - count n more octets in the current line (called before
 * they are emitted, so a line over the limit is not written) */
static void line_grew(struct data_decoder *d, size_t n)
{
	d->line_len += n;
	if (d->line_len > d->longest)
		d->longest = d->line_len;
	if (d->max_line && d->line_len > d->max_line)
		d->line_too_long = true;
}

/* line_ended - an LF was emitted */
static void line_ended(struct data_decoder *d)
{
	d->line_len = 0;
}

/* text - the middle of a line from p: up to and with its LF (CRLF
 * becomes LF; a bare LF is content and starts no line), or to the end
 * of the block, keeping a last CR that may begin a CRLF; where the
 * next byte is. The common case: one memchr and one memcpy. */
static const char *text(struct data_decoder *d, const char *p, const char *end, char *out,
                        size_t *o)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl) {
		size_t n = (size_t)(end - p);
		if (p[n - 1] == '\r') { /* may be the CR of a CRLF */
			line_grew(d, n - 1);
			emit(d, out, o, p, n - 1, n - 1);
			d->state = DS_CR;
		} else {
			line_grew(d, n);
			emit(d, out, o, p, n, n);
		}
		return end;
	}
	size_t n = (size_t)(nl - p);
	if (n > 0 && p[n - 1] == '\r') {
		line_grew(d, n - 1);
		emit(d, out, o, p, n - 1, n - 1);
		emit(d, out, o, "\n", 1, 2);
		d->state = DS_LINE_START;
	} else {
		/* bare LF: content, and no new line starts */
		line_grew(d, n);
		emit(d, out, o, p, n + 1, n + 1);
		d->bare_lf++;
	}
	line_ended(d);
	return nl + 1;
}

/* data_decode - see data.h */
size_t data_decode(struct data_decoder *d, const char *in, size_t len, char *out, size_t *out_len)
{
	const char *p = in, *end = in + len;
	size_t o = 0;

	while (p < end && !d->done) {
		switch (d->state) {
		case DS_LINE_START:
			if (*p == '.') {
				/* RFC 5321 4.5.2: the transparency dot; neither the
				 * line length (4.5.3.1.6) nor RFC 1870's size
				 * counts it */
				d->state = DS_DOT;
				p++;
			} else {
				d->state = DS_TEXT;
			}
			break;
		case DS_DOT:
			if (*p == '\r') {
				d->state = DS_DOT_CR;
				p++;
			} else {
				d->state = DS_TEXT; /* the dot is dropped */
			}
			break;
		case DS_DOT_CR:
			if (*p == '\n') {
				d->done = true;
				p++;
			} else {
				line_grew(d, 1);
				emit(d, out, &o, "\r", 1, 1); /* ".\r" then more: content */
				d->state = DS_TEXT;
			}
			break;
		case DS_CR:
			if (*p == '\n') {
				emit(d, out, &o, "\n", 1, 2);
				line_ended(d);
				d->state = DS_LINE_START;
				p++;
			} else {
				line_grew(d, 1);
				emit(d, out, &o, "\r", 1, 1); /* bare CR: kept */
				d->state = DS_TEXT;
			}
			break;
		case DS_TEXT:
			p = text(d, p, end, out, &o);
			break;
		}
	}
	*out_len = o;
	return (size_t)(p - in);
}
