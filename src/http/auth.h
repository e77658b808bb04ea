/* SPDX-License-Identifier: MIT */
/*
 * auth: JWT bearer-token verification and minting (libjwt 1.10).
 *
 * libjwt 1.10 takes the algorithm from the token and checks no claims, so
 * this module pins the configured algorithm (before and after jwt_decode),
 * always passes a key, and validates exp, nbf, iat, iss, aud and sub itself
 * (the claims and their keys: docs/configuration.md, docs/api.md).
 *
 * A struct auth_ctx is immutable after auth_ctx_new() except for its
 * internal cache of verified tokens, which is locked; one context may be
 * shared by every request thread.  Nothing here logs a token or key bytes.
 */
#ifndef IA_AUTH_H
#define IA_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/principal.h"
#include "lib/attrs.h"

struct config;

#define AUTH_MAX_TOKEN	8192	/* longest token accepted, bytes */
#define AUTH_MAX_SUB	128	/* longest sub accepted, bytes */
#define AUTH_MIN_SECRET	32	/* shortest HS* secret, bytes */
#define AUTH_MAX_TTL	31536000L

struct auth_ctx;


enum auth_status {
	AUTH_OK = 0,
	AUTH_MISSING,		/* no header, empty, or another scheme */
	AUTH_MALFORMED,
	AUTH_BAD_SIGNATURE,
	AUTH_BAD_ALG,
	AUTH_EXPIRED,
	AUTH_NOT_YET_VALID,	/* nbf, or iat, later than now + leeway */
	AUTH_BAD_ISSUER,
	AUTH_BAD_AUDIENCE,
	AUTH_BAD_CLAIMS		/* exp missing, non-integer time, bad
				 * sub/scope */
};

/*
 * Read cfg->jwt_key_file (and cfg->jwt_signing_key_file when set) for
 * cfg->jwt_alg.  HS*: the key file is the raw shared secret, at least
 * AUTH_MIN_SECRET bytes, mode & 077 == 0; jwt_signing_key_file must be
 * empty.  RS*, ES*: the key file is a PEM public key of the matching type
 * (RSA >= 2048 bits; EC on the alg's curve); the optional signing key file
 * is the matching unencrypted PEM private key, mode & 077 == 0.
 * On success returns 0 and *out is a new context (caller releases with
 * auth_ctx_free); on failure returns -1, *out is NULL and *err is a message
 * naming the key and file (caller frees).
 */
WARN_UNUSED_RESULT
int auth_ctx_new(const struct config *cfg, struct auth_ctx **out, char **err);
/* Release ctx, its keys (wiped) and its cache.  NULL is ok. */
void auth_ctx_free(struct auth_ctx *ctx);

/*
 * Verify the Authorization header value (NULL when absent).  Accepts
 * "Bearer <token>": scheme case-insensitive, one or more spaces, optional
 * surrounding blanks.  NULL, blank or another scheme (e.g. Basic) is
 * AUTH_MISSING.  now is the current time (a parameter for tests).
 * *out is always initialised; on AUTH_OK it holds the principal (caller
 * clears with principal_clear), otherwise it is empty.
 */
WARN_UNUSED_RESULT
enum auth_status auth_verify(struct auth_ctx *ctx, const char *header,
    time_t now, struct principal *out);

/* Short static text safe to send to clients, e.g. "token expired". */
const char *auth_status_reason(enum auth_status st);

/*
 * Mint a token: iss and aud from the configuration, sub, scope (space
 * separated, may be "" in which case no scope claim is written),
 * iat = nbf = now, exp = now + ttl, jti 128 random bits as UUID-style hex.
 * HS* signs with the secret; RS* and ES* need jwt_signing_key_file.
 * ttl is 1..AUTH_MAX_TTL; sub is validated as auth_verify does.
 * Returns a new string (caller frees) or NULL with *err (caller frees).
 */
WARN_UNUSED_RESULT
char *auth_mint(struct auth_ctx *ctx, const char *sub, const char *scopes,
    long ttl, time_t now, char **err);

/* Verified-token cache counters since auth_ctx_new (for metrics and tests). */
void auth_cache_stats(struct auth_ctx *ctx, unsigned long *hits,
    unsigned long *misses);


#endif
