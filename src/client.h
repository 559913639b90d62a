/*
 * client.h - who a client is (peer text, uid, local or not, its key
 *            for the per-client count), and the one-line refusals
 */
#ifndef SMTPIPE_CLIENT_H
#define SMTPIPE_CLIENT_H

#include <stdbool.h>
#include <sys/socket.h>

struct config;
struct session_origin;

/* client_describe - from the peer address ss of socket fd: the key for
 * the per-client count (16 bytes, client.c), the peer text and uid in
 * *o, and whether the client is local (loopback or a Unix socket) */
void client_describe(int fd, const struct sockaddr_storage *ss, unsigned char key[16],
                     struct session_origin *o, bool *local);
/* client_limit - the per-client limit for a client (0: none): a local
 * client is exempt unless --client-limit-loopback */
unsigned client_limit(const struct config *cfg, bool local);
/* client_refuse - a one-line reply to a client that will not be served,
 * written without waiting (the listener never blocks on a client), then
 * the connection closed */
void client_refuse(int fd, const char *reply);
/* client_capped - the log line and the 421 for a client over its limit
 * (mine: its sessions already running) */
void client_capped(int fd, const struct session_origin *o, unsigned mine);

#endif
