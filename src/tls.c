/*
 * tls.c - STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with GnuTLS
 *
 * The only file that includes GnuTLS. Priorities are the system's
 * default with SSL 3.0, TLS 1.0 and TLS 1.1 removed, so never weaker
 * than what the administrator configured. Credentials are loaded once
 * and reloaded on SIGHUP into new credentials that replace the old
 * only when they load; sessions run in forked children with their own
 * copy, so a reload never touches one. With -a CA a client certificate
 * is requested (not required) and its subject reported once verified.
 * GnuTLS does no I/O of its own: it calls push() and pull() below,
 * which try the descriptor without blocking and otherwise wait in
 * ppoll() until the deadline the caller gave for the whole operation
 * (handshake, read, write, close_notify), as Postfix's tls_bio_ops.c
 * waits for writability under the same timer as for reads. So a client
 * that stops reading cannot hold a session in send(), nor a ClientHello
 * sent a byte at a time stretch the handshake. Built without GnuTLS,
 * every entry point fails clearly.
 * An IP address sent as server name (SNI; RFC 6066 3 forbids it, some
 * clients send it anyway) is ignored and logged at debug. GnuTLS
 * itself refuses a name with a colon (an IPv6 address) while parsing
 * the ClientHello, before any hook could drop the name, so that
 * handshake still fails, with an error that says why. No GnuTLS API
 * gets around it (3.6.0 to 3.8.x): server_name is marked as one that
 * gnutls_session_ext_register() may not override, even with
 * GNUTLS_EXT_FLAG_OVERRIDE_INTERNAL (GNUTLS_E_ALREADY_REGISTERED); the
 * post-client-hello function runs after the parse; and the bytes the
 * hook below sees go into the transcript hash unchanged, so rewriting
 * them (there or in pull()) would break the handshake at Finished.
 * tests/integration/test_tls_sni.py has the sources.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#ifdef HAVE_GNUTLS
#include <arpa/inet.h>
#include <dlfcn.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/*
 * GnuTLS is loaded with dlopen() only when -c/-k are given: linked in,
 * its libraries doubled the mappings of the daemon, and every session
 * it forks pays for those at fork and at exit (bench/: a third fewer
 * sessions per second). The functions are called through this table;
 * the macros below keep the code reading as plain GnuTLS.
 */
#define GNUTLS_FUNCTIONS                                                                           \
	X(gnutls_alert_send_appropriate)                                                           \
	X(gnutls_bye)                                                                              \
	X(gnutls_certificate_allocate_credentials)                                                 \
	X(gnutls_certificate_free_credentials)                                                     \
	X(gnutls_certificate_get_peers)                                                            \
	X(gnutls_certificate_server_set_request)                                                   \
	X(gnutls_certificate_set_x509_key_file)                                                    \
	X(gnutls_certificate_set_x509_trust_file)                                                  \
	X(gnutls_certificate_verify_peers3)                                                        \
	X(gnutls_cipher_get)                                                                       \
	X(gnutls_cipher_get_name)                                                                  \
	X(gnutls_credentials_set)                                                                  \
	X(gnutls_deinit)                                                                           \
	X(gnutls_error_is_fatal)                                                                   \
	X(gnutls_ext_raw_parse)                                                                    \
	X(gnutls_handshake)                                                                        \
	X(gnutls_handshake_set_hook_function)                                                      \
	X(gnutls_handshake_set_timeout)                                                            \
	X(gnutls_init)                                                                             \
	X(gnutls_priority_deinit)                                                                  \
	X(gnutls_priority_init2)                                                                   \
	X(gnutls_priority_set)                                                                     \
	X(gnutls_protocol_get_name)                                                                \
	X(gnutls_protocol_get_version)                                                             \
	X(gnutls_record_check_pending)                                                             \
	X(gnutls_record_recv)                                                                      \
	X(gnutls_record_send)                                                                      \
	X(gnutls_session_get_ptr)                                                                  \
	X(gnutls_session_set_ptr)                                                                  \
	X(gnutls_strerror)                                                                         \
	X(gnutls_transport_set_ptr)                                                                \
	X(gnutls_transport_set_pull_function)                                                      \
	X(gnutls_transport_set_pull_timeout_function)                                              \
	X(gnutls_transport_set_push_function)                                                      \
	X(gnutls_x509_crt_deinit)                                                                  \
	X(gnutls_x509_crt_get_dn)                                                                  \
	X(gnutls_x509_crt_import)                                                                  \
	X(gnutls_x509_crt_init)

static struct {
#define X(f) __typeof__(f) *f;
	GNUTLS_FUNCTIONS
#undef X
} gt;

/* tls_load - dlopen GnuTLS once; -1 with err filled */
static int tls_load(char *err, size_t errlen)
{
	static void *lib;
	if (lib)
		return 0;
	void *h = dlopen(SMTPIPE_GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "TLS: cannot load %s: %s", SMTPIPE_GNUTLS_SONAME, dlerror());
		return -1;
	}
#define X(f)                                                                                       \
	if (!(*(void **)&gt.f = dlsym(h, #f))) {                                                   \
		snprintf(err, errlen, "TLS: %s lacks %s", SMTPIPE_GNUTLS_SONAME, #f);              \
		dlclose(h);                                                                        \
		return -1;                                                                         \
	}
	GNUTLS_FUNCTIONS
#undef X
	lib = h;
	return 0;
}

/* From here on, gnutls_x(...) calls through the table. */
#define gnutls_bye                              (*gt.gnutls_bye)
#define gnutls_certificate_allocate_credentials (*gt.gnutls_certificate_allocate_credentials)
#define gnutls_certificate_free_credentials     (*gt.gnutls_certificate_free_credentials)
#define gnutls_certificate_get_peers            (*gt.gnutls_certificate_get_peers)
#define gnutls_certificate_server_set_request   (*gt.gnutls_certificate_server_set_request)
#define gnutls_certificate_set_x509_key_file    (*gt.gnutls_certificate_set_x509_key_file)
#define gnutls_certificate_set_x509_trust_file  (*gt.gnutls_certificate_set_x509_trust_file)
#define gnutls_certificate_verify_peers3        (*gt.gnutls_certificate_verify_peers3)
#define gnutls_cipher_get                       (*gt.gnutls_cipher_get)
#define gnutls_cipher_get_name                  (*gt.gnutls_cipher_get_name)
#define gnutls_credentials_set                  (*gt.gnutls_credentials_set)
#define gnutls_deinit                           (*gt.gnutls_deinit)
#define gnutls_error_is_fatal                   (*gt.gnutls_error_is_fatal)
#define gnutls_ext_raw_parse                    (*gt.gnutls_ext_raw_parse)
#define gnutls_handshake                        (*gt.gnutls_handshake)
#define gnutls_handshake_set_hook_function      (*gt.gnutls_handshake_set_hook_function)
#define gnutls_handshake_set_timeout            (*gt.gnutls_handshake_set_timeout)
#define gnutls_init                             (*gt.gnutls_init)
#define gnutls_priority_deinit                  (*gt.gnutls_priority_deinit)
#define gnutls_priority_init2                   (*gt.gnutls_priority_init2)
#define gnutls_priority_set                     (*gt.gnutls_priority_set)
#define gnutls_protocol_get_name                (*gt.gnutls_protocol_get_name)
#define gnutls_protocol_get_version             (*gt.gnutls_protocol_get_version)
#define gnutls_record_check_pending             (*gt.gnutls_record_check_pending)
#define gnutls_record_recv                      (*gt.gnutls_record_recv)
#define gnutls_record_send                      (*gt.gnutls_record_send)
#define gnutls_session_get_ptr                  (*gt.gnutls_session_get_ptr)
#define gnutls_session_set_ptr                  (*gt.gnutls_session_set_ptr)
#define gnutls_strerror                         (*gt.gnutls_strerror)
#define gnutls_transport_set_ptr                (*gt.gnutls_transport_set_ptr)
#define gnutls_transport_set_pull_function      (*gt.gnutls_transport_set_pull_function)
#define gnutls_transport_set_push_function      (*gt.gnutls_transport_set_push_function)
#define gnutls_x509_crt_deinit                  (*gt.gnutls_x509_crt_deinit)
#define gnutls_x509_crt_get_dn                  (*gt.gnutls_x509_crt_get_dn)
#define gnutls_x509_crt_import                  (*gt.gnutls_x509_crt_import)
#define gnutls_x509_crt_init                    (*gt.gnutls_x509_crt_init)

/* Appended to the system default (GnuTLS's @SYSTEM, else NORMAL). */
#define TLS_PRIORITY_APPEND "-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:%SERVER_PRECEDENCE"

struct tls_server {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	char *cert, *key, *ca;
};

/* Room for a client certificate's subject in the log, escaped (a byte
 * may take four): longer ones are cut with "...". */
#define TLS_PEER_LOG 512

/* Room for the server name a client sent, escaped: an IPv6 address (45
 * characters at most) in full, a longer name cut with "...", so that
 * the error of a refused one still fits GnuTLS's text behind it. */
#define TLS_SNI_LOG 64

struct tls_conn {
	gnutls_session_t s;
	int fd_in, fd_out;
	bool in_pipe, out_pipe;   /* --inetd on pipes: read()/write(), not recv()/send() */
	struct timespec deadline; /* of the operation under way */
	const sigset_t *waitmask; /* signals let through while a read waits, or NULL */
	bool timed_out;           /* the deadline passed inside push() or pull() */
	char desc[128];
	char peer[TLS_PEER_LOG]; /* escaped subject, cut with "..." */
	bool has_peer;
	char sni[TLS_SNI_LOG]; /* the client's server name, escaped, cut with "..." */
	bool sni_ip;           /* ... and it is an IP address */
};

/* tls_available - built with GnuTLS */
bool tls_available(void)
{
	return true;
}

/* load - fresh credentials from the files; NULL with err on failure */
static gnutls_certificate_credentials_t load(const char *cert, const char *key, const char *ca,
                                             char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred;
	int rc = gnutls_certificate_allocate_credentials(&cred);
	if (rc < 0) {
		snprintf(err, errlen, "TLS: %s", gnutls_strerror(rc));
		return NULL;
	}
	rc = gnutls_certificate_set_x509_key_file(cred, cert, key, GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		snprintf(err, errlen, "TLS: cannot load certificate %s with key %s: %s", cert, key,
		         gnutls_strerror(rc));
		gnutls_certificate_free_credentials(cred);
		return NULL;
	}
	if (ca) {
		rc = gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			snprintf(err, errlen, "TLS: cannot load CA file %s: %s", ca,
			         rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
			gnutls_certificate_free_credentials(cred);
			return NULL;
		}
	}
	return cred;
}

/* tls_server_new - see tls.h */
struct tls_server *tls_server_new(const char *cert, const char *key, const char *ca, char *err,
                                  size_t errlen)
{
	if (tls_load(err, errlen) < 0)
		return NULL;
	struct tls_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "TLS: out of memory");
		return NULL;
	}
	const char *errpos = NULL;
	int rc = gnutls_priority_init2(&srv->prio, TLS_PRIORITY_APPEND, &errpos,
	                               GNUTLS_PRIORITY_INIT_DEF_APPEND);
	if (rc < 0) {
		snprintf(err, errlen, "TLS: bad priority string at '%s': %s", errpos ? errpos : "",
		         gnutls_strerror(rc));
		free(srv);
		return NULL;
	}
	srv->cred = load(cert, key, ca, err, errlen);
	srv->cert = strdup(cert);
	srv->key = strdup(key);
	srv->ca = ca ? strdup(ca) : NULL;
	if (!srv->cred || !srv->cert || !srv->key || (ca && !srv->ca)) {
		if (srv->cred && !srv->cert)
			snprintf(err, errlen, "TLS: out of memory");
		tls_server_free(srv);
		return NULL;
	}
	return srv;
}

/* tls_server_reload - see tls.h. After --user the files are read as
 * that user: a key only root may read then fails here, and the reason
 * (the errno of open(), clearer than GnuTLS's "Error while reading
 * file") goes into the one line, with what happens next: the
 * credentials loaded before stay in use. */
int tls_server_reload(struct tls_server *srv, char *err, size_t errlen)
{
	const char *files[] = {srv->cert, srv->key, srv->ca};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int fd = files[i] ? open(files[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
		if (files[i] && fd < 0) {
			snprintf(
			    err, errlen,
			    "TLS: cannot read %s as uid %ld: %s; keeping the certificate loaded "
			    "before",
			    files[i], (long)geteuid(), strerror(errno));
			return -1;
		}
		if (fd >= 0)
			close(fd);
	}
	gnutls_certificate_credentials_t cred = load(srv->cert, srv->key, srv->ca, err, errlen);
	if (!cred) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, "; keeping the certificate loaded before");
		return -1;
	}
	gnutls_certificate_free_credentials(srv->cred);
	srv->cred = cred;
	return 0;
}

/* tls_server_free - see tls.h */
void tls_server_free(struct tls_server *srv)
{
	if (!srv)
		return;
	if (srv->cred)
		gnutls_certificate_free_credentials(srv->cred);
	if (srv->prio)
		gnutls_priority_deinit(srv->prio);
	free(srv->cert);
	free(srv->key);
	free(srv->ca);
	free(srv);
}

/* check_client - the verified subject of a client certificate, if any */
static void check_client(struct tls_conn *c)
{
	unsigned status = 0, n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(c->s, &n);
	if (!certs || n == 0)
		return;
	if (gnutls_certificate_verify_peers3(c->s, NULL, &status) < 0 || status != 0) {
		snprintf(c->peer, sizeof(c->peer), "unverified");
		c->has_peer = true;
		return;
	}
	gnutls_x509_crt_t crt;
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	/* the subject is whatever the CA signed: any length (asked for
	 * first), any bytes; it reaches the log escaped like client text,
	 * cut with "..." when long, never dropped */
	size_t len = 0;
	char *dn = NULL;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn(crt, NULL, &len) == GNUTLS_E_SHORT_MEMORY_BUFFER &&
	    (dn = malloc(len + 1)) != NULL && gnutls_x509_crt_get_dn(crt, dn, &len) == 0) {
		log_escape(c->peer, sizeof(c->peer), dn, strnlen(dn, len));
		c->has_peer = true;
	} else {
		snprintf(c->peer, sizeof(c->peer), "unreadable");
		c->has_peer = true;
	}
	free(dn);
	gnutls_x509_crt_deinit(crt);
}

/* sni_name - RFC 6066 3: ServerNameList (uint16 length) of NameType
 * (uint8, 0 = host_name) and a uint16-long name; keep the host_name */
static int sni_name(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
	struct tls_conn *c = ctx;
	if (tls_id != 0 || size < 2)
		return 0;
	const unsigned char *p = data + 2, *end = data + size;
	while (end - p >= 3) {
		unsigned type = p[0], len = (unsigned)p[1] << 8 | p[2];
		p += 3;
		if ((size_t)(end - p) < len)
			return 0;
		if (type == 0 && len > 0) {
			char name[256], a[16];
			bool text = len < sizeof(name) && !memchr(p, '\0', len);
			if (text) {
				memcpy(name, p, len);
				name[len] = '\0';
			}
			c->sni_ip = text && (inet_pton(AF_INET, name, a) == 1 ||
			                     inet_pton(AF_INET6, name, a) == 1);
			log_escape(c->sni, sizeof(c->sni), (const char *)p, len);
			return 0;
		}
		p += len;
	}
	return 0;
}

/* client_hello - a hook that reads the ClientHello before GnuTLS
 * parses it (it changes nothing: the bytes are part of the transcript);
 * smtpipe has one certificate, so a server name has no use but the log */
static int client_hello(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
                        const gnutls_datum_t *msg)
{
	(void)when; /* GnuTLS's hook signature; the hook is set for GNUTLS_HOOK_PRE only */
	struct tls_conn *c = gnutls_session_get_ptr(s);
	if (!c || !incoming || htype != GNUTLS_HANDSHAKE_CLIENT_HELLO)
		return 0;
	c->sni[0] = '\0';
	c->sni_ip = false;
	/* a malformed hello is GnuTLS's to refuse, so the result is ignored;
	 * an ignored address is logged once the handshake has passed */
	gnutls_ext_raw_parse(c, sni_name, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
	return 0;
}

/* sni_refused - err for a server name GnuTLS refused: what the client
 * sent, why, what to do, and GnuTLS's own text (kept when the line
 * would be too long: the hint for msmtp goes first) */
static void sni_refused(const struct tls_conn *c, int rc, char *err, size_t errlen)
{
	const char *hint = " (msmtp: --tls-host-override=HOST)";
	for (int pass = 0; pass < 2; pass++, hint = "") {
		int n;
		if (c->sni_ip)
			n = snprintf(
			    err, errlen,
			    "the client sent the IP address %s as TLS server name (SNI), "
			    "which RFC 6066 forbids and GnuTLS refuses; give the client the "
			    "host name%s; GnuTLS: %s",
			    c->sni, hint, gnutls_strerror(rc));
		else
			n = snprintf(
			    err, errlen,
			    "the client sent the name %s as TLS server name (SNI), which "
			    "GnuTLS refuses (it takes letters, digits, '-' and '.'); GnuTLS: "
			    "%s",
			    c->sni, gnutls_strerror(rc));
		if (n >= 0 && (size_t)n < errlen)
			return;
	}
}

/* ms_left - milliseconds from now to the deadline, rounded up, >= 0 */
static long ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
	               (deadline->tv_nsec - now.tv_nsec);
	return ns <= 0 ? 0 : (long)((ns + 999999) / 1000000);
}

/* conn_wait - wait for events on fd until the deadline (and at most cap_ms
 * when cap_ms >= 0): 1 ready, 0 timed out, -1 with errno (EINTR) */
static int conn_wait(struct tls_conn *c, int fd, short events, const sigset_t *mask, long cap_ms)
{
	long ms = ms_left(&c->deadline);
	bool capped = cap_ms >= 0 && cap_ms < ms;
	if (capped)
		ms = cap_ms;
	struct pollfd p = {.fd = fd, .events = events};
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int n = ppoll(&p, 1, &ts, mask);
	if (n == 0 && !capped)
		c->timed_out = true;
	return n < 0 ? -1 : n > 0;
}

/* pull - GnuTLS's read: what the descriptor has, else wait for it */
static ssize_t pull(gnutls_transport_ptr_t ptr, void *buf, size_t n)
{
	struct tls_conn *c = ptr;
	for (;;) {
		if (!c->in_pipe) {
			ssize_t r = recv(c->fd_in, buf, n, MSG_DONTWAIT);
			if (r >= 0)
				return r;
			if (errno == ENOTSOCK) {
				c->in_pipe = true;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -1;
		}
		int w = conn_wait(c, c->fd_in, POLLIN, c->waitmask, -1);
		if (w < 0)
			return -1; /* EINTR: GNUTLS_E_INTERRUPTED, the session looks at SIGTERM */
		if (w == 0) {
			/* EAGAIN, not a fatal error: GnuTLS keeps the session
			 * valid, so the 421 can still be sent */
			errno = EAGAIN;
			return -1;
		}
		if (c->in_pipe)
			return read(c->fd_in, buf, n);
	}
}

/* pull_timeout - whether input arrives within ms (GNUTLS_INDEFINITE_TIMEOUT:
 * up to the deadline); >0 yes, 0 no, -1 error */
static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct tls_conn *c = ptr;
	long cap = ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (long)ms;
	return conn_wait(c, c->fd_in, POLLIN, c->waitmask, cap);
}

/* push - GnuTLS's write: what the descriptor takes, else wait for room
 * until the deadline (signals do not cut a write short; its deadline does) */
static ssize_t push(gnutls_transport_ptr_t ptr, const void *buf, size_t n)
{
	struct tls_conn *c = ptr;
	for (;;) {
		if (!c->out_pipe) {
			ssize_t w = send(c->fd_out, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w >= 0)
				return w;
			if (errno == ENOTSOCK) {
				c->out_pipe = true;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -1;
		}
		int r = conn_wait(c, c->fd_out, POLLOUT, NULL, -1);
		if (r == 0) {
			errno = EAGAIN; /* c->timed_out tells it from a real EAGAIN */
			return -1;
		}
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0 && c->out_pipe) {
			/* at most PIPE_BUF: a pipe with room takes it without blocking */
			ssize_t w = write(c->fd_out, buf, n < PIPE_BUF ? n : PIPE_BUF);
			if (w >= 0 || (errno != EAGAIN && errno != EINTR))
				return w;
		}
	}
}

/* tls_conn_handshake - see tls.h */
struct tls_conn *tls_conn_handshake(struct tls_server *srv, int fd_in, int fd_out,
                                    const struct timespec *deadline, char *err, size_t errlen)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	int rc = c ? gnutls_init(&c->s, GNUTLS_SERVER) : GNUTLS_E_MEMORY_ERROR;
	if (rc < 0) {
		snprintf(err, errlen, "%s", gnutls_strerror(rc));
		free(c);
		return NULL;
	}
	c->fd_in = fd_in;
	c->fd_out = fd_out;
	c->deadline = *deadline;
	gnutls_priority_set(c->s, srv->prio);
	gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, srv->cred);
	if (srv->ca)
		gnutls_certificate_server_set_request(c->s, GNUTLS_CERT_REQUEST);
	gnutls_transport_set_ptr(c->s, c);
	gnutls_transport_set_push_function(c->s, push);
	gnutls_transport_set_pull_function(c->s, pull);
	/* through the table: a macro this long would realign all those above */
	gt.gnutls_transport_set_pull_timeout_function(c->s, pull_timeout);
	gnutls_session_set_ptr(c->s, c);
	gnutls_handshake_set_hook_function(c->s, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
	                                   client_hello);
	/* no timer of GnuTLS's own: the deadline covers the whole handshake */
	gnutls_handshake_set_timeout(c->s, 0);
	do
		rc = gnutls_handshake(c->s);
	while (rc < 0 && !gnutls_error_is_fatal(rc) && !c->timed_out && ms_left(deadline) > 0);
	if (rc < 0) {
		bool late = c->timed_out || rc == GNUTLS_E_TIMEDOUT || ms_left(deadline) == 0;
		if (!late && rc == GNUTLS_E_RECEIVED_DISALLOWED_NAME && c->sni[0])
			sni_refused(c, rc, err, errlen);
		else
			snprintf(err, errlen, "%s",
			         late ? "handshake timed out" : gnutls_strerror(rc));
		/* tell the client why (RFC 8446 6), within what is left of the deadline */
		if (!late)
			gt.gnutls_alert_send_appropriate(c->s, rc);
		gnutls_deinit(c->s);
		free(c);
		return NULL;
	}
	if (c->sni_ip)
		log_msg(LOG_DEBUG, "event=tls-sni-ignored name=\"%s\" reason=ip-address", c->sni);
	const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(c->s));
	const char *ci = gnutls_cipher_get_name(gnutls_cipher_get(c->s));
	snprintf(c->desc, sizeof(c->desc), "version=%s cipher=%s", v ? v : "?", ci ? ci : "?");
	if (srv->ca)
		check_client(c);
	return c;
}

/* tls_conn_read - see tls.h */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t n, const struct timespec *deadline,
                      const sigset_t *waitmask)
{
	c->deadline = *deadline;
	c->waitmask = waitmask;
	c->timed_out = false;
	ssize_t r = gnutls_record_recv(c->s, buf, n);
	c->waitmask = NULL;
	if (r >= 0)
		return r;
	if (r == GNUTLS_E_PREMATURE_TERMINATION)
		return 0; /* the peer went away without close_notify */
	errno = c->timed_out || r == GNUTLS_E_TIMEDOUT ? ETIMEDOUT
	        : r == GNUTLS_E_INTERRUPTED            ? EINTR
	        : r == GNUTLS_E_AGAIN                  ? EAGAIN
	                                               : EIO;
	return -1;
}

/* tls_conn_write - see tls.h */
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t n,
                       const struct timespec *deadline)
{
	const char *p = buf;
	size_t left = n;
	c->deadline = *deadline;
	c->timed_out = false;
	while (left > 0) {
		ssize_t w = gnutls_record_send(c->s, p, left);
		if ((w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) && ms_left(deadline) > 0)
			continue;
		if (w < 0) {
			errno = c->timed_out || w == GNUTLS_E_AGAIN ? ETIMEDOUT : EIO;
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	return (ssize_t)n;
}

/* tls_conn_pending - see tls.h */
size_t tls_conn_pending(struct tls_conn *c)
{
	return gnutls_record_check_pending(c->s);
}

/* tls_conn_describe - see tls.h */
const char *tls_conn_describe(struct tls_conn *c)
{
	return c->desc;
}

/* tls_conn_peer - see tls.h */
const char *tls_conn_peer(struct tls_conn *c)
{
	return c->has_peer ? c->peer : NULL;
}

/* tls_conn_close - see tls.h */
void tls_conn_close(struct tls_conn *c, const struct timespec *deadline)
{
	if (!c)
		return;
	c->deadline = *deadline; /* push() gives up there: bye never blocks */
	c->waitmask = NULL;
	gnutls_bye(c->s, GNUTLS_SHUT_WR);
	gnutls_deinit(c->s);
	free(c);
}

#else /* no GnuTLS */

/* The stubs take the real functions' parameters and use none of them. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define NO_TLS "this build of smtpipe has no TLS support (GnuTLS was not found)"

bool tls_available(void)
{
	return false;
}

struct tls_server *tls_server_new(const char *cert, const char *key, const char *ca, char *err,
                                  size_t errlen)
{
	snprintf(err, errlen, NO_TLS);
	return NULL;
}

int tls_server_reload(struct tls_server *srv, char *err, size_t errlen)
{
	snprintf(err, errlen, NO_TLS);
	return -1;
}

void tls_server_free(struct tls_server *srv)
{
}

struct tls_conn *tls_conn_handshake(struct tls_server *srv, int fd_in, int fd_out,
                                    const struct timespec *deadline, char *err, size_t errlen)
{
	snprintf(err, errlen, NO_TLS);
	return NULL;
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t n, const struct timespec *deadline,
                      const sigset_t *waitmask)
{
	errno = EIO;
	return -1;
}

ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t n,
                       const struct timespec *deadline)
{
	errno = EIO;
	return -1;
}

size_t tls_conn_pending(struct tls_conn *c)
{
	return 0;
}

const char *tls_conn_describe(struct tls_conn *c)
{
	return "";
}

const char *tls_conn_peer(struct tls_conn *c)
{
	return NULL;
}

void tls_conn_close(struct tls_conn *c, const struct timespec *deadline)
{
}
#endif
