/*
 * deliver_pipe.h - hand a message to a command, msmtpd-compatible
 *
 * The template (cmd_template.h) is expanded for each message and the
 * command is spawned directly with the spool on stdin; its stdout and
 * stderr go to the log. Exit status mapping (DESIGN.md), a table of the
 * sysexits.h names in deliver_pipe.c: 0 (EX_OK) -> 250; EX_NOHOST 68,
 * EX_UNAVAILABLE 69, EX_OSERR 71, EX_TEMPFAIL 75 -> 451; any other
 * status -> 554; killed by a signal or over the time limit -> 451.
 */
#ifndef SMTPIPE_DELIVER_PIPE_H
#define SMTPIPE_DELIVER_PIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "cmd_template.h"
#include "deliver.h"

struct spool;

/* deliver_map_status - fill r->code/text from a waitpid() status */
void deliver_map_status(int wstatus, bool timed_out, struct delivery_result *r);
/* deliver_exit_name - "EX_TEMPFAIL" for 75, "-" for a status sysexits.h
 * does not name */
const char *deliver_exit_name(int status);
/* deliver_pipe_run - spawn, feed, wait at most timeout seconds, map */
void deliver_pipe_run(const struct cmd_template *t, const struct delivery *d, struct spool *sp,
                      unsigned timeout, struct delivery_result *r);

#endif
