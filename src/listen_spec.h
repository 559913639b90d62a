/*
 * listen_spec.h - one --listen value: ENDPOINT[,OPTION]... into a struct
 *
 * ENDPOINT is IP:PORT (127.0.0.1:25), [IPv6]:PORT ([::1]:25), *:PORT
 * (every address, IPv4 and IPv6) or unix:/path/to/socket. OPTIONs are
 * tls (implicit TLS, RFC 8314), mode=OCTAL and owner=USER[:GROUP], the
 * last two for Unix sockets only. Pure parsing: no system call, no
 * name lookup (owner= is looked up when the socket is made). Results:
 * 0, or -1 with a message naming the value in err.
 */
#ifndef SMTPIPE_LISTEN_SPEC_H
#define SMTPIPE_LISTEN_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

enum listen_kind {
	LISTEN_INET,  /* an IPv4 address */
	LISTEN_INET6, /* an IPv6 address, written in brackets */
	LISTEN_ANY,   /* "*": IPv4 and IPv6, every address */
	LISTEN_UNIX,  /* a path */
};

struct listen_spec {
	enum listen_kind kind;
	char host[64]; /* the address without brackets; "*" for LISTEN_ANY */
	unsigned port; /* 0: any free port, printed on stdout */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* LISTEN_UNIX */
	bool tls;        /* implicit TLS from the first byte */
	int mode;        /* mode=: permission bits, -1 when not given */
	char owner[128]; /* owner=USER[:GROUP], "" when not given */
};

/* listen_spec_parse - text (a --listen value) into *out */
int listen_spec_parse(const char *text, struct listen_spec *out, char *err, size_t errlen);
/* listen_spec_name - the endpoint as written back: "127.0.0.1:25",
 * "[::1]:25", "*:25", "unix:/run/smtpipe.sock" */
void listen_spec_name(const struct listen_spec *ls, char *buf, size_t cap);

#endif
