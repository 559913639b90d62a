/*
 * faults.c - parse fault rules and decide when one fires
 *
 * Pure: no system calls. A rule is read word by word (faults.h gives
 * the grammar); what is wrong with a bad one is said in words that name
 * the word at fault, and the caller quotes the rule. A reply's text is
 * the administrator's, but it is still held to printable ASCII and to
 * what one reply line may carry (RFC 5321 4.5.3.1.5), so a rule cannot
 * break the reply stream. Firing counts with atomics, which work as
 * well on a page shared between processes as on the process's own.
 */
#include "faults.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const stage_names[FAULT_STAGES] = {
    [FAULT_CONNECT] = "connect", [FAULT_HELO] = "helo", [FAULT_AUTH] = "auth",
    [FAULT_MAIL] = "mail",       [FAULT_RCPT] = "rcpt", [FAULT_DATA] = "data",
    [FAULT_DOT] = "dot",         [FAULT_QUIT] = "quit",
};

/* faults_stage_name - see faults.h */
const char *faults_stage_name(enum fault_stage stage)
{
	return stage < FAULT_STAGES ? stage_names[stage] : "?";
}

/* faults_init - see faults.h */
void faults_init(struct faults *f, unsigned long long seed)
{
	memset(f, 0, sizeof(*f));
	f->seed = seed;
	f->counters = &f->own;
}

/* faults_share_counters - see faults.h */
void faults_share_counters(struct faults *f, struct fault_counters *c)
{
	for (size_t i = 0; i < BOUND_FAULT_RULES; i++)
		atomic_store(&c->seen[i], 0);
	f->counters = c;
}

/* next_word - the next blank-separated word of *p: its start and
 * length, *p after it; 0 at the end */
static size_t next_word(const char **p, const char **word)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t')
		s++;
	*word = s;
	while (*s && *s != ' ' && *s != '\t')
		s++;
	*p = s;
	return (size_t)(s - *word);
}

/* is_word - the word is w, in any case */
static bool is_word(const char *word, size_t len, const char *w)
{
	return len == strlen(w) && strncasecmp(word, w, len) == 0;
}

/* number - a whole number of len digits in [min, max]; -1 if not */
static long long number(const char *s, size_t len, long long min, long long max)
{
	if (len == 0 || len > 9)
		return -1;
	long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v < min || v > max ? -1 : v;
}

/* is_code - a reply code RFC 5321 4.2 allows for a refusal: 4xx, 5xx
 * with a second digit 0-5 */
static bool is_code(const char *w, size_t len)
{
	return len == 3 && (w[0] == '4' || w[0] == '5') && w[1] >= '0' && w[1] <= '5' &&
	       w[2] >= '0' && w[2] <= '9';
}

/* is_action - the word starts an ACTION (so it is not a MATCH) */
static bool is_action(const char *w, size_t len)
{
	return is_word(w, len, "drop") || is_word(w, len, "delay") ||
	       (len == 3 && w[0] >= '0' && w[0] <= '9' && number(w, len, 0, 999) >= 0);
}

/* enhanced_ok - RFC 3463 2: "class.subject.detail", the class that of
 * the reply code, the others of 1-3 digits */
static bool enhanced_ok(const char *w, size_t len, char cls)
{
	if (len < 5 || w[0] != cls || w[1] != '.')
		return false;
	const char *dot = memchr(w + 2, '.', len - 2);
	if (!dot)
		return false;
	size_t a = (size_t)(dot - (w + 2)), b = len - 3 - a;
	return number(w + 2, a, 0, 999) >= 0 && number(dot + 1, b, 0, 999) >= 0;
}

/* looks_enhanced - a word of digits and dots that begins "D." */
static bool looks_enhanced(const char *w, size_t len)
{
	if (len < 2 || w[0] < '0' || w[0] > '9' || w[1] != '.')
		return false;
	for (size_t i = 0; i < len; i++)
		if (w[i] != '.' && (w[i] < '0' || w[i] > '9'))
			return false;
	return true;
}

/* fail - why the rule is bad; -1 */
__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t whylen, const char *fmt,
                                                      ...);

/* parse_reply - "CODE [X.Y.Z] TEXT" from code (whose word is w) on */
static int parse_reply(struct fault_rule *r, const char *w, size_t len, const char *rest, char *why,
                       size_t whylen)
{
	if (!is_code(w, len))
		return fail(why, whylen, "'%.*s' is not a 4xx or 5xx reply code (400-559)",
		            (int)len, w);
	r->action = FAULT_REPLY;
	r->code = (int)number(w, len, 0, 999);
	while (*rest == ' ' || *rest == '\t')
		rest++;
	const char *p = rest, *e;
	size_t el = next_word(&p, &e);
	if (el && looks_enhanced(e, el) && !enhanced_ok(e, el, w[0]))
		return fail(why, whylen,
		            "'%.*s' is not an enhanced status code of class %c (RFC 3463: %c.Y.Z)",
		            (int)el, e, w[0], w[0]);
	size_t tl = strlen(rest);
	while (tl > 0 && (rest[tl - 1] == ' ' || rest[tl - 1] == '\t'))
		tl--;
	if (tl > BOUND_FAULT_TEXT)
		return fail(why, whylen,
		            "the reply text is longer than %d octets (RFC 5321 4.5.3.1.5)",
		            BOUND_FAULT_TEXT);
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)rest[i];
		if (c < 0x20 || c > 0x7e)
			return fail(
			    why, whylen,
			    "the reply text holds byte 0x%02x: only printable ASCII may be sent",
			    c);
	}
	if (tl == 0) /* a reply line needs words after the code */
		snprintf(r->text, sizeof(r->text), "%c.0.0 Scripted reply (--fault)", w[0]);
	else
		snprintf(r->text, sizeof(r->text), "%.*s", (int)tl, rest);
	return 0;
}

/* parse_action - ACTION from its first word w on */
static int parse_action(struct fault_rule *r, const char *w, size_t len, const char *rest,
                        char *why, size_t whylen)
{
	const char *p = rest, *x;
	if (is_word(w, len, "drop")) {
		if (next_word(&p, &x))
			return fail(why, whylen, "'drop' takes nothing after it, not '%s'", x);
		r->action = FAULT_DROP;
		return 0;
	}
	if (is_word(w, len, "delay")) {
		size_t xl = next_word(&p, &x);
		long long sec = number(x, xl, 1, 86400);
		if (sec < 0)
			return fail(why, whylen,
			            "'delay' needs a number of seconds (1-86400)%s%.*s%s",
			            xl ? ", not '" : "", (int)xl, x, xl ? "'" : "");
		if (next_word(&p, &x))
			return fail(why, whylen, "'delay SEC' takes nothing after it, not '%s'", x);
		r->action = FAULT_DELAY;
		r->delay = (unsigned)sec;
		return 0;
	}
	return parse_reply(r, w, len, rest, why, whylen);
}

/* faults_parse - see faults.h */
int faults_parse(const char *text, struct fault_rule *r, char *why, size_t whylen)
{
	memset(r, 0, sizeof(*r));
	const char *p = text, *w;
	size_t len = next_word(&p, &w);
	if (len == 0)
		return fail(why, whylen, "empty rule (STAGE [MATCH] [every N | P%%] ACTION)");
	size_t st = 0;
	while (st < FAULT_STAGES && !is_word(w, len, stage_names[st]))
		st++;
	if (st == FAULT_STAGES)
		return fail(why, whylen,
		            "unknown stage '%.*s' (connect helo auth mail rcpt data dot quit)",
		            (int)len, w);
	r->stage = (enum fault_stage)st;
	len = next_word(&p, &w);
	if (len && !is_action(w, len) && !is_word(w, len, "every") && w[len - 1] != '%') {
		if (len >= sizeof(r->match))
			return fail(why, whylen, "the MATCH is longer than %d octets",
			            BOUND_FAULT_MATCH - 1);
		memcpy(r->match, w, len);
		r->match[len] = '\0';
		len = next_word(&p, &w);
	}
	if (is_word(w, len, "every")) {
		const char *n;
		size_t nl = next_word(&p, &n);
		long long v = number(n, nl, 1, 1000000);
		if (v < 0)
			return fail(why, whylen, "'every' needs a whole number (1-1000000)%s%.*s%s",
			            nl ? ", not '" : "", (int)nl, n, nl ? "'" : "");
		r->every = (unsigned)v;
		len = next_word(&p, &w);
	} else if (len && w[len - 1] == '%') {
		long long v = number(w, len - 1, 1, 100);
		if (v < 0)
			return fail(why, whylen, "'%.*s' is not a probability (1%%-100%%)",
			            (int)len, w);
		r->percent = (unsigned)v;
		len = next_word(&p, &w);
	}
	if (len == 0)
		return fail(why, whylen, "no action (a 4xx/5xx reply, 'drop' or 'delay SEC')");
	if (!is_action(w, len))
		return fail(why, whylen,
		            "'%.*s' is not an action (a 4xx/5xx reply, 'drop' or 'delay SEC')",
		            (int)len, w);
	return parse_action(r, w, len, p, why, whylen);
}

/* quote - text for an error message: at most 200 bytes, bytes outside
 * printable ASCII as \\xHH, "..." when cut */
static void quote(const char *text, char *out, size_t cap)
{
	size_t n = 0, i = 0;
	for (; text[i] && i < 200 && n + 5 < cap; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c >= 0x20 && c <= 0x7e)
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
	}
	snprintf(out + n, cap - n, "%s", text[i] ? "..." : "");
}

/* faults_add - see faults.h */
int faults_add(struct faults *f, const char *text, char *err, size_t errlen)
{
	char why[300], q[808];
	quote(text, q, sizeof(q));
	if (f->n >= BOUND_FAULT_RULES) {
		snprintf(err, errlen, "fault rule '%s': more than %d rules", q, BOUND_FAULT_RULES);
		return -1;
	}
	if (faults_parse(text, &f->rule[f->n], why, sizeof(why)) < 0) {
		snprintf(err, errlen, "fault rule '%s': %s", q, why);
		return -1;
	}
	f->n++;
	return 0;
}

/* mix - splitmix64's finaliser: a well-spread hash of x */
static unsigned long long mix(unsigned long long x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/* fires - whether rule i fires on its nth event */
static bool fires(const struct faults *f, size_t i, unsigned long long nth)
{
	const struct fault_rule *r = &f->rule[i];
	if (r->every)
		return nth % r->every == 0;
	if (r->percent)
		return mix(mix(f->seed ^ ((unsigned long long)(i + 1) << 48)) ^ nth) % 100 <
		       r->percent;
	return true;
}

/* faults_fire - see faults.h */
const struct fault_rule *faults_fire(const struct faults *f, enum fault_stage stage,
                                     const char *arg, size_t *index, unsigned long long *nth)
{
	if (!f)
		return NULL;
	for (size_t i = 0; i < f->n; i++) {
		const struct fault_rule *r = &f->rule[i];
		if (r->stage != stage ||
		    (r->match[0] && fnmatch(r->match, arg ? arg : "", FNM_CASEFOLD) != 0))
			continue;
		unsigned long long k = atomic_fetch_add(&f->counters->seen[i], 1) + 1;
		if (!fires(f, i, k))
			continue;
		*index = i + 1;
		*nth = k;
		return r;
	}
	return NULL;
}

/* fail - see above */
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}
