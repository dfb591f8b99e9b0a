/* SPDX-License-Identifier: MIT */
/*
 * A vif's port: where the frames netif takes from the guest go, and where the guest's frames
 * come from. One ops table per kind; the TAP (dom0's network stack) is the default, an L0
 * virtio-net NIC (PCI or vhost-user, frontends/virtio/net.h) the other.
 *
 * Every frame crosses a port as a struct bk_tap_pkt: a 12-byte virtio_net_hdr_v1, then the
 * Ethernet frame, so the offload mapping of offload.c is the same for every kind. Batches stay
 * batches: one read call fills several posted slots of the RX store, one write call takes a
 * turn's TX frames. Readiness comes from an fd the port asks the loop to watch per queue.
 */
#ifndef BK_NETIF_PORT_H
#define BK_NETIF_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "netif/proto.h"
#include "tap.h"

struct bk_device;
struct netif_port;

/* What the guest may be offered, from what the port can carry. */
struct netif_port_caps {
	bool gso_tcpv4; /* TCPv4 GSO frames from the guest */
	bool gso_tcpv6;
	unsigned int max_queues; /* queue pairs the port can have (caps multi-queue-max-queues) */
};

struct netif_port_ops {
	/* NULL-safe. @keep: the daemon stops (a persistent TAP stays), else the device goes. */
	void (*close)(struct netif_port *p, bool keep);
	/* A name for logs and `blanketctl list` (the TAP's current interface name). */
	const char *(*name)(struct netif_port *p);
	void (*caps)(struct netif_port *p, struct netif_port_caps *ret);
	/*
	 * At connect: @nr_queues queues, RX offloads as the frontend negotiated them (@feat).
	 * May reopen or reset the port; -errno with a log line naming the port.
	 */
	int (*configure)(struct netif_port *p, unsigned int nr_queues,
			 const struct netif_feat *feat);
	/* Ask @loop to watch queue @q's readiness (replaces a watch); events 0 pauses it. */
	int (*watch)(struct netif_port *p, unsigned int q, struct bk_loop *loop,
		     unsigned int events, bk_fd_cb cb, void *data);
	void (*watch_events)(struct netif_port *p, unsigned int q, unsigned int events);
	/*
	 * Up to @n frames from queue @q into the caller's slots, in order. Each slot gets len and
	 * err (0, or -EAGAIN: nothing for it). Returns the frames read, or -errno.
	 */
	int (*read)(struct netif_port *p, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n);
	/*
	 * Up to @n frames to queue @q; a refused frame gets err and counts as done. Returns the
	 * frames done (the rest: the port is full). The buffers are free again on return.
	 */
	int (*write)(struct netif_port *p, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n);
	/* Optional: carrier on/off (a stalled guest, XSA-392). */
	int (*set_carrier)(struct netif_port *p, bool on);
	/* Optional: the port's own MAC address (an L0 NIC's), -ENOENT when it has none. */
	int (*get_mac)(struct netif_port *p, uint8_t mac[6]);
};

struct netif_port {
	const struct netif_port_ops *ops;
	const char *kind; /* "tap", "virtio-net" (an L0 NIC over PCI), "vhost-user" */
	bool reattached;  /* the port existed before (a persistent TAP a previous run left) */
};

/*
 * Open the port of vif @ifname: the spec blanketd.conf's vif-port gives for it ("" or NULL:
 * a TAP named @ifname). A bad spec or a port that cannot be opened: -errno, logged naming the
 * value.
 */
int netif_port_open(struct bk_device *dev, const char *ifname, const char *spec,
		    struct bk_loop *loop, struct netif_port **ret);

#endif
