/*
 * smtp_cmd.c - verbs, paths and parameters of SMTP commands
 *
 * Liberal where real clients differ (case, a blank after "FROM:", an
 * address without angle brackets), strict where a byte could do harm:
 * control characters, a leading '-', paths over RFC 5321's lengths and
 * 8-bit addresses without SMTPUTF8 are refused before anything else
 * sees them.
 */
#include "smtp_cmd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
    {"HELO", VERB_HELO},
    {"EHLO", VERB_EHLO},
    {"MAIL", VERB_MAIL},
    {"RCPT", VERB_RCPT},
    {"DATA", VERB_DATA},
    {"RSET", VERB_RSET},
    {"NOOP", VERB_NOOP},
    {"QUIT", VERB_QUIT},
    {"HELP", VERB_HELP},
    {"VRFY", VERB_VRFY},
    {"EXPN", VERB_EXPN},
    {"STARTTLS", VERB_STARTTLS},
    {"AUTH", VERB_AUTH},
    {"BDAT", VERB_BDAT},
    {"TURN", VERB_NOT_IMPLEMENTED},
    {"ETRN", VERB_NOT_IMPLEMENTED},
    {"ATRN", VERB_NOT_IMPLEMENTED},
    {"SEND", VERB_NOT_IMPLEMENTED},
    {"SOML", VERB_NOT_IMPLEMENTED},
    {"SAML", VERB_NOT_IMPLEMENTED},
};

/* smtp_cmd_verb - which verb line starts with */
enum smtp_verb smtp_cmd_verb(const char *line, size_t len, const char **args, size_t *args_len,
                             bool *bad_separator)
{
	size_t n = 0;
	while (n < len && line[n] != ' ')
		n++;
	*bad_separator = false;
	*args = line + n + (n < len);
	*args_len = len - n - (n < len);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		size_t vl = strlen(verbs[i].name);
		if (n == vl && strncasecmp(line, verbs[i].name, vl) == 0)
			return verbs[i].verb;
	}
	/* "MAIL FROM:" glued to something else, or a tab after the verb */
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		size_t vl = strlen(verbs[i].name);
		if (n > vl && strncasecmp(line, verbs[i].name, vl) == 0 &&
		    (line[vl] == '\t' || line[vl] == ':')) {
			*bad_separator = true;
			return verbs[i].verb;
		}
	}
	return VERB_UNKNOWN;
}

/* smtp_cmd_verb_name - for logs */
const char *smtp_cmd_verb_name(enum smtp_verb v)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "UNKNOWN";
}

/* domain_ok - RFC 5321 4.1.2 Domain: dot-separated labels of letters,
 * digits and inner hyphens (and '_', which real hosts carry; 8-bit
 * bytes are U-labels, allowed under SMTPUTF8 by the caller's check) */
static bool domain_ok(const char *d, size_t n)
{
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || d[i] == '.') {
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		unsigned char c = (unsigned char)d[i];
		if (!(isalnum(c) || c == '_' || c >= 0x80 || (c == '-' && label > 0)))
			return false;
		label++;
	}
	return true;
}

/* literal_ok - RFC 5321 4.1.3 address literal, without its brackets:
 * an IPv4 address, "IPv6:" and an IPv6 address, or a tagged general
 * literal */
static bool literal_ok(const char *l, size_t n)
{
	char buf[64];
	unsigned char bin[16];
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, l, n);
	buf[n] = '\0';
	if (isdigit((unsigned char)buf[0]))
		return inet_pton(AF_INET, buf, bin) == 1;
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, bin) == 1;
	const char *colon = memchr(buf, ':', n);
	if (!colon || colon == buf || colon[1] == '\0' || colon[-1] == '-')
		return false;
	for (const char *p = buf; p < colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
	for (const char *p = colon + 1; *p; p++) /* dcontent: 33-90, 94-126 */
		if (*p < 33 || *p > 126 || (*p >= 91 && *p <= 93))
			return false;
	return true;
}

/* check_address - the final address: lengths, bytes, leading '-', one
 * '@' outside quotes, and a well-formed domain or address literal */
static enum path_error check_address(const char *a, size_t n, bool allow_8bit)
{
	if (n > BOUND_PATH - 2)
		return PATH_TOO_LONG;
	if (n > 0 && a[0] == '-')
		return PATH_REFUSED;
	bool quoted = false, eightbit = false;
	size_t at = n; /* the '@' outside quotes */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c < 0x20 || c == 0x7f)
			return PATH_REFUSED;
		if (c >= 0x80)
			eightbit = true;
		if (c == '"' && (i == 0 || a[i - 1] != '\\')) {
			quoted = !quoted;
		} else if (c == '@' && !quoted) {
			if (at == n)
				at = i;
			else if (a[at + 1] != '[') /* a second '@', not in a literal */
				return PATH_SYNTAX;
		} else if (!quoted && (c == ' ' || c == '<' || c == '>' || c == '(' || c == ')' ||
		                       c == ',' || c == ';' || c == ':' || c == '\\')) {
			if (!(c == ':' && at < i && a[at + 1] == '[')) /* IPv6 literal */
				return PATH_SYNTAX;
		}
	}
	if (quoted)
		return PATH_SYNTAX;
	if (at < n) {
		if (at == 0 || at + 1 == n)
			return PATH_SYNTAX;
		if (at > BOUND_LOCAL_PART || n - at - 1 > BOUND_DOMAIN)
			return PATH_TOO_LONG;
		const char *dom = a + at + 1;
		size_t dl = n - at - 1;
		if (dom[0] == '[' ? dl < 3 || dom[dl - 1] != ']' || !literal_ok(dom + 1, dl - 2)
		                  : !domain_ok(dom, dl))
			return PATH_SYNTAX;
	} else if (n > BOUND_LOCAL_PART) {
		return PATH_TOO_LONG;
	}
	if (eightbit && !allow_8bit)
		return PATH_8BIT;
	return PATH_OK;
}

/* smtp_cmd_path - see smtp_cmd.h */
enum path_error smtp_cmd_path(const char *args, size_t len, const char *prefix, char *addr,
                              const char **rest, size_t *rest_len, bool allow_8bit)
{
	size_t pl = strlen(prefix);
	if (len < pl || strncasecmp(args, prefix, pl) != 0)
		return PATH_SYNTAX;
	const char *p = args + pl, *end = args + len;
	while (p < end && *p == ' ') /* "MAIL FROM: <a@b>" is common */
		p++;
	const char *a, *ae;
	if (p < end && *p == '<') {
		/* find the closing '>' outside a quoted local part */
		bool quoted = false;
		const char *q = p + 1;
		for (; q < end; q++) {
			if (*q == '"' && q[-1] != '\\')
				quoted = !quoted;
			else if (*q == '>' && !quoted)
				break;
		}
		if (q == end)
			return PATH_SYNTAX;
		a = p + 1;
		ae = q;
		p = q + 1;
		if (p < end && *p != ' ')
			return PATH_SYNTAX;
	} else {
		/* no angle brackets: up to the first blank (Postfix accepts) */
		a = p;
		while (p < end && *p != ' ')
			p++;
		ae = p;
		if (a == ae)
			return PATH_SYNTAX;
	}
	if ((size_t)(ae - a) > BOUND_PATH - 2)
		return PATH_TOO_LONG;
	/* RFC 5321 4.1.1.3: a source route "@a,@b:" is accepted and ignored */
	if (a < ae && *a == '@') {
		const char *colon = memchr(a, ':', (size_t)(ae - a));
		if (!colon)
			return PATH_SYNTAX;
		a = colon + 1;
	}
	enum path_error e = check_address(a, (size_t)(ae - a), allow_8bit);
	if (e != PATH_OK)
		return e;
	memcpy(addr, a, (size_t)(ae - a));
	addr[ae - a] = '\0';
	while (p < end && *p == ' ')
		p++;
	*rest = p;
	*rest_len = (size_t)(end - p);
	return PATH_OK;
}

/* next_param - split off the next blank-separated parameter */
static bool next_param(const char **p, const char *end, const char **kw, size_t *kwl,
                       const char **val, size_t *vall)
{
	while (*p < end && **p == ' ')
		(*p)++;
	if (*p == end)
		return false;
	const char *s = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	const char *eq = memchr(s, '=', (size_t)(*p - s));
	*kw = s;
	*kwl = eq ? (size_t)(eq - s) : (size_t)(*p - s);
	*val = eq ? eq + 1 : NULL;
	*vall = eq ? (size_t)(*p - eq - 1) : 0;
	return true;
}

/* kw_is - case-insensitive keyword match */
static bool kw_is(const char *kw, size_t kwl, const char *name)
{
	return kwl == strlen(name) && strncasecmp(kw, name, kwl) == 0;
}

/* smtp_cmd_mail_params - SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8
 * (RFC 6531), AUTH (RFC 4954 5, accepted and ignored) */
enum param_error smtp_cmd_mail_params(const char *p, size_t len, struct mail_params *mp)
{
	const char *end = p + len, *kw, *val;
	size_t kwl, vall;
	memset(mp, 0, sizeof(*mp));
	while (next_param(&p, end, &kw, &kwl, &val, &vall)) {
		if (kw_is(kw, kwl, "SIZE")) {
			if (!val || vall == 0 || vall > 20 || mp->size_given)
				return PARAM_SYNTAX;
			unsigned long long v = 0;
			for (size_t i = 0; i < vall; i++) {
				if (val[i] < '0' || val[i] > '9')
					return PARAM_SYNTAX;
				unsigned long long nv = v * 10 + (unsigned)(val[i] - '0');
				v = nv < v ? ~0ULL : nv; /* saturate, never wrap */
			}
			mp->size = v;
			mp->size_given = true;
		} else if (kw_is(kw, kwl, "BODY")) {
			/* RFC 6152: either is fine, message text is passed as it is */
			if (!val || !(kw_is(val, vall, "8BITMIME") || kw_is(val, vall, "7BIT")))
				return PARAM_SYNTAX;
		} else if (kw_is(kw, kwl, "SMTPUTF8")) {
			if (val)
				return PARAM_SYNTAX;
			mp->smtputf8 = true;
		} else if (kw_is(kw, kwl, "AUTH")) {
			if (!val || vall == 0)
				return PARAM_SYNTAX;
		} else {
			return PARAM_UNSUPPORTED;
		}
	}
	return PARAM_OK;
}

/* smtp_cmd_rcpt_params - we advertise no RCPT parameter (no DSN) */
enum param_error smtp_cmd_rcpt_params(const char *p, size_t len)
{
	const char *end = p + len, *kw, *val;
	size_t kwl, vall;
	if (next_param(&p, end, &kw, &kwl, &val, &vall))
		return PARAM_UNSUPPORTED;
	return PARAM_OK;
}

/* smtp_cmd_domain_ok - a HELO/EHLO name that is safe in Received: */
bool smtp_cmd_domain_ok(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')')
			return false;
	}
	return true;
}
