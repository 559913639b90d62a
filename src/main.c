/*
 * main.c - wiring only: options, log, delivery, TLS, AUTH, then one
 *          session (inetd) or the listener
 *
 * Every start-up failure is one line on stderr and the personality's
 * exit code (smtpipe 3, mockmta 1; usage errors 3 for both).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "deliver_maildir.h"
#include "deliver_mbox.h"
#include "deliver_pipe.h"
#include "faults.h"
#include "daemon.h"
#include "listener.h"
#include "log.h"
#include "options.h"
#include "queue_run.h"
#include "secret.h"
#include "session.h"
#include "spool.h"
#include "tls.h"

static struct config cfg;
static struct server srv;
static struct cmd_template command;
static struct auth_secret secret;
static struct faults faults;

/* fail - one line (to the log when stderr is the client), then the exit
 * code for kind */
static int fail(enum exit_kind kind, const char *msg)
{
	if (log_stderr_is_client()) {
		char esc[1024];
		log_escape(esc, sizeof(esc), msg, strlen(msg));
		log_msg(LOG_ERR, "event=startup-error error=\"%s\"", esc);
		auth_secret_wipe(&secret);
		return config_exit_code(&cfg, kind);
	}
	fprintf(stderr, "%s%s%s\n",
	        strncmp(msg, cfg.progname, strlen(cfg.progname)) ? cfg.progname : "",
	        strncmp(msg, cfg.progname, strlen(cfg.progname)) ? ": " : "", msg);
	auth_secret_wipe(&secret);
	return config_exit_code(&cfg, kind);
}

/* command_dir - --command for MODE_DAEMON: the command runs in the
 * start-up directory, so that every relative word ("sh deliver.sh",
 * "./deliver -c conf", ">>err.log") means what it meant in the
 * foreground (issue 19 item 6) */
static int command_dir(char *err, size_t errlen)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd))) {
		snprintf(err, errlen, "--command: cannot tell the current directory for -d: %m");
		return -1;
	}
	return cmd_template_run_in(&command, cwd, err, errlen);
}

/* stdio_safe - descriptors 0-2 that are closed are opened on
 * /dev/null before anything else is opened: else the log file (or a
 * socket) would become stdout, and every reply of an --inetd session,
 * the client's words included, would be written into it */
static int stdio_safe(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
		    open("/dev/null", O_RDWR) != fd) /* the lowest free: fd */
			return -1;
	return 0;
}

/* set_hostname - --hostname, or the system's name held to the same
 * rule (it goes into every greeting and Received: too), or localhost */
static void set_hostname(void)
{
	if (cfg.hostname) {
		snprintf(srv.hostname, sizeof(srv.hostname), "%s", cfg.hostname);
	} else if (gethostname(srv.hostname, sizeof(srv.hostname) - 1) < 0 ||
	           !options_hostname_ok(srv.hostname)) {
		char esc[sizeof(srv.hostname) * 4];
		log_escape(esc, sizeof(esc), srv.hostname, strlen(srv.hostname));
		log_msg(LOG_WARNING, "event=hostname-invalid using=localhost name=\"%s\"", esc);
		snprintf(srv.hostname, sizeof(srv.hostname), "localhost");
	}
}

/* set_up_auth - the AUTH secret (--auth), or the users (--auth-file,
 * --auth-accept-any), and the brake; 0, or the exit code after one line */
static int set_up_auth(void)
{
	char err[512];
	if (cfg.auth_user) {
		if (secret_resolve(&secret, cfg.auth_user, cfg.auth_eval, err, sizeof(err)) < 0)
			return fail(EXIT_KIND_STARTUP, err);
		srv.auth = &secret;
	}
	if (cfg.auth_file || cfg.auth_accept_any) { /* auth.h: what each one means */
		int rc = auth_setup(&secret, cfg.auth_file, cfg.auth_accept_any, err, sizeof(err));
		if (rc < 0)
			return fail(EXIT_KIND_STARTUP, err);
		if (rc > 0 && !log_stderr_is_client())
			fprintf(stderr, "%s: %s\n", cfg.progname, err);
		if (rc > 0)
			log_msg(LOG_WARNING, "event=auth-file-warning text=\"%s\"", err);
		if (cfg.auth_accept_any)
			log_msg(LOG_WARNING, "event=auth-accept-any text=\"any user and password "
			                     "are accepted: for test suites only\"");
		srv.auth = &secret;
	}
	bool any_auth = srv.auth != NULL;
	/* the brake's state file is opened here, before --user, and kept */
	int brake = auth_brake_init(cfg.mode == MODE_INETD && any_auth ? cfg.auth_state : NULL, err,
	                            sizeof(err));
	if (brake < 0)
		return fail(EXIT_KIND_STARTUP, err);
	if (brake > 0)
		log_msg(LOG_NOTICE, "event=auth-brake-local reason=\"%s\"", err);
	return 0;
}

/* faults_file - the rules of --faults=FILE, one a line, '#' comments;
 * 0, or -1 with err (*usage: a bad rule, not a file that cannot be read) */
static int faults_file(char *err, size_t errlen, bool *usage)
{
	*usage = false;
	FILE *fp = fopen(cfg.faults_file, "re");
	if (!fp) {
		snprintf(err, errlen, "--faults=%s: %s", cfg.faults_file, strerror(errno));
		return -1;
	}
	char line[BOUND_FAULT_LINE + 2], why[400];
	for (unsigned n = 1; fgets(line, sizeof(line), fp); n++) {
		size_t len = strcspn(line, "\n");
		if (line[len] == '\0' && !feof(fp)) {
			snprintf(err, errlen, "--faults=%s line %u: longer than %d octets",
			         cfg.faults_file, n, BOUND_FAULT_LINE);
			break;
		}
		if (len > 0 && line[len - 1] == '\r') /* CRLF; a CR inside is the parser's */
			len--;
		line[len] = '\0';
		const char *p = line + strspn(line, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		if (faults_add(&faults, p, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "--faults=%s line %u: %s", cfg.faults_file, n, why);
			break;
		}
	}
	fclose(fp);
	*usage = true;
	return err[0] ? -1 : 0;
}

/* set_up_faults - the rules of --fault and --faults into srv, their
 * counters on a page shared by the daemon's sessions (under --inetd each
 * process counts for itself); 0, or the exit code after one line */
static int set_up_faults(void)
{
	char err[512] = "";
	if (!cfg.faults.n && !cfg.faults_file)
		return 0;
	unsigned long long seed = cfg.fault_seed;
	unsigned r = 0;
	if (!seed && getrandom(&r, sizeof(r), GRND_NONBLOCK) == sizeof(r))
		seed = r;
	if (!seed) /* 0 means "pick one": never the seed itself */
		seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	faults_init(&faults, seed);
	for (size_t i = 0; i < cfg.faults.n; i++)
		if (faults_add(&faults, cfg.faults.item[i], err, sizeof(err)) < 0)
			return fail(EXIT_KIND_USAGE, err); /* "fault rule '...': why" */
	bool usage;
	if (cfg.faults_file && faults_file(err, sizeof(err), &usage) < 0)
		return fail(usage ? EXIT_KIND_USAGE : EXIT_KIND_STARTUP, err);
	if (cfg.mode != MODE_INETD) {
		void *page = mmap(NULL, sizeof(struct fault_counters), PROT_READ | PROT_WRITE,
		                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED) {
			snprintf(err, sizeof(err), "cannot map the fault counters: %s",
			         strerror(errno));
			return fail(EXIT_KIND_STARTUP, err);
		}
		faults_share_counters(&faults, page);
	}
	log_msg(LOG_NOTICE, "event=faults rules=%zu seed=%llu counted=%s", faults.n, seed,
	        cfg.mode == MODE_INETD ? "per-session" : "daemon");
	srv.faults = &faults;
	return 0;
}

/* set_up - the delivery command, TLS, then AUTH, into srv; 0, or the
 * exit code after one line */
static int set_up(void)
{
	char err[512];
	if (!cfg.mailbox && !cfg.maildir) {
		if (cmd_template_parse(&command, cfg.command, err, sizeof(err)) < 0)
			return fail(EXIT_KIND_USAGE, err);
		if (cfg.mode == MODE_DAEMON && command_dir(err, sizeof(err)) < 0)
			return fail(EXIT_KIND_STARTUP, err);
		srv.command = &command;
	}
	if (cfg.tls_cert) {
		srv.tls = tls_server_new(cfg.tls_cert, cfg.tls_key, cfg.tls_ca, err, sizeof(err));
		if (!srv.tls)
			return fail(EXIT_KIND_STARTUP, err);
	}
	return set_up_auth();
}

/* check_files - the mailbox or Maildir and the spool directory, as the
 * user who will use them; 0, or the exit code after one line */
static int check_files(void)
{
	char err[512];
	if (cfg.mailbox && deliver_mbox_check(cfg.mailbox, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	if (cfg.maildir && deliver_maildir_check(cfg.maildir, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	if (spool_check(cfg.spool_dir, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	/* --queue: made and checked as the user who will own it (--user) */
	if (cfg.queue_dir && queue_run_check(cfg.queue_dir, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	return 0;
}

/* serve_inetd - one session on stdin/stdout, as --user if given */
static int serve_inetd(void)
{
	char err[512];
	/* --user once the key, certificate and secret are read (as the
	 * listener does after binding); the mailbox is checked as the user
	 * who will append to it */
	if (cfg.run_user && daemon_drop_privileges(cfg.run_user, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	int rc = check_files();
	if (rc)
		return rc;
	struct session_origin from;
	listener_origin(0, "inetd", cfg.tls_implicit, &from);
	listener_session_signals();
	/* a client gone mid-reply is an EPIPE, not a death (session.h) */
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
	return config_exit_code(&cfg, session_run(&srv, 0, 1, &from));
}

/* queue_command - --queue-list, --queue-flush, --queue-delete,
 * --queue-requeue and --queue-run: no daemon, no client; as --user when
 * given, so that what they make belongs to the queue's owner */
static int queue_command(void)
{
	char err[512];
	if (cfg.run_user && daemon_drop_privileges(cfg.run_user, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	if (!cfg.queue_run)
		return config_exit_code(&cfg, (enum exit_kind)queue_admin(&srv));
	int rc = check_files();
	if (rc)
		return rc;
	return config_exit_code(&cfg, (enum exit_kind)queue_run(&srv, true));
}

/* serve_listener - bind (dropping to --user), check, accept */
static int serve_listener(void)
{
	char err[512];
	if (listener_open(&srv, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	int rc = check_files();
	if (rc)
		return rc;
	/* msmtpd runs as whoever starts it, and so do we (a drop-in must not
	 * refuse a working setup); but a delivery command running as root
	 * is worth one line, and --user is the fix. */
	if (getuid() == 0 && !cfg.run_user && !cfg.mailbox && !cfg.maildir)
		fprintf(stderr,
		        "%s: warning: running as root: the delivery command will run as root; "
		        "use --user=USER (after binding port 25) or a service manager's user\n",
		        cfg.progname);
	return listener_run(&srv);
}

/* main - parse, set up each module in turn, then serve */
int main(int argc, char **argv)
{
	char err[512];
	if (stdio_safe() < 0)
		return 3; /* nowhere to say it */
	daemon_harden();  /* before the AUTH secret is read */
	/* A session's buffers (SMTP input, spool) come from the heap the
	 * daemon leaves it: with room at its top, and never trimmed, no
	 * forked session has to grow or shrink it with brk(). Untouched,
	 * the room costs no memory. */
	mallopt(M_TOP_PAD, 512 * 1024);
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
	switch (options_parse(&cfg, argc, argv, err, sizeof(err))) {
	case OPTIONS_EXIT:
		return 0;
	case OPTIONS_ERROR:
		return fail(EXIT_KIND_USAGE, err);
	case OPTIONS_RUN:
		break;
	}
	/* --auth-accept-any: every listener loopback or local, checked
	 * while systemd's sockets are still named in the environment */
	if (cfg.auth_accept_any && auth_accept_any_check(&cfg, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_USAGE, err);
	/* never inherited: a delivery command gets it from its session
	 * (cmd_template_env), and no other child sees a copy */
	unsetenv("SMTPIPE_AUTH_USER");
	/* before anything runs (passwordeval, the keyring helper): no
	 * child may inherit systemd's sockets or variables */
	listener_systemd_adopt();
	if (cfg.mode == MODE_DAEMON)
		options_absolute_paths(&cfg);
	/* the time zone once, here: every forked session inherits it
	 * instead of reading /etc/localtime for its first date */
	tzset();
	if (log_open(&cfg, err, sizeof(err)) < 0)
		return fail(EXIT_KIND_STARTUP, err);
	srv.cfg = &cfg;
	set_hostname();
	int rc = set_up_faults();
	bool admin = cfg.queue_list || cfg.queue_flush || cfg.queue_delete || cfg.queue_requeue;
	if (rc == 0 && admin)
		rc = queue_command();
	else if (rc == 0)
		rc = set_up();
	if (rc == 0 && !admin)
		rc = cfg.queue_run            ? queue_command()
		     : cfg.mode == MODE_INETD ? serve_inetd()
		                              : serve_listener();
	auth_secret_wipe(&secret);
	cmd_template_free(&command);
	if (srv.tls)
		tls_server_free(srv.tls);
	log_close();
	return rc;
}
