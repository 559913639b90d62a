/* smtpc.h - the few lines of SMTP client the benchmark's clients share */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int smtpc_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* smtpc_reply - read one whole reply, return its code */
static int smtpc_reply(int fd)
{
	static char buf[8192];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0) {
			fprintf(stderr, "connection closed\n");
			exit(1);
		}
		n += (size_t)r;
		buf[n] = 0;
		/* the last line is "DDD " ... CRLF */
		char *end = n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n' ? buf + n - 2 : NULL;
		if (!end)
			continue;
		char *line = end;
		while (line > buf && line[-1] != '\n')
			line--;
		if (end - line >= 4 && line[3] == ' ')
			return atoi(line);
	}
}

static void smtpc_send(int fd, const char *s)
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

static double smtpc_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
