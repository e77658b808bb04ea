/* SPDX-License-Identifier: MIT */
/*
 * redact: text from elsewhere (a pod's log, RunPod's container log) made
 * fit to relay to a client.  Prefix redact_.
 */
#ifndef IA_REDACT_H
#define IA_REDACT_H

#include <stddef.h>

#define REDACT_MARK "[redacted]"

/*
 * A new NUL-terminated string (caller frees) from len bytes of buf (any
 * bytes): every occurrence of secret (when non-empty), "Bearer <token>"
 * and RunPod-style keys ("rpa_" and 16 or more token characters) replaced
 * by REDACT_MARK; invalid UTF-8 bytes and control characters other than
 * '\n' and '\t' replaced by U+FFFD, except '\r', which becomes '\n'
 * (tqdm redraws its bar with it).
 */
char *redact_text(const char *buf, size_t len, const char *secret);

#endif
