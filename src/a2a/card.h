/* SPDX-License-Identifier: MIT */
/*
 * card: the agent cards.  The A2A card for /.well-known/agent-card.json
 * and agent.json in two dialects: v0.3 (valid v0.3, with v1.0's
 * supportedInterfaces, securityRequirements and the v1.0 scheme key
 * beside, which v0.3 allows, so that a v1.0 client that does not say its
 * version still finds them) and v1.0 (only v1.0 fields, one key per
 * security scheme), served to a request with A2A-Version: 1.0;
 * and the umbrella registry card (exactly id, name, version, description,
 * capabilities, endpoints, authentication) for /api/agent_card and
 * discovery replies.  Both are built once at start from the configuration.
 */
#ifndef IA_CARD_H
#define IA_CARD_H

#include <json-c/json.h>

#include "core/config.h"

void card_init(const struct config *cfg);
void card_free(void);
/* The serialised A2A card and its ETag (quoted); owned by the module. */
const char *card_a2a_text(void);
const char *card_a2a_etag(void);
const char *card_a2a_v1_text(void);
const char *card_a2a_v1_etag(void);
/* New deep copies (caller puts); json-c objects are never shared between
 * threads because its reference count is not atomic. */
json_object *card_a2a(void);
json_object *card_a2a_v1(void);
json_object *card_umbrella(void);
const char *card_umbrella_text(void);

#endif
