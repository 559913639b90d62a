/*
 * options.h - both personalities' command lines into one struct config
 *
 * The personality comes from the program name: "mockmta" selects the
 * mockmta defaults (one session on stdin/stdout, MAILBOX required,
 * exit codes 0/1/2/3); anything else ("smtpipe", "msmtpd") the msmtpd
 * defaults (listen on 127.0.0.1:25 unless --inetd, pipe to
 * "msmtp -f %F --", exit 3 on usage errors). The option table is one
 * for both; see options.c and doc/smtpipe.8.
 */
#ifndef SMTPIPE_OPTIONS_H
#define SMTPIPE_OPTIONS_H

#include <stddef.h>

struct config;

enum options_result {
	OPTIONS_RUN,   /* cfg is complete: run the server */
	OPTIONS_EXIT,  /* --version or --help was printed: exit 0 */
	OPTIONS_ERROR, /* err holds one line: print it, exit with EXIT_KIND_USAGE */
};

/* options_parse - fill cfg from argv (defaults first, then options) */
enum options_result options_parse(struct config *cfg, int argc, char **argv, char *err,
                                  size_t errlen);

#endif
