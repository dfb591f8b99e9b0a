// SPDX-License-Identifier: MIT
/*
 * blkbench: what the blkif backend costs per request. 4 KiB random reads at queue depth 1 and
 * 32, with 1 and 4 queues, from the test blkfront through the Xen simulation into the null
 * engine and into io_uring on a tmpfs file; then the same reads issued directly with io_uring
 * (no backend, no simulation) and through the io_uring engine alone, so the ratios show the
 * backend's cost. Prints requests/s and CPU microseconds per request (the process CPU clock:
 * user + system of this process, the test frontend and the simulation included), and for the
 * runs through the simulation how that splits between the guest (the test frontend: the
 * thread's CPU clock read around everything it does) and the backend (the rest: the daemon's
 * loop turns, with the simulation's grant copies and event channels standing in for Xen's),
 * and the backend's CPU per request against the io_uring engine alone's.
 *
 * With --storm instead: a bystander's latency (4 KiB reads at queue depth 1 into io_uring, or
 * null without it) alone, then next to a guest that notifies in a tight loop on an empty ring,
 * then next to one that does so while its queue is blocked (its bounce pool held by writes the
 * fault engine delays, one more request waiting on the ring). The storm is re-raised every
 * time the daemon unmasks the port, up to --credit times per loop turn.
 *
 * With --limit N instead: two guests read 4 KiB at random at queue depth 32, one limited to N
 * requests/s (blanket-iops, default burst), the other without a limit; first both without a
 * limit, then with it. Prints each guest's requests/s and the limited one's throttled time.
 *
 * With --bs KiB (and --write, --qd N, --persistent): requests of that size instead (sequential
 * above 4 KiB, random at 4 KiB), reads or writes, at one queue depth on one queue, the guest
 * offering persistent grants or not (with them the disk is cache=writeback: blanketd offers
 * them on buffered stores only); the grant copies the simulation made per request are printed
 * with each backend run.
 *
 * Not a test: numbers depend on the machine. Usage:
 *   blkbench [--seconds S] [--dir DIR] [--size MiB] [--bs KiB [--write] [--qd N] [--persistent]]
 *            [--storm [--credit N] | --limit N]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#if HAVE_LIBURING
#include <liburing.h>
#endif

#include "blanket/stats.h"
#include "blkfront.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xenbus_front.h"
#include "benchlib.h"

#define MAX_QD 32U
#define MAX_Q 4U
#define DEVID 51712
#define DOMID 3

struct result {
	uint64_t reqs;
	double secs;
	double cpu_us;
	/* Through the simulation: the part of cpu_us spent in the test frontend (the guest). */
	double guest_us;
	bool has_guest;
	uint64_t copies; /* grant-copy segments the simulation carried out */
};

static double opt_seconds = 1.0;
static unsigned int opt_credit = 1000;
static const char *opt_dir = "/dev/shm";
static uint64_t opt_size = 256ULL << 20;
static uint32_t opt_bs = 4096; /* bytes per request */
static bool opt_write, opt_persistent;
static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t seq_next; /* next offset of sequential requests (opt_bs > 4 KiB) */

/* CPU time of the calling thread, seconds: the test frontend's share of the process's. */
static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Where the next request goes: random 4 KiB, or the next opt_bs bytes when larger. */
static uint64_t random_sector(void)
{
	uint64_t off;

	if (opt_bs == 4096)
		return (bench_rnd(&rng) % (opt_size / 4096)) * 8;
	if (seq_next + opt_bs > opt_size)
		seq_next = 0;
	off = seq_next;
	seq_next += opt_bs;
	return off / 512;
}

/* Buffers for @n requests of opt_bs bytes, page-aligned (O_DIRECT), zeroed. */
static uint8_t *bufs_alloc(unsigned int n)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, (size_t)n * opt_bs))
		return NULL;
	memset(p, 0x3c, (size_t)n * opt_bs);
	return p;
}

static void print_result(const char *what, unsigned int nq, unsigned int qd, const struct result *r,
			 double base_cpu)
{
	double rate = r->reqs / r->secs, cpu = r->cpu_us / (double)r->reqs;

	printf("%-22s queues=%u qd=%-2u %10.0f req/s %8.2f us CPU/req", what, nq, qd, rate, cpu);
	if (base_cpu > 0)
		printf("  (x%.1f of direct io_uring)", cpu / base_cpu);
	if (r->has_guest)
		printf("\n%-22s                    guest %.2f us/req, backend %.2f us/req, "
		       "%.1f grant-copy segments/req",
		       "", r->guest_us / (double)r->reqs,
		       (r->cpu_us - r->guest_us) / (double)r->reqs,
		       (double)r->copies / (double)r->reqs);
	printf("\n");
	fflush(stdout);
}

/* Through the simulation: @nq queues, @qd requests in flight on each. */
static int run_backend(const char *engine, const char *path, unsigned int nq, unsigned int qd,
		       struct result *res)
{
	static struct bk_bf_io ios[MAX_Q][MAX_QD];
	const char *extra[] = { "blanket-engine", engine, NULL };
	/* Each request's data pages and an indirect page, and the rings. */
	unsigned int pages = nq * qd * (opt_bs / 4096 + 1) + 1024;
	struct bk_bf_params p = { .nr_queues = nq > 1 ? nq : 0,
				  .pfn_count = pages - 64,
				  .persistent = opt_persistent };
	_cleanup_free_ uint8_t *bufs = bufs_alloc(nq * qd);
	struct bk_bf_env env;
	struct bk_blkfront *f = NULL;
	char target[4096 + 32];
	double t0, c0, g0, guest = 0, deadline;
	uint64_t done = 0, copies0;
	unsigned int idle = 0;
	int r;

	if (!bufs)
		return -ENOMEM;
	/* blanketd offers persistent grants on buffered stores only (pgnt.c). */
	snprintf(target, sizeof(target), "%s%s", opt_persistent ? "cache=writeback:" : "", path);
	r = bk_bf_env_new(&env);
	if (r < 0)
		return r;
	if ((r = bk_bf_env_guest(&env, DOMID, pages)) < 0 ||
	    (r = bk_bf_env_add_vbd(&env, DOMID, DEVID, target, "w", "disk", extra)) < 0 ||
	    (r = bk_bf_open(&env, DOMID, DEVID, &p, &f)) < 0 || (r = bk_bf_connect(f)) < 0)
		goto out;

	for (unsigned int q = 0; q < nq; q++) {
		for (unsigned int i = 0; i < qd; i++) {
			struct bk_bf_io *io = &ios[q][i];

			memset(io, 0, sizeof(*io));
			io->op = opt_write ? BLKIF_OP_WRITE : BLKIF_OP_READ;
			io->nr_sectors = opt_bs / 512;
			io->data = bufs + ((size_t)q * qd + i) * opt_bs;
			io->sector = random_sector();
			if ((r = bk_bf_queue(f, q, io)) < 0)
				goto out;
		}
		bk_bf_push(f, q);
	}
	t0 = bench_now();
	c0 = bench_cpu();
	copies0 = bk_sim_gnt_copy_segs(env.sim);
	deadline = t0 + opt_seconds;
	for (;;) {
		bool stop = bench_now() >= deadline;

		/*
		 * Poll a few turns (responses come out of the loop hook, one turn after the
		 * completion), then block briefly so waiting on the device is not counted as
		 * CPU time.
		 */
		bk_loop_run_once(env.loop, idle >= 3 ? 1 : 0);
		idle++;
		/*
		 * The guest's part of the turn: everything the test frontend does (reap, refill,
		 * push and its notify) is the guest's CPU; the loop turn above is the backend's,
		 * with what the simulation does for it in place of the hypervisor's grant copy and
		 * event channels. One thread, so its CPU clock read around this section splits
		 * them.
		 */
		g0 = thread_cpu();
		for (unsigned int q = 0; q < nq; q++) {
			bool queued = false;

			if (!bk_bf_reap(f, q))
				continue;
			idle = 0;
			for (unsigned int i = 0; i < qd; i++) {
				struct bk_bf_io *io = &ios[q][i];

				if (!io->done)
					continue;
				if (io->status != BLKIF_RSP_OKAY) {
					fprintf(stderr, "blkbench: request failed: %d\n",
						io->status);
					r = -EIO;
					goto out;
				}
				done++;
				io->done = false;
				if (stop)
					continue;
				io->sector = random_sector();
				if ((r = bk_bf_queue(f, q, io)) < 0)
					goto out;
				queued = true;
			}
			if (queued)
				bk_bf_push(f, q);
		}
		guest += thread_cpu() - g0;
		if (stop) {
			unsigned int left = 0;

			for (unsigned int q = 0; q < nq; q++)
				left += bk_bf_outstanding(f, q);
			if (!left)
				break;
		}
	}
	res->secs = bench_now() - t0;
	res->cpu_us = (bench_cpu() - c0) * 1e6;
	res->guest_us = guest * 1e6;
	res->has_guest = true;
	res->reqs = done;
	res->copies = bk_sim_gnt_copy_segs(env.sim) - copies0;
	r = bk_bf_disconnect(f);
out:
	bk_bf_close(f);
	bk_bf_env_free(&env);
	return r;
}

/* The same reads through the engine alone (no simulation, no backend): the engine's own cost. */
struct eng_ctx {
	struct bk_io ios[MAX_QD];
	struct iovec iov[MAX_QD];
	struct bk_engine *e;
	uint64_t done;
	bool stop;
	int err;
};

static void eng_done(struct bk_io *io, int res)
{
	struct eng_ctx *c = io->priv;

	if (res < 0) {
		c->err = res;
		return;
	}
	c->done++;
	if (c->stop)
		return;
	io->offset = random_sector() * 512;
	if (bk_engine_queue(c->e, io) < 0)
		c->err = -EIO;
}

static int run_engine(const char *engine, const char *path, unsigned int nq, unsigned int qd,
		      struct result *res)
{
	static struct eng_ctx ctx[MAX_Q];
	_cleanup_free_ uint8_t *bufs = bufs_alloc(nq * qd);
	struct bk_store_params sp = { .want_direct = true };
	struct bk_engine_params ep = { .name = "bench", .depth = MAX_QD };
	struct bk_store *store = NULL;
	struct bk_loop *loop = NULL;
	double t0, c0;
	int r;

	if (!bufs)
		return -ENOMEM;
	if ((r = bk_loop_new(&loop)) < 0 || (r = bk_store_open(path, &sp, &store)) < 0)
		goto out;
	memset(ctx, 0, sizeof(ctx));
	for (unsigned int q = 0; q < nq; q++) {
		if ((r = bk_engine_open(engine, loop, store, &ep, &ctx[q].e)) < 0)
			goto out;
		for (unsigned int i = 0; i < qd; i++) {
			struct bk_io *io = &ctx[q].ios[i];

			ctx[q].iov[i] = (struct iovec){
				.iov_base = bufs + ((size_t)q * qd + i) * opt_bs,
				.iov_len = opt_bs,
			};
			io->op = opt_write ? BK_IO_WRITE : BK_IO_READ;
			io->iov = &ctx[q].iov[i];
			io->iovcnt = 1;
			io->len = opt_bs;
			io->buf_index = -1;
			io->offset = random_sector() * 512;
			io->done = eng_done;
			io->priv = &ctx[q];
			if ((r = bk_engine_queue(ctx[q].e, io)) < 0)
				goto out;
		}
		bk_engine_kick(ctx[q].e);
	}
	t0 = bench_now();
	c0 = bench_cpu();
	while (bench_now() < t0 + opt_seconds)
		bk_loop_run_once(loop, 1);
	res->secs = bench_now() - t0;
	res->cpu_us = (bench_cpu() - c0) * 1e6;
	res->reqs = 0;
	for (unsigned int q = 0; q < nq; q++) {
		ctx[q].stop = true;
		res->reqs += ctx[q].done;
		if (ctx[q].err)
			r = ctx[q].err;
	}
	for (unsigned int q = 0; q < nq; q++)
		while (bk_engine_inflight(ctx[q].e))
			bk_loop_run_once(loop, 1);
out:
	for (unsigned int q = 0; q < nq; q++) {
		bk_engine_close(ctx[q].e);
		ctx[q].e = NULL;
	}
	bk_store_close(store);
	bk_loop_free(loop);
	return r;
}

#if HAVE_LIBURING
static void direct_prep(struct io_uring_sqe *sqe, int fd, uint8_t *buf)
{
	if (opt_write)
		io_uring_prep_write(sqe, fd, buf, opt_bs, random_sector() * 512);
	else
		io_uring_prep_read(sqe, fd, buf, opt_bs, random_sector() * 512);
}

/* The same reads straight on io_uring: @nq rings (one per "queue"), @qd in flight on each. */
static int run_direct(const char *path, unsigned int nq, unsigned int qd, struct result *res)
{
	static struct io_uring rings[MAX_Q];
	_cleanup_free_ uint8_t *bufs = bufs_alloc(nq * qd);
	uint64_t done = 0;
	double t0, c0, deadline;
	int fd, r = 0;

	if (!bufs)
		return -ENOMEM;
	fd = open(path, opt_write ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return -errno;
	for (unsigned int q = 0; q < nq; q++) {
		r = io_uring_queue_init(MAX_QD * 2, &rings[q], 0);
		if (r < 0) {
			close(fd);
			return r;
		}
		for (unsigned int i = 0; i < qd; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&rings[q]);

			direct_prep(sqe, fd, bufs + ((size_t)q * qd + i) * opt_bs);
			io_uring_sqe_set_data64(sqe, i);
		}
		io_uring_submit(&rings[q]);
	}
	t0 = bench_now();
	c0 = bench_cpu();
	deadline = t0 + opt_seconds;
	while (bench_now() < deadline) {
		for (unsigned int q = 0; q < nq; q++) {
			struct io_uring_cqe *cqe;
			unsigned int head, n = 0;

			/* One syscall per ring turn, as the engine does: submit and wait together.
			 */
			io_uring_submit_and_wait(&rings[q], 1);
			io_uring_for_each_cqe(&rings[q], head, cqe)
			{
				struct io_uring_sqe *sqe = io_uring_get_sqe(&rings[q]);
				uint64_t i = io_uring_cqe_get_data64(cqe);

				if (cqe->res != (int)opt_bs) {
					r = cqe->res < 0 ? cqe->res : -EIO;
					goto out;
				}
				direct_prep(sqe, fd, bufs + ((size_t)q * qd + i) * opt_bs);
				io_uring_sqe_set_data64(sqe, i);
				n++;
			}
			io_uring_cq_advance(&rings[q], n);
			done += n;
		}
	}
	res->secs = bench_now() - t0;
	res->cpu_us = (bench_cpu() - c0) * 1e6;
	res->reqs = done;
out:
	for (unsigned int q = 0; q < nq; q++)
		io_uring_queue_exit(&rings[q]);
	close(fd);
	return r;
}
#endif

/* ---- --storm: a bystander's latency next to a storming guest ---- */

#define STORMER 4
#define STORM_BIG 5U /* 1 MiB writes: four fill the 4 MiB bounce pool, the fifth waits */

enum storm_kind { STORM_NONE, STORM_EMPTY, STORM_BLOCKED };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The stormer: a guest of its own; blocked: its pool held, one more request on the ring. */
static int stormer_setup(struct bk_bf_env *env, const char *path, enum storm_kind kind,
			 struct bk_blkfront **ret, uint32_t *ret_port)
{
	static struct bk_bf_io big[STORM_BIG + 1];
	static uint8_t bigbuf[STORM_BIG][2048 * 512], small[4096];
	struct bk_bf_params p = { .pfn_count = 2048 };
	char opts[96], *v = NULL;
	const char *extra[] = { "blanket-engine", "fault", "blanket-options", opts, NULL };
	struct bk_blkfront *f = NULL;
	int r;

	/* Held past the end of the measurement: the queue stays blocked all along. */
	snprintf(opts, sizeof(opts), "inner=null,delay=%ums:write",
		 (unsigned int)(opt_seconds * 1000) + 500);
	if ((r = bk_bf_env_guest(env, STORMER, 4096)) < 0 ||
	    /* It shares the bystander's image on purpose: forced sharing ("w!"). */
	    (r = bk_bf_env_add_vbd(env, STORMER, DEVID, path, "w!", "disk", extra)) < 0 ||
	    (r = bk_bf_open(env, STORMER, DEVID, &p, &f)) < 0 || (r = bk_bf_connect(f)) < 0)
		goto fail;
	if (kind == STORM_BLOCKED) {
		for (unsigned int i = 0; i <= STORM_BIG; i++) {
			memset(&big[i], 0, sizeof(big[i]));
			big[i].op = i < STORM_BIG ? BLKIF_OP_WRITE : BLKIF_OP_READ;
			big[i].sector = i < STORM_BIG ? (uint64_t)i * 2048 : 0;
			big[i].nr_sectors = i < STORM_BIG ? 2048 : 8;
			big[i].data = i < STORM_BIG ? bigbuf[i] : small;
			if ((r = bk_bf_queue(f, 0, &big[i])) < 0)
				goto fail;
			if (i >= STORM_BIG - 1) { /* the pool is full before the last one comes */
				bk_bf_push(f, 0);
				bk_xbf_pump(bk_bf_xbf(f), 3);
			}
		}
	}
	if ((r = bk_xbf_read(bk_bf_xbf(f), "event-channel", &v)) < 0)
		goto fail;
	*ret_port = (uint32_t)strtoul(v, NULL, 10);
	free(v);
	*ret = f;
	return 0;
fail:
	bk_bf_close(f);
	return r;
}

static int run_storm(const char *engine, const char *path, enum storm_kind kind)
{
	static const char *const names[] = { "alone", "storm on an empty ring",
					     "storm on a blocked queue" };
	static uint8_t buf[4096];
	const char *extra[] = { "blanket-engine", engine, NULL };
	struct bk_bf_params p = { .pfn_count = 256 };
	struct bk_bf_env env;
	struct bk_blkfront *f = NULL, *sf = NULL;
	size_t cap = 1U << 20, n = 0;
	double *lat = malloc(cap * sizeof(*lat)), t0, c0, secs;
	uint32_t sport = 0;
	uint64_t turns = 0, used_up = 0;
	int r;

	if (!lat)
		return -ENOMEM;
	r = bk_bf_env_new(&env);
	if (r < 0) {
		free(lat);
		return r;
	}
	if ((r = bk_bf_env_guest(&env, DOMID, 4096)) < 0 ||
	    (r = bk_bf_env_add_vbd(&env, DOMID, DEVID, path, "w", "disk", extra)) < 0 ||
	    (r = bk_bf_open(&env, DOMID, DEVID, &p, &f)) < 0 || (r = bk_bf_connect(f)) < 0)
		goto out;
	if (kind != STORM_NONE && (r = stormer_setup(&env, path, kind, &sf, &sport)) < 0)
		goto out;
	t0 = bench_now();
	c0 = bench_cpu();
	while (bench_now() < t0 + opt_seconds && n < cap) {
		struct bk_bf_io io = { .op = BLKIF_OP_READ, .nr_sectors = 8, .data = buf };
		double start = bench_now();

		io.sector = random_sector();
		if ((r = bk_bf_queue(f, 0, &io)) < 0)
			goto out;
		bk_bf_push(f, 0);
		while (!io.done) {
			if (sf) {
				unsigned int left = 1;

				bk_sim_guest_evtchn_storm(env.sim, STORMER, sport, opt_credit,
							  &left);
				used_up += left == 0 && turns > 0;
			}
			bk_loop_run_once(env.loop, 0);
			turns++;
			bk_bf_reap(f, 0);
		}
		if (io.status != BLKIF_RSP_OKAY) {
			r = -EIO;
			goto out;
		}
		lat[n++] = (bench_now() - start) * 1e6;
	}
	secs = bench_now() - t0;
	c0 = (bench_cpu() - c0) * 1e6;
	if (sf) {
		/* Let the held writes finish so the stormer leaves cleanly. */
		bk_sim_guest_evtchn_storm(env.sim, STORMER, sport, 0, NULL);
		for (double end = bench_now() + 5; bk_bf_outstanding(sf, 0) && bench_now() < end;) {
			bk_loop_run_once(env.loop, 10);
			bk_bf_reap(sf, 0);
		}
		bk_bf_disconnect(sf);
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	if (n)
		printf("%-26s %s: %7.0f req/s, latency us p50 %7.1f p99 %7.1f max %8.1f, "
		       "%6.1f us CPU/req, %.1f turns/req, credit used up in %llu turns\n",
		       names[kind], engine, (double)n / secs, lat[n / 2], lat[n * 99 / 100],
		       lat[n - 1], c0 / (double)n, (double)turns / (double)n,
		       (unsigned long long)used_up);
	fflush(stdout);
	r = bk_bf_disconnect(f);
out:
	bk_bf_close(sf);
	bk_bf_close(f);
	bk_bf_env_free(&env);
	free(lat);
	return r;
}

/* ---- --limit: a rate-limited guest next to one without a limit ---- */

#define LIMITED 5
#define NEIGHBOUR 6

static int run_limit(const char *engine, const char *path, unsigned int iops)
{
	static struct bk_bf_io ios[2][MAX_QD];
	static uint8_t bufs[2][MAX_QD][4096];
	char n[32];
	const char *lim_extra[] = { "blanket-engine", engine, "blanket-iops", n, NULL };
	const char *extra[] = { "blanket-engine", engine, NULL };
	const uint32_t domids[2] = { LIMITED, NEIGHBOUR };
	struct bk_bf_params p = { .pfn_count = 2048 };
	struct bk_blkfront *f[2] = { NULL, NULL };
	struct bk_queue_stats qs = { 0 };
	struct bk_bf_env env;
	struct bk_device *dev;
	uint64_t done[2] = { 0, 0 };
	double t0, secs;
	int r;

	snprintf(n, sizeof(n), "%u", iops);
	r = bk_bf_env_new(&env);
	if (r < 0)
		return r;
	/* Both read the same image: read-only, which may be shared. */
	for (unsigned int g = 0; g < 2; g++) {
		if ((r = bk_bf_env_guest(&env, domids[g], 4096)) < 0 ||
		    (r = bk_bf_env_add_vbd(&env, domids[g], DEVID, path, "r", "disk",
					   g == 0 && iops ? lim_extra : extra)) < 0 ||
		    (r = bk_bf_open(&env, domids[g], DEVID, &p, &f[g])) < 0 ||
		    (r = bk_bf_connect(f[g])) < 0)
			goto out;
		for (unsigned int i = 0; i < MAX_QD; i++) {
			struct bk_bf_io *io = &ios[g][i];

			memset(io, 0, sizeof(*io));
			io->op = BLKIF_OP_READ;
			io->nr_sectors = 8;
			io->data = bufs[g][i];
			io->sector = random_sector();
			if ((r = bk_bf_queue(f[g], 0, io)) < 0)
				goto out;
		}
		bk_bf_push(f[g], 0);
	}
	t0 = bench_now();
	while (bench_now() < t0 + opt_seconds) {
		bk_loop_run_once(env.loop, 0);
		for (unsigned int g = 0; g < 2; g++) {
			bool queued = false;

			if (!bk_bf_reap(f[g], 0))
				continue;
			for (unsigned int i = 0; i < MAX_QD; i++) {
				struct bk_bf_io *io = &ios[g][i];

				if (!io->done)
					continue;
				if (io->status != BLKIF_RSP_OKAY) {
					r = -EIO;
					goto out;
				}
				done[g]++;
				io->done = false;
				io->sector = random_sector();
				if ((r = bk_bf_queue(f[g], 0, io)) < 0)
					goto out;
				queued = true;
			}
			if (queued)
				bk_bf_push(f[g], 0);
		}
	}
	secs = bench_now() - t0;
	dev = bk_core_find(env.core, "vbd", LIMITED, DEVID);
	if (dev)
		dev->ops->get_stats(dev, &qs, 1);
	if (iops)
		printf("  guest %u limited to %5u iops: %8.0f req/s  (throttled %.2f s of %.2f "
		       "s)\n",
		       LIMITED, iops, (double)done[0] / secs, (double)qs.throttled_ns / 1e9, secs);
	else
		printf("  guest %u without a limit:     %8.0f req/s\n", LIMITED,
		       (double)done[0] / secs);
	printf("  guest %u (neighbour, no limit): %8.0f req/s\n", NEIGHBOUR,
	       (double)done[1] / secs);
	/* Drain what is still in flight before tearing down. */
	for (unsigned int g = 0; g < 2; g++)
		if (bk_bf_wait_all(f[g], 0) < 0 && iops == 0)
			r = -ETIMEDOUT;
	for (unsigned int g = 0; g < 2 && r >= 0; g++)
		r = bk_bf_disconnect(f[g]);
out:
	for (unsigned int g = 0; g < 2; g++)
		bk_bf_close(f[g]);
	bk_bf_env_free(&env);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 'm' },
		{ "storm", no_argument, NULL, 'S' },
		{ "credit", required_argument, NULL, 'c' },
		{ "limit", required_argument, NULL, 'l' },
		{ "bs", required_argument, NULL, 'b' },
		{ "write", no_argument, NULL, 'w' },
		{ "qd", required_argument, NULL, 'q' },
		{ "persistent", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned int qds[] = { 1, 32 }, nqs[] = { 1, 4 }, nr_qd = 2, nr_nq = 2;
	const char *engines[] = { "null", "io_uring" };
	char path[128];
	int c, fd, r = 0;
	bool storm = false;
	unsigned int limit = 0;

	while ((c = getopt_long(argc, argv, "s:d:m:Sc:l:b:wq:ph", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			opt_bs = (uint32_t)strtoul(optarg, NULL, 10) * 1024;
			break;
		case 'w':
			opt_write = true;
			break;
		case 'q':
			qds[0] = (unsigned int)strtoul(optarg, NULL, 10);
			nr_qd = 1;
			nr_nq = 1;
			break;
		case 'p':
			opt_persistent = true;
			break;
		case 's':
			opt_seconds = atof(optarg);
			break;
		case 'd':
			opt_dir = optarg;
			break;
		case 'm':
			opt_size = strtoull(optarg, NULL, 10) << 20;
			break;
		case 'S':
			storm = true;
			break;
		case 'c':
			opt_credit = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'l':
			limit = (unsigned int)strtoul(optarg, NULL, 10);
			if (!limit) {
				fprintf(stderr,
					"blkbench: --limit needs requests per second > 0\n");
				return 2;
			}
			break;
		default:
			printf("usage: blkbench [--seconds S] [--dir DIR] [--size MiB] [--bs KiB "
			       "[--write] [--qd N] [--persistent]] [--storm [--credit N] | --limit "
			       "N]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (opt_seconds <= 0 || opt_size < (1 << 20) || opt_bs < 4096 || opt_bs > (1U << 20) ||
	    opt_bs % 4096 || !qds[0] || qds[0] > MAX_QD) {
		fprintf(stderr, "blkbench: bad --seconds, --size, --bs or --qd\n");
		return 2;
	}
	bk_log_set_level(BK_LOG_WARNING);
	fd = bk_bf_tmpfile(opt_dir, opt_size, 0x5a, path, sizeof(path));
	if (fd < 0) {
		fprintf(stderr, "blkbench: scratch file in %s: %s\n", opt_dir, strerror(-fd));
		return 1;
	}
	printf("blkbench: %u KiB %s %s, %.1f s each, %llu MiB file %s%s\n", opt_bs >> 10,
	       opt_bs == 4096 ? "random" : "sequential", opt_write ? "writes" : "reads",
	       opt_seconds, (unsigned long long)(opt_size >> 20), path,
	       opt_persistent ? ", guest offers persistent grants" : "");
	if (limit) {
		const char *eng = bk_engine_find("io_uring") ? "io_uring" : "null";

		printf("two guests at queue depth 32 into %s, without and with a limit\n", eng);
		r = run_limit(eng, path, 0);
		if (r >= 0)
			r = run_limit(eng, path, limit);
		if (r < 0)
			fprintf(stderr, "blkbench: limit: %s\n", strerror(-r));
		goto out;
	}
	if (storm) {
		const char *eng = bk_engine_find("io_uring") ? "io_uring" : "null";

		printf("bystander at queue depth 1; a storm is re-raised on every unmask, up to %u "
		       "times a loop turn\n",
		       opt_credit);
		for (int k = STORM_NONE; k <= STORM_BLOCKED && r >= 0; k++)
			r = run_storm(eng, path, (enum storm_kind)k);
		if (r < 0)
			fprintf(stderr, "blkbench: storm: %s\n", strerror(-r));
		goto out;
	}
	for (size_t ni = 0; ni < nr_nq; ni++) {
		for (size_t qi = 0; qi < nr_qd; qi++) {
			unsigned int nq = nqs[ni], qd = qds[qi];
			struct result base = { 0 };
			double base_cpu = 0, eng_cpu = 0;

#if HAVE_LIBURING
			r = run_direct(path, nq, qd, &base);
			if (r < 0) {
				fprintf(stderr, "blkbench: direct io_uring: %s\n", strerror(-r));
				goto out;
			}
			print_result("direct io_uring", nq, qd, &base, 0);
			base_cpu = base.cpu_us / (double)base.reqs;
#endif
			if (bk_engine_find("io_uring")) {
				struct result eng = { 0 };

				r = run_engine("io_uring", path, nq, qd, &eng);
				if (r < 0) {
					fprintf(stderr, "blkbench: engine io_uring: %s\n",
						strerror(-r));
					goto out;
				}
				print_result("engine io_uring alone", nq, qd, &eng, base_cpu);
				eng_cpu = eng.cpu_us / (double)eng.reqs;
			}
			for (size_t ei = 0; ei < 2; ei++) {
				struct result res = { 0 };
				char what[64];

				if (!bk_engine_find(engines[ei]))
					continue;
				r = run_backend(engines[ei], path, nq, qd, &res);
				if (r < 0) {
					fprintf(stderr, "blkbench: %s: %s\n", engines[ei],
						strerror(-r));
					goto out;
				}
				snprintf(what, sizeof(what), "sim+blkif -> %s", engines[ei]);
				print_result(what, nq, qd, &res, base_cpu);
				/* Issue 12's yardstick: the backend into io_uring against the
				 * engine. */
				if (ei == 1 && eng_cpu > 0)
					printf("%-22s queues=%u qd=%-2u backend x%.2f of the "
					       "io_uring "
					       "engine alone (guest included: x%.2f)\n",
					       "", nq, qd,
					       (res.cpu_us - res.guest_us) / (double)res.reqs /
						       eng_cpu,
					       res.cpu_us / (double)res.reqs / eng_cpu);
			}
		}
	}
out:
	close(fd);
	unlink(path);
	return r < 0 ? 1 : 0;
}
