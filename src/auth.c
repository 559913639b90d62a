/*
 * auth.c - SASL decoding, constant-time credential checks, and the
 *          brute-force brake shared by all sessions
 *
 * The brake lives in a MAP_SHARED anonymous page made before the
 * listener forks, so every session process sees the last failure of
 * any other; each session sleeps only itself, so mail of sessions that
 * do not authenticate is never held up.
 */
#include "auth.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bounds.h"

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

struct brake {
	_Atomic long long last_failure_ms; /* CLOCK_MONOTONIC, 0: none */
	bool always;
};

static struct brake local_brake;
static struct brake *brake = &local_brake;

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* auth_brake_init - see auth.h */
int auth_brake_init(bool always_delay)
{
	void *p = mmap(NULL, sizeof(struct brake), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	brake = p;
	atomic_store(&brake->last_failure_ms, 0);
	brake->always = always_delay;
	return 0;
}

/* auth_brake_wait - see auth.h */
void auth_brake_wait(void)
{
	long long last = atomic_load(&brake->last_failure_ms);
	if (!brake->always &&
	    (last == 0 || now_ms() - last > (long long)BOUND_AUTH_BRAKE_SECONDS * 1000))
		return;
	struct timespec d = {BOUND_AUTH_DELAY_MS / 1000, (BOUND_AUTH_DELAY_MS % 1000) * 1000000L};
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		; /* a signal does not cut the brake short */
}

/* auth_brake_failed - see auth.h */
void auth_brake_failed(void)
{
	long long t = now_ms();
	atomic_store(&brake->last_failure_ms, t ? t : 1);
}
