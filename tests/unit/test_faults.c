/*
 * test_faults.c - fault rules: what parses and what is refused (and
 *                 why), when every N and P% fire (exact sequences for a
 *                 fixed seed), case-insensitive globs, and the engine at
 *                 each stage: the reply in order, drop, delay, and no
 *                 delivery after a dot fault
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "data.h"
#include "engine.h"
#include "faults.h"

/* One rule and what it parses into, or the words of its refusal. */
struct parse_case {
	const char *rule;
	const char *why; /* NULL: it parses */
	enum fault_stage stage;
	const char *match;
	unsigned every, percent;
	enum fault_action action;
	int code;
	const char *text;
	unsigned delay;
};

static const struct parse_case parse_cases[] = {
    {"rcpt *@bounce.test 550 5.1.1 No such user", NULL, FAULT_RCPT, "*@bounce.test", 0, 0,
     FAULT_REPLY, 550, "5.1.1 No such user", 0},
    {"dot every 2 451 4.3.0 Try again later", NULL, FAULT_DOT, "", 2, 0, FAULT_REPLY, 451,
     "4.3.0 Try again later", 0},
    {"connect drop", NULL, FAULT_CONNECT, "", 0, 0, FAULT_DROP, 0, "", 0},
    {"mail delay 2", NULL, FAULT_MAIL, "", 0, 0, FAULT_DELAY, 0, "", 2},
    {"auth 535 5.7.8 Authentication credentials invalid", NULL, FAULT_AUTH, "", 0, 0, FAULT_REPLY,
     535, "5.7.8 Authentication credentials invalid", 0},
    {"  HELO  *.Example   25% 421 4.7.0 Go away  ", NULL, FAULT_HELO, "*.Example", 0, 25,
     FAULT_REPLY, 421, "4.7.0 Go away", 0},
    {"quit 100% drop", NULL, FAULT_QUIT, "", 0, 100, FAULT_DROP, 0, "", 0},
    {"data 554", NULL, FAULT_DATA, "", 0, 0, FAULT_REPLY, 554, "5.0.0 Scripted reply (--fault)", 0},
    {"rcpt a@b every 3 delay 86400", NULL, FAULT_RCPT, "a@b", 3, 0, FAULT_DELAY, 0, "", 86400},
    {"rcpt 450 no enhanced code", NULL, FAULT_RCPT, "", 0, 0, FAULT_REPLY, 450, "no enhanced code",
     0},
    {"", "empty rule", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rset 550 x", "unknown stage 'rset'", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt", "no action", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt *@x", "no action", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt *@x bounce", "'bounce' is not an action", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt 250 2.0.0 Ok", "'250' is not a 4xx or 5xx", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt 599 x", "'599' is not a 4xx or 5xx", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt 550 4.1.1 x", "'4.1.1' is not an enhanced status code of class 5", 0, NULL, 0, 0, 0, 0,
     NULL, 0},
    {"rcpt 550 5.1 x", "'5.1' is not an enhanced status code", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt every 0 drop", "'every' needs a whole number", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt every drop", "'every' needs a whole number (1-1000000), not 'drop'", 0, NULL, 0, 0, 0, 0,
     NULL, 0},
    {"rcpt 0% drop", "'0%' is not a probability", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt 101% drop", "'101%' is not a probability", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt drop now", "'drop' takes nothing after it", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"mail delay", "'delay' needs a number of seconds", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"mail delay 0", "'delay' needs a number of seconds (1-86400), not '0'", 0, NULL, 0, 0, 0, 0,
     NULL, 0},
    {"mail delay 2 s", "'delay SEC' takes nothing after it", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt 550 5.1.1 caf\xc3\xa9", "byte 0xc3", 0, NULL, 0, 0, 0, 0, NULL, 0},
    {"rcpt 550 5.1.1 a\rb", "byte 0x0d", 0, NULL, 0, 0, 0, 0, NULL, 0},
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct fault_rule r;
		char why[400] = "";
		int rc = faults_parse(c->rule, &r, why, sizeof(why));
		if (c->why) {
			if (rc == 0 || !strstr(why, c->why))
				fail_msg("'%s': got %d '%s', want -1 '%s'", c->rule, rc, why,
				         c->why);
			continue;
		}
		if (rc != 0)
			fail_msg("'%s': got -1 '%s', want 0", c->rule, why);
		if (r.stage != c->stage || strcmp(r.match, c->match) != 0 || r.every != c->every ||
		    r.percent != c->percent || r.action != c->action || r.code != c->code ||
		    (c->action == FAULT_REPLY && strcmp(r.text, c->text) != 0) ||
		    r.delay != c->delay)
			fail_msg("'%s': got stage %d match '%s' every %u %u%% action %d code %d "
			         "text '%s' delay %u, want %d '%s' %u %u%% %d %d '%s' %u",
			         c->rule, r.stage, r.match, r.every, r.percent, r.action, r.code,
			         r.text, r.delay, c->stage, c->match, c->every, c->percent,
			         c->action, c->code, c->text, c->delay);
	}
}

/* test_reply_bounds - a text of exactly BOUND_FAULT_TEXT octets is
 * taken, one more is refused: a reply line stays within 512 octets */
static void test_reply_bounds(void **state)
{
	(void)state;
	static char rule[BOUND_FAULT_TEXT + 32];
	struct fault_rule r;
	char why[400];
	int n = snprintf(rule, sizeof(rule), "rcpt 550 ");
	memset(rule + n, 'x', BOUND_FAULT_TEXT);
	rule[n + BOUND_FAULT_TEXT] = '\0';
	if (faults_parse(rule, &r, why, sizeof(why)) != 0 || strlen(r.text) != BOUND_FAULT_TEXT)
		fail_msg("%d octets: got '%s', want taken whole", BOUND_FAULT_TEXT, why);
	strcat(rule, "x");
	if (faults_parse(rule, &r, why, sizeof(why)) == 0 || !strstr(why, "longer than 506"))
		fail_msg("%d octets: got '%s', want refused", BOUND_FAULT_TEXT + 1, why);
}

/* sequence - which of n events of stage with arg fire, as "10.." */
static void sequence(const struct faults *f, enum fault_stage stage, const char *arg, size_t n,
                     char *out)
{
	for (size_t i = 0; i < n; i++) {
		size_t index;
		unsigned long long nth;
		out[i] = faults_fire(f, stage, arg, &index, &nth) ? '1' : '.';
	}
	out[n] = '\0';
}

struct fire_case {
	const char *rules[3];
	unsigned long long seed;
	enum fault_stage stage;
	const char *arg;
	const char *want; /* one character an event */
};

static const struct fire_case fire_cases[] = {
    {{"dot every 2 451 x"}, 1, FAULT_DOT, "a@b", ".1.1.1.1"},
    {{"dot every 3 451 x"}, 1, FAULT_DOT, "a@b", "..1..1.."},
    {{"rcpt *@Bounce.TEST 550 x"}, 1, FAULT_RCPT, "X@bounce.test", "11111111"},
    {{"rcpt *@bounce.test 550 x"}, 1, FAULT_RCPT, "x@other.test", "........"},
    {{"rcpt *@bounce.test 550 x"}, 1, FAULT_RCPT, NULL, "........"},
    {{"mail 550 x"}, 1, FAULT_RCPT, "a@b", "........"}, /* another stage */
    {{"rcpt 100% 550 x"}, 7, FAULT_RCPT, "a@b", "11111111"},
    /* P% for a fixed seed: the same sequence in every run (checked
     * against a separate Python model of faults.h's hash) */
    {{"rcpt 50% 550 x"}, 42, FAULT_RCPT, "a@b", ".1.11..11...1111"},
    {{"rcpt 50% 550 x"}, 43, FAULT_RCPT, "a@b", ".11..111..1.11.1"},
    {{"rcpt 10% 550 x"}, 42, FAULT_RCPT, "a@b", "...............1"},
    /* the first rule that fires answers; the second counts only what
     * it is asked */
    {{"rcpt every 2 550 x", "rcpt every 2 451 y"}, 1, FAULT_RCPT, "a@b", ".111.111"},
    {{"rcpt every 2 550 x", "rcpt 451 y"}, 1, FAULT_RCPT, "a@b", "11111111"},
};

static void test_fire(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fire_cases) / sizeof(fire_cases[0]); i++) {
		const struct fire_case *c = &fire_cases[i];
		static struct faults f;
		char err[400], got[64];
		faults_init(&f, c->seed);
		for (size_t j = 0; j < 3 && c->rules[j]; j++)
			if (faults_add(&f, c->rules[j], err, sizeof(err)) < 0)
				fail_msg("%s: %s", c->rules[j], err);
		sequence(&f, c->stage, c->arg, strlen(c->want), got);
		if (strcmp(got, c->want) != 0)
			fail_msg("'%s' seed %llu: got %s, want %s", c->rules[0], c->seed, got,
			         c->want);
	}
}

/* test_shared_counters - two processes' views of one counter page
 * continue one sequence (here: two struct faults on one page) */
static void test_shared_counters(void **state)
{
	(void)state;
	static struct faults a, b;
	static struct fault_counters page;
	char err[400], got[16];
	faults_init(&a, 5);
	faults_init(&b, 5);
	faults_add(&a, "dot every 2 451 x", err, sizeof(err));
	faults_add(&b, "dot every 2 451 x", err, sizeof(err));
	faults_share_counters(&a, &page);
	b.counters = &page;
	sequence(&a, FAULT_DOT, "", 1, got);
	sequence(&b, FAULT_DOT, "", 1, got + 1);
	sequence(&a, FAULT_DOT, "", 1, got + 2);
	sequence(&b, FAULT_DOT, "", 1, got + 3);
	if (strcmp(got, ".1.1") != 0)
		fail_msg("got %s, want .1.1", got);
}

/* --- the engine at each stage ------------------------------------- */

struct stage_case {
	const char *rule;
	const char *lines[12]; /* "." ends DATA's text */
	const char *want;      /* every reply of the session, CRLFs as \n */
	enum engine_event_kind last;
	unsigned delay; /* of the last event */
	int delivered;  /* messages handed on */
};

static const struct stage_case stage_cases[] = {
    {"connect 554 5.7.1 Not you", {NULL}, "554 5.7.1 Not you\n", ENGINE_EV_CLOSE, 0, 0},
    {"connect drop", {NULL}, "", ENGINE_EV_CLOSE, 0, 0},
    {"connect 192.0.2.* delay 3", {NULL}, "220 mx.example ESMTP smtpipe\n", ENGINE_EV_NONE, 3, 0},
    {"connect 10.* drop", {NULL}, "220 mx.example ESMTP smtpipe\n", ENGINE_EV_NONE, 0, 0},
    {"helo BAD.example 550 5.7.1 No",
     {"HELO bad.example", "MAIL FROM:<a@b>", "HELO good.example"},
     "220 mx.example ESMTP smtpipe\n550 5.7.1 No\n503 5.5.1 Error: send HELO/EHLO first\n"
     "250 mx.example\n",
     ENGINE_EV_NONE,
     0,
     0},
    {"helo drop", {"HELO x.example"}, "220 mx.example ESMTP smtpipe\n", ENGINE_EV_CLOSE, 0, 0},
    {"mail delay 2",
     {"HELO x.example", "MAIL FROM:<a@b>"},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n",
     ENGINE_EV_NONE,
     2,
     0},
    {"mail a@* 451 4.3.0 Later",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>"},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n451 4.3.0 Later\n"
     "503 5.5.1 Error: need MAIL command\n",
     ENGINE_EV_NONE,
     0,
     0},
    {"rcpt *@bounce.test 550 5.1.1 No such user",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<X@Bounce.Test>", "RCPT TO:<c@d>", "DATA", "."},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n550 5.1.1 No such user\n"
     "250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok\n",
     ENGINE_EV_DELIVER,
     0,
     1},
    {"rcpt 421 4.7.0 Bye now",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "NOOP"},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n421 4.7.0 Bye now\n",
     ENGINE_EV_CLOSE,
     0,
     0},
    {"data 451 4.3.0 Not now",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "RSET"},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n250 2.1.5 Ok\n"
     "451 4.3.0 Not now\n250 2.0.0 Ok\n",
     ENGINE_EV_NONE,
     0,
     0},
    {"data drop",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n250 2.1.5 Ok\n",
     ENGINE_EV_CLOSE,
     0,
     0},
    {"dot every 2 451 4.3.0 Try again later",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", ".", "MAIL FROM:<a@b>",
      "RCPT TO:<c@d>", "DATA", ".", "NOOP"},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n250 2.1.5 Ok\n"
     "354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok\n250 2.1.0 Ok\n250 2.1.5 Ok\n"
     "354 End data with <CR><LF>.<CR><LF>\n451 4.3.0 Try again later\n250 2.0.0 Ok\n",
     ENGINE_EV_NONE,
     0,
     1},
    {"dot drop",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "."},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n250 2.1.5 Ok\n"
     "354 End data with <CR><LF>.<CR><LF>\n",
     ENGINE_EV_CLOSE,
     0,
     0},
    {"dot a@b delay 5",
     {"HELO x.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "."},
     "220 mx.example ESMTP smtpipe\n250 mx.example\n250 2.1.0 Ok\n250 2.1.5 Ok\n"
     "354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok\n",
     ENGINE_EV_DELIVER,
     5,
     1},
    {"quit 421 4.3.0 No bye",
     {"QUIT"},
     "220 mx.example ESMTP smtpipe\n421 4.3.0 No bye\n",
     ENGINE_EV_CLOSE,
     0,
     0},
    {"quit drop", {"QUIT"}, "220 mx.example ESMTP smtpipe\n", ENGINE_EV_CLOSE, 0, 0},
    {"auth 535 5.7.8 Authentication credentials invalid",
     {"EHLO x.example", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "MAIL FROM:<a@b>"},
     NULL,
     ENGINE_EV_NONE,
     0,
     0},
    {"auth Alice delay 4",
     {"EHLO x.example", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="},
     NULL,
     ENGINE_EV_AUTH,
     4,
     0},
};

/* replies - the buffer as text, CRLF as \n */
static const char *replies(const struct reply_buf *out)
{
	static char buf[BOUND_REPLY_BUFFER + 1];
	size_t n = 0;
	for (size_t i = 0; i < out->len; i++)
		if (out->data[i] != '\r')
			buf[n++] = out->data[i];
	buf[n] = '\0';
	return buf;
}

/* run_stage - one case through the engine, as the session would carry
 * it out, except that an AUTH event is reported and not checked */
static void run_stage(const struct stage_case *c, struct reply_buf *out, bool auth,
                      struct engine_event *last, int *delivered)
{
	static struct faults f;
	char err[400];
	faults_init(&f, 1);
	if (faults_add(&f, c->rule, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	struct config cfg = {.max_recipients = 10, .max_message_size = 1000, .max_errors = 20};
	struct engine_features feat = {.hostname = "mx.example", .auth = auth, .faults = &f};
	out->len = 0;
	struct engine *e = engine_new(&cfg, &feat, "192.0.2.1", "ID", out);
	assert_non_null(e);
	const struct engine_event *ev = engine_opening(e);
	*last = *ev;
	*delivered = 0;
	for (size_t i = 0; i < 12 && c->lines[i] && ev->kind != ENGINE_EV_CLOSE; i++) {
		if (ev->kind == ENGINE_EV_DATA) { /* the line is "." */
			struct data_decoder d;
			char text[8];
			size_t n;
			data_decoder_init(&d, 1000, 998);
			data_decode(&d, ".\r\n", 3, text, &n);
			ev = engine_data_end(e, &d, 0);
			*last = *ev;
			if (ev->kind == ENGINE_EV_DELIVER) {
				if (ev->delay_s != c->delay)
					fail_msg("'%s': got delay %u at delivery, want %u", c->rule,
					         ev->delay_s, c->delay);
				struct delivery_result r = {.code = 250, .text = "2.0.0 Ok"};
				(*delivered)++;
				ev = engine_delivered(e, &r);
				if (i + 1 == 12 || !c->lines[i + 1])
					break;
			}
			continue;
		}
		ev = engine_line(e, c->lines[i], strlen(c->lines[i]), false);
		*last = *ev;
	}
	engine_free(e);
}

static void test_stages(void **state)
{
	(void)state;
	static struct reply_buf out;
	for (size_t i = 0; i < sizeof(stage_cases) / sizeof(stage_cases[0]); i++) {
		const struct stage_case *c = &stage_cases[i];
		struct engine_event last;
		int delivered;
		run_stage(c, &out, c->rule[0] == 'a', &last, &delivered);
		if (c->want && strcmp(replies(&out), c->want) != 0)
			fail_msg("'%s': got replies\n%s\nwant\n%s", c->rule, replies(&out),
			         c->want);
		if (last.kind != c->last ||
		    (c->last != ENGINE_EV_DELIVER && last.delay_s != c->delay))
			fail_msg("'%s': got event %d delay %u, want %d delay %u", c->rule,
			         last.kind, last.delay_s, c->last, c->delay);
		if (delivered != c->delivered)
			fail_msg("'%s': got %d delivered, want %d", c->rule, delivered,
			         c->delivered);
	}
}

/* test_auth_fault - the fault answers before the check: no AUTH event
 * (so no brake turn, no comparison), not authenticated afterwards */
static void test_auth_fault(void **state)
{
	(void)state;
	static struct reply_buf out;
	struct engine_event last;
	int delivered;
	run_stage(&stage_cases[sizeof(stage_cases) / sizeof(stage_cases[0]) - 2], &out, true, &last,
	          &delivered);
	const char *want = "535 5.7.8 Authentication credentials invalid\n"
	                   "530 5.7.0 Authentication required\n";
	if (!strstr(replies(&out), want))
		fail_msg("got\n%s\nwant it to end\n%s", replies(&out), want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),  cmocka_unit_test(test_reply_bounds),
	    cmocka_unit_test(test_fire),   cmocka_unit_test(test_shared_counters),
	    cmocka_unit_test(test_stages), cmocka_unit_test(test_auth_fault),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
