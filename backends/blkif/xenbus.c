// SPDX-License-Identifier: MIT
/*
 * The blkif xenbus state machine: probe (libxl's keys, features, InitWait), the backing store
 * once the hotplug script ran, connect when the frontend is Initialised or Connected,
 * Closing/Closed, reconnect when the frontend goes back to Initialising, and a disconnect that
 * waits for in-flight I/O to drain before anything guest-visible is released.
 *
 * hotplug-status gates the store, as physical-device gates Linux blkback: libxl runs the
 * hotplug script once we are in InitWait, and the script checks the target, writes the
 * per-device settings (blanket-* keys) and physical-device-path, then hotplug-status=connected
 * (scripts/blanket-hotplug). So probe reads only libxl's own keys, writes the features that need
 * no store and goes InitWait at once; when hotplug-status=connected appears (backend_changed)
 * the settings are read, the store opened and its keys (size, info, discard) written
 * (settings.c), and a frontend that is already Initialised is connected. "error" or anything
 * else keeps the device unconnected (libxl then removes it). A device found with hotplug-status
 * already connected (a previous run's, or one the script finished before we started) has its
 * store opened at probe. The simulated toolstack plays the script (bk_ts_attach).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loop.h"

static void bd_free(struct blkif_dev *bd)
{
	if (!bd)
		return;
	bk_hook_free(bd->hook);
	bk_timer_free(bd->throttle);
	blkif_share_unwait(bd);
	bk_timer_free(bd->share_timer);
	bk_async_free(bd->share_wake);
	blkif_close_backing(bd);
	free(bd->params);
	free(bd->engine_opts);
	free(bd->stats);
	free(bd);
}

int blkif_probe(struct bk_device *dev)
{
	struct blkif_dev *bd = calloc(1, sizeof(*bd));
	char why[256];
	int r;

	if (!bd)
		return -ENOMEM;
	bd->dev = dev;
	r = blkif_read_identity(bd, why, sizeof(why));
	if (r < 0) {
		log_err_errno(r, "%s: %s", dev->name, why);
		goto fail;
	}
	bd->stats = calloc(bd->offered_queues, sizeof(*bd->stats));
	if (!bd->stats) {
		r = -ENOMEM;
		goto fail;
	}
	r = bk_loop_add_hook(bk_device_loop(dev), blkif_hook_cb, bd, &bd->hook);
	if (r < 0)
		goto fail;

	r = blkif_write_probe_features(bd);
	if (r < 0) {
		log_err_errno(r, "%s: writing features: %m", dev->name);
		goto fail;
	}
	/* Known before the store opens: an adopted device's guest already has its image. */
	bd->adopting = bk_device_left_connected(dev);
	/* The script ran before we saw the device (a previous run's, or we started late). */
	if (bk_device_hotplug_status(bd->dev) > 0) {
		r = blkif_open_backing(bd, why, sizeof(why));
		if (r < 0 && r != -EAGAIN) { /* EAGAIN: waiting for the image (share.c) */
			log_err_errno(r, "%s: %s", dev->name, why);
			goto fail;
		}
	}
	dev->priv = bd;
	if (bd->adopting) {
		/*
		 * A previous run of the daemon served this device and handed it over (or died):
		 * the guest is still Connected and must not notice. Stay Connected in xenstore;
		 * connect() re-maps the rings and resumes from the in-flight journal.
		 */
		dev->state = BK_XB_INITWAIT;
		dev_info(dev, "taking over a device a previous run left Connected");
	} else {
		r = bk_device_set_state(dev, BK_XB_INITWAIT);
		if (r < 0) {
			dev->priv = NULL;
			goto fail;
		}
	}
	if (!bd->store)
		dev_info(dev, "%s%s, waiting for the hotplug script", bd->cdrom ? "cdrom, " : "",
			 bd->readonly ? "ro" : "rw");
	return 0;
fail:
	bd_free(bd);
	return r;
}

/*
 * The store is open, or hotplug-status=connected is there and it opens now (the key may have
 * appeared while the device was Closed: a frontend that reconnects later finds it here). A bad
 * setting or a store that does not open fails the device. Only called in InitWait.
 */
static bool backing_ready(struct blkif_dev *bd)
{
	char why[256];
	int r;

	if (bd->store)
		return true;
	if (bk_device_hotplug_status(bd->dev) <= 0)
		return false;
	r = blkif_open_backing(bd, why, sizeof(why));
	if (r == -EAGAIN)
		return false; /* the image's previous holder is going away: share.c calls back */
	if (r < 0) {
		bk_device_fail(bd->dev, r, "%s", why); /* logs it; the core shuts the device down */
		return false;
	}
	return true;
}

/*
 * An engine device several guests' disks share (an L0 virtio-blk device) is driven from one I/O
 * thread: a disk whose first queue would open it from another thread goes there first, taking
 * its hook along (nothing else of it is on its loop before the rings connect; timers of an
 * earlier connection go, they are made again when needed).
 */
static int follow_engine(struct blkif_dev *bd)
{
	struct bk_loop *want = bk_engine_loop_of(bd->engine_name, bd->engine_opts);
	struct bk_device *dev = bd->dev;
	int r;

	if (!want || want == bk_device_loop(dev))
		return 0;
	bk_hook_free(bd->hook);
	bd->hook = NULL;
	bk_timer_free(bd->throttle);
	bd->throttle = NULL;
	bk_timer_free(bd->share_timer);
	bd->share_timer = NULL;
	bk_async_free(bd->share_wake);
	bd->share_wake = NULL;
	r = bk_device_move(dev, want);
	if (r < 0)
		dev_warn(dev, "cannot move to the I/O thread that drives %s: %s", bd->params,
			 strerror(-r));
	r = bk_loop_add_hook(bk_device_loop(dev), blkif_hook_cb, bd, &bd->hook);
	if (r < 0)
		return bk_device_fail(dev, r, "loop hook: %s", strerror(-r));
	return 0;
}

static void connect(struct blkif_dev *bd)
{
	struct bk_device *dev = bd->dev;

	if (bd->connected || bd->draining)
		return;
	if (!backing_ready(bd)) {
		if (dev->state != BK_XB_INITWAIT || bd->share_waiting)
			return; /* it just failed, or waits for its image (logged) */
		if (!bd->waiting_hotplug)
			dev_info(dev, "frontend ready, waiting for the hotplug script");
		bd->waiting_hotplug = true;
		return;
	}
	bd->waiting_hotplug = false;
	if (follow_engine(bd) < 0 || blkif_rings_connect(bd) < 0)
		return; /* failed with a log line; the core shuts the device down */
	blkif_vblk_limits(bd);
	/* The size may have changed since probe (a resized image). */
	bk_device_write_be(dev, "sectors", "%llu", (unsigned long long)bd->lim.nr_sectors);
	bk_device_set_state(dev, BK_XB_CONNECTED);
	bd->adopting = false;
	dev_info(dev, "connected: %u queue(s), ring order %u, %s%s", bd->nr_queues, bd->ring_order,
		 blkif_abi_name(bd->abi), bd->persistent ? ", persistent grants" : "");
	/* Requests may already be waiting (the frontend filled the ring before Connected). */
	for (unsigned int i = 0; i < bd->nr_queues; i++)
		blkif_queue_run(&bd->queues[i]);
	bk_hook_enable(bd->hook, true);
}

static void run_after(struct blkif_dev *bd)
{
	unsigned int after = bd->after;

	bd->after = 0;
	if (after & BLKIF_AFTER_SHUTDOWN) {
		/* Torn down (removed, failed, guest gone): the image is free for other guests. */
		blkif_close_backing(bd);
		bk_device_shutdown_done(bd->dev);
		return;
	}
	if (after & BLKIF_AFTER_CLOSED)
		bk_device_set_state(bd->dev, BK_XB_CLOSED);
	if (after & BLKIF_AFTER_INITWAIT)
		bk_device_set_state(bd->dev, BK_XB_INITWAIT);
}

void blkif_finish_disconnect(struct blkif_dev *bd)
{
	blkif_rings_release(bd);
	bd->draining = false;
	run_after(bd);
}

void blkif_start_disconnect(struct blkif_dev *bd, unsigned int after, bool may_finish_now)
{
	bd->after |= after;
	if (bd->draining)
		return;
	if (!bd->connected) {
		run_after(bd);
		return;
	}
	bd->draining = true;
	for (unsigned int i = 0; i < bd->nr_queues; i++)
		blkif_queue_kill(&bd->queues[i]);
	if (may_finish_now && blkif_dev_inflight(bd) == 0)
		blkif_finish_disconnect(bd);
	else
		bk_hook_enable(bd->hook, true); /* finishes there once the engines drained */
}

void blkif_frontend_changed(struct bk_device *dev, enum bk_xenbus_state state)
{
	struct blkif_dev *bd = blkif_of(dev);

	switch (state) {
	case BK_XB_INITIALISING:
		if (!bk_device_frontend_reset(dev) && bd->draining)
			bd->after |= BLKIF_AFTER_INITWAIT;
		break;
	case BK_XB_INITIALISED:
	case BK_XB_CONNECTED:
		if (dev->state == BK_XB_INITWAIT)
			connect(bd);
		break;
	case BK_XB_CLOSING:
		bk_device_closing(dev);
		break;
	case BK_XB_CLOSED:
	case BK_XB_UNKNOWN:
		bk_device_closing(dev);
		blkif_start_disconnect(bd, BLKIF_AFTER_CLOSED, true);
		break;
	default:
		break;
	}
}

void blkif_backend_changed(struct bk_device *dev, const char *key)
{
	struct blkif_dev *bd = blkif_of(dev);

	if (key && strcmp(key, "hotplug-status"))
		return;
	if (dev->state != BK_XB_INITWAIT)
		return; /* a frontend that comes back later opens the store in connect() */
	if (dev->fe_state == BK_XB_INITIALISED || dev->fe_state == BK_XB_CONNECTED)
		connect(bd);
	else
		backing_ready(bd); /* open now: the size is published before the frontend looks */
}

void blkif_shutdown(struct bk_device *dev)
{
	struct blkif_dev *bd = blkif_of(dev);

	if (!bd) {
		bk_device_shutdown_done(dev);
		return;
	}
	if (bk_core_stopping(dev->core) && bd->connected && !bd->draining) {
		blkif_start_handover(bd);
		return;
	}
	bd->after &= ~(unsigned int)(BLKIF_AFTER_CLOSED | BLKIF_AFTER_INITWAIT);
	blkif_share_leaving(bd); /* a disk waiting for its image may now wait for it */
	blkif_start_disconnect(bd, BLKIF_AFTER_SHUTDOWN, true);
}

void blkif_start_handover(struct blkif_dev *bd)
{
	dev_info(bd->dev, "daemon stopping: answering %u request(s) in flight, then handing over",
		 blkif_dev_busy(bd));
	bd->handover = true;
	if (blkif_dev_busy(bd) == 0)
		blkif_finish_handover(bd);
	else
		bk_hook_enable(bd->hook, true); /* finishes there once every request is answered */
}

void blkif_finish_handover(struct blkif_dev *bd)
{
	/* Responses are pushed by the hook; the journal stays for the next run. */
	blkif_rings_release(bd);
	bd->handover = false;
	dev_info(bd->dev, "handed over: the guest stays connected for the next run");
	bk_device_shutdown_done(bd->dev);
}

void blkif_remove(struct bk_device *dev)
{
	struct blkif_dev *bd = blkif_of(dev);

	if (!bd)
		return;
	if (bd->connected)
		blkif_rings_release(bd); /* the core says nothing is in flight */
	bd_free(bd);
	dev->priv = NULL;
}
