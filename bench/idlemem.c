// SPDX-License-Identifier: MIT
/*
 * idlemem: what an idle connected blkif device costs the daemon in memory. N guests each
 * connect one disk through the simulation (test blkfront, one file shared by all); the guest
 * side (rings, grants) is set up for every device first, then the backends connect, and the
 * growth of this process's RSS across the connects, divided by N, is the backend's cost per
 * device, split into private memory (RssAnon: what the backend allocated and touched) and the
 * guests' ring pages it maps (RssShmem in the simulation: the guest's memory, not ours), with
 * pinned memory (VmPin: bounce pools io_uring registered). Also prints the bounce pools'
 * reservation (blkif_pool_bytes_in_use: address space, touched and pinned only while a queue
 * is in use) and what the daemon-wide budget allowed.
 *
 * Not a test: numbers depend on the machine and kernel. Usage:
 *   idlemem [--devices N] [--queues Q] [--ring-order O] [--engine E] [--dir DIR]
 *           [--set key=value]...
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "procstatus.h"
#include "conf.h"
#include "device.h"
#include "loop.h"
#include "util/log.h"
#include "xenbus_front.h"

#include "../backends/blkif/common.h"

#define DEVID 51712
#define MAX_DEVICES 4000U

struct mem {
	unsigned long rss, anon, shmem, pin;
};

static void mem_read(struct mem *m)
{
	m->rss = bk_proc_status_kib("VmRSS");
	m->anon = bk_proc_status_kib("RssAnon");
	m->shmem = bk_proc_status_kib("RssShmem");
	m->pin = bk_proc_status_kib("VmPin");
}

static void mem_print(const char *what, unsigned long a, unsigned long b, unsigned int n)
{
	printf("%-34s %8lu KiB total, %8.1f KiB per connected device\n", what, b - a,
	       n ? (double)(b - a) / n : 0.0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "devices", required_argument, NULL, 'n' },
		{ "queues", required_argument, NULL, 'q' },
		{ "ring-order", required_argument, NULL, 'o' },
		{ "engine", required_argument, NULL, 'e' },
		{ "dir", required_argument, NULL, 'd' },
		{ "set", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int n = 200, nq = 4, order = 4, connected = 0, refused = 0;
	const char *engine = "null", *dir = "/dev/shm";
	static struct bk_blkfront *fronts[MAX_DEVICES];
	struct bk_config cfg;
	struct bk_bf_env env;
	struct mem m0, m1;
	char path[128];
	int c, fd, r;

	bk_config_defaults(&cfg);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			n = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			nq = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			order = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'e':
			engine = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 's':
			if (bk_config_set(&cfg, "--set", optarg) < 0)
				return 2;
			break;
		default:
			fprintf(stderr,
				"usage: idlemem [--devices N] [--queues Q] [--ring-order O] "
				"[--engine E] [--dir DIR] [--set key=value]...\n");
			return 2;
		}
	}
	if (n == 0 || n > MAX_DEVICES || nq == 0 || order > 4) {
		fprintf(stderr, "idlemem: 1..%u devices, 1.. queues, ring order 0..4\n",
			MAX_DEVICES);
		return 2;
	}
	cfg.queues = BK_MAX(cfg.queues, nq);
	bk_config_install(&cfg);
	bk_log_set_level(getenv("IDLEMEM_LOG") ? BK_LOG_WARNING : BK_LOG_ERR);
	fd = bk_bf_tmpfile(dir, 16ULL << 20, 0, path, sizeof(path));
	if (fd < 0) {
		fprintf(stderr, "idlemem: cannot create a file in %s: %s\n", dir, strerror(-fd));
		return 1;
	}
	close(fd);
	r = bk_bf_env_new(&env);
	if (r < 0)
		goto out;
	for (unsigned int i = 0; i < n; i++) {
		const char *extra[] = { "blanket-engine", engine, NULL };
		struct bk_bf_params p = { .nr_queues = nq > 1 ? nq : 0,
					  .ring_order = order,
					  .pfn_count = 64 * nq + 16 };
		uint32_t domid = 10 + i;

		if ((r = bk_bf_env_guest(&env, domid, p.pfn_count + 8)) < 0 ||
		    (r = bk_bf_env_add_vbd(&env, domid, DEVID, path, "w!", "disk", extra)) < 0 ||
		    (r = bk_bf_open(&env, domid, DEVID, &p, &fronts[i])) < 0 ||
		    (r = bk_bf_wait_initwait(fronts[i])) < 0 ||
		    (r = bk_bf_prepare(fronts[i])) < 0) {
			fprintf(stderr, "idlemem: device %u: %s\n", i, strerror(-r));
			goto out;
		}
	}
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(env.loop, 0);
	mem_read(&m0);
	for (unsigned int i = 0; i < n; i++) {
		struct bk_xbfront *x = bk_bf_xbf(fronts[i]);
		unsigned int st = 0;

		/* Initialised, then pump until the backend connected or refused (Closing). */
		if (bk_xbf_set_state(x, 3) < 0)
			continue;
		for (int t = 0; t < 100000 && (st < 4 || st > 6); t++) {
			bk_loop_run_once(env.loop, 1);
			if (bk_xbf_be_state(x, &st) < 0)
				st = 0;
		}
		if (st == 4)
			connected++;
		else
			refused++;
	}
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(env.loop, 0);
	mem_read(&m1);
	printf("devices=%u queues=%u ring-order=%u engine=%s bounce-pool-size=%lluK "
	       "max-indirect-segments=%u\n",
	       n, nq, order, engine, (unsigned long long)(cfg.bounce_pool_size >> 10),
	       cfg.max_indirect_segments);
	printf("connected=%u refused=%u\n", connected, refused);
	mem_print("RSS growth:", m0.rss, m1.rss, connected);
	mem_print("  private (RssAnon):", m0.anon, m1.anon, connected);
	mem_print("  guest rings mapped (RssShmem):", m0.shmem, m1.shmem, connected);
	mem_print("pinned (VmPin):", m0.pin, m1.pin, connected);
	printf("bounce pools reserved: %llu KiB total, %.1f KiB per connected device\n",
	       (unsigned long long)(blkif_pool_bytes_in_use() >> 10),
	       connected ? (double)(blkif_pool_bytes_in_use() >> 10) / connected : 0.0);
	r = 0;
out:
	for (unsigned int i = 0; i < n; i++)
		bk_bf_close(fronts[i]);
	bk_bf_env_free(&env);
	unlink(path);
	return r < 0 ? 1 : 0;
}
