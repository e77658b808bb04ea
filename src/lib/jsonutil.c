/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/jsonutil.h"
#include "lib/xalloc.h"

static int
ju_check_strings(json_object *o, size_t max_str, char **err)
{
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_string:
		if ((size_t)json_object_get_string_len(o) > max_str) {
			*err = xasprintf("a JSON string is longer than the "
			    "limit of %zu bytes", max_str);
			return -1;
		}
		return 0;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (ju_check_strings(json_object_array_get_idx(o, i),
			    max_str, err) < 0)
				return -1;
		return 0;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			if (strlen(k) > max_str) {
				*err = xasprintf("a JSON key is longer than "
				    "the limit of %zu bytes", max_str);
				return -1;
			}
			if (ju_check_strings(v, max_str, err) < 0)
				return -1;
		}
		return 0;
	}
	default:
		return 0;
	}
}

size_t
ju_utf8_check(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	unsigned char lo, hi;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		/* RFC 3629 section 4: the second byte's range depends on
		 * the first; that rules out overlong forms (C0, C1, E0 80-9F,
		 * F0 80-8F), surrogates (ED A0-BF) and beyond U+10FFFF (F4
		 * 90-BF, F5-FF). */
		lo = 0x80;
		hi = 0xbf;
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			n = 1;
		else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			n = 2;
			if (p[i] == 0xe0)
				lo = 0xa0;
			else if (p[i] == 0xed)
				hi = 0x9f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			n = 3;
			if (p[i] == 0xf0)
				lo = 0x90;
			else if (p[i] == 0xf4)
				hi = 0x8f;
		} else
			return i;
		if (len - i <= n || p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (k = 2; k <= n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += n + 1;
	}
	return len;
}

int
ju_utf8_prefix(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n <= max)
		return (int)n;
	/* s[max] is the first byte left out: back up while it continues
	 * the character that s[max - 1] begins or continues. */
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return (int)n;
}

/*
 * One pass over the text before json-c sees it.  json-c 0.16 counts a
 * scalar as a level of nesting (so its own limit would refuse
 * {"a":{"b":1}} at max_depth 2), and even with JSON_TOKENER_STRICT it takes
 * single-quoted keys, NaN, Infinity and raw control characters inside
 * strings, and a loose UTF-8 check (overlong forms such as C0 AF pass).
 * Here only container nesting counts, outside strings only bytes that
 * can occur in strict JSON are allowed, the text must be strict UTF-8
 * (ju_utf8_check), and a string may not hold U+0000 (\\u0000 would cut
 * it short for every C function that reads it).
 */
static int
ju_prescan(const char *text, size_t len, int max_depth, char **err)
{
	static const char outside[] = " \t\n\r,:0123456789+-.eEtrufalsn";
	bool in_str = false;
	int depth = 0;
	size_t i;

	i = ju_utf8_check(text, len);
	if (i != len) {
		*err = xasprintf("invalid JSON at byte %zu: not UTF-8 "
		    "(RFC 3629)", i);
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (in_str) {
			if (c < 0x20)
				goto bad;
			if (c == '\\' && len - i >= 6 &&
			    memcmp(text + i + 1, "u0000", 5) == 0) {
				*err = xasprintf("invalid JSON at byte %zu: "
				    "\\u0000 is not accepted in a string", i);
				return -1;
			}
			if (c == '\\')
				i++;	/* json-c checks the escape itself */
			else if (c == '"')
				in_str = false;
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			break;
		case '[':
		case '{':
			if (++depth > max_depth) {
				*err = xasprintf("JSON nested deeper than the "
				    "limit of %d", max_depth);
				return -1;
			}
			break;
		case ']':
		case '}':
			depth--;
			break;
		default:
			if (c == '\0' || strchr(outside, c) == NULL)
				goto bad;
		}
	}
	return 0;
bad:
	*err = xasprintf("invalid JSON at byte %zu: unexpected character", i);
	return -1;
}

int
ju_parse(const char *text, size_t len, int max_depth, size_t max_str,
    json_object **out, char **err)
{
	json_tokener *tok;
	json_object *o = NULL;
	enum json_tokener_error jerr;
	size_t off;
	int rc = -1;

	*out = NULL;
	if (len > (size_t)INT32_MAX) {
		*err = xstrdup("body too large to parse");
		return -1;
	}
	if (ju_prescan(text, len, max_depth, err) < 0)
		return -1;
	/* +1: json-c counts the innermost scalar as a level too. */
	tok = json_tokener_new_ex(max_depth + 1);
	if (tok == NULL) {
		*err = xstrdup("cannot allocate JSON parser");
		return -1;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	off = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A number or literal at the very end of the text needs a
		 * terminator; anything else still open is incomplete. */
		o = json_tokener_parse_ex(tok, " ", 1);
		jerr = json_tokener_get_error(tok);
		if (jerr != json_tokener_success)
			jerr = json_tokener_continue;
		off = len;
	}
	if (jerr == json_tokener_continue) {
		*err = xstrdup("incomplete JSON (unexpected end of input)");
		goto cleanup;
	}
	if (jerr != json_tokener_success) {
		if (jerr == json_tokener_error_depth)
			*err = xasprintf("JSON nested deeper "
			    "than the limit of %d", max_depth);
		else
			*err = xasprintf("invalid JSON at byte %zu: %s",
			    json_tokener_get_parse_end(tok),
			    json_tokener_error_desc(jerr));
		goto cleanup;
	}
	while (off < len && (text[off] == ' ' || text[off] == '\t' ||
	    text[off] == '\n' || text[off] == '\r'))
		off++;
	if (off != len) {
		*err = xasprintf("invalid JSON: trailing data at byte %zu",
		    off);
		goto cleanup;
	}
	if (ju_check_strings(o, max_str, err) < 0)
		goto cleanup;
	*out = o;
	o = NULL;
	rc = 0;
cleanup:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

const char *
ju_str(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

json_object *
ju_obj(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

json_object *
ju_arr(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

int
ju_int(json_object *o, const char *key, int64_t *v)
{
	json_object *m;

	if (o == NULL || !json_object_object_get_ex(o, key, &m) || m == NULL)
		return 1;
	if (!json_object_is_type(m, json_type_int))
		return -1;
	*v = json_object_get_int64(m);
	return 0;
}

int
ju_bool(json_object *o, const char *key, bool *v)
{
	json_object *m;

	if (o == NULL || !json_object_object_get_ex(o, key, &m) || m == NULL)
		return 1;
	if (!json_object_is_type(m, json_type_boolean))
		return -1;
	*v = json_object_get_boolean(m);
	return 0;
}

char *
ju_dump(json_object *o)
{
	if (o == NULL)
		return xstrdup("null");
	return xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

json_object *
ju_new_str(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

json_object *
ju_copy(json_object *o)
{
	json_object *c = NULL;

	if (o == NULL)
		return NULL;
	if (json_object_deep_copy(o, &c, NULL) != 0)
		return NULL;
	return c;
}

void
ju_iso8601(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char tmp[24];

	gmtime_r(&s, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
}
