/* SPDX-License-Identifier: MIT */
/*
 * strbuf: a growable byte buffer that is always NUL-terminated.
 *
 * A strbuf is a value type: initialise with SB_INIT or sb_init(), release
 * with sb_free().  sb_take() hands the buffer to the caller (caller frees)
 * and resets the strbuf.
 */
#ifndef IA_STRBUF_H
#define IA_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};

#define SB_INIT { NULL, 0, 0 }

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_addn(struct strbuf *sb, const char *s, size_t n);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Append s as a JSON string literal, quotes included. */
void sb_add_json_str(struct strbuf *sb, const char *s);
/* Return the contents ("" when empty); caller frees; sb is reset. */
/* Append s as one POSIX shell word in single quotes ('it'\''s'): any
 * byte but NUL then arrives literally in a remote command line. */
void sb_add_shquote(struct strbuf *sb, const char *s);
char *sb_take(struct strbuf *sb);
/* Contents as a C string ("" when empty); owned by sb. */
const char *sb_str(const struct strbuf *sb);

#endif
