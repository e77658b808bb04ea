/* SPDX-License-Identifier: MIT */
/*
 * principal: who is asking, as a verified token says (http/auth.c makes
 * them).  Prefix principal_.  Every layer below the request path sees the
 * caller only through this.
 */
#ifndef IA_PRINCIPAL_H
#define IA_PRINCIPAL_H

#include <stdbool.h>
#include <stddef.h>

struct principal {
	char *sub;		/* owned */
	char **scopes;		/* owned array of owned strings */
	size_t nscopes;
	long exp;		/* expiry, seconds since epoch */
};

/* True when p holds scope (exact match).  p NULL is false. */
bool principal_has_scope(const struct principal *p, const char *scope);

/* Free what p owns and zero it.  Safe on a zeroed principal. */
void principal_clear(struct principal *p);

/* Deep copy src into dst (dst's old contents are not freed; the caller
 * clears dst). */
void principal_copy(struct principal *dst, const struct principal *src);

#endif
