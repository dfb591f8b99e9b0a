/* SPDX-License-Identifier: MIT */
/*
 * A virtio-net device driven from userspace as the port of a netif vif (backends/netif/port.h):
 * an L0 virtio-net-pci NIC (modern transport over uio_pci_generic, machine addresses through
 * dma.c in a PV dom0) or a vhost-user-net back-end (a switch such as OVS-DPDK, VPP or testpmd;
 * memfd memory, identity addresses).
 *
 * Queue pairs rx0, tx0, rx1, tx1, ... (vhost-user: as many as the back-end has, up to the
 * caller's; PCI: one, since more needs the control queue). Every buffer is one DMA page: RX
 * posts single pages (MRG_RXBUF merges them for large frames), TX copies each frame into as
 * many pages as it needs, one descriptor each. Frames cross the API as struct bk_tap_pkt: the
 * 12-byte virtio_net_hdr_v1 (num_buffers 0), then the Ethernet frame, so a TAP and a vnet read
 * and write the same thing.
 *
 * Offloads: the device's CSUM / HOST_TSO4 / HOST_TSO6 decide what the guest may be offered
 * (bk_vnet_features()); a partial checksum for a device without CSUM is finished in software.
 * RX offloads (GUEST_CSUM, GUEST_TSO4/6) are negotiated at bk_vnet_start() from the TUN_F_*
 * flags the reader accepts; GUEST_TSO only with MRG_RXBUF (no 64 KiB buffers are posted).
 *
 * The module never owns the loop: the watch of a queue is an eventfd (the vhost-user call fd of
 * its RX ring, or for PCI one the INTx handler signals). Errors are logged naming the device.
 */
#ifndef BK_VIRTIO_NET_H
#define BK_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "tap.h"

struct bk_vnet;

/* Where the device is: exactly one of @pci and @path. */
struct bk_vnet_opts {
	char pci[16];	     /* DDDD:BB:DD.F of an L0 virtio-net-pci NIC */
	char path[108];	     /* a vhost-user-net socket */
	bool poll;	     /* PCI: poll every ms instead of INTx */
	unsigned int queues; /* most queue pairs wanted (0: 8) */
	int dma; /* -1: the mode dma.c chooses; else a forced enum vio_dma_mode (tests) */
};

/*
 * Parse a port spec "virtio-net,pci=BDF[,irq=intx|poll][,dma=auto|pagemap|p2m]" (dma: a test
 * of the address translation) or
 * "vhost-user,path=SOCKET[,queues=N]". -EINVAL with the reason in @why (naming the value).
 */
int bk_vnet_parse(const char *spec, struct bk_vnet_opts *ret, char *why, size_t why_len);

/* Take the device, negotiate what does not depend on the guest, set the queues up. */
int bk_vnet_open(const char *name, struct bk_loop *loop, const struct bk_vnet_opts *o,
		 struct bk_vnet **ret);
/* NULL-safe: reset the device (nothing it could write is freed before), hand it back. */
void bk_vnet_close(struct bk_vnet *v);

const char *bk_vnet_name(const struct bk_vnet *v);
/* Features the device offers (VIRTIO_NET_F_* bits of <linux/virtio_net.h>). */
uint64_t bk_vnet_features(const struct bk_vnet *v);
/* Features negotiated by the last bk_vnet_start(). */
uint64_t bk_vnet_negotiated(const struct bk_vnet *v);
unsigned int bk_vnet_max_pairs(const struct bk_vnet *v);
/* The device's MAC (config space), -ENOENT when it has none (vhost-user). */
int bk_vnet_mac(const struct bk_vnet *v, uint8_t mac[6]);
/* Link status from config space (always up without VIRTIO_NET_F_STATUS). */
bool bk_vnet_link_up(struct bk_vnet *v);

/*
 * Start (or restart, after a reset) with @pairs queue pairs; @tun_flags the TUN_F_* flags of
 * what the reader accepts on RX (netif_tun_offload()). Posts every RX buffer.
 */
int bk_vnet_start(struct bk_vnet *v, unsigned int pairs, unsigned int tun_flags);

/* As bk_tap_watch() / bk_tap_watch_events(), for queue pair @q. */
int bk_vnet_watch(struct bk_vnet *v, unsigned int q, struct bk_loop *loop, unsigned int events,
		  bk_fd_cb cb, void *data);
void bk_vnet_watch_events(struct bk_vnet *v, unsigned int q, unsigned int events);
/* As the port ops: read fills slots with len/err (-EAGAIN: none); write: frames done. */
int bk_vnet_read(struct bk_vnet *v, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n);
int bk_vnet_write(struct bk_vnet *v, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n);

/* Counters of one queue pair (shown by blanketctl as the L0 device's queues). */
struct bk_vnet_pair_stats {
	uint64_t rx_frames, rx_bytes; /* bytes: Ethernet frames, no virtio header */
	uint64_t tx_frames, tx_bytes;
	uint64_t rx_drop, tx_full, tx_csum_sw;
};

/* Counters of the port itself (its queue pairs' summed, and interrupts), for tests and logs. */
struct bk_vnet_stats {
	uint64_t rx_frames, tx_frames;
	uint64_t rx_drop; /* malformed or too large for the caller's slot */
	uint64_t tx_full; /* no buffer or descriptor left: the rest of a batch waited */
	uint64_t tx_csum_sw;
	uint64_t interrupts;
};
void bk_vnet_stats(const struct bk_vnet *v, struct bk_vnet_stats *ret);

#endif
