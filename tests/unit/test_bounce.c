/*
 * test_bounce.c - the DSN of a failed message: every field, hostile
 * addresses written as they are, control bytes refused, the original
 * headers bounded and cut at a line end, a boundary that the headers
 * cannot hold, a message with no headers, none at all, or unreadable
 *
 * With arguments, the binary is a helper for
 * tests/integration/test_bounce_format.py, which reads its DSN with
 * Python's email package:
 *   test_bounce --write MSG OUT HOST QID SENDER STATUS DIAG ARRIVAL NOW EXPIRED RCPT...
 * (MSG "-": no message; DIAG "": none; EXPIRED 0 or 1). Exit 0, or 1
 * with bounce_write's error on stderr and OUT left empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "bounds.h"

static const char *const two_rcpts[] = {"alice@example.org", "bob@example.net"};

/* base_info - a plain failure: two recipients, a diagnostic */
static struct bounce_info base_info(void)
{
	struct bounce_info b = {
	    .reporting_host = "mx.example.org",
	    .queue_id = "Q1a2b3",
	    .sender = "carol@example.com",
	    .rcpts = two_rcpts,
	    .nrcpt = 2,
	    .status = "5.0.0",
	    .diagnostic = "smtp; 554 5.0.0 command exited 67 (EX_NOUSER)",
	    .arrival = 1699999000,
	    .now = 1700000000,
	    .expired = false,
	};
	return b;
}

/* msg_file - a real file holding len bytes of msg, at offset len (pread
 * must not depend on it); -1 for msg NULL */
static int msg_file(const char *msg, size_t len)
{
	if (!msg)
		return -1;
	FILE *f = tmpfile();
	assert_non_null(f);
	int fd = dup(fileno(f));
	fclose(f);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, msg, len), (ssize_t)len);
	return fd;
}

/* dsn_len - bounce_write into memory; the output (malloc'd, "" when
 * nothing was written), *rc its result, err its error */
static char *dsn_len(const struct bounce_info *b, const char *msg, size_t len, int *rc, char *err,
                     size_t errlen)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	assert_non_null(f);
	int fd = msg_file(msg, len);
	err[0] = '\0';
	*rc = bounce_write(f, b, fd, err, errlen);
	fclose(f);
	if (fd >= 0)
		close(fd);
	return out;
}

static char *dsn(const struct bounce_info *b, const char *msg, int *rc, char *err)
{
	return dsn_len(b, msg, msg ? strlen(msg) : 0, rc, err, 256);
}

/* ok_dsn - a DSN that must be written */
static char *ok_dsn(const struct bounce_info *b, const char *msg)
{
	char err[256];
	int rc;
	char *out = dsn(b, msg, &rc, err);
	if (rc != 0)
		fail_msg("got -1 (%s), want a DSN", err);
	return out;
}

/* has_line - out holds line as a whole line */
static bool has_line(const char *out, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = out; (p = strstr(p, line)) != NULL; p++)
		if ((p == out || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void want_lines(const char *out, const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!has_line(out, lines[i]))
			fail_msg("no line \"%s\" in:\n%s", lines[i], out);
}

/* boundary - the top-level boundary (malloc'd) */
static char *boundary(const char *out)
{
	const char *p = strstr(out, "boundary=\"");
	assert_non_null(p);
	p += strlen("boundary=\"");
	const char *q = strchr(p, '"');
	assert_non_null(q);
	return strndup(p, (size_t)(q - p));
}

/* part - body of part i (1..3) of out, without the line break before
 * the next delimiter (malloc'd), or NULL when there is no such part */
static char *part(const char *out, int i)
{
	char *b = boundary(out);
	char delim[128];
	snprintf(delim, sizeof(delim), "\n--%s", b);
	free(b);
	const char *p = out;
	for (int k = 0; k < i; k++) {
		p = strstr(p, delim);
		if (!p)
			return NULL;
		p += strlen(delim);
		if (strncmp(p, "--", 2) == 0)
			return NULL; /* the closing delimiter */
	}
	p = strstr(p, "\n\n"); /* past the part's own headers */
	assert_non_null(p);
	p += 2;
	const char *end = strstr(p - 1, delim);
	assert_non_null(end);
	return strndup(p, (size_t)(end < p ? 0 : end - p));
}

static void test_fields(void **state)
{
	struct bounce_info b = base_info();
	const char *msg =
	    "Received: from x\n\tby y;\n\tdate\nSubject: hello\nFrom: <carol@example.com>"
	    "\n\nbody line\n";
	char *out = ok_dsn(&b, msg);
	const char *const top[] = {
	    "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>",
	    "To: <carol@example.com>",
	    "Subject: Undelivered Mail Returned to Sender",
	    "Date: Tue, 14 Nov 2023 22:13:20 +0000",
	    "Message-ID: <1700000000.Q1a2b3@mx.example.org>",
	    "Auto-Submitted: auto-replied",
	    "X-Smtpipe-Queue-Id: Q1a2b3",
	    "MIME-Version: 1.0",
	};
	want_lines(out, top, sizeof(top) / sizeof(top[0]));
	assert_true(strncmp(out, "From: ", 6) == 0);
	char *bd = boundary(out);
	char ct[256];
	snprintf(ct, sizeof(ct),
	         "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"",
	         bd);
	if (!strstr(out, ct))
		fail_msg("no \"%s\" in:\n%s", ct, out);
	char end[128];
	snprintf(end, sizeof(end), "\n--%s--\n", bd);
	size_t ol = strlen(out), el = strlen(end);
	assert_true(ol > el && strcmp(out + ol - el, end) == 0);
	assert_null(strchr(out, '\r'));

	char *text = part(out, 1);
	const char *const human[] = {"    <alice@example.org>", "    <bob@example.net>",
	                             "    smtp; 554 5.0.0 command exited 67 (EX_NOUSER)"};
	want_lines(text, human, 3);
	assert_non_null(strstr(text, "Q1a2b3"));
	assert_null(strstr(text, "lifetime"));

	char *ds = part(out, 2);
	const char *want_ds = "Reporting-MTA: dns; mx.example.org\n"
	                      "X-Smtpipe-Queue-Id: Q1a2b3\n"
	                      "Arrival-Date: Tue, 14 Nov 2023 21:56:40 +0000\n"
	                      "\n"
	                      "Final-Recipient: rfc822; alice@example.org\n"
	                      "Action: failed\n"
	                      "Status: 5.0.0\n"
	                      "Diagnostic-Code: smtp; 554 5.0.0 command exited 67 (EX_NOUSER)\n"
	                      "\n"
	                      "Final-Recipient: rfc822; bob@example.net\n"
	                      "Action: failed\n"
	                      "Status: 5.0.0\n"
	                      "Diagnostic-Code: smtp; 554 5.0.0 command exited 67 (EX_NOUSER)\n";
	if (strcmp(ds, want_ds) != 0)
		fail_msg("delivery-status: got\n%s\nwant\n%s", ds, want_ds);

	char *hdr = part(out, 3);
	const char *want_hdr =
	    "Received: from x\n\tby y;\n\tdate\nSubject: hello\nFrom: <carol@example.com>\n";
	if (strcmp(hdr, want_hdr) != 0)
		fail_msg("headers: got \"%s\", want \"%s\"", hdr, want_hdr);
	assert_null(strstr(out, "body line"));
	assert_null(strstr(out, "8bit"));
	free(hdr), free(ds), free(text), free(bd), free(out);
}

static void test_expired(void **state)
{
	struct bounce_info b = base_info();
	b.expired = true;
	b.status = "4.4.7";
	b.diagnostic = NULL;
	char *out = ok_dsn(&b, "Subject: x\n\n");
	char *ds = part(out, 2);
	const char *const lines[] = {"Status: 4.4.7", "Action: failed"};
	want_lines(ds, lines, 2);
	assert_null(strstr(ds, "Diagnostic-Code"));
	char *text = part(out, 1);
	if (!strstr(text, "lifetime"))
		fail_msg("the text does not say the message expired:\n%s", text);
	free(text), free(ds), free(out);
}

static void test_hostile_addresses(void **state)
{
	const char *const addrs[] = {
	    "\"john doe\"@example.com",
	    "\"a>b,c;<d>: e\"@example.com",
	    "\"say \\\"hi\\\"\"@example.com",
	    "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae@\xcf\x80\xce\xb1\xcf\x81.example",
	    "--not-a-boundary@example.com",
	    "postmaster",
	    "\"tab\there\"@example.com",
	};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct bounce_info b = base_info();
		b.sender = addrs[i];
		b.rcpts = &addrs[i];
		b.nrcpt = 1;
		char *out = ok_dsn(&b, "Subject: x\n\n");
		/* RFC 6533: a UTF-8 address is of type utf-8, in the global types */
		bool utf8 = (unsigned char)addrs[i][0] >= 0x80;
		char to[BOUND_PATH + 16], fr[BOUND_PATH + 32];
		snprintf(to, sizeof(to), "To: <%s>", addrs[i]);
		snprintf(fr, sizeof(fr), "Final-Recipient: %s; %s", utf8 ? "utf-8" : "rfc822",
		         addrs[i]);
		const char *const lines[] = {
		    to,
		    fr,
		    utf8 ? "Content-Type: message/global-delivery-status"
		         : "Content-Type: message/delivery-status",
		    utf8 ? "Content-Type: message/global-headers"
		         : "Content-Type: text/rfc822-headers",
		};
		want_lines(out, lines, 4);
		if (utf8 != (strstr(out, "Content-Transfer-Encoding: 8bit") != NULL))
			fail_msg("case %zu: 8bit declared %s", i, utf8 ? "no" : "yes");
		free(out);
	}
}

static void test_8bit_headers(void **state)
{
	/* raw UTF-8 in the headers (8BITMIME), ASCII addresses: only the
	 * headers part and the whole are 8bit; the report stays RFC 3464's */
	struct bounce_info b = base_info();
	const char *msg = "Subject: caf\xc3\xa9\n\nbody\n";
	char *out = ok_dsn(&b, msg);
	const char *const lines[] = {"Content-Type: message/delivery-status",
	                             "Content-Type: text/rfc822-headers"};
	want_lines(out, lines, 2);
	char *hdr = part(out, 3);
	assert_string_equal(hdr, "Subject: caf\xc3\xa9\n");
	const char *p3 = strstr(out, "Content-Type: text/rfc822-headers\n");
	const char *p2 = strstr(out, "Content-Type: message/delivery-status\n");
	assert_true(strncmp(p3 + strlen("Content-Type: text/rfc822-headers\n"),
	                    "Content-Transfer-Encoding: 8bit\n", 32) == 0);
	assert_true(strncmp(p2 + strlen("Content-Type: message/delivery-status\n"),
	                    "Content-Description", 19) == 0);
	const char *body = strstr(out, "\n\n");
	const char *top8 = strstr(out, "Content-Transfer-Encoding: 8bit\n");
	assert_true(top8 && top8 < body); /* the top level says so too */
	free(hdr), free(out);
}

static void test_refused(void **state)
{
	const char *const bad[] = {"a\rb",      "a\nb", "a\r\nX-Injected: yes", "\nb", "a\x01",
	                           "a\x1b[31m", "a\x7f"};
	char *long_addr = malloc(BOUND_BOUNCE_FIELD + 2);
	memset(long_addr, 'a', BOUND_BOUNCE_FIELD + 1);
	long_addr[BOUND_BOUNCE_FIELD + 1] = '\0';
	for (int field = 0; field < 6; field++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 1; i++) {
			const char *v = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : long_addr;
			if (field == 5 && v == long_addr)
				continue; /* a long diagnostic is cut, below */
			struct bounce_info b = base_info();
			const char *rcpts[2] = {"alice@example.org", v};
			switch (field) {
			case 0:
				b.reporting_host = v;
				break;
			case 1:
				b.queue_id = v;
				break;
			case 2:
				b.sender = v;
				break;
			case 3:
				b.rcpts = rcpts;
				break;
			case 4:
				b.status = v;
				break;
			case 5:
				b.diagnostic = v;
				break;
			}
			char err[256];
			int rc;
			char *out = dsn(&b, "Subject: x\n\n", &rc, err);
			if (rc != -1 || out[0] != '\0' || err[0] == '\0')
				fail_msg(
				    "field %d, value %zu: got %d, %zu bytes, err \"%s\"; want -1, "
				    "nothing, an error",
				    field, i, rc, strlen(out), err);
			free(out);
		}
	}
	free(long_addr);

	/* no sender, no recipients, statuses RFC 3463 does not allow */
	struct bounce_info cases[10];
	for (size_t i = 0; i < 10; i++)
		cases[i] = base_info();
	cases[0].sender = "";
	cases[1].sender = NULL;
	cases[2].nrcpt = 0;
	cases[3].status = "5.0";
	cases[4].status = "6.0.0";
	cases[5].status = "5.0.0x";
	cases[6].status = "5.1234.0";
	cases[7].reporting_host = NULL;
	cases[8].status = "2.0.0"; /* success is no failure */
	cases[9].rcpts = NULL;
	for (size_t i = 0; i < 10; i++) {
		char err[256];
		int rc;
		char *out = dsn(&cases[i], "Subject: x\n\n", &rc, err);
		if (rc != -1 || out[0] != '\0' || err[0] == '\0')
			fail_msg("case %zu: got %d, %zu bytes, err \"%s\"", i, rc, strlen(out),
			         err);
		free(out);
	}
}

static void test_long_diagnostic(void **state)
{
	/* 'x' then 2-byte UTF-8 sequences: the cut at BOUND_BOUNCE_FIELD falls
	 * inside one, and must go back to its start */
	size_t n = 2 * BOUND_BOUNCE_FIELD;
	char *d = malloc(n + 1);
	memcpy(d, "smtp; x", 7);
	for (size_t i = 7; i + 1 < n; i += 2)
		memcpy(d + i, "\xc3\xa9", 2);
	d[n - 1] = '\0';
	struct bounce_info b = base_info();
	b.diagnostic = d;
	char *out = ok_dsn(&b, "Subject: x\n\n");
	char *ds = part(out, 2);
	const char *p = strstr(ds, "Diagnostic-Code: ");
	assert_non_null(p);
	p += strlen("Diagnostic-Code: ");
	size_t len = strcspn(p, "\n");
	/* the last byte is a continuation byte when the cut is right */
	if (len > BOUND_BOUNCE_FIELD || len < BOUND_BOUNCE_FIELD - 1 || memcmp(p, d, len) != 0 ||
	    ((unsigned char)p[len - 1] & 0xc0) != 0x80)
		fail_msg("got a diagnostic of %zu bytes, want %d or one less, whole UTF-8", len,
		         BOUND_BOUNCE_FIELD);
	free(ds), free(out), free(d);
}

/* pad_headers - header lines ("X-Pad-NNNNN: aaa...\n", 64 bytes each,
 * the last one 64 to 127) adding up to len >= 64 bytes, then an empty
 * line and a body (malloc'd) */
static char *pad_headers(size_t len)
{
	char *m = malloc(len + 32);
	size_t i = 0;
	for (unsigned k = 0; i < len; k++) {
		size_t take = len - i < 128 ? len - i : 64;
		int n = snprintf(m + i, 32, "X-Pad-%05u: ", k);
		memset(m + i + n, 'a', take - (size_t)n - 1);
		m[i + take - 1] = '\n';
		i += take;
	}
	strcpy(m + i, "\nthe body\n");
	return m;
}

static void test_truncation(void **state)
{
	struct bounce_info b = base_info();
	/* exactly the bound: copied whole */
	char *m = pad_headers(BOUND_BOUNCE_HEADERS);
	char *out = ok_dsn(&b, m);
	char *hdr = part(out, 3);
	assert_int_equal(strlen(hdr), BOUND_BOUNCE_HEADERS);
	assert_memory_equal(hdr, m, BOUND_BOUNCE_HEADERS);
	char *text = part(out, 1);
	assert_null(strstr(text, "were cut"));
	free(text), free(hdr), free(out), free(m);

	/* one byte more, and three times more: cut at the last line end */
	size_t sizes[] = {BOUND_BOUNCE_HEADERS + 1, 3 * BOUND_BOUNCE_HEADERS};
	for (size_t i = 0; i < 2; i++) {
		m = pad_headers(sizes[i]);
		out = ok_dsn(&b, m);
		hdr = part(out, 3);
		size_t n = strlen(hdr);
		if (n > BOUND_BOUNCE_HEADERS || n < BOUND_BOUNCE_HEADERS - 128 ||
		    hdr[n - 1] != '\n' || memcmp(hdr, m, n) != 0 ||
		    strncmp(m + n, "X-Pad-", 6) != 0)
			fail_msg("size %zu: got %zu bytes of headers, want a line-end cut near %d",
			         sizes[i], n, BOUND_BOUNCE_HEADERS);
		text = part(out, 1);
		assert_non_null(strstr(text, "were cut"));
		free(text), free(hdr), free(out), free(m);
	}

	/* one line longer than the bound: nothing of it is copied */
	m = malloc(2 * BOUND_BOUNCE_HEADERS + 1);
	memset(m, 'x', 2 * BOUND_BOUNCE_HEADERS);
	memcpy(m, "X-Long: ", 8);
	m[2 * BOUND_BOUNCE_HEADERS] = '\0';
	out = ok_dsn(&b, m);
	hdr = part(out, 3);
	assert_string_equal(hdr, "");
	free(hdr), free(out), free(m);
}

static void test_boundary_collision(void **state)
{
	struct bounce_info b = base_info();
	char *out = ok_dsn(&b, "Subject: x\n\n");
	char *base = boundary(out);
	free(out);

	/* the boundary's own lines in the headers; then the boundary followed
	 * by every letter and digit, so that one more byte is not enough; a
	 * bare CR before it (some parsers end a line there) */
	static const char alnum[] =
	    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t cap = 64 * (strlen(base) + 16);
	char *m = malloc(cap), *p = m;
	p += sprintf(p, "Subject: x\n--%s\n--%s--\nX-A: a\r--%s\n", base, base, base);
	for (const char *c = alnum; *c; c++)
		p += sprintf(p, "X-%c: --%s%c\n", *c, base, *c);
	strcpy(p, "\nbody\n");

	out = ok_dsn(&b, m);
	char *bd = boundary(out);
	if (strstr(m, bd))
		fail_msg("boundary \"%s\" occurs in the headers", bd);
	assert_true(strncmp(bd, base, strlen(base)) == 0);
	assert_true(strlen(bd) >= strlen(base) + 2); /* one byte more was not enough */
	assert_true(strlen(bd) <= 70);               /* RFC 2046 5.1.1 */
	char *hdr = part(out, 3);
	assert_memory_equal(hdr, m, strlen(m) - strlen("\nbody\n"));
	/* exactly four delimiter lines: three parts and the close */
	char delim[128];
	snprintf(delim, sizeof(delim), "\n--%s", bd);
	int count = 0;
	for (const char *q = out; (q = strstr(q, delim)) != NULL; q++)
		count++;
	assert_int_equal(count, 4);
	free(hdr), free(bd), free(out), free(m), free(base);
}

static void test_no_headers(void **state)
{
	struct bounce_info b = base_info();
	struct {
		const char *msg;
		const char *want;
	} cases[] = {
	    {"", ""},
	    {"\nonly a body\n", ""},
	    {"Subject: no line end", "Subject: no line end\n"},
	    {"Subject: no body\n", "Subject: no body\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = ok_dsn(&b, cases[i].msg);
		char *hdr = part(out, 3);
		if (!hdr || strcmp(hdr, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, hdr ? hdr : "(no part)",
			         cases[i].want);
		free(hdr), free(out);
	}
}

static void test_no_message(void **state)
{
	struct bounce_info b = base_info();
	char *out = ok_dsn(&b, NULL);
	assert_null(strstr(out, "text/rfc822-headers"));
	char *ds = part(out, 2);
	assert_non_null(strstr(ds, "Final-Recipient: rfc822; bob@example.net"));
	free(ds);
	assert_null(part(out, 3));
	char *bd = boundary(out);
	char end[128];
	snprintf(end, sizeof(end), "\n--%s--\n", bd);
	assert_non_null(strstr(out, end));
	free(bd), free(out);
}

static void test_unreadable(void **state)
{
	struct bounce_info b = base_info();
	char path[] = "/tmp/test_bounce.XXXXXX";
	int tmp = mkstemp(path);
	assert_true(tmp >= 0);
	close(tmp);
	int fds[2] = {open(path, O_WRONLY), open("/tmp", O_RDONLY | O_DIRECTORY)};
	unlink(path);
	for (int i = 0; i < 2; i++) {
		assert_true(fds[i] >= 0);
		char *out = NULL, err[256] = "";
		size_t len = 0;
		FILE *f = open_memstream(&out, &len);
		int rc = bounce_write(f, &b, fds[i], err, sizeof(err));
		fclose(f);
		if (rc != -1 || len != 0 || !strstr(err, "read"))
			fail_msg("fd %d: got %d, %zu bytes, err \"%s\"", i, rc, len, err);
		free(out);
		close(fds[i]);
	}
}

static void test_write_error(void **state)
{
	struct bounce_info b = base_info();
	FILE *f = fopen("/dev/full", "w");
	assert_non_null(f);
	char err[256] = "";
	int fd = msg_file("Subject: x\n\n", 12);
	assert_int_equal(bounce_write(f, &b, fd, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	fclose(f);
	close(fd);
}

/* write_main - the helper for tests/integration/test_bounce_format.py */
static int write_main(int argc, char **argv)
{
	if (argc < 13) {
		fprintf(stderr,
		        "usage: %s --write MSG OUT HOST QID SENDER STATUS DIAG ARRIVAL NOW "
		        "EXPIRED RCPT...\n",
		        argv[0]);
		return 2;
	}
	struct bounce_info b = {
	    .reporting_host = argv[4],
	    .queue_id = argv[5],
	    .sender = argv[6],
	    .status = argv[7],
	    .diagnostic = argv[8][0] ? argv[8] : NULL,
	    .arrival = (time_t)strtoll(argv[9], NULL, 10),
	    .now = (time_t)strtoll(argv[10], NULL, 10),
	    .expired = strcmp(argv[11], "1") == 0,
	    .rcpts = (const char *const *)(argv + 12),
	    .nrcpt = (size_t)(argc - 12),
	};
	int fd = strcmp(argv[2], "-") == 0 ? -1 : open(argv[2], O_RDONLY);
	FILE *out = fopen(argv[3], "w");
	if ((fd < 0 && strcmp(argv[2], "-") != 0) || !out) {
		perror("test_bounce");
		return 2;
	}
	char err[256];
	int rc = bounce_write(out, &b, fd, err, sizeof(err));
	if (fclose(out) != 0)
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "test_bounce: %s\n", err);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--write") == 0)
		return write_main(argc, argv);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_hostile_addresses),
	    cmocka_unit_test(test_8bit_headers),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_long_diagnostic),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_boundary_collision),
	    cmocka_unit_test(test_no_headers),
	    cmocka_unit_test(test_no_message),
	    cmocka_unit_test(test_unreadable),
	    cmocka_unit_test(test_write_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
