/* SPDX-License-Identifier: MIT */
/*
 * candidates: what a provision's failed create attempts add up to, once
 * every (GPU type, cloud) candidate has been tried.  Prefix candidates_.
 *
 * RunPod's createPod documentation: a 400 is either a rule the request
 * breaks or no capacity for that GPU type and data center (no code tells
 * them apart, only "detail"); a rule fails the same way on every
 * candidate, so when EVERY candidate answered 400 the last detail is read
 * as a problem with the request.  A 403 means this account cannot use
 * that pool: the candidate is skipped.  So:
 *   every candidate 400          create_rejected (the last detail)
 *   every candidate 403          pool_forbidden (the last detail)
 *   anything else (400s and 403s mixed)  no_capacity
 * each message listing every attempt.
 */
#ifndef IA_CANDIDATES_H
#define IA_CANDIDATES_H

#include <json-c/json.h>

/*
 * The failure of a provision whose candidates are all used up, from its
 * checkpoint's "attempts" array (objects with gpu_type_id, cloud_type,
 * outcome, http_status, detail; may be NULL).  *code is a static ERRC_
 * constant; *message a new string (caller frees).  Details are used as
 * recorded (the RunPod client already scrubbed secrets from them).
 */
void candidates_verdict(json_object *attempts, const char **code,
    char **message);

#endif
