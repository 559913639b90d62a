/*
 * session.c - one SMTP connection, from greeting to close
 *
 * Drives the engine over smtp_io and carries out its events: message
 * text goes through the DATA decoder into the spool, and only a whole
 * message is delivered (invariant 2); STARTTLS discards buffered input
 * before the handshake (invariant 7); AUTH is checked here, behind the
 * brute-force brake. SIGTERM lets a message in flight finish, then
 * answers 421 at the next command.
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bounds.h"
#include "data.h"
#include "deliver.h"
#include "deliver_maildir.h"
#include "deliver_mbox.h"
#include "deliver_pipe.h"
#include "engine.h"
#include "log.h"
#include "queue.h"
#include "smtp_io.h"
#include "spool.h"
#include "tls.h"

static volatile sig_atomic_t stop_requested;

/* on_stop - SIGTERM/SIGINT: finish what is in flight, then 421 */
static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static sigset_t wait_mask; /* the mask inside ppoll: SIGTERM let through */

/* install_signals - SIGTERM and SIGINT stay blocked except while
 * smtp_io waits in ppoll(), which then returns EINTR: a stop request
 * is seen between commands, never in the middle of a message or of a
 * delivery. SIGPIPE is ignored already (session.h): inherited from the
 * daemon, no system call per session. */
static void install_signals(void)
{
	sigset_t stop;
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	stop_requested = 0;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, &wait_mask);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
}

/* session_id - 12 hex digits, unique enough to follow one session */
static void session_id(char *buf, size_t cap)
{
	unsigned long long r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (unsigned long long)time(NULL) << 20 ^ (unsigned long long)getpid();
	snprintf(buf, cap, "%012llX", r & 0xFFFFFFFFFFFFULL);
}

struct session {
	const struct server *srv;
	struct engine *e;
	struct smtp_io io;
	struct spool sp;
	struct tls_conn *tls; /* NULL while plaintext */
	const struct session_origin *from;
	int fd_in, fd_out;
	int timeout_ms;
	char peer[64];
	char id[24];
	unsigned messages;   /* handed on with 250 */
	bool auth_response;  /* the next line answers a 334 (longer bound) */
	bool drop;           /* end without writing the replies still queued */
	bool authed;         /* auth_user holds who logged in */
	char auth_user[256]; /* SMTPIPE_AUTH_USER for the delivery command */
	size_t block_used;   /* the most of block (below) filled: wiped at the end */
	bool clean;          /* session_reusable, once it ended */
	/* last, and not cleared beyond its length: a session dirties only
	 * the part of these two pages that its replies use */
	struct reply_buf out; /* the engine's replies, written by smtp_io */
};

/* one per process; large buffers off the stack. Aligned to 1 kB: its
 * fields and the start of out (what a session writes) lie in one
 * aligned kilobyte, which never straddles two pages; 4 kB would align
 * the whole .bss and cost the daemon a page of its own */
static struct session current __attribute__((aligned(1024)));

/* Decoded DATA on its way to the spool. Outside struct session so that
 * a session that never sends DATA never touches (and never dirties
 * after fork) these 16 pages. */
static char block[SMTP_IO_BUFFER + 2];

/* engine_log - the engine's log hook: its lines come formatted */
static void engine_log(int prio, const char *line)
{
	log_msg(prio, "%s", line);
}

/* fault_delay - a fault's "delay SEC": the replies are held for SEC
 * seconds, at most the idle timeout, on the session's clock; SIGTERM
 * (let through by ppoll's mask) cuts it short */
static void fault_delay(struct session *s, unsigned sec)
{
	long long ms = (long long)sec * 1000;
	if (ms > s->timeout_ms)
		ms = s->timeout_ms;
	log_msg(LOG_DEBUG, "event=fault-delay ms=%lld client=%s", ms, s->peer);
	struct timespec until, now;
	smtp_io_deadline(&until, ms);
	while (!stop_requested) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		struct timespec left = {until.tv_sec - now.tv_sec, until.tv_nsec - now.tv_nsec};
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			break;
		ppoll(NULL, 0, &left, &wait_mask);
	}
}

/* data_deadline - DATA ends within timeout + wire / rate (bounds.h's
 * BOUND_DATA_MIN_RATE): the client earns time only by sending; once
 * the daemon is stopping, no later than stop_by (when not NULL) */
static void data_deadline(struct session *s, const struct timespec *start, unsigned long long wire,
                          const struct timespec *stop_by)
{
	const struct config *cfg = s->srv->cfg;
	unsigned long long ms = (unsigned long long)s->timeout_ms +
	                        wire / cfg->data_min_rate * 1000 +
	                        wire % cfg->data_min_rate * 1000 / cfg->data_min_rate;
	struct timespec d;
	d.tv_sec = start->tv_sec + (time_t)(ms / 1000);
	d.tv_nsec = start->tv_nsec + (long)(ms % 1000) * 1000000L;
	if (d.tv_nsec >= 1000000000L) {
		d.tv_sec++;
		d.tv_nsec -= 1000000000L;
	}
	if (stop_by && (stop_by->tv_sec < d.tv_sec ||
	                (stop_by->tv_sec == d.tv_sec && stop_by->tv_nsec < d.tv_nsec)))
		d = *stop_by;
	smtp_io_set_read_deadline(&s->io, &d);
}

/* data_timeout - the DATA phase ran out of time: nothing is delivered */
static enum exit_kind data_timeout(struct session *s, const struct data_decoder *d, bool stopping)
{
	log_msg(LOG_NOTICE, "event=timeout phase=%s client=%s size=%zu%s nothing-delivered",
	        smtp_io_write_timed_out(&s->io) ? "reply" : "data", s->peer, d->size,
	        stopping ? " stopping" : "");
	if (stopping)
		engine_shutdown(s->e);
	else
		engine_timeout(s->e);
	return EXIT_KIND_TIMEOUT;
}

/* receive_message - DATA text into the spool after the Received:
 * header of trace; EXIT_KIND_OK when the end of data was seen, else how
 * the session must end (nothing delivered). *cut: the message went past
 * --max-message-size + --max-discard, so the rest is not read (the
 * caller answers 552 and ends the session) */
static enum exit_kind receive_message(struct session *s, const struct engine_trace *trace,
                                      struct data_decoder *d, int *spool_err, bool *cut)
{
	const struct config *cfg = s->srv->cfg;
	char hdr[1024];
	struct timespec start, stop_by;
	bool stopping = false;       /* SIGTERM: one more timeout to finish */
	unsigned long long wire = 0; /* bytes of message text read */
	clock_gettime(CLOCK_MONOTONIC, &start);
	size_t hl = engine_received(trace, time(NULL), hdr, sizeof(hdr));
	spool_reset(&s->sp);
	int err = spool_write(&s->sp, hdr, hl) < 0 ? errno : 0; /* the first error sticks */
	data_decoder_init(d, cfg->max_message_size,
	                  cfg->max_line_length > 2 ? cfg->max_line_length - 2 : 0);
	size_t budget = cfg->max_message_size + cfg->max_discard;
	if (budget < cfg->max_message_size)
		budget = (size_t)-1;
	*cut = false;
	while (!d->done) {
		const char *in;
		size_t n, out;
		data_deadline(s, &start, wire, stopping ? &stop_by : NULL);
		enum smtp_io_status st = smtp_io_read_block(&s->io, &in, &n);
		if (st == SMTP_IO_ERROR && errno == EINTR) {
			/* a message in flight is finished first, within one more
			 * timeout, so that SIGTERM ends the daemon in bounded time */
			smtp_io_set_waitmask(&s->io, NULL);
			stopping = true;
			smtp_io_deadline(&stop_by, s->timeout_ms);
			continue;
		}
		if (st == SMTP_IO_TIMEOUT)
			return data_timeout(s, d, stopping);
		if (st != SMTP_IO_OK) {
			log_msg(LOG_NOTICE,
			        "event=disconnect phase=data size=%zu nothing-delivered", d->size);
			return EXIT_KIND_FAILURE;
		}
		size_t used = data_decode(d, in, n, block, &out);
		if (out > s->block_used)
			s->block_used = out;
		if (!d->too_big && !err && spool_write(&s->sp, block, out) < 0)
			err = errno;
		smtp_io_consume(&s->io, used);
		wire += used;
		if (d->too_big && !d->done && d->size > budget) {
			log_msg(LOG_NOTICE,
			        "event=too-big phase=data client=%s size=%zu limit=%zu "
			        "max-discard=%zu nothing-delivered",
			        s->peer, d->size, cfg->max_message_size, cfg->max_discard);
			*cut = true;
			return EXIT_KIND_FAILURE;
		}
	}
	if (!err && spool_finish(&s->sp) < 0)
		err = errno;
	*spool_err = err;
	return EXIT_KIND_OK;
}

/* deliver - hand the spooled message on and log the result */
static const struct engine_event *deliver(struct session *s, const struct engine_event *ev,
                                          const struct data_decoder *d)
{
	const struct config *cfg = s->srv->cfg;
	struct delivery env = ev->envelope;
	const struct delivery *dv = &env;
	struct delivery_result r = {.exit_status = -1};
	/* the command's view of the client, given at spawn time (never
	 * through our own environment, which a setenv per session would
	 * copy into pages of our own) */
	env.client = s->from->peer;
	env.listener = s->from->listener;
	env.client_uid = s->from->uid;
	env.auth_user = s->authed ? s->auth_user : NULL;
	char qid[QUEUE_ID_LEN + 1] = "";
	if (cfg->queue_dir) /* --queue: 250 means stored durably; the runner delivers */
		queue_store(cfg->queue_dir, dv, &s->sp, qid, &r);
	else if (cfg->maildir)
		deliver_maildir_run(cfg->maildir, s->srv->hostname, dv, &s->sp, &r);
	else if (cfg->mailbox)
		deliver_mbox_run(cfg->mailbox, dv, &s->sp, &r);
	else
		deliver_pipe_run(s->srv->command, dv, &s->sp, cfg->delivery_timeout, &r);
	char from[BOUND_PATH * 4 + 8];
	log_escape(from, sizeof(from), dv->sender, strlen(dv->sender));
	log_msg(r.code == 250 ? LOG_INFO : LOG_WARNING,
	        "event=%s msg=%s.%u%s%s nrcpt=%zu size=%zu result=%d status=%d%s%s from=\"%s\"",
	        r.code == 250 && qid[0] ? "queued"
	        : r.code == 250         ? "delivered"
	        : r.code < 500          ? "deferred"
	                                : "failed",
	        dv->id, ev->msgno, qid[0] ? " queue-id=" : "", qid, dv->nrcpt, d->size, r.code,
	        r.exit_status, r.timed_out ? " timed-out" : "", d->bare_lf ? " bare-lf" : "", from);
	if (r.code == 250)
		s->messages++;
	ev = engine_delivered(s->e, &r);
	spool_reset(&s->sp);
	return ev;
}

/* message - the text after 354 into the spool, then its delivery; the
 * engine's event after it, or NULL when the session ends (*result) */
static const struct engine_event *message(struct session *s, const struct engine_event *ev,
                                          enum exit_kind *result)
{
	struct data_decoder d;
	int spool_err = 0;
	bool cut;
	*result = receive_message(s, &ev->trace, &d, &spool_err, &cut);
	if (cut) /* 19.8: 552, and the rest is never read */
		engine_data_end(s->e, &d, 0);
	if (*result != EXIT_KIND_OK)
		return NULL;
	ev = engine_data_end(s->e, &d, spool_err);
	if (ev->delay_s) /* a dot fault's delay: before the delivery */
		fault_delay(s, ev->delay_s);
	if (ev->kind == ENGINE_EV_DELIVER)
		ev = deliver(s, ev, &d);
	return ev;
}

/* start_tls - RFC 3207 4.2: after the 220, drop buffered plaintext,
 * handshake, and start over; -1 ends the session */
static int start_tls(struct session *s)
{
	char err[256];
	struct timespec deadline; /* for the whole handshake, however it trickles */
	smtp_io_discard_input(&s->io);
	int ms = s->timeout_ms < BOUND_HANDSHAKE_SECONDS * 1000 ? s->timeout_ms
	                                                        : BOUND_HANDSHAKE_SECONDS * 1000;
	smtp_io_deadline(&deadline, ms);
	struct tls_conn *c =
	    tls_conn_handshake(s->srv->tls, s->fd_in, s->fd_out, &deadline, err, sizeof(err));
	if (!c) {
		log_msg(LOG_NOTICE, "event=tls-failed client=%s error=\"%s\"", s->peer, err);
		return -1;
	}
	s->tls = c;
	smtp_io_set_tls(&s->io, c);
	const char *peer = tls_conn_peer(c);
	log_msg(LOG_INFO, "event=starttls %s%s%s%s", tls_conn_describe(c),
	        peer ? " client-cert=\"" : "", peer ? peer : "", peer ? "\"" : "");
	return 0;
}

/* check_auth - behind the brake, in constant time; logs for fail2ban */
static const struct engine_event *check_auth(struct session *s, const struct engine_event *ev)
{
	const struct engine_credentials *c = &ev->cred;
	auth_brake_wait();
	bool ok = auth_check(s->srv->auth, c->user, c->user_len, c->pass, c->pass_len);
	if (!ok)
		auth_brake_failed();
	else if (c->user_len < sizeof(s->auth_user) && !memchr(c->user, '\0', c->user_len)) {
		memcpy(s->auth_user, c->user, c->user_len);
		s->auth_user[c->user_len] = '\0';
		s->authed = true;
	}
	char user[1024];
	log_escape(user, sizeof(user), c->user, c->user_len);
	log_msg(ok ? LOG_INFO : LOG_WARNING, "event=%s client=%s mech=%s user=\"%s\"",
	        ok ? "auth-ok" : "auth-failed", s->peer, c->mech, user);
	return engine_auth_result(s->e, ok); /* wipes the credentials */
}

/* on_event - carry out one event of the engine; false when the session
 * ends, with *result saying how */
static bool on_event(struct session *s, const struct engine_event *ev, enum exit_kind *result)
{
	if (ev->delay_s) /* a fault's delay, before what the event asks */
		fault_delay(s, ev->delay_s);
	switch (ev->kind) {
	case ENGINE_EV_DATA:
		ev = message(s, ev, result);
		if (!ev)
			return false;
		break;
	case ENGINE_EV_STARTTLS:
		if (smtp_io_flush(&s->io, &s->out) != SMTP_IO_OK || start_tls(s) < 0) {
			s->drop = true;
			*result = EXIT_KIND_FAILURE;
			return false;
		}
		ev = engine_tls_started(s->e, tls_conn_describe(s->tls));
		break;
	case ENGINE_EV_AUTH:
		ev = check_auth(s, ev);
		break;
	default:
		break;
	}
	s->auth_response = ev->auth_response;
	if (ev->kind != ENGINE_EV_CLOSE)
		return true;
	*result = ev->end == ENGINE_END_QUIT ? EXIT_KIND_OK : EXIT_KIND_FAILURE;
	return false;
}

/* line_limit - RFC 5321 4.5.3.1.4's 512 octets for a command, known
 * as soon as that many arrive; AUTH lines and responses may be longer
 * (RFC 4954 4) */
static const struct smtp_io_limit *line_limit(const struct session *s)
{
	static const struct smtp_io_limit cmd = {BOUND_COMMAND_LINE - 2, "AUTH ", BOUND_AUTH_LINE};
	static const struct smtp_io_limit auth = {BOUND_AUTH_LINE, NULL, 0};
	return s->auth_response ? &auth : &cmd;
}

/* read_failed - no line: a timeout, or the client went away */
static enum exit_kind read_failed(struct session *s, enum smtp_io_status st)
{
	if (st == SMTP_IO_TIMEOUT) {
		log_msg(LOG_NOTICE, "event=timeout phase=%s client=%s",
		        smtp_io_write_timed_out(&s->io) ? "reply" : "command", s->peer);
		engine_timeout(s->e);
		return EXIT_KIND_TIMEOUT;
	}
	const char *mid = engine_gone(s->e)->unfinished; /* mid-auth, mid-transaction */
	log_msg(mid ? LOG_NOTICE : LOG_INFO, "event=disconnect client=%s%s%s", s->peer,
	        mid ? " " : "", mid ? mid : "");
	s->drop = true;
	return !mid && st == SMTP_IO_EOF ? EXIT_KIND_OK : EXIT_KIND_FAILURE;
}

/* serve - lines in, events carried out, until the session ends */
static enum exit_kind serve(struct session *s)
{
	enum exit_kind result = EXIT_KIND_FAILURE;
	if (s->from->tls) { /* RFC 8314 3.3: TLS before the greeting */
		if (start_tls(s) < 0) {
			s->drop = true;
			return EXIT_KIND_FAILURE;
		}
		engine_tls_started(s->e, tls_conn_describe(s->tls));
	}
	if (!on_event(s, engine_opening(s->e), &result)) /* a connect fault */
		return result;
	for (;;) {
		if (stop_requested) {
			engine_shutdown(s->e);
			return EXIT_KIND_OK;
		}
		const char *line = "";
		size_t len = 0;
		bool too_long = false;
		enum smtp_io_status st = SMTP_IO_OK;
		if (reply_half_full(&s->out)) /* a write that times out ends it as a read does */
			st = smtp_io_flush(&s->io, &s->out);
		if (st == SMTP_IO_OK)
			st = smtp_io_read_line(&s->io, line_limit(s), &line, &len, &too_long);
		if (st == SMTP_IO_ERROR && errno == EINTR)
			continue;
		if (st != SMTP_IO_OK)
			return read_failed(s, st);
		if (too_long)
			log_msg(LOG_NOTICE, "event=line-too-long client=%s limit=%zu", s->peer,
			        line_limit(s)->max);
		if (!on_event(s, engine_line(s->e, line, len, too_long), &result))
			return result;
	}
}

/* session_start - the connection's parts; -1 (logged) when out of memory */
static int session_start(struct session *s, const struct server *srv, int fd_in, int fd_out,
                         const struct session_origin *from)
{
	const struct config *cfg = srv->cfg;
	char uid[32] = "";
	s->srv = srv;
	s->from = from;
	s->fd_in = fd_in;
	s->fd_out = fd_out;
	s->timeout_ms = (int)cfg->timeout * 1000;
	snprintf(s->peer, sizeof(s->peer), "%s", from->peer);
	session_id(s->id, sizeof(s->id));
	log_set_session(s->id);
	if (from->uid >= 0)
		snprintf(uid, sizeof(uid), " uid=%ld", from->uid);
	log_msg(LOG_INFO, "event=connect client=%s%s listener=%s%s", s->peer, uid, from->listener,
	        from->tls ? " tls=implicit" : "");
	if (smtp_io_init(&s->io, fd_in, fd_out, s->timeout_ms) < 0) {
		log_msg(LOG_ERR, "event=error error=\"out of memory\"");
		return -1;
	}
	spool_init(&s->sp, cfg->spool_dir);
	struct engine_features feat = {
	    .hostname = srv->hostname,
	    .starttls = srv->tls != NULL,
	    .tls_required = cfg->tls_required,
	    .auth = srv->auth != NULL,
	    .faults = srv->faults,
	    .log = engine_log,
	    .log_enabled = log_enabled,
	};
	s->e = engine_new(cfg, &feat, s->peer, s->id, &s->out);
	if (!s->e) {
		log_msg(LOG_ERR, "event=error error=\"out of memory\"");
		spool_free(&s->sp);
		smtp_io_free(&s->io);
		return -1;
	}
	smtp_io_set_replies(&s->io, &s->out);
	smtp_io_set_waitmask(&s->io, &wait_mask);
	return 0;
}

/* session_run - see session.h */
enum exit_kind session_run(const struct server *srv, int fd_in, int fd_out,
                           const struct session_origin *from)
{
	install_signals();
	memset(&current, 0, offsetof(struct session, out));
	current.out.len = 0;
	if (session_start(&current, srv, fd_in, fd_out, from) < 0)
		return EXIT_KIND_FAILURE;
	enum exit_kind result = serve(&current);
	if (!current.drop) /* the last replies and the bye: one timeout */
		smtp_io_close(&current.io, &current.out);
	unsigned long long in, out;
	smtp_io_bytes(&current.io, &in, &out);
	log_msg(LOG_INFO, "event=close client=%s messages=%u in=%llu out=%llu", current.peer,
	        current.messages, in, out);
	smtp_io_close(&current.io, NULL);
	engine_free(current.e);
	spool_free(&current.sp);
	smtp_io_free(&current.io);
	/* what the client sent and who logged in: gone before another
	 * client of this process (--session-reuse) */
	bool clean = result == EXIT_KIND_OK && !stop_requested && !current.io.write_failed &&
	             !current.tls; /* GnuTLS's freed memory is not ours to wipe */
	explicit_bzero(block, current.block_used);
	explicit_bzero(&current, offsetof(struct session, out));
	current.clean = clean;
	return result;
}

/* session_reusable - see session.h */
bool session_reusable(void)
{
	return current.clean;
}
