/*
 * test_secret.c - where the AUTH password comes from: passwordeval run
 *                 for real through /bin/sh, the keyring's failure path,
 *                 and the prompt on a real pseudo-terminal
 *
 * Every case runs secret_resolve() in a child process of its own, with
 * its own stdin and environment; the passwordeval table runs all its
 * children at once, so that the cases that hit the 10 s limit cost 10 s
 * together. A keyring with a password in it is tested against a real
 * Secret Service in tests/integration/test_keyring_auth.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bounds.h"
#include "secret.h"

#include "coverage.h" /* last: a child's _exit() writes its gcov counters */

/* What secret_resolve gave back in a child. */
struct outcome {
	int rc;
	char user[64];
	char pass[5000];
	size_t pass_len;
	char err[1024];
	int echo_after; /* the prompt test: ECHO set on the terminal afterwards */
};

/* now_s - monotonic seconds */
static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* resolve_here - run secret_resolve in this process into o */
static void resolve_here(const char *user, const char *eval, struct outcome *o)
{
	struct auth_secret s;
	memset(o, 0, sizeof(*o));
	o->rc = secret_resolve(&s, user, eval, o->err, sizeof(o->err));
	if (o->rc == 0) {
		snprintf(o->user, sizeof(o->user), "%s", s.user);
		o->pass_len = s.password_len < sizeof(o->pass) ? s.password_len : 0;
		memcpy(o->pass, s.password, o->pass_len);
		auth_secret_wipe(&s);
	}
}

/* write_all - the whole buffer, or exit the child */
static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(99);
		p += w;
		n -= (size_t)w;
	}
}

/* read_outcome - the struct a child wrote, or false */
static bool read_outcome(int fd, struct outcome *o)
{
	size_t got = 0;
	while (got < sizeof(*o)) {
		ssize_t r = read(fd, (char *)o + got, sizeof(*o) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* A child resolving a password: its pid and the pipe it answers on. */
struct child {
	pid_t pid;
	int fd;
};

/* start - fork a child that runs secret_resolve with stdin fed from
 * input (NULL: /dev/null), and answers on a pipe */
static struct child start(const char *user, const char *eval, const char *input)
{
	int out[2], in[2];
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(in), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(out[0]);
		close(in[1]);
		if (input) {
			dup2(in[0], STDIN_FILENO);
		} else {
			int null = open("/dev/null", O_RDONLY);
			dup2(null, STDIN_FILENO);
		}
		struct outcome o;
		resolve_here(user, eval, &o);
		write_all(out[1], &o, sizeof(o));
		_exit(0);
	}
	close(out[1]);
	close(in[0]);
	if (input) /* the pipe holds it: a short text never blocks here */
		write_all(in[1], input, strlen(input));
	close(in[1]);
	return (struct child){pid, out[0]};
}

/* finish - the child's outcome; fails the test if it had none */
static void finish(struct child c, const char *what, struct outcome *o)
{
	bool ok = read_outcome(c.fd, o);
	close(c.fd);
	int st;
	assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
	if (!ok || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s: the child gave no answer (wait status %d)", what, st);
}

/* check_error - a failure is reported as one line, naming want */
static void check_error(const char *what, const struct outcome *o, const char *want)
{
	if (o->rc != -1)
		fail_msg("%s: got rc %d, want -1", what, o->rc);
	if (!strstr(o->err, want))
		fail_msg("%s: got error '%s', want it to contain '%s'", what, o->err, want);
	if (strchr(o->err, '\n') || strchr(o->err, '\r'))
		fail_msg("%s: got error '%s' over more than one line", what, o->err);
}

/* live_members - processes of group pgid that are not zombies */
static int live_members(pid_t pgid)
{
	DIR *d = opendir("/proc");
	assert_non_null(d);
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* "pid (comm) state ppid pgrp ...": comm may hold anything */
		char *close_paren = strrchr(buf, ')'), state;
		long ppid, pgrp;
		if (close_paren &&
		    sscanf(close_paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 &&
		    pgrp == pgid && state != 'Z' && state != 'X')
			count++;
	}
	closedir(d);
	return count;
}

/* test_passwordeval - the first line of the command's stdout, or one
 * clear line saying why not */
static void test_passwordeval(void **state)
{
	char dir[] = "/tmp/test_secret.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char pidfile[PATH_MAX], stuck[PATH_MAX + 64], late[64];
	snprintf(pidfile, sizeof(pidfile), "%s/pgid", dir);
	/* the shell ($$ leads the process group) and a sleep under it */
	snprintf(stuck, sizeof(stuck), "echo $$ >%s; sleep 60; :", pidfile);
	/* done in twice the limit: a deadline that is not kept lets it
	 * through, however slow the machine (no clock is read here) */
	snprintf(late, sizeof(late), "sleep %d; echo late", 2 * BOUND_PASSWORDEVAL_SECONDS);
	const struct {
		const char *eval, *input;
		int rc;
		const char *want;   /* the password, or a part of the error */
		const char *hidden; /* must not appear in the error */
	} cases[] = {
	    {"echo s3cret", NULL, 0, "s3cret", NULL},
	    {"printf s3cret", NULL, 0, "s3cret", NULL}, /* no newline at all */
	    {"printf 's3cret\\r\\n'", NULL, 0, "s3cret", NULL},
	    {"printf 'first\\nsecond\\n'", NULL, 0, "first", NULL},
	    {"printf 'in\\rside\\n'", NULL, 0, "in\rside", NULL}, /* only a final CR goes */
	    {"printf '%s\\n' 'a b \"c\" $d'", NULL, 0, "a b \"c\" $d", NULL},
	    {"printf '\\303\\244\\n'", NULL, 0, "\xc3\xa4", NULL},
	    {"echo s3cret; echo to-stderr >&2", NULL, 0, "s3cret", NULL},
	    /* the command is what counts: a child it leaves in the background
	     * holding stdout past the deadline does not hold us up */
	    {"echo s3cret; sleep 15 2>/dev/null &", NULL, 0, "s3cret", NULL},
	    {"exit 1", NULL, -1, "passwordeval 'exit 1' failed: exit 1", NULL},
	    {"echo $((6*7))x; exit 7", NULL, -1, "failed: exit 7", "42x"},
	    {"kill -TERM $$", NULL, -1, "failed: killed by signal 15", NULL},
	    {"/nonexistent/passwordeval", NULL, -1, "failed: exit 127", NULL},
	    {"true", NULL, -1, "passwordeval 'true' printed nothing", NULL},
	    {"echo", NULL, -1, "printed an empty first line", NULL},
	    {"printf '\\r\\n'", NULL, -1, "printed an empty first line", NULL},
	    /* a C string would end at the NUL: refused, not cut */
	    {"printf 'ab\\0cd\\n'", NULL, -1, "printed a NUL byte in its first line", NULL},
	    {"head -c 5000 /dev/zero | tr '\\0' x", NULL, -1, "longer than 4095 bytes", NULL},
	    /* stdin is not the command's when it is not a terminal: under
	     * --inetd it is the client's socket */
	    {"cat", "client-text\n", -1, "printed nothing", NULL},
	    /* a newline in the command does not split the error line */
	    {"echo x; exit 2\n", NULL, -1, "passwordeval 'echo x; exit 2?' failed: exit 2", NULL},
	    {"sleep 60", NULL, -1, "passwordeval 'sleep 60' timed out after 10 s", NULL},
	    {"echo s3cret; sleep 60", NULL, -1, "timed out after 10 s", NULL},
	    {stuck, NULL, -1, "timed out after 10 s", NULL},
	    {late, NULL, -1, "timed out after 10 s", NULL},
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct child kids[N];
	for (size_t i = 0; i < N; i++)
		kids[i] = start("alice", cases[i].eval, cases[i].input);
	static struct outcome outs[N];
	for (size_t i = 0; i < N; i++)
		finish(kids[i], cases[i].eval, &outs[i]);
	/* the files go before any check can fail */
	FILE *f = fopen(pidfile, "r");
	long pgid = 0;
	bool have_pgid = f && fscanf(f, "%ld", &pgid) == 1 && pgid > 1;
	if (f)
		fclose(f);
	unlink(pidfile);
	rmdir(dir);
	for (size_t i = 0; i < N; i++) {
		const struct outcome o = outs[i];
		char what[300];
		snprintf(what, sizeof(what), "passwordeval \"%s\"", cases[i].eval);
		if (cases[i].rc == 0) {
			if (o.rc != 0)
				fail_msg("%s: got rc %d (%s), want 0", what, o.rc, o.err);
			if (strcmp(o.user, "alice") || o.pass_len != strlen(cases[i].want) ||
			    memcmp(o.pass, cases[i].want, o.pass_len))
				fail_msg("%s: got user '%s' password '%.*s', want 'alice' '%s'",
				         what, o.user, (int)o.pass_len, o.pass, cases[i].want);
			continue;
		}
		check_error(what, &o, cases[i].want);
		if (cases[i].hidden && strstr(o.err, cases[i].hidden))
			fail_msg("%s: got error '%s', which shows the output '%s'", what, o.err,
			         cases[i].hidden);
	}
	/* the command's whole process group was killed at the deadline */
	if (!have_pgid)
		fail_msg("the stuck command did not write its pid to %s", pidfile);
	/* SIGKILL takes effect at once, but a killed process may linger a
	 * moment as a zombie that nobody has reaped yet: it is dead */
	int alive = 0;
	for (int tries = 0; tries < 50 && (alive = live_members((pid_t)pgid)) > 0; tries++)
		usleep(100 * 1000);
	if (alive)
		fail_msg("after the timeout: got %d processes of group %ld alive, want none", alive,
		         pgid);
}

#ifdef HAVE_LIBSECRET
/* The helper as a build tree lays it out: smtpipe-keyring in the build
 * directory, this test one level below it. secret.c looks for it beside
 * the running program, so the test puts a link there for its run. */
static char helper_link[PATH_MAX + 32];
static bool helper_linked;

/* link_helper - make smtpipe-keyring visible beside this test */
static void link_helper(void)
{
	char self[PATH_MAX], target[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(helper_link, sizeof(helper_link), "%s/smtpipe-keyring", self);
	*strrchr(self, '/') = '\0';
	snprintf(target, sizeof(target), "%s/smtpipe-keyring", self);
	if (access(target, X_OK) != 0)
		fail_msg("the keyring helper %s is missing: build the smtpipe-keyring target",
		         target);
	if (access(helper_link, X_OK) == 0)
		return;
	if (symlink(target, helper_link) != 0)
		fail_msg("cannot link %s: %s", helper_link, strerror(errno));
	helper_linked = true;
}

/* unlink_helper - remove the link this test made */
static void unlink_helper(void)
{
	if (helper_linked)
		unlink(helper_link);
	helper_linked = false;
}
#endif

/* no_keyring_env - a session bus address that leads nowhere and no
 * display to autolaunch one: no Secret Service can answer */
static void no_keyring_env(void)
{
	setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/smtpipe-test/bus", 1);
	unsetenv("DISPLAY");
}

/* test_keyring_unavailable - --auth=USER with no Secret Service and no
 * terminal: -1 soon, with one line naming the lookup and the reason */
static void test_keyring_unavailable(void **state)
{
#ifdef HAVE_LIBSECRET
	link_helper();
#endif
	char *old_bus = getenv("DBUS_SESSION_BUS_ADDRESS");
	old_bus = old_bus ? strdup(old_bus) : NULL;
	no_keyring_env();
	struct outcome o;
	finish(start("bob", NULL, NULL), "keyring lookup", &o);
	if (old_bus) {
		setenv("DBUS_SESSION_BUS_ADDRESS", old_bus, 1);
		free(old_bus);
	}
#ifdef HAVE_LIBSECRET
	unlink_helper();
	check_error("keyring lookup", &o,
	            "--auth=bob: no password in the keyring for user=bob "
	            "host=localhost service=smtp");
	check_error("keyring lookup", &o, "org.freedesktop.secrets not available");
	check_error("keyring lookup", &o, "or use --auth=bob,EVAL");
	/* at once, on D-Bus's own error, not at a deadline (which a clock
	 * on a busy machine could not tell apart) */
	if (strstr(o.err, "did not answer"))
		fail_msg("keyring lookup: got '%s', want D-Bus's error, not a timeout", o.err);
#else
	check_error(
	    "keyring lookup", &o,
	    "--auth=bob needs keyring support, which this build lacks; use --auth=bob,EVAL");
#endif
}

/* prompt_child - under forkpty: the keyring fails, so the password is
 * asked for on the terminal; the outcome goes to fd */
static void prompt_child(int fd)
{
	no_keyring_env();
	struct outcome o;
	resolve_here("carol", NULL, &o);
	struct termios t;
	o.echo_after = tcgetattr(STDIN_FILENO, &t) == 0 && (t.c_lflag & ECHO);
	write_all(fd, &o, sizeof(o));
	_exit(0);
}

/* read_until - read the terminal's output into buf until want shows up
 * or 60 s pass (a hang); true when it did */
static bool read_until(int master, char *buf, size_t cap, size_t *n, const char *want)
{
	double end = now_s() + 60; /* only a guard against a hang */
	while (!(want && strstr(buf, want))) {
		int left = (int)((end - now_s()) * 1000);
		struct pollfd pf = {.fd = master, .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return false;
		ssize_t r = read(master, buf + *n, cap - 1 - *n);
		if (r <= 0) /* EIO: the child closed the terminal */
			return want == NULL;
		*n += (size_t)r;
		buf[*n] = '\0';
	}
	return true;
}

/* test_prompt - not in the keyring and stdin a terminal: ask on
 * /dev/tty with echo off, then give the echo back */
static void test_prompt(void **state)
{
#ifdef HAVE_LIBSECRET
	link_helper();
#endif
	int res[2];
	assert_int_equal(pipe(res), 0);
	fflush(NULL);
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		close(res[0]);
		prompt_child(res[1]);
	}
	close(res[1]);
	char out[4096] = "";
	size_t n = 0;
	if (!read_until(master, out, sizeof(out), &n, "Password for carol: "))
		fail_msg("prompt: got terminal output '%s', want 'Password for carol: '", out);
	struct termios t;
	assert_int_equal(tcgetattr(master, &t), 0);
	if (t.c_lflag & ECHO)
		fail_msg("prompt: got ECHO on while the password is typed, want it off");
	const char typed[] = "typed pass\n";
	assert_int_equal(write(master, typed, sizeof(typed) - 1), (ssize_t)(sizeof(typed) - 1));
	struct outcome o;
	bool ok = read_outcome(res[0], &o);
	read_until(master, out, sizeof(out), &n, NULL);
	close(res[0]);
	close(master);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
#ifdef HAVE_LIBSECRET
	unlink_helper();
#endif
	if (!ok)
		fail_msg("prompt: the child gave no answer (wait status %d)", st);
	if (o.rc != 0 || strcmp(o.user, "carol") || o.pass_len != 10 ||
	    memcmp(o.pass, "typed pass", 10))
		fail_msg(
		    "prompt: got rc %d user '%s' password '%.*s' (%s), want 'carol' 'typed pass'",
		    o.rc, o.user, (int)o.pass_len, o.pass, o.err);
	if (strstr(out, "typed"))
		fail_msg("prompt: got the password echoed: '%s'", out);
	if (!o.echo_after)
		fail_msg("prompt: got ECHO still off afterwards, want it restored");
}

/* on_terminal - forkpty a child that runs passwordeval EVAL with the
 * terminal as stdin, type typed (NULL: nothing), and get its outcome */
static struct child on_terminal(const char *eval, const char *typed, int *master)
{
	int res[2];
	assert_int_equal(pipe(res), 0);
	fflush(NULL);
	pid_t pid = forkpty(master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		close(res[0]);
		struct outcome o;
		resolve_here("dave", eval, &o);
		write_all(res[1], &o, sizeof(o));
		_exit(0);
	}
	close(res[1]);
	if (typed) /* the terminal holds it until it is read */
		assert_int_equal(write(*master, typed, strlen(typed)), (ssize_t)strlen(typed));
	return (struct child){pid, res[0]};
}

/* test_passwordeval_terminal - with a terminal on stdin, passwordeval
 * reads it (it runs in the foreground group, not stopped by SIGTTIN);
 * one that waits there for nothing is killed at the deadline */
static void test_passwordeval_terminal(void **state)
{
	int m1, m2;
	struct child typed = on_terminal("read -r p; echo \"$p\"", "from the tty\n", &m1);
	struct child idle = on_terminal("read -r p; echo \"$p\"", NULL, &m2);
	struct outcome o1, o2;
	finish(typed, "terminal, typed", &o1); /* the terminals stay open until then */
	finish(idle, "terminal, nothing typed", &o2);
	close(m1);
	close(m2);
	if (o1.rc != 0 || o1.pass_len != 12 || memcmp(o1.pass, "from the tty", 12))
		fail_msg("terminal: got rc %d password '%.*s' (%s), want 'from the tty'", o1.rc,
		         (int)o1.pass_len, o1.pass, o1.err);
	check_error("terminal, nothing typed", &o2, "timed out after 10 s");
}

/* test_passwordeval_stderr - its stderr never reaches descriptor 2,
 * which under xinetd is the client's connection */
static void test_passwordeval_stderr(void **state)
{
	int err[2], res[2];
	assert_int_equal(pipe(err), 0);
	assert_int_equal(pipe(res), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(err[0]);
		close(res[0]);
		dup2(err[1], STDERR_FILENO);
		close(err[1]);
		int null = open("/dev/null", O_RDONLY);
		dup2(null, STDIN_FILENO);
		struct outcome o;
		resolve_here("erin", "echo 'gpg: encrypted for Erin' >&2; echo pw", &o);
		write_all(res[1], &o, sizeof(o));
		_exit(0);
	}
	close(err[1]);
	close(res[1]);
	struct outcome o;
	bool ok = read_outcome(res[0], &o);
	close(res[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	char got[512];
	ssize_t n = read(err[0], got, sizeof(got) - 1); /* every writer is gone: no wait */
	close(err[0]);
	got[n > 0 ? n : 0] = '\0';
	if (!ok || o.rc != 0)
		fail_msg("stderr: got rc %d (%s), want the password", ok ? o.rc : -99, o.err);
	if (n > 0)
		fail_msg("stderr: got '%s' on descriptor 2, want nothing", got);
}

/* teardown - a check that failed midway leaves no link behind */
static int teardown(void **state)
{
#ifdef HAVE_LIBSECRET
	unlink_helper();
#endif
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_passwordeval),
	    cmocka_unit_test_teardown(test_keyring_unavailable, teardown),
	    cmocka_unit_test_teardown(test_prompt, teardown),
	    cmocka_unit_test(test_passwordeval_terminal),
	    cmocka_unit_test(test_passwordeval_stderr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
