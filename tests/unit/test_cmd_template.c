/*
 * test_cmd_template.c - shell templates: what each %F becomes, which
 *                       templates start-up refuses, and a property test
 *                       that runs random templates through /bin/sh
 *
 * The property (DESIGN.md invariant 4): for every template that
 * cmd_template_parse accepts, the command run for real gets exactly the
 * contract's argv (the sender where each %F was, each recipient as one
 * more argument, byte for byte), whatever the sender and recipients
 * hold; a canary file that a hostile address tries to create never
 * appears. Templates the generator knows to be unsafe must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_template.h"

static void test_scripts(void **state)
{
	static const struct {
		const char *cmd, *script;
	} cases[] = {
	    {"cat >/dev/null; msmtp -f %F --",
	     "cat >/dev/null; msmtp -f \"${SMTPIPE_SENDER:-MAILER-DAEMON}\" -- \"$@\""},
	    {"msmtp -f \"%F\" -- 2>>err",
	     "msmtp -f \"${SMTPIPE_SENDER:-MAILER-DAEMON}\" -- 2>>err \"$@\""},
	    {"msmtp -f '<%F>' -- 2>>err",
	     "msmtp -f '<'\"${SMTPIPE_SENDER:-MAILER-DAEMON}\"'>' -- 2>>err \"$@\""},
	    {"x=1 cmd %F%F >/dev/null",
	     "x=1 cmd "
	     "\"${SMTPIPE_SENDER:-MAILER-DAEMON}\"\"${SMTPIPE_SENDER:-MAILER-DAEMON}\" "
	     ">/dev/null \"$@\""},
	    {"cat # a %F $(comment)\nsend ${HOME} ${X:-y} -- 2>&1 ",
	     "cat # a %F $(comment)\nsend ${HOME} ${X:-y} -- 2>&1  \"$@\""},
	    {"umask 077; cd /srv && export X=1 && /usr/bin/msmtp -f %F -- 2>&1",
	     "umask 077; cd /srv && export X=1 && /usr/bin/msmtp -f "
	     "\"${SMTPIPE_SENDER:-MAILER-DAEMON}\" -- 2>&1 \"$@\""},
	    {"[ -r /etc/x ] && printf '%s\\n' \"$SMTPIPE_AUTH_USER\" %F; ~/bin/d x",
	     "[ -r /etc/x ] && printf '%s\\n' \"$SMTPIPE_AUTH_USER\" "
	     "\"${SMTPIPE_SENDER:-MAILER-DAEMON}\"; ~/bin/d x \"$@\""},
	    {"exec 3>/dev/null; cat >/dev/null; exec true",
	     "exec 3>/dev/null; cat >/dev/null; exec true \"$@\""},
	    {"(cd /tmp && cat) | tee x >/dev/null", "(cd /tmp && cat) | tee x >/dev/null \"$@\""},
	    {"exec msmtp -f %F -- 2>/dev/null",
	     "exec msmtp -f \"${SMTPIPE_SENDER:-MAILER-DAEMON}\" -- 2>/dev/null \"$@\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cmd_template t;
		char err[512];
		if (cmd_template_parse(&t, cases[i].cmd, err, sizeof(err)) < 0)
			fail_msg("'%s': refused: %s", cases[i].cmd, err);
		if (!t.shell || strcmp(t.argv[0], cases[i].script))
			fail_msg("'%s': got script '%s', want '%s'", cases[i].cmd, t.argv[0],
			         cases[i].script);
		cmd_template_free(&t);
	}
}

static void test_refused(void **state)
{
	static const struct {
		const char *cmd, *why;
	} cases[] = {
	    {"cat;", "ends with ';'"},
	    {"cat &", "ends with '&'"},
	    {"cat|", "ends with '|'"},
	    {"cat &&", "ends with '&&'"},
	    {"cat ||", "ends with '||'"},
	    {"cat\n", "ends with a newline"},
	    {"cat # c", "ends in a comment"},
	    {"cat 2>", "redirection operator"},
	    {"X=1 >/dev/null", "no command word"},
	    {"cat; X=1", "no command word"},
	    {"X=%F cat >x", "variable's value"},
	    {"cat; PATH=%F", "variable's value"},
	    {"export X=%F; cat >x", "cd, export"},
	    {"cd %F && cat >x", "cd, export"},
	    {"exec %F >x", "names the program"},
	    {"exec -a x %F >x", "exec's options"},
	    {"command -p %F >x", "'command'"},
	    {"cat; exec -a x", "exec's options"},
	    {"time %F >x", "compound"},
	    {"read -r l; cat >x", "puts the message into shell variables"},
	    {"a $SMTPIPE_SENDER >x", "unquoted"},
	    {"a ${1} >x", "unquoted"},
	    {"a $@ >x", "unquoted"},
	    {"\"$SMTPIPE_SENDER\" >x", "names the program"},
	    {"X=\"$1\" cat >x", "variable's value"},
	    {"cat >\"$1\"; :", "file of a redirection"},
	    {"a \"$(echo \"$SMTPIPE_SENDER\")\" >x", "$(...)"},
	    {"a `echo $1` >x", "`...`"},
	    {"(cat)", "subshell"},
	    {"(cat) >x", "subshell"},
	    {"(cat", "unterminated '('"},
	    {"cat)", "without its '('"},
	    {"cat; exec", "runs its arguments"},
	    {"a \"$(echo %F)\" >x", "$(...)"},
	    {"a $(echo '%F') >x", "$(...)"},
	    {"a `echo %F` >x", "`...`"},
	    {"a ${X:-%F} >x", "%F inside ${"},
	    {"a ${X:-'y'} >x", "inside ${...}"},
	    {"a $%F >x", "right after '$'"},
	    {"a \"$%F\" >x", "right after '$'"},
	    {"a \\%F >x", "after a backslash"},
	    {"a \"\\%F\" >x", "after a backslash"},
	    {"a $'x' >x", "not POSIX"},
	    {"cat <<E\nx\nE\n", "here-document"},
	    {"cat <<-E\nx\nE\n", "here-document"},
	    {"if true; then cat; fi", "compound"},
	    {"{ cat; }", "compound"},
	    {"! cat >x", "compound"},
	    {"while :; do cat; done", "compound"},
	    {"f() { cat; }; f", "'(' after a word"},
	    {"cat <(echo) >x", "'(' after a word"},
	    {"((1)); cat >x", "arithmetic"},
	    {"%F -x >/dev/null", "names the program"},
	    {"a=1 \"%F\" >/dev/null", "names the program"},
	    {"%F -x", "names the program"}, /* no shell syntax: the direct path */
	    {"cat >%F; :", "file of a redirection"},
	    {"cat 2>>'/var/%F'; :", "file of a redirection"},
	    {"eval cat >/dev/null", "eval"},
	    {". ./x; cat", "'.'"},
	    {"cat |& cat", "bash's"},
	    {"cat &>x", "bash's"},
	    {"cat {fd}>x", "{NAME}>"},
	    {"a `echo \"x\"` >x", "`...`"},
	    {"a 'b >x", "unterminated quote"},
	    {"a $(b >x", "$(...)"},
	    {"a > b \\", "backslash"},
	    {"; cat", "no command before"},
	    {"cat ;; cat", "case"},
	    /* the command word of every simple command is a plain word, and
	     * only then is it compared with the builtins (red team, round 2) */
	    {"cat >/dev/null; 'eval'", "not a plain word"},
	    {"cat >/dev/null; \"eval\"", "not a plain word"},
	    {"cat >/dev/null; \\eval", "not a plain word"},
	    {"cat >/dev/null; e\"\"val", "not a plain word"},
	    {"cat >/dev/null; ev\\\nal", "not a plain word"},
	    {"cat >/dev/null; X=eval; $X", "not a plain word"},
	    {"cat >/dev/null; ${X:-eval}", "not a plain word"},
	    {"cat >/dev/null; $(printf eval)", "$(...)"},
	    {"cat >/dev/null; command eval", "'command'"},
	    {"cat >/dev/null; command -p eval", "'command'"},
	    {"'eval' %F; cat >/dev/null", "not a plain word"},
	    {"command eval %F; cat >/dev/null", "'command'"},
	    {"builtin eval %F; cat >/dev/null", "'builtin'"},
	    {"true; \"exec\" x", "not a plain word"},
	    {"\\exec x; cat >x", "not a plain word"},
	    {"'command' x; cat >x", "not a plain word"},
	    {"'.' ./x; cat >x", "not a plain word"},
	    {"'trap' %F EXIT; cat >x", "not a plain word"},
	    {"'cd' %F; cat >x", "not a plain word"},
	    {"'export' \"X=$1\"; cat >x", "not a plain word"},
	    {"'read' X; cat >x", "not a plain word"},
	    {"'alias' x=%F; cat >x", "not a plain word"},
	    {"command cd %F; cat >x", "'command'"},
	    {"command export X=%F; cat >x", "'command'"},
	    {"exec 'eval' x >y", "not a plain word"},
	    {"exec $P x", "not a plain word"},
	    {"ca* x >y", "not a plain word"},
	    {"ca? x >y", "not a plain word"},
	    {"~ >y", "not a plain word"},
	    {"-x y >z", "not a plain word"},
	    {"%x y >z", "not a plain word"},
	    /* a command word that can expand to nothing */
	    {"cat >/dev/null; $DELIVER_HOOK", "not a plain word"},
	    {"cat >/dev/null; $(true)", "$(...)"},
	    {"cat >/dev/null; `true`", "`...`"},
	    /* command substitution anywhere: it could read the message */
	    {"rec.sh -f %F $(sed -n p) -- 2>/dev/null; :", "$(...)"},
	    {"rec.sh -f %F \"$(cat)\" -- >x", "$(...)"},
	    {"rec.sh `cat` >x", "`...`"},
	    {"X=$(cat) rec.sh >x", "$(...)"},
	    {"rec.sh $((1+1)) >x", "arithmetic"},
	    {"rec.sh $[1+1] >x", "arithmetic"},
	    {"rec.sh ${X:0:1} >x", "${...}"},
	    {"rec.sh ${a[1]} >x", "${...}"},
	    {"rec.sh ${!X} >x", "${...}"},
	    /* every $SMTPIPE_* and bash's $_ are client data, as %F is */
	    {"rec.sh $SMTPIPE_AUTH_USER >x", "unquoted"},
	    {"rec.sh ${SMTPIPE_X} >x", "unquoted"},
	    {"\"$SMTPIPE_AUTH_USER\" >x", "names the program"},
	    {"X=\"$SMTPIPE_AUTH_USER\" rec.sh >x", "variable's value"},
	    {"rec.sh >\"$SMTPIPE_AUTH_USER\"; :", "file of a redirection"},
	    {"true \"$1\"; rec.sh $_ >x", "unquoted"},
	    /* builtins that evaluate, store client data, or change how the
	     * shell reads and finds later commands */
	    {"hash -p /tmp/x cat; cat >x", "'hash'"},
	    {"enable -n echo; echo >x", "'enable'"},
	    {"fc -s; cat >x", "'fc'"},
	    {"shopt -s expand_aliases; cat >x", "'shopt'"},
	    {"set -k; cat >x", "'set'"},
	    {"shift; cat >x", "'shift'"},
	    {"getopts a X; cat >x", "'getopts'"},
	    {"unalias -a; cat >x", "'unalias'"},
	    {"readonly X; cat >x", "'readonly'"},
	    {"compgen -W x; cat >x", "'compgen'"},
	    {"history -w %F; cat >x", "'history'"},
	    {"mapfile X; cat >x", "'mapfile'"},
	    {"printf -v X %s %F; cat >x", "printf"},
	    {"printf %F x; cat >x", "printf"},
	    {"printf \"-v\" X x; cat >x", "printf"},
	    {"cat >x; printf", "printf"},
	    {"test -v \"$1\"; cat >x", "'test'"},
	    {"[ -v \"$1\" ]; cat >x", "'['"},
	    {"unset \"$1\"; cat >x", "'unset'"},
	    {"kill %F; cat >x", "'kill'"},
	    {"ulimit -t %F; cat >x", "'ulimit'"},
	    {"cat >x; cd", "recipients would be its arguments"},
	    {"cat >x; kill", "recipients would be its arguments"},
	    {"cat >x; [", "recipients would be its arguments"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cmd_template t;
		char err[512] = "";
		if (cmd_template_parse(&t, cases[i].cmd, err, sizeof(err)) == 0) {
			char *got = strdup(t.argv[0]);
			cmd_template_free(&t);
			fail_msg("'%s': accepted as '%s', want refused (%s)", cases[i].cmd, got,
			         cases[i].why);
		}
		if (!strstr(err, cases[i].why) || !strstr(err, "--command") || strchr(err, '\n'))
			fail_msg("'%s': got error '%s', want one line with '%s'", cases[i].cmd, err,
			         cases[i].why);
	}
}

static void test_run_in(void **state)
{
	struct cmd_template t;
	char err[256];
	assert_int_equal(cmd_template_parse(&t, "cat >out; :", err, sizeof(err)), 0);
	assert_int_equal(cmd_template_run_in(&t, "/srv/it's", err, sizeof(err)), 0);
	assert_string_equal(t.argv[0], "cd -- '/srv/it'\\''s' || cd /\ncat >out; : \"$@\"");
	cmd_template_free(&t);
	assert_int_equal(cmd_template_parse(&t, "sh run.sh -f %F --", err, sizeof(err)), 0);
	assert_int_equal(cmd_template_run_in(&t, "/srv", err, sizeof(err)), 0);
	const char *rcpts[] = {"r@x"};
	char **argv = cmd_template_expand(&t, "", rcpts, 1);
	const char *want[] = {
	    "/bin/sh",
	    "-c",
	    "cd -- '/srv' || cd /\ncommand -v \"$1\" >/dev/null || exit 71\nexec \"$@\"",
	    "smtpipe",
	    "sh",
	    "run.sh",
	    "-f",
	    "MAILER-DAEMON",
	    "--",
	    "r@x",
	    NULL};
	for (size_t i = 0; want[i] || argv[i]; i++)
		if (!argv[i] || !want[i] || strcmp(argv[i], want[i]))
			fail_msg("arg %zu: got '%s', want '%s'", i, argv[i] ? argv[i] : "(null)",
			         want[i] ? want[i] : "(null)");
	cmd_argv_free(argv);
	cmd_template_free(&t);
	/* "/" (the foreground's usual case too) changes nothing */
	assert_int_equal(cmd_template_parse(&t, "msmtp -f %F --", err, sizeof(err)), 0);
	assert_int_equal(cmd_template_run_in(&t, "/", err, sizeof(err)), 0);
	assert_null(t.dir);
	cmd_template_free(&t);
}

static void test_max_recipients(void **state)
{
	long argmax = sysconf(_SC_ARG_MAX);
	size_t n = cmd_template_max_recipients("msmtp -f %F --");
	assert_true(n > 100);
	/* the longest addresses at that count fit, with the environment */
	assert_true(n * (256 + sizeof(char *)) < (size_t)argmax);
	/* a longer template leaves room for fewer */
	char big[4096];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_true(cmd_template_max_recipients(big) < n);
}

/* ---- the property test ---- */

static uint64_t rng_state;

/* rnd - xorshift64*, below n */
static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (unsigned)((rng_state * 2685821657736338717ULL) >> 33) % n;
}

/* A template being generated, and what its last command must receive. */
struct gen {
	char text[2048];
	size_t len;
	char *want[16]; /* each word's value; "\x01" marks where the sender goes */
	char wbuf[16][256];
	size_t nwant;
	bool unsafe; /* the generator put in something start-up must refuse */
};

static char canary[64];

static void put(struct gen *g, const char *s)
{
	size_t n = strlen(s);
	assert_true(g->len + n < sizeof(g->text));
	memcpy(g->text + g->len, s, n + 1);
	g->len += n;
}

/* value - append to the current word's expected value */
static void value(struct gen *g, const char *s)
{
	char *w = g->wbuf[g->nwant];
	assert_true(strlen(w) + strlen(s) < sizeof(g->wbuf[0]));
	strcat(w, s);
}

/* A word's characters that mean nothing to a shell unquoted. */
static const char plain[] = "abcxyz019._,:+@/-=";
/* Characters a shell would act on (no '%', so no accidental %F). */
static const char hostile[] = " \t\n$`\"'\\*?[]{};|&<>()#~!^=";

static void plain_text(struct gen *g, char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = plain[rnd(sizeof(plain) - 1)];
	out[n] = '\0';
}

/* segment - one piece of a word of the last command */
static void segment(struct gen *g)
{
	char s[64], v[32];
	switch (rnd(40)) {
	case 0:
	case 1: /* plain */
		plain_text(g, v, 1 + rnd(6));
		put(g, v);
		value(g, v);
		break;
	case 2: { /* '...' with anything but ' */
		size_t n = rnd(6), k = 0;
		s[k++] = '\'';
		for (size_t i = 0; i < n; i++) {
			char c;
			do
				c = hostile[rnd(sizeof(hostile) - 1)];
			while (c == '\'');
			s[k++] = c;
			v[i] = c;
		}
		v[n] = '\0';
		s[k++] = '\'';
		s[k] = '\0';
		put(g, s);
		value(g, v);
		break;
	}
	case 3: { /* "..." with \ before " \ $ ` */
		size_t n = rnd(6), k = 0;
		s[k++] = '"';
		for (size_t i = 0; i < n; i++) {
			char c = hostile[rnd(sizeof(hostile) - 1)];
			if (strchr("\"\\$`", c))
				s[k++] = '\\';
			s[k++] = c;
			v[i] = c;
		}
		v[n] = '\0';
		s[k++] = '"';
		s[k] = '\0';
		put(g, s);
		value(g, v);
		break;
	}
	case 4: { /* \X */
		char c = hostile[rnd(sizeof(hostile) - 1)];
		if (c == '\n')
			c = '*';
		snprintf(s, sizeof(s), "\\%c", c);
		snprintf(v, sizeof(v), "%c", c);
		put(g, s);
		value(g, v);
		break;
	}
	case 5:
	case 6: /* %F unquoted */
		put(g, "%F");
		value(g, "\x01");
		break;
	case 7: /* "..%F.." */
		plain_text(g, v, rnd(3));
		put(g, "\"");
		put(g, v);
		value(g, v);
		put(g, "%F\"");
		value(g, "\x01");
		break;
	case 8: /* '..%F..' */
		put(g, "'%F");
		value(g, "\x01");
		plain_text(g, v, rnd(3));
		put(g, v);
		put(g, "'");
		value(g, v);
		break;
	case 9: /* a command substitution, even without %F: it could read
	         * the message or $SMTPIPE_SENDER, so it is refused */
		plain_text(g, v, 1 + rnd(4));
		snprintf(s, sizeof(s), rnd(2) ? "$(printf %%s %s)" : "\"$(printf '%%s' %s)\"", v);
		put(g, s);
		value(g, v);
		g->unsafe = true;
		break;
	case 10: { /* backquotes, arithmetic, bash's $[...], ${...} beyond a
		    * name and a plain word, unquoted client variables:
		    * all refused */
		static const char *const bad[] = {"`printf %s x`",
		                                  "$((1+1))",
		                                  "$[1+1]",
		                                  "${X:0:1}",
		                                  "${a[0]}",
		                                  "${!X}",
		                                  "$SMTPIPE_AUTH_U",
		                                  "${SMTPIPE_SENDER}",
		                                  "$_ ",
		                                  "\"$(cat)\"",
		                                  "$1",
		                                  "\"${X:-`id`}\""};
		put(g, bad[rnd(sizeof(bad) / sizeof(bad[0]))]);
		value(g, "?");
		g->unsafe = true;
		break;
	}
	case 11:
		plain_text(g, v, 1 + rnd(4));
		snprintf(s, sizeof(s), rnd(2) ? "${GEN_UNSET_X:-%s}" : "\"${GEN_UNSET_X-%s}\"", v);
		put(g, s);
		value(g, v);
		break;
	case 12: { /* %F where no proof holds: must be refused */
		static const char *const bad[] = {"$(echo %F)", "\"$(echo %F)\"", "`echo %F`",
		                                  "${X:-%F}",   "\"${X-%F}\"",    "$%F",
		                                  "\\%F",       "\"\\%F\"",       "$(printf '%F')"};
		put(g, bad[rnd(sizeof(bad) / sizeof(bad[0]))]);
		value(g, "?");
		g->unsafe = true;
		break;
	}
	default: /* "" (an empty word part) or a plain piece */
		if (rnd(2)) {
			put(g, "\"\"");
		} else {
			plain_text(g, v, 1 + rnd(3));
			put(g, v);
			value(g, v);
		}
	}
}

/* generate - a random template from the grammar */
static void generate(struct gen *g)
{
	static const char *const prefix[] = {"true",
	                                     ": x %F",
	                                     "X=1",
	                                     "(true)",
	                                     "true | true",
	                                     "echo %F >/dev/null",
	                                     "cat >/dev/null",
	                                     "true \"$SMTPIPE_AUTH_USER\" x",
	                                     "true \"$SMTPIPE_SENDER\" \"$@\"",
	                                     "true # note %F\n",
	                                     "( : ; true )",
	                                     "exec 3>/dev/null",
	                                     ": \"${SMTPIPE_SENDER:-x}\" \"$1\"",
	                                     "umask 022",
	                                     "cd /",
	                                     "export SMTPIPE_GEN=1",
	                                     "[ -n x ]",
	                                     "printf '%s' %F >/dev/null",
	                                     "/bin/true %F",
	                                     "echo -n %F >/dev/null"};
	/* each gives a client a say it must not have: refused */
	static const char *const bad_prefix[] = {
	    "Y=\"%F\" true", "cd %F", "export Z=%F", "exec %F", "true $(echo %F)", "eval true",
	    "Y=\"$SMTPIPE_SENDER\" true", "true $1", "\"$SMTPIPE_SENDER\"", "true $(echo \"$@\")",
	    "true `echo $SMTPIPE_SENDER`", ": >\"$1\"", "true $(echo a)",
	    /* the command word quoted, escaped, split
	     * by a continuation or indirect */
	    "'eval' true", "\"eval\" true", "\\eval true", "e\"\"val true", "ev\\\nal true",
	    "X=eval; $X true", "$(printf eval) true", "command eval true", "command -p eval true",
	    "builtin eval true", "'cd' %F", "'export' \"X=$1\"", "command cd %F", "$UNSET_HOOK",
	    "$(true)", "hash -p /bin/false true", "set -f", "shift", "getopts a X",
	    "printf -v X %s %F", "printf %F", "test -v \"$1\"", "unset \"$SMTPIPE_SENDER\"",
	    "kill %F"};
	static const char *const join[] = {"; ", " && ", "\n", " | ", " & "};
	static const char *const redir[] = {
	    "", "", " 2>/dev/null", " </dev/null", " 2>>/dev/null", " 2>&1"};
	static const char *const trouble[] = {";",  " &",      " |",     " &&",       " ||",
	                                      "\n", " # tail", " >",     " 2>",       "; %F",
	                                      " )", "; X=1",   "; exec", " <<E\nx\nE"};
	memset(g, 0, sizeof(*g));
	unsigned n = rnd(3);
	for (unsigned i = 0; i < n; i++) {
		const char *p = prefix[rnd(sizeof(prefix) / sizeof(prefix[0]))];
		if (rnd(16) == 0) {
			p = bad_prefix[rnd(sizeof(bad_prefix) / sizeof(bad_prefix[0]))];
			g->unsafe = true;
		}
		put(g, p);
		if (p[strlen(p) - 1] != '\n')
			put(g, join[rnd(sizeof(join) / sizeof(join[0]))]);
	}
	bool sub = rnd(8) == 0; /* the last command inside a subshell: refused */
	if (sub) {
		put(g, "( ");
		g->unsafe = true;
	}
	/* the last command's word: plain, through exec, or hostile */
	static const char *const last[] = {"printf", "printf", "printf", "exec printf"};
	static const char *const bad_last[] = {
	    "'printf'",          "\"printf\"",     "\\printf",          "p\"\"rintf",
	    "pr\\\nintf",        "P=printf; $P",   "$(echo printf)",    "command printf",
	    "command -p printf", "builtin printf", "exec 'printf'",     "exec -a x printf",
	    "${P:-printf}",      "`echo printf`",  "$UNSET_HOOK printf"};
	if (rnd(10) == 0) {
		put(g, bad_last[rnd(sizeof(bad_last) / sizeof(bad_last[0]))]);
		g->unsafe = true;
	} else {
		put(g, last[rnd(sizeof(last) / sizeof(last[0]))]);
	}
	put(g, " '%s\\0'");
	unsigned words = rnd(4);
	for (unsigned i = 0; i < words; i++) {
		put(g, " ");
		unsigned segs = 1 + rnd(3);
		for (unsigned k = 0; k < segs; k++)
			segment(g);
		g->want[g->nwant] = g->wbuf[g->nwant];
		g->nwant++;
	}
	/* shell syntax always, so that the shell path is what runs */
	put(g, n == 0 && !sub ? " </dev/null" : redir[rnd(sizeof(redir) / sizeof(redir[0]))]);
	if (sub)
		put(g, " )");
	if (rnd(6) == 0) {
		put(g, trouble[rnd(sizeof(trouble) / sizeof(trouble[0]))]);
		g->unsafe = true;
	} else if (rnd(4) == 0) {
		put(g, " ");
	}
}

/* A sender or recipient a shell would act on if it ever parsed it. */
static void hostile_address(char *out, size_t n)
{
	static const char *const parts[] = {"a",
	                                    " ",
	                                    "  ",
	                                    "*",
	                                    "?",
	                                    "[a]",
	                                    "$(touch CANARY)",
	                                    "`touch CANARY`",
	                                    ";",
	                                    "|",
	                                    "&",
	                                    "'",
	                                    "\"",
	                                    "\\",
	                                    "${IFS}",
	                                    "$1",
	                                    "-",
	                                    "--",
	                                    "#",
	                                    "\n",
	                                    "%F",
	                                    "~",
	                                    "-rf",
	                                    "$@",
	                                    ">x",
	                                    "<",
	                                    "(",
	                                    ")",
	                                    "@e.org",
	                                    "!"};
	size_t k = 0;
	out[0] = '\0';
	unsigned count = rnd(6);
	for (unsigned i = 0; i < count; i++) {
		const char *p = parts[rnd(sizeof(parts) / sizeof(parts[0]))];
		if (!strcmp(p, "$(touch CANARY)") || !strcmp(p, "`touch CANARY`")) {
			char t[128];
			snprintf(t, sizeof(t), p[0] == '$' ? "$(touch %s)" : "`touch %s`", canary);
			p = t;
			if (k + strlen(p) + 1 < n) {
				strcpy(out + k, p);
				k += strlen(p);
			}
			continue;
		}
		if (k + strlen(p) + 1 < n) {
			strcpy(out + k, p);
			k += strlen(p);
		}
	}
}

/* run - the command for real; its stdout (printf's fields) into out */
static size_t run(char **argv, char **env, char *out, size_t cap, int *status)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, env), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while ((r = read(p[0], out + n, cap - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	waitpid(pid, status, 0);
	return n;
}

/* count_var - how many entries of env are NAME=..., *val the last value */
static int count_var(char **env, const char *name, const char **val)
{
	int n = 0;
	size_t l = strlen(name);
	*val = NULL;
	for (char **e = env; *e; e++)
		if (strncmp(*e, name, l) == 0 && (*e)[l] == '=') {
			n++;
			*val = *e + l + 1;
		}
	return n;
}

/* test_env_origin - the session's view of the client reaches the
 * command as given; copies in our own environment never do, whether
 * the session has a value to put in their place or not */
static void test_env_origin(void **state)
{
	static const char *const names[] = {"SMTPIPE_SENDER", "SMTPIPE_CLIENT", "SMTPIPE_LISTENER",
	                                    "SMTPIPE_CLIENT_UID", "SMTPIPE_AUTH_USER"};
	for (size_t i = 0; i < 5; i++)
		setenv(names[i], "forged", 1);
	struct delivery d = {.sender = "s@x",
	                     .client = "unix:1000",
	                     .listener = "unix:/run/s.sock",
	                     .client_uid = 1000,
	                     .auth_user = "bob"};
	const char *want[] = {"s@x", "unix:1000", "unix:/run/s.sock", "1000", "bob"};
	char **env = cmd_template_env(&d);
	assert_non_null(env);
	for (size_t i = 0; i < 5; i++) {
		const char *v;
		int n = count_var(env, names[i], &v);
		if (n != 1 || strcmp(v, want[i]) != 0)
			fail_msg("%s: got %d entries, last '%s'; want one '%s'", names[i], n,
			         v ? v : "", want[i]);
	}
	cmd_template_env_free(env);
	/* no Unix-socket peer, no AUTH, no client or listener known */
	struct delivery none = {.sender = "", .client_uid = -1};
	env = cmd_template_env(&none);
	assert_non_null(env);
	for (size_t i = 1; i < 5; i++) {
		const char *v;
		if (count_var(env, names[i], &v) != 0)
			fail_msg("got %s=%s, want it absent", names[i], v);
	}
	const char *v;
	assert_int_equal(count_var(env, "SMTPIPE_SENDER", &v), 1);
	assert_string_equal(v, "");
	cmd_template_env_free(env);
	for (size_t i = 0; i < 5; i++)
		unsetenv(names[i]);
}

static void test_property(void **state)
{
	const char *seed = getenv("SMTPIPE_PROPERTY_SEED");
	rng_state = seed ? strtoull(seed, NULL, 0) : 0x5eed5eedULL;
	unsigned cases = 2500, accepted = 0, refused = 0;
	snprintf(canary, sizeof(canary), "/tmp/smtpipe-unit-canary-%ld", (long)getpid());
	unlink(canary);
	for (unsigned c = 0; c < cases; c++) {
		struct gen g;
		generate(&g);
		struct cmd_template t;
		char err[512];
		if (cmd_template_parse(&t, g.text, err, sizeof(err)) < 0) {
			refused++;
			if (!g.unsafe)
				fail_msg("case %u: safe template refused: [%s]: %s", c, g.text,
				         err);
			continue;
		}
		if (g.unsafe)
			fail_msg("case %u: unsafe template accepted: [%s] as [%s]", c, g.text,
			         t.argv[0]);
		accepted++;
		char sender[256], r1[256], r2[256];
		hostile_address(sender, sizeof(sender));
		hostile_address(r1, sizeof(r1));
		hostile_address(r2, sizeof(r2));
		const char *rcpts[] = {r1, r2};
		size_t nrcpt = rnd(3);
		char **argv = cmd_template_expand(&t, sender, rcpts, nrcpt);
		struct delivery dv = {.sender = sender, .client_uid = -1};
		char **env = cmd_template_env(&dv);
		assert_non_null(argv);
		assert_non_null(env);
		/* what the contract says printf must get */
		char want[8192];
		size_t wn = 0;
		const char *from = sender[0] ? sender : "MAILER-DAEMON";
		for (size_t i = 0; i < g.nwant; i++) {
			for (const char *p = g.want[i]; *p; p++) {
				if (*p == '\x01') {
					memcpy(want + wn, from, strlen(from));
					wn += strlen(from);
				} else {
					want[wn++] = *p;
				}
			}
			want[wn++] = '\0';
		}
		for (size_t i = 0; i < nrcpt; i++) {
			memcpy(want + wn, rcpts[i], strlen(rcpts[i]) + 1);
			wn += strlen(rcpts[i]) + 1;
		}
		if (wn == 0) /* printf with no argument prints its format once */
			want[wn++] = '\0';
		char got[8192];
		int status;
		size_t gn = run(argv, env, got, sizeof(got), &status);
		if (gn != wn || memcmp(got, want, wn) || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			for (size_t i = 0; i < gn; i++)
				if (got[i] == '\0')
					got[i] = '|';
			for (size_t i = 0; i < wn; i++)
				if (want[i] == '\0')
					want[i] = '|';
			got[gn < sizeof(got) ? gn : sizeof(got) - 1] = '\0';
			want[wn] = '\0';
			fail_msg("case %u: template [%s] script [%s] sender [%s]: got [%s] status "
			         "%d, want [%s]",
			         c, g.text, t.argv[0], sender, got, status, want);
		}
		if (access(canary, F_OK) == 0)
			fail_msg("case %u: [%s] with sender [%s]: a client byte reached the shell",
			         c, g.text, sender);
		cmd_argv_free(argv);
		cmd_template_env_free(env);
		cmd_template_free(&t);
	}
	print_message("seed %#llx: %u templates accepted and run, %u refused\n",
	              (unsigned long long)(seed ? strtoull(seed, NULL, 0) : 0x5eed5eedULL),
	              accepted, refused);
	/* a parser that refused everything, or nothing, would not pass (about
	 * half the grammar is hostile) */
	if (accepted < cases / 3 || refused < cases / 10)
		fail_msg("accepted %u, refused %u of %u", accepted, refused, cases);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scripts),  cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_run_in),   cmocka_unit_test(test_max_recipients),
	    cmocka_unit_test(test_property), cmocka_unit_test(test_env_origin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
