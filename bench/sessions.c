/*
 * sessions.c - EHLO+QUIT sessions per second with WORKERS concurrent
 * clients for SECONDS. Usage: sessions PORT WORKERS SECONDS; prints the
 * rate, then the number of sessions (bench/ab.py's CPU per session)
 */
#include <sys/wait.h>

#include "smtpc.h"

/* main - fork the workers, sum their session counts, print the rate */
int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int port = atoi(argv[1]), w = atoi(argv[2]);
	double secs = atof(argv[3]);
	int p[2];
	if (pipe(p) < 0)
		return 1;
	double t0 = smtpc_now();
	for (int i = 0; i < w; i++)
		if (fork() == 0) {
			long n = 0;
			while (smtpc_now() - t0 < secs) {
				int fd = smtpc_connect(port);
				smtpc_reply(fd);
				smtpc_send(fd, "EHLO bench\r\n");
				smtpc_reply(fd);
				smtpc_send(fd, "QUIT\r\n");
				smtpc_reply(fd);
				close(fd);
				n++;
			}
			if (write(p[1], &n, sizeof(n)) != sizeof(n))
				_exit(1);
			_exit(0);
		}
	close(p[1]);
	long total = 0, n;
	while (read(p[0], &n, sizeof(n)) == sizeof(n))
		total += n;
	int st, bad = 0;
	while (wait(&st) > 0)
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	if (bad) /* a worker lost its session: the rate would be a guess */
		return 1;
	printf("%.1f %ld\n", (double)total / (smtpc_now() - t0), total);
	return 0;
}
