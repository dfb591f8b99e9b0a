// SPDX-License-Identifier: MIT
/*
 * Per-device rate limits (issue 11 item 3) through the simulation, on a fake clock
 * (blkif_set_clock) so nothing here times anything: every number below is what the token
 * buckets must admit, counted as requests taken off the ring.
 *
 * - settings: iops/bps/burst in the xl target reach the device (blanket-* keys, describe);
 *   bad values refuse that device with an error node naming the value;
 * - iops: a device limited to 10/s with a 1 s burst takes 10 of the 32 requests on its ring,
 *   then 5 more when the clock moves 0.5 s, then no more than the burst after 10 s; a
 *   neighbour without limits completes all its requests meanwhile; the time held back is
 *   counted (exactly the fake time, 10.5 s);
 * - bps: 64 KiB/s, 1 s burst, 4 KiB reads: 16 fill the bucket and one more goes into debt;
 *   0.5 s later 8 more;
 * - live: blanketctl limit raises the limit over the control socket and the held requests
 *   run at once; reading it back, bad values (refused before sending, naming the value) and
 *   a device that does not exist; blanketctl stats --json shows the throttled time.
 *
 * Usage: test-blkif-limit BLANKETCTL
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "blkif/blkif.h"
#include "check.h"
#include "ctlrun.h"
#include "device.h"
#include "loop.h"
#include "service.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xen/xen.h"

#define DISK_BYTES (2U << 20)
#define DEVID 51712
#define NR 32 /* a one-page ring's entries */

static struct bk_bf_env env;
static uint64_t fake_ns = 1000000000ULL;
static const char *blanketctl;
static char sock[128];
static char out[1 << 16];
static uint8_t bufs[NR][4096];

static uint64_t fake_now(void)
{
	return fake_ns;
}

/* Run blanketctl with @args while the daemon's loop keeps turning; output in `out`, printed. */
static int run_ctl(const char *const *args)
{
	int r = bk_ctlrun(env.loop, blanketctl, sock, args, BK_CTLRUN_STDERR, out, sizeof(out));

	printf("blanketctl %s %s: %s", args[0], args[1] ? args[1] : "", out);
	return r;
}

static void be_key(uint32_t domid, uint32_t devid, const char *key, char *val, size_t len)
{
	bk_ts_read_be(env.ts, "vbd", domid, devid, key, val, len);
}

static struct bk_queue_stats stats(uint32_t domid)
{
	struct bk_device *dev = bk_core_find(env.core, "vbd", domid, DEVID);
	struct bk_queue_stats qs;

	memset(&qs, 0, sizeof(qs));
	if (dev)
		dev->ops->get_stats(dev, &qs, 1);
	return qs;
}

static uint64_t taken(uint32_t domid)
{
	return stats(domid).reqs[BK_REQ_READ];
}

static struct bk_blkfront *attach(uint32_t domid, const char *target)
{
	struct bk_ts_dev d = { .kind = "vbd", .domid = domid, .devid = DEVID, .params = target };
	struct bk_bf_params p = { .pfn_base = 0, .pfn_count = 1024 };
	int r = bk_ts_attach(env.ts, &d);

	CHECK(r == 0);
	if (r < 0)
		return NULL;
	return bk_bf_open_connect(&env, domid, DEVID, &p);
}

static void detach(struct bk_blkfront *f, uint32_t domid)
{
	if (f) {
		CHECK(bk_bf_disconnect(f) == 0);
		bk_bf_close(f);
	}
	CHECK(bk_ts_remove(env.ts, "vbd", domid, DEVID) == 0);
}

/* NR 4 KiB reads on the ring, published and notified. */
static void fill(struct bk_blkfront *f, struct bk_bf_io *ios)
{
	CHECK(bk_bf_queue_reads(f, 0, ios, NR, bufs) == NR);
}

/* Turn the loop until @domid took @want requests (or gave up), then a while longer. */
static uint64_t settle(uint32_t domid, uint64_t want)
{
	for (int i = 0; i < 300 && taken(domid) < want; i++)
		bk_loop_run_once(env.loop, 10);
	/* The timer keeps firing at real time; the fake clock does not move: no more. */
	for (int i = 0; i < 30; i++)
		bk_loop_run_once(env.loop, 5);
	return taken(domid);
}

static void test_settings(const char *path)
{
	static const char *const bad[][2] = {
		{ "iops=ten", "iops=ten" },
		{ "bps=12Q", "bps=12Q" },
		{ "burst=0", "burst=0" },
		{ "burst=70000", "burst=70000" },
		{ "iops=99999999", "iops=99999999" },
	};
	char target[PATH_MAX + 64], v[512];
	struct bk_blkfront *f;
	struct bk_device *dev;

	snprintf(target, sizeof(target), "iops=100,bps=1M,burst=50:%s", path);
	f = attach(30, target);
	be_key(30, DEVID, "blanket-iops", v, sizeof(v));
	CHECK(strcmp(v, "100") == 0);
	be_key(30, DEVID, "blanket-bps", v, sizeof(v));
	CHECK(strcmp(v, "1M") == 0);
	be_key(30, DEVID, "blanket-burst", v, sizeof(v));
	CHECK(strcmp(v, "50") == 0);
	dev = bk_core_find(env.core, "vbd", 30, DEVID);
	CHECK(dev && dev->ops->describe(dev, v, sizeof(v)) == 0);
	printf("described: %s\n", v);
	CHECK(strstr(v, " limit=iops=100,bps=1M,burst=50") != NULL);
	detach(f, 30);

	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		struct bk_ts_dev d = {
			.kind = "vbd", .domid = 30, .devid = DEVID, .params = target
		};

		snprintf(target, sizeof(target), "%s:%s", bad[i][0], path);
		CHECK(bk_ts_attach(env.ts, &d) < 0);
		be_key(30, DEVID, "error", v, sizeof(v));
		printf("%s: %s\n", bad[i][0], v);
		CHECK(strstr(v, bad[i][1]) != NULL);
		CHECK(bk_ts_remove(env.ts, "vbd", 30, DEVID) == 0);
	}
}

static void test_iops(const char *path, const char *path2)
{
	char target[PATH_MAX + 64], num[64];
	static struct bk_bf_io ios[NR], nios[NR];
	struct bk_blkfront *f, *n;
	struct bk_queue_stats qs;
	const char *show[] = { "limit", "31/51712", NULL };
	const char *raise[] = { "limit", "vbd", "31/51712", "iops=1000", NULL };
	const char *badv[] = { "limit", "31/51712", "iops=abc", NULL };
	const char *nodev[] = { "limit", "99/1", "iops=5", NULL };
	const char *st[] = { "stats", "31/51712", "--json", NULL };

	snprintf(target, sizeof(target), "iops=10,burst=1000:%s", path);
	f = attach(31, target);
	n = attach(32, path2);
	CHECK(f && n);
	if (!f || !n)
		return;
	fill(f, ios);
	CHECK(settle(31, 10) == 10);
	/* The neighbour is not held back: all its requests complete. */
	fill(n, nios);
	CHECK(bk_bf_wait_all(n, 0) == 0);
	CHECK(taken(32) == NR);
	CHECK(settle(31, 10) == 10);
	qs = stats(31);
	CHECK(qs.throttled >= 1);
	CHECK(qs.throttled_ns == 0); /* the fake clock has not moved */

	/* Half a second: 5 more. */
	fake_ns += 500000000ULL;
	CHECK(settle(31, 15) == 15);
	/* Ten seconds: no more than the burst (10), not 100. */
	fake_ns += 10000000000ULL;
	CHECK(settle(31, 25) == 25);
	qs = stats(31);
	printf("iops=10: admitted %" PRIu64 ", throttled %" PRIu64 " time(s), %" PRIu64 " ns\n",
	       qs.reqs[BK_REQ_READ], qs.throttled, qs.throttled_ns);
	CHECK(qs.throttled_ns == 10500000000ULL);

	/* Live: read it, refuse bad values, then raise it and the rest runs at once. */
	CHECK(run_ctl(show) == 0);
	CHECK(strstr(out, "31/51712: iops=10,burst=1000") != NULL);
	CHECK(run_ctl(badv) == 2);
	CHECK(strstr(out, "iops=abc") != NULL);
	CHECK(run_ctl(nodev) == 1);
	CHECK(strstr(out, "no device 99/1") != NULL);
	CHECK(taken(31) == 25);
	CHECK(run_ctl(raise) == 0);
	CHECK(strstr(out, "vbd 31/51712: iops=1000,burst=1000") != NULL);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	CHECK(taken(31) == NR);
	CHECK(run_ctl(st) == 0);
	snprintf(num, sizeof(num), "\"throttled_ns\":%llu", 10500000000ULL);
	CHECK(strstr(out, num) != NULL);
	detach(f, 31);
	detach(n, 32);
}

static void test_bps(const char *path)
{
	char target[PATH_MAX + 64];
	static struct bk_bf_io ios[NR];
	struct bk_blkfront *f;

	snprintf(target, sizeof(target), "bps=64K,burst=1000:%s", path);
	f = attach(33, target);
	CHECK(f != NULL);
	if (!f)
		return;
	fill(f, ios);
	/* 16 x 4 KiB empty the bucket; the 17th finds it at 0 and goes 4 KiB into debt. */
	CHECK(settle(33, 17) == 17);
	/* 0.5 s: 32 KiB pays the debt and 7 reads, the 8th goes into debt again. */
	fake_ns += 500000000ULL;
	CHECK(settle(33, 25) == 25);
	/* Off: everything left runs. */
	{
		const char *off[] = { "limit", "33/51712", "off", NULL };

		CHECK(run_ctl(off) == 0);
		CHECK(strstr(out, "33/51712: off") != NULL);
	}
	CHECK(bk_bf_wait_all(f, 0) == 0);
	CHECK(taken(33) == NR);
	detach(f, 33);
}

int main(int argc, char **argv)
{
	char p1[64], p2[64], a[PATH_MAX], b[PATH_MAX], dir[] = "/tmp/test-blkif-limit.XXXXXX";
	struct bk_service *svc = NULL;
	int fd1, fd2;

	if (argc < 2) {
		fprintf(stderr, "usage: test-blkif-limit BLANKETCTL\n");
		return 1;
	}
	blanketctl = argv[1];
	if (!mkdtemp(dir))
		return 1;
	fd1 = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, p1, sizeof(p1));
	fd2 = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, p2, sizeof(p2));
	if (fd1 < 0 || fd2 < 0 || !realpath(p1, a) || !realpath(p2, b) || bk_bf_env_new(&env) < 0)
		return 1;
	close(fd1);
	close(fd2);
	blkif_set_clock(fake_now);
	for (uint32_t d = 30; d <= 33; d++)
		CHECK(bk_bf_env_guest(&env, d, 4096) == 0);
	CHECK(bk_ctlrun_service(env.loop, env.core, dir, sock, sizeof(sock), &svc) == 0);

	test_settings(a);
	test_iops(a, b);
	test_bps(a);

	bk_service_free(svc);
	bk_bf_env_free(&env);
	blkif_set_clock(NULL);
	unlink(p1);
	unlink(p2);
	rmdir(dir);
	return bk_test_exit();
}
