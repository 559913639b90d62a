/*
 * session.h - one SMTP connection: drives the engine over smtp_io and
 *             carries out its events (spool, deliver, TLS, AUTH)
 *
 * Runs in its own process (a child of the listener, or the whole
 * process under --inetd), so whatever a client does ends with it.
 */
#ifndef SMTPIPE_SESSION_H
#define SMTPIPE_SESSION_H

#include <stdbool.h>

#include "config.h"

struct cmd_template;
struct tls_server;
struct auth_secret;
struct faults;

/* What every session shares, built once at start-up by main.c. */
struct server {
	const struct config *cfg;
	const struct cmd_template *command; /* NULL with a mailbox */
	struct tls_server *tls;             /* NULL without -c/-k */
	const struct auth_secret *auth;     /* NULL without --auth */
	const struct faults *faults;        /* --fault rules, NULL without */
	char hostname[256];
};

/* Where a connection came from, filled by the listener (or by
 * listener_origin for --inetd). */
struct session_origin {
	const char *listener; /* "127.0.0.1:25", "[::1]:25", "unix:/run/s.sock", "inetd" */
	bool tls;             /* implicit TLS on this listener (RFC 8314 3.3) */
	char peer[64];        /* "192.0.2.1", "2001:db8::1", "unix:UID", "local" */
	long uid;             /* a Unix-socket peer's uid (SO_PEERCRED), else -1 */
};

/* session_run - serve one client on fd_in/fd_out (the same socket, or
 * stdin/stdout) that came from *from; returns how it ended:
 * EXIT_KIND_OK after QUIT or a clean EOF between transactions,
 * EXIT_KIND_TIMEOUT after an idle timeout, EXIT_KIND_FAILURE otherwise.
 * The caller ignores SIGPIPE first, once per process: the listener
 * before it forks any session, main.c before an --inetd session. */
enum exit_kind session_run(const struct server *srv, int fd_in, int fd_out,
                           const struct session_origin *from);
/* session_reusable - whether the last session_run ended so cleanly
 * (QUIT, or EOF between transactions; no stop request, every reply
 * written, and no TLS, whose library frees memory smtpipe cannot
 * wipe) that its process may serve another client (--session-reuse);
 * its buffers are wiped either way */
bool session_reusable(void);

#endif
