/*
 * deliver_pipe.c - pipe a message to a command, without a shell
 *
 * The template is split once at start-up. Each message spawns the
 * command through child.c (its own process group, descriptors 0-2
 * only) with the spool on stdin and one pipe for stdout and stderr,
 * which go to the log, bounded. Past the deadline, or when it fails,
 * the whole process group is killed; after exit 0 the processes it
 * left in the background are left alone. The result is
 * mapped as DESIGN.md's delivery contract says, and a command that
 * exits 0 without reading all of stdin does not get a 250 (invariant 1).
 */
#include "deliver_pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "log.h"
#include "spool.h"

/* What each exit status of a delivery command means, by its sysexits.h
 * name, as Postfix's sys_exits.c: the statuses DESIGN.md's delivery
 * contract calls temporary (msmtp's own: no host, service unavailable,
 * an OS error, try again later) get 451 and the client retries; 0 is
 * the 250; every other status, listed here or not, is a permanent 554.
 * The names go to the log, so that "exit 75" reads as EX_TEMPFAIL. */
static const struct exit_row {
	int status;
	const char *name;
	bool temporary;
} exit_table[] = {
    {EX_OK, "EX_OK", false},
    {EX_USAGE, "EX_USAGE", false},
    {EX_DATAERR, "EX_DATAERR", false},
    {EX_NOINPUT, "EX_NOINPUT", false},
    {EX_NOUSER, "EX_NOUSER", false},
    {EX_NOHOST, "EX_NOHOST", true},
    {EX_UNAVAILABLE, "EX_UNAVAILABLE", true},
    {EX_SOFTWARE, "EX_SOFTWARE", false},
    {EX_OSERR, "EX_OSERR", true},
    {EX_OSFILE, "EX_OSFILE", false},
    {EX_CANTCREAT, "EX_CANTCREAT", false},
    {EX_IOERR, "EX_IOERR", false},
    {EX_TEMPFAIL, "EX_TEMPFAIL", true},
    {EX_PROTOCOL, "EX_PROTOCOL", false},
    {EX_NOPERM, "EX_NOPERM", false},
    {EX_CONFIG, "EX_CONFIG", false},
};

/* exit_row - the table's row for an exit status, or NULL */
static const struct exit_row *exit_row(int status)
{
	for (size_t i = 0; i < sizeof(exit_table) / sizeof(exit_table[0]); i++)
		if (exit_table[i].status == status)
			return &exit_table[i];
	return NULL;
}

/* deliver_exit_name - see deliver_pipe.h */
const char *deliver_exit_name(int status)
{
	const struct exit_row *row = exit_row(status);
	return row ? row->name : "-";
}

/* deliver_map_status - DESIGN.md's delivery contract, from exit_table */
void deliver_map_status(int wstatus, bool timed_out, struct delivery_result *r)
{
	r->exit_status = -1;
	r->signal = 0;
	r->timed_out = timed_out;
	if (timed_out) {
		r->code = 451;
		snprintf(r->text, sizeof(r->text), "4.4.7 Delivery command timed out");
		return;
	}
	if (WIFSIGNALED(wstatus)) {
		r->signal = WTERMSIG(wstatus);
		r->code = 451;
		snprintf(r->text, sizeof(r->text), "4.3.0 Delivery command killed by signal %d",
		         r->signal);
		return;
	}
	int st = WEXITSTATUS(wstatus);
	const struct exit_row *row = exit_row(st);
	r->exit_status = st;
	if (st == EX_OK) {
		r->code = 250;
		snprintf(r->text, sizeof(r->text), "2.0.0 Ok: delivered");
	} else if (row && row->temporary) {
		r->code = 451;
		snprintf(r->text, sizeof(r->text),
		         "4.3.0 Temporary failure (delivery command exit %d)", st);
	} else {
		r->code = 554;
		snprintf(r->text, sizeof(r->text), "5.3.0 Delivery command failed (exit %d)", st);
	}
}

/* deliver_pipe_run - see deliver_pipe.h */
void deliver_pipe_run(const struct cmd_template *t, const struct delivery *d, struct spool *sp,
                      unsigned timeout, struct delivery_result *r)
{
	memset(r, 0, sizeof(*r));
	r->exit_status = -1;
	char **argv = cmd_template_expand(t, d->sender, d->rcpts, d->nrcpt);
	char **env = cmd_template_env(d);
	int in = spool_input_fd(sp);
	int out[2] = {-1, -1};
	pid_t pid = -1;
	if (argv && env && in >= 0 && pipe2(out, O_CLOEXEC) == 0) {
		struct child_spec cs = {
		    .argv = argv, .envp = env, .search_path = true, .fd = {in, out[1], out[1]}};
		pid = child_spawn(&cs);
	}
	int err = errno;
	if (out[1] >= 0)
		close(out[1]);
	if (pid < 0) {
		char prog[1024];
		log_escape(prog, sizeof(prog), argv ? argv[0] : "?", strlen(argv ? argv[0] : "?"));
		log_msg(LOG_ERR, "event=command-error command=\"%s\" error=\"%s\"", prog,
		        strerror(err));
		r->code = 451;
		snprintf(r->text, sizeof(r->text), "4.3.0 Cannot run delivery command");
	} else {
		struct child_log o = {.event = "command-output"};
		struct child_stream st = {.fd = out[0], .feed = child_log_feed, .arg = &o};
		bool timed_out;
		long long deadline = clock_now_ms() + (long long)timeout * 1000;
		int status = child_wait(pid, false, &st, 1, deadline, &timed_out);
		child_log_end(&o);
		deliver_map_status(status, timed_out, r);
		size_t left = spool_unread(sp, in);
		if (r->code == 250 && left != 0 && left != (size_t)-1) {
			log_msg(LOG_WARNING, "event=command-short-read unread=%zu", left);
			r->code = 451;
			snprintf(r->text, sizeof(r->text),
			         "4.3.0 Delivery command did not read the whole message");
		}
		log_msg(LOG_DEBUG, "event=command-exit pid=%ld status=%d exit=%s signal=%d",
		        (long)pid, r->exit_status, deliver_exit_name(r->exit_status), r->signal);
	}
	if (out[0] >= 0)
		close(out[0]);
	if (in >= 0)
		close(in);
	cmd_template_env_free(env);
	cmd_argv_free(argv);
}
