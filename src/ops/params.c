/* SPDX-License-Identifier: MIT */
/*
 * params: declarative params validation (see params.h).
 */
#include "auto-config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/strbuf.h"
#include "lib/uuid.h"
#include "lib/xalloc.h"
#include "ops/params.h"

static bool
match_pattern(const char *s, enum param_pattern pat)
{
	size_t n = strlen(s), i;

	switch (pat) {
	case PAT_ANY:
		for (i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return false;
		return true;
	case PAT_IDENT:
		/* no leading '-': never mistaken for an option by a command */
		if (n < 1 || n > 64 || s[0] == '-')
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) &&
			    !strchr("._-", s[i]))
				return false;
		return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
	case PAT_UUID:
		return uuid_valid(s);
	case PAT_GPU:
		if (n < 1 || n > 64 || s[0] == ' ')
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) &&
			    !strchr(" ._-", s[i]))
				return false;
		return true;
	case PAT_IMAGE:
		/* registry/name:tag or @sha256:digest; no shell-relevant
		 * bytes */
		if (n < 1 || n > 255 || !isalnum((unsigned char)s[0]))
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) &&
			    !strchr("._-/:@", s[i]))
				return false;
		return true;
	case PAT_HOST:
		if (n < 1 || n > 253)
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) &&
			    !strchr(".-:", s[i]))
				return false;
		return s[0] != '-';
	case PAT_ENVKEY:
		if (n < 1 || n > 64 || isdigit((unsigned char)s[0]))
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && s[i] != '_')
				return false;
		return true;
	case PAT_SOURCE:
		if (strncmp(s, "https://", 8) == 0)
			return n <= 2048 && match_pattern(s, PAT_ANY) &&
			    strchr(s, ' ') == NULL;
		if (strncmp(s, "part:", 5) == 0)
			return n >= 6 && n <= 7 &&
			    isdigit((unsigned char)s[5]) &&
			    (n == 6 || isdigit((unsigned char)s[6]));
		return match_pattern(s, PAT_UUID) ||
		    (strncmp(s, "upload:", 7) == 0 && uuid_valid(s + 7));
	}
	return false;
}

static const char *
pattern_text(enum param_pattern pat)
{
	switch (pat) {
	case PAT_ANY: return "text without control characters";
	case PAT_IDENT:
		return "an identifier matching "
		    "^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$";
	case PAT_UUID: return "a UUID";
	case PAT_GPU: return "a GPU type id matching ^[A-Za-z0-9 ._-]{1,64}$";
	case PAT_IMAGE:
		return "a container image reference "
		    "([A-Za-z0-9._-/:@], up to 255)";
	case PAT_HOST: return "a host name or address";
	case PAT_ENVKEY:
		return "an environment variable name "
		    "^[A-Za-z_][A-Za-z0-9_]{0,63}$";
	case PAT_SOURCE:
		return "an upload id, an https:// URL, or part:N (the "
		    "message's N-th file part)";
	}
	return "";
}

static const char *
type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_double: return "number";
	case json_type_int: return "integer";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "value";
}

/* choices[] is NULL-terminated unless all its slots are used (the
 * tasks.list state list fills all six). */
#define NCHOICES (sizeof(((struct param_spec *)0)->choices) / \
	sizeof(((struct param_spec *)0)->choices[0]))

static int
check_one(const struct param_spec *ps, json_object *v, char **err)
{
	size_t n, i;
	const char *s;
	double d;

	switch (ps->type) {
	case P_STR:
		if (!json_object_is_type(v, json_type_string))
			goto badtype;
		s = json_object_get_string(v);
		if (!match_pattern(s, ps->pattern)) {
			*err = xasprintf("params.%s must be %s", ps->name,
			    pattern_text(ps->pattern));
			return -1;
		}
		if (ps->max > 0 && strlen(s) > (size_t)ps->max) {
			*err = xasprintf("params.%s is longer than %.0f bytes",
			    ps->name, ps->max);
			return -1;
		}
		return 0;
	case P_INT:
		if (!json_object_is_type(v, json_type_int))
			goto badtype;
		d = (double)json_object_get_int64(v);
		if (d < ps->min || d > ps->max) {
			*err = xasprintf("params.%s must be between %.0f and "
			    "%.0f", ps->name, ps->min, ps->max);
			return -1;
		}
		return 0;
	case P_NUM:
		if (!json_object_is_type(v, json_type_int) &&
		    !json_object_is_type(v, json_type_double))
			goto badtype;
		d = json_object_get_double(v);
		if (!isfinite(d) || d < ps->min || d > ps->max) {
			*err = xasprintf("params.%s must be between %g and %g",
			    ps->name, ps->min, ps->max);
			return -1;
		}
		return 0;
	case P_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			goto badtype;
		return 0;
	case P_ENUM:
		if (!json_object_is_type(v, json_type_string))
			goto badtype;
		s = json_object_get_string(v);
		for (i = 0; i < NCHOICES && ps->choices[i]; i++)
			if (strcmp(s, ps->choices[i]) == 0)
				return 0;
		{
			struct strbuf sb = SB_INIT;
			for (i = 0; i < NCHOICES && ps->choices[i]; i++)
				sb_addf(&sb, "%s%s", i ? ", " : "",
				    ps->choices[i]);
			*err = xasprintf("params.%s must be one of: %s",
			    ps->name, sb_str(&sb));
			sb_free(&sb);
		}
		return -1;
	case P_STR_ARRAY:
		if (!json_object_is_type(v, json_type_array))
			goto badtype;
		n = json_object_array_length(v);
		if (n < (size_t)ps->min || n > (size_t)ps->max) {
			*err = xasprintf("params.%s must hold %.0f to %.0f "
			    "items", ps->name, ps->min, ps->max);
			return -1;
		}
		for (i = 0; i < n; i++) {
			json_object *x = json_object_array_get_idx(v, i);
			if (!json_object_is_type(x, json_type_string) ||
			    !match_pattern(json_object_get_string(x),
			    ps->pattern)) {
				*err = xasprintf("params.%s[%zu] must be %s",
				    ps->name, i, pattern_text(ps->pattern));
				return -1;
			}
		}
		return 0;
	case P_STR_MAP:
		if (!json_object_is_type(v, json_type_object))
			goto badtype;
		n = (size_t)json_object_object_length(v);
		if (n > (size_t)ps->max) {
			*err = xasprintf("params.%s has more than %.0f entries",
			    ps->name, ps->max);
			return -1;
		}
		{
			json_object_object_foreach(v, k, x) {
				if (!match_pattern(k, ps->pattern)) {
					*err = xasprintf("params.%s key "
					    "'%.*s' must be %s", ps->name,
					    ju_utf8_prefix(k, 64), k,
					    pattern_text(ps->pattern));
					return -1;
				}
				if (!json_object_is_type(x, json_type_string) ||
				    !match_pattern(json_object_get_string(x),
				    PAT_ANY)) {
					*err = xasprintf("params.%s.%.*s must "
					    "be a string without control "
					    "characters", ps->name,
					    ju_utf8_prefix(k, 64), k);
					return -1;
				}
			}
		}
		return 0;
	}
badtype:
	*err = xasprintf("params.%s must be %s, got %s", ps->name,
	    ps->type == P_INT ? "an integer" : ps->type == P_NUM ? "a number" :
	    ps->type == P_BOOL ? "a boolean" : ps->type == P_STR_ARRAY ?
	    "an array of strings" : ps->type == P_STR_MAP ? "an object" :
	    "a string", type_name(v));
	return -1;
}

int
params_validate(const struct param_spec *spec, json_object *params,
    size_t max_params, char **err)
{
	const struct param_spec *ps;

	if (!json_object_is_type(params, json_type_object)) {
		*err = xasprintf("params must be an object, got %s",
		    type_name(params));
		return -1;
	}
	if ((size_t)json_object_object_length(params) > max_params) {
		*err = xasprintf("params has more than %zu keys", max_params);
		return -1;
	}
	{
		json_object_object_foreach(params, k, v) {
			(void)v;
			for (ps = spec; ps && ps->name; ps++)
				if (strcmp(ps->name, k) == 0)
					break;
			if (ps == NULL || ps->name == NULL) {
				*err = xasprintf("unknown parameter '%.*s'",
				    ju_utf8_prefix(k, 64), k);
				return -1;
			}
		}
	}
	for (ps = spec; ps && ps->name; ps++) {
		json_object *v;
		if (!json_object_object_get_ex(params, ps->name, &v) ||
		    v == NULL) {
			if (ps->required) {
				*err = xasprintf("params.%s is required",
				    ps->name);
				return -1;
			}
			if (ps->def != NULL)
				json_object_object_add(params, ps->name,
				    json_tokener_parse(ps->def));
			continue;
		}
		if (check_one(ps, v, err) < 0)
			return -1;
	}
	return 0;
}
