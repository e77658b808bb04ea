/* SPDX-License-Identifier: MIT */
/*
 * backoff: jittered exponential backoff for retries.  One random source
 * serves the whole process (xorshift64*, seeded once from getrandom(2),
 * under a mutex), so any thread may call these.  Retry-After, the
 * number of attempts and the base and cap of each kind of retry stay
 * with the callers.
 */
#ifndef IA_BACKOFF_H
#define IA_BACKOFF_H

#include <stdint.h>

/* The delay before retry n >= 1 (n < 1 counts as 1): base * 2^(n-1),
 * at most cap, in ms; no jitter. */
int64_t backoff_exp_ms(int64_t base, int64_t cap, int n);
/* A random point in the upper half of d: [d/2, d]. */
int64_t backoff_half_jitter(int64_t d);
/* d plus or minus 25%: a random point in [3d/4, 3d/4 + d/2]. */
int64_t backoff_quarter_jitter(int64_t d);
/* backoff_half_jitter(backoff_exp_ms(base, cap, n)). */
int64_t backoff_ms(int64_t base, int64_t cap, int n);

#endif
