/*
 * test_smtp_io.c - the line reader's bounds and the write deadline, over
 *                  a real socketpair
 *
 * A line past its bound is reported at once, before its LF arrives (the
 * peer is still open, so a reader that waited for the LF would time
 * out instead); the rest of it is dropped by the next read. A line that
 * starts with the long prefix (AUTH) gets the long bound. A write that
 * the peer never takes ends at its deadline, and every later write
 * fails at once. Outcomes are asserted, never elapsed times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reply.h"
#include "smtp_io.h"

static const struct smtp_io_limit cmd_limit = {510, "AUTH ", 12288};

struct pair {
	int peer; /* the test's end: the client */
	struct smtp_io io;
};

/* open_pair - smtp_io on one end of a stream socketpair */
static void open_pair(struct pair *p, int timeout_ms)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->peer = sv[0];
	assert_int_equal(smtp_io_init(&p->io, sv[1], sv[1], timeout_ms), 0);
}

/* close_pair - both ends */
static void close_pair(struct pair *p)
{
	close(p->io.fd_in);
	close(p->peer);
	smtp_io_free(&p->io);
}

/* send_str - the client sends s; n bytes of fill first when fill != 0 */
static void send_str(struct pair *p, char fill, size_t n, const char *s)
{
	char *buf = malloc(n + strlen(s));
	assert_non_null(buf);
	memset(buf, fill, n);
	memcpy(buf + n, s, strlen(s));
	size_t len = n + strlen(s), off = 0;
	while (off < len) {
		ssize_t w = write(p->peer, buf + off, len - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
	free(buf);
}

/* expect_line - the next line is want (or too long, when want is NULL) */
static void expect_line(struct pair *p, const char *what, const char *want, size_t want_len)
{
	const char *line;
	size_t len;
	bool too_long;
	enum smtp_io_status st = smtp_io_read_line(&p->io, &cmd_limit, &line, &len, &too_long);
	if (st != SMTP_IO_OK)
		fail_msg("%s: got status %d, want OK", what, st);
	if (!want) {
		if (!too_long)
			fail_msg("%s: got a line of %zu, want too long", what, len);
		return;
	}
	if (too_long || len != want_len || memcmp(line, want, len) != 0)
		fail_msg("%s: got too_long %d len %zu, want %zu", what, too_long, len, want_len);
}

/* test_long_line_at_once - 12.13: 500 as soon as the bound is passed */
static void test_long_line_at_once(void **state)
{
	struct pair p;
	open_pair(&p, 10000); /* only a guard: the answer needs no wait */
	send_str(&p, 'z', 10000, "");
	expect_line(&p, "10000 octets, no LF yet", NULL, 0);
	send_str(&p, 'z', 70000, "\r\nNOOP\r\n"); /* the rest, across buffer refills */
	expect_line(&p, "the line after the long one", "NOOP", 4);
	close_pair(&p);
}

/* test_bounds - N passes, N+1 is too long, for commands and AUTH */
static void test_bounds(void **state)
{
	static const struct {
		const char *name, *prefix;
		size_t fill; /* octets after the prefix */
		bool too_long;
	} cases[] = {
	    {"command of 510", "", 510, false},
	    {"command of 511", "", 511, true},
	    {"AUTH of 12288", "AUTH ", 12288 - 5, false},
	    {"auth (any case) of 12288", "auth ", 12288 - 5, false},
	    {"AUTH of 12289", "AUTH ", 12288 - 4, true},
	    {"AUTHX is a command", "AUTHX", 600, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pair p;
		open_pair(&p, 10000);
		char *want = malloc(cases[i].fill + 8);
		assert_non_null(want);
		size_t pl = strlen(cases[i].prefix);
		memcpy(want, cases[i].prefix, pl);
		memset(want + pl, 'A', cases[i].fill);
		send_str(&p, 0, 0, cases[i].prefix);
		send_str(&p, 'A', cases[i].fill, "\r\nNOOP\r\n");
		expect_line(&p, cases[i].name, cases[i].too_long ? NULL : want, pl + cases[i].fill);
		expect_line(&p, cases[i].name, "NOOP", 4);
		free(want);
		close_pair(&p);
	}
}

/* test_write_deadline - 12.3/12.4: a peer that never reads; the write
 * ends at its deadline and later writes do not wait again */
static void test_write_deadline(void **state)
{
	struct pair p;
	open_pair(&p, 200);
	int small = 4096;
	setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(p.io.fd_out, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	size_t n = 4 << 20;
	char *big = calloc(1, n);
	assert_non_null(big);
	enum smtp_io_status st = smtp_io_write(&p.io, big, n);
	if (st != SMTP_IO_TIMEOUT || !p.io.write_timed_out || !p.io.write_failed)
		fail_msg("got status %d timed_out %d failed %d, want TIMEOUT 1 1", st,
		         p.io.write_timed_out, p.io.write_failed);
	st = smtp_io_write(&p.io, "x", 1);
	if (st != SMTP_IO_ERROR || errno != EPIPE)
		fail_msg("second write: got status %d errno %d, want ERROR EPIPE", st, errno);
	free(big);
	close_pair(&p);
}

/* peer_has - what the client has been sent so far, without waiting */
static size_t peer_has(struct pair *p, char *buf, size_t cap)
{
	ssize_t n = recv(p->peer, buf, cap - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/* RFC 2920: replies to a pipelined group wait while more input is
 * buffered, and all leave before a read that has to wait. */
static void test_replies_before_wait(void **state)
{
	(void)state;
	struct pair p;
	struct reply_buf rb = {.len = 0};
	char got[256];
	open_pair(&p, 100); /* the last read waits this long for nothing */
	smtp_io_set_replies(&p.io, &rb);
	send_str(&p, 0, 0, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n");
	expect_line(&p, "first of the group", "MAIL FROM:<a@x>", 15);
	reply_add(&rb, 250, true, "2.1.0 Ok");
	expect_line(&p, "second of the group", "RCPT TO:<b@x>", 13);
	if (peer_has(&p, got, sizeof(got)) != 0)
		fail_msg("got '%s' sent while input was buffered, want nothing yet", got);
	reply_add(&rb, 250, true, "2.1.5 Ok");
	const char *line;
	size_t len;
	bool too_long;
	enum smtp_io_status st = smtp_io_read_line(&p.io, &cmd_limit, &line, &len, &too_long);
	assert_int_equal(st, SMTP_IO_TIMEOUT);
	peer_has(&p, got, sizeof(got));
	assert_string_equal(got, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	assert_int_equal(rb.len, 0);
	close_pair(&p);
}

/* RFC 3207 and CVE-2011-0411: what came with STARTTLS is dropped, and
 * only what the client sends afterwards is read. */
static void test_discard_input(void **state)
{
	(void)state;
	struct pair p;
	open_pair(&p, 10000);
	send_str(&p, 0, 0, "STARTTLS\r\nMAIL FROM:<injected@x>\r\n");
	expect_line(&p, "the STARTTLS", "STARTTLS", 8);
	smtp_io_discard_input(&p.io);
	send_str(&p, 0, 0, "EHLO after\r\n");
	expect_line(&p, "the first line after the discard", "EHLO after", 10);
	close_pair(&p);
}

/* Blocks: what is buffered comes first, a partial consume keeps the
 * rest, and the line reader takes over where the blocks stopped. */
static void test_read_block(void **state)
{
	(void)state;
	struct pair p;
	const char *data;
	size_t len;
	open_pair(&p, 10000);
	send_str(&p, 0, 0, "DATA\r\nhello\r\n.\r\nQUIT\r\n");
	expect_line(&p, "DATA", "DATA", 4);
	assert_int_equal(smtp_io_read_block(&p.io, &data, &len), SMTP_IO_OK);
	if (len != 16 || memcmp(data, "hello\r\n.\r\nQUIT\r\n", 16) != 0)
		fail_msg("got a block of %zu '%.*s', want the 16 buffered bytes", len, (int)len,
		         data);
	smtp_io_consume(&p.io, 10); /* the text up to and with its end */
	expect_line(&p, "the line after the text", "QUIT", 4);
	unsigned long long in;
	smtp_io_bytes(&p.io, &in, NULL);
	assert_int_equal(in, 22);
	close(p.peer);
	p.peer = -1;
	assert_int_equal(smtp_io_read_block(&p.io, &data, &len), SMTP_IO_EOF);
	close(p.io.fd_in);
	smtp_io_free(&p.io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_long_line_at_once), cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_write_deadline),    cmocka_unit_test(test_replies_before_wait),
	    cmocka_unit_test(test_discard_input),     cmocka_unit_test(test_read_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
