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

static int queue_keys(struct netif_dev *nd, struct netif_queue *q, const char *prefix)
{
	struct bk_device *dev = nd->dev;
	char k[64];
	int r;

	if ((r = bk_device_need_fe_u32(dev, prefix, "tx-ring-ref", &q->tx_ref)) < 0 ||
	    (r = bk_device_need_fe_u32(dev, prefix, "rx-ring-ref", &q->rx_ref)) < 0)
		return r;
	snprintf(k, sizeof(k), "%sevent-channel-tx", prefix);
	r = bk_device_read_fe_u32(dev, k, &q->tx_rport);
	if (r == 0) {
		q->split = true;
		return bk_device_need_fe_u32(dev, prefix, "event-channel-rx", &q->rx_rport);
	}
	if (r != -ENOENT)
		return bk_device_fail(dev, r, "reading %s from the frontend: %s", k, strerror(-r));
	r = bk_device_need_fe_u32(dev, prefix, "event-channel", &q->tx_rport);
	q->rx_rport = q->tx_rport;
	return r;
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

	r = bk_device_map_ring(dev, nd->gnt, q->index, &q->tx_ref, 1, &q->tx_page);
	if (r < 0)
		return r;
	q->tx_mapped = true;
	r = bk_device_map_ring(dev, nd->gnt, q->index, &q->rx_ref, 1, &q->rx_page);
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

	r = bk_device_bind_port(dev, nd->evtchn, q->index, "", q->tx_rport, &q->tx_port);
	if (r < 0)
		return r;
	q->tx_bound = true;
	r = bk_evport_init(&q->tx_ev, bk_device_loop(dev), nd->evtchn, q->tx_port, netif_backoff_cb,
			   q);
	if (r < 0)
		return r;
	if (q->split) {
		r = bk_device_bind_port(dev, nd->evtchn, q->index, "RX ", q->rx_rport, &q->rx_port);
		if (r < 0)
			return r;
		q->rx_bound = true;
		r = bk_evport_init(&q->rx_ev, bk_device_loop(dev), nd->evtchn, q->rx_port,
				   netif_backoff_cb, q);
		if (r < 0)
			return r;
	} else {
		q->rx_port = q->tx_port;
	}
	return 0;
}

int netif_rings_connect(struct netif_dev *nd)
{
	struct bk_device *dev = nd->dev;
	uint32_t nq = 1, v;
	int r;

	if (!nd->port)
		return bk_device_fail(dev, -ENODEV, "tap %s is gone", nd->ifname);
	/* netback: request-rx-copy missing or 0 is -EOPNOTSUPP (no page flipping). */
	r = bk_device_read_fe_u32(dev, "request-rx-copy", &v);
	if (r < 0 || v != 1)
		return bk_device_fail(dev, -EOPNOTSUPP,
				      "frontend does not request rx-copy (flipping is not "
				      "supported)");
	r = bk_device_fe_nr_queues(dev, nd->max_queues, &nq);
	if (r < 0)
		return r;

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

	r = bk_device_chan_open(dev, netif_evtchn_cb, nd, &nd->gnt, &nd->evtchn, &nd->evtchn_watch);
	if (r < 0)
		goto fail;
	for (unsigned int i = 0; i < nq; i++) {
		r = queue_setup(nd, &nd->queues[i]);
		if (r < 0)
			goto fail;
	}
	r = netif_io_alloc(nd);
	if (r < 0) {
		r = bk_device_fail(dev, r, "no memory for the data path's buffers");
		goto fail;
	}
	/* One port queue per ring, and RX offloads as the frontend takes them. */
	r = nd->port->ops->configure(nd->port, nq, &nd->feat);
	if (r < 0) {
		r = bk_device_fail(dev, r, "%s %s: setting up %u queue(s): %s", nd->port->kind,
				   nd->port->ops->name(nd->port), nq, strerror(-r));
		goto fail;
	}
	nd->rings_up = true;
	return 0;

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

		if (nd->port)
			nd->port->ops->watch_events(nd->port, i, 0);
		netif_queue_free_backlog(q);
		bk_evport_free(&q->tx_ev);
		bk_evport_free(&q->rx_ev);
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
	}
	netif_io_free(nd);
	free(nd->queues);
	nd->queues = NULL;
	nd->nr_queues = 0;
	bk_device_chan_close(&nd->gnt, &nd->evtchn, &nd->evtchn_watch);
	nd->rings_up = false;
}
