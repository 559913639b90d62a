/*
 * cmd_template.c - the delivery command template: read once at
 *                  start-up, expanded for each message
 *
 * A template without shell syntax is split into argv here; one with
 * shell syntax becomes a fixed script in cmd_shell.c. For each message
 * the argv gets the sender (direct templates) or the environment does
 * (shell templates), and the recipients are appended.
 */
#include "cmd_template.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"
#include "child.h"
#include "cmd_shell.h"

extern char **environ;

/* shell_char - characters that make a template shell syntax */
static bool shell_char(char c)
{
	return strchr("|&;<>()$`*?[#~\n", c) != NULL;
}

/* split_words - the words of a template without shell syntax, as
 * argv; sets *shell and returns NULL (no error) when it has shell
 * syntax */
static char **split_words(const char *cmd, bool *shell, size_t *argc, char *err, size_t errlen)
{
	size_t cap = strlen(cmd) + 1, nwords = 0;
	char **argv = calloc(cap + 1, sizeof(*argv));
	char *word = malloc(cap);
	*shell = false;
	if (!argv || !word) {
		free(argv);
		free(word);
		snprintf(err, errlen, "out of memory");
		return NULL;
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
					*shell = true;
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
		return NULL;
	}
	if (*shell) {
		cmd_argv_free(argv);
		return NULL;
	}
	*argc = nwords;
	return argv;
unterminated:
	snprintf(err, errlen, "--command has an unterminated quote: %s", cmd);
fail:
	free(word);
	cmd_argv_free(argv);
	return NULL;
}

/* cmd_template_parse - see cmd_template.h */
int cmd_template_parse(struct cmd_template *t, const char *cmd, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	bool shell;
	size_t argc = 0;
	char **argv = split_words(cmd, &shell, &argc, err, errlen);
	if (!argv && !shell)
		return -1;
	if (argv) {
		if (strstr(argv[0], "%F")) {
			snprintf(
			    err, errlen,
			    "--command refused: %%F names the program, so a client would choose "
			    "what runs; name the program yourself and pass %%F as an "
			    "argument" CMD_SEE_MANUAL);
			cmd_argv_free(argv);
			return -1;
		}
		t->argv = argv;
		t->argc = argc;
		return 0;
	}
	char *script = cmd_shell_script(cmd, err, errlen);
	argv = script ? calloc(2, sizeof(*argv)) : NULL;
	if (!argv) {
		if (script)
			snprintf(err, errlen, "out of memory");
		free(script);
		return -1;
	}
	argv[0] = script;
	t->argv = argv;
	t->argc = 1;
	t->shell = true;
	return 0;
}

/* single_quoted - s as one '...' shell word (the administrator's text,
 * never a client's) */
static void single_quoted(struct cmd_buf *b, const char *s)
{
	cmd_buf_str(b, "'");
	for (; *s; s++)
		if (*s == '\'')
			cmd_buf_str(b, "'\\''");
		else
			cmd_buf_add(b, s, 1);
	cmd_buf_str(b, "'");
}

/* cmd_template_run_in - see cmd_template.h. The command is started by
 * a small /bin/sh script that changes to dir first: the spawn itself
 * (deliver_pipe.c) stays the same for every template. A directory the
 * command's user cannot enter (--user) leaves it in "/", as before,
 * with sh's complaint in the log. */
int cmd_template_run_in(struct cmd_template *t, const char *dir, char *err, size_t errlen)
{
	if (!dir || !strcmp(dir, "/"))
		return 0;
	if (dir[0] != '/') {
		snprintf(err, errlen, "--command: the directory '%s' is not absolute", dir);
		return -1;
	}
	struct cmd_buf b = {0};
	cmd_buf_str(&b, "cd -- ");
	single_quoted(&b, dir);
	cmd_buf_str(&b, " || cd /\n");
	if (t->shell)
		cmd_buf_str(&b, t->argv[0]);
	if (b.oom) {
		free(b.s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (t->shell) {
		free(t->argv[0]);
		t->argv[0] = b.s;
	} else {
		free(t->dir);
		t->dir = b.s; /* the prefix of exec "$@" (cmd_template_expand) */
	}
	return 0;
}

/* cmd_template_free - see cmd_template.h */
void cmd_template_free(struct cmd_template *t)
{
	cmd_argv_free(t->argv);
	free(t->dir);
	memset(t, 0, sizeof(*t));
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

/* replace_all - s with every "%F" replaced by with (malloc'd) */
static char *replace_all(const char *s, const char *with)
{
	struct cmd_buf b = {0};
	const char *f;
	while ((f = strstr(s, "%F"))) {
		cmd_buf_add(&b, s, (size_t)(f - s));
		cmd_buf_str(&b, with);
		s = f + 2;
	}
	cmd_buf_str(&b, s);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* cmd_template_expand - see cmd_template.h */
char **cmd_template_expand(const struct cmd_template *t, const char *sender,
                           const char *const *rcpts, size_t nrcpt)
{
	const char *from = sender[0] ? sender : "MAILER-DAEMON";
	/* shell: /bin/sh -c SCRIPT smtpipe; with a directory: /bin/sh -c
	 * 'cd DIR && exec "$@"' smtpipe WORDS... */
	size_t head = t->shell || t->dir ? 4 : 0;
	size_t words = t->shell ? 0 : t->argc;
	size_t fixed = head + words;
	char **argv = calloc(fixed + nrcpt + 1, sizeof(*argv));
	if (!argv)
		return NULL;
	bool ok = true;
	if (head) {
		/* The sender reaches the shell in the environment, the
		 * recipients as positional parameters: never as shell text. */
		struct cmd_buf script = {0};
		if (t->shell) {
			cmd_buf_str(&script, t->argv[0]);
		} else {
			cmd_buf_str(&script, t->dir);
			cmd_buf_str(&script,
			            "command -v \"$1\" >/dev/null || exit 71\nexec \"$@\"");
		}
		argv[0] = strdup("/bin/sh");
		argv[1] = strdup("-c");
		argv[2] = script.oom ? NULL : script.s;
		if (script.oom)
			free(script.s);
		argv[3] = strdup("smtpipe");
	}
	for (size_t i = 0; i < words; i++)
		argv[head + i] = replace_all(t->argv[i], from);
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

/* cmd_template_env - see cmd_template.h. Every string lives in one
 * block that starts with SMTPIPE_SENDER=, which is how _free finds it */
char **cmd_template_env(const struct delivery *d)
{
	char uid[24] = "";
	if (d->client_uid >= 0)
		snprintf(uid, sizeof(uid), "%ld", d->client_uid);
	const char *val[] = {d->sender, d->client, d->listener, d->client_uid >= 0 ? uid : NULL,
	                     d->auth_user};
	static const char *const name[] = {"SMTPIPE_SENDER", "SMTPIPE_CLIENT", "SMTPIPE_LISTENER",
	                                   "SMTPIPE_CLIENT_UID", "SMTPIPE_AUTH_USER"};
	enum { N = sizeof(name) / sizeof(name[0]) };
	size_t l = 0;
	for (size_t i = 0; i < N; i++)
		l += strlen(name[i]) + 2 + (val[i] ? strlen(val[i]) : 0);
	char *block = malloc(l);
	if (!block)
		return NULL;
	const char *extra[N + 1];
	char *p = block;
	for (size_t i = 0; i < N; i++) {
		extra[i] = p; /* without a value: only the inherited NAME goes */
		p +=
		    (val[i] ? sprintf(p, "%s=%s", name[i], val[i]) : sprintf(p, "%s", name[i])) + 1;
	}
	extra[N] = NULL;
	/* no NOTIFY_SOCKET, LISTEN_*, nor any inherited SMTPIPE_ variable */
	char **env = child_env(extra);
	if (!env)
		free(block);
	return env;
}

/* cmd_template_env_free - free what cmd_template_env returned */
void cmd_template_env_free(char **env)
{
	if (!env)
		return;
	char *block = NULL; /* every other variable of ours points into it */
	for (char **e = env; *e && !block; e++)
		if (strncmp(*e, "SMTPIPE_SENDER=", 15) == 0)
			block = *e;
	free(block);
	free(env);
}

/* cmd_template_max_recipients - see cmd_template.h. Every size is an
 * upper bound: the template's expansion (each %F the longest sender,
 * the shell rewriting, the directory prefix), the environment with the
 * longest SMTPIPE_SENDER, a pointer for every string, and a page of
 * slack for the program's name and alignment. The kernel takes at most
 * 6 MiB (3/4 of _STK_LIM) whatever sysconf says. */
size_t cmd_template_max_recipients(const char *cmd)
{
	const size_t ptr = sizeof(char *), path = BOUND_PATH + 1;
	long argmax = sysconf(_SC_ARG_MAX);
	size_t limit = argmax > 0 ? (size_t)argmax : 131072;
	if (limit > 6 * 1024 * 1024)
		limit = 6 * 1024 * 1024;
	size_t len = strlen(cmd), senders = 0;
	for (const char *f = cmd; (f = strstr(f, "%F")); f += 2)
		senders++;
	size_t fixed = 2 * len + 2 + senders * (path + CMD_SHELL_SENDER_GROWTH) /* words */
	               + (len / 2 + 8) * ptr                                    /* their pointers */
	               + 4 * PATH_MAX + 64 /* sh -c, "$@", cd -- 'DIR' */
	               + PATH_MAX + 4096;  /* the program's name, slack */
	for (char **e = environ; *e; e++)
		fixed += strlen(*e) + 1 + ptr;
	fixed += sizeof("SMTPIPE_SENDER=") + path + ptr;
	/* SMTPIPE_CLIENT, _LISTENER, _CLIENT_UID and _AUTH_USER */
	fixed += 4 * (32 + ptr) + 64 + PATH_MAX + 24 + 256;
	if (fixed >= limit)
		return 0;
	return (limit - fixed) / (path + ptr);
}
