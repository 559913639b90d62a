/*
 * auth.h - SASL PLAIN (RFC 4616) and LOGIN decoding, credential checks,
 *          and the brute-force brake
 *
 * Pure helpers for the engine (base64, PLAIN message split) and the
 * check the session runs: compare in constant time, behind the brake:
 * credential checks at least BOUND_AUTH_DELAY_MS apart across the whole
 * daemon (under --inetd across processes, through a state file), so
 * parallel sessions guess no faster than one; only the session that
 * authenticates waits, never another session's mail.
 */
#ifndef SMTPIPE_AUTH_H
#define SMTPIPE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* auth_b64_decode - strict RFC 4648 base64 (padding required, no
 * blanks, the bits left over by a pad zero); needs cap > len/4*3 (room
 * for the longest decoding and a NUL after it); returns the decoded
 * length or -1 when invalid or too long */
long auth_b64_decode(const char *in, size_t len, char *out, size_t cap);
/* auth_b64_encode - encode n bytes into out (cap >= 4*((n+2)/3)+1) */
size_t auth_b64_encode(const void *in, size_t n, char *out, size_t cap);

/* auth_plain_split - split a decoded PLAIN message authzid\0authcid\0passwd
 * (RFC 4616 2); pointers go into msg; -1 when malformed (not exactly two
 * NULs, empty authcid or passwd) */
int auth_plain_split(const char *msg, size_t len, const char **authzid, size_t *zlen,
                     const char **user, size_t *ulen, const char **pass, size_t *plen);

struct config;

/* What AUTH accepts: the one account of --auth (user and password set),
 * the users of --auth-file (file: the table auth_setup read), or both
 * (either may match; both are always checked); or, with accept_any
 * (--auth-accept-any, for test suites), any user and password. */
struct auth_secret {
	char *user;
	char *password; /* wiped by auth_secret_wipe */
	size_t user_len;
	size_t password_len;
	bool file;       /* --auth-file's users are accepted too */
	bool accept_any; /* anyone: tests only, loopback only */
};

/* auth_check - true when user and password are accepted, as struct
 * auth_secret says: the --auth account compared in constant time (in
 * the lengths of the configured values); for --auth-file the user looked
 * up in time independent of which user matches, and crypt(3) run on
 * the password for an unknown user too (against a dummy hash made with
 * the file's first hash, so that its method and cost are alike); the
 * crypt result compared in constant time. A password or (accept_any)
 * user with a NUL byte is refused. The session gives the accepted user
 * to the delivery command as SMTPIPE_AUTH_USER (cmd_template_env). */
bool auth_check(const struct auth_secret *s, const char *user, size_t ulen, const char *pass,
                size_t plen);
/* auth_setup - --auth-file (file, or NULL) and --auth-accept-any into s:
 * the file is read (auth_file_parse) and kept for auth_reload. The file
 * is opened without following a symbolic link or waiting on a FIFO, and
 * used only as a regular file owned by us or root that not everyone may
 * write to; -1 with err filled when it cannot be used; 1 with a warning
 * in err when everyone may read it; else 0 */
int auth_setup(struct auth_secret *s, const char *file, bool accept_any, char *err, size_t errlen);
/* auth_reload - SIGHUP: read --auth-file again; a file that cannot be
 * used keeps the users read before; one log line says which */
void auth_reload(void);
/* auth_file_parse - user:hash lines (text of len bytes; blank lines and
 * '#' comments skipped, a CR before the LF ignored) into the table that
 * auth_check consults, replacing it; each hash one that libxcrypt
 * accepts as current (yescrypt "$y$", SHA-512 "$6$", ...: not DES or
 * MD5), user names unique, at least one user. -1 with err naming the
 * line when not, and the table is left as it was */
int auth_file_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);
/* auth_accept_any_check - --auth-accept-any only where every listener
 * is local: a loopback address or a Unix socket (--interface, systemd's
 * sockets while LISTEN_FDS still names them, or under --inetd the
 * socket on stdin, when it is one); -1 with err filled if not */
int auth_accept_any_check(const struct config *cfg, char *err, size_t errlen);
/* auth_secret_wipe - overwrite and free the password and user */
void auth_secret_wipe(struct auth_secret *s);

/* auth_brake_init - the brake's state, shared by every session: with
 * state_file NULL an anonymous shared page made before the listener
 * forks; with a path (--inetd, one process per session) that file,
 * locked with fcntl. 0 when set up; 1 when the file cannot be used
 * (err says why: a link, not ours, open to others, no directory): this
 * process then delays each of its checks by BOUND_AUTH_DELAY_MS, as
 * msmtpd does under inetd; -1 (err filled) when no page can be mapped */
int auth_brake_init(const char *state_file, char *err, size_t errlen);
/* auth_brake_wait - take the next slot of the shared schedule (checks
 * at least BOUND_AUTH_DELAY_MS apart) and sleep until it; the delay it
 * chose in ms (0: the slot was free), what its log line says */
long long auth_brake_wait(void);
/* auth_brake_failed - after a failure, no check for one more delay */
void auth_brake_failed(void);

#endif
