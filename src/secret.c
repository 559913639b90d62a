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
 *
 * Results: 0 with the account filled in. Errors: -1 and one line in
 * err: "passwordeval 'CMD' failed: exit N" (or killed by signal N),
 * "printed nothing", "printed an empty first line", "timed out after
 * 10 s"; "--auth=USER: no password in the keyring for user=USER
 * host=localhost service=smtp (why)"; or, built without libsecret,
 * "--auth=USER needs keyring support, which this build lacks".
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "bounds.h"
#include "child.h"
#include "clock.h"

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

/* What one run of a command gave back. */
struct run {
	char *buf;      /* the first cap-1 bytes of its stdout, NUL-terminated */
	size_t cap, n;  /* buf's size, bytes kept */
	bool overflow;  /* it printed more than cap-1 bytes (the rest is dropped) */
	bool timed_out; /* killed at BOUND_PASSWORDEVAL_SECONDS */
	int status;     /* wait status when it ended by itself */
};

/* keep - a stream feed: stdout into r->buf, the rest counted as
 * overflow (child_wait wipes its own buffer) */
static void keep(void *arg, const char *p, size_t n)
{
	struct run *r = arg;
	size_t room = r->cap - 1 - r->n, k = n < room ? n : room;
	memcpy(r->buf + r->n, p, k);
	r->n += k;
	r->buf[r->n] = '\0';
	if (k < n)
		r->overflow = true;
}

/* run_output - run argv (through child.c: descriptors 0-2 only, no
 * systemd variables) for at most BOUND_PASSWORDEVAL_SECONDS, its stdout
 * into r, its stderr to the log as event=EVENT lines. With terminal
 * (stdin is a terminal) it runs in our process group with the terminal
 * as stdin and, when stderr is the terminal too, as stderr: it can ask
 * and read there, as with msmtp's popen; at the deadline it alone is
 * killed. Otherwise stdin is /dev/null (under --inetd it would be the
 * client's socket) and it runs in a group of its own, killed whole at
 * the deadline. The run ends when the command itself exits: a child it
 * left in the background holding the pipe does not hold us up. -1
 * (errno set) only when it cannot be started */
static int run_output(char *const argv[], bool terminal, const char *event, struct run *r)
{
	int out[2], err[2] = {-1, -1};
	r->n = 0;
	r->buf[0] = '\0';
	r->overflow = r->timed_out = false;
	r->status = 0;
	bool tty_err = terminal && isatty(STDERR_FILENO);
	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	if (!tty_err && pipe2(err, O_CLOEXEC) < 0) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	struct child_spec cs = {
	    .argv = argv,
	    .fd = {terminal ? STDIN_FILENO : -1, out[1], tty_err ? STDERR_FILENO : err[1]},
	    .same_group = terminal};
	pid_t pid = child_spawn(&cs);
	int e = errno;
	close(out[1]);
	if (err[1] >= 0)
		close(err[1]);
	if (pid < 0) {
		close(out[0]);
		if (err[0] >= 0)
			close(err[0]);
		errno = e;
		return -1;
	}
	struct child_log log = {.event = event};
	struct child_stream st[2] = {{.fd = out[0], .feed = keep, .arg = r},
	                             {.fd = err[0], .feed = child_log_feed, .arg = &log}};
	long long deadline = clock_now_ms() + BOUND_PASSWORDEVAL_SECONDS * 1000LL;
	r->status = child_wait(pid, terminal, st, 2, deadline, &r->timed_out);
	child_log_end(&log);
	close(out[0]);
	if (err[0] >= 0)
		close(err[0]);
	return 0;
}

/* printable - cmd made fit for one line of an error message */
static const char *printable(char *out, size_t cap, const char *cmd)
{
	size_t i = 0;
	for (; cmd[i] && i + 1 < cap; i++)
		out[i] = (unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f ? '?' : cmd[i];
	out[i] = '\0';
	if (cmd[i] && cap > 4)
		memcpy(out + cap - 4, "...", 4);
	return out;
}

/* password_eval - the first line of EVAL's output, without its line
 * ending; a failure, no output, an empty or overlong first line, or a
 * timeout is an error naming the command */
static int password_eval(struct auth_secret *s, const char *user, const char *eval, char *err,
                         size_t errlen)
{
	char *argv[] = {"/bin/sh", "-c", (char *)eval, NULL};
	char buf[4096], cmd[200];
	struct run r = {.buf = buf, .cap = sizeof(buf)};
	printable(cmd, sizeof(cmd), eval);
	if (run_output(argv, isatty(STDIN_FILENO), "passwordeval-output", &r) < 0) {
		snprintf(err, errlen, "passwordeval '%s' cannot run /bin/sh: %s", cmd,
		         strerror(errno));
		return -1;
	}
	char *nl = memchr(buf, '\n', r.n);
	size_t len = nl ? (size_t)(nl - buf) : r.n;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	int rc = -1;
	if (r.timed_out)
		snprintf(err, errlen, "passwordeval '%s' timed out after %d s", cmd,
		         BOUND_PASSWORDEVAL_SECONDS);
	else if (WIFSIGNALED(r.status))
		snprintf(err, errlen, "passwordeval '%s' failed: killed by signal %d", cmd,
		         WTERMSIG(r.status));
	else if (WEXITSTATUS(r.status) != 0)
		snprintf(err, errlen, "passwordeval '%s' failed: exit %d", cmd,
		         WEXITSTATUS(r.status));
	else if (r.n == 0)
		snprintf(err, errlen, "passwordeval '%s' printed nothing", cmd);
	else if (!nl && r.overflow)
		snprintf(err, errlen,
		         "passwordeval '%s' printed a first line longer than %zu bytes", cmd,
		         sizeof(buf) - 1);
	else if (len == 0)
		snprintf(err, errlen, "passwordeval '%s' printed an empty first line", cmd);
	else if (memchr(buf, '\0', len)) /* a C string would end there */
		snprintf(err, errlen, "passwordeval '%s' printed a NUL byte in its first line",
		         cmd);
	else
		rc = store(s, user, buf, len, err, errlen);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* The terminal's settings while the prompt has echo off, so that an
 * interrupt (^C at the prompt) gives the terminal its echo back. */
static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;

/* prompt_interrupted - restore the echo, then die of the signal */
static void prompt_interrupted(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved); /* async-signal-safe */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* prompt - read the password from the terminal without echo */
static int prompt(struct auth_secret *s, const char *user, char *err, size_t errlen)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the terminal to ask for the password: %s",
		         strerror(errno));
		return -1;
	}
	struct sigaction sa = {.sa_handler = prompt_interrupted}, old_int, old_term, old_quit;
	sigemptyset(&sa.sa_mask);
	bool tty = tcgetattr(fd, &tty_saved) == 0;
	if (tty) { /* echo off before the prompt: an answer typed at once is not shown */
		struct termios quiet = tty_saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		sigaction(SIGINT, &sa, &old_int);
		sigaction(SIGTERM, &sa, &old_term);
		sigaction(SIGQUIT, &sa, &old_quit);
		tty_fd = fd;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	dprintf(fd, "Password for %s: ", user);
	char buf[1024];
	size_t n = 0;
	char c;
	while (n < sizeof(buf) - 1 && read(fd, &c, 1) == 1 && c != '\n')
		buf[n++] = c;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (tty) {
		tcsetattr(fd, TCSAFLUSH, &tty_saved);
		tty_fd = -1;
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
	}
	dprintf(fd, "\n");
	close(fd);
	int rc = -1;
	if (n > 0)
		rc = store(s, user, buf, n, err, errlen);
	else
		snprintf(err, errlen, "--auth=%s: no password given at the prompt", user);
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(&c, sizeof(c));
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

/* keyring - the password from the helper: 0; -1 with why filled when
 * the keyring has none for us or cannot be asked; -2 (err filled)
 * when it cannot be kept */
static int keyring(struct auth_secret *s, const char *user, char *why, size_t whylen, char *err,
                   size_t errlen)
{
	char helper[4200];
	keyring_helper(helper, sizeof(helper));
	char *argv[] = {helper, (char *)user, NULL};
	char buf[4096];
	struct run r = {.buf = buf, .cap = sizeof(buf)};
	int rc = -1;
	if (run_output(argv, false, "keyring-helper-output", &r) < 0) {
		snprintf(why, whylen, "cannot run %.200s: %s", helper, strerror(errno));
	} else if (r.timed_out) {
		snprintf(why, whylen, "%.200s did not answer within %d s", helper,
		         BOUND_PASSWORDEVAL_SECONDS);
	} else if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && !r.overflow &&
	           strncmp(buf, "OK\n", 3) == 0 && r.n > 4 && buf[r.n - 1] == '\n') {
		rc = store(s, user, buf + 3, r.n - 4, err, errlen) == 0 ? 0 : -2;
	} else if (strncmp(buf, "ERR ", 4) == 0) {
		/* the helper says "not found..." when the service answered, and
		 * passes on D-Bus's words when there was no service to ask */
		const char *m = buf + 4;
		int mlen = (int)strcspn(m, "\n");
		if (strncmp(m, "not found", 9) == 0 || strstr(m, "did not answer"))
			snprintf(why, whylen, "%.*s", mlen, m);
		else
			snprintf(why, whylen, "org.freedesktop.secrets not available: %.*s", mlen,
			         m);
	} else {
		snprintf(why, whylen, "%.200s failed with wait status %d", helper, r.status);
	}
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
	int rc = keyring(s, user, why, sizeof(why), err, errlen);
	if (rc != -1)
		return rc < 0 ? -1 : 0;
	/* msmtpd: "from the key ring or, if that fails, from a prompt" */
	if (isatty(STDIN_FILENO))
		return prompt(s, user, err, errlen);
	snprintf(err, errlen,
	         "--auth=%s: no password in the keyring for user=%s host=localhost service=smtp "
	         "(%s); store one with 'secret-tool store --label=msmtpd host localhost service "
	         "smtp user %s', or use --auth=%s,EVAL",
	         user, user, why, user, user);
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
