/*
 * cmd_template.c - the delivery command template: split once at
 *                  start-up, expanded for each message
 *
 * See cmd_template.h for the quoting rules and the contract.
 */
#include "cmd_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* cmd_template_env - see cmd_template.h */
char **cmd_template_env(const char *sender)
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

/* cmd_template_env_free - free what cmd_template_env returned */
void cmd_template_env_free(char **env)
{
	if (!env)
		return;
	for (char **e = env; *e; e++)
		if (strncmp(*e, "SMTPIPE_SENDER=", 15) == 0)
			free(*e);
	free(env);
}
