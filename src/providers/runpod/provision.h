/* SPDX-License-Identifier: MIT */
/*
 * provision: the pod lifecycle as task steps.  Prefix prov_.
 *
 * runpod.provision_pod, one short step at a time (no step blocks an
 * executor thread for long; waits go to the timer queue):
 *   create   one POST /v2/pods per step for the next (GPU type, cloud)
 *            candidate; a capacity error moves on to the next candidate,
 *            every attempt is recorded in the task's checkpoint and result.
 *            Before each create the task is committed with
 *            "create_pending": after a crash, a 5xx or a timeout (the pod
 *            may exist) the next step first looks the pod up by its name
 *            <prefix>-<task id> and adopts it instead of making another.
 *   wait     one GET per step, polling with backoff, until the pod is
 *            RUNNING with ssh.direct and an SSH login with the agent's key
 *            succeeds; the host key is pinned in the registry then.
 *   deadline provision_timeout (or params.ready_timeout_s) after the task
 *            started: the pod is terminated and the task fails with what
 *            it was waiting for.
 * 429 honours Retry-After and 5xx / network errors back off, both on the
 * timer queue.  Cancel terminates the pod the task made.
 *
 * runpod.stop_pod / resume_pod / terminate_pod: the action, then polls
 * until the pod is EXITED / RUNNING with SSH (the pinned host key must
 * still match) / gone.
 */
#ifndef IA_PROVISION_H
#define IA_PROVISION_H

#include <json-c/json.h>

#include "core/config.h"
#include "core/op.h"

enum step_result prov_provision_step(struct task *t,
    const struct step_env *env);
enum step_result prov_provision_cancel(struct task *t,
    const struct step_env *env);
enum step_result prov_action_step(struct task *t, const struct step_env *env);

/* Validator of runpod.provision_pod params (after the spec): the GPU type
 * ids must be distinct.  0, or -1 with *err (caller frees). */
int prov_validate(json_object *params, const struct config *cfg, char **err);

#endif
