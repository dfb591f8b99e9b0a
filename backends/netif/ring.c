// SPDX-License-Identifier: MIT
/*
 * Connecting the rings: read what the frontend published (every value hostile), map each
 * queue's TX and RX ring page, bind its event channel(s) (split or shared), size the TAP to
 * the queues, and allocate the queue's bounded buffers. Releasing undoes exactly what was done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loop.h"

/* An optional frontend flag: absent is @def, garbage is 0 (as netback's xenbus_read_unsigned). */
static bool fe_flag(struct bk_device *dev, const char *key, bool def)
{
	uint32_t v;
	int r = bk_device_read_fe_u32(dev, key, &v);

	if (r == -ENOENT)
		return def;
	return r == 0 && v != 0;
}

static int read_fe_key(struct bk_device *dev, const char *prefix, const char *key, uint32_t *ret)
{
	char k[64];
	int r;

	snprintf(k, sizeof(k), "%s%s", prefix, key);
	r = bk_device_read_fe_u32(dev, k, ret);
	if (r < 0)
		return bk_device_fail(dev, r, "reading %s from the frontend: %s", k, strerror(-r));
	return 0;
}

static int queue_keys(struct netif_dev *nd, struct netif_queue *q, const char *prefix)
{
	struct bk_device *dev = nd->dev;
	char k[64];
	int r;

	if ((r = read_fe_key(dev, prefix, "tx-ring-ref", &q->tx_ref)) < 0 ||
	    (r = read_fe_key(dev, prefix, "rx-ring-ref", &q->rx_ref)) < 0)
		return r;
	snprintf(k, sizeof(k), "%sevent-channel-tx", prefix);
	r = bk_device_read_fe_u32(dev, k, &q->tx_rport);
	if (r == 0) {
		q->split = true;
		return read_fe_key(dev, prefix, "event-channel-rx", &q->rx_rport);
	}
	if (r != -ENOENT)
		return bk_device_fail(dev, r, "reading %s from the frontend: %s", k, strerror(-r));
	r = read_fe_key(dev, prefix, "event-channel", &q->tx_rport);
	q->rx_rport = q->tx_rport;
	return r;
}

static int map_ring(struct netif_dev *nd, struct netif_queue *q, uint32_t ref, void **ret)
{
	int r = bk_gnt_map(nd->gnt, nd->dev->domid, &ref, 1, true, ret);

	if (r < 0)
		return bk_device_fail(nd->dev, r, "q%u: mapping ring ref %u: %s", q->index, ref,
				      strerror(-r));
	return 0;
}

static int queue_setup(struct netif_dev *nd, struct netif_queue *q)
{
	struct bk_device *dev = nd->dev;
	char prefix[32] = "";
	int r;

	if (nd->nr_queues > 1)
		snprintf(prefix, sizeof(prefix), "queue-%u/", q->index);
	r = queue_keys(nd, q, prefix);
	if (r < 0)
		return r;

	r = map_ring(nd, q, q->tx_ref, &q->tx_page);
	if (r < 0)
		return r;
	q->tx_mapped = true;
	r = map_ring(nd, q, q->rx_ref, &q->rx_page);
	if (r < 0)
		return r;
	q->rx_mapped = true;
	netif_ring_attach_tx(&q->tx, q->tx_page);
	netif_ring_attach_rx(&q->rx, q->rx_page);
	/*
	 * Start from what was answered, not from zero: a reconnect or a ring a previous run
	 * served. Everything consumed was answered (the data path never holds a request), so
	 * rsp_prod is where the next request sits.
	 */
	q->tx.req_cons = q->tx.rsp_prod_pvt = q->tx.rsp_pushed = READ_ONCE(q->tx.sring->rsp_prod);
	q->rx.req_cons = q->rx.rsp_prod_pvt = q->rx.rsp_pushed = READ_ONCE(q->rx.sring->rsp_prod);
	/* A killed run may have left slots answered and not published: put them back first. */
	r = netif_journal_open(q);
	if (r < 0)
		return r;

	r = bk_evtchn_bind(nd->evtchn, dev->domid, q->tx_rport, &q->tx_port);
	if (r < 0)
		return bk_device_fail(dev, r, "q%u: binding event channel %u: %s", q->index,
				      q->tx_rport, strerror(-r));
	q->tx_bound = true;
	if (q->split) {
		r = bk_evtchn_bind(nd->evtchn, dev->domid, q->rx_rport, &q->rx_port);
		if (r < 0)
			return bk_device_fail(dev, r, "q%u: binding RX event channel %u: %s",
					      q->index, q->rx_rport, strerror(-r));
		q->rx_bound = true;
	} else {
		q->rx_port = q->tx_port;
	}

	q->txcopy = calloc(NETIF_RING_SIZE, sizeof(*q->txcopy));
	q->pkts = calloc(NETIF_TX_BATCH, sizeof(*q->pkts));
	q->pkt_off = calloc(NETIF_TX_BATCH, sizeof(*q->pkt_off));
	q->pkt_seg = calloc(NETIF_TX_BATCH + 1, sizeof(*q->pkt_seg));
	q->arena = malloc(NETIF_TX_ARENA);
	q->segs = calloc(NETIF_SEGS, sizeof(*q->segs));
	q->tpkts = calloc(NETIF_TX_BATCH, sizeof(*q->tpkts));
	q->tiov = calloc(2 * NETIF_TX_BATCH, sizeof(*q->tiov));
	q->vhdr = calloc(NETIF_TX_BATCH, sizeof(*q->vhdr));
	q->rxbuf = malloc(NETIF_TAP_FRAME_MAX);
	q->rsps = calloc(NETIF_RX_BATCH * NETIF_RX_MAX_SLOTS, sizeof(*q->rsps));
	q->rx_frames = calloc(NETIF_RX_BATCH, sizeof(*q->rx_frames));
	q->seg_rsp = calloc(NETIF_SEGS, sizeof(*q->seg_rsp));
	if (!q->txcopy || !q->pkts || !q->pkt_off || !q->pkt_seg || !q->arena || !q->segs ||
	    !q->tpkts || !q->tiov || !q->vhdr || !q->rxbuf || !q->rsps || !q->rx_frames ||
	    !q->seg_rsp)
		return bk_device_fail(dev, -ENOMEM, "q%u: no memory for the queue's buffers",
				      q->index);
	return 0;
}

static void queue_free(struct netif_queue *q)
{
	free(q->txcopy);
	free(q->pkts);
	free(q->pkt_off);
	free(q->pkt_seg);
	free(q->arena);
	free(q->segs);
	free(q->tpkts);
	free(q->tiov);
	free(q->vhdr);
	free(q->rxbuf);
	free(q->rsps);
	free(q->rx_frames);
	free(q->seg_rsp);
}

/* One TAP queue per ring: re-attach the persistent TAP with the negotiated count. */
static int tap_resize(struct netif_dev *nd, unsigned int nq)
{
	struct bk_device *dev = nd->dev;
	int r;

	if (bk_tap_nr_queues(nd->tap) == nq)
		return 0;
	bk_tap_close(nd->tap); /* persistent: the interface stays */
	nd->tap = NULL;
	r = bk_tap_open(nd->ifname, nq, &nd->tap);
	if (r < 0) {
		/* Get the interface back with one queue, so removal still finds it. */
		if (bk_tap_open(nd->ifname, 1, &nd->tap) < 0)
			nd->tap = NULL;
		return bk_device_fail(dev, r, "tap %s: attaching %u queues: %s", nd->ifname, nq,
				      strerror(-r));
	}
	return 0;
}

int netif_rings_connect(struct netif_dev *nd)
{
	struct bk_device *dev = nd->dev;
	uint32_t nq = 1, v;
	int r;

	if (!nd->tap)
		return bk_device_fail(dev, -ENODEV, "tap %s is gone", nd->ifname);
	/* netback: request-rx-copy missing or 0 is -EOPNOTSUPP (no page flipping). */
	r = bk_device_read_fe_u32(dev, "request-rx-copy", &v);
	if (r < 0 || v != 1)
		return bk_device_fail(dev, -EOPNOTSUPP,
				      "frontend does not request rx-copy (flipping is not "
				      "supported)");
	r = bk_device_read_fe_u32(dev, "multi-queue-num-queues", &nq);
	if (r == -ENOENT)
		nq = 1;
	else if (r < 0)
		return bk_device_fail(dev, r,
				      "multi-queue-num-queues from the frontend is not a number");
	if (nq == 0 || nq > nd->max_queues)
		return bk_device_fail(dev, -EINVAL,
				      "frontend asked for %u queues, we offer 1 to %u", nq,
				      nd->max_queues);

	nd->rx_notify = fe_flag(dev, "feature-rx-notify", false);
	nd->feat.sg = fe_flag(dev, "feature-sg", false);
	nd->feat.gso_tcpv4 = fe_flag(dev, "feature-gso-tcpv4", false);
	nd->feat.gso_tcpv6 = fe_flag(dev, "feature-gso-tcpv6", false);
	nd->feat.csum_v4 = !fe_flag(dev, "feature-no-csum-offload", false);
	nd->feat.csum_v6 = fe_flag(dev, "feature-ipv6-csum-offload", false);

	nd->queues = calloc(nq, sizeof(*nd->queues));
	if (!nd->queues)
		return bk_device_fail(dev, -ENOMEM, "no memory for %u queues", nq);
	nd->nr_queues = nq;
	nd->stats_queues = BK_MAX(nd->stats_queues, nq);
	for (unsigned int i = 0; i < nq; i++) {
		struct netif_queue *q = &nd->queues[i];

		q->nd = nd;
		q->index = i;
		q->stats = &nd->stats[i];
		q->stats->inflight = 0;
		snprintf(q->name, sizeof(q->name), "%s q%u", dev->name, i);
		list_init(&q->backlog);
	}

	r = bk_gnt_open(bk_device_xen(dev), &nd->gnt);
	if (r < 0)
		goto fail_sys;
	r = bk_evtchn_open(bk_device_xen(dev), &nd->evtchn);
	if (r < 0)
		goto fail_sys;
	r = bk_loop_add_fd(bk_device_loop(dev), bk_evtchn_fd(nd->evtchn), BK_EV_READ,
			   netif_evtchn_cb, nd, &nd->evtchn_watch);
	if (r < 0)
		goto fail_sys;
	for (unsigned int i = 0; i < nq; i++) {
		r = queue_setup(nd, &nd->queues[i]);
		if (r < 0)
			goto fail;
	}
	r = tap_resize(nd, nq);
	if (r < 0)
		goto fail;
	r = bk_tap_set_offload(nd->tap, netif_tun_offload(&nd->feat));
	if (r < 0) {
		r = bk_device_fail(dev, r, "tap %s: setting offloads: %s", nd->ifname,
				   strerror(-r));
		goto fail;
	}
	nd->rings_up = true;
	return 0;

fail_sys:
	r = bk_device_fail(dev, r, "opening grant table / event channel handles: %s", strerror(-r));
fail:
	nd->rings_up = true; /* release what was set up */
	netif_rings_release(nd);
	return r;
}

void netif_rings_release(struct netif_dev *nd)
{
	if (!nd->rings_up)
		return;
	for (unsigned int i = 0; nd->queues && i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];

		if (nd->tap && i < bk_tap_nr_queues(nd->tap))
			bk_tap_watch_events(nd->tap, i, 0);
		netif_queue_free_backlog(q);
		if (q->tx_bound)
			bk_evtchn_unbind(nd->evtchn, q->tx_port);
		if (q->rx_bound)
			bk_evtchn_unbind(nd->evtchn, q->rx_port);
		if (q->tx_mapped)
			bk_gnt_unmap(nd->gnt, q->tx_page, 1);
		/*
		 * Kept for a next run (and when taking a vif over failed half-way: the queues
		 * not yet recovered still describe what their guest waits for).
		 */
		netif_journal_close(q, nd->handover || nd->adopting);
		if (q->rx_mapped)
			bk_gnt_unmap(nd->gnt, q->rx_page, 1);
		queue_free(q);
	}
	free(nd->queues);
	nd->queues = NULL;
	nd->nr_queues = 0;
	bk_watch_free(nd->evtchn_watch);
	nd->evtchn_watch = NULL;
	bk_evtchn_close(nd->evtchn);
	nd->evtchn = NULL;
	bk_gnt_close(nd->gnt);
	nd->gnt = NULL;
	nd->rings_up = false;
}
