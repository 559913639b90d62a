/*
 * deliver_pipe.h - hand a message to a command, msmtpd-compatible
 *
 * The command string is split into argv once at start-up
 * (cmd_template_parse). Quoting rules, as in a POSIX shell without
 * expansions: words split at blanks; '...' is literal; "..." is literal
 * except \" \\ \$ \`; a backslash outside quotes escapes the next
 * character. A template that uses shell syntax (unquoted | & ; < > ( )
 * $ ` or a newline) is run as /bin/sh -c 'TEMPLATE "$@"' with %F
 * replaced by "$SMTPIPE_SENDER", so client data still never becomes
 * shell text. The first %F becomes the envelope sender (MAILER-DAEMON
 * for <>); every recipient is appended as one argument. The command is
 * spawned directly with the spool on stdin; its stdout and stderr go to
 * the log. Exit status mapping (DESIGN.md): 0 -> 250; 68, 69, 71, 75 ->
 * 451; other -> 554; killed by a signal or over the time limit -> 451.
 */
#ifndef SMTPIPE_DELIVER_PIPE_H
#define SMTPIPE_DELIVER_PIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver.h"

struct spool;

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
/* deliver_map_status - fill r->code/text from a waitpid() status */
void deliver_map_status(int wstatus, bool timed_out, struct delivery_result *r);
/* deliver_pipe_run - spawn, feed, wait at most timeout seconds, map */
void deliver_pipe_run(const struct cmd_template *t, const struct delivery *d, struct spool *sp,
                      unsigned timeout, struct delivery_result *r);

#endif
