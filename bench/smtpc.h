/* smtpc.h - the few lines of SMTP client the benchmark's clients share */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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
