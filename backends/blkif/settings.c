// SPDX-License-Identifier: MIT
/*
 * What a blkif device is served from, in two steps, as Linux blkback opens its device only once
 * the hotplug script published it:
 *
 * - at probe, the keys libxl wrote itself (mode, device-type) and the features that depend on
 *   neither the store nor the per-device settings;
 * - once hotplug-status=connected, the per-device settings (the blanket-* keys the script wrote,
 *   src/conf.h) and the path (physical-device-path, or params when no script translated it),
 *   then the store is opened and what depends on it published (size, info, discard).
 *
 * params may carry settings as a prefix, as scripts/blanket-hotplug accepts them:
 * "engine=aio,queues=2,options=a;b:/path" (';' stands for the ',' of engine options). The old
 * "aio:/path" form names a path; anything starting with '/' is a path as written.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "virtio/virtio-blk.h"

/* The target names a virtio-blk device blanketd drives itself (engine virtio-blk), not a file. */
#define VBLK_PATH_PREFIX "virtio-blk:"

static bool on_vblk(const struct blkif_dev *bd)
{
	return strcmp(bd->engine_name, "virtio-blk") == 0;
}

/* The per-device settings: canonical key, name in a params prefix. */
enum {
	S_ENGINE,
	S_QUEUES,
	S_CACHE,
	S_DISCARD,
	S_OPTIONS,
	S_SHARE,
	S_IOPS,
	S_BPS,
	S_BURST,
	S_PERSISTENT,
	S_NR
};
static const char *const setting_key[S_NR] = {
	[S_ENGINE] = BK_XS_ENGINE,   [S_QUEUES] = BK_XS_QUEUES,
	[S_CACHE] = BK_XS_CACHE,     [S_DISCARD] = BK_XS_DISCARD,
	[S_OPTIONS] = BK_XS_OPTIONS, [S_SHARE] = BK_XS_SHARE,
	[S_IOPS] = BK_XS_IOPS,	     [S_BPS] = BK_XS_BPS,
	[S_BURST] = BK_XS_BURST,     [S_PERSISTENT] = BK_XS_PERSISTENT,
};
static const char *const setting_name[S_NR] = {
	[S_ENGINE] = "engine",	 [S_QUEUES] = "queues",
	[S_CACHE] = "cache",	 [S_DISCARD] = "discard",
	[S_OPTIONS] = "options", [S_SHARE] = "share",
	[S_IOPS] = "iops",	 [S_BPS] = "bps",
	[S_BURST] = "burst",	 [S_PERSISTENT] = "persistent",
};

static int read_be_opt(struct bk_device *dev, const char *key, char **ret)
{
	int r = bk_device_read_be(dev, key, ret);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	return r;
}

static int why_fail(char *why, size_t len, int err, const char *fmt, ...) _printf_(4, 5);
static int why_fail(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}

int blkif_read_identity(struct blkif_dev *bd, char *why, size_t len)
{
	const struct bk_config *cfg = bk_config_current();
	struct bk_device *dev = bd->dev;
	_cleanup_free_ char *mode = NULL, *type = NULL;
	int r;

	r = bk_device_read_be(dev, "mode", &mode);
	if (r < 0)
		return why_fail(why, len, r, "reading mode: %s", strerror(-r));
	/*
	 * libxl writes "w" or "r" (xl refuses access=w!); "w!" is what xend wrote to force
	 * sharing, and the block script still honours it: so do we (blanket-share=on is the
	 * xl way).
	 */
	if (!strcmp(mode, "r"))
		bd->readonly = true;
	else if (!strcmp(mode, "w!"))
		bd->share = true;
	else if (strcmp(mode, "w"))
		return why_fail(why, len, -EINVAL, "mode '%.16s' is neither r, w nor w!", mode);
	r = read_be_opt(dev, "device-type", &type);
	if (r < 0)
		return why_fail(why, len, r, "reading device-type: %s", strerror(-r));
	if (type && !strcmp(type, "cdrom"))
		bd->cdrom = bd->readonly = true;
	else if (type && strcmp(type, "disk"))
		return why_fail(why, len, -EINVAL, "device-type '%.16s' is neither disk nor cdrom",
				type);

	/* Daemon-wide values: defaults, and caps for the per-device settings. */
	snprintf(bd->engine_name, sizeof(bd->engine_name), "%s", cfg->engine);
	bd->offered_queues = bd->max_queues = cfg->queues;
	bd->max_order = BK_MIN(cfg->max_ring_page_order, BLKIF_MAX_RING_ORDER);
	bd->max_indirect = BK_MIN(cfg->max_indirect_segments, BLKIF_MAX_INDIRECT_SEGS);
	bd->discard_enabled = true;
	bd->pgnt_enabled = true;
	bd->cache = BK_CACHE_NONE;
	bd->rate = cfg->disk_rate_limit;
	/* A pool that holds at least one largest request, or we could never make progress. */
	bd->pool_pages = (unsigned int)BK_MIN(cfg->bounce_pool_size / BK_PAGE_SIZE, 1U << 18);
	bd->pool_pages = BK_MAX(bd->pool_pages, BK_MAX(bd->max_indirect, 11U));
	return 0;
}

int blkif_write_probe_features(struct blkif_dev *bd)
{
	struct bk_device *dev = bd->dev;
	int r = 0;

	r |= bk_device_write_be(dev, "feature-flush-cache", "1");
	r |= bk_device_write_be(dev, "feature-barrier", "1");
	if (bd->max_indirect >= BLKIF_MAX_SEGMENTS_PER_REQUEST)
		r |= bk_device_write_be(dev, "feature-max-indirect-segments", "%u",
					bd->max_indirect);
	r |= bk_device_write_be(dev, "multi-queue-max-queues", "%u", bd->offered_queues);
	r |= bk_device_write_be(dev, "max-ring-page-order", "%u", bd->max_order);
	return r < 0 ? -EIO : 0;
}

/*
 * Split @params into a path and the settings of its prefix (malloc'd into @vals, options with
 * ';' turned back into ','). A name that is not a setting fails.
 */
static int split_params(const char *params, char *vals[S_NR], char **ret_path, char *why,
			size_t len)
{
	const char *colon = strchr(params, ':');
	_cleanup_free_ char *head = NULL;
	char *save = NULL, *path;

	if (params[0] == '/' || !colon) {
		path = strdup(params);
		goto out;
	}
	head = strndup(params, (size_t)(colon - params));
	if (!head)
		return -ENOMEM;
	/* Without '=' the prefix is a format ("raw:", "aio:"): the path is what counts. */
	for (char *tok = strchr(head, '=') ? strtok_r(head, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		unsigned int i = 0;

		if (eq)
			*eq = '\0';
		while (i < S_NR && strcmp(tok, setting_name[i]))
			i++;
		if (!eq || i == S_NR)
			return why_fail(why, len, -EINVAL,
					"params: '%.32s%s%.32s' is not a setting (engine, queues, "
					"cache, discard, options, share, iops, bps, burst, "
					"persistent)",
					tok, eq ? "=" : "", eq ? eq + 1 : "");
		free(vals[i]);
		vals[i] = strdup(eq + 1);
		if (!vals[i])
			return -ENOMEM;
		for (char *c = vals[i]; i == S_OPTIONS && *c; c++)
			if (*c == ';')
				*c = ',';
	}
	path = strdup(colon + 1);
out:
	if (!path)
		return -ENOMEM;
	*ret_path = path;
	return 0;
}

/* Apply the settings in @vals (each may be NULL: the daemon-wide value stays). */
static int apply_settings(struct blkif_dev *bd, char *vals[S_NR], char *why, size_t len)
{
	const struct bk_config *cfg = bk_config_current();
	const char *v;
	char reason[128];
	uint64_t n;

	if ((v = vals[S_ENGINE])) {
		if (strlen(v) >= sizeof(bd->engine_name) || !bk_engine_find(v))
			return why_fail(why, len, -EINVAL, "%s=%.32s: not one of %s", BK_XS_ENGINE,
					v, bk_engine_names());
		snprintf(bd->engine_name, sizeof(bd->engine_name), "%s", v);
	}
	if ((v = vals[S_QUEUES])) {
		if (bk_parse_uint(v, 1, cfg->queues, &n, reason, sizeof(reason)) < 0)
			return why_fail(why, len, -EINVAL, "%s=%.32s: %s", BK_XS_QUEUES, v, reason);
		bd->max_queues = (unsigned int)n;
	}
	if ((v = vals[S_CACHE]) && bk_parse_cache_mode(v, &bd->cache, reason, sizeof(reason)) < 0)
		return why_fail(why, len, -EINVAL, "%s=%.32s: %s", BK_XS_CACHE, v, reason);
	if ((v = vals[S_DISCARD]) &&
	    bk_parse_bool(v, &bd->discard_enabled, reason, sizeof(reason)) < 0)
		return why_fail(why, len, -EINVAL, "%s=%.32s: %s", BK_XS_DISCARD, v, reason);
	if ((v = vals[S_SHARE])) {
		bool share;

		if (bk_parse_bool(v, &share, reason, sizeof(reason)) < 0)
			return why_fail(why, len, -EINVAL, "%s=%.32s: %s", BK_XS_SHARE, v, reason);
		bd->share = bd->share || share; /* mode w! stays forced */
	}
	if ((v = vals[S_PERSISTENT]) &&
	    bk_parse_bool(v, &bd->pgnt_enabled, reason, sizeof(reason)) < 0)
		return why_fail(why, len, -EINVAL, "%s=%.32s: %s", BK_XS_PERSISTENT, v, reason);
	for (unsigned int i = S_IOPS; i <= S_BURST; i++) {
		if (!vals[i])
			continue;
		if (bk_ctl_parse_limit_key(setting_name[i], vals[i], &bd->rate, reason,
					   sizeof(reason)) < 0)
			return why_fail(why, len, -EINVAL, "%s: %s", setting_key[i], reason);
	}
	bd->rate.flags = 0;
	free(bd->engine_opts);
	bd->engine_opts = vals[S_OPTIONS];
	vals[S_OPTIONS] = NULL;
	return 0;
}

/* The path and the settings: the script's keys, else what params carries. */
static int read_settings(struct blkif_dev *bd, char *why, size_t len)
{
	struct bk_device *dev = bd->dev;
	_cleanup_free_ char *pdp = NULL, *params = NULL;
	char *vals[S_NR] = { NULL }, *path = NULL;
	int r;

	r = read_be_opt(dev, "physical-device-path", &pdp);
	if (r < 0)
		return why_fail(why, len, r, "reading physical-device-path: %s", strerror(-r));
	if (pdp &&
	    (pdp[0] == '/' || strncmp(pdp, VBLK_PATH_PREFIX, strlen(VBLK_PATH_PREFIX)) == 0)) {
		path = pdp;
		pdp = NULL;
	} else {
		r = bk_device_read_be(dev, "params", &params);
		if (r < 0 || !params[0])
			return why_fail(why, len, r < 0 ? r : -EINVAL, "no backing path in params");
		r = split_params(params, vals, &path, why, len);
		if (r == -ENOMEM)
			why_fail(why, len, r, "no memory for the settings");
		if (r < 0)
			goto out;
	}
	if (!path[0]) {
		r = why_fail(why, len, -EINVAL, "empty backing path in params");
		goto out;
	}
	/* The script's canonical keys win over a prefix nobody translated. */
	for (unsigned int i = 0; i < S_NR; i++) {
		char *v;

		r = read_be_opt(dev, setting_key[i], &v);
		if (r < 0) {
			why_fail(why, len, r, "reading %s: %s", setting_key[i], strerror(-r));
			goto out;
		}
		if (v) {
			free(vals[i]);
			vals[i] = v;
		}
	}
	r = apply_settings(bd, vals, why, len);
	if (r < 0)
		goto out;
	free(bd->params);
	bd->params = path;
	path = NULL;
out:
	for (unsigned int i = 0; i < S_NR; i++)
		free(vals[i]);
	free(path);
	return r;
}

static int write_store_keys(struct blkif_dev *bd)
{
	struct bk_device *dev = bd->dev;
	const struct bk_store *s = bd->store;
	int r = 0;

	/*
	 * Persistent grants: a frontend that takes them copies each request into pages it
	 * granted once; we keep those mapped and do the I/O straight on them (pgnt.c), so dom0
	 * copies the data once (the kernel's copy to the image) instead of twice (grant copy
	 * into the bounce pool, then the kernel's). Without them every segment is grant-copied.
	 * Written with the store, as blkback does at connect: a frontend reads it once the
	 * backend is Connected, and blanket-persistent=off is only known from the settings.
	 */
	r |= bk_device_write_be(dev, "feature-persistent", "%d", bd->pgnt_offer ? 1 : 0);
	r |= bk_device_write_be(dev, "feature-discard", "%d", bd->lim.discard ? 1 : 0);
	if (bd->lim.discard) {
		r |= bk_device_write_be(dev, "discard-granularity", "%u",
					BK_MAX(s->discard_granularity, BLKIF_SECTOR_SIZE));
		r |= bk_device_write_be(dev, "discard-alignment", "%u", s->discard_alignment);
		r |= bk_device_write_be(dev, "discard-secure", "0");
	}
	/* Lowered by blanket-queues: a frontend that reads it from now on asks for no more. */
	if (bd->max_queues != bd->offered_queues)
		r |= bk_device_write_be(dev, "multi-queue-max-queues", "%u", bd->max_queues);
	r |= bk_device_write_be(dev, "sector-size", "%u", BLKIF_SECTOR_SIZE);
	r |= bk_device_write_be(dev, "physical-sector-size", "%u",
				BK_MAX(s->physical_block, BLKIF_SECTOR_SIZE));
	r |= bk_device_write_be(dev, "info", "%u", bd->info);
	r |= bk_device_write_be(dev, "sectors", "%llu", (unsigned long long)bd->lim.nr_sectors);
	return r < 0 ? -EIO : 0;
}

int blkif_vblk_limits(struct blkif_dev *bd)
{
	struct bk_store *s = bd->store;
	struct bk_vblk_info info;
	bool discard;

	if (!on_vblk(bd) || !s || !bd->nr_queues || !bd->queues[0].engine ||
	    bk_vblk_info(bd->queues[0].engine, &info) < 0)
		return 0;
	/* Discard on the range maps onto the device's DISCARD or WRITE_ZEROES (the engine). */
	s->discard = info.discard;
	s->discard_granularity = info.discard_granularity;
	s->discard_alignment = 0;
	discard = bd->discard_enabled && s->discard && !bd->lim.readonly;
	if (discard == bd->lim.discard)
		return 0;
	bd->lim.discard = discard;
	dev_info(bd->dev, "%s: discard %s", bd->params,
		 discard ? "offered (the device has it)" : "not offered");
	return write_store_keys(bd);
}

int blkif_open_backing(struct blkif_dev *bd, char *why, size_t len)
{
	struct bk_device *dev = bd->dev;
	struct bk_store_params sp = { 0 };
	int r;

	if (bd->store)
		return 0;
	r = read_settings(bd, why, len);
	if (r < 0)
		return r;
	sp.readonly = bd->readonly;
	sp.want_direct = bd->cache == BK_CACHE_NONE;
	sp.dsync = bd->cache == BK_CACHE_WRITETHROUGH;
	if (on_vblk(bd)) {
		/* A range of a device the engine drives: no file, and its own overlap check. */
		r = bk_vblk_store_open(dev->name, bd->engine_opts, bd->readonly, &bd->store);
		if (r < 0)
			return why_fail(why, len, r, "%s: %s (see the log)", bd->params,
					strerror(-r));
	} else {
		r = bk_store_open(bd->params, &sp, &bd->store);
	}
	/*
	 * blkfront speaks 512-byte sectors (sector-size stays 512 for frontends without
	 * feature-large-sector-size), so O_DIRECT on a 4Kn store would refuse sub-block I/O:
	 * go through the page cache instead, and tell the guest the physical size.
	 */
	if (r == 0 && !on_vblk(bd) && bd->store->direct &&
	    bd->store->logical_block > BLKIF_SECTOR_SIZE) {
		dev_info(dev, "%s has %u-byte logical blocks: not using O_DIRECT", bd->params,
			 bd->store->logical_block);
		bk_store_close(bd->store);
		bd->store = NULL;
		sp.want_direct = false;
		r = bk_store_open(bd->params, &sp, &bd->store);
	}
	if (r < 0)
		return why_fail(why, len, r, "opening %s: %s", bd->params, strerror(-r));
	bd->lim.nr_sectors = bd->store->size >> BLKIF_SECTOR_SHIFT;
	bd->lim.readonly = bd->readonly || bd->store->readonly;
	bd->lim.discard = bd->discard_enabled && bd->store->discard && !bd->lim.readonly;
	bd->lim.flush = true;
	bd->lim.barrier = true;
	bd->lim.max_indirect_segs = (uint16_t)bd->max_indirect;
	/*
	 * Persistent grants only on buffered stores: in a PV dom0 (Linux 6.1) a daemon killed
	 * while O_DIRECT I/O holds pages of its grant mappings makes the kernel's gntdev unmap
	 * warn ("Bad page map in process blanketd") and leaves the process unkillable (seen in
	 * the lab's killloop); buffered I/O only copies to and from the mapping. Not offered
	 * there, the guest also saves its copy into the persistent pages, which we would only
	 * grant-copy out again.
	 */
	bd->pgnt_offer = bd->pgnt_enabled && !bd->store->direct;
	/*
	 * An adopted guest read a previous run's offer when it connected, and grants what it
	 * read: if that was no, it grants every request's pages afresh and ends them after the
	 * response, so they must not be kept mapped now (nor offered: it would not re-read).
	 */
	if (bd->pgnt_offer && bd->adopting) {
		_cleanup_free_ char *was = NULL;

		if (read_be_opt(dev, "feature-persistent", &was) < 0 || !was || strcmp(was, "1")) {
			bd->pgnt_offer = false;
			dev_info(dev,
				 "no persistent grants on this connection: the guest connected "
				 "without them");
		}
	}
	bd->info = (uint16_t)((bd->lim.readonly ? VDISK_READONLY : 0) |
			      (bd->cdrom ? VDISK_CDROM | VDISK_REMOVABLE : 0));
	r = blkif_claim_image(bd, why, len);
	if (r < 0) {
		blkif_close_backing(bd);
		return r;
	}
	r = write_store_keys(bd);
	if (r < 0) {
		blkif_close_backing(bd);
		return why_fail(why, len, r, "writing the store's keys: %s", strerror(-r));
	}
	blkif_limiter_set(&bd->limiter, &bd->rate, blkif_now());
	if (bd->limiter.on) {
		char lim[96];

		bk_ctl_format_limit(&bd->rate, lim, sizeof(lim));
		dev_info(dev, "rate limit %s", lim);
	}
	dev_info(dev, "%s (%s%s, %llu sectors), engine %s, cache %s%s%s, up to %u queue(s)%s",
		 bd->params, bd->cdrom ? "cdrom, " : "", bd->lim.readonly ? "ro" : "rw",
		 (unsigned long long)bd->lim.nr_sectors, bd->engine_name,
		 bk_cache_mode_name(bd->cache), bd->store->direct ? " (O_DIRECT)" : "",
		 bd->store->dsync ? " (O_DSYNC)" : "", bd->max_queues,
		 bd->pgnt_offer ? "" : ", no persistent grants");
	return 0;
}

void blkif_close_backing(struct blkif_dev *bd)
{
	blkif_release_image(bd);
	bk_store_close(bd->store);
	bd->store = NULL;
}
