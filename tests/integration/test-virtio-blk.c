// SPDX-License-Identifier: MIT
/*
 * The virtio-blk engine against a real qemu-storage-daemon exporting a file as vhost-user-blk
 * with 4 queues: verified random writes and reads of 512 B to 1 MiB on every queue (big ones
 * are split into several device requests), flush, discard (the file gets a hole),
 * write-zeroes, what the device offers, option errors, and the back-end killed with SIGKILL
 * and started again in the middle of writes and of reads: every I/O completes and verifies.
 * Exits 77 only when qemu-storage-daemon is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "check.h"
#include "qsd.h"
#include "engine.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"
#include "virtio/virtio-blk.h"

#define IMG_SIZE (64u << 20)
#define NQ 4u
#define DEPTH 32u
#define PAGE 4096u
#define MAX_IOV 8u
#define AREA (IMG_SIZE / (NQ * DEPTH)) /* each request owns one area: 512 KiB */

static char dir[128], img[256], sock[256];
static struct bk_qsd qsd = { .pid = -1 };

/* The export of img on sock, started once and then again with the same settings. */
static int qsd_start(bool writable)
{
	if (qsd.path[0]) {
		qsd.writable = writable;
		return bk_qsd_restart(&qsd);
	}
	return bk_qsd_start(&qsd, img, sock, NQ, writable);
}

static void qsd_kill(void)
{
	bk_qsd_kill(&qsd);
}

struct req {
	struct bk_io io;
	struct iovec iov[MAX_IOV];
	uint8_t *buf;
	int res;
	unsigned int ndone;
	unsigned int *pending;
};

static void req_done(struct bk_io *io, int res)
{
	struct req *rq = container_of(io, struct req, io);

	rq->res = res;
	rq->ndone++;
	(*rq->pending)--;
}

static uint8_t pat(uint64_t off, uint32_t seed)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 32 | seed);

	return (uint8_t)(x >> 29);
}

/* Lay @len bytes of @rq->buf out as up to MAX_IOV pieces of uneven sizes. */
static void req_prepare(struct req *rq, unsigned int *pending, enum bk_io_op op, uint64_t off,
			uint32_t len)
{
	unsigned int n = len >= 8 * PAGE ? MAX_IOV : 1 + len / (2 * PAGE);
	uint32_t piece = (len / n) & ~511u, at = 0;

	for (unsigned int i = 0; i < n; i++) {
		uint32_t l = i + 1 == n ? len - at : piece;

		rq->iov[i] = (struct iovec){ rq->buf + at, l };
		at += l;
	}
	rq->io = (struct bk_io){ .op = (uint8_t)op,
				 .iovcnt = (uint16_t)n,
				 .buf_index = -1,
				 .offset = off,
				 .len = len,
				 .iov = rq->iov,
				 .done = req_done };
	rq->res = -1000;
	rq->ndone = 0;
	rq->pending = pending;
}

static bool pump(struct bk_loop *loop, const unsigned int *pending, unsigned int max_turns)
{
	for (unsigned int i = 0; i < max_turns && *pending; i++)
		bk_loop_run_once(loop, 100);
	return *pending == 0;
}

struct ctx {
	struct bk_loop *loop;
	struct bk_engine *e[NQ];
	struct req w[NQ * DEPTH];
	uint32_t len[NQ * DEPTH];
	unsigned int pending;
};

static int open_engines(struct ctx *c, const char *extra)
{
	char opts[512];

	for (unsigned int q = 0; q < NQ; q++) {
		struct bk_engine_params ep = { .name = "vblk test",
					       .depth = DEPTH,
					       .options = opts };
		int r;

		snprintf(opts, sizeof(opts), "socket=%s,reconnect-timeout=30%s%s", sock,
			 extra ? "," : "", extra ? extra : "");
		r = bk_engine_open("virtio-blk", c->loop, NULL, &ep, &c->e[q]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void close_engines(struct ctx *c)
{
	for (unsigned int q = 0; q < NQ; q++) {
		CHECK(!c->e[q] || bk_engine_inflight(c->e[q]) == 0);
		bk_engine_close(c->e[q]);
		c->e[q] = NULL;
	}
}

/* Request sizes: sub-page, pages, and up to 1 MiB (four device requests). */
static uint32_t pick_len(unsigned int *rnd)
{
	switch (rand_r(rnd) % 4) {
	case 0:
		return 512u * (1 + (unsigned int)rand_r(rnd) % 8);
	case 1:
		return PAGE * (1 + (unsigned int)rand_r(rnd) % 16);
	case 2:
		return 512u * (1 + (unsigned int)rand_r(rnd) % 1024);
	default:
		return AREA;
	}
}

/* Queue NQ * DEPTH writes of @seed data, one per area, spread over all queues. */
static void queue_writes(struct ctx *c, uint32_t seed)
{
	unsigned int rnd = seed;

	for (unsigned int i = 0; i < NQ * DEPTH; i++) {
		struct req *rq = &c->w[i];
		uint64_t off = (uint64_t)i * AREA;
		/* Inside the area at a 512-byte offset, so sub-page I/O is unaligned to pages. */
		uint32_t len = pick_len(&rnd), shift = len < AREA ? 512u * (i % 7) : 0;

		if (len + shift > AREA)
			len = AREA - shift;
		c->len[i] = len;
		for (uint32_t b = 0; b < len; b++)
			rq->buf[b] = pat(off + shift + b, seed);
		req_prepare(rq, &c->pending, BK_IO_WRITE, off + shift, len);
		CHECK(bk_engine_queue(c->e[i % NQ], &rq->io) == 0);
		c->pending++;
	}
}

static void check_writes(struct ctx *c, uint32_t seed)
{
	int fd = open(img, O_RDONLY | O_CLOEXEC);
	uint8_t *chk = malloc(AREA);
	unsigned int bad = 0;

	CHECK(fd >= 0 && chk);
	for (unsigned int i = 0; i < NQ * DEPTH && fd >= 0 && chk; i++) {
		struct req *rq = &c->w[i];
		bool ok = rq->ndone == 1 && rq->res == (int)c->len[i] &&
			  pread(fd, chk, c->len[i], (off_t)rq->io.offset) == (ssize_t)c->len[i];

		for (uint32_t b = 0; ok && b < c->len[i]; b++)
			ok = chk[b] == pat(rq->io.offset + b, seed);
		if (!ok && bad++ < 5)
			fprintf(stderr, "write %u at %llu len %u: res %d ndone %u, data %s\n", i,
				(unsigned long long)rq->io.offset, c->len[i], rq->res, rq->ndone,
				"wrong or missing");
	}
	CHECK(bad == 0);
	free(chk);
	if (fd >= 0)
		close(fd);
}

/* Read every written range back through the engines (into cleared buffers) and verify. */
static void queue_reads(struct ctx *c)
{
	for (unsigned int i = 0; i < NQ * DEPTH; i++) {
		struct req *rq = &c->w[i];
		uint64_t off = rq->io.offset;

		memset(rq->buf, 0xee, AREA);
		req_prepare(rq, &c->pending, BK_IO_READ, off, c->len[i]);
		/* A different queue from the write's. */
		CHECK(bk_engine_queue(c->e[(i + 1) % NQ], &rq->io) == 0);
		c->pending++;
	}
}

static void check_reads(struct ctx *c, uint32_t seed)
{
	unsigned int bad = 0;

	for (unsigned int i = 0; i < NQ * DEPTH; i++) {
		struct req *rq = &c->w[i];
		bool ok = rq->ndone == 1 && rq->res == (int)c->len[i];

		for (uint32_t b = 0; ok && b < c->len[i]; b++)
			ok = rq->buf[b] == pat(rq->io.offset + b, seed);
		if (!ok && bad++ < 5)
			fprintf(stderr, "read %u at %llu len %u: res %d ndone %u, data wrong\n", i,
				(unsigned long long)rq->io.offset, c->len[i], rq->res, rq->ndone);
	}
	CHECK(bad == 0);
}

static void test_info(struct ctx *c)
{
	bool seen[NQ] = { false };

	for (unsigned int q = 0; q < NQ; q++) {
		struct bk_vblk_info info;

		CHECK(bk_vblk_info(c->e[q], &info) == 0);
		CHECK(info.size == IMG_SIZE && info.logical_block == 512);
		CHECK(info.nr_queues == NQ && info.queue < NQ && !seen[info.queue]);
		if (info.queue < NQ)
			seen[info.queue] = true;
		CHECK(!info.readonly && info.flush && info.discard && info.write_zeroes);
	}
}

static void test_rw(struct ctx *c, uint32_t seed)
{
	queue_writes(c, seed);
	CHECK(pump(c->loop, &c->pending, 600));
	check_writes(c, seed);
	queue_reads(c);
	CHECK(pump(c->loop, &c->pending, 600));
	check_reads(c, seed);
}

static void simple_io(struct ctx *c, struct bk_engine *e, enum bk_io_op op, uint64_t off,
		      uint32_t len, uint8_t *buf, int *ret_res)
{
	struct req rq = { .buf = buf };

	req_prepare(&rq, &c->pending, op, off, len);
	if (op == BK_IO_FLUSH || op == BK_IO_DISCARD) {
		rq.io.iovcnt = 0;
		rq.io.iov = NULL;
	}
	CHECK(bk_engine_queue(e, &rq.io) == 0);
	c->pending++;
	CHECK(pump(c->loop, &c->pending, 600));
	CHECK(rq.ndone == 1);
	*ret_res = rq.res;
}

static void test_flush(struct ctx *c)
{
	for (unsigned int q = 0; q < NQ; q++) {
		int res = -1;

		simple_io(c, c->e[q], BK_IO_FLUSH, 0, 0, NULL, &res);
		CHECK(res == 0);
	}
}

static bool fs_punches_holes(void)
{
	static const long known[] = { 0xEF53, 0x58465342, 0x9123683E, 0x01021994 };
	struct statfs sfs;

	if (statfs(img, &sfs) < 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if ((long)sfs.f_type == known[i])
			return true;
	fprintf(stderr, "filesystem of %s may not punch holes: hole check skipped\n", img);
	return false;
}

/* Write a pattern through the file, zap 1 MiB + 4 KiB through the engine, read zeros back. */
static void zap_and_check(struct ctx *c, struct bk_engine *e, uint64_t off, bool want_hole)
{
	const uint32_t len = (1u << 20) + PAGE;
	uint8_t *buf = malloc(len);
	int fd = open(img, O_RDWR | O_CLOEXEC), res = -1;
	bool zero = true;

	CHECK(buf && fd >= 0);
	if (!buf || fd < 0)
		goto out;
	memset(buf, 0xa5, len);
	CHECK(pwrite(fd, buf, len, (off_t)off) == (ssize_t)len);
	CHECK(fsync(fd) == 0);
	simple_io(c, e, BK_IO_DISCARD, off, len, NULL, &res);
	CHECK(res == 0);
	memset(buf, 0xff, len);
	simple_io(c, e, BK_IO_READ, off, len, buf, &res);
	CHECK(res == (int)len);
	for (uint32_t b = 0; b < len; b++)
		zero = zero && buf[b] == 0;
	CHECK(zero);
	/* Discard with discard=unmap punches a hole in the file (ext4, xfs, btrfs, tmpfs). */
	if (want_hole && fs_punches_holes()) {
		off_t h = lseek(fd, (off_t)off, SEEK_HOLE);

		CHECK(h >= (off_t)off && h < (off_t)(off + len));
	}
out:
	free(buf);
	if (fd >= 0)
		close(fd);
}

/* Kill the back-end once @after of the queued I/Os completed, start it again, finish. */
static void restart_during(struct ctx *c, unsigned int after, unsigned int down_ms)
{
	unsigned int total = c->pending;

	for (unsigned int i = 0; i < 600 && c->pending && total - c->pending < after; i++)
		bk_loop_run_once(c->loop, 10);
	fprintf(stderr, "killing qemu-storage-daemon with %u of %u I/Os still out\n", c->pending,
		total);
	CHECK(c->pending > 0);
	qsd_kill();
	/* Let the engine notice and retry against nobody for a while. */
	for (unsigned int t = 0; t < down_ms / 10; t++)
		bk_loop_run_once(c->loop, 10);
	CHECK(qsd_start(true) == 0);
	CHECK(pump(c->loop, &c->pending, 600));
}

static void test_restart(struct ctx *c, uint32_t seed)
{
	struct bk_vblk_info info;

	queue_writes(c, seed);
	restart_during(c, 8, 300);
	check_writes(c, seed);
	queue_reads(c);
	restart_during(c, 8, 0);
	check_reads(c, seed);
	CHECK(bk_vblk_info(c->e[0], &info) == 0);
	CHECK(info.reconnects == 2);
}

/* The back-end stays away longer than reconnect-timeout: what was out fails, then it is back. */
static void test_give_up(struct ctx *c)
{
	struct bk_vblk_info info;
	unsigned int failed = 0, total = NQ * DEPTH;
	uint8_t *buf = aligned_alloc(PAGE, PAGE);
	int res = -1;

	queue_writes(c, 4);
	for (unsigned int i = 0; i < 600 && c->pending && total - c->pending < 8; i++)
		bk_loop_run_once(c->loop, 10);
	CHECK(c->pending > 0);
	qsd_kill();
	CHECK(pump(c->loop, &c->pending, 100));
	for (unsigned int i = 0; i < total; i++) {
		CHECK(c->w[i].ndone == 1);
		CHECK(c->w[i].res == (int)c->len[i] || c->w[i].res == -EIO);
		failed += c->w[i].res == -EIO;
	}
	fprintf(stderr, "back-end away: %u of %u writes failed with EIO\n", failed, total);
	CHECK(failed > 0);
	/* While it is away, new I/O fails at once. */
	simple_io(c, c->e[0], BK_IO_READ, 0, PAGE, buf, &res);
	CHECK(res == -EIO);
	CHECK(qsd_start(true) == 0);
	CHECK(bk_vblk_info(c->e[0], &info) == 0);
	for (unsigned int i = 0; i < 100; i++) {
		struct bk_vblk_info now;

		bk_loop_run_once(c->loop, 50);
		if (bk_vblk_info(c->e[0], &now) == 0 && now.reconnects > info.reconnects)
			break;
	}
	simple_io(c, c->e[0], BK_IO_READ, 0, PAGE, buf, &res);
	CHECK(res == (int)PAGE);
	free(buf);
}

/* An engine closed with I/O out, and one closed from inside its own done(). */
static struct bk_engine *closing;
static unsigned int closing_left;

static unsigned int after_close;

static void close_in_done(struct bk_io *io, int res)
{
	if (!closing) {
		after_close++;
		return;
	}
	req_done(io, res);
	if (--closing_left == 0) {
		bk_engine_close(closing);
		closing = NULL;
	}
}

static void test_close(struct ctx *c)
{
	struct bk_engine_params ep = { .name = "vblk reopen", .depth = DEPTH };
	char opts[400];
	struct bk_vblk_info info;
	int res = -1;

	snprintf(opts, sizeof(opts), "socket=%s", sock);
	ep.options = opts;
	/* Eight reads sent, then the engine goes: their results are dropped, nothing leaks. */
	unsigned int orphan_pending = 0, ndone_at_close[8];

	for (unsigned int i = 0; i < 8; i++) {
		req_prepare(&c->w[i], &orphan_pending, BK_IO_READ, (uint64_t)i * AREA, AREA);
		CHECK(bk_engine_queue(c->e[0], &c->w[i].io) == 0);
	}
	bk_loop_run_once(c->loop, 0);
	/* Some may already be back: those told, the rest never will be. */
	for (unsigned int i = 0; i < 8; i++)
		ndone_at_close[i] = c->w[i].ndone;
	bk_engine_close(c->e[0]);
	c->e[0] = NULL;
	/* Its queue is free again; the device is still shared by the other three. */
	CHECK(bk_engine_open("virtio-blk", c->loop, NULL, &ep, &c->e[0]) == 0);
	if (!c->e[0])
		return;
	CHECK(bk_vblk_info(c->e[0], &info) == 0 && info.queue == 0);
	simple_io(c, c->e[0], BK_IO_READ, 0, AREA, c->w[8].buf, &res);
	CHECK(res == (int)AREA);
	for (unsigned int i = 0; i < 8; i++)
		CHECK(c->w[i].ndone == ndone_at_close[i]);

	/*
	 * 32 reads on one queue; the 4th done() closes the engine. Whatever else was out or had
	 * completed in the same batch is never reported: done() after close would be a call into
	 * a backend that already freed the request.
	 */
	closing = c->e[1];
	closing_left = 4;
	after_close = 0;
	for (unsigned int i = 0; i < DEPTH; i++) {
		req_prepare(&c->w[i], &c->pending, BK_IO_READ, (uint64_t)i * PAGE, PAGE);
		c->w[i].io.done = close_in_done;
		CHECK(bk_engine_queue(c->e[1], &c->w[i].io) == 0);
	}
	c->pending = 4;
	CHECK(pump(c->loop, &c->pending, 600));
	CHECK(closing == NULL);
	/* Stragglers have time to (wrongly) arrive. */
	for (unsigned int i = 0; i < 20; i++)
		bk_loop_run_once(c->loop, 10);
	CHECK(after_close == 0);
	c->pending = 0;
	c->e[1] = NULL;
}

/* A read-only export: reads work, writes and discards answer EBADF, nothing is advertised. */
static void test_readonly(struct ctx *c)
{
	struct bk_vblk_info info;
	int res = -1;

	qsd_kill();
	CHECK(qsd_start(false) == 0);
	CHECK(open_engines(c, NULL) == 0);
	if (!c->e[0])
		return;
	CHECK(bk_vblk_info(c->e[0], &info) == 0);
	CHECK(info.readonly && !info.discard);
	simple_io(c, c->e[0], BK_IO_READ, 0, PAGE, c->w[0].buf, &res);
	CHECK(res == (int)PAGE);
	simple_io(c, c->e[1], BK_IO_WRITE, 0, PAGE, c->w[0].buf, &res);
	CHECK(res == -EBADF);
	simple_io(c, c->e[2], BK_IO_DISCARD, 0, PAGE, NULL, &res);
	CHECK(res == -EBADF);
}

/* A guest disk opened read-only on a writable device: writes and discards answer EBADF. */
static void test_store_readonly(struct ctx *c)
{
	struct bk_store ro = { .path = img, .fd = -1, .readonly = true, .size = IMG_SIZE };
	struct bk_engine_params ep = { .name = "vblk ro store", .depth = 4 };
	struct bk_engine *e = NULL;
	char opts[400];
	int res = -1;

	snprintf(opts, sizeof(opts), "socket=%s,queue=3", sock);
	ep.options = opts;
	bk_engine_close(c->e[3]);
	c->e[3] = NULL;
	CHECK(bk_engine_open("virtio-blk", c->loop, &ro, &ep, &e) == 0);
	if (!e)
		return;
	simple_io(c, e, BK_IO_WRITE, 0, PAGE, c->w[0].buf, &res);
	CHECK(res == -EBADF);
	simple_io(c, e, BK_IO_DISCARD, 0, PAGE, NULL, &res);
	CHECK(res == -EBADF);
	simple_io(c, e, BK_IO_READ, 0, PAGE, c->w[0].buf, &res);
	CHECK(res == (int)PAGE);
	c->e[3] = e;
}

static struct bk_engine *open_range(struct ctx *c, const char *range_owner)
{
	struct bk_engine_params ep = { .name = "vblk range", .depth = 4 };
	struct bk_engine *e = NULL;
	char opts[400];

	snprintf(opts, sizeof(opts), "socket=%s,%s", sock, range_owner);
	ep.options = opts;
	return bk_engine_open("virtio-blk", c->loop, NULL, &ep, &e) == 0 ? e : NULL;
}

/*
 * Two guest disks on two byte ranges of one device: each sees its range from 0, cannot reach
 * past its end, and a range overlapping another disk's is refused.
 */
static void test_ranges(struct ctx *c)
{
	const uint64_t half = IMG_SIZE / 2;
	struct bk_engine *a0, *a1, *b, *bad;
	struct bk_vblk_info info;
	uint8_t *buf = aligned_alloc(PAGE, 2 * PAGE), *chk = malloc(PAGE);
	int fd = open(img, O_RDONLY | O_CLOEXEC), res = -1;
	bool ok = true;

	CHECK(buf && chk && fd >= 0);
	if (!buf || !chk || fd < 0)
		goto out;
	a0 = open_range(c, "range=0+33554432,owner=guest-a");
	a1 = open_range(c, "range=0+33554432,owner=guest-a"); /* its second queue */
	b = open_range(c, "range=33554432+33554432,owner=guest-b");
	CHECK(a0 && a1 && b);
	/* Overlaps: another owner on a's range, a bigger range for a, the whole device. */
	bad = open_range(c, "range=4096+4096,owner=guest-c");
	CHECK(!bad);
	bk_engine_close(bad);
	bad = open_range(c, "range=0+67108864,owner=guest-a");
	CHECK(!bad);
	bk_engine_close(bad);
	bad = open_range(c, "owner=guest-d");
	CHECK(!bad);
	bk_engine_close(bad);
	bad = open_range(c, "range=67104768+8192,owner=guest-e"); /* past the end */
	CHECK(!bad);
	bk_engine_close(bad);
	if (!a0 || !a1 || !b)
		goto close;
	CHECK(bk_vblk_info(b, &info) == 0 && info.size == half);
	/* b's sector 0 is the device's byte "half". */
	memset(buf, 0x5b, PAGE);
	simple_io(c, b, BK_IO_WRITE, 0, PAGE, buf, &res);
	CHECK(res == (int)PAGE);
	CHECK(pread(fd, chk, PAGE, (off_t)half) == PAGE);
	for (unsigned int i = 0; i < PAGE; i++)
		ok = ok && chk[i] == 0x5b;
	CHECK(ok);
	/* Past the end of a's range (into b's): refused, b's data untouched. */
	memset(buf, 0xaa, 2 * PAGE);
	simple_io(c, a1, BK_IO_WRITE, half - PAGE, 2 * PAGE, buf, &res);
	CHECK(res == -EIO);
	simple_io(c, a0, BK_IO_DISCARD, half - PAGE, 2 * PAGE, NULL, &res);
	CHECK(res == -EIO);
	simple_io(c, a0, BK_IO_READ, half, PAGE, buf, &res);
	CHECK(res == -EIO);
	CHECK(pread(fd, chk, PAGE, (off_t)half) == PAGE);
	ok = true;
	for (unsigned int i = 0; i < PAGE; i++)
		ok = ok && chk[i] == 0x5b;
	CHECK(ok);
close:
	bk_engine_close(a0);
	bk_engine_close(a1);
	bk_engine_close(b);
out:
	free(buf);
	free(chk);
	if (fd >= 0)
		close(fd);
}

static void test_bad_options(struct ctx *c)
{
	static const char *const bad[] = {
		"",				  /* no socket */
		"socket=/nonexistent/vhost.sock", /* nobody there */
		"socket=x,qsize=100",		  /* not a power of 2 */
		"socket=x,queue=99",
		"socket=x,discard=maybe",
		"socket=x,bogus=1",
		"socket=x,range=512+100", /* not in sectors */
		"socket=x,range=0+0",
		"socket=x,range=4096",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct bk_engine_params ep = { .name = "vblk opts", .depth = 4, .options = bad[i] };
		struct bk_engine *e = NULL;

		CHECK(bk_engine_open("virtio-blk", c->loop, NULL, &ep, &e) < 0 && !e);
	}
}

int main(void)
{
	static struct ctx c;
	unsigned int base;
	int fd, r;

	if (!bk_qsd_binary()) {
		fprintf(stderr,
			"qemu-storage-daemon not installed (qemu-system-common): skipped\n");
		return 77;
	}
	bk_log_set_level(BK_LOG_NOTICE);
	snprintf(dir, sizeof(dir), "/var/tmp/bk-vblk.XXXXXX");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(img, sizeof(img), "%s/disk.raw", dir);
	snprintf(sock, sizeof(sock), "%s/vhost-blk.sock", dir);
	fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, IMG_SIZE) == 0);
	if (fd >= 0)
		close(fd);
	r = qsd_start(true);
	CHECK(r == 0);
	if (r < 0)
		goto out;
	fprintf(stderr, "qemu-storage-daemon %d on %s (%s)\n", qsd.pid, img,
		qsd.direct ? "O_DIRECT" : "buffered");
	for (unsigned int i = 0; i < NQ * DEPTH; i++) {
		c.w[i].buf = aligned_alloc(PAGE, AREA);
		CHECK(c.w[i].buf);
		if (!c.w[i].buf)
			goto out;
	}
	CHECK(bk_loop_new(&c.loop) == 0);
	if (!c.loop)
		goto out;
	base = bk_loop_nr_objects(c.loop);

	test_bad_options(&c);
	r = open_engines(&c, NULL);
	CHECK(r == 0);
	if (r == 0) {
		test_info(&c);
		test_rw(&c, 1);
		test_flush(&c);
		zap_and_check(&c, c.e[1], 8u << 20, true);
		test_restart(&c, 2);
		test_close(&c);
		test_store_readonly(&c);
	}
	close_engines(&c);
	test_ranges(&c);
	close_engines(&c);

	r = open_engines(&c, "reconnect-timeout=1");
	CHECK(r == 0);
	if (r == 0)
		test_give_up(&c);
	close_engines(&c);

	/* Write-zeroes: discards sent as WRITE_ZEROES with unmap, on a device of their own. */
	r = open_engines(&c, "discard=write-zeroes,event-idx=off");
	CHECK(r == 0);
	if (r == 0)
		zap_and_check(&c, c.e[2], 20u << 20, false);
	close_engines(&c);

	/* The ring without indirect descriptors nor EVENT_IDX: chains in the table itself. */
	r = open_engines(&c, "indirect=off,event-idx=off,qsize=64");
	CHECK(r == 0);
	if (r == 0)
		test_rw(&c, 3);
	close_engines(&c);

	test_readonly(&c);
	close_engines(&c);

	CHECK(bk_loop_nr_objects(c.loop) == base);
	bk_loop_free(c.loop);
out:
	qsd_kill();
	for (unsigned int i = 0; i < NQ * DEPTH; i++)
		free(c.w[i].buf);
	unlink(img);
	unlink(sock);
	rmdir(dir);
	return bk_test_exit();
}
