/*
 * daemon.c - what makes the process a service: no core and not
 *            dumpable, another user, the pid file, detaching, and
 *            systemd's notifications
 *
 * The listener's start and end, apart from its sessions: listener.c
 * calls these in order (harden, pid file opened as root, privileges
 * dropped, detach, pid written, READY=1 ... STOPPING=1, pid file
 * removed), and main.c hardens an --inetd session and drops its
 * privileges the same way.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "safe_file.h"
#include "coverage.h" /* last: it wraps _exit() in coverage builds */

static int pid_fd = -1; /* -P: opened before --user, written after detach */

/* daemon_notify - see daemon.h */
void daemon_notify(const char *msg)
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

/* daemon_harden - see daemon.h. PR_SET_DUMPABLE 0 also makes
 * /proc/PID of the daemon and its sessions root's: the same user can
 * no longer read their environ, fds or memory, nor ptrace them. A
 * command keeps RLIMIT_CORE 0 (inherited) but is dumpable again after
 * its exec(). */
void daemon_harden(void)
{
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* daemon_drop_privileges - see daemon.h */
int daemon_drop_privileges(const char *spec, char *err, size_t errlen)
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
	daemon_harden(); /* a new uid takes fs.suid_dumpable, maybe 1 */
	return 0;
}

/* daemon_pidfile_open - see daemon.h. In a shared
 * directory another user may have put something there first: no
 * symlink is followed, no FIFO waited on, and only a regular file with
 * one link that is ours is written, else a hard-linked file would be
 * overwritten, or the planter could rewrite the pid and aim whoever
 * runs kill $(cat PIDFILE) */
int daemon_pidfile_open(const char *path, char *err, size_t errlen)
{
	static const struct safe_file_rules ours = {.one_link = true};
	char why[96];
	pid_fd =
	    safe_file_open(AT_FDCWD, path, O_WRONLY | O_CREAT, 0644, &ours, NULL, why, sizeof(why));
	if (pid_fd >= 0)
		return 0;
	snprintf(err, errlen, "cannot write %s: %s", path, why);
	return -1;
}

/* daemon_pidfile_write - see daemon.h */
int daemon_pidfile_write(void)
{
	char line[32];
	if (pid_fd < 0)
		return 0;
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(pid_fd, 0) < 0 || pwrite(pid_fd, line, (size_t)n, 0) != n)
		return -1;
	return 0;
}

/* daemon_pidfile_remove - see daemon.h. After --user the daemon may
 * not unlink a file in a directory only root may write (/run): it then
 * empties the file, which start-stop-daemon and systemd read as "no
 * process", and says so once. */
void daemon_pidfile_remove(const char *path)
{
	if (pid_fd < 0)
		return;
	if (unlink(path) < 0 && errno != ENOENT) {
		int e = errno;
		if (ftruncate(pid_fd, 0) == 0)
			log_msg(LOG_INFO, "event=pidfile-emptied file=%s reason=\"%s\"", path,
			        strerror(e));
		else
			log_msg(LOG_ERR, "event=pidfile-left file=%s error=\"%s\"", path,
			        strerror(errno));
	}
	close(pid_fd);
	pid_fd = -1;
}

/* daemon_pidfile_forget - see daemon.h */
void daemon_pidfile_forget(void)
{
	if (pid_fd >= 0)
		close(pid_fd);
	pid_fd = -1;
}

/* daemon_detach - see daemon.h. The child's stderr is /dev/null by
 * then, so it sends either one NUL byte (ready) or its error line
 * through the pipe, and the parent, still attached to the caller's
 * terminal, prints that line. */
int daemon_detach(const struct config *cfg, void (*on_ready)(void))
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
			on_ready(); /* the daemon's own stdout is /dev/null */
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
