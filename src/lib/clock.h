/* SPDX-License-Identifier: MIT */
/*
 * clock: the two clocks the agent reads, in milliseconds.  Wall time
 * (CLOCK_REALTIME) is what is stored and shown; monotonic time
 * (CLOCK_MONOTONIC) measures intervals and deadlines that must not jump
 * with the system clock.
 */
#ifndef IA_CLOCK_H
#define IA_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the epoch, CLOCK_REALTIME. */
int64_t clock_wall_ms(void);
/* Milliseconds from CLOCK_MONOTONIC (an arbitrary origin). */
int64_t clock_mono_ms(void);
/* ms on either clock as a timespec on that clock, e.g. the absolute
 * deadline of a pthread timed wait. */
struct timespec clock_ts(int64_t ms);

#endif
