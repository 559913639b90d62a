/*
 * options.c - one command line for both personalities, read from the table
 *
 * The personality (from the program name) only picks defaults and exit
 * codes; every option works in both. Every bad value gives one line in
 * err and OPTIONS_ERROR, which main turns into exit 3, as msmtpd and
 * mockmta do. The rows of options_table.c are the one source of the
 * names, kinds, bounds, defaults and --help lines; the code here handles
 * kinds, never single options, except the few checks between options in
 * combination().
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bounds.h"
#include "cmd_template.h"
#include "config.h"
#include "options_impl.h"
#include "tls.h"

/* What one parse saw besides cfg: which rows were given. */
struct parse {
	struct config *cfg;
	bool given[OPTIONS_MAX_ROWS];
};

/* row_named - the row of a long name (a name of the table: never NULL) */
static const struct option_row *row_named(const char *name)
{
	for (size_t i = 0; i < options_n_rows; i++)
		if (strcmp(options_rows[i].name, name) == 0)
			return &options_rows[i];
	return NULL;
}

/* given - whether the option called name was on the command line */
static bool given(const struct parse *p, const char *name)
{
	return p->given[row_named(name) - options_rows];
}

/* options_field - where row's value goes in base */
void *options_field(const struct option_row *row, void *base)
{
	return (char *)base + row->field;
}

/* options_store_number - v into an unsigned or a size_t field */
void options_store_number(const struct option_row *row, void *base, unsigned long long v)
{
	if (row->size == sizeof(size_t))
		*(size_t *)options_field(row, base) = (size_t)v;
	else
		*(unsigned *)options_field(row, base) = (unsigned)v;
}

/* options_parse_number - a whole number in [min, max], with k/M/G when sized */
int options_parse_number(const char *s, unsigned long long min, unsigned long long max, bool sized,
                         unsigned long long *out)
{
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (sized && *end) {
		unsigned long long mul = 1;
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1024ULL;
			break;
		case 'm':
		case 'M':
			mul = 1024ULL * 1024;
			break;
		case 'g':
		case 'G':
			mul = 1024ULL * 1024 * 1024;
			break;
		default:
			return -1;
		}
		if (v > max / mul)
			return -1;
		v *= mul;
		end++;
	}
	if (*end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* options_not_what - the usual complaint: "'VALUE' is not WHAT" */
int options_not_what(const struct option_row *row, const char *value, char *why, size_t whylen)
{
	snprintf(why, whylen, "'%s' is not %s", value, row->what);
	return -1;
}

/* store_enum - the index of value in row->names */
static int store_enum(const struct option_row *row, void *base, const char *value, char *why,
                      size_t whylen)
{
	for (int i = 0; row->names[i]; i++) {
		if (strcasecmp(value, row->names[i]) == 0) {
			*(int *)options_field(row, base) = i;
			return 0;
		}
	}
	int n = snprintf(why, whylen, "unknown %s '%s' (", row->what, value);
	for (int i = 0; row->names[i] && n >= 0 && (size_t)n < whylen; i++)
		n += snprintf(why + n, whylen - (size_t)n, "%s%s", i ? " " : "", row->names[i]);
	if (n >= 0 && (size_t)n < whylen)
		snprintf(why + n, whylen - (size_t)n, ")");
	return -1;
}

/* store_list - value appended to a struct config_list */
static int store_list(const struct option_row *row, void *base, const char *value, char *why,
                      size_t whylen)
{
	struct config_list *list = options_field(row, base);
	if (list->n >= BOUND_OPTION_REPEATS) {
		snprintf(why, whylen, "given more than %d times", BOUND_OPTION_REPEATS);
		return -1;
	}
	list->item[list->n++] = value;
	return 0;
}

/* options_store - see options.h */
int options_store(const struct option_row *row, void *base, char *value, char *why, size_t whylen)
{
	unsigned long long v;
	if (row->parse)
		return row->parse(row, base, value, why, whylen);
	switch (row->kind) {
	case OPTION_FLAG:
		if (row->field != OPTION_NO_FIELD)
			*(bool *)options_field(row, base) = true;
		return 0;
	case OPTION_STRING:
		if (row->valid && !row->valid(value))
			return options_not_what(row, value, why, whylen);
		*(const char **)options_field(row, base) = value;
		return 0;
	case OPTION_UNSIGNED:
	case OPTION_SIZE:
		if (options_parse_number(value, row->min, row->max, row->kind == OPTION_SIZE, &v) <
		    0)
			return options_not_what(row, value, why, whylen);
		options_store_number(row, base, v);
		return 0;
	case OPTION_ENUM:
		return store_enum(row, base, value, why, whylen);
	case OPTION_LIST:
		return store_list(row, base, value, why, whylen);
	case OPTION_HELP:
	case OPTION_VERSION:
		break;
	}
	snprintf(why, whylen, "takes no value");
	return -1;
}

/* print_default - a row's default, for %D in its help */
static void print_default(const struct option_row *row)
{
	if (row->def_text)
		fputs(row->def_text, stdout);
	else
		printf("%llu", row->def);
}

/* usage_row - one row's --help line: "  -p, --port=N   listen on ..." */
static void usage_row(const struct option_row *row)
{
	char left[64];
	int n = 0;
	for (const char *s = row->shorts; *s; s++)
		n += snprintf(left + n, sizeof(left) - (size_t)n, "-%c, ", *s);
	snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s", row->name,
	         row->value_name ? "=" : "", row->value_name ? row->value_name : "");
	printf("  %-24s%s", left, strlen(left) < 24 ? " " : "  ");
	for (const char *h = row->help; *h; h++) {
		if (h[0] == '%' && h[1] == 'D') {
			print_default(row);
			h++;
		} else if (*h == '\n') {
			printf("\n%27s", "");
		} else {
			putchar(*h);
		}
	}
	putchar('\n');
}

/* usage - the --help text, from the table */
static void usage(const struct config *cfg)
{
	printf("Usage: %s [option...] [MAILBOX]\n"
	       "       mockmta [-dfv?] [-c CERT] [-a CA] [-k KEY] [-l LEVEL] [-P FILE] [-p PORT] "
	       "[-t SEC] MAILBOX\n"
	       "A small SMTP server that pipes each message to a command or appends it to an "
	       "mbox.\n\n",
	       cfg->progname);
	for (size_t i = 0; i < options_n_rows; i++)
		usage_row(&options_rows[i]);
}

/* version - --version */
static void version(void)
{
	printf("smtpipe %s\nTLS (GnuTLS): %s\nkeyring (libsecret): %s\n", SMTPIPE_VERSION,
	       tls_available() ? "yes" : "no",
#ifdef HAVE_LIBSECRET
	       "yes"
#else
	       "no"
#endif
	);
}

/* defaults - both personalities' starting point: the table's defaults,
 * then what the personality changes */
static void defaults(struct config *cfg, const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	base = base ? base + 1 : argv0;
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < options_n_rows; i++) {
		const struct option_row *row = &options_rows[i];
		if (row->kind == OPTION_UNSIGNED || row->kind == OPTION_SIZE)
			options_store_number(row, cfg, row->def);
		else if (row->kind == OPTION_STRING && row->def_text)
			*(const char **)options_field(row, cfg) = row->def_text;
		else if (row->kind == OPTION_ENUM)
			store_enum(row, cfg, row->def_text, NULL, 0);
	}
	if (strcmp(base, "mockmta") == 0) {
		cfg->personality = PERSONALITY_MOCKMTA;
		cfg->progname = "mockmta";
		cfg->mode = MODE_INETD;
		cfg->log_dest = LOG_DEST_SYSLOG;
	} else {
		cfg->personality = PERSONALITY_SMTPIPE;
		cfg->progname = strcmp(base, "msmtpd") == 0 ? "msmtpd" : "smtpipe";
		cfg->mode = MODE_FOREGROUND;
		cfg->log_dest = LOG_DEST_NONE;
	}
	const char *tmp = getenv("TMPDIR");
	cfg->spool_dir = tmp && *tmp ? tmp : "/tmp";
}

/* bad - one line in err, "PROGNAME: " and the message; OPTIONS_ERROR */
__attribute__((format(printf, 4, 5))) static enum options_result
bad(const struct config *cfg, char *err, size_t errlen, const char *fmt, ...)
{
	int n = snprintf(err, errlen, "%s: ", cfg->progname);
	if (n >= 0 && (size_t)n < errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return OPTIONS_ERROR;
}

/* The getopt_long view of the table, built once: a long option returns
 * LONG_BASE + its row. */
#define LONG_BASE 256
static struct option long_options[OPTIONS_MAX_ROWS + 1];
static char short_options[3 * OPTIONS_MAX_ROWS + 2];

/* getopt_tables - long_options and short_options from the rows */
static void getopt_tables(void)
{
	if (long_options[0].name)
		return;
	size_t n = 0;
	short_options[n++] = ':'; /* a missing value is ':', not '?' */
	for (size_t i = 0; i < options_n_rows; i++) {
		bool value = options_rows[i].kind != OPTION_FLAG &&
		             options_rows[i].kind != OPTION_HELP &&
		             options_rows[i].kind != OPTION_VERSION;
		long_options[i] =
		    (struct option){options_rows[i].name, value ? required_argument : no_argument,
		                    NULL, LONG_BASE + (int)i};
		for (const char *s = options_rows[i].shorts; *s; s++) {
			short_options[n++] = *s;
			if (value)
				short_options[n++] = ':';
		}
	}
	short_options[n] = '\0';
}

/* row_of_short - the row of a short letter, or NULL */
static const struct option_row *row_of_short(int c)
{
	for (size_t i = 0; i < options_n_rows; i++)
		if (c && strchr(options_rows[i].shorts, c))
			return &options_rows[i];
	return NULL;
}

/* long_matches - how many long options begin with the len bytes of name */
static int long_matches(const char *name, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < options_n_rows; i++)
		if (strncmp(options_rows[i].name, name, len) == 0)
			n++;
	return n;
}

/* missing_value - getopt's ':' */
static enum options_result missing_value(struct parse *p, char **argv, char *err, size_t errlen)
{
	const char *arg = argv[optind - 1];
	if (strncmp(arg, "--", 2) == 0)
		return bad(p->cfg, err, errlen, "%s needs a value", arg);
	return bad(p->cfg, err, errlen, "-%c needs a value", optopt);
}

/* unknown_option - getopt's '?': also what glibc returns for an explicit
 * -? (with optopt 0), which asks for --help */
static enum options_result unknown_option(struct parse *p, char **argv, char *err, size_t errlen)
{
	const char *arg = argv[optind - 1];
	if (optopt == '?' || strcmp(arg, "-?") == 0) {
		usage(p->cfg);
		return OPTIONS_EXIT;
	}
	if (strncmp(arg, "--", 2) != 0)
		return bad(p->cfg, err, errlen, "unknown option -%c (try --help)", optopt);
	int len = (int)strcspn(arg, "=");
	if (optopt) /* glibc sets optopt for a known long option given a value */
		return bad(p->cfg, err, errlen, "%.*s takes no value", len, arg);
	if (long_matches(arg + 2, (size_t)len - 2) > 1)
		return bad(p->cfg, err, errlen, "ambiguous option %.*s (try --help)", len, arg);
	return bad(p->cfg, err, errlen, "unknown option %.*s (try --help)", len, arg);
}

/* one_option - what getopt_long returned as c, applied to p */
static enum options_result one_option(struct parse *p, int c, char **argv, char *err, size_t errlen)
{
	if (c == ':')
		return missing_value(p, argv, err, errlen);
	const struct option_row *row = c >= LONG_BASE ? &options_rows[c - LONG_BASE]
	                               : c != '?'     ? row_of_short(c)
	                                              : NULL;
	if (!row)
		return unknown_option(p, argv, err, errlen);
	char name[40]; /* as given: "--port" or "-p" */
	if (c >= LONG_BASE)
		snprintf(name, sizeof(name), "--%s", row->name);
	else
		snprintf(name, sizeof(name), "-%c", c);
	if (optarg && *optarg == '\0')
		return bad(p->cfg, err, errlen, "%s: empty value", name);
	if (row->kind == OPTION_HELP) {
		usage(p->cfg);
		return OPTIONS_EXIT;
	}
	if (row->kind == OPTION_VERSION) {
		version();
		return OPTIONS_EXIT;
	}
	char why[400];
	if (options_store(row, p->cfg, optarg, why, sizeof(why)) < 0) {
		if (row->label)
			return bad(p->cfg, err, errlen, "%s: %s", row->label, why);
		return bad(p->cfg, err, errlen, "--%s: %s", row->name, why);
	}
	p->given[row - options_rows] = true;
	return OPTIONS_RUN;
}

/* operand - the one MAILBOX operand, if any */
static enum options_result operand(struct parse *p, int argc, char **argv, char *err, size_t errlen)
{
	struct config *cfg = p->cfg;
	if (optind < argc - 1)
		return bad(cfg, err, errlen, "too many arguments: '%s' (at most one MAILBOX)",
		           argv[optind + 1]);
	if (optind == argc - 1) {
		if (!*argv[optind])
			return bad(cfg, err, errlen, "MAILBOX is empty");
		if (cfg->mailbox)
			return bad(cfg, err, errlen, "both --mailbox and MAILBOX given");
		cfg->mailbox = argv[optind];
	}
	return OPTIONS_RUN;
}

/* combination - the options that only work together, or not at all */
static enum options_result combination(struct parse *p, char *err, size_t errlen)
{
	struct config *cfg = p->cfg;
	if (cfg->mailbox && cfg->mailbox[strlen(cfg->mailbox) - 1] == '/') {
		if (cfg->maildir) /* "DIR/": a Maildir, as mutt and Postfix read it */
			return bad(cfg, err, errlen, "both --maildir and a MAILBOX given");
		cfg->maildir = cfg->mailbox;
		cfg->mailbox = NULL;
	}
	if (cfg->mailbox && cfg->maildir)
		return bad(cfg, err, errlen, "both --maildir and a MAILBOX given");
	if ((cfg->mailbox || cfg->maildir) && given(p, "command"))
		return bad(cfg, err, errlen, "give either --command or a MAILBOX, not both");
	if (cfg->auth_accept_any && (cfg->auth_user || cfg->auth_file))
		return bad(cfg, err, errlen,
		           "--auth-accept-any accepts anyone: it goes without --auth and "
		           "--auth-file");
	/* Every recipient is one argument of the command: a value whose
	 * argument list cannot be executed would answer 451 forever. */
	size_t most = cfg->mailbox || cfg->maildir ? cfg->max_recipients
	                                           : cmd_template_max_recipients(cfg->command);
	if (cfg->max_recipients > most)
		return bad(cfg, err, errlen,
		           "--max-recipients=%u: the command's argument list would not fit ARG_MAX "
		           "with addresses of %d octets; the largest allowed is %zu",
		           cfg->max_recipients, BOUND_PATH - 2, most);
	if (cfg->personality == PERSONALITY_MOCKMTA && !cfg->mailbox && !cfg->maildir)
		return bad(cfg, err, errlen,
		           "MAILBOX is required (usage: mockmta [-dfv?] [-c CERT] [-a CA] [-k KEY] "
		           "[-l LEVEL] [-P FILE] [-p PORT] [-t SEC] MAILBOX)");
	if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL))
		return bad(cfg, err, errlen, "-c/--tls-cert and -k/--tls-key go together");
	if ((cfg->tls_required || cfg->tls_implicit || cfg->tls_ca) && !cfg->tls_cert)
		return bad(cfg, err, errlen,
		           "--tls-required, --tls-implicit and -a need -c CERT and -k KEY");
	if (given(p, "inetd") && (given(p, "daemon") || given(p, "foreground")))
		return bad(cfg, err, errlen, "--inetd cannot be combined with -d or -f");
	int admin = cfg->queue_list + cfg->queue_flush + cfg->queue_run + !!cfg->queue_delete +
	            !!cfg->queue_requeue;
	if (admin > 1)
		return bad(cfg, err, errlen,
		           "give one of --queue-list, --queue-flush, --queue-run, --queue-delete "
		           "and --queue-requeue");
	if ((admin || given(p, "queue-retry") || given(p, "queue-retry-max") ||
	     given(p, "queue-lifetime") || given(p, "queue-workers")) &&
	    !cfg->queue_dir)
		return bad(cfg, err, errlen, "the --queue-* options need --queue=DIR");
	if (cfg->session_reuse > 1 && given(p, "inetd"))
		return bad(cfg, err, errlen,
		           "--session-reuse is for a listening daemon's spares; --inetd serves one "
		           "client");
	if (cfg->session_reuse > 1 && cfg->spare_sessions == 0)
		return bad(cfg, err, errlen,
		           "--session-reuse=%u needs --spare-sessions=N: only a spare goes back "
		           "to wait for another client",
		           cfg->session_reuse);
	if (cfg->queue_json && !cfg->queue_list)
		return bad(cfg, err, errlen, "--json goes with --queue-list");
	if (cfg->queue_retry_max < cfg->queue_retry)
		return bad(cfg, err, errlen, "--queue-retry-max=%u is below --queue-retry=%u",
		           cfg->queue_retry_max, cfg->queue_retry);
	return OPTIONS_RUN;
}

/* set_mode - the run mode from --inetd, -d and -f (-f wins over -d, as
 * in mockmta), and mockmta's log default, which follows the mode */
static void set_mode(struct parse *p)
{
	struct config *cfg = p->cfg;
	if (given(p, "inetd"))
		cfg->mode = MODE_INETD;
	else if (given(p, "foreground"))
		cfg->mode = MODE_FOREGROUND;
	else if (given(p, "daemon"))
		cfg->mode = MODE_DAEMON;
	if (cfg->personality == PERSONALITY_MOCKMTA && !given(p, "log"))
		cfg->log_dest = cfg->mode == MODE_FOREGROUND ? LOG_DEST_STDERR : LOG_DEST_SYSLOG;
}

/* options_parse - see options.h */
enum options_result options_parse(struct config *cfg, int argc, char **argv, char *err,
                                  size_t errlen)
{
	struct parse p = {.cfg = cfg};
	enum options_result r = OPTIONS_RUN;
	int c;
	defaults(cfg, argc > 0 ? argv[0] : "smtpipe");
	getopt_tables();
	opterr = 0;
	optind = 0; /* 0, not 1: glibc then also forgets a half-read "-dfx" of an earlier call */
	while (r == OPTIONS_RUN &&
	       (c = getopt_long(argc, argv, short_options, long_options, NULL)) != -1)
		r = one_option(&p, c, argv, err, errlen);
	if (r == OPTIONS_RUN)
		r = operand(&p, argc, argv, err, errlen);
	if (r == OPTIONS_RUN)
		r = combination(&p, err, errlen);
	if (r == OPTIONS_RUN)
		set_mode(&p);
	/* standard output is the client under --inetd, /dev/null once detached */
	if (r == OPTIONS_RUN && cfg->mailbox && strcmp(cfg->mailbox, "-") == 0 &&
	    cfg->mode != MODE_FOREGROUND)
		r = bad(cfg, err, errlen,
		        "--mailbox=- writes to standard output: it needs -f (the foreground)");
	return r;
}

/* absolute - path made absolute against the start-up directory */
static const char *absolute(const char *path)
{
	static char cwd[PATH_MAX];
	if (!path || path[0] == '/' || strcmp(path, "-") == 0 ||
	    (!cwd[0] && !getcwd(cwd, sizeof(cwd))))
		return path;
	char *abs;
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return path;
	return abs;
}

/* options_absolute_paths - see options.h */
void options_absolute_paths(struct config *cfg)
{
	for (size_t i = 0; i < options_n_rows; i++) {
		if (!options_rows[i].path)
			continue;
		const char **value = options_field(&options_rows[i], cfg);
		*value = absolute(*value);
	}
}
