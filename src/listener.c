/*
 * listener.c - the listening daemon: bind, accept, fork, reap, signals
 *
 * One process per session. At the session cap the listening socket is
 * no longer polled, so further clients wait in the kernel backlog and
 * are served as slots free up (s6-tcpserverd's choice): none is turned
 * away while it could still be served. The daemon's signals stay
 * blocked; the main loop reads them from a signalfd. SIGTERM/SIGINT
 * stop accepting and wait for the running sessions; SIGHUP reopens the
 * log file and reloads TLS credentials, and sessions ignore it. Per
 * client address (an IPv6 client's /64) at most --max-sessions-per-client
 * sessions run; one more gets 421 4.7.0 at once. A fork() that fails
 * answers 421 4.3.2 and rests the listening socket, doubling the rest
 * up to BOUND_FORK_BACKOFF_MAX_MS; accept() out of descriptors rests it
 * BOUND_ACCEPT_RETRY_MS. Repeating failures log one line, then summaries.
 * The listening sockets (every --interface, --listen, or systemd's
 * LISTEN_FDS) come from listen_socket.c; all of them share the session
 * cap and the per-client count (a Unix-socket client: its uid). Each
 * session learns its listener, implicit TLS and peer through a struct
 * session_origin, and its commands through SMTPIPE_CLIENT,
 * SMTPIPE_CLIENT_UID and SMTPIPE_LISTENER (put into the command's
 * environment at spawn, cmd_template_env). READY=1/STOPPING=1 go to
 * NOTIFY_SOCKET.
 *
 * With --spare-sessions=N (prefork.h) up to N session processes are
 * forked before their clients come: each waits on the listening sockets,
 * accepts one client itself, claims its slot within the per-client
 * limit, rings the daemon's bell and serves, then exits as any session
 * does. The daemon forks the next spare after the bell, and accepts by
 * itself, as above, only while no spare waits. Spares and sessions
 * together never outnumber --max-sessions, SIGHUP and SIGTERM retire the
 * spares (EOF on their retire pipe), and the daemon's death does too.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bounds.h"
#include "client.h"
#include "config.h"
#include "daemon.h"
#include "listen_socket.h"
#include "log.h"
#include "prefork.h"
#include "queue_run.h"
#include "session.h"
#include "spare.h"
#include "tls.h"
#include "coverage.h" /* last: it wraps _exit() in coverage builds */

static struct listen_socket *socks; /* listen_socket.c's table */
static unsigned nsocks;
static int sig_fd = -1;            /* SIGCHLD, SIGTERM, SIGINT, SIGHUP, read by the main loop */
static sigset_t open_mask;         /* the signal mask before they were blocked */
static pid_t runner_pid;           /* --queue: the queue runner, 0 while none runs */
static long long runner_resume_ms; /* a runner that ended is started again then */
static long long runner_kill_ms;   /* stopping: a runner still there then is killed */

/* listener_systemd_adopt - see listener.h */
void listener_systemd_adopt(void)
{
	listen_socket_systemd_adopt();
}

/* listener_session_signals - see listener.h */
void listener_session_signals(void)
{
	struct sigaction sa = {.sa_handler = SIG_IGN};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
}

/* catch_signals - from before the port is announced: a signal sent as
 * soon as a test reads the port must be waiting for the main loop. The
 * daemon's signals stay blocked and are read from a signalfd: no
 * handler runs, and none can interrupt a fork(). Their dispositions
 * are reset, since an ignored SIGCHLD inherited across exec would make
 * the kernel reap the sessions itself. */
static int catch_signals(bool queue)
{
	/* SIGUSR1 (flush the queue) only with --queue: else its default,
	 * as before */
	static const int caught[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1};
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigset_t set;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]) - !queue; i++) {
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

/* listener_open - see listener.h. Nothing half-started: when one
 * listener fails, the ones made are closed and their sockets removed. */
int listener_open(const struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	if (catch_signals(cfg->queue_dir != NULL) < 0) {
		snprintf(err, errlen, "cannot set up signals: %s", strerror(errno));
		return -1;
	}
	int rc = listen_socket_open(cfg, err, errlen);
	socks = listen_socket_all(&nsocks);
	for (unsigned i = 0; rc == 0 && i < nsocks; i++)
		if (socks[i].tls && !srv->tls) {
			snprintf(err, errlen, "%s: implicit TLS needs -c CERT and -k KEY",
			         socks[i].name);
			rc = -1;
		}
	if (rc < 0) {
		listen_socket_close(true);
		return -1;
	}
	/* -P with --user: the file is made here, as root, before the drop
	 * (in /run only root may create it); the pid goes in after detach. */
	if (cfg->pidfile && daemon_pidfile_open(cfg->pidfile, err, errlen) < 0) {
		listen_socket_close(true);
		return -1;
	}
	if (cfg->run_user && daemon_drop_privileges(cfg->run_user, err, errlen) < 0) {
		listen_socket_close(true);
		return -1;
	}
	return 0;
}

/* announce_port - with port 0, tell a test suite where we are: one line
 * per such listener, in the order given, once the pidfile exists and
 * just before serving, so that a test which has read the ports can
 * rely on both */
static void announce_port(void)
{
	for (unsigned i = 0; i < nsocks; i++) {
		if (socks[i].announce)
			printf("%u\n", listen_socket_port(&socks[i]));
	}
	fflush(stdout);
}

/* Every process of the daemon's, a spare or a session, holds one slot
 * of prefork.c's shared table (--max-sessions slots); this is the
 * daemon's own view of each: the pid, the state it last saw, and a
 * spare's generation. The key a slot holds for the per-client count is
 * client.c's (an IPv4 address, an IPv6 /64, a Unix-socket client's
 * uid). */
struct proc {
	pid_t pid;    /* 0: the slot is free */
	int kind;     /* enum prefork_state, as the daemon last saw it */
	unsigned gen; /* a spare's generation (prefork_generation) */
	bool counted; /* a session: logged as started and counted active */
};
static struct proc *procs; /* cfg->max_sessions of them */

/* The spares' channels: a spare rings the bell (one byte) when it has
 * taken a client or refused one, so that the daemon looks at the table
 * and forks the next spare; the daemon closes the retire pipe's write
 * end to end a generation of spares (SIGHUP, SIGTERM), and when the
 * daemon dies the kernel closes it, so no spare outlives the daemon. */
static int bell[2] = {-1, -1};
static int retire[2] = {-1, -1};

/* close_fd - close *fd if open, and forget it */
static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* close_daemon_fds - a child: the descriptors only the daemon uses */
static void close_daemon_fds(void)
{
	close_fd(&sig_fd);
	daemon_pidfile_forget();
	close_fd(&bell[0]);
	close_fd(&bell[1]);
	close_fd(&retire[0]);
	close_fd(&retire[1]);
}

/* listener_origin - see listener.h */
void listener_origin(int fd, const char *name, bool tls, struct session_origin *o)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned char key[16];
	bool local;
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		ss.ss_family = AF_UNSPEC;
	o->listener = name;
	o->tls = tls;
	client_describe(fd, &ss, key, o, &local);
}

/* A condition that repeats while it lasts (accept out of descriptors,
 * fork out of processes): one line when it starts, a summary every
 * BOUND_FAILURE_SUMMARY_SECONDS while it goes on, one when it ends. */
struct failing {
	const char *event; /* "accept", "fork" */
	unsigned long count, logged;
	long long since_ms;
};

/* mono_ms - CLOCK_MONOTONIC in milliseconds */
static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* failed - count one failure of f (errno e) and log as above */
static void failed(struct failing *f, int e, long long now)
{
	if (f->count++ == 0) {
		f->since_ms = now;
		f->logged = 1;
		log_msg(LOG_ERR, "event=%s-failed error=\"%s\"", f->event, strerror(e));
	} else if (now - f->since_ms >=
	           (long long)BOUND_FAILURE_SUMMARY_SECONDS * 1000 * (long long)f->logged) {
		f->logged++;
		log_msg(LOG_ERR, "event=%s-failing failures=%lu seconds=%lld error=\"%s\"",
		        f->event, f->count, (now - f->since_ms) / 1000, strerror(e));
	}
}

/* recovered - f works again: the summary line */
static void recovered(struct failing *f, long long now)
{
	if (f->count == 0)
		return;
	log_msg(LOG_NOTICE, "event=%s-recovered failures=%lu seconds=%lld", f->event, f->count,
	        (now - f->since_ms) / 1000);
	f->count = 0;
}

/* The accept loop's state, shared by every listener. */
struct loop {
	unsigned active; /* sessions */
	unsigned nprocs; /* slots held: sessions, spares, spares on their way out */
	unsigned idle;   /* spares of the current generation waiting for a client */
	unsigned want;   /* spares to keep: --spare-sessions, at most --max-sessions */
	struct failing accept_fail, fork_fail, spare_fail;
	long long resume_ms; /* back-off: the listening sockets rest until then */
	unsigned backoff_ms;
	long long spare_resume_ms; /* a spare's fork failed: none until then */
	unsigned spare_backoff_ms;
};

/* free_slot - a slot no process holds (there is one: nprocs < max) */
static unsigned free_slot(unsigned max)
{
	unsigned i = 0;
	while (i < max - 1 && procs[i].pid != 0)
		i++;
	return i;
}

/* started - slot i serves a client now: count it and log it once */
static void started(unsigned i, struct loop *lp)
{
	if (procs[i].counted)
		return;
	procs[i].counted = true;
	lp->active++;
	log_msg(LOG_DEBUG, "event=session-start pid=%ld active=%u", (long)procs[i].pid, lp->active);
}

/* notice - what spare i did since the daemon last looked: took a
 * client (SESSION) or refused one (DONE) */
static void notice(unsigned i, struct loop *lp)
{
	enum prefork_state st = prefork_state(i);
	if (procs[i].kind == PREFORK_SESSION && st == PREFORK_SPARE) {
		/* --session-reuse: its session ended cleanly, and it waits
		 * for another client (if it took one meanwhile, the bell
		 * it rang then brings the daemon back) */
		procs[i].kind = PREFORK_SPARE;
		procs[i].counted = false;
		if (lp->active > 0)
			lp->active--;
		if (procs[i].gen == prefork_generation())
			lp->idle++;
		log_msg(LOG_DEBUG, "event=session-reuse pid=%ld active=%u", (long)procs[i].pid,
		        lp->active);
		return;
	}
	if (procs[i].kind != PREFORK_SPARE || st == PREFORK_SPARE)
		return;
	if (procs[i].gen == prefork_generation() && lp->idle > 0)
		lp->idle--;
	procs[i].kind = (int)st;
	if (st == PREFORK_SESSION)
		started(i, lp);
}

/* notice_all - every spare's news (after the bell rang) */
static void notice_all(unsigned max, struct loop *lp)
{
	for (unsigned i = 0; i < max; i++)
		if (procs[i].pid > 0)
			notice(i, lp);
}

/* stop_sessions - RFC 5321 421 from every session at its next command;
 * a message in flight is finished first (session.c). A spare that takes
 * a client after prefork_stop() sees the flag and stops itself. */
static void stop_sessions(unsigned max, struct loop *lp)
{
	notice_all(max, lp);
	for (unsigned i = 0; i < max; i++)
		if (procs[i].pid > 0 && procs[i].kind == PREFORK_SESSION)
			kill(procs[i].pid, SIGTERM);
}

/* gone - slot i's process ended with status st: a session's last line,
 * or a spare's when a signal (not the daemon) ended it */
static void gone(unsigned i, int st, struct loop *lp)
{
	pid_t pid = procs[i].pid;
	notice(i, lp);
	if (procs[i].kind == PREFORK_SESSION) {
		if (lp->active > 0)
			lp->active--;
		if (WIFSIGNALED(st))
			log_msg(LOG_ERR, "event=session-crashed pid=%ld signal=%d", (long)pid,
			        WTERMSIG(st));
		else
			log_msg(LOG_DEBUG, "event=session-exit pid=%ld status=%d active=%u",
			        (long)pid, WEXITSTATUS(st), lp->active);
	} else if (procs[i].kind == PREFORK_SPARE) {
		if (procs[i].gen == prefork_generation() && lp->idle > 0)
			lp->idle--;
		if (WIFSIGNALED(st))
			log_msg(LOG_WARNING, "event=spare-lost pid=%ld signal=%d", (long)pid,
			        WTERMSIG(st));
	}
	procs[i] = (struct proc){0};
	prefork_set(i, PREFORK_FREE);
	if (lp->nprocs > 0)
		lp->nprocs--;
}

/* start_runner - --queue: fork the queue runner (queue_run.h), which
 * dies with the daemon (a SIGKILL leaves no runner to race the next
 * daemon's) */
static void start_runner(const struct server *srv)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "event=queue-runner-failed error=\"%s\"", strerror(errno));
		runner_resume_ms = mono_ms() + 1000;
		return;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(0);
		listen_socket_close(false);
		close_daemon_fds(); /* the spares' retire pipe too: they must see EOF */
		prefork_close();
		_exit(config_exit_code(srv->cfg, (enum exit_kind)queue_run(srv, false)));
	}
	runner_pid = pid;
	log_msg(LOG_DEBUG, "event=queue-runner-started pid=%ld", (long)pid);
}

/* reap - collect every finished session and spare (and the queue runner) */
static void reap(unsigned max, struct loop *lp)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == runner_pid) { /* started again after a pause, unless stopping */
			runner_pid = 0;
			runner_resume_ms = mono_ms() + 1000;
			log_msg(WIFSIGNALED(st) ? LOG_ERR : LOG_INFO,
			        "event=queue-runner-exit pid=%ld status=%d signal=%d", (long)pid,
			        WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			        WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			continue;
		}
		unsigned i = 0;
		while (i < max && procs[i].pid != pid)
			i++;
		if (i < max)
			gone(i, st, lp);
	}
}

/* session_mask - a session's signal mask: the one from before the
 * daemon's, but for SIGTERM and SIGINT (one sent meanwhile stays
 * pending for the session's own handler) and, with --queue, SIGUSR1
 * (the runner's flush: `pkill -USR1 smtpipe` ends no session) */
static sigset_t session_mask(const struct config *cfg)
{
	sigset_t mask = open_mask;
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (cfg->queue_dir)
		sigaddset(&mask, SIGUSR1);
	return mask;
}

/* serve_one - the child: one session, then exit */
static void serve_one(const struct server *srv, int fd, struct session_origin *o)
{
	listen_socket_close(false); /* closed, not removed: the daemon's to remove */
	close_daemon_fds();
	prefork_close(); /* the other sessions' slots and clients are none of its business */
	listener_session_signals();
	sigset_t mask = session_mask(srv->cfg);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	_exit(config_exit_code(srv->cfg, session_run(srv, fd, fd, o)));
}

/* spare_start - the child of top_up: the daemon's descriptors but the
 * spare's two ends of its pipes closed, SIGHUP ignored and the
 * session's signal mask, then a spare's life (spare.c) */
static void spare_start(const struct server *srv, unsigned i, unsigned gen)
{
	close_fd(&sig_fd);
	daemon_pidfile_forget();
	close_fd(&bell[0]);
	close_fd(&retire[1]);
	listener_session_signals();
	sigset_t mask = session_mask(srv->cfg);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	struct spare_env env = {.socks = socks,
	                        .nsocks = nsocks,
	                        .retire_fd = retire[0],
	                        .bell_fd = bell[1],
	                        .serve_one = serve_one};
	spare_run(srv, &env, i, gen);
}

/* top_up - fork spares until --spare-sessions wait (slots allowing);
 * after the bell, so that the fork is never what a client waits for */
static void top_up(const struct server *srv, struct loop *lp)
{
	unsigned max = srv->cfg->max_sessions;
	while (lp->idle < lp->want && lp->nprocs < max) {
		long long now = mono_ms();
		if (now < lp->spare_resume_ms)
			return;
		unsigned i = free_slot(max), gen = prefork_generation();
		prefork_set(i, PREFORK_SPARE);
		pid_t pid = fork();
		if (pid == 0)
			spare_start(srv, i, gen);
		if (pid < 0) {
			/* the clients are served the old way meanwhile: the
			 * daemon accepts when no spare waits */
			prefork_set(i, PREFORK_FREE);
			failed(&lp->spare_fail, errno, now);
			lp->spare_resume_ms = now + lp->spare_backoff_ms;
			lp->spare_backoff_ms = lp->spare_backoff_ms * 2 > BOUND_FORK_BACKOFF_MAX_MS
			                           ? BOUND_FORK_BACKOFF_MAX_MS
			                           : lp->spare_backoff_ms * 2;
			return;
		}
		recovered(&lp->spare_fail, now);
		recovered(&lp->fork_fail, now); /* fork works again */
		lp->spare_backoff_ms = BOUND_FORK_BACKOFF_MS;
		procs[i] = (struct proc){.pid = pid, .kind = PREFORK_SPARE, .gen = gen};
		lp->idle++;
		lp->nprocs++;
	}
}

/* retire_spares - end the current generation of spares: the ones
 * waiting read EOF and exit; one that took a client meanwhile sees the
 * new generation (or the stop flag) */
static void retire_spares(struct loop *lp, bool renew)
{
	if (lp->want == 0)
		return;
	prefork_retire();
	lp->idle = 0;
	close_fd(&retire[1]);
	close_fd(&retire[0]);
	if (renew && pipe2(retire, O_CLOEXEC) < 0) {
		log_msg(LOG_ERR, "event=spares-off error=\"%s\"", strerror(errno));
		lp->want = 0; /* the daemon accepts by itself from now on */
	}
}

/* pool_open - the shared table, and the spares' channels when there
 * are to be spares; the listening sockets become non-blocking, since
 * several spares may wake for one connection */
static int pool_open(const struct config *cfg, struct loop *lp, char *err, size_t errlen)
{
	if (prefork_open(cfg->max_sessions, err, errlen) < 0)
		return -1;
	procs = calloc(cfg->max_sessions, sizeof(*procs));
	if (!procs) {
		snprintf(err, errlen, "cannot track sessions: %s", strerror(errno));
		return -1;
	}
	lp->want =
	    cfg->spare_sessions < cfg->max_sessions ? cfg->spare_sessions : cfg->max_sessions;
	if (lp->want == 0)
		return 0;
	if (pipe2(bell, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(retire, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot make the spares' pipes: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < nsocks; i++) {
		int fl = fcntl(socks[i].fd, F_GETFL);
		if (fl < 0 || fcntl(socks[i].fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			snprintf(err, errlen, "%s: cannot make it non-blocking: %s", socks[i].name,
			         strerror(errno));
			return -1;
		}
	}
	return 0;
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

/* sighup - reopen the log file (logrotate renamed it), then reload the
 * TLS credentials; a reload that fails keeps the old ones (tls.c) */
static void sighup(const struct server *srv)
{
	char err[512];
	if (log_reopen(err, sizeof(err)) < 0)
		log_msg(LOG_ERR, "event=log-reopen-failed error=\"%s\"", err);
	else if (srv->cfg->log_dest == LOG_DEST_FILE)
		log_msg(LOG_INFO, "event=log-reopened file=%s", srv->cfg->log_file);
	auth_reload(); /* --auth-file */
	if (!srv->tls)
		log_msg(LOG_INFO, "event=sighup tls=off");
	else if (tls_server_reload(srv->tls, err, sizeof(err)) < 0)
		log_msg(LOG_ERR, "event=tls-reload-failed error=\"%s\"", err);
	else
		log_msg(LOG_INFO, "event=tls-reloaded");
}

/* accept_one - no spare waits: take one client from l, and refuse it
 * (per-client cap, no fork) or fork its session */
static void accept_one(const struct server *srv, struct listen_socket *l, struct loop *lp)
{
	const struct config *cfg = srv->cfg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	long long now = mono_ms();
	if (fd < 0) {
		/* out of descriptors or memory: the client stays in the
		 * backlog; rest a while, since polling again at once
		 * would spin, and log one line, not one per retry */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			failed(&lp->accept_fail, errno, now);
			lp->resume_ms = now + BOUND_ACCEPT_RETRY_MS;
		}
		return;
	}
	recovered(&lp->accept_fail, now);
	unsigned char key[16];
	struct session_origin o = {.listener = l->name, .tls = l->tls};
	bool local;
	unsigned mine, i = free_slot(cfg->max_sessions);
	client_describe(fd, &ss, key, &o, &local);
	if (prefork_claim(i, key, client_limit(cfg, local), &mine) < 0) {
		prefork_set(i, PREFORK_FREE);
		client_capped(fd, &o, mine);
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		serve_one(srv, fd, &o);
	if (pid < 0) {
		/* out of processes (RLIMIT_NPROC) or memory: tell this
		 * client, and rest before taking the next one */
		prefork_set(i, PREFORK_FREE);
		failed(&lp->fork_fail, errno, now);
		client_refuse(fd, "421 4.3.2 Cannot start a session now, try again later\r\n");
		lp->resume_ms = now + lp->backoff_ms;
		lp->backoff_ms = lp->backoff_ms * 2 > BOUND_FORK_BACKOFF_MAX_MS
		                     ? BOUND_FORK_BACKOFF_MAX_MS
		                     : lp->backoff_ms * 2;
		return;
	}
	recovered(&lp->fork_fail, now);
	lp->backoff_ms = BOUND_FORK_BACKOFF_MS;
	procs[i] = (struct proc){.pid = pid, .kind = PREFORK_SESSION};
	lp->nprocs++;
	started(i, lp);
	close(fd);
}

/* wait_ms - how long the loop may sleep: until the listening sockets'
 * rest ends (when the daemon accepts), or the spares' back-off */
static int wait_ms(const struct loop *lp, bool stopping, unsigned max, long long now)
{
	long long until = -1;
	if (!stopping && lp->nprocs < max && lp->idle == 0 && now < lp->resume_ms)
		until = lp->resume_ms;
	if (!stopping && lp->idle < lp->want && lp->nprocs < max && now < lp->spare_resume_ms &&
	    (until < 0 || lp->spare_resume_ms < until))
		until = lp->spare_resume_ms;
	return until < 0 ? -1 : (int)(until - now);
}

/* runner_stop - while stopping: a runner past its bound is killed
 * (once); the poll's wait shortened to that bound */
static int runner_stop(long long now, int rest_ms)
{
	if (now >= runner_kill_ms) {
		if (runner_kill_ms > 0) {
			log_msg(
			    LOG_WARNING,
			    "event=queue-runner-killed pid=%ld reason=\"did not end after SIGTERM "
			    "within --delivery-timeout and %d s\"",
			    (long)runner_pid, BOUND_QUEUE_STOP_GRACE_MS / 1000);
			kill(runner_pid, SIGKILL);
			runner_kill_ms = 0;
		}
		return rest_ms;
	}
	long long left = runner_kill_ms - now;
	return rest_ms >= 0 && rest_ms < left ? rest_ms : (int)left;
}

/* drain - empty the bell */
static void drain(int fd)
{
	char buf[256];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* start_up - detach, the pid file, the table of processes, the start
 * lines, then "ready" to whoever waits (the parent of --daemon, the
 * test reading the port, systemd); 0, or the exit code of a failure */
static int start_up(const struct server *srv, struct loop *lp)
{
	const struct config *cfg = srv->cfg;
	int ready_fd = -1;
	char err[512];
	if (cfg->mode == MODE_DAEMON && (ready_fd = daemon_detach(cfg, announce_port)) < 0)
		return startup_failed(cfg, -1, "cannot detach");
	if (daemon_pidfile_write() < 0) {
		char what[300];
		snprintf(what, sizeof(what), "cannot write %s", cfg->pidfile);
		return startup_failed(cfg, ready_fd, what);
	}
	if (pool_open(cfg, lp, err, sizeof(err)) < 0)
		return startup_failed(cfg, ready_fd, err);
	/* logged before the ports are announced: a test that has read
	 * them finds these lines */
	log_msg(LOG_INFO, "event=start listener=%s%s port=%u max-sessions=%u spare-sessions=%u",
	        socks[0].name, socks[0].tls ? " tls=implicit" : "", listen_socket_port(&socks[0]),
	        cfg->max_sessions, lp->want);
	for (unsigned i = 1; i < nsocks; i++)
		log_msg(LOG_INFO, "event=listen listener=%s%s", socks[i].name,
		        socks[i].tls ? " tls=implicit" : "");
	if (ready_fd < 0)
		announce_port();
	if (ready_fd >= 0) {
		unsigned char ok = 0;
		ssize_t w = write(ready_fd, &ok, 1);
		(void)w;
		close(ready_fd);
	}
	daemon_notify("READY=1");
	return 0;
}

/* on_signals - the signals the signalfd holds: SIGCHLD reaps, SIGHUP
 * reloads and retires the spares forked before it, SIGUSR1 wakes the
 * queue's runner, SIGTERM and SIGINT begin the stop (*stopping) */
static void on_signals(const struct server *srv, struct loop *lp, unsigned max, bool *stopping)
{
	static struct signalfd_siginfo sigs[16]; /* static: a smaller frame to copy at fork */
	ssize_t n = read(sig_fd, sigs, sizeof(sigs));
	bool child = false;
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(sigs[0]); i++) {
		if (sigs[i].ssi_signo == SIGCHLD) {
			child = true;
		} else if (sigs[i].ssi_signo == SIGHUP) {
			sighup(srv);
			if (!*stopping) /* spares forked before it retire */
				retire_spares(lp, true);
			if (runner_pid > 0) /* it reopens the log too */
				kill(runner_pid, SIGHUP);
		} else if (sigs[i].ssi_signo == SIGUSR1) {
			log_msg(LOG_INFO, "event=queue-flush-requested runner=%ld",
			        (long)runner_pid);
			if (runner_pid > 0)
				kill(runner_pid, SIGUSR1);
		} else if (!*stopping) { /* SIGTERM, SIGINT */
			*stopping = true;
			prefork_stop();
			listen_socket_close(true); /* no new client; Unix sockets removed */
			retire_spares(lp, false);
			daemon_notify("STOPPING=1");
			stop_sessions(max, lp);
			if (runner_pid > 0) { /* deliveries finish, then it ends */
				kill(runner_pid, SIGTERM);
				runner_kill_ms = mono_ms() + srv->cfg->delivery_timeout * 1000LL +
				                 BOUND_QUEUE_STOP_GRACE_MS;
			}
			log_msg(LOG_INFO, "event=stopping active=%u", lp->active);
		}
	}
	if (child) /* one pass collects every finished process */
		reap(max, lp);
}

/* listener_run - see listener.h */
int listener_run(const struct server *srv)
{
	const struct config *cfg = srv->cfg;
	struct loop lp = {.accept_fail = {.event = "accept"},
	                  .fork_fail = {.event = "fork"},
	                  .spare_fail = {.event = "spare-fork"},
	                  .backoff_ms = BOUND_FORK_BACKOFF_MS,
	                  .spare_backoff_ms = BOUND_FORK_BACKOFF_MS};
	int rc = start_up(srv, &lp);
	if (rc != 0)
		return rc;

	bool stopping = false, capped = false;
	unsigned max = cfg->max_sessions;
	struct pollfd p[2 + 2 * BOUND_LISTENERS];
	while (!stopping || lp.nprocs > 0 || runner_pid > 0) {
		if (!stopping)
			top_up(srv, &lp);
		bool full = lp.active >= max;
		long long now = mono_ms();
		if (cfg->queue_dir && !stopping && !runner_pid && now >= runner_resume_ms)
			start_runner(srv);
		/* the daemon accepts by itself only when no spare waits */
		bool accepting =
		    !stopping && lp.nprocs < max && lp.idle == 0 && now >= lp.resume_ms;
		if (full && !stopping && !capped) {
			log_msg(LOG_WARNING, "event=session-cap active=%u", lp.active);
			capped = true;
		}
		if (!full)
			capped = false;
		p[0] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
		p[1] = (struct pollfd){.fd = bell[0], .events = POLLIN}; /* -1: ignored */
		for (unsigned i = 0; i < nsocks; i++)
			p[2 + i] = (struct pollfd){.fd = socks[i].fd, .events = POLLIN};
		int rest_ms = wait_ms(&lp, stopping, max, now);
		if (cfg->queue_dir && !stopping && !runner_pid) /* the runner's restart */
			rest_ms = rest_ms >= 0 && rest_ms < runner_resume_ms - now
			              ? rest_ms
			              : (int)(runner_resume_ms > now ? runner_resume_ms - now : 0);
		if (stopping && runner_pid > 0)
			rest_ms = runner_stop(now, rest_ms);
		if (poll(p, accepting ? 2 + nsocks : 2, rest_ms) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			drain(bell[0]);
			notice_all(max, &lp);
		}
		if (p[0].revents & POLLIN)
			on_signals(srv, &lp, max, &stopping);
		/* one client from each ready listener, while a slot is free */
		for (unsigned i = 0; accepting && !stopping && i < nsocks; i++)
			if ((p[2 + i].revents & POLLIN) && lp.nprocs < max && lp.idle == 0 &&
			    mono_ms() >= lp.resume_ms)
				accept_one(srv, &socks[i], &lp);
	}
	listen_socket_close(true);
	daemon_pidfile_remove(cfg->pidfile);
	close_fd(&bell[0]);
	close_fd(&bell[1]);
	close_fd(&retire[0]);
	free(procs);
	prefork_close();
	log_msg(LOG_INFO, "event=stop");
	return 0;
}
