/*
 * config.c - the exit code of each outcome, per personality
 *
 * msmtpd exits 1 on a runtime failure and 3 on a bad command line or a
 * start-up failure; mockmta exits 1 on failure, 2 on a timeout and 3
 * on a bad command line. One table says it for both.
 */
#include "config.h"

/* The exit code of each exit_kind, for smtpipe/msmtpd and for mockmta. */
static const struct {
	unsigned char smtpipe, mockmta;
} exit_codes[] = {
    [EXIT_KIND_OK] = {0, 0},    [EXIT_KIND_FAILURE] = {1, 1}, [EXIT_KIND_TIMEOUT] = {1, 2},
    [EXIT_KIND_USAGE] = {3, 3}, [EXIT_KIND_STARTUP] = {3, 1},
};

/* config_exit_code - see config.h */
int config_exit_code(const struct config *cfg, enum exit_kind kind)
{
	if ((unsigned)kind >= sizeof(exit_codes) / sizeof(exit_codes[0]))
		kind = EXIT_KIND_FAILURE;
	return cfg->personality == PERSONALITY_MOCKMTA ? exit_codes[kind].mockmta
	                                               : exit_codes[kind].smtpipe;
}
