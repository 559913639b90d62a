/*
 * test_child.c - child processes with real commands: the environment
 *                they get, their process group, the deadline, output
 *                gathered without waiting for background processes, and
 *                the log bound in lines
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
#include "child.h"
#include "clock.h"

/* has - whether env holds exactly entry */
static bool has(char **env, const char *entry)
{
	for (char **e = env; *e; e++)
		if (strcmp(*e, entry) == 0)
			return true;
	return false;
}

/* test_env - no systemd variable; extra replaces its name */
static void test_env(void **state)
{
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "2", 1);
	setenv("LISTEN_FDNAMES", "a:b", 1);
	setenv("SMTPIPE_SENDER", "old", 1);
	setenv("KEEP_ME", "yes", 1);
	setenv("SMTPIPE_CLIENT", "forged", 1);
	const char *const extra[] = {"SMTPIPE_SENDER=new", "SMTPIPE_CLIENT", NULL};
	char **env = child_env(extra);
	assert_non_null(env);
	int senders = 0;
	for (char **e = env; *e; e++) {
		if (strncmp(*e, "NOTIFY_SOCKET=", 14) == 0 || strncmp(*e, "LISTEN_", 7) == 0)
			fail_msg("got '%s' in a child's environment, want it removed", *e);
		senders += strncmp(*e, "SMTPIPE_SENDER=", 15) == 0;
		if (strncmp(*e, "SMTPIPE_CLIENT=", 15) == 0)
			fail_msg("got '%s', want an extra without a value to remove it", *e);
	}
	if (senders != 1 || !has(env, "SMTPIPE_SENDER=new") || !has(env, "KEEP_ME=yes"))
		fail_msg("got %d SMTPIPE_SENDER entries, want one 'new' and KEEP_ME kept", senders);
	free(env);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("SMTPIPE_SENDER");
	unsetenv("SMTPIPE_CLIENT");
	unsetenv("KEEP_ME");
}

/* test_group_and_deadline - its own group unless told otherwise; past
 * the deadline it is killed */
static void test_group_and_deadline(void **state)
{
	char *argv[] = {"sleep", "60", NULL};
	for (int same = 0; same < 2; same++) {
		struct child_spec s = {
		    .argv = argv, .search_path = true, .fd = {-1, -1, -1}, .same_group = same};
		pid_t pid = child_spawn(&s);
		assert_true(pid > 0);
		pid_t want = same ? getpgrp() : pid, got = getpgid(pid);
		bool timed_out = false;
		int st = child_wait(pid, same, NULL, 0, clock_now_ms() + 200, &timed_out);
		if (got != want)
			fail_msg("same_group=%d: got process group %ld, want %ld", same, (long)got,
			         (long)want);
		if (!timed_out || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
			fail_msg("same_group=%d: got timed_out=%d status %d, want killed", same,
			         timed_out, st);
	}
}

/* collect - a stream feed into a small string */
static void collect(void *arg, const char *p, size_t n)
{
	char *buf = arg;
	size_t have = strlen(buf);
	if (have + n < 64) {
		memcpy(buf + have, p, n);
		buf[have + n] = '\0';
	}
}

/* test_background_holder - output is gathered and the wait ends when
 * the command exits, though a background process keeps the pipe */
static void test_background_holder(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "echo hi; sleep 3600 &", NULL};
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct child_spec s = {.argv = argv, .fd = {-1, p[1], -1}};
	pid_t pid = child_spawn(&s);
	assert_true(pid > 0);
	close(p[1]);
	char out[64] = "";
	struct child_stream st = {.fd = p[0], .feed = collect, .arg = out};
	bool timed_out = false;
	int status = child_wait(pid, false, &st, 1, clock_now_ms() + 60000, &timed_out);
	kill(-pid, SIGKILL); /* the sleep, left alone after exit 0 */
	close(p[0]);
	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("got timed_out=%d status %d, want exit 0 without waiting for the sleep",
		         timed_out, status);
	if (strcmp(out, "hi\n") != 0)
		fail_msg("got output '%s', want 'hi'", out);
}

/* test_log_bound - many short lines: BOUND_COMMAND_OUTPUT_LINES logged,
 * the rest counted */
static void test_log_bound(void **state)
{
	struct child_log l = {.event = "command-output"};
	for (int i = 0; i < 4096; i++)
		child_log_feed(&l, "x\n", 2);
	child_log_end(&l);
	if (l.lines != BOUND_COMMAND_OUTPUT_LINES || l.dropped_lines == 0)
		fail_msg("got %zu lines logged, %zu dropped; want %d logged, the rest dropped",
		         l.lines, l.dropped_lines, BOUND_COMMAND_OUTPUT_LINES);
	if (l.lines + l.dropped_lines != 4096)
		fail_msg("got %zu + %zu lines, want 4096 counted", l.lines, l.dropped_lines);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_group_and_deadline),
	    cmocka_unit_test(test_background_holder),
	    cmocka_unit_test(test_log_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
