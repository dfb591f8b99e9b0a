// SPDX-License-Identifier: MIT
/*
 * blanketctl against the daemon's control socket while a simulated guest does I/O: the byte
 * and request counts blanketctl reports (--json) match what the guest did within 1%, `list`
 * shows the device with its backing file and features, `status` is 0 when healthy and 1 once
 * the device failed, and the human table renders.
 *
 * Usage: test-ctl-stats ENGINE BLANKETCTL
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "service.h"
#include "check.h"
#include "ctlrun.h"

#define DOMID 5
#define DEVID 51712
#define DISK_BYTES (8U << 20)

static const char *blanketctl;
static char sock[128];
static char out[1 << 16];

/* Run blanketctl with @args while the daemon's loop keeps turning; output in `out`. */
static int run_ctl(struct bk_loop *loop, const char *const *args)
{
	return bk_ctlrun(loop, blanketctl, sock, args, 0, out, sizeof(out));
}

static bool within_1pct(uint64_t got, uint64_t want)
{
	uint64_t diff = got > want ? got - want : want - got;

	if (diff * 100 > want) {
		fprintf(stderr, "got %" PRIu64 ", want %" PRIu64 "\n", got, want);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	const char *engine = argc > 1 ? argv[1] : "null";
	const char *extra[] = { "blanket-engine", engine, NULL };
	struct bk_bf_params p = { .nr_queues = 2, .ring_order = 2, .pfn_count = 4096 };
	char dir[] = "/tmp/test-ctl-stats.XXXXXX", path[128];
	static uint8_t buf[64 * 512];
	uint64_t want_read = 0, want_written = 0, want_reads = 0, want_writes = 0;
	struct bk_service *svc = NULL;
	struct bk_blkfront *f = NULL;
	struct bk_bf_env env;
	const char *t;
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: test-ctl-stats ENGINE BLANKETCTL\n");
		return 1;
	}
	blanketctl = argv[2];
	if (bk_bf_engines_missing(engine, NULL))
		return 77;
	if (!mkdtemp(dir))
		return 1;
	fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x5a, path, sizeof(path));
	if (fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	CHECK(bk_bf_env_guest(&env, DOMID, 8192) == 0);
	CHECK(bk_bf_env_add_vbd(&env, DOMID, DEVID, path, "w", "disk", extra) == 0);
	CHECK(bk_bf_open(&env, DOMID, DEVID, &p, &f) == 0);
	if (!f)
		goto out;
	CHECK(bk_bf_connect(f) == 0);

	CHECK(bk_ctlrun_service(env.loop, env.core, dir, sock, sizeof(sock), &svc) == 0);
	if (bk_test_failures)
		goto out;

	/* The guest's I/O: writes on queue 0, reads on queue 1, sizes from 1 to 64 sectors, some
	 * indirect. */
	for (unsigned int i = 0; i < 400; i++) {
		uint32_t n = 1 + (i * 7) % 64;
		uint64_t sector = (i * 97) % (DISK_BYTES / 512 - 64);
		unsigned int q = i % 2;
		uint8_t op = q ? BLKIF_OP_READ : BLKIF_OP_WRITE;

		memset(buf, (int)i, sizeof(buf));
		CHECK(bk_bf_rw(f, q, op, sector, n, buf, i % 5 == 0) == BLKIF_RSP_OKAY);
		if (op == BLKIF_OP_READ) {
			want_read += n * 512ULL;
			want_reads++;
		} else {
			want_written += n * 512ULL;
			want_writes++;
		}
	}

	{
		const char *args[] = { "stats", "--json", "vbd 5/51712", NULL };

		CHECK(run_ctl(env.loop, args) == 0);
		t = strstr(out, "\"total\":{");
		CHECK(t != NULL);
		if (t) {
			CHECK(within_1pct(bk_ctlrun_json_u64(t, "bytes_read"), want_read));
			CHECK(within_1pct(bk_ctlrun_json_u64(t, "bytes_written"), want_written));
			CHECK(within_1pct(bk_ctlrun_json_u64(t, "read"), want_reads));
			CHECK(within_1pct(bk_ctlrun_json_u64(t, "write"), want_writes));
			CHECK(bk_ctlrun_json_u64(t, "inflight") == 0);
			CHECK(bk_ctlrun_json_u64(t, "errors") == 0);
			CHECK(bk_ctlrun_json_u64(t, "p50") > 0);
		}
		CHECK(strstr(out, "\"queue\":1") != NULL);
	}
	{
		const char *args[] = { "stats", NULL };

		CHECK(run_ctl(env.loop, args) == 0);
		CHECK(strstr(out, "vbd 5/51712 xvda  2 queues") != NULL);
		CHECK(strstr(out, "total") != NULL);
	}
	{
		const char *args[] = { "list", NULL };

		CHECK(run_ctl(env.loop, args) == 0);
		CHECK(strstr(out, "51712 (xvda)") != NULL);
		CHECK(strstr(out, path) != NULL);
		CHECK(strstr(out, "Connected") != NULL);
		printf("%s", out);
	}
	{
		const char *args[] = { "status", NULL };

		CHECK(run_ctl(env.loop, args) == 0);
		CHECK(strstr(out, "healthy") != NULL);
	}
	{
		const char *args[] = { "version", NULL };

		CHECK(run_ctl(env.loop, args) == 0);
		CHECK(strstr(out, "platform sim") != NULL);
	}
	{
		struct bk_device *dev = bk_core_find(env.core, "vbd", DOMID, DEVID);
		const char *args[] = { "status", NULL };

		CHECK(dev != NULL);
		if (dev)
			bk_device_fail(dev, -EIO, "injected failure for the status test");
		CHECK(run_ctl(env.loop, args) == 1);
		CHECK(strstr(out, "degraded") != NULL);
		CHECK(strstr(out, "injected failure for the status test") != NULL);
	}
out:
	bk_service_free(svc);
	bk_bf_close(f);
	bk_bf_env_free(&env);
	close(fd);
	unlink(path);
	rmdir(dir);
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
