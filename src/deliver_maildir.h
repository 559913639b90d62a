/*
 * deliver_maildir.h - store a message in a Maildir (as qmail defined it,
 *                     with Dovecot's ",S=" size)
 *
 * DIR/tmp, DIR/new and DIR/cur are made (mode 0700) when missing, DIR
 * itself too (not its parents). Each message, after the envelope
 * headers (deliver_mbox.h), is written to tmp/ under a name unique on
 * this host (seconds.M<usec>P<pid>Q<counter>.<host>,S=<size>), fsynced,
 * moved into new/ without replacing anything there, and new/ is fsynced
 * before the 250. On any error nothing is left in new/ (nor in tmp/):
 * 452 4.3.1 for a full disk or quota, 451 4.3.0 otherwise, and a log
 * line. DIR and its three directories are opened without following a
 * symbolic link and used only when they are directories owned by the
 * daemon's user or root that no one else may write to; anything else is
 * 451 and a log line (and a start-up error from deliver_maildir_check).
 */
#ifndef SMTPIPE_DELIVER_MAILDIR_H
#define SMTPIPE_DELIVER_MAILDIR_H

#include <stddef.h>

#include "deliver.h"

struct spool;

/* deliver_maildir_check - at start-up: make the Maildir if missing and
 * check it as a delivery would; -1 with err filled if it cannot be used */
int deliver_maildir_check(const char *dir, char *err, size_t errlen);
/* deliver_maildir_run - store the message, fill r; host names the file */
void deliver_maildir_run(const char *dir, const char *host, const struct delivery *d,
                         struct spool *sp, struct delivery_result *r);
/* deliver_maildir_name - the unique part of a file name in tmp/ and new/
 * ("1700000000.M123456P42Q1.host,S=1234"): '/' ':' ',' and '\' in host
 * become \057 \072 \054 \134, as Maildir readers expect; the length or
 * 0 when cap is too small */
size_t deliver_maildir_name(char *buf, size_t cap, long long sec, long usec, long pid,
                            unsigned long counter, const char *host, size_t size);

#endif
