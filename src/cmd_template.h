/*
 * cmd_template.h - the delivery command template (msmtpd-compatible)
 *
 * The command string is read once at start-up (cmd_template_parse).
 * Every %F becomes the envelope sender (MAILER-DAEMON for <>, as msmtpd
 * says); every recipient is appended as one more argument; the sender as
 * given (empty for <>) is in the environment as SMTPIPE_SENDER.
 *
 * Without shell syntax (no unquoted | & ; < > ( ) $ ` * ? [ # ~ or
 * newline) the string is split into argv as a POSIX shell would split
 * it without expansions: words at blanks; '...' literal; "..." literal
 * except \" \\ \$ \`; elsewhere a backslash escapes the next character.
 * The command is spawned directly.
 *
 * With shell syntax it runs as /bin/sh -c 'SCRIPT "$@"' smtpipe
 * RECIPIENTS..., where SCRIPT is the template with each %F rewritten for
 * its quote context to an expansion of ${SMTPIPE_SENDER:-MAILER-DAEMON}
 * that stays one word: client bytes reach the shell only as positional
 * parameters and an environment value. The template is scanned as a
 * POSIX shell lexer would, and start-up refuses every template for which
 * that cannot be guaranteed, or where "$@" would not be the arguments of
 * its last simple command (cmd_shell.h lists them), as msmtpd appends
 * the recipients to the command line.
 *
 * A %F naming the program is refused in both kinds of template.
 *
 * Errors: cmd_template_parse and cmd_template_run_in fill err with one
 * line that says what is wrong and how to write it instead.
 */
#ifndef SMTPIPE_CMD_TEMPLATE_H
#define SMTPIPE_CMD_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver.h"

struct cmd_template {
	char **argv; /* NULL-terminated words; for a shell template, its script */
	size_t argc;
	bool shell; /* run through /bin/sh -c (template uses shell syntax) */
	char *dir;  /* run the command in this directory (NULL: inherited) */
};

/* cmd_template_parse - read cmd once; -1 with err filled when it is
 * empty, its quotes do not close, or it is refused (see above) */
int cmd_template_parse(struct cmd_template *t, const char *cmd, char *err, size_t errlen);
/* cmd_template_run_in - run every command in dir (the start-up
 * directory of a daemon that moves to /), so that relative words of the
 * template mean what they meant at start-up; -1 with err filled */
int cmd_template_run_in(struct cmd_template *t, const char *dir, char *err, size_t errlen);
void cmd_template_free(struct cmd_template *t);
/* cmd_template_expand - argv for one message (malloc'd, NULL-terminated,
 * free with cmd_argv_free); sender "" becomes MAILER-DAEMON */
char **cmd_template_expand(const struct cmd_template *t, const char *sender,
                           const char *const *rcpts, size_t nrcpt);
void cmd_argv_free(char **argv);
/* cmd_template_env - environ plus SMTPIPE_SENDER (d->sender, "" for
 * <>) and d's SMTPIPE_CLIENT, SMTPIPE_LISTENER, SMTPIPE_CLIENT_UID and
 * SMTPIPE_AUTH_USER (each left out when d has none); whatever environ
 * held under these names is never passed on (malloc'd; free with
 * cmd_template_env_free) */
char **cmd_template_env(const struct delivery *d);
void cmd_template_env_free(char **env);
/* cmd_template_max_recipients - the most recipients whose longest
 * addresses (BOUND_PATH) still fit one execve() of cmd with the current
 * environment, within sysconf(_SC_ARG_MAX) */
size_t cmd_template_max_recipients(const char *cmd);

#endif
