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

#include <stdbool.h>
#include <stddef.h>

struct config;

enum options_result {
	OPTIONS_RUN,   /* cfg is complete: run the server */
	OPTIONS_EXIT,  /* --version or --help was printed: exit 0 */
	OPTIONS_ERROR, /* err holds one line: print it, exit with EXIT_KIND_USAGE */
};

/* options_hostname_ok - a name for the greeting and Received:, as
 * RFC 5321 4.1.2 allows there: a Domain (ASCII labels of letters,
 * digits and inner hyphens, at most 255 bytes) or an address literal
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]"); nothing that could end the
 * header's comment or field (';', '"', '<', '>', '\\', '(', blanks) */
bool options_hostname_ok(const char *name);
/* options_parse - fill cfg from argv (defaults first, then options) */
enum options_result options_parse(struct config *cfg, int argc, char **argv, char *err,
                                  size_t errlen);

#endif
