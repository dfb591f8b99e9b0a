// SPDX-License-Identifier: MIT
/*
 * Memory an idle connected disk costs the daemon (issue 12, item 5): N guests each connect a
 * four-queue disk with order-4 rings through the simulation, and the growth of the process's
 * resident memory (VmRSS: what it allocated and touched, and the io_uring rings the kernel maps
 * into it) and of its pinned memory (VmPin: what io_uring holds for registered buffers) across
 * the connects, divided by N, must each stay under 256 KiB per device. The rings the guests
 * share with us are their pages (RssShmem in the simulation) and are not counted. Then
 * every queue serves one read, and once the queues have been idle a while the bounce pools are
 * unpinned again: VmPin returns to where it was before the reads.
 *
 * A bound on memory, not on time: the loop is pumped until the devices connected or trimmed.
 *
 * Usage: test-blkif-idlemem [ENGINE]  (default io_uring)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "procstatus.h"
#include "check.h"
#include "conf.h"
#include "engine.h"
#include "loop.h"
#include "util/log.h"
#include "xenbus_front.h"

#include "blkif/common.h"

#define NR_DEVICES 32U
#define NR_QUEUES 4U
#define RING_ORDER 4U
#define DEVID 51712U
#define BOUND_KIB 256UL

static struct bk_bf_env env;
static struct bk_blkfront *fronts[NR_DEVICES];
static const char *engine = "io_uring";
static char path[64];

/* Resident memory that is the daemon's own: all of it but the guests' pages it maps. */
static unsigned long own_kib(void)
{
	return bk_proc_status_kib("VmRSS") - bk_proc_status_kib("RssShmem");
}

static void pump(unsigned int turns)
{
	for (unsigned int i = 0; i < turns; i++)
		bk_loop_run_once(env.loop, 0);
}

/* Connect every device; returns how many did. */
static unsigned int connect_all(void)
{
	unsigned int connected = 0;

	for (unsigned int i = 0; i < NR_DEVICES; i++) {
		struct bk_xbfront *x = bk_bf_xbf(fronts[i]);
		unsigned int st = 0;

		CHECK(bk_xbf_set_state(x, 3) == 0);
		for (int t = 0; t < 100000 && (st < 4 || st > 6); t++) {
			bk_loop_run_once(env.loop, 1);
			if (bk_xbf_be_state(x, &st) < 0)
				st = 0;
		}
		connected += st == 4;
	}
	return connected;
}

int main(int argc, char **argv)
{
	static uint8_t data[4096];
	struct bk_config cfg;
	unsigned long rss0, rss1, pin0, pin1, pin_used = 0;
	unsigned int connected;
	int fd;

	if (argc > 1)
		engine = argv[1];
	if (bk_bf_engines_missing(engine, NULL))
		return 77;
	bk_config_defaults(&cfg);
	cfg.queues = NR_QUEUES;
	cfg.queue_idle_ms = 200; /* not the default 30 s: the trim is what the end checks */
	bk_config_install(&cfg);
	bk_log_set_level(BK_LOG_ERR);
	fd = bk_bf_tmpfile("/var/tmp", 1U << 20, 0, path, sizeof(path));
	if (fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	close(fd);
	/* The guests' side first (their memory, rings and grants), then the backends connect. */
	for (unsigned int i = 0; i < NR_DEVICES; i++) {
		const char *extra[] = { "blanket-engine", engine, NULL };
		struct bk_bf_params p = { .nr_queues = NR_QUEUES,
					  .ring_order = RING_ORDER,
					  .pfn_count = 64 * NR_QUEUES + 16 };
		uint32_t domid = 10 + i;

		/* One image shared read-write on purpose: "w!". */
		if (bk_bf_env_guest(&env, domid, p.pfn_count + 8) < 0 ||
		    bk_bf_env_add_vbd(&env, domid, DEVID, path, "w!", "disk", extra) < 0 ||
		    bk_bf_open(&env, domid, DEVID, &p, &fronts[i]) < 0 ||
		    bk_bf_wait_initwait(fronts[i]) < 0 || bk_bf_prepare(fronts[i]) < 0) {
			fprintf(stderr, "device %u: setting up the guest failed\n", i);
			return 1;
		}
	}
	pump(20);
	rss0 = own_kib();
	pin0 = bk_proc_status_kib("VmPin");
	connected = connect_all();
	pump(20);
	rss1 = own_kib();
	pin1 = bk_proc_status_kib("VmPin");
	printf("%u of %u devices connected (%u queues, ring order %u, engine %s), per device: "
	       "resident %.1f KiB, pinned %.1f KiB (bound %lu KiB)\n",
	       connected, NR_DEVICES, NR_QUEUES, RING_ORDER, engine,
	       (double)(rss1 - rss0) / NR_DEVICES, (double)(pin1 - pin0) / NR_DEVICES, BOUND_KIB);
	CHECK(connected == NR_DEVICES);
	/* Pinned pages are resident too: each is held to the bound on its own. */
	CHECK(rss1 - rss0 <= BOUND_KIB * NR_DEVICES);
	CHECK(pin1 - pin0 <= BOUND_KIB * NR_DEVICES);

	/* Each queue serves a read, then goes idle: its pool is unpinned again. */
	for (unsigned int i = 0; i < NR_DEVICES && connected == NR_DEVICES; i++)
		for (unsigned int q = 0; q < NR_QUEUES; q++)
			CHECK(bk_bf_rw(fronts[i], q, BLKIF_OP_READ, 8 * i, 8, data, false) ==
			      BLKIF_RSP_OKAY);
	for (int t = 0; t < 600; t++) {
		unsigned long pin = bk_proc_status_kib("VmPin");

		pin_used = BK_MAX(pin_used, pin);
		if (pin <= pin1)
			break;
		bk_loop_run_once(env.loop, 10);
	}
	printf("pinned: %lu KiB idle, up to %lu KiB after the reads, %lu KiB once idle again\n",
	       pin1, pin_used, bk_proc_status_kib("VmPin"));
	CHECK(bk_proc_status_kib("VmPin") <= pin1);

	for (unsigned int i = 0; i < NR_DEVICES; i++)
		bk_bf_close(fronts[i]);
	bk_bf_env_free(&env);
	unlink(path);
	CHECK(blkif_pool_bytes_in_use() == 0);
	return bk_test_exit();
}
