/* SPDX-License-Identifier: MIT */
/*
 * What the lab's static guest tools (iotool, nettool) share: the data pattern and the clock.
 * The pattern's 8-byte word number i under a seed is lab_mix(seed ^ i), so a disk range or a
 * TCP stream can be checked anywhere from the seed alone.
 */
#ifndef BK_LAB_TOOL_H
#define BK_LAB_TOOL_H

#include <stdint.h>
#include <time.h>

/* A 64-bit mixing function (splitmix64's finalizer): also the tools' cheap random source. */
static inline uint64_t lab_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Word @index of the pattern under @seed. */
static inline uint64_t lab_word(uint64_t seed, uint64_t index)
{
	return lab_mix(seed ^ index);
}

/* Seconds on the monotonic clock. */
static inline double lab_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
