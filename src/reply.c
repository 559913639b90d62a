/*
 * reply.c - append SMTP replies to the session's reply buffer
 *
 * A reply that would not fit is cut to what fits, still ending in CRLF,
 * so a long argument echoed back can never overflow the buffer. The
 * session flushes at half capacity, so a whole reply always fits in
 * practice; the cut is a guard, not a path.
 */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* reply_add - append "CODE-text" or "CODE text" and CRLF */
void reply_add(struct reply_buf *rb, int code, bool last, const char *fmt, ...)
{
	size_t room = sizeof(rb->data) - rb->len;
	if (room < 7) /* "NNN x\r\n" */
		return;
	char *p = rb->data + rb->len;
	int n = snprintf(p, room, "%03d%c", code, last ? ' ' : '-');
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(p + n, room - (size_t)n, fmt, ap);
	va_end(ap);
	size_t used = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (used > room - 3) /* cut, leaving room for CRLF */
		used = room - 3;
	/* Reply text never carries a line break of its own. */
	for (size_t i = 4; i < used; i++)
		if (p[i] == '\r' || p[i] == '\n')
			p[i] = ' ';
	memcpy(p + used, "\r\n", 3);
	rb->len += used + 2;
}

/* reply_half_full - time to flush, whatever input is waiting */
bool reply_half_full(const struct reply_buf *rb)
{
	return rb->len >= sizeof(rb->data) / 2;
}
