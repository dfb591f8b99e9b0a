/* SPDX-License-Identifier: MIT */
/*
 * A test netfront: plays Linux's xen-netfront (and, with skip_initwait, the Mini-OS/Unikraft
 * handshake) through the simulation, on top of the xenbus frontend player. Per queue it grants
 * a TX and an RX ring page, allocates one or two event channels, keeps RX buffers posted,
 * sends frames split over several TX slots with checksum flags and a GSO extra, and
 * reassembles received frames the way netfront walks the RX ring (responses by ring
 * position, the extra after the first slot, more_data chains). Raw slot access for hostile
 * tests.
 *
 * bk_nf_env_new() is the simulated machine of blkfront.h with the netif backend registered.
 */
#ifndef BK_TEST_NETFRONT_H
#define BK_TEST_NETFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkfront.h"
#include "netif/proto.h"

/* The blkfront machine (sim, loop, core, toolstack) with netif (and blkif) registered. */
int bk_nf_env_new(struct bk_bf_env *env);
/* The same with @io_threads I/O threads. */
int bk_nf_env_new_threads(struct bk_bf_env *env, unsigned int io_threads);
/* Add a vif as libxl would and play the hotplug script once the backend is in InitWait. */
int bk_nf_env_add_vif(struct bk_bf_env *env, uint32_t domid, uint32_t devid,
		      const char *const *extra_be);

struct bk_nf_params {
	unsigned int nr_queues; /* 0: one queue, no multi-queue-num-queues key; else written */
	bool split;		/* event-channel-tx/-rx instead of event-channel */
	bool no_rx_notify;	/* omit feature-rx-notify */
	bool no_offloads;	/* omit feature-sg, -gso-tcpv4/v6, -ipv6-csum-offload */
	bool skip_initwait;	/* keys and Connected at once, without waiting (Mini-OS) */
	unsigned int rx_bufs;	/* RX buffers kept posted per queue (0: 256) */
	uint32_t pfn_base;	/* guest pages this frontend may use: [base, base+count) */
	uint32_t pfn_count;
};

struct bk_netfront;

int bk_nf_open(struct bk_bf_env *env, uint32_t domid, uint32_t devid, const struct bk_nf_params *p,
	       struct bk_netfront **ret);
/* NULL-safe: revokes grants, closes ports, frees. */
void bk_nf_close(struct bk_netfront *f);
struct bk_xbfront *bk_nf_xbf(struct bk_netfront *f);
/* Rings, ports, RX buffers and every key (not yet the state). */
int bk_nf_prepare(struct bk_netfront *f);
/* (Wait for InitWait,) prepare, Connected, wait for the backend's Connected. */
int bk_nf_connect(struct bk_netfront *f);
/* Closing, then Closed, waiting for the backend each time. */
int bk_nf_disconnect(struct bk_netfront *f);
unsigned int bk_nf_nr_queues(const struct bk_netfront *f);

/* How to send one frame. */
struct bk_nf_tx {
	uint16_t flags;	  /* NIF_TXF_CSUM_BLANK / NIF_TXF_DATA_VALIDATED */
	uint8_t gso_type; /* NIF_GSO_TYPE_*: a GSO extra when not NONE */
	uint16_t gso_size;
	unsigned int nr_slots; /* data slots (0: as few as page-sized pieces need) */
	uint16_t first_offset; /* offset of the first slot's bytes in its page */
};

/*
 * Put one frame on queue @q's TX ring and push it (notifying when the backend asked).
 * -EBUSY: ring or pages full; -EINVAL: the split does not fit pages.
 */
int bk_nf_send(struct bk_netfront *f, unsigned int q, const uint8_t *frame, size_t len,
	       const struct bk_nf_tx *o);
/* Take TX responses; returns how many (NULL ones included). */
unsigned int bk_nf_tx_reap(struct bk_netfront *f, unsigned int q);
/* Pump until every TX request on @q is answered. */
int bk_nf_tx_wait(struct bk_netfront *f, unsigned int q);
/* Responses seen by status, on all queues. */
struct bk_nf_tx_counts {
	unsigned int okay, error, dropped, null, other;
	unsigned int unknown; /* a response for an id with no request outstanding */
};
void bk_nf_tx_counts(const struct bk_netfront *f, struct bk_nf_tx_counts *ret);

/* What netfront learnt about a received frame. */
struct bk_nf_rx_info {
	uint16_t flags;	  /* first slot's NIF_RXF_* */
	uint8_t gso_type; /* from the GSO extra, NONE if none */
	uint16_t gso_size;
	unsigned int slots;
};

/*
 * One whole frame from @q's RX ring into @buf: its length, -EAGAIN if none (or not whole yet),
 * -EPROTO if the backend broke netfront's rules (counted, see bk_nf_rx_errors). Re-posts the
 * buffers it took.
 */
int bk_nf_recv(struct bk_netfront *f, unsigned int q, uint8_t *buf, size_t size,
	       struct bk_nf_rx_info *info);
/* Pump until bk_nf_recv gives a frame on any queue (@ret_q), or -ETIMEDOUT. */
int bk_nf_recv_wait(struct bk_netfront *f, uint8_t *buf, size_t size, struct bk_nf_rx_info *info,
		    unsigned int *ret_q);
/* Backend mistakes netfront would refuse: response not in its request's slot, bad status... */
unsigned int bk_nf_rx_errors(const struct bk_netfront *f);
/* Stop re-posting RX buffers on @q (a guest that never consumes) or resume. */
void bk_nf_rx_hold(struct bk_netfront *f, unsigned int q, bool hold);

/* Hostile access. */
struct nif_sring_hdr *bk_nf_tx_sring(struct bk_netfront *f, unsigned int q);
struct nif_sring_hdr *bk_nf_rx_sring(struct bk_netfront *f, unsigned int q);
/* Write @slot raw at our private TX producer index and advance it (not yet pushed). */
void bk_nf_tx_put_raw(struct bk_netfront *f, unsigned int q, const union nif_tx_slot *slot);
/* Publish the private TX producer index and kick. */
void bk_nf_tx_push(struct bk_netfront *f, unsigned int q);
/* A granted page holding @len bytes of @data at @offset (for raw slots); its ref. */
int bk_nf_grant_bytes(struct bk_netfront *f, const void *data, size_t len, uint16_t offset,
		      uint32_t *ret_ref);
int bk_nf_kick(struct bk_netfront *f, unsigned int q);
/* Events the backend sent on @q's port(s) since the last call (a guest's interrupts). */
unsigned int bk_nf_take_notifies(struct bk_netfront *f, unsigned int q);

#endif
