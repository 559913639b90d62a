/*
 * cmd_template.h - the delivery command template (msmtpd-compatible)
 *
 * The command string is split into argv once at start-up
 * (cmd_template_parse). Quoting rules, as in a POSIX shell without
 * expansions: words split at blanks; '...' is literal; "..." is literal
 * except \" \\ \$ \`; a backslash outside quotes escapes the next
 * character. A template that uses shell syntax (unquoted | & ; < > ( )
 * $ ` or a newline) is run as /bin/sh -c 'TEMPLATE "$@"' with %F
 * replaced by "$SMTPIPE_SENDER", so client data still never becomes
 * shell text. The first %F becomes the envelope sender (MAILER-DAEMON
 * for <>); every recipient is appended as one argument.
 */
#ifndef SMTPIPE_CMD_TEMPLATE_H
#define SMTPIPE_CMD_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

struct cmd_template {
	char **argv; /* NULL-terminated words of the template */
	size_t argc;
	bool shell; /* run through /bin/sh -c (template uses shell syntax) */
};

/* cmd_template_parse - split cmd once; -1 with err filled when it is
 * empty or its quotes do not close */
int cmd_template_parse(struct cmd_template *t, const char *cmd, char *err, size_t errlen);
void cmd_template_free(struct cmd_template *t);
/* cmd_template_expand - argv for one message (malloc'd, NULL-terminated,
 * free with cmd_argv_free); sender "" becomes MAILER-DAEMON */
char **cmd_template_expand(const struct cmd_template *t, const char *sender,
                           const char *const *rcpts, size_t nrcpt);
void cmd_argv_free(char **argv);
/* cmd_template_env - environ plus SMTPIPE_SENDER=sender (malloc'd;
 * free with cmd_template_env_free) */
char **cmd_template_env(const char *sender);
void cmd_template_env_free(char **env);

#endif
