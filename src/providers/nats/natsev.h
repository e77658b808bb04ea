/* SPDX-License-Identifier: MIT */
/*
 * natsev: the JSON bodies of the events the agent publishes on NATS for
 * the umbrella framework (docs/api.md "Events on NATS").  Prefix natsev_.
 * Pure functions: no I/O, no globals; natspub.h sends what they make.
 *
 * Each body is the bare JSON object (no envelope), as the umbrella's
 * EventBus publishes and reads them:
 *   a2a.events              {"type":"task_status","agent_id","task_id",
 *                            "owner","operation","state","timestamp"}
 *   a2a.workflow.completed  {"type":"workflow_completed","agent_id",
 *                            "workflow_id","owner","result":{"state",
 *                            "artifacts":[names],"error_code"?},
 *                            "duration_ms","timestamp"}
 * What they never send: a task's params, checkpoint, history, progress
 * messages, result values, error messages or artifact URIs (signed URLs),
 * nor any token or credential.  Only the fields above, each copied from
 * the task record or the configuration.
 */
#ifndef IA_NATSEV_H
#define IA_NATSEV_H

#include <stdbool.h>
#include <stdint.h>

#include "core/task.h"

#define NATSEV_SUBJECT_EVENTS "a2a.events"
#define NATSEV_SUBJECT_WORKFLOW "a2a.workflow.completed"
/* The operation whose end is a workflow completion. */
#define NATSEV_WORKFLOW_OPERATION "instag.pipeline"
/* At most this many artifact names in a workflow_completed result. */
#define NATSEV_MAX_ARTIFACT_NAMES 64

/* The task_status body for t as it stands, agent_id the agent's id (its
 * card's), stamped now_ms (wall clock).  New string; caller frees. */
char *natsev_task_status(const struct task *t, const char *agent_id,
    int64_t now_ms);

/* Does t's change end a workflow (an instag.pipeline task in a terminal
 * state)? */
bool natsev_is_workflow_end(const struct task *t);

/* The workflow_completed body for t (natsev_is_workflow_end(t) true):
 * duration_ms from its creation to its last change.  New string; caller
 * frees. */
char *natsev_workflow_completed(const struct task *t, const char *agent_id,
    int64_t now_ms);

#endif
