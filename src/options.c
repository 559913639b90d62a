/*
 * options.c - one option table for both personalities
 *
 * The personality (from the program name) only picks defaults and exit
 * codes; every option works in both. Every bad value gives one line in
 * err and OPTIONS_ERROR, which main turns into exit 3, as msmtpd and
 * mockmta do.
 */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "bounds.h"
#include "cmd_template.h"
#include "config.h"
#include "listen_spec.h"
#include "tls.h"

/* The brake's state file under --inetd: systemd's RuntimeDirectory=smtpipe
 * or a directory the administrator makes; without it the brake falls back
 * to one delay per attempt in each process (auth.h). */
#define AUTH_STATE_FILE "/run/smtpipe/auth-state"

enum {
	OPT_INETD = 256,
	OPT_INTERFACE,
	OPT_LOG,
	OPT_COMMAND,
	OPT_AUTH,
	OPT_HELP,
	OPT_MAILBOX,
	OPT_MAX_SESSIONS,
	OPT_MAX_RECIPIENTS,
	OPT_MAX_MESSAGE_SIZE,
	OPT_MAX_LINE_LENGTH,
	OPT_MAX_ERRORS,
	OPT_DELIVERY_TIMEOUT,
	OPT_DATA_MIN_RATE,
	OPT_MAX_DISCARD,
	OPT_HOSTNAME,
	OPT_SPOOL_DIR,
	OPT_TLS_REQUIRED,
	OPT_TLS_IMPLICIT,
	OPT_USER,
	OPT_MAX_SESSIONS_PER_CLIENT,
	OPT_CLIENT_LIMIT_LOOPBACK,
	OPT_AUTH_STATE,
	OPT_LISTEN,
};

static const struct option long_options[] = {
    {"inetd", no_argument, NULL, OPT_INETD},
    {"interface", required_argument, NULL, OPT_INTERFACE},
    {"port", required_argument, NULL, 'p'},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"log", required_argument, NULL, OPT_LOG},
    {"command", required_argument, NULL, OPT_COMMAND},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"version", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, OPT_HELP},
    {"daemon", no_argument, NULL, 'd'},
    {"foreground", no_argument, NULL, 'f'},
    {"tls-cert", required_argument, NULL, 'c'},
    {"tls-key", required_argument, NULL, 'k'},
    {"tls-ca", required_argument, NULL, 'a'},
    {"log-level", required_argument, NULL, 'l'},
    {"pidfile", required_argument, NULL, 'P'},
    {"timeout", required_argument, NULL, 't'},
    {"mailbox", required_argument, NULL, OPT_MAILBOX},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"max-recipients", required_argument, NULL, OPT_MAX_RECIPIENTS},
    {"max-message-size", required_argument, NULL, OPT_MAX_MESSAGE_SIZE},
    {"max-line-length", required_argument, NULL, OPT_MAX_LINE_LENGTH},
    {"max-errors", required_argument, NULL, OPT_MAX_ERRORS},
    {"delivery-timeout", required_argument, NULL, OPT_DELIVERY_TIMEOUT},
    {"data-min-rate", required_argument, NULL, OPT_DATA_MIN_RATE},
    {"max-discard", required_argument, NULL, OPT_MAX_DISCARD},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"spool-dir", required_argument, NULL, OPT_SPOOL_DIR},
    {"tls-required", no_argument, NULL, OPT_TLS_REQUIRED},
    {"tls-implicit", no_argument, NULL, OPT_TLS_IMPLICIT},
    {"user", required_argument, NULL, OPT_USER},
    {"max-sessions-per-client", required_argument, NULL, OPT_MAX_SESSIONS_PER_CLIENT},
    {"client-limit-loopback", no_argument, NULL, OPT_CLIENT_LIMIT_LOOPBACK},
    {"auth-state", required_argument, NULL, OPT_AUTH_STATE},
    {NULL, 0, NULL, 0},
};

static const char *const level_names[] = {"emerg",   "alert",  "crit", "err",
                                          "warning", "notice", "info", "debug"};

/* config_exit_code - see config.h */
int config_exit_code(const struct config *cfg, enum exit_kind kind)
{
	bool mock = cfg->personality == PERSONALITY_MOCKMTA;
	switch (kind) {
	case EXIT_KIND_OK:
		return 0;
	case EXIT_KIND_TIMEOUT:
		return mock ? 2 : 1;
	case EXIT_KIND_USAGE:
		return 3;
	case EXIT_KIND_STARTUP:
		return mock ? 1 : 3;
	case EXIT_KIND_FAILURE:
	default:
		return 1;
	}
}

/* usage - the --help text */
static void usage(const struct config *cfg)
{
	printf("Usage: %s [option...] [MAILBOX]\n"
	       "       mockmta [-dfv?] [-c CERT] [-a CA] [-k KEY] [-l LEVEL] [-P FILE] [-p PORT] "
	       "[-t SEC] MAILBOX\n"
	       "A small SMTP server that pipes each message to a command or appends it to an "
	       "mbox.\n\n"
	       "  --inetd                  one SMTP session on stdin/stdout\n"
	       "  -d, --daemon             listen and detach\n"
	       "  -f, --foreground         listen in the foreground (implies -d)\n"
	       "  --interface=IP           listen on IP (IPv4 or IPv6; default 127.0.0.1)\n"
	       "  -p, --port=N             listen on port N (default 25; 0: pick one, print it)\n"
	       "  -p IP:PORT, -p [IPv6]:PORT  the same as --listen=IP:PORT\n"
	       "  --listen=ENDPOINT[,OPT]  also listen on IP:PORT, [IPv6]:PORT, *:PORT or\n"
	       "                           unix:PATH; OPT: tls (implicit TLS), mode=0660,\n"
	       "                           owner=USER[:GROUP] (unix:); repeatable\n"
	       "  -P, --pidfile=FILE       write the daemon's PID to FILE\n"
	       "  --user=USER[:GROUP]      run as USER after binding the port\n"
	       "  --log=none|syslog|stderr|FILE  where to log (default: none; mockmta: syslog, or "
	       "stderr with -f)\n"
	       "  -l, --log-level=LEVEL    emerg alert crit err warning notice info debug "
	       "(default info)\n"
	       "  --command=CMD            pipe each message to CMD (default: msmtp -f %%F --)\n"
	       "  --mailbox=FILE, MAILBOX  append each message to the mbox FILE instead\n"
	       "  --auth=USER[,EVAL]       require AUTH as USER; password from EVAL's output, or "
	       "the keyring\n"
	       "  --auth-state=FILE        --inetd: the AUTH brake's state, shared by the "
	       "sessions (default %s)\n"
	       "  -c, --tls-cert=FILE      TLS certificate (enables STARTTLS)\n"
	       "  -k, --tls-key=FILE       TLS private key\n"
	       "  -a, --tls-ca=FILE        CA file to verify client certificates\n"
	       "  --tls-required           require STARTTLS before AUTH and MAIL\n"
	       "  --tls-implicit           TLS from the first byte (port 465 style)\n"
	       "  -t, --timeout=SEC        SMTP idle timeout (default %u)\n"
	       "  --delivery-timeout=SEC   time limit of the delivery command (default %u)\n"
	       "  --data-min-rate=N        DATA must end within the timeout + size/N seconds "
	       "(default %u)\n"
	       "  --max-discard=N          bytes of a too-big message read before 552 and close, "
	       "k/M/G (default %lu)\n"
	       "  --max-sessions=N         concurrent sessions (default %u)\n"
	       "  --max-sessions-per-client=N  sessions per client address, an IPv6 client's "
	       "/64 (default %u; 0: no limit)\n"
	       "  --client-limit-loopback  apply --max-sessions-per-client to loopback "
	       "clients too\n"
	       "  --max-recipients=N       recipients per message (default %u), at most what\n"
	       "                           fits the command's argument list\n"
	       "  --max-message-size=N     message size in bytes, k/M/G suffixes (default %lu)\n"
	       "  --max-line-length=N      text line length with CRLF, 0: none; RFC 5321: 1000 "
	       "(default %u)\n"
	       "  --max-errors=N           client errors before 421 (default %u)\n"
	       "  --hostname=NAME          name in the greeting and Received: (default: host "
	       "name)\n"
	       "  --spool-dir=DIR          where large messages are spooled (default $TMPDIR or "
	       "/tmp)\n"
	       "  -v, --version            print the version\n"
	       "  -?, -h, --help           print this help\n",
	       cfg->progname, AUTH_STATE_FILE, BOUND_TIMEOUT_SECONDS, BOUND_DELIVERY_SECONDS,
	       BOUND_DATA_MIN_RATE, BOUND_DISCARD, BOUND_SESSIONS, BOUND_SESSIONS_PER_CLIENT,
	       BOUND_RECIPIENTS, BOUND_MESSAGE_SIZE, BOUND_TEXT_LINE, BOUND_ERRORS);
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

/* defaults - both personalities' starting point */
static void defaults(struct config *cfg, const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	base = base ? base + 1 : argv0;
	memset(cfg, 0, sizeof(*cfg));
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
	cfg->interface = "127.0.0.1";
	cfg->port = 25;
	cfg->log_level = LOG_INFO;
	cfg->command = "msmtp -f %F --";
	const char *tmp = getenv("TMPDIR");
	cfg->spool_dir = tmp && *tmp ? tmp : "/tmp";
	cfg->max_sessions = BOUND_SESSIONS;
	cfg->max_sessions_per_client = BOUND_SESSIONS_PER_CLIENT;
	cfg->auth_state = AUTH_STATE_FILE;
	cfg->max_recipients = BOUND_RECIPIENTS;
	cfg->max_message_size = BOUND_MESSAGE_SIZE;
	cfg->max_line_length = BOUND_TEXT_LINE;
	cfg->max_errors = BOUND_ERRORS;
	cfg->timeout = BOUND_TIMEOUT_SECONDS;
	cfg->delivery_timeout = BOUND_DELIVERY_SECONDS;
	cfg->data_min_rate = BOUND_DATA_MIN_RATE;
	cfg->max_discard = BOUND_DISCARD;
}

/* long_matches - how many long options begin with the len bytes of name */
static int long_matches(const char *name, size_t len)
{
	int n = 0;
	for (const struct option *o = long_options; o->name; o++)
		if (strncmp(o->name, name, len) == 0)
			n++;
	return n;
}

#define BAD(...)                                                                                   \
	do {                                                                                       \
		int n_ = snprintf(err, errlen, "%s: ", cfg->progname);                             \
		snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                              \
		return OPTIONS_ERROR;                                                              \
	} while (0)

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

/* add_listener - one --interface or --listen (or -p IP:PORT) value,
 * kept in order; a --listen value is parsed now so that a bad one is a
 * usage error. TEMPORARY: becomes a table row once options.c is one. */
static int add_listener(struct config *cfg, const char *text, bool interface, char *err,
                        size_t errlen)
{
	struct listen_spec ls;
	if (!interface && listen_spec_parse(text, &ls, err, errlen) < 0)
		return -1;
	if (cfg->nlisten >= BOUND_LISTENERS) {
		snprintf(err, errlen, "more than %d listeners", BOUND_LISTENERS);
		return -1;
	}
	cfg->listen[cfg->nlisten].text = text;
	cfg->listen[cfg->nlisten++].interface = interface;
	return 0;
}

/* options_parse - see options.h */
enum options_result options_parse(struct config *cfg, int argc, char **argv, char *err,
                                  size_t errlen)
{
	defaults(cfg, argc > 0 ? argv[0] : "smtpipe");
	bool inetd = false, daemon = false, fg = false, log_given = false, cmd_given = false;
	unsigned long long v;
	int c, li = -1;
	opterr = 0;
	optind = 0; /* 0, not 1: glibc then also forgets a half-read "-dfx" of an earlier call */
	while ((c = getopt_long(argc, argv, ":dfc:k:a:l:P:p:t:vh?", long_options, &li)) != -1) {
		char name[40];
		if (li >= 0)
			snprintf(name, sizeof(name), "--%s", long_options[li].name);
		else
			snprintf(name, sizeof(name), "-%c", c);
		li = -1;
		if (optarg && *optarg == '\0' && c != ':')
			BAD("%s: empty value", name);
		switch (c) {
		case OPT_INETD:
			inetd = true;
			break;
		case 'd':
			daemon = true;
			break;
		case 'f':
			fg = true;
			break;
		case OPT_INTERFACE: {
			unsigned char buf[16];
			if (inet_pton(AF_INET, optarg, buf) != 1 &&
			    inet_pton(AF_INET6, optarg, buf) != 1)
				BAD("--interface: '%s' is not an IPv4 or IPv6 address", optarg);
			cfg->interface = optarg;
			if (add_listener(cfg, optarg, true, err, errlen) < 0)
				return OPTIONS_ERROR;
			break;
		}
		case OPT_LISTEN:
			if (add_listener(cfg, optarg, false, err, errlen) < 0)
				return OPTIONS_ERROR;
			break;
		case 'p':
			if (strchr(optarg, ':')) { /* mockmta's -p [IP:]PORT */
				if (add_listener(cfg, optarg, false, err, errlen) < 0)
					return OPTIONS_ERROR;
				break;
			}
			cfg->port_given = true;
			if (parse_number(optarg, 0, 65535, false, &v) < 0)
				BAD("--port: '%s' is not a port number (1-65535, or 0 for any free "
				    "port)",
				    optarg);
			cfg->port = (unsigned)v;
			break;
		case OPT_LOG:
			log_given = true;
			if (strcmp(optarg, "none") == 0) {
				cfg->log_dest = LOG_DEST_NONE;
			} else if (strcmp(optarg, "syslog") == 0) {
				cfg->log_dest = LOG_DEST_SYSLOG;
			} else if (strcmp(optarg, "stderr") == 0) {
				cfg->log_dest = LOG_DEST_STDERR;
			} else {
				cfg->log_dest = LOG_DEST_FILE;
				cfg->log_file = optarg;
			}
			break;
		case 'l': {
			int lv = -1;
			for (int i = 0; i < 8; i++)
				if (strcasecmp(optarg, level_names[i]) == 0)
					lv = i;
			if (lv < 0)
				BAD("-l: unknown priority '%s' (emerg alert crit err warning "
				    "notice "
				    "info debug)",
				    optarg);
			cfg->log_level = lv;
			break;
		}
		case OPT_COMMAND:
			cfg->command = optarg;
			cmd_given = true;
			break;
		case OPT_AUTH: {
			char *comma = strchr(optarg, ',');
			if (comma == optarg)
				BAD("--auth: the user name is empty");
			if (comma) {
				*comma = '\0';
				if (comma[1] == '\0')
					BAD("--auth: the password command after ',' is empty");
				cfg->auth_eval = comma + 1;
			}
			cfg->auth_user = optarg;
			break;
		}
		case 'c':
			cfg->tls_cert = optarg;
			break;
		case 'k':
			cfg->tls_key = optarg;
			break;
		case 'a':
			cfg->tls_ca = optarg;
			break;
		case 'P':
			cfg->pidfile = optarg;
			break;
		case 't':
			if (parse_number(optarg, 1, 86400, false, &v) < 0)
				BAD("-t: '%s' is not a timeout in seconds (1-86400)", optarg);
			cfg->timeout = (unsigned)v;
			break;
		case OPT_MAILBOX:
			cfg->mailbox = optarg;
			break;
		case OPT_MAX_SESSIONS:
			if (parse_number(optarg, 1, 10000, false, &v) < 0)
				BAD("--max-sessions: '%s' is not a number (1-10000)", optarg);
			cfg->max_sessions = (unsigned)v;
			break;
		case OPT_MAX_SESSIONS_PER_CLIENT:
			if (parse_number(optarg, 0, 10000, false, &v) < 0)
				BAD("--max-sessions-per-client: '%s' is not a number (0-10000)",
				    optarg);
			cfg->max_sessions_per_client = (unsigned)v;
			break;
		case OPT_CLIENT_LIMIT_LOOPBACK:
			cfg->client_limit_loopback = true;
			break;
		case OPT_AUTH_STATE:
			if (optarg[0] != '/')
				BAD("--auth-state: '%s' is not an absolute path", optarg);
			cfg->auth_state = optarg;
			break;
		case OPT_MAX_RECIPIENTS:
			if (parse_number(optarg, 1, 100000, false, &v) < 0)
				BAD("--max-recipients: '%s' is not a number (1-100000)", optarg);
			cfg->max_recipients = (unsigned)v;
			break;
		case OPT_MAX_MESSAGE_SIZE:
			if (parse_number(optarg, 1, 1ULL << 40, true, &v) < 0)
				BAD("--max-message-size: '%s' is not a size (bytes, k, M, G)",
				    optarg);
			cfg->max_message_size = (size_t)v;
			break;
		case OPT_MAX_LINE_LENGTH:
			if (parse_number(optarg, 0, 1 << 30, false, &v) < 0 || (v > 0 && v < 3))
				BAD("--max-line-length: '%s' is not a length (3 or more, 0: no "
				    "limit)",
				    optarg);
			cfg->max_line_length = (size_t)v;
			break;
		case OPT_MAX_ERRORS:
			if (parse_number(optarg, 1, 100000, false, &v) < 0)
				BAD("--max-errors: '%s' is not a number (1-100000)", optarg);
			cfg->max_errors = (unsigned)v;
			break;
		case OPT_DELIVERY_TIMEOUT:
			if (parse_number(optarg, 1, 86400, false, &v) < 0)
				BAD("--delivery-timeout: '%s' is not a timeout in seconds "
				    "(1-86400)",
				    optarg);
			cfg->delivery_timeout = (unsigned)v;
			break;
		case OPT_DATA_MIN_RATE:
			if (parse_number(optarg, 1, 1ULL << 40, true, &v) < 0)
				BAD("--data-min-rate: '%s' is not a rate (bytes a second, k, M, G)",
				    optarg);
			cfg->data_min_rate = (size_t)v;
			break;
		case OPT_MAX_DISCARD:
			if (parse_number(optarg, 0, 1ULL << 40, true, &v) < 0)
				BAD("--max-discard: '%s' is not a size (bytes, k, M, G)", optarg);
			cfg->max_discard = (size_t)v;
			break;
		case OPT_HOSTNAME:
			if (!options_hostname_ok(optarg))
				BAD("--hostname: not a domain name or address literal "
				    "(letters, digits, '-' and '.', or [IPv4], [IPv6:...])");
			cfg->hostname = optarg;
			break;
		case OPT_SPOOL_DIR:
			cfg->spool_dir = optarg;
			break;
		case OPT_TLS_REQUIRED:
			cfg->tls_required = true;
			break;
		case OPT_TLS_IMPLICIT:
			cfg->tls_implicit = true;
			break;
		case OPT_USER:
			cfg->run_user = optarg;
			break;
		case 'v':
			version();
			return OPTIONS_EXIT;
		case 'h': /* what every user tries first */
		case OPT_HELP:
			usage(cfg);
			return OPTIONS_EXIT;
		case ':': {
			const char *arg = argv[optind - 1];
			if (strncmp(arg, "--", 2) == 0)
				BAD("%s needs a value", arg);
			BAD("-%c needs a value", optopt);
		}
		case '?': { /* glibc: also for an explicit -?, with optopt 0 */
			const char *arg = argv[optind - 1];
			if (optopt == '?' || strcmp(arg, "-?") == 0) {
				usage(cfg);
				return OPTIONS_EXIT;
			}
			if (strncmp(arg, "--", 2) != 0)
				BAD("unknown option -%c (try --help)", optopt);
			/* glibc sets optopt for a known long option given a value */
			int len = (int)strcspn(arg, "=");
			if (optopt)
				BAD("%.*s takes no value", len, arg);
			if (long_matches(arg + 2, (size_t)len - 2) > 1)
				BAD("ambiguous option %.*s (try --help)", len, arg);
			BAD("unknown option %.*s (try --help)", len, arg);
		}
		default:
			BAD("unknown option (try --help)");
		}
	}
	if (optind < argc - 1)
		BAD("too many arguments: '%s' (at most one MAILBOX)", argv[optind + 1]);
	if (optind == argc - 1) {
		if (!*argv[optind])
			BAD("MAILBOX is empty");
		if (cfg->mailbox)
			BAD("both --mailbox and MAILBOX given");
		cfg->mailbox = argv[optind];
	}
	if (cfg->mailbox && cmd_given)
		BAD("give either --command or a MAILBOX, not both");
	/* Every recipient is one argument of the command: a value whose
	 * argument list cannot be executed would answer 451 forever. */
	size_t most =
	    cfg->mailbox ? cfg->max_recipients : cmd_template_max_recipients(cfg->command);
	if (cfg->max_recipients > most)
		BAD("--max-recipients=%u: the command's argument list would not fit ARG_MAX with "
		    "addresses of %d octets; the largest allowed is %zu",
		    cfg->max_recipients, BOUND_PATH - 2, most);
	if (cfg->personality == PERSONALITY_MOCKMTA && !cfg->mailbox)
		BAD("MAILBOX is required (usage: mockmta [-dfv?] [-c CERT] [-a CA] [-k KEY] [-l "
		    "LEVEL] [-P FILE] [-p PORT] [-t SEC] MAILBOX)");
	if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL))
		BAD("-c/--tls-cert and -k/--tls-key go together");
	if ((cfg->tls_required || cfg->tls_implicit || cfg->tls_ca) && !cfg->tls_cert)
		BAD("--tls-required, --tls-implicit and -a need -c CERT and -k KEY");
	if (inetd && (daemon || fg))
		BAD("--inetd cannot be combined with -d or -f");
	if (inetd)
		cfg->mode = MODE_INETD;
	else if (fg)
		cfg->mode = MODE_FOREGROUND;
	else if (daemon)
		cfg->mode = MODE_DAEMON;
	if (cfg->personality == PERSONALITY_MOCKMTA && !log_given)
		cfg->log_dest = cfg->mode == MODE_FOREGROUND ? LOG_DEST_STDERR : LOG_DEST_SYSLOG;
	return OPTIONS_RUN;
}
