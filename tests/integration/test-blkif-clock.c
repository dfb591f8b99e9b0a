// SPDX-License-Identifier: MIT
/*
 * blkif reads the clock once per pass over a queue, not once or twice per request: a pass that
 * takes 32 requests stamps them all with one reading, and the pass that answers them measures
 * their latency with one more. The clock is blkif's (blkif_set_clock), here one that moves a
 * millisecond at every reading, so each request's latency is a whole number of readings and
 * nothing depends on time: 32 reads in one push cost a handful of readings, and every latency
 * is at least the millisecond between its take and its answer.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "blkif/blkif.h"
#include "check.h"
#include "device.h"
#include "loop.h"
#include "util/log.h"

#define DOMID 5
#define DEVID 51712
#define NR 32 /* a one-page ring's entries */

static uint64_t fake_ns = 1000000000ULL;
static unsigned int readings;

/* A clock that moves 1 ms at every reading. */
static uint64_t counting_now(void)
{
	readings++;
	fake_ns += 1000000ULL;
	return fake_ns;
}

int main(void)
{
	static uint8_t bufs[NR][4096];
	static struct bk_bf_io ios[NR];
	const char *extra[] = { "blanket-engine", "null", NULL };
	struct bk_bf_params p = { .pfn_count = 256 };
	struct bk_bf_env env;
	struct bk_blkfront *f;
	struct bk_device *dev;
	struct bk_queue_stats qs;
	uint64_t fast = 0, total = 0;
	char path[64];
	int fd;

	bk_log_set_level(BK_LOG_WARNING);
	fd = bk_bf_tmpfile("/var/tmp", 1U << 20, 0, path, sizeof(path));
	if (fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	close(fd);
	CHECK(bk_bf_env_guest(&env, DOMID, 1024) == 0);
	CHECK(bk_bf_env_add_vbd(&env, DOMID, DEVID, path, "w", "disk", extra) == 0);
	f = bk_bf_open_connect(&env, DOMID, DEVID, &p);
	CHECK(f != NULL);
	if (!f)
		return 1;
	blkif_set_clock(counting_now);
	CHECK(bk_bf_queue_reads(f, 0, ios, NR, bufs) == NR);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	blkif_set_clock(NULL);
	for (unsigned int i = 0; i < NR; i++)
		CHECK(ios[i].done && ios[i].status == BLKIF_RSP_OKAY);

	dev = bk_core_find(env.core, "vbd", DOMID, DEVID);
	CHECK(dev != NULL);
	memset(&qs, 0, sizeof(qs));
	if (dev)
		dev->ops->get_stats(dev, &qs, 1);
	for (unsigned int b = 0; b < BK_LAT_BUCKETS; b++) {
		total += qs.lat_hist[b];
		if (b < bk_lat_bucket(1000000ULL))
			fast += qs.lat_hist[b];
	}
	printf("%u requests: %u clock readings, %llu latencies recorded, %llu under 1 ms\n", NR,
	       readings, (unsigned long long)total, (unsigned long long)fast);
	/* One reading per pass: a few passes, never one per request. */
	CHECK(readings >= 2 && readings <= 8);
	CHECK(total == NR);
	/* Taken and answered in different passes: at least one reading (1 ms) apart. */
	CHECK(fast == 0);

	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
	bk_bf_env_free(&env);
	unlink(path);
	return bk_test_exit();
}
