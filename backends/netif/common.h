/* SPDX-License-Identifier: MIT */
/*
 * The netif (vif) backend's private structures, shared by its files:
 *   netif.c   the ops table, statistics, the one-line description
 *   xenbus.c  probe (TAP, features, InitWait), the xenbus states, hotplug-status, teardown
 *   ring.c    the frontend's keys, ring mapping and event channels per queue, their release
 *   io.c      the data path: TX (ring -> TAP) and RX (TAP -> ring), one grant-copy batch per
 *             queue and loop turn, the RX backlog
 *   journal.c the in-flight journal of each ring, and putting a killed run's slots back
 *   credit.c  the TX credit limiter (xl.cfg rate=, blanketctl limit)
 */
#ifndef BK_NETIF_COMMON_H
#define BK_NETIF_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "blanket/stats.h"
#include "device.h"
#include "netif/netif.h"
#include "netif/proto.h"
#include "tap.h"
#include "util/list.h"
#include "util/log.h"
#include "util/macros.h"
#include "xen/xen.h"

/* Queues offered (multi-queue-max-queues): netback's cap. */
#define NETIF_MAX_QUEUES 8U
/* TX packets and bytes taken from one queue per loop turn (one grant-copy batch). */
#define NETIF_TX_BATCH 64U
#define NETIF_TX_ARENA (256U << 10)
/* RX frames read from the TAP / laid on the ring per queue and loop turn. */
#define NETIF_RX_BATCH 64U
/* Per-queue RX backlog (netback's XENVIF_RX_QUEUE_BYTES) and its expiry. */
#define NETIF_RX_BACKLOG_BYTES (512U << 10)
#define NETIF_RX_EXPIRE_S 10.0
/* A frontend without feature-rx-notify is polled for RX buffers this often. */
#define NETIF_RX_POLL_MS 30U
/* No RX buffers for this long while frames wait: carrier off (XSA-392). */
#define NETIF_RX_STALL_S 60.0
/* Largest frame read from the TAP, header included. */
#define NETIF_TAP_FRAME_MAX (BK_TAP_VNET_HDR_LEN + NETIF_RX_MAX_LEN)

struct netif_dev;
struct bk_journal;

/* A ring's in-flight journal (journal.c) and the entry of each slot taken. */
struct netif_jring {
	struct bk_journal *j; /* NULL: journals are off */
	uint32_t pushed;      /* rsp_prod the journal was last told */
	int ent[NETIF_RING_SIZE];
};

/* One frame read from the TAP, waiting for RX buffers. */
struct netif_rx_frame {
	struct list_head link;
	double t; /* when it was read (loop clock) */
	struct netif_rx_meta meta;
	uint32_t rsp0; /* its responses in the batch (delivery) */
	size_t len;
	uint8_t data[];
};

/* The vif's TX credit (credit.c): @bytes every @usec, 0 bytes: unlimited. */
struct netif_credit {
	uint64_t bytes, usec;
	uint64_t remaining;
	uint64_t window_start; /* ns, bk_now_ns() */
	uint64_t refills;      /* windows' credit added */
	struct bk_timer *timer;
};

struct netif_queue {
	struct netif_dev *nd;
	unsigned int index;
	char name[64]; /* "vif 5/0 q1" */
	struct bk_queue_stats *stats;

	/* What the frontend published (hostile, validated) and what we made of it. */
	uint32_t tx_ref, rx_ref;
	uint32_t tx_rport, rx_rport; /* the same port twice when not split */
	uint32_t tx_port, rx_port;   /* local ports */
	bool split;
	void *tx_page, *rx_page;
	bool tx_mapped, rx_mapped, tx_bound, rx_bound;
	struct netif_ring tx, rx;

	/* TX: the private copy of the ring, parsed packets, their bytes, the copy batch. */
	union nif_tx_slot *txcopy;    /* NETIF_RING_SIZE */
	struct netif_tx_pkt *pkts;    /* NETIF_TX_BATCH */
	uint32_t *pkt_off;	      /* where each packet starts in the arena */
	uint32_t *pkt_seg;	      /* its first copy segment */
	uint8_t *arena;		      /* NETIF_TX_ARENA */
	struct bk_gnt_copy_seg *segs; /* NETIF_SEGS */
	struct bk_tap_pkt *tpkts;     /* NETIF_TX_BATCH */
	struct iovec *tiov;	      /* 2 per packet */
	uint8_t (*vhdr)[BK_TAP_VNET_HDR_LEN];
	bool tx_more; /* requests left for the next turn */

	/* RX: frames from the TAP, oldest first. */
	struct list_head backlog;
	size_t backlog_bytes;	 /* its frames are stats->inflight */
	bool tap_paused;	 /* backlog full: not reading the TAP */
	bool rx_waiting;	 /* frames wait for RX buffers */
	double rx_wait_since;	 /* when the head frame started waiting */
	uint8_t *rxbuf;		 /* NETIF_TAP_FRAME_MAX */
	union nif_rx_slot *rsps; /* NETIF_RX_BATCH * NETIF_RX_MAX_SLOTS */
	struct netif_rx_frame **rx_frames;
	uint32_t *seg_rsp; /* RX: the response each copy segment fills */
	bool tap_ready;	   /* the TAP queue was readable */

	bool kicked_tx, kicked_rx; /* an event arrived since the last run */
	struct netif_jring jtx, jrx;
	bool credit_wait;      /* TX held back until the credit timer */
	uint64_t credit_since; /* ns */
};

/* Copy segments one queue needs at most per batch (TX or RX). */
#define NETIF_SEGS BK_MAX(NETIF_TX_BATCH *NETIF_TX_MAX_FRAGS, NETIF_RX_BATCH *NETIF_RX_MAX_SLOTS)

struct netif_dev {
	struct bk_device *dev;
	char ifname[32];	      /* the TAP we created (vifname or vif<domid>.<devid>) */
	struct bk_tap *tap;	      /* created at probe, removed with the device */
	unsigned int max_queues;      /* offered */
	struct bk_queue_stats *stats; /* NETIF_MAX_QUEUES, kept across reconnects */
	unsigned int stats_queues;

	/* Negotiated at connect. */
	unsigned int nr_queues;
	struct netif_queue *queues;
	struct netif_feat feat;
	bool rx_notify;
	struct bk_gnttab *gnt;
	struct bk_evtchn *evtchn;
	struct bk_watch *evtchn_watch;
	struct bk_hook *hook;
	struct bk_timer *timer; /* RX polling, expiry and stall detection */
	bool rings_up;		/* rings mapped, ports bound */
	bool running;		/* Connected: the data path runs */
	bool carrier_off;
	bool adopting; /* a previous run left it Connected */
	bool handover; /* releasing for a next run: keep the journals */
	struct netif_credit credit;
};

static inline struct netif_dev *netif_of(struct bk_device *dev)
{
	return dev->priv;
}

/* xenbus.c */
int netif_probe(struct bk_device *dev);
void netif_frontend_changed(struct bk_device *dev, enum bk_xenbus_state state);
void netif_backend_changed(struct bk_device *dev, const char *key);
void netif_shutdown(struct bk_device *dev);
void netif_remove(struct bk_device *dev);
void netif_abandon(struct bk_device *dev, unsigned int point);

/* ring.c: 0, or -errno after bk_device_fail(). */
int netif_rings_connect(struct netif_dev *nd);
void netif_rings_release(struct netif_dev *nd);

/*
 * journal.c. In the data path, per ring and turn: take after consuming @n slots (@raw: the
 * private copy), answered after writing their responses, pushed after publishing them and
 * before notifying.
 */
int netif_journal_open(struct netif_queue *q);
void netif_journal_close(struct netif_queue *q, bool keep);
void netif_journal_take(struct netif_queue *q, struct netif_ring *r, const void *raw, uint32_t n);
void netif_journal_answered(struct netif_queue *q, struct netif_ring *r);
void netif_journal_pushed(struct netif_queue *q, struct netif_ring *r);

/* credit.c. netif_credit_exceeded: @size bytes of TX may not go now (charged when they may). */
int netif_credit_init(struct netif_dev *nd);
void netif_credit_free(struct netif_dev *nd);
void netif_credit_set(struct netif_dev *nd, uint64_t bytes, uint64_t usec);
void netif_credit_read_key(struct netif_dev *nd);
bool netif_credit_exceeded(struct netif_queue *q, uint32_t size);
int netif_set_limit(struct bk_device *dev, const struct bk_ctl_limit *want,
		    struct bk_ctl_limit *ret_now);

/* io.c */
void netif_start(struct netif_dev *nd);
void netif_hook_cb(void *data);
void netif_timer_cb(void *data);
void netif_evtchn_cb(void *data, int fd, unsigned int events);
void netif_tap_cb(void *data, int fd, unsigned int events);
void netif_queue_free_backlog(struct netif_queue *q);

#endif
