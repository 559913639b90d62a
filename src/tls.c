/* tls.c - interim: TLS is being written; every call fails clearly */
#include "tls.h"

#include <errno.h>
#include <stdio.h>

bool tls_available(void)
{
	return false;
}

struct tls_server *tls_server_new(const char *cert, const char *key, const char *ca, char *err,
				  size_t errlen)
{
	snprintf(err, errlen, "this build has no TLS support");
	return NULL;
}

int tls_server_reload(struct tls_server *srv, char *err, size_t errlen)
{
	snprintf(err, errlen, "this build has no TLS support");
	return -1;
}

void tls_server_free(struct tls_server *srv)
{
}

struct tls_conn *tls_conn_handshake(struct tls_server *srv, int fd_in, int fd_out, int timeout_ms,
				    char *err, size_t errlen)
{
	snprintf(err, errlen, "this build has no TLS support");
	return NULL;
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t n, int timeout_ms)
{
	errno = EIO;
	return -1;
}

ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t n, int timeout_ms)
{
	errno = EIO;
	return -1;
}

size_t tls_conn_pending(struct tls_conn *c)
{
	return 0;
}

const char *tls_conn_describe(struct tls_conn *c)
{
	return "";
}

const char *tls_conn_peer(struct tls_conn *c)
{
	return NULL;
}

void tls_conn_close(struct tls_conn *c)
{
}
