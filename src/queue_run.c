/*
 * queue_run.c - the queue runner (queue_run.h): a loop over DIR/q that
 *               forks one worker per due message, and the commands of
 *               the administrator
 *
 * The runner reads only the small state file of each message to decide
 * what is due; a worker reads the envelope, delivers, and records the
 * outcome with the queue's atomic steps (queue.h), so that killing the
 * runner or a worker at any moment loses nothing: a message is removed
 * only after its delivery answered 250, and a SIGKILL between that 250
 * and the removal is the one way to a second delivery. The runner is
 * woken by its signalfd (a worker done, SIGUSR1, SIGTERM) or every
 * BOUND_QUEUE_SCAN_MS to find new messages.
 */
#include "queue_run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "bounds.h"
#include "config.h"
#include "deliver_maildir.h"
#include "deliver_mbox.h"
#include "deliver_pipe.h"
#include "log.h"
#include "queue.h"
#include "session.h"
#include "spool.h"
#include "coverage.h" /* last: it wraps _exit() in coverage builds */

struct worker {
	pid_t pid; /* 0: free */
	char id[QUEUE_ID_LEN + 1];
};

struct runner {
	const struct server *srv;
	struct queue q;
	int sig_fd;
	bool once, stopping;
	struct worker *w; /* cfg->queue_workers slots */
	unsigned busy;
	long long flush_ms; /* SIGUSR1: what was not tried since is due */
	/* DIR/lock could not be made ours again (check_lock): said once;
	 * yielding: another process holds the new file, so no worker starts */
	bool lock_lost, yielding;
	/* --queue-run: the IDs started in this run, never started twice */
	char (*started)[QUEUE_ID_LEN + 1];
	size_t nstarted, capstarted;
	/* IDs left alone until their time: found locked or gone by their
	 * worker (until the next scan), or whose outcome could not be
	 * written (a full disk: until --queue-retry), so that such a
	 * message costs one fork a while, not one after every worker's end */
	struct held {
		char id[QUEUE_ID_LEN + 1];
		long long until_ms;
	} * held;
	size_t nheld, capheld;
};

/* a worker's exit status when it made no attempt (locked, gone) */
#define WORKER_SKIPPED 3
/* ... when it made one but could not record its outcome in DIR/q */
#define WORKER_UNRECORDED 4

/* wall_ms - the wall clock in milliseconds (the state files hold it) */
static long long wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* enhanced - the enhanced status at the start of a reply text, or def */
static void enhanced(const char *text, const char *def, char *out, size_t cap)
{
	size_t n = strspn(text, "0123456789.");
	if (n >= 5 && n < cap && (text[0] == '4' || text[0] == '5') && text[1] == '.' &&
	    (text[n] == ' ' || text[n] == '\0')) {
		memcpy(out, text, n);
		out[n] = '\0';
	} else {
		snprintf(out, cap, "%s", def);
	}
}

/* make_bounce - make the DSN about e (failed with r, or expired) to its
 * sender inside the message directory mdir (queue_bounce_stage); 0
 * (bid and status, the DSN's, filled), -1 (logged) */
static int make_bounce(struct runner *R, int mdir, const struct queue_env *e, int msg,
                       const struct delivery_result *r, bool expired, char bid[QUEUE_ID_LEN + 1],
                       char status[16])
{
	const struct config *cfg = R->srv->cfg;
	char diag[400], err[256] = "";
	enhanced(r->text, "5.0.0", status, 16);
	if (expired)
		snprintf(status, 16, "4.4.7");
	const char *name = r->exit_status >= 0 ? deliver_exit_name(r->exit_status) : "-";
	snprintf(diag, sizeof(diag), "smtp; %d %s%s%s%s", r->code, r->text,
	         strcmp(name, "-") ? " (" : "", strcmp(name, "-") ? name : "",
	         strcmp(name, "-") ? ")" : "");
	struct bounce_info bi = {
	    .reporting_host = R->srv->hostname,
	    .queue_id = e->id,
	    .sender = e->sender,
	    .rcpts = e->rcpts,
	    .nrcpt = e->nrcpt,
	    .status = status,
	    .diagnostic = diag,
	    .arrival = (time_t)e->arrival,
	    .now = time(NULL),
	    .expired = expired,
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc = f ? bounce_write(f, &bi, msg, err, sizeof(err)) : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	if (rc < 0) {
		log_msg(LOG_ERR, "event=bounce-error queue-id=%s error=\"%s\"", e->id,
		        err[0] ? err : "out of memory");
		free(buf);
		return -1;
	}
	struct spool sp;
	spool_init(&sp, cfg->spool_dir);
	rc = spool_write(&sp, buf, len) < 0 || spool_finish(&sp) < 0 ? -1 : 0;
	free(buf);
	const char *to[1] = {e->sender};
	struct delivery bd = {.sender = "", .rcpts = to, .nrcpt = 1, .id = e->id, .client_uid = -1};
	if (rc < 0)
		snprintf(err, sizeof(err), "cannot spool the bounce: %s", strerror(errno));
	else
		rc = queue_bounce_stage(&R->q, mdir, &bd, &sp, bid, err, sizeof(err));
	spool_free(&sp);
	if (rc < 0)
		log_msg(LOG_ERR, "event=queue-error queue-id=%s error=\"%s\"", e->id, err);
	return rc;
}

/* finish_give_up - the steps of give_up after the verdict is in the
 * state: the bounce into DIR/q (when it is still in the message), the
 * message into DIR/failed; true when both are done. r and status: the
 * attempt's result and the bounce's status, NULL when resumed (a retry
 * of a step that failed before: the state's error says why) */
static bool finish_give_up(struct runner *R, const struct queue_env *e, int mdir,
                           const struct queue_state *s, const struct delivery_result *r,
                           const char *status)
{
	char from[BOUND_PATH * 4 + 8], reason[sizeof(s->error) * 4 + 8];
	log_escape(from, sizeof(from), e->sender, strlen(e->sender));
	log_escape(reason, sizeof(reason), s->error, strlen(s->error));
	if (s->bounce[0]) {
		int rc = queue_bounce_queue(&R->q, mdir, s->bounce);
		if (rc < 0) {
			log_msg(LOG_ERR,
			        "event=queue-error queue-id=%s bounce-id=%s error=\"cannot queue "
			        "the bounce: %s\"",
			        e->id, s->bounce, strerror(errno));
			return false;
		}
		if (rc == 0)
			log_msg(LOG_NOTICE, "event=bounced queue-id=%s bounce-id=%s%s%s to=\"%s\"",
			        e->id, s->bounce, status ? " status=" : "", status ? status : "",
			        from);
	}
	if (queue_fail(&R->q, e->id) < 0) {
		log_msg(LOG_ERR,
		        "event=queue-error queue-id=%s error=\"cannot move to failed: %s\"%s%s",
		        e->id, strerror(errno), s->bounce[0] ? " bounce-id=" : "", s->bounce);
		return false;
	}
	const char *what = s->gave_up == QUEUE_GAVE_UP_EXPIRED ? "expired" : "failed";
	if (r) {
		char text[sizeof(r->text) * 4 + 8];
		log_escape(text, sizeof(text), r->text, strlen(r->text));
		log_msg(LOG_WARNING,
		        "event=%s queue-id=%s attempts=%u result=%d status=%d reason=\"%s\" "
		        "from=\"%s\"",
		        what, e->id, s->attempts, r->code, r->exit_status, text, from);
	} else {
		log_msg(LOG_WARNING,
		        "event=%s queue-id=%s attempts=%u reason=\"%s\" from=\"%s\" resumed", what,
		        e->id, s->attempts, reason, from);
	}
	return true;
}

/* give_up - a permanent failure or an expired message: a bounce unless
 * the sender is <>, then DIR/failed, in steps that a retry resumes, so
 * that no failed step (a full disk, a failed/ that cannot take the
 * message) ever makes a second bounce, nor a second delivery:
 *   1. the bounce is made inside the message's directory (make_bounce);
 *   2. the state says "given up" and names the bounce: from here on the
 *      message is never delivered again, and its bounce never made again;
 *   3. the bounce moves into DIR/q by one rename;
 *   4. the message moves into DIR/failed.
 * A retry that finds step 2's state goes on at 3 (when the bounce is
 * still in the message) or 4; one that does not starts again at 1, and
 * a bounce left there by a cut before 2 never left the message (it is
 * made anew). false when the outcome could not be recorded in full */
static bool give_up(struct runner *R, int mdir, int msg, const struct queue_env *e,
                    struct queue_state *s, const struct delivery_result *r, bool expired)
{
	const struct config *cfg = R->srv->cfg;
	char bid[QUEUE_ID_LEN + 1] = "", status[16] = "";
	if (e->sender[0]) {
		if (make_bounce(R, mdir, e, msg, r, expired, bid, status) < 0) {
			/* no bounce, no failure: try again later, so nothing is lost */
			s->next = (long long)time(NULL) +
			          (long long)queue_backoff(s->attempts, cfg->queue_retry,
			                                   cfg->queue_retry_max);
			int w = queue_state_write(mdir, s);
			log_msg(LOG_ERR,
			        "event=deferred queue-id=%s attempts=%u reason=\"bounce not "
			        "queued\" next=%lld",
			        e->id, s->attempts, s->next);
			return w == 0;
		}
	} else {
		log_msg(LOG_NOTICE, "event=bounce-suppressed queue-id=%s reason=null-sender",
		        e->id);
	}
	s->gave_up = expired ? QUEUE_GAVE_UP_EXPIRED : QUEUE_GAVE_UP_FAILED;
	snprintf(s->bounce, sizeof(s->bounce), "%s", bid);
	s->next = 0; /* what is left to do is due at once */
	if (queue_state_write(mdir, s) < 0) {
		log_msg(LOG_ERR,
		        "event=queue-error queue-id=%s error=\"cannot write the state: %s\" "
		        "moved=no",
		        e->id, strerror(errno));
		queue_bounce_drop(mdir); /* made anew by the next attempt */
		return false;
	}
	return finish_give_up(R, e, mdir, s, r, status);
}

/* deliver_now - hand the message to the command, mailbox or Maildir,
 * as a session would */
static void deliver_now(struct runner *R, const struct queue_env *e, int msg,
                        struct delivery_result *r)
{
	const struct config *cfg = R->srv->cfg;
	struct delivery d = {
	    .sender = e->sender,
	    .rcpts = e->rcpts,
	    .nrcpt = e->nrcpt,
	    .id = e->id,
	    .client = e->client,
	    .listener = e->listener,
	    .client_uid = e->client_uid,
	    .auth_user = e->auth_user,
	};
	struct spool sp;
	struct stat st;
	spool_init(&sp, cfg->spool_dir);
	sp.fd = fcntl(msg, F_DUPFD_CLOEXEC, 0);
	if (sp.fd < 0 || fstat(msg, &st) < 0) {
		r->code = 451;
		r->exit_status = -1;
		snprintf(r->text, sizeof(r->text), "4.3.0 Cannot read the queued message");
		spool_free(&sp);
		return;
	}
	sp.size = (size_t)st.st_size;
	if (cfg->maildir)
		deliver_maildir_run(cfg->maildir, R->srv->hostname, &d, &sp, r);
	else if (cfg->mailbox)
		deliver_mbox_run(cfg->mailbox, &d, &sp, r);
	else
		deliver_pipe_run(R->srv->command, &d, &sp, cfg->delivery_timeout, r);
	spool_free(&sp);
}

/* msg_broken - whether DIR/q/id is still there while its msg cannot
 * be opened (deleted or replaced by hand): what a removal in progress
 * never shows, as it renames the whole directory away first */
static bool msg_broken(const struct runner *R, const char *id)
{
	int m = openat(R->q.q, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (m < 0) /* a link or a plain file where the message's directory was */
		return errno == ELOOP || errno == ENOTDIR;
	int f = openat(m, "msg", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int e = errno;
	if (f >= 0)
		close(f);
	close(m);
	errno = e;
	return f < 0;
}

/* work - a worker: one attempt at message id, and its outcome recorded;
 * its exit status: 0, WORKER_SKIPPED (no attempt: the message locked or
 * gone) or WORKER_UNRECORDED (the outcome could not be written) */
static int work(struct runner *R, const char *id)
{
	const struct config *cfg = R->srv->cfg;
	int mdir, msg;
	log_set_session(id);
	int rc = queue_msg_open(&R->q, QUEUE_Q, id, &mdir, &msg);
	if (rc < 0 && msg_broken(R, id)) {
		log_msg(LOG_ERR,
		        "event=queue-error queue-id=%s error=\"cannot open msg: %s\" moved=failed",
		        id, strerror(errno));
		queue_fail(&R->q, id);
		return 0;
	}
	if (rc != 0) { /* being deleted, requeued or delivered by someone else */
		log_msg(LOG_DEBUG, "event=queue-skip queue-id=%s reason=%s", id,
		        rc > 0 ? "locked" : strerror(errno));
		return WORKER_SKIPPED;
	}
	struct queue_env e;
	struct queue_state s;
	rc = queue_msg_read(mdir, &e, &s);
	if (rc < 0) {
		log_msg(LOG_ERR,
		        "event=queue-error queue-id=%s error=\"unreadable: %s\" moved=failed", id,
		        strerror(errno));
		queue_fail(&R->q, id);
		close(msg);
		close(mdir);
		return 0;
	}
	if (rc > 0)
		log_msg(LOG_ERR,
		        "event=queue-error queue-id=%s error=\"unreadable state, started "
		        "anew\"",
		        id);
	if (s.gave_up != QUEUE_LIVE) { /* given up on by an earlier attempt: finish that */
		rc = finish_give_up(R, &e, mdir, &s, NULL, NULL) ? 0 : WORKER_UNRECORDED;
		queue_env_free(&e);
		close(msg);
		close(mdir);
		return rc;
	}
	struct delivery_result r = {.exit_status = -1};
	s.attempts++;
	s.last_ms = wall_ms();
	deliver_now(R, &e, msg, &r);
	long long now = (long long)time(NULL);
	char from[BOUND_PATH * 4 + 8];
	log_escape(from, sizeof(from), e.sender, strlen(e.sender));
	int status = 0;
	if (r.code == 250) {
		if (queue_remove(&R->q, QUEUE_Q, id) < 0) {
			log_msg(LOG_ERR,
			        "event=queue-error queue-id=%s error=\"delivered, but cannot "
			        "remove it (if it is still queued, it will go out again): %s\"",
			        id, strerror(errno));
			status = WORKER_UNRECORDED;
		}
		log_msg(LOG_INFO, "event=delivered queue-id=%s attempts=%u nrcpt=%zu from=\"%s\"",
		        id, s.attempts, e.nrcpt, from);
	} else {
		snprintf(s.error, sizeof(s.error), "%d %s", r.code, r.text);
		bool temporary = r.code < 500;
		if (temporary && !queue_expired(s.since, cfg->queue_lifetime, now)) {
			unsigned long long in =
			    queue_backoff(s.attempts, cfg->queue_retry, cfg->queue_retry_max);
			s.next = now + (long long)in;
			char reason[sizeof(r.text) * 4 + 8];
			log_escape(reason, sizeof(reason), r.text, strlen(r.text));
			if (queue_state_write(mdir, &s) < 0) {
				log_msg(LOG_ERR,
				        "event=queue-error queue-id=%s error=\"cannot write the "
				        "state: %s\"",
				        id, strerror(errno));
				status = WORKER_UNRECORDED;
			}
			log_msg(LOG_NOTICE,
			        "event=deferred queue-id=%s attempts=%u result=%d status=%d%s "
			        "reason=\"%s\" next=%lld in=%llu",
			        id, s.attempts, r.code, r.exit_status,
			        r.timed_out ? " timed-out" : "", reason, s.next, in);
		} else {
			if (!give_up(R, mdir, msg, &e, &s, &r, temporary))
				status = WORKER_UNRECORDED;
		}
	}
	queue_env_free(&e);
	close(msg);
	close(mdir);
	return status;
}

/* start_worker - fork a worker for id into a free slot */
static void start_worker(struct runner *R, const char *id)
{
	unsigned i = 0;
	while (R->w[i].pid)
		i++;
	pid_t pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "event=queue-error error=\"cannot fork a worker: %s\"",
		        strerror(errno));
		return;
	}
	if (pid == 0) {
		close(R->sig_fd);
		if (R->q.lock >= 0) /* the lock is the runner's alone */
			close(R->q.lock);
		if (R->q.lock_dir >= 0)
			close(R->q.lock_dir);
		R->q.lock = R->q.lock_dir = -1;
		/* no PR_SET_PDEATHSIG here: a worker whose runner was killed
		 * finishes its delivery and records it, so its command's exit 0
		 * is never followed by a second delivery; its lock on the
		 * message keeps the next runner off it meanwhile */
		_exit(work(R, id));
	}
	R->w[i].pid = pid;
	memcpy(R->w[i].id, id, QUEUE_ID_LEN + 1);
	R->busy++;
	if (R->once) {
		if (R->nstarted == R->capstarted) {
			size_t cap = R->capstarted ? R->capstarted * 2 : 64;
			char(*m)[QUEUE_ID_LEN + 1] = realloc(R->started, cap * sizeof(*m));
			if (!m)
				return;
			R->started = m;
			R->capstarted = cap;
		}
		memcpy(R->started[R->nstarted++], id, QUEUE_ID_LEN + 1);
	}
}

/* in_flight - whether a worker (or, for --queue-run, an earlier one) has id */
static bool in_flight(const struct runner *R, const char *id)
{
	for (unsigned i = 0; i < R->srv->cfg->queue_workers; i++)
		if (R->w[i].pid && strcmp(R->w[i].id, id) == 0)
			return true;
	for (size_t i = 0; i < R->nstarted; i++)
		if (strcmp(R->started[i], id) == 0)
			return true;
	for (size_t i = 0; i < R->nheld; i++)
		if (strcmp(R->held[i].id, id) == 0)
			return true;
	return false;
}

/* hold - keep id out of the scans for ms; nothing when out of memory
 * (a busier runner, never a loss) */
static void hold(struct runner *R, const char *id, long long ms)
{
	if (R->nheld == R->capheld) {
		size_t cap = R->capheld ? R->capheld * 2 : 16;
		struct held *m = realloc(R->held, cap * sizeof(*m));
		if (!m)
			return;
		R->held = m;
		R->capheld = cap;
	}
	memcpy(R->held[R->nheld].id, id, QUEUE_ID_LEN + 1);
	R->held[R->nheld++].until_ms = wall_ms() + ms;
}

/* unhold - forget the held IDs whose time has come */
static void unhold(struct runner *R)
{
	long long now = wall_ms();
	size_t k = 0;
	for (size_t i = 0; i < R->nheld; i++)
		if (R->held[i].until_ms > now)
			R->held[k++] = R->held[i];
	R->nheld = k;
}

/* scan - start a worker for each due message while slots are free;
 * *wake_ms: when the next message falls due (wall clock) */
static void scan(struct runner *R, long long *wake_ms)
{
	const struct config *cfg = R->srv->cfg;
	size_t n;
	char(*ids)[QUEUE_ID_LEN + 1] = queue_ids(&R->q, QUEUE_Q, &n);
	long long now = (long long)time(NULL);
	unhold(R);
	for (size_t i = 0; i < n && !R->stopping; i++) {
		if (in_flight(R, ids[i]))
			continue;
		int mdir = openat(R->q.q, ids[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (mdir < 0 && errno != ELOOP && errno != ENOTDIR)
			continue; /* gone meanwhile */
		struct queue_state s;
		long long written;
		int rc = mdir < 0 ? -1 : queue_state_read(mdir, &s, &written);
		if (mdir >= 0)
			close(mdir);
		if (rc < 0)         /* a link or a file where its directory was, too */
			s.next = 0; /* unreadable: the worker says why, and moves it */
		/* never later than --queue-retry-max after the state was
		 * written, whatever a hand (or a garbled file) put there */
		long long next =
		    rc == 0 ? queue_next_clamp(s.next, written, cfg->queue_retry_max) : s.next;
		bool due = next <= now || (R->flush_ms && s.last_ms < R->flush_ms);
		if (!due) {
			if (next * 1000 < *wake_ms)
				*wake_ms = next * 1000;
			continue;
		}
		if (R->busy >= cfg->queue_workers)
			break; /* a worker's end wakes us */
		/* due by the clamp alone: said once, as the worker replaces the state */
		if (next <= now && s.next > now)
			log_msg(LOG_WARNING,
			        "event=queue-next-clamped queue-id=%s next=%lld written=%lld "
			        "retry-max=%u",
			        ids[i], s.next, written, cfg->queue_retry_max);
		start_worker(R, ids[i]);
	}
	free(ids);
}

/* kill_orphans - SIGKILL to every child of the runner that is not a
 * worker but leads its process group, and to that group: the commands
 * of workers that were killed (each spawned in a group of its own),
 * handed to the runner, a subreaper (what a finished command left in
 * the background is not a group leader, and is left alone). A killed worker is a
 * power cut for its delivery: its command must not go on beside the
 * next attempt, nor exit 0 with no one to remove the message */
static void kill_orphans(const struct runner *R)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char path[64], buf[512];
		long pid = strtol(de->d_name, NULL, 10);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		char *p = strrchr(buf, ')');
		long ppid, pgrp;
		if (!p || sscanf(p + 1, " %*c %ld %ld", &ppid, &pgrp) != 2 ||
		    ppid != (long)getpid() || pgrp != pid)
			continue;
		bool worker = false;
		for (unsigned i = 0; i < R->srv->cfg->queue_workers; i++)
			worker |= R->w[i].pid == (pid_t)pid;
		if (worker)
			continue;
		log_msg(LOG_ERR, "event=queue-orphan-killed pid=%ld", pid);
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
	}
	closedir(d);
}

/* reap - collect finished workers */
static void reap(struct runner *R)
{
	int st;
	pid_t pid;
	bool crashed = false;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		for (unsigned i = 0; i < R->srv->cfg->queue_workers; i++)
			if (R->w[i].pid == pid) {
				if (WIFSIGNALED(st)) {
					log_msg(LOG_ERR,
					        "event=queue-worker-crashed queue-id=%s signal=%d",
					        R->w[i].id, WTERMSIG(st));
					crashed = true;
				} else if (WEXITSTATUS(st) == WORKER_SKIPPED)
					hold(R, R->w[i].id, BOUND_QUEUE_SCAN_MS);
				else if (WEXITSTATUS(st) == WORKER_UNRECORDED)
					hold(R, R->w[i].id,
					     (long long)R->srv->cfg->queue_retry * 1000);
				R->w[i].pid = 0;
				R->busy--;
			}
	if (crashed)
		kill_orphans(R);
}

/* signals - read the signalfd: workers done, flush, stop, log reopen */
static void signals(struct runner *R)
{
	struct signalfd_siginfo sigs[16];
	ssize_t n = read(R->sig_fd, sigs, sizeof(sigs));
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(sigs[0]); i++) {
		switch (sigs[i].ssi_signo) {
		case SIGCHLD:
			reap(R);
			break;
		case SIGUSR1:
			R->flush_ms = wall_ms();
			log_msg(LOG_INFO, "event=queue-flush");
			break;
		case SIGHUP: {
			char err[300];
			if (log_reopen(err, sizeof(err)) < 0)
				log_msg(LOG_ERR, "event=log-reopen-failed error=\"%s\"", err);
			break;
		}
		default: /* SIGTERM, SIGINT */
			if (!R->stopping)
				log_msg(LOG_INFO, "event=queue-runner-stopping busy=%u", R->busy);
			R->stopping = true;
		}
	}
	reap(R); /* a SIGCHLD merged with another signal */
}

/* wait_signal - poll the signalfd for at most ms, then handle it */
static void wait_signal(struct runner *R, long long ms)
{
	struct pollfd p = {.fd = R->sig_fd, .events = POLLIN};
	if (ms < 0)
		ms = 0;
	if (ms > BOUND_QUEUE_SCAN_MS)
		ms = BOUND_QUEUE_SCAN_MS;
	if (poll(&p, 1, (int)ms) > 0)
		signals(R);
}

/* check_lock - at each scan: DIR/lock removed or replaced (by hand, by
 * a cleaner of old files) is made ours again, so that --queue-flush
 * finds the runner; the lock on DIR itself kept other runners out
 * meanwhile. A new file held by another process (a runner of an earlier
 * version, which locks only the file) is yielded to: no worker starts
 * until it is ours */
static void check_lock(struct runner *R)
{
	int rc = queue_lock_check(&R->q);
	if (rc > 0)
		log_msg(LOG_WARNING, "event=queue-lock-restored pid=%ld lock=%s/lock",
		        (long)getpid(), R->q.path);
	if (rc >= 0) {
		R->lock_lost = R->yielding = false;
		return;
	}
	R->yielding = errno == EWOULDBLOCK;
	if (!R->lock_lost)
		log_msg(LOG_ERR, "event=queue-error error=\"cannot make %s/lock ours again: %s\"%s",
		        R->q.path, strerror(errno), R->yielding ? " waiting" : "");
	R->lock_lost = true;
}

/* take_lock - hold DIR/lock: the daemon's runner waits for it, once
 * returns 1 when another runner has it; -1 on error (logged) */
static int take_lock(struct runner *R)
{
	bool said = false;
	for (;;) {
		long holder;
		int rc = queue_lock(&R->q, true, &holder);
		if (rc <= 0) {
			if (rc < 0)
				log_msg(LOG_ERR,
				        "event=queue-error error=\"cannot lock %s/lock: %s\"",
				        R->q.path, strerror(errno));
			return rc;
		}
		if (R->once) {
			log_msg(LOG_NOTICE, "event=queue-locked holder=%ld", holder);
			char who[32] = "";
			if (holder > 0) /* 0: its DIR/lock was removed, and not yet made anew */
				snprintf(who, sizeof(who), " (pid %ld)", holder);
			fprintf(stderr, "%s: another queue runner%s holds %s/lock: nothing done\n",
			        R->srv->cfg->progname, who, R->q.path);
			return 1;
		}
		if (!said)
			log_msg(LOG_NOTICE, "event=queue-locked holder=%ld waiting", holder);
		said = true;
		wait_signal(R, BOUND_QUEUE_SCAN_MS);
		if (R->stopping)
			return 1;
	}
}

/* queue_run - see queue_run.h */
int queue_run(const struct server *srv, bool once)
{
	const struct config *cfg = srv->cfg;
	static struct runner run;
	struct runner *R = &run;
	char err[512];
	R->srv = srv;
	R->once = once;
	R->sig_fd = -1;
	if (queue_open(&R->q, cfg->queue_dir, true, false, err, sizeof(err)) < 0) {
		log_msg(LOG_ERR, "event=queue-error error=\"%s\"", err);
		if (once)
			fprintf(stderr, "%s: %s\n", cfg->progname, err);
		return EXIT_KIND_STARTUP;
	}
	/* a mailbox or pipe reader gone is an EPIPE for the delivery to
	 * report, never a death (as in sessions); --queue-run has no
	 * listener that set this already */
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* the commands of killed workers become ours (kill_orphans) */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	R->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	R->w = calloc(cfg->queue_workers, sizeof(*R->w));
	if (R->sig_fd < 0 || !R->w) {
		log_msg(LOG_ERR, "event=queue-error error=\"cannot start the runner: %s\"",
		        strerror(errno));
		queue_close(&R->q);
		return EXIT_KIND_FAILURE;
	}
	int rc = take_lock(R);
	if (rc != 0) {
		queue_close(&R->q);
		return rc < 0 ? EXIT_KIND_FAILURE : EXIT_KIND_OK;
	}
	unsigned cleaned = queue_clean_tmp(&R->q);
	log_msg(LOG_INFO,
	        "event=queue-runner-start pid=%ld workers=%u retry=%u retry-max=%u "
	        "lifetime=%u cleaned=%u%s",
	        (long)getpid(), cfg->queue_workers, cfg->queue_retry, cfg->queue_retry_max,
	        cfg->queue_lifetime, cleaned, once ? " once" : "");
	for (;;) {
		long long wake = wall_ms() + BOUND_QUEUE_SCAN_MS;
		check_lock(R);
		if (!R->stopping && !R->yielding)
			scan(R, &wake);
		if (R->busy == 0 && (R->stopping || once))
			break;
		wait_signal(R, wake - wall_ms());
	}
	log_msg(LOG_INFO, "event=queue-runner-stop pid=%ld", (long)getpid());
	queue_close(&R->q);
	close(R->sig_fd);
	free(R->w);
	free(R->started);
	free(R->held);
	return EXIT_KIND_OK;
}

/* queue_run_check - see queue_run.h */
int queue_run_check(const char *dir, char *err, size_t errlen)
{
	struct queue q;
	if (queue_open(&q, dir, true, false, err, errlen) < 0)
		return -1;
	/* DIR/lock planted as a link, a directory or another's file: no
	 * runner could ever take it, and every 250 would wait forever */
	struct stat st;
	const char *bad = NULL;
	if (fstatat(q.dir, "lock", &st, AT_SYMLINK_NOFOLLOW) < 0)
		bad = errno == ENOENT ? NULL : strerror(errno);
	else if (S_ISLNK(st.st_mode))
		bad = "it is a symbolic link";
	else if (!S_ISREG(st.st_mode))
		bad = "not a regular file";
	else if (st.st_uid != geteuid())
		bad = "owned by another user";
	if (bad)
		snprintf(err, errlen, "cannot use queue %s: lock: %s", dir, bad);
	queue_close(&q);
	return bad ? -1 : 0;
}

/* runs_as_owner - whether process pid's real uid owns the queue (read
 * from /proc/PID/status: a daemon that is not dumpable has a /proc
 * directory of root's) */
static bool runs_as_owner(const struct queue *q, long pid)
{
	struct stat st;
	char path[64], line[256];
	if (fstat(q->dir, &st) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = false;
	unsigned long uid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %lu", &uid) == 1) {
			ok = uid == (unsigned long)st.st_uid;
			break;
		}
	fclose(f);
	return ok;
}

/* admin_flush - --queue-flush: SIGUSR1 to the runner holding the lock */
static int admin_flush(const struct config *cfg, struct queue *q)
{
	long holder;
	int rc = queue_lock(q, false, &holder); /* never made here: root would own it */
	if (rc < 0 && errno == ENOENT)
		rc = 0;
	if (rc < 0) {
		fprintf(stderr, "%s: cannot read %s/lock: %s\n", cfg->progname, cfg->queue_dir,
		        strerror(errno));
		return EXIT_KIND_FAILURE;
	}
	if (rc == 0 || holder <= 0) {
		fprintf(stderr,
		        "%s: no queue runner is running on %s (start the daemon, or use "
		        "--queue-run)\n",
		        cfg->progname, cfg->queue_dir);
		return EXIT_KIND_FAILURE;
	}
	/* the pid comes from a file the queue's owner writes: root signals
	 * only a process of that owner, never one it was pointed at */
	if (geteuid() == 0 && !runs_as_owner(q, holder)) {
		fprintf(stderr,
		        "%s: %s/lock names pid %ld, which is not a process of the queue's "
		        "owner: not signalled\n",
		        cfg->progname, cfg->queue_dir, holder);
		return EXIT_KIND_FAILURE;
	}
	if (kill((pid_t)holder, SIGUSR1) < 0) {
		fprintf(stderr, "%s: cannot signal the queue runner (pid %ld): %s\n", cfg->progname,
		        holder, strerror(errno));
		return EXIT_KIND_FAILURE;
	}
	log_msg(LOG_INFO, "event=queue-flush-sent runner=%ld", holder);
	printf("asked the queue runner (pid %ld) to retry every message now\n", holder);
	return EXIT_KIND_OK;
}

/* admin_delete - --queue-delete=ID, queued or failed */
static int admin_delete(const struct config *cfg, struct queue *q, const char *id)
{
	for (int w = QUEUE_Q; w <= QUEUE_FAILED; w++) {
		int mdir, msg;
		int rc = queue_msg_open(q, (enum queue_where)w, id, &mdir, &msg);
		struct stat st;
		int at = w == QUEUE_Q ? q->q : q->failed;
		if (rc < 0 && (errno == ENOENT || errno == ELOOP) &&
		    fstatat(at, id, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			rc = queue_remove(q, (enum queue_where)w, id); /* its msg gone: no lock */
		else if (rc < 0 && errno == ENOENT)
			continue;
		else if (rc == 0) {
			rc = queue_remove(q, (enum queue_where)w, id);
			close(msg);
			close(mdir);
		}
		if (rc == 1) {
			fprintf(stderr, "%s: %s is being delivered now; try again\n", cfg->progname,
			        id);
			return EXIT_KIND_FAILURE;
		}
		if (rc < 0) {
			fprintf(stderr, "%s: cannot delete %s: %s\n", cfg->progname, id,
			        strerror(errno));
			return EXIT_KIND_FAILURE;
		}
		log_msg(LOG_NOTICE, "event=queue-deleted queue-id=%s", id);
		printf("deleted %s\n", id);
		return EXIT_KIND_OK;
	}
	fprintf(stderr, "%s: no message %s in %s\n", cfg->progname, id, cfg->queue_dir);
	return EXIT_KIND_FAILURE;
}

/* admin_requeue - --queue-requeue=ID: from failed/ back into q/ */
static int admin_requeue(const struct config *cfg, struct queue *q, const char *id)
{
	int rc = queue_requeue(q, id);
	if (rc == 0) {
		log_msg(LOG_NOTICE, "event=queue-requeued queue-id=%s", id);
		printf("requeued %s\n", id);
		return EXIT_KIND_OK;
	}
	if (rc == 1)
		fprintf(stderr, "%s: %s is locked; try again\n", cfg->progname, id);
	else if (errno == ENOENT)
		fprintf(stderr, "%s: no failed message %s in %s\n", cfg->progname, id,
		        cfg->queue_dir);
	else
		fprintf(stderr, "%s: cannot requeue %s: %s\n", cfg->progname, id, strerror(errno));
	return EXIT_KIND_FAILURE;
}

/* queue_admin - see queue_run.h */
int queue_admin(const struct server *srv)
{
	const struct config *cfg = srv->cfg;
	struct queue q;
	char err[512];
	if (queue_open(&q, cfg->queue_dir, false, true, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", cfg->progname, err);
		return EXIT_KIND_STARTUP;
	}
	int rc = EXIT_KIND_OK;
	if (cfg->queue_list) {
		if (queue_list(&q, cfg->queue_json, (long long)time(NULL), stdout) < 0)
			rc = EXIT_KIND_FAILURE;
	} else if (cfg->queue_flush) {
		rc = admin_flush(cfg, &q);
	} else if (cfg->queue_delete) {
		rc = admin_delete(cfg, &q, cfg->queue_delete);
	} else if (cfg->queue_requeue) {
		rc = admin_requeue(cfg, &q, cfg->queue_requeue);
	}
	queue_close(&q);
	return rc;
}
