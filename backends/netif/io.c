// SPDX-License-Identifier: MIT
/*
 * The netif data path. Everything runs from the device's once-per-turn hook: event channels
 * and TAP readiness only mark work. Per turn, every queue's work is gathered first, then one
 * grant-copy call moves the bytes of both directions for the whole device (gntdev splits it
 * into hypercalls), then the TAP writes and the responses:
 *   TX: copy the unconsumed slots out once, parse packets with netback's rules (proto.c), add
 *       every data slot (as many as the ring holds) to the batch, copied into a local arena;
 *       after the copy hand the frames to the TAP with their virtio_net_hdr (offload.c),
 *       answer one response per slot (NULL for extras). A fatal slot chain fails the device
 *       after the packets before it were answered.
 *   RX: expire old frames, read the TAP in place into the queue's store (the bounded backlog:
 *       no allocation or copy per frame), lay as many frames as the posted buffers take over
 *       the ring into the batch; after the copy answer each request in its own slot. No
 *       buffers: ask for an event (or poll, for a frontend without feature-rx-notify); a full
 *       backlog stops reading the TAP; no buffers for 60 s with frames waiting turns the
 *       carrier off (XSA-392) until buffers come back.
 * Nothing is held across turns except the RX backlog: a handover loses no request.
 *
 * Events (XSA-332, src/xen/evport.h as blkif): a port stays masked from its event until the
 * turn that served it, the TX port until its ring was taken to the end; an event that took
 * nothing is spurious, and a port storming with no work is backed off (ports_settle).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loop.h"

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
	if (nd->port)
		for (unsigned int i = 0; i < nd->nr_queues; i++)
			nd->port->ops->watch_events(nd->port, i, 0);
	return bk_device_fail(nd->dev, -EPROTO, "q%u: %s", q->index, why);
}

static void notify(struct netif_queue *q, uint32_t port)
{
	if (bk_evtchn_notify(q->nd->evtchn, port) == 0)
		q->stats->notify_out++;
}

/* ------------------------------------------------------------------------------------------ */
/* TX: guest -> TAP. */

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

/*
 * Take this turn's TX packets off the ring and add their data slots to the device's copy
 * batch. A fatal slot chain is kept for tx_finish(), which answers the packets before it.
 */
static void tx_prepare(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;
	uint32_t avail, pos = 0, npk = 0, nseg = nd->nseg, arena = 0;

	q->tx_more = false;
	q->tx_npk = q->tx_pos = q->tx_avail = 0;
	q->tx_fatal = NULL;
	if (netif_ring_unconsumed(&q->tx, &avail) < 0) {
		q->tx_fatal = "impossible number of requests on the TX ring";
		return;
	}
	if (avail == 0) {
		if (!netif_ring_final_check(&q->tx))
			return;
		if (netif_ring_unconsumed(&q->tx, &avail) < 0) {
			q->tx_fatal = "impossible number of requests on the TX ring";
			return;
		}
	}
	netif_ring_copy(&q->tx, q->txcopy, avail);
	while (pos < avail && npk < NETIF_TX_BATCH) {
		struct netif_tx_pkt *pkt = &q->pkts[npk];
		enum netif_tx_verdict v = netif_tx_parse(q->txcopy + pos, avail - pos, pkt);

		if (v == NETIF_TX_FATAL) {
			q->tx_fatal = pkt->why;
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
				nd->segs[nseg++] = (struct bk_gnt_copy_seg){
					.local = q->arena + arena + f->pkt_off,
					.domid = nd->dev->domid,
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
	nd->nseg = nseg;
	q->tx_npk = npk;
	q->tx_pos = pos;
	q->tx_avail = avail;
}

/* After the copy: hand the frames to the TAP, answer every slot. -errno: device failed. */
static int tx_finish(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;
	struct bk_device *dev = nd->dev;
	unsigned int ntap = 0;

	for (uint32_t i = 0; i < q->tx_npk; i++) {
		struct netif_tx_pkt *pkt = &q->pkts[i];
		int16_t st = NIF_RSP_OKAY;

		switch (pkt->verdict) {
		case NETIF_TX_OK:
			if (bk_gnt_copy_status(nd->segs + q->pkt_seg[i],
					       q->pkt_seg[i + 1] - q->pkt_seg[i])) {
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
		int done = nd->port->ops->write(nd->port, q->index, q->tpkts, ntap);

		for (unsigned int i = 0; i < ntap; i++) {
			if ((int)i >= done || q->tpkts[i].err) {
				q->stats->net_tx_drop_tap++;
				continue;
			}
			q->stats->net_tx_packets++;
			q->stats->net_tx_bytes += q->tiov[2 * i + 1].iov_len;
		}
	}
	if (q->tx_npk) {
		bool ev = netif_ring_push(&q->tx);

		netif_journal_pushed(q, &q->tx);
		if (ev)
			notify(q, q->tx_port);
	}
	if (q->tx_fatal)
		return queue_fatal(q, q->tx_fatal);
	q->tx_more = !q->credit_wait && (q->tx_pos < q->tx_avail || netif_ring_final_check(&q->tx));
	return (int)q->tx_pos;
}

/* ------------------------------------------------------------------------------------------ */
/* RX: TAP -> guest. The backlog's frames live in the queue's store, oldest first. */

static void rx_free_frame(struct netif_queue *q, struct netif_rx_frame *f)
{
	list_del(&f->link);
	q->backlog_bytes -= f->len;
	q->stats->inflight--;
	netif_store_release(&q->store, f);
}

void netif_queue_free_backlog(struct netif_queue *q)
{
	if (!q->backlog.next)
		return;
	while (!list_empty(&q->backlog))
		rx_free_frame(q, list_first_entry(&q->backlog, struct netif_rx_frame, link));
	q->rx_waiting = false;
}

/* A frame the TAP gave us (in place, in a slot of the store's reservation): keep or drop it. */
static void rx_take(struct netif_queue *q, struct netif_rx_frame *f,
		    const struct virtio_net_hdr *vh, size_t got)
{
	struct netif_offload_info info;
	size_t flen;
	const char *why;

	if (got < BK_TAP_VNET_HDR_LEN + NETIF_ETH_HLEN) {
		q->stats->net_rx_drop_offload++;
		return;
	}
	flen = got - BK_TAP_VNET_HDR_LEN;
	if (netif_rx_from_vnet(vh, f->data, flen, &q->nd->feat, &f->meta, &info, &why) < 0) {
		q->stats->net_rx_drop_offload++;
		dev_warn_rl(q->nd->dev, "q%u: dropping a %zu-byte frame for the guest: %s",
			    q->index, flen, why);
		return;
	}
	f->need = netif_rx_slots(flen, &f->meta);
	if (f->need == 0) {
		q->stats->net_rx_drop_offload++;
		return;
	}
	q->stats->net_rx_csum += info.csum_partial;
	q->stats->net_rx_gso += info.gso;
	q->stats->net_csum_sw += info.csum_sw;
	f = netif_store_commit(&q->store, f, flen);
	f->t = bk_loop_now(nd_loop(q->nd));
	list_add_tail(&f->link, &q->backlog);
	q->backlog_bytes += flen;
	q->stats->inflight++;
}

static void rx_pause_tap(struct netif_queue *q)
{
	/* The kernel queues (and drops) until the guest takes what we hold. */
	q->nd->port->ops->watch_events(q->nd->port, q->index, 0);
	q->tap_paused = true;
}

/*
 * Read what the TAP holds, in place into the store: NETIF_RX_POST_MAX reads at most per
 * submission (one io_uring_enter for all of them; readv one by one without io_uring), fewer
 * when the last one found the TAP drained, so few reads are wasted on an empty queue.
 */
static void rx_read_tap(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;
	unsigned int total = 0;

	if (!q->tap_ready || q->tap_paused)
		return;
	q->tap_ready = false;
	while (total < NETIF_RX_BATCH) {
		uint8_t hdr[NETIF_RX_POST_MAX][BK_TAP_VNET_HDR_LEN];
		struct iovec iov[2 * NETIF_RX_POST_MAX];
		struct bk_tap_pkt pkts[NETIF_RX_POST_MAX];
		struct netif_rx_frame *first = NULL;
		unsigned int n = BK_MAX(BK_MIN(q->rx_post, NETIF_RX_POST_MAX), 1U), got = 0;
		int r;

		if (q->backlog_bytes < NETIF_RX_BACKLOG_BYTES) {
			/* However large the frames, the bound is passed by one frame at most. */
			n = BK_MIN(n,
				   1 + (unsigned int)((NETIF_RX_BACKLOG_BYTES - q->backlog_bytes) /
						      NETIF_RX_MAX_LEN));
			first = netif_store_reserve(&q->store, n);
			if (!first && n > 1)
				first = netif_store_reserve(&q->store, n = 1);
		}
		if (!first) {
			rx_pause_tap(q);
			return;
		}
		for (unsigned int k = 0; k < n; k++) {
			iov[2 * k] = (struct iovec){ hdr[k], BK_TAP_VNET_HDR_LEN };
			iov[2 * k + 1] = (struct iovec){ netif_store_slot(first, k)->data,
							 NETIF_RX_MAX_LEN };
			pkts[k] = (struct bk_tap_pkt){ .iov = &iov[2 * k],
						       .iovcnt = 2,
						       .err = -EAGAIN };
		}
		r = nd->port->ops->read(nd->port, q->index, pkts, n);
		/* In slot order, which is the TAP's order; a slot may have found it empty. */
		for (unsigned int k = 0; r > 0 && k < n; k++) {
			struct virtio_net_hdr vh;

			if (pkts[k].err)
				continue;
			memcpy(&vh, hdr[k], sizeof(vh));
			rx_take(q, netif_store_slot(first, k), &vh, pkts[k].len);
			got++;
		}
		total += got;
		if (got < n) {
			q->rx_post = got + 1;
			return; /* drained */
		}
		q->rx_post = 2 * n;
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
	if (nd->carrier_off == !on || !nd->port)
		return;
	nd->carrier_off = !on;
	if (nd->port->ops->set_carrier)
		nd->port->ops->set_carrier(nd->port, on);
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
		q->nd->port->ops->watch_events(q->nd->port, q->index, BK_EV_READ);
	}
}

/*
 * Lay backlog frames over posted buffers and add their copies to the device's batch; the
 * frames stay in the store until rx_finish(). -errno: device failed.
 */
static int rx_prepare(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;
	uint32_t avail, nfr = 0, nrsp = 0, nseg = nd->nseg;

	q->rx_nfr = q->rx_nrsp = 0;
	q->rx_full = false;
	if (list_empty(&q->backlog))
		return 0;
	if (netif_ring_unconsumed(&q->rx, &avail) < 0)
		return queue_fatal(q, "impossible number of requests on the RX ring");
	while (!list_empty(&q->backlog) && nfr < NETIF_RX_BATCH) {
		struct netif_rx_frame *f =
			list_first_entry(&q->backlog, struct netif_rx_frame, link);
		struct nif_rx_req reqs[NETIF_RX_MAX_SLOTS];
		struct netif_rx_seg rs[NETIF_RX_MAX_SLOTS];
		uint32_t need = f->need;
		int n;

		if (avail < need) {
			if (!netif_ring_rx_wait(&q->rx, need)) {
				q->rx_full = true;
				break;
			}
			if (netif_ring_unconsumed(&q->rx, &avail) < 0)
				return queue_fatal(q,
						   "impossible number of requests on the RX ring");
			if (avail < need) {
				q->rx_full = true;
				break;
			}
		}
		netif_ring_copy(&q->rx, reqs, need);
		netif_ring_consume(&q->rx, need);
		netif_journal_take(q, &q->rx, reqs, need);
		avail -= need;
		n = netif_rx_build(reqs, need, f->len, &f->meta, q->rsps + nrsp, rs);
		f->seg0 = nseg;
		for (int s = 0; s < n; s++) {
			nd->seg_slot[nseg] = (uint16_t)rs[s].slot;
			nd->segs[nseg++] = (struct bk_gnt_copy_seg){
				.local = f->data + rs[s].src_off,
				.domid = nd->dev->domid,
				.ref = rs[s].gref,
				.offset = rs[s].dst_off,
				.len = rs[s].len,
				.to_guest = true,
			};
		}
		f->nseg = nseg - f->seg0;
		f->rsp0 = nrsp;
		nrsp += need;
		list_del(&f->link);
		q->backlog_bytes -= f->len;
		q->stats->inflight--;
		q->rx_frames[nfr++] = f;
	}
	nd->nseg = nseg;
	q->rx_nfr = nfr;
	q->rx_nrsp = nrsp;
	return 0;
}

/* After the copy: answer every request in its slot, count, free the frames. */
static void rx_finish(struct netif_queue *q)
{
	struct netif_dev *nd = q->nd;

	for (uint32_t i = 0; i < q->rx_nfr; i++) {
		struct netif_rx_frame *f = q->rx_frames[i];
		bool ok = true;

		for (uint32_t s = f->seg0; s < f->seg0 + f->nseg; s++) {
			if (nd->segs[s].status != 0) {
				q->rsps[f->rsp0 + nd->seg_slot[s]].rsp.status = NIF_RSP_ERROR;
				ok = false;
			}
		}
		if (ok) {
			q->stats->net_rx_packets++;
			q->stats->net_rx_bytes += f->len;
		} else {
			q->stats->net_rx_drop_copy++;
			q->stats->errors++;
		}
		netif_store_release(&q->store, f);
	}
	for (uint32_t i = 0; i < q->rx_nrsp; i++)
		netif_ring_put(&q->rx, &q->rsps[i]);
	netif_journal_answered(q, &q->rx);
	if (q->rx_nrsp) {
		bool ev = netif_ring_push(&q->rx);

		netif_journal_pushed(q, &q->rx);
		if (ev)
			notify(q, q->rx_port);
	}

	if (q->rx_full && !q->rx_waiting) {
		q->rx_waiting = true;
		q->rx_wait_since = bk_loop_now(nd_loop(nd));
		q->stats->ring_full++;
	} else if (!q->rx_full) {
		q->rx_waiting = false;
	}
	rx_resume_tap(q);
}

/* ------------------------------------------------------------------------------------------ */
/* Events and the per-turn hook. */

/* The turn's one grant-copy call, both directions, every queue. */
static void copy_batch(struct netif_dev *nd)
{
	int r;

	if (!nd->nseg)
		return;
	r = bk_gnt_copy_batch(nd->gnt, nd->segs, nd->nseg);
	if (r < 0)
		dev_warn_rl(nd->dev, "grant copy of %u segments: %s", nd->nseg, strerror(-r));
}

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

/* A port's event settled (XSA-332, evport.h): count it if it took nothing, say a storm once. */
static void port_settled(struct netif_queue *q, unsigned int v, const char *which)
{
	if (v & BK_EVPORT_SPURIOUS)
		q->stats->spurious++;
	if (v & BK_EVPORT_STORM)
		dev_warn_rl(q->nd->dev, "q%u: event storm on the %sport with no work, backing off",
			    q->index, which);
}

/*
 * After the queue's turn: a port whose event took nothing is spurious, a storming one backs
 * off; the others are unmasked, the TX port once its ring was taken to the end. Requests the
 * rate limit holds back are not the guest's doing.
 */
static void ports_settle(struct netif_queue *q)
{
	unsigned int v;

	bk_evport_took(&q->tx_ev, q->tx_ran ? q->tx_pos : 0);
	if (q->split) {
		bk_evport_took(&q->rx_ev, q->rx_nrsp);
		v = bk_evport_settle(&q->rx_ev, true, true);
		port_settled(q, v, "RX ");
		v = bk_evport_settle(&q->tx_ev, !q->tx_more, !q->credit_wait);
		port_settled(q, v, "TX ");
	} else {
		bk_evport_took(&q->tx_ev, q->rx_nrsp);
		v = bk_evport_settle(&q->tx_ev, !q->tx_more, !q->credit_wait);
		port_settled(q, v, "");
	}
}

/*
 * Every queue's work of the turn, gathered first (TX requests, TAP reads, RX buffers), then
 * one grant-copy call for all of it, then the TAP writes and the responses. A broken queue
 * fails the device after the work before it was answered.
 */
void netif_hook_cb(void *data)
{
	struct netif_dev *nd = data;
	struct netif_queue *fatal = NULL;
	bool again = false, stalled = false;
	double now = bk_loop_now(nd_loop(nd));
	unsigned int nq;

	if (!nd->running) {
		bk_hook_enable(nd->hook, false);
		return;
	}
	nd->nseg = 0;
	for (nq = 0; nq < nd->nr_queues && !fatal; nq++) {
		struct netif_queue *q = &nd->queues[nq];
		bool kicked = q->kicked_tx;

		q->kicked_tx = false;
		q->tx_ran = kicked || q->tx_more;
		if (q->tx_ran) {
			tx_prepare(q);
			if (q->tx_fatal) {
				fatal = q;
				q->rx_nfr = q->rx_nrsp = 0;
				nq++; /* its packets before the broken one are answered */
				break;
			}
		}
		rx_expire(q, now);
		/* Expiry may have emptied the backlog, and rx_prepare then returns early. */
		rx_resume_tap(q);
		rx_read_tap(q);
		if (rx_prepare(q) < 0)
			return; /* failed: nothing more is answered */
	}
	copy_batch(nd);
	for (unsigned int i = 0; i < nq && i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];

		if (q->tx_ran && tx_finish(q) < 0)
			return;
		rx_finish(q);
		ports_settle(q);
		/* A paused TAP still has a backlog to deliver while buffers are posted. */
		again |= q->tx_more || q->tap_ready || (!list_empty(&q->backlog) && !q->rx_waiting);
		stalled |= q->rx_waiting && now - q->rx_wait_since >= NETIF_RX_STALL_S;
	}
	if (fatal)
		return; /* tx_finish failed the device */
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

/* Events were lost: every port is pending and masked; the next turn serves and unmasks them. */
static void events_lost(void *data)
{
	struct netif_dev *nd = data;

	dev_warn_rl(nd->dev, "event channel queue overflowed, events lost: checking every queue");
	for (unsigned int i = 0; i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];

		q->kicked_tx = true;
		bk_evport_event(&q->tx_ev, true);
		if (q->split)
			bk_evport_event(&q->rx_ev, true);
	}
}

/* The kernel masked @port when it queued its event: it stays masked until its turn settles. */
static void port_event(void *data, uint32_t port)
{
	struct netif_dev *nd = data;

	for (unsigned int i = 0; i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];

		if (port == q->tx_port) {
			bk_evport_event(&q->tx_ev, false);
			q->kicked_tx = true;
			q->stats->notify_in++;
			return;
		}
		if (q->split && port == q->rx_port) {
			bk_evport_event(&q->rx_ev, false);
			q->stats->notify_in++;
			return;
		}
	}
	bk_evtchn_unmask(nd->evtchn, port);
}

void netif_evtchn_cb(void *data, int fd, unsigned int events)
{
	struct netif_dev *nd = data;

	/* Bounded per callback: a storming guest leaves the rest for the next turn. */
	bk_evtchn_drain(nd->evtchn, 2 * BK_MAX(nd->nr_queues, 1U), port_event, events_lost, nd);
	if (nd->running)
		bk_hook_enable(nd->hook, true);
}

/* A port's back-off is over: the next turn looks at the rings and unmasks it if caught up. */
void netif_backoff_cb(void *data)
{
	struct netif_queue *q = data;

	q->kicked_tx = true;
	if (q->nd->running)
		bk_hook_enable(q->nd->hook, true);
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
		int r = nd->port->ops->watch(nd->port, i, nd_loop(nd), BK_EV_READ, netif_tap_cb, q);

		if (r < 0) {
			bk_device_fail(nd->dev, r, "q%u: watching %s %s: %s", i, nd->port->kind,
				       nd->port->ops->name(nd->port), strerror(-r));
			nd->running = false;
			return;
		}
		/* Requests may be waiting already; a guest a previous run served gets an event. */
		q->kicked_tx = true;
		notify(q, q->tx_port);
		if (q->split)
			notify(q, q->rx_port);
	}
	nd->carrier_off = false;
	if (nd->port->ops->set_carrier)
		nd->port->ops->set_carrier(nd->port, true);
	bk_hook_enable(nd->hook, true);
}

/* ------------------------------------------------------------------------------------------ */
/* Buffers. */

int netif_io_alloc(struct netif_dev *nd)
{
	nd->segs = calloc((size_t)nd->nr_queues * NETIF_QUEUE_SEGS, sizeof(*nd->segs));
	nd->seg_slot = calloc((size_t)nd->nr_queues * NETIF_QUEUE_SEGS, sizeof(*nd->seg_slot));
	if (!nd->segs || !nd->seg_slot)
		return -ENOMEM;
	for (unsigned int i = 0; i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];

		q->txcopy = calloc(NETIF_RING_SIZE, sizeof(*q->txcopy));
		q->pkts = calloc(NETIF_TX_BATCH, sizeof(*q->pkts));
		q->pkt_off = calloc(NETIF_TX_BATCH, sizeof(*q->pkt_off));
		q->pkt_seg = calloc(NETIF_TX_BATCH + 1, sizeof(*q->pkt_seg));
		/* Large and touched only as far as the traffic goes (mmap'd by malloc). */
		q->arena = malloc(NETIF_TX_ARENA);
		q->tpkts = calloc(NETIF_TX_BATCH, sizeof(*q->tpkts));
		q->tiov = calloc(2 * NETIF_TX_BATCH, sizeof(*q->tiov));
		q->vhdr = calloc(NETIF_TX_BATCH, sizeof(*q->vhdr));
		q->rsps = calloc(NETIF_RING_SIZE, sizeof(*q->rsps));
		q->rx_frames = calloc(NETIF_RX_BATCH, sizeof(*q->rx_frames));
		if (!q->txcopy || !q->pkts || !q->pkt_off || !q->pkt_seg || !q->arena ||
		    netif_store_init(&q->store, NETIF_RX_STORE) < 0 || !q->tpkts || !q->tiov ||
		    !q->vhdr || !q->rsps || !q->rx_frames)
			return -ENOMEM;
	}
	return 0;
}

void netif_io_free(struct netif_dev *nd)
{
	for (unsigned int i = 0; nd->queues && i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];

		free(q->txcopy);
		free(q->pkts);
		free(q->pkt_off);
		free(q->pkt_seg);
		free(q->arena);
		netif_store_free(&q->store);
		free(q->tpkts);
		free(q->tiov);
		free(q->vhdr);
		free(q->rsps);
		free(q->rx_frames);
	}
	free(nd->segs);
	free(nd->seg_slot);
	nd->segs = NULL;
	nd->seg_slot = NULL;
	/* The queues' pointers dangle now: the queues are freed next (netif_rings_release). */
}
