// SPDX-License-Identifier: MIT
/*
 * Per-device settings from the xl.cfg target through the hotplug script (played by
 * bk_ts_attach, as scripts/blanket-hotplug writes the blanket-* keys and physical-device-path):
 * the engine (aio beside io_uring), the queue cap, cache=writeback (store neither O_DIRECT nor
 * O_DSYNC), cache=writethrough (O_DSYNC),
 * discard=off; a bad value refuses that device only, with a log line and an error node naming
 * the key and value; the same settings in params without a script; a probe that reaches
 * InitWait without touching the store (the target need not exist until the script ran); and
 * hotplug-status arriving while the device is Closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "check.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xenbus_front.h"

#define DOMID 9
#define DISK_BYTES (2U << 20)

static struct bk_bf_env env;
static uint8_t buf[8 * 4096], cmp[8 * 4096];

static struct bk_device *find(uint32_t devid)
{
	return bk_core_find(env.core, "vbd", DOMID, devid);
}

static void describe(uint32_t devid, char *desc, size_t len)
{
	struct bk_device *dev = find(devid);

	desc[0] = '\0';
	CHECK(dev && dev->ops->describe(dev, desc, len) == 0);
}

/* A backend key as a string ("" if absent). */
static void be_key(uint32_t devid, const char *key, char *val, size_t len)
{
	bk_ts_read_be(env.ts, "vbd", DOMID, devid, key, val, len);
}

static struct bk_blkfront *open_connect(uint32_t devid, unsigned int nr_queues)
{
	struct bk_bf_params p = {
		.nr_queues = nr_queues,
		.pfn_base = (devid % 8) * 1024,
		.pfn_count = 1024,
	};

	return bk_bf_open_connect(&env, DOMID, devid, &p);
}

/* Attach with @target as xl.cfg's target=, connect, write and read back on each queue. */
static struct bk_blkfront *attach_rw(uint32_t devid, const char *target, unsigned int nr_queues)
{
	struct bk_ts_dev d = { .kind = "vbd", .domid = DOMID, .devid = devid, .params = target };
	struct bk_blkfront *f;

	CHECK(bk_ts_attach(env.ts, &d) == 0);
	f = open_connect(devid, nr_queues);
	CHECK(f != NULL);
	if (!f)
		return NULL;
	for (unsigned int q = 0; q < BK_MAX(nr_queues, 1U); q++) {
		memset(cmp, 0x40 + (int)(devid + q), sizeof(cmp));
		CHECK(bk_bf_rw(f, q, BLKIF_OP_WRITE, 64 * q, 8, cmp, false) == BLKIF_RSP_OKAY);
		CHECK(bk_bf_rw(f, q, BLKIF_OP_READ, 64 * q, 8, buf, false) == BLKIF_RSP_OKAY);
		CHECK(memcmp(buf, cmp, 4096) == 0);
	}
	return f;
}

static void detach(struct bk_blkfront *f, uint32_t devid)
{
	if (f) {
		CHECK(bk_bf_disconnect(f) == 0);
		bk_bf_close(f);
	}
	CHECK(bk_ts_remove(env.ts, "vbd", DOMID, devid) == 0);
}

/* Requests counted on queue 0: the I/O went through this device's engine. */
static uint64_t requests(uint32_t devid)
{
	struct bk_device *dev = find(devid);
	struct bk_queue_stats qs[4];
	uint64_t n = 0;

	if (!dev || dev->ops->get_stats(dev, qs, 4) < 1)
		return 0;
	for (unsigned int i = 0; i < BK_REQ__MAX; i++)
		n += qs[0].reqs[i];
	return n;
}

static void test_engine(const char *path, uint32_t devid, const char *engine)
{
	char target[PATH_MAX + 64], want[64], desc[512], v[PATH_MAX];
	struct bk_blkfront *f;

	if (!bk_engine_find(engine)) {
		printf("engine %s not built: not tested\n", engine);
		return;
	}
	snprintf(target, sizeof(target), "engine=%s:%s", engine, path);
	f = attach_rw(devid, target, 1);
	be_key(devid, "blanket-engine", v, sizeof(v));
	CHECK(strcmp(v, engine) == 0);
	be_key(devid, "physical-device-path", v, sizeof(v));
	CHECK(strcmp(v, path) == 0);
	describe(devid, desc, sizeof(desc));
	snprintf(want, sizeof(want), " engine=%s ", engine);
	CHECK(strstr(desc, want) != NULL);
	CHECK(strstr(desc, "file=") && strstr(desc, path));
	CHECK(requests(devid) >= 2);
	printf("%s: %s\n", engine, desc);
	detach(f, devid);
}

static void test_queues(const char *path)
{
	char target[PATH_MAX + 64], desc[512];
	struct bk_device *dev;
	struct bk_queue_stats qs[8];
	struct bk_blkfront *f;
	uint64_t maxq = 0;

	snprintf(target, sizeof(target), "queues=2:%s", path);
	f = attach_rw(20, target, 2);
	CHECK(f && bk_bf_feature(f, "multi-queue-max-queues", &maxq) == 0 && maxq == 2);
	dev = find(20);
	CHECK(dev && dev->ops->get_stats(dev, qs, 8) == 2);
	describe(20, desc, sizeof(desc));
	CHECK(strstr(desc, "queues=2") != NULL);
	detach(f, 20);

	/* Without a setting the daemon-wide cap (4 by default) is offered. */
	f = attach_rw(21, path, 1);
	CHECK(f && bk_bf_feature(f, "multi-queue-max-queues", &maxq) == 0 && maxq == 4);
	detach(f, 21);
}

/*
 * Descriptors open on @path (the daemon's: the test keeps none), and how many are O_DIRECT and
 * O_DSYNC (as the kernel reports the open flags in fdinfo).
 */
static unsigned int store_fds(const char *path, unsigned int *ret_direct, unsigned int *ret_dsync)
{
	char link[64], target[PATH_MAX], info[64], line[256];
	unsigned int n = 0, direct = 0, dsync = 0;

	for (int fd = 3; fd < 1024; fd++) {
		unsigned int flags;
		ssize_t len;
		FILE *fi;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, path))
			continue;
		snprintf(info, sizeof(info), "/proc/self/fdinfo/%d", fd);
		fi = fopen(info, "r");
		if (!fi)
			continue;
		while (fgets(line, sizeof(line), fi)) {
			if (sscanf(line, "flags: %o", &flags) == 1) {
				n++;
				direct += (flags & O_DIRECT) ? 1 : 0;
				dsync += (flags & O_DSYNC) ? 1 : 0;
				break;
			}
		}
		fclose(fi);
	}
	*ret_direct = direct;
	*ret_dsync = dsync;
	return n;
}

static void test_cache(const char *path, const char *path2)
{
	char target[PATH_MAX + 64], desc[512];
	struct bk_blkfront *f, *g;
	unsigned int n, n2, direct = 9, direct2 = 0, dsync = 9, dsync2 = 9;

	snprintf(target, sizeof(target), "cache=writeback:%s", path);
	f = attach_rw(30, target, 1);
	g = attach_rw(31, path2, 1);
	n = store_fds(path, &direct, &dsync);
	n2 = store_fds(path2, &direct2, &dsync2);
	printf("cache: %u fd(s) on the writeback store (%u O_DIRECT, %u O_DSYNC), %u on the "
	       "default one (%u O_DIRECT, %u O_DSYNC)\n",
	       n, direct, dsync, n2, direct2, dsync2);
	CHECK(n >= 1 && direct == 0 && dsync == 0);
	CHECK(dsync2 == 0); /* none: O_DIRECT, durable at the guest's flush */
	/* The control: the default opens O_DIRECT (ext4, xfs, tmpfs since 6.6 allow it). */
	if (n2 >= 1 && direct2 == 0)
		printf("the filesystem of %s refuses O_DIRECT: default not compared\n", path2);
	else
		CHECK(n2 >= 1 && direct2 >= 1);
	describe(30, desc, sizeof(desc));
	CHECK(strstr(desc, "cache=writeback") != NULL);
	describe(31, desc, sizeof(desc));
	CHECK(strstr(desc, "cache=") == NULL);
	detach(f, 30);
	detach(g, 31);

	/* writethrough: the page cache, and every write durable before it is answered. */
	snprintf(target, sizeof(target), "cache=writethrough:%s", path);
	f = attach_rw(32, target, 1);
	n = store_fds(path, &direct, &dsync);
	printf("cache: %u fd(s) on the writethrough store (%u O_DIRECT, %u O_DSYNC)\n", n, direct,
	       dsync);
	CHECK(n >= 1 && direct == 0 && dsync == n);
	describe(32, desc, sizeof(desc));
	CHECK(strstr(desc, "cache=writethrough") != NULL);
	detach(f, 32);
}

static void test_discard(const char *path)
{
	char target[PATH_MAX + 64];
	struct bk_bf_io io = { .op = BLKIF_OP_DISCARD, .sector = 0, .nr_sectors = 8 };
	struct bk_blkfront *f, *g;
	uint64_t on = 9, off = 9;

	snprintf(target, sizeof(target), "discard=off:%s", path);
	f = attach_rw(40, target, 1);
	g = attach_rw(41, path, 1);
	CHECK(f && bk_bf_feature(f, "feature-discard", &off) == 0 && off == 0);
	CHECK(g && bk_bf_feature(g, "feature-discard", &on) == 0);
	if (on != 1)
		printf("the filesystem cannot punch holes: discard=on not compared\n");
	if (f)
		CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_EOPNOTSUPP);
	detach(f, 40);
	detach(g, 41);
}

struct bad_case {
	uint32_t devid;
	const char *prefix; /* before the image's path in the target */
	const char *const *extra;
	const char *word; /* what the log line and the error node must name */
	char target[PATH_MAX + 64];
	int got;
};

static void attach_bad(void *arg)
{
	struct bad_case *c = arg;
	struct bk_ts_dev d = {
		.kind = "vbd", .domid = DOMID, .devid = c->devid, .params = c->target,
		.extra_be = c->extra,
	};

	c->got = bk_ts_attach(env.ts, &d);
}

/*
 * A bad setting fails that device only: a device serving I/O beside it goes on, the log and
 * the error node name the key and the value.
 */
static void test_bad(const char *path)
{
	static const char *const bad_engine[] = { "blanket-engine", "nosuch", NULL };
	struct bad_case cases[] = {
		{ .devid = 50, .prefix = "queues=9:", .word = "blanket-queues=9" },
		{ .devid = 51, .prefix = "cache=unsafe:", .word = "blanket-cache=unsafe" },
		{ .devid = 52, .prefix = "discard=maybe:", .word = "blanket-discard=maybe" },
		{ .devid = 53, .prefix = "", .extra = bad_engine, .word = "blanket-engine=nosuch" },
		{ .devid = 54, .prefix = "persistent=maybe:", .word = "blanket-persistent=maybe" },
	};
	struct bk_blkfront *good = attach_rw(59, path, 1);

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bad_case *c = &cases[i];
		_cleanup_free_ char *log = NULL;
		char err[512], name[32];
		unsigned int st = 0;

		snprintf(c->target, sizeof(c->target), "%s%s", c->prefix, path);
		log = bk_test_capture_stderr(attach_bad, c);
		/* The backend refused it after the script (bk_ts_attach saw it go Closing). */
		CHECK(c->got == -ENODEV);
		CHECK(bk_ts_be_state(env.ts, "vbd", DOMID, c->devid, &st) == 0 &&
		      st >= BK_XB_CLOSING);
		be_key(c->devid, "error", err, sizeof(err));
		CHECK(strstr(err, c->word) != NULL);
		snprintf(name, sizeof(name), "vbd %u/%u: ", DOMID, c->devid);
		CHECK(log && strstr(log, name) && strstr(log, c->word));
		CHECK(find(c->devid) == NULL || find(c->devid)->state >= BK_XB_CLOSING);
		bk_ts_remove(env.ts, "vbd", DOMID, c->devid);
		/* The neighbour is unaffected. */
		memset(cmp, 0x50 + (int)i, sizeof(cmp));
		CHECK(good && bk_bf_rw(good, 0, BLKIF_OP_WRITE, 8, 8, cmp, false) == BLKIF_RSP_OKAY);
		CHECK(good && bk_bf_rw(good, 0, BLKIF_OP_READ, 8, 8, buf, false) == BLKIF_RSP_OKAY);
		CHECK(memcmp(buf, cmp, 4096) == 0);
	}
	detach(good, 59);
}

/* The script refuses a name that is not a setting: hotplug-status=error, the store untouched. */
static void test_script_refuses(const char *path)
{
	char target[PATH_MAX + 64], v[256];
	struct bk_ts_dev d = { .kind = "vbd", .domid = DOMID, .devid = 60, .params = target };
	unsigned int st = 0;

	snprintf(target, sizeof(target), "engin=aio:%s", path);
	CHECK(bk_ts_attach(env.ts, &d) == -EINVAL);
	be_key(60, "hotplug-status", v, sizeof(v));
	CHECK(strcmp(v, "error") == 0);
	be_key(60, "hotplug-error", v, sizeof(v));
	CHECK(strstr(v, "engin") != NULL);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(bk_ts_be_state(env.ts, "vbd", DOMID, 60, &st) == 0 && st == BK_XB_INITWAIT);
	be_key(60, "sectors", v, sizeof(v));
	CHECK(v[0] == '\0');
	CHECK(bk_ts_remove(env.ts, "vbd", DOMID, 60) == 0);
}

static uint32_t wait_devid;

static bool be_initwait(void *data)
{
	unsigned int st = 0;

	(void)data;
	return bk_ts_be_state(env.ts, "vbd", DOMID, wait_devid, &st) == 0 &&
	       st == BK_XB_INITWAIT;
}

static bool be_has_sectors(void *data)
{
	char v[32];

	(void)data;
	be_key(wait_devid, "sectors", v, sizeof(v));
	return v[0] != '\0';
}

static bool be_failed(void *data)
{
	unsigned int st = 0;

	(void)data;
	return bk_ts_be_state(env.ts, "vbd", DOMID, wait_devid, &st) == 0 && st >= BK_XB_CLOSING;
}

/*
 * Probe touches no store: a target that does not exist yet reaches InitWait with the
 * store-independent features only. Settings in params are honoured without the script's keys
 * (hotplug-status written directly), and an unknown one there fails the device.
 */
static void test_probe_without_store(void)
{
	char path[PATH_MAX], target[PATH_MAX + 64], v[PATH_MAX], desc[512];
	struct bk_ts_dev d = { .kind = "vbd", .domid = DOMID, .devid = 70, .params = target };
	struct bk_blkfront *f;
	uint64_t x = 9;
	int fd;

	snprintf(path, sizeof(path), "/var/tmp/blkif-settings-late-%d.raw", (int)getpid());
	unlink(path);
	snprintf(target, sizeof(target), "engine=aio,discard=off,queues=1:%s", path);
	CHECK(bk_ts_add(env.ts, &d) == 0);
	wait_devid = 70;
	CHECK(bk_test_pump_until(env.loop, be_initwait, NULL, 0) == 0);
	be_key(70, "max-ring-page-order", v, sizeof(v));
	CHECK(v[0] != '\0');
	be_key(70, "sectors", v, sizeof(v));
	CHECK(v[0] == '\0');
	be_key(70, "feature-discard", v, sizeof(v));
	CHECK(v[0] == '\0');
	describe(70, desc, sizeof(desc));
	CHECK(strncmp(desc, "file=- ", 7) == 0);

	/* The image appears, then the "script" says connected (no settings keys written). */
	fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x22, v, sizeof(v));
	CHECK(fd >= 0 && rename(v, path) == 0);
	CHECK(bk_ts_hotplug(env.ts, "vbd", DOMID, 70, "connected") == 0);
	CHECK(bk_test_pump_until(env.loop, be_has_sectors, NULL, 0) == 0);
	be_key(70, "sectors", v, sizeof(v));
	CHECK(strtoull(v, NULL, 10) == DISK_BYTES / 512);
	f = open_connect(70, 1);
	CHECK(f != NULL);
	if (f) {
		CHECK(bk_bf_feature(f, "feature-discard", &x) == 0 && x == 0);
		CHECK(bk_bf_feature(f, "multi-queue-max-queues", &x) == 0 && x == 1);
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
		CHECK(buf[0] == 0x22 && buf[4095] == 0x22);
	}
	describe(70, desc, sizeof(desc));
	if (bk_engine_find("aio"))
		CHECK(strstr(desc, " engine=aio ") != NULL);
	detach(f, 70);

	/* An unknown name in params, and no script to catch it. */
	snprintf(target, sizeof(target), "engin=aio:%s", path);
	d.devid = 71;
	wait_devid = 71;
	CHECK(bk_ts_add(env.ts, &d) == 0);
	CHECK(bk_test_pump_until(env.loop, be_initwait, NULL, 0) == 0);
	CHECK(bk_ts_hotplug(env.ts, "vbd", DOMID, 71, "connected") == 0);
	CHECK(bk_test_pump_until(env.loop, be_failed, NULL, 0) == 0);
	be_key(71, "error", v, sizeof(v));
	CHECK(strstr(v, "engin=aio") != NULL);
	bk_ts_remove(env.ts, "vbd", DOMID, 71);

	if (fd >= 0)
		close(fd);
	unlink(path);
}

/*
 * hotplug-status=connected arrives while the device is Closed (the frontend gave up before the
 * script finished): the store is opened when the frontend comes back, not never.
 */
static void test_hotplug_while_closed(const char *path)
{
	struct bk_ts_dev d = { .kind = "vbd", .domid = DOMID, .devid = 80, .params = path };
	struct bk_bf_params p = { .pfn_base = 0, .pfn_count = 1024 };
	struct bk_blkfront *f = NULL;
	unsigned int st = 0;
	char v[32];

	CHECK(bk_ts_add(env.ts, &d) == 0);
	CHECK(bk_bf_open(&env, DOMID, 80, &p, &f) == 0);
	if (!f)
		return;
	CHECK(bk_bf_wait_initwait(f) == 0);
	CHECK(bk_bf_prepare(f) == 0);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_INITIALISED) == 0);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(bk_xbf_be_state(bk_bf_xbf(f), &st) == 0 && st == BK_XB_INITWAIT);
	CHECK(bk_bf_disconnect(f) == 0);
	CHECK(bk_ts_hotplug(env.ts, "vbd", DOMID, 80, "connected") == 0);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(bk_xbf_be_state(bk_bf_xbf(f), &st) == 0 && st == BK_XB_CLOSED);
	be_key(80, "sectors", v, sizeof(v));
	CHECK(v[0] == '\0');
	bk_bf_reset(f);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_INITIALISING) == 0);
	CHECK(bk_bf_connect(f) == 0);
	be_key(80, "sectors", v, sizeof(v));
	CHECK(strtoull(v, NULL, 10) == DISK_BYTES / 512);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	detach(f, 80);
}

int main(void)
{
	char path[64], path2[64], real[PATH_MAX], real2[PATH_MAX];
	int fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x11, path, sizeof(path));
	int fd2 = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x11, path2, sizeof(path2));

	if (fd < 0 || fd2 < 0 || !realpath(path, real) || !realpath(path2, real2) ||
	    bk_bf_env_new(&env) < 0)
		return 1;
	/* Only the daemon's descriptors stay open on the images (test_cache looks at them). */
	close(fd);
	close(fd2);
	CHECK(bk_bf_env_guest(&env, DOMID, 8192) == 0);
	test_engine(real, 10, "aio");
	test_engine(real, 11, "io_uring");
	test_queues(real);
	test_cache(real, real2);
	test_discard(real);
	test_bad(real);
	test_script_refuses(real);
	test_probe_without_store();
	test_hotplug_while_closed(real);
	CHECK(bk_sim_guest_nr_mapped(env.sim, DOMID) == 0);
	bk_bf_env_free(&env);
	unlink(path);
	unlink(path2);
	return bk_test_exit();
}
