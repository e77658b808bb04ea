/* SPDX-License-Identifier: MIT */
/*
 * errcode: every error code the agent puts in a task's error, an
 * operation's error or a reply, each with its category.  Prefix ERRC_ for
 * the codes, errcode_ for the functions.
 *
 * The code says what went wrong, for clients and docs/api.md; the
 * category says what kind of failure it is, so the protocol layers map
 * errors to JSON-RPC and HTTP by category and never compare a provider's
 * codes.
 */
#ifndef IA_ERRCODE_H
#define IA_ERRCODE_H

enum errcat {
	ERRCAT_CLIENT = 0,	/* the request is wrong: fix it, then retry */
	ERRCAT_FORBIDDEN,	/* the token lacks a scope */
	ERRCAT_NOT_FOUND,	/* names a task that is not there (or not
				 * yours) */
	ERRCAT_CONFLICT,	/* the task's state does not allow it */
	ERRCAT_UNSUPPORTED,	/* this agent cannot do it (not configured) */
	ERRCAT_RETRYABLE,	/* try again later: rate limit, no capacity */
	ERRCAT_PROVIDER,	/* RunPod, SSH or InsTaG on the pod failed */
	ERRCAT_INTERNAL		/* the agent itself failed */
};

/* Requests and tasks. */
#define ERRC_INVALID_PARAMS	"invalid_params"
#define ERRC_UNKNOWN_OP		"unknown_operation"
#define ERRC_FORBIDDEN		"forbidden"
#define ERRC_TASK_NOT_FOUND	"task_not_found"
#define ERRC_NOT_CANCELABLE	"task_not_cancelable"
#define ERRC_NOT_CONFIGURED	"not_configured"
#define ERRC_INTERNAL		"internal_error"
#define ERRC_DIAG_FAILURE	"diag_failure"

/* RunPod and the pod lifecycle. */
#define ERRC_POD_NOT_FOUND	"pod_not_found"
#define ERRC_RUNPOD		"runpod_error"
#define ERRC_RATE_LIMITED	"rate_limited"
#define ERRC_RUNPOD_UNAVAILABLE	"runpod_unavailable"
#define ERRC_INSUFFICIENT_BALANCE "insufficient_balance"
#define ERRC_NO_CAPACITY	"no_capacity"
/* Every create candidate answered 400: a rule the request breaks. */
#define ERRC_CREATE_REJECTED	"create_rejected"
/* Every create candidate answered 403: the account may use none. */
#define ERRC_POOL_FORBIDDEN	"pool_forbidden"
#define ERRC_PROVISION_TIMEOUT	"provision_timeout"
#define ERRC_PROVISION_FAILED	"provision_failed"
#define ERRC_POD_FAILED		"pod_failed"
#define ERRC_POD_GONE		"pod_gone"
#define ERRC_POD_TERMINATED	"pod_terminated"
/* A stop or resume that did not reach its state in time. */
#define ERRC_TIMEOUT		"timeout"
/* Network volumes (runpod.*_volume, volume_id). */
#define ERRC_VOLUME_NOT_FOUND	"volume_not_found"
#define ERRC_VOLUME_IN_USE	"volume_in_use"
#define ERRC_VOLUME_EXISTS	"volume_exists"

/* SSH targets and InsTaG on the pod. */
#define ERRC_POD_NOT_READY	"pod_not_ready"
#define ERRC_HOST_NOT_ALLOWED	"host_not_allowed"
#define ERRC_HOST_KEY_CHANGED	"host_key_changed"
#define ERRC_SSH_AUTH		"ssh_auth"
#define ERRC_REMOTE		"remote_error"
#define ERRC_POD_UNREACHABLE	"pod_unreachable"
#define ERRC_TRANSFER_FAILED	"transfer_failed"
#define ERRC_REMOTE_JOB_FAILED	"remote_job_failed"
#define ERRC_INPUT_REJECTED	"input_rejected"
#define ERRC_ASSETS_MISSING	"assets_missing"
/* The asset registry (instag.*_asset). */
#define ERRC_ASSET_NOT_FOUND	"asset_not_found"
#define ERRC_NO_LOG		"no_log"	/* no remote job started yet */
#define ERRC_LOG_GONE		"log_gone"	/* its job directory removed */
/* A task made from a message without an operation. */
#define ERRC_INPUT_EXPIRED	"input_expired"	/* no operation came in time */
#define ERRC_NOT_WAITING	"not_waiting"	/* it no longer waits for one */

/* The category of code; ERRCAT_INTERNAL for a code not listed above. */
enum errcat errcode_category(const char *code);
/* "client", "forbidden", ... (static). */
const char *errcode_category_name(enum errcat c);

#endif
