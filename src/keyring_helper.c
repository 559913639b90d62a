/*
 * keyring_helper.c - smtpipe-keyring USER: the keyring lookup, in its own
 *                    process
 *
 * smtpipe runs this once at start-up for --auth=USER and reads the
 * answer from a pipe, so the daemon itself never maps GLib and libsecret:
 * every session it forks is that much cheaper to create and to end.
 * Output on stdout, one of:
 *     "OK\n" PASSWORD "\n"
 *     "ERR " one line saying what failed "\n"
 * Exit status 0 with OK, 1 with ERR, 2 on usage. The lookup is msmtp's:
 * schema de.marlam.msmtp.password (host=localhost service=smtp
 * user=USER), then the compat network schema (user server protocol),
 * asynchronous under a timeout, since a Secret Service that is present
 * but stuck would block a synchronous lookup for 50 s.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libsecret/secret.h>

#include "bounds.h"

static const SecretSchema msmtp_schema = {
    .name = "de.marlam.msmtp.password",
    .flags = SECRET_SCHEMA_DONT_MATCH_NAME,
    .attributes = {{.name = "host", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = "service", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = "user", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = NULL, .type = 0}},
};

/* The old network schema as msmtp looks it up: by attributes only, so
 * items stored by secret-tool (which records no schema name) match. */
static const SecretSchema compat_schema = {
    .name = "org.gnome.keyring.NetworkPassword",
    .flags = SECRET_SCHEMA_DONT_MATCH_NAME,
    .attributes = {{.name = "user", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = "server", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = "protocol", .type = SECRET_SCHEMA_ATTRIBUTE_STRING},
                   {.name = NULL, .type = 0}},
};

struct lookup {
	GMainLoop *loop;
	GCancellable *cancel;
	gchar *password;
	GError *error;
	bool done, timed_out;
};

/* lookup_done - the async lookup finished (or was cancelled) */
static void lookup_done(GObject *src, GAsyncResult *res, gpointer data)
{
	(void)src;
	struct lookup *l = data;
	l->password = secret_password_lookup_finish(res, &l->error);
	l->done = true;
	g_main_loop_quit(l->loop);
}

/* lookup_timeout - give up on a Secret Service that does not answer */
static gboolean lookup_timeout(gpointer data)
{
	struct lookup *l = data;
	l->timed_out = true;
	g_cancellable_cancel(l->cancel);
	return G_SOURCE_REMOVE;
}

/* keyring_lookup - one schema; the password or NULL with why filled */
static gchar *keyring_lookup(bool compat, const char *user, char *why, size_t whylen)
{
	struct lookup l = {.loop = g_main_loop_new(NULL, FALSE), .cancel = g_cancellable_new()};
	guint t = g_timeout_add(BOUND_KEYRING_MS, lookup_timeout, &l);
	if (compat)
		secret_password_lookup(&compat_schema, l.cancel, lookup_done, &l, "user", user,
		                       "server", "localhost", "protocol", "smtp", NULL);
	else
		secret_password_lookup(&msmtp_schema, l.cancel, lookup_done, &l, "host",
		                       "localhost", "service", "smtp", "user", user, NULL);
	while (!l.done)
		g_main_loop_run(l.loop);
	if (!l.timed_out)
		g_source_remove(t);
	if (l.timed_out)
		snprintf(why, whylen, "the Secret Service did not answer within %d s",
		         BOUND_KEYRING_MS / 1000);
	else if (l.error)
		snprintf(why, whylen, "%s", l.error->message);
	else if (!l.password)
		snprintf(why, whylen, "not found, or the keyring is locked");
	if (l.error)
		g_error_free(l.error);
	g_object_unref(l.cancel);
	g_main_loop_unref(l.loop);
	return l.password;
}

int main(int argc, char **argv)
{
	if (argc != 2 || !argv[1][0]) {
		fprintf(stderr, "usage: smtpipe-keyring USER\n");
		return 2;
	}
	char why[512];
	gchar *pw = keyring_lookup(false, argv[1], why, sizeof(why));
	if (!pw && !strstr(why, "did not answer"))
		pw = keyring_lookup(true, argv[1], why, sizeof(why));
	if (!pw) {
		for (char *p = why; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		printf("ERR %s\n", why);
		return 1;
	}
	printf("OK\n%s\n", pw);
	fflush(stdout);
	secret_password_free(pw); /* wipes it */
	return 0;
}
