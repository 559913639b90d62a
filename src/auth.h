/*
 * auth.h - SASL PLAIN (RFC 4616) and LOGIN decoding, credential checks,
 *          and the brute-force brake
 *
 * Pure helpers for the engine (base64, PLAIN message split) and the
 * check the session runs: compare in constant time, and after any
 * failure in the daemon delay every later attempt (msmtpd: 1 s for 60 s
 * after the last failure; always in inetd mode). The brake's state is a
 * shared anonymous mapping made before the listener forks, so sessions
 * see each other's failures without blocking each other's mail.
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

/* auth_brake_init - create the shared brake state (before fork);
 * always_delay for inetd mode; -1 on failure */
int auth_brake_init(bool always_delay);
/* auth_brake_wait - sleep if a failure happened in the last
 * BOUND_AUTH_BRAKE_SECONDS (or always_delay) */
void auth_brake_wait(void);
/* auth_brake_failed - record a failure now */
void auth_brake_failed(void);

#endif
