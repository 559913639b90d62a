/*
 * daemon.h - what makes the process a service: no core and not
 *            dumpable, another user, the pid file, detaching, and
 *            systemd's notifications (sd_notify)
 */
#ifndef SMTPIPE_DAEMON_H
#define SMTPIPE_DAEMON_H

#include <stddef.h>

struct config;

/* daemon_harden - no core files and not dumpable (the AUTH password
 * is in memory): for the daemon, its sessions and --inetd */
void daemon_harden(void);
/* daemon_drop_privileges - become USER[:GROUP] (listener_open does it
 * after binding; main calls it for --inetd); -1 with err filled */
int daemon_drop_privileges(const char *spec, char *err, size_t errlen);
/* daemon_pidfile_open - open (as root, before the drop) the -P file
 * whose pid daemon_pidfile_write puts in later; -1 with err filled */
int daemon_pidfile_open(const char *path, char *err, size_t errlen);
/* daemon_pidfile_write - this process's pid into it, once it serves
 * (0 when no -P was given); -1 on a write error */
int daemon_pidfile_write(void);
/* daemon_pidfile_remove - at exit: path removed (or emptied) and closed */
void daemon_pidfile_remove(const char *path);
/* daemon_pidfile_forget - a child: the descriptor closed, the file left */
void daemon_pidfile_forget(void);
/* daemon_detach - mockmta -d: fork; the parent exits only once the
 * child reports ready through the descriptor returned here (one NUL
 * byte), calling on_ready() first (the ports, on its own stdout), or
 * prints the child's error line; the child, in a new session with
 * /dev/null for 0-2, gets that descriptor; -1 on failure */
int daemon_detach(const struct config *cfg, void (*on_ready)(void));
/* daemon_notify - a sd_notify() datagram (READY=1, STOPPING=1), when
 * NOTIFY_SOCKET is set */
void daemon_notify(const char *msg);

#endif
