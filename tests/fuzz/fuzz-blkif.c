// SPDX-License-Identifier: MIT
/*
 * libFuzzer target over the blkif ring consumer and request parser: the input is a guest's
 * shared ring (any ABI, order 0..4, any indices) plus one indirect page, and the target runs
 * the backend's consume / decode / validate / respond cycle over it, checking that whatever
 * passes validation really is inside the rules. Built with -Dfuzz=true (clang); the corpus is
 * also replayed by tests/fuzz/replay.c in the normal test suite.
 *
 * Input: byte 0 = ABI (bit 0), ring order (bits 1-3, mod 5), read-only (bit 4), no discard
 * (bit 5); bytes 1-4 = starting index; bytes 5-12 = device size in sectors; then the ring
 * pages, then the indirect page (what is missing is zero).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blkif/proto.h"
#include "fuzz-blkif.h"

#define HDR 13U

static uint8_t ring_mem[BLKIF_MAX_RING_PAGES * 4096] __attribute__((aligned(4096)));
static uint8_t indirect_page[4096] __attribute__((aligned(4096)));
static struct blkif_request_segment segs[BLKIF_MAX_INDIRECT_SEGS];
static struct blkif_req req = { .seg = segs };

static void invariant(int cond)
{
	if (!cond)
		abort();
}

/* Whatever the validation let through must satisfy every rule. */
static void check_accepted(const struct blkif_req *r, const struct blkif_limits *lim)
{
	uint64_t total = 0;

	switch (r->op) {
	case BLKIF_OP_DISCARD:
		invariant(!r->indirect && !lim->readonly && lim->discard);
		invariant(r->sector <= lim->nr_sectors);
		invariant(r->nr_sectors <= lim->nr_sectors - r->sector);
		return;
	case BLKIF_OP_FLUSH_DISKCACHE:
	case BLKIF_OP_WRITE_BARRIER:
		invariant(!r->indirect);
		if (r->nr_segments == 0)
			return;
		break;
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
		invariant(r->nr_segments > 0);
		break;
	default:
		abort();
	}
	if (r->indirect)
		invariant(r->nr_segments <= lim->max_indirect_segs);
	else
		invariant(r->nr_segments <= BLKIF_MAX_SEGMENTS_PER_REQUEST);
	if (blkif_req_writes(r))
		invariant(!lim->readonly);
	for (unsigned int i = 0; i < r->nr_segments; i++) {
		invariant(r->seg[i].first_sect <= r->seg[i].last_sect);
		invariant(r->seg[i].last_sect < BLKIF_SECTORS_PER_PAGE);
		total += r->seg[i].last_sect - r->seg[i].first_sect + 1U;
	}
	invariant(total == r->nr_sectors);
	invariant(r->sector <= lim->nr_sectors && total <= lim->nr_sectors - r->sector);
}

int blkif_fuzz_one(const uint8_t *data, size_t size)
{
	struct blkif_limits lim = {
		.flush = true,
		.barrier = true,
		.max_indirect_segs = BLKIF_MAX_INDIRECT_SEGS,
	};
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	struct blkif_ring r;
	enum blkif_abi abi;
	unsigned int order, nr_pages, rounds = 0;
	size_t ring_bytes, n;
	uint32_t start;

	if (size < HDR)
		return 0;
	abi = (data[0] & 1) ? BLKIF_ABI_X86_32 : BLKIF_ABI_X86_64;
	order = ((data[0] >> 1) & 7U) % (BLKIF_MAX_RING_ORDER + 1);
	lim.readonly = data[0] & 0x10;
	lim.discard = !(data[0] & 0x20);
	memcpy(&start, data + 1, sizeof(start));
	memcpy(&lim.nr_sectors, data + 5, sizeof(lim.nr_sectors));
	data += HDR;
	size -= HDR;

	nr_pages = 1U << order;
	ring_bytes = (size_t)nr_pages * 4096;
	memset(ring_mem, 0, ring_bytes);
	n = size < ring_bytes ? size : ring_bytes;
	memcpy(ring_mem, data, n);
	memset(indirect_page, 0, sizeof(indirect_page));
	if (size > ring_bytes)
		memcpy(indirect_page, data + ring_bytes,
		       size - ring_bytes < 4096 ? size - ring_bytes : 4096);

	blkif_ring_attach(&r, ring_mem, nr_pages, abi);
	r.req_cons = r.rsp_prod_pvt = r.rsp_pushed = start;

	/* As the backend's consumer does: take what is there, answer, look again. */
	while (rounds++ < 4) {
		uint32_t pending;

		if (blkif_ring_pending(&r, &pending) < 0)
			return 0; /* the device would fail here */
		invariant(pending <= r.nr_ents);
		while (pending-- && !blkif_ring_cons_full(&r)) {
			const char *why;
			int st;

			blkif_ring_take(&r, raw);
			blkif_req_decode(abi, raw, &req);
			st = blkif_req_check(&req, &lim, &why);
			if (st == BLKIF_RSP_OKAY && req.indirect) {
				invariant(req.nr_indirect_pages == 1);
				blkif_req_load_indirect(&req, indirect_page, sizeof(indirect_page));
				st = blkif_req_check_segs(&req, &lim, &why);
			}
			if (st == BLKIF_RSP_OKAY)
				check_accepted(&req, &lim);
			else
				invariant(why != NULL);
			blkif_ring_put_rsp(&r, req.id, req.op, (int16_t)st);
		}
		blkif_ring_push(&r);
		if (!blkif_ring_final_check(&r))
			break;
	}
	invariant(r.req_cons - r.rsp_prod_pvt <= r.nr_ents);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return blkif_fuzz_one(data, size);
}
