/*
 * log.h - one line per event, key=value fields, to none|syslog|file|stderr
 *
 * Priorities are syslog's (LOG_ERR ... LOG_DEBUG); lines above the
 * configured level are dropped. Errors (LOG_ERR and more severe) are
 * written at every level except with --log=none. Client text must go
 * through log_escape() before it reaches a line, inside double quotes,
 * and after every field whose value is the server's own knowledge
 * (session, event, client address, mech, sizes, results), so that a
 * reader (fail2ban) that matches the first "client=" can never be fed
 * an address by a client. AUTH arguments and secrets never reach a
 * line.
 */
#ifndef SMTPIPE_LOG_H
#define SMTPIPE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

struct config;

/* log_open - open the destination of cfg; -1 with err filled on failure */
int log_open(const struct config *cfg, char *err, size_t errlen);
/* log_stderr_is_client - descriptor 2 is the socket of descriptor 0
 * or 1 (xinetd, GNU pies): nothing for an administrator may go there.
 * --log=stderr then logs to syslog instead. */
bool log_stderr_is_client(void);
/* log_reopen - with --log=FILE, open FILE again (SIGHUP, after
 * logrotate renamed it); on failure the old file stays in use and err
 * says why; 0 for other destinations */
int log_reopen(char *err, size_t errlen);
/* log_open_file - open path for appending as log_open does (also for
 * a reopen): refused unless it is a regular file with one link, owned
 * by the effective user or root, never through a symlink, never
 * blocking on a FIFO; the descriptor, or -1 with err filled */
int log_open_file(const char *path, char *err, size_t errlen);
/* log_set_session - prefix later lines with session=ID ("" for none) */
void log_set_session(const char *id);
/* log_msg - one line at priority prio (printf format, no newline) */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_enabled - whether a line at prio would be written */
int log_enabled(int prio);
/* log_escape - copy len bytes of client text into dst as one token of
 * printable ASCII: every byte outside 0x21-0x7e and every '"', '\\' and
 * '=' becomes \xHH (lower-case hex), so an escaped value never holds a
 * quote, a blank or a key=; NUL-terminated, cut with "..." when dst is
 * too small; returns strlen(dst) */
size_t log_escape(char *dst, size_t cap, const char *src, size_t len);
/* log_close - flush and close (before exit, and in children after fork
 * when they reopen) */
void log_close(void);

#endif
