/*
 * secret.h - where the AUTH password comes from, resolved at start-up
 *
 * --auth=USER,EVAL: EVAL runs through /bin/sh -c (the administrator's
 * command, as msmtp's passwordeval); the first line of its stdout is
 * the password. --auth=USER: the keyring through libsecret with msmtp's
 * attributes (schema de.marlam.msmtp.password: host=localhost,
 * service=smtp, user=USER; then the old network schema), and if that
 * fails and stdin is a terminal, a prompt without echo.
 */
#ifndef SMTPIPE_SECRET_H
#define SMTPIPE_SECRET_H

#include <stddef.h>

struct auth_secret;

/* secret_resolve - fill s (user and password) or return -1 with err
 * holding one line that names what failed */
int secret_resolve(struct auth_secret *s, const char *user, const char *eval, char *err,
                   size_t errlen);

#endif
