/*
 * cmd_shell.h - a delivery command template with shell syntax, made safe
 *
 * cmd_shell_script reads the template as a POSIX shell lexer would and
 * returns the script that /bin/sh -c runs with the recipients as
 * positional parameters: every %F rewritten, for its quote context, to
 * an expansion of ${SMTPIPE_SENDER:-MAILER-DAEMON} that stays one word
 * (bare: in double quotes; in "...": bare; in '...': the quote closed
 * and reopened around it), and " \"$@\"" appended, which makes the
 * recipients arguments of the last simple command.
 *
 * Every $SMTPIPE_* variable, $1..$9, $@, $* and bash's $_ (bare or in
 * ${...}) are client data as %F is, and get its rules; unquoted, they
 * are refused too.
 *
 * The command word of every simple command (and exec's program) must
 * be a plain word: letters, digits and _ . / + , : @ -, not starting
 * with '-', or "[", or a ~/ path; no quotes, escapes or expansions, so
 * that no quoting hides a builtin and no value chooses the program.
 * Only then is it looked up in the table of builtins: those that
 * evaluate code, store client data or the message in variables, change
 * "$@" or how later words are read or found (eval, ., trap, command,
 * builtin, set, shift, hash, read, getopts, declare...) are refused;
 * cd, export, unset, umask, ulimit, kill, wait, exit, test and [ take
 * only the administrator's words and cannot be the last command;
 * printf's format cannot be an option (bash's -v); exec's options are
 * refused and its program is held to the command-word rule.
 *
 * Refused, with one line in err saying why and how to write it:
 * $(...) and `...` anywhere (they could read the message or the
 * environment), $((...)), $[...], ${...} beyond a name, an operator and
 * a plain word; %F inside ${...}, after '$' or a backslash, naming the
 * program, a redirection's file or a variable's value; here-documents;
 * compound commands and '!', time, functions; bash's $'...', |&, &>,
 * {fd}>, ((; and every template whose end is not the end of a simple
 * command's words (a trailing operator or newline, a comment, a
 * redirection operator, a subshell's ')', a command with no command
 * word, exec with no program).
 */
#ifndef SMTPIPE_CMD_SHELL_H
#define SMTPIPE_CMD_SHELL_H

#include <stdbool.h>
#include <stddef.h>

/* Where a refused template is explained. */
#define CMD_SEE_MANUAL " (see smtpipe(8), DELIVERY)"
/* The most bytes one %F of a template becomes in the script. */
#define CMD_SHELL_SENDER_GROWTH sizeof("'\"${SMTPIPE_SENDER:-MAILER-DAEMON}\"'")

/* A growing string; oom is set, and the string kept, if malloc fails. */
struct cmd_buf {
	char *s;
	size_t len, cap;
	bool oom;
};

/* cmd_buf_add - append n bytes */
void cmd_buf_add(struct cmd_buf *b, const char *p, size_t n);
/* cmd_buf_str - append a string */
void cmd_buf_str(struct cmd_buf *b, const char *s);
/* cmd_shell_script - the script for /bin/sh -c (malloc'd), or NULL with
 * err filled */
char *cmd_shell_script(const char *cmd, char *err, size_t errlen);

#endif
