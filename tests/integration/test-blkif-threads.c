// SPDX-License-Identifier: MIT
/*
 * Devices sharded over I/O threads (blanketd.conf io-threads), for 2, 3 and 4 threads:
 *
 *  placement  Every device of one guest on one I/O thread (never the main loop), new guests
 *             spread so that no thread is left empty while another has two guests more.
 *  I/O        Every guest writes its own pattern and reads it back, all guests at once, for
 *             several rounds; blanketctl stats and list run while their requests are in
 *             flight and show every device and its thread (list: io-thread=N, stats
 *             --json: "io_thread").
 *  storms     While the other guests keep doing verified I/O: a guest disconnects and
 *             reconnects its disk; a guest is destroyed with requests in flight (the fault
 *             engine holds them), a new guest takes its place; a disk is removed by the
 *             toolstack and added again. Nothing is used after free (ASan), no grant mapping
 *             or event channel stays behind.
 *
 * Usage: test-blkif-threads ENGINE BLANKETCTL
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "ctlrun.h"
#include "device.h"
#include "loop.h"
#include "service.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xenbus_front.h"
#include "check.h"

#define DISK_BYTES (4U << 20)
#define DEVID 51712
#define NR_GUESTS 6U /* domains 1..6; 7 replaces a destroyed one */
#define MAX_GUESTS 8U
#define NR_IOS 8U /* per guest per round, 8 sectors each */
#define ROUNDS 6U

struct guest {
	uint32_t domid;
	struct bk_blkfront *f[2];
	unsigned int nr_disks;
	char path[2][64];
	int fd[2];
	bool gone;
};

static struct bk_bf_env env;
static const char *engine, *blanketctl;
static struct guest guests[MAX_GUESTS];
static char sock[128];
static char out[1 << 17];
static char slow_opts[96];
static uint8_t wbuf[MAX_GUESTS][2][NR_IOS][4096], rbuf[MAX_GUESTS][2][NR_IOS][4096];
static struct bk_bf_io ios[MAX_GUESTS][2][NR_IOS];

static struct bk_blkfront *attach(struct guest *g, unsigned int disk, bool slow)
{
	const char *normal[] = { "blanket-engine", engine, NULL };
	const char *held[] = { "blanket-engine", "fault", "blanket-options", slow_opts, NULL };
	struct bk_bf_params p = { .pfn_base = disk * 1024, .pfn_count = 1024 };
	uint32_t devid = DEVID + 16 * disk;
	char target[2048];

	/* Guest 1's second disk is buffered: its reads from the page cache complete at once. */
	snprintf(target, sizeof(target), "%s%s",
		 g == &guests[0] && disk == 1 ? "cache=writeback:" : "", g->path[disk]);
	if (bk_bf_env_add_vbd(&env, g->domid, devid, target, "w", "disk", slow ? held : normal) < 0)
		return NULL;
	return bk_bf_open_connect(&env, g->domid, devid, &p);
}

static bool new_guest(struct guest *g, uint32_t domid, unsigned int nr_disks)
{
	memset(g, 0, sizeof(*g));
	g->domid = domid;
	g->nr_disks = nr_disks;
	g->fd[0] = g->fd[1] = -1;
	if (bk_bf_env_guest(&env, domid, 2048) < 0)
		return false;
	for (unsigned int d = 0; d < nr_disks; d++) {
		g->fd[d] = bk_bf_tmpfile("/var/tmp", DISK_BYTES, (int)domid, g->path[d],
					 sizeof(g->path[d]));
		if (g->fd[d] < 0)
			return false;
		g->f[d] = attach(g, d, false);
		if (!g->f[d])
			return false;
	}
	return true;
}

static void free_guest(struct guest *g)
{
	for (unsigned int d = 0; d < 2; d++) {
		bk_bf_close(g->f[d]);
		g->f[d] = NULL;
		if (g->fd[d] >= 0) {
			close(g->fd[d]);
			unlink(g->path[d]);
		}
		g->fd[d] = -1;
	}
	g->nr_disks = 0;
}

static struct bk_device *disk_dev(const struct guest *g, unsigned int disk)
{
	return bk_core_find(env.core, "vbd", g->domid, DEVID + 16 * disk);
}

static uint8_t pattern(const struct guest *g, unsigned int disk, unsigned int round, unsigned int i)
{
	return (uint8_t)(g->domid * 31 + disk * 7 + round * 5 + i + 1);
}

/* Put writes (@write) or reads on every live guest's disks, then push them all: all at once. */
static void queue_all(unsigned int round, bool write)
{
	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++) {
		struct guest *g = &guests[gi];

		for (unsigned int d = 0; d < g->nr_disks && !g->gone; d++) {
			for (unsigned int i = 0; i < NR_IOS; i++) {
				struct bk_bf_io *io = &ios[gi][d][i];

				memset(io, 0, sizeof(*io));
				io->op = write ? BLKIF_OP_WRITE : BLKIF_OP_READ;
				/* Each round its own sectors: a stale read cannot pass. */
				io->sector = 8ULL * (round * NR_IOS + i);
				io->nr_sectors = 8;
				io->data = write ? wbuf[gi][d][i] : rbuf[gi][d][i];
				if (write)
					memset(io->data, pattern(g, d, round, i), 4096);
				else
					memset(io->data, 0, 4096);
				CHECK(bk_bf_queue(g->f[d], 0, io) == 0);
			}
		}
	}
	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++)
		for (unsigned int d = 0; d < guests[gi].nr_disks && !guests[gi].gone; d++)
			bk_bf_push(guests[gi].f[d], 0);
}

static void wait_all(unsigned int round, bool write)
{
	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++) {
		struct guest *g = &guests[gi];

		for (unsigned int d = 0; d < g->nr_disks && !g->gone; d++) {
			CHECK(bk_bf_wait_all(g->f[d], 0) == 0);
			for (unsigned int i = 0; i < NR_IOS; i++) {
				const struct bk_bf_io *io = &ios[gi][d][i];

				CHECK(io->done && io->status == BLKIF_RSP_OKAY);
				if (!write && io->done) {
					uint8_t want = pattern(g, d, round, i);

					if (io->data[0] != want || io->data[4095] != want) {
						fprintf(stderr,
							"guest %u disk %u round %u io %u: read "
							"%#x, "
							"want %#x\n",
							g->domid, d, round, i, io->data[0], want);
						CHECK(!"verified read");
					}
				}
			}
		}
	}
}

/* One round of verified I/O by every live guest at once; @during runs while it is in flight. */
static void io_round(unsigned int round, void (*during)(void))
{
	queue_all(round % 8, true);
	if (during)
		during();
	wait_all(round % 8, true);
	queue_all(round % 8, false);
	wait_all(round % 8, false);
}

static unsigned int nr_live_devices(void)
{
	return bk_core_nr_devices(env.core);
}

static void ctl_during_io(void)
{
	const char *stats[] = { "stats", "--json", NULL };
	const char *list[] = { "list", NULL };
	unsigned int n = 0;

	CHECK(bk_ctlrun(env.loop, blanketctl, sock, stats, 0, out, sizeof(out)) == 0);
	for (const char *p = out; (p = strstr(p, "\"name\":\"vbd ")); p++)
		n++;
	if (n != nr_live_devices()) {
		fprintf(stderr, "stats --json shows %u disks, want %u:\n%s\n", n, nr_live_devices(),
			out);
		CHECK(n == nr_live_devices());
	}
	n = 0;
	for (const char *p = out; (p = strstr(p, "\"io_thread\":")); p++)
		n++;
	if (n != nr_live_devices()) {
		fprintf(stderr, "stats --json shows %u disks with their io_thread, want %u\n", n,
			nr_live_devices());
		CHECK(n == nr_live_devices());
	}
	CHECK(bk_ctlrun(env.loop, blanketctl, sock, list, 0, out, sizeof(out)) == 0);
	n = 0;
	for (const char *p = out; (p = strstr(p, "io-thread=")); p++)
		n++;
	if (n != nr_live_devices()) {
		fprintf(stderr, "list shows %u disks with their thread, want %u:\n%s\n", n,
			nr_live_devices(), out);
		CHECK(n == nr_live_devices());
	}
}

/* Every disk of a guest on one I/O thread, the guests spread over the threads. */
static void check_placement(unsigned int nr_threads)
{
	unsigned int per_thread[8] = { 0 };

	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++) {
		const struct guest *g = &guests[gi];
		int thread = -2;

		for (unsigned int d = 0; d < g->nr_disks && !g->gone; d++) {
			struct bk_device *dev = disk_dev(g, d);

			CHECK(dev != NULL);
			if (!dev)
				continue;
			CHECK(dev->thread >= 0 && (unsigned int)dev->thread < nr_threads);
			CHECK(bk_device_loop(dev) != env.loop);
			CHECK(bk_loop_threaded(bk_device_loop(dev)));
			if (thread == -2)
				thread = dev->thread;
			if (dev->thread != thread) {
				fprintf(stderr, "guest %u: disks on threads %d and %d\n", g->domid,
					thread, dev->thread);
				CHECK(dev->thread == thread);
			}
		}
		if (thread >= 0 && thread < 8)
			per_thread[thread]++;
	}
	for (unsigned int t = 0; t < nr_threads; t++) {
		if (!per_thread[t]) {
			fprintf(stderr, "%u threads: thread %u serves no guest\n", nr_threads, t);
			CHECK(per_thread[t] > 0);
		}
	}
}

static bool device_gone(void *data)
{
	uint32_t *ids = data;

	return bk_core_find(env.core, "vbd", ids[0], ids[1]) == NULL;
}

static void storm_reconnect(struct guest *g)
{
	struct bk_blkfront *f = g->f[0];

	/* The others' I/O is in flight now; its own too (answered before Closed). */
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_reset(f);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_INITIALISING) == 0);
	CHECK(bk_bf_connect(f) == 0);
}

static struct guest *victim;

static void destroy_during_io(void)
{
	static uint8_t held[NR_IOS][4096];
	static struct bk_bf_io hio[NR_IOS];
	struct bk_blkfront *f = victim->f[1];
	uint32_t ids[2] = { victim->domid, DEVID + 16 };

	/* Requests held back by the fault engine on its second disk, then the guest dies. */
	for (unsigned int i = 0; i < NR_IOS; i++) {
		memset(&hio[i], 0, sizeof(hio[i]));
		hio[i].op = (i & 1) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
		hio[i].sector = 2048 + 8ULL * i;
		hio[i].nr_sectors = 8;
		hio[i].data = held[i];
		CHECK(bk_bf_queue(f, 0, &hio[i]) == 0);
	}
	bk_bf_push(f, 0);
	for (unsigned int k = 0; k < 200 && bk_bf_env_inflight(&env, ids[0], ids[1]) < NR_IOS; k++)
		bk_loop_run_once(env.loop, 5);
	CHECK(bk_bf_env_inflight(&env, ids[0], ids[1]) == NR_IOS);
	CHECK(bk_ts_guest_destroyed(env.ts, victim->domid) == 0);
	victim->gone = true;
	CHECK(bk_test_pump_until(env.loop, device_gone, ids, 0) == 0);
	ids[1] = DEVID;
	CHECK(bk_test_pump_until(env.loop, device_gone, ids, 0) == 0);
}

static void run(unsigned int nr_threads)
{
	struct bk_service_params sp = { .platform = "sim" };
	char dir[] = "/tmp/test-blkif-threads.XXXXXX";
	struct bk_service *svc = NULL;
	struct bk_sim_counts c;
	unsigned int round = 0;

	printf("%u I/O threads\n", nr_threads);
	memset(guests, 0, sizeof(guests));
	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++)
		guests[gi].fd[0] = guests[gi].fd[1] = -1;
	if (!mkdtemp(dir) || bk_bf_env_new_threads(&env, NULL, nr_threads) < 0) {
		CHECK(!"environment");
		return;
	}
	CHECK(bk_core_nr_threads(env.core) == nr_threads);
	snprintf(sock, sizeof(sock), "%s/control", dir);
	sp.loop = env.loop;
	sp.core = env.core;
	sp.control_socket = sock;
	CHECK(bk_service_start(&sp, &svc) == 0);
	/* Guests 1 and 2 have two disks (the second of 2 behind the fault engine). */
	for (unsigned int gi = 0; gi < NR_GUESTS; gi++) {
		struct guest *g = &guests[gi];

		if (gi == 1) {
			g->domid = 2;
			g->nr_disks = 1;
			CHECK(new_guest(g, 2, 1));
			g->fd[1] = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 2, g->path[1],
						 sizeof(g->path[1]));
			g->f[1] = attach(g, 1, true);
			CHECK(g->f[1] != NULL);
			/* Only its first disk does the rounds: the second holds I/O back. */
			continue;
		}
		CHECK(new_guest(g, gi + 1, gi == 0 ? 2 : 1));
	}
	if (bk_test_failures)
		goto out;
	check_placement(nr_threads);

	for (; round < ROUNDS; round++)
		io_round(round, round == 2 ? ctl_during_io : NULL);

	/* Storm: guest 3 disconnects and reconnects while the others' I/O is in flight. */
	queue_all(round % 8, true);
	storm_reconnect(&guests[2]);
	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++)
		if (gi != 2)
			for (unsigned int d = 0; d < guests[gi].nr_disks; d++)
				CHECK(bk_bf_wait_all(guests[gi].f[d], 0) == 0);
	round++;
	io_round(round++, NULL);

	/* Guest 2 destroyed with requests held in flight, during everyone's I/O. */
	victim = &guests[1];
	io_round(round++, destroy_during_io);
	bk_bf_close(victim->f[1]);
	victim->f[1] = NULL;
	close(victim->fd[1]);
	unlink(victim->path[1]);
	victim->fd[1] = -1;
	free_guest(victim);
	/* A new guest takes its place. */
	CHECK(new_guest(&guests[NR_GUESTS], NR_GUESTS + 1, 1));
	check_placement(nr_threads);
	io_round(round++, ctl_during_io);

	/* Guest 4's disk removed by the toolstack and added again. */
	{
		struct guest *g = &guests[3];
		uint32_t ids[2] = { g->domid, DEVID };

		CHECK(bk_bf_disconnect(g->f[0]) == 0);
		bk_bf_close(g->f[0]);
		CHECK(bk_ts_remove(env.ts, "vbd", g->domid, DEVID) == 0);
		CHECK(bk_test_pump_until(env.loop, device_gone, ids, 0) == 0);
		g->f[0] = attach(g, 0, false);
		CHECK(g->f[0] != NULL);
	}
	check_placement(nr_threads);
	for (unsigned int k = 0; k < 3; k++)
		io_round(round++, NULL);

	/*
	 * On an I/O thread (whose loop runs without a break between turns) the buffered disk's
	 * reads are taken, completed and answered in one turn: their latency is still measured
	 * (lat_account in blkif's io.c: at the turn's end), no request counts 0 ns, and every
	 * request answered has its latency counted once the turn is over.
	 */
	{
		struct bk_device *dev = disk_dev(&guests[0], 1);
		struct bk_queue_stats qs;
		uint64_t total = 0, reqs = 0;

		CHECK(dev != NULL);
		if (dev) {
			bk_loop_lock(bk_device_loop(dev));
			CHECK(dev->ops->get_stats(dev, &qs, 1) == 1);
			bk_loop_unlock(bk_device_loop(dev));
			for (unsigned int b = 0; b < BK_LAT_BUCKETS; b++)
				total += qs.lat_hist[b];
			for (unsigned int o = 0; o < BK_REQ__MAX; o++)
				reqs += qs.reqs[o];
			CHECK(total > 0);
			CHECK(total == reqs);
			CHECK(qs.lat_hist[0] == 0);
		}
	}

	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++) {
		struct guest *g = &guests[gi];

		for (unsigned int d = 0; d < g->nr_disks && !g->gone; d++) {
			CHECK(bk_bf_bad_padding(g->f[d]) == 0);
			CHECK(bk_bf_unknown_ids(g->f[d]) == 0);
			CHECK(bk_bf_disconnect(g->f[d]) == 0);
		}
	}
	bk_sim_counts(env.sim, &c);
	CHECK(c.gnt_mapped_pages == 0);
	CHECK(c.evtchn_bound == 0);
out:
	bk_service_free(svc);
	for (unsigned int gi = 0; gi < MAX_GUESTS; gi++)
		free_guest(&guests[gi]);
	bk_bf_env_free(&env);
	unlink(sock);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: test-blkif-threads ENGINE BLANKETCTL\n");
		return 1;
	}
	engine = argv[1];
	blanketctl = argv[2];
	if (bk_bf_engines_missing(engine, "fault", NULL))
		return 77;
	snprintf(slow_opts, sizeof(slow_opts), "inner=%s,delay=1000ms", engine);
	for (unsigned int n = 2; n <= 4; n++)
		run(n);
	return bk_test_exit();
}
