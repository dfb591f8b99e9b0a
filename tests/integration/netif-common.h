/* SPDX-License-Identifier: MIT */
/*
 * What the netif integration tests (and netbench) share beyond tests/lib/netpkt.h: the guest's
 * MAC address, and a vif's counters summed over its queues.
 */
#ifndef BK_TEST_NETIF_COMMON_H
#define BK_TEST_NETIF_COMMON_H

#include <stdint.h>
#include <string.h>

#include "blanket/stats.h"
#include "device.h"
#include "netpkt.h"
#include "loop.h"
#include "util/macros.h"

static _unused_ const uint8_t guest_mac[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0x01 };

/* The counters of vif @domid/@devid summed over its queues (zero when there is none); the
 * number of queues. */
static inline unsigned int vif_totals(struct bk_core *core, uint32_t domid, uint32_t devid,
				      struct bk_queue_stats *t)
{
	struct bk_queue_stats qs[8];
	struct bk_device *dev = bk_core_find(core, "vif", domid, devid);
	int n = 0;

	if (dev) {
		/* Its I/O thread, if any, holds still while we read. */
		bk_loop_lock(bk_device_loop(dev));
		n = dev->ops->get_stats(dev, qs, 8);
		bk_loop_unlock(bk_device_loop(dev));
	}

	memset(t, 0, sizeof(*t));
	for (int i = 0; i < n && i < 8; i++) {
		t->net_tx_packets += qs[i].net_tx_packets;
		t->net_tx_bytes += qs[i].net_tx_bytes;
		t->net_rx_packets += qs[i].net_rx_packets;
		t->net_rx_bytes += qs[i].net_rx_bytes;
		t->net_tx_gso += qs[i].net_tx_gso;
		t->net_rx_gso += qs[i].net_rx_gso;
		t->net_tx_csum += qs[i].net_tx_csum;
		t->net_tx_drop_copy += qs[i].net_tx_drop_copy;
		t->net_rx_drop_copy += qs[i].net_rx_drop_copy;
		t->inflight += qs[i].inflight;
		t->errors += qs[i].errors;
	}
	return n > 0 ? (unsigned int)n : 0;
}

#endif
