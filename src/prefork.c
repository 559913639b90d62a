/*
 * prefork.c - the shared session slots, and a spare's wait for a client
 *
 * See prefork.h for the contract. The table is one anonymous MAP_SHARED
 * mapping made before the first fork, so the daemon and every spare see
 * the same memory; a session unmaps it as it starts, so no session sees
 * the other slots' client keys or can hold their lock. A spare waits in
 * epoll_pwait on every listening socket with EPOLLEXCLUSIVE, so that a
 * connection wakes one spare, not all of them; another spare that
 * wakes for the same connection finds accept() empty (EAGAIN) and
 * waits again.
 */
#include "prefork.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "listen_socket.h"
#include "log.h"

struct slot {
	_Atomic int state; /* enum prefork_state */
	unsigned char key[16];
};

struct table {
	pthread_mutex_t lock; /* robust, process-shared: count and claim */
	_Atomic unsigned generation;
	_Atomic int stop;
	unsigned max;
	struct slot slot[];
};

static struct table *table;
static size_t table_size;

/* prefork_open - see prefork.h */
int prefork_open(unsigned max, char *err, size_t errlen)
{
	pthread_mutexattr_t a;
	table_size = sizeof(*table) + (size_t)max * sizeof(struct slot);
	void *p = mmap(NULL, table_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the session table: %s", strerror(errno));
		return -1;
	}
	table = p; /* zero-filled: every slot FREE */
	table->max = max;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	int rc = pthread_mutex_init(&table->lock, &a);
	pthread_mutexattr_destroy(&a);
	if (rc != 0) {
		snprintf(err, errlen, "cannot make the session table's lock: %s", strerror(rc));
		prefork_close();
		return -1;
	}
	return 0;
}

/* prefork_close - see prefork.h */
void prefork_close(void)
{
	if (table)
		munmap(table, table_size);
	table = NULL;
}

/* prefork_state - see prefork.h */
enum prefork_state prefork_state(unsigned i)
{
	return (enum prefork_state)atomic_load(&table->slot[i].state);
}

/* prefork_set - see prefork.h */
void prefork_set(unsigned i, enum prefork_state state)
{
	atomic_store(&table->slot[i].state, (int)state);
}

/* lock - the table's mutex; a holder that died (a spare killed at the
 * wrong moment) left nothing half-done that matters: a slot's key is
 * written before its state, so the lock is made consistent and taken */
static void lock(void)
{
	if (pthread_mutex_lock(&table->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&table->lock);
}

/* prefork_claim - see prefork.h */
int prefork_claim(unsigned i, const unsigned char key[16], unsigned limit, unsigned *count)
{
	unsigned n = 0;
	lock();
	if (limit)
		for (unsigned k = 0; k < table->max; k++)
			if (atomic_load(&table->slot[k].state) == PREFORK_SESSION &&
			    memcmp(table->slot[k].key, key, 16) == 0)
				n++;
	*count = n;
	bool ok = !limit || n < limit;
	if (ok) {
		memcpy(table->slot[i].key, key, 16);
		atomic_store(&table->slot[i].state, PREFORK_SESSION);
	}
	pthread_mutex_unlock(&table->lock);
	return ok ? 0 : -1;
}

/* prefork_return - see prefork.h */
void prefork_return(unsigned i)
{
	lock();
	memset(table->slot[i].key, 0, sizeof(table->slot[i].key));
	atomic_store(&table->slot[i].state, PREFORK_SPARE);
	pthread_mutex_unlock(&table->lock);
}

/* prefork_generation - see prefork.h */
unsigned prefork_generation(void)
{
	return atomic_load(&table->generation);
}

/* prefork_retire - see prefork.h */
void prefork_retire(void)
{
	atomic_fetch_add(&table->generation, 1);
}

/* prefork_stop - see prefork.h */
void prefork_stop(void)
{
	atomic_store(&table->stop, 1);
}

/* prefork_stopping - see prefork.h */
bool prefork_stopping(void)
{
	return atomic_load(&table->stop) != 0;
}

/* touch_stack - write the stack a session will use, below the caller */
__attribute__((noinline)) static void touch_stack(void)
{
	volatile char room[BOUND_SPARE_STACK];
	for (size_t i = 0; i < sizeof(room); i += 1024)
		room[i] = 0;
}

/* prefork_prefault - see prefork.h. Only the stack: populating the
 * text of smtpipe and libc (MADV_POPULATE_READ over every read-only
 * segment) was measured to cost each spare about 190 us of CPU more than
 * the faults it saved its session, since a session touches a small part
 * of that text and fault-around maps 16 pages a fault. */
void prefork_prefault(void)
{
	touch_stack();
}

static volatile sig_atomic_t spare_stop;

/* on_stop - SIGTERM or SIGINT while a spare waits: it exits */
static void on_stop(int sig)
{
	(void)sig;
	spare_stop = 1;
}

/* rest - BOUND_ACCEPT_RETRY_MS without looking at the listening
 * sockets (still readable: epoll would return at once); -1 when the
 * spare is to exit meanwhile */
static int rest(int retire_fd, const sigset_t *mask)
{
	struct pollfd p = {.fd = retire_fd, .events = POLLIN};
	struct timespec ts = {0, BOUND_ACCEPT_RETRY_MS * 1000000L};
	int rc = ppoll(&p, 1, &ts, mask);
	return spare_stop || (rc > 0 && p.revents) ? -1 : 0;
}

static int ep = -1; /* a spare's epoll instance */

/* prefork_wait_done - see prefork.h */
void prefork_wait_done(void)
{
	if (ep >= 0)
		close(ep);
	ep = -1;
}

/* prefork_wait - see prefork.h */
int prefork_wait(const struct listen_socket *socks, unsigned n, int retire_fd, int idle_ms,
                 struct sockaddr_storage *ss, unsigned *which)
{
	static sigset_t waitmask;
	static bool logged;
	if (ep < 0) {
		struct sigaction sa = {.sa_handler = on_stop};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigprocmask(SIG_SETMASK, NULL, &waitmask);
		sigdelset(&waitmask, SIGTERM);
		sigdelset(&waitmask, SIGINT);
		if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
			return -1;
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = n};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, retire_fd, &ev) < 0)
			return -1;
		for (unsigned i = 0; i < n; i++) {
			ev =
			    (struct epoll_event){.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = i};
			if (epoll_ctl(ep, EPOLL_CTL_ADD, socks[i].fd, &ev) < 0)
				return -1;
		}
	}
	for (;;) {
		struct epoll_event evs[8];
		int got = epoll_pwait(ep, evs, 8, idle_ms, &waitmask);
		if (spare_stop || got == 0) /* got 0: idle_ms passed without a client */
			return -1;
		if (got < 0 && errno != EINTR)
			return -1;
		for (int k = 0; k < got; k++) {
			unsigned i = evs[k].data.u32;
			if (i >= n) /* the retire pipe: EOF, or a stray byte */
				return -1;
			socklen_t sl = sizeof(*ss);
			memset(ss, 0, sizeof(*ss));
			int fd = accept4(socks[i].fd, (struct sockaddr *)ss, &sl, SOCK_CLOEXEC);
			if (fd >= 0) {
				*which = i;
				return fd;
			}
			/* out of descriptors or memory: the client stays in the
			 * backlog for another spare or for this one in a while */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				if (!logged)
					log_msg(LOG_ERR,
					        "event=spare-accept-failed pid=%ld error=\"%s\"",
					        (long)getpid(), strerror(errno));
				logged = true;
				if (rest(retire_fd, &waitmask) < 0)
					return -1;
				break;
			}
		}
	}
}
