/* SPDX-License-Identifier: MIT */
/*
 * fuzz_params: JSON parsing and every operation's params validation, as
 * ops_invoke runs them before anything else: the spec (params_validate)
 * and the operation's own checks (validate).  The input's first byte picks
 * the operation from the table (modulo its length); the rest is the
 * params as JSON, not NUL-terminated, parsed with the configured limits.
 * Checked: a refusal says why; params that pass pass again once their
 * defaults are filled in, and still serialise to valid UTF-8.
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "fuzzutil.h"
#include "lib/jsonutil.h"
#include "ops/ops.h"
#include "ops/params.h"

static struct config *cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	cfg = fz_config("diagnostics = true\n");
	return 0;
}

/* Validate params for op: 0, or -1 with *err (caller frees). */
static int
check(const struct op_def *op, json_object *params, char **err)
{
	if (params_validate(op->params, params, (size_t)cfg->max_params,
	    err) < 0)
		return -1;
	if (op->validate != NULL && op->validate(params, cfg, err) < 0)
		return -1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct op_def *ops, *op;
	json_object *params = NULL;
	char *buf, *err = NULL, *text;
	size_t n;

	if (size < 1)
		return 0;
	ops = ops_table(&n);
	op = &ops[data[0] % n];
	buf = fz_dup(data + 1, size - 1);
	if (ju_parse(buf, size - 1, (int)cfg->max_json_depth,
	    (size_t)cfg->max_string_bytes, &params, &err) < 0 ||
	    !json_object_is_type(params, json_type_object))
		goto cleanup;
	if (check(op, params, &err) < 0) {
		if (err == NULL || err[0] == '\0')
			abort();
		goto cleanup;
	}
	if (check(op, params, &err) < 0)	/* defaults now filled in */
		abort();
	text = ju_dump(params);
	if (ju_utf8_check(text, strlen(text)) != strlen(text))
		abort();
	free(text);
cleanup:
	free(err);
	json_object_put(params);
	free(buf);
	return 0;
}
