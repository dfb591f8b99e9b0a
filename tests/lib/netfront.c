// SPDX-License-Identifier: MIT
/* The test netfront (see netfront.h): a guest's network frontend played through the simulation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "guest_pages.h"
#include "loop.h"
#include "netfront.h"
#include "netif/netif.h"
#include "blkif/blkif.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

#define NF_MAX_QUEUES 8U
#define NF_RING NETIF_RING_SIZE
#define NF_RAW_PAGES 64U

struct nf_queue {
	bool set_up;
	uint32_t tx_pfn, rx_pfn, tx_ref, rx_ref;
	uint8_t *tx_ring, *rx_ring;
	uint32_t tx_port, rx_port; /* the same when not split */
	/* TX */
	uint32_t tx_prod_pvt, tx_cons;
	bool tx_used[NF_RING];
	uint32_t tx_id_pfn[NF_RING], tx_id_ref[NF_RING];
	/* RX */
	uint32_t rx_prod_pvt, rx_cons;
	uint32_t rx_buf_pfn[NF_RING], rx_buf_ref[NF_RING];
	uint16_t rx_posted_id[NF_RING]; /* by ring position */
	unsigned int rx_bufs;
	bool rx_hold;
	uint16_t rx_held[NF_RING];
	unsigned int nr_held;
};

struct bk_netfront {
	struct bk_bf_env *env;
	struct bk_xbfront *xbf;
	uint32_t domid, devid;
	struct bk_nf_params p;
	unsigned int nr_queues;
	struct bk_gpages pages;
	struct nf_queue q[NF_MAX_QUEUES];
	struct bk_nf_tx_counts txc;
	unsigned int rx_errors;
	uint32_t raw_pfn[NF_RAW_PAGES], raw_ref[NF_RAW_PAGES];
	unsigned int nr_raw;
};

int bk_nf_env_new(struct bk_bf_env *env)
{
	return bk_nf_env_new_threads(env, 0);
}

int bk_nf_env_new_threads(struct bk_bf_env *env, unsigned int io_threads)
{
	static const struct bk_backend_ops *const kinds[] = { &blkif_backend_ops,
							      &netif_backend_ops, NULL };

	return bk_bf_env_new_threads(env, kinds, io_threads);
}

int bk_nf_env_add_vif(struct bk_bf_env *env, uint32_t domid, uint32_t devid,
		      const char *const *extra_be)
{
	struct bk_ts_dev d = {
		.kind = "vif", .domid = domid, .devid = devid, .extra_be = extra_be
	};

	return bk_ts_attach(env->ts, &d);
}

/* ------------------------------------------------------------------------------------------ */
/* Pages. */

static uint8_t *page(struct bk_netfront *f, uint32_t pfn)
{
	return bk_sim_guest_page(f->env->sim, f->domid, pfn);
}

static int grant(struct bk_netfront *f, uint32_t pfn, bool ro, uint32_t *ret)
{
	return bk_sim_guest_grant(f->env->sim, f->domid, f->xbf->be_domid, pfn, ro, ret);
}

static int grant_new_page(struct bk_netfront *f, bool ro, uint32_t *ret_pfn, uint32_t *ret_ref)
{
	int r = bk_gpages_alloc(&f->pages, 1, ret_pfn);

	if (r < 0)
		return r;
	memset(page(f, *ret_pfn), 0, BK_PAGE_SIZE);
	r = grant(f, *ret_pfn, ro, ret_ref);
	if (r < 0)
		bk_gpages_free(&f->pages, *ret_pfn);
	return r;
}

static void drop_page(struct bk_netfront *f, uint32_t pfn, uint32_t ref)
{
	bk_sim_guest_revoke(f->env->sim, f->domid, ref);
	bk_gpages_free(&f->pages, pfn);
}

int bk_nf_grant_bytes(struct bk_netfront *f, const void *data, size_t len, uint16_t offset,
		      uint32_t *ret_ref)
{
	uint32_t pfn;
	int r;

	if (f->nr_raw == NF_RAW_PAGES || offset + len > BK_PAGE_SIZE)
		return -EBUSY;
	r = grant_new_page(f, true, &pfn, ret_ref);
	if (r < 0)
		return r;
	memcpy(page(f, pfn) + offset, data, len);
	f->raw_pfn[f->nr_raw] = pfn;
	f->raw_ref[f->nr_raw++] = *ret_ref;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Set up and xenbus. */

int bk_nf_open(struct bk_bf_env *env, uint32_t domid, uint32_t devid, const struct bk_nf_params *p,
	       struct bk_netfront **ret)
{
	unsigned int nr_queues = BK_MAX(p->nr_queues, 1U);
	struct bk_netfront *f;
	int r;

	if (nr_queues > NF_MAX_QUEUES)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	r = bk_front_open(env, "vif", domid, devid, p->pfn_base, p->pfn_count, &f->pages, &f->xbf);
	if (r < 0) {
		free(f);
		return r;
	}
	f->env = env;
	f->domid = domid;
	f->devid = devid;
	f->p = *p;
	f->nr_queues = nr_queues;
	*ret = f;
	return 0;
}

struct bk_xbfront *bk_nf_xbf(struct bk_netfront *f)
{
	return f->xbf;
}

unsigned int bk_nf_nr_queues(const struct bk_netfront *f)
{
	return f->nr_queues;
}

static bool push_check(struct nif_sring_hdr *h, uint32_t old, uint32_t new)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	WRITE_ONCE(h->req_prod, new);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return (uint32_t)(new - READ_ONCE(h->req_event)) < (uint32_t)(new - old);
}

static void rx_post(struct nf_queue *q, uint16_t id)
{
	struct nif_rx_req rq = { .id = id, .gref = q->rx_buf_ref[id] };

	memcpy(q->rx_ring + sizeof(struct nif_sring_hdr) + (q->rx_prod_pvt % NF_RING) * 8, &rq, 8);
	q->rx_posted_id[q->rx_prod_pvt % NF_RING] = id;
	q->rx_prod_pvt++;
}

static void rx_push(struct bk_netfront *f, struct nf_queue *q)
{
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)q->rx_ring;
	uint32_t old = READ_ONCE(h->req_prod);

	/* Without feature-rx-notify (Mini-OS) the frontend never kicks for RX buffers. */
	if (push_check(h, old, q->rx_prod_pvt) && !f->p.no_rx_notify)
		bk_sim_guest_evtchn_notify(f->env->sim, f->domid, q->rx_port);
}

static int setup_queue(struct bk_netfront *f, unsigned int i)
{
	struct nf_queue *q = &f->q[i];
	struct nif_sring_hdr *h;
	int r;

	if ((r = grant_new_page(f, false, &q->tx_pfn, &q->tx_ref)) < 0 ||
	    (r = grant_new_page(f, false, &q->rx_pfn, &q->rx_ref)) < 0)
		return r;
	q->tx_ring = page(f, q->tx_pfn);
	q->rx_ring = page(f, q->rx_pfn);
	h = (struct nif_sring_hdr *)q->tx_ring;
	h->req_event = h->rsp_event = 1;
	h = (struct nif_sring_hdr *)q->rx_ring;
	h->req_event = h->rsp_event = 1;
	q->tx_prod_pvt = q->tx_cons = q->rx_prod_pvt = q->rx_cons = 0;
	r = bk_sim_guest_evtchn_alloc_unbound(f->env->sim, f->domid, f->xbf->be_domid, &q->tx_port);
	if (r < 0)
		return r;
	q->rx_port = q->tx_port;
	if (f->p.split) {
		r = bk_sim_guest_evtchn_alloc_unbound(f->env->sim, f->domid, f->xbf->be_domid,
						      &q->rx_port);
		if (r < 0)
			return r;
	}
	q->set_up = true;
	q->rx_bufs = f->p.rx_bufs ? BK_MIN(f->p.rx_bufs, NF_RING) : NF_RING;
	for (uint16_t id = 0; id < q->rx_bufs; id++) {
		r = grant_new_page(f, false, &q->rx_buf_pfn[id], &q->rx_buf_ref[id]);
		if (r < 0)
			return r;
		rx_post(q, id);
	}
	h->req_prod = q->rx_prod_pvt;
	return 0;
}

static int write_queue_keys(struct bk_netfront *f, unsigned int i)
{
	struct nf_queue *q = &f->q[i];
	char prefix[32] = "", key[64];
	int r;

	if (f->nr_queues > 1)
		snprintf(prefix, sizeof(prefix), "queue-%u/", i);
	snprintf(key, sizeof(key), "%stx-ring-ref", prefix);
	if ((r = bk_xbf_write(f->xbf, key, "%u", q->tx_ref)) < 0)
		return r;
	snprintf(key, sizeof(key), "%srx-ring-ref", prefix);
	if ((r = bk_xbf_write(f->xbf, key, "%u", q->rx_ref)) < 0)
		return r;
	if (f->p.split) {
		snprintf(key, sizeof(key), "%sevent-channel-tx", prefix);
		if ((r = bk_xbf_write(f->xbf, key, "%u", q->tx_port)) < 0)
			return r;
		snprintf(key, sizeof(key), "%sevent-channel-rx", prefix);
		return bk_xbf_write(f->xbf, key, "%u", q->rx_port);
	}
	snprintf(key, sizeof(key), "%sevent-channel", prefix);
	return bk_xbf_write(f->xbf, key, "%u", q->tx_port);
}

int bk_nf_prepare(struct bk_netfront *f)
{
	static const char *const offloads[] = { "feature-sg", "feature-gso-tcpv4",
						"feature-gso-tcpv6", "feature-ipv6-csum-offload" };
	int r;

	for (unsigned int i = 0; i < f->nr_queues; i++)
		if ((r = setup_queue(f, i)) < 0 || (r = write_queue_keys(f, i)) < 0)
			return r;
	if (f->p.nr_queues >= 1 &&
	    (r = bk_xbf_write(f->xbf, "multi-queue-num-queues", "%u", f->p.nr_queues)) < 0)
		return r;
	if ((r = bk_xbf_write(f->xbf, "request-rx-copy", "1")) < 0)
		return r;
	if (!f->p.no_rx_notify && (r = bk_xbf_write(f->xbf, "feature-rx-notify", "1")) < 0)
		return r;
	for (unsigned int i = 0; !f->p.no_offloads && i < ARRAY_SIZE(offloads); i++)
		if ((r = bk_xbf_write(f->xbf, offloads[i], "1")) < 0)
			return r;
	return 0;
}

int bk_nf_connect(struct bk_netfront *f)
{
	int r;

	if (!f->p.skip_initwait && (r = bk_xbf_wait_be_state(f->xbf, BK_XB_INITWAIT, 0)) < 0)
		return r;
	if ((r = bk_nf_prepare(f)) < 0 || (r = bk_xbf_set_state(f->xbf, BK_XB_CONNECTED)) < 0)
		return r;
	return bk_xbf_wait_be_state(f->xbf, BK_XB_CONNECTED, 0);
}

int bk_nf_disconnect(struct bk_netfront *f)
{
	int r;

	if ((r = bk_xbf_set_state(f->xbf, BK_XB_CLOSING)) < 0 ||
	    (r = bk_xbf_wait_be_state(f->xbf, BK_XB_CLOSING, 0)) < 0 ||
	    (r = bk_xbf_set_state(f->xbf, BK_XB_CLOSED)) < 0)
		return r;
	return bk_xbf_wait_be_state(f->xbf, BK_XB_CLOSED, 0);
}

void bk_nf_close(struct bk_netfront *f)
{
	if (!f)
		return;
	for (unsigned int i = 0; i < f->nr_queues; i++) {
		struct nf_queue *q = &f->q[i];

		if (!q->set_up)
			continue;
		for (unsigned int id = 0; id < NF_RING; id++)
			if (q->tx_used[id])
				drop_page(f, q->tx_id_pfn[id], q->tx_id_ref[id]);
		for (unsigned int id = 0; id < q->rx_bufs; id++)
			drop_page(f, q->rx_buf_pfn[id], q->rx_buf_ref[id]);
		bk_sim_guest_evtchn_close(f->env->sim, f->domid, q->tx_port);
		if (q->rx_port != q->tx_port)
			bk_sim_guest_evtchn_close(f->env->sim, f->domid, q->rx_port);
		drop_page(f, q->tx_pfn, q->tx_ref);
		drop_page(f, q->rx_pfn, q->rx_ref);
	}
	for (unsigned int i = 0; i < f->nr_raw; i++)
		drop_page(f, f->raw_pfn[i], f->raw_ref[i]);
	bk_front_close(&f->pages, f->xbf);
	free(f);
}

/* ------------------------------------------------------------------------------------------ */
/* TX. */

struct nif_sring_hdr *bk_nf_tx_sring(struct bk_netfront *f, unsigned int q)
{
	return (struct nif_sring_hdr *)f->q[q].tx_ring;
}

struct nif_sring_hdr *bk_nf_rx_sring(struct bk_netfront *f, unsigned int q)
{
	return (struct nif_sring_hdr *)f->q[q].rx_ring;
}

static union nif_tx_slot *tx_slot(struct nf_queue *q, uint32_t idx)
{
	return (union nif_tx_slot *)(q->tx_ring + sizeof(struct nif_sring_hdr)) + idx % NF_RING;
}

void bk_nf_tx_put_raw(struct bk_netfront *f, unsigned int qi, const union nif_tx_slot *slot)
{
	struct nf_queue *q = &f->q[qi];

	memcpy(tx_slot(q, q->tx_prod_pvt), slot, sizeof(*slot));
	q->tx_prod_pvt++;
}

int bk_nf_kick(struct bk_netfront *f, unsigned int q)
{
	return bk_sim_guest_evtchn_notify(f->env->sim, f->domid, f->q[q].tx_port);
}

unsigned int bk_nf_take_notifies(struct bk_netfront *f, unsigned int qi)
{
	struct nf_queue *q = &f->q[qi];
	unsigned int n = bk_sim_guest_evtchn_take(f->env->sim, f->domid, q->tx_port);

	if (f->p.split)
		n += bk_sim_guest_evtchn_take(f->env->sim, f->domid, q->rx_port);
	return n;
}

void bk_nf_tx_push(struct bk_netfront *f, unsigned int qi)
{
	struct nf_queue *q = &f->q[qi];
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)q->tx_ring;

	push_check(h, READ_ONCE(h->req_prod), q->tx_prod_pvt);
	bk_nf_kick(f, qi);
}

static int tx_id(struct nf_queue *q)
{
	for (int id = 0; id < (int)NF_RING; id++)
		if (!q->tx_used[id])
			return id;
	return -EBUSY;
}

int bk_nf_send(struct bk_netfront *f, unsigned int qi, const uint8_t *frame, size_t len,
	       const struct bk_nf_tx *o)
{
	struct nf_queue *q = &f->q[qi];
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)q->tx_ring;
	unsigned int n = o->nr_slots;
	bool gso = o->gso_type != NIF_GSO_TYPE_NONE;
	size_t done = 0, first_room = BK_PAGE_SIZE - o->first_offset;
	uint32_t old = READ_ONCE(h->req_prod);

	if (len == 0 || len > 0xffff || o->first_offset >= BK_PAGE_SIZE)
		return -EINVAL;
	if (n == 0)
		n = 1 + (unsigned int)BK_DIV_ROUND_UP(len > first_room ? len - first_room : 0,
						      BK_PAGE_SIZE);
	if (q->tx_prod_pvt - q->tx_cons + n + gso > NF_RING)
		return -EBUSY;
	for (unsigned int s = 0; s < n; s++) {
		size_t left = len - done, room = s ? BK_PAGE_SIZE : first_room;
		/* Even pieces, the last takes the rest; each fits its page. */
		size_t chunk = s + 1 == n ? left : BK_MIN(room, BK_DIV_ROUND_UP(left, n - s));
		uint16_t off = s ? 0 : o->first_offset;
		union nif_tx_slot slot;
		uint32_t pfn, ref;
		int id = tx_id(q), r;

		if (chunk > room || id < 0)
			return id < 0 ? id : -EINVAL;
		r = grant_new_page(f, true, &pfn, &ref);
		if (r < 0)
			return r;
		memcpy(page(f, pfn) + off, frame + done, chunk);
		q->tx_used[id] = true;
		q->tx_id_pfn[id] = pfn;
		q->tx_id_ref[id] = ref;
		memset(&slot, 0, sizeof(slot));
		slot.req.gref = ref;
		slot.req.offset = off;
		slot.req.id = (uint16_t)id;
		slot.req.size = (uint16_t)(s ? chunk : len);
		if (s == 0)
			slot.req.flags = o->flags | (gso ? NIF_TXF_EXTRA_INFO : 0);
		if (s + 1 < n)
			slot.req.flags |= NIF_TXF_MORE_DATA;
		bk_nf_tx_put_raw(f, qi, &slot);
		if (s == 0 && gso) {
			memset(&slot, 0, sizeof(slot));
			slot.extra.type = NIF_EXTRA_TYPE_GSO;
			slot.extra.u.gso.size = o->gso_size;
			slot.extra.u.gso.type = o->gso_type;
			bk_nf_tx_put_raw(f, qi, &slot);
		}
		done += chunk;
	}
	if (push_check(h, old, q->tx_prod_pvt))
		bk_sim_guest_evtchn_notify(f->env->sim, f->domid, q->tx_port);
	return 0;
}

unsigned int bk_nf_tx_reap(struct bk_netfront *f, unsigned int qi)
{
	struct nf_queue *q = &f->q[qi];
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)q->tx_ring;
	uint32_t prod = READ_ONCE(h->rsp_prod);
	unsigned int n = 0;

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	for (; q->tx_cons != prod; q->tx_cons++, n++) {
		struct nif_tx_rsp rsp;

		memcpy(&rsp, tx_slot(q, q->tx_cons), sizeof(rsp));
		switch (rsp.status) {
		case NIF_RSP_OKAY:
			f->txc.okay++;
			break;
		case NIF_RSP_ERROR:
			f->txc.error++;
			break;
		case NIF_RSP_DROPPED:
			f->txc.dropped++;
			break;
		case NIF_RSP_NULL:
			f->txc.null++;
			continue;
		default:
			f->txc.other++;
			break;
		}
		if (rsp.id < NF_RING && q->tx_used[rsp.id]) {
			drop_page(f, q->tx_id_pfn[rsp.id], q->tx_id_ref[rsp.id]);
			q->tx_used[rsp.id] = false;
		} else {
			f->txc.unknown++;
		}
	}
	/* Ask for an event at the next response, as netfront does. */
	WRITE_ONCE(h->rsp_event, q->tx_cons + 1);
	return n;
}

static bool tx_all_answered(void *data)
{
	struct bk_netfront *f = ((void **)data)[0];
	unsigned int qi = *(unsigned int *)((void **)data)[1];

	bk_nf_tx_reap(f, qi);
	return f->q[qi].tx_cons == f->q[qi].tx_prod_pvt;
}

int bk_nf_tx_wait(struct bk_netfront *f, unsigned int q)
{
	void *arg[2] = { f, &q };

	return bk_test_pump_until(f->env->loop, tx_all_answered, arg, 0);
}

void bk_nf_tx_counts(const struct bk_netfront *f, struct bk_nf_tx_counts *ret)
{
	*ret = f->txc;
}

/* ------------------------------------------------------------------------------------------ */
/* RX. */

static union nif_rx_slot *rx_slot(struct nf_queue *q, uint32_t idx)
{
	return (union nif_rx_slot *)(q->rx_ring + sizeof(struct nif_sring_hdr)) + idx % NF_RING;
}

void bk_nf_rx_hold(struct bk_netfront *f, unsigned int qi, bool hold)
{
	struct nf_queue *q = &f->q[qi];

	q->rx_hold = hold;
	if (hold)
		return;
	for (unsigned int i = 0; i < q->nr_held; i++)
		rx_post(q, q->rx_held[i]);
	q->nr_held = 0;
	rx_push(f, q);
}

unsigned int bk_nf_rx_errors(const struct bk_netfront *f)
{
	return f->rx_errors;
}

int bk_nf_recv(struct bk_netfront *f, unsigned int qi, uint8_t *buf, size_t size,
	       struct bk_nf_rx_info *info)
{
	struct nf_queue *q = &f->q[qi];
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)q->rx_ring;
	uint32_t prod = READ_ONCE(h->rsp_prod), i = q->rx_cons;
	size_t len = 0;
	bool bad = false, more;

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	memset(info, 0, sizeof(*info));
	if (i == prod) {
		WRITE_ONCE(h->rsp_event, i + 1);
		return -EAGAIN;
	}
	if (prod - i > NF_RING) {
		f->rx_errors++; /* "RX producer index going backwards" */
		return -EPROTO;
	}
	do {
		union nif_rx_slot s;

		if (i == prod)
			return -EAGAIN; /* not whole yet */
		memcpy(&s, rx_slot(q, i), sizeof(s));
		if (s.rsp.id != q->rx_posted_id[i % NF_RING])
			bad = true; /* netfront finds the buffer by ring position */
		if (s.rsp.status < 0 || s.rsp.offset + s.rsp.status > (int)BK_PAGE_SIZE ||
		    len + (size_t)s.rsp.status > size) {
			bad = true;
		} else {
			memcpy(buf + len,
			       page(f, q->rx_buf_pfn[q->rx_posted_id[i % NF_RING]]) + s.rsp.offset,
			       (size_t)s.rsp.status);
			len += (size_t)s.rsp.status;
		}
		if (i == q->rx_cons)
			info->flags = s.rsp.flags;
		more = s.rsp.flags & NIF_RXF_MORE_DATA;
		i++;
		if (i - 1 == q->rx_cons && (s.rsp.flags & NIF_RXF_EXTRA_INFO)) {
			union nif_rx_slot e;

			do {
				if (i == prod)
					return -EAGAIN;
				memcpy(&e, rx_slot(q, i), sizeof(e));
				if (e.extra.type == NIF_EXTRA_TYPE_GSO) {
					info->gso_type = e.extra.u.gso.type;
					info->gso_size = e.extra.u.gso.size;
					if (!e.extra.u.gso.size)
						bad = true;
				} else if (e.extra.type == 0 ||
					   e.extra.type >= NIF_EXTRA_TYPE_MAX) {
					bad = true;
				}
				i++;
			} while (e.extra.flags & NIF_EXTRA_FLAG_MORE);
		}
	} while (more);
	info->slots = i - q->rx_cons;
	if (info->slots > NETIF_RX_MAX_SLOTS)
		bad = true;
	/* Give the buffers back, as netfront refills its ring. */
	for (; q->rx_cons != i; q->rx_cons++) {
		uint16_t id = q->rx_posted_id[q->rx_cons % NF_RING];

		if (q->rx_hold)
			q->rx_held[q->nr_held++] = id;
		else
			rx_post(q, id);
	}
	if (!q->rx_hold)
		rx_push(f, q);
	if (bad) {
		f->rx_errors++;
		return -EPROTO;
	}
	return (int)len;
}

struct recv_wait {
	struct bk_netfront *f;
	uint8_t *buf;
	size_t size;
	struct bk_nf_rx_info *info;
	unsigned int q;
	int r;
};

static bool got_frame(void *data)
{
	struct recv_wait *w = data;

	for (unsigned int i = 0; i < w->f->nr_queues; i++) {
		w->r = bk_nf_recv(w->f, i, w->buf, w->size, w->info);
		if (w->r != -EAGAIN) {
			w->q = i;
			return true;
		}
	}
	return false;
}

int bk_nf_recv_wait(struct bk_netfront *f, uint8_t *buf, size_t size, struct bk_nf_rx_info *info,
		    unsigned int *ret_q)
{
	struct recv_wait w = { f, buf, size, info, 0, -EAGAIN };
	int r = bk_test_pump_until(f->env->loop, got_frame, &w, 0);

	if (r < 0)
		return r;
	if (ret_q)
		*ret_q = w.q;
	return w.r;
}
