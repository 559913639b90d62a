/*
 * queue_run.h - the queue runner: due messages to workers, backoff,
 *               expiry, bounces; and the administrator's commands
 *
 * The runner is one process (started by the listener, or by
 * --queue-run) that holds DIR/lock, never talks to a client, and hands
 * each due message to a worker process (at most --queue-workers at
 * once). A worker delivers exactly as a session does (deliver_pipe,
 * deliver_mbox or deliver_maildir, the same exit-status contract) and
 * then: 250 removes the message; a temporary failure (451: the
 * temporary exit statuses, a signal, the time limit) sets the next
 * attempt --queue-retry seconds later, doubled after each attempt up
 * to --queue-retry-max, until --queue-lifetime has passed; a permanent
 * failure or an expired message queues a bounce (bounce.h) to the
 * sender, unless the sender is <> (a bounce is never bounced), and
 * moves the message to DIR/failed, in steps that a retry resumes, so
 * that a bounce is never made twice (queue_run.c, give_up). One log line for each: queued (the
 * session), deferred, delivered, bounced, expired, failed.
 *
 * Signals of the runner: SIGUSR1 retries every message now (the
 * listener forwards its own SIGUSR1; --queue-flush sends it), SIGHUP
 * reopens the log, SIGTERM lets running deliveries finish and ends.
 * The runner dies with the daemon (PR_SET_PDEATHSIG), so a daemon
 * killed with SIGKILL leaves no runner behind to race the next one; a
 * worker finishes the delivery it started and records it (its lock on
 * the message keeps the next runner off it). Whatever is cut, at any
 * point, is safe (queue.h).
 */
#ifndef SMTPIPE_QUEUE_RUN_H
#define SMTPIPE_QUEUE_RUN_H

#include <stdbool.h>
#include <stddef.h>

struct server;

/* queue_run - run the queue of srv->cfg->queue_dir: as the daemon's
 * runner (once false: until SIGTERM, waiting for the lock while another
 * runner holds it), or for --queue-run (once: deliver what is due now,
 * including bounces made meanwhile, and return; another runner holding
 * the lock is reported and nothing is done). Returns an exit_kind. */
int queue_run(const struct server *srv, bool once);
/* queue_admin - --queue-list, --queue-flush, --queue-delete,
 * --queue-requeue: one command on the directory, beside a running
 * daemon; prints its result; returns an exit_kind */
int queue_admin(const struct server *srv);
/* queue_run_check - at start-up, as the user the queue belongs to:
 * make DIR and its directories, check them; -1 with err filled */
int queue_run_check(const char *dir, char *err, size_t errlen);

#endif
