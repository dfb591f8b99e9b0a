// SPDX-License-Identifier: MIT
/*
 * blkif end to end through the simulation, against a real file under /var/tmp:
 * random reads and writes checked against a shadow copy and the file itself, 256-segment
 * indirect requests, flush, barrier with data, discard that frees blocks, statistics, and a
 * clean disconnect with every grant released.
 *
 * Usage: test-blkif-data ENGINE VARIANT
 *   VARIANT basic: one queue, one ring page, native ABI (no protocol key)
 *   VARIANT mq:    4 queues, ring order 4, x86_32 ABI
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "device.h"
#include "engine.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xenbus_front.h"
#include "check.h"

#include "blkif/common.h"

#define DOMID 5
#define DEVID 51712
#define DISK_BYTES (16U << 20)
#define SECTORS (DISK_BYTES / 512U)
#define REGION_SECTORS 512U /* 256 KiB: concurrent requests never overlap */

static uint8_t *shadow;
static int backing_fd = -1;
static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/* A batch of non-overlapping random requests on every queue, then verify. */
static void random_rw(struct bk_blkfront *f, unsigned int nq, unsigned int rounds,
		      unsigned int max_pages)
{
	enum { BATCH = 8 };
	static struct bk_bf_io ios[4][BATCH];
	static uint8_t bufs[4][BATCH][48 * 4096];

	for (unsigned int round = 0; round < rounds; round++) {
		bool used[SECTORS / REGION_SECTORS] = { false };

		for (unsigned int q = 0; q < nq; q++) {
			for (unsigned int i = 0; i < BATCH; i++) {
				struct bk_bf_io *io = &ios[q][i];
				unsigned int region, pages = 1 + (unsigned int)(rnd() % max_pages);

				do {
					region = (unsigned int)(rnd() % (SECTORS / REGION_SECTORS));
				} while (used[region]);
				used[region] = true;
				memset(io, 0, sizeof(*io));
				io->op = (rnd() & 1) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
				io->sector = region * REGION_SECTORS +
					     8 * (rnd() % (REGION_SECTORS / 8 - pages));
				io->nr_sectors = pages * 8;
				io->data = bufs[q][i];
				if (io->op == BLKIF_OP_WRITE)
					fill_random(io->data, (size_t)pages * 4096);
				CHECK(bk_bf_queue(f, q, io) == 0);
			}
			bk_bf_push(f, q);
		}
		for (unsigned int q = 0; q < nq; q++) {
			CHECK(bk_bf_wait_all(f, q) == 0);
			for (unsigned int i = 0; i < BATCH; i++) {
				struct bk_bf_io *io = &ios[q][i];
				uint8_t *sh = shadow + io->sector * 512;
				size_t len = (size_t)io->nr_sectors * 512;

				CHECK(io->done && io->status == BLKIF_RSP_OKAY);
				if (io->op == BLKIF_OP_WRITE)
					memcpy(sh, io->data, len);
				else
					CHECK(!memcmp(sh, io->data, len));
			}
		}
	}
}

/* Read the whole disk back with 256-segment indirect requests; compare with the shadow. */
static void verify_all(struct bk_blkfront *f, unsigned int q)
{
	static uint8_t buf[256 * 4096];

	for (uint64_t s = 0; s < SECTORS; s += 256 * 8) {
		memset(buf, 0, sizeof(buf));
		CHECK(bk_bf_rw(f, q, BLKIF_OP_READ, s, 256 * 8, buf, true) == BLKIF_RSP_OKAY);
		CHECK(!memcmp(buf, shadow + s * 512, sizeof(buf)));
	}
}

static void verify_file(void)
{
	static uint8_t buf[DISK_BYTES];

	CHECK(pread(backing_fd, buf, DISK_BYTES, 0) == (ssize_t)DISK_BYTES);
	CHECK(!memcmp(buf, shadow, DISK_BYTES));
}

static void test_indirect_write(struct bk_blkfront *f, unsigned int q)
{
	static uint8_t buf[256 * 4096];
	uint64_t sector = 8 * 100;

	fill_random(buf, sizeof(buf));
	CHECK(bk_bf_rw(f, q, BLKIF_OP_WRITE, sector, 256 * 8, buf, true) == BLKIF_RSP_OKAY);
	memcpy(shadow + sector * 512, buf, sizeof(buf));
	/* A partial last page and an indirect request of 12 segments. */
	fill_random(buf, 12 * 4096);
	CHECK(bk_bf_rw(f, q, BLKIF_OP_WRITE, 3, 11 * 8 + 3, buf, true) == BLKIF_RSP_OKAY);
	memcpy(shadow + 3 * 512, buf, (11 * 8 + 3) * 512);
}

static void test_flush_barrier(struct bk_blkfront *f, unsigned int q)
{
	static uint8_t buf[2 * 4096];
	struct bk_bf_io io = { 0 };

	io.op = BLKIF_OP_FLUSH_DISKCACHE;
	CHECK(bk_bf_io_sync(f, q, &io) == BLKIF_RSP_OKAY);
	CHECK(io.rsp_op == BLKIF_OP_FLUSH_DISKCACHE);

	memset(&io, 0, sizeof(io));
	io.op = BLKIF_OP_WRITE_BARRIER;
	CHECK(bk_bf_io_sync(f, q, &io) == BLKIF_RSP_OKAY);

	/* Barrier and flush carrying data: flushed, written, flushed. */
	fill_random(buf, sizeof(buf));
	memset(&io, 0, sizeof(io));
	io.op = BLKIF_OP_WRITE_BARRIER;
	io.sector = 4096;
	io.nr_sectors = 16;
	io.data = buf;
	CHECK(bk_bf_io_sync(f, q, &io) == BLKIF_RSP_OKAY);
	memcpy(shadow + 4096 * 512, buf, sizeof(buf));
	fill_random(buf, sizeof(buf));
	memset(&io, 0, sizeof(io));
	io.op = BLKIF_OP_FLUSH_DISKCACHE;
	io.sector = 4096 + 16;
	io.nr_sectors = 16;
	io.data = buf;
	CHECK(bk_bf_io_sync(f, q, &io) == BLKIF_RSP_OKAY);
	memcpy(shadow + (4096 + 16) * 512, buf, sizeof(buf));
}

/*
 * More requests at once than the backend takes per turn (budget 64: it must come back for the
 * rest by itself) and than its bounce pool holds (4 MiB: eight 1 MiB writes stall it, and it
 * must resume when the first ones complete, counting ring_full).
 */
static void test_pressure(struct bk_blkfront *f, unsigned int q)
{
	static struct bk_bf_io ios[200];
	static uint8_t small[200][4096], big[8][256 * 4096];
	unsigned int n = BK_MIN(200U, bk_bf_ring_entries(f, q));

	for (unsigned int i = 0; i < n; i++) {
		memset(&ios[i], 0, sizeof(ios[i]));
		ios[i].op = BLKIF_OP_READ;
		ios[i].sector = 8 * (uint64_t)(rnd() % (SECTORS / 8));
		ios[i].nr_sectors = 8;
		ios[i].data = small[i];
		CHECK(bk_bf_queue(f, q, &ios[i]) == 0);
	}
	bk_bf_push(f, q);
	CHECK(bk_bf_wait_all(f, q) == 0);
	for (unsigned int i = 0; i < n; i++)
		CHECK(ios[i].status == BLKIF_RSP_OKAY &&
		      !memcmp(small[i], shadow + ios[i].sector * 512, 4096));

	n = BK_MIN(8U, bk_bf_ring_entries(f, q));
	for (unsigned int i = 0; i < n; i++) {
		memset(&ios[i], 0, sizeof(ios[i]));
		ios[i].op = BLKIF_OP_WRITE;
		ios[i].sector = (uint64_t)i * 2048; /* 1 MiB apart */
		ios[i].nr_sectors = 2048;
		ios[i].data = big[i];
		fill_random(big[i], sizeof(big[i]));
		CHECK(bk_bf_queue(f, q, &ios[i]) == 0);
	}
	bk_bf_push(f, q);
	CHECK(bk_bf_wait_all(f, q) == 0);
	for (unsigned int i = 0; i < n; i++) {
		CHECK(ios[i].status == BLKIF_RSP_OKAY);
		memcpy(shadow + ios[i].sector * 512, big[i], sizeof(big[i]));
	}
}

/*
 * Once the daemon has nothing left to do, every ring has req_event re-armed (req_prod + 1): a
 * pass of the hook that took requests leaves the re-arming to a later look (io.c, queue_take),
 * and the loop must not go to sleep before that look. A request posted then is notified, and
 * served.
 */
static void test_armed_when_idle(struct bk_bf_env *env, struct bk_blkfront *f, unsigned int nq)
{
	static uint8_t buf[4096];

	for (unsigned int i = 0; i < 8; i++)
		bk_loop_run_once(env->loop, 0);
	for (unsigned int q = 0; q < nq; q++) {
		struct blkif_sring_hdr *h = bk_bf_sring(f, q);

		CHECK(h && h->req_event == h->req_prod + 1);
		if (!h || h->req_event != h->req_prod + 1)
			fprintf(stderr, "q%u: req_event %u, req_prod %u\n", q, h ? h->req_event : 0,
				h ? h->req_prod : 0);
		CHECK(bk_bf_rw(f, q, BLKIF_OP_READ, 8 * q, 8, buf, false) == BLKIF_RSP_OKAY);
		CHECK(!memcmp(buf, shadow + 8 * q * 512, sizeof(buf)));
	}
}

static bool range_has_hole(int fd, off_t start, off_t len)
{
	off_t h = lseek(fd, start, SEEK_HOLE);

	return h >= start && h < start + len;
}

static void test_discard(struct bk_blkfront *f, unsigned int q)
{
	static uint8_t buf[256 * 4096];
	const uint64_t sector = 8192; /* 4 MiB in: 1 MiB aligned */
	struct bk_bf_io io = { 0 };
	struct stat before, after;
	uint64_t feat = 0;

	CHECK(bk_bf_feature(f, "feature-discard", &feat) == 0);
	CHECK(feat == 1);
	if (feat != 1)
		return;
	fill_random(buf, sizeof(buf));
	CHECK(bk_bf_rw(f, q, BLKIF_OP_WRITE, sector, 256 * 8, buf, true) == BLKIF_RSP_OKAY);
	fsync(backing_fd);
	CHECK(fstat(backing_fd, &before) == 0);
	CHECK(!range_has_hole(backing_fd, sector * 512, sizeof(buf)));

	/* Secure discard is not offered (discard-secure=0): refused, and nothing discarded. */
	CHECK(bk_bf_feature(f, "discard-secure", &feat) == 0 && feat == 0);
	io.op = BLKIF_OP_DISCARD;
	io.discard_flag = BLKIF_DISCARD_SECURE;
	io.sector = sector;
	io.nr_sectors = 256 * 8;
	CHECK(bk_bf_io_sync(f, q, &io) == BLKIF_RSP_EOPNOTSUPP);
	CHECK(io.rsp_op == BLKIF_OP_DISCARD);
	CHECK(!range_has_hole(backing_fd, sector * 512, sizeof(buf)));
	CHECK(pread(backing_fd, shadow + sector * 512, 4096, (off_t)(sector * 512)) == 4096 &&
	      !memcmp(shadow + sector * 512, buf, 4096));

	memset(&io, 0, sizeof(io));
	io.op = BLKIF_OP_DISCARD;
	io.sector = sector;
	io.nr_sectors = 256 * 8;
	CHECK(bk_bf_io_sync(f, q, &io) == BLKIF_RSP_OKAY);
	CHECK(io.rsp_op == BLKIF_OP_DISCARD);
	CHECK(fstat(backing_fd, &after) == 0);
	CHECK(after.st_blocks < before.st_blocks || range_has_hole(backing_fd, sector * 512, 4096));
	memset(shadow + sector * 512, 0, sizeof(buf));
	/* Discarded blocks read back as zeroes on a file. */
	memset(buf, 0xff, sizeof(buf));
	CHECK(bk_bf_rw(f, q, BLKIF_OP_READ, sector, 256 * 8, buf, true) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(buf, shadow + sector * 512, sizeof(buf)));
	/* A discard past the end is an error, not a crash. */
	memset(&io, 0, sizeof(io));
	io.op = BLKIF_OP_DISCARD;
	io.sector = SECTORS - 8;
	io.nr_sectors = 9;
	CHECK(bk_bf_io_sync(f, q, &io) == BLKIF_RSP_ERROR);
}

static void check_stats(struct bk_bf_env *env, unsigned int nq, bool persistent)
{
	struct bk_device *dev = bk_core_find(env->core, "vbd", DOMID, DEVID);
	struct bk_queue_stats qs[8];
	char desc[256];
	uint64_t reads = 0, writes = 0, lat = 0, zero = 0;
	int n;

	CHECK(dev != NULL);
	if (!dev)
		return;
	n = dev->ops->get_stats(dev, qs, 8);
	CHECK(n == (int)nq);
	for (int i = 0; i < n && i < 8; i++) {
		reads += qs[i].reqs[BK_REQ_READ];
		writes += qs[i].reqs[BK_REQ_WRITE];
		CHECK(qs[i].inflight == 0);
		for (unsigned int b = 0; b < BK_LAT_BUCKETS; b++)
			lat += qs[i].lat_hist[b];
		zero += qs[i].lat_hist[0];
	}
	CHECK(reads > 0 && writes > 0);
	CHECK(lat >= reads + writes);
	/* Answered in the turn that took it (page-cache reads) is still some time, never 0 ns. */
	CHECK(zero == 0);
	CHECK(qs[0].reqs[BK_REQ_INDIRECT] > 0);
	CHECK(qs[0].reqs[BK_REQ_FLUSH] >= 2 && qs[0].reqs[BK_REQ_BARRIER] >= 2);
	CHECK(qs[0].notify_in > 0 && qs[0].notify_out > 0);
	/* test_pressure stalled the bounce pool, which persistent grants do not use. */
	CHECK(qs[0].ring_full > 0 || persistent);
	CHECK(qs[0].errors == 2); /* the secure discard, the discard past the end */
	CHECK(dev->ops->describe(dev, desc, sizeof(desc)) == 0);
	printf("describe: %s\n", desc);
	CHECK(strstr(desc, "queues=") != NULL);
}

static bool device_gone(void *data)
{
	struct bk_bf_env *env = data;

	return bk_core_find(env->core, "vbd", DOMID, DEVID) == NULL;
}

int main(int argc, char **argv)
{
	const char *engine = argc > 1 ? argv[1] : "io_uring";
	bool mq = argc > 2 && !strcmp(argv[2], "mq");
	const char *extra[] = { "blanket-engine", engine, NULL };
	struct bk_bf_params p = {
		.pfn_base = 0,
		.pfn_count = 8192,
	};
	char path[] = "/var/tmp/blkif-test-XXXXXX";
	struct bk_bf_env env;
	struct bk_blkfront *f = NULL;
	struct bk_device *dev;
	unsigned int nq = mq ? 4 : 1;
	uint64_t v;

	if (bk_bf_engines_missing(engine, NULL))
		return 77;
	if (mq) {
		p.nr_queues = 4;
		p.ring_order = 4;
		p.protocol = "x86_32-abi";
		p.abi = BLKIF_ABI_X86_32;
		p.persistent = true;
	}
	backing_fd = mkstemp(path);
	if (backing_fd < 0 || ftruncate(backing_fd, DISK_BYTES) < 0) {
		perror("backing file");
		return 1;
	}
	shadow = malloc(DISK_BYTES);
	fill_random(shadow, DISK_BYTES);
	if (pwrite(backing_fd, shadow, DISK_BYTES, 0) != (ssize_t)DISK_BYTES)
		return 1;
	fsync(backing_fd);

	if (bk_bf_env_new(&env) < 0)
		return 1;
	CHECK(bk_bf_env_guest(&env, DOMID, 16384) == 0);
	CHECK(bk_bf_env_add_vbd(&env, DOMID, DEVID, path, "w", "disk", extra) == 0);
	CHECK(bk_bf_open(&env, DOMID, DEVID, &p, &f) == 0);
	if (!f)
		goto out;
	CHECK(bk_bf_wait_initwait(f) == 0);
	CHECK(bk_bf_feature(f, "sectors", &v) == 0 && v == SECTORS);
	CHECK(bk_bf_feature(f, "max-ring-page-order", &v) == 0 && v == 4);
	CHECK(bk_bf_feature(f, "feature-max-indirect-segments", &v) == 0 && v == 256);
	CHECK(bk_bf_feature(f, "multi-queue-max-queues", &v) == 0 && v >= 4);
	CHECK(bk_bf_feature(f, "info", &v) == 0 && v == 0);
	CHECK(bk_bf_feature(f, "sector-size", &v) == 0 && v == 512);
	CHECK(bk_bf_feature(f, "feature-flush-cache", &v) == 0 && v == 1);
	CHECK(bk_bf_feature(f, "feature-barrier", &v) == 0 && v == 1);
	/*
	 * Persistent grants are offered on buffered stores only (the mq case's frontend takes
	 * them then): this one is O_DIRECT unless the filesystem refused it.
	 */
	dev = bk_core_find(env.core, "vbd", DOMID, DEVID);
	CHECK(dev && dev->priv);
	if (dev && dev->priv) {
		bool direct = ((struct blkif_dev *)dev->priv)->store->direct;

		CHECK(bk_bf_feature(f, "feature-persistent", &v) == 0 && v == (direct ? 0 : 1));
	}
	CHECK(bk_bf_prepare(f) == 0);
	CHECK(bk_bf_initialise(f) == 0);
	if (bk_test_failures)
		goto out;

	random_rw(f, nq, 20, 11);
	random_rw(f, nq, 5, 40); /* indirect once above 11 pages */
	test_pressure(f, 0);
	test_armed_when_idle(&env, f, nq);
	test_indirect_write(f, 0);
	test_flush_barrier(f, 0);
	test_discard(f, 0);
	verify_all(f, 0);
	verify_file();
	check_stats(&env, nq, mq);
	CHECK(bk_bf_bad_padding(f) == 0);
	CHECK(bk_bf_unknown_ids(f) == 0);

	CHECK(bk_bf_disconnect(f) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, DOMID) == 0);
	/* Backend Closed: libxl only removes the directories (it writes state=5 only to a
	 * Connected backend). */
	CHECK(bk_ts_destroy_dirs(env.ts, "vbd", DOMID, DEVID) == 0);
	CHECK(bk_test_pump_until(env.loop, device_gone, &env, 0) == 0);
out:
	bk_bf_close(f);
	bk_bf_env_free(&env);
	close(backing_fd);
	unlink(path);
	free(shadow);
	if (bk_test_failures) {
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
