/*
 * spawn_limit.c - the unavoidable work per message: posix_spawn the sink
 * with a 1 KB message on stdin (a filled pipe) and wait for it.
 * Usage: spawn_limit SINK COUNT WORKERS; prints messages per second.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* run - N spawns of the sink, one after another */
static void run(const char *sink, int n)
{
	char msg[1024];
	memset(msg, 'x', sizeof(msg));
	for (int i = 0; i < n; i++) {
		int p[2];
		if (pipe(p) < 0 || write(p[1], msg, sizeof(msg)) != sizeof(msg))
			exit(1);
		close(p[1]);
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[0], 0);
		char *argv[] = {(char *)sink, "-f", "a@b", "--", "c@d", NULL};
		pid_t pid;
		if (posix_spawn(&pid, sink, &fa, NULL, argv, environ) != 0)
			exit(1);
		posix_spawn_file_actions_destroy(&fa);
		close(p[0]);
		waitpid(pid, NULL, 0);
	}
}

/* main - WORKERS processes share COUNT spawns, the rate on stdout */
int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int n = atoi(argv[2]), w = atoi(argv[3]);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < w; i++)
		if (fork() == 0) {
			run(argv[1], n / w);
			_exit(0);
		}
	while (wait(NULL) > 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%.1f\n", (double)(n / w * w) / s);
	return 0;
}
