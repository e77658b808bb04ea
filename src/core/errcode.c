/* SPDX-License-Identifier: MIT */
/*
 * errcode: the category of every error code (see errcode.h).
 */
#include "auto-config.h"

#include <stddef.h>
#include <string.h>

#include "core/errcode.h"

static const struct {
	const char *code;
	enum errcat cat;
} codes[] = {
	{ ERRC_INVALID_PARAMS,		ERRCAT_CLIENT },
	{ ERRC_UNKNOWN_OP,		ERRCAT_CLIENT },
	{ ERRC_FORBIDDEN,		ERRCAT_FORBIDDEN },
	{ ERRC_TASK_NOT_FOUND,		ERRCAT_NOT_FOUND },
	{ ERRC_NOT_CANCELABLE,		ERRCAT_CONFLICT },
	{ ERRC_NOT_CONFIGURED,		ERRCAT_UNSUPPORTED },
	{ ERRC_INTERNAL,		ERRCAT_INTERNAL },
	{ ERRC_DIAG_FAILURE,		ERRCAT_INTERNAL },
	/* A pod id that is not the caller's is a bad param, like an
	 * unknown upload id: the request names something not there. */
	{ ERRC_POD_NOT_FOUND,		ERRCAT_CLIENT },
	{ ERRC_RUNPOD,			ERRCAT_PROVIDER },
	{ ERRC_RATE_LIMITED,		ERRCAT_RETRYABLE },
	{ ERRC_RUNPOD_UNAVAILABLE,	ERRCAT_RETRYABLE },
	{ ERRC_INSUFFICIENT_BALANCE,	ERRCAT_PROVIDER },
	{ ERRC_NO_CAPACITY,		ERRCAT_RETRYABLE },
	/* RunPod: a 400 on every candidate is the request's problem */
	{ ERRC_CREATE_REJECTED,		ERRCAT_CLIENT },
	/* like insufficient_balance: the RunPod account's limits */
	{ ERRC_POOL_FORBIDDEN,		ERRCAT_PROVIDER },
	{ ERRC_PROVISION_TIMEOUT,	ERRCAT_PROVIDER },
	{ ERRC_PROVISION_FAILED,	ERRCAT_PROVIDER },
	{ ERRC_POD_FAILED,		ERRCAT_PROVIDER },
	{ ERRC_POD_GONE,		ERRCAT_PROVIDER },
	{ ERRC_POD_TERMINATED,		ERRCAT_PROVIDER },
	{ ERRC_TIMEOUT,			ERRCAT_PROVIDER },
	/* like pod_not_found: the request names something not there */
	{ ERRC_VOLUME_NOT_FOUND,	ERRCAT_CLIENT },
	{ ERRC_VOLUME_IN_USE,		ERRCAT_CONFLICT },
	{ ERRC_VOLUME_EXISTS,		ERRCAT_CONFLICT },
	{ ERRC_POD_NOT_READY,		ERRCAT_CLIENT },
	{ ERRC_HOST_NOT_ALLOWED,	ERRCAT_CLIENT },
	{ ERRC_HOST_KEY_CHANGED,	ERRCAT_PROVIDER },
	{ ERRC_SSH_AUTH,		ERRCAT_PROVIDER },
	{ ERRC_REMOTE,			ERRCAT_PROVIDER },
	{ ERRC_POD_UNREACHABLE,		ERRCAT_RETRYABLE },
	{ ERRC_TRANSFER_FAILED,		ERRCAT_PROVIDER },
	{ ERRC_REMOTE_JOB_FAILED,	ERRCAT_PROVIDER },
	{ ERRC_INPUT_REJECTED,		ERRCAT_CLIENT },
	{ ERRC_ASSETS_MISSING,		ERRCAT_CLIENT },
	/* like pod_not_found: the request names something not there */
	{ ERRC_ASSET_NOT_FOUND,		ERRCAT_CLIENT },
	{ ERRC_NO_LOG,			ERRCAT_NOT_FOUND },
	{ ERRC_LOG_GONE,		ERRCAT_NOT_FOUND },
	{ ERRC_INPUT_EXPIRED,		ERRCAT_CLIENT },
	{ ERRC_NOT_WAITING,		ERRCAT_CLIENT },
};

enum errcat
errcode_category(const char *code)
{
	size_t i;

	if (code == NULL)
		return ERRCAT_INTERNAL;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(codes[i].code, code) == 0)
			return codes[i].cat;
	return ERRCAT_INTERNAL;
}

const char *
errcode_category_name(enum errcat c)
{
	static const char *const names[] = {
		"client", "forbidden", "not_found", "conflict", "unsupported",
		"retryable", "provider", "internal"
	};

	if ((size_t)c >= sizeof(names) / sizeof(names[0]))
		return "internal";
	return names[c];
}
