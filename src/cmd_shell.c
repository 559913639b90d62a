/*
 * cmd_shell.c - read a shell template as sh would, and make it safe
 *
 * The template is scanned as a POSIX shell lexer would (quote state,
 * backslashes, comments, operators, $(...), `...`, ${...}, subshells)
 * and turned into a fixed script: each %F becomes an expansion of
 * SMTPIPE_SENDER quoted for its context, and " \"$@\"" is appended.
 * Whatever the scan cannot prove to keep client bytes out of the
 * shell's parser, or to make "$@" the last simple command's arguments,
 * is refused with one line saying how to write it (cmd_shell.h,
 * smtpipe(8)).
 */
#include "cmd_shell.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What %F becomes in a shell script: one word in every context where it
 * is substituted, MAILER-DAEMON for the null sender (msmtpd). */
#define SENDER_EXPANSION "${SMTPIPE_SENDER:-MAILER-DAEMON}"
#define SENDER_UNQUOTED  "\"" SENDER_EXPANSION "\""
#define SENDER_IN_SINGLE "'\"" SENDER_EXPANSION "\"'"

/* cmd_buf_add - see cmd_shell.h */
void cmd_buf_add(struct cmd_buf *b, const char *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* cmd_buf_str - see cmd_shell.h */
void cmd_buf_str(struct cmd_buf *b, const char *s)
{
	cmd_buf_add(b, s, strlen(s));
}

/* The shell scan. One struct lex per template; "inner" scans (the text
 * of a $(...)) share it and only copy, since %F is refused there. */
struct lex {
	const char *s;
	size_t i;
	struct cmd_buf out;
	char *err;
	size_t errlen;
	bool failed;
};

/* refuse - fill err once; the scan stops at the first reason */
static int refuse(struct lex *x, const char *why, const char *how)
{
	if (!x->failed)
		snprintf(x->err, x->errlen, "--command refused: %s; %s" CMD_SEE_MANUAL, why, how);
	x->failed = true;
	return -1;
}

/* at - the byte k past the current one (0 past the end) */
static char at(const struct lex *x, size_t k)
{
	for (size_t j = 0; j < k; j++)
		if (!x->s[x->i + j])
			return '\0';
	return x->s[x->i + k];
}

/* copy - move n bytes of the template into the script */
static void copy(struct lex *x, size_t n)
{
	cmd_buf_add(&x->out, x->s + x->i, n);
	x->i += n;
}

/* is_percent_f - the scan is at a %F */
static bool is_percent_f(const struct lex *x)
{
	return at(x, 0) == '%' && at(x, 1) == 'F';
}

/* What the scan of one word found. */
struct word {
	size_t start, end; /* its text in the template */
	bool sender;       /* it holds client data: %F, $SMTPIPE_SENDER, $1, $@ */
	bool quoted;       /* it holds quotes, escapes or expansions */
};

static int scan_list(struct lex *x, bool inner);

/* client_param - the scan is at a '$' that expands client data: the
 * sender ($SMTPIPE_SENDER), the AUTH user ($SMTPIPE_AUTH_USER: any name
 * under --auth-accept-any) or recipients ($1..$9, $@, $*), bare or in
 * ${...}. They are as much client data as %F, and get its rules. */
static bool client_param(const struct lex *x)
{
	static const char *const names[] = {"SMTPIPE_SENDER", "SMTPIPE_AUTH_USER"};
	const char *p = x->s + x->i + 1;
	if (*p == '{')
		p++;
	if ((*p >= '1' && *p <= '9') || *p == '@' || *p == '*')
		return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		if (strncmp(p, names[i], n) == 0 &&
		    !(p[n] == '_' || (p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') ||
		      (p[n] >= '0' && p[n] <= '9')))
			return true;
	}
	return false;
}

/* scan_backquote - `...`: copied; %F and quotes inside are refused (the
 * quoting rules there differ between shells) */
static int scan_backquote(struct lex *x)
{
	copy(x, 1);
	for (;;) {
		char c = at(x, 0);
		if (!c)
			return refuse(x, "an unterminated `...`", "close it");
		if (is_percent_f(x))
			return refuse(x, "%F inside `...` would be parsed by the shell",
			              "give the sender as an argument, e.g. -f %F");
		if (c == '\'' || c == '"')
			return refuse(x, "quotes inside `...` are not checked",
			              "use $(...) instead");
		if (c == '$' && client_param(x))
			return refuse(
			    x, "the sender or recipients ($SMTPIPE_SENDER, $1, $@) inside `...`",
			    "give them as arguments of a command");
		if (c == '\\') {
			if (!at(x, 1))
				return refuse(x, "the template ends with a backslash",
				              "remove it or quote it");
			copy(x, 2);
			continue;
		}
		copy(x, 1);
		if (c == '`')
			return 0;
	}
}

/* scan_dollar - $ and what follows it; w is the word it is in, inside
 * "..." when quoted, inside $(...) when inner */
static int scan_dollar(struct lex *x, struct word *w, bool quoted, bool inner)
{
	char c = at(x, 1);
	w->quoted = true;
	if (client_param(x)) {
		if (inner)
			return refuse(x,
			              "the sender or recipients ($SMTPIPE_SENDER, $1, $@) inside "
			              "$(...)",
			              "give them as arguments of a command");
		if (!quoted)
			return refuse(x,
			              "an unquoted $SMTPIPE_SENDER, $1 or $@ would be split into "
			              "words and globbed",
			              "quote it: \"$SMTPIPE_SENDER\", \"$@\"");
		w->sender = true; /* copied below, as any parameter */
	}
	if (c == '(') {
		copy(x, 2);
		size_t open = x->i;
		if (scan_list(x, true) < 0)
			return -1;
		if (at(x, 0) != ')') {
			x->i = open;
			return refuse(x, "an unterminated $(...)", "close it");
		}
		copy(x, 1);
		return 0;
	}
	if (c == '{') {
		copy(x, 2);
		for (;;) {
			char d = at(x, 0);
			if (is_percent_f(x))
				return refuse(x, "%F inside ${...} would be parsed by the shell",
				              "write %F as a word of its own, e.g. -f %F");
			if (!d)
				return refuse(x, "an unterminated ${...}", "close it");
			if (strchr("'\"`\\${\n", d))
				return refuse(
				    x,
				    "quotes, escapes or expansions inside ${...} are not checked",
				    "keep ${...} to a name and a plain word");
			copy(x, 1);
			if (d == '}')
				return 0;
		}
	}
	if (c == '\'' || c == '"')
		return refuse(
		    x, "$'...' and $\"...\" are not POSIX and are quoted differently by bash",
		    "use '...' or \"...\"");
	if (c == '%' && at(x, 2) == 'F')
		return refuse(x, "%F right after '$' would not be the sender",
		              "put a blank or a quote between them");
	copy(x, 1); /* $name, $1, $@, $$...: copied by the caller */
	return 0;
}

/* sender_here - replace the %F at the scan in quote context q ('\0',
 * '\'', '"') by the expansion that stays one word there */
static int sender_here(struct lex *x, struct word *w, bool inner, char q)
{
	if (inner)
		return refuse(x, "%F inside $(...) would be parsed by the shell",
		              "give the sender as an argument, e.g. -f %F");
	cmd_buf_str(&x->out, q == '\''  ? SENDER_IN_SINGLE
	                     : q == '"' ? SENDER_EXPANSION
	                                : SENDER_UNQUOTED);
	x->i += 2;
	w->sender = true;
	return 0;
}

/* scan_word - one word: quotes, escapes, expansions, each %F */
static int scan_word(struct lex *x, struct word *w, bool inner)
{
	memset(w, 0, sizeof(*w));
	w->start = x->i;
	for (;;) {
		char c = at(x, 0);
		if (!c || strchr(" \t\n;&|<>()", c))
			break;
		if (is_percent_f(x)) {
			if (sender_here(x, w, inner, '\0') < 0)
				return -1;
		} else if (c == '\\') {
			w->quoted = true;
			if (!at(x, 1))
				return refuse(x, "the template ends with a backslash",
				              "remove it or quote it");
			if (at(x, 1) == '%' && at(x, 2) == 'F')
				return refuse(x, "%F after a backslash", "write %F without one");
			copy(x, 2);
		} else if (c == '\'') {
			w->quoted = true;
			copy(x, 1);
			for (;;) {
				if (!at(x, 0))
					return refuse(x, "an unterminated '...'",
					              "close the quote");
				if (is_percent_f(x)) {
					if (sender_here(x, w, inner, '\'') < 0)
						return -1;
					continue;
				}
				bool end = at(x, 0) == '\'';
				copy(x, 1);
				if (end)
					break;
			}
		} else if (c == '"') {
			w->quoted = true;
			copy(x, 1);
			for (;;) {
				char d = at(x, 0);
				if (!d)
					return refuse(x, "an unterminated \"...\"",
					              "close the quote");
				if (is_percent_f(x)) {
					if (sender_here(x, w, inner, '"') < 0)
						return -1;
				} else if (d == '\\') {
					if (!at(x, 1))
						return refuse(x, "an unterminated \"...\"",
						              "close the quote");
					if (at(x, 1) == '%' && at(x, 2) == 'F')
						return refuse(x, "%F after a backslash",
						              "write %F without one");
					copy(x, 2);
				} else if (d == '`') {
					if (scan_backquote(x) < 0)
						return -1;
				} else if (d == '$') {
					if (scan_dollar(x, w, true, inner) < 0)
						return -1;
				} else {
					copy(x, 1);
					if (d == '"')
						break;
				}
			}
		} else if (c == '`') {
			w->quoted = true;
			if (scan_backquote(x) < 0)
				return -1;
		} else if (c == '$') {
			if (scan_dollar(x, w, false, inner) < 0)
				return -1;
		} else {
			copy(x, 1);
		}
	}
	w->end = x->i;
	return 0;
}

/* word_is - the word is exactly the unquoted text s */
static bool word_is(const struct lex *x, const struct word *w, const char *s)
{
	size_t n = strlen(s);
	return !w->quoted && w->end - w->start == n && memcmp(x->s + w->start, s, n) == 0;
}

/* word_in - the word is one of list (NULL-terminated) */
static bool word_in(const struct lex *x, const struct word *w, const char *const *list)
{
	for (; *list; list++)
		if (word_is(x, w, *list))
			return true;
	return false;
}

/* is_assignment - NAME=... at the start of the word, unquoted */
static bool is_assignment(const struct lex *x, const struct word *w)
{
	const char *p = x->s + w->start;
	if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
		return false;
	while (*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
	       (*p >= '0' && *p <= '9'))
		p++;
	return *p == '=' && (size_t)(p - x->s) < w->end;
}

/* Words that start compound commands (POSIX, bash, ksh): the end of
 * such a command is not where "$@" can go, so none is accepted. */
static const char *const reserved[] = {"if",       "then",   "else",   "elif",  "fi",    "do",
                                       "done",     "case",   "esac",   "while", "until", "for",
                                       "in",       "{",      "}",      "!",     "[[",    "]]",
                                       "function", "select", "coproc", "time",  NULL};
/* Commands that parse their arguments as shell code or evaluate them
 * arithmetically (bash): %F or "$@" there would be code. */
static const char *const evaluators[] = {"eval", ".",       "source",  "trap",  "alias",
                                         "let",  "declare", "typeset", "local", NULL};
/* Builtins that put the message (client data, on stdin) into shell
 * variables, whose later use the scan cannot follow. */
static const char *const readers[] = {"read", "mapfile", "readarray", NULL};
/* Commands that run their arguments: the first word after their
 * options is the program, so it must not be %F, nor "$@" (the end). */
static const char *const runners[] = {"exec", "command", "builtin", NULL};
/* Builtins that set the shell's variables, options, limits or
 * directory from their arguments: a client must not choose those. */
static const char *const setters[] = {"cd",    "pushd", "export",  "readonly", "set",    "unset",
                                      "shift", "read",  "getopts", "umask",    "ulimit", NULL};

/* The state of the simple command being scanned at one level. */
struct cmd_state {
	bool start;      /* nothing of the current command seen yet */
	bool word;       /* its command word was seen */
	bool runner;     /* that word is one of runners[] */
	bool program;    /* a runner's program word was seen */
	bool option_arg; /* the runner's last word was -a, whose value comes next */
	bool setter;     /* the command word is one of setters[] */
	size_t args;     /* words after the command word */
	bool redirect;   /* a redirection operator waits for its word */
	bool closed;     /* the last thing was a subshell's ')' */
	int depth;       /* open subshells */
	const char *op;  /* the last operator, while start is true */
	bool comment;    /* the text ended inside a comment */
};

/* operator_at - the control or redirection operator at the scan, or NULL */
static const char *operator_at(const struct lex *x)
{
	static const char *const ops[] = {"&&", "||", ";;", ";&", "|&", "&>", "<<",
	                                  ">>", "<&", ">&", "<>", ">|", ";",  "&",
	                                  "|",  "<",  ">",  "\n", NULL};
	for (const char *const *o = ops; *o; o++)
		if (strncmp(x->s + x->i, *o, strlen(*o)) == 0)
			return *o;
	return NULL;
}

/* scan_operator - one operator at this level */
static int scan_operator(struct lex *x, struct cmd_state *c, const char *op)
{
	if (!strcmp(op, ";;") || !strcmp(op, ";&"))
		return refuse(x, "';;' belongs to case, a compound command",
		              "put compound commands in a script and call it");
	if (!strcmp(op, "|&") || !strcmp(op, "&>"))
		return refuse(x, "'|&' and '&>' are bash's, and sh reads them otherwise",
		              "write 2>&1 |, or >FILE 2>&1");
	if (!strncmp(op, "<<", 2))
		return refuse(x, "a here-document is not checked",
		              "put it in a script, or feed the command from a file");
	if (c->redirect)
		return refuse(x, "a redirection operator without its file", "name the file");
	bool redirect = op[0] == '<' || op[0] == '>';
	if (redirect) {
		copy(x, strlen(op));
		c->redirect = true;
		c->start = false;
		return 0;
	}
	if (c->start && op[0] != '\n')
		return refuse(x, "an operator with no command before it", "remove it");
	copy(x, strlen(op));
	*c = (struct cmd_state){.start = true, .depth = c->depth, .op = op};
	return 0;
}

/* scan_command_word - the word in command position */
static int scan_command_word(struct lex *x, struct cmd_state *c, const struct word *w)
{
	char quoted[64];
	if (w->sender)
		return refuse(x,
		              "the sender (%F) or a recipient names the program, so a client "
		              "would choose what runs",
		              "name the program yourself and pass %F as an argument");
	if (word_in(x, w, reserved)) {
		snprintf(quoted, sizeof(quoted), "'%.*s' starts a compound command",
		         (int)(w->end - w->start), x->s + w->start);
		return refuse(x, quoted,
		              "compound commands (if, while, for, case, {...}, !) are refused: put "
		              "them in a script and call it");
	}
	if (word_in(x, w, evaluators)) {
		snprintf(quoted, sizeof(quoted), "'%.*s' parses its arguments as shell code",
		         (int)(w->end - w->start), x->s + w->start);
		return refuse(x, quoted, "eval and its kin are refused: call a script instead");
	}
	if (word_in(x, w, readers)) {
		snprintf(quoted, sizeof(quoted), "'%.*s' puts the message into shell variables",
		         (int)(w->end - w->start), x->s + w->start);
		return refuse(x, quoted, "give the message to a program on its standard input");
	}
	c->word = true;
	c->runner = word_in(x, w, runners);
	c->setter = word_in(x, w, setters);
	return 0;
}

/* scan_list - a list of commands at one level: the whole template, or
 * the text of a $(...) when inner (it returns at the unmatched ')') */
static int scan_list(struct lex *x, bool inner)
{
	struct cmd_state c = {.start = true, .op = NULL};
	for (;;) {
		char ch = at(x, 0);
		if (!ch)
			break;
		c.comment = false;
		if (ch == ' ' || ch == '\t') {
			copy(x, 1);
			continue;
		}
		if (ch == '\\' && at(x, 1) == '\n') { /* a line continuation */
			copy(x, 2);
			continue;
		}
		if (ch == '#') { /* a comment: up to the newline, copied as it is */
			while (at(x, 0) && at(x, 0) != '\n')
				copy(x, 1);
			c.comment = true;
			continue;
		}
		if (ch == '(') {
			if (at(x, 1) == '(')
				return refuse(x, "'((' is bash's arithmetic command",
				              "use $((...)) in a word");
			if (!c.start || c.redirect)
				return refuse(x, "'(' after a word (a function or bash's <(...))",
				              "put it in a script and call it");
			copy(x, 1);
			c.depth++;
			c.op = "(";
			continue;
		}
		if (ch == ')') {
			if (c.depth == 0 && inner)
				break;
			if (c.depth == 0)
				return refuse(x, "a ')' without its '('", "remove it");
			if (c.redirect ||
			    (c.start && c.op && strchr("(|&", c.op[0]) && strcmp(c.op, "&")))
				return refuse(x, "a ')' with no command before it", "remove it");
			copy(x, 1);
			int depth = c.depth - 1;
			c = (struct cmd_state){.closed = true, .depth = depth};
			continue;
		}
		const char *op = operator_at(x);
		if (op) {
			if (scan_operator(x, &c, op) < 0)
				return -1;
			continue;
		}
		struct word w;
		if (scan_word(x, &w, inner) < 0)
			return -1;
		char next = at(x, 0);
		bool digits = w.end > w.start && !w.quoted &&
		              strspn(x->s + w.start, "0123456789") == w.end - w.start;
		if (c.redirect) {
			if (w.sender)
				return refuse(x,
				              "the sender (%F) or a recipient names the file of a "
				              "redirection, so a client would choose the path",
				              "write to a file you name");
			c.redirect = false;
		} else if ((next == '<' || next == '>') && digits) {
			/* an IO number such as the 2 of 2>FILE: not a word */
		} else if ((next == '<' || next == '>') && x->s[w.start] == '{') {
			return refuse(x, "bash's {NAME}> redirections are not POSIX",
			              "use a descriptor number");
		} else if (c.closed) {
			return refuse(x, "a word after a subshell's ')'",
			              "end the subshell's command first");
		} else if (!c.word && is_assignment(x, &w)) {
			if (w.sender) /* NAME=value before the command word */
				return refuse(
				    x,
				    "the sender (%F) or a recipient as a variable's value "
				    "(NAME=%F) would let a client set PATH, IFS or LD_PRELOAD",
				    "give it as an argument of a command");
		} else if (!c.word) {
			if (scan_command_word(x, &c, &w) < 0)
				return -1;
		} else {
			if (w.sender && c.setter)
				return refuse(
				    x,
				    "the sender (%F) or a recipient as an argument of cd, "
				    "export, set, read and kin would let a client set the "
				    "shell's variables or directory",
				    "give it as an argument of another command");
			if (c.runner && !c.program) {
				/* bash's exec -a NAME: NAME is not the program */
				bool option = x->s[w.start] == '-' || c.option_arg;
				c.option_arg = word_is(x, &w, "-a");
				if (w.sender)
					return refuse(
					    x,
					    "the sender (%F) or a recipient names the program, so "
					    "a client would choose what runs",
					    "name the program yourself and pass %F as an "
					    "argument");
				c.program = !option;
			}
			c.args++;
		}
		c.start = false;
	}
	if (inner)
		return 0;
	/* The end of the template: "$@" goes here, so this must be the end
	 * of a simple command's words. */
	if (c.depth > 0)
		return refuse(x, "an unterminated '('", "close it");
	if (c.comment)
		return refuse(x,
		              "the template ends in a comment, which would swallow the recipients",
		              "remove the comment");
	if (c.redirect)
		return refuse(x,
		              "the template ends with a redirection operator, whose file would be "
		              "a recipient",
		              "name the file");
	if (c.start && c.op && c.op[0] == '\n')
		return refuse(x,
		              "the template ends with a newline, so the recipients would be a "
		              "command",
		              "remove the newline");
	if (c.start && c.op) {
		char why[96];
		snprintf(why, sizeof(why),
		         "the template ends with '%s', so the recipients would be a "
		         "command",
		         c.op);
		return refuse(x, why, "end it with the command that takes the recipients, or ': '");
	}
	if (c.closed)
		return refuse(x,
		              "the template ends with a subshell's ')', where no argument can go",
		              "end it with the command that takes the recipients");
	if (!c.word)
		return refuse(x,
		              "the template's last command has no command word, so the recipients "
		              "would be the command",
		              "end it with the command that takes the recipients");
	if (c.runner && !c.program)
		return refuse(x,
		              "the template ends with a command that runs its arguments, so the "
		              "recipients would be the command",
		              "name the program that takes the recipients");
	return 0;
}

/* cmd_shell_script - see cmd_shell.h */
char *cmd_shell_script(const char *cmd, char *err, size_t errlen)
{
	struct lex x = {.s = cmd, .err = err, .errlen = errlen};
	if (scan_list(&x, false) < 0 || x.out.oom) {
		if (!x.failed)
			snprintf(err, errlen, "out of memory");
		free(x.out.s);
		return NULL;
	}
	cmd_buf_str(&x.out, " \"$@\"");
	if (x.out.oom) {
		snprintf(err, errlen, "out of memory");
		free(x.out.s);
		return NULL;
	}
	return x.out.s;
}
