/*
 * options.c - one option table for both personalities
 *
 * The personality (from the program name) only picks defaults and exit
 * codes; every option works in both. Every bad value gives one line in
 * err and OPTIONS_ERROR, which main turns into exit 3, as msmtpd and
 * mockmta do. The table (rows[]) is the one source of the names, kinds,
 * bounds, defaults and --help lines; code below it handles kinds, never
 * single options, except the few checks between options in combination().
 */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "bounds.h"
#include "cmd_template.h"
#include "config.h"
#include "listen_spec.h"
#include "queue.h"
#include "tls.h"

/* The brake's state file under --inetd: systemd's RuntimeDirectory=smtpipe
 * or a directory the administrator makes; without it the brake falls back
 * to one delay per attempt in each process (auth.h). */
#define AUTH_STATE_FILE "/run/smtpipe/auth-state"

/* FIELD - a row's field: where it is and how big, so that the store
 * can check it writes what the field holds */
#define FIELD(member)                                                                              \
	.field = offsetof(struct config, member), .size = sizeof(((struct config *)0)->member)
#define NO_FIELD .field = OPTION_NO_FIELD, .size = 0

static const char *const level_names[] = {"emerg",  "alert", "crit",  "err", "warning",
                                          "notice", "info",  "debug", NULL};

static int parse_log(const struct option_row *row, void *base, char *value, char *why,
                     size_t whylen);
static int parse_auth(const struct option_row *row, void *base, char *value, char *why,
                      size_t whylen);
static int parse_hostname(const struct option_row *row, void *base, char *value, char *why,
                          size_t whylen);
static int parse_line_length(const struct option_row *row, void *base, char *value, char *why,
                             size_t whylen);
static int parse_interface(const struct option_row *row, void *base, char *value, char *why,
                           size_t whylen);
static int parse_port(const struct option_row *row, void *base, char *value, char *why,
                      size_t whylen);
static int parse_listen(const struct option_row *row, void *base, char *value, char *why,
                        size_t whylen);
static int parse_duration(const struct option_row *row, void *base, char *value, char *why,
                          size_t whylen);
static bool is_address(const char *value);
static bool is_absolute(const char *value);

/* The options, in --help order. A number's default is its bound in
 * bounds.h; the personality's own defaults (mode, log) are in
 * defaults(). */
static const struct option_row rows[] = {
    {.name = "inetd",
     .shorts = "",
     .kind = OPTION_FLAG,
     NO_FIELD,
     .help = "one SMTP session on stdin/stdout"},
    {.name = "daemon", .shorts = "d", .kind = OPTION_FLAG, NO_FIELD, .help = "listen and detach"},
    {.name = "foreground",
     .shorts = "f",
     .kind = OPTION_FLAG,
     NO_FIELD,
     .help = "listen in the foreground (implies -d)"},
    {.name = "interface",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(interface),
     .def_text = "127.0.0.1",
     .valid = is_address,
     .what = "an IPv4 or IPv6 address",
     .parse = parse_interface,
     .value_name = "IP",
     .help = "listen on IP (IPv4 or IPv6; default %D); repeatable, each on --port"},
    {.name = "port",
     .shorts = "p",
     .kind = OPTION_UNSIGNED,
     FIELD(port),
     .min = 0,
     .max = 65535,
     .def = 25,
     .what = "a port number (1-65535, or 0 for any free port)",
     .parse = parse_port,
     .value_name = "N",
     .help = "listen on port N (default %D; 0: pick one, print it);\n"
             "-p IP:PORT or -p [IPv6]:PORT: the same as --listen"},
    {.name = "listen",
     .shorts = "",
     .kind = OPTION_LIST,
     FIELD(listen),
     .parse = parse_listen,
     .value_name = "ENDPOINT[,OPT]...",
     .help = "also listen on IP:PORT, [IPv6]:PORT, *:PORT or unix:PATH\n"
             "(PORT 0: pick one, print it); OPT: tls (implicit TLS),\n"
             "mode=0660, owner=USER[:GROUP] (unix:); repeatable"},
    {.name = "pidfile",
     .shorts = "P",
     .kind = OPTION_STRING,
     FIELD(pidfile),
     .path = true,
     .value_name = "FILE",
     .help = "write the daemon's PID to FILE"},
    {.name = "user",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(run_user),
     .value_name = "USER[:GROUP]",
     .help = "run as USER after binding the port"},
    {.name = "log",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(log_file),
     .path = true,
     .parse = parse_log,
     .value_name = "none|syslog|stderr|FILE",
     .help = "where to log (default: none; mockmta: syslog, or stderr with -f)"},
    {.name = "log-level",
     .shorts = "l",
     .kind = OPTION_ENUM,
     FIELD(log_level),
     .def_text = "info",
     .names = level_names,
     .what = "priority",
     .label = "-l",
     .value_name = "LEVEL",
     .help = "emerg alert crit err warning notice info debug (default %D)"},
    {.name = "command",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(command),
     .def_text = "msmtp -f %F --",
     .value_name = "CMD",
     .help = "pipe each message to CMD (default: %D)"},
    {.name = "mailbox",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(mailbox),
     .path = true,
     .value_name = "FILE, MAILBOX",
     .help = "append each message to the mbox FILE instead\n(-: standard output, with -f; "
             "DIR/: a Maildir)"},
    {.name = "maildir",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(maildir),
     .path = true,
     .value_name = "DIR",
     .help = "store each message in the Maildir DIR instead"},
    {.name = "auth",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(auth_user),
     .parse = parse_auth,
     .value_name = "USER[,EVAL]",
     .help = "require AUTH as USER; password from EVAL's output, or the keyring"},
    {.name = "auth-file",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(auth_file),
     .path = true,
     .value_name = "FILE",
     .help = "require AUTH as one of the users of FILE (user:crypt-hash lines)"},
    {.name = "auth-accept-any",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(auth_accept_any),
     .help = "tests only: accept any user and password (loopback only)"},
    {.name = "auth-state",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(auth_state),
     .def_text = AUTH_STATE_FILE,
     .valid = is_absolute,
     .what = "an absolute path",
     .value_name = "FILE",
     .help = "--inetd: the AUTH brake's state, shared by the sessions (default %D)"},
    {.name = "tls-cert",
     .shorts = "c",
     .kind = OPTION_STRING,
     FIELD(tls_cert),
     .path = true,
     .value_name = "FILE",
     .help = "TLS certificate (enables STARTTLS)"},
    {.name = "tls-key",
     .shorts = "k",
     .kind = OPTION_STRING,
     FIELD(tls_key),
     .path = true,
     .value_name = "FILE",
     .help = "TLS private key"},
    {.name = "tls-ca",
     .shorts = "a",
     .kind = OPTION_STRING,
     FIELD(tls_ca),
     .path = true,
     .value_name = "FILE",
     .help = "CA file to verify client certificates"},
    {.name = "tls-required",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(tls_required),
     .help = "require STARTTLS before AUTH and MAIL"},
    {.name = "tls-implicit",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(tls_implicit),
     .help = "TLS from the first byte (port 465 style)"},
    {.name = "timeout",
     .shorts = "t",
     .kind = OPTION_UNSIGNED,
     FIELD(timeout),
     .min = 1,
     .max = 86400,
     .def = BOUND_TIMEOUT_SECONDS,
     .what = "a timeout in seconds (1-86400)",
     .label = "-t",
     .value_name = "SEC",
     .help = "SMTP idle timeout (default %D)"},
    {.name = "delivery-timeout",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(delivery_timeout),
     .min = 1,
     .max = 86400,
     .def = BOUND_DELIVERY_SECONDS,
     .what = "a timeout in seconds (1-86400)",
     .value_name = "SEC",
     .help = "time limit of the delivery command (default %D)"},
    {.name = "data-min-rate",
     .shorts = "",
     .kind = OPTION_SIZE,
     FIELD(data_min_rate),
     .min = 1,
     .max = 1ULL << 40,
     .def = BOUND_DATA_MIN_RATE,
     .what = "a rate (bytes a second, k, M, G)",
     .value_name = "N",
     .help = "DATA must end within the timeout + size/N seconds (default %D)"},
    {.name = "max-discard",
     .shorts = "",
     .kind = OPTION_SIZE,
     FIELD(max_discard),
     .min = 0,
     .max = 1ULL << 40,
     .def = BOUND_DISCARD,
     .what = "a size (bytes, k, M, G)",
     .value_name = "N",
     .help = "bytes of a too-big message read before 552 and close, k/M/G (default %D)"},
    {.name = "max-sessions",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(max_sessions),
     .min = 1,
     .max = 10000,
     .def = BOUND_SESSIONS,
     .what = "a number (1-10000)",
     .value_name = "N",
     .help = "concurrent sessions (default %D)"},
    {.name = "max-sessions-per-client",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(max_sessions_per_client),
     .min = 0,
     .max = 10000,
     .def = BOUND_SESSIONS_PER_CLIENT,
     .what = "a number (0-10000)",
     .value_name = "N",
     .help = "sessions per client address, an IPv6 client's /64 (default %D; 0: no limit)"},
    {.name = "client-limit-loopback",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(client_limit_loopback),
     .help = "apply --max-sessions-per-client to loopback clients too"},
    {.name = "max-recipients",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(max_recipients),
     .min = 1,
     .max = 100000,
     .def = BOUND_RECIPIENTS,
     .what = "a number (1-100000)",
     .value_name = "N",
     .help = "recipients per message (default %D), at most what\nfits the command's argument "
             "list"},
    {.name = "max-message-size",
     .shorts = "",
     .kind = OPTION_SIZE,
     FIELD(max_message_size),
     .min = 1,
     .max = 1ULL << 40,
     .def = BOUND_MESSAGE_SIZE,
     .what = "a size (bytes, k, M, G)",
     .value_name = "N",
     .help = "message size in bytes, k/M/G suffixes (default %D)"},
    {.name = "max-line-length",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(max_line_length),
     .min = 0,
     .max = 1 << 30,
     .def = BOUND_TEXT_LINE,
     .what = "a length (3 or more, 0: no limit)",
     .parse = parse_line_length,
     .value_name = "N",
     .help = "text line length with CRLF, 0: none; RFC 5321: 1000 (default %D)"},
    {.name = "max-errors",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(max_errors),
     .min = 1,
     .max = 100000,
     .def = BOUND_ERRORS,
     .what = "a number (1-100000)",
     .value_name = "N",
     .help = "client errors before 421 (default %D)"},
    {.name = "hostname",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(hostname),
     .parse = parse_hostname,
     .value_name = "NAME",
     .help = "name in the greeting and Received: (default: host name)"},
    {.name = "spool-dir",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(spool_dir),
     .path = true,
     .value_name = "DIR",
     .help = "where large messages are spooled (default $TMPDIR or /tmp)"},
    {.name = "queue",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(queue_dir),
     .path = true,
     .value_name = "DIR",
     .help = "250 means safely queued in DIR; a queue runner delivers\n(see QUEUE)"},
    {.name = "queue-retry",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(queue_retry),
     .min = 1,
     .max = 86400,
     .def = BOUND_QUEUE_RETRY_SECONDS,
     .what = "a delay in seconds (1-86400)",
     .value_name = "SEC",
     .help = "first retry delay after a temporary failure (default %D)"},
    {.name = "queue-retry-max",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(queue_retry_max),
     .min = 1,
     .max = 604800,
     .def = BOUND_QUEUE_RETRY_MAX_SECONDS,
     .what = "a delay in seconds (1-604800)",
     .value_name = "SEC",
     .help = "the retry delay doubles up to SEC (default %D)"},
    {.name = "queue-lifetime",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(queue_lifetime),
     .min = 1,
     .max = 10 * 366 * 86400,
     .def = BOUND_QUEUE_LIFETIME_SECONDS,
     .def_text = "5d",
     .what = "a duration (N, Ns, Nm, Nh or Nd)",
     .parse = parse_duration,
     .value_name = "DURATION",
     .help = "bounce what is still queued after DURATION, s/m/h/d\n(default %D)"},
    {.name = "queue-workers",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(queue_workers),
     .min = 1,
     .max = 100,
     .def = BOUND_QUEUE_WORKERS,
     .what = "a number (1-100)",
     .value_name = "N",
     .help = "queued deliveries at once (default %D)"},
    {.name = "queue-list",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(queue_list),
     .help = "list the queue (id, age, size, sender, recipients,\nattempts, last error), exit"},
    {.name = "json",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(queue_json),
     .help = "--queue-list as a JSON array"},
    {.name = "queue-flush",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(queue_flush),
     .help = "tell the running queue runner to retry everything now"},
    {.name = "queue-delete",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(queue_delete),
     .valid = queue_id_valid,
     .what = "a queue ID",
     .value_name = "ID",
     .help = "remove message ID from the queue, exit"},
    {.name = "queue-requeue",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(queue_requeue),
     .valid = queue_id_valid,
     .what = "a queue ID",
     .value_name = "ID",
     .help = "move failed message ID back into the queue, exit"},
    {.name = "queue-run",
     .shorts = "",
     .kind = OPTION_FLAG,
     FIELD(queue_run),
     .help = "deliver the queued messages that are due, then exit"},
    {.name = "fault",
     .shorts = "",
     .kind = OPTION_LIST,
     FIELD(faults),
     .value_name = "RULE",
     .help = "script a reply, drop or delay at a stage (repeatable;\nsee FAULTS)"},
    {.name = "faults",
     .shorts = "",
     .kind = OPTION_STRING,
     FIELD(faults_file),
     .path = true,
     .value_name = "FILE",
     .help = "read fault rules from FILE, one a line ('#' comments)"},
    {.name = "fault-seed",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(fault_seed),
     .min = 0,
     .max = 4294967295ULL,
     .def = 0,
     .what = "a seed (0-4294967295)",
     .value_name = "N",
     .help = "seed of the P% fault rules (default %D; 0: a random one, logged)"},
    {.name = "version",
     .shorts = "v",
     .kind = OPTION_VERSION,
     NO_FIELD,
     .help = "print the version"},
    {.name = "help", .shorts = "?h", .kind = OPTION_HELP, NO_FIELD, .help = "print this help"},
};

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

/* What one parse saw besides cfg: which rows were given. */
struct parse {
	struct config *cfg;
	bool given[N_ROWS];
};

/* options_table - see options.h */
const struct option_row *options_table(size_t *n)
{
	*n = N_ROWS;
	return rows;
}

/* row_named - the row of a long name (a name of the table: never NULL) */
static const struct option_row *row_named(const char *name)
{
	for (size_t i = 0; i < N_ROWS; i++)
		if (strcmp(rows[i].name, name) == 0)
			return &rows[i];
	return NULL;
}

/* given - whether the option called name was on the command line */
static bool given(const struct parse *p, const char *name)
{
	return p->given[row_named(name) - rows];
}

/* field - where row's value goes in base */
static void *field(const struct option_row *row, void *base)
{
	return (char *)base + row->field;
}

/* store_number - v into an unsigned or a size_t field */
static void store_number(const struct option_row *row, void *base, unsigned long long v)
{
	if (row->size == sizeof(size_t))
		*(size_t *)field(row, base) = (size_t)v;
	else
		*(unsigned *)field(row, base) = (unsigned)v;
}

/* parse_number - a whole number in [min, max], with k/M/G when sized */
static int parse_number(const char *s, unsigned long long min, unsigned long long max, bool sized,
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

/* not_what - the usual complaint: "'VALUE' is not WHAT" */
static int not_what(const struct option_row *row, const char *value, char *why, size_t whylen)
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
			*(int *)field(row, base) = i;
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
	struct config_list *list = field(row, base);
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
			*(bool *)field(row, base) = true;
		return 0;
	case OPTION_STRING:
		if (row->valid && !row->valid(value))
			return not_what(row, value, why, whylen);
		*(const char **)field(row, base) = value;
		return 0;
	case OPTION_UNSIGNED:
	case OPTION_SIZE:
		if (parse_number(value, row->min, row->max, row->kind == OPTION_SIZE, &v) < 0)
			return not_what(row, value, why, whylen);
		store_number(row, base, v);
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

/* is_address - an IPv4 or IPv6 address, for --interface */
static bool is_address(const char *value)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, value, buf) == 1 || inet_pton(AF_INET6, value, buf) == 1;
}

/* parse_interface - one more address for msmtpd's listener; the last
 * one also stays in cfg->interface */
static int parse_interface(const struct option_row *row, void *base, char *value, char *why,
                           size_t whylen)
{
	struct config *cfg = base;
	if (!is_address(value))
		return not_what(row, value, why, whylen);
	if (cfg->interfaces.n >= BOUND_LISTENERS) {
		snprintf(why, whylen, "given more than %d times", BOUND_LISTENERS);
		return -1;
	}
	cfg->interfaces.item[cfg->interfaces.n++] = value;
	*(const char **)field(row, base) = value;
	return 0;
}

/* add_listen - a --listen value (or -p IP:PORT) checked and kept in
 * order, listeners counted against BOUND_LISTENERS */
static int add_listen(struct config *cfg, char *value, char *why, size_t whylen)
{
	struct listen_spec ls;
	char err[300];
	if (listen_spec_parse(value, &ls, err, sizeof(err)) < 0) {
		/* without listen_spec's own "--listen: ": the caller names the option */
		snprintf(why, whylen, "%s", strncmp(err, "--listen: ", 10) ? err : err + 10);
		return -1;
	}
	if (cfg->listen.n >= BOUND_LISTENERS) {
		snprintf(why, whylen, "more than %d listeners", BOUND_LISTENERS);
		return -1;
	}
	cfg->listen.item[cfg->listen.n++] = value;
	return 0;
}

/* parse_listen - --listen=ENDPOINT[,OPTION]... (listen_spec.h) */
static int parse_listen(const struct option_row *row, void *base, char *value, char *why,
                        size_t whylen)
{
	(void)row; /* every parse hook has the same signature */
	return add_listen(base, value, why, whylen);
}

/* parse_port - -p N; mockmta's -p [IP:]PORT, an IP:PORT, is a --listen */
static int parse_port(const struct option_row *row, void *base, char *value, char *why,
                      size_t whylen)
{
	struct config *cfg = base;
	unsigned long long v;
	if (strchr(value, ':'))
		return add_listen(cfg, value, why, whylen);
	if (parse_number(value, row->min, row->max, false, &v) < 0)
		return not_what(row, value, why, whylen);
	store_number(row, base, v);
	cfg->port_given = true;
	return 0;
}

/* is_absolute - for --auth-state, which a forked session opens again */
static bool is_absolute(const char *value)
{
	return value[0] == '/';
}

/* parse_log - --log=none|syslog|stderr|FILE: a destination, or a file */
static int parse_log(const struct option_row *row, void *base, char *value, char *why,
                     size_t whylen)
{
	(void)why;
	(void)whylen;
	struct config *cfg = base;
	if (strcmp(value, "none") == 0) {
		cfg->log_dest = LOG_DEST_NONE;
	} else if (strcmp(value, "syslog") == 0) {
		cfg->log_dest = LOG_DEST_SYSLOG;
	} else if (strcmp(value, "stderr") == 0) {
		cfg->log_dest = LOG_DEST_STDERR;
	} else {
		cfg->log_dest = LOG_DEST_FILE;
		*(const char **)field(row, base) = value;
	}
	return 0;
}

/* parse_auth - --auth=USER[,EVAL], split at the first comma */
static int parse_auth(const struct option_row *row, void *base, char *value, char *why,
                      size_t whylen)
{
	struct config *cfg = base;
	char *comma = strchr(value, ',');
	if (comma == value) {
		snprintf(why, whylen, "the user name is empty");
		return -1;
	}
	if (comma) {
		*comma = '\0';
		if (comma[1] == '\0') {
			snprintf(why, whylen, "the password command after ',' is empty");
			return -1;
		}
		cfg->auth_eval = comma + 1;
	}
	*(const char **)field(row, base) = value;
	return 0;
}

/* parse_hostname - --hostname, held to options_hostname_ok; the value
 * is not repeated, since it may hold any byte */
static int parse_hostname(const struct option_row *row, void *base, char *value, char *why,
                          size_t whylen)
{
	if (!options_hostname_ok(value)) {
		snprintf(why, whylen,
		         "not a domain name or address literal (letters, digits, '-' and '.', or "
		         "[IPv4], [IPv6:...])");
		return -1;
	}
	*(const char **)field(row, base) = value;
	return 0;
}

/* parse_line_length - --max-line-length: 0 (none) or room for at least
 * one byte and the CRLF */
static int parse_line_length(const struct option_row *row, void *base, char *value, char *why,
                             size_t whylen)
{
	unsigned long long v;
	if (parse_number(value, row->min, row->max, false, &v) < 0 || (v > 0 && v < 3))
		return not_what(row, value, why, whylen);
	store_number(row, base, v);
	return 0;
}

/* options_hostname_ok - see options.h */
bool options_hostname_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 255)
		return false;
	if (name[0] == '[') { /* RFC 5321 4.1.3: IPv4 or IPv6 literal */
		char buf[64];
		unsigned char bin[16];
		if (n < 3 || name[n - 1] != ']' || n - 2 >= sizeof(buf))
			return false;
		memcpy(buf, name + 1, n - 2);
		buf[n - 2] = '\0';
		if (strncasecmp(buf, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, buf + 5, bin) == 1;
		return inet_pton(AF_INET, buf, bin) == 1;
	}
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = name[i];
		if (i == n || c == '.') {
			if (label == 0 || label > 63 || name[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* parse_duration - --queue-lifetime: seconds, or a number with s, m, h, d */
static int parse_duration(const struct option_row *row, void *base, char *value, char *why,
                          size_t whylen)
{
	unsigned long long secs;
	if (queue_parse_duration(value, &secs) < 0 || secs < row->min || secs > row->max)
		return not_what(row, value, why, whylen);
	store_number(row, base, secs);
	return 0;
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
	for (size_t i = 0; i < N_ROWS; i++)
		usage_row(&rows[i]);
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
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct option_row *row = &rows[i];
		if (row->kind == OPTION_UNSIGNED || row->kind == OPTION_SIZE)
			store_number(row, cfg, row->def);
		else if (row->kind == OPTION_STRING && row->def_text)
			*(const char **)field(row, cfg) = row->def_text;
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
static struct option long_options[N_ROWS + 1];
static char short_options[3 * N_ROWS + 2];

/* getopt_tables - long_options and short_options from the rows */
static void getopt_tables(void)
{
	if (long_options[0].name)
		return;
	size_t n = 0;
	short_options[n++] = ':'; /* a missing value is ':', not '?' */
	for (size_t i = 0; i < N_ROWS; i++) {
		bool value = rows[i].kind != OPTION_FLAG && rows[i].kind != OPTION_HELP &&
		             rows[i].kind != OPTION_VERSION;
		long_options[i] =
		    (struct option){rows[i].name, value ? required_argument : no_argument, NULL,
		                    LONG_BASE + (int)i};
		for (const char *s = rows[i].shorts; *s; s++) {
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
	for (size_t i = 0; i < N_ROWS; i++)
		if (c && strchr(rows[i].shorts, c))
			return &rows[i];
	return NULL;
}

/* long_matches - how many long options begin with the len bytes of name */
static int long_matches(const char *name, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < N_ROWS; i++)
		if (strncmp(rows[i].name, name, len) == 0)
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
	const struct option_row *row = c >= LONG_BASE ? &rows[c - LONG_BASE]
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
	p->given[row - rows] = true;
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
	for (size_t i = 0; i < N_ROWS; i++) {
		if (!rows[i].path)
			continue;
		const char **value = field(&rows[i], cfg);
		*value = absolute(*value);
	}
}
