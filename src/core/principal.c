/* SPDX-License-Identifier: MIT */
/*
 * principal: who is asking (a verified token's subject and scopes).
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/principal.h"
#include "lib/xalloc.h"

void
principal_clear(struct principal *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->sub);
	for (i = 0; i < p->nscopes; i++)
		free(p->scopes[i]);
	free(p->scopes);
	memset(p, 0, sizeof(*p));
}

void
principal_copy(struct principal *dst, const struct principal *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	dst->sub = src->sub ? xstrdup(src->sub) : NULL;
	dst->exp = src->exp;
	if (src->nscopes == 0)
		return;
	dst->scopes = xcalloc(src->nscopes, sizeof(*dst->scopes));
	for (i = 0; i < src->nscopes; i++)
		dst->scopes[i] = xstrdup(src->scopes[i]);
	dst->nscopes = src->nscopes;
}

bool
principal_has_scope(const struct principal *p, const char *scope)
{
	size_t i;

	if (p == NULL || scope == NULL)
		return false;
	for (i = 0; i < p->nscopes; i++)
		if (strcmp(p->scopes[i], scope) == 0)
			return true;
	return false;
}

