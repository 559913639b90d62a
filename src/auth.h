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

/* The one configured account. */
struct auth_secret {
	char *user;
	char *password; /* wiped by auth_secret_wipe */
	size_t user_len;
	size_t password_len;
};

/* auth_check - constant time (in the lengths of the configured values)
 * comparison of both user and password; true on a match */
bool auth_check(const struct auth_secret *s, const char *user, size_t ulen, const char *pass,
                size_t plen);
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
 * at least BOUND_AUTH_DELAY_MS apart) and sleep until it */
void auth_brake_wait(void);
/* auth_brake_failed - after a failure, no check for one more delay */
void auth_brake_failed(void);

#endif
