/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <string.h>

#include "lib/jsonutil.h"
#include "providers/nats/natsev.h"

static void
add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, ju_new_str(v));
}

static void
add_time(json_object *o, int64_t now_ms)
{
	char ts[40];

	ju_iso8601(now_ms, ts, sizeof(ts));
	add_str(o, "timestamp", ts);
}

/* Dump o compactly and put it; new string the caller frees. */
static char *
dump_put(json_object *o)
{
	char *s = ju_dump(o);

	json_object_put(o);
	return s;
}

char *
natsev_task_status(const struct task *t, const char *agent_id,
    int64_t now_ms)
{
	json_object *o = json_object_new_object();

	add_str(o, "type", "task_status");
	add_str(o, "agent_id", agent_id);
	add_str(o, "task_id", t->id);
	add_str(o, "owner", t->owner);
	add_str(o, "operation", t->operation);
	add_str(o, "state", task_state_name(t->state));
	add_time(o, now_ms);
	return dump_put(o);
}

bool
natsev_is_workflow_end(const struct task *t)
{
	return t->operation != NULL &&
	    strcmp(t->operation, NATSEV_WORKFLOW_OPERATION) == 0 &&
	    task_state_terminal(t->state);
}

/* {"state", "artifacts":[names], "error_code"?}: the names only (never an
 * artifact's parts, whose URIs may be signed), the error's code only. */
static json_object *
result_summary(const struct task *t)
{
	json_object *r = json_object_new_object(), *names;
	const char *code;
	size_t i, n;

	add_str(r, "state", task_state_name(t->state));
	names = json_object_new_array();
	n = t->artifacts ? json_object_array_length(t->artifacts) : 0;
	for (i = 0; i < n && i < NATSEV_MAX_ARTIFACT_NAMES; i++) {
		const char *nm = ju_str(json_object_array_get_idx(
		    t->artifacts, i), "name");
		if (nm != NULL)
			json_object_array_add(names, ju_new_str(nm));
	}
	json_object_object_add(r, "artifacts", names);
	code = t->error ? ju_str(t->error, "code") : NULL;
	if (code != NULL)
		add_str(r, "error_code", code);
	return r;
}

char *
natsev_workflow_completed(const struct task *t, const char *agent_id,
    int64_t now_ms)
{
	json_object *o = json_object_new_object();
	int64_t d = t->updated_ms - t->created_ms;

	add_str(o, "type", "workflow_completed");
	add_str(o, "agent_id", agent_id);
	add_str(o, "workflow_id", t->id);
	add_str(o, "owner", t->owner);
	json_object_object_add(o, "result", result_summary(t));
	json_object_object_add(o, "duration_ms",
	    json_object_new_int64(d > 0 ? d : 0));
	add_time(o, now_ms);
	return dump_put(o);
}
