/*
 * spool_limit.c - the limit for big messages: a minimal SMTP server that
 * reads DATA in 64 KiB blocks, turns CRLF into LF and unstuffs dots with
 * memchr, writes the result to an unlinked spool file, and hands that
 * file to the sink on stdin. No limits, no checks: only the unavoidable
 * work.
 * Usage: spool_limit SINK; prints the port, serves until killed.
 */
#include "smtpc.h"

/* say - one reply */
static void say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		exit(1);
}

/* serve - one connection; the client is bigclient or latency */
static void serve(int c, const char *sink)
{
	static char in[SMTPC_LINE_MAX];
	size_t have = 0, ll;
	say(c, "220 limit\r\n");
	while ((ll = smtpc_line(c, in, &have, NULL)) > 0) {
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
		int fd = smtpc_spool_file();
		if (smtpc_data(c, in, &have, fd) < 0) {
			close(fd);
			return;
		}
		char *argv[] = {(char *)sink, NULL};
		smtpc_deliver(fd, argv);
		close(fd);
		say(c, "250 ok\r\n");
	}
}

/* main - listen on a free loopback port, print it, serve forever */
int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int port, s = smtpc_listen(0, 16, &port);
	if (s < 0)
		return 1;
	printf("%d\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c >= 0) {
			serve(c, argv[1]);
			close(c);
		}
	}
}
