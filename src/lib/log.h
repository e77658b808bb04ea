/* SPDX-License-Identifier: MIT */
/*
 * log: structured JSON log lines on stderr, one line per event (wrapped
 * here):
 *
 *   {"ts":"2026-11-24T13:00:00.123Z","level":"info","event":"listening",
 *    "msg":"..","k":"v"}
 *
 * Lines are written with a single write(2) so lines from different threads
 * never interleave.  Never pass a secret (token, key, password) to these
 * functions: nothing here can tell a secret from other text.
 */
#ifndef IA_LOG_H
#define IA_LOG_H

#include "lib/attrs.h"

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO = 1,
	LOG_WARN = 2,
	LOG_ERROR = 3
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "debug", "info", "warn" or "error"; 0 on success, -1 otherwise. */
WARN_UNUSED_RESULT
int log_level_parse(const char *s, enum log_level *out);
/* Redirect output to fd (default 2).  For tests. */
void log_set_fd(int fd);

/* One line with a printf-formatted "msg". */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * One line with "msg" and extra string fields given as key, value pairs,
 * terminated by NULL:  log_kv(LOG_INFO, "task_done", "done", "task", id, NULL);
 * A NULL value writes JSON null.
 */
void log_kv(enum log_level level, const char *event, const char *msg, ...)
    __attribute__((sentinel));

#endif
