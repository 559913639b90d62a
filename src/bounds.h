/*
 * bounds.h - the default of every limit smtpipe enforces
 *
 * Each bound has a long option that tunes it (see options_table.c), one reply
 * with its enhanced status code when it is reached, and one log line.
 * Named bounds.h, not limits.h, so that <limits.h> stays the system's.
 */
#ifndef SMTPIPE_BOUNDS_H
#define SMTPIPE_BOUNDS_H

/* Concurrent sessions; more connections wait in the kernel backlog. */
#define BOUND_SESSIONS 16
/* Concurrent sessions per client address (an IPv6 client: its /64), as
 * Postfix's smtpd_client_connection_count_limit; more get 421 4.7.0.
 * Loopback clients are exempt unless --client-limit-loopback. */
#define BOUND_SESSIONS_PER_CLIENT 4
/* Spare session processes forked ahead of their clients (at most
 * --max-sessions); 0: a session is forked when its client is accepted.
 * Off by default: on two cores spares cut the time to the greeting by a
 * third but cost 5-25% more CPU, 11 kB more per session and 180 kB idle,
 * for no more sessions per second (README "Performance").
 * Each spare touches this much of its stack before it waits. */
#define BOUND_SPARE_SESSIONS 0
#define BOUND_SPARE_STACK    (8 * 1024)
/* --session-reuse: connections one session process serves one after
 * another (Postfix's max_use); 1, the default, is a fresh process for
 * every connection. A process that served one and then waits longer
 * than --timeout for the next exits (Postfix's max_idle), so a burst's
 * extra processes do not stay; before it waits it overwrites this much
 * of the stack below it, where the session's frames were. */
#define BOUND_SESSION_REUSE    1
#define BOUND_REUSE_STACK_WIPE (64 * 1024)
/* Listeners (--interface, --listen, -p IP:PORT) on one command line;
 * a *:PORT listener counts once. A fixed table, no option: each one is
 * a socket the daemon polls, and 32 covers every use we know of. */
#define BOUND_LISTENERS 32
/* --port=0 with several --interface: one free port for all of them,
 * looked for this many times when another program holds it on one. */
#define BOUND_PORT_TRIES 16
/* accept() out of descriptors (EMFILE): retry after this long. */
#define BOUND_ACCEPT_RETRY_MS 100
/* fork() failed: stop accepting for this long, doubled on each failure
 * up to the maximum; a failing condition is summed up in the log this
 * often. */
#define BOUND_FORK_BACKOFF_MS         100
#define BOUND_FORK_BACKOFF_MAX_MS     5000
#define BOUND_FAILURE_SUMMARY_SECONDS 60
/* Recipients per message (mockmta had a fixed 32; RFC 5321 4.5.3.1.8 says >= 100). */
#define BOUND_RECIPIENTS 100
/* Message size in octets, advertised in EHLO SIZE (RFC 1870). */
#define BOUND_MESSAGE_SIZE (64UL * 1024 * 1024)
/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define BOUND_COMMAND_LINE 512
/* RFC 4954 4: an AUTH command or response line may be up to 12288 octets. */
#define BOUND_AUTH_LINE 12288
/* Text lines in a message: no limit (0) by default, since real mail
 * (HTML from common clients and libraries) has longer lines and the
 * message size bounds them; --max-line-length=1000 is RFC 5321
 * 4.5.3.1.6's strict limit. */
#define BOUND_TEXT_LINE 0
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
/* How long the whole TLS handshake may take (or --timeout, if shorter). */
#define BOUND_HANDSHAKE_SECONDS 30
/* DATA must end within --timeout + (bytes received) / this rate, and no
 * read in it waits more than --timeout: a client that trickles a byte
 * now and then is cut off, one that sends 1 KiB/s or more is not. */
#define BOUND_DATA_MIN_RATE 1024
/* Bytes of an over-size message read and dropped past --max-message-size
 * so that the 552 comes in step; past these, 552 and the session ends. */
#define BOUND_DISCARD (16UL * 1024 * 1024)
/* Brute-force brake: credential checks at least this far apart across
 * the whole daemon (under --inetd, across processes through
 * --auth-state): at most one guess a second. */
#define BOUND_AUTH_DELAY_MS 1000
/* A slot further ahead than this in a state file is taken for stale
 * (a clock from before a reboot) and the schedule starts again. */
#define BOUND_AUTH_STATE_AHEAD_SECONDS 86400
/* How long a passwordeval command may run at start-up. */
#define BOUND_PASSWORDEVAL_SECONDS 10
/* How long an mbox delivery waits for another writer's lock (451 after). */
#define BOUND_MBOX_LOCK_SECONDS 10
/* --mailbox=-: how long one message may wait for standard output to
 * take it (a reader that stops reading); 451 after. */
#define BOUND_MBOX_STDOUT_SECONDS 60
/* --auth-file: the largest file read (one user:hash a line). */
#define BOUND_AUTH_FILE_SIZE (1024 * 1024)
/* Bytes of a delivery command's stdout+stderr copied to the log. */
#define BOUND_COMMAND_OUTPUT 4096
/* Log lines of one command's (or helper's) output; one more line says
 * how much was dropped. */
#define BOUND_COMMAND_OUTPUT_LINES 50
/* Session reply buffer: flushed when it passes half of this. */
#define BOUND_REPLY_BUFFER 8192
/* A message up to this size is spooled in memory and reaches a delivery
 * command through a pipe (the default pipe capacity); larger ones go to
 * a file in --spool-dir. */
#define BOUND_SPOOL_MEMORY (64 * 1024)
/* Bytes read from a child's output pipes after it exited: a background
 * process that keeps writing must not keep us reading. */
#define BOUND_CHILD_DRAIN_AFTER_EXIT (1024 * 1024)
/* How long the keyring helper waits for the Secret Service (a daemon
 * that is running but stuck would block a synchronous lookup for 50 s). */
#define BOUND_KEYRING_MS 5000
/* Values of one repeatable option (--listen, --fault): one more is a
 * usage error. */
#define BOUND_OPTION_REPEATS 64

/* A bounce (src/bounce.h) returns at most this many bytes of the
 * original message's headers, cut back to the end of a line: enough
 * for any real header section (a few KiB), while a hostile one cannot
 * make the queue write and send back megabytes. No option: it only
 * shortens what goes back to the sender. */
#define BOUND_BOUNCE_HEADERS (64 * 1024)
/* A field the bounce writes on a line of its own (an address, the
 * diagnostic) is at most this long, so that with its name the line
 * stays within RFC 5322 2.1.1's 998 octets. */
#define BOUND_BOUNCE_FIELD 900

/* Fault rules (--fault, --faults): at most this many in all. */
#define BOUND_FAULT_RULES 64
/* A fault's reply text: RFC 5321 4.5.3.1.5 allows 512 octets a reply
 * line, of which "CODE " and the CRLF take 6. */
#define BOUND_FAULT_TEXT 506
/* A fault rule's MATCH glob, and a line of --faults=FILE. */
#define BOUND_FAULT_MATCH 256
#define BOUND_FAULT_LINE  1024

/* --queue: the defaults of --queue-retry (the first delay, doubled after
 * each failed attempt up to --queue-retry-max), --queue-lifetime
 * (Postfix's maximal_queue_lifetime, 5 days) and --queue-workers. */
#define BOUND_QUEUE_RETRY_SECONDS     60
#define BOUND_QUEUE_RETRY_MAX_SECONDS 3600
#define BOUND_QUEUE_LIFETIME_SECONDS  (5 * 86400)
#define BOUND_QUEUE_WORKERS           2
/* The largest envelope file read back (sender, recipients, client):
 * --max-recipients addresses of BOUND_PATH octets, each %-encoded. */
#define BOUND_QUEUE_ENVELOPE (64 * 1024 * 1024)
/* How often the runner looks into DIR/q for new messages, at most
 * (a session does not wake it: it need not know the runner). */
#define BOUND_QUEUE_SCAN_MS 1000
/* After SIGTERM the daemon waits for its queue runner (whose deliveries
 * end within --delivery-timeout) this much longer, then kills it: a
 * stopped or stuck runner cannot keep the daemon from ending. Its
 * workers finish their deliveries; nothing leaves the queue. */
#define BOUND_QUEUE_STOP_GRACE_MS 10000

#endif
