/* SPDX-License-Identifier: MIT */
/*
 * The blkif backend: serves Xen PV block devices (vbd) to stock blkfront guests. Register it
 * with bk_core_register(core, &blkif_backend_ops).
 */
#ifndef BK_BLKIF_H
#define BK_BLKIF_H

#include <stdint.h>

#include "device.h"

extern const struct bk_backend_ops blkif_backend_ops;

/* Test-only: the daemon is killed (blkif_backend_ops.abandon, see bk_core_abandon). */
void blkif_abandon(struct bk_device *dev, unsigned int point);

/*
 * Test-only: the clock the rate limiter reads (NULL: bk_loop_clock_ns again), so a test counts what
 * each refill admits without timing anything.
 */
void blkif_set_clock(uint64_t (*now)(void));

#endif
