/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/backoff.h"
#include "lib/clock.h"

static pthread_mutex_t rng_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;
static uint64_t rng_state;

static void
rng_seed(void)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)clock_mono_ms() * 6364136223846793005u ^
		    (uint64_t)getpid() ^ (uint64_t)clock_wall_ms() << 20;
	rng_state = seed != 0 ? seed : 0x9E3779B97F4A7C15ULL;
}

/* A uniform random integer in [0, n]. */
static uint64_t
rng_upto(uint64_t n)
{
	uint64_t x;

	pthread_once(&rng_once, rng_seed);
	pthread_mutex_lock(&rng_mu);
	x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	pthread_mutex_unlock(&rng_mu);
	x *= 0x2545F4914F6CDD1DULL;
	return n == UINT64_MAX ? x : x % (n + 1);
}

int64_t
backoff_exp_ms(int64_t base, int64_t cap, int n)
{
	int64_t d = base;
	int i;

	for (i = 1; i < n && d < cap; i++)
		d *= 2;
	return d > cap ? cap : d;
}

int64_t
backoff_half_jitter(int64_t d)
{
	if (d <= 0)
		return 0;
	return d / 2 + (int64_t)rng_upto((uint64_t)(d / 2));
}

int64_t
backoff_quarter_jitter(int64_t d)
{
	if (d <= 0)
		return 0;
	return d * 3 / 4 + (int64_t)rng_upto((uint64_t)(d / 2));
}

int64_t
backoff_ms(int64_t base, int64_t cap, int n)
{
	return backoff_half_jitter(backoff_exp_ms(base, cap, n));
}
