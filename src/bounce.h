/*
 * bounce.h - an RFC 3464 delivery status notification, formatted
 *
 * TEMPORARY STUB in the queue branch: the bounce branch owns this API
 * and its real implementation; the lead merges that one first and this
 * file then gives way to it. Pure formatting: no queue, no delivery.
 */
#ifndef SMTPIPE_BOUNCE_H
#define SMTPIPE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct bounce_info {
	const char *reporting_host; /* Reporting-MTA: dns; HOST */
	const char *queue_id;       /* our id, in X-... and the text */
	const char *sender;         /* original envelope sender ("" never bounced: caller checks) */
	const char *const *rcpts;   /* failed recipients */
	size_t nrcpt;
	const char *status;     /* enhanced status, e.g. "5.0.0" or "4.4.7" for expiry */
	const char *diagnostic; /* e.g. "smtp; 554 5.0.0 command exited 67 (EX_NOUSER)" */
	time_t arrival;         /* Arrival-Date */
	time_t now;             /* Date of the DSN */
	bool expired;           /* Action: failed in both; wording differs */
};

/* bounce_write - write a complete DSN message (LF lines) to out, with
 * the original message's headers (read from msg_fd from offset 0, up
 * to the blank line, bounded) as text/rfc822-headers; 0, or -1 with
 * err filled */
int bounce_write(FILE *out, const struct bounce_info *b, int msg_fd, char *err, size_t errlen);

#endif
