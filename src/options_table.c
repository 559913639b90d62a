/*
 * options_table.c - the options themselves: one row each, in --help order
 *
 * Each row (options.h, struct option_row) says what one option is: its
 * names, its kind, its field in struct config, its bounds and default,
 * and its --help line. A value that needs more than its kind's parsing
 * gets a hook here, beside its row (parse_auth, parse_port...). How a
 * command line is read from these rows, and the checks between options,
 * are options.c's: that file handles kinds, never single options.
 */
#include "options.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bounds.h"
#include "config.h"
#include "listen_spec.h"
#include "options_impl.h"
#include "queue_format.h"

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
    {.name = "spare-sessions",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(spare_sessions),
     .min = 0,
     .max = 10000,
     .def = BOUND_SPARE_SESSIONS,
     .what = "a number (0-10000)",
     .value_name = "N",
     .help = "session processes forked ahead of their clients, at most\n--max-sessions "
             "(default %D; 0: fork when a client comes)"},
    {.name = "session-reuse",
     .shorts = "",
     .kind = OPTION_UNSIGNED,
     FIELD(session_reuse),
     .min = 1,
     .max = 10000,
     .def = BOUND_SESSION_REUSE,
     .what = "a number (1-10000)",
     .value_name = "N",
     .help = "connections a spare session process serves one after another,\n"
             "each after a clean end of the one before (default %D; needs\n--spare-sessions)"},
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
_Static_assert(N_ROWS <= OPTIONS_MAX_ROWS, "raise OPTIONS_MAX_ROWS in options_impl.h");

const struct option_row *const options_rows = rows;
const size_t options_n_rows = N_ROWS;

/* options_table - see options.h */
const struct option_row *options_table(size_t *n)
{
	*n = N_ROWS;
	return rows;
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
		return options_not_what(row, value, why, whylen);
	if (cfg->interfaces.n >= BOUND_LISTENERS) {
		snprintf(why, whylen, "given more than %d times", BOUND_LISTENERS);
		return -1;
	}
	cfg->interfaces.item[cfg->interfaces.n++] = value;
	*(const char **)options_field(row, base) = value;
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
	if (options_parse_number(value, row->min, row->max, false, &v) < 0)
		return options_not_what(row, value, why, whylen);
	options_store_number(row, base, v);
	cfg->port_given = true;
	return 0;
}

/* parse_duration - --queue-lifetime: seconds, or a number with s, m, h, d */
static int parse_duration(const struct option_row *row, void *base, char *value, char *why,
                          size_t whylen)
{
	unsigned long long secs;
	if (queue_parse_duration(value, &secs) < 0 || secs < row->min || secs > row->max)
		return options_not_what(row, value, why, whylen);
	options_store_number(row, base, secs);
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
		*(const char **)options_field(row, base) = value;
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
	*(const char **)options_field(row, base) = value;
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
	*(const char **)options_field(row, base) = value;
	return 0;
}

/* parse_line_length - --max-line-length: 0 (none) or room for at least
 * one byte and the CRLF */
static int parse_line_length(const struct option_row *row, void *base, char *value, char *why,
                             size_t whylen)
{
	unsigned long long v;
	if (options_parse_number(value, row->min, row->max, false, &v) < 0 || (v > 0 && v < 3))
		return options_not_what(row, value, why, whylen);
	options_store_number(row, base, v);
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
