/*
 * listen_spec.c - parse ENDPOINT[,OPTION]... (see listen_spec.h)
 *
 * Every field is checked here, so that a listener that could not be
 * made is refused as a usage error before anything is bound: a port
 * outside 0-65535, an address inet_pton does not take, a path that
 * does not fit sun_path, an option that does not apply to the kind.
 */
#include "listen_spec.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* parse_port - decimal 0-65535, digits only; -1 otherwise */
static long parse_port(const char *s, size_t len)
{
	long v = 0;
	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v > 65535 ? -1 : v;
}

/* parse_endpoint - the part before the first comma */
static int parse_endpoint(const char *s, size_t len, struct listen_spec *out, char *err,
                          size_t errlen)
{
	if (len >= 5 && strncmp(s, "unix:", 5) == 0) {
		out->kind = LISTEN_UNIX;
		size_t pl = len - 5;
		if (pl == 0) {
			snprintf(err, errlen, "--listen: 'unix:' needs a path");
			return -1;
		}
		if (pl >= sizeof(out->path)) {
			snprintf(err, errlen, "--listen: the socket path is longer than %zu bytes",
			         sizeof(out->path) - 1);
			return -1;
		}
		memcpy(out->path, s + 5, pl);
		out->path[pl] = '\0';
		return 0;
	}
	const char *colon, *host = s;
	size_t hl;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close || close + 1 >= s + len || close[1] != ':') {
			snprintf(err, errlen, "--listen: '%.*s' is not [IPv6]:PORT", (int)len, s);
			return -1;
		}
		host = s + 1;
		hl = (size_t)(close - host);
		colon = close + 1;
		out->kind = LISTEN_INET6;
	} else {
		colon = NULL;
		for (size_t i = len; i > 0; i--)
			if (s[i - 1] == ':') {
				colon = s + i - 1;
				break;
			}
		if (!colon) {
			snprintf(err, errlen,
			         "--listen: '%.*s' has no port (IP:PORT, [IPv6]:PORT, *:PORT or "
			         "unix:PATH)",
			         (int)len, s);
			return -1;
		}
		hl = (size_t)(colon - s);
		out->kind = hl == 1 && s[0] == '*' ? LISTEN_ANY : LISTEN_INET;
	}
	long port = parse_port(colon + 1, (size_t)(s + len - colon - 1));
	if (port < 0) {
		snprintf(err, errlen, "--listen: '%.*s' is not a port number (0-65535)",
		         (int)(s + len - colon - 1), colon + 1);
		return -1;
	}
	out->port = (unsigned)port;
	if (hl == 0 || hl >= sizeof(out->host)) {
		snprintf(err, errlen, "--listen: '%.*s' is not an address", (int)hl, host);
		return -1;
	}
	memcpy(out->host, host, hl);
	out->host[hl] = '\0';
	unsigned char buf[16];
	if ((out->kind == LISTEN_INET && inet_pton(AF_INET, out->host, buf) != 1) ||
	    (out->kind == LISTEN_INET6 && inet_pton(AF_INET6, out->host, buf) != 1)) {
		snprintf(err, errlen, "--listen: '%s' is not an %s address%s", out->host,
		         out->kind == LISTEN_INET ? "IPv4" : "IPv6",
		         out->kind == LISTEN_INET && strchr(out->host, ':')
		             ? " (write an IPv6 address in brackets: [::1]:25)"
		             : "");
		return -1;
	}
	return 0;
}

/* parse_option - one OPTION after a comma */
static int parse_option(const char *s, size_t len, struct listen_spec *out, char *err,
                        size_t errlen)
{
	bool unix_only = false;
	if (len == 3 && memcmp(s, "tls", 3) == 0) {
		out->tls = true;
	} else if (len > 5 && memcmp(s, "mode=", 5) == 0) {
		long v = 0;
		unix_only = true;
		if (len - 5 > 4)
			v = -1;
		for (size_t i = 5; i < len && v >= 0; i++)
			v = s[i] >= '0' && s[i] <= '7' ? v * 8 + (s[i] - '0') : -1;
		if (v < 0 || v > 0777) {
			snprintf(err, errlen, "--listen: '%.*s' is not an octal mode (0-0777)",
			         (int)len, s);
			return -1;
		}
		out->mode = (int)v;
	} else if (len > 6 && memcmp(s, "owner=", 6) == 0) {
		unix_only = true;
		if (len - 6 >= sizeof(out->owner) || s[6] == ':' || s[len - 1] == ':') {
			snprintf(err, errlen, "--listen: '%.*s' is not owner=USER[:GROUP]",
			         (int)len, s);
			return -1;
		}
		memcpy(out->owner, s + 6, len - 6);
		out->owner[len - 6] = '\0';
	} else {
		snprintf(err, errlen, "--listen: unknown option '%.*s' (tls, mode=, owner=)",
		         (int)len, s);
		return -1;
	}
	if (unix_only && out->kind != LISTEN_UNIX) {
		snprintf(err, errlen, "--listen: '%.*s' applies to unix: sockets only", (int)len,
		         s);
		return -1;
	}
	return 0;
}

/* listen_spec_parse - see listen_spec.h */
int listen_spec_parse(const char *text, struct listen_spec *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->mode = -1;
	const char *comma = strchr(text, ',');
	size_t len = comma ? (size_t)(comma - text) : strlen(text);
	if (parse_endpoint(text, len, out, err, errlen) < 0)
		return -1;
	while (comma) {
		const char *opt = comma + 1;
		comma = strchr(opt, ',');
		len = comma ? (size_t)(comma - opt) : strlen(opt);
		if (parse_option(opt, len, out, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* listen_spec_name - see listen_spec.h */
void listen_spec_name(const struct listen_spec *ls, char *buf, size_t cap)
{
	if (ls->kind == LISTEN_UNIX)
		snprintf(buf, cap, "unix:%s", ls->path);
	else if (ls->kind == LISTEN_INET6)
		snprintf(buf, cap, "[%s]:%u", ls->host, ls->port);
	else
		snprintf(buf, cap, "%s:%u", ls->host, ls->port);
}
