/*
 * secret.c - the AUTH password: passwordeval, the keyring, or a prompt
 *
 * Resolved once at start-up, before the listener opens. passwordeval
 * runs through /bin/sh -c as in msmtp (it is the administrator's
 * command, never a client's), bounded in time. The keyring lookup runs
 * in the helper smtpipe-keyring (keyring_helper.c), so that the daemon
 * never maps GLib: it uses msmtp's own schema and attributes, so a
 * password stored for msmtpd works unchanged. The password comes back
 * through a pipe, never through argv. Passwords are wiped from every
 * temporary buffer.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bounds.h"

extern char **environ;

/* store - keep user and password in s (the password is copied, the
 * caller wipes its own buffer) */
static int store(struct auth_secret *s, const char *user, const char *pass, size_t plen, char *err,
                 size_t errlen)
{
	s->user = strdup(user);
	s->password = malloc(plen + 1);
	if (!s->user || !s->password) {
		auth_secret_wipe(s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(s->password, pass, plen);
	s->password[plen] = '\0';
	s->user_len = strlen(user);
	s->password_len = plen;
	return 0;
}

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* run_output - run argv with stdout to a pipe for at most
 * BOUND_PASSWORDEVAL_SECONDS; its output (up to cap-1 bytes, or the
 * first line when first_line) into buf; returns the byte count and the
 * wait status in *status, or -1 (spawn failure: errno; timeout:
 * *timed_out) */
static long run_output(char *const argv[], char *buf, size_t cap, bool first_line, int *status,
                       bool *timed_out)
{
	int p[2];
	*timed_out = false;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawnattr_init(&at);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	pid_t pid;
	int e = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (e != 0) {
		close(p[0]);
		errno = e;
		return -1;
	}
	size_t n = 0;
	long long deadline = now_ms() + BOUND_PASSWORDEVAL_SECONDS * 1000LL;
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
			*timed_out = true;
			break;
		}
		ssize_t r = read(p[0], buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1 || (first_line && memchr(buf, '\n', n)))
			break;
	}
	close(p[0]);
	if (*timed_out)
		kill(-pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	buf[n] = '\0';
	return *timed_out ? -1 : (long)n;
}

/* password_eval - the first line of EVAL's output */
static int password_eval(struct auth_secret *s, const char *user, const char *eval, char *err,
                         size_t errlen)
{
	char *argv[] = {"/bin/sh", "-c", (char *)eval, NULL};
	char buf[4096];
	int status = 0;
	bool timed_out;
	long got = run_output(argv, buf, sizeof(buf), true, &status, &timed_out);
	if (got < 0 && !timed_out) {
		snprintf(err, errlen, "passwordeval '%s' cannot run: %s", eval, strerror(errno));
		return -1;
	}
	size_t n = got < 0 ? 0 : (size_t)got;
	size_t len = 0;
	while (len < n && buf[len] != '\n')
		len++;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	int rc = -1;
	if (timed_out)
		snprintf(err, errlen, "passwordeval '%s' timed out after %d s", eval,
		         BOUND_PASSWORDEVAL_SECONDS);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(err, errlen, "passwordeval '%s' failed (exit status %d)", eval,
		         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	else if (len == 0)
		snprintf(err, errlen, "passwordeval '%s' printed no password", eval);
	else
		rc = store(s, user, buf, len, err, errlen);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* prompt - read the password from the terminal without echo */
static int prompt(struct auth_secret *s, const char *user, char *err, size_t errlen)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the terminal to ask for the password: %s",
		         strerror(errno));
		return -1;
	}
	struct termios old, quiet;
	bool tty = tcgetattr(fd, &old) == 0;
	if (tty) { /* echo off before the prompt: an answer typed at once is not shown */
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	dprintf(fd, "Password for %s: ", user);
	char buf[1024];
	size_t n = 0;
	char c;
	while (n < sizeof(buf) - 1 && read(fd, &c, 1) == 1 && c != '\n')
		buf[n++] = c;
	if (tty)
		tcsetattr(fd, TCSAFLUSH, &old);
	dprintf(fd, "\n");
	close(fd);
	int rc = n > 0 ? store(s, user, buf, n, err, errlen) : -1;
	if (n == 0)
		snprintf(err, errlen, "no password given for %s", user);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

#ifdef HAVE_LIBSECRET
/* keyring_helper - where smtpipe-keyring is: beside this binary (a
 * build tree), in ../libexec/smtpipe relative to it (any install
 * prefix), else where the build said it would be installed */
static void keyring_helper(char *path, size_t cap)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, cap, "%s/smtpipe-keyring", self);
			if (access(path, X_OK) == 0)
				return;
			snprintf(path, cap, "%s/../libexec/smtpipe/smtpipe-keyring", self);
			if (access(path, X_OK) == 0)
				return;
		}
	}
	snprintf(path, cap, "%s", SMTPIPE_KEYRING_HELPER);
}

/* keyring - the password from the helper; -1 with why filled */
static int keyring(struct auth_secret *s, const char *user, char *why, size_t whylen, char *err,
                   size_t errlen)
{
	char helper[4200];
	keyring_helper(helper, sizeof(helper));
	char *argv[] = {helper, (char *)user, NULL};
	char buf[4096];
	int status = 0;
	bool timed_out;
	long n = run_output(argv, buf, sizeof(buf), false, &status, &timed_out);
	int rc = -1;
	if (n < 0)
		snprintf(why, whylen, "%.200s %s", helper,
		         timed_out ? "did not answer" : strerror(errno));
	else if (strncmp(buf, "OK\n", 3) == 0 && n > 4 && buf[n - 1] == '\n')
		rc = store(s, user, buf + 3, (size_t)n - 4, err, errlen);
	else if (strncmp(buf, "ERR ", 4) == 0)
		snprintf(why, whylen, "%.*s", (int)strcspn(buf + 4, "\n"), buf + 4);
	else
		snprintf(why, whylen, "%.200s failed (status %d)", helper, status);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

#endif

/* secret_resolve - see secret.h */
int secret_resolve(struct auth_secret *s, const char *user, const char *eval, char *err,
                   size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (eval)
		return password_eval(s, user, eval, err, errlen);
#ifdef HAVE_LIBSECRET
	char why[512];
	if (keyring(s, user, why, sizeof(why), err, errlen) == 0)
		return 0;
	if (s->password) /* store() failed */
		return -1;
	if (isatty(STDIN_FILENO))
		return prompt(s, user, err, errlen);
	snprintf(err, errlen,
	         "--auth=%s: no password in the keyring (schema de.marlam.msmtp.password, "
	         "host=localhost service=smtp user=%s): %s; store one with secret-tool, or use "
	         "--auth=%s,EVAL",
	         user, user, why, user);
	return -1;
#else
	if (isatty(STDIN_FILENO))
		return prompt(s, user, err, errlen);
	snprintf(err, errlen,
	         "--auth=%s needs keyring support, which this build lacks; use --auth=%s,EVAL",
	         user, user);
	return -1;
#endif
}
