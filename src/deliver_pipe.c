/*
 * deliver_pipe.c - pipe a message to a command, without a shell
 *
 * The template is split once at start-up. Each message spawns the
 * command through child.c (its own process group, descriptors 0-2
 * only) with the spool on stdin and one pipe for stdout and stderr,
 * which go to the log, bounded. Past the deadline, or when it fails,
 * the whole process group is killed; after exit 0 the processes it
 * left in the background are left alone. The result is
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
#include "child.h"
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

/* sender_env - the children's environment plus SMTPIPE_SENDER, for
 * shell templates; *var is the string to free with it */
static char **sender_env(const char *sender, char **var)
{
	size_t l = strlen(sender) + 16;
	*var = malloc(l);
	if (!*var)
		return NULL;
	snprintf(*var, l, "SMTPIPE_SENDER=%s", sender);
	char **env = child_env(*var);
	if (!env) {
		free(*var);
		*var = NULL;
	}
	return env;
}

/* deliver_pipe_run - see deliver_pipe.h */
void deliver_pipe_run(const struct cmd_template *t, const struct delivery *d, struct spool *sp,
                      unsigned timeout, struct delivery_result *r)
{
	memset(r, 0, sizeof(*r));
	r->exit_status = -1;
	char **argv = cmd_template_expand(t, d->sender, d->rcpts, d->nrcpt);
	char *var = NULL;
	char **env = t->shell ? sender_env(d->sender[0] ? d->sender : "MAILER-DAEMON", &var)
	                      : child_env(NULL);
	int in = spool_input_fd(sp);
	int out[2] = {-1, -1};
	pid_t pid = -1;
	if (argv && env && in >= 0 && pipe2(out, O_CLOEXEC) == 0) {
		struct child_spec cs = {
		    .argv = argv, .envp = env, .search_path = true, .fd = {in, out[1], out[1]}};
		pid = child_spawn(&cs);
	}
	int err = errno;
	if (out[1] >= 0)
		close(out[1]);
	if (pid < 0) {
		log_msg(LOG_ERR, "event=command-error command=\"%s\" error=\"%s\"",
		        argv ? argv[0] : "?", strerror(err));
		r->code = 451;
		snprintf(r->text, sizeof(r->text), "4.3.0 Cannot run delivery command");
	} else {
		struct child_log o = {.event = "command-output"};
		struct child_stream st = {.fd = out[0], .feed = child_log_feed, .arg = &o};
		bool timed_out;
		long long deadline = child_now_ms() + (long long)timeout * 1000;
		int status = child_wait(pid, false, &st, 1, deadline, &timed_out);
		child_log_end(&o);
		deliver_map_status(status, timed_out, r);
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
	free(env);
	free(var);
	cmd_argv_free(argv);
}
