// SPDX-License-Identifier: MIT
/*
 * A blkif disk on a byte range of a virtio-blk device that blanketd drives itself, end to end
 * through the Xen simulation, with a real qemu-storage-daemon (vhost-user) as the device: the
 * keys scripts/blanket-hotplug writes for engine=virtio-blk (blanket-engine, blanket-options
 * with range= and owner=, physical-device-path virtio-blk:...) make a disk of the range's
 * size; the guest's writes land at the range's offset in the exported file and nowhere else;
 * I/O past the range's end is refused by blkif; a second guest disk whose range overlaps the
 * first one's never connects (the engine refuses it). The device offers discard, so the disk
 * advertises feature-discard, and a guest's discard zeroes the file at the range's offset and
 * nothing past the range's end. blanketctl (argv[1]) shows the L0 device: `list` and `list
 * --json` its transport, DMA mode and why, the guest disk on its range and the queue it has;
 * `stats --json` the requests each queue completed, counted exactly. Exits 77 without
 * qemu-storage-daemon. With "threads" after blanketctl: two guests' disks on one device from
 * two I/O threads (test_threads).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "check.h"
#include "ctlrun.h"
#include "device.h"
#include "qsd.h"
#include "service.h"
#include "toolstack.h"
#include "xen/sim.h"

#define DOMID 9
#define DOMID2 10
#define DEVID 51712
#define FILE_BYTES (8u << 20)
#define RANGE_OFF (1u << 20)
#define RANGE_SIZE (2u << 20)
#define DISCARD_AT (64u << 10) /* in the range */
#define DISCARD_LEN (256u << 10)

static struct bk_bf_env env;
static struct bk_qsd qsd = { .pid = -1 };
static uint8_t buf[8 * 512], cmp[8 * 512];
static char out[1 << 16];

/*
 * blanketctl's view of the L0 device while the guest disk on it is connected: the device
 * (a vhost-user socket: identity DMA), its one user and its range, and exactly the device
 * requests the guest's I/O made on queue 0 so far.
 */
static void check_ctl(const char *blanketctl, const char *dir, const char *sock)
{
	struct bk_service *svc = NULL;
	char csock[128], want[256];
	const char *t;

	CHECK(bk_ctlrun_service(env.loop, env.core, dir, csock, sizeof(csock), &svc) == 0);
	if (!svc)
		return;
	{
		const char *args[] = { "list", "--json", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		t = strstr(out, "\"l0_devices\":[{");
		CHECK(t != NULL);
		snprintf(want, sizeof(want),
			 "{\"kind\":\"virtio-blk\",\"name\":\"%s\",\"transport\":\"vhost-user\","
			 "\"dma_mode\":\"identity\",\"dma_why\":\"",
			 sock);
		CHECK(t && strstr(t, want));
		snprintf(want, sizeof(want),
			 "\"users\":[{\"owner\":\"%u/%u\",\"offset\":%u,\"size\":%u}]", DOMID,
			 DEVID, RANGE_OFF, RANGE_SIZE);
		CHECK(t && strstr(t, want));
		CHECK(t && strstr(t, "\"discard\":true,\"write_zeroes\":true"));
		snprintf(want, sizeof(want), "{\"index\":0,\"size\":");
		CHECK(t && strstr(t, want));
		snprintf(want, sizeof(want), "\"owner\":\"vbd %u/%u", DOMID, DEVID);
		CHECK(t && strstr(strstr(t, "\"queues\"") ? strstr(t, "\"queues\"") : t, want));
		if (bk_test_failures)
			fprintf(stderr, "blanketctl list --json said:\n%s\n", out);
	}
	{
		const char *args[] = { "list", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		snprintf(want, sizeof(want), "L0 virtio-blk %s (vhost-user, DMA identity, eventfd)",
			 sock);
		CHECK(strstr(out, want));
		snprintf(want, sizeof(want), "used by %u/%u: 2.0 MiB at 1.0 MiB", DOMID, DEVID);
		CHECK(strstr(out, want));
		if (bk_test_failures)
			fprintf(stderr, "blanketctl list said:\n%s\n", out);
	}
	{
		const char *args[] = { "stats", "--json", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		t = strstr(out, "{\"index\":0,");
		CHECK(t != NULL);
		/* 4 KiB written twice, read twice, one flush, one discard (see main). */
		CHECK(bk_ctlrun_json_u64(t, "reads") == 2);
		CHECK(bk_ctlrun_json_u64(t, "writes") == 2);
		CHECK(bk_ctlrun_json_u64(t, "flushes") == 1);
		CHECK(bk_ctlrun_json_u64(t, "discards") == 1);
		CHECK(bk_ctlrun_json_u64(t, "errors") == 0);
		CHECK(bk_ctlrun_json_u64(t, "bytes_read") == 8192);
		CHECK(bk_ctlrun_json_u64(t, "bytes_written") == 8192);
		CHECK(bk_ctlrun_json_u64(t, "inflight") == 0);
		if (bk_test_failures)
			fprintf(stderr, "blanketctl stats --json said:\n%s\n", out);
	}
	{
		const char *args[] = { "stats", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		snprintf(want, sizeof(want), "L0 virtio-blk %s (vhost-user, DMA identity, eventfd)",
			 sock);
		CHECK(strstr(out, want) && strstr(out, "DISCARD"));
	}
	bk_service_free(svc);
}

static int add(uint32_t domid, const char *opts)
{
	const char *extra[] = { "blanket-engine",
				"virtio-blk",
				"blanket-options",
				opts,
				"physical-device-path",
				"virtio-blk:test:1048576+2097152",
				NULL };
	struct bk_ts_dev d = { .kind = "vbd",
			       .domid = domid,
			       .devid = DEVID,
			       .params = "engine=virtio-blk,pci=test",
			       .script = "/etc/xen/scripts/blanket",
			       .extra_be = extra };
	int r = bk_ts_add(env.ts, &d);

	return r < 0 ? r : bk_ts_hotplug(env.ts, "vbd", domid, DEVID, "connected");
}

/* @len bytes of @path at @off all equal to @val? */
static bool file_is(const char *path, uint64_t off, size_t len, uint8_t val)
{
	uint8_t b[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0;

	while (ok && len) {
		size_t n = len < sizeof(b) ? len : sizeof(b);

		ok = pread(fd, b, n, (off_t)off) == (ssize_t)n;
		for (size_t i = 0; ok && i < n; i++)
			ok = b[i] == val;
		off += n;
		len -= n;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * With 2 I/O threads, guests 9 and 10 land on different threads; their disks on the same L0
 * device (disjoint ranges) must both connect (the second moves to the thread that drives the
 * device) and do verified I/O at once.
 */
static void test_threads(const char *sock)
{
	char o1[256], o2[256];
	struct bk_bf_params p = { .nr_queues = 1, .pfn_base = 0, .pfn_count = 1024 };
	struct bk_blkfront *f = NULL, *g = NULL;
	struct bk_device *d1, *d2;
	static uint8_t w1[4096], w2[4096], r1[4096], r2[4096];
	struct bk_bf_io io[4] = { 0 };

	snprintf(o1, sizeof(o1), "socket=%s,range=%u+%u,owner=%u/%u", sock, RANGE_OFF, RANGE_SIZE,
		 DOMID, DEVID);
	snprintf(o2, sizeof(o2), "socket=%s,range=%u+%u,owner=%u/%u", sock, RANGE_OFF + RANGE_SIZE,
		 RANGE_SIZE, DOMID2, DEVID);
	CHECK(bk_bf_env_new_threads(&env, NULL, 2) == 0);
	CHECK(bk_bf_env_guest(&env, DOMID, 4096) == 0);
	CHECK(bk_bf_env_guest(&env, DOMID2, 4096) == 0);
	CHECK(add(DOMID, o1) == 0);
	CHECK(add(DOMID2, o2) == 0);
	f = bk_bf_open_connect(&env, DOMID, DEVID, &p);
	g = bk_bf_open_connect(&env, DOMID2, DEVID, &p);
	CHECK(f != NULL);
	CHECK(g != NULL);
	d1 = bk_core_find(env.core, "vbd", DOMID, DEVID);
	d2 = bk_core_find(env.core, "vbd", DOMID2, DEVID);
	CHECK(d1 && d2 && d1->thread >= 0 && d1->thread == d2->thread);
	if (f && g) {
		memset(w1, 0x31, sizeof(w1));
		memset(w2, 0x32, sizeof(w2));
		io[0] = (struct bk_bf_io){ .op = BLKIF_OP_WRITE, .nr_sectors = 8, .data = w1 };
		io[1] = (struct bk_bf_io){ .op = BLKIF_OP_WRITE, .nr_sectors = 8, .data = w2 };
		CHECK(bk_bf_queue(f, 0, &io[0]) == 0);
		CHECK(bk_bf_queue(g, 0, &io[1]) == 0);
		bk_bf_push(f, 0);
		bk_bf_push(g, 0);
		CHECK(bk_bf_wait_all(f, 0) == 0 && bk_bf_wait_all(g, 0) == 0);
		io[2] = (struct bk_bf_io){ .op = BLKIF_OP_READ, .nr_sectors = 8, .data = r1 };
		io[3] = (struct bk_bf_io){ .op = BLKIF_OP_READ, .nr_sectors = 8, .data = r2 };
		CHECK(bk_bf_queue(f, 0, &io[2]) == 0);
		CHECK(bk_bf_queue(g, 0, &io[3]) == 0);
		bk_bf_push(f, 0);
		bk_bf_push(g, 0);
		CHECK(bk_bf_wait_all(f, 0) == 0 && bk_bf_wait_all(g, 0) == 0);
		for (int i = 0; i < 4; i++)
			CHECK(io[i].done && io[i].status == BLKIF_RSP_OKAY);
		CHECK(!memcmp(r1, w1, sizeof(r1)) && !memcmp(r2, w2, sizeof(r2)));
		CHECK(bk_bf_disconnect(f) == 0 && bk_bf_disconnect(g) == 0);
	}
	bk_bf_close(f);
	bk_bf_close(g);
	CHECK(bk_ts_remove(env.ts, "vbd", DOMID, DEVID) == 0);
	CHECK(bk_ts_remove(env.ts, "vbd", DOMID2, DEVID) == 0);
	bk_bf_env_free(&env);
}

int main(int argc, char **argv)
{
	char path[64], dir[64], sock[128], opts[256], opts2[256], v[64];
	struct bk_bf_params p = { .nr_queues = 1, .pfn_base = 0, .pfn_count = 1024 };
	struct bk_blkfront *f, *g = NULL;
	uint64_t sectors = 0;
	int fd;

	if (!bk_qsd_binary()) {
		fprintf(stderr, "qemu-storage-daemon not installed: skipped\n");
		return 77;
	}
	fd = bk_bf_tmpfile("/var/tmp", FILE_BYTES, 0x11, path, sizeof(path));
	snprintf(dir, sizeof(dir), "/tmp/bk-blkif-vblk.XXXXXX");
	if (fd < 0 || !mkdtemp(dir))
		return 1;
	close(fd);
	snprintf(sock, sizeof(sock), "%s/vhost.sock", dir);
	if (bk_qsd_start(&qsd, path, sock, 2, true) < 0) {
		fprintf(stderr, "qemu-storage-daemon would not export %s\n", path);
		unlink(path);
		rmdir(dir);
		return 1;
	}
	snprintf(opts, sizeof(opts), "socket=%s,range=%u+%u,owner=%u/%u", sock, RANGE_OFF,
		 RANGE_SIZE, DOMID, DEVID);
	snprintf(opts2, sizeof(opts2), "socket=%s,range=%u+%u,owner=%u/%u", sock,
		 RANGE_OFF + RANGE_SIZE / 2, RANGE_SIZE, DOMID2, DEVID);
	if (argc > 2 && strcmp(argv[2], "threads") == 0) {
		test_threads(sock);
		bk_qsd_kill(&qsd);
		CHECK(file_is(path, RANGE_OFF, 4096, 0x31));
		CHECK(file_is(path, RANGE_OFF + RANGE_SIZE, 4096, 0x32));
		unlink(sock);
		rmdir(dir);
		unlink(path);
		return bk_test_exit();
	}
	CHECK(bk_bf_env_new(&env) == 0);
	CHECK(bk_bf_env_guest(&env, DOMID, 4096) == 0);
	CHECK(bk_bf_env_guest(&env, DOMID2, 4096) == 0);

	CHECK(add(DOMID, opts) == 0);
	f = bk_bf_open_connect(&env, DOMID, DEVID, &p);
	CHECK(f != NULL);
	if (f) {
		CHECK(bk_bf_feature(f, "sectors", &sectors) == 0 && sectors == RANGE_SIZE / 512);
		memset(cmp, 0x5a, sizeof(cmp));
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, 8, cmp, false) == BLKIF_RSP_OKAY);
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
		CHECK(memcmp(buf, cmp, sizeof(buf)) == 0);
		memset(cmp, 0x77, sizeof(cmp));
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, RANGE_SIZE / 512 - 8, 8, cmp, false) ==
		      BLKIF_RSP_OKAY);
		/* Past the end of the range: another guest's bytes may be there. */
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, RANGE_SIZE / 512, 8, cmp, false) !=
		      BLKIF_RSP_OKAY);
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, NULL, false) ==
		      BLKIF_RSP_OKAY);

		/*
		 * The device offers discard (qemu-storage-daemon, discard=unmap): so does the
		 * disk, once connected. A discard lands at the range's offset (the file's
		 * bytes there read back as zeros, a hole), and not past the range's end.
		 */
		{
			struct bk_bf_io io = { .op = BLKIF_OP_DISCARD,
					       .sector = DISCARD_AT / 512,
					       .nr_sectors = DISCARD_LEN / 512 };
			uint64_t feat = 0;

			CHECK(bk_bf_feature(f, "feature-discard", &feat) == 0 && feat == 1);
			CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_OKAY);
			memset(&io, 0, sizeof(io));
			io.op = BLKIF_OP_DISCARD;
			io.sector = RANGE_SIZE / 512 - 8;
			io.nr_sectors = 16;
			CHECK(bk_bf_io_sync(f, 0, &io) != BLKIF_RSP_OKAY);
			memset(buf, 0xee, sizeof(buf));
			CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, DISCARD_AT / 512, 8, buf, false) ==
			      BLKIF_RSP_OKAY);
			memset(cmp, 0, sizeof(cmp));
			CHECK(memcmp(buf, cmp, sizeof(buf)) == 0);
		}
		if (argc > 1)
			check_ctl(argv[1], dir, sock);

		/* Another guest on an overlapping range: refused while the first holds it. */
		CHECK(add(DOMID2, opts2) == 0);
		CHECK(bk_bf_open(&env, DOMID2, DEVID, &p, &g) == 0);
		if (g)
			CHECK(bk_bf_connect(g) != 0);
		bk_bf_close(g);
		CHECK(bk_ts_remove(env.ts, "vbd", DOMID2, DEVID) == 0);

		CHECK(bk_bf_disconnect(f) == 0);
		bk_bf_close(f);
	}
	CHECK(bk_ts_remove(env.ts, "vbd", DOMID, DEVID) == 0);
	bk_ts_read_be(env.ts, "vbd", DOMID, DEVID, "sectors", v, sizeof(v));
	bk_bf_env_free(&env);
	bk_qsd_kill(&qsd);

	CHECK(file_is(path, 0, RANGE_OFF, 0x11));
	CHECK(file_is(path, RANGE_OFF, 4096, 0x5a));
	CHECK(file_is(path, RANGE_OFF + 4096, DISCARD_AT - 4096, 0x11));
	CHECK(file_is(path, RANGE_OFF + DISCARD_AT, DISCARD_LEN, 0));
	CHECK(file_is(path, RANGE_OFF + DISCARD_AT + DISCARD_LEN,
		      RANGE_SIZE - DISCARD_AT - DISCARD_LEN - 4096, 0x11));
	CHECK(file_is(path, RANGE_OFF + RANGE_SIZE - 4096, 4096, 0x77));
	CHECK(file_is(path, RANGE_OFF + RANGE_SIZE, FILE_BYTES - RANGE_OFF - RANGE_SIZE, 0x11));
	unlink(sock);
	rmdir(dir);
	unlink(path);
	return bk_test_exit();
}
