/* SPDX-License-Identifier: MIT */
/* ssh: SSH to pods with libssh2 1.10; see ssh.h. */
#include "auto-config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "providers/ssh/ssh.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* Method preferences: only what 1.10 implements and we accept. */
#define PREF_KEX "curve25519-sha256,curve25519-sha256@libssh.org," \
	"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521," \
	"diffie-hellman-group-exchange-sha256," \
	"diffie-hellman-group16-sha512,diffie-hellman-group18-sha512," \
	"diffie-hellman-group14-sha256"
#define PREF_HOSTKEY "ssh-ed25519,ecdsa-sha2-nistp256," \
	"ecdsa-sha2-nistp384,ecdsa-sha2-nistp521"
#define PREF_CRYPT "aes128-ctr,aes192-ctr,aes256-ctr"
#define PREF_MAC "hmac-sha2-256,hmac-sha2-512"

#define READ_CHUNK 32768
#define READS_PER_TURN 16	/* per stream, before the deadline check */
#define FP_MAX 64		/* "SHA256:" + 43 + NUL fits */

struct ssh_session {
	LIBSSH2_SESSION *ls;
	LIBSSH2_SFTP *sftp;	/* ssh_session_sftp(): NULL until used */
	int fd;
	bool ready;		/* handshake done: disconnect on close */
	bool broken;
	char *fingerprint;
	char *where;		/* "host:port" for messages */
};

/* ---- errors ------------------------------------------------------------ */

void
ssh_error_clear(struct ssh_error *e)
{
	if (e == NULL)
		return;
	free(e->message);
	e->message = NULL;
	e->kind = SSH_OK;
}

const char *
ssh_error_kind_name(int kind)
{
	switch (kind) {
	case SSH_OK:		return "ok";
	case SSH_ERR_CONNECT:	return "connect";
	case SSH_ERR_HANDSHAKE:	return "handshake";
	case SSH_ERR_HOSTKEY:	return "hostkey";
	case SSH_ERR_AUTH:	return "auth";
	case SSH_ERR_CHANNEL:	return "channel";
	case SSH_ERR_TIMEOUT:	return "timeout";
	case SSH_ERR_PROTOCOL:	return "protocol";
	}
	return "unknown";
}

void
ssh_error_set(struct ssh_error *e, int kind, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = SB_INIT;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	ssh_error_clear(e);
	e->kind = kind;
	e->message = sb_take(&sb);
}

/* libssh2's text for the session's last error (owned by libssh2). */
static const char *
lib_error(LIBSSH2_SESSION *ls)
{
	char *msg = NULL;

	libssh2_session_last_error(ls, &msg, NULL, 0);
	return msg != NULL && msg[0] != '\0' ? msg : "unknown error";
}

/* ---- global state ------------------------------------------------------- */

static pthread_once_t ssh_once = PTHREAD_ONCE_INIT;
static int ssh_init_rc = -1;

static void
ssh_init_once(void)
{
	ssh_init_rc = libssh2_init(0) == 0 ? 0 : -1;
}

int
ssh_global_init(void)
{
	pthread_once(&ssh_once, ssh_init_once);
	return ssh_init_rc;
}

void
ssh_global_cleanup(void)
{
	if (ssh_init_rc == 0)
		libssh2_exit();
}

static long
target_timeout(const struct ssh_target *t)
{
	return t->timeout_ms > 0 ? t->timeout_ms : SSH_TIMEOUT_DEFAULT_MS;
}

static int
target_port(const struct ssh_target *t)
{
	return t->port > 0 ? t->port : 22;
}

/*
 * Wait until fd is ready in the directions dir (LIBSSH2_SESSION_BLOCK_*;
 * 0 means either) or the deadline passes.  0 when ready, -1 on timeout.
 */
static int
wait_fd(int fd, int dir, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	pfd.fd = fd;
	pfd.events = 0;
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		pfd.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pfd.events |= POLLOUT;
	if (pfd.events == 0)
		pfd.events = POLLIN | POLLOUT;
	for (;;) {
		left = deadline - clock_mono_ms();
		if (left <= 0)
			return -1;
		n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return 0;	/* the next libssh2 call reports it */
	}
}

/* Wait for what the session last blocked on.  0, or -1 on timeout. */
static int
wait_session(struct ssh_session *s, int64_t deadline)
{
	return wait_fd(s->fd, libssh2_session_block_directions(s->ls),
	    deadline);
}

/* ---- fingerprints ------------------------------------------------------- */

/* "SHA256:" + unpadded base64 of the 32 bytes md, into out (FP_MAX). */
static void
fp_format(const unsigned char *md, char *out)
{
	unsigned char b64[64];
	int n;

	n = EVP_EncodeBlock(b64, md, 32);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, FP_MAX, "SHA256:%.*s", n, (const char *)b64);
}

/* The fingerprint of a key blob given in base64 (a known_hosts entry). */
static void
fp_of_base64_blob(const char *b64, char *out)
{
	unsigned char md[32];
	unsigned char *blob;
	size_t len = strlen(b64);
	int n;

	snprintf(out, FP_MAX, "(unreadable entry)");
	blob = xmalloc(len + 3);
	n = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)len);
	if (n >= 0) {
		/* EVP_DecodeBlock counts the bytes of the '=' padding. */
		if (len > 0 && b64[len - 1] == '=')
			n--;
		if (len > 1 && b64[len - 2] == '=')
			n--;
		if (EVP_Digest(blob, (size_t)n, md, NULL, EVP_sha256(), NULL))
			fp_format(md, out);
	}
	free(blob);
}

/* Constant-time comparison of two fingerprints (lengths are public). */
static bool
fp_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- TCP ---------------------------------------------------------------- */

/* Connect one address before the deadline.  The socket, or -1 (errno). */
static int
tcp_connect_one(const struct addrinfo *ai, int64_t deadline)
{
	int fd, err = 0, one = 1;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		if (wait_fd(fd, LIBSSH2_SESSION_BLOCK_OUTBOUND,
		    deadline) != 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* A connected non-blocking socket to host:port, or -1 with *e. */
static int
tcp_connect(const char *host, int port, int64_t deadline, struct ssh_error *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	char service[16];
	int fd = -1, rc, err = ETIMEDOUT;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
		ssh_error_set(e, SSH_ERR_CONNECT, "cannot resolve %s: %s", host,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		if (clock_mono_ms() >= deadline)
			break;
		if ((fd = tcp_connect_one(ai, deadline)) < 0)
			err = errno;
	}
	freeaddrinfo(res);
	if (fd < 0)
		ssh_error_set(e, SSH_ERR_CONNECT, "connect to %s:%d: %s", host,
		    port, err == ETIMEDOUT ? "timed out" : strerror(err));
	return fd;
}

/* ---- sessions ------------------------------------------------------------ */

/* Host key types: libssh2's, known_hosts', and the algorithm we accept
 * (NULL: never negotiated, see PREF_HOSTKEY). */
static const struct {
	int hostkey;		/* LIBSSH2_HOSTKEY_TYPE_* */
	int known;		/* LIBSSH2_KNOWNHOST_KEY_* */
	const char *alg;
} key_types[] = {
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519,
	    "ssh-ed25519" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
	    "ecdsa-sha2-nistp256" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
	    "ecdsa-sha2-nistp384" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
	    "ecdsa-sha2-nistp521" },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, NULL },
	{ LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, NULL },
};
#define NKEY_TYPES (sizeof(key_types) / sizeof(key_types[0]))

/* The known_hosts key-type bit for a libssh2 host key type (0: none). */
static int
knownhost_type(int hostkey_type)
{
	size_t i;

	for (i = 0; i < NKEY_TYPES; i++)
		if (key_types[i].hostkey == hostkey_type)
			return key_types[i].known;
	return 0;
}

/* The host-key algorithm for a known_hosts type bit we accept, or NULL. */
static const char *
knownhost_alg(int typemask)
{
	size_t i;

	for (i = 0; i < NKEY_TYPES; i++)
		if (key_types[i].known == (typemask &
		    LIBSSH2_KNOWNHOST_KEY_MASK))
			return key_types[i].alg;
	return NULL;
}

/*
 * The host-key algorithms of the plain known_hosts entries for host:port
 * (as curl does: negotiating a type the file does not list could only
 * fail), comma-separated; caller frees.  NULL when there are none.
 */
static char *
knownhost_prefs(LIBSSH2_KNOWNHOSTS *kh, const char *host, int port)
{
	struct libssh2_knownhost *k = NULL, *prev = NULL;
	struct strbuf sb = SB_INIT;
	char *bracketed = xasprintf("[%s]:%d", host, port);
	const char *alg;

	while (libssh2_knownhost_get(kh, &k, prev) == 0) {
		prev = k;
		if (k->name == NULL || (strcmp(k->name, bracketed) != 0 &&
		    strcmp(k->name, host) != 0))
			continue;
		if ((alg = knownhost_alg(k->typemask)) == NULL ||
		    strstr(sb_str(&sb), alg) != NULL)
			continue;
		sb_addf(&sb, "%s%s", sb.len > 0 ? "," : "", alg);
	}
	free(bracketed);
	if (sb.len == 0) {
		sb_free(&sb);
		return NULL;
	}
	return sb_take(&sb);
}

/* Restrict the algorithms before the handshake.  0, or -1 with *e. */
static int
set_prefs(LIBSSH2_SESSION *ls, const char *hostkeys, struct ssh_error *e)
{
	static const struct {
		int type;
		const char *prefs;
	} prefs[] = {
		{ LIBSSH2_METHOD_KEX, PREF_KEX },
		{ LIBSSH2_METHOD_CRYPT_CS, PREF_CRYPT },
		{ LIBSSH2_METHOD_CRYPT_SC, PREF_CRYPT },
		{ LIBSSH2_METHOD_MAC_CS, PREF_MAC },
		{ LIBSSH2_METHOD_MAC_SC, PREF_MAC },
	};
	size_t i;

	for (i = 0; i < sizeof(prefs) / sizeof(prefs[0]); i++) {
		if (libssh2_session_method_pref(ls, prefs[i].type,
		    prefs[i].prefs) != 0)
			goto fail;
	}
	if (libssh2_session_method_pref(ls, LIBSSH2_METHOD_HOSTKEY,
	    hostkeys != NULL ? hostkeys : PREF_HOSTKEY) != 0)
		goto fail;
	return 0;
fail:
	ssh_error_set(e, SSH_ERR_PROTOCOL, "setting algorithm preferences: %s",
	    lib_error(ls));
	return -1;
}

/* Read t->known_hosts into a new collection, or -1 with *e. */
static int
known_hosts_load(LIBSSH2_SESSION *ls, const char *path,
    LIBSSH2_KNOWNHOSTS **out, struct ssh_error *e)
{
	LIBSSH2_KNOWNHOSTS *kh;

	*out = NULL;
	if ((kh = libssh2_knownhost_init(ls)) == NULL) {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "libssh2_knownhost_init failed");
		return -1;
	}
	if (libssh2_knownhost_readfile(kh, path,
	    LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		ssh_error_set(e, SSH_ERR_HOSTKEY,
		    "cannot read known_hosts file %s: %s", path, lib_error(ls));
		libssh2_knownhost_free(kh);
		return -1;
	}
	*out = kh;
	return 0;
}

/* Check the presented key against kh (loaded from path).  0, or -1. */
static int
known_hosts_check(struct ssh_session *s, LIBSSH2_KNOWNHOSTS *kh,
    const char *path, const char *host, int port, struct ssh_error *e)
{
	struct libssh2_knownhost *entry = NULL;
	const char *key;
	char expected[FP_MAX];
	size_t len;
	int type, rc;

	key = libssh2_session_hostkey(s->ls, &len, &type);
	if (key == NULL || knownhost_type(type) == 0) {
		ssh_error_set(e, SSH_ERR_HOSTKEY,
		    "%s presented no usable host key", s->where);
		return -1;
	}
	rc = libssh2_knownhost_checkp(kh, host, port, key, len,
	    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	    knownhost_type(type), &entry);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		return 0;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		if (entry != NULL && entry->key != NULL)
			fp_of_base64_blob(entry->key, expected);
		else
			snprintf(expected, sizeof(expected), "(unknown)");
		ssh_error_set(e, SSH_ERR_HOSTKEY, "host key of %s does not "
		    "match known_hosts %s: expected %s, got %s", s->where, path,
		    expected, s->fingerprint);
		return -1;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		ssh_error_set(e, SSH_ERR_HOSTKEY, "host key of %s is not in "
		    "known_hosts %s: expected an entry for [%s]:%d, got %s",
		    s->where, path, host, port, s->fingerprint);
		return -1;
	}
	ssh_error_set(e, SSH_ERR_HOSTKEY, "checking the host key of %s "
	    "against %s failed: %s", s->where, path, lib_error(s->ls));
	return -1;
}

/* Fingerprint the host key, then check the pin and known_hosts. */
static int
check_hostkey(struct ssh_session *s, const struct ssh_target *t,
    LIBSSH2_KNOWNHOSTS *kh, struct ssh_error *e)
{
	const unsigned char *md;
	char fp[FP_MAX];

	md = (const unsigned char *)libssh2_hostkey_hash(s->ls,
	    LIBSSH2_HOSTKEY_HASH_SHA256);
	if (md == NULL) {
		ssh_error_set(e, SSH_ERR_HOSTKEY, "%s: no host key hash: %s",
		    s->where, lib_error(s->ls));
		return -1;
	}
	fp_format(md, fp);
	s->fingerprint = xstrdup(fp);
	if (t->pinned_fp != NULL && !fp_equal(t->pinned_fp, fp)) {
		ssh_error_set(e, SSH_ERR_HOSTKEY, "host key of %s changed: "
		    "expected %s, got %s", s->where, t->pinned_fp, fp);
		return -1;
	}
	if (kh != NULL)
		return known_hosts_check(s, kh, t->known_hosts, t->host,
		    target_port(t), e);
	return 0;
}

/* Public-key authentication, non-blocking, before the deadline. */
static int
authenticate(struct ssh_session *s, const struct ssh_target *t,
    int64_t deadline, struct ssh_error *e)
{
	char *pub = NULL;
	const char *pubp = t->pub_file;
	int rc;

	if (pubp == NULL) {
		pub = xasprintf("%s.pub", t->key_file);
		pubp = access(pub, R_OK) == 0 ? pub : NULL;
	}
	while ((rc = libssh2_userauth_publickey_fromfile_ex(s->ls, t->user,
	    (unsigned int)strlen(t->user), pubp, t->key_file, NULL)) ==
	    LIBSSH2_ERROR_EAGAIN) {
		if (wait_session(s, deadline) != 0)
			break;
	}
	free(pub);
	switch (rc) {
	case 0:
		return 0;
	case LIBSSH2_ERROR_EAGAIN:
		ssh_error_set(e, SSH_ERR_TIMEOUT,
		    "%s: authentication timed out", s->where);
		break;
	case LIBSSH2_ERROR_FILE:
		/* libssh2's text may quote the file: keep it out. */
		ssh_error_set(e, SSH_ERR_AUTH, "%s: cannot use the key file %s "
		    "(unreadable, encrypted, or not ed25519/ECDSA)", s->where,
		    t->key_file);
		break;
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
		ssh_error_set(e, SSH_ERR_AUTH, "%s: public key of %s "
		    "refused for user %s", s->where, t->key_file, t->user);
		break;
	default:
		ssh_error_set(e, SSH_ERR_PROTOCOL, "%s: authentication "
		    "failed: %s", s->where, lib_error(s->ls));
		break;
	}
	s->broken = true;
	return -1;
}

/* The key exchange, non-blocking, before the deadline. */
static int
handshake(struct ssh_session *s, int64_t deadline, struct ssh_error *e)
{
	int rc;

	while ((rc = libssh2_session_handshake(s->ls, s->fd)) ==
	    LIBSSH2_ERROR_EAGAIN) {
		if (wait_session(s, deadline) != 0) {
			ssh_error_set(e, SSH_ERR_TIMEOUT,
			    "%s: SSH handshake timed out", s->where);
			s->broken = true;
			return -1;
		}
	}
	if (rc != 0) {
		ssh_error_set(e, SSH_ERR_HANDSHAKE,
		    "%s: SSH handshake failed: %s", s->where, lib_error(s->ls));
		s->broken = true;
		return -1;
	}
	s->ready = true;
	return 0;
}

void
ssh_session_close(struct ssh_session *s)
{
	if (s == NULL)
		return;
	if (s->ls != NULL) {
		/* Blocking and bounded: libssh2_session_free may have channels
		 * to close.  A broken session is shut down first, so nothing
		 * waits on a peer that will not answer. */
		libssh2_session_set_blocking(s->ls, 1);
		libssh2_session_set_timeout(s->ls, SSH_CLOSE_TIMEOUT_MS);
		if (s->broken && s->fd >= 0)
			shutdown(s->fd, SHUT_RDWR);
		/* libssh2_session_free would free the channel, not the rest
		 * of the SFTP state. */
		if (s->sftp != NULL)
			libssh2_sftp_shutdown(s->sftp);
		if (!s->broken && s->ready)
			libssh2_session_disconnect(s->ls, "closing");
		libssh2_session_free(s->ls);
	}
	if (s->fd >= 0)
		close(s->fd);
	free(s->fingerprint);
	free(s->where);
	free(s);
}

int
ssh_session_open(const struct ssh_target *t, struct ssh_session **out,
    char **fingerprint_out, struct ssh_error *e)
{
	struct ssh_session *s = NULL;
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	char *hostkeys = NULL;
	int64_t deadline = clock_mono_ms() + target_timeout(t);
	int port = target_port(t), rc = -1;

	ssh_error_clear(e);
	*out = NULL;
	if (fingerprint_out != NULL)
		*fingerprint_out = NULL;
	if (t->host == NULL || t->user == NULL || t->key_file == NULL ||
	    port > 65535) {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "ssh target needs host, port, user and key_file");
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	s->fd = -1;
	s->where = xasprintf("%s:%d", t->host, port);
	if ((s->ls = libssh2_session_init()) == NULL) {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "libssh2_session_init failed");
		goto cleanup;
	}
	libssh2_session_set_blocking(s->ls, 0);
	libssh2_session_set_timeout(s->ls, target_timeout(t));
	if (t->known_hosts != NULL) {
		if (known_hosts_load(s->ls, t->known_hosts, &kh, e) != 0)
			goto cleanup;
		hostkeys = knownhost_prefs(kh, t->host, port);
	}
	if (set_prefs(s->ls, hostkeys, e) != 0)
		goto cleanup;
	if ((s->fd = tcp_connect(t->host, port, deadline, e)) < 0)
		goto cleanup;
	if (handshake(s, deadline, e) != 0 ||
	    check_hostkey(s, t, kh, e) != 0 ||
	    authenticate(s, t, deadline, e) != 0)
		goto cleanup;
	log_kv(LOG_DEBUG, "ssh_open", "ssh session open", "where", s->where,
	    "user", t->user, "host_fp", s->fingerprint, NULL);
	if (fingerprint_out != NULL)
		*fingerprint_out = xstrdup(s->fingerprint);
	*out = s;
	s = NULL;
	rc = 0;
cleanup:
	if (kh != NULL)
		libssh2_knownhost_free(kh);
	free(hostkeys);
	ssh_session_close(s);
	return rc;
}

int
ssh_probe(const struct ssh_target *t, char **fingerprint_out,
    struct ssh_error *e)
{
	struct ssh_session *s;

	if (ssh_session_open(t, &s, fingerprint_out, e) != 0)
		return -1;
	ssh_session_close(s);
	return 0;
}

const char *
ssh_session_fingerprint(const struct ssh_session *s)
{
	return s->fingerprint;
}

bool
ssh_session_broken(const struct ssh_session *s)
{
	return s->broken;
}

LIBSSH2_SESSION *
ssh_session_handle(struct ssh_session *s, int *sock)
{
	if (sock != NULL)
		*sock = s->fd;
	return s->ls;
}

int
ssh_session_wait(struct ssh_session *s, long long deadline_ms)
{
	return wait_session(s, (int64_t)deadline_ms);
}

void
ssh_session_mark_broken(struct ssh_session *s)
{
	s->broken = true;
}

int
ssh_session_sftp(struct ssh_session *s, long long deadline_ms,
    LIBSSH2_SFTP **out, struct ssh_error *e)
{
	*out = NULL;
	if (s->broken) {
		ssh_error_set(e, SSH_ERR_CHANNEL, "%s: the session is broken",
		    s->where);
		return -1;
	}
	while (s->sftp == NULL &&
	    (s->sftp = libssh2_sftp_init(s->ls)) == NULL) {
		if (libssh2_session_last_errno(s->ls) != LIBSSH2_ERROR_EAGAIN) {
			/* libssh2 1.10 reports a lost connection and a
			 * refused subsystem alike: assume the worse. */
			ssh_error_set(e, SSH_ERR_CHANNEL, "%s: cannot start "
			    "SFTP: %s", s->where, lib_error(s->ls));
			s->broken = true;
			return -1;
		}
		if (wait_session(s, (int64_t)deadline_ms) != 0) {
			ssh_error_set(e, SSH_ERR_TIMEOUT, "%s: starting SFTP "
			    "timed out", s->where);
			s->broken = true;
			return -1;
		}
	}
	*out = s->sftp;
	return 0;
}

/* ---- exec ---------------------------------------------------------------- */

void
ssh_exec_result_clear(struct ssh_exec_result *r)
{
	if (r == NULL)
		return;
	free(r->output);
	free(r->exit_signal);
	memset(r, 0, sizeof(*r));
	r->exit_status = -1;
}

/* Open a session channel and start cmd on it.  NULL with *e on failure. */
static LIBSSH2_CHANNEL *
exec_start(struct ssh_session *s, const char *cmd, int64_t deadline,
    struct ssh_error *e)
{
	LIBSSH2_CHANNEL *ch;
	int rc;

	while ((ch = libssh2_channel_open_session(s->ls)) == NULL) {
		rc = libssh2_session_last_errno(s->ls);
		if (rc != LIBSSH2_ERROR_EAGAIN) {
			ssh_error_set(e, SSH_ERR_CHANNEL, "%s: cannot "
			    "open a channel: %s", s->where, lib_error(s->ls));
			/* A refusal (MaxSessions) leaves the session usable. */
			if (rc != LIBSSH2_ERROR_CHANNEL_FAILURE)
				s->broken = true;
			return NULL;
		}
		if (wait_session(s, deadline) != 0)
			goto timeout;
	}
	while ((rc = libssh2_channel_exec(ch, cmd)) == LIBSSH2_ERROR_EAGAIN) {
		if (wait_session(s, deadline) != 0)
			goto timeout;
	}
	if (rc != 0) {
		ssh_error_set(e, SSH_ERR_CHANNEL, "%s: exec refused: %s",
		    s->where, lib_error(s->ls));
		s->broken = true;	/* the session frees the channel */
		return NULL;
	}
	return ch;
timeout:
	ssh_error_set(e, SSH_ERR_TIMEOUT, "%s: starting the command timed out",
	    s->where);
	s->broken = true;
	return NULL;
}

/* Keep n bytes of buf in out up to max bytes in all; count the rest. */
static void
exec_keep(struct strbuf *out, size_t max, const char *buf, size_t n,
    struct ssh_exec_result *r)
{
	size_t room = max > out->len ? max - out->len : 0;

	sb_addn(out, buf, n < room ? n : room);
	r->output_total += n;
}

/*
 * Read stdout (stream 0) and stderr (stream 1) in one loop until the
 * channel's EOF, so neither window fills while we wait on the other.
 */
static int
exec_read(struct ssh_session *s, LIBSSH2_CHANNEL *ch, size_t max,
    int64_t deadline, struct strbuf *out, struct ssh_exec_result *r,
    struct ssh_error *e)
{
	char *buf = xmalloc(READ_CHUNK);
	ssize_t n;
	bool progress;
	int stream, i, rc = -1;

	for (;;) {
		progress = false;
		for (stream = 0; stream < 2; stream++) {
			for (i = 0; i < READS_PER_TURN; i++) {
				n = libssh2_channel_read_ex(ch, stream, buf,
				    READ_CHUNK);
				if (n <= 0)
					break;
				exec_keep(out, max, buf, (size_t)n, r);
				progress = true;
			}
			if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
				ssh_error_set(e, SSH_ERR_CHANNEL,
				    "%s: reading the command's output: %s",
				    s->where, lib_error(s->ls));
				goto cleanup;
			}
		}
		if (libssh2_channel_eof(ch))
			break;
		if (clock_mono_ms() >= deadline)
			goto timeout;
		/* Reading one stream may have queued data of the other. */
		if (progress || libssh2_poll_channel_read(ch, 1))
			continue;
		if (wait_session(s, deadline) != 0)
			goto timeout;
	}
	rc = 0;
	goto cleanup;
timeout:
	ssh_error_set(e, SSH_ERR_TIMEOUT,
	    "%s: the command did not finish in time", s->where);
cleanup:
	free(buf);
	return rc;
}

/* Close the channel, wait for the peer's close, collect status, free. */
static int
exec_finish(struct ssh_session *s, LIBSSH2_CHANNEL *ch, int64_t deadline,
    struct ssh_exec_result *r, struct ssh_error *e)
{
	char *sig = NULL;
	int rc;

	while ((rc = libssh2_channel_close(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (wait_session(s, deadline) != 0)
			goto timeout;
	while (rc == 0 &&
	    (rc = libssh2_channel_wait_closed(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (wait_session(s, deadline) != 0)
			goto timeout;
	if (rc != 0) {
		/* get_exit_status would answer 0 here: not a status. */
		ssh_error_set(e, SSH_ERR_CHANNEL, "%s: closing the channel: %s",
		    s->where, lib_error(s->ls));
		return -1;
	}
	r->exit_status = libssh2_channel_get_exit_status(ch);
	if (libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL,
	    NULL) == 0 && sig != NULL) {
		r->exit_signal = xstrdup(sig);
		r->exit_status = -1;
	}
	libssh2_free(s->ls, sig);
	while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN)
		if (wait_session(s, deadline) != 0)
			goto timeout;
	return 0;
timeout:
	ssh_error_set(e, SSH_ERR_TIMEOUT, "%s: closing the channel timed out",
	    s->where);
	return -1;
}

int
ssh_exec(struct ssh_session *s, const char *cmd, size_t max_output,
    long timeout_ms, struct ssh_exec_result *r, struct ssh_error *e)
{
	struct strbuf out = SB_INIT;
	LIBSSH2_CHANNEL *ch;
	int64_t deadline;

	ssh_error_clear(e);
	ssh_exec_result_clear(r);
	if (s->broken) {
		ssh_error_set(e, SSH_ERR_CHANNEL, "%s: the session is broken",
		    s->where);
		return -1;
	}
	deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms :
	    SSH_EXEC_TIMEOUT_DEFAULT_MS);
	if ((ch = exec_start(s, cmd, deadline, e)) == NULL)
		return -1;
	if (exec_read(s, ch, max_output, deadline, &out, r, e) != 0 ||
	    exec_finish(s, ch, deadline, r, e) != 0) {
		/* The channel is freed with the session. */
		s->broken = true;
		sb_free(&out);
		ssh_exec_result_clear(r);
		return -1;
	}
	r->output_len = out.len;
	r->output = sb_take(&out);
	r->truncated = r->output_total > r->output_len;
	return 0;
}

/* ---- the pool ------------------------------------------------------------ */

struct pool_entry {
	struct ssh_session *s;	/* NULL while being opened */
	char *key;		/* host, port, user, key, host-key policy */
	char *hostport;
	bool busy;
	int64_t idle_since;	/* last put, ms, monotonic */
	int64_t last_traffic;	/* last put or keepalive */
	struct pool_entry *next;
};

struct ssh_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* an entry was released or removed */
	int max_per_host, max_total;
	long idle_ms, keepalive_ms;
	struct pool_entry *head;
	struct ssh_pool_stats st;
};

struct ssh_pool *
ssh_pool_new(int max_per_host, int max_total, int idle_s)
{
	struct ssh_pool *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t ca;

	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->max_per_host = max_per_host > 0 ? max_per_host : 1;
	p->max_total = max_total > 0 ? max_total : 1;
	p->idle_ms = (idle_s > 0 ? idle_s : 60) * 1000L;
	p->keepalive_ms = SSH_KEEPALIVE_S * 1000L;
	return p;
}

void
ssh_pool_set_keepalive(struct ssh_pool *p, int interval_s)
{
	pthread_mutex_lock(&p->mu);
	p->keepalive_ms = (interval_s > 0 ? interval_s : SSH_KEEPALIVE_S) *
	    1000L;
	pthread_mutex_unlock(&p->mu);
}

static void
entry_free(struct pool_entry *ent)
{
	if (ent == NULL)
		return;
	ssh_session_close(ent->s);
	free(ent->key);
	free(ent->hostport);
	free(ent);
}

void
ssh_pool_free(struct ssh_pool *p)
{
	struct pool_entry *ent, *next;

	if (p == NULL)
		return;
	for (ent = p->head; ent != NULL; ent = next) {
		next = ent->next;
		entry_free(ent);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* Unlink ent (lock held). */
static void
pool_unlink(struct ssh_pool *p, struct pool_entry *ent)
{
	struct pool_entry **pp;

	for (pp = &p->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ent) {
			*pp = ent->next;
			ent->next = NULL;
			pthread_cond_broadcast(&p->cv);
			return;
		}
	}
}

/* The pool key of t (caller frees). */
static char *
pool_key(const struct ssh_target *t)
{
	return xasprintf("%s\n%d\n%s\n%s\n%s\n%s\n%s", t->host,
	    target_port(t), t->user, t->key_file,
	    t->pub_file ? t->pub_file : "", t->known_hosts ? t->known_hosts :
	    "", t->pinned_fp ? t->pinned_fp : "");
}

/*
 * Does the idle session's connection still look alive?  A closed or reset
 * peer makes the socket readable with EOF or an error; pending bytes are
 * left for libssh2.
 */
static bool
session_alive(const struct ssh_session *s)
{
	struct pollfd pfd = { s->fd, POLLIN, 0 };
	char c;
	ssize_t n;

	if (s->broken)
		return false;
	if (poll(&pfd, 1, 0) <= 0)
		return true;
	if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
		return false;
	n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return true;
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Counts for the caps (lock held). */
static bool
pool_has_room(struct ssh_pool *p, const char *hostport)
{
	struct pool_entry *ent;
	int total = 0, host = 0;

	for (ent = p->head; ent != NULL; ent = ent->next) {
		total++;
		if (strcmp(ent->hostport, hostport) == 0)
			host++;
	}
	return total < p->max_total && host < p->max_per_host;
}

/* The least recently used idle entry for which evicting it makes room
 * for hostport, unlinked, or NULL (lock held). */
static struct pool_entry *
pool_evict(struct ssh_pool *p, const char *hostport)
{
	struct pool_entry *ent, *best = NULL;
	bool host_full = false;
	int host = 0;

	for (ent = p->head; ent != NULL; ent = ent->next)
		if (strcmp(ent->hostport, hostport) == 0)
			host++;
	host_full = host >= p->max_per_host;
	for (ent = p->head; ent != NULL; ent = ent->next) {
		if (ent->busy || (host_full &&
		    strcmp(ent->hostport, hostport) != 0))
			continue;
		if (best == NULL || ent->idle_since < best->idle_since)
			best = ent;
	}
	if (best != NULL)
		pool_unlink(p, best);
	return best;
}

/* An idle entry with key, taken (busy), or NULL (lock held). */
static struct pool_entry *
pool_take_idle(struct ssh_pool *p, const char *key)
{
	struct pool_entry *ent;

	for (ent = p->head; ent != NULL; ent = ent->next) {
		if (!ent->busy && ent->s != NULL &&
		    strcmp(ent->key, key) == 0) {
			ent->busy = true;
			return ent;
		}
	}
	return NULL;
}

/* Open a session for the reserved entry ent (no lock held). */
static int
pool_open(struct ssh_pool *p, struct pool_entry *ent,
    const struct ssh_target *t, struct ssh_session **out, struct ssh_error *e)
{
	struct ssh_session *s;

	if (ssh_session_open(t, &s, NULL, e) != 0) {
		pthread_mutex_lock(&p->mu);
		pool_unlink(p, ent);
		pthread_mutex_unlock(&p->mu);
		entry_free(ent);
		return -1;
	}
	pthread_mutex_lock(&p->mu);
	ent->s = s;
	p->st.opened++;
	pthread_mutex_unlock(&p->mu);
	*out = s;
	return 0;
}

int
ssh_pool_get(struct ssh_pool *p, const struct ssh_target *t,
    struct ssh_session **out, struct ssh_error *e)
{
	struct pool_entry *ent;
	char *key = pool_key(t);
	char *hostport = xasprintf("%s:%d", t->host, target_port(t));
	int64_t deadline = clock_mono_ms() + target_timeout(t);
	struct timespec ts;
	int rc = -1;

	ssh_error_clear(e);
	*out = NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if ((ent = pool_take_idle(p, key)) != NULL) {
			pthread_mutex_unlock(&p->mu);
			if (session_alive(ent->s)) {
				*out = ent->s;
				pthread_mutex_lock(&p->mu);
				p->st.reused++;
				pthread_mutex_unlock(&p->mu);
				rc = 0;
				goto cleanup;
			}
			log_kv(LOG_INFO, "ssh_pool_drop", "pooled ssh session "
			    "lost its connection", "where", hostport, NULL);
			ent->s->broken = true;
			pthread_mutex_lock(&p->mu);
			pool_unlink(p, ent);
			p->st.dropped++;
			pthread_mutex_unlock(&p->mu);
			entry_free(ent);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (pool_has_room(p, hostport))
			break;
		if ((ent = pool_evict(p, hostport)) != NULL) {
			pthread_mutex_unlock(&p->mu);
			entry_free(ent);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (clock_mono_ms() >= deadline) {
			pthread_mutex_unlock(&p->mu);
			ssh_error_set(e, SSH_ERR_TIMEOUT, "no ssh session for "
			    "%s: the pool is full", hostport);
			goto cleanup;
		}
		ts = clock_ts(deadline);	/* the cv's clock: monotonic */
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	ent = xcalloc(1, sizeof(*ent));
	ent->key = key;
	ent->hostport = hostport;
	ent->busy = true;
	ent->next = p->head;
	p->head = ent;
	key = hostport = NULL;
	pthread_mutex_unlock(&p->mu);
	rc = pool_open(p, ent, t, out, e);
cleanup:
	free(key);
	free(hostport);
	return rc;
}

/* Give s back (touch: it was used, restart its idle time). */
static void
pool_release(struct ssh_pool *p, struct ssh_session *s, bool broken,
    bool touch)
{
	struct pool_entry *ent;

	pthread_mutex_lock(&p->mu);
	for (ent = p->head; ent != NULL && ent->s != s; ent = ent->next)
		;
	if (ent == NULL || broken || s->broken) {
		if (ent != NULL)
			pool_unlink(p, ent);
		pthread_mutex_unlock(&p->mu);
		if (ent != NULL)
			entry_free(ent);
		else
			ssh_session_close(s);
		return;
	}
	ent->busy = false;
	if (touch)
		ent->idle_since = ent->last_traffic = clock_mono_ms();
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
ssh_pool_put(struct ssh_pool *p, struct ssh_session *s, bool broken)
{
	if (s != NULL)
		pool_release(p, s, broken, true);
}

/*
 * Keep the idle entry ent (marked busy) alive: a keepalive when one is due.
 * False when its connection is dead.
 */
static bool
pool_keepalive(struct ssh_pool *p, struct pool_entry *ent, int64_t now)
{
	int next = 0;

	if (!session_alive(ent->s))
		return false;
	if (now - ent->last_traffic < p->keepalive_ms)
		return true;
	/* The schedule is ours; libssh2's interval only has to have passed
	 * (its minimum, 2 s, is below any interval here). */
	libssh2_keepalive_config(ent->s->ls, 0, 2);
	if (libssh2_keepalive_send(ent->s->ls, &next) != 0)
		return false;
	ent->last_traffic = now;
	pthread_mutex_lock(&p->mu);
	p->st.keepalives++;
	pthread_mutex_unlock(&p->mu);
	return true;
}

int
ssh_pool_maintain(struct ssh_pool *p)
{
	struct pool_entry *ent, *next, *expired = NULL;
	struct pool_entry **ping = NULL;
	size_t nping = 0, i;
	int64_t now = clock_mono_ms();
	int closed = 0;

	pthread_mutex_lock(&p->mu);
	for (ent = p->head; ent != NULL; ent = next) {
		next = ent->next;
		if (ent->busy || ent->s == NULL)
			continue;
		if (now - ent->idle_since >= p->idle_ms) {
			pool_unlink(p, ent);
			ent->next = expired;
			expired = ent;
			p->st.expired++;
			continue;
		}
		ent->busy = true;
		ping = xrealloc(ping, (nping + 1) * sizeof(*ping));
		ping[nping++] = ent;
	}
	pthread_mutex_unlock(&p->mu);
	for (ent = expired; ent != NULL; ent = next) {
		next = ent->next;
		entry_free(ent);
		closed++;
	}
	for (i = 0; i < nping; i++) {
		struct ssh_session *s = ping[i]->s;

		if (pool_keepalive(p, ping[i], now)) {
			pool_release(p, s, false, false);
			continue;
		}
		pthread_mutex_lock(&p->mu);
		p->st.dropped++;
		pthread_mutex_unlock(&p->mu);
		s->broken = true;
		pool_release(p, s, true, false);
		closed++;
	}
	free(ping);
	return closed;
}

void
ssh_pool_stats(struct ssh_pool *p, struct ssh_pool_stats *st)
{
	struct pool_entry *ent;

	pthread_mutex_lock(&p->mu);
	*st = p->st;
	st->idle = st->busy = 0;
	for (ent = p->head; ent != NULL; ent = ent->next) {
		if (ent->busy)
			st->busy++;
		else
			st->idle++;
	}
	pthread_mutex_unlock(&p->mu);
}
