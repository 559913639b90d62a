/*
 * listen_socket.h - the daemon's listening sockets, made or adopted
 *
 * Every listener of the command line, in order: msmtpd's (every
 * --interface on --port, all on one port), then each --listen and
 * -p IP:PORT (listen_spec.h); or, under systemd, every LISTEN_FDS
 * socket instead (one named tls or smtps speaks implicit TLS). A Unix
 * socket is made mode 0600 from birth, then given mode= and owner=,
 * after a stale one (a socket nobody listens on) is removed; a live
 * socket or anything else at its path stops start-up and is left
 * alone. Results: 0, or -1 with one line in err and nothing left open
 * or made.
 */
#ifndef SMTPIPE_LISTEN_SOCKET_H
#define SMTPIPE_LISTEN_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

struct config;

/* One listening socket. */
struct listen_socket {
	int fd;
	bool tls;       /* implicit TLS */
	bool announce;  /* asked for port 0: its port goes to stdout */
	bool unix_made; /* a Unix socket we made at path: removed at exit */
	char name[128]; /* the address bound, for the log: "127.0.0.1:25", "unix:/s" */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
};

/* listen_socket_systemd_adopt - see listener_systemd_adopt (listener.h) */
void listen_socket_systemd_adopt(void);
/* listen_socket_open - systemd's sockets, or the command line's; the
 * table of them through listen_socket_all */
int listen_socket_open(const struct config *cfg, char *err, size_t errlen);
/* listen_socket_all - the sockets, *n of them, in the order given */
struct listen_socket *listen_socket_all(unsigned *n);
/* listen_socket_port - the port l is bound to (0 for a Unix socket) */
unsigned listen_socket_port(const struct listen_socket *l);
/* listen_socket_close - close every socket; with remove, also remove
 * the Unix sockets made, while each is still the one made (a session
 * closes its copies without removing anything, and without writing to
 * the table: a session never uses it again) */
void listen_socket_close(bool remove);

#endif
