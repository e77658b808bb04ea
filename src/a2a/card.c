/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/card.h"
#include "lib/jsonutil.h"
#include "ops/ops.h"
#include "lib/version.h"
#include "lib/xalloc.h"

static json_object *a2a_card, *v1_card, *umbrella_card;
static char *a2a_text, *v1_text, *umbrella_text;
static char etag[24], v1_etag[24];

static json_object *
strs(const char *const *v)
{
	json_object *a = json_object_new_array();

	for (; *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

static json_object *
build_a2a(const struct config *cfg)
{
	static const char *const modes[] = { "application/json", "text/plain",
	    NULL };
	json_object *c = json_object_new_object(), *o, *arr, *x;
	char *url = xasprintf("%s/a2a", cfg->public_url);
	size_t n, i, j;
	const struct op_def *ops = ops_table(&n);

	json_object_object_add(c, "protocolVersion",
	    json_object_new_string("0.3.0"));
	json_object_object_add(c, "name",
	    json_object_new_string(cfg->agent_name));
	json_object_object_add(c, "description", json_object_new_string(
	    "Turns a few seconds of a person's video into a personalised "
	    "InsTaG talking-head model and videos on rented RunPod GPU pods."));
	json_object_object_add(c, "url", json_object_new_string(url));
	json_object_object_add(c, "preferredTransport",
	    json_object_new_string("JSONRPC"));
	json_object_object_add(c, "version",
	    json_object_new_string(version_string()));
	arr = json_object_new_array();
	for (i = 0; i < 2; i++) {
		x = json_object_new_object();
		json_object_object_add(x, "url", json_object_new_string(url));
		json_object_object_add(x, "protocolBinding",
		    json_object_new_string("JSONRPC"));
		json_object_object_add(x, "protocolVersion",
		    json_object_new_string(i == 0 ? "1.0" : "0.3"));
		json_object_array_add(arr, x);
	}
	json_object_object_add(c, "supportedInterfaces", arr);
	arr = json_object_new_array();
	x = json_object_new_object();
	json_object_object_add(x, "url", json_object_new_string(url));
	json_object_object_add(x, "transport",
	    json_object_new_string("JSONRPC"));
	json_object_array_add(arr, x);
	json_object_object_add(c, "additionalInterfaces", arr);
	o = json_object_new_object();
	json_object_object_add(o, "streaming", json_object_new_boolean(1));
	json_object_object_add(o, "pushNotifications",
	    json_object_new_boolean(1));
	json_object_object_add(o, "stateTransitionHistory",
	    json_object_new_boolean(0));
	json_object_object_add(c, "capabilities", o);
	json_object_object_add(c, "defaultInputModes", strs(modes));
	json_object_object_add(c, "defaultOutputModes", strs(modes));
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		const struct op_def *op = &ops[i];
		json_object *tags, *ex;
		char *exs;
		if (op->requires && !strcmp(op->requires, "diagnostics") &&
		    !cfg->diagnostics)
			continue;
		x = json_object_new_object();
		json_object_object_add(x, "id",
		    json_object_new_string(op->name));
		json_object_object_add(x, "name",
		    json_object_new_string(op->name));
		json_object_object_add(x, "description",
		    json_object_new_string(op->summary));
		tags = json_object_new_array();
		json_object_array_add(tags, json_object_new_string(
		    strncmp(op->name, "runpod", 6) == 0 ? "runpod" :
		    strncmp(op->name, "instag", 6) == 0 ? "instag" :
		    strncmp(op->name, "tasks", 5) == 0 ? "tasks" :
		    "diagnostics"));
		for (j = 0; op->aliases[j]; j++)
			json_object_array_add(tags,
			    json_object_new_string(op->aliases[j]));
		json_object_object_add(x, "tags", tags);
		ex = json_object_new_array();
		exs = xasprintf("{\"operation\":\"%s\",\"params\":{...}}",
		    op->name);
		json_object_array_add(ex, json_object_new_string(exs));
		free(exs);
		json_object_object_add(x, "examples", ex);
		json_object_array_add(arr, x);
	}
	json_object_object_add(c, "skills", arr);
	o = json_object_new_object();
	x = json_object_new_object();
	json_object_object_add(x, "type", json_object_new_string("http"));
	json_object_object_add(x, "scheme", json_object_new_string("bearer"));
	json_object_object_add(x, "bearerFormat",
	    json_object_new_string("JWT"));
	{
		json_object *h = json_object_new_object();
		json_object_object_add(h, "scheme",
		    json_object_new_string("Bearer"));
		json_object_object_add(h, "bearerFormat",
		    json_object_new_string("JWT"));
		json_object_object_add(x, "httpAuthSecurityScheme", h);
	}
	json_object_object_add(o, "bearer", x);
	json_object_object_add(c, "securitySchemes", o);
	arr = json_object_new_array();
	x = json_object_new_object();
	json_object_object_add(x, "bearer", json_object_new_array());
	json_object_array_add(arr, x);
	json_object_object_add(c, "security", arr);
	arr = json_object_new_array();
	x = json_object_new_object();
	o = json_object_new_object();
	{
		json_object *l = json_object_new_object();
		json_object_object_add(l, "list", json_object_new_array());
		json_object_object_add(o, "bearer", l);
	}
	json_object_object_add(x, "schemes", o);
	json_object_array_add(arr, x);
	json_object_object_add(c, "securityRequirements", arr);
	free(url);
	return c;
}

/*
 * The v1.0 card: the v0.3 card without what A2A v1.0 removed (url,
 * protocolVersion, preferredTransport, additionalInterfaces,
 * supportsAuthenticatedExtendedCard, capabilities.stateTransitionHistory,
 * the v0.3 "security" list), and each security scheme as v1.0's oneof:
 * exactly one key (httpAuthSecurityScheme), not v0.3's type/scheme/
 * bearerFormat beside it.  A new object (caller puts).
 */
static json_object *
build_v1(json_object *v03)
{
	static const char *const gone[] = { "url", "protocolVersion",
	    "preferredTransport", "additionalInterfaces",
	    "supportsAuthenticatedExtendedCard", "security", NULL };
	static const char *const v03_keys[] = { "type", "scheme",
	    "bearerFormat", "in", "name", "description", "flows",
	    "openIdConnectUrl", NULL };
	json_object *c = ju_copy(v03), *schemes;
	size_t i;

	for (i = 0; gone[i]; i++)
		json_object_object_del(c, gone[i]);
	json_object_object_del(ju_obj(c, "capabilities"),
	    "stateTransitionHistory");
	schemes = ju_obj(c, "securitySchemes");
	if (schemes != NULL) {
		json_object_object_foreach(schemes, name, s) {
			(void)name;
			for (i = 0; v03_keys[i]; i++)
				json_object_object_del(s, v03_keys[i]);
		}
	}
	return c;
}

static void
etag_of(const char *text, char out[24])
{
	uint64_t h = 1469598103934665603ull;
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	snprintf(out, 24, "\"%016llx\"", (unsigned long long)h);
}

static json_object *
build_umbrella(const struct config *cfg)
{
	json_object *c = json_object_new_object(), *caps, *ep, *auth;
	size_t n, i, j;
	const struct op_def *ops = ops_table(&n);
	char *p;

	json_object_object_add(c, "id", json_object_new_string(cfg->agent_id));
	json_object_object_add(c, "name",
	    json_object_new_string(cfg->agent_name));
	json_object_object_add(c, "version",
	    json_object_new_string(version_string()));
	json_object_object_add(c, "description", json_object_new_string(
	    "C agent for automating InsTaG talking-head training and "
	    "rendering on RunPod GPU pods."));
	caps = json_object_new_array();
	json_object_array_add(caps, json_object_new_string("task_request"));
	json_object_array_add(caps, json_object_new_string("agent_discovery"));
	for (i = 0; i < n; i++) {
		if (ops[i].requires &&
		    !strcmp(ops[i].requires, "diagnostics") &&
		    !cfg->diagnostics)
			continue;
		json_object_array_add(caps,
		    json_object_new_string(ops[i].name));
		for (j = 0; ops[i].aliases[j]; j++)
			json_object_array_add(caps,
			    json_object_new_string(ops[i].aliases[j]));
	}
	json_object_object_add(c, "capabilities", caps);
	ep = json_object_new_object();
	p = xasprintf("%s/api/a2a", cfg->base_path);
	json_object_object_add(ep, "a2a", json_object_new_string(p));
	free(p);
	p = xasprintf("%s/api/agent_card", cfg->base_path);
	json_object_object_add(ep, "agent_card", json_object_new_string(p));
	free(p);
	json_object_object_add(c, "endpoints", ep);
	auth = json_object_new_object();
	json_object_object_add(auth, "type", json_object_new_string("bearer"));
	json_object_object_add(auth, "format", json_object_new_string("JWT"));
	json_object_object_add(c, "authentication", auth);
	return c;
}

void
card_init(const struct config *cfg)
{
	card_free();
	a2a_card = build_a2a(cfg);
	v1_card = build_v1(a2a_card);
	umbrella_card = build_umbrella(cfg);
	a2a_text = ju_dump(a2a_card);
	v1_text = ju_dump(v1_card);
	umbrella_text = ju_dump(umbrella_card);
	etag_of(a2a_text, etag);
	etag_of(v1_text, v1_etag);
}

void
card_free(void)
{
	json_object_put(a2a_card);
	json_object_put(v1_card);
	json_object_put(umbrella_card);
	free(a2a_text);
	free(v1_text);
	free(umbrella_text);
	a2a_card = v1_card = umbrella_card = NULL;
	a2a_text = v1_text = umbrella_text = NULL;
}

const char *card_a2a_text(void) { return a2a_text; }
const char *card_a2a_etag(void) { return etag; }
const char *card_a2a_v1_text(void) { return v1_text; }
const char *card_a2a_v1_etag(void) { return v1_etag; }
json_object *card_a2a_v1(void) { return ju_copy(v1_card); }
const char *card_umbrella_text(void) { return umbrella_text; }
/*
 * Deep copies, never shared references: json-c's reference count is not
 * atomic in Debian's build (0.16), so two request threads taking and
 * dropping references to one object corrupt it.
 */
json_object *card_a2a(void) { return ju_copy(a2a_card); }
json_object *card_umbrella(void) { return ju_copy(umbrella_card); }
