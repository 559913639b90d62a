/*
 * latency.c - time from the final "." to the 250, one client, N messages
 * of 1 KB in one session. Usage: latency PORT N; prints "p50_ms p99_ms"
 */
#include "smtpc.h"

/* cmp - qsort order of doubles */
static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* main - N timed messages in one session, p50 and p99 on stdout */
int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int fd = smtpc_connect(atoi(argv[1])), n = atoi(argv[2]);
	double *t = calloc((size_t)n, sizeof(*t));
	char body[1100]; /* 1 KB in 13 lines of 78 octets */
	for (int l = 0; l < 13; l++) {
		memset(body + l * 80, 'a' + l, 78);
		memcpy(body + l * 80 + 78, "\r\n", 2);
	}
	body[13 * 80] = '\0';
	smtpc_reply(fd);
	smtpc_send(fd, "EHLO bench\r\n");
	smtpc_reply(fd);
	for (int i = 0; i < n; i++) {
		/* one command at a time: msmtpd does not offer PIPELINING */
		if (smtpc_cmd(fd, "MAIL FROM:<a@bench>\r\n") != 250 ||
		    smtpc_cmd(fd, "RCPT TO:<b@bench>\r\n") != 250 ||
		    smtpc_cmd(fd, "DATA\r\n") != 354)
			return 1;
		smtpc_send(fd, body);
		double t0 = smtpc_now();
		smtpc_send(fd, ".\r\n");
		if (smtpc_reply(fd) != 250)
			return 1;
		t[i] = (smtpc_now() - t0) * 1000;
	}
	smtpc_send(fd, "QUIT\r\n");
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("%.3f %.3f\n", t[n / 2], t[(n * 99) / 100]);
	return 0;
}
