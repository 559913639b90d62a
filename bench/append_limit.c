/*
 * append_limit.c - the limit for mailbox delivery: open, lock, append a
 * 1 KB record, fsync, close, N times. Usage: append_limit FILE N
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* main - N locked, fsynced appends, the rate on stdout */
int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int n = atoi(argv[2]);
	char rec[1024];
	memset(rec, 'x', sizeof(rec));
	rec[sizeof(rec) - 1] = '\n';
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0600);
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fd < 0 || fcntl(fd, F_SETLKW, &fl) < 0 || write(fd, rec, sizeof(rec)) < 0 ||
		    fsync(fd) < 0)
			return 1;
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n",
	       n / ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9));
	return 0;
}
