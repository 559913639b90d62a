/*
 * listen_socket.c - bind (or adopt from systemd) every listening socket
 *
 * See listen_socket.h for the contract. msmtpd's listener with
 * --port=0 takes one free port for all its addresses: the first picks
 * it, the others bind the same, and when another program holds it on
 * one of them all start again, BOUND_PORT_TRIES times. *:PORT is an
 * IPv6-only socket on :: and an IPv4 one on 0.0.0.0 on the same port;
 * a host without IPv6 gets the IPv4 one and a log line.
 */
#include "listen_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "config.h"
#include "listen_spec.h"
#include "log.h"

static struct listen_socket socks[2 * BOUND_LISTENERS]; /* *:PORT takes two */
static unsigned nsocks;
static int systemd_fds;          /* LISTEN_FDS when it named this process, else 0 */
static char systemd_names[1024]; /* LISTEN_FDNAMES, when it came with them */

/* listen_socket_systemd_adopt - see listen_socket.h */
void listen_socket_systemd_adopt(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int n = fds ? atoi(fds) : 0;
	if (pid && atol(pid) == (long)getpid() && n > 0) {
		systemd_fds = n > BOUND_LISTENERS ? BOUND_LISTENERS + 1 : n; /* refused later */
		for (int fd = 3; fd < 3 + n; fd++) /* all of them, not only fd 3 */
			fcntl(fd, F_SETFD, FD_CLOEXEC);
		const char *names = getenv("LISTEN_FDNAMES");
		snprintf(systemd_names, sizeof(systemd_names), "%s", names ? names : "");
	}
	/* removed whoever they name: no child is to see them */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* sock_name - "127.0.0.1:25", "[::1]:25" or "unix:/path" from what
 * fd is bound to; its port into *port */
static void sock_name(int fd, char *buf, size_t cap, unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	memset(&ss, 0, sizeof(ss));
	*port = 0;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *su = (const struct sockaddr_un *)&ss;
		snprintf(buf, cap, "unix:%.*s", (int)sizeof(su->sun_path),
		         su->sun_path[0] ? su->sun_path : "(unnamed)");
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		*port = ntohs(s6->sin6_port);
		snprintf(buf, cap, "[%s]:%u", addr, *port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		*port = ntohs(s4->sin_port);
		snprintf(buf, cap, "%s:%u", addr, *port);
	}
}

/* add_sock - remember a listening socket; its name from the kernel */
static struct listen_socket *add_sock(int fd, bool tls, bool announce)
{
	struct listen_socket *l = &socks[nsocks++];
	unsigned port;
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->tls = tls;
	l->announce = announce;
	sock_name(fd, l->name, sizeof(l->name), &port);
	return l;
}

/* listen_socket_close - see listen_socket.h */
void listen_socket_close(bool remove)
{
	for (unsigned i = 0; i < nsocks; i++) {
		struct listen_socket *l = &socks[i];
		if (l->fd >= 0)
			close(l->fd);
		/* a session's copies: the table is left as it is, so that its
		 * pages stay shared with the daemon's (no session reads it) */
		if (!remove)
			continue;
		l->fd = -1;
		struct stat st;
		if (l->unix_made && lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
		    st.st_ino == l->ino && unlink(l->path) < 0)
			log_msg(LOG_ERR, "event=socket-left path=%s error=\"%s\"", l->path,
			        strerror(errno));
		l->unix_made = false;
	}
}

/* open_inet - a socket bound to host:port and listening; v6only for
 * *:PORT's IPv6 half. -1 with err naming the endpoint. */
static int open_inet(const char *host, unsigned port, bool v6only, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	int one = 1;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		sl = sizeof(*s6);
	} else {
		snprintf(err, errlen, "--interface: '%s' is not an address", host);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (v6only && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot listen on %s port %u: %s", host, port, strerror(e));
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* open_any - *:PORT: an IPv6-only socket on :: and an IPv4 one on
 * 0.0.0.0, on the same port (port 0: the one the first got). A host
 * without IPv6 gets the IPv4 socket and one log line. */
static int open_any(const struct listen_spec *ls, bool tls, char *err, size_t errlen)
{
	unsigned port = ls->port;
	int fd6 = open_inet("::", port, true, err, errlen);
	if (fd6 >= 0) {
		struct listen_socket *l = add_sock(fd6, tls, ls->port == 0);
		sock_name(fd6, l->name, sizeof(l->name), &port);
	} else if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL) {
		log_msg(LOG_WARNING, "event=no-ipv6 listen=*:%u error=\"%s\"", ls->port,
		        strerror(errno));
	} else {
		return -1;
	}
	int fd4 = open_inet("0.0.0.0", port, false, err, errlen);
	if (fd4 < 0)
		return -1;
	add_sock(fd4, tls, fd6 < 0 && ls->port == 0);
	return 0;
}

/* stale_socket - path exists: remove it when it is a socket nobody
 * listens on; refuse a live socket and anything that is not a socket */
static int stale_socket(const char *path, const struct stat *st, char *err, size_t errlen)
{
	if (!S_ISSOCK(st->st_mode)) {
		snprintf(err, errlen, "unix:%s: exists and is not a socket (left alone)", path);
		return -1;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "unix:%s: %s", path, strerror(errno));
		return -1;
	}
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errlen, "cannot listen on unix:%s: another process listens there",
		         path);
		return -1;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "unix:%s: cannot tell whether it is in use: %s", path,
		         strerror(e));
		return -1;
	}
	if (unlink(path) < 0) {
		snprintf(err, errlen, "unix:%s: cannot remove the stale socket: %s", path,
		         strerror(errno));
		return -1;
	}
	log_msg(LOG_NOTICE, "event=stale-socket-removed path=%s", path);
	return 0;
}

/* owner_ids - owner=USER[:GROUP] into ids; GROUP left out: (gid_t)-1 */
static int owner_ids(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	char user[sizeof(((struct listen_spec *)0)->owner)], *group;
	snprintf(user, sizeof(user), "%s", spec);
	if ((group = strchr(user, ':')))
		*group++ = '\0';
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "--listen: owner=%s: no such user '%s'", spec, user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = (gid_t)-1;
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr) {
			snprintf(err, errlen, "--listen: owner=%s: no such group '%s'", spec,
			         group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/* open_unix - unix:PATH: made mode 0600 (or mode=), owned by the
 * daemon's user (or owner=); a relative path is made absolute first,
 * since the daemon works from "/" */
static int open_unix(const struct listen_spec *ls, bool tls, char *err, size_t errlen)
{
	char path[sizeof(ls->path)], cwd[PATH_MAX];
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	if (ls->path[0] == '/')
		snprintf(path, sizeof(path), "%s", ls->path);
	else if (!getcwd(cwd, sizeof(cwd)) ||
	         (size_t)snprintf(path, sizeof(path), "%s/%s", cwd, ls->path) >= sizeof(path)) {
		snprintf(err, errlen, "unix:%s: the absolute path does not fit a socket address",
		         ls->path);
		return -1;
	}
	if (ls->owner[0] && owner_ids(ls->owner, &uid, &gid, err, errlen) < 0)
		return -1;
	struct stat st;
	if (lstat(path, &st) == 0 && stale_socket(path, &st, err, errlen) < 0)
		return -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on unix:%s: %s", path, strerror(errno));
		return -1;
	}
	mode_t old = umask(0177); /* 0600 from birth: no moment open to all */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (rc < 0) {
		snprintf(err, errlen, "cannot listen on unix:%s: %s", path, strerror(e));
		close(fd);
		return -1;
	}
	struct listen_socket *l = add_sock(fd, tls, false);
	snprintf(l->path, sizeof(l->path), "%s", path);
	if (lstat(path, &st) == 0) {
		l->unix_made = true;
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	if ((ls->owner[0] && lchown(path, uid, gid) < 0) ||
	    (ls->mode >= 0 && chmod(path, (mode_t)ls->mode) < 0) || listen(fd, 128) < 0) {
		snprintf(err, errlen, "cannot listen on unix:%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* open_spec - one listener from the command line */
static int open_spec(const struct listen_spec *ls, bool tls, char *err, size_t errlen)
{
	if (ls->kind == LISTEN_UNIX)
		return open_unix(ls, tls, err, errlen);
	if (ls->kind == LISTEN_ANY)
		return open_any(ls, tls, err, errlen);
	int fd = open_inet(ls->host, ls->port, false, err, errlen);
	if (fd < 0)
		return -1;
	add_sock(fd, tls, ls->port == 0);
	return 0;
}

/* fd_name - the name LISTEN_FDNAMES gives the i-th socket, or "" */
static void fd_name(int i, char *buf, size_t cap)
{
	const char *p = systemd_names;
	for (; i > 0 && p; i--)
		if ((p = strchr(p, ':')))
			p++;
	size_t n = p ? strcspn(p, ":") : 0;
	snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), p ? p : "");
}

/* open_systemd - every LISTEN_FDS socket, each a listening stream
 * socket (Accept=yes hands over a connection: that is --inetd's job,
 * and polling it would spin) */
static int open_systemd(const struct config *cfg, char *err, size_t errlen)
{
	if (systemd_fds > BOUND_LISTENERS) {
		snprintf(err, errlen, "LISTEN_FDS: more than %d sockets", BOUND_LISTENERS);
		return -1;
	}
	for (int i = 0; i < systemd_fds; i++) {
		int fd = 3 + i, listening = 0, type = 0;
		socklen_t l1 = sizeof(listening), l2 = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l1) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) < 0 || !listening ||
		    type != SOCK_STREAM) {
			snprintf(err, errlen,
			         "LISTEN_FDS: fd %d is not a listening stream socket (Accept=yes "
			         "needs --inetd)",
			         fd);
			return -1;
		}
		char name[64];
		fd_name(i, name, sizeof(name));
		bool tls =
		    cfg->tls_implicit || strcmp(name, "tls") == 0 || strcmp(name, "smtps") == 0;
		struct listen_socket *l = add_sock(fd, tls, false);
		/* --port=0 as before: a launcher's test reads its ports */
		l->announce = cfg->port == 0 && strncmp(l->name, "unix:", 5) != 0;
	}
	return 0;
}

/* open_interfaces - msmtpd's listener: every --interface (or its
 * default) on --port, one port for all of them. With --port=0 the
 * first address picks a free port and the others take the same; when
 * one of them has it in use already, all start again on a new one. */
static int open_interfaces(const struct config *cfg, char *err, size_t errlen)
{
	const char *const *ips = cfg->interfaces.item;
	unsigned n = (unsigned)cfg->interfaces.n, first = nsocks;
	if (n == 0) {
		ips = &cfg->interface;
		n = 1;
	}
	for (int attempt = 0;; attempt++) {
		unsigned port = cfg->port;
		unsigned i;
		for (i = 0; i < n; i++) {
			int fd = open_inet(ips[i], port, false, err, errlen);
			if (fd < 0)
				break;
			struct listen_socket *l =
			    add_sock(fd, cfg->tls_implicit, cfg->port == 0 && i == 0);
			sock_name(fd, l->name, sizeof(l->name), &port);
		}
		if (i == n)
			return 0;
		int e = errno;
		while (nsocks > first)
			close(socks[--nsocks].fd);
		if (cfg->port != 0 || i == 0 || e != EADDRINUSE || attempt >= BOUND_PORT_TRIES)
			return -1;
	}
}

/* open_command_line - the listeners of the command line, in order:
 * msmtpd's (every --interface on --port; when only --listen came, none
 * unless --port did), then each --listen and -p IP:PORT */
static int open_command_line(const struct config *cfg, char *err, size_t errlen)
{
	struct listen_spec ls;
	if ((cfg->interfaces.n > 0 || cfg->listen.n == 0 || cfg->port_given) &&
	    open_interfaces(cfg, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < cfg->listen.n; i++)
		if (listen_spec_parse(cfg->listen.item[i], &ls, err, errlen) < 0 ||
		    open_spec(&ls, cfg->tls_implicit || ls.tls, err, errlen) < 0)
			return -1;
	return 0;
}

/* listen_socket_open - see listen_socket.h */
int listen_socket_open(const struct config *cfg, char *err, size_t errlen)
{
	int rc =
	    systemd_fds > 0 ? open_systemd(cfg, err, errlen) : open_command_line(cfg, err, errlen);
	if (rc < 0)
		listen_socket_close(true);
	return rc;
}

/* listen_socket_all - see listen_socket.h */
struct listen_socket *listen_socket_all(unsigned *n)
{
	*n = nsocks;
	return socks;
}

/* listen_socket_port - see listen_socket.h */
unsigned listen_socket_port(const struct listen_socket *l)
{
	char name[128];
	unsigned port;
	sock_name(l->fd, name, sizeof(name), &port);
	return port;
}
