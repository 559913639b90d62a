/*
 * listener.h - bind, accept, cap, fork, reap, signals (the pid file and
 *              detaching: daemon.h)
 *
 * One process per session. At the session cap the listener stops
 * polling the listening socket and the kernel backlog holds further
 * clients (s6-tcpserverd's choice), so no client is refused while a
 * slot may free up. Signals reach the main loop through a signalfd:
 * SIGCHLD reaps, SIGTERM/SIGINT stop accepting and wait for running
 * sessions, SIGHUP reopens the log file and reloads TLS credentials
 * (sessions ignore it). A client over --max-sessions-per-client gets
 * 421 4.7.0; a failed fork() 421 4.3.2 and a back-off. Spare session
 * processes (--spare-sessions) are forked ahead of their clients and
 * accept one client each themselves; SIGHUP replaces them.
 */
#ifndef SMTPIPE_LISTENER_H
#define SMTPIPE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct session_origin;

/* listener_systemd_adopt - take systemd's LISTEN_FDS before anything
 * runs: when LISTEN_PID names this process, every one of its sockets
 * (fds 3 .. 3+LISTEN_FDS-1) is made close-on-exec and fd 3 is kept for
 * listener_open; LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed
 * from the environment in every case. main calls it first. */
void listener_systemd_adopt(void);
/* listener_open - bind and listen on every listener of the command
 * line (or take the LISTEN_FDS sockets from systemd); -1 with err
 * filled and nothing left open or made: the caller exits with
 * EXIT_KIND_STARTUP */
int listener_open(const struct server *srv, char *err, size_t errlen);
/* listener_run - serve until SIGTERM; returns the exit code */
/* listener_origin - *o for a session on fd that no listener accepted
 * (--inetd): the peer from getpeername (a Unix socket: "unix:UID" from
 * SO_PEERCRED; not a socket: "local"), and the same environment for
 * its commands as a listener's session gets (SMTPIPE_CLIENT,
 * SMTPIPE_CLIENT_UID, SMTPIPE_LISTENER) */
void listener_origin(int fd, const char *name, bool tls, struct session_origin *o);
int listener_run(const struct server *srv);
/* listener_session_signals - a session ignores SIGHUP (a hang-up or
 * `pkill -HUP` must not cut a delivery short); commands get it back
 * at their default (deliver_pipe) */
void listener_session_signals(void);

#endif
