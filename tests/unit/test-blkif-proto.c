// SPDX-License-Identifier: MIT
/*
 * Unit tests of the blkif protocol layer: both ABIs' layouts, every validation rule at its
 * boundary +/- 1, ring index overflow and 2^32 wrap, copy-once fetch, zeroed responses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkif/proto.h"
#include "check.h"

static const struct blkif_limits lim = {
	.nr_sectors = 1000,
	.readonly = false,
	.discard = true,
	.flush = true,
	.barrier = true,
	.max_indirect_segs = BLKIF_MAX_INDIRECT_SEGS,
};

static void put(uint8_t *b, size_t off, const void *v, size_t n)
{
	memcpy(b + off, v, n);
}

static void test_abi(void)
{
	enum blkif_abi abi = BLKIF_ABI_X86_32;

	CHECK(blkif_abi_parse(NULL, &abi) == 0 && abi == BLKIF_ABI_X86_64);
	CHECK(blkif_abi_parse("x86_32-abi", &abi) == 0 && abi == BLKIF_ABI_X86_32);
	CHECK(blkif_abi_parse("x86_64-abi", &abi) == 0 && abi == BLKIF_ABI_X86_64);
	abi = BLKIF_ABI_X86_32;
	CHECK(blkif_abi_parse("native", &abi) == -EINVAL && abi == BLKIF_ABI_X86_32);
	CHECK(blkif_abi_parse("x86_64-abi ", &abi) == -EINVAL);
	CHECK(blkif_abi_parse("", &abi) == -EINVAL);
	CHECK(blkif_abi_slot_size(BLKIF_ABI_X86_64) == 112);
	CHECK(blkif_abi_slot_size(BLKIF_ABI_X86_32) == 108);
	CHECK(blkif_abi_rsp_size(BLKIF_ABI_X86_32) == 12);
	CHECK(blkif_ring_entries(BLKIF_ABI_X86_64, 1) == 32);
	CHECK(blkif_ring_entries(BLKIF_ABI_X86_32, 1) == 32);
	CHECK(blkif_ring_entries(BLKIF_ABI_X86_64, 16) == 512);
	CHECK(blkif_ring_entries(BLKIF_ABI_X86_32, 16) == 512);
	CHECK(blkif_ring_entries(BLKIF_ABI_X86_64, 2) == 64);
}

static void test_decode(void)
{
	struct blkif_request rq;
	struct blkif_request_indirect ind;
	struct blkif_request_discard dc;
	static struct blkif_request_segment segs[BLKIF_MAX_INDIRECT_SEGS];
	static struct blkif_req req = { .seg = segs };
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	uint64_t id = 0x1122334455667788ULL, sector = 0x99, nr = 7;
	uint16_t nseg = 300, handle = 0xabcd;
	uint32_t gref = 0xdeadbeef;

	/* x86_64: build with the native structs of the Xen header. */
	memset(&rq, 0, sizeof(rq));
	rq.operation = BLKIF_OP_WRITE;
	rq.nr_segments = 2;
	rq.handle = 51712;
	rq.id = id;
	rq.sector_number = 42;
	rq.seg[1].gref = 77;
	rq.seg[1].first_sect = 1;
	rq.seg[1].last_sect = 6;
	blkif_req_decode(BLKIF_ABI_X86_64, &rq, &req);
	CHECK(req.op == BLKIF_OP_WRITE && !req.indirect && req.nr_segments == 2);
	CHECK(req.id == id && req.sector == 42 && req.handle == 51712);
	CHECK(req.seg[1].gref == 77 && req.seg[1].first_sect == 1 && req.seg[1].last_sect == 6);

	memset(&ind, 0, sizeof(ind));
	ind.operation = BLKIF_OP_INDIRECT;
	ind.indirect_op = BLKIF_OP_READ;
	ind.nr_segments = 256;
	ind.id = id;
	ind.sector_number = 9;
	ind.handle = 3;
	ind.indirect_grefs[0] = 1234;
	ind.indirect_grefs[7] = 999;
	memset(raw, 0, sizeof(raw));
	memcpy(raw, &ind, sizeof(ind));
	blkif_req_decode(BLKIF_ABI_X86_64, raw, &req);
	CHECK(req.indirect && req.op == BLKIF_OP_READ && req.nr_segments == 256);
	CHECK(req.id == id && req.sector == 9 && req.handle == 3);
	CHECK(req.indirect_grefs[0] == 1234 && req.indirect_grefs[7] == 999);

	memset(&dc, 0, sizeof(dc));
	dc.operation = BLKIF_OP_DISCARD;
	dc.flag = BLKIF_DISCARD_SECURE;
	dc.id = id;
	dc.sector_number = 8;
	dc.nr_sectors = 16;
	memset(raw, 0, sizeof(raw));
	memcpy(raw, &dc, sizeof(dc));
	blkif_req_decode(BLKIF_ABI_X86_64, raw, &req);
	CHECK(req.op == BLKIF_OP_DISCARD && req.discard_flag == BLKIF_DISCARD_SECURE);
	CHECK(req.id == id && req.sector == 8 && req.nr_sectors == 16);

	/* x86_32: uint64_t aligned on 4 bytes, laid out by hand. */
	memset(raw, 0, sizeof(raw));
	raw[0] = BLKIF_OP_READ;
	raw[1] = 1;
	put(raw, 2, &handle, 2);
	put(raw, 4, &id, 8);
	put(raw, 12, &sector, 8);
	put(raw, 20, &gref, 4);
	raw[24] = 2;
	raw[25] = 5;
	blkif_req_decode(BLKIF_ABI_X86_32, raw, &req);
	CHECK(req.op == BLKIF_OP_READ && req.nr_segments == 1 && req.handle == handle);
	CHECK(req.id == id && req.sector == sector);
	CHECK(req.seg[0].gref == gref && req.seg[0].first_sect == 2 && req.seg[0].last_sect == 5);

	memset(raw, 0, sizeof(raw));
	raw[0] = BLKIF_OP_INDIRECT;
	raw[1] = BLKIF_OP_WRITE;
	put(raw, 2, &nseg, 2);
	put(raw, 4, &id, 8);
	put(raw, 12, &sector, 8);
	put(raw, 20, &handle, 2);
	put(raw, 24, &gref, 4);
	blkif_req_decode(BLKIF_ABI_X86_32, raw, &req);
	CHECK(req.indirect && req.op == BLKIF_OP_WRITE && req.nr_segments == 300);
	CHECK(req.id == id && req.sector == sector && req.handle == handle);
	CHECK(req.indirect_grefs[0] == gref);

	memset(raw, 0, sizeof(raw));
	raw[0] = BLKIF_OP_DISCARD;
	put(raw, 4, &id, 8);
	put(raw, 12, &sector, 8);
	put(raw, 20, &nr, 8);
	blkif_req_decode(BLKIF_ABI_X86_32, raw, &req);
	CHECK(req.op == BLKIF_OP_DISCARD && req.id == id && req.sector == sector);
	CHECK(req.nr_sectors == nr);
}

/* A direct request with @n segments of sectors [first, last] starting at @sector. */
static int check_rw(uint8_t op, unsigned int n, uint8_t first, uint8_t last, uint64_t sector,
		    const struct blkif_limits *l)
{
	static struct blkif_request_segment segs[BLKIF_MAX_INDIRECT_SEGS];
	static struct blkif_req req = { .seg = segs };
	const char *why;

	req = (struct blkif_req){ .seg = segs };
	req.operation = req.op = op;
	req.nr_segments = (uint16_t)n;
	req.sector = sector;
	for (unsigned int i = 0; i < n && i < BLKIF_MAX_INDIRECT_SEGS; i++) {
		req.seg[i].gref = i;
		req.seg[i].first_sect = first;
		req.seg[i].last_sect = last;
	}
	return blkif_req_check(&req, l, &why);
}

static int check_indirect(uint8_t op, unsigned int n, uint64_t sector, uint8_t last,
			  const struct blkif_limits *l)
{
	static struct blkif_request_segment segs[BLKIF_MAX_INDIRECT_SEGS];
	static struct blkif_req req = { .seg = segs };
	struct blkif_request_segment descs[BLKIF_MAX_INDIRECT_SEGS];
	const char *why;
	int r;

	req = (struct blkif_req){ .seg = segs };
	req.operation = BLKIF_OP_INDIRECT;
	req.op = op;
	req.indirect = true;
	req.nr_segments = (uint16_t)n;
	req.sector = sector;
	r = blkif_req_check(&req, l, &why);
	if (r != BLKIF_RSP_OKAY)
		return r;
	if (req.nr_indirect_pages != 1)
		return 99;
	memset(descs, 0, sizeof(descs));
	for (unsigned int i = 0; i < n; i++)
		descs[i].last_sect = last;
	blkif_req_load_indirect(&req, descs, n * sizeof(descs[0]));
	r = blkif_req_check_segs(&req, l, &why);
	if (r == BLKIF_RSP_OKAY && req.nr_sectors != (uint64_t)n * (last + 1U))
		return 98;
	return r;
}

static void test_validate(void)
{
	struct blkif_limits ro = lim, small = lim, nofeat = lim;
	static struct blkif_request_segment segs[BLKIF_MAX_INDIRECT_SEGS];
	static struct blkif_req req = { .seg = segs };
	const char *why = NULL;

	ro.readonly = true;
	nofeat.discard = nofeat.flush = nofeat.barrier = false;

	/* nr_segments: 0 only for flush/barrier; 1..11 direct. */
	CHECK(check_rw(BLKIF_OP_READ, 0, 0, 7, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_WRITE, 0, 0, 7, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 7, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_READ, 11, 0, 7, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_READ, 12, 0, 7, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 255, 0, 7, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_WRITE_BARRIER, 0, 0, 0, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, 7, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_FLUSH_DISKCACHE, 12, 0, 7, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, &nofeat) == BLKIF_RSP_EOPNOTSUPP);
	CHECK(check_rw(BLKIF_OP_WRITE_BARRIER, 0, 0, 0, 0, &nofeat) == BLKIF_RSP_EOPNOTSUPP);

	/* first_sect <= last_sect <= 7 */
	CHECK(check_rw(BLKIF_OP_READ, 1, 3, 3, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_READ, 1, 4, 3, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 7, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 8, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 1, 8, 8, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 255, 0, &lim) == BLKIF_RSP_ERROR);

	/* Sector range: 1000 sectors; a full page is 8. */
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 7, 992, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 7, 993, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 0, 999, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 0, 1000, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 7, UINT64_MAX - 3, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 7, UINT64_MAX, &lim) == BLKIF_RSP_ERROR);
	small.nr_sectors = 0;
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 0, 0, &small) == BLKIF_RSP_ERROR);

	/* Read-only device. */
	CHECK(check_rw(BLKIF_OP_READ, 1, 0, 7, 0, &ro) == BLKIF_RSP_OKAY);
	CHECK(check_rw(BLKIF_OP_WRITE, 1, 0, 7, 0, &ro) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_FLUSH_DISKCACHE, 1, 0, 7, 0, &ro) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_WRITE_BARRIER, 1, 0, 7, 0, &ro) == BLKIF_RSP_ERROR);
	CHECK(check_rw(BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, &ro) == BLKIF_RSP_OKAY);
	CHECK(check_indirect(BLKIF_OP_WRITE, 4, 0, 7, &ro) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_READ, 4, 0, 7, &ro) == BLKIF_RSP_OKAY);

	/* Unknown operations, including the reserved one. */
	CHECK(check_rw(BLKIF_OP_RESERVED_1, 1, 0, 7, 0, &lim) == BLKIF_RSP_EOPNOTSUPP);
	CHECK(check_rw(7, 1, 0, 7, 0, &lim) == BLKIF_RSP_EOPNOTSUPP);
	CHECK(check_rw(255, 0, 0, 0, 0, &lim) == BLKIF_RSP_EOPNOTSUPP);

	/* Indirect: 1..256 segments, READ/WRITE only, range checks from the descriptors. */
	CHECK(check_indirect(BLKIF_OP_READ, 0, 0, 7, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_READ, 1, 0, 7, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_indirect(BLKIF_OP_READ, 12, 0, 7, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_indirect(BLKIF_OP_WRITE, 256, 0, 0, &lim) == BLKIF_RSP_OKAY);
	CHECK(check_indirect(BLKIF_OP_WRITE, 257, 0, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_READ, 65535, 0, 0, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_READ, 125, 0, 7, &lim) == BLKIF_RSP_OKAY);  /* 1000 */
	CHECK(check_indirect(BLKIF_OP_READ, 125, 1, 7, &lim) == BLKIF_RSP_ERROR); /* 1001 */
	CHECK(check_indirect(BLKIF_OP_READ, 2, 0, 8, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_FLUSH_DISKCACHE, 1, 0, 7, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_WRITE_BARRIER, 1, 0, 7, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_DISCARD, 1, 0, 7, &lim) == BLKIF_RSP_ERROR);
	CHECK(check_indirect(BLKIF_OP_INDIRECT, 1, 0, 7, &lim) == BLKIF_RSP_ERROR);

	/* Discard: inside the device without wrap, refused read-only or when not offered. */
	req = (struct blkif_req){ .seg = segs };
	req.operation = req.op = BLKIF_OP_DISCARD;
	req.sector = 992;
	req.nr_sectors = 8;
	CHECK(blkif_req_check(&req, &lim, &why) == BLKIF_RSP_OKAY);
	req.nr_sectors = 9;
	CHECK(blkif_req_check(&req, &lim, &why) == BLKIF_RSP_ERROR && why);
	req.sector = 8;
	req.nr_sectors = UINT64_MAX - 4;
	CHECK(blkif_req_check(&req, &lim, &why) == BLKIF_RSP_ERROR);
	req.sector = 1001;
	req.nr_sectors = 0;
	CHECK(blkif_req_check(&req, &lim, &why) == BLKIF_RSP_ERROR);
	req.sector = 0;
	req.nr_sectors = 8;
	CHECK(blkif_req_check(&req, &ro, &why) == BLKIF_RSP_ERROR);
	CHECK(blkif_req_check(&req, &nofeat, &why) == BLKIF_RSP_EOPNOTSUPP);
	/* Secure discard is not offered (discard-secure=0): refused, never done as a plain one. */
	req.discard_flag = BLKIF_DISCARD_SECURE;
	why = NULL;
	CHECK(blkif_req_check(&req, &lim, &why) == BLKIF_RSP_EOPNOTSUPP && why);
	req.discard_flag = 0x80; /* an unknown flag bit alone changes nothing */
	CHECK(blkif_req_check(&req, &lim, &why) == BLKIF_RSP_OKAY);
	req.discard_flag = 0;
}

/* A ring of one page in a private buffer, the way a frontend sets it up. */
static uint8_t ring_mem[16 * 4096] __attribute__((aligned(4096)));

static void test_ring(enum blkif_abi abi)
{
	struct blkif_ring r;
	struct blkif_sring_hdr *h = (struct blkif_sring_hdr *)ring_mem;
	uint8_t raw[BLKIF_MAX_SLOT_SIZE], *slot;
	size_t ss = blkif_abi_slot_size(abi);
	uint32_t n = 99, base;
	uint64_t id;
	int16_t st;

	memset(ring_mem, 0, sizeof(ring_mem));
	blkif_ring_attach(&r, ring_mem, 1, abi);
	CHECK(r.nr_ents == 32);
	CHECK(blkif_ring_pending(&r, &n) == 0 && n == 0);

	/* Producer may claim exactly the ring size, one more is fatal. */
	h->req_prod = 32;
	CHECK(blkif_ring_pending(&r, &n) == 0 && n == 32);
	h->req_prod = 33;
	n = 7;
	CHECK(blkif_ring_pending(&r, &n) == -EPROTO && n == 7);
	/* Producer moving backwards is as bogus. */
	h->req_prod = (uint32_t)-1;
	CHECK(blkif_ring_pending(&r, &n) == -EPROTO);

	/* Wrap at 2^32: indices just below the wrap, requests straddling it. */
	base = UINT32_MAX - 2;
	r.req_cons = r.rsp_prod_pvt = r.rsp_pushed = base;
	h->req_prod = base + 5; /* wraps to 2 */
	h->rsp_prod = base;
	CHECK(blkif_ring_pending(&r, &n) == 0 && n == 5);
	h->req_prod = base + 32;
	CHECK(blkif_ring_pending(&r, &n) == 0 && n == 32);
	h->req_prod = base + 33;
	CHECK(blkif_ring_pending(&r, &n) == -EPROTO);
	h->req_prod = base + 5;

	/* Copy once: a later rewrite of the slot does not change what we took. */
	slot = r.slots + (size_t)(r.req_cons & 31) * ss;
	memset(slot, 0, ss);
	slot[0] = BLKIF_OP_READ;
	slot[1] = 1;
	blkif_ring_take(&r, raw);
	slot[1] = 200;
	CHECK(raw[0] == BLKIF_OP_READ && raw[1] == 1);
	CHECK(r.req_cons == base + 1);

	/* Take 4 more (crossing 2^32), the consumer cannot run past what responses free. */
	for (int i = 0; i < 4; i++)
		blkif_ring_take(&r, raw);
	CHECK(r.req_cons == 2);
	CHECK(blkif_ring_pending(&r, &n) == 0 && n == 0);
	CHECK(!blkif_ring_cons_full(&r));

	/* Responses: slot pre-filled with junk, padding must come out zero. */
	slot = r.slots + (size_t)(r.rsp_prod_pvt & 31) * ss;
	memset(slot, 0xAA, ss);
	h->rsp_event = base + 1;
	blkif_ring_put_rsp(&r, 0x0102030405060708ULL, BLKIF_OP_READ, BLKIF_RSP_ERROR);
	memcpy(&id, slot, 8);
	memcpy(&st, slot + 10, 2);
	CHECK(id == 0x0102030405060708ULL && slot[8] == BLKIF_OP_READ && st == BLKIF_RSP_ERROR);
	CHECK(slot[9] == 0);
	if (abi == BLKIF_ABI_X86_64)
		CHECK(slot[12] == 0 && slot[13] == 0 && slot[14] == 0 && slot[15] == 0);
	else
		CHECK(slot[12] == 0xAA); /* beyond a 12-byte response: not ours to touch */
	CHECK(h->rsp_prod == base);
	CHECK(blkif_ring_push(&r)); /* rsp_event = base+1 is within (old, new] */
	CHECK(h->rsp_prod == base + 1);
	/* Frontend asks for an event far ahead: no notify. */
	h->rsp_event = base + 100;
	blkif_ring_put_rsp(&r, 1, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
	CHECK(!blkif_ring_push(&r));
	/* Wrapping rsp_event across 2^32. */
	h->rsp_event = 1;
	for (int i = 0; i < 3; i++)
		blkif_ring_put_rsp(&r, 2, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
	CHECK(r.rsp_prod_pvt == 2);
	CHECK(blkif_ring_push(&r));

	/* Final check: nothing pending sets req_event = cons + 1. */
	CHECK(!blkif_ring_final_check(&r));
	CHECK(h->req_event == 3);
	h->req_prod = 3;
	CHECK(blkif_ring_final_check(&r));

	/* Order 4 ring: 512 entries, prod 512 ahead ok, 513 fatal. */
	memset(ring_mem, 0, sizeof(ring_mem));
	blkif_ring_attach(&r, ring_mem, 16, abi);
	CHECK(r.nr_ents == 512);
	h->req_prod = 512;
	CHECK(blkif_ring_pending(&r, &n) == 0 && n == 512);
	for (int i = 0; i < 512; i++)
		blkif_ring_take(&r, raw);
	CHECK(blkif_ring_cons_full(&r));
	h->req_prod = 513;
	CHECK(blkif_ring_pending(&r, &n) == -EPROTO);
}

int main(void)
{
	test_abi();
	test_decode();
	test_validate();
	test_ring(BLKIF_ABI_X86_64);
	test_ring(BLKIF_ABI_X86_32);
	if (bk_test_failures) {
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
