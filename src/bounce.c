/*
 * bounce.c - the DSN of a failed queued message, RFC 3464 in an
 *            RFC 6522 multipart/report
 *
 * Everything is checked before the first byte is written, so a refused
 * field leaves out untouched. Client data reaches the DSN in two ways:
 * the addresses and the diagnostic, on lines that start with fixed
 * text and may hold no control byte (so no header or MIME delimiter can
 * be made of them), and the original headers, copied as they are but
 * bounded, with a boundary chosen to occur nowhere in them.
 */
#include "bounce.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"

/* RFC 2046 5.1.1: a boundary is 1 to 70 characters */
#define BOUNCE_BOUNDARY_MAX 70
/* of the queue id, in the boundary and the Message-ID */
#define BOUNCE_ID_PART 32
#define CTE_8BIT       "Content-Transfer-Encoding: 8bit\n"

static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* field_ok - s is there, at most max bytes, with no control byte but
 * TAB; otherwise false with err naming the field */
static bool field_ok(const char *s, const char *name, size_t max, char *err, size_t errlen)
{
	if (!s || !*s) {
		snprintf(err, errlen, "bounce: no %s", name);
		return false;
	}
	size_t n = strlen(s);
	if (n > max) {
		snprintf(err, errlen, "bounce: %s longer than %zu bytes", name, max);
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			snprintf(err, errlen, "bounce: %s holds control byte 0x%02x", name, *p);
			return false;
		}
	return true;
}

/* status_ok - RFC 3463 2: class "." subject "." detail, subject and
 * detail one to three digits; the class 4 or 5, since RFC 3464 2.3.3
 * pairs Action: failed with a failure, never with success (2) */
static bool status_ok(const char *s)
{
	if (!s || (s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		size_t n = strspn(s, "0123456789");
		if (n < 1 || n > 3 || s[n] != (part == 0 ? '.' : '\0'))
			return false;
		s += n + 1;
	}
	return true;
}

/* diag_len - the diagnostic's length, cut to BOUND_BOUNCE_FIELD at the
 * start of a UTF-8 sequence */
static size_t diag_len(const char *d)
{
	size_t n = strlen(d);
	if (n <= BOUND_BOUNCE_FIELD)
		return n;
	n = BOUND_BOUNCE_FIELD;
	while (n > 0 && ((unsigned char)d[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* eightbit - n bytes of s hold one past ASCII */
static bool eightbit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* read_headers - the header section of the message in fd, read from
 * offset 0 up to the first empty line: at most BOUND_BOUNCE_HEADERS
 * bytes, cut back to the last line end when longer (*cut set), a
 * missing final LF added; the buffer (malloc'd, *len bytes, 0 when the
 * message starts with an empty line), or NULL with err filled */
static char *read_headers(int fd, size_t *len, bool *cut, char *err, size_t errlen)
{
	size_t cap = BOUND_BOUNCE_HEADERS + 1, got = 0; /* one more: over the bound? */
	char *h = malloc(cap + 1);                      /* and room for a final LF */
	if (!h) {
		snprintf(err, errlen, "bounce: out of memory for the headers");
		return NULL;
	}
	const char *blank = NULL;
	while (got < cap && !blank) {
		ssize_t n = pread(fd, h + got, cap - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "bounce: cannot read the message: %s",
			         strerror(errno));
			free(h);
			return NULL;
		}
		if (n == 0)
			break;
		size_t from = got ? got - 1 : 0; /* "\n\n" across two reads */
		got += (size_t)n;
		blank = h[0] == '\n' ? h : memmem(h + from, got - from, "\n\n", 2);
	}
	*cut = false;
	if (got > 0 && h[0] == '\n') {
		*len = 0;
	} else if (blank) {
		*len = (size_t)(blank - h) + 1;
	} else if (got < cap) { /* the whole message is headers */
		*len = got;
		if (got > 0 && h[got - 1] != '\n')
			h[(*len)++] = '\n';
	} else {
		const char *lf = memrchr(h, '\n', BOUND_BOUNCE_HEADERS);
		*len = lf ? (size_t)(lf - h) + 1 : 0;
		*cut = true;
	}
	return h;
}

/* pick_boundary - make bd (holding the base) longer, one letter or digit
 * at a time, until it occurs nowhere in h: each round picks the byte
 * that follows it least often there, so the occurrences shrink at least
 * 62-fold a round and a few rounds do; 0, or -1 if it would grow past
 * RFC 2046's 70 characters */
static int pick_boundary(char *bd, const char *h, size_t hl)
{
	size_t bl = strlen(bd);
	for (;;) {
		size_t seen[sizeof(alnum) - 1] = {0}, hits = 0;
		const char *p = h;
		while (hl >= bl && (p = memmem(p, hl - (size_t)(p - h), bd, bl)) != NULL) {
			hits++;
			const char *c = p + bl < h + hl && p[bl] ? strchr(alnum, p[bl]) : NULL;
			if (c)
				seen[c - alnum]++;
			p++;
		}
		if (hits == 0)
			return 0;
		if (bl == BOUNCE_BOUNDARY_MAX)
			return -1;
		size_t best = 0;
		for (size_t i = 1; i < sizeof(seen) / sizeof(seen[0]); i++)
			if (seen[i] < seen[best])
				best = i;
		bd[bl++] = alnum[best];
		bd[bl] = '\0';
	}
}

/* id_part - the queue id's letters, digits, '.', '-' and '_' (at most
 * BOUNCE_ID_PART of them), fit for a boundary and a Message-ID */
static void id_part(const char *id, char *buf)
{
	size_t n = 0;
	for (; *id && n < BOUNCE_ID_PART; id++)
		if (strchr(alnum, *id) || *id == '.' || *id == '-' || *id == '_')
			buf[n++] = *id;
	buf[n] = '\0';
}

/* rfc5322_date - as engine_received writes it; false if gmtime cannot */
static bool rfc5322_date(time_t t, char *buf, size_t cap)
{
	struct tm tm;
	return gmtime_r(&t, &tm) && strftime(buf, cap, "%a, %d %b %Y %H:%M:%S +0000", &tm) > 0;
}

/* write_text - part 1: what happened, to whom, and why, for a person */
static void write_text(FILE *out, const struct bounce_info *b, const char *arrival, size_t dlen,
                       bool have_msg, bool cut)
{
	fprintf(out, "This is the mail system at host %s.\n\n", b->reporting_host);
	if (b->expired)
		fputs("Your message could not be delivered within the queue lifetime to the\n"
		      "recipients below, and delivery has been given up.\n",
		      out);
	else
		fputs("Your message could not be delivered to the recipients below: the\n"
		      "failure is permanent, and delivery has been given up.\n",
		      out);
	fprintf(out, "It arrived on %s and had queue id %s.\n\n", arrival, b->queue_id);
	for (size_t i = 0; i < b->nrcpt; i++)
		fprintf(out, "    <%s>\n", b->rcpts[i]);
	if (b->diagnostic)
		fprintf(out, "\nThe reason:\n\n    %.*s\n", (int)dlen, b->diagnostic);
	fputs(have_msg ? "\nThe delivery report and the headers of your message are attached.\n"
	               : "\nThe delivery report is attached.\n",
	      out);
	if (cut)
		fprintf(out, "The headers were cut at a line end after %d bytes.\n",
		        BOUND_BOUNCE_HEADERS);
}

/* check - every field the DSN writes, before a byte is written; the
 * two dates filled; 0, or -1 with err filled */
static int check(const struct bounce_info *b, char *now, char *arrival, char *err, size_t errlen)
{
	if (!field_ok(b->reporting_host, "reporting host", BOUND_DOMAIN + 2, err, errlen) ||
	    !field_ok(b->queue_id, "queue id", BOUND_BOUNCE_FIELD, err, errlen) ||
	    !field_ok(b->sender, "sender", BOUND_BOUNCE_FIELD, err, errlen) ||
	    !field_ok(b->status, "status", 16, err, errlen) ||
	    (b->diagnostic && !field_ok(b->diagnostic, "diagnostic", SIZE_MAX, err, errlen)))
		return -1;
	if (!status_ok(b->status)) {
		snprintf(err, errlen, "bounce: status %s is not 4.x.x or 5.x.x (RFC 3463)",
		         b->status);
		return -1;
	}
	if (b->nrcpt == 0 || !b->rcpts) {
		snprintf(err, errlen, "bounce: no recipients");
		return -1;
	}
	for (size_t i = 0; i < b->nrcpt; i++)
		if (!field_ok(b->rcpts[i], "recipient", BOUND_BOUNCE_FIELD, err, errlen))
			return -1;
	if (!rfc5322_date(b->now, now, 64) || !rfc5322_date(b->arrival, arrival, 64)) {
		snprintf(err, errlen, "bounce: a time out of range");
		return -1;
	}
	return 0;
}

/* write_report - part 2: RFC 3464 2.2's per-message fields, then 2.3's
 * block for each recipient; an address past ASCII is RFC 6533's type
 * "utf-8" in a message/global-delivery-status */
static void write_report(FILE *out, const struct bounce_info *b, const char *bd,
                         const char *arrival, size_t dlen, bool utf8)
{
	fprintf(out,
	        "\n--%s\nContent-Type: message/%sdelivery-status\n%s"
	        "Content-Description: Delivery report\n\n"
	        "Reporting-MTA: dns; %s\nX-Smtpipe-Queue-Id: %s\nArrival-Date: %s\n",
	        bd, utf8 ? "global-" : "", utf8 ? CTE_8BIT : "", b->reporting_host, b->queue_id,
	        arrival);
	for (size_t i = 0; i < b->nrcpt; i++) {
		const char *r = b->rcpts[i];
		fprintf(out, "\nFinal-Recipient: %s; %s\nAction: failed\nStatus: %s\n",
		        eightbit(r, strlen(r)) ? "utf-8" : "rfc822", r, b->status);
		if (b->diagnostic)
			fprintf(out, "Diagnostic-Code: %.*s\n", (int)dlen, b->diagnostic);
	}
}

/* bounce_write - see bounce.h */
int bounce_write(FILE *out, const struct bounce_info *info, int msg_fd, char *err, size_t errlen)
{
	struct bounce_info copy = *info; /* an empty diagnostic is none */
	if (copy.diagnostic && !copy.diagnostic[0])
		copy.diagnostic = NULL;
	const struct bounce_info *b = &copy;
	char now[64], arrival[64];
	if (check(b, now, arrival, err, errlen) < 0)
		return -1;
	size_t dlen = b->diagnostic ? diag_len(b->diagnostic) : 0;

	char *h = NULL;
	size_t hl = 0;
	bool cut = false;
	if (msg_fd >= 0 && !(h = read_headers(msg_fd, &hl, &cut, err, errlen)))
		return -1;
	char id[BOUNCE_ID_PART + 1], bd[BOUNCE_BOUNDARY_MAX + 1];
	id_part(b->queue_id, id);
	if (!id[0]) /* an id of other bytes only: the time keeps it unique */
		strcpy(id, "q");
	snprintf(bd, sizeof(bd), "=_%s.%lld", id, (long long)b->now);
	if (h && pick_boundary(bd, h, hl) < 0) {
		snprintf(err, errlen, "bounce: no MIME boundary fits"); /* see pick_boundary */
		free(h);
		return -1;
	}
	/* A UTF-8 address (the engine takes one only under SMTPUTF8) makes
	 * the report and the headers RFC 6533's global types, as Postfix
	 * does for SMTPUTF8 mail; 8-bit headers alone only need 8bit. */
	bool utf8 = eightbit(b->sender, strlen(b->sender)) ||
	            (b->diagnostic && eightbit(b->diagnostic, dlen));
	for (size_t i = 0; i < b->nrcpt; i++)
		utf8 = utf8 || eightbit(b->rcpts[i], strlen(b->rcpts[i]));
	bool hdr8 = h && eightbit(h, hl);

	fprintf(out,
	        "From: Mail Delivery System <MAILER-DAEMON@%s>\nTo: <%s>\n"
	        "Subject: Undelivered Mail Returned to Sender\nDate: %s\n"
	        "Message-ID: <%lld.%s@%s>\nAuto-Submitted: auto-replied\n"
	        "X-Smtpipe-Queue-Id: %s\nMIME-Version: 1.0\n"
	        "Content-Type: multipart/report; report-type=delivery-status;\n"
	        "\tboundary=\"%s\"\n%s\n"
	        "This is a MIME-encapsulated delivery status notification (RFC 3464).\n",
	        b->reporting_host, b->sender, now, (long long)b->now, id, b->reporting_host,
	        b->queue_id, bd, utf8 || hdr8 ? CTE_8BIT : "");
	fprintf(out,
	        "\n--%s\nContent-Type: text/plain; charset=utf-8\n%s"
	        "Content-Description: Notification\n\n",
	        bd, utf8 ? CTE_8BIT : "");
	write_text(out, b, arrival, dlen, h != NULL, cut);
	write_report(out, b, bd, arrival, dlen, utf8);
	if (h) { /* RFC 6522 3: the third part is optional */
		fprintf(out,
		        "\n--%s\nContent-Type: %s\n%s"
		        "Content-Description: Undelivered message headers\n\n",
		        bd, utf8 ? "message/global-headers" : "text/rfc822-headers",
		        hdr8 ? CTE_8BIT : "");
		fwrite(h, 1, hl, out);
		free(h);
	}
	fprintf(out, "\n--%s--\n", bd);
	if (fflush(out) != 0 || ferror(out)) {
		snprintf(err, errlen, "bounce: cannot write the DSN: %s", strerror(errno));
		return -1;
	}
	return 0;
}
