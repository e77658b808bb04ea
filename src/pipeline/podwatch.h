/* SPDX-License-Identifier: MIT */
/*
 * podwatch: whether the pod a pipeline runs on is still there, as RunPod
 * and the agent's pod registry tell it.  Prefix pw_.
 *
 * A pipeline asks now and then while it waits on a remote job, and at
 * once when a part fails: a pod terminated or stopped outside the agent
 * (in RunPod's console, a host failure) is "lost", and the pipeline may
 * replace it; a pod the agent itself ended (the cost guard, the owner's
 * runpod.terminate_pod) is not.  See docs/instag.md, "When a pod is
 * lost".
 */
#ifndef IA_PIPELINE_PODWATCH_H
#define IA_PIPELINE_PODWATCH_H

#include "store/store.h"

enum pw_state {
	PW_OK,		/* provisioning, starting or running */
	PW_LOST,	/* gone, TERMINATED, EXITED or ERROR, not the agent */
	PW_ENDED,	/* the agent stopped or terminated it (registry) */
	PW_UNKNOWN	/* RunPod could not be asked now: ask again later */
};

/*
 * One GET /v2/pods/{id} and a registry read.  *why (caller frees) says
 * what was found, for every state but PW_OK.  A pod RunPod no longer
 * knows is marked gone in the registry.
 */
enum pw_state pw_check(struct store *st, const char *pod_id, char **why);

/* "ok", "lost", "ended" or "unknown" (static). */
const char *pw_state_name(enum pw_state s);

#endif
