// SPDX-License-Identifier: MIT
/* The test blkfront (see blkfront.h): a guest's block frontend played through the simulation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "guest_pages.h"
#include "device.h"
#include "loop.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

#define BF_MAX_QUEUES 16U
#define BF_IDS 1024U
/* Request ids carry nonzero high bytes so response padding left unzeroed would show. */
#define BF_ID_MAGIC 0xA5A5A5A5A5A50000ULL

struct bf_queue {
	bool set_up;
	uint32_t pfn0;
	unsigned int nr_pages;
	uint32_t refs[BLKIF_MAX_RING_PAGES];
	uint8_t *ring;
	uint32_t port;
	uint32_t nr_ents;
	uint32_t req_prod_pvt;
	uint32_t rsp_cons;
	unsigned int outstanding;
	struct bk_bf_io *ios[BF_IDS];
	unsigned int next_id;
};

struct bk_blkfront {
	struct bk_bf_env *env;
	struct bk_xbfront *xbf;
	uint32_t domid, devid;
	struct bk_bf_params p;
	unsigned int nr_queues;
	struct bk_gpages pages;
	struct bf_queue q[BF_MAX_QUEUES];
	unsigned int bad_padding, unknown_ids, responses;
	/*
	 * Persistent grants (both sides offered feature-persistent), as Linux blkfront: data and
	 * indirect pages are granted read-write once and reused; @pfree holds those not in use.
	 */
	bool pgnt;
	struct bf_pgrant {
		uint32_t pfn, ref;
	} * pfree;
	unsigned int nr_pfree, pfree_cap, nr_pgrants;
};

/* ------------------------------------------------------------------------------------------ */
/* Pages and grants. */

int bk_bf_alloc_page(struct bk_blkfront *f, uint32_t *ret_pfn)
{
	return bk_gpages_alloc(&f->pages, 1, ret_pfn);
}

void bk_bf_free_page(struct bk_blkfront *f, uint32_t pfn)
{
	bk_gpages_free(&f->pages, pfn);
}

void *bk_bf_page(struct bk_blkfront *f, uint32_t pfn)
{
	return bk_sim_guest_page(f->env->sim, f->domid, pfn);
}

int bk_bf_grant(struct bk_blkfront *f, uint32_t pfn, bool readonly, uint32_t *ret_ref)
{
	return bk_sim_guest_grant(f->env->sim, f->domid, f->xbf->be_domid, pfn, readonly, ret_ref);
}

static void end_grant(struct bk_blkfront *f, uint32_t ref)
{
	/* -EBUSY (still mapped) is possible for rings of a backend that went away badly. */
	bk_sim_guest_revoke(f->env->sim, f->domid, ref);
}

/* A page for a request: a persistent grant if @persist (granted read-write once), else fresh. */
static int io_page(struct bk_blkfront *f, bool persist, bool readonly, uint32_t *ret_pfn,
		   uint32_t *ret_ref)
{
	int r;

	if (persist && f->nr_pfree) {
		f->nr_pfree--;
		*ret_pfn = f->pfree[f->nr_pfree].pfn;
		*ret_ref = f->pfree[f->nr_pfree].ref;
		return 0;
	}
	if (persist && f->nr_pgrants == f->pfree_cap) {
		unsigned int cap = f->pfree_cap ? 2 * f->pfree_cap : 256;
		struct bf_pgrant *n = realloc(f->pfree, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		f->pfree = n;
		f->pfree_cap = cap;
	}
	r = bk_bf_alloc_page(f, ret_pfn);
	if (r < 0)
		return r;
	r = bk_bf_grant(f, *ret_pfn, persist ? false : readonly, ret_ref);
	if (r < 0) {
		bk_bf_free_page(f, *ret_pfn);
		return r;
	}
	if (persist)
		f->nr_pgrants++;
	return 0;
}

unsigned int bk_bf_persistent_grants(const struct bk_blkfront *f)
{
	return f->pgnt ? f->nr_pgrants : 0;
}

/* ------------------------------------------------------------------------------------------ */
/*
 * Encoding, in the frontend's ABI (independent of the backend's decoder). @raw may be a ring
 * slot: only slot_size() bytes are written.
 */

static size_t slot_size(const struct bk_blkfront *f)
{
	return f->p.abi == BLKIF_ABI_X86_32 ? 108 : 112;
}

size_t bk_bf_encode_rw(const struct bk_blkfront *f, void *raw, uint8_t op, uint8_t nr_segments,
		       uint64_t id, uint64_t sector, const struct blkif_request_segment *segs)
{
	uint8_t *b = raw;
	unsigned int n = BK_MIN(nr_segments, (unsigned int)BLKIF_MAX_SEGMENTS_PER_REQUEST);

	memset(raw, 0, slot_size(f));
	if (f->p.abi == BLKIF_ABI_X86_64) {
		struct blkif_request r = { 0 };

		r.operation = op;
		r.nr_segments = nr_segments;
		r.handle = (uint16_t)f->devid;
		r.id = id;
		r.sector_number = sector;
		if (segs)
			memcpy(r.seg, segs, n * sizeof(*segs));
		memcpy(b, &r, sizeof(r));
		return sizeof(r);
	}
	b[0] = op;
	b[1] = nr_segments;
	memcpy(b + 2, &(uint16_t){ (uint16_t)f->devid }, 2);
	memcpy(b + 4, &id, 8);
	memcpy(b + 12, &sector, 8);
	if (segs)
		memcpy(b + 20, segs, n * sizeof(*segs));
	return 108;
}

size_t bk_bf_encode_indirect(const struct bk_blkfront *f, void *raw, uint8_t indirect_op,
			     uint16_t nr_segments, uint64_t id, uint64_t sector,
			     const uint32_t *indirect_refs, unsigned int nr_refs)
{
	uint8_t *b = raw;

	nr_refs = BK_MIN(nr_refs, (unsigned int)BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
	memset(raw, 0, slot_size(f));
	if (f->p.abi == BLKIF_ABI_X86_64) {
		struct blkif_request_indirect r = { 0 };

		r.operation = BLKIF_OP_INDIRECT;
		r.indirect_op = indirect_op;
		r.nr_segments = nr_segments;
		r.id = id;
		r.sector_number = sector;
		r.handle = (uint16_t)f->devid;
		memcpy(r.indirect_grefs, indirect_refs, nr_refs * sizeof(uint32_t));
		memcpy(b, &r, sizeof(r));
		return 112;
	}
	b[0] = BLKIF_OP_INDIRECT;
	b[1] = indirect_op;
	memcpy(b + 2, &nr_segments, 2);
	memcpy(b + 4, &id, 8);
	memcpy(b + 12, &sector, 8);
	memcpy(b + 20, &(uint16_t){ (uint16_t)f->devid }, 2);
	memcpy(b + 24, indirect_refs, nr_refs * sizeof(uint32_t));
	return 108;
}

size_t bk_bf_encode_discard(const struct bk_blkfront *f, void *raw, uint64_t id, uint64_t sector,
			    uint64_t nr_sectors)
{
	uint8_t *b = raw;

	memset(raw, 0, slot_size(f));
	if (f->p.abi == BLKIF_ABI_X86_64) {
		struct blkif_request_discard r = { 0 };

		r.operation = BLKIF_OP_DISCARD;
		r.handle = (uint16_t)f->devid;
		r.id = id;
		r.sector_number = sector;
		r.nr_sectors = nr_sectors;
		memcpy(b, &r, sizeof(r));
		return 112;
	}
	b[0] = BLKIF_OP_DISCARD;
	memcpy(b + 2, &(uint16_t){ (uint16_t)f->devid }, 2);
	memcpy(b + 4, &id, 8);
	memcpy(b + 12, &sector, 8);
	memcpy(b + 20, &nr_sectors, 8);
	return 108;
}

/* ------------------------------------------------------------------------------------------ */
/* Set up and xenbus. */

int bk_bf_open(struct bk_bf_env *env, uint32_t domid, uint32_t devid, const struct bk_bf_params *p,
	       struct bk_blkfront **ret)
{
	unsigned int nr_queues = BK_MAX(p->nr_queues, 1U);
	struct bk_blkfront *f;
	int r;

	if (nr_queues > BF_MAX_QUEUES)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	r = bk_front_open(env, "vbd", domid, devid, p->pfn_base, p->pfn_count, &f->pages, &f->xbf);
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

struct bk_xbfront *bk_bf_xbf(struct bk_blkfront *f)
{
	return f->xbf;
}

int bk_bf_wait_initwait(struct bk_blkfront *f)
{
	return bk_xbf_wait_be_state(f->xbf, BK_XB_INITWAIT, 0);
}

int bk_bf_feature(struct bk_blkfront *f, const char *key, uint64_t *ret)
{
	_cleanup_free_ char *v = NULL;
	int r = bk_xbf_read_be(f->xbf, key, &v);

	if (r < 0)
		return r;
	return bk_parse_u64(v, ret);
}

static int setup_queue(struct bk_blkfront *f, unsigned int i)
{
	struct bf_queue *q = &f->q[i];
	struct blkif_sring_hdr *h;
	uint32_t start = f->p.start_index;
	int r;

	q->nr_pages = 1U << f->p.ring_order;
	r = bk_gpages_alloc(&f->pages, q->nr_pages, &q->pfn0);
	if (r < 0)
		return r;
	q->ring = bk_bf_page(f, q->pfn0);
	memset(q->ring, 0, (size_t)q->nr_pages * BK_PAGE_SIZE);
	h = (struct blkif_sring_hdr *)q->ring;
	h->req_prod = h->rsp_prod = start;
	h->req_event = h->rsp_event = start + 1;
	q->req_prod_pvt = q->rsp_cons = start;
	q->nr_ents = blkif_ring_entries(f->p.abi, q->nr_pages);
	q->outstanding = 0;
	for (unsigned int p = 0; p < q->nr_pages; p++) {
		r = bk_bf_grant(f, q->pfn0 + p, false, &q->refs[p]);
		if (r < 0)
			return r;
	}
	r = bk_sim_guest_evtchn_alloc_unbound(f->env->sim, f->domid, f->xbf->be_domid, &q->port);
	if (r < 0)
		return r;
	q->set_up = true;
	return 0;
}

static int write_queue_keys(struct bk_blkfront *f, unsigned int i)
{
	struct bf_queue *q = &f->q[i];
	char prefix[32] = "", key[64];
	int r;

	if (f->nr_queues > 1)
		snprintf(prefix, sizeof(prefix), "queue-%u/", i);
	for (unsigned int p = 0; p < q->nr_pages; p++) {
		if (f->p.ring_order == 0)
			snprintf(key, sizeof(key), "%sring-ref", prefix);
		else
			snprintf(key, sizeof(key), "%sring-ref%u", prefix, p);
		r = bk_xbf_write(f->xbf, key, "%u", q->refs[p]);
		if (r < 0)
			return r;
	}
	snprintf(key, sizeof(key), "%sevent-channel", prefix);
	return bk_xbf_write(f->xbf, key, "%u", q->port);
}

int bk_bf_prepare(struct bk_blkfront *f)
{
	uint64_t v;
	int r;

	for (unsigned int i = 0; i < f->nr_queues; i++) {
		r = setup_queue(f, i);
		if (r < 0)
			return r;
		r = write_queue_keys(f, i);
		if (r < 0)
			return r;
	}
	if (f->p.nr_queues >= 1 &&
	    (r = bk_xbf_write(f->xbf, "multi-queue-num-queues", "%u", f->p.nr_queues)) < 0)
		return r;
	if (f->p.ring_order &&
	    (r = bk_xbf_write(f->xbf, "ring-page-order", "%u", f->p.ring_order)) < 0)
		return r;
	if (f->p.protocol && (r = bk_xbf_write(f->xbf, "protocol", "%s", f->p.protocol)) < 0)
		return r;
	if (f->p.persistent && (r = bk_xbf_write(f->xbf, "feature-persistent", "1")) < 0)
		return r;
	/* Used when the backend offers them too (read at InitWait), or anyway if told so. */
	f->pgnt = f->p.persistent && (f->p.persistent_anyway ||
				      (bk_bf_feature(f, "feature-persistent", &v) == 0 && v == 1));
	return 0;
}

int bk_bf_initialise(struct bk_blkfront *f)
{
	int r = bk_xbf_set_state(f->xbf, BK_XB_INITIALISED);

	if (r < 0)
		return r;
	return bk_xbf_wait_be_state(f->xbf, BK_XB_CONNECTED, 0);
}

int bk_bf_connect(struct bk_blkfront *f)
{
	int r;

	if ((r = bk_bf_wait_initwait(f)) < 0 || (r = bk_bf_prepare(f)) < 0)
		return r;
	r = bk_bf_initialise(f);
	if (r < 0)
		return r;
	return bk_xbf_set_state(f->xbf, BK_XB_CONNECTED);
}

int bk_bf_disconnect(struct bk_blkfront *f)
{
	int r;

	if ((r = bk_xbf_set_state(f->xbf, BK_XB_CLOSING)) < 0 ||
	    (r = bk_xbf_wait_be_state(f->xbf, BK_XB_CLOSING, 0)) < 0 ||
	    (r = bk_xbf_set_state(f->xbf, BK_XB_CLOSED)) < 0)
		return r;
	return bk_xbf_wait_be_state(f->xbf, BK_XB_CLOSED, 0);
}

static void io_release(struct bk_blkfront *f, struct bk_bf_io *io)
{
	for (unsigned int i = 0; i < io->nr_pages; i++) {
		if (io->persist) {
			f->pfree[f->nr_pfree++] = (struct bf_pgrant){ io->pfns[i], io->refs[i] };
			continue;
		}
		end_grant(f, io->refs[i]);
		bk_bf_free_page(f, io->pfns[i]);
	}
	io->nr_pages = 0;
}

void bk_bf_reset(struct bk_blkfront *f)
{
	for (unsigned int i = 0; i < f->nr_queues; i++) {
		struct bf_queue *q = &f->q[i];

		for (unsigned int k = 0; k < BF_IDS; k++) {
			if (!q->ios[k])
				continue;
			io_release(f, q->ios[k]);
			q->ios[k] = NULL;
		}
		q->outstanding = 0;
		if (!q->set_up)
			continue;
		bk_sim_guest_evtchn_close(f->env->sim, f->domid, q->port);
		for (unsigned int p = 0; p < q->nr_pages; p++) {
			end_grant(f, q->refs[p]);
			bk_bf_free_page(f, q->pfn0 + p);
		}
		q->set_up = false;
	}
	/* The persistent grants end with the connection, as blkfront frees them. */
	for (unsigned int i = 0; i < f->nr_pfree; i++) {
		end_grant(f, f->pfree[i].ref);
		bk_bf_free_page(f, f->pfree[i].pfn);
	}
	f->nr_pfree = 0;
	f->nr_pgrants = 0;
}

void bk_bf_close(struct bk_blkfront *f)
{
	if (!f)
		return;
	bk_bf_reset(f);
	bk_front_close(&f->pages, f->xbf);
	free(f->pfree);
	free(f);
}

/* ------------------------------------------------------------------------------------------ */
/* I/O. */

uint8_t *bk_bf_slot(struct bk_blkfront *f, unsigned int qi, uint32_t idx)
{
	struct bf_queue *q = &f->q[qi];

	return q->ring + sizeof(struct blkif_sring_hdr) +
	       (size_t)(idx & (q->nr_ents - 1)) * slot_size(f);
}

struct blkif_sring_hdr *bk_bf_sring(struct bk_blkfront *f, unsigned int qi)
{
	return (struct blkif_sring_hdr *)f->q[qi].ring;
}

uint32_t bk_bf_ring_entries(const struct bk_blkfront *f, unsigned int qi)
{
	return f->q[qi].nr_ents;
}

void bk_bf_put_raw(struct bk_blkfront *f, unsigned int qi, const void *raw, size_t len)
{
	struct bf_queue *q = &f->q[qi];

	memcpy(bk_bf_slot(f, qi, q->req_prod_pvt), raw, BK_MIN(len, slot_size(f)));
	q->req_prod_pvt++;
}

uint32_t bk_bf_req_prod_pvt(const struct bk_blkfront *f, unsigned int qi)
{
	return f->q[qi].req_prod_pvt;
}

void bk_bf_set_req_prod_pvt(struct bk_blkfront *f, unsigned int qi, uint32_t v)
{
	f->q[qi].req_prod_pvt = v;
}

int bk_bf_kick(struct bk_blkfront *f, unsigned int qi)
{
	return bk_sim_guest_evtchn_notify(f->env->sim, f->domid, f->q[qi].port);
}

unsigned int bk_bf_take_notifies(struct bk_blkfront *f, unsigned int qi)
{
	return bk_sim_guest_evtchn_take(f->env->sim, f->domid, f->q[qi].port);
}

int bk_bf_queue(struct bk_blkfront *f, unsigned int qi, struct bk_bf_io *io)
{
	struct bf_queue *q = &f->q[qi];
	struct blkif_request_segment segs[BLKIF_MAX_INDIRECT_SEGS] = { 0 };
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	unsigned int nseg = BK_DIV_ROUND_UP(io->nr_sectors, 8U), k;
	bool indirect = io->indirect || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST;
	bool is_write =
		io->op == BLKIF_OP_WRITE ||
		((io->op == BLKIF_OP_FLUSH_DISKCACHE || io->op == BLKIF_OP_WRITE_BARRIER) && nseg);
	uint32_t left = io->nr_sectors;
	int r;

	if (io->op == BLKIF_OP_DISCARD)
		nseg = 0;
	if (nseg > BLKIF_MAX_INDIRECT_SEGS || q->req_prod_pvt - q->rsp_cons >= q->nr_ents)
		return -EBUSY;
	for (k = 0; k < BF_IDS; k++)
		if (!q->ios[(q->next_id + k) % BF_IDS])
			break;
	if (k == BF_IDS)
		return -EBUSY;
	k = (q->next_id + k) % BF_IDS;
	q->next_id = k + 1;
	io->id = BF_ID_MAGIC | ((uint64_t)qi << 12) | k;
	io->done = false;
	io->status = 99;
	io->nr_pages = 0;
	/* A hostile test's read-only grant is its own, never one of the persistent ones. */
	io->persist = f->pgnt && !io->readonly_grant;

	for (unsigned int s = 0; s < nseg; s++) {
		uint32_t n = BK_MIN(left, 8U);
		void *page;

		/* Linux grants write data read-only; reads need a writable grant. */
		r = io_page(f, io->persist, is_write || io->readonly_grant, &io->pfns[s],
			    &io->refs[s]);
		if (r < 0)
			goto fail;
		io->nr_pages++;
		page = bk_bf_page(f, io->pfns[s]);
		memset(page, 0x5A, BK_PAGE_SIZE);
		if (is_write)
			memcpy(page, io->data + (size_t)s * BK_PAGE_SIZE, (size_t)n * 512);
		segs[s].gref = io->refs[s];
		segs[s].first_sect = 0;
		segs[s].last_sect = (uint8_t)(n - 1);
		left -= n;
	}

	if (io->op == BLKIF_OP_DISCARD) {
		bk_bf_encode_discard(f, raw, io->id, io->sector, io->nr_sectors);
		raw[1] = io->discard_flag; /* both ABIs: the byte after the operation */
	} else if (indirect) {
		uint32_t pfn, ref;

		r = io_page(f, io->persist, true, &pfn, &ref);
		if (r < 0)
			goto fail;
		memcpy(bk_bf_page(f, pfn), segs, nseg * sizeof(segs[0]));
		io->pfns[io->nr_pages] = pfn;
		io->refs[io->nr_pages++] = ref;
		bk_bf_encode_indirect(f, raw, io->op, (uint16_t)nseg, io->id, io->sector, &ref, 1);
	} else {
		bk_bf_encode_rw(f, raw, io->op, (uint8_t)nseg, io->id, io->sector, segs);
	}
	q->ios[k] = io;
	q->outstanding++;
	bk_bf_put_raw(f, qi, raw, sizeof(raw));
	return 0;
fail:
	io_release(f, io);
	return r;
}

unsigned int bk_bf_queue_reads(struct bk_blkfront *f, unsigned int q, struct bk_bf_io *ios,
			       unsigned int n, uint8_t (*bufs)[4096])
{
	unsigned int i;

	memset(ios, 0, sizeof(*ios) * n);
	for (i = 0; i < n; i++) {
		ios[i].op = BLKIF_OP_READ;
		ios[i].sector = 8 * (uint64_t)i;
		ios[i].nr_sectors = 8;
		ios[i].data = bufs[i];
		if (bk_bf_queue(f, q, &ios[i]) < 0)
			break;
	}
	bk_bf_push(f, q);
	return i;
}

void bk_bf_push(struct bk_blkfront *f, unsigned int qi)
{
	struct bf_queue *q = &f->q[qi];
	struct blkif_sring_hdr *h = bk_bf_sring(f, qi);
	uint32_t old = h->req_prod, new = q->req_prod_pvt;

	bk_wmb();
	WRITE_ONCE(h->req_prod, new);
	bk_mb();
	if ((uint32_t)(new - READ_ONCE(h->req_event)) < (uint32_t)(new - old))
		bk_bf_kick(f, qi);
}

void bk_bf_read_rsp(struct bk_blkfront *f, unsigned int qi, uint32_t idx, uint64_t *ret_id,
		    uint8_t *ret_op, int16_t *ret_status)
{
	const uint8_t *s = bk_bf_slot(f, qi, idx);

	memcpy(ret_id, s, 8);
	*ret_op = s[8];
	memcpy(ret_status, s + 10, 2);
}

static bool padding_zero(const struct bk_blkfront *f, const uint8_t *s)
{
	if (s[9])
		return false;
	if (f->p.abi == BLKIF_ABI_X86_64)
		return !s[12] && !s[13] && !s[14] && !s[15];
	return true;
}

unsigned int bk_bf_reap(struct bk_blkfront *f, unsigned int qi)
{
	struct bf_queue *q = &f->q[qi];
	struct blkif_sring_hdr *h = bk_bf_sring(f, qi);
	unsigned int n = 0;

	if (!q->set_up)
		return 0;
	for (;;) {
		uint32_t rp = READ_ONCE(h->rsp_prod);

		bk_rmb();
		for (; q->rsp_cons != rp; q->rsp_cons++) {
			const uint8_t *s = bk_bf_slot(f, qi, q->rsp_cons);
			struct bk_bf_io *io;
			uint64_t id;
			uint8_t op;
			int16_t st;

			bk_bf_read_rsp(f, qi, q->rsp_cons, &id, &op, &st);
			f->responses++;
			n++;
			if (!padding_zero(f, s))
				f->bad_padding++;
			if ((id & ~0xFFFFULL) != BF_ID_MAGIC || !(io = q->ios[id & (BF_IDS - 1)]) ||
			    io->id != id) {
				f->unknown_ids++;
				continue;
			}
			q->ios[id & (BF_IDS - 1)] = NULL;
			q->outstanding--;
			if (io->op == BLKIF_OP_READ && st == BLKIF_RSP_OKAY) {
				uint32_t left = io->nr_sectors;

				for (unsigned int p = 0; left; p++) {
					uint32_t cnt = BK_MIN(left, 8U);

					memcpy(io->data + (size_t)p * BK_PAGE_SIZE,
					       bk_bf_page(f, io->pfns[p]), (size_t)cnt * 512);
					left -= cnt;
				}
			}
			io_release(f, io);
			io->status = st;
			io->rsp_op = op;
			io->rsp_seq = f->responses;
			io->done = true;
		}
		WRITE_ONCE(h->rsp_event, q->rsp_cons + 1);
		bk_mb();
		if (READ_ONCE(h->rsp_prod) == q->rsp_cons)
			break;
	}
	return n;
}

struct wait_ctx {
	struct bk_blkfront *f;
	unsigned int q;
	struct bk_bf_io *io;
};

static bool io_done_cond(void *data)
{
	struct wait_ctx *c = data;

	bk_bf_reap(c->f, c->q);
	return c->io ? c->io->done : c->f->q[c->q].outstanding == 0;
}

int bk_bf_wait(struct bk_blkfront *f, unsigned int q, struct bk_bf_io *io)
{
	struct wait_ctx c = { .f = f, .q = q, .io = io };

	return bk_test_pump_until(f->env->loop, io_done_cond, &c, 0);
}

int bk_bf_wait_all(struct bk_blkfront *f, unsigned int q)
{
	struct wait_ctx c = { .f = f, .q = q, .io = NULL };

	return bk_test_pump_until(f->env->loop, io_done_cond, &c, 0);
}

int bk_bf_io_sync(struct bk_blkfront *f, unsigned int q, struct bk_bf_io *io)
{
	int r = bk_bf_queue(f, q, io);

	if (r < 0)
		return r;
	bk_bf_push(f, q);
	r = bk_bf_wait(f, q, io);
	if (r < 0)
		return r;
	return io->status;
}

int bk_bf_rw(struct bk_blkfront *f, unsigned int q, uint8_t op, uint64_t sector,
	     uint32_t nr_sectors, void *data, bool indirect)
{
	struct bk_bf_io *io = calloc(1, sizeof(*io));
	int r;

	if (!io)
		return -ENOMEM;
	io->op = op;
	io->sector = sector;
	io->nr_sectors = nr_sectors;
	io->data = data;
	io->indirect = indirect;
	r = bk_bf_io_sync(f, q, io);
	if (r == -ETIMEDOUT && !io->done) {
		/* Still referenced by the ring bookkeeping: leak it rather than dangle. */
		return r;
	}
	free(io);
	return r;
}

unsigned int bk_bf_bad_padding(const struct bk_blkfront *f)
{
	return f->bad_padding;
}

unsigned int bk_bf_unknown_ids(const struct bk_blkfront *f)
{
	return f->unknown_ids;
}

unsigned int bk_bf_responses(const struct bk_blkfront *f)
{
	return f->responses;
}

unsigned int bk_bf_outstanding(const struct bk_blkfront *f, unsigned int q)
{
	return f->q[q].outstanding;
}
