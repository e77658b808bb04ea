/* SPDX-License-Identifier: MIT */
/*
 * auth: JWT verification and minting on top of libjwt 1.10.2.
 *
 * libjwt 1.10 takes the algorithm from the token header, accepts any token
 * unverified when no key is given, and checks no claims at all (its jwt.h
 * has no claim validation).  So, for every token:
 *
 *   1. the Authorization header must be "Bearer <token>", the token at most
 *      AUTH_MAX_TOKEN bytes of exactly three base64url segments;
 *   2. the header segment is decoded here and its "alg" must equal the
 *      configured algorithm before libjwt sees the token (this is what
 *      defeats "alg":"none" and HS/RS confusion), "typ" must be JWT when
 *      present and "crit" must be absent;
 *   3. jwt_decode() is called with the configured key (never NULL), and
 *      jwt_get_alg() is checked again afterwards;
 *   4. claims are read from libjwt's own view of the payload
 *      (jwt_get_grants_json) with json-c, so that JSON types can be checked:
 *      exp is required and, like nbf and iat, must be a JSON integer;
 *      iss, aud and sub are checked; scopes are collected.
 *
 * Verified tokens are cached (the token's exact bytes -> principal and
 * time claims) in a direct-mapped table with striped locks; a hit compares
 * the whole token in constant time and re-checks the time claims against
 * the caller's now.  Only tokens that verified are stored, at most
 * CACHE_MAX_TOKEN bytes each (longer ones are verified every time), so the
 * table holds at most CACHE_SLOTS * CACHE_MAX_TOKEN bytes of tokens.
 */
#include "auto-config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "http/auth.h"
#include "core/config.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/secretfile.h"
#include "lib/xalloc.h"

#define KEY_FILE_MAX	SECRETFILE_MAX	/* largest key file read, bytes */
#define RSA_MIN_BITS	2048
#define SCOPES_MAX_LEN	4096	/* longest scope string auth_mint accepts */

#define CACHE_SLOTS	1024	/* power of two */
#define CACHE_STRIPES	16	/* power of two, divides CACHE_SLOTS */
#define CACHE_MAX_TOKEN	2048	/* longest token cached, bytes */

struct cache_entry {
	char *token;		/* owned copy of the token's bytes (wiped
				 * when freed), NULL when unused */
	size_t len;
	bool used;
	bool has_nbf;
	bool has_iat;
	int64_t nbf;
	int64_t iat;
	struct principal p;	/* p.exp is the token's exp */
};

struct cache_stripe {
	pthread_mutex_t mu;
} __attribute__((aligned(64)));

struct auth_ctx {
	jwt_alg_t alg;
	bool hmac;
	char *alg_name;
	char *issuer;
	char *audience;
	int64_t leeway;
	unsigned char *key;		/* secret (HS*) or PEM public key */
	size_t keylen;
	unsigned char *signkey;		/* PEM private key (RS*, ES*) or NULL */
	size_t signkeylen;

	atomic_ulong hits;
	atomic_ulong misses;
	struct cache_stripe stripes[CACHE_STRIPES];
	struct cache_entry slots[CACHE_SLOTS];
};

/* Time claims of a verified token, kept with its cache entry. */
struct times {
	int64_t exp;
	bool has_nbf;
	bool has_iat;
	int64_t nbf;
	int64_t iat;
};

static void
auth_oom(void)
{
	log_msg(LOG_ERROR, "out_of_memory",
	    "libjwt or json-c ran out of memory");
	abort();
}

/* ---------------------------------------------------------------- keys ---- */

/* Never prompt for a passphrase: encrypted private keys are refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* The EC curve (NID) an ES* algorithm needs. */
static int
alg_curve(jwt_alg_t alg)
{
	switch (alg) {
	case JWT_ALG_ES256:
		return NID_X9_62_prime256v1;
	case JWT_ALG_ES384:
		return NID_secp384r1;
	case JWT_ALG_ES512:
		return NID_secp521r1;
	default:
		return NID_undef;
	}
}

/* Check that pk suits ctx->alg; -1 and *err (naming what and path) if not. */
static int
check_pkey(const struct auth_ctx *ctx, EVP_PKEY *pk, const char *what,
    const char *path, char **err)
{
	char group[80];
	size_t glen = 0;
	int curve = alg_curve(ctx->alg);

	if (curve == NID_undef) {
		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
			*err = xasprintf("%s: %s is not an RSA "
			    "key, as %s needs", what, path, ctx->alg_name);
			return -1;
		}
		if (EVP_PKEY_get_bits(pk) < RSA_MIN_BITS) {
			*err = xasprintf("%s: %s: RSA key shorter than %d bits",
			    what, path, RSA_MIN_BITS);
			return -1;
		}
		return 0;
	}
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC) {
		*err = xasprintf("%s: %s is not an EC key, as %s needs", what,
		    path, ctx->alg_name);
		return -1;
	}
	if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) != 1 ||
	    OBJ_sn2nid(group) != curve) {
		*err = xasprintf("%s: %s: EC key is not on curve %s, as "
		    "%s needs", what, path, OBJ_nid2sn(curve), ctx->alg_name);
		return -1;
	}
	return 0;
}

static int
load_pem_keys(struct auth_ctx *ctx, const struct config *cfg, char **err)
{
	const char *signfile = cfg->jwt_signing_key_file;
	EVP_PKEY *pub = NULL, *priv = NULL;
	BIO *bio = NULL;
	int rc = -1;

	if (secretfile_read("jwt_key_file", cfg->jwt_key_file, false, &ctx->key,
	    &ctx->keylen, err) < 0)
		goto cleanup;
	bio = BIO_new_mem_buf(ctx->key, (int)ctx->keylen);
	if (bio == NULL)
		auth_oom();
	pub = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	bio = NULL;
	if (pub == NULL) {
		*err = xasprintf("jwt_key_file: %s is not a PEM public key "
		    "(-----BEGIN PUBLIC KEY-----)", cfg->jwt_key_file);
		goto cleanup;
	}
	if (check_pkey(ctx, pub, "jwt_key_file", cfg->jwt_key_file, err) < 0)
		goto cleanup;

	if (signfile == NULL || signfile[0] == '\0') {
		rc = 0;
		goto cleanup;
	}
	if (secretfile_read("jwt_signing_key_file", signfile, true,
	    &ctx->signkey, &ctx->signkeylen, err) < 0)
		goto cleanup;
	bio = BIO_new_mem_buf(ctx->signkey, (int)ctx->signkeylen);
	if (bio == NULL)
		auth_oom();
	priv = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	bio = NULL;
	if (priv == NULL) {
		*err = xasprintf("jwt_signing_key_file: %s is not an "
		    "unencrypted PEM private key", signfile);
		goto cleanup;
	}
	if (check_pkey(ctx, priv, "jwt_signing_key_file", signfile, err) < 0)
		goto cleanup;
	if (EVP_PKEY_eq(pub, priv) != 1) {
		*err = xasprintf("jwt_signing_key_file: %s is not the private "
		    "key of jwt_key_file %s", signfile, cfg->jwt_key_file);
		goto cleanup;
	}
	rc = 0;
cleanup:
	EVP_PKEY_free(pub);
	EVP_PKEY_free(priv);
	ERR_clear_error();
	return rc;
}

static int
load_hmac_key(struct auth_ctx *ctx, const struct config *cfg, char **err)
{
	if (cfg->jwt_signing_key_file != NULL &&
	    cfg->jwt_signing_key_file[0] != '\0') {
		*err = xasprintf("jwt_signing_key_file: only used with RS* and "
		    "ES*; with %s the secret in jwt_key_file signs",
		    ctx->alg_name);
		return -1;
	}
	if (secretfile_read("jwt_key_file", cfg->jwt_key_file, true, &ctx->key,
	    &ctx->keylen, err) < 0)
		return -1;
	if (ctx->keylen < AUTH_MIN_SECRET) {
		*err = xasprintf("jwt_key_file: %s: an %s secret must be at "
		    "least %d bytes", cfg->jwt_key_file, ctx->alg_name,
		    AUTH_MIN_SECRET);
		return -1;
	}
	return 0;
}

int
auth_ctx_new(const struct config *cfg, struct auth_ctx **out, char **err)
{
	struct auth_ctx *ctx;
	int i;

	*out = NULL;
	*err = NULL;
	ctx = xcalloc(1, sizeof(*ctx));
	for (i = 0; i < CACHE_STRIPES; i++)
		pthread_mutex_init(&ctx->stripes[i].mu, NULL);
	atomic_init(&ctx->hits, 0);
	atomic_init(&ctx->misses, 0);

	ctx->alg_name = xstrdup(cfg->jwt_alg ? cfg->jwt_alg : "");
	ctx->alg = jwt_str_alg(ctx->alg_name);
	/* jwt_str_alg ignores case; the configured name must be canonical. */
	if (ctx->alg != JWT_ALG_INVAL &&
	    strcmp(jwt_alg_str(ctx->alg), ctx->alg_name) != 0)
		ctx->alg = JWT_ALG_INVAL;
	switch (ctx->alg) {
	case JWT_ALG_HS256:
	case JWT_ALG_HS384:
	case JWT_ALG_HS512:
		ctx->hmac = true;
		break;
	case JWT_ALG_RS256:
	case JWT_ALG_RS384:
	case JWT_ALG_RS512:
	case JWT_ALG_ES256:
	case JWT_ALG_ES384:
	case JWT_ALG_ES512:
		break;
	default:
		*err = xasprintf("jwt_alg: '%s' is not supported (HS256, "
		    "HS384, HS512, RS256, RS384, RS512, ES256, ES384)",
		    ctx->alg_name);
		goto fail;
	}
	if (cfg->jwt_issuer == NULL || cfg->jwt_issuer[0] == '\0' ||
	    cfg->jwt_audience == NULL || cfg->jwt_audience[0] == '\0') {
		*err = xasprintf("jwt_issuer and jwt_audience: both required");
		goto fail;
	}
	if (cfg->jwt_leeway < 0 || cfg->jwt_leeway > 300) {
		*err = xasprintf("jwt_leeway: must be between 0 and 300");
		goto fail;
	}
	ctx->issuer = xstrdup(cfg->jwt_issuer);
	ctx->audience = xstrdup(cfg->jwt_audience);
	ctx->leeway = cfg->jwt_leeway;
	if ((ctx->hmac ? load_hmac_key(ctx, cfg, err) :
	    load_pem_keys(ctx, cfg, err)) < 0)
		goto fail;
	*out = ctx;
	return 0;
fail:
	auth_ctx_free(ctx);
	return -1;
}

void
auth_ctx_free(struct auth_ctx *ctx)
{
	size_t i;

	if (ctx == NULL)
		return;
	for (i = 0; i < CACHE_SLOTS; i++) {
		principal_clear(&ctx->slots[i].p);
		if (ctx->slots[i].token != NULL)
			secretfile_wipe_free(
			    (unsigned char *)ctx->slots[i].token,
			    ctx->slots[i].len);
	}
	for (i = 0; i < CACHE_STRIPES; i++)
		pthread_mutex_destroy(&ctx->stripes[i].mu);
	secretfile_wipe_free(ctx->key, ctx->keylen);
	secretfile_wipe_free(ctx->signkey, ctx->signkeylen);
	free(ctx->alg_name);
	free(ctx->issuer);
	free(ctx->audience);
	OPENSSL_cleanse(ctx->slots, sizeof(ctx->slots));
	free(ctx);
}

void
auth_cache_stats(struct auth_ctx *ctx, unsigned long *hits,
    unsigned long *misses)
{
	*hits = atomic_load_explicit(&ctx->hits, memory_order_relaxed);
	*misses = atomic_load_explicit(&ctx->misses, memory_order_relaxed);
}

static void
add_scope(struct principal *p, const char *s, size_t n)
{
	p->scopes = xrealloc(p->scopes, (p->nscopes + 1) * sizeof(*p->scopes));
	p->scopes[p->nscopes++] = xstrndup(s, n);
}

const char *
auth_status_reason(enum auth_status st)
{
	switch (st) {
	case AUTH_OK:
		return "ok";
	case AUTH_MISSING:
		return "missing bearer token";
	case AUTH_MALFORMED:
		return "malformed token";
	case AUTH_BAD_SIGNATURE:
		return "invalid token signature";
	case AUTH_BAD_ALG:
		return "token algorithm not accepted";
	case AUTH_EXPIRED:
		return "token expired";
	case AUTH_NOT_YET_VALID:
		return "token not yet valid";
	case AUTH_BAD_ISSUER:
		return "token issuer not accepted";
	case AUTH_BAD_AUDIENCE:
		return "token audience not accepted";
	case AUTH_BAD_CLAIMS:
		return "invalid token claims";
	}
	return "invalid token";
}

/* -------------------------------------------------------------- syntax ---- */

static int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decode n bytes of unpadded base64url.  Returns a new NUL-terminated
 * buffer (caller frees) of *outlen bytes, or NULL when s is not base64url.
 */
static unsigned char *
b64url_decode(const char *s, size_t n, size_t *outlen)
{
	unsigned char *out;
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0, v;

	if (n % 4 == 1)
		return NULL;
	out = xmalloc(n / 4 * 3 + 3 + 1);
	for (i = 0; i < n; i++) {
		if ((v = b64url_val((unsigned char)s[i])) < 0) {
			free(out);
			return NULL;
		}
		acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* Parse exactly one JSON object from buf; NULL when it is anything else. */
static json_object *
parse_json_object(const char *buf, size_t len)
{
	struct json_tokener *tk;
	json_object *o;
	size_t end;

	if (len > INT32_MAX || strlen(buf) != len ||
	    ju_utf8_check(buf, len) != len)
		return NULL;
	if ((tk = json_tokener_new()) == NULL)
		auth_oom();
	o = json_tokener_parse_ex(tk, buf, (int)len);
	end = json_tokener_get_parse_end(tk);
	if (o != NULL && json_tokener_get_error(tk) == json_tokener_success &&
	    json_object_is_type(o, json_type_object)) {
		while (end < len && (buf[end] == ' ' || buf[end] == '\t' ||
		    buf[end] == '\r' || buf[end] == '\n'))
			end++;
		if (end == len) {
			json_tokener_free(tk);
			return o;
		}
	}
	json_object_put(o);
	json_tokener_free(tk);
	return NULL;
}

/* Decode one base64url segment holding a JSON object; NULL if it does not. */
static json_object *
segment_json(const char *s, size_t n)
{
	unsigned char *buf;
	json_object *o;
	size_t len;

	if ((buf = b64url_decode(s, n, &len)) == NULL)
		return NULL;
	o = parse_json_object((const char *)buf, len);
	free(buf);
	return o;
}

/* Find the token in an Authorization header value. */
static enum auth_status
bearer_token(const char *h, const char **tok, size_t *len)
{
	const char *e;

	if (h == NULL)
		return AUTH_MISSING;
	while (*h == ' ' || *h == '\t')
		h++;
	if (*h == '\0')
		return AUTH_MISSING;
	if (strncasecmp(h, "Bearer", 6) != 0)
		return AUTH_MISSING;
	h += 6;
	e = h + strlen(h);
	while (e > h && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (h == e)
		return AUTH_MALFORMED;		/* "Bearer" and nothing else */
	if (*h != ' ')
		return AUTH_MISSING;		/* another scheme, "Bearerx" */
	while (*h == ' ')
		h++;
	*tok = h;
	*len = (size_t)(e - h);
	return AUTH_OK;
}

/*
 * The token's shape: at most AUTH_MAX_TOKEN bytes, three base64url segments,
 * header and payload non-empty.  *hlen is the header segment's length.
 */
static enum auth_status
token_shape(const char *t, size_t len, size_t *hlen)
{
	size_t i, dots[2], nd = 0;

	if (len == 0 || len > AUTH_MAX_TOKEN)
		return AUTH_MALFORMED;
	for (i = 0; i < len; i++) {
		if (t[i] == '.') {
			if (nd == 2)
				return AUTH_MALFORMED;
			dots[nd++] = i;
		} else if (b64url_val((unsigned char)t[i]) < 0)
			return AUTH_MALFORMED;
	}
	if (nd != 2 || dots[0] == 0 || dots[1] == dots[0] + 1)
		return AUTH_MALFORMED;
	if (dots[0] % 4 == 1 || (dots[1] - dots[0] - 1) % 4 == 1 ||
	    (len - dots[1] - 1) % 4 == 1)
		return AUTH_MALFORMED;
	*hlen = dots[0];
	return AUTH_OK;
}

/* The JOSE header: alg pinned, typ JWT if present, no crit. */
static enum auth_status
check_header(const struct auth_ctx *ctx, const char *t, size_t hlen)
{
	json_object *h, *v;
	enum auth_status st = AUTH_MALFORMED;

	if ((h = segment_json(t, hlen)) == NULL)
		return AUTH_MALFORMED;
	if (!json_object_object_get_ex(h, "alg", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), ctx->alg_name) != 0) {
		st = AUTH_BAD_ALG;
		goto cleanup;
	}
	if (json_object_object_get_ex(h, "typ", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    strcasecmp(json_object_get_string(v), "JWT") != 0))
		goto cleanup;
	if (json_object_object_get_ex(h, "crit", NULL))
		goto cleanup;
	st = AUTH_OK;
cleanup:
	json_object_put(h);
	return st;
}

/* -------------------------------------------------------------- claims ---- */

static enum auth_status
check_times(const struct auth_ctx *ctx, time_t now, const struct times *t)
{
	int64_t n = (int64_t)now;

	/* now < exp + leeway, written so that a huge exp cannot overflow. */
	if (t->exp <= n - ctx->leeway)
		return AUTH_EXPIRED;
	if (t->has_nbf && t->nbf > n + ctx->leeway)
		return AUTH_NOT_YET_VALID;
	if (t->has_iat && t->iat > n + ctx->leeway)
		return AUTH_NOT_YET_VALID;
	return AUTH_OK;
}

/* A NumericDate claim: absent is fine, anything but a JSON integer is not. */
static enum auth_status
time_claim(json_object *c, const char *name, bool *present, int64_t *v)
{
	json_object *o;

	*present = false;
	*v = 0;
	if (!json_object_object_get_ex(c, name, &o))
		return AUTH_OK;
	if (!json_object_is_type(o, json_type_int))
		return AUTH_BAD_CLAIMS;
	*v = json_object_get_int64(o);
	*present = true;
	return AUTH_OK;
}

static bool
valid_sub(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
			return false;
	return n > 0 && n <= AUTH_MAX_SUB;
}

/* RFC 6749 scope-token character. */
static bool
scope_char(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
	    (c >= 0x5d && c <= 0x7e);
}

/* Split a space-separated scope list into p. */
static enum auth_status
scope_list(struct principal *p, const char *s)
{
	const char *b;

	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return AUTH_OK;
		for (b = s; *s != '\0' && *s != ' '; s++)
			if (!scope_char((unsigned char)*s))
				return AUTH_BAD_CLAIMS;
		add_scope(p, b, (size_t)(s - b));
	}
}

/* scope or scp: a space-separated string, or an array of such strings. */
static enum auth_status
scope_claim(struct principal *p, json_object *c, const char *name)
{
	json_object *o, *e;
	enum auth_status st;
	size_t i, n;

	if (!json_object_object_get_ex(c, name, &o))
		return AUTH_OK;
	if (json_object_is_type(o, json_type_string))
		return scope_list(p, json_object_get_string(o));
	if (!json_object_is_type(o, json_type_array))
		return AUTH_BAD_CLAIMS;
	n = json_object_array_length(o);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(o, i);
		if (!json_object_is_type(e, json_type_string))
			return AUTH_BAD_CLAIMS;
		if ((st = scope_list(p, json_object_get_string(e))) != AUTH_OK)
			return st;
	}
	return AUTH_OK;
}

static bool
audience_ok(const struct auth_ctx *ctx, json_object *c)
{
	json_object *o, *e;
	size_t i, n;

	if (!json_object_object_get_ex(c, "aud", &o))
		return false;
	if (json_object_is_type(o, json_type_string))
		return strcmp(json_object_get_string(o), ctx->audience) == 0;
	if (!json_object_is_type(o, json_type_array))
		return false;
	n = json_object_array_length(o);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(o, i);
		if (json_object_is_type(e, json_type_string) &&
		    strcmp(json_object_get_string(e), ctx->audience) == 0)
			return true;
	}
	return false;
}

/* Validate the claims c; on AUTH_OK fill p (else p is left empty) and t. */
static enum auth_status
check_claims(const struct auth_ctx *ctx, json_object *c, time_t now,
    struct principal *p, struct times *t)
{
	json_object *o;
	enum auth_status st;
	bool has_exp;

	if ((st = time_claim(c, "exp", &has_exp, &t->exp)) != AUTH_OK ||
	    (st = time_claim(c, "nbf", &t->has_nbf, &t->nbf)) != AUTH_OK ||
	    (st = time_claim(c, "iat", &t->has_iat, &t->iat)) != AUTH_OK)
		return st;
	if (!has_exp)
		return AUTH_BAD_CLAIMS;
	if ((st = check_times(ctx, now, t)) != AUTH_OK)
		return st;
	if (!json_object_object_get_ex(c, "iss", &o) ||
	    !json_object_is_type(o, json_type_string) ||
	    strcmp(json_object_get_string(o), ctx->issuer) != 0)
		return AUTH_BAD_ISSUER;
	if (!audience_ok(ctx, c))
		return AUTH_BAD_AUDIENCE;
	if (!json_object_object_get_ex(c, "sub", &o) ||
	    !json_object_is_type(o, json_type_string) ||
	    !valid_sub(json_object_get_string(o)))
		return AUTH_BAD_CLAIMS;
	p->sub = xstrdup(json_object_get_string(o));
	p->exp = (long)t->exp;
	if ((st = scope_claim(p, c, "scope")) != AUTH_OK ||
	    (st = scope_claim(p, c, "scp")) != AUTH_OK) {
		principal_clear(p);
		return st;
	}
	return AUTH_OK;
}

/* --------------------------------------------------------------- cache ---- */

/* The token's slot: FNV-1a over its last 32 bytes (the signature's: they
 * differ between any two tokens the agent would verify).  Not a security
 * boundary (a hit compares the whole token); only verified tokens are
 * stored, so a caller without one cannot evict entries either. */
static size_t
cache_slot(const char *tok, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = len > 32 ? len - 32 : 0; i < len; i++) {
		h ^= (unsigned char)tok[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32)) & (CACHE_SLOTS - 1);
}

static pthread_mutex_t *
cache_lock(struct auth_ctx *ctx, size_t slot)
{
	return &ctx->stripes[slot & (CACHE_STRIPES - 1)].mu;
}

/* Empty e; returns its token for the caller to wipe and free outside the
 * lock (*dead gets its principal to clear). */
static char *
cache_take(struct cache_entry *e, struct principal *dead, size_t *len)
{
	char *tok = e->token;

	*dead = e->p;
	*len = e->len;
	memset(&e->p, 0, sizeof(e->p));
	e->token = NULL;
	e->len = 0;
	e->used = false;
	return tok;
}

/*
 * Look the token (tok, len) up.  Returns false on a miss; on a hit returns
 * true with *st the time-checked status and, when AUTH_OK, a copy of the
 * principal in out.  An expired entry is dropped.
 */
static bool
cache_get(struct auth_ctx *ctx, const char *tok, size_t len, time_t now,
    struct principal *out, enum auth_status *st)
{
	struct principal dead = { NULL, NULL, 0, 0 };
	size_t slot = cache_slot(tok, len), dlen = 0;
	pthread_mutex_t *mu = cache_lock(ctx, slot);
	struct cache_entry *e = &ctx->slots[slot];
	char *dtok = NULL;
	struct times t;
	bool hit = false;

	if (len > CACHE_MAX_TOKEN)
		return false;
	pthread_mutex_lock(mu);
	if (e->used && e->len == len &&
	    CRYPTO_memcmp(e->token, tok, len) == 0) {
		hit = true;
		t.exp = e->p.exp;
		t.has_nbf = e->has_nbf;
		t.nbf = e->nbf;
		t.has_iat = e->has_iat;
		t.iat = e->iat;
		*st = check_times(ctx, now, &t);
		if (*st == AUTH_OK)
			principal_copy(out, &e->p);
		else if (*st == AUTH_EXPIRED)
			dtok = cache_take(e, &dead, &dlen);
	}
	pthread_mutex_unlock(mu);
	principal_clear(&dead);
	if (dtok != NULL)
		secretfile_wipe_free((unsigned char *)dtok, dlen);
	return hit;
}

static void
cache_put(struct auth_ctx *ctx, const char *tok, size_t len,
    const struct principal *p, const struct times *t)
{
	struct principal fresh, old;
	size_t slot = cache_slot(tok, len), olen = 0;
	pthread_mutex_t *mu = cache_lock(ctx, slot);
	struct cache_entry *e = &ctx->slots[slot];
	char *copy, *otok;

	if (len > CACHE_MAX_TOKEN)
		return;
	principal_copy(&fresh, p);
	copy = xmalloc(len);
	memcpy(copy, tok, len);
	pthread_mutex_lock(mu);
	otok = cache_take(e, &old, &olen);
	e->p = fresh;
	e->token = copy;
	e->len = len;
	e->has_nbf = t->has_nbf;
	e->nbf = t->nbf;
	e->has_iat = t->has_iat;
	e->iat = t->iat;
	e->used = true;
	pthread_mutex_unlock(mu);
	principal_clear(&old);
	if (otok != NULL)
		secretfile_wipe_free((unsigned char *)otok, olen);
}

/* -------------------------------------------------------------- verify ---- */

/* Why jwt_decode refused a token whose header was fine. */
static enum auth_status
decode_failure(const char *t, size_t hlen)
{
	const char *body = t + hlen + 1;
	const char *dot = strchr(body, '.');
	json_object *o;

	if (dot == NULL ||
	    (o = segment_json(body, (size_t)(dot - body))) == NULL)
		return AUTH_MALFORMED;
	json_object_put(o);
	return AUTH_BAD_SIGNATURE;
}

static enum auth_status
verify_token(struct auth_ctx *ctx, const char *token, size_t hlen,
    time_t now, struct principal *out, struct times *t)
{
	jwt_t *jwt = NULL;
	json_object *claims = NULL;
	char *grants = NULL;
	enum auth_status st;
	int rc;

	if ((st = check_header(ctx, token, hlen)) != AUTH_OK)
		return st;
	if (token[strlen(token) - 1] == '.')
		return AUTH_BAD_SIGNATURE;	/* no signature */
	/* Never call jwt_decode without a key: it would skip verification. */
	if (ctx->key == NULL || ctx->keylen == 0 || ctx->keylen > INT32_MAX)
		return AUTH_BAD_SIGNATURE;
	rc = jwt_decode(&jwt, token, ctx->key, (int)ctx->keylen);
	if (rc == ENOMEM)
		auth_oom();
	if (rc != 0 || jwt == NULL) {
		ERR_clear_error();
		st = decode_failure(token, hlen);
		goto cleanup;
	}
	if (jwt_get_alg(jwt) != ctx->alg) {
		st = AUTH_BAD_ALG;
		goto cleanup;
	}
	grants = jwt_get_grants_json(jwt, NULL);
	if (grants == NULL ||
	    (claims = parse_json_object(grants, strlen(grants))) == NULL) {
		st = AUTH_MALFORMED;
		goto cleanup;
	}
	st = check_claims(ctx, claims, now, out, t);
cleanup:
	json_object_put(claims);
	free(grants);
	jwt_free(jwt);
	return st;
}

enum auth_status
auth_verify(struct auth_ctx *ctx, const char *header, time_t now,
    struct principal *out)
{
	struct times t;
	enum auth_status st;
	const char *tok = NULL;
	char *token;
	size_t len = 0, hlen = 0;

	memset(out, 0, sizeof(*out));
	if ((st = bearer_token(header, &tok, &len)) != AUTH_OK)
		return st;
	if ((st = token_shape(tok, len, &hlen)) != AUTH_OK)
		return st;
	if (cache_get(ctx, tok, len, now, out, &st)) {
		atomic_fetch_add_explicit(&ctx->hits, 1, memory_order_relaxed);
		return st;
	}
	atomic_fetch_add_explicit(&ctx->misses, 1, memory_order_relaxed);
	token = xstrndup(tok, len);
	memset(&t, 0, sizeof(t));
	st = verify_token(ctx, token, hlen, now, out, &t);
	if (st == AUTH_OK)
		cache_put(ctx, tok, len, out, &t);
	free(token);
	return st;
}

/* ---------------------------------------------------------------- mint ---- */

static bool
valid_scopes(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (s[n] != ' ' && !scope_char((unsigned char)s[n]))
			return false;
	return n <= SCOPES_MAX_LEN;
}

char *
auth_mint(struct auth_ctx *ctx, const char *sub, const char *scopes,
    long ttl, time_t now, char **err)
{
	unsigned char rnd[16];
	const unsigned char *key;
	size_t keylen;
	char jti[40];
	char *s = NULL, *tok = NULL;
	jwt_t *jwt = NULL;
	int64_t n = (int64_t)now;

	*err = NULL;
	if (scopes == NULL)
		scopes = "";
	key = ctx->hmac ? ctx->key : ctx->signkey;
	keylen = ctx->hmac ? ctx->keylen : ctx->signkeylen;
	if (key == NULL || keylen == 0) {
		*err = xasprintf("jwt_signing_key_file: required to mint %s "
		    "tokens", ctx->alg_name);
		goto cleanup;
	}
	if (sub == NULL || !valid_sub(sub)) {
		*err = xasprintf("sub: must be 1 to %d printable ASCII "
		    "characters", AUTH_MAX_SUB);
		goto cleanup;
	}
	if (!valid_scopes(scopes)) {
		*err = xasprintf("scopes: must be space-separated scope tokens "
		    "(printable ASCII without '\"' and '\\'), at most %d bytes",
		    SCOPES_MAX_LEN);
		goto cleanup;
	}
	if (ttl < 1 || ttl > AUTH_MAX_TTL) {
		*err = xasprintf("ttl: must be between 1 and %ld seconds",
		    AUTH_MAX_TTL);
		goto cleanup;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ERR_clear_error();
		*err = xasprintf("cannot get random bytes for jti");
		goto cleanup;
	}
	snprintf(jti, sizeof(jti), "%02x%02x%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
	    rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10],
	    rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);

	if (jwt_new(&jwt) != 0)
		auth_oom();
	if (jwt_add_grant(jwt, "iss", ctx->issuer) != 0 ||
	    jwt_add_grant(jwt, "aud", ctx->audience) != 0 ||
	    jwt_add_grant(jwt, "sub", sub) != 0 ||
	    (scopes[0] != '\0' && jwt_add_grant(jwt, "scope", scopes) != 0) ||
	    jwt_add_grant_int(jwt, "iat", (long)n) != 0 ||
	    jwt_add_grant_int(jwt, "nbf", (long)n) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)(n + ttl)) != 0 ||
	    jwt_add_grant(jwt, "jti", jti) != 0) {
		*err = xasprintf("cannot build the token's claims");
		goto cleanup;
	}
	if (jwt_set_alg(jwt, ctx->alg, key, (int)keylen) != 0) {
		*err = xasprintf("cannot set up %s signing", ctx->alg_name);
		goto cleanup;
	}
	if ((s = jwt_encode_str(jwt)) == NULL) {
		*err = xasprintf("%s signing failed", ctx->alg_name);
		goto cleanup;
	}
	if (strlen(s) > AUTH_MAX_TOKEN) {
		*err = xasprintf("token longer than %d bytes; use fewer scopes",
		    AUTH_MAX_TOKEN);
		goto cleanup;
	}
	tok = xstrdup(s);
cleanup:
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
	jwt_free(jwt);
	ERR_clear_error();
	return tok;
}
