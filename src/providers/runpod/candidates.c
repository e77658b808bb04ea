/* SPDX-License-Identifier: MIT */
/* candidates: the failure of a provision's create attempts; see
 * candidates.h. */
#include "auto-config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/errcode.h"
#include "lib/jsonutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "providers/runpod/candidates.h"

/* Whether attempt b is about the same candidate as a. */
static bool
same_candidate(json_object *a, json_object *b)
{
	const char *ga = ju_str(a, "gpu_type_id"), *gb = ju_str(b,
	    "gpu_type_id");
	const char *ca = ju_str(a, "cloud_type"), *cb = ju_str(b,
	    "cloud_type");

	return ga != NULL && gb != NULL && ca != NULL && cb != NULL &&
	    strcmp(ga, gb) == 0 && strcmp(ca, cb) == 0;
}

/* The HTTP status that ended attempt i's candidate: that of the last
 * attempt of the same candidate (an unanswered create is tried again),
 * 0 when none was a refusal. */
static int
final_status(json_object *arr, size_t i, size_t n)
{
	json_object *a = json_object_array_get_idx(arr, i);
	size_t j;
	int64_t st = 0;

	for (j = i + 1; j < n; j++)
		if (same_candidate(a, json_object_array_get_idx(arr, j)))
			return -1;	/* counted at its last attempt */
	if (ju_int(a, "http_status", &st) != 0)
		return 0;
	return (int)st;
}

static void
list_attempts(json_object *arr, size_t n, struct strbuf *sb)
{
	int64_t st;
	size_t i;

	for (i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(arr, i);

		sb_addf(sb, "%s%s/%s: %s", i ? "; " : "",
		    ju_str(a, "gpu_type_id"), ju_str(a, "cloud_type"),
		    ju_str(a, "outcome"));
		if (ju_int(a, "http_status", &st) == 0 && st > 0)
			sb_addf(sb, " (HTTP %d)", (int)st);
	}
}

void
candidates_verdict(json_object *attempts, const char **code, char **message)
{
	struct strbuf sb = SB_INIT;
	size_t n = attempts ? json_object_array_length(attempts) : 0, i;
	size_t ncand = 0, n400 = 0, n403 = 0;
	const char *last = NULL;
	int st;

	for (i = 0; i < n; i++) {
		if ((st = final_status(attempts, i, n)) < 0)
			continue;
		ncand++;
		if (st == 400)
			n400++;
		else if (st == 403)
			n403++;
		if (ju_str(json_object_array_get_idx(attempts, i), "detail"))
			last = ju_str(json_object_array_get_idx(attempts, i),
			    "detail");
	}
	if (ncand > 0 && n400 == ncand) {
		*code = ERRC_CREATE_REJECTED;
		sb_addf(&sb, "RunPod refused the create request for every "
		    "candidate with HTTP 400, which RunPod reads as a rule "
		    "the request breaks (no capacity gives 400 too); its "
		    "last detail: %s; attempts: ", last ? last : "(none)");
	} else if (ncand > 0 && n403 == ncand) {
		*code = ERRC_POOL_FORBIDDEN;
		sb_addf(&sb, "RunPod answered 403 for every candidate: this "
		    "RunPod account cannot use any of the GPU pools asked for "
		    "(or its API key may not create pods); its last detail: "
		    "%s; attempts: ", last ? last : "(none)");
	} else {
		*code = ERRC_NO_CAPACITY;
		sb_adds(&sb, "no GPU type and cloud could be rented: ");
	}
	list_attempts(attempts, n, &sb);
	*message = sb_take(&sb);
}
