/* SPDX-License-Identifier: MIT */
/*
 * Backend devices and the xenbus lifecycle shared by every backend kind.
 *
 * The core (device.c) watches /local/domain/<self>/backend/<kind>/ for every registered
 * backend kind, coalesces watch storms, creates a struct bk_device when the toolstack writes a
 * device directory and destroys it when the directory goes away, the frontend vanishes, or
 * the toolstack asks for removal (online=0 with state Closing). It reads the frontend's state
 * (a hostile value), and calls the backend's ops; the backend drives its own xenbus state with
 * bk_device_set_state() and tells the core when its teardown is finished.
 */
#ifndef BK_DEVICE_H
#define BK_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/list.h"
#include "util/log.h"

struct bk_core;
struct bk_device;
struct bk_loop;
struct bk_xen;
struct bk_xs;
struct bk_queue_stats;
struct bk_ctl_limit;

/* Same numbering as xen/io/xenbus.h. */
enum bk_xenbus_state {
	BK_XB_UNKNOWN = 0,
	BK_XB_INITIALISING = 1,
	BK_XB_INITWAIT = 2,
	BK_XB_INITIALISED = 3,
	BK_XB_CONNECTED = 4,
	BK_XB_CLOSING = 5,
	BK_XB_CLOSED = 6,
	BK_XB_RECONFIGURING = 7,
	BK_XB_RECONFIGURED = 8,
};

const char *bk_xenbus_state_name(enum bk_xenbus_state s);

/*
 * A backend kind (blkif, netif). One static const table per module; optional hooks may be
 * NULL; new fields only at the end.
 */
struct bk_backend_ops {
	/* Xenstore directory name under backend/: "vbd", "vif". */
	const char *kind;
	/* Short name for logs and blanketctl: "vbd", "vif". */
	const char *log_name;
	/*
	 * A new device directory appeared. Allocate dev->priv, read the backend keys, write the
	 * features, and switch to InitWait. Return -errno to refuse the device (the core logs,
	 * writes the error node, and leaves it Closed). A failing probe frees what it allocated:
	 * the core calls neither shutdown nor remove for a refused device.
	 */
	int (*probe)(struct bk_device *dev);
	/*
	 * The frontend's state changed; @state is already validated as 0..8 (an unparsable value
	 * arrives as Closed). Not called while a shutdown the core started is in progress, nor
	 * once removal was requested. Frontend back to Initialising while the backend is Closed:
	 * the backend decides whether to go back to InitWait (a reconnect).
	 */
	void (*frontend_changed)(struct bk_device *dev, enum bk_xenbus_state state);
	/*
	 * A key in the backend directory changed (e.g. "hotplug-status", "params"); "state" and
	 * "online" are the core's. Each key at most once per batch. @key NULL: too many keys
	 * changed at once to name them, re-read whatever you care about. Optional.
	 */
	void (*backend_changed)(struct bk_device *dev, const char *key);
	/*
	 * Stop all I/O and release guest resources (rings, grants, event channels). May finish
	 * later: call bk_device_shutdown_done() once nothing is in flight. The core calls this
	 * before remove, and on frontend disappearance.
	 */
	void (*shutdown)(struct bk_device *dev);
	/* Free dev->priv. Nothing may be in flight. */
	void (*remove)(struct bk_device *dev);
	/*
	 * Optional: copy the per-queue counters (include/blanket/stats.h) into @qs[0..max) and
	 * return the number of queues the device has (may exceed @max).
	 */
	int (*get_stats)(struct bk_device *dev, struct bk_queue_stats *qs, unsigned int max);
	/*
	 * Optional: one line for `blanketctl list`: backing store, engine, negotiated features
	 * ("file=/img.raw engine=io_uring queues=4 ring-order=4 indirect=256 discard").
	 */
	int (*describe)(struct bk_device *dev, char *buf, size_t len);
	/*
	 * Optional, test-only (bk_core_abandon): the daemon is killed with @dev connected. Release
	 * what a dead process loses (grant mappings, event channels, engines: wait for the kernel
	 * to finish with our buffers) and free dev->priv, without answering the guest beyond
	 * @point (enum bk_abandon_point), writing xenstore, or discarding restart state (journals).
	 * remove is not called afterwards.
	 */
	void (*abandon)(struct bk_device *dev, unsigned int point);
	/*
	 * Optional: change the fields of the device's rate limits that @want->flags names
	 * (BK_CTL_LIMIT_*; none: only read them) and return those in effect in @ret_now.
	 * -ERANGE for a value out of range (nothing changed).
	 */
	int (*set_limit)(struct bk_device *dev, const struct bk_ctl_limit *want,
			 struct bk_ctl_limit *ret_now);
};

/* Where a simulated kill (bk_core_abandon) stops a backend on its way to answering the guest. */
enum bk_abandon_point {
	BK_ABANDON_NOW = 0,   /* finished requests stay unanswered */
	BK_ABANDON_ANSWERED,  /* their responses are written to the ring, not published */
	BK_ABANDON_PUBLISHED, /* ... and published (no notify), the journal not told */
};

/* Register a backend kind before bk_core_start(). */
int bk_core_register(struct bk_core *core, const struct bk_backend_ops *ops);

struct bk_device {
	struct bk_core *core;
	const struct bk_backend_ops *ops;
	struct list_head link;
	char name[48];		       /* "vbd 5/51712": use in every log line */
	uint32_t domid;		       /* frontend domain */
	uint32_t devid;		       /* handle under backend/<kind>/<domid>/ */
	char *be_path;		       /* /local/domain/<self>/backend/<kind>/<domid>/<devid> */
	char *fe_path;		       /* frontend directory, validated */
	enum bk_xenbus_state state;    /* what we last wrote to be_path/state */
	enum bk_xenbus_state fe_state; /* what we last read from fe_path/state */
	bool online;
	bool shutting_down;
	bool shutdown_complete;
	struct bk_ratelimit rl; /* for anything the guest can trigger */
	void *priv;		/* backend-private */
	/*
	 * The loop the device's I/O runs on (bk_device_loop), and its I/O thread's index (-1:
	 * the main loop). Set before probe, fixed for the device's life.
	 */
	struct bk_loop *loop;
	int thread;
};

/*
 * I/O threads (bk_core_params.io_threads). Every device of one frontend domain runs on one
 * loop: the main loop, or the I/O thread its domain was given (a new domain goes to the thread
 * with the fewest devices). Its watches, timers, hooks and engines live there. The core calls
 * the device's ops from the main thread with that loop locked (bk_loop_lock), so ops and the
 * device's own callbacks never run at once. From the device's callbacks a backend may call
 * bk_device_set_state, bk_device_fail, bk_device_shutdown_done, bk_device_write_be and the
 * xenstore reads (the core hands what concerns the main thread over to it), but nothing that
 * concerns other devices without a lock of its own.
 *
 * Accessors for what a backend needs from the core. The xenstore connection is the core's:
 * use it for reads and writes, not for watches of your own (the core ignores tokens it does
 * not know); backend keys arrive through ops->backend_changed.
 */
struct bk_loop *bk_device_loop(struct bk_device *dev);
struct bk_xen *bk_device_xen(struct bk_device *dev);
/*
 * Where @dev's in-flight journals live ("<state-directory>/inflight") in @buf: 0, or -ENOENT
 * when journals are off (no state directory; on the simulation unless one was set).
 */
int bk_device_journal_dir(struct bk_device *dev, char *buf, size_t len);
#define BK_JOURNAL_DIR_MAX 128 /* state-directory (107) + "/inflight" */
/*
 * The name of @dev's journal for queue @queue: "<kind>-<domid>-<devid>-q<queue>", with
 * "-<tag>" appended when @tag is set (netif: one per ring). The core parses the first three
 * fields back to sweep journals of devices that are gone: build names only here.
 */
int bk_device_journal_name(struct bk_device *dev, unsigned int queue, const char *tag, char *buf,
			   size_t len);
#define BK_JOURNAL_NAME_MAX 64
struct bk_xs *bk_device_xs(struct bk_device *dev);

/*
 * Write be_path/state and remember it. -ENOENT (nothing written) once the toolstack removed
 * the backend directory: a write there would recreate it. Going back to InitWait..Connected
 * after a finished shutdown (frontend back to Initialising) is a reconnect.
 */
int bk_device_set_state(struct bk_device *dev, enum bk_xenbus_state state);
/*
 * Fail the device (xenbus_dev_fatal): log "<name>: <msg>" once at error level, write
 * be_path/error ("<errno> <msg>"), and go Closing. The core then calls ops->shutdown from its
 * next batch (never from inside this call) and writes Closed when it is done. Never affects
 * another device. Returns -|err|.
 */
int bk_device_fail(struct bk_device *dev, int err, const char *fmt, ...) _printf_(3, 4);
/* The backend's asynchronous shutdown is finished (see ops->shutdown). */
void bk_device_shutdown_done(struct bk_device *dev);

/*
 * Move @dev to the I/O thread that runs @loop (e.g. where an L0 device its queues share with
 * other guests' disks is driven: bk_engine_loop_of). Only from an op (main thread, @dev's loop
 * locked) and with nothing of the backend's on its loop: free watches, timers and hooks first
 * and add them again on bk_device_loop() after. 0 (moved, or already there), -EINVAL when
 * @loop is not one of the core's I/O threads.
 */
int bk_device_move(struct bk_device *dev, struct bk_loop *loop);

/* Read a backend / frontend key; see bk_xs_read_* for parsing. */
int bk_device_read_be(struct bk_device *dev, const char *key, char **ret);
int bk_device_read_fe(struct bk_device *dev, const char *key, char **ret);
int bk_device_read_fe_u32(struct bk_device *dev, const char *key, uint32_t *ret);
/* Backend and frontend both say Connected before we wrote anything: a previous run's device. */
bool bk_device_left_connected(struct bk_device *dev);
/* The hotplug script's verdict: 1 hotplug-status=connected, -1 "error", 0 not yet (or else). */
int bk_device_hotplug_status(struct bk_device *dev);
/*
 * The frontend went back to Initialising: after Closed that is a reconnect, so say InitWait
 * again (true); in any other state nothing is done (false).
 */
bool bk_device_frontend_reset(struct bk_device *dev);
/* The frontend closes (or vanished): go Closing, unless already Closing or Closed. */
void bk_device_closing(struct bk_device *dev);
/* -ENOENT once the backend directory is gone (see bk_device_set_state). */
int bk_device_write_be(struct bk_device *dev, const char *key, const char *fmt, ...) _printf_(3, 4);

/*
 * Connecting a device's queues (device_ring.c): what blkif and netif both do. Every call that
 * fails has failed the device (bk_device_fail, naming the key or the queue) and returns -errno.
 */
struct bk_gnttab;
struct bk_evtchn;
struct bk_watch;
/* An optional frontend number: 0 if present and valid, 1 if absent (@ret untouched), -errno. */
int bk_device_read_fe_opt_u32(struct bk_device *dev, const char *key, uint32_t *ret);
/* The frontend's @prefix@key ("queue-1/" "event-channel"), which must be there. */
int bk_device_need_fe_u32(struct bk_device *dev, const char *prefix, const char *key,
			  uint32_t *ret);
/* multi-queue-num-queues (absent: 1), from 1 to @max. */
int bk_device_fe_nr_queues(struct bk_device *dev, unsigned int max, uint32_t *ret);
/*
 * Open the grant-table and event-channel handles and watch the channel's fd (@cb, @data): the
 * device's part of the platform. On failure nothing stays open (all three NULL).
 */
int bk_device_chan_open(struct bk_device *dev, void (*cb)(void *data, int fd, unsigned int events),
			void *data, struct bk_gnttab **gnt, struct bk_evtchn **evtchn,
			struct bk_watch **watch);
/* Close what bk_device_chan_open opened (NULL-safe) and clear the three pointers. */
void bk_device_chan_close(struct bk_gnttab **gnt, struct bk_evtchn **evtchn,
			  struct bk_watch **watch);
/* Map queue @qi's @n ring pages (grant refs from the frontend) read-write. */
int bk_device_map_ring(struct bk_device *dev, struct bk_gnttab *gnt, unsigned int qi,
		       const uint32_t *refs, unsigned int n, void **ret);
/* Bind queue @qi's port @remote (@what: "" or "RX " for the log line). */
int bk_device_bind_port(struct bk_device *dev, struct bk_evtchn *evtchn, unsigned int qi,
			const char *what, uint32_t remote, uint32_t *ret_local);

#define dev_err(dev, fmt, ...) bk_log_dev(BK_LOG_ERR, (dev)->name, fmt, ##__VA_ARGS__)
#define dev_warn(dev, fmt, ...) bk_log_dev(BK_LOG_WARNING, (dev)->name, fmt, ##__VA_ARGS__)
#define dev_info(dev, fmt, ...) bk_log_dev(BK_LOG_INFO, (dev)->name, fmt, ##__VA_ARGS__)
#define dev_debug(dev, fmt, ...) bk_log_dev(BK_LOG_DEBUG, (dev)->name, fmt, ##__VA_ARGS__)
/* Rate limited: for every message a guest can trigger. */
#define dev_err_rl(dev, fmt, ...) \
	bk_log_dev_rl(&(dev)->rl, BK_LOG_ERR, (dev)->name, fmt, ##__VA_ARGS__)
#define dev_warn_rl(dev, fmt, ...) \
	bk_log_dev_rl(&(dev)->rl, BK_LOG_WARNING, (dev)->name, fmt, ##__VA_ARGS__)

/*
 * The core: loop, platform, xenstore connection, registered kinds, live devices.
 */
/*
 * The periodic rescan makes at most about this many xenstore requests per loop turn (it
 * resumes at the next turn), so guests' I/O is never held up long by it, however many devices.
 */
#define BK_RESCAN_OPS_PER_TURN 64U

struct bk_core_params {
	struct bk_loop *loop;
	struct bk_xen *xen;
	/* Coalescing delay for xenstore watch storms, in ms (0: process at the next loop turn). */
	unsigned int watch_coalesce_ms;
	/*
	 * Period of a full re-check of every backend directory and frontend state, in ms: the
	 * safety net for watch events lost when a connection's event queue overflowed (a guest
	 * storming its own nodes can push out the toolstack's events). 0: 30000; UINT_MAX: never.
	 * Each rescan is spread over loop turns (BK_RESCAN_OPS_PER_TURN).
	 */
	unsigned int rescan_ms;
	/* I/O threads, each with its own loop; 0: every device on @loop. */
	unsigned int io_threads;
};

int bk_core_new(const struct bk_core_params *p, struct bk_core **ret);
/* Arm the watches on backend/<kind>/ for every registered kind and pick up existing devices. */
int bk_core_start(struct bk_core *core);
/*
 * Remove the in-flight journals in @dir whose device is gone: a journal is a regular file named
 * "<kind>-<domid>-<devid>-<queue>" (kind a registered kind, ids canonical decimal), and its
 * device is gone when backend/<kind>/<domid>/<devid> of this domain does not exist (removed
 * while no daemon ran: nothing else would ever delete the file). Journals of devices that exist
 * stay, whatever their state (the device may be adopted), and so does every file it cannot
 * attribute or whose device it cannot check. Logs each removal. Call before bk_core_start().
 * Returns the number removed, or -errno when @dir cannot be read (a missing @dir is 0).
 */
int bk_core_sweep_journals(struct bk_core *core, const char *dir);
/*
 * Shut every device down (ops->shutdown, then ops->remove); @done runs once all finished (may
 * be synchronous). Xenstore states are left as they are, so a restarted daemon can pick the
 * devices up again.
 */
void bk_core_stop(struct bk_core *core, void (*done)(void *data), void *data);
/* NULL-safe; devices must be gone (after bk_core_stop completed). */
void bk_core_free(struct bk_core *core);

unsigned int bk_core_nr_devices(const struct bk_core *core);
/*
 * Find a live device; NULL if none. Devices the core refused (bad frontend path, failed
 * probe) are kept out of sight until their directory goes: neither found nor listed.
 */
struct bk_device *bk_core_find(struct bk_core *core, const char *kind, uint32_t domid,
			       uint32_t devid);
/* Iterate: the list of live devices (struct bk_device.link). */
struct list_head *bk_core_devices(struct bk_core *core);
uint32_t bk_core_domid(const struct bk_core *core);
/* Number of I/O threads (0: none, all on the main loop). */
unsigned int bk_core_nr_threads(const struct bk_core *core);
/*
 * From the main thread: stop every I/O thread between callbacks (in index order) until
 * bk_core_unlock_all; e.g. to read every device's state for the control socket. Not recursive.
 */
void bk_core_lock_all(struct bk_core *core);
void bk_core_unlock_all(struct bk_core *core);
/*
 * True once bk_core_stop() began: the daemon is going away, not the device. Backends then hand
 * their devices over (drain, keep the guest connected) instead of disconnecting the guest.
 */
bool bk_core_stopping(const struct bk_core *core);
/*
 * Test-only: simulate SIGKILL of the daemon in-process. Every device is freed at once through
 * ops->abandon (@point: enum bk_abandon_point); a backend without abandon gets remove, which
 * assumes nothing is in flight. Nothing is written to xenstore. Only bk_core_free() may follow.
 */
void bk_core_abandon(struct bk_core *core, unsigned int point);

#endif
