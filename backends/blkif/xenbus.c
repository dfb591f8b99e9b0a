// SPDX-License-Identifier: MIT
/*
 * The blkif xenbus state machine: probe (backend keys, backing store, features, InitWait),
 * connect when the frontend is Initialised or Connected, Closing/Closed, reconnect when the
 * frontend goes back to Initialising, and a disconnect that waits for in-flight I/O to drain
 * before anything guest-visible is released.
 *
 * hotplug-status gates the connect, as physical-device gates Linux blkback: libxl runs the
 * hotplug script once we are in InitWait, and the script checks the target and writes
 * hotplug-status=connected (scripts/blanket-hotplug). A frontend that is Initialised before
 * that waits in InitWait until the key appears (backend_changed); "error" or anything else
 * keeps the device unconnected (libxl then removes it). The simulated toolstack plays the
 * script (bk_ts_attach). The store itself is opened at probe from params, so the features
 * and the size are known before the frontend looks; per-device blanket-* keys are read at
 * probe too, so the toolstack or script must write them when it creates the device.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loop.h"

static int read_be_opt(struct bk_device *dev, const char *key, char **ret)
{
	int r = bk_device_read_be(dev, key, ret);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	return r;
}

/* The per-device settings from the backend directory; every value checked. */
static int read_settings(struct blkif_dev *bd)
{
	const struct bk_config *cfg = bk_config_current();
	struct bk_device *dev = bd->dev;
	_cleanup_free_ char *mode = NULL, *type = NULL, *engine = NULL, *queues = NULL;
	_cleanup_free_ char *cache = NULL, *discard = NULL;
	char why[128];
	uint64_t v;
	int r;

	r = bk_device_read_be(dev, "params", &bd->params);
	if (r < 0 || !bd->params[0])
		return log_err_errno(r < 0 ? r : -EINVAL, "%s: no backing path in params",
				     dev->name);
	/* "raw:/path", "aio:/path" as older toolstacks wrote: the path is what counts. */
	if (bd->params[0] != '/' && strchr(bd->params, ':'))
		memmove(bd->params, strchr(bd->params, ':') + 1,
			strlen(strchr(bd->params, ':') + 1) + 1);
	r = bk_device_read_be(dev, "mode", &mode);
	if (r < 0)
		return log_err_errno(r, "%s: reading mode: %m", dev->name);
	if (!strcmp(mode, "r"))
		bd->readonly = true;
	else if (strcmp(mode, "w"))
		return log_err_errno(-EINVAL, "%s: mode '%.16s' is neither r nor w", dev->name,
				     mode);
	r = read_be_opt(dev, "device-type", &type);
	if (r < 0)
		return log_err_errno(r, "%s: reading device-type: %m", dev->name);
	if (type && !strcmp(type, "cdrom"))
		bd->cdrom = bd->readonly = true;
	else if (type && strcmp(type, "disk"))
		return log_err_errno(-EINVAL, "%s: device-type '%.16s' is neither disk nor cdrom",
				     dev->name, type);

	snprintf(bd->engine_name, sizeof(bd->engine_name), "%s", cfg->engine);
	bd->max_queues = cfg->queues;
	bd->max_order = BK_MIN(cfg->max_ring_page_order, BLKIF_MAX_RING_ORDER);
	bd->max_indirect = BK_MIN(cfg->max_indirect_segments, BLKIF_MAX_INDIRECT_SEGS);
	bd->discard_enabled = true;
	bd->cache = BK_CACHE_NONE;

	if ((r = read_be_opt(dev, BK_XS_ENGINE, &engine)) < 0 ||
	    (r = read_be_opt(dev, BK_XS_QUEUES, &queues)) < 0 ||
	    (r = read_be_opt(dev, BK_XS_CACHE, &cache)) < 0 ||
	    (r = read_be_opt(dev, BK_XS_DISCARD, &discard)) < 0 ||
	    (r = read_be_opt(dev, BK_XS_OPTIONS, &bd->engine_opts)) < 0)
		return log_err_errno(r, "%s: reading blanket-* settings: %m", dev->name);
	if (engine) {
		if (strlen(engine) >= sizeof(bd->engine_name) || !bk_engine_find(engine))
			return log_err_errno(-EINVAL, "%s: %s '%.16s' is not one of %s", dev->name,
					     BK_XS_ENGINE, engine, bk_engine_names());
		snprintf(bd->engine_name, sizeof(bd->engine_name), "%s", engine);
	}
	if (queues) {
		if (bk_parse_uint(queues, 1, cfg->queues, &v, why, sizeof(why)) < 0)
			return log_err_errno(-EINVAL, "%s: %s: %s", dev->name, BK_XS_QUEUES, why);
		bd->max_queues = (unsigned int)v;
	}
	if (cache && bk_parse_cache_mode(cache, &bd->cache, why, sizeof(why)) < 0)
		return log_err_errno(-EINVAL, "%s: %s: %s", dev->name, BK_XS_CACHE, why);
	if (discard && bk_parse_bool(discard, &bd->discard_enabled, why, sizeof(why)) < 0)
		return log_err_errno(-EINVAL, "%s: %s: %s", dev->name, BK_XS_DISCARD, why);

	/* A pool that holds at least one largest request, or we could never make progress. */
	bd->pool_pages = (unsigned int)BK_MIN(cfg->bounce_pool_size / BK_PAGE_SIZE, 1U << 18);
	bd->pool_pages = BK_MAX(bd->pool_pages, BK_MAX(bd->max_indirect, 11U));
	return 0;
}

static int write_features(struct blkif_dev *bd)
{
	struct bk_device *dev = bd->dev;
	const struct bk_store *s = bd->store;
	int r = 0;

	r |= bk_device_write_be(dev, "feature-flush-cache", "1");
	r |= bk_device_write_be(dev, "feature-barrier", "1");
	r |= bk_device_write_be(dev, "feature-discard", "%d", bd->lim.discard ? 1 : 0);
	if (bd->lim.discard) {
		r |= bk_device_write_be(dev, "discard-granularity", "%u",
					BK_MAX(s->discard_granularity, BLKIF_SECTOR_SIZE));
		r |= bk_device_write_be(dev, "discard-alignment", "%u", s->discard_alignment);
		r |= bk_device_write_be(dev, "discard-secure", "0");
	}
	r |= bk_device_write_be(dev, "feature-persistent", "1");
	if (bd->max_indirect >= BLKIF_MAX_SEGMENTS_PER_REQUEST)
		r |= bk_device_write_be(dev, "feature-max-indirect-segments", "%u",
					bd->max_indirect);
	r |= bk_device_write_be(dev, "multi-queue-max-queues", "%u", bd->max_queues);
	r |= bk_device_write_be(dev, "max-ring-page-order", "%u", bd->max_order);
	r |= bk_device_write_be(dev, "sector-size", "%u", BLKIF_SECTOR_SIZE);
	r |= bk_device_write_be(dev, "physical-sector-size", "%u",
				BK_MAX(s->physical_block, BLKIF_SECTOR_SIZE));
	r |= bk_device_write_be(dev, "info", "%u", bd->info);
	r |= bk_device_write_be(dev, "sectors", "%llu", (unsigned long long)bd->lim.nr_sectors);
	return r < 0 ? -EIO : 0;
}

static void bd_free(struct blkif_dev *bd)
{
	if (!bd)
		return;
	bk_hook_free(bd->hook);
	bk_timer_free(bd->resched);
	bk_store_close(bd->store);
	free(bd->params);
	free(bd->engine_opts);
	free(bd->stats);
	free(bd);
}

/* Backend and frontend both say Connected before we wrote anything: a previous run's device. */
static bool left_connected(struct bk_device *dev)
{
	_cleanup_free_ char *be = NULL, *fe = NULL;

	return bk_device_read_be(dev, "state", &be) == 0 && !strcmp(be, "4") &&
	       bk_device_read_fe(dev, "state", &fe) == 0 && !strcmp(fe, "4");
}

int blkif_probe(struct bk_device *dev)
{
	struct blkif_dev *bd = calloc(1, sizeof(*bd));
	struct bk_store_params sp = { 0 };
	int r;

	if (!bd)
		return -ENOMEM;
	bd->dev = dev;
	r = read_settings(bd);
	if (r < 0)
		goto fail;
	bd->stats = calloc(bd->max_queues, sizeof(*bd->stats));
	if (!bd->stats) {
		r = -ENOMEM;
		goto fail;
	}
	sp.readonly = bd->readonly;
	sp.want_direct = bd->cache == BK_CACHE_NONE;
	r = bk_store_open(bd->params, &sp, &bd->store);
	if (r < 0) {
		log_err_errno(r, "%s: opening %s: %m", dev->name, bd->params);
		goto fail;
	}
	/*
	 * blkfront speaks 512-byte sectors (sector-size stays 512 for frontends without
	 * feature-large-sector-size), so O_DIRECT on a 4Kn store would refuse sub-block I/O:
	 * go through the page cache instead, and tell the guest the physical size.
	 */
	if (bd->store->direct && bd->store->logical_block > BLKIF_SECTOR_SIZE) {
		dev_info(dev, "%s has %u-byte logical blocks: not using O_DIRECT", bd->params,
			 bd->store->logical_block);
		bk_store_close(bd->store);
		bd->store = NULL;
		sp.want_direct = false;
		r = bk_store_open(bd->params, &sp, &bd->store);
		if (r < 0) {
			log_err_errno(r, "%s: opening %s: %m", dev->name, bd->params);
			goto fail;
		}
	}
	bd->lim.nr_sectors = bd->store->size >> BLKIF_SECTOR_SHIFT;
	bd->lim.readonly = bd->readonly || bd->store->readonly;
	bd->lim.discard = bd->discard_enabled && bd->store->discard && !bd->lim.readonly;
	bd->lim.flush = true;
	bd->lim.barrier = true;
	bd->lim.max_indirect_segs = (uint16_t)bd->max_indirect;
	bd->info = (uint16_t)((bd->lim.readonly ? VDISK_READONLY : 0) |
			      (bd->cdrom ? VDISK_CDROM | VDISK_REMOVABLE : 0));

	r = bk_loop_add_hook(bk_device_loop(dev), blkif_hook_cb, bd, &bd->hook);
	if (r < 0)
		goto fail;
	r = bk_loop_add_timer(bk_device_loop(dev), 0, 0, blkif_resched_cb, bd, &bd->resched);
	if (r < 0)
		goto fail;
	bk_timer_stop(bd->resched);

	r = write_features(bd);
	if (r < 0) {
		log_err_errno(r, "%s: writing features: %m", dev->name);
		goto fail;
	}
	dev->priv = bd;
	if (left_connected(dev)) {
		/*
		 * A previous run of the daemon served this device and handed it over (or died):
		 * the guest is still Connected and must not notice. Stay Connected in xenstore;
		 * connect() re-maps the rings and resumes from the in-flight journal.
		 */
		bd->adopting = true;
		dev->state = BK_XB_INITWAIT;
		dev_info(dev, "taking over a device a previous run left Connected");
	} else {
		r = bk_device_set_state(dev, BK_XB_INITWAIT);
		if (r < 0) {
			dev->priv = NULL;
			goto fail;
		}
	}
	dev_info(dev, "%s (%s%s, %llu sectors), engine %s", bd->params, bd->cdrom ? "cdrom, " : "",
		 bd->lim.readonly ? "ro" : "rw", (unsigned long long)bd->lim.nr_sectors,
		 bd->engine_name);
	return 0;
fail:
	bd_free(bd);
	return r;
}

static bool hotplug_done(struct blkif_dev *bd)
{
	_cleanup_free_ char *v = NULL;

	return bk_device_read_be(bd->dev, "hotplug-status", &v) == 0 && !strcmp(v, "connected");
}

static void connect(struct blkif_dev *bd)
{
	struct bk_device *dev = bd->dev;

	if (bd->connected || bd->draining)
		return;
	if (!hotplug_done(bd)) {
		if (!bd->waiting_hotplug)
			dev_info(dev, "frontend ready, waiting for the hotplug script");
		bd->waiting_hotplug = true;
		return;
	}
	bd->waiting_hotplug = false;
	if (blkif_rings_connect(bd) < 0)
		return; /* failed with a log line; the core shuts the device down */
	/* The size may have changed since probe (a resized image). */
	bk_device_write_be(dev, "sectors", "%llu", (unsigned long long)bd->lim.nr_sectors);
	bk_device_set_state(dev, BK_XB_CONNECTED);
	bd->adopting = false;
	dev_info(dev, "connected: %u queue(s), ring order %u, %s%s", bd->nr_queues, bd->ring_order,
		 blkif_abi_name(bd->abi), bd->persistent ? ", persistent" : "");
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
		if (dev->state == BK_XB_CLOSED) {
			dev_info(dev, "frontend reset: waiting for it to reconnect");
			bk_device_set_state(dev, BK_XB_INITWAIT);
		} else if (bd->draining) {
			bd->after |= BLKIF_AFTER_INITWAIT;
		}
		break;
	case BK_XB_INITIALISED:
	case BK_XB_CONNECTED:
		if (dev->state == BK_XB_INITWAIT)
			connect(bd);
		break;
	case BK_XB_CLOSING:
		if (dev->state != BK_XB_CLOSED)
			bk_device_set_state(dev, BK_XB_CLOSING);
		break;
	case BK_XB_CLOSED:
	case BK_XB_UNKNOWN:
		if (dev->state != BK_XB_CLOSING && dev->state != BK_XB_CLOSED)
			bk_device_set_state(dev, BK_XB_CLOSING);
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
	if (dev->state == BK_XB_INITWAIT &&
	    (dev->fe_state == BK_XB_INITIALISED || dev->fe_state == BK_XB_CONNECTED))
		connect(bd);
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
