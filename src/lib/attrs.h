/* SPDX-License-Identifier: MIT */
/*
 * attrs: function attributes, header only.
 *
 * WARN_UNUSED_RESULT marks a function whose result says whether it worked
 * (-1/0, a status code, NULL on failure): a caller that drops the result
 * gets a warning, an error under -Werror.  Where ignoring it is right,
 * use IGNORE_RESULT() and say why in a comment.  The x* allocators
 * (xalloc.h) do not need it: they never fail (out of memory aborts).
 */
#ifndef IA_ATTRS_H
#define IA_ATTRS_H

#if defined(__GNUC__) || defined(__clang__)
#define WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#else
#define WARN_UNUSED_RESULT
#endif

/* Drop such a result on purpose, with a comment saying why that is right
 * (GCC warns even through a plain (void) cast, not through (void)!). */
#define IGNORE_RESULT(expr) ((void)!(expr))

#endif
