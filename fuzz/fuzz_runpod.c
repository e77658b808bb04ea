/* SPDX-License-Identifier: MIT */
/*
 * fuzz_runpod: what the RunPod client reads from the API's answers,
 * without a network: a 2xx body parsed as rp_call parses it (ju_parse
 * with RUNPOD_JSON_DEPTH and RUNPOD_JSON_STR_MAX, from a buffer that is
 * not NUL-terminated), read as a Pod (runpod_pod_from_json) and as
 * GET /v2/pods' list, the GPU catalog copied as runpod.list_gpu_types
 * hands it on; and an error answer (runpod_error_from_answer, whose
 * body is the NUL-terminated text curl collected) with the status taken
 * from the input's first two bytes.  Checked: a pod's actions are strings
 * it can do, the SSH port is in 1..65535 when there is an address, and
 * no error text carries the API key.
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "lib/jsonutil.h"
#include "providers/runpod/runpod.h"

#define KEY "rpa_FUZZKEYFUZZKEYFUZZKEY1234"

static void
check_pod(struct runpod_pod *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nactions; i++)
		if (!runpod_pod_can(p, p->actions[i]))
			abort();
	if (p->public_ip != NULL && (p->ssh_port < 1 || p->ssh_port > 65535))
		abort();
	if (p->cost_per_hr < 0 || p->uptime_s < 0 || p->gpu_count < 0)
		abort();
	runpod_pod_free(p);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	json_object *j = NULL, *arr;
	char *buf, *text, *err = NULL;
	long status;
	size_t i, n;

	if (size < 2)
		return 0;
	status = 100 + (long)((data[0] << 8 | data[1]) % 500);
	buf = fz_dup(data + 2, size - 2);
	if (ju_parse(buf, size - 2, RUNPOD_JSON_DEPTH, RUNPOD_JSON_STR_MAX,
	    &j, &err) == 0) {
		check_pod(runpod_pod_from_json(j));
		if ((arr = ju_arr(j, "gpus")) != NULL) {
			/* runpod.list_gpu_types hands on a deep copy. */
			json_object *copy = ju_copy(arr);
			char *dump = ju_dump(copy);

			if (ju_utf8_check(dump, strlen(dump)) != strlen(dump))
				abort();
			free(dump);
			json_object_put(copy);
		}
		if ((arr = ju_arr(j, "pods")) != NULL) {
			n = json_object_array_length(arr);
			for (i = 0; i < n; i++)
				check_pod(runpod_pod_from_json(
				    json_object_array_get_idx(arr, i)));
		}
		json_object_put(j);
	}
	free(err);
	text = fz_str(data + 2, size - 2);
	runpod_error_from_answer(status, text, data[0] & 1, KEY, &e);
	if (e.http_status != status || e.title == NULL ||
	    strstr(e.title, KEY) != NULL ||
	    (e.detail != NULL && strstr(e.detail, KEY) != NULL))
		abort();
	runpod_error_clear(&e);
	free(text);
	free(buf);
	return 0;
}
