// SPDX-License-Identifier: MIT
/*
 * blkif device modes through the simulation: a read-only disk refuses writes and discards
 * (info has VDISK_READONLY), a cdrom (info has VDISK_CDROM, read-only), a backing store that
 * fails with EIO (fault engine) answers that request with BLKIF_RSP_ERROR and keeps serving,
 * barrier ordering and the flush before a barrier's data (fault engine holding I/O),
 * the null engine, unknown engine / mode / device-type values refuse the device only, and a
 * guest's protocol string cannot forge log lines.
 *
 * Usage: test-blkif-modes [ENGINE]  (the engine the fault engine wraps, default io_uring)
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
#include "util/log.h"
#include "xen/sim.h"
#include "xenbus_front.h"
#include "check.h"

#define DISK_BYTES (4U << 20)

static struct bk_bf_env env;
static uint8_t buf[64 * 4096], cmp[64 * 4096];

/* Add, open, connect a device of guest @domid on pages [base, base + 1024). */
static struct bk_blkfront *attach(uint32_t domid, uint32_t devid, const char *path,
				  const char *mode, const char *type, const char *const *extra)
{
	struct bk_bf_params p = { .pfn_base = (devid % 8) * 1024, .pfn_count = 1024 };

	if (bk_bf_env_add_vbd(&env, domid, devid, path, mode, type, extra) < 0)
		return NULL;
	return bk_bf_open_connect(&env, domid, devid, &p);
}

static void test_readonly(uint32_t domid, const char *path)
{
	struct bk_blkfront *f = attach(domid, 1, path, "r", "disk", NULL);
	struct bk_bf_io io = { 0 };
	uint64_t info = 0, discard = 9;

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(bk_bf_feature(f, "info", &info) == 0 && info == VDISK_READONLY);
	CHECK(bk_bf_feature(f, "feature-discard", &discard) == 0 && discard == 0);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	CHECK(buf[0] == 0x11 && buf[4095] == 0x11);
	memset(buf, 0x22, sizeof(buf));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, 8, buf, false) == BLKIF_RSP_ERROR);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, 12 * 8, buf, true) == BLKIF_RSP_ERROR);
	io.op = BLKIF_OP_WRITE_BARRIER;
	io.nr_sectors = 8;
	io.data = buf;
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_ERROR);
	memset(&io, 0, sizeof(io));
	io.op = BLKIF_OP_DISCARD;
	io.nr_sectors = 8;
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_EOPNOTSUPP);
	/* A flush without data is harmless on a read-only disk. */
	memset(&io, 0, sizeof(io));
	io.op = BLKIF_OP_FLUSH_DISKCACHE;
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_OKAY);
	/* Nothing was written. */
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	CHECK(buf[0] == 0x11);
	CHECK(bk_bf_bad_padding(f) == 0);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

static void test_cdrom(uint32_t domid, const char *path)
{
	struct bk_blkfront *f = attach(domid, 2, path, "r", "cdrom", NULL);
	uint64_t info = 0;

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(bk_bf_feature(f, "info", &info) == 0);
	CHECK(info & VDISK_CDROM);
	CHECK(info & VDISK_READONLY);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 8, 16, buf, false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 8, 8, buf, false) == BLKIF_RSP_ERROR);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

/* Reads of the second 64 KiB fail with EIO, everything else works. */
static void test_fault(uint32_t domid, const char *path, const char *inner)
{
	char opts[128];
	const char *extra[] = { "blanket-engine", "fault", "blanket-options", opts, NULL };
	struct bk_blkfront *f;
	struct bk_bf_io ios[3];
	struct bk_device *dev;
	struct bk_queue_stats qs;

	snprintf(opts, sizeof(opts), "inner=%s,fail=read:offset=65536-131071", inner);
	f = attach(domid, 3, path, "w", "disk", extra);
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 128, 8, buf, false) == BLKIF_RSP_ERROR);
	/* Three in one batch: only the middle one fails. */
	memset(ios, 0, sizeof(ios));
	for (int i = 0; i < 3; i++) {
		ios[i].op = BLKIF_OP_READ;
		ios[i].sector = 64 + 128 * (uint64_t)i; /* 32 KiB, 96 KiB, 160 KiB */
		ios[i].nr_sectors = 8;
		ios[i].data = buf + i * 4096;
		CHECK(bk_bf_queue(f, 0, &ios[i]) == 0);
	}
	bk_bf_push(f, 0);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	CHECK(ios[0].status == BLKIF_RSP_OKAY && ios[1].status == BLKIF_RSP_ERROR &&
	      ios[2].status == BLKIF_RSP_OKAY);
	/* Writes there still work, and the device keeps serving. */
	memset(cmp, 0x33, 4096);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 128, 8, cmp, false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 256, 8, buf, false) == BLKIF_RSP_OKAY);
	dev = bk_core_find(env.core, "vbd", domid, 3);
	CHECK(dev && dev->ops->get_stats(dev, &qs, 1) == 1 && qs.errors == 2);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

/* The sectors the barrier tests use, 2 MiB into the image (the others stay below 1 MiB). */
#define BAR_SECTOR 4096U
#define BAR_OFFSET(sector) ((uint64_t)(sector)*512U)

static void set_io(struct bk_bf_io *io, uint8_t op, uint64_t sector, uint32_t nr_sectors,
		   uint8_t *data)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->sector = sector;
	io->nr_sectors = nr_sectors;
	io->data = data;
}

/* A fault-engine device whose engine options are @rules after "inner=@inner,". */
static struct bk_blkfront *attach_fault(uint32_t domid, uint32_t devid, const char *path,
					const char *inner, const char *rules)
{
	static char opts[256];
	const char *extra[] = { "blanket-engine", "fault", "blanket-options", opts, NULL };

	snprintf(opts, sizeof(opts), "inner=%s,%s", inner, rules);
	return attach(domid, devid, path, "w", "disk", extra);
}

/*
 * A barrier refused at admission (beyond the end of the disk) must not release a valid barrier
 * taken behind it: the write that follows the valid barrier starts only once the barrier is
 * answered. The barrier's own write is held 300 ms, so a write started alongside it is
 * answered first and then overwritten by the barrier's data.
 */
static void test_barrier_refused(uint32_t domid, const char *path, const char *inner)
{
	static uint8_t a[4096], b[4096], rd[4096];
	char rules[128];
	struct bk_bf_io ios[3];
	struct bk_blkfront *f;

	snprintf(rules, sizeof(rules), "delay=300ms:write:offset=%llu-%llu:count=1",
		 (unsigned long long)BAR_OFFSET(BAR_SECTOR),
		 (unsigned long long)BAR_OFFSET(BAR_SECTOR + 8) - 1);
	f = attach_fault(domid, 20, path, inner, rules);
	CHECK(f != NULL);
	if (!f)
		return;
	memset(a, 0xA1, sizeof(a));
	memset(b, 0xB2, sizeof(b));
	set_io(&ios[0], BLKIF_OP_WRITE_BARRIER, DISK_BYTES / 512, 8, a); /* past the end */
	set_io(&ios[1], BLKIF_OP_WRITE_BARRIER, BAR_SECTOR, 8, a);
	set_io(&ios[2], BLKIF_OP_WRITE, BAR_SECTOR, 8, b);
	for (int i = 0; i < 3; i++)
		CHECK(bk_bf_queue(f, 0, &ios[i]) == 0);
	bk_bf_push(f, 0);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	printf("barrier behind a refused one: statuses %d %d %d, answered as %u %u %u\n",
	       ios[0].status, ios[1].status, ios[2].status, ios[0].rsp_seq, ios[1].rsp_seq,
	       ios[2].rsp_seq);
	CHECK(ios[0].status == BLKIF_RSP_ERROR);
	CHECK(ios[1].status == BLKIF_RSP_OKAY && ios[2].status == BLKIF_RSP_OKAY);
	CHECK(ios[2].rsp_seq > ios[1].rsp_seq);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, BAR_SECTOR, 8, rd, false) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(rd, b, sizeof(rd)));
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

/*
 * A barrier or flush carrying data flushes before its write (REQ_PREFLUSH, as blkback): when
 * that flush fails, the request fails and its data is not written.
 */
static void test_barrier_preflush(uint32_t domid, const char *path, const char *inner)
{
	static uint8_t c[4096], rd[4096], orig[4096];
	struct bk_bf_io io;
	struct bk_blkfront *f = attach_fault(domid, 21, path, inner, "fail=flush:count=2");

	CHECK(f != NULL);
	if (!f)
		return;
	memset(c, 0xC3, sizeof(c));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, BAR_SECTOR + 16, 8, orig, false) == BLKIF_RSP_OKAY);
	CHECK(memcmp(orig, c, sizeof(c)) != 0);
	set_io(&io, BLKIF_OP_WRITE_BARRIER, BAR_SECTOR + 16, 8, c);
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_ERROR);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, BAR_SECTOR + 16, 8, rd, false) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(rd, orig, sizeof(rd)));
	set_io(&io, BLKIF_OP_FLUSH_DISKCACHE, BAR_SECTOR + 16, 8, c);
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_ERROR);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, BAR_SECTOR + 16, 8, rd, false) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(rd, orig, sizeof(rd)));
	/* The flushes work again: both write their data. */
	set_io(&io, BLKIF_OP_WRITE_BARRIER, BAR_SECTOR + 16, 8, c);
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_OKAY);
	set_io(&io, BLKIF_OP_FLUSH_DISKCACHE, BAR_SECTOR + 24, 8, c);
	CHECK(bk_bf_io_sync(f, 0, &io) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, BAR_SECTOR + 16, 8, rd, false) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(rd, c, sizeof(rd)));
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, BAR_SECTOR + 24, 8, rd, false) == BLKIF_RSP_OKAY);
	CHECK(!memcmp(rd, c, sizeof(rd)));
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

/*
 * A barrier starts only once everything taken before it completed (the write ahead of it is
 * held 300 ms), and what follows a barrier sees its effects: answers come in request order.
 */
static void test_barrier_drain(uint32_t domid, const char *path, const char *inner)
{
	static uint8_t a[4096], b[4096], rd[4096], rd2[4096];
	char rules[128];
	struct bk_bf_io ios[5];
	struct bk_blkfront *f;

	snprintf(rules, sizeof(rules), "delay=300ms:write:offset=%llu-%llu:count=1",
		 (unsigned long long)BAR_OFFSET(BAR_SECTOR + 32),
		 (unsigned long long)BAR_OFFSET(BAR_SECTOR + 40) - 1);
	f = attach_fault(domid, 22, path, inner, rules);
	CHECK(f != NULL);
	if (!f)
		return;
	memset(a, 0xA4, sizeof(a));
	memset(b, 0xB5, sizeof(b));
	set_io(&ios[0], BLKIF_OP_WRITE, BAR_SECTOR + 32, 8, a); /* held */
	set_io(&ios[1], BLKIF_OP_WRITE_BARRIER, 0, 0, NULL);
	set_io(&ios[2], BLKIF_OP_WRITE_BARRIER, BAR_SECTOR + 40, 8, b);
	set_io(&ios[3], BLKIF_OP_READ, BAR_SECTOR + 32, 8, rd);
	set_io(&ios[4], BLKIF_OP_READ, BAR_SECTOR + 40, 8, rd2);
	for (int i = 0; i < 5; i++)
		CHECK(bk_bf_queue(f, 0, &ios[i]) == 0);
	bk_bf_push(f, 0);
	CHECK(bk_bf_wait_all(f, 0) == 0);
	printf("barriers behind a held write: answered as %u %u %u %u %u\n", ios[0].rsp_seq,
	       ios[1].rsp_seq, ios[2].rsp_seq, ios[3].rsp_seq, ios[4].rsp_seq);
	for (int i = 0; i < 5; i++)
		CHECK(ios[i].status == BLKIF_RSP_OKAY);
	CHECK(ios[1].rsp_seq > ios[0].rsp_seq);
	CHECK(ios[2].rsp_seq > ios[1].rsp_seq);
	CHECK(ios[3].rsp_seq > ios[2].rsp_seq && ios[4].rsp_seq > ios[2].rsp_seq);
	CHECK(!memcmp(rd, a, sizeof(rd)) && !memcmp(rd2, b, sizeof(rd2)));
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

static void test_null(uint32_t domid)
{
	const char *extra[] = { "blanket-engine", "null", NULL };
	struct bk_blkfront *f;
	char path[64];
	int fd = bk_bf_tmpfile("/var/tmp", 1 << 20, 0, path, sizeof(path));

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	f = attach(domid, 4, path, "w", "disk", extra);
	CHECK(f != NULL);
	if (f) {
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_WRITE, 0, 64 * 8, buf, true) == BLKIF_RSP_OKAY);
		CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
		CHECK(bk_bf_disconnect(f) == 0);
		bk_bf_close(f);
	}
	close(fd);
	unlink(path);
}

/*
 * The connect waits for the hotplug script (hotplug-status=connected), even with the frontend
 * Initialised; "error" does not connect. params in the old "aio:/path" form is accepted.
 */
static void test_hotplug_gate(uint32_t domid, const char *path)
{
	char params[80];
	struct bk_ts_dev d = { .kind = "vbd", .domid = domid, .devid = 5, .params = params };
	struct bk_bf_params p = { .pfn_base = 5 * 1024, .pfn_count = 1024 };
	struct bk_blkfront *f = NULL;
	unsigned int st = 0;

	snprintf(params, sizeof(params), "aio:%s", path);
	CHECK(bk_ts_add(env.ts, &d) == 0);
	CHECK(bk_bf_open(&env, domid, 5, &p, &f) == 0);
	if (!f)
		return;
	CHECK(bk_bf_wait_initwait(f) == 0);
	CHECK(bk_bf_prepare(f) == 0);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_INITIALISED) == 0);
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(bk_xbf_be_state(bk_bf_xbf(f), &st) == 0 && st == BK_XB_INITWAIT);
	CHECK(bk_ts_hotplug(env.ts, "vbd", domid, 5, "error") == 0);
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(bk_xbf_be_state(bk_bf_xbf(f), &st) == 0 && st == BK_XB_INITWAIT);
	CHECK(bk_ts_hotplug(env.ts, "vbd", domid, 5, "connected") == 0);
	CHECK(bk_xbf_wait_be_state(bk_bf_xbf(f), BK_XB_CONNECTED, 0) == 0);
	CHECK(bk_bf_rw(f, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	CHECK(buf[0] == 0x11 || buf[0] == 0x33);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

static bool be_closing_or_closed(void *data)
{
	unsigned int st = 0;

	return bk_xbf_be_state(data, &st) == 0 && st >= BK_XB_CLOSING;
}

/* True if @s holds a byte a terminal or journald would interpret (a control byte or DEL). */
static bool has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/*
 * A guest cannot forge log lines: its protocol string, with a newline, a "<0>" priority prefix
 * (journald would read an emergency line) and an escape sequence, is logged on the device's
 * own line and written to the error node with no control byte. The log is captured with the
 * "<N>" prefixes the daemon writes under systemd.
 */
static void test_forged_log(uint32_t domid, const char *path)
{
	static const char evil[] = "x\n<0>forged\x1b[2J\r";
	struct bk_bf_params p = { .pfn_base = 6 * 1024, .pfn_count = 1024, .protocol = evil };
	struct bk_blkfront *f = NULL;
	_cleanup_free_ char *err = NULL;
	char log[8192], *line, *save = NULL;
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	bool seen = false;
	size_t n;

	CHECK(tmp && saved >= 0);
	if (!tmp || saved < 0)
		goto out;
	CHECK(bk_bf_env_add_vbd(&env, domid, 6, path, "w", "disk", NULL) == 0);
	CHECK(bk_bf_open(&env, domid, 6, &p, &f) == 0);
	if (!f)
		goto out;
	CHECK(bk_bf_wait_initwait(f) == 0);
	CHECK(bk_bf_prepare(f) == 0);

	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	bk_log_set_prefix(1);
	CHECK(bk_xbf_set_state(bk_bf_xbf(f), BK_XB_INITIALISED) == 0);
	CHECK(bk_test_pump_until(env.loop, be_closing_or_closed, bk_bf_xbf(f), 0) == 0);
	fflush(stderr);
	bk_log_set_prefix(-1);
	dup2(saved, STDERR_FILENO);

	rewind(tmp);
	n = fread(log, 1, sizeof(log) - 1, tmp);
	log[n] = '\0';
	fputs(log, stderr); /* what the daemon logged, for the test log */
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* Every line is one whole message of ours: "<prio>vbd ...", never the guest's. */
		CHECK(line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>');
		CHECK(strncmp(line, "<0>", 3) != 0);
		CHECK(!has_control(line, strlen(line)));
		if (strstr(line, "unknown protocol")) {
			seen = true;
			CHECK(strstr(line, "forged") != NULL);
		}
	}
	CHECK(seen);
	CHECK(bk_xbf_read_be(bk_bf_xbf(f), "error", &err) == 0);
	if (err) {
		printf("error node: %s\n", err);
		CHECK(strstr(err, "protocol") != NULL && !has_control(err, strlen(err)));
	}
out:
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	bk_log_set_prefix(-1);
	if (tmp)
		fclose(tmp);
	bk_bf_close(f);
	CHECK(bk_ts_destroy_dirs(env.ts, "vbd", domid, 6) == 0);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(env.loop, 0);
	CHECK(bk_core_find(env.core, "vbd", domid, 6) == NULL);
}

static uint32_t refused_id[2];

/* The backend answered the device with Closed and an error node. */
static bool refused(void *data)
{
	uint32_t *id = data;
	_cleanup_free_ char *be = bk_ts_be_path(env.ts, "vbd", id[0], id[1]);
	char ep[256];
	unsigned int st = 0;

	if (!be || bk_ts_be_state(env.ts, "vbd", id[0], id[1], &st) < 0 || st != BK_XB_CLOSED)
		return false;
	snprintf(ep, sizeof(ep), "%s/error", be);
	return bk_ts_exists(env.ts, ep) == 1;
}

/* Probe went InitWait (settings and store wait for the hotplug script) or refused. */
static bool initwait_or_refused(void *data)
{
	uint32_t *id = data;
	unsigned int st = 0;

	return refused(data) ||
	       (bk_ts_be_state(env.ts, "vbd", id[0], id[1], &st) == 0 && st == BK_XB_INITWAIT);
}

/*
 * Bad backend keys refuse that device (Closed, error node); the others are unaffected. mode and
 * device-type are refused at probe, the settings and the store once hotplug-status=connected.
 */
static void test_refused(uint32_t domid, const char *path)
{
	static const char *const bad_engine[] = { "blanket-engine", "nosuch", NULL };
	static const char *const bad_queues[] = { "blanket-queues", "0", NULL };
	struct {
		uint32_t devid;
		const char *mode, *type, *params;
		const char *const *extra;
	} cases[] = {
		{ 10, "w", "disk", NULL, bad_engine },
		{ 11, "rw", "disk", NULL, NULL },
		{ 12, "w", "floppy", NULL, NULL },
		{ 13, "w", "disk", "/nonexistent/blkif-image", NULL },
		{ 14, "w", "disk", NULL, bad_queues },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bk_ts_dev d = {
			.kind = "vbd",
			.domid = domid,
			.devid = cases[i].devid,
			.params = cases[i].params ? cases[i].params : path,
			.mode = cases[i].mode,
			.device_type = cases[i].type,
			.extra_be = cases[i].extra,
		};
		unsigned int st = 0;
		_cleanup_free_ char *be = bk_ts_be_path(env.ts, "vbd", domid, cases[i].devid);
		_cleanup_free_ char *err = NULL;
		size_t len;

		CHECK(bk_ts_add(env.ts, &d) == 0);
		refused_id[0] = domid;
		refused_id[1] = cases[i].devid;
		CHECK(bk_test_pump_until(env.loop, initwait_or_refused, refused_id, 0) == 0);
		if (!refused(refused_id))
			CHECK(bk_ts_hotplug(env.ts, "vbd", domid, cases[i].devid, "connected") ==
			      0);
		CHECK(bk_test_pump_until(env.loop, refused, refused_id, 0) == 0);
		CHECK(bk_ts_be_state(env.ts, "vbd", domid, cases[i].devid, &st) == 0 &&
		      st == BK_XB_CLOSED);
		if (be) {
			char ep[256];

			snprintf(ep, sizeof(ep), "%s/error", be);
			CHECK(bk_xs_read(bk_ts_xs(env.ts), BK_XS_NULL, ep, &err, &len) == 0);
		}
	}
}

int main(int argc, char **argv)
{
	const char *inner = argc > 1 ? argv[1] : "io_uring";
	char path[64];
	int fd;

	if (bk_bf_engines_missing(inner, "fault", NULL))
		return 77;
	fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0x11, path, sizeof(path));
	if (fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	CHECK(bk_bf_env_guest(&env, 7, 8192) == 0);
	test_readonly(7, path);
	test_cdrom(7, path);
	test_fault(7, path, inner);
	test_barrier_refused(7, path, inner);
	test_barrier_preflush(7, path, inner);
	test_barrier_drain(7, path, inner);
	test_null(7);
	test_hotplug_gate(7, path);
	test_forged_log(7, path);
	test_refused(7, path);
	CHECK(bk_sim_guest_nr_mapped(env.sim, 7) == 0);
	bk_bf_env_free(&env);
	close(fd);
	unlink(path);
	if (bk_test_failures) {
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
