/*
 * config.h - the one configuration, filled by options.c, read by all
 *
 * Both personalities (smtpipe/msmtpd and mockmta) accept the union of
 * the options; the personality only picks defaults and exit codes.
 * Strings point into argv or into static storage and live as long as
 * the process.
 */
#ifndef SMTPIPE_CONFIG_H
#define SMTPIPE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "bounds.h"

enum personality {
	PERSONALITY_SMTPIPE, /* also when invoked as msmtpd */
	PERSONALITY_MOCKMTA,
};

enum run_mode {
	MODE_INETD,      /* one session on stdin/stdout */
	MODE_FOREGROUND, /* listen, stay attached */
	MODE_DAEMON,     /* listen, detach (mockmta -d) */
};

enum log_dest {
	LOG_DEST_NONE,
	LOG_DEST_SYSLOG, /* facility mail */
	LOG_DEST_FILE,
	LOG_DEST_STDERR,
};

/* What went wrong, turned into an exit code by config_exit_code(). */
enum exit_kind {
	EXIT_KIND_OK,
	EXIT_KIND_FAILURE, /* runtime failure, or a session that ended badly */
	EXIT_KIND_TIMEOUT, /* mockmta: timed out waiting for I/O */
	EXIT_KIND_USAGE,   /* bad command line */
	EXIT_KIND_STARTUP, /* cannot start: port in use, bad file, ... */
};

/* The values of a repeatable option (--listen, --fault), in the order
 * given; options.c refuses one more than BOUND_OPTION_REPEATS. */
struct config_list {
	size_t n;
	const char *item[BOUND_OPTION_REPEATS];
};

struct config {
	enum personality personality;
	const char *progname; /* for messages: "smtpipe", "msmtpd", "mockmta" */
	enum run_mode mode;

	/* listening */
	const char *interface; /* "127.0.0.1" */
	unsigned port;         /* 0: pick a free port, print it on stdout */
	const char *pidfile;   /* -P, NULL for none */
	const char *run_user;  /* --user=USER[:GROUP] after binding, or NULL */
	/* msmtpd's listener: every --interface (interface: the last one) on
	 * --port; with --listen only, when --port was given */
	struct config_list interfaces;
	struct config_list listen; /* --listen and -p IP:PORT values, in order (listen_spec.h) */
	bool port_given;           /* --port or -p N given */

	/* logging */
	enum log_dest log_dest;
	const char *log_file; /* with LOG_DEST_FILE */
	int log_level;        /* syslog priority, LOG_INFO by default */

	/* delivery: the command, unless mailbox or maildir is set */
	const char *command; /* "msmtp -f %F --" by default */
	const char *mailbox; /* positional MAILBOX or --mailbox; "-": stdout */
	const char *maildir; /* --maildir, or a MAILBOX ending in '/' */
	const char *spool_dir;

	/* --queue=DIR (queue.h, queue_run.h): 250 means queued, a runner delivers */
	const char *queue_dir;       /* NULL: no queue, 250 means handed on */
	unsigned queue_retry;        /* first delay after a temporary failure, seconds */
	unsigned queue_retry_max;    /* the doubled delay stops here */
	unsigned queue_lifetime;     /* seconds a message may stay queued */
	unsigned queue_workers;      /* deliveries at once */
	bool queue_list, queue_json; /* --queue-list [--json] */
	bool queue_flush, queue_run; /* --queue-flush, --queue-run */
	const char *queue_delete;    /* --queue-delete=ID */
	const char *queue_requeue;   /* --queue-requeue=ID */

	/* authentication */
	const char *auth_user;  /* --auth=USER[,EVAL], NULL when off */
	const char *auth_eval;  /* NULL: keyring, then prompt */
	const char *auth_state; /* --auth-state: the brake's file under --inetd */
	const char *auth_file;  /* --auth-file: user:hash lines, NULL when off */
	bool auth_accept_any;   /* --auth-accept-any: for test suites only */

	/* TLS */
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	bool tls_required; /* --tls-required: STARTTLS before AUTH and MAIL */
	bool tls_implicit; /* --tls-implicit: handshake first (RFC 8314) */

	const char *hostname; /* in the greeting and Received:, gethostname() */

	/* scripted replies (faults.h) */
	struct config_list faults; /* --fault=RULE, in order */
	const char *faults_file;   /* --faults=FILE: one rule a line, or NULL */
	unsigned fault_seed;       /* --fault-seed: 0 picks one (logged) */

	/* limits (defaults in bounds.h) */
	unsigned max_sessions;
	unsigned max_sessions_per_client; /* 0: no limit */
	bool client_limit_loopback;       /* count loopback clients too */
	unsigned spare_sessions;          /* pre-forked spares, at most max_sessions */
	unsigned session_reuse;           /* connections per session process (spares) */
	unsigned max_recipients;
	size_t max_message_size;
	size_t max_line_length; /* text lines in DATA, with CRLF */
	unsigned max_errors;
	unsigned timeout;          /* seconds of SMTP idle time */
	unsigned delivery_timeout; /* seconds a delivery command may run */
	size_t data_min_rate;      /* bytes per second DATA must keep up */
	size_t max_discard;        /* bytes of an over-size message dropped before closing */
};

/* config_exit_code - the exit code for kind under cfg's personality
 * (config.c) */
int config_exit_code(const struct config *cfg, enum exit_kind kind);

#endif
