/*
 * reply.h - the reply buffer and SMTP replies with enhanced codes
 *
 * The engine appends replies here; the session writes the buffer out
 * only when no input is waiting or it is half full, which is all RFC
 * 2920 PIPELINING asks. Replies are formatted "CODE X.Y.Z text" (RFC
 * 3463); a reply that does not fit is cut, never overflows.
 */
#ifndef SMTPIPE_REPLY_H
#define SMTPIPE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "bounds.h"

struct reply_buf {
	size_t len; /* first: beside the bytes in use, not a page past them */
	char data[BOUND_REPLY_BUFFER];
};

/* reply_add - append one reply line "CODE[-| ]text\r\n"; last says
 * whether it ends a multiline reply; fmt is printf-like */
void reply_add(struct reply_buf *rb, int code, bool last, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* reply_half_full - whether the session should flush now */
bool reply_half_full(const struct reply_buf *rb);

#endif
