/*
 * test_queue.c - the queue's pure parts: the %-encoding, the envelope
 * and state files (round trips with hostile bytes, and what the parsers
 * refuse), the backoff, the expiry, durations and IDs
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

static void test_encode_decode(void **state)
{
	struct {
		const char *in, *want;
	} cases[] = {
	    {"a@b.test", "a@b.test"},
	    {"", ""},
	    {"x y", "x%20y"},
	    {"a=b%c", "a%3Db%25c"},
	    {"line\r\nrcpt=evil@x", "line%0D%0Arcpt%3Devil@x"},
	    {"\x7f\xff\x01", "%7F%FF%01"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[128];
		size_t n = queue_encode(buf, sizeof(buf), cases[i].in, strlen(cases[i].in));
		if (n != strlen(cases[i].want) || strcmp(buf, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, buf, cases[i].want);
		assert_int_equal(queue_decode(buf), 0);
		if (strcmp(buf, cases[i].in) != 0)
			fail_msg("case %zu: decoded \"%s\", want \"%s\"", i, buf, cases[i].in);
	}
	char small[4];
	assert_int_equal(queue_encode(small, sizeof(small), "a b", 3), (size_t)-1);
	assert_int_equal(queue_encode(small, sizeof(small), "abc", 3), 3);
	const char *bad[] = {"%", "%4", "%G0", "%00", "a%0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[16];
		strcpy(buf, bad[i]);
		if (queue_decode(buf) != -1)
			fail_msg("\"%s\": decoded, want -1", bad[i]);
	}
}

static void test_envelope_round_trip(void **state)
{
	const char *rcpts[] = {"b@b.test", "evil\nrcpt=x@y", "=%"};
	struct delivery d = {.sender = "a\r\nsender=x@y",
	                     .rcpts = rcpts,
	                     .nrcpt = 3,
	                     .client = "192.0.2.1",
	                     .listener = "127.0.0.1:25",
	                     .client_uid = 1000,
	                     .auth_user = "u s=r"};
	const char *id = "6B0F036A3000016B0F036A35C";
	size_t len;
	char *text = queue_env_format(&d, id, 1700000000LL, &len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	/* every value on its own line: the hostile bytes are encoded */
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	if (lines != 11)
		fail_msg("got %zu lines, want 11:\n%s", lines, text);
	char *copy = malloc(len + 1);
	memcpy(copy, text, len + 1);
	struct queue_env e;
	assert_int_equal(queue_env_parse(copy, len, &e), 0);
	assert_string_equal(e.id, id);
	assert_int_equal(e.arrival, 1700000000LL);
	assert_string_equal(e.sender, d.sender);
	assert_int_equal(e.nrcpt, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(e.rcpts[i], rcpts[i]);
	assert_string_equal(e.client, "192.0.2.1");
	assert_string_equal(e.listener, "127.0.0.1:25");
	assert_int_equal(e.client_uid, 1000);
	assert_string_equal(e.auth_user, "u s=r");
	queue_env_free(&e);
	free(text);

	/* the null sender, and nothing of the client */
	struct delivery n = {.sender = "", .rcpts = rcpts, .nrcpt = 1, .client_uid = -1};
	text = queue_env_format(&n, id, 5, &len);
	assert_non_null(text);
	assert_int_equal(queue_env_parse(text, len, &e), 0);
	assert_string_equal(e.sender, "");
	assert_null(e.client);
	assert_null(e.auth_user);
	assert_int_equal(e.client_uid, -1);
	queue_env_free(&e);
}

static void test_envelope_refused(void **state)
{
	const char *bad[] = {
	    "",
	    "id=6B0F036A3000016B0F036A35C\narrival=1\nsender=\nrcpt=a\n", /* no version line */
	    "smtpipe-queue=2\nid=6B0F036A3000016B0F036A35C\narrival=1\nsender=\nrcpt=a\n",
	    "smtpipe-queue=1\nid=../../etc\narrival=1\nsender=\nrcpt=a\n",
	    "smtpipe-queue=1\nid=6B0F036A3000016B0F036A35C\narrival=-1\nsender=\nrcpt=a\n",
	    "smtpipe-queue=1\nid=6B0F036A3000016B0F036A35C\narrival=1\nrcpt=a\n",  /* no sender */
	    "smtpipe-queue=1\nid=6B0F036A3000016B0F036A35C\narrival=1\nsender=\n", /* no rcpt */
	    "smtpipe-queue=1\nid=6B0F036A3000016B0F036A35C\narrival=1\nsender=%00\nrcpt=a\n",
	    "smtpipe-queue=1\nid=6B0F036A3000016B0F036A35C\narrival=1\nsender\nrcpt=a\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		char *text = malloc(len + 1);
		memcpy(text, bad[i], len + 1);
		struct queue_env e;
		if (queue_env_parse(text, len, &e) != -1)
			fail_msg("case %zu: parsed, want -1", i);
		queue_env_free(&e);
	}
}

static void test_state_round_trip(void **state)
{
	struct queue_state s = {
	    .attempts = 3, .next = 1700000100LL, .last_ms = 1700000000123LL, .since = 1699999999LL};
	strcpy(s.error, "451 4.3.0 Temporary failure\nnext=0");
	char buf[1024];
	size_t n = queue_state_format(&s, buf, sizeof(buf));
	assert_true(n > 0);
	struct queue_state t;
	assert_int_equal(queue_state_parse(buf, n, &t), 0);
	assert_int_equal(t.attempts, 3);
	assert_int_equal(t.next, 1700000100LL);
	assert_int_equal(t.last_ms, 1700000000123LL);
	assert_int_equal(t.since, 1699999999LL);
	assert_string_equal(t.error, s.error);
	assert_int_equal(queue_state_format(&s, buf, 20), 0);
	const char *bad[] = {"", "attempts=1\nnext=2\nlast-ms=3\nsince=4\n", /* no error */
	                     "attempts=x\nnext=2\nlast-ms=3\nsince=4\nerror=\n",
	                     "attempts=-1\nnext=2\nlast-ms=3\nsince=4\nerror=\n",
	                     "attempts=99999999999\nnext=2\nlast-ms=3\nsince=4\nerror=\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (queue_state_parse(bad[i], strlen(bad[i]), &t) != -1)
			fail_msg("case %zu: parsed, want -1", i);
}

static void test_state_gave_up(void **state)
{
	/* a live state is written as the first version wrote it */
	struct queue_state s = {.attempts = 1, .next = 5, .last_ms = 6, .since = 7};
	char buf[1024];
	size_t n = queue_state_format(&s, buf, sizeof(buf));
	assert_true(n > 0);
	assert_null(strstr(buf, "gave-up"));
	assert_null(strstr(buf, "bounce"));
	/* given up on: the verdict and the bounce's ID come back */
	struct {
		enum queue_gave_up gave_up;
		const char *bounce;
	} cases[] = {
	    {QUEUE_GAVE_UP_FAILED, "6B0F2E9736C01B0C20962D515"},
	    {QUEUE_GAVE_UP_EXPIRED, "6B0F2E9736C01B0C20962D515"},
	    {QUEUE_GAVE_UP_FAILED, ""}, /* a <> sender: no bounce */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s.gave_up = cases[i].gave_up;
		strcpy(s.bounce, cases[i].bounce);
		n = queue_state_format(&s, buf, sizeof(buf));
		struct queue_state t;
		if (n == 0 || queue_state_parse(buf, n, &t) != 0)
			fail_msg("case %zu: not parsed back: %s", i, buf);
		if (t.gave_up != cases[i].gave_up || strcmp(t.bounce, cases[i].bounce) != 0)
			fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, (int)t.gave_up,
			         t.bounce, (int)cases[i].gave_up, cases[i].bounce);
	}
	const char *bad[] = {
	    "attempts=1\nnext=2\nlast-ms=3\nsince=4\nerror=\ngave-up=maybe\nbounce=\n",
	    "attempts=1\nnext=2\nlast-ms=3\nsince=4\nerror=\ngave-up=failed\nbounce=../x\n",
	    /* a bounce ID one digit too long */
	    ("attempts=1\nnext=2\nlast-ms=3\nsince=4\nerror=\ngave-up=failed\n"
	     "bounce=6B0F2E9736C01B0C20962D5150\n"),
	    /* a bounce named while the message is live */
	    "attempts=1\nnext=2\nlast-ms=3\nsince=4\nerror=\nbounce=6B0F2E9736C01B0C20962D515\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct queue_state t;
		if (queue_state_parse(bad[i], strlen(bad[i]), &t) != -1)
			fail_msg("bad case %zu: parsed, want -1", i);
	}
}

static void test_backoff(void **state)
{
	struct {
		unsigned attempts, retry, max;
		unsigned long long want;
	} cases[] = {
	    {1, 60, 3600, 60},      {2, 60, 3600, 120},
	    {3, 60, 3600, 240},     {6, 60, 3600, 1920},
	    {7, 60, 3600, 3600},    {8, 60, 3600, 3600},
	    {1000, 60, 3600, 3600}, {4000000000U, 60, 3600, 3600},
	    {1, 1, 2, 1},           {2, 1, 2, 2},
	    {3, 1, 2, 2},           {0, 60, 3600, 60},
	    {1, 100, 50, 50},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long long got =
		    queue_backoff(cases[i].attempts, cases[i].retry, cases[i].max);
		if (got != cases[i].want)
			fail_msg("case %zu: backoff(%u, %u, %u): got %llu, want %llu", i,
			         cases[i].attempts, cases[i].retry, cases[i].max, got,
			         cases[i].want);
	}
}

static void test_next_clamp(void **state)
{
	struct {
		long long next, written;
		unsigned retry_max;
		long long want;
	} cases[] = {
	    {0, 1000, 3600, 0},                 /* due now */
	    {4600, 1000, 3600, 4600},           /* at the limit */
	    {4601, 1000, 3600, 4600},           /* one past it */
	    {32503680000LL, 1000, 3600, 4600},  /* the year 3000 */
	    {LLONG_MAX, 1000, 60, 1060},        /* the largest */
	    {2000, LLONG_MAX - 10, 3600, 2000}, /* a ctime no clock reaches */
	    {-5, 1000, 3600, -5},               /* in the past: due */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long got =
		    queue_next_clamp(cases[i].next, cases[i].written, cases[i].retry_max);
		if (got != cases[i].want)
			fail_msg("case %zu: got %lld, want %lld", i, got, cases[i].want);
	}
}

static void test_expired(void **state)
{
	const unsigned long long five_days = 5 * 86400;
	assert_false(queue_expired(1000, five_days, 1000));
	assert_false(queue_expired(1000, five_days, 1000 + five_days - 1));
	assert_true(queue_expired(1000, five_days, 1000 + five_days));
	assert_true(queue_expired(1000, five_days, 1000 + five_days + 1));
	assert_false(queue_expired(1000, five_days, 999)); /* the clock went back */
	assert_true(queue_expired(0, 1, 1));
}

static void test_duration(void **state)
{
	struct {
		const char *in;
		unsigned long long want; /* 0: refused */
	} cases[] = {
	    {"90", 90},
	    {"90s", 90},
	    {"15m", 900},
	    {"2h", 7200},
	    {"5d", 432000},
	    {"1d", 86400},
	    {"0", 0},
	    {"", 0},
	    {"d", 0},
	    {"5w", 0},
	    {"5dd", 0},
	    {"-5", 0},
	    {" 5", 0},
	    {"5 ", 0},
	    {"3660d", 316224000},
	    {"3661d", 0},
	    {"99999999999999999999", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long long got = 0;
		int rc = queue_parse_duration(cases[i].in, &got);
		if (cases[i].want ? rc != 0 || got != cases[i].want : rc != -1)
			fail_msg("\"%s\": got rc %d value %llu, want %llu", cases[i].in, rc, got,
			         cases[i].want);
	}
}

static void test_ids(void **state)
{
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
	queue_new_id(a, 1700000000LL, 5);
	queue_new_id(b, 1700000000LL, 5);
	assert_true(queue_id_valid(a));
	assert_int_equal(strlen(a), QUEUE_ID_LEN);
	assert_memory_equal(a, "6553F10000005", 13); /* the arrival, in order */
	assert_string_not_equal(a, b);               /* the random part */
	queue_new_id(b, 1700000000LL, 6);
	assert_true(strcmp(a, b) < 0 || memcmp(a, b, 13) != 0);
	const char *bad[] = {"",
	                     "6553F1000000500000000000",
	                     "6553F10000005000000000000A",
	                     "6553f10000005000000000000",
	                     "../6553F100000050000000000",
	                     "6553F1000000500000000000G"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (queue_id_valid(bad[i]))
			fail_msg("\"%s\": valid, want invalid", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_decode),    cmocka_unit_test(test_envelope_round_trip),
	    cmocka_unit_test(test_envelope_refused), cmocka_unit_test(test_state_round_trip),
	    cmocka_unit_test(test_state_gave_up),    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_next_clamp),       cmocka_unit_test(test_expired),
	    cmocka_unit_test(test_duration),         cmocka_unit_test(test_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
