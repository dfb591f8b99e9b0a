// SPDX-License-Identifier: MIT
/*
 * The daemon-wide bounce-pool budget (bounce-pool-budget): queues get their full pool while
 * the budget lasts, then a smaller one that still holds the largest request (logged, naming
 * the device and the numbers), and a queue that cannot get even that fails its device with a
 * clear error; the accounting returns to zero once every device disconnected. Also: the
 * per-slot segment arrays are sized by max-indirect-segments (the largest request of a lower
 * limit works; ASan checks the bounds).
 *
 * Usage: test-blkif-budget [ENGINE]  (default io_uring)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "check.h"
#include "conf.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "toolstack.h"
#include "util/log.h"
#include "xenbus_front.h"
#include "xen/xen.h"

#include "blkif/common.h"

#define DISK_BYTES (8U << 20)
#define MIB (1ULL << 20)

static struct bk_bf_env env;
static const char *engine = "io_uring";
static char path[64];
static uint8_t buf[256 * 4096], cmp[256 * 4096];

/* stderr (where the daemon logs) into a file while a test step runs. */
static char logpath[64];
static int saved_stderr = -1;

static void capture_begin(void)
{
	int fd;

	snprintf(logpath, sizeof(logpath), "/tmp/bk-budget-log-XXXXXX");
	fd = mkstemp(logpath);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* The captured text (malloc'd), echoed to the real stderr. */
static char *capture_end(void)
{
	char *text = calloc(1, 65536);
	ssize_t n = 0;
	int fd;

	if (saved_stderr < 0 || !text)
		return text;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	fd = open(logpath, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, 65535);
		close(fd);
	}
	unlink(logpath);
	text[n > 0 ? n : 0] = '\0';
	fputs(text, stderr);
	return text;
}

static void set_config(const char *const *kv)
{
	struct bk_config cfg;

	bk_config_defaults(&cfg);
	for (; *kv; kv++)
		CHECK(bk_config_set(&cfg, "test", *kv) == 0);
	bk_config_install(&cfg);
	bk_log_set_level(BK_LOG_WARNING);
}

/* Open and connect; with @refused, expect the backend to fail instead (Closing). */
static struct bk_blkfront *open_dev_x(uint32_t domid, unsigned int nq, bool refused, int *ret)
{
	const char *extra[] = { "blanket-engine", engine, NULL };
	struct bk_bf_params p = { .nr_queues = nq > 1 ? nq : 0, .pfn_count = 2048 };
	struct bk_blkfront *f = NULL;

	/* The guests share one image read-write on purpose (the pools are what is tested): "w!". */
	*ret = bk_bf_env_add_vbd(&env, domid, 51712, path, "w!", "disk", extra);
	if (*ret == 0)
		*ret = bk_bf_open(&env, domid, 51712, &p, &f);
	if (*ret == 0 && !refused)
		*ret = bk_bf_connect(f);
	if (*ret == 0 && refused) {
		if ((*ret = bk_bf_wait_initwait(f)) == 0 && (*ret = bk_bf_prepare(f)) == 0 &&
		    (*ret = bk_xbf_set_state(bk_bf_xbf(f), 3)) == 0) {
			unsigned int st = 0;

			for (int i = 0; i < 1000 && (st < 4 || st > 6); i++) {
				bk_loop_run_once(env.loop, 10);
				if (bk_xbf_be_state(bk_bf_xbf(f), &st) < 0)
					st = 0;
			}
			*ret = st == 5 || st == 6 ? 0 : -EPROTO;
		}
	}
	return f;
}

static struct bk_blkfront *open_dev(uint32_t domid, unsigned int nq, int *ret)
{
	return open_dev_x(domid, nq, false, ret);
}

/* The largest request the device allows, written then read back on queue @q. */
static int largest_io(struct bk_blkfront *f, unsigned int q, unsigned int segs, uint8_t fill)
{
	memset(buf, fill, segs * 4096);
	memset(cmp, 0, sizeof(cmp));
	if (bk_bf_rw(f, q, BLKIF_OP_WRITE, 64, segs * 8, buf, true) != BLKIF_RSP_OKAY)
		return -EIO;
	if (bk_bf_rw(f, q, BLKIF_OP_READ, 64, segs * 8, cmp, true) != BLKIF_RSP_OKAY)
		return -EIO;
	return memcmp(buf, cmp, segs * 4096) == 0 ? 0 : -EILSEQ;
}

static void test_budget(void)
{
	static const char *const kv[] = { "bounce-pool-size=4M", "bounce-pool-budget=10M",
					  "queues=4", NULL };
	struct bk_blkfront *a, *b, *c, *d, *e;
	_cleanup_free_ char *be = NULL, *err = NULL;
	char *log;
	int r;

	set_config(kv);
	CHECK(blkif_pool_bytes_in_use() == 0);

	/* 2 queues of 4M: 8M of 10M. */
	a = open_dev(7, 2, &r);
	CHECK(r == 0);
	CHECK(blkif_pool_bytes_in_use() == 8 * MIB);

	/* 3 queues need 3 x 1M (the largest request) and 2M is left: refused, nothing held. */
	capture_begin();
	e = open_dev_x(12, 3, true, &r);
	log = capture_end();
	CHECK(r == 0); /* Closing, not Connected */
	CHECK(log && strstr(log, "vbd 12/51712: q0: bounce-pool-budget exhausted: 8192 KiB in use "
				 "of 10240 KiB by 2 pools, 3 queue(s) to set up need 1024 KiB "
				 "each"));
	CHECK(log && !strstr(log, "degraded"));
	free(log);
	be = bk_ts_be_path(env.ts, "vbd", 12, 51712);
	CHECK(be && bk_xs_read_str(bk_ts_xs(env.ts), BK_XS_NULL, be, "error", &err) == 0);
	CHECK(err && strstr(err, "bounce-pool-budget exhausted"));
	if (err)
		fprintf(stderr, "vbd 12/51712 error node: %s\n", err);
	CHECK(blkif_pool_bytes_in_use() == 8 * MIB);
	bk_bf_close(e);

	/* 2 queues fit degraded: 1M each, and both serve the largest request (256 x 4K). */
	capture_begin();
	b = open_dev(8, 2, &r);
	log = capture_end();
	CHECK(r == 0);
	CHECK(log && strstr(log, "vbd 8/51712: q0: bounce-pool-budget nearly exhausted (8192 KiB "
				 "of 10240 KiB held by 2 pools): degraded to a pool of 1024 KiB "
				 "instead of 4096 KiB"));
	CHECK(log && strstr(log, "vbd 8/51712: q1: bounce-pool-budget nearly exhausted (9216 KiB "
				 "of 10240 KiB held by 3 pools): degraded to a pool of 1024 KiB"));
	free(log);
	CHECK(blkif_pool_bytes_in_use() == 10 * MIB);
	if (b) {
		CHECK(largest_io(b, 0, 256, 0x5a) == 0);
		CHECK(largest_io(b, 1, 256, 0x5b) == 0);
	}
	if (a)
		CHECK(largest_io(a, 1, 256, 0xa5) == 0);

	/* Nothing left: refused. */
	capture_begin();
	c = open_dev_x(9, 1, true, &r);
	log = capture_end();
	CHECK(r == 0);
	CHECK(log && strstr(log, "vbd 9/51712: q0: bounce-pool-budget exhausted: 10240 KiB in use "
				 "of 10240 KiB by 4 pools"));
	free(log);
	CHECK(blkif_pool_bytes_in_use() == 10 * MIB);
	bk_bf_close(c);

	/* Everything back after the disconnects; then a device gets its whole pools again. */
	CHECK(a && bk_bf_disconnect(a) == 0);
	CHECK(blkif_pool_bytes_in_use() == 2 * MIB);
	CHECK(b && bk_bf_disconnect(b) == 0);
	CHECK(blkif_pool_bytes_in_use() == 0);
	capture_begin();
	d = open_dev(10, 2, &r);
	log = capture_end();
	CHECK(r == 0);
	CHECK(log && !strstr(log, "bounce-pool-budget"));
	free(log);
	CHECK(blkif_pool_bytes_in_use() == 8 * MIB);
	CHECK(d && bk_bf_disconnect(d) == 0);
	CHECK(blkif_pool_bytes_in_use() == 0);
	bk_bf_close(a);
	bk_bf_close(b);
	bk_bf_close(d);
}

/* A lower indirect limit: the largest request fits the smaller per-slot segment arrays. */
static void test_small_indirect(void)
{
	static const char *const kv[] = { "max-indirect-segments=32", NULL };
	struct bk_blkfront *f;
	uint64_t segs = 0;
	int r;

	set_config(kv);
	f = open_dev(11, 1, &r);
	CHECK(r == 0);
	if (!f)
		return;
	CHECK(bk_bf_feature(f, "feature-max-indirect-segments", &segs) == 0 && segs == 32);
	CHECK(largest_io(f, 0, 32, 0x3c) == 0);
	/* One more segment is refused, not written past the array. */
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, 33 * 8, buf, true) == BLKIF_RSP_ERROR);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
	CHECK(blkif_pool_bytes_in_use() == 0);
}

int main(int argc, char **argv)
{
	int fd;

	if (argc > 1)
		engine = argv[1];
	if (bk_bf_engines_missing(engine, NULL))
		return 77;
	fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, path, sizeof(path));
	if (fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	for (uint32_t domid = 7; domid <= 12; domid++)
		CHECK(bk_bf_env_guest(&env, domid, 4096) == 0);
	test_budget();
	test_small_indirect();
	bk_bf_env_free(&env);
	close(fd);
	unlink(path);
	CHECK(blkif_pool_bytes_in_use() == 0);
	return bk_test_exit();
}
