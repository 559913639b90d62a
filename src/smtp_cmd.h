/*
 * smtp_cmd.h - SMTP verbs, MAIL/RCPT paths and their parameters
 *
 * Pure parsing, no state: the engine decides what a parsed command
 * means in the state it arrives in. Addresses are checked so that none
 * can be mistaken for an option or carry a control character into a
 * delivery command's argv (DESIGN.md invariant 4).
 */
#ifndef SMTPIPE_SMTP_CMD_H
#define SMTPIPE_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "bounds.h"

enum smtp_verb {
	VERB_UNKNOWN,
	VERB_HELO,
	VERB_EHLO,
	VERB_MAIL,
	VERB_RCPT,
	VERB_DATA,
	VERB_RSET,
	VERB_NOOP,
	VERB_QUIT,
	VERB_HELP,
	VERB_VRFY,
	VERB_EXPN,
	VERB_STARTTLS,
	VERB_AUTH,
	VERB_BDAT,
	VERB_NOT_IMPLEMENTED, /* TURN, ETRN, SEND, SOML, SAML, ATRN */
};

/* smtp_cmd_verb - recognise the verb at the start of line; *args points
 * past the verb and one space (or at the end); *bad_separator is set
 * when the verb is followed by something other than a space */
enum smtp_verb smtp_cmd_verb(const char *line, size_t len, const char **args, size_t *args_len,
                             bool *bad_separator);
const char *smtp_cmd_verb_name(enum smtp_verb v);

enum path_error {
	PATH_OK,
	PATH_SYNTAX,   /* 501 */
	PATH_TOO_LONG, /* 501 */
	PATH_REFUSED,  /* 553: begins with '-', control character */
	PATH_8BIT,     /* 553 unless SMTPUTF8 was given */
};

struct mail_params {
	unsigned long long size; /* SIZE=, 0 if absent */
	bool size_given;
	bool smtputf8; /* SMTPUTF8 */
};

/* smtp_cmd_path - parse "FROM:<path> params" (prefix "FROM:" or "TO:",
 * case-insensitive, blank after the colon tolerated); copies the
 * address without <> and source route into addr (BOUND_PATH+1 bytes);
 * *rest points at the parameters */
enum path_error smtp_cmd_path(const char *args, size_t len, const char *prefix, char *addr,
                              const char **rest, size_t *rest_len, bool allow_8bit);

enum param_error {
	PARAM_OK,
	PARAM_SYNTAX,      /* 501 */
	PARAM_UNSUPPORTED, /* 555 */
};

/* smtp_cmd_mail_params - parse MAIL parameters (SIZE, BODY, SMTPUTF8,
 * AUTH); *bad names the offending parameter for the reply */
enum param_error smtp_cmd_mail_params(const char *p, size_t len, struct mail_params *mp);
/* smtp_cmd_rcpt_params - RCPT takes none of the ones we advertise */
enum param_error smtp_cmd_rcpt_params(const char *p, size_t len);
/* smtp_cmd_domain_ok - EHLO/HELO argument: 1..255 printable, no blanks */
bool smtp_cmd_domain_ok(const char *s, size_t len);

#endif
