// SPDX-License-Identifier: MIT
/*
 * A simulated guest of blanketd-simdemo: the toolstack gives it a disk, its blkfront connects
 * with what the backend offers (queues, ring order, indirect), then it does random I/O that it
 * verifies itself. Every sector written carries a header (sector, version, domain) and data
 * derived from them, and the guest keeps one version number per sector, so a read is checked
 * without keeping a copy of the disk. Concurrent requests never overlap, so the expected
 * content of a read is known when it is issued.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"
#include "loop.h"
#include "simdemo.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

#define SECTOR 512U
/* Without a completion for this long while requests are out, the guest gives up. */
#define SD_STALL_SECONDS 15.0

/* ------------------------------------------------------------------------------------------ */
/* Random numbers and sector contents. */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(struct sd_guest *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return g->rng;
}

static uint64_t rnd_below(struct sd_guest *g, uint64_t n)
{
	return n ? rnd(g) % n : 0;
}

/* The content of @sector at @ver: zeros for 0 (a fresh sparse file), else header + noise. */
static void gen_sector(uint8_t *out, uint32_t domid, uint64_t sector, uint32_t ver)
{
	uint64_t x;

	if (!ver) {
		memset(out, 0, SECTOR);
		return;
	}
	memcpy(out, &sector, 8);
	memcpy(out + 8, &ver, 4);
	memcpy(out + 12, &domid, 4);
	x = splitmix(sector ^ ((uint64_t)ver << 40) ^ ((uint64_t)domid << 20)) | 1;
	for (unsigned int i = 16; i < SECTOR; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(out + i, &x, 8);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Setup. */

/* A sparse disk of its own under --dir, or the shared --image (simdemo.c made it exist). */
static int make_disk(struct sd_guest *g)
{
	const struct sd_opts *o = g->o;
	int fd;

	if (o->image) {
		snprintf(g->path, sizeof(g->path), "%s", o->image);
		return 0;
	}
	snprintf(g->path, sizeof(g->path), "%s/guest%u-disk.img", o->dir, g->domid);
	fd = open(g->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return neg_errno();
	g->own_file = true;
	if (ftruncate(fd, (off_t)o->size) < 0) {
		int r = neg_errno();

		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

static int read_feature(struct sd_guest *g, const char *key, uint64_t dflt, uint64_t *ret)
{
	_cleanup_free_ char *be = bk_ts_be_path(g->env.ts, "vbd", g->domid, g->devid);
	int r;

	if (!be)
		return -ENOMEM;
	r = bk_xs_read_u64(bk_ts_xs(g->env.ts), BK_XS_NULL, be, key, ret);
	if (r == -ENOENT) {
		*ret = dflt;
		return 0;
	}
	return r;
}

/* What the backend offers against what we want, as blkfront does. */
static int negotiate(struct sd_guest *g, struct bk_bf_params *p)
{
	const struct sd_opts *o = g->o;
	uint64_t mq, order, indirect, discard, sectors;
	int r;

	if ((r = read_feature(g, "multi-queue-max-queues", 1, &mq)) < 0 ||
	    (r = read_feature(g, "max-ring-page-order", 0, &order)) < 0 ||
	    (r = read_feature(g, "feature-max-indirect-segments", 0, &indirect)) < 0 ||
	    (r = read_feature(g, "feature-discard", 0, &discard)) < 0 ||
	    (r = read_feature(g, "sectors", 0, &sectors)) < 0)
		return r;
	g->nr_queues = (unsigned int)BK_MAX(BK_MIN(mq, (uint64_t)o->queues), 1ULL);
	g->ring_order = (unsigned int)BK_MIN(order, (uint64_t)o->ring_order);
	g->max_indirect = o->indirect && indirect > BLKIF_MAX_SEGMENTS_PER_REQUEST
				  ? (unsigned int)BK_MIN(indirect, (uint64_t)(SD_MAX_SECTORS / 8))
				  : 0;
	g->discard = discard != 0;
	if (sectors < 2 * SD_MAX_SECTORS)
		return -ENOSPC;
	/* Guests sharing one image each keep to their own slice of it. */
	if (o->image) {
		uint64_t slice = sectors / o->guests;

		g->first_sector = slice * g->index;
		g->nr_sectors = slice;
	} else {
		g->first_sector = 0;
		g->nr_sectors = sectors;
	}
	if (g->nr_sectors < 2 * SD_MAX_SECTORS)
		return -ENOSPC;
	p->nr_queues = g->nr_queues;
	p->ring_order = g->ring_order;
	p->protocol = "x86_64-abi";
	p->abi = BLKIF_ABI_X86_64;
	return 0;
}

static unsigned int guest_pages(const struct sd_opts *o)
{
	/* Rings, and per request slot its data pages and one indirect page. */
	return o->queues * (1U << o->ring_order) + o->queues * o->depth * (SD_MAX_SECTORS / 8 + 1) +
	       16;
}

static int setup_fail(struct sd_guest *g, int r, const char *fmt, ...) _printf_(3, 4);

static int setup_fail(struct sd_guest *g, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g->verdict_why, sizeof(g->verdict_why), fmt, ap);
	va_end(ap);
	return r;
}

int sd_guest_setup(struct sd_guest *g, struct bk_sim *sim, struct bk_loop *loop,
		   struct bk_core *core, struct bk_toolstack *ts)
{
	const struct sd_opts *o = g->o;
	const char *extra[] = { "blanket-engine", o->engine, NULL };
	struct bk_ts_dev d = {
		.kind = "vbd",
		.domid = g->domid,
		.devid = g->devid,
		.mode = "w",
		.dev = "xvda",
		.device_type = "disk",
		.extra_be = o->engine ? extra : NULL,
	};
	struct bk_bf_params p = { 0 };
	unsigned int pages = guest_pages(o);
	int r;

	g->env.sim = sim;
	g->env.loop = loop;
	g->env.core = core;
	g->env.ts = ts;
	g->rng = splitmix(o->seed ^ ((uint64_t)g->domid << 32)) | 1;
	snprintf(g->name, sizeof(g->name), "vbd %u/%u", g->domid, g->devid);

	r = make_disk(g);
	if (r < 0)
		return setup_fail(g, r, "disk %.200s: %s", g->path, strerror(-r));
	r = bk_sim_domain_create(sim, g->domid, pages);
	if (r < 0)
		return setup_fail(g, r, "creating the domain: %s", strerror(-r));
	d.params = g->path;
	/* Attached as soon as the directories may exist: teardown removes them either way. */
	g->attached = true;
	r = bk_ts_attach(ts, &d);
	if (r < 0)
		return setup_fail(g, r, "the backend did not reach InitWait: %s", strerror(-r));
	r = negotiate(g, &p);
	if (r < 0)
		return setup_fail(g, r, "reading the backend's features: %s", strerror(-r));
	p.pfn_base = 0;
	p.pfn_count = pages;
	g->ver = calloc(g->nr_sectors, sizeof(*g->ver));
	g->nr_ios = g->nr_queues * o->depth;
	g->ios = calloc(g->nr_ios, sizeof(*g->ios));
	if (!g->ver || !g->ios)
		return -ENOMEM;
	/*
	 * An image we did not create holds data we do not know, and the null engine keeps none;
	 * a new sparse file reads zeros.
	 */
	if ((o->image && !o->image_fresh) || o->no_verify)
		for (uint64_t i = 0; i < g->nr_sectors; i++)
			g->ver[i] = SD_VER_UNKNOWN;
	for (unsigned int i = 0; i < g->nr_ios; i++) {
		g->ios[i].g = g;
		g->ios[i].q = i % g->nr_queues;
		g->ios[i].buf = aligned_alloc(BK_PAGE_SIZE, SD_MAX_SECTORS * SECTOR);
		if (!g->ios[i].buf)
			return -ENOMEM;
	}
	r = bk_bf_open(&g->env, g->domid, g->devid, &p, &g->bf);
	if (r < 0)
		return setup_fail(g, r, "opening the frontend: %s", strerror(-r));
	r = bk_bf_connect(g->bf);
	if (r < 0)
		return setup_fail(g, r, "connecting: %s", strerror(-r));
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The workload. */

static bool overlaps_busy(struct sd_guest *g, uint64_t sector, uint64_t nr)
{
	for (unsigned int i = 0; i < g->nr_ios; i++) {
		const struct sd_io *io = &g->ios[i];

		if (!io->busy || io->io.op == BLKIF_OP_FLUSH_DISKCACHE)
			continue;
		if (sector < io->io.sector + io->io.nr_sectors && io->io.sector < sector + nr)
			return true;
	}
	return false;
}

static uint32_t pick_size(struct sd_guest *g)
{
	uint32_t big = g->max_indirect * 8;

	if (big > SD_DIRECT_SECTORS && rnd_below(g, 5) == 0)
		return SD_DIRECT_SECTORS + 1 + (uint32_t)rnd_below(g, big - SD_DIRECT_SECTORS);
	/* Mostly small, sometimes up to a full direct request. */
	if (rnd_below(g, 2))
		return 1 + (uint32_t)rnd_below(g, 16);
	return 1 + (uint32_t)rnd_below(g, SD_DIRECT_SECTORS);
}

/* A free range of @nr sectors at a random place; false if we kept hitting busy ones. */
static bool pick_range(struct sd_guest *g, uint32_t nr, uint64_t *ret)
{
	for (int tries = 0; tries < 4; tries++) {
		uint64_t s = g->first_sector + rnd_below(g, g->nr_sectors - nr + 1);

		if (!overlaps_busy(g, s, nr)) {
			*ret = s;
			return true;
		}
	}
	return false;
}

/* A range written earlier (read it back), else a random one. */
static bool pick_read(struct sd_guest *g, uint64_t *ret_sector, uint32_t *ret_nr)
{
	if (g->rb_len && rnd_below(g, 8)) {
		struct sd_range *rg = &g->readback[g->rb_head];

		/* Busy: it stays first in line, read a random range meanwhile. */
		if (!overlaps_busy(g, rg->sector, rg->nr)) {
			g->rb_head = (g->rb_head + 1) % SD_READBACK;
			g->rb_len--;
			*ret_sector = rg->sector;
			*ret_nr = rg->nr;
			return true;
		}
	}
	*ret_nr = pick_size(g);
	return pick_range(g, *ret_nr, ret_sector);
}

static uint32_t next_version(struct sd_guest *g)
{
	if (++g->next_ver == SD_VER_UNKNOWN)
		g->next_ver = 1;
	return g->next_ver;
}

/* Fill @io with a new request; false when nothing could be chosen this turn. */
static bool plan(struct sd_guest *g, struct sd_io *io)
{
	struct bk_bf_io *b = &io->io;
	unsigned int roll = (unsigned int)rnd_below(g, 100);
	uint64_t sector;
	uint32_t nr;

	memset(b, 0, sizeof(*b));
	if (roll < 3) {
		b->op = BLKIF_OP_FLUSH_DISKCACHE;
		return true;
	}
	if (roll < 7 && g->discard) {
		nr = 8 * (1 + (uint32_t)rnd_below(g, 256));
		nr = (uint32_t)BK_MIN((uint64_t)nr, g->nr_sectors / 2);
		if (!pick_range(g, nr, &sector))
			return false;
		b->op = BLKIF_OP_DISCARD;
		b->sector = sector;
		b->nr_sectors = nr;
		return true;
	}
	if (roll < 52) {
		if (!pick_read(g, &sector, &nr))
			return false;
		b->op = BLKIF_OP_READ;
	} else {
		nr = pick_size(g);
		if (!pick_range(g, nr, &sector))
			return false;
		b->op = BLKIF_OP_WRITE;
		io->ver = next_version(g);
		for (uint32_t i = 0; i < nr; i++)
			gen_sector(io->buf + (size_t)i * SECTOR, g->domid, sector + i, io->ver);
	}
	b->sector = sector;
	b->nr_sectors = nr;
	b->data = io->buf;
	/* Small requests through an indirect page now and then, as blkfront may. */
	b->indirect = g->max_indirect && rnd_below(g, 10) == 0;
	return true;
}

static void set_versions(struct sd_guest *g, uint64_t sector, uint32_t nr, uint32_t ver)
{
	for (uint32_t i = 0; i < nr; i++)
		g->ver[sector - g->first_sector + i] = ver;
}

static void fail_guest(struct sd_guest *g, const char *fmt, ...) _printf_(2, 3);

static void fail_guest(struct sd_guest *g, const char *fmt, ...)
{
	va_list ap;

	if (!g->failed) {
		va_start(ap, fmt);
		vsnprintf(g->verdict_why, sizeof(g->verdict_why), fmt, ap);
		va_end(ap);
		fprintf(stderr, "simdemo: guest %u (%s): %s\n", g->domid, g->name, g->verdict_why);
	}
	g->failed = true;
}

static void verify_read(struct sd_guest *g, const struct sd_io *io)
{
	uint8_t want[SECTOR];

	for (uint32_t i = 0; i < io->io.nr_sectors; i++) {
		uint64_t s = io->io.sector + i;
		uint32_t v = g->ver[s - g->first_sector];
		const uint8_t *got = io->buf + (size_t)i * SECTOR;
		uint64_t got_sector;
		uint32_t got_ver;

		if (v == SD_VER_UNKNOWN)
			continue;
		gen_sector(want, g->domid, s, v);
		if (!memcmp(want, got, SECTOR)) {
			g->verified_bytes += SECTOR;
			continue;
		}
		g->mismatches++;
		memcpy(&got_sector, got, 8);
		memcpy(&got_ver, got + 8, 4);
		fail_guest(g,
			   "data mismatch at sector %" PRIu64 ": expected version %u, found "
			   "(sector %" PRIu64 ", version %u)",
			   s, v, got_sector, got_ver);
	}
}

/*
 * --corrupt (to show that the verification catches it): overwrite the first sector of the
 * range just written, in the backing file behind the guest's back, and read it back next.
 */
static void corrupt_behind(struct sd_guest *g, struct sd_range *rg)
{
	static const uint8_t junk[SECTOR] = { [0 ... SECTOR - 1] = 0xEE };
	int fd = open(g->path, O_WRONLY | O_CLOEXEC);

	g->corrupted = true;
	if (fd < 0 || pwrite(fd, junk, SECTOR, (off_t)(rg->sector * SECTOR)) != SECTOR ||
	    fsync(fd) < 0)
		fprintf(stderr, "simdemo: --corrupt: writing %s: %m\n", g->path);
	else
		printf("guest %u: --corrupt: overwrote sector %" PRIu64 " of %s behind its back\n",
		       g->domid, rg->sector, g->path);
	if (fd >= 0)
		close(fd);
	/* Read it back first. */
	g->rb_len--;
	g->rb_head = (g->rb_head + SD_READBACK - 1) % SD_READBACK;
	g->readback[g->rb_head] = (struct sd_range){ rg->sector, 1 };
	g->rb_len++;
}

static void complete(struct sd_guest *g, struct sd_io *io, double now)
{
	struct bk_bf_io *b = &io->io;
	bool ok = b->status == BLKIF_RSP_OKAY;
	uint64_t bytes = (uint64_t)b->nr_sectors * SECTOR;

	io->busy = false;
	g->completed++;
	g->last_progress = now;
	if (!ok)
		g->errors++;
	switch (b->op) {
	case BLKIF_OP_READ:
		g->reads++;
		if (ok) {
			g->bytes_read += bytes;
			verify_read(g, io);
		}
		break;
	case BLKIF_OP_WRITE:
		g->writes++;
		set_versions(g, b->sector, b->nr_sectors,
			     ok && !g->o->no_verify ? io->ver : SD_VER_UNKNOWN);
		if (ok) {
			struct sd_range *rg;

			g->bytes_written += bytes;
			if (g->rb_len == SD_READBACK) {
				g->rb_head = (g->rb_head + 1) % SD_READBACK;
				g->rb_len--;
			}
			rg = &g->readback[(g->rb_head + g->rb_len++) % SD_READBACK];
			rg->sector = b->sector;
			rg->nr = b->nr_sectors;
			if (g->o->corrupt && g->index == 0 && !g->corrupted)
				corrupt_behind(g, rg);
		}
		break;
	case BLKIF_OP_DISCARD:
		g->discards++;
		/* Discarded data is undefined (no discard-zeroes-data). */
		set_versions(g, b->sector, b->nr_sectors, SD_VER_UNKNOWN);
		break;
	default:
		g->flushes++;
		break;
	}
	if (!ok)
		fail_guest(g,
			   "request (op %u, sector %" PRIu64 ", %u sectors) failed with status %d",
			   b->op, b->sector, b->nr_sectors, b->status);
}

static unsigned int nr_busy(const struct sd_guest *g)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < g->nr_ios; i++)
		n += g->ios[i].busy;
	return n;
}

/* The hostile guest: a producer index beyond the ring on queue 0, and a kick. */
static void fire_hostile(struct sd_guest *g)
{
	struct blkif_sring_hdr *h = bk_bf_sring(g->bf, 0);
	uint32_t n = bk_bf_ring_entries(g->bf, 0);
	uint32_t bogus = READ_ONCE(h->rsp_prod) + n + 1;

	printf("guest %u: hostile: publishing req_prod %u on a ring of %u entries (rsp_prod %u)\n",
	       g->domid, bogus, n, READ_ONCE(h->rsp_prod));
	WRITE_ONCE(h->req_prod, bogus);
	bk_bf_kick(g->bf, 0);
	g->hostile_fired = true;
}

static bool hostile_outcome(struct sd_guest *g)
{
	unsigned int st = 0;

	return bk_xbf_be_state(bk_bf_xbf(g->bf), &st) == 0 && st >= BK_XB_CLOSING;
}

/* Requests to issue (0: until the deadline). The hostile guest turns after a few. */
static uint64_t issue_limit(const struct sd_guest *g)
{
	if (g->hostile)
		return g->o->ops ? BK_MAX(g->o->ops / 4, 16ULL) : 64;
	return g->o->ops;
}

void sd_guest_step(struct sd_guest *g, double now, double deadline)
{
	bool pushed[SD_MAX_QUEUES] = { false };
	uint64_t limit;
	unsigned int busy;

	if (!g->bf || g->io_done)
		return;
	if (!g->started) {
		g->started = true;
		g->last_progress = now;
	}
	for (unsigned int q = 0; q < g->nr_queues; q++)
		bk_bf_reap(g->bf, q);
	for (unsigned int i = 0; i < g->nr_ios; i++)
		if (g->ios[i].busy && g->ios[i].io.done)
			complete(g, &g->ios[i], now);
	busy = nr_busy(g);

	if (g->hostile_fired) {
		if (hostile_outcome(g))
			g->io_done = true;
		else if (now - g->last_progress > SD_STALL_SECONDS)
			goto stalled;
		return;
	}
	limit = issue_limit(g);
	if (limit ? g->issued >= limit : now >= deadline)
		g->stop_issuing = true;
	if (g->failed)
		g->stop_issuing = true;
	if (g->stop_issuing) {
		if (busy && now - g->last_progress > SD_STALL_SECONDS)
			goto stalled;
		if (busy)
			return;
		if (g->hostile && !g->failed)
			fire_hostile(g);
		else
			g->io_done = true;
		return;
	}
	for (unsigned int i = 0; i < g->nr_ios; i++) {
		struct sd_io *io = &g->ios[i];

		if (io->busy)
			continue;
		if (limit && g->issued >= limit)
			break;
		if (!plan(g, io))
			break;
		if (bk_bf_queue(g->bf, io->q, &io->io) < 0)
			break; /* ring or pages full: next turn */
		io->busy = true;
		g->issued++;
		pushed[io->q] = true;
	}
	for (unsigned int q = 0; q < g->nr_queues; q++)
		if (pushed[q])
			bk_bf_push(g->bf, q);
	if (busy && now - g->last_progress > SD_STALL_SECONDS)
		goto stalled;
	return;
stalled:
	fail_guest(g, "no response for %.0f s with %u request(s) out", SD_STALL_SECONDS, busy);
	g->io_done = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Teardown. */

static bool device_gone(void *data)
{
	struct sd_guest *g = data;

	return !bk_core_find(g->env.core, "vbd", g->domid, g->devid);
}

int sd_guest_remove(struct sd_guest *g)
{
	unsigned int st = 0;
	int r;

	if (!g->attached)
		return 0;
	g->attached = false;
	/*
	 * As libxl: a Connected device is asked to close (online=0, state 5) and waited for
	 * (state 6); any other is not waited for, its directories are removed at once.
	 */
	if (bk_ts_be_state(g->env.ts, "vbd", g->domid, g->devid, &st) == 0 &&
	    st == BK_XB_CONNECTED) {
		r = bk_ts_remove(g->env.ts, "vbd", g->domid, g->devid);
		if (r < 0)
			snprintf(g->verdict_why, sizeof(g->verdict_why),
				 "the backend did not reach Closed on removal: %s", strerror(-r));
		return r;
	}
	r = bk_ts_destroy_dirs(g->env.ts, "vbd", g->domid, g->devid);
	if (r < 0)
		return r;
	return bk_test_pump_until(g->env.loop, device_gone, g, 0);
}

int sd_guest_remove_dirs(struct sd_guest *g)
{
	int r;

	if (!g->attached)
		return 0;
	g->attached = false;
	r = bk_ts_request_remove(g->env.ts, "vbd", g->domid, g->devid);
	if (r < 0 && r != -ENOENT)
		return r;
	return bk_ts_destroy_dirs(g->env.ts, "vbd", g->domid, g->devid);
}

int sd_guest_leak_check(struct sd_guest *g, char *why, size_t len)
{
	_cleanup_free_ char *be = NULL, *fe = NULL;
	unsigned int mapped;

	if (!g->env.ts)
		return 0;
	mapped = bk_sim_guest_nr_mapped(g->env.sim, g->domid);
	if (mapped) {
		snprintf(why, len, "%u grant(s) of domain %u still mapped", mapped, g->domid);
		return -EBUSY;
	}
	be = bk_ts_be_path(g->env.ts, "vbd", g->domid, g->devid);
	fe = bk_ts_fe_path("vbd", g->domid, g->devid);
	if (!be || !fe)
		return -ENOMEM;
	if (bk_ts_exists(g->env.ts, be) != 0) {
		snprintf(why, len, "backend directory %s left behind", be);
		return -EEXIST;
	}
	if (bk_ts_exists(g->env.ts, fe) != 0) {
		snprintf(why, len, "frontend directory %s left behind", fe);
		return -EEXIST;
	}
	return 0;
}

int sd_guest_be_error(struct sd_guest *g, char **ret)
{
	_cleanup_free_ char *be = bk_ts_be_path(g->env.ts, "vbd", g->domid, g->devid);

	if (!be)
		return -ENOMEM;
	return bk_xs_read_str(bk_ts_xs(g->env.ts), BK_XS_NULL, be, "error", ret);
}

void sd_guest_free(struct sd_guest *g)
{
	bk_bf_close(g->bf);
	g->bf = NULL;
	for (unsigned int i = 0; g->ios && i < g->nr_ios; i++)
		free(g->ios[i].buf);
	free(g->ios);
	g->ios = NULL;
	free(g->ver);
	g->ver = NULL;
	if (g->own_file && g->path[0])
		unlink(g->path);
	g->own_file = false;
}
