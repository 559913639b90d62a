/*
 * child.c - start a child with exactly its contract, wait for it under a
 *           deadline, log its output bounded
 *
 * posix_spawn (glibc's clone(CLONE_VM|CLONE_VFORK)): no fork of a big
 * process, and no code of ours runs between the fork and the exec, so
 * nothing here has to be async-signal-safe. Every descriptor above 2 is
 * closed by posix_spawn_file_actions_addclosefrom_np (glibc 2.34,
 * close_range underneath), so a descriptor some parent left without
 * close-on-exec never reaches a command. The wait polls a pidfd (or,
 * on a kernel without one, waitpid every 20 ms) and the output pipes.
 *
 * Results: child_spawn returns a pid or -1 with errno; child_wait the
 * wait status. Nothing here exits the process.
 */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "clock.h"
#include "log.h"

extern char **environ;

/* hidden - whether env entry e is one no child may see */
static bool hidden(const char *e)
{
	static const char *const names[] = {
	    "NOTIFY_SOCKET=", "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES="};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(e, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

/* named - whether env entry e is NAME=... for the name of x ("NAME=value"
 * or "NAME") */
static bool named(const char *e, const char *x)
{
	size_t n = strcspn(x, "=");
	return strncmp(e, x, n) == 0 && e[n] == '=';
}

/* child_env - see child.h */
char **child_env(const char *const *extra)
{
	size_t n = 0, k = 0, nx = 0;
	while (environ[n])
		n++;
	while (extra && extra[nx])
		nx++;
	char **env = calloc(n + nx + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool drop = hidden(environ[i]);
		for (size_t j = 0; j < nx && !drop; j++)
			drop = named(environ[i], extra[j]);
		if (!drop)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nx; j++)
		if (strchr(extra[j], '='))
			env[k++] = (char *)extra[j];
	return env;
}

/* child_spawn - see child.h */
pid_t child_spawn(const struct child_spec *s)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	pid_t pid = -1;
	char **env = s->envp ? NULL : child_env(NULL);
	if (!s->envp && !env) {
		errno = ENOMEM;
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < 3; i++) {
		if (s->fd[i] < 0)
			posix_spawn_file_actions_addopen(&fa, i, "/dev/null",
			                                 i ? O_WRONLY : O_RDONLY, 0);
		else /* dup2 onto itself clears close-on-exec */
			posix_spawn_file_actions_adddup2(&fa, s->fd[i], i);
	}
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK;
	if (!s->same_group) {
		posix_spawnattr_setpgroup(&at, 0);
		flags |= POSIX_SPAWN_SETPGROUP;
	}
	posix_spawnattr_setflags(&at, flags);
	char *const *envp = s->envp ? s->envp : env;
	int e = s->search_path ? posix_spawnp(&pid, s->argv[0], &fa, &at, s->argv, envp)
	                       : posix_spawn(&pid, s->argv[0], &fa, &at, s->argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(env);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return pid;
}

/* feed_once - one read from a stream: 1 when it gave bytes, 0 when
 * it has none ready, -1 when it is done (end of file or an error) */
static int feed_once(int fd, const struct child_stream *s, char *buf, size_t cap, size_t *got)
{
	ssize_t r = read(fd, buf, cap);
	if (r > 0) {
		*got += (size_t)r;
		s->feed(s->arg, buf, (size_t)r);
		return 1;
	}
	return r < 0 && (errno == EINTR || errno == EAGAIN) ? 0 : -1;
}

/* child_wait - see child.h */
int child_wait(pid_t pid, bool same_group, struct child_stream *s, size_t ns, long long deadline_ms,
               bool *timed_out)
{
	enum { MAX_STREAMS = 4 };
	struct pollfd p[MAX_STREAMS + 1];
	int fds[MAX_STREAMS]; /* -1 once a stream is done */
	char buf[4096];
	size_t got = 0;
	int status = 0;
	bool exited = false;
	if (ns > MAX_STREAMS)
		ns = MAX_STREAMS;
	for (size_t i = 0; i < ns; i++) {
		fds[i] = s[i].fd;
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	*timed_out = false;
	while (!exited) {
		long long left = deadline_ms - clock_now_ms();
		if (left <= 0) {
			*timed_out = true;
			break;
		}
		for (size_t i = 0; i < ns; i++)
			p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		p[ns] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		int wait_ms = pidfd < 0 && left > 20 ? 20 : (int)(left > 60000 ? 60000 : left);
		if (poll(p, ns + 1, wait_ms) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < ns; i++)
			if (fds[i] >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    feed_once(fds[i], &s[i], buf, sizeof(buf), &got) < 0)
				fds[i] = -1;
		if (pidfd < 0 || (p[ns].revents & POLLIN))
			exited = waitpid(pid, &status, WNOHANG) == pid;
	}
	/* Past the deadline the group goes (the child alone when it shares
	 * ours); a failed command's background processes go too; after
	 * exit 0 they are left alone. */
	if (!exited) {
		kill(same_group ? pid : -pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	} else if (!same_group && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		kill(-pid, SIGKILL);
	}
	/* What the child wrote before it ended, without waiting for any
	 * process that still holds a pipe. */
	got = 0;
	for (size_t i = 0; i < ns; i++)
		while (fds[i] >= 0 && got < BOUND_CHILD_DRAIN_AFTER_EXIT &&
		       feed_once(fds[i], &s[i], buf, sizeof(buf), &got) > 0)
			;
	explicit_bzero(buf, sizeof(buf)); /* it may have held a password */
	if (pidfd >= 0)
		close(pidfd);
	return status;
}

/* log_line - the gathered line into the log, within the line bound */
static void log_line(struct child_log *l)
{
	if (l->len == 0)
		return;
	if (l->lines >= BOUND_COMMAND_OUTPUT_LINES) {
		l->dropped_lines++;
		l->dropped_bytes += l->len;
	} else {
		char esc[2048];
		log_escape(esc, sizeof(esc), l->line, l->len);
		log_msg(LOG_NOTICE, "event=%s text=\"%s\"", l->event, esc);
		l->lines++;
		l->bytes += l->len;
	}
	l->len = 0;
}

/* child_log_feed - see child.h */
void child_log_feed(void *arg, const char *p, size_t n)
{
	struct child_log *l = arg;
	for (size_t i = 0; i < n; i++) {
		if (l->bytes + l->len >= BOUND_COMMAND_OUTPUT) {
			l->dropped_bytes += n - i;
			for (; i < n; i++)
				l->dropped_lines += p[i] == '\n';
			return;
		}
		if (p[i] == '\n' || l->len == sizeof(l->line)) {
			log_line(l);
			if (p[i] == '\n')
				continue;
		}
		l->line[l->len++] = p[i];
	}
}

/* child_log_end - see child.h */
void child_log_end(struct child_log *l)
{
	log_line(l);
	if (l->dropped_bytes || l->dropped_lines)
		log_msg(LOG_NOTICE, "event=%s dropped=%zu dropped_lines=%zu", l->event,
		        l->dropped_bytes, l->dropped_lines);
}
