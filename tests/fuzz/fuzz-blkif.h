/* SPDX-License-Identifier: MIT */
/* The blkif fuzz entry point, shared by the libFuzzer build and the corpus replay test. */
#ifndef BK_FUZZ_BLKIF_H
#define BK_FUZZ_BLKIF_H

#include <stddef.h>
#include <stdint.h>

/* Run one input through the ring consumer and parser; aborts when an invariant breaks. */
int blkif_fuzz_one(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
