/* SPDX-License-Identifier: MIT */
/*
 * params: declarative validation of an operation's params, before any
 * other code sees them.  Prefix params_.
 *
 * Each operation lists its params as a param_spec array; a value of the
 * wrong type, out of range, not matching its pattern, or a name not
 * listed is refused with a message naming the param.  Patterns refuse
 * what a remote shell or a path could misread (a leading '-', '..',
 * control characters), so no operation builds a command from raw input.
 */
#ifndef IA_PARAMS_H
#define IA_PARAMS_H

#include "lib/attrs.h"

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

enum param_type {
	P_STR,		/* string matching pattern */
	P_INT,		/* integer in [min, max] */
	P_NUM,		/* number in [min, max] */
	P_BOOL,
	P_ENUM,		/* one of choices */
	P_STR_ARRAY,	/* array of [min, max] strings matching pattern */
	P_STR_MAP	/* object of string values, keys matching pattern */
};

enum param_pattern {
	PAT_ANY,	/* printable text, no control characters */
	PAT_IDENT,	/* ^[A-Za-z0-9._-]{1,64}$ */
	PAT_UUID,
	PAT_GPU,	/* ^[A-Za-z0-9 ._-]{1,64}$ (RunPod GPU type ids) */
	PAT_IMAGE,	/* container image reference */
	PAT_HOST,	/* host name or address */
	PAT_ENVKEY,	/* ^[A-Za-z_][A-Za-z0-9_]{0,63}$ */
	PAT_SOURCE	/* upload id, or https:// URL */
};

struct param_spec {
	const char *name;
	enum param_type type;
	bool required;
	enum param_pattern pattern;
	double min, max;		/* range, or count for arrays/maps */
	const char *choices[9];		/* P_ENUM, NULL-terminated */
	const char *def;		/* default as JSON text, or NULL */
};

/* Check params against spec, filling defaults (params changes).  At most
 * max_params names.  0, or -1 with *err (caller frees). */
WARN_UNUSED_RESULT
int params_validate(const struct param_spec *spec, json_object *params,
    size_t max_params, char **err);

#endif
