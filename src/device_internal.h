/* SPDX-License-Identifier: MIT */
/*
 * Private to device.c (one device: creation, processing, removal) and device_core.c (the core:
 * watches, the coalescing dirty set, batches). Nothing outside src/device*.c includes this.
 */
#ifndef BK_DEVICE_INTERNAL_H
#define BK_DEVICE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "loop.h"
#include "xen/xen.h"

#define BK_CORE_MAX_KINDS 4U
/* Distinct backend keys remembered per device per batch; more means "re-read everything". */
#define BK_DEV_MAX_KEYS 8U
#define BK_DEV_KEY_LEN 40U
#define BK_HASH_SIZE 1024U /* power of two */
/* Bound on not-yet-created devices queued in one batch; beyond it the kind is rescanned. */
#define BK_PENDING_MAX 4096U
/* Pending entry meaning "scan backend/<kind>/<domid>/". */
#define BK_DEVID_ANY UINT32_MAX
/* First reserved domid (DOMID_FIRST_RESERVED): no frontend can have a larger one. */
#define BK_DOMID_MAX 0x7FEFU
#define BK_RESCAN_MS_DEFAULT 30000U
/* Xenstore requests the rescan counts for re-checking one device (bk_dev_process, idle). */
#define BK_RESCAN_DEV_OPS 4U

enum {
	BK_DIRTY_BE = 1 << 0, /* something under be_path changed */
	BK_DIRTY_FE = 1 << 1, /* the frontend's state changed (or must be re-read) */
};

struct bk_hnode {
	struct bk_hnode *next;
	uint64_t key;
};

static inline uint64_t bk_dev_key(unsigned int kind, uint32_t domid, uint32_t devid)
{
	return ((uint64_t)kind << 48) | ((uint64_t)(domid & 0xFFFFU) << 32) | devid;
}

/* The core's view of a device; struct bk_device is the part backends see. */
struct bk_dev_priv {
	struct bk_device pub;
	struct bk_hnode hnode;
	struct list_head dirty_link; /* in core->dirty while dirty_flags != 0 */
	struct list_head sweep_link; /* in core->sweep.devs while the rescan has it to re-check */
	unsigned int dirty_flags;
	unsigned int nr_keys;
	bool keys_overflow;
	char keys[BK_DEV_MAX_KEYS][BK_DEV_KEY_LEN];
	unsigned int kind;
	char *fe_state_path;
	char *fe_token;
	bool fe_watched;
	bool active;	  /* probe succeeded and remove not yet called */
	bool zombie;	  /* refused: kept (Closed, no ops) so events do not re-probe it */
	bool be_gone;	  /* backend directory removed: never write there again */
	bool removing;	  /* toolstack asked for removal (online=0) */
	bool fe_seen;	  /* the frontend's state was readable once */
	bool fe_vanished; /* the frontend's directory is gone */
	bool want_shutdown;
	bool failed; /* bk_device_fail was called */
	/* Marked dirty from its I/O thread: in core->remote (under core->remote_lock). */
	struct list_head remote_link;
	unsigned int remote_flags;
};

struct bk_pending {
	struct bk_hnode hnode;
	struct list_head link;
};

/* Failing directories the core remembers having logged; more share the rate limit. */
#define BK_LIST_FAIL_MAX 16

struct bk_kind {
	const struct bk_backend_ops *ops;
	char *path;  /* /local/domain/<self>/backend/<kind> */
	char *token; /* "be:<index>" */
	bool watched;
	bool rescan;
};

/*
 * A rescan of one kind in progress, a slice of at most BK_RESCAN_OPS_PER_TURN requests per loop
 * turn: list backend/<kind>, list each domain's directory (creating what is unknown), then mark
 * every device that existed when it began dirty, a few per turn.
 */
struct bk_sweep {
	int kind; /* -1: none in progress */
	bool listed;
	uint32_t *domids; /* from the listing */
	unsigned int nr_domids, next_domid;
	struct list_head devs; /* struct bk_dev_priv.sweep_link: still to re-check */
};

struct bk_io_thread {
	struct bk_loop *loop;
	unsigned int nr_devices; /* placed on it (main thread only) */
};

struct bk_core {
	struct bk_loop *loop;
	/* I/O threads; devices dirtied from them wait in @remote for the main loop's @remote_async.
	 */
	struct bk_io_thread *threads;
	unsigned int nr_threads;
	pthread_mutex_t remote_lock;
	struct list_head remote; /* struct bk_dev_priv.remote_link */
	struct bk_async *remote_async;
	/* During an op: the loop the core holds locked for it (its device's, after a move too). */
	struct bk_loop *op_loop;
	struct bk_xen *xen;
	struct bk_xs *xs;
	uint32_t domid;
	unsigned int coalesce_ms;
	struct bk_watch *xs_watch;
	struct bk_timer *timer;
	struct bk_timer *rescan_timer; /* NULL: no periodic rescan */
	unsigned int rescan_ms;
	struct bk_kind kinds[BK_CORE_MAX_KINDS];
	unsigned int nr_kinds;
	struct bk_hnode *devs[BK_HASH_SIZE];
	struct bk_hnode *pend[BK_HASH_SIZE];
	struct list_head devices; /* live (probed) devices: struct bk_device.link */
	struct list_head zombies; /* refused devices: struct bk_device.link */
	struct list_head dirty;	  /* struct bk_dev_priv.dirty_link */
	struct list_head pending; /* struct bk_pending.link */
	unsigned int nr_devices;
	unsigned int nr_pending;
	bool started;
	bool stopping;
	bool no_domctl; /* domain_alive refused (-EPERM, a driver domain): xenstore decides */
	void (*stop_done)(void *data);
	void *stop_data;
	struct bk_ratelimit rl;
	struct bk_sweep sweep;
	/* Listings that failed and were logged (core_list): said once, not per rescan. */
	struct bk_list_fail {
		char *path; /* NULL: a free slot */
		int err;
		uint64_t logged_ns;
	} list_fail[BK_LIST_FAIL_MAX];
};

static inline struct bk_dev_priv *bk_dev_priv(struct bk_device *dev)
{
	return container_of(dev, struct bk_dev_priv, pub);
}

/* device_core.c */
void bk_hash_add(struct bk_hnode **tab, struct bk_hnode *n);
void bk_hash_del(struct bk_hnode **tab, struct bk_hnode *n);
struct bk_hnode *bk_hash_find(struct bk_hnode *const *tab, uint64_t key);
/* Queue @p for the next batch with @flags (BK_DIRTY_*). */
void bk_core_mark_dirty(struct bk_dev_priv *p, unsigned int flags);
/* Queue a creation attempt for a device that has no object yet. */
void bk_core_queue_create(struct bk_core *core, unsigned int kind, uint32_t domid, uint32_t devid);

/* device.c */
/* Try to create (and probe) backend/<kind>/<domid>/<devid>; quietly nothing if not ready. */
void bk_dev_create(struct bk_core *core, unsigned int kind, uint32_t domid, uint32_t devid);
/* Re-read what changed and act on it; may destroy @p. */
void bk_dev_process(struct bk_dev_priv *p, unsigned int flags);
/* Unwatch, ops->remove if probed, unlink, free. The caller holds the device's loop locked. */
void bk_dev_destroy(struct bk_dev_priv *p);
/*
 * Lock / unlock the device's loop from the main thread around an op (no-op on the main loop);
 * the unlock releases the loop the device is on by then (bk_device_move may change it).
 */
void bk_dev_lock(struct bk_dev_priv *p);
void bk_dev_unlock(struct bk_dev_priv *p);
/* Remember a changed backend key for backend_changed (NULL: unknown). */
void bk_dev_note_key(struct bk_dev_priv *p, const char *key, size_t len);

#endif
