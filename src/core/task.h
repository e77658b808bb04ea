/* SPDX-License-Identifier: MIT */
/*
 * task: the task record (A2A's Task, docs/api.md) and its JSON forms.
 *
 * A struct task owns every pointer and json_object reference in it.
 * task_free() releases them all.  The internal message form kept in
 * history is dialect-neutral:
 *   {"messageId":..,"role":"user"|"agent","parts":[
 *      {"kind":"text","text":..} | {"kind":"data","data":..} |
 *      {"kind":"file","uri":..,"name":..,"mimeType":..}],
 *    "timestamp":ISO8601}
 * and the renderers in a2a.c turn it into v0.3 or v1.0 wire objects.
 */
#ifndef IA_TASK_H
#define IA_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "lib/attrs.h"
#include "lib/uuid.h"

#define TASK_CONTEXT_MAX 64	/* longest client-given contextId */

enum task_state {
	TASK_SUBMITTED = 0,
	TASK_WORKING,
	TASK_INPUT_REQUIRED,
	TASK_COMPLETED,
	TASK_CANCELED,
	TASK_FAILED,
	TASK_REJECTED
};

struct task {
	char id[UUID_STR_LEN];
	char context_id[TASK_CONTEXT_MAX + 1];	/* ours a UUID, or the
						 * client's */
	char *owner;			/* JWT sub */
	char *operation;		/* canonical operation name */
	json_object *params;		/* object */
	enum task_state state;
	json_object *progress;		/* {"step","steps","percent","message"}
					 * or NULL */
	json_object *result;		/* object or NULL */
	json_object *artifacts;		/* array (never NULL) */
	json_object *error;		/* {"code","message"} or NULL */
	json_object *checkpoint;	/* operation-private object
					 * (never NULL) */
	json_object *history;		/* array of internal messages
					 * (never NULL) */
	int64_t created_ms;
	int64_t updated_ms;
	int64_t next_wake_ms;		/* wall clock; 0 = now */
	int64_t version;		/* bumped on every change */
	bool cancel_requested;
	int64_t lease_token;		/* the lease this copy was read or
					 * claimed under (a shared store
					 * fences writes on it); 0: new */
};

/* A new task in state submitted with fresh ids; params is taken (the
 * reference becomes the task's).  context_id may be NULL (one is made). */
struct task *task_new(const char *owner, const char *operation,
    json_object *params, const char *context_id);
void task_free(struct task *t);		/* NULL ok */
/* task_free each of the n tasks of an array, then the array (NULL ok). */
void task_list_free(struct task **tasks, size_t n);
/* Deep copy; caller frees with task_free. */
struct task *task_clone(const struct task *t);

const char *task_state_name(enum task_state s);		/* "working" */
/* Accepts both "working" and "TASK_STATE_WORKING". */
WARN_UNUSED_RESULT
int task_state_parse(const char *s, enum task_state *out);
bool task_state_terminal(enum task_state s);
bool task_state_interrupted(enum task_state s);

/* Setters bump version and updated_ms.  message may be NULL. */
void task_set_state(struct task *t, enum task_state s);
void task_set_progress(struct task *t, int step, int steps,
    const char *message);
/* The same with the percent given (clamped to 0..100), e.g. weighted by
 * how long each step is expected to take. */
void task_set_progress_pct(struct task *t, int step, int steps, int percent,
    const char *message);
/* Takes the result reference. */
void task_complete(struct task *t, json_object *result);
void task_fail(struct task *t, const char *code, const char *message);
/* Append an internal message (taken), keeping at most max entries. */
void task_add_history(struct task *t, json_object *msg, int max);

/*
 * The operation-private checkpoint object, by key.  The getters return
 * def (false, NULL) when the key is absent or of another type; the string
 * is borrowed from the checkpoint (valid until the key is set again).  The
 * setters add or replace the key (they bump neither version nor
 * updated_ms); task_ckpt_set_str copies v, NULL stores JSON null.
 */
int64_t task_ckpt_int(const struct task *t, const char *key, int64_t def);
void task_ckpt_set_int(struct task *t, const char *key, int64_t v);
const char *task_ckpt_str(const struct task *t, const char *key);
void task_ckpt_set_str(struct task *t, const char *key, const char *v);
bool task_ckpt_bool(const struct task *t, const char *key, bool def);
void task_ckpt_set_bool(struct task *t, const char *key, bool v);

/* Internal message constructors (new references). */
json_object *task_msg_text(const char *role, const char *text,
    const char *task_id, const char *context_id);

/* The agent's own JSON view (tasks.get result, envelope): new reference. */
json_object *task_to_json(const struct task *t);

#endif
