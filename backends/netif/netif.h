/* SPDX-License-Identifier: MIT */
/*
 * The netif backend: serves Xen PV network interfaces (vif) to stock netfront guests over a
 * TAP per vif. Register it with bk_core_register(core, &netif_backend_ops).
 */
#ifndef BK_NETIF_H
#define BK_NETIF_H

#include "device.h"

extern const struct bk_backend_ops netif_backend_ops;

#endif
