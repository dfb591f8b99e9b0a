// SPDX-License-Identifier: MIT
/*
 * Persistent grants (backends/blkif/pgnt.c): a frontend that takes feature-persistent gets its
 * 1 MiB reads and writes served straight on its mapped pages, with no grant copy of the data
 * (only each indirect request's descriptor page is copied), and the data is right on both
 * sides. A hostile frontend's bad grefs (a read into a page granted read-only, a gref it never
 * granted) get an error response for that request only: the device and a neighbouring guest go
 * on. The mappings are bounded per queue (BLKIF_PGNT_MAX: requests beyond it are copied, still
 * right), counted in the bounce-pool budget, and released when the frontend disconnects.
 * An I/O the kernel refuses on the mapped pages (EFAULT, as O_DIRECT on a mapping without pages
 * behind it would; EINVAL, an alignment) is done again through the bounce pool, answered OKAY
 * with the right data; after EFAULT the queue copies from then on. With persistent=off in the
 * target (blanket-persistent), or on an O_DIRECT store (cache=none), they are not offered, and
 * a frontend that reuses its grants anyway has them grant-copied, none mapped.
 *
 * Usage: test-blkif-pgnt [ENGINE]  (default io_uring)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "check.h"
#include "device.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"
#include "xen/sim.h"

#include "blkif/common.h"

#define DOMID 5
#define NEIGHBOUR 6
#define FAULTY 7
#define OFF 9 /* FAULTY + 1 is taken */
#define DIRECT 10
#define DEVID 51712
#define DISK_BYTES (16U << 20)
#define BIG_SECTORS 2048U /* 1 MiB: 256 segments, indirect */
#define NR_BOUND 8U	  /* 1 MiB requests in flight at once: 2056 pages, over the bound */

static struct bk_bf_env env;
static const char *engine = "io_uring";
static char path[64];
/* Buffered: I/O on the mapped grants is only done for stores without O_DIRECT (pgnt.c). */
static char target[96];
static int backing_fd = -1;
static uint8_t buf[NR_BOUND][BIG_SECTORS * 512], cmp[BIG_SECTORS * 512];
static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint32_t own_ref, own_ref2; /* granted by hand in test_hostile, ended after the disconnect */

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		p[i] = (uint8_t)rng;
	}
}

/* The image holds @len bytes of @data at @sector. */
static bool on_disk(uint64_t sector, const uint8_t *data, size_t len)
{
	static uint8_t disk[BIG_SECTORS * 512];

	return pread(backing_fd, disk, len, (off_t)(sector * 512)) == (ssize_t)len &&
	       !memcmp(disk, data, len);
}

static struct bk_blkfront *connect_guest_on(uint32_t domid, bool persistent, const char *eng,
					    const char *opts)
{
	struct bk_bf_params p = { .pfn_count = 6000, .persistent = persistent };
	const char *extra[] = { "blanket-engine", eng, opts ? "blanket-options" : NULL, opts,
				NULL };
	struct bk_blkfront *f = NULL;
	uint64_t v;

	CHECK(bk_bf_env_add_vbd(&env, domid, DEVID, target, "w!", "disk", extra) == 0);
	f = bk_bf_open_connect(&env, domid, DEVID, &p);
	CHECK(f != NULL);
	if (f && persistent) {
		struct bk_device *dev = bk_core_find(env.core, "vbd", domid, DEVID);
		char desc[256] = "";

		CHECK(bk_bf_feature(f, "feature-persistent", &v) == 0 && v == 1);
		/* blanketctl list shows it. */
		CHECK(dev && dev->ops->describe(dev, desc, sizeof(desc)) == 0);
		CHECK(strstr(desc, " persistent") != NULL);
	}
	return f;
}

static struct bk_blkfront *connect_guest(uint32_t domid, bool persistent)
{
	return connect_guest_on(domid, persistent, engine, NULL);
}

/* 1 MiB of new data written at @sector: it is on disk, and reads back the same. */
static void write_read_back(struct bk_blkfront *f, uint64_t sector)
{
	fill(buf[0], sizeof(buf[0]));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, sector, BIG_SECTORS, buf[0], true) == BLKIF_RSP_OKAY);
	CHECK(on_disk(sector, buf[0], sizeof(buf[0])));
	memset(cmp, 0, sizeof(cmp));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, sector, BIG_SECTORS, cmp, true) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(cmp, buf[0], sizeof(cmp)));
}

/* 1 MiB writes and reads on persistent grants: right data, no grant copy of it. */
static void test_big_io(struct bk_blkfront *f)
{
	uint64_t copies, maps;

	/* The first request maps its grants. */
	fill(buf[0], sizeof(buf[0]));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, BIG_SECTORS, buf[0], true) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_persistent_grants(f) >= 257);
	copies = bk_sim_gnt_copy_segs(env.sim);
	maps = bk_sim_gnt_map_calls(env.sim);
	for (unsigned int i = 0; i < 4; i++)
		write_read_back(f, (uint64_t)(i + 1) * BIG_SECTORS);
	/* 8 requests: nothing of the 8 MiB of data, nor of their descriptor pages. */
	copies = bk_sim_gnt_copy_segs(env.sim) - copies;
	printf("8 x 1 MiB on persistent grants: %llu grant-copy segments, %llu map calls\n",
	       (unsigned long long)copies,
	       (unsigned long long)(bk_sim_gnt_map_calls(env.sim) - maps));
	/* The descriptor pages too come from the mapping, once their grefs are mapped. */
	CHECK(copies == 0);
	/* The same pages come back: at most the page that was an indirect page is new. */
	CHECK(bk_sim_gnt_map_calls(env.sim) - maps <= 8);
	/* A small read goes the same way, partial sectors included. */
	memset(cmp, 0, sizeof(cmp));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, BIG_SECTORS + 3, 5, cmp, false) == BLKIF_RSP_OKAY);
	CHECK(on_disk(BIG_SECTORS + 3, cmp, 5 * 512));
	{
		struct bk_device *dev = bk_core_find(env.core, "vbd", DOMID, DEVID);
		struct bk_queue_stats qs;
		uint64_t lat = 0;

		/*
		 * Reads from the page cache are answered in the turn that took them: their
		 * latency is still measured (a reading of its own), never 0 ns.
		 */
		CHECK(dev && dev->ops->get_stats(dev, &qs, 1) == 1);
		for (unsigned int b = 0; dev && b < BK_LAT_BUCKETS; b++)
			lat += qs.lat_hist[b];
		CHECK(lat >= 10);
		CHECK(dev && qs.lat_hist[0] == 0);
	}
}

/*
 * A queue that goes quiet for a while (its guest's I/O moved to another vCPU, so to another
 * queue) keeps its mappings until queue-idle-ms (30 s) has passed: when the I/O comes back its
 * pages are still mapped. With one second, each such pause unmapped them all and the next
 * requests mapped them again.
 */
static void test_pause(struct bk_blkfront *f)
{
	unsigned int mapped = bk_sim_guest_nr_mapped(env.sim, DOMID);
	uint64_t end = bk_now_ns() + 1500000000ULL;

	CHECK(mapped >= 257);
	while (bk_now_ns() < end)
		bk_loop_run_once(env.loop, 50);
	printf("after 1.5 s without a request: %u of %u pages still mapped\n",
	       bk_sim_guest_nr_mapped(env.sim, DOMID), mapped);
	CHECK(bk_sim_guest_nr_mapped(env.sim, DOMID) == mapped);
	write_read_back(f, 6 * BIG_SECTORS);
}

/* Put the encoded request @raw (id @id) on queue 0 and wait: its response status. */
static int16_t raw_send(struct bk_blkfront *f, const uint8_t *raw, uint64_t id)
{
	uint32_t idx = bk_bf_req_prod_pvt(f, 0);
	struct blkif_sring_hdr *h = bk_bf_sring(f, 0);
	uint64_t rid = 0;
	uint8_t rop = 0;
	int16_t st = 99;

	bk_bf_put_raw(f, 0, raw, BLKIF_MAX_SLOT_SIZE);
	bk_bf_push(f, 0);
	bk_bf_kick(f, 0);
	for (unsigned int i = 0; i < 2000 && READ_ONCE(h->rsp_prod) == idx; i++)
		bk_loop_run_once(env.loop, 1);
	if (READ_ONCE(h->rsp_prod) == idx)
		return 99;
	bk_bf_read_rsp(f, 0, idx, &rid, &rop, &st);
	CHECK(rid == id);
	return st;
}

/* A raw one-segment request with gref @ref; its response status. */
static int16_t raw_request(struct bk_blkfront *f, uint8_t op, uint32_t ref)
{
	struct blkif_request_segment seg = { .gref = ref, .first_sect = 0, .last_sect = 7 };
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	uint64_t id = 0xB0B0000000000000ULL | ref;

	bk_bf_encode_rw(f, raw, op, 1, id, 64, &seg);
	return raw_send(f, raw, id);
}

/*
 * An indirect read of 2 segments whose descriptor page is @desc_ref (page @desc_pfn), a gref
 * the queue already has mapped: blanketd reads the descriptors from its mapping, and checks
 * its copy as it checks a grant-copied one.
 */
static int16_t raw_indirect(struct bk_blkfront *f, uint32_t desc_pfn, uint32_t desc_ref,
			    uint32_t data_ref, uint8_t last_sect)
{
	struct blkif_request_segment *d = bk_bf_page(f, desc_pfn);
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	uint64_t id = 0xD0D0000000000000ULL | last_sect;

	d[0] = (struct blkif_request_segment){ .gref = data_ref, .first_sect = 0, .last_sect = 3 };
	d[1] = (struct blkif_request_segment){ .gref = data_ref,
					       .first_sect = 4,
					       .last_sect = last_sect };
	bk_bf_encode_indirect(f, raw, BLKIF_OP_READ, 2, id, 128, &desc_ref, 1);
	return raw_send(f, raw, id);
}

/* Bad grefs in a persistent frontend's requests: that request fails, nothing else does. */
static void test_hostile(struct bk_blkfront *f, struct bk_blkfront *n)
{
	struct bk_bf_io io = { 0 };
	uint32_t pfn, ref;
	uint32_t unknown;

	/* A read into pages granted read-only: mapping them writable is refused. */
	io.op = BLKIF_OP_READ;
	io.sector = 0;
	io.nr_sectors = 64;
	io.data = cmp;
	io.readonly_grant = true;
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_ERROR);

	/* A gref the guest never granted, for a read and for a write. */
	CHECK(bk_bf_alloc_page(f, &pfn) == 0);
	CHECK(bk_bf_grant(f, pfn, false, &ref) == 0);
	unknown = ref + 4000;
	CHECK(raw_request(f, BLKIF_OP_READ, unknown) == BLKIF_RSP_ERROR);
	CHECK(raw_request(f, BLKIF_OP_WRITE, unknown) == BLKIF_RSP_ERROR);
	/* The same page granted properly: served (the bad ones did not poison the queue). */
	CHECK(raw_request(f, BLKIF_OP_READ, ref) == BLKIF_RSP_OKAY);
	CHECK(on_disk(64, bk_bf_page(f, pfn), 4096));
	own_ref = ref; /* mapped now: the guest can end it once we disconnected */

	/*
	 * That mapped page as an indirect descriptor page: read from the mapping, not copied
	 * through the hypervisor, and checked the same (a last sector past the page fails only
	 * that request).
	 */
	{
		uint32_t dpfn, dref;
		uint64_t copies = bk_sim_gnt_copy_segs(env.sim);

		CHECK(bk_bf_alloc_page(f, &dpfn) == 0);
		CHECK(bk_bf_grant(f, dpfn, false, &dref) == 0);
		CHECK(raw_request(f, BLKIF_OP_READ, dref) == BLKIF_RSP_OKAY); /* mapped */
		copies = bk_sim_gnt_copy_segs(env.sim);
		CHECK(raw_indirect(f, pfn, ref, dref, 7) == BLKIF_RSP_OKAY);
		CHECK(on_disk(128, bk_bf_page(f, dpfn), 4096));
		CHECK(raw_indirect(f, pfn, ref, dref, 8) == BLKIF_RSP_ERROR);
		CHECK(bk_sim_gnt_copy_segs(env.sim) == copies);
		own_ref2 = dref;
	}

	/* The device and its neighbour go on. */
	fill(buf[0], sizeof(buf[0]));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, BIG_SECTORS, buf[0], true) == BLKIF_RSP_OKAY);
	memset(cmp, 0, sizeof(cmp));
	CHECK(bk_bf_rw(n, 0, BLKIF_OP_READ, 0, BIG_SECTORS, cmp, true) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(cmp, buf[0], sizeof(cmp)));
}

/* More grants in flight than a queue keeps mapped: bounded, the rest copied, all right. */
static void test_bound(struct bk_blkfront *f)
{
	static struct bk_bf_io ios[NR_BOUND];
	unsigned int mapped;

	for (unsigned int i = 0; i < NR_BOUND; i++) {
		memset(&ios[i], 0, sizeof(ios[i]));
		fill(buf[i], sizeof(buf[i]));
		ios[i].op = BLKIF_OP_WRITE;
		ios[i].sector = (uint64_t)(i + 8) * BIG_SECTORS;
		ios[i].nr_sectors = BIG_SECTORS;
		ios[i].data = buf[i];
		CHECK(bk_bf_queue(f, 0, &ios[i]) == 0);
	}
	bk_bf_push(f, 0);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	mapped = bk_sim_guest_nr_mapped(env.sim, DOMID);
	printf("%u persistent grants in the frontend, %u pages mapped (bound %u + the ring)\n",
	       bk_bf_persistent_grants(f), mapped, BLKIF_PGNT_MAX);
	CHECK(bk_bf_persistent_grants(f) > BLKIF_PGNT_MAX);
	CHECK(mapped <= BLKIF_PGNT_MAX + 1);
	CHECK(mapped > 257);
	/* The mapped pages are counted in the budget the bounce pools share. */
	CHECK(blkif_pool_bytes_in_use() >= (uint64_t)(mapped - 1) * 4096);
	for (unsigned int i = 0; i < NR_BOUND; i++) {
		CHECK(ios[i].done && ios[i].status == BLKIF_RSP_OKAY);
		CHECK(on_disk(ios[i].sector, buf[i], sizeof(buf[i])));
		memset(cmp, 0, sizeof(cmp));
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, ios[i].sector, BIG_SECTORS, cmp, true) ==
		      BLKIF_RSP_OKAY);
		CHECK(!memcmp(cmp, buf[i], sizeof(cmp)));
	}
}

/*
 * The first read on the mapped pages fails with @err (the fault engine): answered OKAY all the
 * same, through the bounce pool; after EFAULT everything is copied, after EINVAL only that one.
 */
static void test_refused(uint32_t domid, int err)
{
	char opts[96];
	struct bk_blkfront *f;
	uint64_t copies;

	snprintf(opts, sizeof(opts), "inner=%s,fail=read:count=1:err=%d", engine, err);
	f = connect_guest_on(domid, true, "fault", opts);
	if (!f)
		return;
	fill(buf[0], sizeof(buf[0]));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, BIG_SECTORS, buf[0], true) == BLKIF_RSP_OKAY);
	memset(cmp, 0, sizeof(cmp));
	copies = bk_sim_gnt_copy_segs(env.sim);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, BIG_SECTORS, cmp, true) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(cmp, buf[0], sizeof(cmp)));
	/* Done again with grant copy: 256 segments out (the descriptor page came mapped). */
	CHECK(bk_sim_gnt_copy_segs(env.sim) - copies >= 256);
	copies = bk_sim_gnt_copy_segs(env.sim);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, BIG_SECTORS, buf[0], true) == BLKIF_RSP_OKAY);
	copies = bk_sim_gnt_copy_segs(env.sim) - copies;
	printf("after %s on a mapping, a 1 MiB write made %llu grant-copy segments\n",
	       err == EFAULT ? "EFAULT" : "EINVAL", (unsigned long long)copies);
	CHECK(err == EFAULT ? copies >= 257 : copies == 0);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
	CHECK(bk_sim_guest_nr_mapped(env.sim, domid) == 0);
}

/*
 * Persistent grants not offered, for persistent=off in the target (@tgt) or an O_DIRECT store:
 * feature-persistent=0, and a frontend that asks for them and reuses its grants anyway is
 * served by grant copy: every data segment copied, nothing mapped but its ring, the data right.
 */
static void test_not_offered(uint32_t domid, const char *tgt, bool direct)
{
	struct bk_bf_params p = { .pfn_count = 6000,
				  .persistent = true,
				  .persistent_anyway = true };
	const char *extra[] = { "blanket-engine", engine, NULL };
	char desc[256] = "";
	struct bk_device *dev;
	struct bk_blkfront *f;
	uint64_t v = 9, copies, maps;

	CHECK(bk_bf_env_add_vbd(&env, domid, DEVID, tgt, "w!", "disk", extra) == 0);
	f = bk_bf_open_connect(&env, domid, DEVID, &p);
	CHECK(f != NULL);
	if (!f)
		return;
	dev = bk_core_find(env.core, "vbd", domid, DEVID);
	if (direct && dev && dev->priv && !((struct blkif_dev *)dev->priv)->store->direct) {
		/* The filesystem of /var/tmp refused O_DIRECT: nothing to see here. */
		printf("%s is not O_DIRECT here: not checked\n", tgt);
		goto out;
	}
	CHECK(bk_bf_feature(f, "feature-persistent", &v) == 0 && v == 0);
	CHECK(dev && dev->ops->describe(dev, desc, sizeof(desc)) == 0);
	CHECK(strstr(desc, " persistent") == NULL);
	copies = bk_sim_gnt_copy_segs(env.sim);
	maps = bk_sim_gnt_map_calls(env.sim);
	for (unsigned int i = 0; i < 2; i++)
		write_read_back(f, (uint64_t)(i + 2) * BIG_SECTORS);
	/* The frontend did reuse its grants; 4 requests of 256 segments and a descriptor. */
	CHECK(bk_bf_persistent_grants(f) >= 257);
	copies = bk_sim_gnt_copy_segs(env.sim) - copies;
	printf("%s: 4 x 1 MiB made %llu grant-copy segments, %llu map calls\n",
	       direct ? "O_DIRECT" : "persistent=off", (unsigned long long)copies,
	       (unsigned long long)(bk_sim_gnt_map_calls(env.sim) - maps));
	CHECK(copies >= 4 * 257);
	CHECK(bk_sim_gnt_map_calls(env.sim) == maps);
	CHECK(bk_sim_guest_nr_mapped(env.sim, domid) == 1); /* the ring */
out:
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
	CHECK(bk_sim_guest_nr_mapped(env.sim, domid) == 0);
}

int main(int argc, char **argv)
{
	struct bk_blkfront *f = NULL, *n = NULL;
	char off_target[sizeof(target) + 16];

	if (argc > 1)
		engine = argv[1];
	if (bk_bf_engines_missing(engine, NULL))
		return 77;
	backing_fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, path, sizeof(path));
	if (backing_fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	snprintf(target, sizeof(target), "cache=writeback:%s", path);
	bk_log_set_level(BK_LOG_WARNING);
	CHECK(bk_bf_env_guest(&env, DOMID, 8192) == 0);
	CHECK(bk_bf_env_guest(&env, NEIGHBOUR, 8192) == 0);
	CHECK(bk_bf_env_guest(&env, FAULTY, 8192) == 0);
	CHECK(bk_bf_env_guest(&env, FAULTY + 1, 8192) == 0);
	CHECK(bk_bf_env_guest(&env, OFF, 8192) == 0);
	CHECK(bk_bf_env_guest(&env, DIRECT, 8192) == 0);
	f = connect_guest(DOMID, true);
	n = connect_guest(NEIGHBOUR, false);
	if (!f || !n)
		goto out;
	test_big_io(f);
	test_pause(f);
	test_hostile(f, n);
	test_bound(f);

	/* Disconnect: every mapping goes, the budget is back to the neighbour's pool alone. */
	CHECK(bk_bf_disconnect(f) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, DOMID) == 0);
	CHECK(bk_sim_guest_revoke(env.sim, DOMID, own_ref) == 0);
	CHECK(bk_sim_guest_revoke(env.sim, DOMID, own_ref2) == 0);
	bk_bf_close(f);
	f = NULL;
	CHECK(bk_sim_guest_nr_grants(env.sim, DOMID) == 0);
	CHECK(bk_bf_disconnect(n) == 0);
	test_refused(FAULTY, EFAULT);
	test_refused(FAULTY + 1, EINVAL);
	snprintf(off_target, sizeof(off_target), "persistent=off,%s", target);
	test_not_offered(OFF, off_target, false);
	test_not_offered(DIRECT, path, true);
out:
	bk_bf_close(f);
	bk_bf_close(n);
	bk_bf_env_free(&env);
	CHECK(blkif_pool_bytes_in_use() == 0);
	close(backing_fd);
	unlink(path);
	return bk_test_exit();
}
