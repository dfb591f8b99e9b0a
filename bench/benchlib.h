/* SPDX-License-Identifier: MIT */
/* What every benchmark in bench/ measures with: wall clock, the process's CPU, a cheap PRNG. */
#ifndef BK_BENCHLIB_H
#define BK_BENCHLIB_H

#include <stdint.h>
#include <time.h>

/* Monotonic wall clock, seconds. */
static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time (user + system) of the whole process, seconds. */
static inline double bench_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64: reproducible offsets and fill patterns, not for anything that needs quality. */
static inline uint64_t bench_rnd(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

#endif
