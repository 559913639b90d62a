/*
 * spare.c - a spare's life: wait for a client, take it, serve it; with
 *           --session-reuse, wipe and wait again
 *
 * A spare is forked by the daemon (listener.c top_up) with the daemon's
 * own descriptors closed but its two pipe ends: the retire pipe's read
 * end (EOF: its generation is over, or the daemon is gone) and the
 * bell's write end (one byte: "look at the table"). It waits in
 * prefork_wait, claims its slot within the per-client limit (a client
 * over it is refused and the spare waits on), rings, and serves the
 * client as the daemon's own children do (env->serve_one, which exits).
 * Under --session-reuse=N it serves the session itself instead and,
 * when the session ended cleanly (session_reusable), fewer than N were
 * served and neither a stop nor a SIGHUP came, wipes the stack below
 * it, gives its slot back (prefork_return), rings, and waits again, at
 * most --timeout.
 */
#include "spare.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "bounds.h"
#include "client.h"
#include "clock.h"
#include "config.h"
#include "listen_socket.h"
#include "log.h"
#include "prefork.h"
#include "session.h"
#include "tls.h"
#include "coverage.h" /* last: it wraps _exit() in coverage builds */

/* ring - a spare tells the daemon to look at the table (a full pipe
 * means the daemon has that to read already) */
static void ring(const struct spare_env *env)
{
	ssize_t w = write(env->bell_fd, "", 1);
	(void)w;
}

/* reload - a spare that took its client after a SIGHUP it was
 * forked before: what the daemon reloaded, reloaded here too, so that no
 * client accepted after a reload is served with the old certificate or
 * log file (the daemon logged the reload; only failures are logged) */
static void reload(const struct server *srv)
{
	char err[512];
	bool log_ok = log_reopen(err, sizeof(err)) == 0;
	if (!log_ok)
		log_msg(LOG_ERR, "event=log-reopen-failed error=\"%s\"", err);
	auth_reload();
	if (srv->tls && tls_server_reload(srv->tls, err, sizeof(err)) < 0)
		log_msg(LOG_ERR, "event=tls-reload-failed error=\"%s\"", err);
}

/* take - a spare in slot i: wait for a client on every listening
 * socket, take one, and claim the slot within the per-client limit (a
 * client over it is refused, and the spare waits again); exit when its
 * generation is retired, the daemon is gone, or idle_ms pass (-1: no
 * bound) without a client it serves: refused ones do not extend it */
static int take(const struct server *srv, const struct spare_env *env, unsigned i, int idle_ms,
                struct session_origin *o)
{
	const struct config *cfg = srv->cfg;
	long long until = idle_ms < 0 ? -1 : clock_now_ms() + idle_ms;
	for (;;) {
		struct sockaddr_storage ss;
		unsigned which, mine;
		unsigned char key[16];
		bool local;
		long long left = until < 0 ? -1 : until - clock_now_ms();
		if (until >= 0 && left < 0)
			left = 0; /* past the bound: one look, no wait */
		int fd =
		    prefork_wait(env->socks, env->nsocks, env->retire_fd, (int)left, &ss, &which);
		if (fd < 0)
			_exit(0);
		if (prefork_stopping()) { /* taken as the daemon stopped */
			char bye[300];
			snprintf(bye, sizeof(bye), "421 4.3.2 %s Service shutting down\r\n",
			         srv->hostname);
			client_refuse(fd, bye);
			_exit(0);
		}
		*o = (struct session_origin){.listener = env->socks[which].name,
		                             .tls = env->socks[which].tls};
		client_describe(fd, &ss, key, o, &local);
		if (prefork_claim(i, key, client_limit(cfg, local), &mine) == 0) {
			prefork_wait_done();
			return fd;
		}
		/* refused: no session ran here, so this spare waits again,
		 * and a client over its limit costs no fork */
		client_capped(fd, o, mine);
	}
}

/* wipe_stack - zero the stack below the caller, where a session's
 * frames were (log lines with the client's text, decoded AUTH) */
__attribute__((noinline)) static void wipe_stack(void)
{
	char room[BOUND_REUSE_STACK_WIPE];
	explicit_bzero(room, sizeof(room));
}

/* reuse - --session-reuse: serve the client on fd here, and
 * return when this process may take another one: the session ended
 * cleanly, it has served fewer than N, and neither a stop nor a SIGHUP
 * came meanwhile (it would serve with what the daemon reloaded since).
 * Else it exits, as a session does. */
static void reuse(const struct server *srv, const struct spare_env *env, unsigned i, unsigned gen,
                  int fd, const struct session_origin *o, unsigned served)
{
	const struct config *cfg = srv->cfg;
	enum exit_kind k = session_run(srv, fd, fd, o);
	close(fd);
	log_set_session(NULL);
	if (!session_reusable() || served >= cfg->session_reuse || prefork_stopping() ||
	    prefork_generation() != gen)
		_exit(config_exit_code(cfg, k));
	wipe_stack();
	prefork_return(i);
	ring(env);
	log_msg(LOG_DEBUG, "event=reuse-wait served=%u", served);
}

/* spare_run - see spare.h */
void spare_run(const struct server *srv, const struct spare_env *env, unsigned i, unsigned gen)
{
	const struct config *cfg = srv->cfg;
	/* the stack pre-faulted saves the first client a few faults; with
	 * --session-reuse the clients after it find it there anyway, and 8
	 * kB more in every process of a burst is not worth it */
	if (cfg->session_reuse <= 1)
		prefork_prefault();
	for (unsigned served = 1;; served++) {
		struct session_origin o;
		int fd = take(srv, env, i, served > 1 ? (int)cfg->timeout * 1000 : -1, &o);
		if (prefork_generation() != gen)
			reload(srv);
		ring(env);
		/* SESSION is stored before the flag is read, and the daemon sets
		 * the flag before it reads the states: one of the two sees the
		 * other, and the SIGTERM reaches this session either way */
		if (prefork_stopping())
			raise(SIGTERM); /* blocked: pending for the session's handler */
		if (cfg->session_reuse <= 1)
			env->serve_one(srv, fd, &o);
		reuse(srv, env, i, gen, fd, &o, served);
	}
}
