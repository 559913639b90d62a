/*
 * child.h - every child process smtpipe starts: the delivery command,
 *           passwordeval and the keyring helper
 *
 * What a child gets, whoever asks for it (README "Security"):
 * - descriptors 0, 1 and 2 as the caller says (-1: /dev/null), every
 *   other descriptor closed before the exec, whatever its flags;
 * - the environment without NOTIFY_SOCKET, LISTEN_PID, LISTEN_FDS and
 *   LISTEN_FDNAMES (systemd's words to smtpipe, not to its children);
 * - an empty signal mask and default dispositions for the signals the
 *   daemon handles itself;
 * - a process group of its own, unless it is to read the terminal: then
 *   it stays in ours, the terminal's foreground group (msmtp's popen).
 * The wait (child_wait) polls a pidfd and the output pipes until a
 * deadline. Past the deadline the child's group is killed (the child
 * alone when it shares ours). When the child fails (exit status not 0,
 * or a signal) what is left of its group is killed too; after exit 0
 * the processes it left in the background are left alone, as msmtpd
 * leaves them (a `nohup` hand-off needs it). Output meant for the log
 * (child_log) is bounded in bytes and in lines.
 */
#ifndef SMTPIPE_CHILD_H
#define SMTPIPE_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* child_env - environ without the variables no child may see, and
 * without any NAME that extra (a NULL-terminated list, or NULL) names:
 * an entry "NAME=value" is added in its place, an entry "NAME" only
 * removes it (so an inherited copy can never pass for ours); free()
 * the array (the strings are environ's and extra's). NULL on ENOMEM */
char **child_env(const char *const *extra);

struct child_spec {
	char *const *argv;
	char *const *envp; /* NULL: child_env(NULL) */
	bool search_path;  /* look argv[0] up in PATH (posix_spawnp) */
	int fd[3];         /* what becomes 0, 1 and 2; -1: /dev/null */
	bool same_group;   /* stay in our process group (to read the terminal) */
};

/* child_spawn - start s; the pid, or -1 with errno set */
pid_t child_spawn(const struct child_spec *s);

/* One output pipe of a child and what to do with its bytes. */
struct child_stream {
	int fd; /* read end (made non-blocking); -1: none */
	void (*feed)(void *arg, const char *p, size_t n);
	void *arg;
};

/* child_wait - feed the streams until pid exits or deadline_ms passes
 * (clock_now_ms time, clock.h), then kill as the header says; returns the wait
 * status, *timed_out set when the deadline killed it. Output still
 * waiting in a pipe when the child exits is read; a background process
 * holding a pipe open is not waited for. The streams' descriptors stay
 * open (the caller closes them). */
int child_wait(pid_t pid, bool same_group, struct child_stream *s, size_t ns, long long deadline_ms,
               bool *timed_out);

/* Output for the log: one line per output line, as
 * "event=EVENT text=..." (escaped), at most BOUND_COMMAND_OUTPUT bytes
 * and BOUND_COMMAND_OUTPUT_LINES lines; the rest is counted. */
struct child_log {
	const char *event;
	char line[512]; /* the line being gathered */
	size_t len;
	size_t bytes, lines;                 /* logged */
	size_t dropped_bytes, dropped_lines; /* past the bounds */
};

/* child_log_feed - a stream feed (arg: a struct child_log) */
void child_log_feed(void *arg, const char *p, size_t n);
/* child_log_end - log the unfinished line, and one line saying what
 * was dropped, if anything was */
void child_log_end(struct child_log *l);

#endif
