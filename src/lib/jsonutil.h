/* SPDX-License-Identifier: MIT */
/*
 * jsonutil: json-c helpers with request limits (nesting depth, string
 * length: max_json_depth, max_string_bytes in docs/configuration.md).
 * Prefix ju_.  Accessors return borrowed references (owned by the parent).
 */
#ifndef IA_JSONUTIL_H
#define IA_JSONUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include "lib/attrs.h"

/*
 * Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF) over len bytes of s: len when valid, else the offset of the
 * first bad sequence.
 */
size_t ju_utf8_check(const char *s, size_t len);

/*
 * How many bytes of the NUL-terminated UTF-8 string s to print when it is
 * cut to at most max bytes: strlen(s) when that fits, else max or less so
 * that the cut never splits a character (a message that quotes a client's
 * string with "%.*s" stays valid UTF-8).  For "%.*s": an int.
 */
int ju_utf8_prefix(const char *s, size_t max);

/*
 * Parse exactly one JSON value from text[0..len) with nesting at most
 * max_depth and no string longer than max_str bytes.  On success *out is a
 * new reference (caller puts it).  On failure returns -1 and *err (caller
 * frees) says why: syntax error with offset, too deep, trailing data.
 */
WARN_UNUSED_RESULT
int ju_parse(const char *text, size_t len, int max_depth, size_t max_str,
    json_object **out, char **err);

/* Member accessors: NULL when absent or of another type. */
const char *ju_str(json_object *o, const char *key);
json_object *ju_obj(json_object *o, const char *key);
json_object *ju_arr(json_object *o, const char *key);
/* Integer member into *v; 0 when present and an integer, 1 when absent,
 * -1 when present with another type. */
int ju_int(json_object *o, const char *key, int64_t *v);
/* Boolean member: 0 present (stored in *v), 1 absent, -1 wrong type. */
int ju_bool(json_object *o, const char *key, bool *v);

/* Serialise compactly; caller frees. */
char *ju_dump(json_object *o);
/* A new string reference from a C string (NULL -> JSON null, i.e. NULL). */
json_object *ju_new_str(const char *s);
/* Deep copy (NULL -> NULL); caller puts. */
json_object *ju_copy(json_object *o);
/* Current UTC time as ISO 8601 with milliseconds, into buf (>= 32 bytes). */
void ju_iso8601(int64_t ms, char *buf, size_t len);

#endif
