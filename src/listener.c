/*
 * listener.c - the listening daemon: bind, accept, fork, reap, signals
 *
 * One process per session. At the session cap the listening socket is
 * no longer polled, so further clients wait in the kernel backlog and
 * are served as slots free up (s6-tcpserverd's choice): none is turned
 * away while it could still be served. The daemon's signals stay
 * blocked; the main loop reads them from a signalfd. SIGTERM/SIGINT
 * stop accepting and wait for the running sessions; SIGHUP reloads TLS
 * credentials.
 * systemd: a LISTEN_FDS socket is used instead of binding, and
 * READY=1/STOPPING=1 go to NOTIFY_SOCKET.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "session.h"
#include "tls.h"
#include "coverage.h" /* last: it wraps _exit() in coverage builds */

static int listen_fd = -1;
static unsigned listen_port; /* the port really bound, for the log */
static int sig_fd = -1;      /* SIGCHLD, SIGTERM, SIGINT, SIGHUP, read by the main loop */
static sigset_t open_mask;   /* the signal mask before they were blocked */

/* systemd_socket - the first LISTEN_FDS socket when it is ours: 3; -1
 * when there is none; -2 when fd 3 is not a listening stream socket
 * (Accept=yes hands over a connection: that is --inetd's job, and
 * polling it would spin) */
static int systemd_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	int listening = 0, type = 0;
	socklen_t l1 = sizeof(listening), l2 = sizeof(type);
	if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l1) < 0 ||
	    getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &l2) < 0 || !listening || type != SOCK_STREAM)
		return -2;
	fcntl(3, F_SETFD, FD_CLOEXEC);
	return 3;
}

/* notify - a sd_notify() datagram, when NOTIFY_SOCKET is set */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/* listener_drop_privileges - see listener.h */
int listener_drop_privileges(const char *spec, char *err, size_t errlen)
{
	char user[256], *group = NULL;
	snprintf(user, sizeof(user), "%s", spec);
	if ((group = strchr(user, ':')))
		*group++ = '\0';
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "--user: no such user '%s'", user);
		return -1;
	}
	gid_t gid = pw->pw_gid;
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr) {
			snprintf(err, errlen, "--user: no such group '%s'", group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (initgroups(pw->pw_name, gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
		snprintf(err, errlen, "--user: cannot switch to %s: %s", spec, strerror(errno));
		return -1;
	}
	return 0;
}

/* catch_signals - from before the port is announced: a signal sent as
 * soon as a test reads the port must be waiting for the main loop. The
 * daemon's signals stay blocked and are read from a signalfd: no
 * handler runs, and none can interrupt a fork(). Their dispositions
 * are reset, since an ignored SIGCHLD inherited across exec would make
 * the kernel reap the sessions itself. */
static int catch_signals(void)
{
	static const int caught[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigset_t set;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++) {
		sigaction(caught[i], &sa, NULL);
		sigaddset(&set, caught[i]);
	}
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (sigprocmask(SIG_BLOCK, &set, &open_mask) < 0)
		return -1;
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return sig_fd < 0 ? -1 : 0;
}

/* listener_open - see listener.h */
int listener_open(const struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (catch_signals() < 0) {
		snprintf(err, errlen, "cannot set up signals: %s", strerror(errno));
		return -1;
	}
	listen_fd = systemd_socket();
	if (listen_fd == -2) {
		snprintf(err, errlen,
		         "LISTEN_FDS: fd 3 is not a listening stream socket (Accept=yes needs "
		         "--inetd)");
		return -1;
	}
	if (listen_fd < 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, cfg->interface, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((unsigned short)cfg->port);
			sl = sizeof(*s4);
		} else if (inet_pton(AF_INET6, cfg->interface, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((unsigned short)cfg->port);
			sl = sizeof(*s6);
		} else {
			snprintf(err, errlen, "--interface: '%s' is not an address",
			         cfg->interface);
			return -1;
		}
		int one = 1;
		listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (listen_fd < 0 ||
		    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(listen_fd, (struct sockaddr *)&ss, sl) < 0 || listen(listen_fd, 128) < 0) {
			snprintf(err, errlen, "cannot listen on %s port %u: %s", cfg->interface,
			         cfg->port, strerror(errno));
			return -1;
		}
	}
	sl = sizeof(ss);
	getsockname(listen_fd, (struct sockaddr *)&ss, &sl);
	listen_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (cfg->run_user && listener_drop_privileges(cfg->run_user, err, errlen) < 0)
		return -1;
	return 0;
}

/* announce_port - with --port=0, tell a test suite where we are: once
 * the pidfile exists and just before serving, so that a test which has
 * read the port can rely on both */
static void announce_port(const struct config *cfg)
{
	if (cfg->port == 0) {
		printf("%u\n", listen_port);
		fflush(stdout);
	}
}

/* write_pidfile - once the socket accepts connections */
static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -1;
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f);
}

/* detach - mockmta -d: the parent returns only when the daemon is ready.
 * The child's stderr is /dev/null by then, so it sends either one NUL
 * byte (ready) or its error line through the pipe, and the parent, still
 * attached to the caller's terminal, prints that line. */
static int detach(const struct config *cfg)
{
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(ready[1]);
		char msg[512];
		size_t got = 0;
		ssize_t n;
		while (got < sizeof(msg) - 1 &&
		       ((n = read(ready[0], msg + got, sizeof(msg) - 1 - got)) > 0 ||
		        (n < 0 && errno == EINTR)))
			got += n > 0 ? (size_t)n : 0;
		if (got > 0 && msg[0] == '\0') {
			announce_port(cfg); /* the daemon's own stdout is /dev/null */
			_exit(0);
		}
		msg[got] = '\0';
		fprintf(stderr, "%s: %s\n", cfg->progname,
		        got ? msg : "the daemon exited before it was ready");
		_exit(config_exit_code(cfg, EXIT_KIND_STARTUP));
	}
	close(ready[0]);
	setsid();
	if (chdir("/") < 0)
		return -1;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (cfg->log_dest != LOG_DEST_STDERR)
			dup2(null, 2);
		if (null > 2)
			close(null);
	}
	return ready[1];
}

static pid_t *sessions; /* pids of running sessions, cfg->max_sessions slots */

/* track - remember (or, with 0, forget) a session's pid */
static void track(unsigned max, pid_t old, pid_t new)
{
	for (unsigned i = 0; i < max; i++)
		if (sessions[i] == old) {
			sessions[i] = new;
			return;
		}
}

/* stop_sessions - RFC 5321 421 from every session at its next command;
 * a message in flight is finished first (session.c) */
static void stop_sessions(unsigned max)
{
	for (unsigned i = 0; i < max; i++)
		if (sessions[i] > 0)
			kill(sessions[i], SIGTERM);
}

/* reap - collect every finished session */
static void reap(unsigned *active, unsigned max)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		track(max, pid, 0);
		if (*active > 0)
			(*active)--;
		if (WIFSIGNALED(st))
			log_msg(LOG_ERR, "event=session-crashed pid=%ld signal=%d", (long)pid,
			        WTERMSIG(st));
		else
			log_msg(LOG_DEBUG, "event=session-exit pid=%ld status=%d active=%u",
			        (long)pid, WEXITSTATUS(st), *active);
	}
}

/* serve_one - the child: one session, then exit. The signal mask from
 * before the daemon's is restored, but for SIGTERM and SIGINT: one sent
 * meanwhile stays pending for the session's own handler. */
static void serve_one(const struct server *srv, int fd)
{
	close(listen_fd);
	close(sig_fd);
	sigset_t serve = open_mask;
	sigaddset(&serve, SIGTERM);
	sigaddset(&serve, SIGINT);
	sigprocmask(SIG_SETMASK, &serve, NULL);
	_exit(config_exit_code(srv->cfg, session_run(srv, fd, fd)));
}

/* startup_failed - one line to whoever waits: the detached parent or stderr */
static int startup_failed(const struct config *cfg, int ready_fd, const char *what)
{
	char line[512];
	snprintf(line, sizeof(line), "%s: %s", what, strerror(errno));
	log_msg(LOG_ERR, "event=error error=\"%s\"", line);
	if (ready_fd >= 0) {
		ssize_t w = write(ready_fd, line, strlen(line));
		(void)w; /* the parent then reports a daemon that died unready */
		close(ready_fd);
	} else {
		fprintf(stderr, "%s: %s\n", cfg->progname, line);
	}
	return config_exit_code(cfg, EXIT_KIND_STARTUP);
}

/* listener_run - see listener.h */
int listener_run(const struct server *srv)
{
	const struct config *cfg = srv->cfg;
	int ready_fd = -1;
	if (cfg->mode == MODE_DAEMON && (ready_fd = detach(cfg)) < 0)
		return startup_failed(cfg, -1, "cannot detach");
	if (cfg->pidfile && write_pidfile(cfg->pidfile) < 0) {
		char what[300];
		snprintf(what, sizeof(what), "cannot write %s", cfg->pidfile);
		return startup_failed(cfg, ready_fd, what);
	}
	sessions = calloc(cfg->max_sessions, sizeof(*sessions));
	if (!sessions)
		return startup_failed(cfg, ready_fd, "cannot track sessions");
	if (ready_fd < 0)
		announce_port(cfg);
	if (ready_fd >= 0) {
		unsigned char ok = 0;
		ssize_t w = write(ready_fd, &ok, 1);
		(void)w;
		close(ready_fd);
	}
	notify("READY=1");
	log_msg(LOG_INFO, "event=start interface=%s port=%u max-sessions=%u", cfg->interface,
	        listen_port, cfg->max_sessions);

	unsigned active = 0;
	bool stopping = false, capped = false;
	while (!stopping || active > 0) {
		struct pollfd p[2] = {{.fd = sig_fd, .events = POLLIN},
		                      {.fd = listen_fd, .events = POLLIN}};
		bool accepting = !stopping && active < cfg->max_sessions;
		if (!accepting && !stopping && !capped) {
			log_msg(LOG_WARNING, "event=session-cap active=%u", active);
			capped = true;
		}
		if (accepting)
			capped = false;
		if (poll(p, accepting ? 2 : 1, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo sigs[16];
			ssize_t n = read(sig_fd, sigs, sizeof(sigs));
			bool child = false;
			for (ssize_t i = 0; i < n / (ssize_t)sizeof(sigs[0]); i++) {
				if (sigs[i].ssi_signo == SIGCHLD) {
					child = true;
				} else if (sigs[i].ssi_signo == SIGHUP) {
					char err[256];
					if (!srv->tls)
						log_msg(LOG_INFO, "event=sighup tls=off");
					else if (tls_server_reload(srv->tls, err, sizeof(err)) < 0)
						log_msg(LOG_ERR,
						        "event=tls-reload-failed error=\"%s\"",
						        err);
					else
						log_msg(LOG_INFO, "event=tls-reloaded");
				} else if (!stopping) { /* SIGTERM, SIGINT */
					stopping = true;
					close(listen_fd);
					listen_fd = -1;
					notify("STOPPING=1");
					stop_sessions(cfg->max_sessions);
					log_msg(LOG_INFO, "event=stopping active=%u", active);
				}
			}
			if (child) /* one pass collects every finished session */
				reap(&active, cfg->max_sessions);
		}
		if (accepting && !stopping && (p[1].revents & POLLIN)) {
			int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				/* out of descriptors or memory: the client stays in the
				 * backlog, and polling again at once would spin */
				if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
				    errno == ENOMEM) {
					log_msg(LOG_ERR, "event=accept-failed error=\"%s\"",
					        strerror(errno));
					poll(NULL, 0, 100);
				}
				continue;
			}
			pid_t pid = fork();
			if (pid == 0)
				serve_one(srv, fd);
			if (pid < 0) {
				log_msg(LOG_ERR, "event=fork-failed error=\"%s\"", strerror(errno));
			} else {
				active++;
				track(cfg->max_sessions, 0, pid);
				log_msg(LOG_DEBUG, "event=session-start pid=%ld active=%u",
				        (long)pid, active);
			}
			close(fd);
		}
	}
	if (cfg->pidfile)
		unlink(cfg->pidfile);
	free(sessions);
	log_msg(LOG_INFO, "event=stop");
	return 0;
}
