/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "lib/hash.h"

uint32_t
hash_fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

void
hash_owner_dir(const char *sub, char out[HASH_OWNER_DIR_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int i;

	/* EVP_Digest fails only when out of memory: fatal, like xalloc */
	if (!EVP_Digest(sub, strlen(sub), dig, &n, EVP_sha256(), NULL) ||
	    n < 16)
		abort();
	out[0] = 'u';
	out[1] = '-';
	for (i = 0; i < 16; i++) {
		out[2 + 2 * i] = hex[dig[i] >> 4];
		out[3 + 2 * i] = hex[dig[i] & 15];
	}
	out[34] = '\0';
}
