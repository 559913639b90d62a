/*
 * deliver_pipe.h - hand a message to a command, msmtpd-compatible
 *
 * The template (cmd_template.h) is expanded for each message and the
 * command is spawned directly with the spool on stdin; its stdout and
 * stderr go to the log. Exit status mapping (DESIGN.md): 0 -> 250; 68, 69, 71, 75 ->
 * 451; other -> 554; killed by a signal or over the time limit -> 451.
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
/* deliver_pipe_run - spawn, feed, wait at most timeout seconds, map */
void deliver_pipe_run(const struct cmd_template *t, const struct delivery *d, struct spool *sp,
                      unsigned timeout, struct delivery_result *r);

#endif
