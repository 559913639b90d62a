/*
 * auth.c - SASL decoding, constant-time credential checks, and the
 *          brute-force brake shared by all sessions
 *
 * The brake is one schedule for the whole daemon: a MAP_SHARED
 * anonymous page made before the listener forks, or under --inetd a
 * small state file locked with fcntl(); each session sleeps only
 * itself, so mail of sessions that do not authenticate is never held
 * up.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "clock.h"
#include "log.h"

/* b64_value - the 6-bit value of a base64 character, -1 if none */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* auth_b64_decode - see auth.h */
long auth_b64_decode(const char *in, size_t len, char *out, size_t cap)
{
	if (len % 4 != 0 || len / 4 * 3 >= cap)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad) /* data after padding */
				return -1;
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		/* strict: the bits a pad leaves over must be zero (RFC 4648
		 * 3.5), so every message has exactly one encoding */
		if ((pad == 2 && (v[1] & 0xf)) || (pad == 1 && (v[2] & 0x3)))
			return -1;
		unsigned long x = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
		                  (unsigned long)v[2] << 6 | (unsigned long)v[3];
		out[o++] = (char)(x >> 16);
		if (pad < 2)
			out[o++] = (char)(x >> 8);
		if (pad < 1)
			out[o++] = (char)x;
	}
	out[o] = '\0';
	return (long)o;
}

/* auth_b64_encode - see auth.h */
size_t auth_b64_encode(const void *in, size_t n, char *out, size_t cap)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = in;
	size_t o = 0;
	if (cap < 4 * ((n + 2) / 3) + 1)
		return 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned long x = (unsigned long)p[i] << 16;
		if (i + 1 < n)
			x |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < n)
			x |= p[i + 2];
		out[o++] = tab[x >> 18 & 63];
		out[o++] = tab[x >> 12 & 63];
		out[o++] = i + 1 < n ? tab[x >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[x & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

/* auth_plain_split - see auth.h */
int auth_plain_split(const char *msg, size_t len, const char **authzid, size_t *zlen,
                     const char **user, size_t *ulen, const char **pass, size_t *plen)
{
	const char *a = memchr(msg, '\0', len);
	if (!a)
		return -1;
	const char *b = memchr(a + 1, '\0', len - (size_t)(a + 1 - msg));
	if (!b || memchr(b + 1, '\0', len - (size_t)(b + 1 - msg)))
		return -1;
	*authzid = msg;
	*zlen = (size_t)(a - msg);
	*user = a + 1;
	*ulen = (size_t)(b - a - 1);
	*pass = b + 1;
	*plen = len - (size_t)(b + 1 - msg);
	return (*ulen == 0 || *plen == 0) ? -1 : 0;
}

/* ct_equal - 0 when got equals want, else nonzero, in time that
 * depends only on the configured length wlen: every configured byte
 * is compared once whatever the input's length, the input's bytes are
 * masked to 0 past its end (its index clamped, so nothing is read out
 * of bounds), and the length difference is folded in at the end */
static unsigned ct_equal(const char *want, size_t wlen, const char *got, size_t glen)
{
	static const unsigned char none;
	const unsigned char *g = glen ? (const unsigned char *)got : &none;
	size_t last = glen ? glen - 1 : 0;
	unsigned acc = 0;
	for (size_t i = 0; i < wlen; i++) {
		size_t in = (size_t)0 - (size_t)(i < glen); /* all ones inside got */
		size_t j = (i & in) | (last & ~in);
		acc |= (unsigned)((unsigned char)want[i] ^ (g[j] & (unsigned char)in));
	}
	size_t dlen = wlen ^ glen; /* nonzero -> top bit of (d | -d) set */
	acc |= (unsigned)((dlen | ((size_t)0 - dlen)) >> (sizeof(size_t) * 8 - 1));
	return acc;
}

/* auth_check - see auth.h; both fields are always compared */
bool auth_check(const struct auth_secret *s, const char *user, size_t ulen, const char *pass,
                size_t plen)
{
	if (!s || !s->user || !s->password)
		return false;
	unsigned d = ct_equal(s->user, s->user_len, user, ulen);
	d |= ct_equal(s->password, s->password_len, pass, plen);
	return d == 0 && plen > 0;
}

/* auth_secret_wipe - see auth.h */
void auth_secret_wipe(struct auth_secret *s)
{
	if (s->password) {
		explicit_bzero(s->password, s->password_len);
		free(s->password);
	}
	free(s->user);
	memset(s, 0, sizeof(*s));
}

/*
 * The brake is a schedule: every credential check takes the next slot,
 * at least BOUND_AUTH_DELAY_MS after the slot before it, and sleeps until
 * then. However many sessions (or --inetd processes) guess at once, the
 * daemon checks at most one password per delay; a lone check with no
 * other in the last delay runs at once. Only the session that
 * authenticates sleeps: mail and commands of the others go on.
 */
struct brake {
	_Atomic long long next_ms; /* the earliest free slot, CLOCK_BOOTTIME */
};

static struct brake local_brake;
static struct brake *brake = &local_brake;
static int state_fd = -1;   /* --inetd: the state file, or -1 */
static bool always = false; /* no shared state: delay each check */

/* state_open - the --inetd state file: opened without following a
 * symbolic link or blocking on a FIFO, and used only when it is a
 * regular file of this user that nobody else may read or write (else
 * another local user could hold the lock or rewind the schedule) */
static int state_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "--auth-state: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	const char *why = NULL;
	if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid())
		why = "owned by another user";
	else if (st.st_mode & 077)
		why = "readable or writable by others (want mode 0600)";
	else if (st.st_nlink != 1)
		why = "has other hard links";
	if (why) {
		snprintf(err, errlen, "--auth-state: refusing %s: %s", path, why);
		close(fd);
		return -1;
	}
	return fd;
}

/* auth_brake_init - see auth.h */
int auth_brake_init(const char *state_file, char *err, size_t errlen)
{
	if (state_file) {
		state_fd = state_open(state_file, err, errlen);
		always = state_fd < 0;
		return state_fd < 0 ? 1 : 0;
	}
	void *p = mmap(NULL, sizeof(struct brake), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the authentication brake: %s", strerror(errno));
		return -1;
	}
	brake = p;
	atomic_store(&brake->next_ms, 0);
	return 0;
}

/* file_lock - take (F_WRLCK) or release (F_UNLCK) the state file; a
 * holder keeps it only for one read and one write */
static int file_lock(short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET};
	while (fcntl(state_fd, F_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* reserve - the slot of this check: max(now, next free slot), and the
 * next free slot moved one delay past it; with earliest, only push the
 * next free slot to at least earliest (a failure) */
static long long reserve(long long now, long long earliest)
{
	const long long delay = BOUND_AUTH_DELAY_MS;
	if (state_fd >= 0) {
		long long next = 0;
		if (file_lock(F_WRLCK) < 0)
			return now + delay; /* cannot share: delay this check alone */
		if (pread(state_fd, &next, sizeof(next), 0) != (ssize_t)sizeof(next) ||
		    next > now + (long long)BOUND_AUTH_STATE_AHEAD_SECONDS * 1000)
			next = 0; /* new, or from before a reboot */
		long long slot = next > now ? next : now;
		long long want = earliest ? (next > earliest ? next : earliest) : slot + delay;
		ssize_t w = pwrite(state_fd, &want, sizeof(want), 0);
		file_lock(F_UNLCK);
		if (w != (ssize_t)sizeof(want))
			return now + delay;
		return slot;
	}
	long long next = atomic_load(&brake->next_ms), slot, want;
	do {
		slot = next > now ? next : now;
		want = earliest ? (next > earliest ? next : earliest) : slot + delay;
	} while (!atomic_compare_exchange_weak(&brake->next_ms, &next, want));
	return slot;
}

/* auth_brake_wait - see auth.h */
void auth_brake_wait(void)
{
	long long now = clock_now_ms();
	long long slot = always ? now + BOUND_AUTH_DELAY_MS : reserve(now, 0);
	if (slot <= now)
		return;
	log_msg(LOG_INFO, "event=auth-brake wait-ms=%lld", slot - now);
	clock_sleep_until(slot); /* a signal does not cut the brake short */
}

/* auth_brake_failed - see auth.h */
void auth_brake_failed(void)
{
	if (!always)
		reserve(clock_now_ms(), clock_now_ms() + BOUND_AUTH_DELAY_MS);
}
