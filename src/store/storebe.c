/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/uuid.h"
#include "lib/xalloc.h"
#include "store/storebe.h"

static json_object *
raw_json(const char *text)
{
	return text ? json_tokener_parse(text) : NULL;
}

struct task *
storebe_row_parse(struct storebe_row *raw)
{
	struct task *t = xcalloc(1, sizeof(*t));
	enum task_state st;
	int i;

	snprintf(t->id, sizeof(t->id), "%s", raw->text[0] ? raw->text[0] : "");
	snprintf(t->context_id, sizeof(t->context_id), "%s",
	    raw->text[1] ? raw->text[1] : "");
	t->owner = xstrdup(raw->text[2] ? raw->text[2] : "");
	t->operation = xstrdup(raw->text[3] ? raw->text[3] : "");
	t->params = raw_json(raw->text[4]);
	t->state = task_state_parse(raw->text[5] ? raw->text[5] : "",
	    &st) == 0 ? st : TASK_FAILED;
	t->progress = raw_json(raw->text[6]);
	t->result = raw_json(raw->text[7]);
	t->artifacts = raw_json(raw->text[8]);
	t->error = raw_json(raw->text[9]);
	t->checkpoint = raw_json(raw->text[10]);
	t->history = raw_json(raw->text[11]);
	t->created_ms = raw->num[0];
	t->updated_ms = raw->num[1];
	t->next_wake_ms = raw->num[2];
	t->version = raw->num[3];
	t->cancel_requested = raw->num[4] != 0;
	t->lease_token = raw->lease_token;
	if (t->params == NULL)
		t->params = json_object_new_object();
	if (t->artifacts == NULL)
		t->artifacts = json_object_new_array();
	if (t->checkpoint == NULL)
		t->checkpoint = json_object_new_object();
	if (t->history == NULL)
		t->history = json_object_new_array();
	for (i = 0; i < 12; i++) {
		free(raw->text[i]);
		raw->text[i] = NULL;
	}
	return t;
}

void
storebe_task_json(const struct task *t, char *json[7])
{
	json_object *const cols[7] = { t->params, t->progress, t->result,
	    t->artifacts, t->error, t->checkpoint, t->history };
	int i;

	for (i = 0; i < 7; i++)
		json[i] = cols[i] != NULL ? ju_dump(cols[i]) : NULL;
}

int
storebe_parse_token(const char *tok, int64_t *created,
    char id[UUID_STR_LEN])
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(tok, &end, 10);
	if (errno || end == tok || *end != '.' || !uuid_valid(end + 1))
		return -1;
	*created = v;
	strcpy(id, end + 1);
	return 0;
}
