/* SPDX-License-Identifier: MIT */
/*
 * The netif backend: serves Xen PV network interfaces (vif) to stock netfront guests over a
 * TAP per vif. Register it with bk_core_register(core, &netif_backend_ops).
 */
#ifndef BK_NETIF_H
#define BK_NETIF_H

#include "device.h"

extern const struct bk_backend_ops netif_backend_ops;

/*
 * The backend key `rate` ("BYTES,USEC", as libxl writes it): 0, or -EINVAL naming nothing (the
 * caller names the value).
 */
int netif_credit_parse(const char *s, uint64_t *ret_bytes, uint64_t *ret_usec);
/* Windows' credit the vif's TX limiter added since probe (tests count them, not time). */
uint64_t netif_credit_refills(struct bk_device *dev);

/* Points of a vif's data path, per ring, where a test may stop the daemon (a kill -9). */
enum netif_point {
	NETIF_POINT_TX_TAKEN,	 /* TX slots consumed and journaled, no response written */
	NETIF_POINT_TX_ANSWERED, /* their responses written over the slots, not published */
	NETIF_POINT_TX_PUSHED,	 /* published, not notified, the journal not told */
	NETIF_POINT_RX_TAKEN,	 /* RX requests consumed and journaled, not yet filled */
	NETIF_POINT_RX_ANSWERED, /* filled and answered in their slots, not published */
	NETIF_POINT_RX_PUSHED,	 /* published, not notified, the journal not told */
	NETIF_POINT__MAX,
};

/*
 * Test-only: call @fn at every such point of every vif (NULL: none). What the shared rings and
 * the journal files hold at that call is what a process killed there leaves behind.
 */
void netif_set_test_hook(void (*fn)(struct bk_device *dev, enum netif_point point, void *data),
			 void *data);

#endif
