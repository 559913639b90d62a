/*
 * failsync.c - run a command whose fsync() and fdatasync() fail with EIO
 *
 * Usage: failsync [--first HOOK] COMMAND [ARG...]
 * A disk that loses a write reports it at fsync(); no disk here can be
 * made to, so a seccomp filter makes the kernel answer those two calls
 * with EIO, for the command and every process it forks. Everything
 * else runs for real. With --first, the first such call waits while
 * HOOK runs (sh -c), then fails: a test can act at that very moment,
 * e.g. as another writer of the file being synced. The command keeps
 * this process's pid; a helper forked before the filter answers the
 * calls until the last filtered process has exited. Used by the
 * mailbox tests (test_mockmta.py).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* send_fd - pass a descriptor over a unix socket */
static int send_fd(int sock, int fd)
{
	char byte = 0, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	memset(ctl, 0, sizeof(ctl));
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

/* recv_fd - the descriptor send_fd passed, or -1 */
static int recv_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	int fd = -1;
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* answer - the helper: fail each trapped call, running hook before the first */
static void answer(int sock, const char *hook)
{
	int fd = recv_fd(sock);
	if (fd < 0)
		_exit(1);
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	for (bool first = true;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN))
			_exit(0); /* no filtered process is left */
		memset(&req, 0, sizeof(req));
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
			continue; /* the caller was gone before we looked */
		if (first && hook) {
			first = false;
			if (system(hook) != 0)
				fprintf(stderr, "failsync: the hook failed: %s\n", hook);
		}
		memset(&resp, 0, sizeof(resp));
		resp.id = req.id;
		resp.error = -EIO;
		ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
}

/* main - install the filter, then become the command */
int main(int argc, char **argv)
{
	const char *hook = NULL;
	int arg = 1;
	if (argc > 3 && strcmp(argv[1], "--first") == 0) {
		hook = argv[2];
		arg = 3;
	}
	if (arg >= argc) {
		fprintf(stderr, "usage: failsync [--first HOOK] COMMAND [ARG...]\n");
		return 2;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("failsync: socketpair");
		return 1;
	}
	pid_t helper = fork();
	if (helper < 0) {
		perror("failsync: fork");
		return 1;
	}
	if (helper == 0) {
		close(sv[0]);
		answer(sv[1], hook);
	}
	close(sv[1]);
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fsync, 1, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fdatasync, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	int listener;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    (listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	                             SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog)) < 0) {
		perror("failsync: seccomp");
		return 1;
	}
	if (send_fd(sv[0], listener) < 0) {
		perror("failsync: passing the listener");
		return 1;
	}
	close(listener);
	close(sv[0]);
	execvp(argv[arg], argv + arg);
	perror("failsync: exec");
	return 127;
}
