/*
 * deliver_mbox.h - append a message to an mbox file (RFC 4155, mboxrd)
 *
 * "From SENDER DATE" separator (MAILER-DAEMON for <>), the envelope
 * headers (deliver_envelope_headers), the spooled message with
 * ">"-quoting of lines matching ^>*From , and one blank line after it.
 * The append holds an fcntl write lock (see deliver_mbox.c for the
 * dotlock choice), is fsynced before 250, and on any error the file is
 * truncated back to its old size: 452 4.3.1 for a full disk or quota,
 * 451 4.3.0 for other errors. The mailbox is opened without following a
 * symlink and without waiting on a FIFO, and used only if it is a
 * regular file with one link owned by the daemon's user or root;
 * anything else is 451 4.3.0 and a log line (and a start-up error from
 * deliver_mbox_check).
 *
 * The path "-" (--mailbox=-) is standard output, which every session
 * shares: each message is written under an fcntl lock on it, so that
 * parallel sessions' messages never interleave, in PIPE_BUF pieces that
 * each wait at most BOUND_MBOX_STDOUT_SECONDS, and fsynced when it is a
 * regular file. Nothing written can be taken back: an error after the
 * first byte is a 451 and a log line saying the message there is torn.
 */
#ifndef SMTPIPE_DELIVER_MBOX_H
#define SMTPIPE_DELIVER_MBOX_H

#include <stddef.h>

#include "deliver.h"

struct spool;

/* A sink for bytes of a stored message: 0, or -1 with errno. */
typedef int deliver_put_fn(void *arg, const char *p, size_t n);
/* deliver_envelope_headers - what begins every stored message (mbox,
 * Maildir, --mailbox=-), before its Received: line, so that a test
 * reads the envelope from the message alone: "Return-Path: <SENDER>"
 * ("<>" for the null sender) and "X-Envelope-To:" with every envelope
 * recipient, Bcc included, as "<addr>" separated by ",", one a line
 * (folded); handed to put in pieces; -1 when put fails */
int deliver_envelope_headers(const struct delivery *d, deliver_put_fn *put, void *arg);
/* deliver_storage_failed - the reply of a stored message that failed
 * with err (mbox, Maildir): 452 4.3.1 for a full disk or quota (ENOSPC,
 * EDQUOT, EFBIG: the client tries again later), else 451 with text */
void deliver_storage_failed(struct delivery_result *r, int err, const char *text);
/* deliver_mbox_check - at start-up: can path be opened for append?
 * -1 with err filled if not */
int deliver_mbox_check(const char *path, char *err, size_t errlen);
/* deliver_mbox_run - append the message, fill r */
void deliver_mbox_run(const char *path, const struct delivery *d, struct spool *sp,
                      struct delivery_result *r);

#endif
