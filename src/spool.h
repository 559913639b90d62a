/*
 * spool.h - one message, whole, before anything is handed on
 *
 * Invariant 2: a message is spooled completely before delivery starts,
 * so a client that goes away mid-DATA causes no delivery. The content
 * has LF line endings and starts with the Received: header. Small
 * messages stay in memory; larger ones spill to an unlinked file in
 * the spool directory. Nothing of a spool survives the process.
 */
#ifndef SMTPIPE_SPOOL_H
#define SMTPIPE_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

struct spool {
	char *mem; /* in-memory content while small */
	size_t mem_len;
	size_t mem_cap;
	size_t mem_used; /* the most of mem ever filled: wiped by spool_free */
	int fd;          /* spill file (unlinked), -1 while in memory */
	size_t size;     /* bytes written so far */
	int error;       /* first errno seen, 0 if none (sticky) */
	const char *dir; /* spool directory */
};

/* spool_init - an empty spool in dir (no I/O yet) */
void spool_init(struct spool *sp, const char *dir);
/* spool_check - at start-up, as the user who will run the sessions:
 * can a large message be spooled in dir? -1 with err filled (naming
 * the directory and the reason) if not */
int spool_check(const char *dir, char *err, size_t errlen);
/* spool_write - append n bytes; -1 with errno (also kept in sp->error) */
int spool_write(struct spool *sp, const void *buf, size_t n);
/* spool_finish - flush; 0 when the content is complete and readable */
int spool_finish(struct spool *sp);
/* spool_input_fd - a new descriptor reading the whole content from its
 * first byte: the spill file reopened/dup'ed at offset 0, or a pipe
 * preloaded with a small in-memory message (write end closed; never a
 * blocking write: content the pipe cannot hold is spilled first). The
 * caller closes it; -1 with errno on failure */
int spool_input_fd(struct spool *sp);
/* spool_unread - bytes of the content not consumed through fd (from
 * spool_input_fd) after the reader finished; (size_t)-1 if unknown */
size_t spool_unread(struct spool *sp, int fd);
/* spool_read_at - copy up to n bytes from offset off into buf (for mbox
 * delivery); returns bytes copied, 0 at end, -1 with errno */
ssize_t spool_read_at(struct spool *sp, void *buf, size_t n, size_t off);
/* spool_reset - drop the content, ready for the next message */
void spool_reset(struct spool *sp);
/* spool_free - release everything */
void spool_free(struct spool *sp);

#endif
