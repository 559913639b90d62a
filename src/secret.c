/*
 * secret.c - the AUTH password: passwordeval, the keyring, or a prompt
 *
 * Resolved once at start-up, before the listener opens. passwordeval
 * runs through /bin/sh -c as in msmtp (it is the administrator's
 * command, never a client's), bounded in time. The keyring lookup uses
 * msmtp's own schema and attributes, so a password stored for msmtpd
 * works unchanged, and runs asynchronously under a timeout: a Secret
 * Service that is present but stuck would otherwise block for 50 s.
 * Passwords are wiped from every temporary buffer.
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

#ifdef HAVE_LIBSECRET
#include <libsecret/secret.h>
#endif

extern char **environ;

#define KEYRING_TIMEOUT_MS 5000

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

/* password_eval - the first line of EVAL's output */
static int password_eval(struct auth_secret *s, const char *user, const char *eval, char *err,
                         size_t errlen)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "passwordeval: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawnattr_init(&at);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	char *argv[] = {"/bin/sh", "-c", (char *)eval, NULL};
	pid_t pid;
	int e = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (e != 0) {
		close(p[0]);
		snprintf(err, errlen, "passwordeval '%s' cannot run: %s", eval, strerror(e));
		return -1;
	}
	char buf[4096];
	size_t n = 0;
	bool timed_out = false;
	long long deadline = now_ms() + BOUND_PASSWORDEVAL_SECONDS * 1000LL;
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
			timed_out = true;
			break;
		}
		ssize_t r = read(p[0], buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof(buf) - 1 || memchr(buf, '\n', n))
			break; /* the first line is all we need */
	}
	close(p[0]);
	if (timed_out)
		kill(-pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
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
	dprintf(fd, "Password for %s: ", user);
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
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
/* msmtp's schema, exactly: secret-tool store --label=msmtpd host
 * localhost service smtp user USER finds it */
static const SecretSchema msmtp_schema = {
    .name = "de.marlam.msmtp.password",
    .flags = SECRET_SCHEMA_DONT_MATCH_NAME,
    .attributes = {{.name = "host", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = "service", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = "user", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = NULL, .type = 0}},
};

struct lookup {
	GMainLoop *loop;
	GCancellable *cancel;
	gchar *password;
	GError *error;
	bool done, timed_out;
};

/* lookup_done - the async lookup finished (or was cancelled) */
static void lookup_done(GObject *src, GAsyncResult *res, gpointer data)
{
	struct lookup *l = data;
	l->password = secret_password_lookup_finish(res, &l->error);
	l->done = true;
	g_main_loop_quit(l->loop);
}

/* lookup_timeout - give up on a Secret Service that does not answer */
static gboolean lookup_timeout(gpointer data)
{
	struct lookup *l = data;
	l->timed_out = true;
	g_cancellable_cancel(l->cancel);
	return G_SOURCE_REMOVE;
}

/* keyring_lookup - one schema; the password (secret_password_free) or
 * NULL with why filled */
static gchar *keyring_lookup(bool compat, const char *user, char *why, size_t whylen)
{
	struct lookup l = {.loop = g_main_loop_new(NULL, FALSE), .cancel = g_cancellable_new()};
	guint t = g_timeout_add(KEYRING_TIMEOUT_MS, lookup_timeout, &l);
	if (compat)
		secret_password_lookup(SECRET_SCHEMA_COMPAT_NETWORK, l.cancel, lookup_done, &l,
		                       "user", user, "server", "localhost", "protocol", "smtp",
		                       NULL);
	else
		secret_password_lookup(&msmtp_schema, l.cancel, lookup_done, &l, "host",
		                       "localhost", "service", "smtp", "user", user, NULL);
	while (!l.done)
		g_main_loop_run(l.loop);
	if (!l.timed_out)
		g_source_remove(t);
	if (l.timed_out)
		snprintf(why, whylen, "the Secret Service did not answer within %d s",
		         KEYRING_TIMEOUT_MS / 1000);
	else if (l.error)
		snprintf(why, whylen, "%s", l.error->message);
	else if (!l.password)
		snprintf(why, whylen, "not found, or the keyring is locked");
	if (l.error)
		g_error_free(l.error);
	g_object_unref(l.cancel);
	g_main_loop_unref(l.loop);
	return l.password;
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
	char why[256];
	gchar *pw = keyring_lookup(false, user, why, sizeof(why));
	if (!pw && !strstr(why, "did not answer"))
		pw = keyring_lookup(true, user, why, sizeof(why));
	if (pw) {
		int rc = store(s, user, pw, strlen(pw), err, errlen);
		secret_password_free(pw);
		return rc;
	}
	if (isatty(STDIN_FILENO))
		return prompt(s, user, err, errlen);
	snprintf(err, errlen,
	         "--auth=%s: no password in the keyring (schema de.marlam.msmtp.password, "
	         "host=localhost "
	         "service=smtp user=%s): %s; store one with secret-tool, or use --auth=%s,EVAL",
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
