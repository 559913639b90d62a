/*
 * spare.h - a spare session process's life (--spare-sessions), and
 *           its next clients (--session-reuse)
 */
#ifndef SMTPIPE_SPARE_H
#define SMTPIPE_SPARE_H

struct listen_socket;
struct server;
struct session_origin;

/* What a spare keeps of the daemon's: the listening sockets, the two
 * pipe ends it uses, and how a session the daemon accepted is served
 * (for a spare without --session-reuse: the same, so that it exits the
 * same way). */
struct spare_env {
	const struct listen_socket *socks;
	unsigned nsocks;
	int retire_fd; /* read end: EOF ends this generation of spares */
	int bell_fd;   /* write end: one byte when a client was taken or refused */
	/* serve the client on fd and exit: the listener's serve_one */
	void (*serve_one)(const struct server *srv, int fd, struct session_origin *o);
};

/* spare_run - the spare in slot i of generation gen, with its signal
 * mask set (SIGTERM and SIGINT blocked but while it waits): never
 * returns */
void spare_run(const struct server *srv, const struct spare_env *env, unsigned i, unsigned gen)
    __attribute__((noreturn));

#endif
