/*
 * bounds.h - the default of every limit smtpipe enforces
 *
 * Each bound has a long option that tunes it (see options.c), one reply
 * with its enhanced status code when it is reached, and one log line.
 * Named bounds.h, not limits.h, so that <limits.h> stays the system's.
 */
#ifndef SMTPIPE_BOUNDS_H
#define SMTPIPE_BOUNDS_H

/* Concurrent sessions; more connections wait in the kernel backlog. */
#define BOUND_SESSIONS 16
/* Recipients per message (mockmta had a fixed 32; RFC 5321 4.5.3.1.8 says >= 100). */
#define BOUND_RECIPIENTS 100
/* Message size in octets, advertised in EHLO SIZE (RFC 1870). */
#define BOUND_MESSAGE_SIZE (64UL * 1024 * 1024)
/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define BOUND_COMMAND_LINE 512
/* RFC 4954 4: an AUTH command or response line may be up to 12288 octets. */
#define BOUND_AUTH_LINE 12288
/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with CRLF. */
#define BOUND_TEXT_LINE 1000
/* RFC 5321 4.5.3.1.3: a path (address with angle brackets) is 256 octets. */
#define BOUND_PATH 256
/* RFC 5321 4.5.3.1.1 and 4.5.3.1.2. */
#define BOUND_LOCAL_PART 64
#define BOUND_DOMAIN     255
/* RFC 5321 4.5.3.2.7: wait at least 5 minutes for the next command. */
#define BOUND_TIMEOUT_SECONDS 300
/* How long a delivery command may run before it is killed (451). */
#define BOUND_DELIVERY_SECONDS 300
/* Client errors per session before 421 (Postfix smtpd_hard_error_limit). */
#define BOUND_ERRORS 20
/* How long the TLS handshake may take. */
#define BOUND_HANDSHAKE_SECONDS 30
/* Brute-force brake (msmtpd): delay and how long it lasts after a failure. */
#define BOUND_AUTH_DELAY_MS      1000
#define BOUND_AUTH_BRAKE_SECONDS 60
/* How long a passwordeval command may run at start-up. */
#define BOUND_PASSWORDEVAL_SECONDS 10
/* How long an mbox delivery waits for another writer's lock (451 after). */
#define BOUND_MBOX_LOCK_SECONDS 10
/* Bytes of a delivery command's stdout+stderr copied to the log. */
#define BOUND_COMMAND_OUTPUT 4096
/* Log lines of one command's (or helper's) output; one more line says
 * how much was dropped. */
#define BOUND_COMMAND_OUTPUT_LINES 50
/* Session reply buffer: flushed when it passes half of this. */
#define BOUND_REPLY_BUFFER 8192

#endif
