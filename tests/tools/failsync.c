/*
 * failsync.c - run a command whose fsync() and fdatasync() fail with EIO
 *
 * Usage: failsync COMMAND [ARG...]
 * A disk that loses a write reports it at fsync(); no disk here can be
 * made to, so a seccomp filter makes the kernel answer those two calls
 * with EIO, for the command and every process it forks. Everything
 * else runs for real. Used by the mailbox tests (test_mockmta.py).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* main - install the filter, then become the command */
int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: failsync COMMAND [ARG...]\n");
		return 2;
	}
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fsync, 1, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fdatasync, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EIO),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("failsync: seccomp");
		return 1;
	}
	execvp(argv[1], argv + 1);
	perror("failsync: exec");
	return 127;
}
