// SPDX-License-Identifier: MIT
/*
 * The netif data path. Everything runs from the device's once-per-turn hook: event channels
 * and TAP readiness only mark work. Per queue and turn:
 *   TX: copy the unconsumed slots out once, parse packets with netback's rules (proto.c),
 *       grant-copy every data slot of the batch in one call into a local arena, hand the
 *       frames to the TAP with their virtio_net_hdr (offload.c), answer one response per
 *       slot (NULL for extras). A fatal slot chain fails the device after the packets before
 *       it were answered.
 *   RX: expire old frames, read the TAP into the bounded backlog, lay as many frames as the
 *       posted buffers take over the ring, grant-copy them in one call, answer each request in
 *       its own slot. No buffers: ask for an event (or poll, for a frontend without
 *       feature-rx-notify); a full backlog stops reading the TAP; no buffers for 60 s with
 *       frames waiting turns the carrier off (XSA-392) until buffers come back.
 * Nothing is held across turns except the RX backlog: a handover loses no request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loop.h"

#define GNTST_GENERAL_ERROR (-1)

static struct bk_loop *nd_loop(struct netif_dev *nd)
{
	return bk_device_loop(nd->dev);
}

/* The frontend broke the protocol: netback disables the vif; we fail the device. */
static int queue_fatal(struct netif_queue *q, const char *why)
{
	struct netif_dev *nd = q->nd;

	nd->running = false;
	bk_hook_enable(nd->hook, false);
	bk_timer_stop(nd->timer);
	if (nd->tap)
		for (unsigned int i = 0; i < nd->nr_queues && i < bk_tap_nr_queues(nd->tap); i++)
			bk_tap_watch_events(nd->tap, i, 0);
	return bk_device_fail(nd->dev, -EPROTO, "q%u: %s", q->index, why);
}

static void notify(struct netif_queue *q, uint32_t port)
{
	if (bk_evtchn_notify(q->nd->evtchn, port) == 0)
		q->stats->notify_out++;
}

/* ------------------------------------------------------------------------------------------ */
/* TX: guest -> TAP. */

static bool copied(const struct netif_queue *q, uint32_t first, uint32_t end)
{
	for (uint32_t s = first; s < end; s++)
		if (q->segs[s].status != 0)
			return false;
	return true;
}

/* Build the TAP frame for an OK packet whose bytes arrived; false: dropped (offloads). */
static bool tx_frame(struct netif_queue *q, uint32_t i, unsigned int slot)
{
	struct netif_tx_pkt *pkt = &q->pkts[i];
	uint8_t *frame = q->arena + q->pkt_off[i];
	struct netif_offload_info info;
	struct virtio_net_hdr vh;
	const char *why;

	if (netif_tx_to_vnet(pkt->flags, netif_tx_pkt_gso(pkt), frame, pkt->len, &vh, &info, &why) <
	    0) {
		q->stats->net_tx_drop_offload++;
		dev_warn_rl(q->nd->dev, "q%u: dropping a %u-byte TX frame: %s", q->index, pkt->len,
			    why);
		return false;
	}
	memset(q->vhdr[slot], 0, BK_TAP_VNET_HDR_LEN);
	memcpy(q->vhdr[slot], &vh, sizeof(vh));
	q->tiov[2 * slot] = (struct iovec){ q->vhdr[slot], BK_TAP_VNET_HDR_LEN };
	q->tiov[2 * slot + 1] = (struct iovec){ frame, pkt->len };
	q->tpkts[slot] = (struct bk_tap_pkt){ .iov = &q->tiov[2 * slot], .iovcnt = 2 };
	q->stats->net_tx_csum += info.csum_partial;
	q->stats->net_tx_gso += info.gso;
	q->stats->net_csum_fixup += info.csum_fixup;
	return true;
}

/* One batch off the TX ring; the number of requests consumed, or -errno (device failed). */
static int tx_run(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;
	struct bk_device *dev = nd->dev;
	uint32_t avail, pos = 0, npk = 0, nseg = 0, arena = 0;
	unsigned int ntap = 0;
	const char *fatal = NULL;
	bool ev;
	int r;

	q->tx_more = false;
	if (netif_ring_unconsumed(&q->tx, &avail) < 0)
		return queue_fatal(q, "impossible number of requests on the TX ring");
	if (avail == 0) {
		if (!netif_ring_final_check(&q->tx))
			return 0;
		if (netif_ring_unconsumed(&q->tx, &avail) < 0)
			return queue_fatal(q, "impossible number of requests on the TX ring");
	}
	netif_ring_copy(&q->tx, q->txcopy, avail);
	while (pos < avail && npk < NETIF_TX_BATCH) {
		struct netif_tx_pkt *pkt = &q->pkts[npk];
		enum netif_tx_verdict v = netif_tx_parse(q->txcopy + pos, avail - pos, pkt);

		if (v == NETIF_TX_FATAL) {
			fatal = pkt->why;
			break;
		}
		if (v == NETIF_TX_OK && arena + pkt->len > NETIF_TX_ARENA)
			break; /* next turn */
		if (v == NETIF_TX_OK && netif_credit_exceeded(q, pkt->len))
			break; /* rate=: the credit timer resumes the queue */
		q->pkt_seg[npk] = nseg;
		if (v == NETIF_TX_OK) {
			q->pkt_off[npk] = arena;
			for (unsigned int k = 0; k < pkt->nr_frags; k++) {
				const struct netif_tx_frag *f = &pkt->frag[k];

				if (!f->size)
					continue; /* XSA-448: nothing to copy */
				q->segs[nseg++] = (struct bk_gnt_copy_seg){
					.local = q->arena + arena + f->pkt_off,
					.domid = dev->domid,
					.ref = f->gref,
					.offset = f->offset,
					.len = f->size,
				};
			}
			arena += pkt->len;
		}
		pos += pkt->nr_consumed;
		npk++;
	}
	q->pkt_seg[npk] = nseg;
	netif_ring_consume(&q->tx, pos);
	netif_journal_take(q, &q->tx, q->txcopy, pos);
	if (nseg) {
		r = bk_gnt_copy(nd->gnt, q->segs, nseg);
		if (r < 0) {
			dev_warn_rl(dev, "q%u: grant copy of %u TX segments: %s", q->index, nseg,
				    strerror(-r));
			for (uint32_t s = 0; s < nseg; s++)
				q->segs[s].status = GNTST_GENERAL_ERROR;
		}
	}

	for (uint32_t i = 0; i < npk; i++) {
		struct netif_tx_pkt *pkt = &q->pkts[i];
		int16_t st = NIF_RSP_OKAY;

		switch (pkt->verdict) {
		case NETIF_TX_OK:
			if (!copied(q, q->pkt_seg[i], q->pkt_seg[i + 1])) {
				st = NIF_RSP_ERROR;
				q->stats->net_tx_drop_copy++;
				dev_warn_rl(dev, "q%u: a grant copy of a TX packet failed",
					    q->index);
			} else if (tx_frame(q, i, ntap)) {
				ntap++;
			}
			break;
		case NETIF_TX_DROP:
			st = NIF_RSP_ERROR;
			q->stats->net_tx_drop_slots++;
			dev_warn_rl(dev, "q%u: dropping a TX packet: %s", q->index, pkt->why);
			break;
		default: /* multicast add/del: no filter is offered, so nothing to keep */
			break;
		}
		if (st != NIF_RSP_OKAY)
			q->stats->errors++;
		netif_tx_respond(&q->tx, pkt, st);
	}
	netif_journal_answered(q, &q->tx);
	if (ntap) {
		int done = bk_tap_write_batch(nd->tap, q->index, q->tpkts, ntap);

		for (unsigned int i = 0; i < ntap; i++) {
			if ((int)i >= done || q->tpkts[i].err) {
				q->stats->net_tx_drop_tap++;
				continue;
			}
			q->stats->net_tx_packets++;
			q->stats->net_tx_bytes += q->tiov[2 * i + 1].iov_len;
		}
	}
	ev = netif_ring_push(&q->tx);
	netif_journal_pushed(q, &q->tx);
	if (ev)
		notify(q, q->tx_port);
	if (fatal)
		return queue_fatal(q, fatal);
	q->tx_more = !q->credit_wait && (pos < avail || netif_ring_final_check(&q->tx));
	return (int)pos;
}

/* ------------------------------------------------------------------------------------------ */
/* RX: TAP -> guest. */

static void rx_free_frame(struct netif_queue *q, struct netif_rx_frame *f)
{
	list_del(&f->link);
	q->backlog_bytes -= f->len;
	q->stats->inflight--;
	free(f);
}

void netif_queue_free_backlog(struct netif_queue *q)
{
	if (!q->backlog.next)
		return;
	while (!list_empty(&q->backlog))
		rx_free_frame(q, list_first_entry(&q->backlog, struct netif_rx_frame, link));
	q->rx_waiting = false;
}

static void rx_take(struct netif_queue *q, size_t got)
{
	struct netif_offload_info info;
	struct virtio_net_hdr vh;
	struct netif_rx_frame *f;
	size_t flen;
	const char *why;

	if (got < BK_TAP_VNET_HDR_LEN + NETIF_ETH_HLEN) {
		q->stats->net_rx_drop_offload++;
		return;
	}
	flen = got - BK_TAP_VNET_HDR_LEN;
	f = malloc(sizeof(*f) + flen);
	if (!f) {
		q->stats->net_rx_drop_offload++;
		return;
	}
	memcpy(&vh, q->rxbuf, sizeof(vh));
	memcpy(f->data, q->rxbuf + BK_TAP_VNET_HDR_LEN, flen);
	f->len = flen;
	if (netif_rx_from_vnet(&vh, f->data, flen, &q->nd->feat, &f->meta, &info, &why) < 0) {
		q->stats->net_rx_drop_offload++;
		dev_warn_rl(q->nd->dev, "q%u: dropping a %zu-byte frame for the guest: %s",
			    q->index, flen, why);
		free(f);
		return;
	}
	q->stats->net_rx_csum += info.csum_partial;
	q->stats->net_rx_gso += info.gso;
	q->stats->net_csum_sw += info.csum_sw;
	f->t = bk_loop_now(nd_loop(q->nd));
	list_add_tail(&f->link, &q->backlog);
	q->backlog_bytes += flen;
	q->stats->inflight++;
}

static void rx_read_tap(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;

	if (!q->tap_ready || q->tap_paused)
		return;
	q->tap_ready = false;
	for (unsigned int n = 0; n < NETIF_RX_BATCH; n++) {
		struct iovec iov = { q->rxbuf, NETIF_TAP_FRAME_MAX };
		struct bk_tap_pkt pkt = { .iov = &iov, .iovcnt = 1 };

		if (q->backlog_bytes >= NETIF_RX_BACKLOG_BYTES) {
			/* The kernel queues (and drops) until the guest takes what we hold. */
			bk_tap_watch_events(nd->tap, q->index, 0);
			q->tap_paused = true;
			return;
		}
		if (bk_tap_read_batch(nd->tap, q->index, &pkt, 1) != 1)
			return;
		rx_take(q, pkt.len);
	}
	q->tap_ready = true; /* maybe more: the watch says so again next turn anyway */
}

static void rx_expire(struct netif_queue *q, double now)
{
	while (!list_empty(&q->backlog)) {
		struct netif_rx_frame *f =
			list_first_entry(&q->backlog, struct netif_rx_frame, link);

		if (now - f->t < NETIF_RX_EXPIRE_S)
			break;
		q->stats->net_rx_drop_expired++;
		rx_free_frame(q, f);
	}
}

static void carrier(struct netif_dev *nd, bool on)
{
	if (nd->carrier_off == !on || !nd->tap)
		return;
	nd->carrier_off = !on;
	bk_tap_set_carrier(nd->tap, on);
	if (on)
		dev_info(nd->dev, "guest RX buffers back: carrier on");
	else
		dev_warn(nd->dev, "guest RX stalled for %.0f s: carrier off", NETIF_RX_STALL_S);
}

/* The backlog drained below half its bound: read the TAP again. */
static void rx_resume_tap(struct netif_queue *q)
{
	if (q->tap_paused && q->backlog_bytes < NETIF_RX_BACKLOG_BYTES / 2) {
		q->tap_paused = false;
		bk_tap_watch_events(q->nd->tap, q->index, BK_EV_READ);
	}
}

/* Lay backlog frames over posted buffers, one grant-copy batch. -errno: device failed. */
static int rx_deliver(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;
	struct bk_device *dev = nd->dev;
	uint32_t avail, nfr = 0, nseg = 0, nrsp = 0;
	bool waiting = false;
	int r;

	if (list_empty(&q->backlog)) {
		q->rx_waiting = false;
		return 0;
	}
	if (netif_ring_unconsumed(&q->rx, &avail) < 0)
		return queue_fatal(q, "impossible number of requests on the RX ring");
	while (!list_empty(&q->backlog) && nfr < NETIF_RX_BATCH) {
		struct netif_rx_frame *f =
			list_first_entry(&q->backlog, struct netif_rx_frame, link);
		struct nif_rx_req reqs[NETIF_RX_MAX_SLOTS];
		struct netif_rx_seg rs[NETIF_RX_MAX_SLOTS];
		uint32_t need = netif_rx_slots(f->len, &f->meta);
		int n;

		if (need == 0) {
			q->stats->net_rx_drop_offload++;
			rx_free_frame(q, f);
			continue;
		}
		if (avail < need) {
			if (!netif_ring_rx_wait(&q->rx, need)) {
				waiting = true;
				break;
			}
			if (netif_ring_unconsumed(&q->rx, &avail) < 0)
				return queue_fatal(q,
						   "impossible number of requests on the RX ring");
			if (avail < need) {
				waiting = true;
				break;
			}
		}
		netif_ring_copy(&q->rx, reqs, need);
		netif_ring_consume(&q->rx, need);
		netif_journal_take(q, &q->rx, reqs, need);
		avail -= need;
		n = netif_rx_build(reqs, need, f->len, &f->meta, q->rsps + nrsp, rs);
		for (int s = 0; s < n; s++) {
			q->seg_rsp[nseg] = nrsp + rs[s].slot;
			q->segs[nseg++] = (struct bk_gnt_copy_seg){
				.local = f->data + rs[s].src_off,
				.domid = dev->domid,
				.ref = rs[s].gref,
				.offset = rs[s].dst_off,
				.len = rs[s].len,
				.to_guest = true,
			};
		}
		f->rsp0 = nrsp;
		nrsp += need;
		list_del(&f->link);
		q->backlog_bytes -= f->len;
		q->stats->inflight--;
		q->rx_frames[nfr++] = f;
	}
	if (nseg) {
		r = bk_gnt_copy(nd->gnt, q->segs, nseg);
		if (r < 0) {
			dev_warn_rl(dev, "q%u: grant copy of %u RX segments: %s", q->index, nseg,
				    strerror(-r));
			for (uint32_t s = 0; s < nseg; s++)
				q->segs[s].status = GNTST_GENERAL_ERROR;
		}
		for (uint32_t s = 0; s < nseg; s++)
			if (q->segs[s].status != 0)
				q->rsps[q->seg_rsp[s]].rsp.status = NIF_RSP_ERROR;
	}
	for (uint32_t i = 0; i < nrsp; i++)
		netif_ring_put(&q->rx, &q->rsps[i]);
	netif_journal_answered(q, &q->rx);
	for (uint32_t i = 0; i < nfr; i++) {
		struct netif_rx_frame *f = q->rx_frames[i];
		bool ok = true;

		for (uint32_t s = 0; s < nseg; s++)
			if (q->seg_rsp[s] >= f->rsp0 &&
			    q->seg_rsp[s] < f->rsp0 + netif_rx_slots(f->len, &f->meta) &&
			    q->segs[s].status != 0)
				ok = false;
		if (ok) {
			q->stats->net_rx_packets++;
			q->stats->net_rx_bytes += f->len;
		} else {
			q->stats->net_rx_drop_copy++;
			q->stats->errors++;
		}
		free(f);
	}
	if (nrsp) {
		bool ev = netif_ring_push(&q->rx);

		netif_journal_pushed(q, &q->rx);
		if (ev)
			notify(q, q->rx_port);
	}

	if (waiting && !q->rx_waiting) {
		q->rx_waiting = true;
		q->rx_wait_since = bk_loop_now(nd_loop(nd));
		q->stats->ring_full++;
	} else if (!waiting) {
		q->rx_waiting = false;
	}
	rx_resume_tap(q);
	return (int)nfr;
}

static int rx_run(struct netif_queue *q)
{
	rx_expire(q, bk_loop_now(nd_loop(q->nd)));
	/* Expiry may have emptied the backlog, and rx_deliver then returns before looking. */
	rx_resume_tap(q);
	rx_read_tap(q);
	return rx_deliver(q);
}

/* ------------------------------------------------------------------------------------------ */
/* Events and the per-turn hook. */

static void timer_update(struct netif_dev *nd)
{
	bool backlog = false;

	for (unsigned int i = 0; i < nd->nr_queues; i++)
		backlog |= !list_empty(&nd->queues[i].backlog);
	if (!backlog) {
		bk_timer_stop(nd->timer);
		return;
	}
	if (!bk_timer_active(nd->timer)) {
		uint64_t ms = nd->rx_notify ? 1000 : NETIF_RX_POLL_MS;

		bk_timer_rearm(nd->timer, ms, ms);
	}
}

void netif_hook_cb(void *data)
{
	struct netif_dev *nd = data;
	bool again = false, stalled = false;
	double now = bk_loop_now(nd_loop(nd));

	if (!nd->running) {
		bk_hook_enable(nd->hook, false);
		return;
	}
	for (unsigned int i = 0; i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];
		bool kicked = q->kicked_tx;
		int n;

		q->kicked_tx = false;
		if (kicked || q->tx_more) {
			n = tx_run(q);
			if (n < 0)
				return;
			if (kicked && n == 0 && !q->kicked_rx)
				q->stats->spurious++;
		}
		q->kicked_rx = false;
		if (rx_run(q) < 0)
			return;
		/* A paused TAP still has a backlog to deliver while buffers are posted. */
		again |= q->tx_more || q->tap_ready || (!list_empty(&q->backlog) && !q->rx_waiting);
		stalled |= q->rx_waiting && now - q->rx_wait_since >= NETIF_RX_STALL_S;
	}
	carrier(nd, !stalled);
	timer_update(nd);
	bk_hook_enable(nd->hook, again);
}

void netif_timer_cb(void *data)
{
	struct netif_dev *nd = data;

	/* Expiry, stall detection, and polling a frontend that does not notify for RX. */
	if (nd->running)
		netif_hook_cb(nd);
}

void netif_evtchn_cb(void *data, int fd, unsigned int events)
{
	struct netif_dev *nd = data;
	/* Bounded per callback: a storming guest leaves the rest for the next turn. */
	unsigned int left = 2 * BK_MAX(nd->nr_queues, 1U);
	uint32_t port;

	while (left--) {
		int r = bk_evtchn_pending(nd->evtchn, &port);

		if (r == -EFBIG) {
			/* Events were lost: every port is pending and masked. */
			for (unsigned int i = 0; i < nd->nr_queues; i++) {
				struct netif_queue *q = &nd->queues[i];

				q->kicked_tx = q->kicked_rx = true;
				bk_evtchn_unmask(nd->evtchn, q->tx_port);
				if (q->split)
					bk_evtchn_unmask(nd->evtchn, q->rx_port);
			}
			break;
		}
		if (r < 0)
			break;
		for (unsigned int i = 0; i < nd->nr_queues; i++) {
			struct netif_queue *q = &nd->queues[i];

			if (port == q->tx_port) {
				q->kicked_tx = true;
				q->stats->notify_in++;
			}
			if (port == q->rx_port) {
				q->kicked_rx = true;
				if (q->split)
					q->stats->notify_in++;
			}
		}
		bk_evtchn_unmask(nd->evtchn, port);
	}
	if (nd->running)
		bk_hook_enable(nd->hook, true);
}

void netif_tap_cb(void *data, int fd, unsigned int events)
{
	struct netif_queue *q = data;

	q->tap_ready = true;
	if (q->nd->running)
		bk_hook_enable(q->nd->hook, true);
}

void netif_start(struct netif_dev *nd)
{
	for (unsigned int i = 0; i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];
		int r = bk_tap_watch(nd->tap, i, nd_loop(nd), BK_EV_READ, netif_tap_cb, q);

		if (r < 0) {
			bk_device_fail(nd->dev, r, "q%u: watching tap %s: %s", i, nd->ifname,
				       strerror(-r));
			nd->running = false;
			return;
		}
		/* Requests may be waiting already; a guest a previous run served gets an event. */
		q->kicked_tx = q->kicked_rx = true;
		notify(q, q->tx_port);
		if (q->split)
			notify(q, q->rx_port);
	}
	nd->carrier_off = false;
	bk_tap_set_carrier(nd->tap, true);
	bk_hook_enable(nd->hook, true);
}
