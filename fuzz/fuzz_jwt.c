/* SPDX-License-Identifier: MIT */
/*
 * fuzz_jwt: auth_verify, on an Authorization header value.  The input's
 * first byte picks how the rest is used:
 *   even: the header value as it is (a NUL-terminated FastCGI param);
 *   odd:  "<JOSE header JSON>\n<claims JSON>", which the harness encodes
 *         and signs with the configured HS256 key, so that the claim and
 *         header checks behind the signature are reached too.
 * Checked: a token is accepted only with a principal whose sub is 1 to
 * AUTH_MAX_SUB bytes, and a refusal leaves the principal empty.
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/config.h"
#include "fuzzutil.h"
#include "http/auth.h"
#include "lib/strbuf.h"

#define NOW 1800000000L
#define SECRET "fuzz-secret-0123456789abcdef0123456789"

static struct auth_ctx *ctx;

static void
b64url(struct strbuf *sb, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 |
		    p[i + 2];

		sb_addf(sb, "%c%c%c%c", tab[v >> 18], tab[v >> 12 & 63],
		    tab[v >> 6 & 63], tab[v & 63]);
	}
	if (n - i == 1)
		sb_addf(sb, "%c%c", tab[p[i] >> 2], tab[(p[i] & 3) << 4]);
	else if (n - i == 2)
		sb_addf(sb, "%c%c%c", tab[p[i] >> 2],
		    tab[(p[i] & 3) << 4 | p[i + 1] >> 4],
		    tab[(p[i + 1] & 15) << 2]);
}

/* "Bearer " and the signed token of header and claims.  Caller frees. */
static char *
signed_header(const uint8_t *data, size_t size)
{
	struct strbuf sb = SB_INIT;
	const uint8_t *nl = memchr(data, '\n', size);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t hl = nl != NULL ? (size_t)(nl - data) : size, start;

	sb_adds(&sb, "Bearer ");
	start = sb.len;
	b64url(&sb, data, hl);
	sb_adds(&sb, ".");
	if (nl != NULL)
		b64url(&sb, nl + 1, size - hl - 1);
	if (HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
	    (const unsigned char *)sb.buf + start, sb.len - start, mac,
	    &maclen) == NULL)
		abort();
	sb_adds(&sb, ".");
	b64url(&sb, mac, maclen);
	return sb_take(&sb);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *cfg;
	char *err = NULL;

	fz_quiet();
	cfg = fz_config("jwt_audience = instag-agent\n");
	if (auth_ctx_new(cfg, &ctx, &err) < 0)
		abort();
	config_free(cfg);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct principal p;
	char *header;

	if (size < 1)
		return 0;
	header = data[0] & 1 ? signed_header(data + 1, size - 1) :
	    fz_str(data + 1, size - 1);
	if (auth_verify(ctx, header, NOW, &p) == AUTH_OK) {
		if (p.sub == NULL || p.sub[0] == '\0' ||
		    strlen(p.sub) > AUTH_MAX_SUB)
			abort();
	} else if (p.sub != NULL || p.nscopes != 0) {
		abort();
	}
	principal_clear(&p);
	free(header);
	return 0;
}
