/* SPDX-License-Identifier: MIT */
/* The blkif fuzz entry points, shared by the libFuzzer builds and the corpus replay tests. */
#ifndef BK_FUZZ_BLKIF_H
#define BK_FUZZ_BLKIF_H

#include <stddef.h>
#include <stdint.h>

/* Run one input through the ring consumer and parser; aborts when an invariant breaks. */
int blkif_fuzz_one(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The datapath target (fuzz-blkif-ring.c): the same hostile ring bytes, but served by the real
 * backend through the simulation (grant copies, bounce pool, engine, responses).
 */
int blkif_ring_fuzz_one(const uint8_t *data, size_t size);
/* Free the datapath target's machine (the replay test calls it at the end). */
void bk_fuzz_cleanup(void);

#endif
