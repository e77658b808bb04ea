/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/auth.h"
#include "core/config.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "ops/ops.h"
#include "testutil.h"

/* ---- fixtures ------------------------------------------------------------ */

/* A configuration with the given extra lines and the store in the suite's
 * directory; the caller frees it with config_free(). */
static struct config *
load_cfg(const char *extra)
{
	return tu_configf("store_path = %s/tasks.db\n%s", tu_topdir(), extra);
}

/* Validate params text against spec; returns rc, *err kept for the
 * caller (or freed when errp is NULL).  *out receives the filled params
 * when outp is given. */
static int
validate(const struct param_spec *spec, const char *text, size_t max,
    char **errp, json_object **outp)
{
	json_object *p = json_tokener_parse(text);
	char *err = NULL;
	int rc;

	ck_assert_msg(p != NULL || strcmp(text, "null") == 0,
	    "bad test JSON %s", text);
	rc = params_validate(spec, p, max, &err);
	if (rc == 0)
		ck_assert_ptr_null(err);
	else
		ck_assert_msg(err != NULL, "no error text for %s", text);
	if (errp)
		*errp = err;
	else
		free(err);
	if (outp)
		*outp = p;
	else
		json_object_put(p);
	return rc;
}

static void
expect_ok(const struct param_spec *spec, const char *text)
{
	char *err = NULL;

	ck_assert_msg(validate(spec, text, 64, &err, NULL) == 0,
	    "%s rejected: %s", text, err ? err : "");
}

static void
expect_bad(const struct param_spec *spec, const char *text,
    const char *needle)
{
	char *err = NULL;

	ck_assert_msg(validate(spec, text, 64, &err, NULL) == -1,
	    "%s accepted", text);
	ck_assert_msg(strstr(err, needle) != NULL,
	    "error for %s is '%s', lacks '%s'", text, err, needle);
	free(err);
}

/* params with one string member: {"name": s} plus fixed extra members. */
static void
expect_str(const struct param_spec *spec, const char *extra,
    const char *name, const char *value, bool ok)
{
	json_object *p = json_tokener_parse(extra);
	char *err = NULL;
	int rc;

	ck_assert_ptr_nonnull(p);
	json_object_object_add(p, name, json_object_new_string(value));
	rc = params_validate(spec, p, 64, &err);
	if (ok)
		ck_assert_msg(rc == 0, "%s='%s' rejected: %s", name, value,
		    err ? err : "");
	else {
		char needle[64];
		ck_assert_msg(rc == -1, "%s='%s' accepted", name, value);
		snprintf(needle, sizeof(needle), "params.%s", name);
		ck_assert_msg(strstr(err, needle) != NULL, "error '%s' for "
		    "%s='%s' does not name it", err, name, value);
	}
	free(err);
	json_object_put(p);
}

/* ---- ops_find ------------------------------------------------------------ */

static const struct {
	const char *name;
	const char *aliases[3];
	const char *scopes[3];
	enum op_kind kind;
	const char *requires;
} design[] = {
	{ "runpod.list_gpu_types", { NULL }, { "pods:read" }, OP_SYNC,
	  "runpod" },
	{ "runpod.provision_pod", { "provision_pod", "runpod_provision" },
	  { "pods:write" }, OP_TASK, "runpod+ssh" },
	{ "runpod.get_pod", { "get_pod_status" }, { "pods:read" }, OP_SYNC,
	  "runpod" },
	{ "runpod.list_pods", { NULL }, { "pods:read" }, OP_SYNC, "runpod" },
	{ "runpod.pod_logs", { NULL }, { "pods:read" }, OP_SYNC, "runpod" },
	{ "runpod.list_volumes", { NULL }, { "pods:read" }, OP_SYNC,
	  "runpod" },
	{ "runpod.create_volume", { NULL }, { "pods:write" }, OP_SYNC,
	  "runpod" },
	{ "runpod.delete_volume", { NULL }, { "pods:write" }, OP_SYNC,
	  "runpod" },
	{ "runpod.stop_pod", { NULL }, { "pods:write" }, OP_TASK, "runpod" },
	{ "runpod.resume_pod", { NULL }, { "pods:write" }, OP_TASK, "runpod" },
	{ "runpod.terminate_pod", { "terminate_pod", "runpod_terminate" },
	  { "pods:write" }, OP_TASK, "runpod" },
	{ "instag.setup_environment", { "instag_setup_environment" },
	  { "instag:run" }, OP_TASK, "ssh" },
	{ "instag.upload_data", { "instag_prepare_data" }, { "instag:run" },
	  OP_TASK, "ssh" },
	{ "instag.preprocess", { NULL }, { "instag:run" }, OP_TASK, "ssh" },
	{ "instag.train", { "instag_run_training" }, { "instag:run" }, OP_TASK,
	  "ssh" },
	{ "instag.synthesize", { "instag_run_inference" }, { "instag:run" },
	  OP_TASK, "ssh" },
	{ "instag.fetch_results", { NULL }, { "instag:run" }, OP_TASK, "ssh" },
	{ "instag.pipeline", { NULL }, { "instag:run", "pods:write" }, OP_TASK,
	  "runpod+ssh" },
	{ "instag.register_asset", { NULL }, { "instag:run" }, OP_TASK, NULL },
	{ "instag.list_assets", { NULL }, { "instag:run" }, OP_SYNC, NULL },
	{ "instag.delete_asset", { NULL }, { "instag:run" }, OP_SYNC, NULL },
	{ "instag.place_assets", { NULL }, { "instag:run" }, OP_TASK, "ssh" },
	/* reading a task's log is reading the task */
	{ "instag.logs", { NULL }, { "tasks:read" }, OP_SYNC, "ssh" },
	{ "tasks.get", { NULL }, { "tasks:read" }, OP_SYNC, NULL },
	{ "tasks.list", { NULL }, { "tasks:read" }, OP_SYNC, NULL },
	/* Cancel is a write: tasks:write (and the task must be yours), as
	 * for the A2A CancelTask method (docs/api.md, "Scopes"). */
	{ "tasks.cancel", { NULL }, { "tasks:write" }, OP_SYNC, NULL },
	{ "diag.timer", { NULL }, { "diag:run" }, OP_TASK, "diagnostics" },
};
#define NDESIGN (sizeof(design) / sizeof(design[0]))

START_TEST(test_find)
{
	size_t i, j, n;
	const struct op_def *tab = ops_table(&n), *op;

	ck_assert_uint_eq(n, NDESIGN);
	for (i = 0; i < NDESIGN; i++) {
		op = ops_find(design[i].name);
		ck_assert_msg(op != NULL, "%s not found", design[i].name);
		ck_assert_str_eq(op->name, design[i].name);
		ck_assert_msg(op->kind == design[i].kind, "%s kind",
		    design[i].name);
		for (j = 0; design[i].scopes[j]; j++)
			ck_assert_pstr_eq(op->scopes[j], design[i].scopes[j]);
		ck_assert_msg(op->scopes[j] == NULL, "%s has extra scopes",
		    op->name);
		if (design[i].requires)
			ck_assert_pstr_eq(op->requires, design[i].requires);
		else
			ck_assert_ptr_null(op->requires);
		ck_assert_ptr_nonnull(op->summary);
		ck_assert_ptr_nonnull(op->params);
		if (op->kind == OP_SYNC && op->requires == NULL)
			ck_assert_ptr_nonnull(op->run);
		if (strcmp(op->name, "diag.timer") == 0)
			ck_assert_ptr_nonnull(op->step);
		for (j = 0; design[i].aliases[j]; j++) {
			ck_assert_msg(ops_find(design[i].aliases[j]) == op,
			    "alias %s does not find %s", design[i].aliases[j],
			    op->name);
			ck_assert_pstr_eq(op->aliases[j], design[i].aliases[j]);
		}
		ck_assert_msg(op->aliases[j] == NULL, "%s has extra aliases",
		    op->name);
	}
	/* Every table entry is found by its own name. */
	for (i = 0; i < n; i++)
		ck_assert_ptr_eq(ops_find(tab[i].name), &tab[i]);

	ck_assert_ptr_null(ops_find(NULL));
	ck_assert_ptr_null(ops_find(""));
	ck_assert_ptr_null(ops_find("tasks"));
	ck_assert_ptr_null(ops_find("tasks.get "));
	ck_assert_ptr_null(ops_find("Tasks.Get"));
	ck_assert_ptr_null(ops_find("runpod."));
	ck_assert_ptr_null(ops_find("runpod.*"));
	ck_assert_ptr_null(ops_find("get_pod"));
}
END_TEST

START_TEST(test_available_describe)
{
	struct config *off = load_cfg(""),
	    *on = load_cfg("diagnostics = true\n");
	const char *why = NULL;
	json_object *d;
	size_t i, n;
	bool seen_diag = false;

	ck_assert(ops_available(ops_find("tasks.get"), off, &why));
	ck_assert(ops_available(ops_find("diag.timer"), on, &why));
	why = NULL;
	ck_assert(!ops_available(ops_find("diag.timer"), off, &why));
	ck_assert_ptr_nonnull(strstr(why, "diagnostics"));
	why = NULL;
	ck_assert(!ops_available(ops_find("runpod.get_pod"), on, &why));
	ck_assert_ptr_nonnull(strstr(why, "RunPod"));
	why = NULL;
	ck_assert(!ops_available(ops_find("instag.train"), on, &why));
	ck_assert_ptr_nonnull(strstr(why, "SSH"));

	/* Described: every op except diag.timer when diagnostics are off. */
	d = ops_describe(off);
	n = json_object_array_length(d);
	ck_assert_uint_eq(n, NDESIGN - 1);
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(d, i);
		const char *name = ju_str(o, "operation");
		ck_assert_ptr_nonnull(ops_find(name));
		ck_assert_str_ne(name, "diag.timer");
		ck_assert_ptr_nonnull(ju_arr(o, "aliases"));
		ck_assert_ptr_nonnull(ju_arr(o, "scopes"));
		ck_assert_ptr_nonnull(ju_arr(o, "params"));
		ck_assert_ptr_nonnull(ju_str(o, "summary"));
		ck_assert_str_eq(ju_str(o, "kind"),
		    ops_find(name)->kind == OP_SYNC ? "sync" : "task");
	}
	json_object_put(d);
	d = ops_describe(on);
	n = json_object_array_length(d);
	ck_assert_uint_eq(n, NDESIGN);
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(d, i);
		if (strcmp(ju_str(o, "operation"), "diag.timer") == 0) {
			bool av = false;
			seen_diag = true;
			ck_assert_int_eq(ju_bool(o, "available", &av), 0);
			ck_assert(av);
		}
	}
	ck_assert(seen_diag);
	json_object_put(d);
	config_free(off);
	config_free(on);
}
END_TEST

/* ---- params_validate ---------------------------------------------------- */

static const struct param_spec spec_all[] = {
	{ "s", P_STR, false, PAT_ANY, 0, 10, { NULL }, NULL },
	{ "i", P_INT, false, PAT_ANY, -5, 5, { NULL }, NULL },
	{ "n", P_NUM, false, PAT_ANY, 0.5, 2.5, { NULL }, NULL },
	{ "b", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, NULL },
	{ "e", P_ENUM, false, PAT_ANY, 0, 0, { "red", "green", NULL }, NULL },
	{ "a", P_STR_ARRAY, false, PAT_IDENT, 1, 3, { NULL }, NULL },
	{ "m", P_STR_MAP, false, PAT_ENVKEY, 0, 2, { NULL }, NULL },
	{ "r", P_STR, true, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ NULL, P_STR, false, PAT_ANY, 0, 0, { NULL }, NULL }
};

START_TEST(test_validate_required_unknown)
{
	const struct param_spec *prov =
	    ops_find("runpod.provision_pod")->params;
	const struct param_spec *diag = ops_find("diag.timer")->params;
	char *err = NULL;

	expect_ok(spec_all, "{\"r\":\"x\"}");
	expect_bad(spec_all, "{}", "params.r is required");
	expect_bad(spec_all, "{\"r\":null}", "params.r is required");
	expect_bad(spec_all, "{\"s\":\"x\"}", "params.r is required");
	expect_bad(prov, "{\"gpu_count\":1}",
	    "params.gpu_type_ids is required");
	expect_bad(diag, "{\"bogus\":1}", "unknown parameter 'bogus'");
	{
		const struct param_spec *lg = ops_find("instag.logs")->params;
		const char *id = "\"task_id\":"
		    "\"0b6e4f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b\"";
		char b[160];

		snprintf(b, sizeof(b), "{%s}", id);
		expect_ok(lg, b);
		snprintf(b, sizeof(b), "{%s,\"offset\":0,\"limit\":1048576}",
		    id);
		expect_ok(lg, b);
		snprintf(b, sizeof(b), "{%s,\"offset\":-1}", id);
		expect_bad(lg, b, "params.offset");
		snprintf(b, sizeof(b), "{%s,\"limit\":0}", id);
		expect_bad(lg, b, "params.limit");
		snprintf(b, sizeof(b), "{%s,\"limit\":1048577}", id);
		expect_bad(lg, b, "params.limit");
		expect_bad(lg, "{\"task_id\":\"../x\"}", "params.task_id");
		expect_bad(lg, "{}", "params.task_id is required");
	}
	expect_bad(diag, "{\"steps\":1,\"Steps\":1}",
	    "unknown parameter 'Steps'");
	expect_bad(spec_all, "{\"r\":\"x\",\"__proto__\":{}}",
	    "unknown parameter '__proto__'");
	expect_bad(ops_find("runpod.list_gpu_types")->params, "{\"x\":1}",
	    "unknown parameter 'x'");
	expect_ok(ops_find("runpod.list_gpu_types")->params, "{}");
	/* params itself must be an object. */
	expect_bad(diag, "[]", "params must be an object, got array");
	expect_bad(diag, "\"steps\"", "params must be an object, got string");
	expect_bad(diag, "null", "params must be an object, got null");
	/* At most max_params keys. */
	ck_assert_int_eq(validate(diag, "{\"steps\":1,\"interval_ms\":0,"
	    "\"fail_at_step\":0}", 2, &err, NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than 2 keys"));
	free(err);
	ck_assert_int_eq(validate(diag, "{\"steps\":1,\"interval_ms\":0}", 2,
	    NULL, NULL), 0);
}
END_TEST

START_TEST(test_validate_types)
{
	static const struct {
		const char *text, *needle;
	} bad[] = {
		/* P_STR */
		{ "{\"r\":\"x\",\"s\":1}",
		  "params.s must be a string, got integer" },
		{ "{\"r\":\"x\",\"s\":true}",
		  "params.s must be a string, got boolean" },
		{ "{\"r\":\"x\",\"s\":[\"a\"]}",
		  "params.s must be a string, got array" },
		{ "{\"r\":\"x\",\"s\":{}}",
		  "params.s must be a string, got object" },
		{ "{\"r\":\"x\",\"s\":1.5}",
		  "params.s must be a string, got number" },
		{ "{\"r\":5}", "params.r must be a string" },
		/* P_INT */
		{ "{\"r\":\"x\",\"i\":\"1\"}",
		  "params.i must be an integer, got string" },
		{ "{\"r\":\"x\",\"i\":1.5}",
		  "params.i must be an integer, got number" },
		{ "{\"r\":\"x\",\"i\":true}", "params.i must be an integer" },
		{ "{\"r\":\"x\",\"i\":[1]}", "params.i must be an integer" },
		/* P_NUM */
		{ "{\"r\":\"x\",\"n\":\"1.0\"}",
		  "params.n must be a number, got string" },
		{ "{\"r\":\"x\",\"n\":false}", "params.n must be a number" },
		{ "{\"r\":\"x\",\"n\":{}}", "params.n must be a number" },
		/* P_BOOL */
		{ "{\"r\":\"x\",\"b\":1}",
		  "params.b must be a boolean, got integer" },
		{ "{\"r\":\"x\",\"b\":\"true\"}",
		  "params.b must be a boolean" },
		{ "{\"r\":\"x\",\"b\":0}", "params.b must be a boolean" },
		/* P_ENUM */
		{ "{\"r\":\"x\",\"e\":1}",
		  "params.e must be a string, got integer" },
		{ "{\"r\":\"x\",\"e\":[\"red\"]}",
		  "params.e must be a string" },
		/* P_STR_ARRAY */
		{ "{\"r\":\"x\",\"a\":\"x\"}",
		  "params.a must be an array of strings" },
		{ "{\"r\":\"x\",\"a\":{}}",
		  "params.a must be an array of strings" },
		{ "{\"r\":\"x\",\"a\":[1]}", "params.a[0] must be" },
		{ "{\"r\":\"x\",\"a\":[\"ok\",null]}", "params.a[1] must be" },
		{ "{\"r\":\"x\",\"a\":[\"ok\",[\"x\"]]}",
		  "params.a[1] must be" },
		/* P_STR_MAP */
		{ "{\"r\":\"x\",\"m\":[]}",
		  "params.m must be an object, got array" },
		{ "{\"r\":\"x\",\"m\":\"A=1\"}", "params.m must be an object" },
		{ "{\"r\":\"x\",\"m\":{\"A\":1}}",
		  "params.m.A must be a string" },
		{ "{\"r\":\"x\",\"m\":{\"A\":null}}",
		  "params.m.A must be a string" },
		{ "{\"r\":\"x\",\"m\":{\"A\":{}}}",
		  "params.m.A must be a string" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(spec_all, bad[i].text, bad[i].needle);
	/* And one value of every kind that fits. */
	expect_ok(spec_all, "{\"r\":\"x\",\"s\":\"hello\",\"i\":-5,\"n\":2,"
	    "\"b\":false,\"e\":\"green\",\"a\":[\"a\",\"b.c\"],"
	    "\"m\":{\"A_1\":\"v w\",\"_b\":\"\"}}");
}
END_TEST

START_TEST(test_validate_ranges_enums)
{
	/* P_INT [-5, 5] */
	expect_ok(spec_all, "{\"r\":\"x\",\"i\":-5}");
	expect_ok(spec_all, "{\"r\":\"x\",\"i\":5}");
	expect_ok(spec_all, "{\"r\":\"x\",\"i\":0}");
	expect_bad(spec_all, "{\"r\":\"x\",\"i\":-6}", "between -5 and 5");
	expect_bad(spec_all, "{\"r\":\"x\",\"i\":6}", "between -5 and 5");
	expect_bad(spec_all, "{\"r\":\"x\",\"i\":9223372036854775807}",
	    "between -5 and 5");
	expect_bad(spec_all, "{\"r\":\"x\",\"i\":-9223372036854775808}",
	    "between -5 and 5");
	expect_bad(spec_all, "{\"r\":\"x\",\"i\":18446744073709551615}",
	    "between -5 and 5");
	/* P_NUM [0.5, 2.5], integers allowed */
	expect_ok(spec_all, "{\"r\":\"x\",\"n\":0.5}");
	expect_ok(spec_all, "{\"r\":\"x\",\"n\":2.5}");
	expect_ok(spec_all, "{\"r\":\"x\",\"n\":1}");
	expect_bad(spec_all, "{\"r\":\"x\",\"n\":0.49}",
	    "params.n must be between");
	expect_bad(spec_all, "{\"r\":\"x\",\"n\":2.51}",
	    "params.n must be between");
	expect_bad(spec_all, "{\"r\":\"x\",\"n\":3}",
	    "params.n must be between");
	expect_bad(spec_all, "{\"r\":\"x\",\"n\":1e308}",
	    "params.n must be between");
	{
		/* Not finite (cannot come from strict JSON, but from code). */
		json_object *p = json_tokener_parse("{\"r\":\"x\"}");
		char *err = NULL;
		json_object_object_add(p, "n",
		    json_object_new_double(INFINITY));
		ck_assert_int_eq(params_validate(spec_all, p, 64, &err), -1);
		ck_assert_ptr_nonnull(strstr(err, "params.n"));
		free(err);
		json_object_put(p);
	}
	/* P_STR max length 10 */
	expect_ok(spec_all, "{\"r\":\"x\",\"s\":\"0123456789\"}");
	expect_bad(spec_all, "{\"r\":\"x\",\"s\":\"0123456789a\"}",
	    "params.s is longer than 10 bytes");
	/* P_STR_ARRAY 1..3 items */
	expect_ok(spec_all, "{\"r\":\"x\",\"a\":[\"a\"]}");
	expect_ok(spec_all, "{\"r\":\"x\",\"a\":[\"a\",\"b\",\"c\"]}");
	expect_bad(spec_all, "{\"r\":\"x\",\"a\":[]}",
	    "must hold 1 to 3 items");
	expect_bad(spec_all, "{\"r\":\"x\",\"a\":[\"a\",\"b\",\"c\",\"d\"]}",
	    "must hold 1 to 3 items");
	/* P_STR_MAP at most 2 entries */
	expect_ok(spec_all, "{\"r\":\"x\",\"m\":{}}");
	expect_bad(spec_all, "{\"r\":\"x\",\"m\":{\"A\":\"1\",\"B\":\"2\","
	    "\"C\":\"3\"}}", "params.m has more than 2 entries");
	/* P_ENUM */
	expect_ok(spec_all, "{\"r\":\"x\",\"e\":\"red\"}");
	expect_bad(spec_all, "{\"r\":\"x\",\"e\":\"blue\"}",
	    "params.e must be one of: red, green");
	expect_bad(spec_all, "{\"r\":\"x\",\"e\":\"RED\"}", "must be one of");
	expect_bad(spec_all, "{\"r\":\"x\",\"e\":\"red \"}", "must be one of");
	expect_bad(spec_all, "{\"r\":\"x\",\"e\":\"\"}", "must be one of");
	/* Enums and ranges of the real table. */
	{
		const struct param_spec *prov =
		    ops_find("runpod.provision_pod")->params;
		const struct param_spec *synth =
		    ops_find("instag.synthesize")->params;
		const struct param_spec *diag = ops_find("diag.timer")->params;
		const struct param_spec *list = ops_find("tasks.list")->params;

		expect_ok(prov, "{\"gpu_type_ids\":[\"A\"],\"cloud_type\":"
		    "\"ALL\"}");
		expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"cloud_type\":"
		    "\"secure\"}", "params.cloud_type must be one of: SECURE, "
		    "COMMUNITY, ALL");
		expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"gpu_count\":0}",
		    "params.gpu_count must be between 1 and 8");
		expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"gpu_count\":9}",
		    "params.gpu_count must be between 1 and 8");
		expect_bad(prov, "{\"gpu_type_ids\":[]}", "params.gpu_type_ids "
		    "must hold 1 to 16 items");
		expect_bad(prov,
		    "{\"gpu_type_ids\":[\"A\"],\"max_cost_usd\":0}",
		    "params.max_cost_usd must be between");
		expect_ok(prov, "{\"gpu_type_ids\":[\"A\"],"
		    "\"max_cost_usd\":0.5,\"max_runtime_minutes\":60}");
		expect_bad(synth, "{\"pod_id\":\"p\",\"subject\":\"s\","
		    "\"audio\":\"https://x.example/a.wav\","
		    "\"audio_extractor\":\"wav2vec\"}",
		    "params.audio_extractor must be one of: deepspeech, ave, "
		    "esperanto, hubert");
		expect_bad(synth, "{\"pod_id\":\"p\",\"subject\":\"s\","
		    "\"audio\":\"https://x.example/a.wav\",\"gpu_id\":16}",
		    "params.gpu_id must be between 0 and 15");
		expect_bad(diag, "{\"steps\":0}",
		    "params.steps must be between 1 and 1000");
		expect_bad(diag, "{\"interval_ms\":-1}", "params.interval_ms");
		expect_bad(diag, "{\"interval_ms\":600001}",
		    "params.interval_ms");
		expect_bad(list, "{\"page_size\":0}", "params.page_size");
		expect_bad(list, "{\"page_size\":101}", "params.page_size");
		expect_bad(list, "{\"state\":\"TASK_STATE_WORKING\"}",
		    "params.state must be one of");
		expect_ok(list, "{\"state\":\"input-required\","
		    "\"page_size\":100}");
	}
}
END_TEST

/* Strings no identifier may hold: shell, path and whitespace tricks. */
static const char *const hostile[] = {
	"$(reboot)", "a;b", "../x", "..", ".", "a b", "a\nb", "a\rb", "a\tb",
	"`id`", "a`id`", "a|b", "a&b", "a>b", "a<b", "x'y", "x\"y", "a/b",
	"a\\b", "~root", "*", "a?", "$HOME", "${IFS}", "", "\xc3\xbc",
	"%0a", "a,b", "a=b", "a:b", "a@b", "(x)", "{x}", "[x]", "!x", "#x",
	"0123456789012345678901234567890123456789012345678901234567890123X",
	NULL
};

START_TEST(test_validate_identifiers)
{
	const struct param_spec *train = ops_find("instag.train")->params;
	const struct param_spec *term =
	    ops_find("runpod.terminate_pod")->params;
	const struct param_spec *pipe = ops_find("instag.pipeline")->params;
	size_t i;

	for (i = 0; hostile[i]; i++) {
		expect_str(train, "{\"pod_id\":\"pod1\"}", "subject",
		    hostile[i], false);
		expect_str(train, "{\"subject\":\"may\"}", "pod_id", hostile[i],
		    false);
		expect_str(train, "{\"pod_id\":\"p\",\"subject\":\"s\"}",
		    "output_name", hostile[i], false);
		expect_str(term, "{}", "pod_id", hostile[i], false);
		expect_str(pipe, "{\"video\":\"https://x.example/v.mp4\","
		    "\"audio\":[\"https://x.example/a.wav\"],"
		    "\"gpu_type_ids\":[\"A\"]}", "subject", hostile[i], false);
	}
	/* What identifiers may look like. */
	expect_str(train, "{\"pod_id\":\"pod1\"}", "subject", "may", true);
	expect_str(train, "{\"pod_id\":\"pod1\"}", "subject", "May_01.v2-x",
	    true);
	expect_str(train, "{\"pod_id\":\"pod1\"}", "subject",
	    "0123456789012345678901234567890123456789012345678901234567890123",
	    true);
	expect_str(term, "{}", "pod_id", "abc123xyz", true);
	expect_str(train, "{\"pod_id\":\"p\",\"subject\":\"s\"}", "output_name",
	    "run.2", true);
}
END_TEST

START_TEST(test_validate_other_patterns)
{
	const struct param_spec *setup =
	    ops_find("instag.setup_environment")->params;
	const struct param_spec *prov =
	    ops_find("runpod.provision_pod")->params;
	const struct param_spec *upload =
	    ops_find("instag.upload_data")->params;
	const struct param_spec *get = ops_find("tasks.get")->params;
	const struct param_spec *list = ops_find("tasks.list")->params;
	static const char *const up = "{\"pod_id\":\"p\",\"subject\":\"s\"}";
	static const char *const gpu1 = "{\"gpu_type_ids\":[\"A\"]}";
	static const char *const uuid = "123e4567-e89b-42d3-a456-426614174000";
	char buf[256];

	/* PAT_HOST */
	expect_str(setup, "{}", "host", "10.0.0.1", true);
	expect_str(setup, "{}", "host", "gpu-1.example.org", true);
	expect_str(setup, "{}", "host", "::1", true);
	expect_str(setup, "{}", "host", "-oProxyCommand=reboot", false);
	expect_str(setup, "{}", "host", "host;reboot", false);
	expect_str(setup, "{}", "host", "a b", false);
	expect_str(setup, "{}", "host", "user@host", false);
	expect_str(setup, "{}", "host", "$(reboot)", false);
	expect_str(setup, "{}", "host", "", false);
	/* PAT_IMAGE */
	expect_str(prov, gpu1, "image",
	    "runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel", true);
	expect_str(prov, gpu1, "image", "ghcr.io/x/y@sha256:abcdef0123", true);
	expect_str(prov, gpu1, "image", "img$(reboot)", false);
	expect_str(prov, gpu1, "image", "img name", false);
	expect_str(prov, gpu1, "image", "-img", false);
	expect_str(prov, gpu1, "image", "/img", false);
	expect_str(prov, gpu1, "image", "img;x", false);
	expect_str(prov, gpu1, "image", "img\n", false);
	/* PAT_GPU (array items) */
	expect_ok(prov, "{\"gpu_type_ids\":[\"NVIDIA GeForce RTX 4090\","
	    "\"NVIDIA A100-SXM4-80GB\"]}");
	expect_bad(prov, "{\"gpu_type_ids\":[\" leading\"]}",
	    "params.gpu_type_ids[0] must be a GPU type id");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\",\"A100;reboot\"]}",
	    "params.gpu_type_ids[1]");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\\nB\"]}",
	    "params.gpu_type_ids[0]");
	expect_bad(prov, "{\"gpu_type_ids\":[\"$(x)\"]}",
	    "params.gpu_type_ids[0]");
	/* PAT_ENVKEY (map keys) and values without control characters */
	expect_ok(prov, "{\"gpu_type_ids\":[\"A\"],\"env\":{\"HF_TOKEN\":"
	    "\"abc def $x\",\"_X1\":\"\"}}");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"env\":{\"1A\":\"x\"}}",
	    "params.env key '1A'");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"env\":{\"A-B\":\"x\"}}",
	    "params.env key");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"env\":{\"A B\":\"x\"}}",
	    "params.env key");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"env\":{\"A;B\":\"x\"}}",
	    "params.env key");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"env\":{\"\":\"x\"}}",
	    "params.env key");
	expect_bad(prov, "{\"gpu_type_ids\":[\"A\"],\"env\":{\"A\":\"x\\ny\"}}",
	    "params.env.A must be a string without control characters");
	/* PAT_SOURCE */
	expect_str(upload, up, "video", "https://x.example/v.mp4", true);
	expect_str(upload, up, "video", uuid, true);
	snprintf(buf, sizeof(buf), "upload:%s", uuid);
	expect_str(upload, up, "video", buf, true);
	expect_str(upload, up, "video", "http://x.example/v.mp4", false);
	expect_str(upload, up, "video", "file:///etc/passwd", false);
	expect_str(upload, up, "video", "../../etc/passwd", false);
	expect_str(upload, up, "video", "https://x.example/a b", false);
	expect_str(upload, up, "video", "https://x.example/a\nb", false);
	expect_str(upload, up, "video", "upload:../x", false);
	expect_str(upload, up, "video", "", false);
	/* PAT_UUID */
	expect_str(get, "{}", "task_id", uuid, true);
	expect_str(get, "{}", "task_id", "x", false);
	expect_str(get, "{}", "task_id", "123e4567-e89b-42d3-a456-42661417400;",
	    false);
	/* PAT_ANY refuses control characters; max length 128 */
	expect_str(list, "{}", "page_token", "1000.abc", true);
	expect_str(list, "{}", "page_token", "a\x01z", false);
	expect_str(list, "{}", "page_token", "a\x7fz", false);
	memset(buf, 'x', 129);
	buf[129] = '\0';
	expect_str(list, "{}", "page_token", buf, false);
}
END_TEST

START_TEST(test_validate_defaults)
{
	json_object *p;
	int64_t v = -1;
	bool b = true;

	ck_assert_int_eq(validate(ops_find("diag.timer")->params, "{}", 64,
	    NULL, &p), 0);
	ck_assert_int_eq(ju_int(p, "steps", &v), 0);
	ck_assert(v == 3);
	ck_assert_int_eq(ju_int(p, "interval_ms", &v), 0);
	ck_assert(v == 1000);
	ck_assert_int_eq(ju_int(p, "fail_at_step", &v), 0);
	ck_assert(v == 0);
	json_object_put(p);

	/* Given values stay; only absent (or null) ones are filled. */
	ck_assert_int_eq(validate(ops_find("diag.timer")->params,
	    "{\"steps\":7,\"interval_ms\":null}", 64, NULL, &p), 0);
	ck_assert_int_eq(ju_int(p, "steps", &v), 0);
	ck_assert(v == 7);
	ck_assert_int_eq(ju_int(p, "interval_ms", &v), 0);
	ck_assert(v == 1000);
	json_object_put(p);

	ck_assert_int_eq(validate(ops_find("runpod.provision_pod")->params,
	    "{\"gpu_type_ids\":[\"A\"]}", 64, NULL, &p), 0);
	ck_assert_int_eq(ju_int(p, "gpu_count", &v), 0);
	ck_assert(v == 1);
	ck_assert_str_eq(ju_str(p, "cloud_type"), "SECURE");
	/* No default: stays absent. */
	ck_assert(!json_object_object_get_ex(p, "image", NULL));
	ck_assert(!json_object_object_get_ex(p, "max_cost_usd", NULL));
	json_object_put(p);

	ck_assert_int_eq(validate(ops_find("instag.synthesize")->params,
	    "{\"pod_id\":\"p\",\"subject\":\"s\",\"audio\":"
	    "\"https://x.example/a.wav\"}", 64, NULL, &p), 0);
	ck_assert_str_eq(ju_str(p, "audio_extractor"), "deepspeech");
	ck_assert_int_eq(ju_int(p, "gpu_id", &v), 0);
	ck_assert(v == 0);
	json_object_put(p);

	ck_assert_int_eq(validate(ops_find("instag.pipeline")->params,
	    "{\"subject\":\"s\",\"video\":\"https://x.example/v.mp4\","
	    "\"audio\":[\"https://x.example/a.wav\"],\"gpu_type_ids\":[\"A\"]}",
	    64, NULL, &p), 0);
	ck_assert_int_eq(ju_bool(p, "keep_pod", &b), 0);
	ck_assert(!b);
	json_object_put(p);

	ck_assert_int_eq(validate(ops_find("tasks.list")->params, "{}", 64,
	    NULL, &p), 0);
	ck_assert_int_eq(ju_int(p, "page_size", &v), 0);
	ck_assert(v == 20);
	ck_assert(!json_object_object_get_ex(p, "state", NULL));
	json_object_put(p);
}
END_TEST

/* ---- ops_invoke --------------------------------------------------------- */

static int
invoke(const struct config *cfg, const struct principal *who,
    const char *name, const char *params, struct op_outcome *out)
{
	struct op_ctx c = { cfg, who, NULL };
	json_object *p = params ? json_tokener_parse(params) : NULL;
	int rc;

	rc = ops_invoke(&c, name, p, NULL, out);
	json_object_put(p);
	return rc;
}

static void
expect_invoke_err(const struct config *cfg, const struct principal *who,
    const char *name, const char *params, const char *code, int status,
    const char *needle)
{
	struct op_outcome out;

	ck_assert_msg(invoke(cfg, who, name, params, &out) == -1,
	    "%s succeeded", name ? name : "(null)");
	ck_assert_msg(out.err.code != NULL && strcmp(out.err.code, code) == 0,
	    "%s: code %s, want %s (%s)", name ? name : "(null)",
	    out.err.code ? out.err.code : "NULL", code,
	    out.err.message ? out.err.message : "");
	/* 403 (a missing scope) is the forbidden category, and only it. */
	ck_assert_int_eq(out.err.category == ERRCAT_FORBIDDEN, status == 403);
	ck_assert_int_eq(out.err.category, errcode_category(code));
	ck_assert_ptr_nonnull(out.err.message);
	if (needle)
		ck_assert_msg(strstr(out.err.message, needle) != NULL,
		    "%s: message '%s' lacks '%s'", name ? name : "(null)",
		    out.err.message, needle);
	ck_assert_ptr_null(out.result);
	ck_assert_ptr_null(out.task);
	ops_outcome_clear(&out);
	ck_assert_ptr_null(out.err.message);
	ck_assert_ptr_null(out.err.code);
}

START_TEST(test_invoke_forbidden)
{
	struct config *cfg = load_cfg("diagnostics = true\n");
	struct principal reader, runner, none;

	tu_principal(&reader, "alice", "tasks:read pods:read");
	tu_principal(&runner, "bob", "instag:run diag:runner");
	tu_principal(&none, "carol", "");

	expect_invoke_err(cfg, &reader, "diag.timer", "{}", ERRC_FORBIDDEN, 403,
	    "diag:run");
	expect_invoke_err(cfg, &runner, "diag.timer", "{}", ERRC_FORBIDDEN, 403,
	    "diag:run");
	expect_invoke_err(cfg, &reader, "tasks.cancel", "{\"task_id\":"
	    "\"123e4567-e89b-42d3-a456-426614174000\"}", ERRC_FORBIDDEN, 403,
	    "tasks:write");
	expect_invoke_err(cfg, &reader, "runpod.provision_pod",
	    "{\"gpu_type_ids\":[\"A\"]}", ERRC_FORBIDDEN, 403, "pods:write");
	/* By alias too. */
	expect_invoke_err(cfg, &reader, "runpod_provision",
	    "{\"gpu_type_ids\":[\"A\"]}", ERRC_FORBIDDEN, 403, "pods:write");
	/* Pipelines need both scopes. */
	expect_invoke_err(cfg, &runner, "instag.pipeline", "{}", ERRC_FORBIDDEN,
	    403, "pods:write");
	expect_invoke_err(cfg, &none, "tasks.get", "{}", ERRC_FORBIDDEN, 403,
	    "tasks:read");
	/* The scope check comes before the params are looked at. */
	expect_invoke_err(cfg, &none, "diag.timer", "{\"steps\":\"$(reboot)\"}",
	    ERRC_FORBIDDEN, 403, NULL);
	principal_clear(&reader);
	principal_clear(&runner);
	principal_clear(&none);
	config_free(cfg);
}
END_TEST

START_TEST(test_invoke_errors)
{
	struct config *off = load_cfg("");
	struct principal all;

	tu_principal(&all, "alice",
	    "pods:read pods:write instag:run tasks:read tasks:write diag:run");

	/* Unknown operations. */
	expect_invoke_err(off, &all, "no.such_op", "{}", ERRC_UNKNOWN_OP, 200,
	    "no.such_op");
	expect_invoke_err(off, &all, "", "{}", ERRC_UNKNOWN_OP, 200, NULL);
	expect_invoke_err(off, &all, NULL, "{}", ERRC_UNKNOWN_OP, 200, NULL);

	/* Providers this build does not have. */
	expect_invoke_err(off, &all, "runpod.list_gpu_types", NULL,
	    ERRC_NOT_CONFIGURED, 200, "RunPod");
	expect_invoke_err(off, &all, "get_pod_status", "{\"pod_id\":\"abc\"}",
	    ERRC_NOT_CONFIGURED, 200, "runpod.get_pod");
	expect_invoke_err(off, &all, "runpod.provision_pod",
	    "{\"gpu_type_ids\":[\"NVIDIA A40\"]}", ERRC_NOT_CONFIGURED, 200,
	    "RunPod");
	expect_invoke_err(off, &all, "instag.train",
	    "{\"pod_id\":\"p1\",\"subject\":\"may\"}", ERRC_NOT_CONFIGURED, 200,
	    "SSH");
	expect_invoke_err(off, &all, "instag_run_inference",
	    "{\"host\":\"10.0.0.5\",\"subject\":\"may\",\"audio\":"
	    "\"https://x.example/a.wav\"}", ERRC_NOT_CONFIGURED, 200, NULL);
	expect_invoke_err(off, &all, "instag.pipeline",
	    "{\"subject\":\"s\",\"video\":\"https://x.example/v.mp4\","
	    "\"audio\":[\"https://x.example/a.wav\"],\"gpu_type_ids\":[\"A\"]}",
	    ERRC_NOT_CONFIGURED, 200, NULL);
	/* Diagnostics off. */
	expect_invoke_err(off, &all, "diag.timer", "{}", ERRC_NOT_CONFIGURED,
	    200, "diagnostics");
	expect_invoke_err(off, &all, "diag.timer", NULL, ERRC_NOT_CONFIGURED,
	    200, "diagnostics");

	/* Invalid params name the operation and the parameter. */
	expect_invoke_err(off, &all, "instag.train",
	    "{\"pod_id\":\"p1\",\"subject\":\"$(reboot)\"}",
	    ERRC_INVALID_PARAMS, 200, "instag.train: params.subject");
	expect_invoke_err(off, &all, "instag_run_training",
	    "{\"pod_id\":\"p1\",\"subject\":\"a;b\"}", ERRC_INVALID_PARAMS, 200,
	    "params.subject");
	expect_invoke_err(off, &all, "tasks.get", "{\"task_id\":\"../x\"}",
	    ERRC_INVALID_PARAMS, 200, "params.task_id");
	expect_invoke_err(off, &all, "tasks.get", "{}", ERRC_INVALID_PARAMS,
	    200, "params.task_id is required");
	expect_invoke_err(off, &all, "tasks.get", "[1]", ERRC_INVALID_PARAMS,
	    200, "params must be an object");
	/* The target rule: exactly one of pod_id and host. */
	expect_invoke_err(off, &all, "instag.preprocess", "{\"subject\":\"s\"}",
	    ERRC_INVALID_PARAMS, 200, "exactly one");
	expect_invoke_err(off, &all, "instag.preprocess", "{\"subject\":\"s\","
	    "\"pod_id\":\"p\",\"host\":\"h\"}", ERRC_INVALID_PARAMS, 200,
	    "exactly one");
	expect_invoke_err(off, &all, "instag.preprocess", "{\"subject\":\"s\","
	    "\"pod_id\":\"p\"}", ERRC_NOT_CONFIGURED, 200, NULL);
	principal_clear(&all);
	config_free(off);
}
END_TEST

START_TEST(test_invoke_leaves_params)
{
	struct config *off = load_cfg("max_params = 2\n");
	struct principal all;
	struct op_ctx c;
	struct op_outcome out;
	json_object *p = json_tokener_parse("{\"steps\":2}");
	char *before = ju_dump(p), *after;

	tu_principal(&all, "alice", "diag:run");
	c.cfg = off;
	c.who = &all;
	c.message = NULL;
	ck_assert_int_eq(ops_invoke(&c, "diag.timer", p, NULL, &out), -1);
	ck_assert_str_eq(out.err.code, ERRC_NOT_CONFIGURED);
	ops_outcome_clear(&out);
	after = ju_dump(p);
	/* Defaults were filled in a copy, not in the caller's object. */
	ck_assert_str_eq(before, after);
	free(after);
	json_object_put(p);
	/* max_params from the configuration applies. */
	p = json_tokener_parse("{\"steps\":2,\"interval_ms\":1,"
	    "\"fail_at_step\":0}");
	ck_assert_int_eq(ops_invoke(&c, "diag.timer", p, NULL, &out), -1);
	ck_assert_str_eq(out.err.code, ERRC_INVALID_PARAMS);
	ck_assert_ptr_nonnull(strstr(out.err.message, "more than 2 keys"));
	ops_outcome_clear(&out);
	json_object_put(p);
	free(before);
	principal_clear(&all);
	config_free(off);
}
END_TEST

START_TEST(test_op_error_set)
{
	struct op_error e = { 0 };

	op_error_set(&e, ERRC_INTERNAL, "x=%d %s", 5, "y");
	ck_assert_str_eq(e.code, ERRC_INTERNAL);
	ck_assert_str_eq(e.message, "x=5 y");
	op_error_set(&e, ERRC_TASK_NOT_FOUND, "%s", "again");
	ck_assert_str_eq(e.code, ERRC_TASK_NOT_FOUND);
	ck_assert_str_eq(e.message, "again");
	free(e.message);
}
END_TEST

static Suite *
ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("core");

	log_set_level(LOG_WARN);
	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_available_describe);
	tcase_add_test(tc, test_validate_required_unknown);
	tcase_add_test(tc, test_validate_types);
	tcase_add_test(tc, test_validate_ranges_enums);
	tcase_add_test(tc, test_validate_identifiers);
	tcase_add_test(tc, test_validate_other_patterns);
	tcase_add_test(tc, test_validate_defaults);
	tcase_add_test(tc, test_invoke_forbidden);
	tcase_add_test(tc, test_invoke_errors);
	tcase_add_test(tc, test_invoke_leaves_params);
	tcase_add_test(tc, test_op_error_set);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { ops_suite })
