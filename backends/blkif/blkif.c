// SPDX-License-Identifier: MIT
/* The blkif backend's ops table, per-queue statistics and the one-line description. */
#include <stdio.h>
#include <string.h>

#include "blkif.h"
#include "common.h"

static int blkif_get_stats(struct bk_device *dev, struct bk_queue_stats *qs, unsigned int max)
{
	struct blkif_dev *bd = blkif_of(dev);
	unsigned int n;

	if (!bd)
		return 0;
	n = bd->stats_queues;
	for (unsigned int i = 0; i < n && i < max; i++) {
		qs[i] = bd->stats[i];
		qs[i].inflight = (bd->queues && i < bd->nr_queues) ? bd->queues[i].busy : 0;
	}
	return (int)n;
}

static int blkif_describe(struct bk_device *dev, char *buf, size_t len)
{
	struct blkif_dev *bd = blkif_of(dev);
	int n;

	if (!bd)
		return -ENODEV;
	/* Before the hotplug script ran there is no path yet ("-") and the settings may change. */
	n = snprintf(buf, len, "file=%s engine=%s %s%s%s%s", bd->params ? bd->params : "-",
		     bd->engine_name, bd->lim.readonly ? "ro" : "rw", bd->cdrom ? " cdrom" : "",
		     bd->cache != BK_CACHE_NONE ? " cache=" : "",
		     bd->cache != BK_CACHE_NONE ? bk_cache_mode_name(bd->cache) : "");
	if (n >= 0 && (size_t)n < len && bd->connected)
		n += snprintf(
			buf + n, len - (size_t)n, " queues=%u ring-order=%u indirect=%u abi=%s%s%s",
			bd->nr_queues, bd->ring_order, bd->max_indirect, blkif_abi_name(bd->abi),
			bd->lim.discard ? " discard" : "", bd->persistent ? " persistent" : "");
	if (n >= 0 && (size_t)n < len && bd->limiter.on) {
		char lim[96];

		bk_ctl_format_limit(&bd->limiter.set, lim, sizeof(lim));
		n += snprintf(buf + n, len - (size_t)n, " limit=%s", lim);
	}
	return n < 0 ? -EIO : 0;
}

const struct bk_backend_ops blkif_backend_ops = {
	.kind = "vbd",
	.log_name = "vbd",
	.probe = blkif_probe,
	.frontend_changed = blkif_frontend_changed,
	.backend_changed = blkif_backend_changed,
	.shutdown = blkif_shutdown,
	.remove = blkif_remove,
	.get_stats = blkif_get_stats,
	.describe = blkif_describe,
	.abandon = blkif_abandon,
	.set_limit = blkif_set_limit,
};
