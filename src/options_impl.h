/*
 * options_impl.h - what options.c and options_table.c share, and no
 *                  other file may include
 *
 * options_table.c holds the rows and the hooks of single options;
 * options.c reads a command line from the rows. The hooks parse and
 * store numbers as the kinds do, with the helpers below, so that a
 * number given to a hook is read exactly as one given to a kind.
 */
#ifndef SMTPIPE_OPTIONS_IMPL_H
#define SMTPIPE_OPTIONS_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"

/* OPTIONS_MAX_ROWS - room for the rows in the parser's fixed tables
 * (getopt's view, the rows given); options_table.c checks it at build
 * time. Not a limit on input: a command line gives any number. */
#define OPTIONS_MAX_ROWS 64

/* the rows of options_table.c, options_n_rows of them, in --help order */
extern const struct option_row *const options_rows;
extern const size_t options_n_rows;

/* options_field - where row's value goes in base */
void *options_field(const struct option_row *row, void *base);
/* options_store_number - v into an unsigned or a size_t field */
void options_store_number(const struct option_row *row, void *base, unsigned long long v);
/* options_parse_number - a whole number in [min, max], with k/M/G when
 * sized: 0 and *out, or -1 */
int options_parse_number(const char *s, unsigned long long min, unsigned long long max, bool sized,
                         unsigned long long *out);
/* options_not_what - the usual complaint: "'VALUE' is not WHAT"; -1 */
int options_not_what(const struct option_row *row, const char *value, char *why, size_t whylen);

#endif
