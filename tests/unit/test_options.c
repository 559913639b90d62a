/*
 * test_options.c - both personalities' command lines: defaults, every
 *                  option, every error, --help/--version, exit codes
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"
#include "config.h"
#include "options.h"

#define MAXARGS 12
/* 64 letters: one more than a DNS label may have */
#define LONG_LABEL "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* The fields a case can check, each compared as a string. */
enum field {
	F_END,
	F_PERSONALITY,
	F_PROGNAME,
	F_MODE,
	F_INTERFACE,
	F_PORT,
	F_PIDFILE,
	F_USER,
	F_LOG_DEST,
	F_LOG_FILE,
	F_LOG_LEVEL,
	F_COMMAND,
	F_MAILBOX,
	F_SPOOL_DIR,
	F_AUTH_USER,
	F_AUTH_EVAL,
	F_TLS_CERT,
	F_TLS_KEY,
	F_TLS_CA,
	F_TLS_REQUIRED,
	F_TLS_IMPLICIT,
	F_HOSTNAME,
	F_MAX_SESSIONS,
	F_MAX_RECIPIENTS,
	F_MAX_MESSAGE_SIZE,
	F_MAX_LINE_LENGTH,
	F_MAX_ERRORS,
	F_TIMEOUT,
	F_DELIVERY_TIMEOUT,
};

static const char *const field_names[] = {
    "end",
    "personality",
    "progname",
    "mode",
    "interface",
    "port",
    "pidfile",
    "run_user",
    "log_dest",
    "log_file",
    "log_level",
    "command",
    "mailbox",
    "spool_dir",
    "auth_user",
    "auth_eval",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_required",
    "tls_implicit",
    "hostname",
    "max_sessions",
    "max_recipients",
    "max_message_size",
    "max_line_length",
    "max_errors",
    "timeout",
    "delivery_timeout",
};

/* str - a string field, "(null)" for NULL */
static const char *str(const char *s)
{
	return s ? s : "(null)";
}

/* field_value - field f of cfg as text, in buf */
static const char *field_value(const struct config *c, enum field f, char *buf, size_t len)
{
	static const char *const modes[] = {"inetd", "foreground", "daemon"};
	static const char *const dests[] = {"none", "syslog", "file", "stderr"};
	switch (f) {
	case F_PERSONALITY:
		return c->personality == PERSONALITY_MOCKMTA ? "mockmta" : "smtpipe";
	case F_PROGNAME:
		return str(c->progname);
	case F_MODE:
		return modes[c->mode];
	case F_INTERFACE:
		return str(c->interface);
	case F_PORT:
		snprintf(buf, len, "%u", c->port);
		return buf;
	case F_PIDFILE:
		return str(c->pidfile);
	case F_USER:
		return str(c->run_user);
	case F_LOG_DEST:
		return dests[c->log_dest];
	case F_LOG_FILE:
		return str(c->log_file);
	case F_LOG_LEVEL:
		snprintf(buf, len, "%d", c->log_level);
		return buf;
	case F_COMMAND:
		return str(c->command);
	case F_MAILBOX:
		return str(c->mailbox);
	case F_SPOOL_DIR:
		return str(c->spool_dir);
	case F_AUTH_USER:
		return str(c->auth_user);
	case F_AUTH_EVAL:
		return str(c->auth_eval);
	case F_TLS_CERT:
		return str(c->tls_cert);
	case F_TLS_KEY:
		return str(c->tls_key);
	case F_TLS_CA:
		return str(c->tls_ca);
	case F_TLS_REQUIRED:
		return c->tls_required ? "1" : "0";
	case F_TLS_IMPLICIT:
		return c->tls_implicit ? "1" : "0";
	case F_HOSTNAME:
		return str(c->hostname);
	case F_MAX_SESSIONS:
		snprintf(buf, len, "%u", c->max_sessions);
		return buf;
	case F_MAX_RECIPIENTS:
		snprintf(buf, len, "%u", c->max_recipients);
		return buf;
	case F_MAX_MESSAGE_SIZE:
		snprintf(buf, len, "%zu", c->max_message_size);
		return buf;
	case F_MAX_LINE_LENGTH:
		snprintf(buf, len, "%zu", c->max_line_length);
		return buf;
	case F_MAX_ERRORS:
		snprintf(buf, len, "%u", c->max_errors);
		return buf;
	case F_TIMEOUT:
		snprintf(buf, len, "%u", c->timeout);
		return buf;
	case F_DELIVERY_TIMEOUT:
		snprintf(buf, len, "%u", c->delivery_timeout);
		return buf;
	case F_END:
		break;
	}
	return "?";
}

/* A command line: the words are copied, since options_parse may write
 * into them (--auth splits at the comma) and cfg points into them. */
struct cmdline {
	int argc;
	char *argv[MAXARGS + 1];
};

/* cmdline_new - copy the NULL-terminated words */
static void cmdline_new(struct cmdline *cl, const char *const *words)
{
	memset(cl, 0, sizeof(*cl));
	while (cl->argc < MAXARGS && words[cl->argc]) {
		cl->argv[cl->argc] = strdup(words[cl->argc]);
		assert_non_null(cl->argv[cl->argc]);
		cl->argc++;
	}
}

/* cmdline_free - after the last look at the config */
static void cmdline_free(struct cmdline *cl)
{
	for (int i = 0; i < cl->argc; i++)
		free(cl->argv[i]);
}

/* joined - the words as one string for messages */
static const char *joined(const char *const *words)
{
	static char buf[512];
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; words[i] && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", words[i]);
	return buf;
}

struct check {
	enum field f;
	const char *want;
};

static const struct {
	const char *args[MAXARGS];
	struct check checks[10]; /* ends at F_END */
} good[] = {
    /* smtpipe: msmtpd's defaults */
    {{"smtpipe"},
     {{F_PERSONALITY, "smtpipe"},
      {F_PROGNAME, "smtpipe"},
      {F_MODE, "foreground"},
      {F_INTERFACE, "127.0.0.1"},
      {F_PORT, "25"},
      {F_LOG_DEST, "none"},
      {F_LOG_LEVEL, "6"},
      {F_COMMAND, "msmtp -f %F --"}}},
    {{"smtpipe"},
     {{F_MAILBOX, "(null)"},
      {F_AUTH_USER, "(null)"},
      {F_AUTH_EVAL, "(null)"},
      {F_TLS_CERT, "(null)"},
      {F_TLS_REQUIRED, "0"},
      {F_TLS_IMPLICIT, "0"},
      {F_HOSTNAME, "(null)"},
      {F_PIDFILE, "(null)"}}},
    {{"smtpipe"},
     {{F_MAX_SESSIONS, "16"},
      {F_MAX_RECIPIENTS, "100"},
      {F_MAX_MESSAGE_SIZE, "67108864"},
      {F_MAX_LINE_LENGTH, "0"},
      {F_MAX_ERRORS, "20"},
      {F_TIMEOUT, "300"},
      {F_DELIVERY_TIMEOUT, "300"},
      {F_USER, "(null)"}}},
    {{"/usr/local/bin/msmtpd"},
     {{F_PERSONALITY, "smtpipe"}, {F_PROGNAME, "msmtpd"}, {F_MODE, "foreground"}}},
    {{"./build/smtpipe-test"}, {{F_PERSONALITY, "smtpipe"}, {F_PROGNAME, "smtpipe"}}},
    {{"smtpipe", "--inetd"}, {{F_MODE, "inetd"}}},
    {{"smtpipe", "-d"}, {{F_MODE, "daemon"}, {F_LOG_DEST, "none"}}},
    {{"smtpipe", "--daemon"}, {{F_MODE, "daemon"}}},
    {{"smtpipe", "-f"}, {{F_MODE, "foreground"}, {F_LOG_DEST, "none"}}},
    {{"smtpipe", "--foreground"}, {{F_MODE, "foreground"}}},
    /* mockmta: mockmta's defaults */
    {{"mockmta", "box"},
     {{F_PERSONALITY, "mockmta"},
      {F_PROGNAME, "mockmta"},
      {F_MODE, "inetd"},
      {F_MAILBOX, "box"},
      {F_LOG_DEST, "syslog"},
      {F_LOG_LEVEL, "6"},
      {F_PORT, "25"},
      {F_INTERFACE, "127.0.0.1"}}},
    {{"/usr/bin/mockmta", "-f", "box"}, {{F_MODE, "foreground"}, {F_LOG_DEST, "stderr"}}},
    {{"mockmta", "-d", "box"}, {{F_MODE, "daemon"}, {F_LOG_DEST, "syslog"}}},
    {{"mockmta", "-d", "-f", "box"}, {{F_MODE, "foreground"}}},
    {{"mockmta", "-df", "box"}, {{F_MODE, "foreground"}}},
    {{"mockmta", "-f", "--log=none", "box"}, {{F_LOG_DEST, "none"}}},
    {{"mockmta", "--log=/var/log/m.log", "box"},
     {{F_LOG_DEST, "file"}, {F_LOG_FILE, "/var/log/m.log"}}},
    {{"mockmta", "-l", "debug", "-p", "2525", "-t", "5", "-P", "/run/m.pid", "box"},
     {{F_LOG_LEVEL, "7"},
      {F_PORT, "2525"},
      {F_TIMEOUT, "5"},
      {F_PIDFILE, "/run/m.pid"},
      {F_MAILBOX, "box"}}},
    {{"mockmta", "-c", "c.pem", "-k", "k.pem", "-a", "ca.pem", "box"},
     {{F_TLS_CERT, "c.pem"}, {F_TLS_KEY, "k.pem"}, {F_TLS_CA, "ca.pem"}}},
    {{"mockmta", "--max-recipients=500", "box"}, {{F_MAX_RECIPIENTS, "500"}}},
    /* every option */
    {{"smtpipe", "--interface=::1"}, {{F_INTERFACE, "::1"}}},
    {{"smtpipe", "--interface=::"}, {{F_INTERFACE, "::"}}},
    {{"smtpipe", "--interface=0.0.0.0"}, {{F_INTERFACE, "0.0.0.0"}}},
    {{"smtpipe", "--interface", "10.1.2.3"}, {{F_INTERFACE, "10.1.2.3"}}},
    {{"smtpipe", "--interface=fe80::1"}, {{F_INTERFACE, "fe80::1"}}},
    {{"smtpipe", "--port=0"}, {{F_PORT, "0"}}},
    {{"smtpipe", "--port=1"}, {{F_PORT, "1"}}},
    {{"smtpipe", "--port=65535"}, {{F_PORT, "65535"}}},
    {{"smtpipe", "--port", "2525"}, {{F_PORT, "2525"}}},
    {{"smtpipe", "-p", "587"}, {{F_PORT, "587"}}},
    {{"smtpipe", "-p587"}, {{F_PORT, "587"}}},
    {{"smtpipe", "--log=none"}, {{F_LOG_DEST, "none"}}},
    {{"smtpipe", "--log=syslog"}, {{F_LOG_DEST, "syslog"}}},
    {{"smtpipe", "--log=stderr"}, {{F_LOG_DEST, "stderr"}}},
    {{"smtpipe", "--log=/tmp/smtpipe.log"},
     {{F_LOG_DEST, "file"}, {F_LOG_FILE, "/tmp/smtpipe.log"}}},
    {{"smtpipe", "--log=syslog", "--log=none"}, {{F_LOG_DEST, "none"}}},
    {{"smtpipe", "-l", "emerg"}, {{F_LOG_LEVEL, "0"}}},
    {{"smtpipe", "-l", "alert"}, {{F_LOG_LEVEL, "1"}}},
    {{"smtpipe", "-l", "crit"}, {{F_LOG_LEVEL, "2"}}},
    {{"smtpipe", "-l", "err"}, {{F_LOG_LEVEL, "3"}}},
    {{"smtpipe", "--log-level=warning"}, {{F_LOG_LEVEL, "4"}}},
    {{"smtpipe", "--log-level=notice"}, {{F_LOG_LEVEL, "5"}}},
    {{"smtpipe", "--log-level=info"}, {{F_LOG_LEVEL, "6"}}},
    {{"smtpipe", "-l", "DEBUG"}, {{F_LOG_LEVEL, "7"}}},
    {{"smtpipe", "--command=cat -"}, {{F_COMMAND, "cat -"}, {F_MAILBOX, "(null)"}}},
    {{"smtpipe", "--command", "/usr/bin/msmtp -f %F -a work --"},
     {{F_COMMAND, "/usr/bin/msmtp -f %F -a work --"}}},
    {{"smtpipe", "--auth=bob"}, {{F_AUTH_USER, "bob"}, {F_AUTH_EVAL, "(null)"}}},
    {{"smtpipe", "--auth=bob,echo secret"}, {{F_AUTH_USER, "bob"}, {F_AUTH_EVAL, "echo secret"}}},
    {{"smtpipe", "--auth=bob,pass show a,b"}, /* split at the first comma only */
     {{F_AUTH_USER, "bob"}, {F_AUTH_EVAL, "pass show a,b"}}},
    {{"smtpipe", "--auth=bob@example.org,cat /etc/pw"},
     {{F_AUTH_USER, "bob@example.org"}, {F_AUTH_EVAL, "cat /etc/pw"}}},
    {{"smtpipe", "-c", "c.pem", "-k", "k.pem"},
     {{F_TLS_CERT, "c.pem"}, {F_TLS_KEY, "k.pem"}, {F_TLS_CA, "(null)"}}},
    {{"smtpipe", "--tls-cert=c", "--tls-key=k", "--tls-ca=a"},
     {{F_TLS_CERT, "c"}, {F_TLS_KEY, "k"}, {F_TLS_CA, "a"}}},
    {{"smtpipe", "--tls-required", "-c", "c", "-k", "k"},
     {{F_TLS_REQUIRED, "1"}, {F_TLS_IMPLICIT, "0"}}},
    {{"smtpipe", "--tls-implicit", "-c", "c", "-k", "k"},
     {{F_TLS_IMPLICIT, "1"}, {F_TLS_REQUIRED, "0"}}},
    {{"smtpipe", "-P", "/run/smtpipe.pid"}, {{F_PIDFILE, "/run/smtpipe.pid"}}},
    {{"smtpipe", "--pidfile=p"}, {{F_PIDFILE, "p"}}},
    {{"smtpipe", "-t", "1"}, {{F_TIMEOUT, "1"}}},
    {{"smtpipe", "--timeout=86400"}, {{F_TIMEOUT, "86400"}}},
    {{"smtpipe", "--mailbox=/var/mail/x"}, {{F_MAILBOX, "/var/mail/x"}}},
    {{"smtpipe", "box.mbox"}, {{F_MAILBOX, "box.mbox"}, {F_MODE, "foreground"}}},
    {{"smtpipe", "box.mbox", "--port=2"}, /* options after the operand */
     {{F_MAILBOX, "box.mbox"}, {F_PORT, "2"}}},
    {{"smtpipe", "--", "-box"}, {{F_MAILBOX, "-box"}}},
    {{"smtpipe", "--max-sessions=1"}, {{F_MAX_SESSIONS, "1"}}},
    {{"smtpipe", "--max-sessions=500"}, {{F_MAX_SESSIONS, "500"}}},
    {{"smtpipe", "--max-recipients=1"}, {{F_MAX_RECIPIENTS, "1"}}},
    {{"smtpipe", "--max-message-size=1"}, {{F_MAX_MESSAGE_SIZE, "1"}}},
    {{"smtpipe", "--max-message-size=1000000"}, {{F_MAX_MESSAGE_SIZE, "1000000"}}},
    {{"smtpipe", "--max-message-size=10k"}, {{F_MAX_MESSAGE_SIZE, "10240"}}},
    {{"smtpipe", "--max-message-size=10K"}, {{F_MAX_MESSAGE_SIZE, "10240"}}},
    {{"smtpipe", "--max-message-size=25M"}, {{F_MAX_MESSAGE_SIZE, "26214400"}}},
    {{"smtpipe", "--max-message-size=2G"}, {{F_MAX_MESSAGE_SIZE, "2147483648"}}},
    {{"smtpipe", "--max-line-length=3"}, {{F_MAX_LINE_LENGTH, "3"}}},
    {{"smtpipe", "--max-line-length=0"}, {{F_MAX_LINE_LENGTH, "0"}}},
    {{"smtpipe", "--max-line-length=1000"}, {{F_MAX_LINE_LENGTH, "1000"}}},
    {{"smtpipe", "--max-line-length=65536"}, {{F_MAX_LINE_LENGTH, "65536"}}},
    {{"smtpipe", "--max-errors=1"}, {{F_MAX_ERRORS, "1"}}},
    {{"smtpipe", "--delivery-timeout=5"}, {{F_DELIVERY_TIMEOUT, "5"}}},
    {{"smtpipe", "--hostname=mx.example.org"}, {{F_HOSTNAME, "mx.example.org"}}},
    {{"smtpipe", "--hostname=[127.0.0.1]"}, {{F_HOSTNAME, "[127.0.0.1]"}}},
    {{"smtpipe", "--hostname=[IPv6:2001:db8::1]"}, {{F_HOSTNAME, "[IPv6:2001:db8::1]"}}},
    {{"smtpipe", "--hostname=Mail-1.EXAMPLE.org"}, {{F_HOSTNAME, "Mail-1.EXAMPLE.org"}}},
    {{"smtpipe", "--hostname=localhost"}, {{F_HOSTNAME, "localhost"}}},
    {{"smtpipe", "--spool-dir=/var/spool/smtpipe"}, {{F_SPOOL_DIR, "/var/spool/smtpipe"}}},
    {{"smtpipe", "--user=mail"}, {{F_USER, "mail"}}},
    {{"smtpipe", "--user=mail:mail"}, {{F_USER, "mail:mail"}}},
    /* getopt_long: an unambiguous prefix of a long option */
    {{"smtpipe", "--interf=::1", "--max-rec=7"}, {{F_INTERFACE, "::1"}, {F_MAX_RECIPIENTS, "7"}}},
    /* msmtpd's manual: the start-stop-daemon and systemd lines */
    {{"msmtpd", "--interface=::1", "--port=2500", "--log=/var/log/msmtpd.log",
      "--command=/usr/bin/msmtp -f %F --"},
     {{F_PROGNAME, "msmtpd"},
      {F_INTERFACE, "::1"},
      {F_PORT, "2500"},
      {F_LOG_FILE, "/var/log/msmtpd.log"},
      {F_COMMAND, "/usr/bin/msmtp -f %F --"}}},
};

static void test_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct cmdline cl;
		struct config cfg;
		char err[256] = "";
		cmdline_new(&cl, good[i].args);
		enum options_result r = options_parse(&cfg, cl.argc, cl.argv, err, sizeof(err));
		if (r != OPTIONS_RUN)
			fail_msg("'%s': got result %d (%s), want OPTIONS_RUN", joined(good[i].args),
			         r, err);
		for (const struct check *c = good[i].checks; c->f != F_END; c++) {
			char buf[64];
			const char *got = field_value(&cfg, c->f, buf, sizeof(buf));
			if (strcmp(got, c->want) != 0)
				fail_msg("'%s': got %s '%s', want '%s'", joined(good[i].args),
				         field_names[c->f], got, c->want);
		}
		cmdline_free(&cl);
	}
}

static const struct {
	const char *args[MAXARGS];
	const char *want; /* in the one line, after "PROGNAME: " */
} bad[] = {
    {{"smtpipe", "--port=70000"}, "--port: '70000' is not a port number (1-65535"},
    {{"smtpipe", "--port=65536"}, "--port: '65536' is not a port number"},
    {{"smtpipe", "--port=-1"}, "--port: '-1' is not a port number"},
    {{"smtpipe", "--port=+25"}, "--port: '+25' is not a port number"},
    {{"smtpipe", "--port=abc"}, "--port: 'abc' is not a port number"},
    {{"smtpipe", "--port=25x"}, "--port: '25x' is not a port number"},
    {{"smtpipe", "--port= 25"}, "--port: ' 25' is not a port number"},
    {{"smtpipe", "--port=99999999999999999999999"}, "is not a port number"},
    {{"smtpipe", "-p", "x"}, "--port: 'x' is not a port number"},
    {{"smtpipe", "--port="}, "--port: empty value"},
    {{"smtpipe", "-p", ""}, "-p: empty value"},
    {{"smtpipe", "--port"}, "--port needs a value"},
    {{"smtpipe", "-p"}, "-p needs a value"},
    {{"smtpipe", "-dp"}, "-p needs a value"},
    {{"smtpipe", "--interface=localhost"}, "--interface: 'localhost' is not an IPv4 or IPv6"},
    {{"smtpipe", "--interface=1.2.3"}, "--interface: '1.2.3' is not an IPv4 or IPv6"},
    {{"smtpipe", "--interface=256.0.0.1"}, "--interface: '256.0.0.1' is not"},
    {{"smtpipe", "--interface=::1::2"}, "--interface: '::1::2' is not"},
    {{"smtpipe", "--interface=127.0.0.1:25"}, "--interface: '127.0.0.1:25' is not"},
    {{"smtpipe", "--interface="}, "--interface: empty value"},
    {{"smtpipe", "--log="}, "--log: empty value"},
    {{"smtpipe", "-l", "loud"}, "-l: unknown priority 'loud'"},
    {{"smtpipe", "--log-level=7"}, "-l: unknown priority '7'"},
    {{"smtpipe", "--log-level="}, "--log-level: empty value"},
    {{"smtpipe", "--command="}, "--command: empty value"},
    {{"smtpipe", "--auth="}, "--auth: empty value"},
    {{"smtpipe", "--auth=,echo pw"}, "--auth: the user name is empty"},
    {{"smtpipe", "--auth=bob,"}, "--auth: the password command after ',' is empty"},
    {{"smtpipe", "-t", "0"}, "-t: '0' is not a timeout in seconds"},
    {{"smtpipe", "--timeout=86401"}, "-t: '86401' is not a timeout"},
    {{"smtpipe", "-t", "1s"}, "-t: '1s' is not a timeout"},
    {{"smtpipe", "--max-sessions=0"}, "--max-sessions: '0' is not a number"},
    {{"smtpipe", "--max-sessions=x"}, "--max-sessions: 'x' is not a number"},
    {{"smtpipe", "--max-recipients=0"}, "--max-recipients: '0' is not a number"},
    {{"smtpipe", "--max-message-size=0"}, "--max-message-size: '0' is not a size"},
    {{"smtpipe", "--max-message-size=12Q"}, "--max-message-size: '12Q' is not a size"},
    {{"smtpipe", "--max-message-size=1kk"}, "--max-message-size: '1kk' is not a size"},
    {{"smtpipe", "--max-message-size=k"}, "--max-message-size: 'k' is not a size"},
    {{"smtpipe", "--max-message-size=99999999999G"}, "is not a size"},
    {{"smtpipe", "--max-line-length=2"}, "--max-line-length: '2' is not a length"},
    {{"smtpipe", "--max-errors=0"}, "--max-errors: '0' is not a number"},
    {{"smtpipe", "--delivery-timeout=0"}, "--delivery-timeout: '0' is not a timeout"},
    {{"smtpipe", "--hostname=bad host"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a(b)"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a;b"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a\"b"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=<a>"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a\\b"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a\tb"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a\x01b"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=caf\xc3\xa9.example"},
     "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=-a.example"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a-.example"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a..b"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a.example."}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=[1.2.3.4"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=[300.1.1.1]"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=[IPv6:zz]"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=[x:y]"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=a_b.example"}, "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname=" LONG_LABEL ".example"},
     "--hostname: not a domain name or address literal"},
    {{"smtpipe", "--hostname="}, "--hostname: empty value"},
    {{"smtpipe", "--spool-dir="}, "--spool-dir: empty value"},
    {{"smtpipe", "--user="}, "--user: empty value"},
    {{"smtpipe", "-P", ""}, "-P: empty value"},
    {{"smtpipe", "--mailbox="}, "--mailbox: empty value"},
    {{"smtpipe", "-c", "c.pem"}, "-c/--tls-cert and -k/--tls-key go together"},
    {{"smtpipe", "-k", "k.pem"}, "-c/--tls-cert and -k/--tls-key go together"},
    {{"smtpipe", "--tls-required"}, "need -c CERT and -k KEY"},
    {{"smtpipe", "--tls-implicit"}, "need -c CERT and -k KEY"},
    {{"smtpipe", "-a", "ca.pem"}, "need -c CERT and -k KEY"},
    {{"smtpipe", "--inetd", "-d"}, "--inetd cannot be combined with -d or -f"},
    {{"smtpipe", "-f", "--inetd"}, "--inetd cannot be combined with -d or -f"},
    {{"smtpipe", "a.mbox", "b.mbox"}, "too many arguments: 'b.mbox'"},
    {{"smtpipe", "--mailbox=a", "b"}, "both --mailbox and MAILBOX given"},
    {{"smtpipe", "--command=cat", "box"}, "give either --command or a MAILBOX"},
    {{"smtpipe", ""}, "MAILBOX is empty"},
    {{"smtpipe", "--bogus"}, "unknown option --bogus (try --help)"},
    {{"smtpipe", "--bogus=1"}, "unknown option --bogus (try --help)"},
    {{"smtpipe", "--max"}, "ambiguous option --max"},
    {{"smtpipe", "--inetd=yes"}, "--inetd takes no value"},
    {{"smtpipe", "--tls-required=1"}, "--tls-required takes no value"},
    {{"smtpipe", "-x"}, "unknown option -x (try --help)"},
    {{"smtpipe", "-dz"}, "unknown option -z"},
    {{"msmtpd", "--port=0x19"}, "--port: '0x19' is not a port number"},
    {{"mockmta"}, "MAILBOX is required"},
    {{"mockmta", "-d", "-p", "2525"}, "MAILBOX is required"},
    {{"mockmta", "-z", "box"}, "unknown option -z"},
    {{"mockmta", "-p", "70000", "box"}, "--port: '70000' is not a port number"},
    {{"mockmta", "-l", "verbose", "box"}, "-l: unknown priority 'verbose'"},
    {{"mockmta", "-t", "x", "box"}, "-t: 'x' is not a timeout"},
    {{"mockmta", "-c", "c.pem", "box"}, "go together"},
    {{"mockmta", "box", "extra"}, "too many arguments: 'extra'"},
};

static void test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cmdline cl;
		struct config cfg;
		char err[512] = "";
		cmdline_new(&cl, bad[i].args);
		enum options_result r = options_parse(&cfg, cl.argc, cl.argv, err, sizeof(err));
		if (r != OPTIONS_ERROR)
			fail_msg("'%s': got result %d, want OPTIONS_ERROR", joined(bad[i].args), r);
		const char *prog = cfg.progname;
		size_t pl = strlen(prog);
		if (strncmp(err, prog, pl) != 0 || strncmp(err + pl, ": ", 2) != 0)
			fail_msg("'%s': got '%s', want it to start with '%s: '",
			         joined(bad[i].args), err, prog);
		if (!strstr(err, bad[i].want))
			fail_msg("'%s': got '%s', want '%s' in it", joined(bad[i].args), err,
			         bad[i].want);
		if (strchr(err, '\n'))
			fail_msg("'%s': got '%s', want one line", joined(bad[i].args), err);
		cmdline_free(&cl);
	}
}

/* The error line is cut to the caller's buffer, never overflowing it. */
static void test_bad_small_buffer(void **state)
{
	(void)state;
	const char *words[] = {"smtpipe", "--interface=not-an-address-at-all", NULL};
	struct cmdline cl;
	struct config cfg;
	char err[24];
	memset(err, 'Z', sizeof(err));
	cmdline_new(&cl, words);
	assert_int_equal(options_parse(&cfg, cl.argc, cl.argv, err, 16), OPTIONS_ERROR);
	if (strlen(err) != 15 || err[16] != 'Z')
		fail_msg("got '%s' (%zu bytes), want 15 bytes and no write past 16", err,
		         strlen(err));
	cmdline_free(&cl);
}

static void test_spool_dir_default(void **state)
{
	(void)state;
	static const struct {
		const char *tmpdir; /* NULL: unset */
		const char *want;
	} cases[] = {
	    {NULL, "/tmp"},
	    {"", "/tmp"},
	    {"/var/tmp", "/var/tmp"},
	};
	const char *saved = getenv("TMPDIR");
	char *copy = saved ? strdup(saved) : NULL;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].tmpdir)
			setenv("TMPDIR", cases[i].tmpdir, 1);
		else
			unsetenv("TMPDIR");
		const char *words[] = {"smtpipe", NULL};
		struct cmdline cl;
		struct config cfg;
		char err[128];
		cmdline_new(&cl, words);
		assert_int_equal(options_parse(&cfg, cl.argc, cl.argv, err, sizeof(err)),
		                 OPTIONS_RUN);
		if (strcmp(cfg.spool_dir, cases[i].want) != 0)
			fail_msg("TMPDIR=%s: got spool_dir '%s', want '%s'", str(cases[i].tmpdir),
			         cfg.spool_dir, cases[i].want);
		cmdline_free(&cl);
	}
	if (copy)
		setenv("TMPDIR", copy, 1);
	else
		unsetenv("TMPDIR");
	free(copy);
}

/* run_captured - options_parse with stdout in a buffer */
static enum options_result run_captured(const char *const *words, char *out, size_t outlen)
{
	char path[] = "/tmp/test_options.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	dup2(fd, STDOUT_FILENO);
	struct cmdline cl;
	struct config cfg;
	char err[256] = "";
	cmdline_new(&cl, words);
	enum options_result r = options_parse(&cfg, cl.argc, cl.argv, err, sizeof(err));
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	ssize_t n = pread(fd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	cmdline_free(&cl);
	return r;
}

static void test_help(void **state)
{
	(void)state;
	/* every option, short and long, and the defaults that are numbers */
	static const char *const listed[] = {
	    "--inetd",
	    "--interface=IP",
	    "127.0.0.1",
	    "--port=N",
	    "default 25",
	    "--log=none|syslog",
	    "--command=CMD",
	    "msmtp -f %F --",
	    "--auth=USER[,EVAL]",
	    "--version",
	    "--help",
	    "-d, --daemon",
	    "-f, --foreground",
	    "-c, --tls-cert",
	    "-k, --tls-key",
	    "-a, --tls-ca",
	    "-l, --log-level",
	    "default info",
	    "-P, --pidfile",
	    "-p, --port",
	    "-t, --timeout",
	    "-v, --version",
	    "-?, -h, --help",
	    "--mailbox=FILE",
	    "MAILBOX",
	    "--max-sessions=N",
	    "--max-recipients=N",
	    "--max-message-size",
	    "--max-line-length=N",
	    "--max-errors=N",
	    "--delivery-timeout=SEC",
	    "--hostname=NAME",
	    "--spool-dir=DIR",
	    "--tls-required",
	    "--tls-implicit",
	    "--user=USER[:GROUP]",
	    "(default 16)",
	    "(default 100)",
	    "(default 67108864)",
	    "0: none; RFC 5321: 1000 (default 0)",
	    "(default 20)",
	    "(default 300)",
	    "$TMPDIR or /tmp",
	};
	static const char *const flags[][2] = {{"smtpipe", "--help"}, {"smtpipe", "-h"},
	                                       {"mockmta", "-h"},     {"mockmta", "-?"},
	                                       {"msmtpd", "--help"},  {"mockmta", "--help"}};
	static char out[16384];
	for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
		const char *words[] = {flags[f][0], flags[f][1], NULL};
		enum options_result r = run_captured(words, out, sizeof(out));
		if (r != OPTIONS_EXIT)
			fail_msg("%s %s: got result %d, want OPTIONS_EXIT", flags[f][0],
			         flags[f][1], r);
		for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
			if (!strstr(out, listed[i]))
				fail_msg("%s %s: '%s' missing from\n%s", flags[f][0], flags[f][1],
				         listed[i], out);
		if (strncmp(out, "Usage: ", 7) != 0)
			fail_msg("%s %s: got '%.40s', want 'Usage: ...'", flags[f][0], flags[f][1],
			         out);
	}
	/* --help wins over a missing MAILBOX and later bad options */
	const char *words[] = {"mockmta", "--help", "--port=x", NULL};
	if (run_captured(words, out, sizeof(out)) != OPTIONS_EXIT)
		fail_msg("mockmta --help --port=x: got no help, want OPTIONS_EXIT");
}

static void test_version(void **state)
{
	(void)state;
	static const char *const flags[][2] = {{"smtpipe", "--version"},
	                                       {"smtpipe", "-v"},
	                                       {"mockmta", "-v"},
	                                       {"msmtpd", "--version"}};
	static char out[4096];
	char want[64];
	snprintf(want, sizeof(want), "smtpipe %s\n", SMTPIPE_VERSION);
	for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
		const char *words[] = {flags[f][0], flags[f][1], NULL};
		enum options_result r = run_captured(words, out, sizeof(out));
		if (r != OPTIONS_EXIT)
			fail_msg("%s %s: got result %d, want OPTIONS_EXIT", flags[f][0],
			         flags[f][1], r);
		if (strncmp(out, want, strlen(want)) != 0)
			fail_msg("%s %s: got '%s', want it to start with '%s'", flags[f][0],
			         flags[f][1], out, want);
		if (!strstr(out, "TLS (GnuTLS): ") || !strstr(out, "keyring (libsecret): "))
			fail_msg("%s %s: got '%s', want the TLS and keyring lines", flags[f][0],
			         flags[f][1], out);
#ifdef HAVE_LIBSECRET
		if (!strstr(out, "keyring (libsecret): yes"))
			fail_msg("built with libsecret: got '%s', want 'keyring (libsecret): yes'",
			         out);
#else
		if (!strstr(out, "keyring (libsecret): no"))
			fail_msg("built without libsecret: got '%s', want '... no'", out);
#endif
	}
}

/* Parsing twice in one process (as these tests do) starts afresh, even
 * after an error in the middle of a cluster of short options. */
static void test_reparse(void **state)
{
	(void)state;
	const char *first[] = {"smtpipe", "-dzf", "--port=7", NULL};
	const char *second[] = {"smtpipe", "--port=8", NULL};
	struct cmdline a, b;
	struct config cfg;
	char err[256];
	cmdline_new(&a, first);
	assert_int_equal(options_parse(&cfg, a.argc, a.argv, err, sizeof(err)), OPTIONS_ERROR);
	cmdline_free(&a);
	cmdline_new(&b, second);
	enum options_result r = options_parse(&cfg, b.argc, b.argv, err, sizeof(err));
	if (r != OPTIONS_RUN || cfg.port != 8 || cfg.mode != MODE_FOREGROUND)
		fail_msg("second parse: got result %d port %u mode %d, want RUN 8 foreground", r,
		         cfg.port, cfg.mode);
	cmdline_free(&b);
}

static void test_exit_codes(void **state)
{
	(void)state;
	static const struct {
		enum personality p;
		enum exit_kind kind;
		int want;
	} cases[] = {
	    {PERSONALITY_SMTPIPE, EXIT_KIND_OK, 0},
	    {PERSONALITY_SMTPIPE, EXIT_KIND_FAILURE, 1},
	    {PERSONALITY_SMTPIPE, EXIT_KIND_TIMEOUT, 1},
	    {PERSONALITY_SMTPIPE, EXIT_KIND_USAGE, 3},
	    {PERSONALITY_SMTPIPE, EXIT_KIND_STARTUP, 3},
	    {PERSONALITY_MOCKMTA, EXIT_KIND_OK, 0},
	    {PERSONALITY_MOCKMTA, EXIT_KIND_FAILURE, 1},
	    {PERSONALITY_MOCKMTA, EXIT_KIND_TIMEOUT, 2},
	    {PERSONALITY_MOCKMTA, EXIT_KIND_USAGE, 3},
	    {PERSONALITY_MOCKMTA, EXIT_KIND_STARTUP, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg = {.personality = cases[i].p};
		int got = config_exit_code(&cfg, cases[i].kind);
		if (got != cases[i].want)
			fail_msg("%s kind %d: got %d, want %d",
			         cases[i].p == PERSONALITY_MOCKMTA ? "mockmta" : "smtpipe",
			         cases[i].kind, got, cases[i].want);
	}
}

/* Every row of the table is one a reader can trust: a unique name and
 * letters, a field the size its kind stores, a default within its
 * bounds, and a --help line. */
static void test_table(void **state)
{
	(void)state;
	size_t n;
	const struct option_row *rows = options_table(&n);
	static char out[16384];
	const char *words[] = {"smtpipe", "--help", NULL};
	assert_int_equal(run_captured(words, out, sizeof(out)), OPTIONS_EXIT);
	for (size_t i = 0; i < n; i++) {
		const struct option_row *r = &rows[i];
		for (size_t j = 0; j < i; j++) {
			if (strcmp(rows[j].name, r->name) == 0)
				fail_msg("--%s: got it twice in the table, want once", r->name);
			for (const char *c = r->shorts; *c; c++)
				if (strchr(rows[j].shorts, *c))
					fail_msg("-%c: got it on --%s and --%s, want one", *c,
					         rows[j].name, r->name);
		}
		size_t want = 0;
		switch (r->kind) {
		case OPTION_FLAG:
			want = r->field == OPTION_NO_FIELD ? 0 : sizeof(bool);
			break;
		case OPTION_STRING:
			want = sizeof(const char *);
			break;
		case OPTION_UNSIGNED:
		case OPTION_SIZE:
			want = r->size == sizeof(size_t) ? sizeof(size_t) : sizeof(unsigned);
			if (r->def < r->min || r->def > r->max)
				fail_msg("--%s: got default %llu, want it in [%llu, %llu]", r->name,
				         r->def, r->min, r->max);
			if (!r->what)
				fail_msg("--%s: got no 'what' for its error message", r->name);
			break;
		case OPTION_ENUM:
			want = sizeof(int);
			break;
		case OPTION_LIST:
			want = sizeof(struct config_list);
			break;
		case OPTION_HELP:
		case OPTION_VERSION:
			want = 0;
			break;
		}
		if (r->size != want)
			fail_msg("--%s: got a field of %zu bytes, want %zu for its kind", r->name,
			         r->size, want);
		if (r->path && r->size != sizeof(const char *))
			fail_msg("--%s: a path option whose field is not a string", r->name);
		char line[64];
		snprintf(line, sizeof(line), "--%s%s", r->name, r->value_name ? "=" : "\n");
		if (r->value_name && !strstr(out, line))
			fail_msg("--%s: got no '%s' in --help", r->name, line);
		snprintf(line, sizeof(line), "--%s ", r->name);
		if (!r->value_name && !strstr(out, line))
			fail_msg("--%s: got no line in --help", r->name);
		if (!r->help || !*r->help)
			fail_msg("--%s: got no help text", r->name);
	}
}

/* A repeatable option keeps every value in order, up to its bound; one
 * more is refused, not dropped. No row of this kind exists yet (--listen
 * and --fault will be), so a row of the test's own drives it. */
static void test_list_kind(void **state)
{
	(void)state;
	struct holder {
		int before;
		struct config_list list;
		int after;
	} h;
	const struct option_row row = {.name = "repeat",
	                               .shorts = "",
	                               .kind = OPTION_LIST,
	                               .field = offsetof(struct holder, list),
	                               .size = sizeof(struct config_list)};
	static char values[BOUND_OPTION_REPEATS + 1][16];
	char why[128];
	memset(&h, 0, sizeof(h));
	for (int i = 0; i <= BOUND_OPTION_REPEATS; i++) {
		snprintf(values[i], sizeof(values[i]), "v%d", i);
		int rc = options_store(&row, &h, values[i], why, sizeof(why));
		if (i < BOUND_OPTION_REPEATS && rc != 0)
			fail_msg("value %d: got -1 (%s), want it kept", i, why);
		if (i == BOUND_OPTION_REPEATS && (rc != -1 || !strstr(why, "more than 64 times")))
			fail_msg("value %d: got %d '%s', want -1 'given more than 64 times'", i, rc,
			         why);
	}
	assert_int_equal(h.list.n, BOUND_OPTION_REPEATS);
	for (int i = 0; i < BOUND_OPTION_REPEATS; i++)
		if (strcmp(h.list.item[i], values[i]) != 0)
			fail_msg("item %d: got '%s', want '%s'", i, h.list.item[i], values[i]);
	if (h.before || h.after)
		fail_msg("got a write outside the list");
}

/* -d: every path option becomes absolute against the start-up
 * directory; absolute paths, unset paths and other strings stay. */
static void test_absolute_paths(void **state)
{
	(void)state;
	const char *words[] = {"smtpipe", "-d",         "--log=l.log", "-P",    "run/x.pid",
	                       "-c",      "/etc/c.pem", "-k",          "k.pem", "--spool-dir",
	                       "spool",   "box",        NULL};
	struct cmdline cl;
	struct config cfg;
	char err[256], cwd[4096], want[4200];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	cmdline_new(&cl, words);
	assert_int_equal(options_parse(&cfg, cl.argc, cl.argv, err, sizeof(err)), OPTIONS_RUN);
	options_absolute_paths(&cfg);
	const struct {
		const char *got, *rel;
	} paths[] = {{cfg.log_file, "l.log"},
	             {cfg.pidfile, "run/x.pid"},
	             {cfg.tls_key, "k.pem"},
	             {cfg.spool_dir, "spool"},
	             {cfg.mailbox, "box"}};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		snprintf(want, sizeof(want), "%s/%s", cwd, paths[i].rel);
		if (strcmp(paths[i].got, want) != 0)
			fail_msg("got '%s', want '%s'", paths[i].got, want);
		free((char *)paths[i].got);
	}
	if (strcmp(cfg.tls_cert, "/etc/c.pem") != 0 || cfg.tls_ca != NULL ||
	    strcmp(cfg.command, "msmtp -f %F --") != 0)
		fail_msg("got cert '%s' ca '%s' command '%s', want them unchanged", cfg.tls_cert,
		         str(cfg.tls_ca), cfg.command);
	cmdline_free(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_bad_small_buffer),
	    cmocka_unit_test(test_spool_dir_default),
	    cmocka_unit_test(test_help),
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_reparse),
	    cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_list_kind),
	    cmocka_unit_test(test_absolute_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
