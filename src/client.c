/*
 * client.c - who a client is, and the one-line refusals
 *
 * From an accepted connection's peer address: the text the logs and
 * the delivery command see (SMTPIPE_CLIENT), a Unix-socket client's
 * uid, whether it is local, and its key for the per-client count: an
 * IPv4 address (as ::ffff:a.b.c.d) or an IPv6 /64, since one host
 * commonly holds a whole /64 and counting single IPv6 addresses would
 * give it 2^64 allowances; a Unix-socket client's key is its uid (after
 * the marker fe80::/64 with a 0xff byte, which no IPv6 /64 key has,
 * since that key ends in 8 zero bytes). Used by the daemon when it
 * accepts, by a spare when it accepts itself, and by --inetd.
 */
#include "client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "session.h"

/* client_describe - see client.h */
void client_describe(int fd, const struct sockaddr_storage *ss, unsigned char key[16],
                     struct session_origin *o, bool *local)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char unix_key[9] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0xff};
	memset(key, 0, 16);
	snprintf(o->peer, sizeof(o->peer), "local");
	o->uid = -1;
	*local = false;
	if (ss->ss_family == AF_UNIX) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		*local = true;
		memcpy(key, unix_key, sizeof(unix_key));
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			o->uid = (long)cred.uid;
			memcpy(key + 12, &cred.uid, sizeof(cred.uid));
			snprintf(o->peer, sizeof(o->peer), "unix:%ld", o->uid);
		} else {
			snprintf(o->peer, sizeof(o->peer), "unix");
		}
		return;
	}
	if (ss->ss_family == AF_INET) {
		const struct in_addr *a = &((const struct sockaddr_in *)ss)->sin_addr;
		memcpy(key, mapped, 12);
		memcpy(key + 12, a, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(key, a->s6_addr, 16);
		} else {
			*local = IN6_IS_ADDR_LOOPBACK(a);
			memcpy(key, a->s6_addr, 8); /* the /64 */
			inet_ntop(AF_INET6, a, o->peer, sizeof(o->peer));
			return;
		}
	} else {
		return;
	}
	*local = key[12] == 127;
	inet_ntop(AF_INET, key + 12, o->peer, sizeof(o->peer));
}

/* client_refuse - see client.h */
void client_refuse(int fd, const char *reply)
{
	ssize_t w = send(fd, reply, strlen(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)w; /* a client that cannot take one line loses it */
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* client_limit - see client.h */
unsigned client_limit(const struct config *cfg, bool local)
{
	return !local || cfg->client_limit_loopback ? cfg->max_sessions_per_client : 0;
}

/* client_capped - see client.h */
void client_capped(int fd, const struct session_origin *o, unsigned mine)
{
	log_msg(LOG_WARNING, "event=client-cap client=%s sessions=%u listener=%s", o->peer, mine,
	        o->listener);
	client_refuse(fd, "421 4.7.0 Too many sessions from your address, try again later\r\n");
}
