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

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "clock.h"
#include "config.h"
#include "listen_spec.h"
#include "log.h"
#include "safe_file.h"

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

static bool file_check(const char *user, size_t ulen, const char *pass, size_t plen);

/* auth_check - see auth.h; both fields are always compared, and both
 * the --auth account and the --auth-file users are always checked */
bool auth_check(const struct auth_secret *s, const char *user, size_t ulen, const char *pass,
                size_t plen)
{
	if (!s)
		return false;
	bool ok = false;
	if (s->accept_any) /* the environment cannot carry a NUL */
		ok = ulen > 0 && plen > 0 && !memchr(user, '\0', ulen);
	if (s->user && s->password) {
		unsigned d = ct_equal(s->user, s->user_len, user, ulen);
		d |= ct_equal(s->password, s->password_len, pass, plen);
		ok |= d == 0 && plen > 0;
	}
	if (s->file)
		ok |= file_check(user, ulen, pass, plen);
	return ok;
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

/* The --inetd state file: a regular file of this user that nobody else
 * may read or write (else another local user could hold the lock or
 * rewind the schedule), never reached through a symbolic link or a FIFO
 * (safe_file.h) */
static const struct safe_file_rules state_rules = {
    .one_link = true,
    .forbidden = 077,
    .mode_why = "readable or writable by others (want mode 0600)"};

/* state_open - the --inetd state file, or -1 with err filled */
static int state_open(const char *path, char *err, size_t errlen)
{
	char why[96];
	int fd = safe_file_open(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, &state_rules, NULL, why,
	                        sizeof(why));
	if (fd < 0) /* EPERM: opened, and refused by the rules */
		snprintf(err, errlen, "--auth-state: %s %s: %s",
		         errno == EPERM ? "refusing" : "cannot open", path, why);
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
long long auth_brake_wait(void)
{
	long long now = clock_now_ms();
	long long slot = always ? now + BOUND_AUTH_DELAY_MS : reserve(now, 0);
	if (slot <= now)
		return 0;
	log_msg(LOG_INFO, "event=auth-brake wait-ms=%lld", slot - now);
	clock_sleep_until(slot); /* a signal does not cut the brake short */
	return slot - now;
}

/* auth_brake_failed - see auth.h */
void auth_brake_failed(void)
{
	if (!always)
		reserve(clock_now_ms(), clock_now_ms() + BOUND_AUTH_DELAY_MS);
}

/*
 * --auth-file: the users and their crypt(3) hashes, read at start-up
 * and on SIGHUP by the daemon; forked sessions inherit the table.
 */
struct auth_user {
	const char *name; /* into table.text */
	size_t len;
	const char *hash;
};

static struct {
	char *text; /* the file, its lines cut at ':' and LF */
	struct auth_user *users;
	size_t n;
	char dummy[CRYPT_OUTPUT_SIZE]; /* for a user not in the file */
} table;
static const char *table_path; /* NULL: no --auth-file */

/* file_check - the user's hash (or the dummy) against pass; every entry
 * is compared, and the matching one picked by mask, not by branch */
static bool file_check(const char *user, size_t ulen, const char *pass, size_t plen)
{
	static struct crypt_data cd;
	char pw[CRYPT_MAX_PASSPHRASE_SIZE + 1];
	size_t idx = 0, found = 0;
	for (size_t i = 0; i < table.n; i++) {
		size_t eq = ct_equal(table.users[i].name, table.users[i].len, user, ulen) == 0;
		size_t mask = (size_t)0 - eq;
		idx = (idx & ~mask) | (i & mask);
		found |= eq;
	}
	if (table.n == 0)
		return false;
	const char *hash = found ? table.users[idx].hash : table.dummy;
	bool fits = plen > 0 && plen < sizeof(pw) && !memchr(pass, '\0', plen);
	memcpy(pw, pass, fits ? plen : 0);
	pw[fits ? plen : 0] = '\0';
	const char *out = crypt_rn(pw, hash, &cd, (int)sizeof(cd));
	bool same = out && ct_equal(hash, strlen(hash), out, strlen(out)) == 0;
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(&cd, sizeof(cd));
	return same && found && fits;
}

/* bad_line - err: "NAME line N: why" */
static int bad_line(char *err, size_t errlen, const char *name, size_t line, const char *why)
{
	snprintf(err, errlen, "--auth-file: %s line %zu: %s", name, line, why);
	return -1;
}

/* check_entry - one "user:hash" line, split in place at its colon and
 * kept in users[n] when the name is new and the hash one crypt(3) takes
 * (the n before it are the lines so far); 0, or -1 with err filled */
static int check_entry(char *line, size_t lineno, struct auth_user *users, size_t n,
                       const char *name, char *err, size_t errlen)
{
	char *colon = strchr(line, ':');
	if (!colon)
		return bad_line(err, errlen, name, lineno, "not user:hash");
	*colon = '\0';
	size_t ul = (size_t)(colon - line);
	const char *hash = colon + 1;
	int salt = crypt_checksalt(hash);
	if (ul == 0)
		return bad_line(err, errlen, name, lineno, "the user name is empty");
	if (ul >= 256) /* the longest name AUTH passes on (engine.h) */
		return bad_line(err, errlen, name, lineno, "the user name is over 255 bytes");
	if (salt == CRYPT_SALT_METHOD_LEGACY)
		return bad_line(err, errlen, name, lineno,
		                "a legacy hash (DES, MD5...): use yescrypt ($y$) or SHA-512 ($6$)");
	if (salt != CRYPT_SALT_OK && salt != CRYPT_SALT_TOO_CHEAP)
		return bad_line(err, errlen, name, lineno,
		                "not a crypt(3) hash this system supports (yescrypt $y$, "
		                "SHA-512 $6$, ...)");
	for (size_t i = 0; i < n; i++)
		if (users[i].len == ul && memcmp(users[i].name, line, ul) == 0)
			return bad_line(err, errlen, name, lineno, "the user is given twice");
	users[n] = (struct auth_user){line, ul, hash};
	return 0;
}

/* auth_file_parse - see auth.h */
int auth_file_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "--auth-file: %s: has a NUL byte", name);
		return -1;
	}
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	char *copy = malloc(len + 1);
	struct auth_user *users = calloc(lines, sizeof(*users));
	if (!copy || !users) {
		free(copy);
		free(users);
		snprintf(err, errlen, "--auth-file: %s: out of memory", name);
		return -1;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	size_t n = 0, lineno = 0;
	int rc = 0;
	for (char *p = copy; p && *p && rc == 0;) {
		char *line = p, *nl = strchr(p, '\n');
		p = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		size_t ll = strlen(line);
		if (ll > 0 && line[ll - 1] == '\r')
			line[--ll] = '\0';
		if (ll == 0 || line[0] == '#')
			continue;
		rc = check_entry(line, lineno, users, n, name, err, errlen);
		if (rc == 0)
			n++;
	}
	static struct crypt_data cd;
	const char *dummy = NULL;
	if (rc == 0 && n == 0) {
		snprintf(err, errlen, "--auth-file: %s: no user:hash line", name);
		rc = -1;
	} else if (rc == 0 && !(dummy = crypt_rn("smtpipe: no such user", users[0].hash, &cd,
	                                         (int)sizeof(cd)))) {
		rc = bad_line(err, errlen, name, 1, "crypt(3) cannot use the first hash");
	}
	if (rc < 0) {
		explicit_bzero(copy, len);
		free(copy);
		free(users);
		return -1;
	}
	snprintf(table.dummy, sizeof(table.dummy), "%s", dummy);
	explicit_bzero(&cd, sizeof(cd));
	if (table.text) {
		explicit_bzero(table.text, strlen(table.text));
		free(table.text);
	}
	free(table.users);
	table.text = copy;
	table.users = users;
	table.n = n;
	return 0;
}

/* --auth-file: ours or root's, and nobody else may write it
 * (auth_setup in auth.h) */
static const struct safe_file_rules file_rules = {
    .root_may_own = true, .forbidden = S_IWOTH, .mode_why = "every user may write to it"};

/* file_load - read path (opened as auth_setup says) and parse it; -1
 * with err filled, 1 with a warning, else 0 */
static int file_load(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char why[96];
	int fd = safe_file_open(AT_FDCWD, path, O_RDONLY, 0, &file_rules, &st, why, sizeof(why));
	if (fd < 0) { /* EPERM: opened, and refused by the rules */
		snprintf(err, errlen, "--auth-file: %s %s: %s",
		         errno == EPERM ? "refusing" : "cannot open", path, why);
		return -1;
	}
	if (st.st_size > BOUND_AUTH_FILE_SIZE) {
		snprintf(err, errlen, "--auth-file: refusing %s: larger than 1 MiB", path);
		close(fd);
		return -1;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	ssize_t r = 0;
	while (buf && got <= (size_t)st.st_size &&
	       ((r = read(fd, buf + got, (size_t)st.st_size + 1 - got)) > 0 ||
	        (r < 0 && errno == EINTR)))
		got += r > 0 ? (size_t)r : 0;
	int e = errno;
	close(fd);
	int rc;
	if (!buf || r < 0) {
		snprintf(err, errlen, "--auth-file: cannot read %s: %s", path,
		         buf ? strerror(e) : "out of memory");
		rc = -1;
	} else if (got > (size_t)st.st_size) {
		snprintf(err, errlen, "--auth-file: %s changed while it was read", path);
		rc = -1;
	} else {
		rc = auth_file_parse(buf, got, path, err, errlen);
		explicit_bzero(buf, got);
	}
	free(buf);
	if (rc == 0 && (st.st_mode & S_IROTH)) {
		snprintf(err, errlen,
		         "warning: --auth-file %s is readable by every user: its hashes can be "
		         "guessed offline (chmod o-r)",
		         path);
		rc = 1;
	}
	return rc;
}

/* auth_setup - see auth.h */
int auth_setup(struct auth_secret *s, const char *file, bool accept_any, char *err, size_t errlen)
{
	s->accept_any = accept_any;
	if (!file)
		return 0;
	int rc = file_load(file, err, errlen);
	if (rc < 0)
		return -1;
	table_path = file;
	s->file = true;
	return rc;
}

/* auth_reload - see auth.h */
void auth_reload(void)
{
	char err[512];
	if (!table_path)
		return;
	int rc = file_load(table_path, err, sizeof(err));
	char esc[2048];
	log_escape(esc, sizeof(esc), err, rc ? strlen(err) : 0);
	if (rc < 0)
		log_msg(LOG_ERR, "event=auth-file-reload-failed kept-users=%zu error=\"%s\"",
		        table.n, esc);
	else
		log_msg(rc ? LOG_WARNING : LOG_INFO, "event=auth-file-reloaded users=%zu%s%s%s",
		        table.n, rc ? " warning=\"" : "", rc ? esc : "", rc ? "\"" : "");
}

/* local_address - a loopback address or a Unix socket */
static bool local_address(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_UNIX)
		return true;
	if (ss->ss_family == AF_INET)
		return ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24 == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* socket_local - fd's own address is local (or fd is no socket: a
 * pipe under inetd is local by nature) */
static bool socket_local(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return errno == ENOTSOCK;
	return local_address(&ss);
}

/* address_local - ip (text) is a loopback address */
static bool address_local(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	return ss.ss_family != AF_UNSPEC && local_address(&ss);
}

/* auth_accept_any_check - see auth.h */
int auth_accept_any_check(const struct config *cfg, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *refuse =
	    "--auth-accept-any accepts any password: it is for test suites, and only on "
	    "loopback addresses or Unix sockets";
	if (cfg->mode == MODE_INETD) {
		if (!socket_local(STDIN_FILENO)) {
			snprintf(err, errlen, "%s; the connection on stdin is to another address",
			         refuse);
			return -1;
		}
		return 0;
	}
	if (pid && fds && atol(pid) == (long)getpid()) { /* systemd's sockets */
		long n = atol(fds);
		for (long fd = 3; fd < 3 + n && fd < 3 + 64; fd++)
			if (!socket_local((int)fd)) {
				snprintf(err, errlen, "%s; systemd's socket %ld is not", refuse,
				         fd);
				return -1;
			}
		return 0;
	}
	/* every listener of the command line (listener.c): each --interface
	 * (or its default) and each --listen or -p IP:PORT */
	size_t ni = cfg->interfaces.n ? cfg->interfaces.n : 1;
	for (size_t i = 0; i < ni; i++) {
		const char *ip = cfg->interfaces.n ? cfg->interfaces.item[i] : cfg->interface;
		if (!address_local(ip)) {
			snprintf(err, errlen, "%s; --interface=%s is not", refuse, ip);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->listen.n; i++) {
		struct listen_spec ls;
		char why[300];
		if (listen_spec_parse(cfg->listen.item[i], &ls, why, sizeof(why)) == 0 &&
		    (ls.kind == LISTEN_UNIX || (ls.kind != LISTEN_ANY && address_local(ls.host))))
			continue;
		snprintf(err, errlen, "%s; --listen=%s is not", refuse, cfg->listen.item[i]);
		return -1;
	}
	return 0;
}
