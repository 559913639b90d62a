/*
 * options.h - both personalities' command lines into one struct config
 *
 * The personality comes from the program name: "mockmta" selects the
 * mockmta defaults (one session on stdin/stdout, MAILBOX required,
 * exit codes 0/1/2/3); anything else ("smtpipe", "msmtpd") the msmtpd
 * defaults (listen on 127.0.0.1:25 unless --inetd, pipe to
 * "msmtp -f %F --", exit 3 on usage errors).
 *
 * Every option is one row of one table (options_table.c, as Postfix's
 * CONFIG_INT_TABLE): its names, its kind, its field in struct config,
 * its default, its bounds and its --help line. The parser, the
 * defaults, --help (which tests/integration/test_docs.py holds against
 * doc/smtpipe.8) and the daemon's absolute paths all read that table.
 * Adding an option is adding a row (doc/HACKING.md).
 */
#ifndef SMTPIPE_OPTIONS_H
#define SMTPIPE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

struct config;

enum options_result {
	OPTIONS_RUN,   /* cfg is complete: run the server */
	OPTIONS_EXIT,  /* --version or --help was printed: exit 0 */
	OPTIONS_ERROR, /* err holds one line: print it, exit with EXIT_KIND_USAGE */
};

/* What a row's value is, and so how it is parsed and stored. */
enum option_kind {
	OPTION_FLAG,     /* no value; a bool field (if any) becomes true */
	OPTION_STRING,   /* const char *: the value itself (it lives in argv) */
	OPTION_UNSIGNED, /* unsigned or size_t: a whole number in [min, max] */
	OPTION_SIZE,     /* unsigned or size_t: the same, with k/M/G (1024-based) */
	OPTION_ENUM,     /* int: the index of the value in names, any case */
	OPTION_LIST,     /* struct config_list: each use appends one value */
	OPTION_HELP,     /* print --help, exit 0 */
	OPTION_VERSION,  /* print --version, exit 0 */
};

#define OPTION_NO_FIELD ((size_t)-1)

struct option_row {
	const char *name;   /* long name, without "--" */
	const char *shorts; /* short letters, "" for none */
	enum option_kind kind;
	size_t field;                     /* offset in struct config, or OPTION_NO_FIELD */
	size_t size;                      /* sizeof the field */
	unsigned long long min, max, def; /* OPTION_UNSIGNED, OPTION_SIZE */
	const char *def_text;             /* default of a string, or an enum's name */
	const char *const *names;         /* OPTION_ENUM: its values, NULL-terminated */
	bool path;                        /* made absolute for a daemon (options_absolute_paths) */
	/* a bad value: "LABEL: 'VALUE' is not WHAT" (an enum: "LABEL: unknown
	 * WHAT 'VALUE' (NAMES)"); LABEL is "--name" unless label is set */
	const char *what;
	const char *label;
	bool (*valid)(const char *value); /* OPTION_STRING: more than non-empty */
	/* instead of the kind's own parsing: store into base, or fill why
	 * (the text after "LABEL: ") and return -1 */
	int (*parse)(const struct option_row *row, void *base, char *value, char *why,
	             size_t whylen);
	const char *value_name; /* --help: "--port=N" */
	const char *help;       /* --help text; %D is the default, \n a new line */
};

/* options_table - the rows, n of them, in --help order */
const struct option_row *options_table(size_t *n);
/* options_store - parse value for row into the struct at base (a struct
 * config, whose field row->field names): 0, or -1 and the reason in why */
int options_store(const struct option_row *row, void *base, char *value, char *why, size_t whylen);
/* options_hostname_ok - a name for the greeting and Received:, as
 * RFC 5321 4.1.2 allows there: a Domain (ASCII labels of letters,
 * digits and inner hyphens, at most 255 bytes) or an address literal
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]"); nothing that could end the
 * header's comment or field (';', '"', '<', '>', '\\', '(', blanks) */
bool options_hostname_ok(const char *name);
/* options_parse - fill cfg from argv (defaults first, then options) */
enum options_result options_parse(struct config *cfg, int argc, char **argv, char *err,
                                  size_t errlen);
/* options_absolute_paths - every path option (rows marked path) made
 * absolute against the current directory: a daemon works from "/"
 * (listener.c), and would otherwise append to "/MAILBOX", write
 * "/PIDFILE" or reload "/cert.pem" on SIGHUP. The copies live as long
 * as the process, as config.h promises. */
void options_absolute_paths(struct config *cfg);

#endif
