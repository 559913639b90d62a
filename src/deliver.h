/*
 * deliver.h - what a delivery method is given and what it answers
 *
 * A method (deliver_pipe.c, deliver_mbox.c) gets the envelope and the
 * complete spool and fills a result whose code and text become the
 * reply to the end of DATA. Invariant 1: code 250 only when the whole
 * message was handed on (the command read it all and exited 0, or the
 * mbox append was written and fsynced).
 */
#ifndef SMTPIPE_DELIVER_H
#define SMTPIPE_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

struct delivery {
	const char *sender;       /* "" for the null sender <> */
	const char *const *rcpts; /* nrcpt addresses, without <> */
	size_t nrcpt;
	const char *id; /* message id for the log */
	/* For the delivery command's environment (smtpipe(8) ENVIRONMENT),
	 * filled by the session: */
	const char *client;    /* SMTPIPE_CLIENT; NULL: unset */
	const char *listener;  /* SMTPIPE_LISTENER; NULL: unset */
	long client_uid;       /* SMTPIPE_CLIENT_UID; < 0: unset */
	const char *auth_user; /* SMTPIPE_AUTH_USER; NULL: no successful AUTH */
};

struct delivery_result {
	int code;        /* 250, 451, 452, 554 ... */
	char text[160];  /* enhanced code and text: "2.0.0 Ok: delivered as ID" */
	int exit_status; /* exit status of the command, -1 if none */
	int signal;      /* signal that killed it, 0 if none */
	bool timed_out;  /* killed over the delivery time limit */
};

#endif
