/*
 * log.c - one line per event to none, syslog, a file or stderr
 *
 * Each line is formatted whole and written with one write(), so the
 * session processes that share a log file never interleave. Before
 * log_open() (unit tests, the fuzzer) nothing is written.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "safe_file.h"

static enum log_dest dest = LOG_DEST_NONE;
static int level = LOG_INFO;
static int fd = -1;
static const char *prog = "smtpipe";
static char session[32];
static const struct config *opened; /* what log_reopen opens again */

/* The log file: whoever owns it can write lines we never wrote
 * (event=auth-failed client=ADDR, which fail2ban turns into a ban), so
 * it must be ours or root's, one link, never reached through a symlink
 * or a FIFO (safe_file.h) */
static const struct safe_file_rules log_rules = {.root_may_own = true, .one_link = true};

/* log_open_file - see log.h */
int log_open_file(const char *path, char *err, size_t errlen)
{
	char why[128];
	int f = safe_file_open(AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT, 0640, &log_rules,
	                       NULL, why, sizeof(why));
	if (f < 0)
		snprintf(err, errlen, "%s: cannot open log file %s: %s", prog, path, why);
	return f;
}

/* log_stderr_is_client - see log.h; the same socket (device and inode)
 * as descriptor 0 or 1, as xinetd and GNU pies hand over one connection
 * on 0-2. systemd's StandardError=journal is another socket, and stays
 * the log. */
bool log_stderr_is_client(void)
{
	struct stat e, c;
	if (fstat(STDERR_FILENO, &e) < 0 || !S_ISSOCK(e.st_mode))
		return false;
	for (int d = STDIN_FILENO; d <= STDOUT_FILENO; d++)
		if (fstat(d, &c) == 0 && S_ISSOCK(c.st_mode) && c.st_dev == e.st_dev &&
		    c.st_ino == e.st_ino)
			return true;
	return false;
}

/* log_open - see log.h */
int log_open(const struct config *cfg, char *err, size_t errlen)
{
	log_close();
	opened = cfg;
	dest = cfg->log_dest;
	level = cfg->log_level;
	prog = cfg->progname ? cfg->progname : "smtpipe";
	if (dest == LOG_DEST_SYSLOG) {
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
	} else if (dest == LOG_DEST_FILE) {
		fd = log_open_file(cfg->log_file, err, errlen);
		if (fd < 0) {
			dest = LOG_DEST_NONE;
			return -1;
		}
	} else if (dest == LOG_DEST_STDERR && log_stderr_is_client()) {
		/* never into the SMTP stream: the client's words would be
		 * echoed to it, and it would read our lines as replies */
		dest = LOG_DEST_SYSLOG;
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
		log_msg(LOG_NOTICE, "event=log-fallback to=syslog reason=\"%s\"",
		        "--log=stderr, but stderr is the client's connection");
	} else if (dest == LOG_DEST_STDERR) {
		fd = STDERR_FILENO;
	}
	return 0;
}

/* log_reopen - see log.h; log_open's own path, so the file is opened
 * exactly as at start-up. The old descriptor is set aside first (so
 * that log_open's log_close keeps it) and closed only once the new
 * file is open. */
int log_reopen(char *err, size_t errlen)
{
	if (dest != LOG_DEST_FILE || !opened)
		return 0;
	int old = fd;
	fd = -1;
	dest = LOG_DEST_NONE;
	if (log_open(opened, err, errlen) < 0) {
		fd = old;
		dest = LOG_DEST_FILE;
		return -1;
	}
	if (old > STDERR_FILENO)
		close(old);
	return 0;
}

/* log_set_session - see log.h */
void log_set_session(const char *id)
{
	snprintf(session, sizeof(session), "%s", id ? id : "");
}

/* log_enabled - errors pass at every level */
int log_enabled(int prio)
{
	return dest != LOG_DEST_NONE && (prio <= LOG_ERR || prio <= level);
}

/* log_msg - see log.h */
void log_msg(int prio, const char *fmt, ...)
{
	if (!log_enabled(prio))
		return;
	char line[2048];
	size_t n = 0;
	if (dest != LOG_DEST_SYSLOG) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
		n +=
		    (size_t)snprintf(line + n, sizeof(line) - n, "%s[%ld]: ", prog, (long)getpid());
	}
	if (session[0])
		n += (size_t)snprintf(line + n, sizeof(line) - n, "session=%s ", session);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n = m < 0 ? n : n + (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (dest == LOG_DEST_SYSLOG) {
		syslog(prio, "%s", line);
		return;
	}
	line[n++] = '\n';
	ssize_t w = write(fd, line, n);
	(void)w; /* nowhere to report a failed log write */
}

/* log_escape - see log.h; text that fits is never cut, text that does
 * not ends in "..." at an escape boundary (no half "\x4") */
size_t log_escape(char *dst, size_t cap, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, cut = 0; /* cut: the last end that leaves room for "..." */
	if (cap == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		char tmp[4];
		size_t k = 0;
		/* one token with no quote, blank or '=': nothing a reader can
		 * take for the end of the value or for another key=value */
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=') {
			tmp[k++] = '\\';
			tmp[k++] = 'x';
			tmp[k++] = hex[c >> 4];
			tmp[k++] = hex[c & 15];
		} else {
			tmp[k++] = (char)c;
		}
		if (o + k + 1 > cap) { /* does not fit with its NUL */
			if (cap >= 4) {
				memcpy(dst + cut, "...", 3);
				o = cut + 3;
			}
			break;
		}
		memcpy(dst + o, tmp, k);
		o += k;
		if (o + 4 <= cap)
			cut = o;
	}
	dst[o] = '\0';
	return o;
}

/* log_close - see log.h */
void log_close(void)
{
	if (dest == LOG_DEST_SYSLOG)
		closelog();
	if (fd > STDERR_FILENO)
		close(fd);
	fd = -1;
	dest = LOG_DEST_NONE;
}
