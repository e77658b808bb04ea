/* SPDX-License-Identifier: MIT */
/*
 * xalloc: allocation wrappers.
 *
 * Design decision (docs/internals.md): running out of memory is fatal.  The
 * x* wrappers log one line and abort(), so callers never check for NULL.
 * Every pointer they return is owned by the caller and released with free().
 */
#ifndef IA_XALLOC_H
#define IA_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* free(*pp) and set *pp to NULL. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
