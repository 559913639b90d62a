/*
 * tls.h - STARTTLS and implicit TLS through GnuTLS (the only file that
 *         includes GnuTLS)
 *
 * Credentials are loaded once at start-up (tls_server_new) and can be
 * reloaded on SIGHUP (tls_server_reload) without touching sessions that
 * already run. A connection is set up over two descriptors (the same
 * socket twice, or stdin/stdout in inetd mode). Built without GnuTLS,
 * tls_server_new fails with a clear message.
 *
 * Every wait (handshake, read, write, close) ends at an absolute
 * CLOCK_MONOTONIC deadline given by the caller: GnuTLS runs over our own
 * transport functions, which never block in send() or recv() but wait
 * in ppoll() for that deadline, as plaintext does in smtp_io.
 */
#ifndef SMTPIPE_TLS_H
#define SMTPIPE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <sys/types.h>
#include <time.h>

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

/* tls_conn_handshake - run the whole server handshake on fd_in/fd_out
 * before deadline; NULL with err filled on failure or timeout ("handshake
 * timed out") */
struct tls_conn *tls_conn_handshake(struct tls_server *srv, int fd_in, int fd_out,
                                    const struct timespec *deadline, char *err, size_t errlen);
/* tls_conn_read - read up to n bytes, waiting (with the signal mask
 * waitmask, or NULL) until deadline; returns >0 bytes, 0 at a clean or
 * unclean EOF, -1 with errno (ETIMEDOUT on timeout, EINTR on a signal,
 * EAGAIN for a record without data, EIO on a TLS error) */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t n, const struct timespec *deadline,
                      const sigset_t *waitmask);
/* tls_conn_write - write all n bytes before deadline; -1 with errno
 * (ETIMEDOUT, EIO) on failure */
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t n,
                       const struct timespec *deadline);
/* tls_conn_pending - decrypted bytes buffered inside GnuTLS */
size_t tls_conn_pending(struct tls_conn *c);
/* tls_conn_describe - "TLS1.3 cipher=AES-256-GCM ..." for log and Received */
const char *tls_conn_describe(struct tls_conn *c);
/* tls_conn_peer - verified client certificate subject, or NULL */
const char *tls_conn_peer(struct tls_conn *c);
/* tls_conn_close - send close_notify (best effort, until deadline) and
 * free */
void tls_conn_close(struct tls_conn *c, const struct timespec *deadline);

#endif
