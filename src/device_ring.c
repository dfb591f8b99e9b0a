// SPDX-License-Identifier: MIT
/*
 * What every backend does to connect a device's queues, whatever the kind: read the numbers the
 * frontend published (hostile: each read names the key when it fails the device), open the
 * grant-table and event-channel handles with the channel's fd watched, map ring pages and bind
 * ports with the queue named in the failure. blkif and netif connect through these, so the two
 * backends fail, log and clean up the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "device_internal.h"
#include "loop.h"

int bk_device_read_fe_opt_u32(struct bk_device *dev, const char *key, uint32_t *ret)
{
	int r = bk_device_read_fe_u32(dev, key, ret);

	if (r == -ENOENT)
		return 1;
	return r;
}

int bk_device_need_fe_u32(struct bk_device *dev, const char *prefix, const char *key, uint32_t *ret)
{
	char k[64];
	int r;

	snprintf(k, sizeof(k), "%s%s", prefix, key);
	r = bk_device_read_fe_u32(dev, k, ret);
	if (r < 0)
		return bk_device_fail(dev, r, "reading %s from the frontend: %s", k, strerror(-r));
	return 0;
}

int bk_device_fe_nr_queues(struct bk_device *dev, unsigned int max, uint32_t *ret)
{
	uint32_t nq = 1;
	int r = bk_device_read_fe_opt_u32(dev, "multi-queue-num-queues", &nq);

	if (r < 0)
		return bk_device_fail(dev, r,
				      "multi-queue-num-queues from the frontend is not a number");
	if (nq == 0 || nq > max)
		return bk_device_fail(dev, -EINVAL,
				      "frontend asked for %u queues, we offer 1 to %u", nq, max);
	*ret = nq;
	return 0;
}

int bk_device_chan_open(struct bk_device *dev, bk_fd_cb cb, void *data, struct bk_gnttab **gnt,
			struct bk_evtchn **evtchn, struct bk_watch **watch)
{
	int r;

	const char *what = "a grant table handle (/dev/xen/gntdev)";

	r = bk_gnt_open(bk_device_xen(dev), gnt);
	if (r >= 0) {
		what = "an event channel handle (/dev/xen/evtchn)";
		r = bk_evtchn_open(bk_device_xen(dev), evtchn);
	}
	if (r >= 0) {
		what = "a watch on the event channel fd";
		r = bk_loop_add_fd(bk_device_loop(dev), bk_evtchn_fd(*evtchn), BK_EV_READ, cb, data,
				   watch);
	}
	if (r < 0) {
		bk_device_chan_close(gnt, evtchn, watch);
		return bk_device_fail(dev, r, "opening %s: %s", what, strerror(-r));
	}
	return 0;
}

void bk_device_chan_close(struct bk_gnttab **gnt, struct bk_evtchn **evtchn,
			  struct bk_watch **watch)
{
	bk_watch_free(*watch);
	*watch = NULL;
	bk_evtchn_close(*evtchn);
	*evtchn = NULL;
	bk_gnt_close(*gnt);
	*gnt = NULL;
}

int bk_device_map_ring(struct bk_device *dev, struct bk_gnttab *gnt, unsigned int qi,
		       const uint32_t *refs, unsigned int n, void **ret)
{
	int r = bk_gnt_map(gnt, dev->domid, refs, n, true, ret);

	if (r < 0)
		return bk_device_fail(dev, r, "q%u: mapping %u ring page(s) (first ref %u): %s", qi,
				      n, refs[0], strerror(-r));
	return 0;
}

int bk_device_bind_port(struct bk_device *dev, struct bk_evtchn *evtchn, unsigned int qi,
			const char *what, uint32_t remote, uint32_t *ret_local)
{
	int r = bk_evtchn_bind(evtchn, dev->domid, remote, ret_local);

	if (r < 0)
		return bk_device_fail(dev, r, "q%u: binding %sevent channel %u: %s", qi, what,
				      remote, strerror(-r));
	return 0;
}
