/*
 * tls.h - STARTTLS and implicit TLS through GnuTLS (the only file that
 *         includes GnuTLS)
 *
 * Credentials are loaded once at start-up (tls_server_new) and can be
 * reloaded on SIGHUP (tls_server_reload) without touching sessions that
 * already run. A connection is set up over two descriptors (the same
 * socket twice, or stdin/stdout in inetd mode). Built without GnuTLS,
 * tls_server_new fails with a clear message.
 */
#ifndef SMTPIPE_TLS_H
#define SMTPIPE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_server;
struct tls_conn;

/* tls_available - whether this build has TLS */
bool tls_available(void);
/* tls_server_new - load cert, key and optional CA (client certificates);
 * NULL with err filled on failure */
struct tls_server *tls_server_new(const char *cert, const char *key, const char *ca, char *err,
                                  size_t errlen);
/* tls_server_reload - read the files again; on failure keep the old
 * credentials and return -1 with err filled */
int tls_server_reload(struct tls_server *srv, char *err, size_t errlen);
void tls_server_free(struct tls_server *srv);

/* tls_conn_handshake - run the server handshake on fd_in/fd_out within
 * timeout_ms; NULL with err filled on failure or timeout */
struct tls_conn *tls_conn_handshake(struct tls_server *srv, int fd_in, int fd_out, int timeout_ms,
                                    char *err, size_t errlen);
/* tls_conn_read - read up to n bytes waiting at most timeout_ms;
 * returns >0 bytes, 0 at a clean or unclean EOF, -1 with errno
 * (ETIMEDOUT on timeout, EIO on a TLS error) */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t n, int timeout_ms);
/* tls_conn_write - write all n bytes; -1 with errno on failure */
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t n, int timeout_ms);
/* tls_conn_pending - decrypted bytes buffered inside GnuTLS */
size_t tls_conn_pending(struct tls_conn *c);
/* tls_conn_describe - "TLS1.3 cipher=AES-256-GCM ..." for log and Received */
const char *tls_conn_describe(struct tls_conn *c);
/* tls_conn_peer - verified client certificate subject, or NULL */
const char *tls_conn_peer(struct tls_conn *c);
/* tls_conn_close - send close_notify (best effort) and free */
void tls_conn_close(struct tls_conn *c);

#endif
