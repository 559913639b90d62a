/*
 * bounce.c - TEMPORARY STUB of the bounce branch's DSN formatter
 *
 * Just enough RFC 3464 for the queue's tests: multipart/report with a
 * text part, a message/delivery-status part and the original headers.
 * Replaced at merge by the bounce branch's bounce.c.
 */
#include "bounce.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"

/* safe - s with every byte outside printable ASCII as '?' (no header
 * can be ended or added by an address) */
static void safe(FILE *out, const char *s)
{
	for (; *s; s++)
		putc(*s > 0x20 && *s < 0x7f ? *s : '?', out);
}

/* date - an RFC 5322 date */
static void date(FILE *out, time_t t)
{
	char buf[64];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	fputs(buf, out);
}

/* headers - the original header block, bounded */
static int headers(FILE *out, int fd)
{
	static char buf[BOUND_BOUNCE_HEADERS];
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t n = pread(fd, buf + got, sizeof(buf) - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	size_t end = got;
	for (size_t i = 0; i + 1 < got; i++)
		if (buf[i] == '\n' && buf[i + 1] == '\n') {
			end = i + 1;
			break;
		}
	fwrite(buf, 1, end, out);
	if (end > 0 && buf[end - 1] != '\n')
		putc('\n', out);
	return 0;
}

/* bounce_write - see bounce.h */
int bounce_write(FILE *out, const struct bounce_info *b, int msg_fd, char *err, size_t errlen)
{
	const char *bd = "smtpipe-dsn-boundary";
	fputs("From: Mail Delivery System <MAILER-DAEMON@", out);
	safe(out, b->reporting_host);
	fputs(">\nTo: <", out);
	safe(out, b->sender);
	fputs(">\nSubject: ", out);
	fputs(b->expired ? "Undelivered Mail Returned to Sender (expired)"
	                 : "Undelivered Mail Returned to Sender",
	      out);
	fputs("\nDate: ", out);
	date(out, b->now);
	fprintf(out,
	        "\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
	        "Content-Type: multipart/report; report-type=delivery-status;\n"
	        "\tboundary=\"%s\"\n\nThis is a MIME-encapsulated message.\n\n--%s\n"
	        "Content-Type: text/plain; charset=us-ascii\n\n",
	        bd, bd);
	fprintf(out, "Your message (queue id %s) could not be delivered%s.\n\n", b->queue_id,
	        b->expired ? ": it stayed in the queue too long" : "");
	fprintf(out, "--%s\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; ", bd);
	safe(out, b->reporting_host);
	fprintf(out, "\nX-Smtpipe-Queue-ID: %s\nArrival-Date: ", b->queue_id);
	date(out, b->arrival);
	putc('\n', out);
	for (size_t i = 0; i < b->nrcpt; i++) {
		fputs("\nFinal-Recipient: rfc822; ", out);
		safe(out, b->rcpts[i]);
		fprintf(out, "\nAction: failed\nStatus: %s\nDiagnostic-Code: ", b->status);
		for (const char *d = b->diagnostic; *d; d++)
			putc(*d >= 0x20 && *d < 0x7f ? *d : '?', out);
		putc('\n', out);
	}
	fprintf(out, "\n--%s\nContent-Type: text/rfc822-headers\n\n", bd);
	if (headers(out, msg_fd) < 0) {
		snprintf(err, errlen, "cannot read the message: %s", strerror(errno));
		return -1;
	}
	fprintf(out, "\n--%s--\n", bd);
	if (ferror(out)) {
		snprintf(err, errlen, "cannot write the bounce");
		return -1;
	}
	return 0;
}
