/* SPDX-License-Identifier: MIT */
/*
 * The netif (vif) backend's private structures, shared by its files:
 *   netif.c   the ops table, statistics, the one-line description
 *   xenbus.c  probe (port, features, InitWait), the xenbus states, hotplug-status, teardown
 *   port.c    the vif's port (port.h): the TAP, or an L0 virtio-net NIC
 *   ring.c    the frontend's keys, ring mapping and event channels per queue, their release
 *   io.c      the data path: TX (ring -> TAP) and RX (TAP -> ring), one grant-copy batch per
 *             device and loop turn, the RX backlog and its store
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
#include "netif/port.h"
#include "netif/proto.h"
#include "tap.h"
#include "util/list.h"
#include "util/log.h"
#include "util/macros.h"
#include "xen/evport.h"
#include "xen/xen.h"

/* Queues offered (multi-queue-max-queues): netback's cap. */
#define NETIF_MAX_QUEUES 8U
/*
 * Per queue and loop turn: as many TX packets as the ring holds (every slot at most one copy
 * segment), their bytes in an arena, and as many RX frames as the ring has buffers for.
 */
#define NETIF_TX_BATCH NETIF_RING_SIZE
#define NETIF_TX_ARENA (512U << 10)
#define NETIF_RX_BATCH NETIF_RING_SIZE
/* Per-queue RX backlog (netback's XENVIF_RX_QUEUE_BYTES) and its expiry. */
#define NETIF_RX_BACKLOG_BYTES (512U << 10)
#define NETIF_RX_EXPIRE_S 10.0
/* A frontend without feature-rx-notify is polled for RX buffers this often. */
#define NETIF_RX_POLL_MS 30U
/* No RX buffers for this long while frames wait: carrier off (XSA-392). */
#define NETIF_RX_STALL_S 60.0
/* Largest frame read from the TAP, header included. */
#define NETIF_TAP_FRAME_MAX (BK_TAP_VNET_HDR_LEN + NETIF_RX_MAX_LEN)
/* TAP reads posted at once per queue (each into a largest-frame slot of the store). */
#define NETIF_RX_POST_MAX 8U
/*
 * The RX store: the backlog's frames, FIFO in one buffer, read from the TAP in place (no
 * allocation or copy per frame). Room for a full backlog of small frames with their headers,
 * plus the largest frame at either end.
 */
#define NETIF_RX_STORE \
	(2U * NETIF_RX_BACKLOG_BYTES + (NETIF_RX_POST_MAX + 1U) * (NETIF_RX_MAX_LEN + 256U))

struct netif_dev;
struct bk_journal;

/* A ring's in-flight journal (journal.c) and the entry of each slot taken. */
struct netif_jring {
	struct bk_journal *j; /* NULL: journals are off */
	uint32_t pushed;      /* rsp_prod the journal was last told */
	int ent[NETIF_RING_SIZE];
};

/* One frame read from the TAP, waiting for RX buffers; lives in its queue's RX store. */
struct netif_rx_frame {
	struct list_head link;
	double t; /* when it was read (loop clock) */
	struct netif_rx_meta meta;
	uint32_t need;	     /* RX requests it takes (netif_rx_slots) */
	uint32_t rsp0;	     /* delivery: its first response in the queue's batch */
	uint32_t seg0, nseg; /* delivery: its copy segments in the device's batch */
	uint32_t off, size;  /* its place in the store */
	size_t len;
	uint8_t data[];
};

/*
 * Frames in one buffer, FIFO: reserved at the tail at the largest frame's size, read into in
 * place, committed at their real size (or abandoned), released oldest first. The tail wraps
 * to the start when the largest frame no longer fits before the end.
 */
struct netif_rx_store {
	uint8_t *buf;
	uint32_t size;
	uint32_t head;	 /* oldest frame */
	uint32_t tail;	 /* where the next frame goes */
	uint32_t wrap;	 /* end of the frames before the tail wrapped to 0; 0: none */
	uint32_t frames; /* committed and not yet released */
	uint32_t last;	 /* the last committed frame (when frames > 0) */
};

/* store.c. init: -ENOMEM; free: NULL-safe buffer, the store may be zeroed. */
int netif_store_init(struct netif_rx_store *s, uint32_t size);
void netif_store_free(struct netif_rx_store *s);
/*
 * Room at the tail for @n largest frames (NETIF_RX_MAX_LEN) in a row: the first slot (the
 * others by netif_store_slot()), or NULL until frames leave. Nothing is taken until a commit.
 */
struct netif_rx_frame *netif_store_reserve(struct netif_rx_store *s, unsigned int n);
struct netif_rx_frame *netif_store_slot(struct netif_rx_frame *first, unsigned int k);
/*
 * Keep a frame read into a slot of the last reservation, @len bytes of data, committed in slot
 * order (slots may be skipped). Returns where the frame is now (a small frame in a later slot
 * moves up to the tail, data included); sets its off, size, len.
 */
struct netif_rx_frame *netif_store_commit(struct netif_rx_store *s, struct netif_rx_frame *f,
					  size_t len);
/* Release the oldest committed frame, @f. */
void netif_store_release(struct netif_rx_store *s, struct netif_rx_frame *f);
/* Frames up to this size move up to the tail instead of leaving a gap (a cheap copy). */
#define NETIF_STORE_MOVE_MAX 2048U

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

	/* TX: the private copy of the ring, parsed packets, their bytes. */
	union nif_tx_slot *txcopy; /* NETIF_RING_SIZE */
	struct netif_tx_pkt *pkts; /* NETIF_TX_BATCH */
	uint32_t *pkt_off;	   /* where each packet starts in the arena */
	uint32_t *pkt_seg;	   /* its first copy segment in the device's batch */
	uint8_t *arena;		   /* NETIF_TX_ARENA */
	struct bk_tap_pkt *tpkts;  /* NETIF_TX_BATCH */
	struct iovec *tiov;	   /* 2 per packet */
	uint8_t (*vhdr)[BK_TAP_VNET_HDR_LEN];
	bool tx_more; /* requests left for the next turn */
	/* This turn's TX work between taking it and answering it (after the copy). */
	bool tx_ran;
	uint32_t tx_npk, tx_pos, tx_avail;
	const char *tx_fatal;

	/* RX: frames from the TAP, oldest first. */
	struct list_head backlog;
	size_t backlog_bytes;		   /* its frames are stats->inflight */
	bool tap_paused;		   /* backlog full: not reading the TAP */
	bool rx_waiting;		   /* frames wait for RX buffers */
	double rx_wait_since;		   /* when the head frame started waiting */
	struct netif_rx_store store;	   /* NETIF_RX_STORE: the backlog's frames */
	union nif_rx_slot *rsps;	   /* NETIF_RING_SIZE: this turn's responses */
	struct netif_rx_frame **rx_frames; /* NETIF_RX_BATCH: this turn's frames */
	uint32_t rx_nfr, rx_nrsp;
	bool rx_full;	      /* this turn found too few RX buffers */
	unsigned int rx_post; /* TAP reads to post next: what the last batch found, plus one */
	bool tap_ready;	      /* the TAP queue was readable */

	bool kicked_tx; /* run TX: an event arrived, credit came back, a back-off ended */
	/* XSA-332: each port masked from its event until served (rx_ev: split ports only). */
	struct bk_evport tx_ev, rx_ev;
	struct netif_jring jtx, jrx;
	bool credit_wait;      /* TX held back until the credit timer */
	uint64_t credit_since; /* ns */
};

/* Copy segments of one queue per turn at most: one per TX slot and one per RX slot. */
#define NETIF_QUEUE_SEGS (2U * NETIF_RING_SIZE)

struct netif_dev {
	struct bk_device *dev;
	char ifname[32];	      /* vifname or vif<domid>.<devid>: the TAP's name */
	struct netif_port *port;      /* opened at probe, removed with the device */
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
	/* The turn's one grant-copy batch, every queue and both directions. */
	struct bk_gnt_copy_seg *segs; /* nr_queues * NETIF_QUEUE_SEGS */
	uint16_t *seg_slot;	      /* RX: the response (of its frame) each segment fills */
	uint32_t nseg;
	bool rings_up; /* rings mapped, ports bound */
	bool running;  /* Connected: the data path runs */
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
void netif_backoff_cb(void *data);
void netif_tap_cb(void *data, int fd, unsigned int events);
void netif_queue_free_backlog(struct netif_queue *q);
/* The data path's buffers for every queue (after the queues are set up); -ENOMEM. */
int netif_io_alloc(struct netif_dev *nd);
/* NULL-safe per buffer: frees what netif_io_alloc() got, also after it failed. */
void netif_io_free(struct netif_dev *nd);

#endif
