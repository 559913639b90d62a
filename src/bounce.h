/*
 * bounce.h - a delivery status notification (a bounce) for a queued
 *            message that failed for good or outlived the queue
 *
 * The message is an RFC 6522 multipart/report with report-type
 * delivery-status: a text/plain explanation, a message/delivery-status
 * part (RFC 3464: Reporting-MTA, X-Smtpipe-Queue-Id and Arrival-Date,
 * then one block per recipient with Final-Recipient, Action: failed,
 * Status and Diagnostic-Code), and a text/rfc822-headers part with the
 * original message's headers. It comes from
 * "Mail Delivery System <MAILER-DAEMON@host>" with Auto-Submitted:
 * auto-replied (RFC 3834), so that well-behaved software answers no
 * bounce with another. The caller never bounces a message whose sender
 * is <>, and hands the bounce on with <> as its own envelope sender, so
 * that a bounce is never bounced (RFC 5321 4.5.5, RFC 3464 2).
 *
 * Results: 0, or -1 with err filled and nothing written to out, for a
 * refused field: any control byte other than TAB (CR and LF above all,
 * which would let a field start a header or a MIME part of its own; a
 * NUL ends a C string, so the field is cut there by construction), a
 * host longer than a domain may be or another field longer than
 * BOUND_BOUNCE_FIELD, a missing or empty one, no recipients, a status
 * that is not RFC 3463's class.subject.detail of class 4 or 5, a time
 * gmtime cannot break up, or a message that cannot be read. A
 * diagnostic longer than BOUND_BOUNCE_FIELD is cut there (at the start
 * of a UTF-8 sequence) rather than refused: the bounce matters more
 * than its last words. -1 also when writing to out fails (out is
 * flushed before the return; what it holds is then incomplete).
 *
 * SMTPUTF8 (RFC 6531, RFC 6533): when the sender, a recipient or the
 * diagnostic is UTF-8 (the engine takes such an address only under
 * SMTPUTF8), the report is a message/global-delivery-status whose
 * UTF-8 addresses have the type "utf-8", and the headers part is a
 * message/global-headers, as Postfix does for SMTPUTF8 mail; the bounce
 * then needs an SMTPUTF8 path back, as the message it returns did.
 * Otherwise the types are message/delivery-status (7bit, as RFC 3464
 * wants) and text/rfc822-headers. Every part that holds a byte past
 * ASCII, and the whole, says Content-Transfer-Encoding: 8bit.
 *
 * The original headers are client data and are copied as they are, at
 * most BOUND_BOUNCE_HEADERS bytes, cut back to the end of a line when
 * longer (the text part says so). The MIME boundary is made from the
 * queue id and the time, and made longer until it occurs nowhere in the
 * copied headers, so no line of theirs (split at LF or at a bare CR)
 * can end or start a part. Every line the DSN writes with a caller's
 * field in it starts with fixed text.
 */
#ifndef SMTPIPE_BOUNCE_H
#define SMTPIPE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct bounce_info {
	const char *reporting_host; /* Reporting-MTA: dns; HOST */
	const char *queue_id;       /* our id, in the text and an X-Smtpipe-Queue-Id header */
	const char *sender;         /* original envelope sender (never "": the caller checks) */
	const char *const *rcpts;   /* failed recipients */
	size_t nrcpt;               /* how many (at least one) */
	const char *status;         /* enhanced status: "5.0.0", or "4.4.7" when expired */
	const char *diagnostic;     /* "smtp; 554 5.0.0 command exited 67"; NULL or "": none */
	time_t arrival;             /* Arrival-Date */
	time_t now;                 /* Date: of the DSN */
	bool expired;               /* the message outlived --queue-lifetime: wording differs */
};

/* bounce_write - write a complete DSN message to out (LF line ends, as
 * queue files hold them; the delivery path adds nothing), with the
 * original message's headers read from msg_fd (pread from offset 0 up
 * to the first empty line, so a regular file whose offset is left
 * alone; a message that starts with an empty line has no headers).
 * msg_fd -1: no message at hand, and the DSN has no third part (RFC
 * 6522 3 makes it optional); a msg_fd that cannot be read is -1 with
 * err filled. The diagnostic, when given, is RFC 3464 2.3.6's
 * "type; text" ("smtp; 554 ..."), written as it is. 0, or -1 with err
 * filled */
int bounce_write(FILE *out, const struct bounce_info *b, int msg_fd, char *err, size_t errlen);

#endif
