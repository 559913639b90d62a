/*
 * spool_limit.c - the limit for big messages: a minimal SMTP server that
 * reads DATA in 64 KiB blocks, turns CRLF into LF and unstuffs dots with
 * memchr, writes the result to an unlinked spool file, and hands that
 * file to the sink on stdin. No limits, no checks: only the unavoidable
 * work.
 * Usage: spool_limit SINK; prints the port, serves until killed.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* say - one reply */
static void say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		exit(1);
}

/* serve - one connection; the client is bigclient or latency */
static void serve(int c, const char *sink)
{
	static char in[65536], out[65536];
	size_t have = 0;
	say(c, "220 limit\r\n");
	for (;;) {
		char *nl;
		while (!(nl = memchr(in, '\n', have))) {
			ssize_t r = read(c, in + have, sizeof(in) - have);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		size_t ll = (size_t)(nl - in) + 1;
		int data = strncmp(in, "DATA", 4) == 0, quit = strncmp(in, "QUIT", 4) == 0;
		memmove(in, in + ll, have - ll);
		have -= ll;
		if (quit) {
			say(c, "221 bye\r\n");
			return;
		}
		if (!data) {
			say(c, "250 ok\r\n");
			continue;
		}
		say(c, "354 go\r\n");
		int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
		int done = 0;
		while (!done) {
			/* whole lines only: CRLF becomes LF, a leading dot is
			 * dropped (unstuffing), "." alone ends the data */
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
			if (have == sizeof(in)) {
				fprintf(stderr, "spool_limit: line over 64 KiB\n");
				exit(1);
			}
			ssize_t r = read(c, in + have, sizeof(in) - have);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		lseek(fd, 0, SEEK_SET);
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fd, 0);
		char *argv[] = {(char *)sink, NULL};
		pid_t pid;
		posix_spawn(&pid, sink, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		waitpid(pid, NULL, 0);
		close(fd);
		say(c, "250 ok\r\n");
	}
}

/* main - listen on a free loopback port, print it, serve forever */
int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t sl = sizeof(sa);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &sl) < 0)
		return 1;
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c >= 0) {
			serve(c, argv[1]);
			close(c);
		}
	}
}
