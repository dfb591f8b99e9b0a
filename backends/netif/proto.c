// SPDX-License-Identifier: MIT
/* netif ring protocol: rings, TX slot-chain parsing (netback's rules), RX response layout. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "xen/ring.h"
#include "util/macros.h"

_Static_assert(sizeof(struct nif_sring_hdr) == 64, "ring header");
_Static_assert(sizeof(struct nif_tx_req) == 12, "tx request");
_Static_assert(sizeof(struct nif_tx_rsp) == 4, "tx response");
_Static_assert(sizeof(struct nif_extra) == 8, "extra info");
_Static_assert(offsetof(struct nif_extra, u.gso.size) == 2, "gso size");
_Static_assert(offsetof(struct nif_extra, u.gso.type) == 4, "gso type");
_Static_assert(sizeof(union nif_tx_slot) == 12, "tx slot");
_Static_assert(sizeof(struct nif_rx_req) == 8, "rx request");
_Static_assert(sizeof(struct nif_rx_rsp) == 8, "rx response");
_Static_assert(sizeof(union nif_rx_slot) == 8, "rx slot");
_Static_assert((NETIF_PAGE_SIZE - sizeof(struct nif_sring_hdr)) / 12 >= NETIF_RING_SIZE &&
		       (NETIF_PAGE_SIZE - sizeof(struct nif_sring_hdr)) / 12 < 2 * NETIF_RING_SIZE,
	       "tx ring entries");
_Static_assert((NETIF_PAGE_SIZE - sizeof(struct nif_sring_hdr)) / 8 < 2 * NETIF_RING_SIZE,
	       "rx ring entries");

/* Rings. */

static void ring_attach(struct netif_ring *r, void *page, uint32_t slot_size, uint32_t rsp_size)
{
	r->sring = page;
	r->slots = (uint8_t *)page + sizeof(struct nif_sring_hdr);
	r->slot_size = slot_size;
	r->rsp_size = rsp_size;
	r->req_cons = 0;
	r->rsp_prod_pvt = 0;
	r->rsp_pushed = 0;
}

void netif_ring_attach_tx(struct netif_ring *r, void *page)
{
	ring_attach(r, page, sizeof(union nif_tx_slot), sizeof(struct nif_tx_rsp));
}

void netif_ring_attach_rx(struct netif_ring *r, void *page)
{
	ring_attach(r, page, sizeof(union nif_rx_slot), sizeof(struct nif_rx_rsp));
}

int netif_ring_unconsumed(struct netif_ring *r, uint32_t *ret_n)
{
	return bk_ring_unconsumed(&r->sring->req_prod, r->req_cons, r->rsp_prod_pvt,
				  NETIF_RING_SIZE, ret_n);
}

static uint8_t *ring_slot(const struct netif_ring *r, uint32_t idx)
{
	return r->slots + (size_t)(idx & (NETIF_RING_SIZE - 1)) * r->slot_size;
}

void netif_ring_copy(const struct netif_ring *r, void *dst, uint32_t n)
{
	uint8_t *d = dst;

	/* The one read of each slot: everything after works on @dst. */
	for (uint32_t i = 0; i < n; i++)
		memcpy(d + (size_t)i * r->slot_size, ring_slot(r, r->req_cons + i), r->slot_size);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void netif_ring_consume(struct netif_ring *r, uint32_t n)
{
	r->req_cons += n;
}

void netif_ring_put(struct netif_ring *r, const void *rsp)
{
	/* Responses have no padding; the caller zeroed what it built (XSA-216). */
	memcpy(ring_slot(r, r->rsp_prod_pvt), rsp, r->rsp_size);
	r->rsp_prod_pvt++;
}

bool netif_ring_push(struct netif_ring *r)
{
	uint32_t old = r->rsp_pushed; /* ours, not the shared copy a guest may scribble on */

	r->rsp_pushed = r->rsp_prod_pvt;
	return bk_ring_publish_rsp(&r->sring->rsp_prod, &r->sring->rsp_event, old, r->rsp_prod_pvt);
}

bool netif_ring_final_check(struct netif_ring *r)
{
	return bk_ring_final_check(&r->sring->req_prod, &r->sring->req_event, r->req_cons);
}

bool netif_ring_rx_wait(struct netif_ring *r, uint32_t needed)
{
	return bk_ring_wait(&r->sring->req_prod, &r->sring->req_event, r->req_cons, needed);
}

/* TX parsing. */

#define VERDICT(v, w)                \
	do {                         \
		pkt->verdict = (v);  \
		pkt->why = (w);      \
		return pkt->verdict; \
	} while (0)

enum netif_tx_verdict netif_tx_parse(const union nif_tx_slot *slots, uint32_t avail,
				     struct netif_tx_pkt *pkt)
{
	struct nif_tx_req first;
	uint32_t i = 1, work, nfollow = 0;
	uint16_t left;
	const char *drop = NULL;
	bool more;

	pkt->verdict = NETIF_TX_OK;
	pkt->why = NULL;
	pkt->nr_consumed = 0;
	pkt->nr_extras = 0;
	pkt->nr_frags = 0;
	pkt->extra_mask = 0;
	if (avail == 0)
		VERDICT(NETIF_TX_FATAL, "no request to parse");
	if (avail > NETIF_RING_SIZE)
		avail = NETIF_RING_SIZE;
	first = slots[0].req;
	pkt->flags = first.flags;
	pkt->len = first.size;
	pkt->frag[0] = (struct netif_tx_frag){
		.gref = first.gref,
		.offset = first.offset,
		.size = first.size,
		.id = first.id,
	};
	work = avail - 1;

	/* Extras follow the first slot; each may announce another. */
	if (first.flags & NIF_TXF_EXTRA_INFO) {
		struct nif_extra ex;

		do {
			if (work == 0)
				VERDICT(NETIF_TX_FATAL, "missing extra info slot");
			work--;
			ex = slots[i++].extra;
			pkt->nr_extras++;
			if (ex.type == NIF_EXTRA_TYPE_NONE || ex.type >= NIF_EXTRA_TYPE_MAX)
				VERDICT(NETIF_TX_FATAL, "invalid extra info type");
			pkt->extra[ex.type - 1] = ex;
			pkt->extra_mask |= 1U << (ex.type - 1);
		} while (ex.flags & NIF_EXTRA_FLAG_MORE);
	}
	pkt->nr_consumed = (uint16_t)i;

	/* netback answers a multicast request at once, without looking at data slots. */
	if (pkt->extra_mask & (1U << (NIF_EXTRA_TYPE_MCAST_ADD - 1)))
		VERDICT(NETIF_TX_MCAST_ADD, NULL);
	if (pkt->extra_mask & (1U << (NIF_EXTRA_TYPE_MCAST_DEL - 1)))
		VERDICT(NETIF_TX_MCAST_DEL, NULL);

	/* The data slots after the first, as netback's xenvif_count_requests. */
	left = first.size;
	more = first.flags & NIF_TXF_MORE_DATA;
	while (more) {
		struct nif_tx_req tx;
		struct netif_tx_frag *f;

		if (nfollow >= work)
			VERDICT(NETIF_TX_FATAL, "slot chain longer than the requests posted");
		if (nfollow >= NETIF_TX_SLOTS_FATAL)
			VERDICT(NETIF_TX_FATAL, "more than 20 data slots after the first");
		if (!drop && nfollow >= NETIF_TX_SLOTS_OK)
			drop = "more than 18 data slots after the first";
		tx = slots[i + nfollow].req;
		/* A frame >= 64 KiB wrapped the first size; buggy frontends do it: drop only. */
		if (!drop && tx.size > left)
			drop = "data slot larger than the bytes left in the packet";
		left = (uint16_t)(left - tx.size);
		nfollow++;
		if ((uint32_t)tx.offset + tx.size > NETIF_PAGE_SIZE)
			VERDICT(NETIF_TX_FATAL, "data slot crosses a page boundary");
		f = &pkt->frag[nfollow];
		f->gref = tx.gref;
		f->offset = tx.offset;
		f->size = tx.size;
		f->id = tx.id;
		f->pkt_off = 0;
		more = tx.flags & NIF_TXF_MORE_DATA;
	}
	pkt->nr_consumed = (uint16_t)(i + nfollow);
	pkt->nr_frags = (uint16_t)(1 + nfollow);
	pkt->frag[0].size = left; /* the first slot's own share */
	if (drop)
		VERDICT(NETIF_TX_DROP, drop);
	if (left < NETIF_ETH_HLEN)
		VERDICT(NETIF_TX_DROP, "first slot shorter than an Ethernet header");
	if ((uint32_t)first.offset + left > NETIF_PAGE_SIZE)
		VERDICT(NETIF_TX_FATAL, "first slot crosses a page boundary");
	if (pkt->extra_mask & (1U << (NIF_EXTRA_TYPE_GSO - 1))) {
		const struct nif_extra *g = &pkt->extra[NIF_EXTRA_TYPE_GSO - 1];

		if (g->u.gso.size == 0)
			VERDICT(NETIF_TX_FATAL, "GSO size is zero");
		if (g->u.gso.type != NIF_GSO_TYPE_TCPV4 && g->u.gso.type != NIF_GSO_TYPE_TCPV6)
			VERDICT(NETIF_TX_FATAL, "unknown GSO type");
	}
	/* No drop: the sizes add up to the first size without wrapping. */
	for (uint32_t k = 1; k < pkt->nr_frags; k++)
		pkt->frag[k].pkt_off = pkt->frag[k - 1].pkt_off + pkt->frag[k - 1].size;
	return NETIF_TX_OK;
}

const struct nif_extra *netif_tx_pkt_gso(const struct netif_tx_pkt *pkt)
{
	if (pkt->verdict != NETIF_TX_OK || !(pkt->extra_mask & (1U << (NIF_EXTRA_TYPE_GSO - 1))))
		return NULL;
	return &pkt->extra[NIF_EXTRA_TYPE_GSO - 1];
}

uint32_t netif_tx_respond(struct netif_ring *r, const struct netif_tx_pkt *pkt, int16_t status)
{
	struct nif_tx_rsp rsp = { .id = pkt->frag[0].id, .status = status };
	uint32_t n = 0;

	if (pkt->nr_consumed == 0)
		return 0;
	netif_ring_put(r, &rsp);
	n++;
	for (uint32_t k = 0; k < pkt->nr_extras; k++, n++)
		netif_ring_put(r, &(struct nif_tx_rsp){ .id = 0, .status = NIF_RSP_NULL });
	for (uint32_t k = 1; k < pkt->nr_frags; k++, n++)
		netif_ring_put(r, &(struct nif_tx_rsp){ .id = pkt->frag[k].id, .status = status });
	return n;
}

/* RX layout. */

uint32_t netif_rx_slots(size_t len, const struct netif_rx_meta *meta)
{
	uint32_t n;

	if (len == 0 || len > NETIF_RX_MAX_LEN)
		return 0;
	n = (uint32_t)BK_DIV_ROUND_UP(len, NETIF_PAGE_SIZE);
	if (meta->gso_type != NIF_GSO_TYPE_NONE)
		n++;
	return n <= NETIF_RX_MAX_SLOTS ? n : 0;
}

int netif_rx_build(const struct nif_rx_req *reqs, uint32_t nr_reqs, size_t len,
		   const struct netif_rx_meta *meta, union nif_rx_slot *rsp,
		   struct netif_rx_seg *segs)
{
	bool gso = meta->gso_type != NIF_GSO_TYPE_NONE;
	uint32_t need = netif_rx_slots(len, meta);
	size_t done = 0;
	int nseg = 0;

	if (need == 0 || nr_reqs != need)
		return -EINVAL;
	for (uint32_t s = 0; s < nr_reqs; s++) {
		union nif_rx_slot *o = &rsp[s];
		uint16_t chunk, flags = 0;

		memset(o, 0, sizeof(*o)); /* XSA-216: nothing of ours in padding */
		/* The extras sit right after the first data slot. */
		if (gso && s == 1) {
			o->extra.type = NIF_EXTRA_TYPE_GSO;
			o->extra.u.gso.size = meta->gso_size;
			o->extra.u.gso.type = meta->gso_type;
			continue;
		}
		chunk = (uint16_t)BK_MIN(len - done, (size_t)NETIF_PAGE_SIZE);
		if (s == 0) {
			flags |= meta->flags & (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED);
			if (gso)
				flags |= NIF_RXF_EXTRA_INFO;
		}
		done += chunk;
		if (done < len)
			flags |= NIF_RXF_MORE_DATA;
		o->rsp.id = reqs[s].id;
		o->rsp.offset = 0;
		o->rsp.flags = flags;
		o->rsp.status = (int16_t)chunk;
		segs[nseg++] = (struct netif_rx_seg){
			.gref = reqs[s].gref,
			.dst_off = 0,
			.len = chunk,
			.src_off = (uint32_t)(done - chunk),
			.slot = (uint16_t)s,
		};
	}
	return nseg;
}
