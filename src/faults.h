/*
 * faults.h - scripted replies (--fault, --faults): rules the engine
 *            consults at each stage of a session
 *
 * A rule is "STAGE [MATCH] [every N | P%] ACTION":
 *   STAGE   connect helo auth mail rcpt data dot quit
 *   MATCH   a case-insensitive glob (fnmatch) on the stage's argument:
 *           the client address (connect, quit), the HELO/EHLO name,
 *           the AUTH user, the address without <> (mail, rcpt), the
 *           envelope sender (data, dot)
 *   every N the rule fires on every Nth event it matches
 *   P%      it fires with probability P/100 (1-100)
 *   ACTION  CODE [X.Y.Z] TEXT   a 4xx or 5xx reply (printable ASCII,
 *                               at most BOUND_FAULT_TEXT octets)
 *           drop                close without a reply
 *           delay SEC           answer normally after SEC seconds
 *
 * Rules are tried in the order given; the first one that fires at a
 * stage answers. A rule counts the events it is asked about (its stage
 * and MATCH hold) in a counter that the caller may place in memory
 * shared by every session of the daemon (faults_share_counters), so
 * "every 2" means every second message of the daemon, not of each
 * session. P% draws from a hash of the seed, the rule's number and
 * that same counter: the Kth event a rule sees fires or not for a given
 * seed, whichever session sees it, so a run that sends the same events
 * in the same order is reproducible.
 *
 * Parsing and matching are pure (no system calls): the engine calls
 * faults_fire, and the caller owns the memory.
 */
#ifndef SMTPIPE_FAULTS_H
#define SMTPIPE_FAULTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "bounds.h"

enum fault_stage {
	FAULT_CONNECT,
	FAULT_HELO,
	FAULT_AUTH,
	FAULT_MAIL,
	FAULT_RCPT,
	FAULT_DATA,
	FAULT_DOT,
	FAULT_QUIT,
	FAULT_STAGES,
};

enum fault_action {
	FAULT_REPLY, /* code and text */
	FAULT_DROP,  /* close without a reply */
	FAULT_DELAY, /* answer after delay seconds */
};

struct fault_rule {
	enum fault_stage stage;
	char match[BOUND_FAULT_MATCH]; /* "" : every argument */
	unsigned every;                /* 0: not counted out */
	unsigned percent;              /* 0: no probability given */
	enum fault_action action;
	int code;                        /* FAULT_REPLY */
	char text[BOUND_FAULT_TEXT + 1]; /* FAULT_REPLY: "5.1.1 No such user" */
	unsigned delay;                  /* FAULT_DELAY, seconds */
};

/* The events each rule has seen; shared by the sessions when mapped. */
struct fault_counters {
	atomic_ullong seen[BOUND_FAULT_RULES];
};

struct faults {
	size_t n;
	struct fault_rule rule[BOUND_FAULT_RULES];
	unsigned long long seed;
	struct fault_counters *counters; /* &own, or a shared page */
	struct fault_counters own;
};

/* faults_init - no rules yet, counters of this process */
void faults_init(struct faults *f, unsigned long long seed);
/* faults_share_counters - count in c (zeroed here) from now on, e.g. a
 * MAP_SHARED page made before the listener forks */
void faults_share_counters(struct faults *f, struct fault_counters *c);
/* faults_parse - one rule; 0, or -1 with what is wrong in why */
int faults_parse(const char *text, struct fault_rule *r, char *why, size_t whylen);
/* faults_add - one rule appended; 0, or -1 with err "RULE 'text': why" */
int faults_add(struct faults *f, const char *text, char *err, size_t errlen);
/* faults_fire - the first rule for stage that matches arg (NULL: "")
 * and fires now, or NULL; *index is its number from 1, *nth the count
 * of events it has seen, this one included */
const struct fault_rule *faults_fire(const struct faults *f, enum fault_stage stage,
                                     const char *arg, size_t *index, unsigned long long *nth);
/* faults_stage_name - "connect" ... "quit" */
const char *faults_stage_name(enum fault_stage stage);

#endif
