/*
 * queue_format.c - the queue's files and arithmetic, without I/O
 *                  (queue_format.h)
 *
 * The envelope and the state are read back by a later process (the
 * runner, a worker, --queue-list), maybe of a later version: the first
 * line names the format, unknown keys are skipped, a malformed value
 * refuses the whole file (the worker then moves the message to failed/
 * rather than deliver it to a half-read envelope).
 */
#include "queue_format.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* plain - a byte that queue_encode leaves as it is */
static bool plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%' && c != '=';
}

/* queue_encode - see queue.h */
size_t queue_encode(char *dst, size_t cap, const char *src, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t k = plain(c) ? 1 : 3;
		if (o + k >= cap)
			return (size_t)-1;
		if (k == 1) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (o >= cap)
		return (size_t)-1;
	dst[o] = '\0';
	return o;
}

/* hexval - one hex digit's value, or -1 */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* queue_decode - see queue.h */
int queue_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		*o++ = (char)(hi << 4 | lo);
		p += 2;
	}
	*o = '\0';
	return 0;
}

/* put_field - "key=ENCODED\n" appended to the malloc'ed buffer; -1 on ENOMEM */
static int put_field(char **buf, size_t *len, size_t *cap, const char *key, const char *val)
{
	size_t vl = strlen(val), need = *len + strlen(key) + 1 + vl * 3 + 2;
	if (need > *cap) { /* not realloc: the old block, wiped, holds addresses */
		size_t nc = *cap * 2 > need ? *cap * 2 : need;
		char *nb = malloc(nc);
		if (!nb)
			return -1;
		memcpy(nb, *buf, *len + 1);
		explicit_bzero(*buf, *cap);
		free(*buf);
		*buf = nb;
		*cap = nc;
	}
	*len += (size_t)sprintf(*buf + *len, "%s=", key);
	*len += queue_encode(*buf + *len, *cap - *len, val, vl);
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = '\0'; /* need counted it */
	return 0;
}

/* queue_env_format - see queue.h */
char *queue_env_format(const struct delivery *d, const char *id, long long arrival, size_t *len)
{
	size_t cap = 512, n = 0;
	char *buf = malloc(cap), num[32];
	if (!buf)
		return NULL;
	n = (size_t)sprintf(buf, "smtpipe-queue=1\n");
	snprintf(num, sizeof(num), "%lld", arrival);
	int rc = put_field(&buf, &n, &cap, "id", id) | put_field(&buf, &n, &cap, "arrival", num) |
	         put_field(&buf, &n, &cap, "sender", d->sender);
	if (d->client)
		rc |= put_field(&buf, &n, &cap, "client", d->client);
	if (d->listener)
		rc |= put_field(&buf, &n, &cap, "listener", d->listener);
	if (d->client_uid >= 0) {
		snprintf(num, sizeof(num), "%ld", d->client_uid);
		rc |= put_field(&buf, &n, &cap, "client-uid", num);
	}
	if (d->auth_user)
		rc |= put_field(&buf, &n, &cap, "auth-user", d->auth_user);
	for (size_t i = 0; i < d->nrcpt && rc == 0; i++)
		rc |= put_field(&buf, &n, &cap, "rcpt", d->rcpts[i]);
	if (rc) {
		explicit_bzero(buf, cap);
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* number - a whole decimal number (a leading '-' with negative); -1 if not */
static int number(const char *s, bool negative, long long *v)
{
	char *end;
	if (!*s || (!negative && *s == '-') || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* next_line - the next "key=value" line of *p (split in place); false at the end */
static bool next_line(char **p, char *end, char **key, char **val)
{
	if (*p >= end)
		return false;
	char *nl = memchr(*p, '\n', (size_t)(end - *p));
	char *line = *p;
	if (!nl)
		nl = end;
	*nl = '\0';
	*p = nl + 1;
	char *eq = strchr(line, '=');
	*key = line;
	*val = eq ? eq + 1 : NULL;
	if (eq)
		*eq = '\0';
	return true;
}

/* queue_env_parse - see queue.h */
int queue_env_parse(char *text, size_t len, struct queue_env *e)
{
	memset(e, 0, sizeof(*e));
	e->client_uid = -1;
	e->text = text;
	if (memchr(text, '\0', len))
		return -1;
	size_t cap = 0;
	char *p = text, *end = text + len, *key, *val;
	bool magic = false, has_id = false, has_arrival = false;
	while (next_line(&p, end, &key, &val)) {
		if (!val || queue_decode(val) < 0)
			return -1;
		long long v;
		if (strcmp(key, "smtpipe-queue") == 0) {
			magic = strcmp(val, "1") == 0;
		} else if (strcmp(key, "id") == 0) {
			if (!queue_id_valid(val))
				return -1;
			memcpy(e->id, val, QUEUE_ID_LEN + 1);
			has_id = true;
		} else if (strcmp(key, "arrival") == 0) {
			if (number(val, false, &e->arrival) < 0)
				return -1;
			has_arrival = true;
		} else if (strcmp(key, "sender") == 0) {
			e->sender = val;
		} else if (strcmp(key, "client") == 0) {
			e->client = val;
		} else if (strcmp(key, "listener") == 0) {
			e->listener = val;
		} else if (strcmp(key, "auth-user") == 0) {
			e->auth_user = val;
		} else if (strcmp(key, "client-uid") == 0) {
			if (number(val, false, &v) < 0 || v > LONG_MAX)
				return -1;
			e->client_uid = (long)v;
		} else if (strcmp(key, "rcpt") == 0) {
			if (e->nrcpt == cap) {
				cap = cap ? cap * 2 : 8;
				const char **r = realloc(e->rcpts, cap * sizeof(*r));
				if (!r)
					return -1;
				e->rcpts = r;
			}
			e->rcpts[e->nrcpt++] = val;
		} /* an unknown key: from a later version, ignored */
	}
	if (!magic || !has_id || !has_arrival || !e->sender || e->nrcpt == 0)
		return -1;
	return 0;
}

/* queue_env_free - see queue.h */
void queue_env_free(struct queue_env *e)
{
	free(e->rcpts);
	free(e->text);
	e->rcpts = NULL;
	e->text = NULL;
}

/* queue_state_format - see queue.h */
size_t queue_state_format(const struct queue_state *s, char *buf, size_t cap)
{
	char err[sizeof(s->error) * 3];
	if (queue_encode(err, sizeof(err), s->error, strlen(s->error)) == (size_t)-1)
		return 0;
	int n = snprintf(buf, cap, "attempts=%u\nnext=%lld\nlast-ms=%lld\nsince=%lld\nerror=%s\n",
	                 s->attempts, s->next, s->last_ms, s->since, err);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	if (s->gave_up != QUEUE_LIVE) { /* only then: a live state stays the first version's */
		int k =
		    snprintf(buf + n, cap - (size_t)n, "gave-up=%s\nbounce=%s\n",
		             s->gave_up == QUEUE_GAVE_UP_EXPIRED ? "expired" : "failed", s->bounce);
		if (k < 0 || (size_t)k >= cap - (size_t)n)
			return 0;
		n += k;
	}
	return (size_t)n;
}

/* queue_state_parse - see queue.h */
int queue_state_parse(const char *text, size_t len, struct queue_state *s)
{
	char buf[1024];
	if (len >= sizeof(buf) || memchr(text, '\0', len))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(s, 0, sizeof(*s));
	char *p = buf, *end = buf + len, *key, *val;
	unsigned seen = 0;
	while (next_line(&p, end, &key, &val)) {
		long long v;
		if (!val || queue_decode(val) < 0)
			return -1;
		if (strcmp(key, "error") == 0) {
			if (strlen(val) >= sizeof(s->error))
				return -1;
			strcpy(s->error, val);
			seen |= 16;
			continue;
		}
		if (strcmp(key, "gave-up") == 0) {
			if (strcmp(val, "failed") == 0)
				s->gave_up = QUEUE_GAVE_UP_FAILED;
			else if (strcmp(val, "expired") == 0)
				s->gave_up = QUEUE_GAVE_UP_EXPIRED;
			else
				return -1;
			continue;
		}
		if (strcmp(key, "bounce") == 0) {
			if (*val && !queue_id_valid(val))
				return -1;
			strcpy(s->bounce, val);
			continue;
		}
		if (number(val, false, &v) < 0)
			return -1;
		if (strcmp(key, "attempts") == 0 && v <= UINT_MAX) {
			s->attempts = (unsigned)v;
			seen |= 1;
		} else if (strcmp(key, "next") == 0) {
			s->next = v;
			seen |= 2;
		} else if (strcmp(key, "last-ms") == 0) {
			s->last_ms = v;
			seen |= 4;
		} else if (strcmp(key, "since") == 0) {
			s->since = v;
			seen |= 8;
		} else if (strcmp(key, "attempts") == 0) {
			return -1;
		}
	}
	if (s->bounce[0] && s->gave_up == QUEUE_LIVE) /* a bounce of a message still live */
		return -1;
	return seen == 31 ? 0 : -1;
}

/* queue_backoff - see queue.h */
unsigned long long queue_backoff(unsigned attempts, unsigned retry, unsigned retry_max)
{
	unsigned long long d = retry;
	for (unsigned i = 1; i < attempts && d < retry_max; i++)
		d *= 2;
	return d > retry_max ? retry_max : d;
}

/* queue_next_clamp - see queue.h */
long long queue_next_clamp(long long next, long long written, unsigned retry_max)
{
	if (written > LLONG_MAX - (long long)retry_max) /* a ctime no clock reaches */
		return next;
	long long most = written + (long long)retry_max;
	return next > most ? most : next;
}

/* queue_expired - see queue.h */
bool queue_expired(long long since, unsigned long long lifetime, long long now)
{
	if (now < since) /* the clock went back: not yet */
		return false;
	return (unsigned long long)(now - since) >= lifetime;
}

/* queue_parse_duration - see queue.h */
int queue_parse_duration(const char *s, unsigned long long *secs)
{
	const unsigned long long most = 10ULL * 366 * 86400;
	unsigned long long v = 0, unit = 1;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > most)
			return -1;
	}
	if (*p) {
		unit = *p == 's' ? 1 : *p == 'm' ? 60 : *p == 'h' ? 3600 : *p == 'd' ? 86400 : 0;
		if (!unit || p[1])
			return -1;
	}
	if (v == 0 || v * unit > most)
		return -1;
	*secs = v * unit;
	return 0;
}

/* queue_id_valid - see queue.h */
bool queue_id_valid(const char *s)
{
	for (size_t i = 0; i < QUEUE_ID_LEN; i++)
		if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i]))
			return false;
	return s[QUEUE_ID_LEN] == '\0';
}

/* queue_new_id - see queue.h */
void queue_new_id(char id[QUEUE_ID_LEN + 1], long long now, long usec)
{
	unsigned long long r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r)) /* blocks only before the pool is ready */
		r = (unsigned long long)clock() ^ (unsigned long long)getpid() << 32;
	snprintf(id, QUEUE_ID_LEN + 1, "%08llX%05lX%012llX",
	         (unsigned long long)now & 0xFFFFFFFFULL, (unsigned long)usec & 0xFFFFFUL,
	         r & 0xFFFFFFFFFFFFULL);
}
