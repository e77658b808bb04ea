/* SPDX-License-Identifier: MIT */
/*
 * pipeline: instag.pipeline, video in and talking-head video out, as one
 * task.  Prefix pl_.
 *
 * The task runs a list of stages kept in its checkpoint:
 *   provision (or reuse params.pod_id), setup, assets, upload, preprocess,
 *   train, synthesize (one per audio), fetch, terminate (unless keep_pod
 *   or a reused pod)
 * Each stage is another operation's own step function (provision.h,
 * iops.h) run on a part of this task: a stand-in struct task with the same
 * id and owner, the stage's params and its own checkpoint object, which
 * lives inside this task's checkpoint.  So every stage keeps its own crash
 * safety (commits before risky calls go through this task's commit), and
 * a stage that finished is recorded in the same commit that moves on to
 * the next: after a crash, a finished stage is never run again.
 * Progress is step k of n, a percent weighted by each stage's expected
 * share of the time (training's from InsTaG's own progress bar) and the
 * remote job's last log line.  See docs/internals.md, "The pipeline".
 */
#ifndef IA_PIPELINE_H
#define IA_PIPELINE_H

#include <json-c/json.h>

#include "lib/attrs.h"
#include "core/config.h"
#include "core/op.h"
#include "lib/strbuf.h"

enum step_result pl_step(struct task *t, const struct step_env *env);
enum step_result pl_cancel(struct task *t, const struct step_env *env);

/* Validator after the params spec: gpu_type_ids (distinct) unless
 * pod_id.  0, or -1 with *err (caller frees). */
int pl_validate(json_object *params, const struct config *cfg, char **err);
/* Admission: a pod_id must be a running pod of the caller's; the sources
 * (video, each audio) uploads of the caller's or https URLs, "part:N"
 * resolved from the message.  0, or -1 with *e. */
int pl_admit(const struct op_ctx *c, json_object *params,
    struct op_error *e);

/* Pipelines by state and stage, stage durations (a metrics collector). */
/*
 * instag.logs for pipeline task t: the log of its current part's remote
 * job, through iops_read_log (which see); log_gone when the last part
 * finished (its jobs' directories are removed after success), no_log
 * before the first job.
 */
WARN_UNUSED_RESULT
int pl_read_log(const struct config *cfg, const struct task *t,
    int64_t offset, int64_t limit, json_object **result,
    struct op_error *e);
void pl_metrics(struct strbuf *sb);

#endif
