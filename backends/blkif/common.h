/* SPDX-License-Identifier: MIT */
/*
 * Internals of the blkif backend, shared by its files: xenbus.c (state machine, features,
 * connect/disconnect), ring.c (ring mapping, event channels, per-queue resources), io.c (the
 * datapath), pool.c (the bounded bounce pool), blkif.c (ops table, stats, describe).
 */
#ifndef BK_BLKIF_COMMON_H
#define BK_BLKIF_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "blanket/stats.h"
#include "conf.h"
#include "device.h"
#include "engine.h"
#include "journal.h"
#include "proto.h"
#include "util/list.h"
#include "xen/evport.h"
#include "xen/xen.h"

/*
 * Requests a device takes per loop turn, shared by its queues (a rotating first queue), so one
 * busy guest cannot starve the others however many queues it negotiated.
 */
#define BLKIF_BUDGET 64U
/* Passes of one run of the hook at most (blkif_hook_cb). */
#define BLKIF_HOOK_PASSES 8U
/* Grant-copy segments per batch (a full batch is copied and the next one started). */
#define BLKIF_COPY_BATCH 1024U
/*
 * A queue idle for queue-idle-ms (blanketd.conf, default 30 s) gives back what only requests
 * need: its slots, copy batch, bounce pool's pages and pinning, and persistent-grant mappings
 * (queue_trim in io.c). The next request sets them up again, which is not cheap: registering
 * the pool pins it (15-20 ms in the lab's PV dom0) and every gref is mapped anew. With one
 * second, a guest whose I/O moved between its vCPUs (and so between queues) every few seconds
 * had its quieter queue trimmed and set up again over and over.
 */
static inline unsigned int blkif_idle_trim_ms(void)
{
	return bk_config_current()->queue_idle_ms;
}
/*
 * Persistent grants a queue keeps mapped at most (blkback's max_persistent_grants default: a
 * 32-entry ring of 32-segment requests and their indirect pages), and a power of two above it.
 */
#define BLKIF_PGNT_MAX 1056U
#define BLKIF_PGNT_MAX_POW2 2048U

/* Where a request is in its life. */
enum blkif_stage {
	BLKIF_S_FREE = 0,
	BLKIF_S_WAIT,	/* taken, waiting for bounce pages, the engine, or a barrier's drain */
	BLKIF_S_COPYIN, /* write data being copied in (this batch) */
	BLKIF_S_IO,	/* with the engine */
	BLKIF_S_DONE,	/* finished, response pending (read data copy-out first) */
};

/*
 * Which I/O of a request is with the engine. A flush or barrier carrying data is three I/Os in
 * turn, as blkback's REQ_PREFLUSH write made durable: a flush (what completed before is
 * durable before the data is written), the write, and a flush (the data is durable when
 * answered: blkfront sends FUA writes as barriers).
 */
enum blkif_phase {
	BLKIF_P_IO = 0,	   /* the request's one I/O */
	BLKIF_P_PREFLUSH,  /* flush before the data */
	BLKIF_P_WRITE,	   /* the data */
	BLKIF_P_POSTFLUSH, /* flush after the data */
};

struct blkif_queue;

/* A token bucket of limit.c: tokens scaled by 1e9 (rate x ns), may go negative (bytes). */
struct blkif_bucket {
	uint64_t rate; /* per second; 0: unlimited */
	__int128 tokens;
	__int128 cap;
};

struct blkif_limiter {
	struct bk_ctl_limit set; /* in effect (flags 0) */
	bool on;		 /* a rate is set */
	struct blkif_bucket ops, bytes;
	uint64_t last_ns; /* last refill */
};

struct blkif_pool {
	uint8_t *base;
	unsigned int nr_pages;
	unsigned int nr_free;
	uint64_t *map;	 /* bit set = page in use */
	bool registered; /* engine registered it as fixed buffer 0 */
};

/* A queue's persistent grants (pgnt.c): gref -> the page it is mapped at. */
struct blkif_pgnt_chunk;
struct blkif_pgnt {
	uint32_t *keys;	 /* hash of grefs, NULL until the first persistent request */
	uint8_t **pages; /* the page each key is mapped at; NULL: empty slot */
	unsigned int nr; /* grefs mapped (counted in the bounce-pool budget) */
	struct blkif_pgnt_chunk *chunks; /* one per map call, unmapped together */
	unsigned int nr_chunks;
	struct iovec *iovs; /* nr_slots x max_segs: each slot's segments on the mapping */
	uint64_t refused;   /* requests copied instead: over the bound, or the map failed */
	bool off;	    /* an I/O on a mapping faulted: copy from now on */
};

struct blkif_slot {
	struct bk_io io;
	struct iovec iov;
	struct iovec *iovs; /* mapped: the guest's pages (in q->pgnt.iovs) */
	uint16_t nr_iovs;
	bool mapped;	/* the I/O goes straight to the guest's persistent grants, no bounce */
	bool copy_only; /* the I/O on its mapping failed: through the bounce pool */
	struct blkif_queue *q;
	struct list_head link; /* free, wait, or done list */
	uint8_t stage;	       /* enum blkif_stage */
	uint8_t phase;	       /* enum blkif_phase */
	bool barrier;	       /* a barrier admitted as valid: counted in barrier_pending */
	bool need_desc;	       /* indirect: descriptors not fetched yet */
	bool charged;	       /* its bytes are counted by the rate limiter */
	int16_t status;
	uint32_t pool_first, pool_pages;
	uint32_t copy_first, copy_n; /* range in the copy batch */
	uint64_t start_ns;
	int jent; /* in-flight journal entry, -1 without a journal */
	struct blkif_req req;
};

struct blkif_copy_batch {
	struct bk_gnt_copy_seg *segs;
	struct blkif_slot **owners;
	unsigned int n, cap;
	unsigned int nr_owners, owners_cap;
};

struct blkif_queue {
	struct blkif_dev *bd;
	unsigned int index;
	char name[64]; /* "vbd 5/51712 q0" */

	/* Ring and event channel. */
	void *ring_addr;
	unsigned int ring_pages;
	struct blkif_ring ring;
	uint32_t remote_port;
	uint32_t local_port;
	uint32_t refs[BLKIF_MAX_RING_PAGES]; /* as the frontend published them */
	bool bound;
	bool mapped;
	/* Survives our restarts: what was taken and not yet answered (src/journal.h). */
	struct bk_journal *journal;

	struct bk_engine *engine;
	/*
	 * Slots, their segment arrays and the copy batch exist only while the queue is in use:
	 * set up by its first request, freed once it has been idle for queue-idle-ms. An
	 * idle disk then costs little beyond its rings, which are the guest's pages.
	 */
	struct blkif_slot *slots; /* NULL while trimmed */
	unsigned int nr_slots;
	unsigned int max_segs; /* segments of the largest request the device admits */
	/* Each slot's req.seg: nr_slots arrays of the largest request's segments. */
	struct blkif_request_segment *segs;
	uint64_t active_ns; /* last request taken (blkif_now) */
	uint64_t now_ns;    /* blkif_now read once per pass over the queue, 0: not yet */
	/*
	 * Requests answered in the turn that took them (reads from the page cache): their
	 * latency is counted when the turn ends (lat_late.cb), timed by the loop's last
	 * reading there. All were stamped lat_late_start, the turn's clock.
	 */
	struct bk_turn_end lat_late;
	uint64_t lat_late_start;
	unsigned int lat_late_n;
	struct bk_timer *idle; /* trims the queue once idle (armed by the hook) */
	struct list_head free_list;
	struct list_head wait_list; /* FIFO of taken, not yet dispatched requests */
	struct list_head done_list; /* finished, to answer in the next batch */
	unsigned int busy;	    /* slots not free */
	unsigned int engine_inflight;
	struct blkif_pool pool;
	struct blkif_pgnt pgnt;
	struct blkif_copy_batch batch;
	/* Valid barriers taken and not answered: consume nothing more while non-zero. */
	unsigned int barrier_pending;
	/* The barrier being dispatched or with the engine: nothing behind it starts. */
	struct blkif_slot *barrier_running;

	bool stalled;	/* stopped consuming: slots, bounce pages or engine full */
	bool arm_later; /* req_event left for the hook's last pass to re-arm (queue_take) */
	bool dead;	/* disconnecting: complete everything into the void */
	/* Its port, masked since its event while blocked, out of budget or backing off. */
	struct bk_evport ev;
	uint64_t throttled_since; /* held back by the rate limit since (blkif_now), else 0 */

	struct bk_queue_stats *stats;
};

/* What to do when a disconnect has drained. */
enum {
	BLKIF_AFTER_CLOSED = 1 << 0,   /* write state Closed */
	BLKIF_AFTER_INITWAIT = 1 << 1, /* then InitWait: the frontend reconnects */
	BLKIF_AFTER_SHUTDOWN = 1 << 2, /* tell the core the shutdown is done */
};

struct blkif_dev {
	struct bk_device *dev;

	/* From the backend keys: mode and device-type at probe, the rest after hotplug. */
	char *params; /* the backing path; NULL until the hotplug script ran */
	bool readonly;
	bool cdrom;
	bool share;		   /* mode "w!" or blanket-share=on: sharing read-write is forced */
	struct blkif_claim *claim; /* this device's entry in the open-images registry (share.c) */
	/* Waiting for a holder that is going away to release the image (share.c). */
	bool share_waiting;	      /* on share.c's list of waiters */
	struct list_head share_link;  /* in that list */
	struct bk_timer *share_timer; /* the retry at the deadline */
	struct bk_async *share_wake;  /* the retry at the release (from any thread) */
	uint64_t share_deadline;      /* blkif_now() after which it is refused; 0: not waiting */
	char engine_name[16];
	char *engine_opts;
	unsigned int max_queues;     /* per-device cap (blanket-queues) */
	unsigned int offered_queues; /* multi-queue-max-queues at InitWait (daemon-wide) */
	unsigned int max_order;
	unsigned int max_indirect;
	unsigned int pool_pages;
	bool discard_enabled;
	bool pgnt_enabled; /* blanket-persistent (default on) */
	bool pgnt_offer;   /* feature-persistent=1 written with the store's keys (settings.c) */
	enum bk_cache_mode cache;
	struct bk_store *store;
	struct blkif_limits lim;
	uint16_t info;
	struct bk_ctl_limit rate;     /* the rate limits the settings gave (limit.c) */
	struct blkif_limiter limiter; /* what the datapath checks, changed live by blanketctl */
	struct bk_timer *throttle;    /* wakes the queues the limiter held back */

	/* Negotiated at connect. */
	enum blkif_abi abi;
	bool persistent; /* both sides: we offered feature-persistent, the frontend took it */
	unsigned int nr_queues;
	unsigned int ring_order;
	struct blkif_queue *queues;
	struct bk_gnttab *gnt;
	struct bk_evtchn *evtchn;
	struct bk_watch *evtchn_watch;
	struct bk_hook *hook;	  /* also where a new turn renews the budget */
	unsigned int budget_used; /* requests taken this turn, of BLKIF_BUDGET */
	unsigned int rr;	  /* queue served first next turn */
	bool in_hook;		  /* blkif_hook_cb runs: hook_on asks for another pass */
	bool hook_again;

	bool connected;	      /* rings mapped and serving */
	bool waiting_hotplug; /* frontend ready, hotplug-status not yet connected */
	bool draining;	      /* disconnect started, waiting for in-flight I/O */
	bool adopting;	    /* probe found it Connected by a previous run: take over, no InitWait */
	bool handover;	    /* the daemon stops: finish what was taken, keep the guest connected */
	unsigned int after; /* BLKIF_AFTER_* once drained */

	struct bk_queue_stats *stats; /* offered_queues entries, kept across reconnects */
	unsigned int stats_queues;    /* queues of the last connection */
};

static inline struct blkif_dev *blkif_of(struct bk_device *dev)
{
	return dev->priv;
}

/* xenbus.c */
int blkif_probe(struct bk_device *dev);
void blkif_frontend_changed(struct bk_device *dev, enum bk_xenbus_state state);
void blkif_backend_changed(struct bk_device *dev, const char *key);
void blkif_shutdown(struct bk_device *dev);
void blkif_remove(struct bk_device *dev);
/*
 * Stop the device's I/O; once in-flight I/O drained, release the rings and do @after.
 * From the datapath pass @may_finish_now false: the release then happens in the hook.
 */
void blkif_start_disconnect(struct blkif_dev *bd, unsigned int after, bool may_finish_now);
/* Called (from the hook) once nothing is in flight any more. */
void blkif_finish_disconnect(struct blkif_dev *bd);
/*
 * The daemon stops: answer everything already taken, take nothing new, then release the rings
 * without touching xenstore, so the guest stays Connected and the next daemon adopts it.
 */
void blkif_start_handover(struct blkif_dev *bd);
/* Called (from the hook) once every taken request is answered. */
void blkif_finish_handover(struct blkif_dev *bd);

/* settings.c */
/* Probe: mode and device-type (libxl's keys) and the daemon-wide defaults. */
int blkif_read_identity(struct blkif_dev *bd, char *why, size_t len);
/* Probe: the features that need neither the store nor the per-device settings. */
int blkif_write_probe_features(struct blkif_dev *bd);
/*
 * After hotplug-status=connected: read the per-device settings and the path, open the store and
 * publish what depends on it. On failure the reason (naming the key and value, or the path) is
 * in @why; the store stays closed. -EAGAIN: waiting for the image (blkif_claim_image).
 */
int blkif_open_backing(struct blkif_dev *bd, char *why, size_t len);
/*
 * A disk on a virtio-blk device blanketd drives: what the device offers (discard) is known
 * once its engines are open. Call before Connected: updates the limits and the discard keys.
 */
int blkif_vblk_limits(struct blkif_dev *bd);

/* share.c */
/*
 * Register the open store as used by this guest, read-write or read-only (share.c says when
 * another guest's claim is in the way: -EBUSY, with the image and the holder in @why), or
 * -EAGAIN when the only holder is going away (its device draining after a teardown): the
 * device then waits, and blkif_backend_changed(dev, NULL) runs again once the holder released
 * the image or share-wait-ms passed (then -EBUSY).
 */
int blkif_claim_image(struct blkif_dev *bd, char *why, size_t len);
/* NULL-safe on an unclaimed device: the image is free for other guests again. */
void blkif_release_image(struct blkif_dev *bd);
/* Stop waiting for an image (the device goes away). */
void blkif_share_unwait(struct blkif_dev *bd);
/* @bd is being torn down: a disk waiting for its image may wait for it (not refused at once). */
void blkif_share_leaving(struct blkif_dev *bd);
/* Release the claim and close the store (reopened by the next connect, if any). */
void blkif_close_backing(struct blkif_dev *bd);

/* io.c: count the latency of requests still waiting for the end of the turn, now. */
void blkif_queue_lat_flush(struct blkif_queue *q);

/* limit.c */
/* The clock the limiter reads (bk_loop_clock_ns unless a test set one, see blkif.h). */
uint64_t blkif_now(void);
/* The same clock read now, not the loop turn's reading. */
uint64_t blkif_now_fresh(void);
/* True when that clock is the loop's (no test set one): the end of a turn can time requests. */
bool blkif_clock_is_loop(void);
/* Put @set in effect with full buckets. */
void blkif_limiter_set(struct blkif_limiter *l, const struct bk_ctl_limit *set, uint64_t now);
/* Refill to @now; true if one more request may be taken off the ring. */
bool blkif_limiter_may_take(struct blkif_limiter *l, uint64_t now);
/* Take @reqs requests and @bytes bytes out of the buckets. */
void blkif_limiter_charge(struct blkif_limiter *l, uint64_t reqs, uint64_t bytes);
/* Nanoseconds until the next request may be taken (0: now). */
uint64_t blkif_limiter_wait_ns(const struct blkif_limiter *l);
/* @q may not take now: count it as throttled and arm the device's timer (one per device). */
void blkif_throttle(struct blkif_queue *q);
/* A pass over @q that the rate limit did not hold back ends its throttled interval. */
void blkif_unthrottle(struct blkif_queue *q);
/* ops->set_limit. */
int blkif_set_limit(struct bk_device *dev, const struct bk_ctl_limit *want,
		    struct bk_ctl_limit *ret_now);

/* ring.c */
int blkif_rings_connect(struct blkif_dev *bd);
void blkif_rings_release(struct blkif_dev *bd);

/* io.c */
/* Admit a request re-issued from the journal: its raw copy and the entry that holds it. */
void blkif_queue_admit(struct blkif_queue *q, const void *raw, int jent);
void blkif_evtchn_cb(void *data, int fd, unsigned int events);
void blkif_hook_cb(void *data);
void blkif_backoff_cb(void *data);
void blkif_idle_cb(void *data);
void blkif_queue_run(struct blkif_queue *q);
void blkif_queue_kill(struct blkif_queue *q);
unsigned int blkif_dev_inflight(const struct blkif_dev *bd);
/* Requests taken and not yet answered, over all queues. */
unsigned int blkif_dev_busy(const struct blkif_dev *bd);

/* pool.c */
/*
 * Map a pool of @want pages, or of what bounce-pool-budget has left beyond @reserve pages (kept
 * for the pools the caller maps next) if that is less but at least @min pages (p->nr_pages says
 * which); -ENOBUFS when not even @min is left.
 */
int blkif_pool_init(struct blkif_pool *p, unsigned int want, unsigned int min,
		    unsigned int reserve);
/* Daemon-wide: bytes and number of pools mapped now, and the budget they share. */
uint64_t blkif_pool_bytes_in_use(void);
unsigned int blkif_pool_nr_in_use(void);
uint64_t blkif_pool_budget(void);
void blkif_pool_free(struct blkif_pool *p);
/* Give the pool's pages back to the kernel (every page free, not registered): they read as 0. */
void blkif_pool_drop(struct blkif_pool *p);
/* Contiguous pages; -ENOSPC when no run of @n pages is free now. */
int blkif_pool_get(struct blkif_pool *p, unsigned int n, uint32_t *ret_first);
void blkif_pool_put(struct blkif_pool *p, uint32_t first, unsigned int n);
int blkif_batch_init(struct blkif_copy_batch *b, unsigned int cap, unsigned int owners);
void blkif_batch_free(struct blkif_copy_batch *b);
/* Count @n mapped guest pages in the budget the pools share; false (nothing counted) if full. */
bool blkif_pool_charge(unsigned int n);
void blkif_pool_uncharge(unsigned int n);

/* pgnt.c */
/*
 * Serve @s (a validated read or write) straight on the guest's persistent grants: map its
 * grefs not mapped yet and point s->iovs at them. False: copy it (not negotiated, turned off
 * after a fault, over the bound, or the map failed).
 */
bool blkif_pgnt_use(struct blkif_queue *q, struct blkif_slot *s);
/*
 * Where @ref is mapped as one of @q's persistent grants, or NULL (not mapped, or none in use).
 * Blkfront takes its indirect pages from the same grants as its data pages, so after the first
 * requests most indirect descriptors can be read from the mapping instead of grant-copied.
 */
const uint8_t *blkif_pgnt_page(const struct blkif_queue *q, uint32_t ref);
/* Unmap every persistent grant of @q (nothing of it in flight); NULL-safe when none. */
void blkif_pgnt_release(struct blkif_queue *q);

#endif
