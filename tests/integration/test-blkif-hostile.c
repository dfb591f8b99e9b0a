// SPDX-License-Identifier: MIT
/*
 * A hostile guest against the blkif backend, one case per validation rule and each boundary
 * +/- 1. A bad request gets an error response and the device keeps serving; a bad ring or bad
 * xenstore value fails only that device (Closing, with an error node). After every case a
 * bystander guest's disk still serves, every response's padding is zero, and the whole run is
 * ASan/UBSan clean.
 *
 * Usage: test-blkif-hostile [ENGINE]  (default io_uring)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xenbus_front.h"
#include "check.h"

#define DISK_BYTES (1U << 20)
#define SECTORS (DISK_BYTES / 512U)
#define EVIL 11
#define GOOD 12

static struct bk_bf_env env;
static const char *engine;
static char path[64], path2[64];
static int backing_fd = -1;
static struct bk_blkfront *good;
static uint32_t next_devid = 100;
static char slow_opts[96];

/* ------------------------------------------------------------------------------------------ */

static struct bk_blkfront *open_dev(uint32_t devid, const struct bk_bf_params *pp,
				    const char *const *extra)
{
	struct bk_bf_params p = { 0 };
	struct bk_blkfront *f = NULL;

	if (pp)
		p = *pp;
	p.pfn_base = (devid % 4) * 1024;
	p.pfn_count = 1024;
	if (bk_bf_env_add_vbd(&env, EVIL, devid, path, "w", "disk", extra) < 0 ||
	    bk_bf_open(&env, EVIL, devid, &p, &f) < 0)
		return NULL;
	if (bk_bf_wait_initwait(f) < 0 || bk_bf_prepare(f) < 0) {
		bk_bf_close(f);
		return NULL;
	}
	return f;
}

static struct bk_blkfront *connect_dev(const struct bk_bf_params *pp, const char *const *extra)
{
	struct bk_blkfront *f = open_dev(next_devid++, pp, extra);

	if (f && bk_bf_initialise(f) < 0) {
		bk_bf_close(f);
		return NULL;
	}
	return f;
}

static void bystander_ok(void)
{
	static uint8_t w[8192], r[8192];

	memset(w, (int)(rand() & 0xff), sizeof(w));
	CHECK(bk_bf_rw(good, 0, BLKIF_OP_WRITE, 8, 16, w, false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(good, 0, BLKIF_OP_READ, 8, 16, r, false) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(w, r, sizeof(w)));
}

static void finish_dev(struct bk_blkfront *f)
{
	uint32_t devid;
	char *be;

	if (!f)
		return;
	CHECK(bk_bf_bad_padding(f) == 0);
	be = bk_bf_xbf(f)->be_path;
	devid = (uint32_t)strtoul(strrchr(be, '/') + 1, NULL, 10);
	bk_bf_close(f);
	CHECK(bk_ts_destroy_dirs(env.ts, "vbd", EVIL, devid) == 0);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(bk_core_find(env.core, "vbd", EVIL, devid) == NULL);
	bystander_ok();
}

static bool be_closing_or_closed(void *data)
{
	unsigned int st = 0;

	return bk_xbf_be_state(data, &st) == 0 && st >= BK_XB_CLOSING;
}

/* The device failed: Closing (or already Closed), an error node naming the reason. */
static void check_failed(struct bk_blkfront *f, const char *needle)
{
	_cleanup_free_ char *err = NULL;

	CHECK(bk_test_pump_until(env.loop, be_closing_or_closed, bk_bf_xbf(f), 0) == 0);
	CHECK(bk_xbf_read_be(bk_bf_xbf(f), "error", &err) == 0);
	if (err) {
		printf("  error node: %s\n", err);
		CHECK(strstr(err, needle) != NULL);
	}
}

struct rsp_wait {
	struct bk_blkfront *f;
	uint32_t idx;
};

static bool rsp_arrived(void *data)
{
	struct rsp_wait *w = data;

	return (int32_t)(READ_ONCE(bk_bf_sring(w->f, 0)->rsp_prod) - w->idx) > 0;
}

/* Put @raw on queue 0, publish, wait for its response; returns the status (or -ETIMEDOUT). */
static int raw_req(struct bk_blkfront *f, const void *raw, uint64_t *ret_id, uint8_t *ret_op)
{
	struct rsp_wait w = { .f = f, .idx = bk_bf_req_prod_pvt(f, 0) };
	uint64_t id;
	uint8_t op;
	int16_t st;

	bk_bf_put_raw(f, 0, raw, BLKIF_MAX_SLOT_SIZE);
	bk_bf_push(f, 0);
	if (bk_test_pump_until(env.loop, rsp_arrived, &w, 0) < 0)
		return -ETIMEDOUT;
	bk_bf_read_rsp(f, 0, w.idx, &id, &op, &st);
	bk_bf_reap(f, 0); /* consume it: counts padding */
	if (ret_id)
		*ret_id = id;
	if (ret_op)
		*ret_op = op;
	return st;
}

/* A granted data page; @ro for a read-only grant. */
static uint32_t data_page(struct bk_blkfront *f, bool ro, uint32_t *ret_pfn)
{
	uint32_t pfn = 0, ref = 0;

	CHECK(bk_bf_alloc_page(f, &pfn) == 0);
	CHECK(bk_bf_grant(f, pfn, ro, &ref) == 0);
	if (ret_pfn)
		*ret_pfn = pfn;
	return ref;
}

static int direct(struct bk_blkfront *f, uint8_t op, unsigned int nseg, uint64_t sector,
		  uint32_t ref, uint8_t first, uint8_t last)
{
	struct blkif_request_segment segs[BLKIF_MAX_SEGMENTS_PER_REQUEST];
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];

	for (unsigned int i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {
		segs[i].gref = ref;
		segs[i].first_sect = first;
		segs[i].last_sect = last;
	}
	bk_bf_encode_rw(f, raw, op, (uint8_t)nseg, 0x1000 + nseg, sector, segs);
	return raw_req(f, raw, NULL, NULL);
}

static int indirect(struct bk_blkfront *f, uint8_t op, unsigned int nseg, uint64_t sector,
		    uint32_t ref, uint8_t last, uint32_t *ret_desc_pfn)
{
	struct blkif_request_segment *d;
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	uint32_t pfn, dref[2];
	unsigned int npages = (nseg + 511) / 512;
	int st;

	npages = BK_MIN(BK_MAX(npages, 1U), 2U); /* descriptors past 1024 are never read */
	for (unsigned int p = 0; p < npages; p++) {
		dref[p] = data_page(f, true, &pfn);
		d = bk_bf_page(f, pfn);
		for (unsigned int i = 0; i < 512; i++) {
			d[i].gref = ref;
			d[i].first_sect = 0;
			d[i].last_sect = last;
		}
		if (ret_desc_pfn && p == 0)
			*ret_desc_pfn = pfn;
	}
	bk_bf_encode_indirect(f, raw, op, (uint16_t)nseg, 0x2000 + nseg, sector, dref, npages);
	st = raw_req(f, raw, NULL, NULL);
	return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests answered with an error; the device keeps serving. */

static void test_bad_requests(void)
{
	struct bk_blkfront *f = connect_dev(NULL, NULL);
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	uint32_t rw, ro, pfn, revoked;
	uint64_t id;
	uint8_t op;

	CHECK(f != NULL);
	if (!f)
		return;
	rw = data_page(f, false, NULL);
	ro = data_page(f, true, NULL);

	printf("nr_segments direct 0/1/11/12\n");
	CHECK(direct(f, BLKIF_OP_READ, 0, 0, rw, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_WRITE, 0, 0, ro, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, rw, 0, 7) == BLKIF_RSP_OKAY);
	CHECK(direct(f, BLKIF_OP_READ, 11, 0, rw, 0, 7) == BLKIF_RSP_OKAY);
	CHECK(direct(f, BLKIF_OP_READ, 12, 0, rw, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_WRITE, 255, 0, ro, 0, 7) == BLKIF_RSP_ERROR);

	printf("nr_segments indirect 256/257, 0\n");
	CHECK(indirect(f, BLKIF_OP_READ, 256, 0, rw, 0, NULL) == BLKIF_RSP_OKAY);
	CHECK(indirect(f, BLKIF_OP_READ, 257, 0, rw, 0, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_WRITE, 256, 0, ro, 7, NULL) == BLKIF_RSP_OKAY);
	CHECK(indirect(f, BLKIF_OP_WRITE, 0, 0, ro, 7, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_READ, 65535, 0, rw, 0, NULL) == BLKIF_RSP_ERROR);

	printf("first_sect/last_sect\n");
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, rw, 3, 3) == BLKIF_RSP_OKAY);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, rw, 4, 3) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, rw, 0, 7) == BLKIF_RSP_OKAY);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, rw, 0, 8) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, rw, 7, 8) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, rw, 255, 255) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_READ, 2, 0, rw, 8, NULL) == BLKIF_RSP_ERROR);

	printf("sector range\n");
	CHECK(direct(f, BLKIF_OP_READ, 1, SECTORS - 8, rw, 0, 7) == BLKIF_RSP_OKAY);
	CHECK(direct(f, BLKIF_OP_READ, 1, SECTORS - 7, rw, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 1, SECTORS - 1, rw, 0, 0) == BLKIF_RSP_OKAY);
	CHECK(direct(f, BLKIF_OP_READ, 1, SECTORS, rw, 0, 0) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 2, SECTORS - 8, rw, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 1, UINT64_MAX - 3, rw, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_WRITE, 1, UINT64_MAX, ro, 0, 0) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_READ, 256, SECTORS - 2047, rw, 7, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_READ, 256, SECTORS - 2048, rw, 7, NULL) == BLKIF_RSP_OKAY);
	bk_bf_encode_discard(f, raw, 77, SECTORS - 8, 9);
	CHECK(raw_req(f, raw, NULL, NULL) == BLKIF_RSP_ERROR);
	bk_bf_encode_discard(f, raw, 78, 8, UINT64_MAX - 4);
	CHECK(raw_req(f, raw, NULL, NULL) == BLKIF_RSP_ERROR);
	bk_bf_encode_discard(f, raw, 79, SECTORS - 8, 8);
	CHECK(raw_req(f, raw, NULL, NULL) == BLKIF_RSP_OKAY);

	printf("grant refs: invalid, revoked, read-only for a read\n");
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, 99999, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_WRITE, 1, 0, 99999, 0, 7) == BLKIF_RSP_ERROR);
	revoked = data_page(f, false, &pfn);
	CHECK(bk_sim_guest_revoke(env.sim, EVIL, revoked) == 0);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, revoked, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_WRITE, 1, 0, revoked, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_READ, 1, 0, ro, 0, 7) == BLKIF_RSP_ERROR);
	CHECK(direct(f, BLKIF_OP_WRITE, 1, 0, ro, 0, 7) == BLKIF_RSP_OKAY);
	/* Indirect descriptor page not granted, and one valid with a bad data ref inside. */
	bk_bf_encode_indirect(f, raw, BLKIF_OP_READ, 4, 0x3000, 0, &revoked, 1);
	CHECK(raw_req(f, raw, NULL, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_READ, 4, 0, 99999, 7, NULL) == BLKIF_RSP_ERROR);

	printf("unknown operations\n");
	for (unsigned int o = 4; o < 256; o += (o < 8 ? 1 : 61)) {
		if (o == BLKIF_OP_DISCARD || o == BLKIF_OP_INDIRECT)
			continue;
		bk_bf_encode_rw(f, raw, (uint8_t)o, 1, 0x4000 + o, 0, NULL);
		CHECK(raw_req(f, raw, &id, &op) == BLKIF_RSP_EOPNOTSUPP);
		CHECK(id == 0x4000 + o && op == o);
	}

	printf("indirect wrapping something else than read/write\n");
	CHECK(indirect(f, BLKIF_OP_FLUSH_DISKCACHE, 1, 0, ro, 7, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_WRITE_BARRIER, 1, 0, ro, 7, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_DISCARD, 1, 0, ro, 7, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, BLKIF_OP_INDIRECT, 1, 0, ro, 7, NULL) == BLKIF_RSP_ERROR);
	CHECK(indirect(f, 200, 1, 0, ro, 7, NULL) == BLKIF_RSP_ERROR);

	/* Still serving after all that. */
	CHECK(direct(f, BLKIF_OP_READ, 11, 0, rw, 0, 7) == BLKIF_RSP_OKAY);
	{
		unsigned int st = 0;

		CHECK(bk_xbf_be_state(bk_bf_xbf(f), &st) == 0 && st == BK_XB_CONNECTED);
	}
	finish_dev(f);
}

/*
 * Double fetch (XSA-155): after the backend took a request (held in the slow engine), the
 * guest rewrites the slot and the indirect page. The backend must act on what it copied.
 */
static void test_double_fetch(void)
{
	const char *extra[] = { "blanket-engine", "fault", "blanket-options", slow_opts, NULL };
	struct bk_blkfront *f = connect_dev(NULL, extra);
	struct rsp_wait w;
	uint8_t raw[BLKIF_MAX_SLOT_SIZE], *slot;
	struct blkif_request_segment seg = { 0 }, *d;
	uint32_t data_ref, data_pfn, other_ref, desc_ref, desc_pfn;
	static uint8_t disk[3 * 4096];
	uint64_t id;
	uint8_t op;
	int16_t st;

	CHECK(f != NULL);
	if (!f)
		return;
	data_ref = data_page(f, true, &data_pfn);
	other_ref = data_page(f, false, NULL);
	memset(bk_bf_page(f, data_pfn), 0xC3, 4096);

	/* Direct: WRITE sector 16 from data_ref, id 0xD1. */
	seg.gref = data_ref;
	seg.last_sect = 7;
	bk_bf_encode_rw(f, raw, BLKIF_OP_WRITE, 1, 0xD1, 16, &seg);
	w.f = f;
	w.idx = bk_bf_req_prod_pvt(f, 0);
	slot = bk_bf_slot(f, 0, w.idx);
	bk_bf_put_raw(f, 0, raw, sizeof(raw));
	bk_bf_push(f, 0);
	for (int i = 0; i < 3; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(!rsp_arrived(&w)); /* in the slow engine */
	/* Rewrite everything: a read of sector 32 into another page, another id, 11 segments. */
	{
		struct blkif_request_segment segs[BLKIF_MAX_SEGMENTS_PER_REQUEST];

		for (unsigned int i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
			segs[i] =
				(struct blkif_request_segment){ .gref = other_ref, .last_sect = 7 };
		bk_bf_encode_rw(f, slot, BLKIF_OP_READ, 11, 0xEE, 32, segs);
	}
	memset(bk_bf_page(f, data_pfn), 0x00, 4096);
	CHECK(bk_test_pump_until(env.loop, rsp_arrived, &w, 0) == 0);
	bk_bf_read_rsp(f, 0, w.idx, &id, &op, &st);
	bk_bf_reap(f, 0);
	CHECK(id == 0xD1 && op == BLKIF_OP_WRITE && st == BLKIF_RSP_OKAY);
	CHECK(pread(backing_fd, disk, 4096, 16 * 512) == 4096);
	CHECK(disk[0] == 0xC3 && disk[4095] == 0xC3);

	/* Indirect: WRITE 2 segments at sector 48; then rewrite descriptors and header. */
	memset(bk_bf_page(f, data_pfn), 0x3C, 4096);
	desc_ref = data_page(f, true, &desc_pfn);
	d = bk_bf_page(f, desc_pfn);
	memset(d, 0, 4096);
	d[0].gref = d[1].gref = data_ref;
	d[0].last_sect = d[1].last_sect = 7;
	bk_bf_encode_indirect(f, raw, BLKIF_OP_WRITE, 2, 0xD2, 48, &desc_ref, 1);
	w.idx = bk_bf_req_prod_pvt(f, 0);
	slot = bk_bf_slot(f, 0, w.idx);
	bk_bf_put_raw(f, 0, raw, sizeof(raw));
	bk_bf_push(f, 0);
	for (int i = 0; i < 3; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(!rsp_arrived(&w));
	d[0].gref = other_ref;
	d[0].first_sect = 9;
	d[1].last_sect = 200;
	bk_bf_encode_indirect(f, slot, BLKIF_OP_READ, 300, 0xEF, 0, &other_ref, 1);
	memset(bk_bf_page(f, data_pfn), 0x00, 4096);
	CHECK(bk_test_pump_until(env.loop, rsp_arrived, &w, 0) == 0);
	bk_bf_read_rsp(f, 0, w.idx, &id, &op, &st);
	bk_bf_reap(f, 0);
	CHECK(id == 0xD2 && op == BLKIF_OP_WRITE && st == BLKIF_RSP_OKAY);
	CHECK(pread(backing_fd, disk, 8192, 48 * 512) == 8192);
	CHECK(disk[0] == 0x3C && disk[8191] == 0x3C);
	finish_dev(f);
}

/* Event storm on an empty ring: counted as spurious, backed off, and the device still works. */
static void test_event_storm(void)
{
	struct bk_blkfront *f = connect_dev(NULL, NULL);
	struct bk_queue_stats qs;
	struct bk_device *dev;
	static uint8_t buf[4096];

	CHECK(f != NULL);
	if (!f)
		return;
	for (int i = 0; i < 2000; i++) {
		bk_bf_kick(f, 0);
		bk_loop_run_once(env.loop, 0);
		if (i % 100 == 0)
			bystander_ok();
	}
	dev = bk_core_find(env.core, "vbd", EVIL, next_devid - 1);
	CHECK(dev && dev->ops->get_stats(dev, &qs, 1) == 1);
	if (dev) {
		printf("  storm: notify_in %llu spurious %llu\n", (unsigned long long)qs.notify_in,
		       (unsigned long long)qs.spurious);
		CHECK(qs.spurious > 16 && qs.spurious <= qs.notify_in);
	}
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	finish_dev(f);
}

/* ------------------------------------------------------------------------------------------ */
/* Ring indices. */

static void test_prod_overflow(void)
{
	struct bk_blkfront *f = connect_dev(NULL, NULL);
	static struct bk_bf_io ios[32];
	static uint8_t buf[32][4096];
	struct blkif_sring_hdr *h;
	uint32_t n;

	CHECK(f != NULL);
	if (!f)
		return;
	/* Exactly the ring size outstanding: fine. */
	n = bk_bf_ring_entries(f, 0);
	CHECK(n == 32);
	for (uint32_t i = 0; i < n; i++) {
		memset(&ios[i], 0, sizeof(ios[i]));
		ios[i].op = BLKIF_OP_READ;
		ios[i].sector = 8 * i;
		ios[i].nr_sectors = 8;
		ios[i].data = buf[i];
		CHECK(bk_bf_queue(f, 0, &ios[i]) == 0);
	}
	bk_bf_push(f, 0);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	for (uint32_t i = 0; i < n; i++)
		CHECK(ios[i].status == BLKIF_RSP_OKAY);

	/* One more than the ring holds: a bogus frontend, the device fails. */
	h = bk_bf_sring(f, 0);
	printf("producer index beyond the ring\n");
	WRITE_ONCE(h->req_prod, h->rsp_prod + n + 1);
	bk_bf_kick(f, 0);
	check_failed(f, "producer index");
	bystander_ok();
	finish_dev(f);

	/* Producer index moving backwards is as bogus. */
	f = connect_dev(NULL, NULL);
	CHECK(f != NULL);
	if (!f)
		return;
	h = bk_bf_sring(f, 0);
	WRITE_ONCE(h->req_prod, h->rsp_prod - 1);
	bk_bf_kick(f, 0);
	check_failed(f, "producer index");
	finish_dev(f);
}

static void test_wrap(enum blkif_abi abi)
{
	struct bk_bf_params p = {
		.start_index = 0xFFFFFFF0U,
		.abi = abi,
		.protocol = abi == BLKIF_ABI_X86_32 ? "x86_32-abi" : "x86_64-abi",
	};
	struct bk_blkfront *f = connect_dev(&p, NULL);
	static uint8_t w[4096], r[4096];

	CHECK(f != NULL);
	if (!f)
		return;
	printf("ring indices wrapping at 2^32 (%s)\n", p.protocol);
	for (int i = 0; i < 40; i++) {
		memset(w, i, sizeof(w));
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 8 * (uint64_t)i, 8, w, false) ==
		      BLKIF_RSP_OKAY);
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 8 * (uint64_t)i, 8, r, false) ==
		      BLKIF_RSP_OKAY);
		CHECK(!memcmp(w, r, sizeof(w)));
	}
	CHECK(bk_bf_sring(f, 0)->rsp_prod < 0x100); /* wrapped */
	finish_dev(f);
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile xenstore values: only that device fails. */

static void bad_key(const char *what, const struct bk_bf_params *p, const char *key,
		    const char *val, const char *needle)
{
	struct bk_blkfront *f = open_dev(next_devid++, p, NULL);

	printf("%s\n", what);
	CHECK(f != NULL);
	if (!f)
		return;
	if (key)
		CHECK(bk_xbf_write(bk_bf_xbf(f), key, "%s", val) == 0);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_INITIALISED) == 0);
	check_failed(f, needle);
	CHECK(bk_sim_guest_nr_mapped(env.sim, EVIL) == 0);
	bystander_ok();
	finish_dev(f);
}

static void good_key(const char *what, const struct bk_bf_params *p, const char *key,
		     const char *val)
{
	struct bk_blkfront *f = open_dev(next_devid++, p, NULL);
	static uint8_t buf[4096];

	printf("%s\n", what);
	CHECK(f != NULL);
	if (!f)
		return;
	if (key)
		CHECK(bk_xbf_write(bk_bf_xbf(f), key, "%s", val) == 0);
	CHECK(bk_bf_initialise(f) == 0);
	for (unsigned int q = 0; q < BK_MAX(p->nr_queues, 1U); q++)
		CHECK(bk_bf_rw(f, q, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	finish_dev(f);
}

static void test_xenstore(void)
{
	struct bk_bf_params p = { 0 };
	uint64_t maxq = 0;
	char toomany[16];

	bad_key("unknown protocol", &(struct bk_bf_params){ .protocol = "x86_16-abi" }, NULL, NULL,
		"protocol");
	bad_key("protocol 'native' is not a protocol name", &p, "protocol", "native", "protocol");
	good_key("protocol x86_64-abi", &p, "protocol", "x86_64-abi");

	p.ring_order = 4;
	good_key("ring-page-order 4", &p, NULL, NULL);
	bad_key("ring-page-order 5", &p, "ring-page-order", "5", "ring-page-order");
	bad_key("ring-page-order garbage", &p, "ring-page-order", "4x", "ring-page-order");
	p.ring_order = 0;

	CHECK(bk_bf_feature(good, "multi-queue-max-queues", &maxq) == 0 && maxq >= 1);
	snprintf(toomany, sizeof(toomany), "%llu", (unsigned long long)maxq + 1);
	p.nr_queues = (unsigned int)maxq;
	good_key("max queues", &p, NULL, NULL);
	bad_key("too many queues", &p, "multi-queue-num-queues", toomany, "queues");
	p.nr_queues = 2;
	bad_key("zero queues", &p, "multi-queue-num-queues", "0", "queues");
	bad_key("negative queues", &p, "multi-queue-num-queues", "-1", "multi-queue");
	p.nr_queues = 0;
	bad_key("ring-ref garbage", &p, "ring-ref", "12a", "ring-ref");
	bad_key("ring-ref of an ungranted page", &p, "ring-ref", "77777", "ring");
	bad_key("event-channel garbage", &p, "event-channel", "", "event-channel");
	bad_key("event-channel not ours", &p, "event-channel", "4000", "event channel");
}

int main(int argc, char **argv)
{
	struct bk_bf_params gp = { .pfn_base = 4096, .pfn_count = 256 };

	engine = argc > 1 ? argv[1] : "io_uring";
	if (bk_bf_engines_missing(engine, "fault", NULL))
		return 77;
	snprintf(slow_opts, sizeof(slow_opts), "inner=%s,delay=1000ms:write", engine);
	backing_fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x11, path, sizeof(path));
	if (backing_fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	CHECK(bk_bf_env_guest(&env, EVIL, 4096) == 0);
	CHECK(bk_bf_env_guest(&env, GOOD, 8192) == 0);
	CHECK(bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, path2, sizeof(path2)) >= 0);
	CHECK(bk_bf_env_add_vbd(&env, GOOD, 51712, path2, "w", "disk", NULL) == 0);
	CHECK(bk_bf_open(&env, GOOD, 51712, &gp, &good) == 0);
	if (!good || bk_bf_connect(good) < 0) {
		fprintf(stderr, "bystander did not connect\n");
		return 1;
	}

	test_bad_requests();
	test_double_fetch();
	test_event_storm();
	test_prod_overflow();
	test_wrap(BLKIF_ABI_X86_64);
	test_wrap(BLKIF_ABI_X86_32);
	test_xenstore();

	CHECK(bk_bf_bad_padding(good) == 0);
	CHECK(bk_bf_disconnect(good) == 0);
	bk_bf_close(good);
	CHECK(bk_sim_guest_nr_mapped(env.sim, EVIL) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, GOOD) == 0);
	bk_bf_env_free(&env);
	close(backing_fd);
	unlink(path);
	unlink(path2);
	if (bk_test_failures) {
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
