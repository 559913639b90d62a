/*
 * smtpc.h - the few lines of SMTP the benchmark's tools share: the client
 * side (bigclient, latency, sessions) and the minimal servers that set
 * the limits (spool_limit, prefork_limit). Static inline functions, so
 * each tool still builds from its one .c file (bench/run.sh).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* smtpc_connect - a loopback connection with Nagle off */
static inline int smtpc_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a stalled server fails the sample instead of hanging the run */
	struct timeval tv = {.tv_sec = 30};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* smtpc_reply - read one whole reply (replies to a pipelined group may
 * arrive together: what follows stays buffered), return its code */
static inline int smtpc_reply(int fd)
{
	static char buf[65536];
	static size_t n;
	for (;;) {
		char *p = buf;
		char *nl;
		while ((nl = memchr(p, '\n', n - (size_t)(p - buf)))) {
			if (nl - p >= 4 && p[3] == ' ') {
				int code = atoi(p);
				size_t used = (size_t)(nl + 1 - buf);
				memmove(buf, nl + 1, n - used);
				n -= used;
				return code;
			}
			p = nl + 1;
		}
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r <= 0) {
			fprintf(stderr, r < 0 ? "no reply in 30 s\n" : "connection closed\n");
			exit(1);
		}
		n += (size_t)r;
	}
}

/* smtpc_send - all of a string */
static inline void smtpc_send(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			exit(1);
		s += w;
		n -= (size_t)w;
	}
}

/* smtpc_cmd - one command, its reply code */
static inline int smtpc_cmd(int fd, const char *s)
{
	smtpc_send(fd, s);
	return smtpc_reply(fd);
}

/* smtpc_now - monotonic seconds */
static inline double smtpc_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* --- the minimal servers' side */

#define SMTPC_LINE_MAX 65536 /* the servers' input buffer: no line may be longer */

extern char **environ;

/* smtpc_listen - a listening socket on a free loopback port (socket type
 * flags such as SOCK_CLOEXEC); -1 on failure, else the socket, its port
 * in *port */
static inline int smtpc_listen(int flags, int backlog, int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, SOCK_STREAM | flags, 0);
	socklen_t sl = sizeof(sa);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, backlog) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return s;
}

/* smtpc_line - wait until in[0..*have) holds a whole command line, calling
 * before_read(c) (if not NULL) before each read; its length with the LF,
 * or 0 at EOF or for a line over SMTPC_LINE_MAX */
static inline size_t smtpc_line(int c, char *in, size_t *have, void (*before_read)(int))
{
	char *nl;
	while (!(nl = memchr(in, '\n', *have))) {
		if (*have == SMTPC_LINE_MAX)
			return 0;
		if (before_read)
			before_read(c);
		ssize_t r = read(c, in + *have, SMTPC_LINE_MAX - *have);
		if (r <= 0)
			return 0;
		*have += (size_t)r;
	}
	return (size_t)(nl - in) + 1;
}

/* smtpc_data - the message after DATA's 354, decoded into the file fd:
 * whole lines only, CRLF becomes LF, a leading dot is dropped
 * (unstuffing), "." alone ends the data; what follows it stays in in.
 * 0 at the end of the data, -1 at EOF; exits on a line over
 * SMTPC_LINE_MAX (not the benchmark's) or a failed write */
static inline int smtpc_data(int c, char *in, size_t *have, int fd)
{
	static char out[SMTPC_LINE_MAX];
	for (;;) {
		size_t o = 0, i = 0;
		int done = 0;
		char *p;
		while ((p = memchr(in + i, '\n', *have - i))) {
			const char *l = in + i;
			size_t n = (size_t)(p - in) + 1 - i;
			i += n;
			if (n == 3 && l[0] == '.' && l[1] == '\r') {
				done = 1;
				break;
			}
			if (l[0] == '.') {
				l++;
				n--;
			}
			if (n >= 2 && l[n - 2] == '\r') {
				memcpy(out + o, l, n - 2);
				out[o + n - 2] = '\n';
				o += n - 1;
			} else {
				memcpy(out + o, l, n);
				o += n;
			}
		}
		if (o > 0 && write(fd, out, o) != (ssize_t)o)
			exit(1);
		memmove(in, in + i, *have - i);
		*have -= i;
		if (done)
			return 0;
		if (*have == SMTPC_LINE_MAX) {
			fprintf(stderr, "line over %d bytes\n", SMTPC_LINE_MAX);
			exit(1);
		}
		ssize_t r = read(c, in + *have, SMTPC_LINE_MAX - *have);
		if (r <= 0)
			return -1;
		*have += (size_t)r;
	}
}

/* smtpc_spool_file - an unlinked file for one message, in $TMPDIR or /tmp */
static inline int smtpc_spool_file(void)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
	if (fd < 0) { /* a file system without O_TMPFILE */
		char path[4096];
		snprintf(path, sizeof(path), "%s/smtpc-XXXXXX", dir);
		fd = mkstemp(path);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		exit(1);
	return fd;
}

/* smtpc_deliver - the spooled message in fd to argv[0] on stdin, waited for */
static inline void smtpc_deliver(int fd, char *const argv[])
{
	lseek(fd, 0, SEEK_SET);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 0);
	pid_t pid;
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		exit(1);
	posix_spawn_file_actions_destroy(&fa);
	waitpid(pid, NULL, 0);
}
