// SPDX-License-Identifier: MIT
/*
 * blkif teardown with I/O in flight (the fault engine holds requests back): frontend
 * disconnect then reconnect, toolstack removal of a connected device, and a guest destroyed
 * under the backend's feet. Nothing may be used after free (ASan), every grant mapping and
 * event channel must be released, and another guest's disk keeps serving all along.
 *
 * Usage: test-blkif-teardown [ENGINE]  (the engine under the fault engine, default io_uring)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xenbus_front.h"
#include "check.h"

#define DISK_BYTES (4U << 20)
#define VICTIM 9
#define BYSTANDER 10
#define NR_IOS 16

static struct bk_bf_env env;
static char opts[128];
static uint8_t bufs[NR_IOS][2 * 4096];
static struct bk_bf_io ios[NR_IOS];

static struct bk_blkfront *attach(uint32_t domid, uint32_t devid, const char *path, bool slow)
{
	const char *slow_extra[] = { "blanket-engine", "fault", "blanket-options", opts, NULL };
	struct bk_bf_params p = { .pfn_base = 0, .pfn_count = 1024 };

	if (bk_bf_env_add_vbd(&env, domid, devid, path, "w", "disk", slow ? slow_extra : NULL) < 0)
		return NULL;
	return bk_bf_open_connect(&env, domid, devid, &p);
}

static unsigned int inflight(uint32_t domid, uint32_t devid)
{
	return bk_bf_env_inflight(&env, domid, devid);
}

/* Put NR_IOS reads and writes in flight on @f and pump until the backend holds them all. */
static void fill_inflight(struct bk_blkfront *f, uint32_t domid, uint32_t devid)
{
	memset(ios, 0, sizeof(ios));
	for (int i = 0; i < NR_IOS; i++) {
		ios[i].op = (i & 1) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
		ios[i].sector = 16 * (uint64_t)i;
		ios[i].nr_sectors = 16;
		ios[i].data = bufs[i];
		CHECK(bk_bf_queue(f, 0, &ios[i]) == 0);
	}
	bk_bf_push(f, 0);
	for (int k = 0; k < 5 && inflight(domid, devid) < NR_IOS; k++)
		bk_loop_run_once(env.loop, 0);
	CHECK(inflight(domid, devid) == NR_IOS);
}

/* The bystander still reads and writes. */
static void bystander_ok(struct bk_blkfront *b)
{
	static uint8_t w[4096], r[4096];

	memset(w, (int)(rand() & 0xff), sizeof(w));
	CHECK(bk_bf_rw(b, 0, BLKIF_OP_WRITE, 64, 8, w, false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(b, 0, BLKIF_OP_READ, 64, 8, r, false) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(w, r, sizeof(w)));
}

static bool device_gone(void *data)
{
	uint32_t *ids = data;

	return bk_core_find(env.core, "vbd", ids[0], ids[1]) == NULL;
}

static void test_disconnect_reconnect(struct bk_blkfront *b, const char *path)
{
	struct bk_blkfront *f = attach(VICTIM, 1, path, true);
	unsigned int st = 0;

	CHECK(f != NULL);
	if (!f)
		return;
	fill_inflight(f, VICTIM, 1);
	/* The frontend goes away with 16 requests in the engine. */
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_CLOSING) == 0);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_CLOSED) == 0);
	bk_loop_run_once(env.loop, 0);
	bk_loop_run_once(env.loop, 0);
	/* Closed only once drained: the rings stay mapped until then. */
	CHECK(bk_xbf_be_state(bk_bf_xbf(f), &st) == 0);
	if (st == BK_XB_CLOSED)
		CHECK(inflight(VICTIM, 1) == 0);
	else
		CHECK(bk_sim_guest_nr_mapped(env.sim, VICTIM) > 0);
	bystander_ok(b);
	CHECK(bk_xbf_wait_be_state(bk_bf_xbf(f), BK_XB_CLOSED, 0) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, VICTIM) == 0);
	CHECK(bk_bf_bad_padding(f) == 0);

	/* Reconnect (kexec, suspend/resume): Initialising -> InitWait -> fresh rings. */
	bk_bf_reset(f);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_INITIALISING) == 0);
	CHECK(bk_bf_connect(f) == 0);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, bufs[0], false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_disconnect(f) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, VICTIM) == 0);
	bk_bf_close(f);
	/* libxl removal of an already Closed device: it writes Closing over it, wants Closed. */
	CHECK(bk_ts_remove(env.ts, "vbd", VICTIM, 1) == 0);
	CHECK(bk_test_pump_until(env.loop, device_gone, (uint32_t[]){ VICTIM, 1 }, 0) == 0);
}

static void test_toolstack_remove(struct bk_blkfront *b, const char *path)
{
	struct bk_blkfront *f = attach(VICTIM, 2, path, true);

	CHECK(f != NULL);
	if (!f)
		return;
	fill_inflight(f, VICTIM, 2);
	/* libxl: online=0, state=5, wait for 6, remove the directories. */
	CHECK(bk_ts_remove(env.ts, "vbd", VICTIM, 2) == 0);
	CHECK(bk_test_pump_until(env.loop, device_gone, (uint32_t[]){ VICTIM, 2 }, 0) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, VICTIM) == 0);
	bystander_ok(b);
	bk_bf_close(f);
}

static void test_guest_destroyed(struct bk_blkfront *b, const char *path)
{
	struct bk_blkfront *f = attach(VICTIM, 3, path, true);
	struct bk_sim_counts c;

	CHECK(f != NULL);
	if (!f)
		return;
	fill_inflight(f, VICTIM, 3);
	CHECK(bk_ts_guest_destroyed(env.ts, VICTIM) == 0);
	bystander_ok(b);
	CHECK(bk_test_pump_until(env.loop, device_gone, (uint32_t[]){ VICTIM, 3 }, 0) == 0);
	bk_bf_close(f);
	bk_sim_counts(env.sim, &c);
	/* Only the bystander's ring page stays mapped, with its one event channel. */
	CHECK(c.gnt_mapped_pages == 1);
	CHECK(c.evtchn_bound == 1);
	bystander_ok(b);
}

/*
 * A barrier waits for what was submitted before it: write A is held back 50 ms by the fault
 * engine, the barrier B writes the same sector right after. Without the drain B would land
 * first and A would win; with it the disk ends up holding B.
 */
static void test_barrier_order(const char *path, const char *inner)
{
	char o[96];
	const char *extra[] = { "blanket-engine", "fault", "blanket-options", o, NULL };
	struct bk_bf_params p = { .pfn_base = 0, .pfn_count = 1024 };
	struct bk_blkfront *f = NULL;
	static uint8_t a[4096], b[4096], r[4096];
	struct bk_bf_io ia = { 0 }, ib = { 0 };

	snprintf(o, sizeof(o), "inner=%s,delay=50ms:write:count=1", inner);
	CHECK(bk_bf_env_add_vbd(&env, VICTIM, 4, path, "w", "disk", extra) == 0);
	CHECK(bk_bf_open(&env, VICTIM, 4, &p, &f) == 0);
	if (!f)
		return;
	CHECK(bk_bf_connect(f) == 0);
	memset(a, 0xAA, sizeof(a));
	memset(b, 0xBB, sizeof(b));
	ia.op = BLKIF_OP_WRITE;
	ia.sector = 800;
	ia.nr_sectors = 8;
	ia.data = a;
	ib.op = BLKIF_OP_WRITE_BARRIER;
	ib.sector = 800;
	ib.nr_sectors = 8;
	ib.data = b;
	CHECK(bk_bf_queue(f, 0, &ia) == 0);
	CHECK(bk_bf_queue(f, 0, &ib) == 0);
	bk_bf_push(f, 0);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	CHECK(ia.status == BLKIF_RSP_OKAY && ib.status == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 800, 8, r, false) == BLKIF_RSP_OKAY);
	CHECK(r[0] == 0xBB && r[4095] == 0xBB);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
	CHECK(bk_ts_remove(env.ts, "vbd", VICTIM, 4) == 0);
}

int main(int argc, char **argv)
{
	const char *inner = argc > 1 ? argv[1] : "io_uring";
	struct bk_blkfront *b;
	char path[64], path2[64];
	int fd, fd2;

	if (bk_bf_engines_missing(inner, "fault", NULL))
		return 77;
	snprintf(opts, sizeof(opts), "inner=%s,delay=1000ms", inner);
	fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x11, path, sizeof(path));
	fd2 = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x22, path2, sizeof(path2));
	if (fd < 0 || fd2 < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	CHECK(bk_bf_env_guest(&env, VICTIM, 2048) == 0);
	CHECK(bk_bf_env_guest(&env, BYSTANDER, 2048) == 0);
	b = attach(BYSTANDER, 51712, path2, false);
	CHECK(b != NULL);
	if (b) {
		test_disconnect_reconnect(b, path);
		test_toolstack_remove(b, path);
		test_barrier_order(path, inner);
		test_guest_destroyed(b, path);
		CHECK(bk_bf_bad_padding(b) == 0);
		CHECK(bk_bf_disconnect(b) == 0);
		bk_bf_close(b);
	}
	bk_bf_env_free(&env);
	close(fd);
	close(fd2);
	unlink(path);
	unlink(path2);
	if (bk_test_failures) {
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
