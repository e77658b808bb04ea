/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <sys/stat.h>

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "http/auth.h"
#include "core/config.h"
#include "testutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define NOW	1700000000L
#define ISS	"https://issuer.test"
#define AUD	"instag-agent"
#define SECRET	"0123456789abcdef0123456789abcdef-test-secret"

/* ------------------------------------------------------------ helpers ---- */

static char tmp_paths[16][64];
static int ntmp;

static void
teardown(void)
{
	int i;

	for (i = 0; i < ntmp; i++)
		unlink(tmp_paths[i]);
	ntmp = 0;
}

/* Write len bytes to a new temporary file with mode; returns its path. */
static const char *
write_file(const void *data, size_t len, mode_t mode)
{
	char *p;

	ck_assert_int_lt(ntmp, 16);
	p = tmp_paths[ntmp++];
	strcpy(p, "/tmp/ia-auth-XXXXXX");
	tu_write_temp(p, data, len, mode);
	return p;
}

static struct config *
make_cfg(const char *alg, const char *keyfile, const char *signfile)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));

	cfg->jwt_alg = xstrdup(alg);
	cfg->jwt_key_file = xstrdup(keyfile);
	cfg->jwt_signing_key_file = xstrdup(signfile ? signfile : "");
	cfg->jwt_issuer = xstrdup(ISS);
	cfg->jwt_audience = xstrdup(AUD);
	cfg->jwt_leeway = 30;
	return cfg;
}

/* A context for alg with key file contents key; fails the test otherwise. */
static struct auth_ctx *
ctx_for(const char *alg, const void *key, size_t keylen, const void *sign,
    size_t signlen)
{
	struct config *cfg;
	struct auth_ctx *ctx = NULL;
	char *err = NULL;
	const char *kf, *sf = NULL;

	kf = write_file(key, keylen, 0600);
	if (sign != NULL)
		sf = write_file(sign, signlen, 0600);
	cfg = make_cfg(alg, kf, sf);
	if (auth_ctx_new(cfg, &ctx, &err) != 0)
		ck_abort_msg("auth_ctx_new: %s", err);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_null(err);
	config_free(cfg);
	return ctx;
}

static struct auth_ctx *
hs_ctx(const char *alg, const char *secret)
{
	return ctx_for(alg, secret, strlen(secret), NULL, 0);
}

/* auth_ctx_new on cfg must fail; frees cfg and returns the error message
 * (caller frees). */
static char *
ctx_error(struct config *cfg)
{
	struct auth_ctx *ctx = NULL;
	char *err = NULL;

	ck_assert_int_eq(auth_ctx_new(cfg, &ctx, &err), -1);
	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(err);
	config_free(cfg);
	return err;
}

/* auth_ctx_new on cfg must fail with a message containing needle. */
static void
expect_ctx_error(struct config *cfg, const char *needle)
{
	char *err = ctx_error(cfg);

	if (strstr(err, needle) == NULL)
		ck_abort_msg("error '%s' lacks '%s'", err, needle);
	free(err);
}

/* auth_ctx_new on cfg must succeed; frees cfg and the context. */
static void
expect_ctx_ok(struct config *cfg)
{
	struct auth_ctx *ctx = NULL;
	char *err = NULL;

	ck_assert_int_eq(auth_ctx_new(cfg, &ctx, &err), 0);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_null(err);
	auth_ctx_free(ctx);
	config_free(cfg);
}

static char *
b64url(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	char *r, *w;

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	for (r = w = out; *r; r++) {
		if (*r == '+')
			*w++ = '-';
		else if (*r == '/')
			*w++ = '_';
		else if (*r != '=')
			*w++ = *r;
	}
	*w = '\0';
	return out;
}

static char *
b64s(const char *s)
{
	return b64url(s, strlen(s));
}

/* header.payload signed with HMAC(md, key), built by hand. */
static char *
hmac_token(const char *header, const char *payload, const void *key,
    size_t keylen, const EVP_MD *md)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *h = b64url(header, strlen(header));
	char *p = b64url(payload, strlen(payload));
	char *input = xasprintf("%s.%s", h, p);
	char *sig, *tok;

	ck_assert_ptr_nonnull(HMAC(md, key, (int)keylen,
	    (const unsigned char *)input, strlen(input), mac, &maclen));
	sig = b64url(mac, maclen);
	tok = xasprintf("%s.%s", input, sig);
	free(h);
	free(p);
	free(input);
	free(sig);
	return tok;
}

static char *
hs256(const char *payload)
{
	return hmac_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload,
	    SECRET, strlen(SECRET), EVP_sha256());
}

/* Sign payload with libjwt (for RS and ES, whose signatures it formats). */
static char *
jwt_sign(jwt_alg_t alg, const void *key, size_t keylen, const char *payload)
{
	jwt_t *jwt = NULL;
	char *s, *tok;

	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_int_eq(jwt_add_grants_json(jwt, payload), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, alg, key, (int)keylen), 0);
	s = jwt_encode_str(jwt);
	ck_assert_ptr_nonnull(s);
	tok = xstrdup(s);
	free(s);
	jwt_free(jwt);
	return tok;
}

/* Standard valid claims followed by extra (",\"k\":v" or ""). */
static char *
claims(long exp, const char *extra)
{
	return xasprintf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
	    "\"sub\":\"alice\",\"exp\":%ld%s}", exp, extra);
}

/* Verify tok at now; the principal is discarded. */
static enum auth_status
vfy(struct auth_ctx *ctx, const char *tok, long now)
{
	struct principal p;
	char *h = xasprintf("Bearer %s", tok);
	enum auth_status st = auth_verify(ctx, h, (time_t)now, &p);

	if (st != AUTH_OK)
		ck_assert_ptr_null(p.sub);
	principal_clear(&p);
	free(h);
	return st;
}

/* Sign payload with the test secret and verify at NOW. */
static enum auth_status
vfy_payload(struct auth_ctx *ctx, const char *payload)
{
	char *t = hs256(payload);
	enum auth_status st = vfy(ctx, t, NOW);

	free(t);
	return st;
}

/* hmac_token(header, payload, key, keylen, md) verified at NOW. */
static enum auth_status
vfy_hmac(struct auth_ctx *ctx, const char *header, const char *payload,
    const void *key, size_t keylen, const EVP_MD *md)
{
	char *t = hmac_token(header, payload, key, keylen, md);
	enum auth_status st = vfy(ctx, t, NOW);

	free(t);
	return st;
}

/* jwt_sign(alg, key, keylen, payload) verified at NOW. */
static enum auth_status
vfy_jwt(struct auth_ctx *ctx, jwt_alg_t alg, const void *key, size_t keylen,
    const char *payload)
{
	char *t = jwt_sign(alg, key, keylen, payload);
	enum auth_status st = vfy(ctx, t, NOW);

	free(t);
	return st;
}

/* Verify "Bearer tok" at now, which must pass, into *p (caller clears). */
static void
vfy_ok(struct auth_ctx *ctx, const char *tok, long now,
    struct principal *p)
{
	char *h = xasprintf("Bearer %s", tok);

	ck_assert_int_eq(auth_verify(ctx, h, (time_t)now, p), AUTH_OK);
	free(h);
}

/* Sign claims(NOW + 600, extra) with the test secret; verifying it at NOW
 * must pass, into *p (caller clears). */
static void
vfy_claims_ok(struct auth_ctx *ctx, const char *extra,
    struct principal *p)
{
	char *c = claims(NOW + 600, extra);
	char *t = hs256(c);

	vfy_ok(ctx, t, NOW, p);
	free(t);
	free(c);
}

/* p is sub's, expires at exp and holds exactly the space-separated scopes,
 * in that order. */
static void
assert_principal(const struct principal *p, const char *sub, long exp,
    const char *scopes)
{
	char *copy = xstrdup(scopes), *tok, *save = NULL;
	size_t n = 0;

	ck_assert_str_eq(p->sub, sub);
	ck_assert_int_eq(p->exp, exp);
	for (tok = strtok_r(copy, " ", &save); tok;
	    tok = strtok_r(NULL, " ", &save), n++) {
		ck_assert_uint_lt(n, p->nscopes);
		ck_assert_str_eq(p->scopes[n], tok);
	}
	ck_assert_uint_eq(p->nscopes, n);
	free(copy);
}

/* A token of claims(exp, extra), signed with the test secret, and the
 * status verifying it at NOW must give. */
struct claims_case {
	long exp;
	const char *extra;
	enum auth_status want;
};

/* A payload signed with the test secret and its status at NOW. */
struct payload_case {
	const char *payload;
	enum auth_status want;
};

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* Sign payload with the test secret; verifying it at NOW must give want. */
static void
expect_payload(struct auth_ctx *ctx, const char *payload,
    enum auth_status want)
{
	enum auth_status st = vfy_payload(ctx, payload);

	ck_assert_msg(st == want, "%s: status %d, not %d", payload, (int)st,
	    (int)want);
}

/* Check the n cases against an HS256 context with the test secret. */
static void
expect_claims(const struct claims_case *cc, size_t n)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = claims(cc[i].exp, cc[i].extra);
		expect_payload(ctx, c, cc[i].want);
		free(c);
	}
	auth_ctx_free(ctx);
}

/* Check the n cases against an HS256 context with the test secret. */
static void
expect_payloads(const struct payload_case *pc, size_t n)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	size_t i;

	for (i = 0; i < n; i++)
		expect_payload(ctx, pc[i].payload, pc[i].want);
	auth_ctx_free(ctx);
}

/* Mint n tokens for the subjects <prefix>0 ... <prefix>(n-1) with scopes,
 * valid for 600 s from NOW; free them with free_tokens. */
static void
mint_tokens(struct auth_ctx *ctx, char **toks, int n, const char *prefix,
    const char *scopes)
{
	char sub[32], *err = NULL;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s%d", prefix, i);
		toks[i] = auth_mint(ctx, sub, scopes, 600, NOW, &err);
		ck_assert_ptr_nonnull(toks[i]);
	}
}

static void
free_tokens(char **toks, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(toks[i]);
}

struct keypair {
	char *pub;
	size_t publen;
	char *priv;
	size_t privlen;
};

static char *
bio_take(BIO *bio, size_t *len)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *out;

	ck_assert_int_gt(n, 0);
	out = xmalloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	return out;
}

/* A fresh key pair: "RSA" (2048 bits) or "EC" on curve. */
static void
keypair(struct keypair *kp, const char *type, const char *curve)
{
	EVP_PKEY *pk;
	BIO *b;

	if (strcmp(type, "RSA") == 0)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	ck_assert_ptr_nonnull(pk);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PUBKEY(b, pk), 1);
	kp->pub = bio_take(b, &kp->publen);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL,
	    NULL), 1);
	kp->priv = bio_take(b, &kp->privlen);
	EVP_PKEY_free(pk);
}

static void
keypair_free(struct keypair *kp)
{
	free(kp->pub);
	free(kp->priv);
}

/* -------------------------------------------------------------- tests ---- */

START_TEST(test_valid_hs256)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct principal p;
	char *c = claims(NOW + 600, ",\"iat\":1700000000,\"nbf\":1700000000,"
	    "\"scope\":\"tasks:read tasks:write\",\"jti\":\"x\"");
	char *t = hs256(c);
	char *h;

	vfy_ok(ctx, t, NOW, &p);
	assert_principal(&p, "alice", NOW + 600, "tasks:read tasks:write");
	principal_clear(&p);
	ck_assert_ptr_null(p.sub);
	ck_assert_ptr_null(p.scopes);
	ck_assert_uint_eq(p.nscopes, 0);

	/* Scheme is case-insensitive; several spaces; surrounding blanks. */
	h = xasprintf("  bEaReR    %s \t", t);
	ck_assert_int_eq(auth_verify(ctx, h, NOW, &p), AUTH_OK);
	ck_assert_str_eq(p.sub, "alice");
	principal_clear(&p);
	free(h);
	free(t);
	free(c);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_missing_header)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct principal p;

	memset(&p, 0xa5, sizeof(p));
	ck_assert_int_eq(auth_verify(ctx, NULL, NOW, &p), AUTH_MISSING);
	ck_assert_ptr_null(p.sub);
	ck_assert_ptr_null(p.scopes);
	ck_assert_uint_eq(p.nscopes, 0);
	ck_assert_int_eq(auth_verify(ctx, "", NOW, &p), AUTH_MISSING);
	ck_assert_int_eq(auth_verify(ctx, "  \t ", NOW, &p), AUTH_MISSING);
	ck_assert_str_eq(auth_status_reason(AUTH_MISSING),
	    "missing bearer token");
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_not_bearer)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct principal p;
	char *c = claims(NOW + 600, "");
	char *t = hs256(c);
	char *h;

	/* Another scheme is "no bearer token" (RFC 6750 section 3.1). */
	ck_assert_int_eq(auth_verify(ctx, "Basic dXNlcjpwYXNz", NOW, &p),
	    AUTH_MISSING);
	h = xasprintf("Token %s", t);
	ck_assert_int_eq(auth_verify(ctx, h, NOW, &p), AUTH_MISSING);
	free(h);
	h = xasprintf("Bearer%s", t);
	ck_assert_int_eq(auth_verify(ctx, h, NOW, &p), AUTH_MISSING);
	free(h);
	h = xasprintf("Bearer\t%s", t);
	ck_assert_int_eq(auth_verify(ctx, h, NOW, &p), AUTH_MISSING);
	free(h);
	/* The bare token without a scheme is refused too. */
	ck_assert_int_eq(auth_verify(ctx, t, NOW, &p), AUTH_MISSING);
	/* Bearer with no token. */
	ck_assert_int_eq(auth_verify(ctx, "Bearer", NOW, &p), AUTH_MALFORMED);
	ck_assert_int_eq(auth_verify(ctx, "Bearer   ", NOW, &p),
	    AUTH_MALFORMED);
	ck_assert_ptr_null(p.sub);
	free(t);
	free(c);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_garbage)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *big, *t, *h64;

	ck_assert_int_eq(vfy(ctx, "garbage", NOW), AUTH_MALFORMED);
	ck_assert_int_eq(vfy(ctx, "!!!.???.***", NOW), AUTH_MALFORMED);
	ck_assert_int_eq(vfy(ctx, "a.b.c", NOW), AUTH_MALFORMED);
	ck_assert_int_eq(vfy(ctx, "..", NOW), AUTH_MALFORMED);
	ck_assert_int_eq(vfy(ctx, "abcd.efgh.ij kl", NOW), AUTH_MALFORMED);
	/* Padding is not base64url. */
	ck_assert_int_eq(vfy(ctx, "eyJhbGciOiJIUzI1NiJ9.e30=.c2ln", NOW),
	    AUTH_MALFORMED);
	/* Header decodes but is not JSON. */
	h64 = b64s("not json");
	t = xasprintf("%s.e30.c2ln", h64);
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_MALFORMED);
	free(t);
	free(h64);
	/* Valid header, payload not JSON: malformed, not a bad signature. */
	ck_assert_int_eq(vfy_hmac(ctx, "{\"alg\":\"HS256\"}", "not json",
	    SECRET, strlen(SECRET), EVP_sha256()), AUTH_MALFORMED);
	/* Payload a JSON array. */
	ck_assert_int_eq(vfy_hmac(ctx, "{\"alg\":\"HS256\"}", "[1,2]", SECRET,
	    strlen(SECRET), EVP_sha256()), AUTH_MALFORMED);
	/* Over 8 KiB. */
	big = xmalloc(AUTH_MAX_TOKEN + 2);
	memset(big, 'A', AUTH_MAX_TOKEN + 1);
	big[10] = '.';
	big[20] = '.';
	big[AUTH_MAX_TOKEN + 1] = '\0';
	ck_assert_int_eq(vfy(ctx, big, NOW), AUTH_MALFORMED);
	free(big);
	ck_assert_str_eq(auth_status_reason(AUTH_MALFORMED), "malformed token");
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_segments)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *c = claims(NOW + 600, "");
	char *t = hs256(c);
	char *two = xstrdup(t), *four, *emptyp;

	*strrchr(two, '.') = '\0';
	ck_assert_int_eq(vfy(ctx, two, NOW), AUTH_MALFORMED);
	four = xasprintf("%s.c2ln", t);
	ck_assert_int_eq(vfy(ctx, four, NOW), AUTH_MALFORMED);
	emptyp = xstrdup(t);
	/* header..sig */
	memmove(strchr(emptyp, '.') + 1, strrchr(emptyp, '.'),
	    strlen(strrchr(emptyp, '.')) + 1);
	ck_assert_int_eq(vfy(ctx, emptyp, NOW), AUTH_MALFORMED);
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	free(two);
	free(four);
	free(emptyp);
	free(t);
	free(c);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_expired)
{
	static const struct claims_case cases[] = {
		{ NOW - 100, "", AUTH_EXPIRED },
		{ 1, "", AUTH_EXPIRED },
		{ -5, "", AUTH_EXPIRED },
	};

	expect_claims(cases, NCASES(cases));
	ck_assert_str_eq(auth_status_reason(AUTH_EXPIRED), "token expired");
}
END_TEST

START_TEST(test_expired_within_leeway)
{
	static const struct claims_case cases[] = {
		/* leeway 30: valid while now < exp + 30 */
		{ NOW - 10, "", AUTH_OK },
		{ NOW - 29, "", AUTH_OK },
		{ NOW - 30, "", AUTH_EXPIRED },
		{ NOW - 31, "", AUTH_EXPIRED },
		/* A huge exp must not overflow into the past. */
		{ 9223372036854775807L, "", AUTH_OK },
	};

	expect_claims(cases, NCASES(cases));
}
END_TEST

START_TEST(test_nbf_future)
{
	static const struct claims_case cases[] = {
		{ NOW + 600, ",\"nbf\":1700000100", AUTH_NOT_YET_VALID },
		{ NOW + 600, ",\"nbf\":1700000031", AUTH_NOT_YET_VALID },
		{ NOW + 600, ",\"nbf\":1700000030", AUTH_OK },
		{ NOW + 600, ",\"nbf\":1699990000", AUTH_OK },
	};

	expect_claims(cases, NCASES(cases));
	ck_assert_str_eq(auth_status_reason(AUTH_NOT_YET_VALID),
	    "token not yet valid");
}
END_TEST

START_TEST(test_iat_future)
{
	static const struct claims_case cases[] = {
		{ NOW + 600, ",\"iat\":1700000100", AUTH_NOT_YET_VALID },
		{ NOW + 600, ",\"iat\":1700000020", AUTH_OK },
		{ NOW + 600, ",\"iat\":1600000000", AUTH_OK },
	};

	expect_claims(cases, NCASES(cases));
}
END_TEST

START_TEST(test_wrong_issuer)
{
	static const struct payload_case cases[] = {
		{ "{\"iss\":\"https://evil.test\",\"aud\":\"" AUD "\","
		    "\"sub\":\"a\",\"exp\":1700000600}", AUTH_BAD_ISSUER },
		{ "{\"iss\":\"https://issuer.test/\",\"aud\":\"" AUD "\","
		    "\"sub\":\"a\",\"exp\":1700000600}", AUTH_BAD_ISSUER },
		{ "{\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1700000600}",
		    AUTH_BAD_ISSUER },
		{ "{\"iss\":[\"" ISS "\"],\"aud\":\"" AUD "\",\"sub\":\"a\","
		    "\"exp\":1700000600}", AUTH_BAD_ISSUER },
	};

	expect_payloads(cases, NCASES(cases));
}
END_TEST

START_TEST(test_wrong_audience)
{
	static const struct payload_case cases[] = {
		{ "{\"iss\":\"" ISS "\",\"aud\":\"other\",\"sub\":\"a\","
		    "\"exp\":1700000600}", AUTH_BAD_AUDIENCE },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"exp\":1700000600}",
		    AUTH_BAD_AUDIENCE },
		{ "{\"iss\":\"" ISS "\",\"aud\":7,\"sub\":\"a\","
		    "\"exp\":1700000600}", AUTH_BAD_AUDIENCE },
	};

	expect_payloads(cases, NCASES(cases));
}
END_TEST

START_TEST(test_aud_array)
{
	static const struct payload_case cases[] = {
		{ "{\"iss\":\"" ISS "\",\"aud\":[\"x\",1,\"" AUD "\"],"
		    "\"sub\":\"a\",\"exp\":1700000600}", AUTH_OK },
		{ "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"y\"],\"sub\":\"a\","
		    "\"exp\":1700000600}", AUTH_BAD_AUDIENCE },
		{ "{\"iss\":\"" ISS "\",\"aud\":[],\"sub\":\"a\","
		    "\"exp\":1700000600}", AUTH_BAD_AUDIENCE },
		{ "{\"iss\":\"" ISS "\",\"aud\":[[\"" AUD "\"]],\"sub\":\"a\","
		    "\"exp\":1700000600}", AUTH_BAD_AUDIENCE },
	};

	expect_payloads(cases, NCASES(cases));
}
END_TEST

START_TEST(test_missing_exp)
{
	static const struct payload_case cases[] = {
		{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\"}",
		    AUTH_BAD_CLAIMS },
		{ "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\","
		    "\"nbf\":1600000000,\"iat\":1600000000}", AUTH_BAD_CLAIMS },
	};

	expect_payloads(cases, NCASES(cases));
}
END_TEST

START_TEST(test_non_integer_times)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	const char *pre =
	    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",";
	static const char *const bad[] = {
		"\"exp\":\"9999999999\"}",
		"\"exp\":9999999999.0}",
		"\"exp\":1.9e9}",
		"\"exp\":null}",
		"\"exp\":true}",
		"\"exp\":[9999999999]}",
		"\"exp\":9999999999,\"nbf\":\"9999999999\"}",
		"\"exp\":9999999999,\"nbf\":1.0}",
		"\"exp\":9999999999,\"iat\":\"1\"}",
		"\"exp\":9999999999,\"iat\":null}",
		NULL
	};
	char *p;
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		p = xasprintf("%s%s", pre, bad[i]);
		if (vfy_payload(ctx, p) != AUTH_BAD_CLAIMS)
			ck_abort_msg("not BAD_CLAIMS: %s", p);
		free(p);
	}
	p = xasprintf("%s%s", pre, "\"exp\":9999999999,\"nbf\":1,\"iat\":1}");
	ck_assert_int_eq(vfy_payload(ctx, p), AUTH_OK);
	free(p);
	ck_assert_str_eq(auth_status_reason(AUTH_BAD_CLAIMS),
	    "invalid token claims");
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_wrong_key)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	const char *other = "another-secret-of-more-than-32-bytes!!";
	char *c = claims(NOW + 600, "");

	ck_assert_int_eq(vfy_hmac(ctx, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c,
	    other, strlen(other), EVP_sha256()), AUTH_BAD_SIGNATURE);
	/* The secret with one byte more or less. */
	ck_assert_int_eq(vfy_hmac(ctx, "{\"alg\":\"HS256\"}", c, SECRET,
	    strlen(SECRET) - 1, EVP_sha256()), AUTH_BAD_SIGNATURE);
	/* Right key: accepted (the same claims, so the test is about
	 * the key). */
	ck_assert_int_eq(vfy_hmac(ctx, "{\"alg\":\"HS256\"}", c, SECRET,
	    strlen(SECRET), EVP_sha256()), AUTH_OK);
	ck_assert_str_eq(auth_status_reason(AUTH_BAD_SIGNATURE),
	    "invalid token signature");
	free(c);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_alg_none)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *c = claims(NOW + 600, "");
	char *h = b64s("{\"alg\":\"none\",\"typ\":\"JWT\"}");
	char *p = b64url(c, strlen(c));
	char *t = xasprintf("%s.%s.", h, p);
	char *t2 = xasprintf("%s.%s.c2lnbmF0dXJl", h, p);
	char *h3 = b64s("{\"typ\":\"JWT\"}");
	char *t3 = xasprintf("%s.%s.c2lnbmF0dXJl", h3, p);
	char *h4 = b64s("{\"alg\":\"NONE\"}");
	char *t4 = xasprintf("%s.%s.", h4, p);

	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_BAD_ALG);
	ck_assert_int_eq(vfy(ctx, t2, NOW), AUTH_BAD_ALG);
	ck_assert_int_eq(vfy(ctx, t3, NOW), AUTH_BAD_ALG);	/* no alg */
	ck_assert_int_eq(vfy(ctx, t4, NOW), AUTH_BAD_ALG);
	ck_assert_str_eq(auth_status_reason(AUTH_BAD_ALG),
	    "token algorithm not accepted");
	free(c);
	free(h);
	free(p);
	free(t);
	free(t2);
	free(h3);
	free(t3);
	free(h4);
	free(t4);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_header_checks)
{
	static const struct {
		const char *header;
		enum auth_status want;
	} cases[] = {
		{ "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", AUTH_OK },
		{ "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", AUTH_MALFORMED },
		{ "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", AUTH_MALFORMED },
		{ "{\"alg\":\"hs256\"}", AUTH_BAD_ALG },
		{ "{\"alg\":256}", AUTH_BAD_ALG },
	};
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *c = claims(NOW + 600, "");
	char *t;
	size_t i;

	for (i = 0; i < NCASES(cases); i++)
		ck_assert_msg(vfy_hmac(ctx, cases[i].header, c, SECRET,
		    strlen(SECRET), EVP_sha256()) == cases[i].want,
		    "header %s: not status %d", cases[i].header,
		    (int)cases[i].want);
	/* Valid signature but nothing after the last dot. */
	t = hmac_token("{\"alg\":\"HS256\"}", c, SECRET, strlen(SECRET),
	    EVP_sha256());
	strrchr(t, '.')[1] = '\0';
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_BAD_SIGNATURE);
	free(t);
	free(c);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_hs_rs_confusion)
{
	struct keypair kp;
	struct auth_ctx *ctx;
	char *c = claims(NOW + 600, "");

	keypair(&kp, "RSA", NULL);
	ctx = ctx_for("RS256", kp.pub, kp.publen, NULL, 0);
	/* HMAC with the public PEM as the secret, exactly as libjwt would. */
	ck_assert_int_eq(vfy_jwt(ctx, JWT_ALG_HS256, kp.pub, kp.publen, c),
	    AUTH_BAD_ALG);
	ck_assert_int_eq(vfy_hmac(ctx, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c,
	    kp.pub, kp.publen, EVP_sha256()), AUTH_BAD_ALG);
	/* Same trick with the header claiming RS256: signature check fails. */
	ck_assert_int_eq(vfy_hmac(ctx, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", c,
	    kp.pub, kp.publen, EVP_sha256()), AUTH_BAD_SIGNATURE);
	/* And the genuine RS256 token passes. */
	ck_assert_int_eq(vfy_jwt(ctx, JWT_ALG_RS256, kp.priv, kp.privlen, c),
	    AUTH_OK);
	free(c);
	auth_ctx_free(ctx);
	keypair_free(&kp);
}
END_TEST

START_TEST(test_hs384_when_hs256)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct auth_ctx *ctx384 = hs_ctx("HS384", SECRET);
	char *c = claims(NOW + 600, "");
	char *t384 = hmac_token("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", c,
	    SECRET, strlen(SECRET), EVP_sha384());
	char *t512 = hmac_token("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", c,
	    SECRET, strlen(SECRET), EVP_sha512());
	char *t256 = hs256(c);

	ck_assert_int_eq(vfy(ctx, t384, NOW), AUTH_BAD_ALG);
	ck_assert_int_eq(vfy(ctx, t512, NOW), AUTH_BAD_ALG);
	ck_assert_int_eq(vfy(ctx, t256, NOW), AUTH_OK);
	ck_assert_int_eq(vfy(ctx384, t384, NOW), AUTH_OK);
	ck_assert_int_eq(vfy(ctx384, t256, NOW), AUTH_BAD_ALG);
	free(c);
	free(t384);
	free(t512);
	free(t256);
	auth_ctx_free(ctx);
	auth_ctx_free(ctx384);
}
END_TEST

START_TEST(test_tampered_payload)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *c = claims(NOW + 600, ",\"scope\":\"tasks:read\"");
	char *t = hs256(c);
	char *c2 = xasprintf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
	    "\"sub\":\"admin\",\"exp\":%ld,\"scope\":\"tasks:read\"}",
	    NOW + 600);
	char *p2 = b64url(c2, strlen(c2));
	char *sig = strrchr(t, '.') + 1;
	char *hdr = xstrndup(t, (size_t)(strchr(t, '.') - t));
	char *forged = xasprintf("%s.%s.%s", hdr, p2, sig);
	char *badsig;

	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	ck_assert_int_eq(vfy(ctx, forged, NOW), AUTH_BAD_SIGNATURE);
	/* Flip one character of the signature. */
	badsig = xstrdup(t);
	{
		char *s = strrchr(badsig, '.') + 1;
		s[0] = s[0] == 'A' ? 'B' : 'A';
	}
	ck_assert_int_eq(vfy(ctx, badsig, NOW), AUTH_BAD_SIGNATURE);
	free(badsig);
	free(forged);
	free(hdr);
	free(p2);
	free(c2);
	free(t);
	free(c);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_rs256_valid)
{
	struct keypair kp, other;
	struct auth_ctx *ctx, *octx;
	struct principal p;
	char *c = claims(NOW + 600, ",\"scp\":[\"tasks:read\"]");
	char *t;

	keypair(&kp, "RSA", NULL);
	keypair(&other, "RSA", NULL);
	ctx = ctx_for("RS256", kp.pub, kp.publen, NULL, 0);
	octx = ctx_for("RS256", other.pub, other.publen, NULL, 0);
	t = jwt_sign(JWT_ALG_RS256, kp.priv, kp.privlen, c);
	vfy_ok(ctx, t, NOW, &p);
	assert_principal(&p, "alice", NOW + 600, "tasks:read");
	ck_assert(principal_has_scope(&p, "tasks:read"));
	principal_clear(&p);
	ck_assert_int_eq(vfy(octx, t, NOW), AUTH_BAD_SIGNATURE);
	free(t);
	/* RS384 token for an RS256 context. */
	ck_assert_int_eq(vfy_jwt(ctx, JWT_ALG_RS384, kp.priv, kp.privlen, c),
	    AUTH_BAD_ALG);
	free(c);
	auth_ctx_free(ctx);
	auth_ctx_free(octx);
	keypair_free(&kp);
	keypair_free(&other);
}
END_TEST

START_TEST(test_es256_valid)
{
	struct keypair kp, rsa;
	struct auth_ctx *ctx;
	struct principal p;
	char *c = claims(NOW + 600, ",\"scope\":\"a\"");
	char *t;

	keypair(&kp, "EC", "P-256");
	keypair(&rsa, "RSA", NULL);
	ctx = ctx_for("ES256", kp.pub, kp.publen, NULL, 0);
	t = jwt_sign(JWT_ALG_ES256, kp.priv, kp.privlen, c);
	vfy_ok(ctx, t, NOW, &p);
	assert_principal(&p, "alice", NOW + 600, "a");
	principal_clear(&p);
	free(t);
	/* An RS256 token for the ES256 context. */
	ck_assert_int_eq(vfy_jwt(ctx, JWT_ALG_RS256, rsa.priv, rsa.privlen, c),
	    AUTH_BAD_ALG);
	free(c);
	auth_ctx_free(ctx);
	keypair_free(&kp);
	keypair_free(&rsa);
}
END_TEST

START_TEST(test_scopes)
{
	/* Wrong types and characters. */
	static const struct claims_case bad[] = {
		{ NOW + 600, ",\"scope\":5", AUTH_BAD_CLAIMS },
		{ NOW + 600, ",\"scp\":[1]", AUTH_BAD_CLAIMS },
		{ NOW + 600, ",\"scp\":{\"a\":1}", AUTH_BAD_CLAIMS },
		{ NOW + 600, ",\"scope\":\"a\\u0001b\"", AUTH_BAD_CLAIMS },
		{ NOW + 600, ",\"scope\":\"a\\\"b\"", AUTH_BAD_CLAIMS },
	};
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct principal p;

	vfy_claims_ok(ctx, ",\"scope\":\"  a:read   b:write c \","
	    "\"scp\":[\"d\",\"e f\"]", &p);
	assert_principal(&p, "alice", NOW + 600, "a:read b:write c d e f");
	ck_assert(principal_has_scope(&p, "a:read"));
	ck_assert(principal_has_scope(&p, "f"));
	ck_assert(!principal_has_scope(&p, "a"));
	ck_assert(!principal_has_scope(&p, "a:read "));
	ck_assert(!principal_has_scope(&p, ""));
	ck_assert(!principal_has_scope(NULL, "a:read"));
	principal_clear(&p);

	/* scp alone, as an array. */
	vfy_claims_ok(ctx, ",\"scp\":[\"tasks:read\",\"tasks:write\"]", &p);
	assert_principal(&p, "alice", NOW + 600, "tasks:read tasks:write");
	ck_assert(principal_has_scope(&p, "tasks:write"));
	ck_assert(!principal_has_scope(&p, "tasks:admin"));
	principal_clear(&p);

	/* No scope at all. */
	vfy_claims_ok(ctx, ",\"scope\":\"\"", &p);
	assert_principal(&p, "alice", NOW + 600, "");
	ck_assert_ptr_null(p.scopes);
	ck_assert(!principal_has_scope(&p, "tasks:read"));
	principal_clear(&p);

	expect_claims(bad, NCASES(bad));
	auth_ctx_free(ctx);
}
END_TEST

/* Valid claims but for sub, which is given as ",\"sub\":..." or "". */
#define SUB_PAYLOAD(sub) \
	"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"" sub ",\"exp\":1700000600}"

START_TEST(test_sub_validation)
{
	static const struct payload_case bad_subs[] = {
		{ SUB_PAYLOAD(""), AUTH_BAD_CLAIMS },
		{ SUB_PAYLOAD(",\"sub\":\"\""), AUTH_BAD_CLAIMS },
		{ SUB_PAYLOAD(",\"sub\":42"), AUTH_BAD_CLAIMS },
		{ SUB_PAYLOAD(",\"sub\":\"a\\nb\""), AUTH_BAD_CLAIMS },
		{ SUB_PAYLOAD(",\"sub\":\"caf\\u00e9\""), AUTH_BAD_CLAIMS },
	};
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char long_sub[AUTH_MAX_SUB + 2];
	char *p;

	expect_payloads(bad_subs, NCASES(bad_subs));
	memset(long_sub, 'x', sizeof(long_sub));
	long_sub[AUTH_MAX_SUB] = '\0';
	p = xasprintf(SUB_PAYLOAD(",\"sub\":\"%s\""), long_sub);
	ck_assert_int_eq(vfy_payload(ctx, p), AUTH_OK);
	free(p);
	long_sub[AUTH_MAX_SUB] = 'x';
	long_sub[AUTH_MAX_SUB + 1] = '\0';
	p = xasprintf(SUB_PAYLOAD(",\"sub\":\"%s\""), long_sub);
	ck_assert_int_eq(vfy_payload(ctx, p), AUTH_BAD_CLAIMS);
	free(p);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_secret_mode)
{
	const char *path;
	char *err;

	path = write_file(SECRET, strlen(SECRET), 0644);
	err = ctx_error(make_cfg("HS256", path, NULL));
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "jwt_key_file"));
	ck_assert_ptr_null(strstr(err, SECRET));
	free(err);

	path = write_file(SECRET, strlen(SECRET), 0640);
	expect_ctx_error(make_cfg("HS256", path, NULL), "group or others");
	path = write_file(SECRET, strlen(SECRET), 0604);
	expect_ctx_error(make_cfg("HS512", path, NULL), "group or others");

	path = write_file(SECRET, strlen(SECRET), 0400);
	expect_ctx_ok(make_cfg("HS256", path, NULL));
}
END_TEST

START_TEST(test_secret_short)
{
	const char *path;
	char *err;

	path = write_file(SECRET, 31, 0600);
	err = ctx_error(make_cfg("HS256", path, NULL));
	ck_assert_ptr_nonnull(strstr(err, "at least 32 bytes"));
	ck_assert_ptr_null(strstr(err, "0123456789abcdef"));
	free(err);

	path = write_file("", 0, 0600);
	expect_ctx_error(make_cfg("HS256", path, NULL), "at least 32 bytes");

	path = write_file(SECRET, 32, 0600);
	expect_ctx_ok(make_cfg("HS256", path, NULL));
}
END_TEST

START_TEST(test_ctx_errors)
{
	struct keypair rsa, ec, rsa2;
	const char *sec, *pub, *pubsec, *priv, *ecpub, *ecpriv, *priv2,
	    *privopen;

	keypair(&rsa, "RSA", NULL);
	keypair(&rsa2, "RSA", NULL);
	keypair(&ec, "EC", "P-256");
	sec = write_file(SECRET, strlen(SECRET), 0600);
	pub = write_file(rsa.pub, rsa.publen, 0644);
	pubsec = write_file(rsa.pub, rsa.publen, 0600);
	priv = write_file(rsa.priv, rsa.privlen, 0600);
	priv2 = write_file(rsa2.priv, rsa2.privlen, 0600);
	privopen = write_file(rsa.priv, rsa.privlen, 0644);
	ecpub = write_file(ec.pub, ec.publen, 0644);
	ecpriv = write_file(ec.priv, ec.privlen, 0600);

	expect_ctx_error(make_cfg("HS256", "/nonexistent/jwt.key", NULL),
	    "cannot open /nonexistent/jwt.key");
	expect_ctx_error(make_cfg("HS256", "", NULL), "jwt_key_file: required");
	expect_ctx_error(make_cfg("HS256", "/tmp", NULL), "not a regular file");
	expect_ctx_error(make_cfg("none", sec, NULL), "not supported");
	expect_ctx_error(make_cfg("hs256", sec, NULL), "not supported");
	expect_ctx_error(make_cfg("HS256", sec, priv), "only used with RS*");
	/* A secret is not a PEM public key; nor is a private key. */
	expect_ctx_error(make_cfg("RS256", sec, NULL), "not a PEM public key");
	expect_ctx_error(make_cfg("RS256", priv, NULL), "not a PEM public key");
	/* Key type must match the alg family, and the curve the alg. */
	expect_ctx_error(make_cfg("ES256", pub, NULL), "not an EC key");
	expect_ctx_error(make_cfg("RS256", ecpub, NULL), "not an RSA key");
	expect_ctx_error(make_cfg("ES384", ecpub, NULL), "not on curve");
	/* Signing keys: mode, type, pairing. */
	expect_ctx_error(make_cfg("RS256", pub, privopen), "chmod 600");
	expect_ctx_error(make_cfg("RS256", pub, priv2),
	    "is not the private key");
	expect_ctx_error(make_cfg("RS256", pub, ecpriv), "not an RSA key");
	expect_ctx_error(make_cfg("RS256", pub, pubsec),
	    "not an unencrypted PEM private key");
	expect_ctx_error(make_cfg("ES256", ecpub, priv), "not an EC key");
	keypair_free(&rsa);
	keypair_free(&rsa2);
	keypair_free(&ec);
}
END_TEST

START_TEST(test_mint_roundtrip)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct principal p;
	char *err = NULL, *t, *t2;
	jwt_t *jwt = NULL;
	const char *jti;

	t = auth_mint(ctx, "bob", "tasks:read ops:run", 300, NOW, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_null(err);
	vfy_ok(ctx, t, NOW, &p);
	assert_principal(&p, "bob", NOW + 300, "tasks:read ops:run");
	principal_clear(&p);
	ck_assert_int_eq(vfy(ctx, t, NOW + 329), AUTH_OK);
	ck_assert_int_eq(vfy(ctx, t, NOW + 330), AUTH_EXPIRED);
	ck_assert_int_eq(vfy(ctx, t, NOW - 31), AUTH_NOT_YET_VALID);

	/* The claims as written, read back with libjwt. */
	ck_assert_int_eq(jwt_decode(&jwt, t, (const unsigned char *)SECRET,
	    (int)strlen(SECRET)), 0);
	ck_assert_int_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
	ck_assert_str_eq(jwt_get_grant(jwt, "iss"), ISS);
	ck_assert_str_eq(jwt_get_grant(jwt, "aud"), AUD);
	ck_assert_int_eq(jwt_get_grant_int(jwt, "iat"), NOW);
	ck_assert_int_eq(jwt_get_grant_int(jwt, "nbf"), NOW);
	ck_assert_int_eq(jwt_get_grant_int(jwt, "exp"), NOW + 300);
	jti = jwt_get_grant(jwt, "jti");
	ck_assert_ptr_nonnull(jti);
	ck_assert_uint_eq(strlen(jti), 36);
	ck_assert_int_eq(jti[8], '-');
	ck_assert_int_eq(jti[23], '-');
	ck_assert_uint_eq(strspn(jti, "0123456789abcdef-"), 36);
	jwt_free(jwt);

	/* Two mints differ (jti). */
	t2 = auth_mint(ctx, "bob", "tasks:read ops:run", 300, NOW, &err);
	ck_assert_ptr_nonnull(t2);
	ck_assert_str_ne(t, t2);
	free(t2);

	/* Empty scope: no scope claim. */
	t2 = auth_mint(ctx, "carol", "", 60, NOW, &err);
	ck_assert_ptr_nonnull(t2);
	vfy_ok(ctx, t2, NOW, &p);
	assert_principal(&p, "carol", NOW + 60, "");
	principal_clear(&p);
	free(t2);

	free(t);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_mint_errors)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *err = NULL;
	char long_sub[AUTH_MAX_SUB + 2];

	ck_assert_ptr_null(auth_mint(ctx, "bob", "", 0, NOW, &err));
	ck_assert_ptr_nonnull(strstr(err, "ttl"));
	free(err);
	ck_assert_ptr_null(auth_mint(ctx, "bob", "", AUTH_MAX_TTL + 1, NOW,
	    &err));
	ck_assert_ptr_nonnull(strstr(err, "ttl"));
	free(err);
	ck_assert_ptr_null(auth_mint(ctx, "", "", 60, NOW, &err));
	ck_assert_ptr_nonnull(strstr(err, "sub"));
	free(err);
	ck_assert_ptr_null(auth_mint(ctx, "a\nb", "", 60, NOW, &err));
	ck_assert_ptr_nonnull(strstr(err, "sub"));
	free(err);
	memset(long_sub, 'x', sizeof(long_sub) - 1);
	long_sub[sizeof(long_sub) - 1] = '\0';
	ck_assert_ptr_null(auth_mint(ctx, long_sub, "", 60, NOW, &err));
	free(err);
	ck_assert_ptr_null(auth_mint(ctx, "bob", "a\"b", 60, NOW, &err));
	ck_assert_ptr_nonnull(strstr(err, "scopes"));
	free(err);
	err = NULL;
	{
		char *t = auth_mint(ctx, "bob", NULL, AUTH_MAX_TTL, NOW, &err);
		ck_assert_ptr_nonnull(t);
		ck_assert_ptr_null(err);
		free(t);
	}
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_mint_rs_es)
{
	struct keypair rsa, ec;
	struct auth_ctx *ctx;
	struct principal p;
	char *err = NULL, *t;

	keypair(&rsa, "RSA", NULL);
	keypair(&ec, "EC", "P-256");

	ctx = ctx_for("RS256", rsa.pub, rsa.publen, rsa.priv, rsa.privlen);
	t = auth_mint(ctx, "svc-1", "tasks:read", 120, NOW, &err);
	ck_assert_ptr_nonnull(t);
	vfy_ok(ctx, t, NOW + 1, &p);
	assert_principal(&p, "svc-1", NOW + 120, "tasks:read");
	ck_assert(principal_has_scope(&p, "tasks:read"));
	principal_clear(&p);
	free(t);
	auth_ctx_free(ctx);

	ctx = ctx_for("ES256", ec.pub, ec.publen, ec.priv, ec.privlen);
	t = auth_mint(ctx, "svc-2", "", 120, NOW, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	free(t);
	auth_ctx_free(ctx);

	/* Public key only: cannot mint. */
	ctx = ctx_for("RS256", rsa.pub, rsa.publen, NULL, 0);
	ck_assert_ptr_null(auth_mint(ctx, "svc-1", "", 60, NOW, &err));
	ck_assert_ptr_nonnull(strstr(err, "jwt_signing_key_file"));
	free(err);
	auth_ctx_free(ctx);
	keypair_free(&rsa);
	keypair_free(&ec);
}
END_TEST

START_TEST(test_cache)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct principal p1, p2;
	unsigned long hits, misses;
	char *err = NULL;
	char *t = auth_mint(ctx, "dave", "x y", 100, NOW, &err);
	char *h = xasprintf("Bearer %s", t);

	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	ck_assert_int_eq(auth_verify(ctx, h, NOW, &p1), AUTH_OK);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 1);

	ck_assert_int_eq(auth_verify(ctx, h, NOW + 10, &p2), AUTH_OK);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(misses, 1);
	ck_assert_str_eq(p2.sub, p1.sub);
	ck_assert_ptr_ne(p2.sub, p1.sub);
	ck_assert_int_eq(p2.exp, p1.exp);
	ck_assert_int_eq(p2.exp, NOW + 100);
	ck_assert_uint_eq(p2.nscopes, 2);
	ck_assert_str_eq(p2.scopes[0], "x");
	ck_assert_str_eq(p2.scopes[1], "y");
	principal_clear(&p1);
	ck_assert_str_eq(p2.sub, "dave");	/* independent copies */
	principal_clear(&p2);

	/* A hit re-checks time: too early (nbf = NOW, leeway 30). */
	ck_assert_int_eq(auth_verify(ctx, h, NOW - 60, &p1),
	    AUTH_NOT_YET_VALID);
	ck_assert_ptr_null(p1.sub);
	/* Within leeway after exp: still served. */
	ck_assert_int_eq(auth_verify(ctx, h, NOW + 120, &p1), AUTH_OK);
	principal_clear(&p1);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 3);
	ck_assert_uint_eq(misses, 1);
	/* Later: expired, even though cached. */
	ck_assert_int_eq(auth_verify(ctx, h, NOW + 130, &p1), AUTH_EXPIRED);
	ck_assert_ptr_null(p1.sub);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 4);
	/* The expired entry was dropped: the next lookup is a miss. */
	ck_assert_int_eq(auth_verify(ctx, h, NOW + 130, &p1), AUTH_EXPIRED);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 4);
	ck_assert_uint_eq(misses, 2);

	/* Failures are not cached. */
	ck_assert_int_eq(vfy(ctx, "garbage.garbage.garbage", NOW),
	    AUTH_MALFORMED);
	ck_assert_int_eq(vfy(ctx, "garbage.garbage.garbage", NOW),
	    AUTH_MALFORMED);
	free(h);
	free(t);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_cache_many)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct principal p;
	char *toks[3000], sub[32];
	unsigned long hits, misses;
	int i;

	/* More tokens than cache slots: evictions must not confuse entries. */
	mint_tokens(ctx, toks, 3000, "user-", "");
	for (i = 0; i < 6000; i++) {
		char *h = xasprintf("Bearer %s", toks[i % 3000]);
		ck_assert_int_eq(auth_verify(ctx, h, NOW, &p), AUTH_OK);
		snprintf(sub, sizeof(sub), "user-%d", i % 3000);
		ck_assert_str_eq(p.sub, sub);
		principal_clear(&p);
		free(h);
	}
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits + misses, 6000);
	ck_assert_uint_ge(misses, 3000);
	free_tokens(toks, 3000);
	auth_ctx_free(ctx);
}
END_TEST

/* A cached token must not vouch for another one that shares its header
 * and payload (or all but one byte of it): the cache compares whole
 * tokens, signature included. */
START_TEST(test_cache_forged_signature)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	char *c = claims(NOW + 600, ",\"scope\":\"tasks:read\"");
	char *t = hs256(c);
	char *forged = xstrdup(t), *last = xstrdup(t), *sig;
	unsigned long hits, misses;
	size_t n = strlen(t);

	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(misses, 1);
	/* Same length, same header and payload, another signature. */
	sig = strrchr(forged, '.') + 1;
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(vfy(ctx, forged, NOW), AUTH_BAD_SIGNATURE);
	ck_assert_int_eq(vfy(ctx, forged, NOW), AUTH_BAD_SIGNATURE);
	/* Only the last byte differs (it carries signature bits). */
	last[n - 1] = last[n - 1] == 'A' ? 'Q' : 'A';
	ck_assert_int_eq(vfy(ctx, last, NOW), AUTH_BAD_SIGNATURE);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(misses, 4);
	/* The real token is still cached, and still good. */
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 2);
	free(last);
	free(forged);
	free(t);
	free(c);
	auth_ctx_free(ctx);
}
END_TEST

/* A token longer than the cache takes is verified every time, and still
 * accepted (and its expiry still enforced). */
START_TEST(test_cache_long_token)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct strbuf sc = SB_INIT;
	unsigned long hits, misses;
	char *err = NULL, *t;
	int i;

	for (i = 0; i < 300; i++)
		sb_addf(&sc, "%sscope:%03d", i ? " " : "", i);
	t = auth_mint(ctx, "erin", sc.buf, 100, NOW, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_gt(strlen(t), 2048);
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	ck_assert_int_eq(vfy(ctx, t, NOW), AUTH_OK);
	ck_assert_int_eq(vfy(ctx, t, NOW + 200), AUTH_EXPIRED);
	auth_cache_stats(ctx, &hits, &misses);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 3);
	free(t);
	sb_free(&sc);
	auth_ctx_free(ctx);
}
END_TEST

START_TEST(test_principal_copy)
{
	struct principal a, b;
	char *sc[2];

	sc[0] = xstrdup("s1");
	sc[1] = xstrdup("s2");
	a.sub = xstrdup("erin");
	a.scopes = xmalloc(sizeof(sc));
	memcpy(a.scopes, sc, sizeof(sc));
	a.nscopes = 2;
	a.exp = 12345;
	principal_copy(&b, &a);
	ck_assert_str_eq(b.sub, "erin");
	ck_assert_ptr_ne(b.sub, a.sub);
	ck_assert_ptr_ne(b.scopes, a.scopes);
	ck_assert_ptr_ne(b.scopes[0], a.scopes[0]);
	ck_assert_uint_eq(b.nscopes, 2);
	ck_assert_str_eq(b.scopes[1], "s2");
	ck_assert_int_eq(b.exp, 12345);
	principal_clear(&a);
	ck_assert_ptr_null(a.sub);
	ck_assert_uint_eq(a.nscopes, 0);
	ck_assert(principal_has_scope(&b, "s1"));
	principal_clear(&b);
	principal_clear(&b);	/* twice is fine */
	principal_clear(NULL);
	auth_ctx_free(NULL);
}
END_TEST

START_TEST(test_reasons)
{
	enum auth_status a, b;

	for (a = AUTH_OK; a <= AUTH_BAD_CLAIMS; a++) {
		ck_assert_ptr_nonnull(auth_status_reason(a));
		ck_assert_uint_gt(strlen(auth_status_reason(a)), 0);
		for (b = AUTH_OK; b < a; b++)
			ck_assert_str_ne(auth_status_reason(a),
			    auth_status_reason(b));
	}
	ck_assert_str_eq(auth_status_reason(AUTH_BAD_ISSUER),
	    "token issuer not accepted");
	ck_assert_str_eq(auth_status_reason(AUTH_BAD_AUDIENCE),
	    "token audience not accepted");
}
END_TEST

struct thread_arg {
	struct auth_ctx *ctx;
	char **toks;
	int ntoks;
	int seed;
	int failures;
};

static void *
verify_thread(void *v)
{
	struct thread_arg *a = v;
	struct principal p;
	char sub[32];
	int i, k;

	for (i = 0; i < 3000; i++) {
		char *h;

		k = (i * 7 + a->seed) % a->ntoks;
		h = xasprintf("Bearer %s", a->toks[k]);
		snprintf(sub, sizeof(sub), "t%d", k);
		if (auth_verify(a->ctx, h, NOW + (i % 50), &p) != AUTH_OK ||
		    strcmp(p.sub, sub) != 0)
			a->failures++;
		principal_clear(&p);
		free(h);
	}
	return NULL;
}

START_TEST(test_threads)
{
	struct auth_ctx *ctx = hs_ctx("HS256", SECRET);
	struct thread_arg args[4];
	pthread_t th[4];
	char *toks[40];
	int i;

	mint_tokens(ctx, toks, 40, "t", "a b");
	for (i = 0; i < 4; i++) {
		args[i].ctx = ctx;
		args[i].toks = toks;
		args[i].ntoks = 40;
		args[i].seed = i * 13;
		args[i].failures = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, verify_thread,
		    &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].failures, 0);
	}
	free_tokens(toks, 40);
	auth_ctx_free(ctx);
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_valid_hs256);
	tcase_add_test(tc, test_missing_header);
	tcase_add_test(tc, test_not_bearer);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_segments);
	tcase_add_test(tc, test_expired);
	tcase_add_test(tc, test_expired_within_leeway);
	tcase_add_test(tc, test_nbf_future);
	tcase_add_test(tc, test_iat_future);
	tcase_add_test(tc, test_wrong_issuer);
	tcase_add_test(tc, test_wrong_audience);
	tcase_add_test(tc, test_aud_array);
	tcase_add_test(tc, test_missing_exp);
	tcase_add_test(tc, test_non_integer_times);
	tcase_add_test(tc, test_wrong_key);
	tcase_add_test(tc, test_alg_none);
	tcase_add_test(tc, test_header_checks);
	tcase_add_test(tc, test_hs_rs_confusion);
	tcase_add_test(tc, test_hs384_when_hs256);
	tcase_add_test(tc, test_tampered_payload);
	tcase_add_test(tc, test_rs256_valid);
	tcase_add_test(tc, test_es256_valid);
	tcase_add_test(tc, test_scopes);
	tcase_add_test(tc, test_sub_validation);
	tcase_add_test(tc, test_secret_mode);
	tcase_add_test(tc, test_secret_short);
	tcase_add_test(tc, test_ctx_errors);
	tcase_add_test(tc, test_mint_roundtrip);
	tcase_add_test(tc, test_mint_errors);
	tcase_add_test(tc, test_mint_rs_es);
	tcase_add_test(tc, test_cache);
	tcase_add_test(tc, test_cache_many);
	tcase_add_test(tc, test_cache_forged_signature);
	tcase_add_test(tc, test_cache_long_token);
	tcase_add_test(tc, test_principal_copy);
	tcase_add_test(tc, test_reasons);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { auth_suite })
