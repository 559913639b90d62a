/*
 * listener.h - bind, accept, cap, fork, reap, signals, pidfile, detach
 *
 * One process per session. At the session cap the listener stops
 * polling the listening socket and the kernel backlog holds further
 * clients (s6-tcpserverd's choice), so no client is refused while a
 * slot may free up. Signals reach the main loop through a signalfd:
 * SIGCHLD reaps, SIGTERM/SIGINT stop accepting and wait for running
 * sessions, SIGHUP reloads TLS credentials.
 */
#ifndef SMTPIPE_LISTENER_H
#define SMTPIPE_LISTENER_H

#include <stddef.h>

struct server;

/* listener_systemd_adopt - take systemd's LISTEN_FDS before anything
 * runs: when LISTEN_PID names this process, every one of its sockets
 * (fds 3 .. 3+LISTEN_FDS-1) is made close-on-exec and fd 3 is kept for
 * listener_open; LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed
 * from the environment in every case. main calls it first. */
void listener_systemd_adopt(void);
/* listener_open - bind and listen (or take a LISTEN_FDS socket from
 * systemd); -1 with err filled: the caller exits with EXIT_KIND_STARTUP */
int listener_open(const struct server *srv, char *err, size_t errlen);
/* listener_run - serve until SIGTERM; returns the exit code */
int listener_run(const struct server *srv);
/* listener_drop_privileges - become USER[:GROUP] (listener_open does it
 * after binding; main calls it for --inetd); -1 with err filled */
int listener_drop_privileges(const char *spec, char *err, size_t errlen);

#endif
