// SPDX-License-Identifier: MIT
/* blkif ring protocol: both ABIs, copy-once fetch, validation, responses. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "xen/ring.h"
#include "util/macros.h"

/* Byte offsets of each field, per ABI (x86_32 aligns uint64_t on 4 bytes). */
struct blkif_layout {
	size_t req_size;
	size_t rsp_size;
	size_t rw_id, rw_sector, rw_seg;
	size_t dc_id, dc_sector, dc_nr_sectors;
	size_t in_id, in_sector, in_handle, in_grefs;
};

static const struct blkif_layout layouts[] = {
	[BLKIF_ABI_X86_64] = {
		.req_size = 112, .rsp_size = 16,
		.rw_id = 8, .rw_sector = 16, .rw_seg = 24,
		.dc_id = 8, .dc_sector = 16, .dc_nr_sectors = 24,
		.in_id = 8, .in_sector = 16, .in_handle = 24, .in_grefs = 28,
	},
	[BLKIF_ABI_X86_32] = {
		.req_size = 108, .rsp_size = 12,
		.rw_id = 4, .rw_sector = 12, .rw_seg = 20,
		.dc_id = 4, .dc_sector = 12, .dc_nr_sectors = 20,
		.in_id = 4, .in_sector = 12, .in_handle = 20, .in_grefs = 24,
	},
};

#define HDR_SIZE sizeof(struct blkif_sring_hdr)

/* The native layout of this build must match the x86_64 table (we run on x86_64). */
_Static_assert(sizeof(struct blkif_sring_hdr) == 64, "ring header");
_Static_assert(sizeof(struct blkif_request_segment) == 8, "segment");
#if defined(__x86_64__)
_Static_assert(sizeof(struct blkif_request) == 112, "x86_64 request");
_Static_assert(offsetof(struct blkif_request, id) == 8, "x86_64 id");
_Static_assert(offsetof(struct blkif_request, seg) == 24, "x86_64 seg");
_Static_assert(offsetof(struct blkif_request_indirect, indirect_grefs) == 28, "x86_64 grefs");
_Static_assert(offsetof(struct blkif_request_discard, nr_sectors) == 24, "x86_64 discard");
_Static_assert(sizeof(struct blkif_response) == 16, "x86_64 response");
#endif

int blkif_abi_parse(const char *protocol, enum blkif_abi *ret)
{
	if (!protocol || !strcmp(protocol, XEN_IO_PROTO_ABI_X86_64)) {
		*ret = BLKIF_ABI_X86_64;
		return 0;
	}
	if (!strcmp(protocol, XEN_IO_PROTO_ABI_X86_32)) {
		*ret = BLKIF_ABI_X86_32;
		return 0;
	}
	return -EINVAL;
}

const char *blkif_abi_name(enum blkif_abi abi)
{
	return abi == BLKIF_ABI_X86_32 ? XEN_IO_PROTO_ABI_X86_32 : XEN_IO_PROTO_ABI_X86_64;
}

size_t blkif_abi_slot_size(enum blkif_abi abi)
{
	return layouts[abi].req_size; /* requests are always the larger member */
}

size_t blkif_abi_rsp_size(enum blkif_abi abi)
{
	return layouts[abi].rsp_size;
}

uint32_t blkif_ring_entries(enum blkif_abi abi, unsigned int nr_pages)
{
	size_t n = ((size_t)nr_pages * 4096U - HDR_SIZE) / blkif_abi_slot_size(abi);
	uint32_t p = 1;

	while ((size_t)p * 2 <= n)
		p *= 2;
	return p;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

void blkif_req_decode(enum blkif_abi abi, const void *raw, struct blkif_req *req)
{
	const struct blkif_layout *l = &layouts[abi];
	const uint8_t *b = raw;

	req->operation = b[0];
	req->op = b[0];
	req->indirect = false;
	req->discard_flag = 0;
	req->nr_indirect_pages = 0;
	req->nr_sectors = 0;

	switch (req->operation) {
	case BLKIF_OP_DISCARD:
		req->discard_flag = b[1];
		req->handle = get16(b + 2);
		req->nr_segments = 0;
		req->id = get64(b + l->dc_id);
		req->sector = get64(b + l->dc_sector);
		req->nr_sectors = get64(b + l->dc_nr_sectors);
		break;
	case BLKIF_OP_INDIRECT:
		req->indirect = true;
		req->op = b[1];
		req->nr_segments = get16(b + 2);
		req->id = get64(b + l->in_id);
		req->sector = get64(b + l->in_sector);
		req->handle = get16(b + l->in_handle);
		memcpy(req->indirect_grefs, b + l->in_grefs, sizeof(req->indirect_grefs));
		break;
	default:
		/* READ, WRITE, FLUSH, BARRIER and unknown operations share this layout. */
		req->nr_segments = b[1];
		req->handle = get16(b + 2);
		req->id = get64(b + l->rw_id);
		req->sector = get64(b + l->rw_sector);
		if (req->nr_segments <= BLKIF_MAX_SEGMENTS_PER_REQUEST)
			memcpy(req->seg, b + l->rw_seg,
			       req->nr_segments * sizeof(struct blkif_request_segment));
		break;
	}
}

bool blkif_req_writes(const struct blkif_req *req)
{
	switch (req->op) {
	case BLKIF_OP_WRITE:
		return true;
	case BLKIF_OP_FLUSH_DISKCACHE:
	case BLKIF_OP_WRITE_BARRIER:
		return req->nr_segments > 0;
	default:
		return false;
	}
}

#define FAIL(status, why)         \
	do {                      \
		*ret_why = (why); \
		return (status);  \
	} while (0)

int blkif_req_check(struct blkif_req *req, const struct blkif_limits *lim, const char **ret_why)
{
	*ret_why = NULL;

	if (req->indirect) {
		if (req->op != BLKIF_OP_READ && req->op != BLKIF_OP_WRITE)
			FAIL(BLKIF_RSP_ERROR,
			     "indirect request wraps an operation other than read/write");
		if (req->nr_segments == 0)
			FAIL(BLKIF_RSP_ERROR, "indirect request without segments");
		if (req->nr_segments > lim->max_indirect_segs)
			FAIL(BLKIF_RSP_ERROR, "indirect request with too many segments");
		req->nr_indirect_pages =
			BK_DIV_ROUND_UP(req->nr_segments, (uint16_t)BLKIF_SEGS_PER_INDIRECT_PAGE);
		if (req->op == BLKIF_OP_WRITE && lim->readonly)
			FAIL(BLKIF_RSP_ERROR, "write to a read-only device");
		return BLKIF_RSP_OKAY; /* the segments come from the indirect pages */
	}

	switch (req->op) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
		if (req->nr_segments == 0)
			FAIL(BLKIF_RSP_ERROR, "read/write without segments");
		break;
	case BLKIF_OP_FLUSH_DISKCACHE:
		if (!lim->flush)
			FAIL(BLKIF_RSP_EOPNOTSUPP, "flush not negotiated");
		if (req->nr_segments == 0)
			return BLKIF_RSP_OKAY;
		break;
	case BLKIF_OP_WRITE_BARRIER:
		if (!lim->barrier)
			FAIL(BLKIF_RSP_EOPNOTSUPP, "barrier not negotiated");
		if (req->nr_segments == 0)
			return BLKIF_RSP_OKAY;
		break;
	case BLKIF_OP_DISCARD:
		if (!lim->discard)
			FAIL(BLKIF_RSP_EOPNOTSUPP, "discard not supported");
		if (lim->readonly)
			FAIL(BLKIF_RSP_ERROR, "discard on a read-only device");
		/*
		 * Secure erase is never offered (discard-secure=0): a plain discard answered OKAY
		 * would tell the guest its data is unrecoverable when it is not.
		 */
		if (req->discard_flag & BLKIF_DISCARD_SECURE)
			FAIL(BLKIF_RSP_EOPNOTSUPP, "secure discard not supported");
		if (req->sector > lim->nr_sectors ||
		    req->nr_sectors > lim->nr_sectors - req->sector)
			FAIL(BLKIF_RSP_ERROR, "discard range beyond the end of the device");
		return BLKIF_RSP_OKAY;
	default:
		FAIL(BLKIF_RSP_EOPNOTSUPP, "unknown operation");
	}

	if (req->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
		FAIL(BLKIF_RSP_ERROR, "too many segments in a direct request");
	if (blkif_req_writes(req) && lim->readonly)
		FAIL(BLKIF_RSP_ERROR, "write to a read-only device");
	return blkif_req_check_segs(req, lim, ret_why);
}

void blkif_req_load_indirect(struct blkif_req *req, const void *descs, size_t len)
{
	size_t want = (size_t)req->nr_segments * sizeof(struct blkif_request_segment);

	/* Short input (fuzzing, a caller bug) leaves the rest zeroed: gref 0 fails to copy. */
	memset(req->seg, 0, want);
	memcpy(req->seg, descs, BK_MIN(want, len));
}

int blkif_req_check_segs(struct blkif_req *req, const struct blkif_limits *lim,
			 const char **ret_why)
{
	uint64_t total = 0;

	*ret_why = NULL;
	for (unsigned int i = 0; i < req->nr_segments; i++) {
		const struct blkif_request_segment *s = &req->seg[i];

		if (s->first_sect > s->last_sect)
			FAIL(BLKIF_RSP_ERROR, "segment with first_sect > last_sect");
		if (s->last_sect >= BLKIF_SECTORS_PER_PAGE)
			FAIL(BLKIF_RSP_ERROR, "segment with last_sect beyond the page");
		total += (uint64_t)(s->last_sect - s->first_sect + 1);
	}
	if (req->sector > lim->nr_sectors || total > lim->nr_sectors - req->sector)
		FAIL(BLKIF_RSP_ERROR, "sector range beyond the end of the device");
	req->nr_sectors = total;
	return BLKIF_RSP_OKAY;
}

void blkif_ring_attach(struct blkif_ring *r, void *addr, unsigned int nr_pages, enum blkif_abi abi)
{
	r->sring = addr;
	r->slots = (uint8_t *)addr + HDR_SIZE;
	r->abi = abi;
	r->slot_size = (uint32_t)blkif_abi_slot_size(abi);
	r->rsp_size = (uint32_t)blkif_abi_rsp_size(abi);
	r->nr_ents = blkif_ring_entries(abi, nr_pages);
	/* Like blkback: start from what the frontend published, which it set up as 0. */
	r->req_cons = 0;
	r->rsp_prod_pvt = 0;
	r->rsp_pushed = 0;
}

int blkif_ring_pending(struct blkif_ring *r, uint32_t *ret_n)
{
	return bk_ring_unconsumed(&r->sring->req_prod, r->req_cons, r->rsp_prod_pvt, r->nr_ents,
				  ret_n);
}

bool blkif_ring_cons_full(const struct blkif_ring *r)
{
	return r->req_cons - r->rsp_prod_pvt >= r->nr_ents;
}

void blkif_ring_take(struct blkif_ring *r, void *raw)
{
	const uint8_t *slot = r->slots + (size_t)(r->req_cons & (r->nr_ents - 1)) * r->slot_size;

	/* The one and only read of this slot: everything after works on @raw. */
	memcpy(raw, slot, r->slot_size);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	r->req_cons++;
}

void blkif_ring_put_rsp(struct blkif_ring *r, uint64_t id, uint8_t op, int16_t status)
{
	uint8_t *slot = r->slots + (size_t)(r->rsp_prod_pvt & (r->nr_ents - 1)) * r->slot_size;
	uint8_t rsp[16];

	/* Build in private memory, all padding zero, then store it whole (XSA-216). */
	memset(rsp, 0, sizeof(rsp));
	memcpy(rsp, &id, sizeof(id));
	rsp[8] = op;
	memcpy(rsp + 10, &status, sizeof(status));
	memcpy(slot, rsp, r->rsp_size);
	r->rsp_prod_pvt++;
}

bool blkif_ring_push(struct blkif_ring *r)
{
	uint32_t old = r->rsp_pushed; /* ours, not the shared copy a guest may scribble on */

	r->rsp_pushed = r->rsp_prod_pvt;
	return bk_ring_publish_rsp(&r->sring->rsp_prod, &r->sring->rsp_event, old, r->rsp_prod_pvt);
}

bool blkif_ring_final_check(struct blkif_ring *r)
{
	return bk_ring_final_check(&r->sring->req_prod, &r->sring->req_event, r->req_cons);
}
