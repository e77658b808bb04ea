/* SPDX-License-Identifier: MIT */
/*
 * fuzz_envelope: one umbrella envelope (POST /api/a2a) through
 * envelope_handle, against a real store and executor, with the response
 * written to an in-memory FastCGI stream.  The input is the body, not
 * NUL-terminated.  The caller holds tasks:read and tasks:write.
 * Checked: every request is answered once, with a status line and a JSON
 * body that parses and is valid UTF-8.
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>
#include <fcgiapp.h>

#include "a2a/envelope.h"
#include "fuzzutil.h"
#include "http/http.h"
#include "lib/jsonutil.h"
#include "lib/strbuf.h"

static struct principal who;
static struct strbuf answer = SB_INIT;
static unsigned char window[512];

/* The stream's buffer is full (or is being flushed): keep its bytes. */
static void
drain(FCGX_Stream *s, int doClose)
{
	(void)doClose;
	sb_addn(&answer, (const char *)window, (size_t)(s->wrNext - window));
	s->wrNext = window;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	(void)fz_agent_start("input_required_timeout = 1\n");
	fz_principal(&who, "fuzz-user", "tasks:read tasks:write");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FCGX_Stream out;
	FCGX_Request fcgx;
	struct http_req r;
	json_object *o = NULL;
	const char *body;
	char *err = NULL;
	size_t len;

	memset(&out, 0, sizeof(out));
	out.wrNext = out.stopUnget = window;
	out.stop = window + sizeof(window);
	out.emptyBuffProc = drain;
	memset(&fcgx, 0, sizeof(fcgx));
	fcgx.out = &out;
	memset(&r, 0, sizeof(r));
	r.fcgx = &fcgx;
	r.method = "POST";
	r.path = "/api/a2a";
	r.body = fz_dup(data, size);
	r.body_len = size;
	r.who = who;
	r.authed = true;
	answer.len = 0;
	if (answer.buf != NULL)
		answer.buf[0] = '\0';
	envelope_handle(&r);
	drain(&out, 1);
	if (r.status < 200 || r.status > 499 ||
	    strncmp(sb_str(&answer), "Status: ", 8) != 0 ||
	    (body = strstr(sb_str(&answer), "\r\n\r\n")) == NULL)
		abort();
	body += 4;
	len = answer.len - (size_t)(body - answer.buf);
	if (ju_utf8_check(body, len) != len ||
	    ju_parse(body, len, 1000, (size_t)1 << 30, &o, &err) < 0 ||
	    !json_object_is_type(o, json_type_object))
		abort();
	json_object_put(o);
	free(r.body);
	fz_agent_tick();
	return 0;
}
