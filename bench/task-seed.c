/* SPDX-License-Identifier: MIT */
/*
 * task-seed: fill a task store with finished tasks of one owner for
 * bench/task-reads, through the store API, so each row is exactly what
 * the agent writes (store_task_put).  Each task is about 9 KB as stored:
 * params, a result, three file artifacts, progress and six history
 * messages of about 1 KB each.
 *
 *     task-seed STORE OWNER COUNT
 *
 * Opens (creating or migrating) the store at STORE, which no agent may
 * have open for writing meanwhile, and adds COUNT tasks; prints the id of
 * the last one.  Exit status 0, or 1 with a message.
 */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/task.h"
#include "store/store.h"

/* n bytes of text that vary with seed (so rows do not compress alike). */
static void
filler(char *buf, size_t n, unsigned seed)
{
	static const char words[] = "pod training frames render audio "
	    "checkpoint synthesize gaussian lipsync preprocess ";
	size_t i;

	for (i = 0; i + 1 < n; i++)
		buf[i] = words[(i + seed) % (sizeof(words) - 1)];
	buf[n - 1] = '\0';
}

static struct task *
make_task(const char *owner, unsigned k)
{
	json_object *params = json_object_new_object(), *result, *a;
	struct task *t;
	char text[1024], name[64];
	int i;

	filler(text, 600, k);
	json_object_object_add(params, "video_url",
	    json_object_new_string("https://example.org/clips/speaker.mp4"));
	json_object_object_add(params, "notes", json_object_new_string(text));
	t = task_new(owner, "instag.train", params, NULL);
	for (i = 0; i < 6; i++) {
		filler(text, 1000, k + (unsigned)i);
		task_add_history(t, task_msg_text(i % 2 ? "agent" : "user",
		    text, t->id, t->context_id), 100);
	}
	for (i = 0; i < 3; i++) {
		a = json_object_new_object();
		snprintf(name, sizeof(name), "%s-out%d", t->id, i);
		json_object_object_add(a, "artifactId",
		    json_object_new_string(name));
		snprintf(name, sizeof(name), "out%d.mp4", i);
		json_object_object_add(a, "name", json_object_new_string(name));
		json_object_object_add(a, "uri", json_object_new_string(
		    "https://agent.example.org/artifacts/u-0123456789abcdef/"
		    "out.mp4"));
		json_object_object_add(a, "mimeType",
		    json_object_new_string("video/mp4"));
		json_object_array_add(t->artifacts, a);
	}
	task_set_progress(t, 5, 5, "done");
	result = json_object_new_object();
	filler(text, 500, k + 7);
	json_object_object_add(result, "summary", json_object_new_string(text));
	json_object_object_add(result, "frames", json_object_new_int(4242));
	task_complete(t, result);
	return t;
}

int
main(int argc, char **argv)
{
	struct store *st = NULL;
	char *err = NULL, *end, last[UUID_STR_LEN] = "";
	unsigned long n, i;

	if (argc != 4) {
		fprintf(stderr, "usage: task-seed STORE OWNER COUNT\n");
		return 1;
	}
	n = strtoul(argv[3], &end, 10);
	if (*end != '\0' || n == 0 || n > 10000000) {
		fprintf(stderr, "task-seed: COUNT must be 1..10000000\n");
		return 1;
	}
	if (store_open(argv[1], NULL, &st, &err) < 0) {
		fprintf(stderr, "task-seed: %s\n", err);
		free(err);
		return 1;
	}
	for (i = 0; i < n; i++) {
		struct task *t = make_task(argv[2], (unsigned)i);

		if (store_task_put(st, t, &err) < 0) {
			fprintf(stderr, "task-seed: %s\n", err);
			free(err);
			task_free(t);
			store_close(st);
			return 1;
		}
		snprintf(last, sizeof(last), "%s", t->id);
		task_free(t);
	}
	store_close(st);
	printf("%s\n", last);
	return 0;
}
