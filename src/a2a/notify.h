/* SPDX-License-Identifier: MIT */
/*
 * notify: A2A push notification configs and the fan-out of task updates
 * to them.  Prefix notify_.
 *
 * The configs are kept in the store (table push_configs); this module is
 * the only one that reads or writes them.  notify_task_changed() renders
 * the task in each config's dialect and hands it to push (push.h), which
 * delivers it on its own thread: nothing here waits on the network.
 */
#ifndef IA_NOTIFY_H
#define IA_NOTIFY_H

#include <stddef.h>

#include "lib/attrs.h"
#include "core/task.h"
#include "lib/strbuf.h"
#include "store/store.h"

/* Keep st (borrowed for the life of the process) and learn from it which
 * tasks have push configs (notify_task_changed looks up only those). */
void notify_init(struct store *st);

/* Deliver t as it now stands to every push config of its task.  A
 * terminal t is the task's last change: it stops being watched. */
void notify_task_changed(const struct task *t);
/* The metrics collector (metrics_add_collector): how many tasks are
 * watched for push configs, and whether every change looks (shared
 * store, or the list at start failed). */
void notify_metrics(struct strbuf *sb);

/* Create or replace one config.  0, or -1 with *err (caller frees). */
WARN_UNUSED_RESULT
int notify_config_put(const struct push_config *pc, char **err);
/* 0 and *out (caller frees with store_push_free), 1 absent, -1 error. */
WARN_UNUSED_RESULT
int notify_config_get(const char *task_id, const char *id,
    struct push_config **out);
/* Every config of a task: 0 and a new array of new configs (caller frees
 * with store_push_list_free), or -1. */
WARN_UNUSED_RESULT
int notify_config_list(const char *task_id, struct push_config ***out,
    size_t *n);
/* 0 deleted, 1 absent, -1 error. */
WARN_UNUSED_RESULT
int notify_config_delete(const char *task_id, const char *id);

#endif
