/*
 * prefork.h - the session slots shared by the daemon and its session
 *             processes, and a spare session's wait for its client
 *
 * Every process of the daemon's (a spare waiting for a client, or a
 * session) holds one slot of a table in a MAP_SHARED page the daemon
 * maps before it forks anything: so there are never more processes, and
 * never more sessions, than --max-sessions. A slot is FREE, SPARE (a
 * pre-forked process that has not taken a client, or has refused the
 * ones it took) or SESSION (serving the client whose key it holds; DONE
 * is the daemon's own mark for a process on its way out). The daemon
 * alone frees and hands out slots; a spare turns its own SPARE slot
 * into SESSION. The per-client count is
 * taken and the slot claimed under one robust process-shared mutex, so
 * two spares that accept two connections of one client at once count
 * each other, and a spare killed while it holds the lock does not stop
 * the others. A generation number says which spares are current
 * (SIGHUP retires the others), and a stop flag that the daemon is
 * stopping.
 */
#ifndef SMTPIPE_PREFORK_H
#define SMTPIPE_PREFORK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct listen_socket;

enum prefork_state { PREFORK_FREE = 0, PREFORK_SPARE, PREFORK_SESSION, PREFORK_DONE };

/* prefork_open - map the table of max slots, all FREE; -1 with err */
int prefork_open(unsigned max, char *err, size_t errlen);
/* prefork_close - unmap it: the daemon at exit, and every session as it
 * starts, so that no session can read the other slots' client keys or
 * hold the lock that the daemon and the spares take */
void prefork_close(void);

/* prefork_state - slot i's state, as its process last left it */
enum prefork_state prefork_state(unsigned i);
/* prefork_set - the daemon: slot i to state (FREE, SPARE) */
void prefork_set(unsigned i, enum prefork_state state);
/* prefork_claim - slot i becomes a SESSION for key, unless limit is
 * not 0 and limit sessions with that key run already: then it stays as
 * it was and -1 is returned; *count: the sessions of key before it */
int prefork_claim(unsigned i, const unsigned char key[16], unsigned limit, unsigned *count);
/* prefork_return - a process whose session ended cleanly, under
 * --session-reuse: its slot i from SESSION back to SPARE, the client's
 * key cleared, so that it waits for another client */
void prefork_return(unsigned i);
/* prefork_generation - the current generation of spares */
unsigned prefork_generation(void);
/* prefork_retire - a new generation: the spares of the old one are
 * stale (the daemon also tells them so through their retire pipe) */
void prefork_retire(void);
/* prefork_stop - the daemon is stopping: no spare starts a session */
void prefork_stop(void);
/* prefork_stopping - whether prefork_stop was called */
bool prefork_stopping(void);

/* prefork_prefault - a spare, before it waits: the stack its session
 * uses touched, so that the client waits for none of these faults */
void prefork_prefault(void);
/* prefork_wait - a spare: wait until one of the n listening sockets
 * (made non-blocking by the daemon) gives it a client, or until
 * retire_fd reports the end of its generation (EOF) or SIGTERM/SIGINT
 * reach it (they are unblocked only while it waits), or idle_ms pass
 * without a client (-1: no bound). The connection, its peer in *ss and
 * the listener's index in *which; -1: exit. Out of
 * descriptors, it logs one line and tries again every
 * BOUND_ACCEPT_RETRY_MS. */
int prefork_wait(const struct listen_socket *socks, unsigned n, int retire_fd, int idle_ms,
                 struct sockaddr_storage *ss, unsigned *which);
/* prefork_wait_done - the spare has its client: its epoll instance closed */
void prefork_wait_done(void);

#endif
