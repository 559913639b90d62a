/*
 * deliver_pipe.c - pipe a message to a command, without a shell
 *
 * The template is split once at start-up. Each message spawns the
 * command directly (posix_spawn, its own process group) with the spool
 * on stdin and one pipe for stdout and stderr, which go to the log,
 * bounded. The wait is a poll() on a pidfd and that pipe until the
 * deadline; past it the whole process group is killed. The result is
 * mapped as DESIGN.md's delivery contract says, and a command that
 * exits 0 without reading all of stdin does not get a 250 (invariant 1).
 */
#include "deliver_pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "log.h"
#include "spool.h"

extern char **environ;

/* shell_char - characters that make a template shell syntax */
static bool shell_char(char c)
{
	return strchr("|&;<>()$`*?[#~\n", c) != NULL;
}

/* cmd_template_parse - see deliver_pipe.h */
int cmd_template_parse(struct cmd_template *t, const char *cmd, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	size_t cap = strlen(cmd) + 1, nwords = 0;
	char **argv = calloc(cap + 1, sizeof(*argv));
	char *word = malloc(cap);
	if (!argv || !word) {
		free(argv);
		free(word);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *p = cmd;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		size_t n = 0;
		while (*p && *p != ' ' && *p != '\t') {
			char c = *p++;
			if (c == '\'') {
				while (*p && *p != '\'')
					word[n++] = *p++;
				if (!*p++)
					goto unterminated;
			} else if (c == '"') {
				while (*p && *p != '"') {
					if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
						p++;
					word[n++] = *p++;
				}
				if (!*p++)
					goto unterminated;
			} else if (c == '\\') {
				if (!*p) {
					snprintf(err, errlen, "--command ends with a backslash");
					goto fail;
				}
				word[n++] = *p++;
			} else {
				if (shell_char(c))
					t->shell = true;
				word[n++] = c;
			}
		}
		argv[nwords] = strndup(word, n);
		if (!argv[nwords++]) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	free(word);
	if (nwords == 0) {
		snprintf(err, errlen, "--command is empty");
		cmd_argv_free(argv);
		return -1;
	}
	if (t->shell) { /* keep the text whole for /bin/sh -c */
		cmd_argv_free(argv);
		argv = calloc(2, sizeof(*argv));
		if (!argv || !(argv[0] = strdup(cmd))) {
			free(argv);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		nwords = 1;
	}
	t->argv = argv;
	t->argc = nwords;
	return 0;
unterminated:
	snprintf(err, errlen, "--command has an unterminated quote: %s", cmd);
fail:
	free(word);
	cmd_argv_free(argv);
	return -1;
}

/* cmd_template_free - see deliver_pipe.h */
void cmd_template_free(struct cmd_template *t)
{
	cmd_argv_free(t->argv);
	t->argv = NULL;
	t->argc = 0;
}

/* cmd_argv_free - free a NULL-terminated argv */
void cmd_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

/* replace_first - s with its first "%F" replaced by with (malloc'd) */
static char *replace_first(const char *s, const char *with, bool *done)
{
	const char *f = *done ? NULL : strstr(s, "%F");
	if (!f)
		return strdup(s);
	*done = true;
	size_t a = (size_t)(f - s), b = strlen(with), c = strlen(f + 2);
	char *r = malloc(a + b + c + 1);
	if (r) {
		memcpy(r, s, a);
		memcpy(r + a, with, b);
		memcpy(r + a + b, f + 2, c + 1);
	}
	return r;
}

/* cmd_template_expand - see deliver_pipe.h */
char **cmd_template_expand(const struct cmd_template *t, const char *sender,
                           const char *const *rcpts, size_t nrcpt)
{
	const char *from = sender[0] ? sender : "MAILER-DAEMON";
	size_t fixed = t->shell ? 4 : t->argc;
	char **argv = calloc(fixed + nrcpt + 1, sizeof(*argv));
	if (!argv)
		return NULL;
	bool done = false, ok = true;
	if (t->shell) {
		/* The sender reaches the shell as a variable, the recipients as
		 * positional parameters: client bytes are never shell text. */
		char *body = replace_first(t->argv[0], "\"$SMTPIPE_SENDER\"", &done);
		size_t n = body ? strlen(body) + 8 : 0;
		argv[0] = strdup("/bin/sh");
		argv[1] = strdup("-c");
		argv[2] = body ? malloc(n) : NULL;
		if (argv[2])
			snprintf(argv[2], n, "%s \"$@\"", body);
		free(body);
		argv[3] = strdup("smtpipe");
	} else {
		for (size_t i = 0; i < t->argc; i++)
			argv[i] = replace_first(t->argv[i], from, &done);
	}
	for (size_t i = 0; i < nrcpt; i++)
		argv[fixed + i] = strdup(rcpts[i]);
	for (size_t i = 0; i < fixed + nrcpt; i++)
		ok = ok && argv[i];
	if (!ok) {
		for (size_t i = 0; i < fixed + nrcpt; i++)
			free(argv[i]);
		free(argv);
		return NULL;
	}
	return argv;
}

/* deliver_map_status - DESIGN.md's delivery contract */
void deliver_map_status(int wstatus, bool timed_out, struct delivery_result *r)
{
	r->exit_status = -1;
	r->signal = 0;
	r->timed_out = timed_out;
	if (timed_out) {
		r->code = 451;
		snprintf(r->text, sizeof(r->text), "4.4.7 Delivery command timed out");
	} else if (WIFSIGNALED(wstatus)) {
		r->signal = WTERMSIG(wstatus);
		r->code = 451;
		snprintf(r->text, sizeof(r->text), "4.3.0 Delivery command killed by signal %d",
		         r->signal);
	} else {
		int st = WEXITSTATUS(wstatus);
		r->exit_status = st;
		if (st == 0) {
			r->code = 250;
			snprintf(r->text, sizeof(r->text), "2.0.0 Ok: delivered");
		} else if (st == 68 || st == 69 || st == 71 || st == 75) {
			/* EX_NOHOST, EX_UNAVAILABLE, EX_OSERR, EX_TEMPFAIL */
			r->code = 451;
			snprintf(r->text, sizeof(r->text),
			         "4.3.0 Temporary failure (delivery command exit %d)", st);
		} else {
			r->code = 554;
			snprintf(r->text, sizeof(r->text),
			         "5.3.0 Delivery command failed (exit %d)", st);
		}
	}
}

struct output {
	char line[512]; /* the line being gathered */
	size_t len;
	size_t logged;  /* bytes logged for this message */
	size_t dropped; /* bytes past BOUND_COMMAND_OUTPUT */
};

/* output_line - one line of command output into the log */
static void output_line(struct output *o)
{
	if (o->len == 0)
		return;
	char esc[2048];
	log_escape(esc, sizeof(esc), o->line, o->len);
	log_msg(LOG_NOTICE, "event=command-output text=\"%s\"", esc);
	o->len = 0;
}

/* output_feed - gather command output, bounded */
static void output_feed(struct output *o, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (o->logged >= BOUND_COMMAND_OUTPUT) {
			o->dropped += n - i;
			return;
		}
		o->logged++;
		if (p[i] == '\n' || o->len == sizeof(o->line))
			output_line(o);
		if (p[i] != '\n')
			o->line[o->len++] = p[i];
	}
}

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* spawn - start argv with stdin and stdout/stderr set; pid or -1 */
static pid_t spawn(char **argv, int in, int out, char **envp)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	pid_t pid = -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, out, 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                  POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_USEVFORK);
	int e = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return pid;
}

/* wait_child - drain output and wait for pid until the deadline;
 * returns the wait status, with *timed_out when it was killed */
static int wait_child(pid_t pid, int outfd, unsigned timeout, bool *timed_out, struct output *o)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	long long deadline = now_ms() + (long long)timeout * 1000;
	int status = 0;
	bool exited = false;
	*timed_out = false;
	while (!exited) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			*timed_out = true;
			kill(-pid, SIGKILL);
			break;
		}
		struct pollfd p[2] = {{.fd = outfd, .events = POLLIN},
		                      {.fd = pidfd, .events = POLLIN}};
		int wait_ms = pidfd < 0 && left > 50 ? 50 : (int)left; /* no pidfd: poll waitpid */
		int n = poll(p, 2, wait_ms);
		if (n < 0 && errno != EINTR)
			break;
		if (outfd >= 0 && (p[0].revents & (POLLIN | POLLHUP))) {
			char buf[4096];
			ssize_t r = read(outfd, buf, sizeof(buf));
			if (r > 0)
				output_feed(o, buf, (size_t)r);
			else if (r == 0)
				outfd = -1; /* every writer closed it */
		}
		if (pidfd < 0 || (p[1].revents & POLLIN))
			exited = waitpid(pid, &status, WNOHANG) == pid;
	}
	if (!exited)
		waitpid(pid, &status, 0);
	/* Anything the group left behind goes with it. */
	kill(-pid, SIGKILL);
	if (outfd >= 0) { /* the rest of the output, without waiting */
		char buf[4096];
		ssize_t r;
		fcntl(outfd, F_SETFL, O_NONBLOCK);
		while ((r = read(outfd, buf, sizeof(buf))) > 0)
			output_feed(o, buf, (size_t)r);
	}
	output_line(o);
	if (pidfd >= 0)
		close(pidfd);
	return status;
}

/* sender_env - environ plus SMTPIPE_SENDER for shell templates */
static char **sender_env(const char *sender)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "SMTPIPE_SENDER=", 15) != 0)
			env[k++] = environ[i];
	size_t l = strlen(sender) + 16;
	env[k] = malloc(l);
	if (!env[k]) {
		free(env);
		return NULL;
	}
	snprintf(env[k], l, "SMTPIPE_SENDER=%s", sender);
	return env;
}

/* deliver_pipe_run - see deliver_pipe.h */
void deliver_pipe_run(const struct cmd_template *t, const struct delivery *d, struct spool *sp,
                      unsigned timeout, struct delivery_result *r)
{
	memset(r, 0, sizeof(*r));
	r->exit_status = -1;
	char **argv = cmd_template_expand(t, d->sender, d->rcpts, d->nrcpt);
	char **env = t->shell ? sender_env(d->sender[0] ? d->sender : "MAILER-DAEMON") : environ;
	int in = spool_input_fd(sp);
	int out[2] = {-1, -1};
	pid_t pid = -1;
	if (argv && env && in >= 0 && pipe2(out, O_CLOEXEC) == 0)
		pid = spawn(argv, in, out[1], env);
	int err = errno;
	if (out[1] >= 0)
		close(out[1]);
	if (pid < 0) {
		char prog[1024];
		log_escape(prog, sizeof(prog), argv ? argv[0] : "?", strlen(argv ? argv[0] : "?"));
		log_msg(LOG_ERR, "event=command-error command=\"%s\" error=\"%s\"", prog,
		        strerror(err));
		r->code = 451;
		snprintf(r->text, sizeof(r->text), "4.3.0 Cannot run delivery command");
	} else {
		struct output o = {.len = 0};
		bool timed_out;
		int status = wait_child(pid, out[0], timeout, &timed_out, &o);
		deliver_map_status(status, timed_out, r);
		if (o.dropped)
			log_msg(LOG_NOTICE, "event=command-output dropped=%zu", o.dropped);
		size_t left = spool_unread(sp, in);
		if (r->code == 250 && left != 0 && left != (size_t)-1) {
			log_msg(LOG_WARNING, "event=command-short-read unread=%zu", left);
			r->code = 451;
			snprintf(r->text, sizeof(r->text),
			         "4.3.0 Delivery command did not read the whole message");
		}
		log_msg(LOG_DEBUG, "event=command-exit pid=%ld status=%d signal=%d", (long)pid,
		        r->exit_status, r->signal);
	}
	if (out[0] >= 0)
		close(out[0]);
	if (in >= 0)
		close(in);
	if (t->shell && env) {
		for (char **e = env; *e; e++)
			if (strncmp(*e, "SMTPIPE_SENDER=", 15) == 0)
				free(*e);
		free(env);
	}
	cmd_argv_free(argv);
}
