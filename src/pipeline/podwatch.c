/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "pipeline/podwatch.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/runpod.h"

const char *
pw_state_name(enum pw_state s)
{
	switch (s) {
	case PW_OK:	return "ok";
	case PW_LOST:	return "lost";
	case PW_ENDED:	return "ended";
	case PW_UNKNOWN:
	default:	return "unknown";
	}
}

/* The registry's word: PW_ENDED with *why when the agent ended the pod,
 * else PW_OK (an active row, a row marked gone, or no row). */
static enum pw_state
by_registry(struct store *st, const char *pod_id, char **why)
{
	struct pod_rec *r = NULL;
	enum pw_state s = PW_OK;

	if (store_pod_get(st, pod_id, &r) != 0)
		return PW_OK;
	if (strcmp(r->state, "active") != 0 && (r->reason == NULL ||
	    strcmp(r->reason, PODS_REASON_GONE) != 0)) {
		*why = xasprintf("pod %s was %s by the agent: %s", pod_id,
		    r->state, r->reason ? r->reason : "no reason recorded");
		s = PW_ENDED;
	}
	store_pod_free(r);
	return s;
}

enum pw_state
pw_check(struct store *st, const char *pod_id, char **why)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	struct runpod_pod *p = NULL;
	enum pw_state s;
	int rc;

	*why = NULL;
	if ((s = by_registry(st, pod_id, why)) != PW_OK)
		return s;
	if ((c = pods_client(&e)) == NULL) {
		*why = xstrdup("RunPod is not configured");
		s = PW_UNKNOWN;
		goto cleanup;
	}
	rc = runpod_get_pod(c, pod_id, &p, &e);
	pods_count(rc, &e);
	if (rc < 0 && e.kind == RP_NOT_FOUND) {
		pods_mark_gone(pod_id);
		*why = xasprintf("RunPod no longer knows pod %s", pod_id);
		s = PW_LOST;
	} else if (rc < 0) {
		*why = xasprintf("RunPod could not be asked about pod %s (%s)",
		    pod_id, runpod_error_kind_name(e.kind));
		s = PW_UNKNOWN;
	} else if (p->status != NULL && (strcmp(p->status, "TERMINATED") ==
	    0 || strcmp(p->status, "EXITED") == 0 ||
	    strcmp(p->status, "ERROR") == 0)) {
		if (strcmp(p->status, "TERMINATED") == 0)
			pods_mark_gone(pod_id);
		/* the agent may have ended it since the registry read */
		if ((s = by_registry(st, pod_id, why)) == PW_OK) {
			*why = xasprintf("RunPod reports pod %s %s, and the "
			    "agent did not do it", pod_id, p->status);
			s = PW_LOST;
		}
	} else
		s = PW_OK;
cleanup:
	runpod_pod_free(p);
	runpod_error_clear(&e);
	return s;
}
