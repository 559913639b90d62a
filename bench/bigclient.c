/*
 * bigclient.c - send one message of MB megabytes as fast as possible and
 * print MB/s (octets on the wire) from DATA to the final 250.
 * Usage: bigclient PORT MB
 */
#include "smtpc.h"

/* main - one session, one message of MB MiB, the rate on stdout */
int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int fd = smtpc_connect(atoi(argv[1]));
	long mb = atol(argv[2]);
	smtpc_reply(fd);
	smtpc_send(fd, "EHLO bench\r\n");
	smtpc_reply(fd);
	/* one command at a time: msmtpd does not offer PIPELINING */
	if (smtpc_cmd(fd, "MAIL FROM:<a@bench>\r\n") != 250 ||
	    smtpc_cmd(fd, "RCPT TO:<b@bench>\r\n") != 250 || smtpc_cmd(fd, "DATA\r\n") != 354)
		return 1;
	/* 1 MiB of 80-octet lines (CRLF included); every 16th line of the
	 * content starts with a dot, so it goes out stuffed as ".." */
	static char block[1 << 20];
	size_t i = 0;
	while (i + 80 <= sizeof(block)) {
		memset(block + i, 'a' + (int)(i / 80 % 26), 78);
		if (i / 80 % 16 == 0)
			memcpy(block + i, "..", 2);
		memcpy(block + i + 78, "\r\n", 2);
		i += 80;
	}
	double t0 = smtpc_now();
	for (long k = 0; k < mb; k++) {
		size_t off = 0;
		while (off < i) {
			ssize_t w = write(fd, block + off, i - off);
			if (w <= 0)
				return 1;
			off += (size_t)w;
		}
	}
	smtpc_send(fd, ".\r\n");
	int code = smtpc_reply(fd);
	double t = smtpc_now() - t0;
	smtpc_send(fd, "QUIT\r\n");
	if (code != 250) {
		fprintf(stderr, "reply %d\n", code);
		return 1;
	}
	printf("%.1f\n", (double)mb * (double)i / 1048576.0 / t);
	return 0;
}
