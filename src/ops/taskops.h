/* SPDX-License-Identifier: MIT */
/*
 * taskops: the operations on the agent's own tasks (tasks.get, tasks.list,
 * tasks.cancel: the envelope's way to what A2A's task methods do) and the
 * diagnostics task diag.timer.  Prefix taskops_.  Signatures as in
 * core/op.h; the caller's identity comes from the op_ctx.
 */
#ifndef IA_TASKOPS_H
#define IA_TASKOPS_H

#include <json-c/json.h>

#include "core/op.h"

int taskops_get(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
int taskops_list(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
int taskops_cancel(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
/* instag.logs: the remote log of one of the caller's InsTaG tasks (an
 * iops operation or instag.pipeline) by byte offset; someone else's task
 * is task_not_found.  See iops_read_log. */
int taskops_logs(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
/* diag.timer: params.steps steps of params.interval_ms on the timer
 * queue, failing at params.fail_at_step when set. */
enum step_result taskops_diag_timer_step(struct task *t,
    const struct step_env *env);

#endif
