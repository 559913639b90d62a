/*
 * deliver_mbox.h - append a message to an mbox file (RFC 4155, mboxrd)
 *
 * "From SENDER DATE" separator (MAILER-DAEMON for <>), the spooled
 * message with ">"-quoting of lines matching ^>*From , and one blank
 * line after it. The append holds an fcntl write lock (see
 * deliver_mbox.c for the dotlock choice), is fsynced before 250, and on
 * any error the file is truncated back to its old size: 452 4.3.1 for
 * a full disk or quota, 451 4.3.0 for other errors. The mailbox is
 * opened without following a symlink and without waiting on a FIFO,
 * and used only if it is a regular file with one link owned by the
 * daemon's user or root; anything else is 451 4.3.0 and a log line
 * (and a start-up error from deliver_mbox_check).
 */
#ifndef SMTPIPE_DELIVER_MBOX_H
#define SMTPIPE_DELIVER_MBOX_H

#include <stddef.h>

#include "deliver.h"

struct spool;

/* deliver_mbox_check - at start-up: can path be opened for append?
 * -1 with err filled if not */
int deliver_mbox_check(const char *path, char *err, size_t errlen);
/* deliver_mbox_run - append the message, fill r */
void deliver_mbox_run(const char *path, const struct delivery *d, struct spool *sp,
                      struct delivery_result *r);

#endif
