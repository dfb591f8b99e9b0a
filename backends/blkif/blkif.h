/* SPDX-License-Identifier: MIT */
/*
 * The blkif backend: serves Xen PV block devices (vbd) to stock blkfront guests. Register it
 * with bk_core_register(core, &blkif_backend_ops).
 */
#ifndef BK_BLKIF_H
#define BK_BLKIF_H

#include "device.h"

extern const struct bk_backend_ops blkif_backend_ops;

/* Test-only: the daemon is killed (blkif_backend_ops.abandon, see bk_core_abandon). */
void blkif_abandon(struct bk_device *dev, unsigned int point);

#endif
