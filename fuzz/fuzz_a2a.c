/* SPDX-License-Identifier: MIT */
/*
 * fuzz_a2a: one A2A JSON-RPC request (POST /a2a) through a2a_call, in
 * both dialects, against a real store and executor: the input's first
 * byte picks the A2A-Version header (absent, "0.3", "1.0", "" or "2"),
 * the rest is the body, not NUL-terminated.  The caller holds tasks:read
 * and tasks:write, so every method runs, and operations that would reach
 * RunPod or a pod are refused for scope before anything is sent.
 * Checked: every request gets a reply; a JSON reply is a JSON-RPC 2.0
 * response with a result or an error, and serialises to valid UTF-8.
 */
#include "auto-config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/a2a.h"
#include "a2a/rpc.h"
#include "fuzzutil.h"
#include "lib/jsonutil.h"

static struct principal who;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	(void)fz_agent_start("input_required_timeout = 1\n");
	fz_principal(&who, "fuzz-user", "tasks:read tasks:write");
	return 0;
}

static void
check_json(json_object *body)
{
	const char *text;
	size_t len;
	bool has_result, has_error;

	if (body == NULL || !json_object_is_type(body, json_type_object))
		abort();
	if (ju_str(body, "jsonrpc") == NULL ||
	    strcmp(ju_str(body, "jsonrpc"), "2.0") != 0)
		abort();
	has_result = json_object_object_get_ex(body, "result", NULL);
	has_error = ju_obj(body, "error") != NULL;
	if (has_result == has_error)	/* exactly one of them */
		abort();
	text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	len = strlen(text);
	if (ju_utf8_check(text, len) != len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const versions[] = { NULL, "0.3", "1.0", "", "2" };
	struct rpc_reply out;
	char *buf;

	if (size < 1)
		return 0;
	buf = fz_dup(data + 1, size - 1);
	memset(&out, 0, sizeof(out));
	a2a_call(&who, versions[data[0] % 5], buf, size - 1, &out);
	switch (out.kind) {
	case RPC_REPLY_JSON:
	case RPC_REPLY_STREAM:
	case RPC_REPLY_WAIT:
		check_json(out.body);
		break;
	case RPC_REPLY_FORBIDDEN:
		if (out.message == NULL)
			abort();
		break;
	default:
		abort();
	}
	rpc_reply_clear(&out);
	free(buf);
	fz_agent_tick();
	return 0;
}
