// SPDX-License-Identifier: MIT
/*
 * Shared-image safety (issue 11 item 2), as Xen's block script decides it but from what the
 * daemon really has open (never from xenstore leftovers):
 *
 * - an image open read-write for one guest is refused to any other guest, with a log line and
 *   an error node that name the image and the guest (domid, vbd) holding it;
 * - read-only next to read-only is allowed; read-only next to read-write is refused either way
 *   round (the block script refuses "r" when another guest has it "w", and "w" when another
 *   guest has it at all);
 * - mode "w!" (what xend wrote; xl only writes "w" or "r") and the blanket-share=on setting
 *   force sharing;
 * - the same guest may open its image twice;
 * - a guest destroyed with I/O in flight releases its claim when its device is torn down, and a
 *   second guest asking for the image while that I/O still drains waits for the release (its
 *   device stays in InitWait) and then connects, instead of being refused; the wait is bounded
 *   (share-wait-ms), after which it is refused naming the image and the holder;
 * - a loop device and its backing file are the same image;
 * - a restarted daemon adopting two connected guests that share an image read-write (a
 *   previous run allowed it: w! since dropped, or an older version) keeps serving both, with a
 *   warning, instead of taking a running guest's disk away.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "conf.h"
#include "blkif/blkif.h"
#include "check.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

#define DISK_BYTES (2U << 20)
#define DEVID 51712

static struct bk_bf_env env;
static uint8_t buf[4096], cmp[4096];

static void err_node(uint32_t domid, uint32_t devid, char *val, size_t len)
{
	bk_ts_read_be(env.ts, "vbd", domid, devid, "error", val, len);
}

static struct bk_blkfront *connect_front(uint32_t domid, uint32_t devid)
{
	struct bk_bf_params p = { .pfn_base = (devid % 4) * 512, .pfn_count = 512 };

	return bk_bf_open_connect(&env, domid, devid, &p);
}

/* Attach and connect; write and read back unless read-only. */
static struct bk_blkfront *attach_ok(uint32_t domid, uint32_t devid, const char *path,
				     const char *mode, const char *const *extra)
{
	struct bk_blkfront *f;
	int r = bk_bf_env_add_vbd(&env, domid, devid, path, mode, "disk", extra);

	CHECK(r == 0);
	if (r < 0) {
		char e[256];

		err_node(domid, devid, e, sizeof(e));
		fprintf(stderr, "guest %u refused: %s\n", domid, e);
		bk_ts_remove(env.ts, "vbd", domid, devid);
		return NULL;
	}
	f = connect_front(domid, devid);
	CHECK(f != NULL);
	if (!f)
		return NULL;
	if (mode[0] == 'w') {
		memset(cmp, (int)domid, sizeof(cmp));
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 8 * domid, 8, cmp, false) == BLKIF_RSP_OKAY);
	}
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 8 * domid, 8, buf, false) == BLKIF_RSP_OKAY);
	return f;
}

/* The attach is refused with an error node naming @path and the holder. */
static void attach_refused(uint32_t domid, uint32_t devid, const char *path, const char *mode,
			   uint32_t holder, uint32_t holder_devid)
{
	char e[512], want[64];
	int r = bk_bf_env_add_vbd(&env, domid, devid, path, mode, "disk", NULL);

	CHECK(r < 0);
	err_node(domid, devid, e, sizeof(e));
	printf("guest %u, %s, mode %s: %s\n", domid, path, mode, e[0] ? e : "(no error node)");
	CHECK(strstr(e, path) != NULL);
	snprintf(want, sizeof(want), "guest %u ", holder);
	CHECK(strstr(e, want) != NULL);
	snprintf(want, sizeof(want), "vbd %u/%u", holder, holder_devid);
	CHECK(strstr(e, want) != NULL);
	CHECK(bk_ts_remove(env.ts, "vbd", domid, devid) == 0);
}

static void detach(struct bk_blkfront *f, uint32_t domid, uint32_t devid)
{
	if (f) {
		CHECK(bk_bf_disconnect(f) == 0);
		bk_bf_close(f);
	}
	CHECK(bk_ts_remove(env.ts, "vbd", domid, devid) == 0);
}

static unsigned int inflight(uint32_t domid, uint32_t devid)
{
	return bk_bf_env_inflight(&env, domid, devid);
}

static bool drained_21(void *data)
{
	(void)data;
	return inflight(21, DEVID) == 0;
}

/* Writes held this long by the fault engine: what a dead guest's device still drains. */
static const char *const slow[] = { "blanket-engine", "fault", "blanket-options",
				    "delay=1500ms:write", NULL };

/* Queue 8 writes on @f and let the backend take them (held in the fault engine). */
static void queue_writes(struct bk_blkfront *f, uint32_t domid)
{
	static uint8_t bufs[8][4096];
	static struct bk_bf_io ios[8];

	memset(ios, 0, sizeof(ios));
	for (int i = 0; i < 8; i++) {
		ios[i].op = BLKIF_OP_WRITE;
		ios[i].sector = 8 * (uint64_t)i;
		ios[i].nr_sectors = 8;
		ios[i].data = bufs[i];
		CHECK(bk_bf_queue(f, 0, &ios[i]) == 0);
	}
	bk_bf_push(f, 0);
	for (int k = 0; k < 20 && inflight(domid, DEVID) < 8; k++)
		bk_loop_run_once(env.loop, 0);
	CHECK(inflight(domid, DEVID) == 8);
}

static void set_share_wait(const char *ms)
{
	struct bk_config cfg;
	char kv[64];

	snprintf(kv, sizeof(kv), "share-wait-ms = %s", ms);
	bk_config_defaults(&cfg);
	CHECK(bk_config_set(&cfg, "test", kv) == 0);
	bk_config_install(&cfg);
}

/*
 * The wait is bounded: with share-wait-ms = 300, a holder that drains for 1.5 s makes the new
 * guest refused after the bound, naming the image and the holder.
 */
static void test_wait_bounded(const char *path)
{
	struct bk_blkfront *g21 = attach_ok(21, DEVID, path, "w", slow);
	char e[512];

	if (!g21)
		return;
	set_share_wait("300");
	queue_writes(g21, 21);
	CHECK(bk_ts_guest_destroyed(env.ts, 21) == 0);
	bk_bf_close(g21);
	CHECK(bk_bf_env_add_vbd(&env, 22, DEVID, path, "w", "disk", NULL) < 0);
	CHECK(inflight(21, DEVID) > 0); /* refused while the holder still drained */
	err_node(22, DEVID, e, sizeof(e));
	printf("guest 22 after the bound: %s\n", e);
	CHECK(strstr(e, path) != NULL);
	CHECK(strstr(e, "guest 21 ") != NULL);
	CHECK(strstr(e, "still finishing its I/O") != NULL);
	CHECK(bk_ts_remove(env.ts, "vbd", 22, DEVID) == 0);
	CHECK(bk_test_pump_until(env.loop, drained_21, NULL, 10000) == 0);
	bk_ts_remove(env.ts, "vbd", 21, DEVID);
	set_share_wait("30000");
}

/* A loop device and its backing file are one image (skipped without loop devices). */
static void test_loop_device(const char *path)
{
	char cmd[PATH_MAX + 64], loop[64] = "";
	struct bk_blkfront *g23;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", path);
	p = geteuid() == 0 ? popen(cmd, "r") : NULL;
	if (!p || !fgets(loop, sizeof(loop), p) || loop[0] != '/') {
		if (p)
			pclose(p);
		printf("no loop device: loop check skipped\n");
		return;
	}
	pclose(p);
	loop[strcspn(loop, "\n")] = '\0';
	g23 = attach_ok(23, DEVID, loop, "w", NULL);
	if (g23) {
		attach_refused(12, DEVID, path, "w", 23, DEVID);
		detach(g23, 23, DEVID);
	}
	g23 = attach_ok(23, DEVID, path, "w", NULL);
	if (g23) {
		attach_refused(12, DEVID, loop, "w", 23, DEVID);
		detach(g23, 23, DEVID);
	}
	snprintf(cmd, sizeof(cmd), "losetup -d %s", loop);
	CHECK(system(cmd) == 0);
}

static bool stopped_flag;

static void stopped(void *data)
{
	stopped_flag = true;
}

static bool is_stopped(void *data)
{
	return stopped_flag;
}

/* systemctl restart: the daemon hands over (guests stay Connected), a new one adopts them. */
static void restart_daemon(void)
{
	struct bk_core_params cp = { .loop = env.loop, .watch_coalesce_ms = 0 };

	stopped_flag = false;
	bk_core_stop(env.core, stopped, NULL);
	CHECK(bk_test_pump_until(env.loop, is_stopped, NULL, 3000) == 0);
	bk_core_free(env.core);
	env.core = NULL;
	bk_xen_free(env.xen);
	env.xen = NULL;
	CHECK(bk_sim_platform(env.sim, 0, &env.xen) == 0);
	cp.xen = env.xen;
	CHECK(bk_core_new(&cp, &env.core) == 0);
	CHECK(bk_core_register(env.core, &blkif_backend_ops) == 0);
	CHECK(bk_core_start(env.core) == 0);
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(env.loop, 0);
}

static void test_adopt_shared(const char *path)
{
	struct bk_blkfront *g19 = attach_ok(19, DEVID, path, "w!", NULL);
	struct bk_blkfront *g20 = attach_ok(20, DEVID, path, "w!", NULL);

	if (!g19 || !g20)
		return;
	/* The operator drops the force meanwhile (or the previous daemon had no check). */
	CHECK(bk_ts_write_be(env.ts, "vbd", 20, DEVID, "mode", "w") == 0);
	restart_daemon();
	CHECK(bk_core_find(env.core, "vbd", 19, DEVID) != NULL);
	CHECK(bk_core_find(env.core, "vbd", 20, DEVID) != NULL);
	memset(cmp, 0x20, sizeof(cmp));
	CHECK(bk_bf_rw(g20, 0, BLKIF_OP_WRITE, 160, 8, cmp, false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(g19, 0, BLKIF_OP_READ, 160, 8, buf, false) == BLKIF_RSP_OKAY);
	CHECK(memcmp(buf, cmp, sizeof(buf)) == 0);
	/* A new guest is still refused: the kept claims count. */
	detach(g19, 19, DEVID);
	attach_refused(12, DEVID, path, "w", 20, DEVID);
	detach(g20, 20, DEVID);
}

int main(void)
{
	char p1[64], p2[64], a[PATH_MAX], b[PATH_MAX];
	const char *share[] = { "blanket-share", "on", NULL };
	struct bk_blkfront *g11, *g13, *g14, *f;
	int fd1 = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, p1, sizeof(p1));
	int fd2 = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, p2, sizeof(p2));

	if (fd1 < 0 || fd2 < 0 || !realpath(p1, a) || !realpath(p2, b) || bk_bf_env_new(&env) < 0)
		return 1;
	close(fd1);
	close(fd2);
	if (!bk_engine_find("fault")) {
		fprintf(stderr, "no fault engine\n");
		return 77;
	}
	for (uint32_t d = 11; d <= 23; d++)
		CHECK(bk_bf_env_guest(&env, d, 4096) == 0);

	/* rw + rw: the second guest is refused, naming the image and guest 11's vbd. */
	g11 = attach_ok(11, DEVID, a, "w", slow);
	attach_refused(12, DEVID, a, "w", 11, DEVID);
	/* rw, then ro: refused too (the holder's writes would change what the reader sees). */
	attach_refused(12, DEVID + 16, a, "r", 11, DEVID);
	/* The same guest may open its own image again (the block script's same_vm). */
	f = attach_ok(11, DEVID + 16, a, "w", NULL);
	detach(f, 11, DEVID + 16);

	/* ro + ro is allowed; rw next to them is refused. */
	g13 = attach_ok(13, DEVID, b, "r", NULL);
	g14 = attach_ok(14, DEVID, b, "r", NULL);
	attach_refused(15, DEVID, b, "w", 13, DEVID);
	detach(g13, 13, DEVID);
	attach_refused(15, DEVID, b, "w", 14, DEVID);
	detach(g14, 14, DEVID);
	/* Once both readers are gone, a writer gets it. */
	f = attach_ok(15, DEVID, b, "w", NULL);
	detach(f, 15, DEVID);

	/* Forced sharing: mode "w!" and blanket-share=on, next to guest 11's rw claim. */
	f = attach_ok(16, DEVID, a, "w!", NULL);
	detach(f, 16, DEVID);
	f = attach_ok(17, DEVID, a, "w", share);
	detach(f, 17, DEVID);

	/*
	 * Guest 11 destroyed with writes in flight (held 1.5 s by the fault engine): guest 18 asks
	 * for the image at once, while they drain. It waits for the release, then connects.
	 */
	if (g11) {
		queue_writes(g11, 11);
		CHECK(bk_ts_guest_destroyed(env.ts, 11) == 0);
		bk_bf_close(g11);
		CHECK(inflight(11, DEVID) > 0);
		f = attach_ok(18, DEVID, a, "w", NULL);
		CHECK(inflight(11, DEVID) == 0);
		detach(f, 18, DEVID);
		/* libxl removes the dead guest's backend directory. */
		bk_ts_remove(env.ts, "vbd", 11, DEVID);
	}
	test_wait_bounded(a);
	test_loop_device(a);

	test_adopt_shared(b);

	bk_bf_env_free(&env);
	unlink(p1);
	unlink(p2);
	return bk_test_exit();
}
