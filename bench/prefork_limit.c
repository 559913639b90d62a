/*
 * prefork_limit.c - the limit of one session per message, with the
 * client counted: a minimal SMTP server run by the same client
 * (smtp-source, bench/sessions) as smtpipe. N processes are forked
 * before the first client and each blocks in accept() on the shared
 * listening socket, serving one connection at a time, as many at once
 * as there are clients. Canned replies (220, a multi-line EHLO, 250,
 * 354, 221), no checks, no log; DATA is decoded (CRLF to LF, dots
 * unstuffed) into an unlinked file that the sink reads on stdin,
 * spawned and waited for as spawn_limit.c does.
 * Usage: prefork_limit SINK N; prints the port, serves until killed
 * (the workers die with it: PR_SET_PDEATHSIG).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char replies[4096]; /* written when the client has sent all it had */
static size_t nreplies;

/* flush - the replies gathered so far, in one write */
static void flush(int fd)
{
	if (nreplies > 0 && write(fd, replies, nreplies) != (ssize_t)nreplies)
		exit(1);
	nreplies = 0;
}

/* say - one reply, sent with the others of a pipelined group */
static void say(int fd, const char *s)
{
	size_t n = strlen(s);
	if (nreplies + n > sizeof(replies))
		flush(fd);
	memcpy(replies + nreplies, s, n);
	nreplies += n;
}

/* spool_file - an unlinked file for one message */
static int spool_file(void)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
	if (fd < 0) { /* a file system without O_TMPFILE */
		char path[4096];
		snprintf(path, sizeof(path), "%s/prefork-XXXXXX", dir);
		fd = mkstemp(path);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		exit(1);
	return fd;
}

/* deliver - the spooled message to the sink on stdin, waited for */
static void deliver(int fd, const char *sink)
{
	lseek(fd, 0, SEEK_SET);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 0);
	char *argv[] = {(char *)sink, "-f", "a@b", "--", "c@d", NULL};
	pid_t pid;
	if (posix_spawn(&pid, sink, &fa, NULL, argv, environ) != 0)
		exit(1);
	posix_spawn_file_actions_destroy(&fa);
	waitpid(pid, NULL, 0);
}

/* serve - one connection, from the greeting to QUIT or EOF */
static void serve(int c, const char *sink)
{
	static char in[65536], out[65536];
	size_t have = 0;
	say(c, "220 limit ESMTP\r\n");
	for (;;) {
		char *nl;
		while (!(nl = memchr(in, '\n', have))) {
			if (have == sizeof(in))
				return;
			flush(c);
			ssize_t r = read(c, in + have, sizeof(in) - have);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		size_t ll = (size_t)(nl - in) + 1;
		int data = strncasecmp(in, "DATA", 4) == 0, quit = strncasecmp(in, "QUIT", 4) == 0;
		int ehlo = strncasecmp(in, "EHLO", 4) == 0;
		memmove(in, in + ll, have - ll);
		have -= ll;
		if (quit) {
			say(c, "221 bye\r\n");
			flush(c);
			return;
		}
		if (ehlo) {
			say(c, "250-limit\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			       "250 SIZE 209715200\r\n");
			continue;
		}
		if (!data) {
			say(c, "250 ok\r\n");
			continue;
		}
		say(c, "354 go\r\n");
		flush(c);
		int fd = spool_file();
		for (int done = 0; !done;) {
			/* whole lines only: CRLF becomes LF, a leading dot is
			 * dropped, "." alone ends the data */
			size_t o = 0, i = 0;
			char *p;
			while ((p = memchr(in + i, '\n', have - i))) {
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
			memmove(in, in + i, have - i);
			have -= i;
			if (done)
				break;
			if (have == sizeof(in))
				exit(1); /* a line over 64 KiB: not the benchmark's */
			ssize_t r = read(c, in + have, sizeof(in) - have);
			if (r <= 0) {
				close(fd);
				return;
			}
			have += (size_t)r;
		}
		deliver(fd, sink);
		close(fd);
		say(c, "250 ok\r\n");
	}
}

/* main - listen on a free loopback port, fork the workers, print the
 * port once all of them are forked, then wait to be killed */
int main(int argc, char **argv)
{
	if (argc != 3 || atoi(argv[2]) < 1)
		return 2;
	int n = atoi(argv[2]);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t sl = sizeof(sa);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 128) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &sl) < 0)
		return 1;
	pid_t parent = getpid();
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid > 0)
			continue;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the parent died before prctl */
			_exit(1);
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				serve(c, argv[1]);
				close(c);
			}
		}
	}
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	while (wait(NULL) > 0) /* a worker never exits but by error */
		;
	return 1;
}
