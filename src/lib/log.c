/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strbuf.h"

static volatile int log_level = LOG_INFO;
static volatile int log_fd = STDERR_FILENO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return (enum log_level)log_level;
}

void
log_set_fd(int fd)
{
	log_fd = fd;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void
log_begin(struct strbuf *sb, enum log_level level, const char *event)
{
	int64_t ms = clock_wall_ms();
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char when[32];

	gmtime_r(&s, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	sb_addf(sb, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"event\":", when,
	    (long)(ms % 1000), level_names[level]);
	sb_add_json_str(sb, event);
}

static void
log_end(struct strbuf *sb)
{
	const char *p;
	size_t left;
	ssize_t n;

	sb_adds(sb, "}\n");
	p = sb->buf;
	left = sb->len;
	while (left > 0) {
		n = write(log_fd, p, left);
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	sb_free(sb);
}

void
log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	struct strbuf sb = SB_INIT, msg = SB_INIT;
	va_list ap;

	if ((int)level < log_level)
		return;
	va_start(ap, fmt);
	sb_vaddf(&msg, fmt, ap);
	va_end(ap);
	log_begin(&sb, level, event);
	sb_adds(&sb, ",\"msg\":");
	sb_add_json_str(&sb, sb_str(&msg));
	sb_free(&msg);
	log_end(&sb);
}

void
log_kv(enum log_level level, const char *event, const char *msg, ...)
{
	struct strbuf sb = SB_INIT;
	const char *k, *v;
	va_list ap;

	if ((int)level < log_level)
		return;
	log_begin(&sb, level, event);
	if (msg != NULL) {
		sb_adds(&sb, ",\"msg\":");
		sb_add_json_str(&sb, msg);
	}
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		sb_addc(&sb, ',');
		sb_add_json_str(&sb, k);
		sb_addc(&sb, ':');
		if (v == NULL)
			sb_adds(&sb, "null");
		else
			sb_add_json_str(&sb, v);
	}
	va_end(ap);
	log_end(&sb);
}
