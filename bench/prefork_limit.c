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
#include <signal.h>
#include <sys/prctl.h>

#include "smtpc.h"

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

/* serve - one connection, from the greeting to QUIT or EOF */
static void serve(int c, const char *sink)
{
	static char in[SMTPC_LINE_MAX];
	size_t have = 0, ll;
	say(c, "220 limit ESMTP\r\n");
	while ((ll = smtpc_line(c, in, &have, flush)) > 0) {
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
		int fd = smtpc_spool_file();
		if (smtpc_data(c, in, &have, fd) < 0) {
			close(fd);
			return;
		}
		char *argv[] = {(char *)sink, "-f", "a@b", "--", "c@d", NULL};
		smtpc_deliver(fd, argv);
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
	int port, s = smtpc_listen(SOCK_CLOEXEC, 128, &port);
	if (s < 0)
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
	printf("%d\n", port);
	fflush(stdout);
	while (wait(NULL) > 0) /* a worker never exits but by error */
		;
	return 1;
}
