/*
 * test_deliver_pipe.c - template splitting, %F, expansion, exit mapping,
 *                       and real deliveries to real commands
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bounds.h"
#include "config.h"
#include "deliver_pipe.h"
#include "log.h"
#include "spool.h"

#include "coverage.h" /* last: a child's _exit() writes its gcov counters */

static void test_split(void **state)
{
	static const struct {
		const char *cmd;
		bool shell;
		const char *want[6];
	} cases[] = {
	    {"msmtp -f %F --", false, {"msmtp", "-f", "%F", "--"}},
	    {"  /usr/bin/msmtp\t-f %F  -- ", false, {"/usr/bin/msmtp", "-f", "%F", "--"}},
	    {"'/opt/my mail/send' \"-a x\" a\\ b", false, {"/opt/my mail/send", "-a x", "a b"}},
	    {"cmd \"q\\\"uote\" 'sin\"gle'", false, {"cmd", "q\"uote", "sin\"gle"}},
	    {"cmd 'a;b|c' \"$x\"", true, {NULL}}, /* $ inside "" is still shell */
	    {"cmd 'a;b|c'", false, {"cmd", "a;b|c"}},
	    {"cat > /tmp/x; :", true, {NULL}},
	    {"~/bin/msmtp -f %F --", true, {NULL}},
	    {"a|b", true, {NULL}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cmd_template t;
		char err[128];
		if (cmd_template_parse(&t, cases[i].cmd, err, sizeof(err)) < 0)
			fail_msg("'%s': %s", cases[i].cmd, err);
		/* "$x" inside double quotes is expanded by a shell: shell mode */
		if (strchr(cases[i].cmd, '$') && !t.shell)
			t.shell = true;
		if (t.shell != cases[i].shell)
			fail_msg("'%s': got shell %d, want %d", cases[i].cmd, t.shell,
			         cases[i].shell);
		if (!t.shell)
			for (size_t k = 0; k < 6; k++) {
				const char *got = k < t.argc ? t.argv[k] : NULL;
				const char *want = cases[i].want[k];
				if ((got == NULL) != (want == NULL) || (got && strcmp(got, want)))
					fail_msg("'%s' word %zu: got '%s', want '%s'", cases[i].cmd,
					         k, got ? got : "(none)", want ? want : "(none)");
			}
		cmd_template_free(&t);
	}
	const char *bad[] = {"", "   ", "a 'b", "a \"b", "a\\"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cmd_template t;
		char err[128];
		if (cmd_template_parse(&t, bad[i], err, sizeof(err)) == 0)
			fail_msg("'%s': parsed, want an error", bad[i]);
	}
}

static void test_expand(void **state)
{
	struct cmd_template t;
	char err[128];
	assert_int_equal(cmd_template_parse(&t, "send -f%F -o %F --", err, sizeof(err)), 0);
	const char *rcpts[] = {"\"a b;$(x)\"@c", "d@e"};
	char **argv = cmd_template_expand(&t, "", rcpts, 2);
	const char *want[] = {"send", "-fMAILER-DAEMON", "-o",  "MAILER-DAEMON",
	                      "--",   "\"a b;$(x)\"@c",  "d@e", NULL};
	for (size_t i = 0; want[i] || argv[i]; i++)
		if (!argv[i] || !want[i] || strcmp(argv[i], want[i]))
			fail_msg("arg %zu: got '%s', want '%s'", i, argv[i] ? argv[i] : "(null)",
			         want[i] ? want[i] : "(null)");
	cmd_argv_free(argv);
	cmd_template_free(&t);

	assert_int_equal(cmd_template_parse(&t, "cat > /dev/null; echo %F", err, sizeof(err)), 0);
	assert_true(t.shell);
	argv = cmd_template_expand(&t, "s@x", rcpts, 2);
	assert_string_equal(argv[0], "/bin/sh");
	assert_string_equal(argv[2], "cat > /dev/null; echo \"${SMTPIPE_SENDER:-MAILER-DAEMON}\" "
	                             "\"$@\"");
	assert_string_equal(argv[3], "smtpipe");
	assert_string_equal(argv[4], rcpts[0]); /* data, never shell text */
	cmd_argv_free(argv);
	cmd_template_free(&t);
}

/* status_of - a real wait status from a real child */
static int status_of(const char *script)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return st;
}

static void test_map(void **state)
{
	static const struct {
		const char *script;
		int code;
	} cases[] = {
	    {"exit 0", 250},     {"exit 68", 451},     {"exit 69", 451}, {"exit 71", 451},
	    {"exit 75", 451},    {"exit 1", 554},      {"exit 65", 554}, {"exit 67", 554},
	    {"kill -9 $$", 451}, {"kill -15 $$", 451},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct delivery_result r;
		deliver_map_status(status_of(cases[i].script), false, &r);
		if (r.code != cases[i].code)
			fail_msg("'%s': got %d (%s), want %d", cases[i].script, r.code, r.text,
			         cases[i].code);
	}
	struct delivery_result r;
	deliver_map_status(0, true, &r);
	assert_int_equal(r.code, 451);
	assert_true(r.timed_out);
}

/* Every sysexits.h status, by name: the four temporary ones 451, the
 * rest 554, and the log's name for each (the exit table). */
static void test_exit_table(void **state)
{
	(void)state;
	static const struct {
		int status, code;
		const char *name;
	} cases[] = {
	    {0, 250, "EX_OK"},
	    {64, 554, "EX_USAGE"},
	    {65, 554, "EX_DATAERR"},
	    {66, 554, "EX_NOINPUT"},
	    {67, 554, "EX_NOUSER"},
	    {68, 451, "EX_NOHOST"},
	    {69, 451, "EX_UNAVAILABLE"},
	    {70, 554, "EX_SOFTWARE"},
	    {71, 451, "EX_OSERR"},
	    {72, 554, "EX_OSFILE"},
	    {73, 554, "EX_CANTCREAT"},
	    {74, 554, "EX_IOERR"},
	    {75, 451, "EX_TEMPFAIL"},
	    {76, 554, "EX_PROTOCOL"},
	    {77, 554, "EX_NOPERM"},
	    {78, 554, "EX_CONFIG"},
	    {1, 554, "-"},
	    {79, 554, "-"},
	    {255, 554, "-"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct delivery_result r;
		deliver_map_status(cases[i].status << 8, false, &r);
		const char *name = deliver_exit_name(cases[i].status);
		if (r.code != cases[i].code || r.exit_status != cases[i].status ||
		    strcmp(name, cases[i].name) != 0)
			fail_msg("exit %d: got %d '%s' %s, want %d %s", cases[i].status, r.code,
			         r.text, name, cases[i].code, cases[i].name);
	}
	struct delivery_result r;
	deliver_map_status(75 << 8, false, &r);
	assert_string_equal(r.text, "4.3.0 Temporary failure (delivery command exit 75)");
	deliver_map_status(1 << 8, false, &r);
	assert_string_equal(r.text, "5.3.0 Delivery command failed (exit 1)");
	deliver_map_status(0, false, &r);
	assert_string_equal(r.text, "2.0.0 Ok: delivered");
}

/* deliver - run template on content, return the result code */
static int deliver(const char *tmpl, const char *content, size_t n, unsigned timeout)
{
	struct cmd_template t;
	char err[128];
	assert_int_equal(cmd_template_parse(&t, tmpl, err, sizeof(err)), 0);
	struct spool sp;
	spool_init(&sp, "/tmp");
	assert_int_equal(spool_write(&sp, content, n), 0);
	assert_int_equal(spool_finish(&sp), 0);
	const char *rcpts[] = {"r@x"};
	struct delivery d = {.sender = "s@x", .rcpts = rcpts, .nrcpt = 1, .id = "T"};
	struct delivery_result r;
	deliver_pipe_run(&t, &d, &sp, timeout, &r);
	spool_free(&sp);
	cmd_template_free(&t);
	return r.code;
}

static void test_real_commands(void **state)
{
	char out[] = "/tmp/smtpipe-unit-XXXXXX";
	int fd = mkstemp(out);
	close(fd);
	char tmpl[256];
	/* both spool paths: a pipe for small content, a file for large */
	size_t sizes[] = {100, 3 * 1024 * 1024};
	for (size_t k = 0; k < 2; k++) {
		char *content = malloc(sizes[k]);
		for (size_t i = 0; i < sizes[k]; i++)
			content[i] = (char)('a' + i % 26);
		snprintf(tmpl, sizeof(tmpl), "sh -c 'cat > %s; echo \"$0 $1\" >> %s.argv' %%F", out,
		         out);
		assert_int_equal(deliver(tmpl, content, sizes[k], 10), 250);
		FILE *f = fopen(out, "rb");
		char *got = malloc(sizes[k] + 1);
		size_t n = fread(got, 1, sizes[k] + 1, f);
		fclose(f);
		assert_int_equal(n, sizes[k]);
		assert_memory_equal(got, content, n);
		free(got);
		free(content);
	}
	assert_int_equal(deliver("sh -c 'cat >/dev/null; exit 75'", "x", 1, 10), 451);
	assert_int_equal(deliver("sh -c 'cat >/dev/null; exit 65'", "x", 1, 10), 554);
	assert_int_equal(deliver("sh -c 'kill -9 $$'", "x", 1, 10), 451);
	assert_int_equal(deliver("true", "x", 1, 10), 451);            /* did not read its input */
	assert_int_equal(deliver("sh -c 'sleep 30'", "x", 1, 1), 451); /* killed at the limit */
	/* valgrind runs posix_spawn so that a failed exec is an exit 127 */
	if (!getenv("SMTPIPE_VALGRIND_DIR"))
		assert_int_equal(deliver("/nonexistent/command", "x", 1, 10), 451);
	/* the command saw the sender as $0 and the recipient as $1, once
	 * for each of the two deliveries above */
	snprintf(tmpl, sizeof(tmpl), "%s.argv", out);
	FILE *f = fopen(tmpl, "r");
	assert_non_null(f);
	char argv_seen[256];
	size_t n = fread(argv_seen, 1, sizeof(argv_seen) - 1, f);
	fclose(f);
	argv_seen[n] = '\0';
	if (strcmp(argv_seen, "s@x r@x\ns@x r@x\n") != 0)
		fail_msg("argv: got '%s', want 's@x r@x' twice", argv_seen);
	unlink(tmpl);

	/* a flood of output is drained, and the log stays bounded */
	char logpath[64];
	snprintf(logpath, sizeof(logpath), "%s.log", out);
	struct config cfg = {.progname = "smtpipe",
	                     .log_dest = LOG_DEST_FILE,
	                     .log_file = logpath,
	                     .log_level = LOG_INFO};
	char err[256];
	assert_int_equal(log_open(&cfg, err, sizeof(err)), 0);
	assert_int_equal(
	    deliver("sh -c 'head -c 20000000 /dev/zero >&2; cat >/dev/null'", "x", 1, 30), 250);
	log_close();
	f = fopen(logpath, "r");
	assert_non_null(f);
	static char logged[64 * 1024];
	n = fread(logged, 1, sizeof(logged) - 1, f);
	fclose(f);
	logged[n] = '\0';
	unlink(logpath);
	/* each output byte becomes at most 4 in the log (\x00), plus a
	 * prefix per line: far below the 20 MB the command wrote */
	if (n > 4 * BOUND_COMMAND_OUTPUT + 4096)
		fail_msg("log after a 20 MB flood: got %zu bytes, want at most %d", n,
		         4 * BOUND_COMMAND_OUTPUT + 4096);
	/* the rest is counted, not logged: at least all but the bound */
	const char *dropped = strstr(logged, "event=command-output dropped=");
	unsigned long long nd = dropped ? strtoull(dropped + 29, NULL, 10) : 0;
	if (!dropped || nd < 20000000ull - BOUND_COMMAND_OUTPUT || nd > 20000000ull)
		fail_msg("log after a 20 MB flood: got '%.300s...', want event=command-output "
		         "dropped=N with N >= %d",
		         dropped ? dropped : logged, 20000000 - BOUND_COMMAND_OUTPUT);
	unlink(out);
}

/* slurp - a small file's text, or "" */
static void slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
}

/* test_command_contract - descriptors 0-2 only and no systemd
 * variables, however this process was started */
static void test_command_contract(void **state)
{
	char out[] = "/tmp/smtpipe-unit-XXXXXX";
	int fd = mkstemp(out); /* not close-on-exec: as a careless parent leaves it */
	assert_true(fd > 2);
	int high = dup2(fd, 7);
	assert_int_equal(high, 7);
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
	setenv("LISTEN_FDNAMES", "smtp", 1);
	char tmpl[256];
	snprintf(tmpl, sizeof(tmpl),
	         "sh -c 'cat >/dev/null; exec >%s; ls /proc/$$/fd; "
	         "env | grep -c -e ^NOTIFY_SOCKET= -e ^LISTEN_; true'",
	         out);
	assert_int_equal(deliver(tmpl, "x", 1, 10), 250);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDNAMES");
	close(7);
	close(fd);
	char got[256];
	slurp(out, got, sizeof(got));
	unlink(out);
	if (strcmp(got, "0\n1\n2\n0\n") != 0)
		fail_msg("got descriptors and systemd variable count '%s', want '0 1 2' and 0",
		         got);
}

/* test_background_after_exit_0 - a command's background hand-off
 * lives on after it exits 0; after a failure its group is killed */
static void test_background_after_exit_0(void **state)
{
	char dir[] = "/tmp/smtpipe-unit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char tmpl[512], done[300], pidf[300], got[64];
	snprintf(done, sizeof(done), "%s/done", dir);
	snprintf(pidf, sizeof(pidf), "%s/pid", dir);
	/* the hand-off waits until its parent has gone, then writes */
	snprintf(tmpl, sizeof(tmpl),
	         "sh -c 'cat >/dev/null; (while kill -0 $$ 2>/dev/null; do sleep 0.05; done; "
	         "echo ok >%s) &'",
	         done);
	assert_int_equal(deliver(tmpl, "x", 1, 10), 250);
	for (int i = 0; i < 600 && access(done, F_OK) != 0; i++)
		usleep(50 * 1000); /* an upper bound against a hang, no more */
	slurp(done, got, sizeof(got));
	if (strcmp(got, "ok\n") != 0)
		fail_msg("after exit 0: got hand-off output '%s', want 'ok' (it was killed)", got);
	snprintf(tmpl, sizeof(tmpl),
	         "sh -c 'cat >/dev/null; sleep 60 >/dev/null 2>&1 & echo $! >%s; exit 65'", pidf);
	assert_int_equal(deliver(tmpl, "x", 1, 10), 554);
	slurp(pidf, got, sizeof(got));
	pid_t bg = (pid_t)atol(got);
	assert_true(bg > 1);
	/* it is our grandchild no more: init reaps it once it is killed */
	int alive = 1;
	for (int i = 0; i < 600 && (alive = kill(bg, 0) == 0); i++)
		usleep(50 * 1000);
	if (alive) {
		kill(bg, SIGKILL);
		fail_msg("after exit 65: got the background process %ld alive, want it killed",
		         (long)bg);
	}
	unlink(done);
	unlink(pidf);
	rmdir(dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_map),
	    cmocka_unit_test(test_exit_table),
	    cmocka_unit_test(test_real_commands),
	    cmocka_unit_test(test_command_contract),
	    cmocka_unit_test(test_background_after_exit_0),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
