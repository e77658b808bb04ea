/* SPDX-License-Identifier: MIT */
/*
 * ssh: SSH to pods with libssh2 1.10 - probe, sessions, exec and a small
 * session pool.  Prefix ssh_.
 *
 * Threads: call ssh_global_init() once in main() before any thread starts
 * (libssh2_init is not thread safe; tests that use this module call it
 * too), and ssh_global_cleanup() at exit.  A struct ssh_session is used
 * by one thread at a time; the pool hands each session to one thread
 * until it is put back.
 *
 * Every wait is bounded: sessions run libssh2 non-blocking and poll(2) the
 * socket in the directions libssh2_session_block_directions() reports,
 * against a deadline.  ssh_probe() and ssh_session_open() take at most
 * about t->timeout_ms whatever the server does (a name, not an address,
 * is resolved with getaddrinfo(3) first, bounded only by the resolver).
 *
 * Algorithms, set before the handshake (libssh2 1.10 has no EtM MACs, no
 * chacha20 and no rsa-sha2): ciphers aes128-ctr, aes192-ctr, aes256-ctr
 * (OpenSSH's order; 1.10 makes one OpenSSL call per 16-byte block, and
 * the transfer rate follows the rounds: 10 for 128-bit keys, 14 for 256);
 * MACs hmac-sha2-256, hmac-sha2-512; key exchange curve25519-sha256,
 * ecdh-sha2-nistp256/384/521, diffie-hellman-group-exchange-sha256,
 * group16-sha512, group18-sha512, group14-sha256 (no SHA-1); host keys
 * ssh-ed25519, ecdsa-sha2-nistp256/384/521 (ssh-rsa would sign with
 * SHA-1).  Client keys must be ed25519 or ECDSA: 1.10 signs RSA only with
 * ssh-rsa (SHA-1), which OpenSSH >= 8.8 refuses.
 *
 * Host keys: with t->pinned_fp the key's SHA-256 fingerprint must equal it
 * (constant-time compare); with t->known_hosts the key must MATCH an entry
 * for "[host]:port" (or "host") of that type in that OpenSSH file, and the
 * host-key algorithm is restricted to the types listed there for the host.
 * With neither, any key is accepted and its fingerprint returned: trust on
 * first use, the caller pins it (and passes it as pinned_fp next time).
 *
 * Errors: functions that can fail return 0, or -1 with *e filled (kind and
 * a message that names host, port and what failed, never key material).
 * e must be zero-initialised (SSH_ERROR_INIT) before its first use; each
 * call clears it first, so one struct can be reused; release it with
 * ssh_error_clear().
 */
#ifndef IA_SSH_H
#define IA_SSH_H

#include <stdbool.h>
#include <stddef.h>
#include "lib/attrs.h"

#define SSH_TIMEOUT_DEFAULT_MS 15000	/* t->timeout_ms <= 0 */
#define SSH_EXEC_TIMEOUT_DEFAULT_MS 60000	/* ssh_exec timeout_ms <= 0 */
#define SSH_CLOSE_TIMEOUT_MS 2000	/* disconnecting a session */
#define SSH_KEEPALIVE_S 30		/* default keepalive interval, pool */

enum ssh_error_kind {
	SSH_OK = 0,
	SSH_ERR_CONNECT,	/* TCP: refused, unreachable, timed out,
				   name not resolved */
	SSH_ERR_HANDSHAKE,	/* banner, key exchange, no common algorithm,
				   closed during the handshake */
	SSH_ERR_HOSTKEY,	/* mismatch, not in known_hosts, unreadable
				   known_hosts */
	SSH_ERR_AUTH,		/* key refused, key file unusable */
	SSH_ERR_CHANNEL,	/* channel open, exec, read or close failed,
				   connection lost */
	SSH_ERR_TIMEOUT,	/* the deadline passed after TCP connected */
	SSH_ERR_PROTOCOL	/* anything else: bad arguments, libssh2 */
};

struct ssh_error {
	int kind;		/* enum ssh_error_kind */
	char *message;		/* NULL or owned by the struct */
};

#define SSH_ERROR_INIT { SSH_OK, NULL }

/* Free the message and zero *e (kind SSH_OK).  NULL is fine. */
void ssh_error_clear(struct ssh_error *e);
/* Clear *e, then set its kind and a formatted message (for the modules
 * built on this one: remote, xfer). */
void ssh_error_set(struct ssh_error *e, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A constant name for a kind, e.g. "hostkey". */
const char *ssh_error_kind_name(int kind);

/* libssh2_init, once (pthread_once).  0, or -1 when libssh2 failed. */
WARN_UNUSED_RESULT
int ssh_global_init(void);
/* libssh2_exit, at shutdown, after every session is closed. */
void ssh_global_cleanup(void);

/* Where and how to connect.  Only borrowed during each call. */
struct ssh_target {
	const char *host;	/* address or name */
	int port;		/* <= 0: 22 */
	const char *user;
	const char *key_file;	/* private key, no passphrase */
	const char *pub_file;	/* NULL: key_file + ".pub" when that
				   exists, else derived from key_file */
	const char *known_hosts;	/* NULL, or an OpenSSH known_hosts
				   file the host key must MATCH in */
	const char *pinned_fp;	/* NULL, or "SHA256:..." the host key must
				   have */
	long timeout_ms;	/* bounds connect + handshake + auth; <= 0:
				   SSH_TIMEOUT_DEFAULT_MS */
};

/*
 * Connect, handshake, check the host key, authenticate, disconnect: what
 * "wait until the pod answers SSH" calls.  On success *fingerprint_out
 * (may be NULL) is the host key's "SHA256:..." fingerprint; caller frees.
 */
WARN_UNUSED_RESULT
int ssh_probe(const struct ssh_target *t, char **fingerprint_out,
    struct ssh_error *e);

struct ssh_session;
struct _LIBSSH2_SESSION;
struct _LIBSSH2_SFTP;

/*
 * Open an authenticated session (as ssh_probe, but kept).  On success *out
 * is the session (close with ssh_session_close) and *fingerprint_out (may
 * be NULL) a copy of the host key fingerprint (caller frees).
 */
WARN_UNUSED_RESULT
int ssh_session_open(const struct ssh_target *t, struct ssh_session **out,
    char **fingerprint_out, struct ssh_error *e);
/* Disconnect (bounded by SSH_CLOSE_TIMEOUT_MS) and free.  NULL is fine. */
void ssh_session_close(struct ssh_session *s);
/* The host key fingerprint ("SHA256:..."), owned by the session. */
const char *ssh_session_fingerprint(const struct ssh_session *s);
/* True once a failure left the session unusable (lost connection,
 * timed-out exec): close it, do not reuse it. */
bool ssh_session_broken(const struct ssh_session *s);

/*
 * For modules that drive libssh2 themselves on an open session (xfer:
 * SFTP).  ssh_session_handle() returns the session's LIBSSH2_SESSION
 * (non-blocking; owned by s) and, when sock is not NULL, its socket.
 * ssh_session_wait() polls the socket in the directions libssh2 last
 * blocked on, until deadline_ms (CLOCK_MONOTONIC, milliseconds): 0 when
 * ready, -1 when the deadline passed.  ssh_session_mark_broken() records
 * that the caller left the session unusable (ssh_session_broken() then
 * says so and the pool closes it).
 */
struct _LIBSSH2_SESSION *ssh_session_handle(struct ssh_session *s,
    int *sock);
WARN_UNUSED_RESULT
int ssh_session_wait(struct ssh_session *s, long long deadline_ms);
void ssh_session_mark_broken(struct ssh_session *s);

/*
 * The session's own SFTP channel (the subsystem started on first use,
 * within deadline_ms, CLOCK_MONOTONIC ms) into *out: owned by s, kept
 * open for the session's life and shut down by ssh_session_close(), so
 * that small reads of pod files (remote_poll, remote_read_log through
 * podfs) pay for no channel and no shell.  Use it only with the
 * session's other non-blocking calls, waiting with ssh_session_wait().
 * 0, or -1 with *e (SSH_ERR_CHANNEL, SSH_ERR_TIMEOUT); a failure leaves
 * the session broken, as does any failure of the connection under a
 * caller's later SFTP call (the caller marks it: ssh_session_mark_broken).
 */
WARN_UNUSED_RESULT
int ssh_session_sftp(struct ssh_session *s, long long deadline_ms,
    struct _LIBSSH2_SFTP **out, struct ssh_error *e);

struct ssh_exec_result {
	char *output;		/* stdout and stderr in the order read, at
				   most max_output bytes, NUL-terminated (may
				   hold NULs: use output_len); owned */
	size_t output_len;
	size_t output_total;	/* bytes received, dropped ones included */
	bool truncated;		/* output_total > output_len */
	int exit_status;	/* the command's status; -1 when it died of
				   a signal */
	char *exit_signal;	/* "TERM", "KILL"... or NULL; owned */
};

#define SSH_EXEC_RESULT_INIT { NULL, 0, 0, false, -1, NULL }

/* Free what r holds and reset it.  NULL is fine. */
void ssh_exec_result_clear(struct ssh_exec_result *r);

/*
 * Run cmd (a shell command line: quote every value in it) on a new
 * channel and wait for it to end, within timeout_ms (<= 0:
 * SSH_EXEC_TIMEOUT_DEFAULT_MS).  stdout and stderr are read in one loop,
 * kept up to max_output bytes together and drained past that.  r is
 * cleared first; on success it holds the output, exit status and signal
 * (caller clears it with ssh_exec_result_clear); a non-zero exit status is
 * a success of ssh_exec.  On failure (SSH_ERR_CHANNEL, SSH_ERR_TIMEOUT...)
 * r is cleared, and unless the server merely refused the channel the
 * session is marked broken.  The command may still run remotely after a
 * timeout.
 */
WARN_UNUSED_RESULT
int ssh_exec(struct ssh_session *s, const char *cmd, size_t max_output,
    long timeout_ms, struct ssh_exec_result *r, struct ssh_error *e);

/* ---- the pool ---------------------------------------------------------- */

struct ssh_pool;

struct ssh_pool_stats {
	int idle, busy;		/* sessions now */
	unsigned long opened;	/* sessions opened */
	unsigned long reused;	/* gets answered with an idle session */
	unsigned long dropped;	/* idle sessions found dead and closed */
	unsigned long expired;	/* idle past idle_s and closed */
	unsigned long keepalives;	/* keepalive messages sent */
};

/*
 * A pool of sessions keyed by host, port, user, key and host-key policy,
 * at most max_per_host per host:port and max_total in all (<= 0: 1); idle
 * sessions older than idle_s seconds (<= 0: 60) are closed by
 * ssh_pool_maintain().  Thread-safe.  Free with ssh_pool_free().
 */
struct ssh_pool *ssh_pool_new(int max_per_host, int max_total, int idle_s);
/* Close every session (none may be checked out) and free.  NULL is fine. */
void ssh_pool_free(struct ssh_pool *p);

/*
 * A session for t, used by the calling thread only until ssh_pool_put():
 * an idle one of the same key that still looks alive (a dead one is
 * closed and counted as dropped), else a new one.  At the caps it waits
 * for a put, evicting an idle session of another key when it can, until
 * t->timeout_ms passes (SSH_ERR_TIMEOUT).  Errors as ssh_session_open().
 */
WARN_UNUSED_RESULT
int ssh_pool_get(struct ssh_pool *p, const struct ssh_target *t,
    struct ssh_session **out, struct ssh_error *e);
/* Give s back; broken (or ssh_session_broken(s)) closes it instead. */
void ssh_pool_put(struct ssh_pool *p, struct ssh_session *s, bool broken);

/*
 * Tick this now and then (every few seconds) from any thread: closes idle
 * sessions older than idle_s or found dead, and sends a keepalive
 * (keepalive@libssh2.org, no reply wanted) on the others that have been
 * quiet for the keepalive interval (libssh2 sends them only while it
 * waits itself, so an idle session sends nothing otherwise).  Returns how
 * many sessions it closed.
 */
int ssh_pool_maintain(struct ssh_pool *p);
/* Send keepalives on sessions idle (no put, no keepalive) for interval_s
 * seconds (<= 0: SSH_KEEPALIVE_S, the default). */
void ssh_pool_set_keepalive(struct ssh_pool *p, int interval_s);
/* A snapshot of the counters. */
void ssh_pool_stats(struct ssh_pool *p, struct ssh_pool_stats *st);

#endif
