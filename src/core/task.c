/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "core/task.h"
#include "lib/xalloc.h"

static const char *const state_names[] = {
	"submitted", "working", "input-required", "completed", "canceled",
	"failed", "rejected"
};
static const char *const state_names_v1[] = {
	"TASK_STATE_SUBMITTED", "TASK_STATE_WORKING",
	"TASK_STATE_INPUT_REQUIRED", "TASK_STATE_COMPLETED",
	"TASK_STATE_CANCELED", "TASK_STATE_FAILED", "TASK_STATE_REJECTED"
};

struct task *
task_new(const char *owner, const char *operation, json_object *params,
    const char *context_id)
{
	struct task *t = xcalloc(1, sizeof(*t));

	uuid_v4(t->id);
	if (context_id != NULL && strlen(context_id) <= TASK_CONTEXT_MAX &&
	    context_id[0] != '\0')
		strcpy(t->context_id, context_id);
	else
		uuid_v4(t->context_id);
	t->owner = xstrdup(owner);
	t->operation = xstrdup(operation);
	t->params = params ? params : json_object_new_object();
	t->state = TASK_SUBMITTED;
	t->artifacts = json_object_new_array();
	t->checkpoint = json_object_new_object();
	t->history = json_object_new_array();
	t->created_ms = t->updated_ms = clock_wall_ms();
	t->version = 1;
	return t;
}

void
task_free(struct task *t)
{
	if (t == NULL)
		return;
	free(t->owner);
	free(t->operation);
	json_object_put(t->params);
	json_object_put(t->progress);
	json_object_put(t->result);
	json_object_put(t->artifacts);
	json_object_put(t->error);
	json_object_put(t->checkpoint);
	json_object_put(t->history);
	free(t);
}

void
task_list_free(struct task **tasks, size_t n)
{
	size_t i;

	if (tasks == NULL)
		return;
	for (i = 0; i < n; i++)
		task_free(tasks[i]);
	free(tasks);
}

struct task *
task_clone(const struct task *t)
{
	struct task *c = xcalloc(1, sizeof(*c));

	*c = *t;
	c->owner = xstrdup(t->owner);
	c->operation = xstrdup(t->operation);
	c->params = ju_copy(t->params);
	c->progress = ju_copy(t->progress);
	c->result = ju_copy(t->result);
	c->artifacts = ju_copy(t->artifacts);
	c->error = ju_copy(t->error);
	c->checkpoint = ju_copy(t->checkpoint);
	c->history = ju_copy(t->history);
	return c;
}

const char *
task_state_name(enum task_state s)
{
	return state_names[s];
}

int
task_state_parse(const char *s, enum task_state *out)
{
	size_t i;

	for (i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (strcmp(s, state_names[i]) == 0 ||
		    strcmp(s, state_names_v1[i]) == 0) {
			*out = (enum task_state)i;
			return 0;
		}
	}
	return -1;
}

bool
task_state_terminal(enum task_state s)
{
	return s == TASK_COMPLETED || s == TASK_CANCELED || s == TASK_FAILED ||
	    s == TASK_REJECTED;
}

bool
task_state_interrupted(enum task_state s)
{
	return s == TASK_INPUT_REQUIRED;
}

static void
task_touch(struct task *t)
{
	t->version++;
	t->updated_ms = clock_wall_ms();
}

void
task_set_state(struct task *t, enum task_state s)
{
	t->state = s;
	task_touch(t);
}

void
task_set_progress(struct task *t, int step, int steps, const char *message)
{
	task_set_progress_pct(t, step, steps, steps > 0 ? step * 100 / steps :
	    0, message);
}

void
task_set_progress_pct(struct task *t, int step, int steps, int percent,
    const char *message)
{
	json_object *p = json_object_new_object();

	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	json_object_object_add(p, "step", json_object_new_int(step));
	json_object_object_add(p, "steps", json_object_new_int(steps));
	json_object_object_add(p, "percent", json_object_new_int(percent));
	json_object_object_add(p, "message",
	    json_object_new_string(message ? message : ""));
	json_object_put(t->progress);
	t->progress = p;
	task_touch(t);
}

void
task_complete(struct task *t, json_object *result)
{
	json_object_put(t->result);
	t->result = result;
	t->state = TASK_COMPLETED;
	task_touch(t);
}

void
task_fail(struct task *t, const char *code, const char *message)
{
	json_object *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_put(t->error);
	t->error = e;
	t->state = TASK_FAILED;
	task_touch(t);
}

void
task_add_history(struct task *t, json_object *msg, int max)
{
	size_t n;

	json_object_array_add(t->history, msg);
	n = json_object_array_length(t->history);
	if (max > 0 && n > (size_t)max)
		json_object_array_del_idx(t->history, 0, n - (size_t)max);
	task_touch(t);
}

int64_t
task_ckpt_int(const struct task *t, const char *key, int64_t def)
{
	int64_t v = def;

	ju_int(t->checkpoint, key, &v);
	return v;
}

void
task_ckpt_set_int(struct task *t, const char *key, int64_t v)
{
	json_object_object_add(t->checkpoint, key, json_object_new_int64(v));
}

const char *
task_ckpt_str(const struct task *t, const char *key)
{
	return ju_str(t->checkpoint, key);
}

void
task_ckpt_set_str(struct task *t, const char *key, const char *v)
{
	json_object_object_add(t->checkpoint, key,
	    v ? json_object_new_string(v) : NULL);
}

bool
task_ckpt_bool(const struct task *t, const char *key, bool def)
{
	bool v = def;

	ju_bool(t->checkpoint, key, &v);
	return v;
}

void
task_ckpt_set_bool(struct task *t, const char *key, bool v)
{
	json_object_object_add(t->checkpoint, key,
	    json_object_new_boolean(v));
}

json_object *
task_msg_text(const char *role, const char *text, const char *task_id,
    const char *context_id)
{
	json_object *m = json_object_new_object();
	json_object *parts = json_object_new_array();
	json_object *p = json_object_new_object();
	char id[UUID_STR_LEN], ts[32];

	uuid_v4(id);
	ju_iso8601(clock_wall_ms(), ts, sizeof(ts));
	json_object_object_add(p, "kind", json_object_new_string("text"));
	json_object_object_add(p, "text", json_object_new_string(text));
	json_object_array_add(parts, p);
	json_object_object_add(m, "messageId", json_object_new_string(id));
	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "parts", parts);
	if (task_id)
		json_object_object_add(m, "taskId",
		    json_object_new_string(task_id));
	if (context_id)
		json_object_object_add(m, "contextId",
		    json_object_new_string(context_id));
	json_object_object_add(m, "timestamp", json_object_new_string(ts));
	return m;
}

json_object *
task_to_json(const struct task *t)
{
	json_object *o = json_object_new_object();
	char ts[32];

	json_object_object_add(o, "task_id", json_object_new_string(t->id));
	json_object_object_add(o, "context_id",
	    json_object_new_string(t->context_id));
	json_object_object_add(o, "operation",
	    json_object_new_string(t->operation));
	json_object_object_add(o, "state",
	    json_object_new_string(task_state_name(t->state)));
	json_object_object_add(o, "progress", ju_copy(t->progress));
	json_object_object_add(o, "result", ju_copy(t->result));
	json_object_object_add(o, "artifacts", ju_copy(t->artifacts));
	json_object_object_add(o, "error", ju_copy(t->error));
	ju_iso8601(t->created_ms, ts, sizeof(ts));
	json_object_object_add(o, "created_at", json_object_new_string(ts));
	ju_iso8601(t->updated_ms, ts, sizeof(ts));
	json_object_object_add(o, "updated_at", json_object_new_string(ts));
	return o;
}
