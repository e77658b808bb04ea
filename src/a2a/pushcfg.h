/* SPDX-License-Identifier: MIT */
/*
 * pushcfg: the A2A methods on a task's push notification configs (v0.3
 * tasks/pushNotificationConfig/{set,get,list,delete}, v1.0
 * {Create,Get,List,Delete}TaskPushNotificationConfig).  Prefix pushcfg_.
 * The configs are kept through notify.h; the URL must pass the outbound
 * filter (https only, no private address); the credentials are
 * write-only and never echoed.
 */
#ifndef IA_PUSHCFG_H
#define IA_PUSHCFG_H

#include <json-c/json.h>

#include "lib/attrs.h"
#include "a2a/rpc.h"

/* One of the methods: what is "set", "get", "list" or "delete".  The
 * caller must own the task; set and delete need tasks:write, get and list
 * tasks:read.  Replies in c->out; returns 0. */
int pushcfg_method(struct rpc *c, const char *what);

/* Validate a config given in pc (the dialect's shape) for task_id and
 * keep it: 0 and *out (the config as rendered back, new reference), or
 * -1 with an error reply in c->out. */
WARN_UNUSED_RESULT
int pushcfg_save(struct rpc *c, const char *task_id, json_object *pc,
    json_object **out);

#endif
