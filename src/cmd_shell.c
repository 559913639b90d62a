/*
 * cmd_shell.c - read a shell template as sh would, and make it safe
 *
 * The template is scanned as a POSIX shell lexer would (quote state,
 * backslashes, comments, operators, ${...}, subshells) and turned into
 * a fixed script: each %F becomes an expansion of SMTPIPE_SENDER quoted
 * for its context, and " \"$@\"" is appended. Each simple command's
 * command word must be a plain word before it is compared with the
 * builtins: an allow-list of word shapes, then a table of builtins,
 * since quoting or an expansion can hide any name from a list.
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

/* The shell scan, one struct lex per template. Nothing is scanned
 * inside $(...) or `...`: they are refused wherever they are. */
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

/* name_char - a character of a shell variable's name */
static bool name_char(char c)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9');
}

/* What the scan of one word found. */
struct word {
	size_t start, end; /* its text in the template */
	bool sender;       /* it holds client data: %F, $SMTPIPE_*, $1, $@, $_ */
	bool quoted;       /* it holds quotes, escapes or expansions */
};

/* Why $(...) and `...` are refused everywhere, quoted or not. */
#define SUBST_WHY                                                                                  \
	"could read the message on its standard input or the client's values in the "              \
	"environment, and its output is split into words"
#define SUBST_HOW "put it in a script and call the script with %F and the recipients as arguments"

/* client_param - the scan is at a '$' that expands client data: every
 * $SMTPIPE_* (the sender, the AUTH user: any name under
 * --auth-accept-any, and what later versions add), the recipients
 * ($1..$9, $@, $*), and bash's $_ (the last argument of the previous
 * command, which may be one of those), bare or in ${...}. They are as
 * much client data as %F, and get its rules. */
static bool client_param(const struct lex *x)
{
	const char *p = x->s + x->i + 1;
	size_t n = 0;
	if (*p == '{')
		p++;
	if ((*p >= '1' && *p <= '9') || *p == '@' || *p == '*')
		return true;
	while (name_char(p[n]))
		n++;
	return (n == 1 && p[0] == '_') || (n >= 8 && strncmp(p, "SMTPIPE_", 8) == 0);
}

/* scan_braces - ${...}: a name, then at most one of the operators
 * :- - := = :+ + :? ? # ## % %% and a plain word. Anything else may
 * evaluate arithmetic in bash (${X:0:1}, ${a[i]}) or follow a name
 * (${!X}), which could be a client's value: refused. */
static int scan_braces(struct lex *x)
{
	static const char *const why =
	    "${...} beyond a name and one of :- - := = :+ + :? ? # ## % %% with a plain word "
	    "(substrings, subscripts and ${!...} evaluate a variable's value)";
	copy(x, 2);
	if (at(x, 0) == '#' && at(x, 1) != '}')
		copy(x, 1); /* ${#name}: the length */
	if (name_char(at(x, 0))) {
		while (name_char(at(x, 0)))
			copy(x, 1);
	} else if (at(x, 0) && strchr("@*#?-$!0", at(x, 0)) && at(x, 0) != '!') {
		copy(x, 1);
	} else {
		return refuse(x, why, "keep ${...} to a name and a plain word");
	}
	char op = at(x, 0);
	if (op == '}') {
		copy(x, 1);
		return 0;
	}
	if (op == ':' && at(x, 1) && strchr("-=?+", at(x, 1)))
		copy(x, 2);
	else if (op && strchr("-=?+", op))
		copy(x, 1);
	else if ((op == '#' || op == '%'))
		copy(x, at(x, 1) == op ? 2 : 1);
	else
		return refuse(x, why, "keep ${...} to a name and a plain word");
	for (;;) {
		char d = at(x, 0);
		if (is_percent_f(x))
			return refuse(x, "%F inside ${...} would be parsed by the shell",
			              "write %F as a word of its own, e.g. -f %F");
		if (!d)
			return refuse(x, "an unterminated ${...}", "close it");
		if (strchr("'\"`\\${\n", d))
			return refuse(x,
			              "quotes, escapes or expansions inside ${...} are not checked",
			              "keep ${...} to a name and a plain word");
		copy(x, 1);
		if (d == '}')
			return 0;
	}
}

/* scan_dollar - $ and what follows it; w is the word it is in, inside
 * "..." when quoted */
static int scan_dollar(struct lex *x, struct word *w, bool quoted)
{
	char c = at(x, 1);
	w->quoted = true;
	if (client_param(x)) {
		if (!quoted)
			return refuse(
			    x,
			    "an unquoted $SMTPIPE_SENDER (or any $SMTPIPE_*), $1, $@ or $_ "
			    "would be split into words and globbed",
			    "quote it: \"$SMTPIPE_SENDER\", \"$@\"");
		w->sender = true; /* copied below, as any parameter */
	}
	if (c == '(' && at(x, 2) == '(')
		return refuse(x,
		              "$((...)) is arithmetic, which evaluates variables' values as code "
		              "in bash",
		              "compute it in a script");
	if (c == '(')
		return refuse(x, "$(...) " SUBST_WHY, SUBST_HOW);
	if (c == '[')
		return refuse(x, "bash's $[...] is arithmetic, which evaluates variables' values",
		              "compute it in a script");
	if (c == '{')
		return scan_braces(x);
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
static void sender_here(struct lex *x, struct word *w, char q)
{
	cmd_buf_str(&x->out, q == '\''  ? SENDER_IN_SINGLE
	                     : q == '"' ? SENDER_EXPANSION
	                                : SENDER_UNQUOTED);
	x->i += 2;
	w->sender = true;
}

/* scan_word - one word: quotes, escapes, expansions, each %F */
static int scan_word(struct lex *x, struct word *w)
{
	memset(w, 0, sizeof(*w));
	w->start = x->i;
	for (;;) {
		char c = at(x, 0);
		if (!c || strchr(" \t\n;&|<>()", c))
			break;
		if (is_percent_f(x)) {
			sender_here(x, w, '\0');
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
					sender_here(x, w, '\'');
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
					sender_here(x, w, '"');
				} else if (d == '\\') {
					if (!at(x, 1))
						return refuse(x, "an unterminated \"...\"",
						              "close the quote");
					if (at(x, 1) == '%' && at(x, 2) == 'F')
						return refuse(x, "%F after a backslash",
						              "write %F without one");
					copy(x, 2);
				} else if (d == '`') {
					return refuse(x, "`...` " SUBST_WHY, SUBST_HOW);
				} else if (d == '$') {
					if (scan_dollar(x, w, true) < 0)
						return -1;
				} else {
					copy(x, 1);
					if (d == '"')
						break;
				}
			}
		} else if (c == '`') {
			return refuse(x, "`...` " SUBST_WHY, SUBST_HOW);
		} else if (c == '$') {
			if (scan_dollar(x, w, false) < 0)
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

/* plain_word - a command word that means only its own letters: no
 * quotes, escapes, expansions or globs, so that no value and no file
 * decides what it becomes, and no builtin hides behind quoting. Letters,
 * digits and _ . / + , : @ -, not starting with '-'; "[" alone (test);
 * and a leading ~ or ~user before a '/': the administrator's HOME or the
 * password database, never split or globbed, and with the '/' a path,
 * which a shell never looks up as a builtin. */
static bool plain_word(const struct lex *x, const struct word *w)
{
	const char *p = x->s + w->start;
	size_t n = w->end - w->start, i = 0;
	if (w->quoted || w->sender || n == 0)
		return false;
	if (n == 1 && p[0] == '[')
		return true;
	if (p[0] == '-')
		return false;
	if (p[0] == '~') {
		for (i = 1; i < n && (name_char(p[i]) || p[i] == '.' || p[i] == '-'); i++)
			;
		if (i == n || p[i] != '/')
			return false;
	}
	for (; i < n; i++)
		if (!name_char(p[i]) && !strchr("./+,:@-", p[i]))
			return false;
	return true;
}

/* is_assignment - NAME=... at the start of the word, unquoted */
static bool is_assignment(const struct lex *x, const struct word *w)
{
	const char *p = x->s + w->start;
	if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
		return false;
	while (name_char(*p))
		p++;
	return *p == '=' && (size_t)(p - x->s) < w->end;
}

/* may_start_with_dash - the word's value could begin with '-' (an
 * option): after any quotes and backslashes it starts with '-' or with
 * an expansion */
static bool may_start_with_dash(const struct lex *x, const struct word *w)
{
	const char *p = x->s + w->start, *end = x->s + w->end;
	while (p < end && (*p == '\'' || *p == '"' || *p == '\\'))
		p++;
	return w->sender || (p < end && (*p == '-' || *p == '$'));
}

/* Words that start compound commands (POSIX, bash, ksh, zsh): the end
 * of such a command is not where "$@" can go, so none is accepted. */
static const char *const reserved[] = {
    "if",       "then",   "else",   "elif", "fi",     "do",      "done",      "case",   "esac",
    "while",    "until",  "for",    "in",   "{",      "}",       "!",         "[[",     "]]",
    "function", "select", "coproc", "time", "repeat", "foreach", "nocorrect", "noglob", NULL};

/* What a plain command word is, for the rules of its arguments. */
enum cw_kind {
	CW_FREE,    /* a program, or a builtin that only prints or tests nothing */
	CW_ARGS,    /* a builtin that acts on the shell or on what its arguments
	             * name: only the administrator's words as arguments, and not
	             * the last command (the recipients would be its arguments) */
	CW_PRINTF,  /* the format first, which cannot be an option (bash's -v) */
	CW_EXEC,    /* looked through: its first argument is the command word */
	CW_REFUSED, /* never in a template */
};

/* The builtins of bash, dash, busybox ash, ksh and zsh that are not
 * CW_FREE. A name not listed is a program (or a builtin that only
 * prints: :, true, false, echo, pwd, type, times, jobs...). */
static const struct builtin {
	const char *name;
	enum cw_kind kind;
	const char *why; /* for CW_REFUSED */
} builtins[] = {
    {"eval", CW_REFUSED, "parses its arguments as shell code"},
    {".", CW_REFUSED, "parses its arguments as shell code"},
    {"source", CW_REFUSED, "parses its arguments as shell code"},
    {"trap", CW_REFUSED, "parses its arguments as shell code"},
    {"fc", CW_REFUSED, "runs earlier commands again as shell code"},
    {"hist", CW_REFUSED, "runs earlier commands again as shell code"},
    {"r", CW_REFUSED, "runs earlier commands again as shell code (ksh)"},
    {"compgen", CW_REFUSED, "expands and runs its arguments"},
    {"complete", CW_REFUSED, "expands and runs its arguments"},
    {"compopt", CW_REFUSED, "changes how words are completed"},
    {"bind", CW_REFUSED, "binds shell code to keys"},
    {"history", CW_REFUSED, "reads and writes files its arguments name (history -w)"},
    {"sched", CW_REFUSED, "runs its arguments later as shell code (zsh)"},
    {"zcompile", CW_REFUSED, "writes files its arguments name (zsh)"},
    {"let", CW_REFUSED, "evaluates its arguments as arithmetic, which runs code in bash"},
    {"declare", CW_REFUSED, "sets variables and evaluates their subscripts"},
    {"typeset", CW_REFUSED, "sets variables and evaluates their subscripts"},
    {"local", CW_REFUSED, "sets variables and evaluates their subscripts"},
    {"readonly", CW_REFUSED, "sets variables and evaluates their subscripts"},
    {"integer", CW_REFUSED, "sets variables and evaluates their subscripts"},
    {"float", CW_REFUSED, "sets variables and evaluates their subscripts"},
    {"nameref", CW_REFUSED, "sets variables and evaluates their subscripts"},
    {"alias", CW_REFUSED, "changes how the shell reads later words"},
    {"unalias", CW_REFUSED, "changes how the shell reads later words"},
    {"shopt", CW_REFUSED, "changes how the shell reads later words"},
    {"setopt", CW_REFUSED, "changes how the shell reads later words"},
    {"unsetopt", CW_REFUSED, "changes how the shell reads later words"},
    {"emulate", CW_REFUSED, "changes how the shell reads later words"},
    {"set", CW_REFUSED,
     "changes the recipients (\"$@\") or how the shell reads later words (set -k)"},
    {"shift", CW_REFUSED, "drops recipients from \"$@\""},
    {"hash", CW_REFUSED, "changes where the shell finds later commands (hash -p)"},
    {"enable", CW_REFUSED, "changes which builtins there are, or loads code (enable -f)"},
    {"disable", CW_REFUSED, "changes which builtins there are"},
    {"zmodload", CW_REFUSED, "loads code"},
    {"autoload", CW_REFUSED, "defines functions from files"},
    {"functions", CW_REFUSED, "defines functions"},
    {"command", CW_REFUSED,
     "runs a builtin or a program named by its arguments, which the scan does not follow"},
    {"builtin", CW_REFUSED,
     "runs a builtin named by its arguments, which the scan does not follow"},
    {"redirect", CW_REFUSED, "is ksh's 'command exec'"},
    {"read", CW_REFUSED, "puts the message into shell variables"},
    {"mapfile", CW_REFUSED, "puts the message into shell variables"},
    {"readarray", CW_REFUSED, "puts the message into shell variables"},
    {"vared", CW_REFUSED, "puts the message into shell variables"},
    {"getopts", CW_REFUSED, "puts the recipients into shell variables"},
    {"cd", CW_ARGS, NULL},
    {"chdir", CW_ARGS, NULL},
    {"pushd", CW_ARGS, NULL},
    {"popd", CW_ARGS, NULL},
    {"export", CW_ARGS, NULL},
    {"unset", CW_ARGS, NULL},
    {"umask", CW_ARGS, NULL},
    {"ulimit", CW_ARGS, NULL},
    {"exit", CW_ARGS, NULL},
    {"return", CW_ARGS, NULL},
    {"break", CW_ARGS, NULL},
    {"continue", CW_ARGS, NULL},
    {"kill", CW_ARGS, NULL},
    {"wait", CW_ARGS, NULL},
    {"test", CW_ARGS, NULL},
    {"[", CW_ARGS, NULL},
    {"printf", CW_PRINTF, NULL},
    {"exec", CW_EXEC, NULL},
};

/* The state of the simple command being scanned at one level. */
struct cmd_state {
	bool start;        /* nothing of the current command seen yet */
	bool word;         /* its command word was seen */
	enum cw_kind kind; /* what that word is */
	char name[16];     /* its text, for messages (builtins only) */
	bool exec_open;    /* exec's program word is next */
	bool printf_open;  /* printf's format is next */
	bool redirect;     /* a redirection operator waits for its word */
	bool closed;       /* the last thing was a subshell's ')' */
	int depth;         /* open subshells */
	const char *op;    /* the last operator, while start is true */
	bool comment;      /* the text ended inside a comment */
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

/* scan_command_word - the word in command position (or exec's program):
 * a plain word, then the builtins' rules */
static int scan_command_word(struct lex *x, struct cmd_state *c, const struct word *w)
{
	char why[256], shown[40];
	size_t n = w->end - w->start;
	if (w->sender)
		return refuse(x,
		              "the sender (%F) or a recipient names the program, so a client "
		              "would choose what runs",
		              "name the program yourself and pass %F as an argument");
	if (word_in(x, w, reserved)) {
		snprintf(why, sizeof(why), "'%.*s' starts a compound command", (int)n,
		         x->s + w->start);
		return refuse(x, why,
		              "compound commands (if, while, for, case, {...}, !) are refused: put "
		              "them in a script and call it");
	}
	if (!plain_word(x, w)) {
		/* shown on one line: a continuation's newline becomes '?' */
		size_t k = n < sizeof(shown) - 1 ? n : sizeof(shown) - 1;
		for (size_t i = 0; i < k; i++) {
			char ch = x->s[w->start + i];
			shown[i] = ch < ' ' || ch == 0x7f ? '?' : ch;
		}
		shown[k] = '\0';
		snprintf(why, sizeof(why),
		         "the command word [%s] is not a plain word (quotes, backslashes, $, "
		         "globs), so the scan cannot tell which program or builtin it is",
		         shown);
		return refuse(x, why,
		              "write the program's name or path plainly (letters, digits, "
		              "_ . / + , : @ -)");
	}
	c->word = true;
	c->kind = CW_FREE;
	c->exec_open = c->printf_open = false;
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		if (!word_is(x, w, builtins[i].name))
			continue;
		if (builtins[i].kind == CW_REFUSED) {
			snprintf(why, sizeof(why), "'%s' %s", builtins[i].name, builtins[i].why);
			return refuse(x, why, "put it in a script and call the script");
		}
		c->kind = builtins[i].kind;
		snprintf(c->name, sizeof(c->name), "%s", builtins[i].name);
	}
	c->exec_open = c->kind == CW_EXEC;
	c->printf_open = c->kind == CW_PRINTF;
	return 0;
}

/* scan_argument - a word after the command word */
static int scan_argument(struct lex *x, struct cmd_state *c, const struct word *w)
{
	char why[256];
	if (c->exec_open) { /* exec PROGRAM ...: PROGRAM is the command word */
		const char *p = x->s + w->start;
		while (p < x->s + w->end && (*p == '\'' || *p == '"' || *p == '\\'))
			p++;
		if (p < x->s + w->end && *p == '-')
			return refuse(x,
			              "exec's options (bash's -a, -c, -l) are refused, as the scan "
			              "does not follow them",
			              "write exec PROGRAM ARGUMENTS...");
		return scan_command_word(x, c, w);
	}
	if (c->printf_open) {
		c->printf_open = false;
		if (may_start_with_dash(x, w))
			return refuse(
			    x,
			    "printf's first argument could be an option (bash's printf -v "
			    "sets a variable), or holds the sender or a recipient",
			    "write the format first, as your own word: printf '%s\\n' ...");
	}
	if (w->sender && c->kind == CW_ARGS) {
		snprintf(why, sizeof(why),
		         "the sender (%%F) or a recipient as an argument of '%s' would let a "
		         "client set the shell's state or choose what it acts on (cd, export, "
		         "unset, umask, ulimit, kill, test and kin take only your words)",
		         c->name);
		return refuse(x, why, "give it as an argument of another command");
	}
	return 0;
}

/* check_end - the end of the template: "$@" goes here, so this must be
 * the end of a simple command's words, and they must take the
 * recipients as arguments (c by value: the state scan_list ended in) */
static int check_end(struct lex *x, struct cmd_state c)
{
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
	if (c.exec_open)
		return refuse(x,
		              "the template ends with a command that runs its arguments, so the "
		              "recipients would be the command",
		              "name the program that takes the recipients");
	if (c.printf_open)
		return refuse(x,
		              "the template ends with printf and no format, so the first recipient "
		              "would be the format (or bash's -v)",
		              "give printf its format");
	if (c.kind == CW_ARGS) {
		char why[120];
		snprintf(why, sizeof(why),
		         "the template ends with '%s', so the recipients would be its arguments",
		         c.name);
		return refuse(x, why, "end it with the command that takes the recipients");
	}
	return 0;
}

/* scan_item - one word of a command: a redirection's file, an IO
 * number, an assignment, the command word or an argument */
static int scan_item(struct lex *x, struct cmd_state *c)
{
	struct word w;
	if (scan_word(x, &w) < 0)
		return -1;
	char next = at(x, 0);
	bool digits =
	    w.end > w.start && !w.quoted && strspn(x->s + w.start, "0123456789") == w.end - w.start;
	if (c->redirect) {
		if (w.sender)
			return refuse(x,
			              "the sender (%F) or a recipient names the file of a "
			              "redirection, so a client would choose the path",
			              "write to a file you name");
		c->redirect = false;
	} else if ((next == '<' || next == '>') && digits) {
		/* an IO number such as the 2 of 2>FILE: not a word */
	} else if ((next == '<' || next == '>') && x->s[w.start] == '{') {
		return refuse(x, "bash's {NAME}> redirections are not POSIX",
		              "use a descriptor number");
	} else if (c->closed) {
		return refuse(x, "a word after a subshell's ')'",
		              "end the subshell's command first");
	} else if (!c->word && is_assignment(x, &w)) {
		if (w.sender) /* NAME=value before the command word */
			return refuse(x,
			              "the sender (%F) or a recipient as a variable's value "
			              "(NAME=%F) would let a client set PATH, IFS or LD_PRELOAD",
			              "give it as an argument of a command");
	} else if (!c->word) {
		if (scan_command_word(x, c, &w) < 0)
			return -1;
	} else {
		if (scan_argument(x, c, &w) < 0)
			return -1;
	}
	return 0;
}

/* scan_list - the whole template, a list of commands */
static int scan_list(struct lex *x)
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
				              "compute it in a script");
			if (!c.start || c.redirect)
				return refuse(x, "'(' after a word (a function or bash's <(...))",
				              "put it in a script and call it");
			copy(x, 1);
			c.depth++;
			c.op = "(";
			continue;
		}
		if (ch == ')') {
			if (c.depth == 0)
				return refuse(x, "a ')' without its '('", "remove it");
			if (c.redirect ||
			    (c.start && c.op && strchr("(|&", c.op[0]) && strcmp(c.op, "&")))
				return refuse(x, "a ')' with no command before it", "remove it");
			if (c.exec_open)
				return refuse(x, "exec with no program before ')'",
				              "name the program");
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
		if (scan_item(x, &c) < 0)
			return -1;
		c.start = false;
	}
	return check_end(x, c);
}

/* cmd_shell_script - see cmd_shell.h */
char *cmd_shell_script(const char *cmd, char *err, size_t errlen)
{
	struct lex x = {.s = cmd, .err = err, .errlen = errlen};
	if (scan_list(&x) < 0 || x.out.oom) {
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
