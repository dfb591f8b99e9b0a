// SPDX-License-Identifier: MIT
/*
 * Restarts of the daemon are invisible to a guest, end to end through the simulation: a
 * guest with two queues keeps many reads and writes in flight (the fault engine holds them
 * back), the daemon goes away and a second one takes the device over from the same machine.
 *
 *   handover         the core stops as on SIGTERM: every taken request is answered OKAY, the
 *                    backend stays Connected, rings and ports are released; the guest queues
 *                    more while no daemon runs; the next daemon adopts (no InitWait) and
 *                    serves them.
 *   kill             the daemon dies (bk_core_abandon) without answering: the next daemon
 *                    re-issues what was in flight from the journal, every request is answered
 *                    exactly once, OKAY.
 *   kill-answered    it dies after writing responses to the ring, before publishing them.
 *   kill-published   it dies after publishing them, before the journal learnt it.
 *   reconnect        it dies, then the guest resets its frontend (same grant refs and port,
 *                    same ring position) while no daemon runs: the next daemon must not adopt
 *                    nor replay the old journal into the new connection.
 *   kexec            the same, but the new kernel connects by itself (the backend still says
 *                    Connected) on a fresh ring and queues more than the old ring consumed:
 *                    the device is adopted, but the old journal must not be replayed into it.
 *   adopt-fail       the next daemon recovers q0, then cannot set up q1: the device fails,
 *                    and both journals stay as they were (q0's already recovered).
 *   corrupt          a journal that cannot account for what its ring says is outstanding:
 *                    the device fails with a line naming the journal, it is not served.
 *   kill-loop        dozens of kills in a row at random points (nothing answered, answered not
 *                    published, published not notified, right after an adoption), with a
 *                    handover now and then, the guest queueing more between them: nothing is
 *                    lost, nothing answered twice.
 *
 * With a second argument "persistent" the guest takes persistent grants: the dead daemon's
 * mappings go with it, and the next one maps the grants again for what it re-issues. With
 * "persistent-later" the first daemon does not offer them (blanket-persistent=off) to a guest
 * that asks for them, and the operator turns the setting on before the next daemon adopts
 * the device: the guest, which read the first daemon's offer, still grants per request, so
 * the next one must not start mapping its grants (nor offer them) on that connection.
 *
 * The guest takes responses only when notified, as Linux's blkfront does (an interrupt): a
 * response published without an event is a hang, not a success.
 *
 * Every block the guest ever wrote is read back at the end and checked. The disk is a real
 * file under /var/tmp, served by io_uring under the fault engine.
 *
 * Usage: test-blkif-restart SCENARIO
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "blkif/blkif.h"
#include "check.h"
#include "conf.h"
#include "device.h"
#include "engine.h"
#include "journal.h"
#include "loop.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

#define GUEST 5
#define DEVID 51712
#define NQ 2
#define UNIT_SECT 16U /* one I/O: 8 KiB, two segments */
#define UNIT_BYTES (UNIT_SECT * 512U)
#define NR_UNITS 256U
#define DISK_BYTES ((uint64_t)NR_UNITS * UNIT_BYTES)
#define FILL 0x11
#define MAX_IOS 2000U
/* Every other read or write held 1 s: the others are with io_uring when the daemon goes. */
#define SLOW_OPTS "inner=io_uring,delay=1000ms:read+write:every=2"
#define FAST_OPTS "inner=io_uring"

struct tio {
	struct bk_bf_io io;
	unsigned int q;
	unsigned int unit;
	uint32_t tag; /* write: what it writes; read: what it must find */
	bool either;  /* read: or what @alt_tag wrote */
	uint32_t alt_tag;
	bool given_up; /* the guest reset its frontend with it outstanding */
	bool freed;    /* kill-loop: its unit is free again */
	uint8_t buf[UNIT_BYTES];
};

static struct bk_bf_env env;
static struct bk_blkfront *fe;
static char disk[64], statedir[64], target[96];
static struct tio *tios;
static unsigned int nr_tios, fe_first; /* fe_first: the first I/O of the current frontend */
static uint32_t model[NR_UNITS];       /* tag each unit holds: 0 = the initial fill */
static bool unit_busy[NR_UNITS];
/* A write the guest gave up on may or may not have landed: either content is right. */
static bool unit_either[NR_UNITS];
static uint32_t unit_alt[NR_UNITS];
static uint32_t next_tag = 1;
static unsigned int next_unit;

/* The guest's interrupt handler: it looks at the ring only when the backend notified it. */
static unsigned int guest_reap(unsigned int q)
{
	if (!bk_bf_take_notifies(fe, q))
		return 0;
	return bk_bf_reap(fe, q);
}

/* ------------------------------------------------------------------------------------------ */
/* Data. */

static void pattern(uint8_t *buf, unsigned int unit, uint32_t tag)
{
	if (!tag) {
		memset(buf, FILL, UNIT_BYTES);
		return;
	}
	for (unsigned int i = 0; i < UNIT_BYTES; i += 8) {
		uint64_t v = ((uint64_t)unit << 48) ^ ((uint64_t)tag << 20) ^ i ^ 0x5DEECE66DULL;

		memcpy(buf + i, &v, 8);
	}
}

static struct tio *new_tio(unsigned int q, uint8_t op, unsigned int unit)
{
	struct tio *t;

	if (nr_tios == MAX_IOS)
		abort();
	t = &tios[nr_tios++];
	memset(t, 0, sizeof(*t));
	t->q = q;
	t->unit = unit;
	t->io.op = op;
	t->io.sector = (uint64_t)unit * UNIT_SECT;
	t->io.nr_sectors = op == BLKIF_OP_DISCARD ? 0 : UNIT_SECT;
	t->io.data = t->buf;
	/* Every third one indirect: re-issued, it fetches its descriptors again. */
	t->io.indirect = op != BLKIF_OP_DISCARD && nr_tios % 3 == 0;
	return t;
}

/* Queue a write of a fresh unit (never one with I/O in flight). */
static struct tio *queue_write(unsigned int q)
{
	unsigned int unit = next_unit++ % NR_UNITS;
	struct tio *t;

	if (unit_busy[unit])
		abort(); /* the scenarios never wrap around */
	t = new_tio(q, BLKIF_OP_WRITE, unit);
	t->tag = next_tag++;
	pattern(t->buf, unit, t->tag);
	CHECK(bk_bf_queue(fe, q, &t->io) == 0);
	model[unit] = t->tag;
	unit_busy[unit] = true;
	return t;
}

/* Queue a read of @unit, which has nothing in flight. */
static struct tio *queue_read(unsigned int q, unsigned int unit)
{
	struct tio *t = new_tio(q, BLKIF_OP_READ, unit);

	t->tag = model[unit];
	t->either = unit_either[unit];
	t->alt_tag = unit_alt[unit];
	CHECK(bk_bf_queue(fe, q, &t->io) == 0);
	return t;
}

/* A zero-length discard: finished at once, answered at the next loop turn. */
static struct tio *queue_nop(unsigned int q)
{
	struct tio *t = new_tio(q, BLKIF_OP_DISCARD, 0);

	CHECK(bk_bf_queue(fe, q, &t->io) == 0);
	return t;
}

/* A unit without a write in flight: written before if there is one, else never written. */
static unsigned int stable_unit(void)
{
	for (int tries = 0; next_unit && tries < 64; tries++) {
		unsigned int u = (unsigned int)rand() % next_unit;

		if (!unit_busy[u])
			return u;
	}
	return NR_UNITS - 1 - (unsigned int)rand() % 8;
}

/* Per queue: @n writes of fresh units and @n reads of units with nothing in flight. */
static void queue_mix(unsigned int n)
{
	for (unsigned int q = 0; q < NQ; q++)
		for (unsigned int i = 0; i < n; i++) {
			queue_read(q, stable_unit());
			queue_write(q);
		}
}

static void push_all(void)
{
	for (unsigned int q = 0; q < NQ; q++)
		bk_bf_push(fe, q);
}

static bool all_done_cond(void *data)
{
	for (unsigned int q = 0; q < NQ; q++)
		guest_reap(q);
	for (unsigned int i = 0; i < nr_tios; i++)
		if (!tios[i].io.done && !tios[i].given_up)
			return false;
	return true;
}

static int wait_all_done(void)
{
	return bk_test_pump_until(env.loop, all_done_cond, NULL, 3000);
}

/* Every request answered OKAY, exactly once; reads found what was written; units free again. */
static void check_all_answered(void)
{
	unsigned int bad_status = 0, bad_data = 0, pending = 0;
	static uint8_t want[UNIT_BYTES];

	for (unsigned int q = 0; q < NQ; q++)
		guest_reap(q);
	for (unsigned int i = 0; i < nr_tios; i++) {
		struct tio *t = &tios[i];

		if (t->given_up)
			continue;
		if (!t->io.done) {
			pending++;
			continue;
		}
		if (t->io.status != BLKIF_RSP_OKAY) {
			if (bad_status++ < 5)
				fprintf(stderr, "io %u (op %u unit %u q%u): status %d\n", i,
					t->io.op, t->unit, t->q, t->io.status);
		}
		if (t->io.op == BLKIF_OP_WRITE)
			unit_busy[t->unit] = false;
		if (t->io.op == BLKIF_OP_READ && t->io.status == BLKIF_RSP_OKAY) {
			bool ok;

			pattern(want, t->unit, t->tag);
			ok = !memcmp(want, t->buf, UNIT_BYTES);
			if (!ok && t->either) {
				pattern(want, t->unit, t->alt_tag);
				ok = !memcmp(want, t->buf, UNIT_BYTES);
			}
			if (!ok && bad_data++ < 5)
				fprintf(stderr, "io %u: unit %u does not hold tag %u\n", i, t->unit,
					t->tag);
		}
	}
	CHECK(pending == 0);
	CHECK(bad_status == 0);
	CHECK(bad_data == 0);
	/* One response per request we still wait for, none for anything else. */
	CHECK(bk_bf_unknown_ids(fe) == 0);
	CHECK(bk_bf_bad_padding(fe) == 0);
	CHECK(bk_bf_responses(fe) == nr_tios - fe_first);
}

/* Read every unit back, a ring's worth at a time, and compare with the model. */
static void verify_disk(void)
{
	for (unsigned int u = 0; u < NR_UNITS;) {
		for (unsigned int q = 0; q < NQ; q++)
			for (unsigned int k = 0; k < 16 && u < NR_UNITS; k++)
				queue_read(q, u++);
		push_all();
		CHECK(wait_all_done() == 0);
	}
	check_all_answered();
}

/* ------------------------------------------------------------------------------------------ */
/* The daemon. */

static unsigned int taken(void)
{
	struct bk_device *dev = bk_core_find(env.core, "vbd", GUEST, DEVID);
	struct bk_queue_stats qs[NQ];
	unsigned int n = 0;
	int nq;

	if (!dev)
		return 0;
	nq = dev->ops->get_stats(dev, qs, NQ);
	for (int i = 0; i < nq && i < (int)NQ; i++)
		for (unsigned int k = 0; k < BK_REQ__MAX; k++)
			if (k != BK_REQ_INDIRECT) /* counted under its operation too */
				n += (unsigned int)qs[i].reqs[k];
	return n;
}

static bool taken_cond(void *data)
{
	return taken() >= *(unsigned int *)data;
}

/* Pump until the daemon took @n requests in all (since it started). */
static void wait_taken(unsigned int n)
{
	CHECK(bk_test_pump_until(env.loop, taken_cond, &n, 0) == 0);
}

static unsigned int busy(void)
{
	struct bk_device *dev = bk_core_find(env.core, "vbd", GUEST, DEVID);
	struct bk_queue_stats qs[NQ];
	unsigned int n = 0;
	int nq;

	if (!dev)
		return 0;
	nq = dev->ops->get_stats(dev, qs, NQ);
	for (int i = 0; i < nq && i < (int)NQ; i++)
		n += (unsigned int)qs[i].inflight;
	return n;
}

static void stopped(void *data)
{
	*(bool *)data = true;
}

static bool flag_cond(void *data)
{
	return *(bool *)data;
}

/* systemctl stop: bk_core_stop (the SIGTERM path), pumped to the end, then freed. */
static void daemon_stop(void)
{
	bool done = false;

	bk_core_stop(env.core, stopped, &done);
	CHECK(bk_test_pump_until(env.loop, flag_cond, &done, 3000) == 0);
	bk_core_free(env.core);
	env.core = NULL;
	bk_xen_free(env.xen);
	env.xen = NULL;
}

/* kill -9 at @point: nothing more answered, nothing written, files and rings left as they are. */
static void daemon_kill(unsigned int point)
{
	bk_core_abandon(env.core, point);
	bk_core_free(env.core);
	env.core = NULL;
	bk_xen_free(env.xen);
	env.xen = NULL;
}

/* A new daemon on the same machine: its own platform handles, the same loop. */
static int daemon_start(void)
{
	struct bk_core_params cp = { .loop = env.loop, .watch_coalesce_ms = 0 };
	int r;

	if ((r = bk_sim_platform(env.sim, 0, &env.xen)) < 0)
		return r;
	cp.xen = env.xen;
	if ((r = bk_core_new(&cp, &env.core)) < 0 ||
	    (r = bk_core_register(env.core, &blkif_backend_ops)) < 0 ||
	    (r = bk_core_start(env.core)) < 0)
		return r;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* What the guest and the toolstack see. */

static char *be_state_path(void)
{
	static char path[128];
	_cleanup_free_ char *be = bk_ts_be_path(env.ts, "vbd", GUEST, DEVID);

	snprintf(path, sizeof(path), "%s/state", be ? be : "?");
	return path;
}

static unsigned int be_state(void)
{
	unsigned int st = 0;

	if (bk_ts_be_state(env.ts, "vbd", GUEST, DEVID, &st) < 0)
		return 0;
	return st;
}

/* Watch events on the backend's state node since the last call (each write fires one). */
static unsigned int state_writes(void)
{
	return bk_ts_take_watch_events(env.ts, "restart-state");
}

/* Every state value seen while pumping (the condition runs before each loop turn). */
static unsigned int seen_states; /* bit per value */

static bool record_and_done(void *data)
{
	seen_states |= 1U << be_state();
	return all_done_cond(data);
}

static uint32_t fe_u32(const char *key)
{
	_cleanup_free_ char *v = NULL;
	uint64_t n = UINT64_MAX;

	if (bk_xbf_read(bk_bf_xbf(fe), key, &v) < 0 || bk_parse_u64(v, &n) < 0)
		return UINT32_MAX;
	return (uint32_t)n;
}

/* After a daemon went away: nothing of the guest stays mapped or bound. */
static void check_released(void)
{
	char key[64];

	CHECK(bk_sim_guest_nr_mapped(env.sim, GUEST) == 0);
	for (unsigned int q = 0; q < NQ; q++) {
		snprintf(key, sizeof(key), "queue-%u/event-channel", q);
		CHECK(!bk_sim_guest_evtchn_bound(env.sim, GUEST, fe_u32(key)));
	}
	/* The guest was not told anything: still Connected on both sides. */
	CHECK(be_state() == BK_XB_CONNECTED);
}

static unsigned int journal_files(void)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/inflight", statedir);
	return bk_test_dir_count(dir, "vbd-");
}

static void remove_statedir(void)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/inflight", statedir);
	bk_test_dir_empty(dir);
	rmdir(dir);
	rmdir(statedir);
}

/* A second argument "persistent": the guest takes persistent grants (mapped, not copied). */
static bool persistent;
/* "persistent-later": not offered at first, turned on for the next daemon (test_handover). */
static bool pgnt_later;

static int open_frontend(uint32_t start_index)
{
	struct bk_bf_params p = {
		.nr_queues = NQ,
		.ring_order = 1,
		.protocol = "x86_64-abi",
		.abi = BLKIF_ABI_X86_64,
		.start_index = start_index,
		.pfn_base = 0,
		.pfn_count = 1024,
		.persistent = persistent || pgnt_later,
	};

	fe_first = nr_tios;
	return bk_bf_open(&env, GUEST, DEVID, &p, &fe);
}

/* Machine, journals in a fresh directory, a connected guest with some data written. */
static int setup(void)
{
	const char *extra[] = { "blanket-engine",
				"fault",
				"blanket-options",
				SLOW_OPTS,
				pgnt_later ? "blanket-persistent" : NULL,
				"off",
				NULL };
	struct bk_config cfg;
	char why[128];
	int fd;

	fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, FILL, disk, sizeof(disk));
	if (fd < 0)
		return fd;
	close(fd);
	/* Mapped persistent grants serve only buffered stores (pgnt.c): so does this disk then. */
	snprintf(target, sizeof(target), "%s%s", persistent || pgnt_later ? "cache=writeback:" : "",
		 disk);
	snprintf(statedir, sizeof(statedir), "/var/tmp/blkif-restart-XXXXXX");
	if (!mkdtemp(statedir))
		return neg_errno();
	bk_config_defaults(&cfg);
	if (bk_config_set_key(&cfg, "state-directory", statedir, why, sizeof(why)) < 0) {
		fprintf(stderr, "state-directory: %s\n", why);
		return -EINVAL;
	}
	bk_config_install(&cfg);

	if (bk_bf_env_new(&env) < 0 || bk_bf_env_guest(&env, GUEST, 2048) < 0 ||
	    bk_bf_env_add_vbd(&env, GUEST, DEVID, target, "w", "disk", extra) < 0 ||
	    open_frontend(0) < 0 || bk_bf_connect(fe) < 0)
		return -EIO;
	if (bk_xs_watch(bk_ts_xs(env.ts), be_state_path(), "restart-state") < 0)
		return -EIO;
	state_writes(); /* the watch fires once when set */
	/* Some data before anything happens (delayed, so in parallel). */
	queue_mix(4);
	push_all();
	CHECK(wait_all_done() == 0);
	check_all_answered();
	return 0;
}

static unsigned int outstanding(void)
{
	unsigned int n = 0;

	for (unsigned int q = 0; q < NQ; q++)
		guest_reap(q);
	for (unsigned int i = 0; i < nr_tios; i++)
		n += !tios[i].io.done && !tios[i].given_up;
	return n;
}

/*
 * Start the next daemon (without the delays) and check that it adopted the device. @unseen:
 * responses the previous daemon published that the guest has not taken (no event came).
 */
static void restart_and_adopt(unsigned int unseen)
{
	unsigned int waiting = outstanding() - unseen;

	CHECK(bk_ts_write_be(env.ts, "vbd", GUEST, DEVID, "blanket-options", FAST_OPTS) == 0);
	state_writes(); /* only what the next daemon writes counts */
	seen_states = 0;
	CHECK(daemon_start() == 0);
	CHECK(bk_test_pump_until(env.loop, record_and_done, NULL, 1000) == 0);
	/* Never anything but Connected, and at most the one rewrite of it at connect. */
	CHECK(seen_states == 1U << BK_XB_CONNECTED);
	CHECK(state_writes() <= 1);
	CHECK(be_state() == BK_XB_CONNECTED);
	/* It ran exactly what the guest still waited for: nothing lost, nothing twice. */
	CHECK(taken() == waiting);
}

/* After the restart: more I/O, every block checked, a clean detach removes the journals. */
static void finish(void)
{
	if (bk_test_failures)
		return; /* the restart already failed: do not wait for more */
	check_all_answered();
	queue_mix(8);
	push_all();
	CHECK(wait_all_done() == 0);
	check_all_answered();
	verify_disk();
	CHECK(bk_bf_disconnect(fe) == 0);
	CHECK(journal_files() == 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Scenarios. */

/* persistent-later, after the adoption: still not offered, not used, nothing mapped. */
static void check_not_persistent(void)
{
	_cleanup_free_ char *be = bk_ts_be_path(env.ts, "vbd", GUEST, DEVID), *v = NULL;
	struct bk_device *dev = bk_core_find(env.core, "vbd", GUEST, DEVID);
	char desc[256] = "";
	uint64_t maps;

	CHECK(be &&
	      bk_xs_read_str(bk_ts_xs(env.ts), BK_XS_NULL, be, "feature-persistent", &v) == 0);
	CHECK(v && strcmp(v, "0") == 0);
	CHECK(dev && dev->ops->describe(dev, desc, sizeof(desc)) == 0);
	CHECK(strstr(desc, " persistent") == NULL);
	maps = bk_sim_gnt_map_calls(env.sim);
	queue_mix(8);
	push_all();
	CHECK(wait_all_done() == 0);
	check_all_answered();
	printf("persistent-later: %llu map call(s) for 8 requests after the adoption\n",
	       (unsigned long long)(bk_sim_gnt_map_calls(env.sim) - maps));
	CHECK(bk_sim_gnt_map_calls(env.sim) == maps);
}

static void test_handover(void)
{
	unsigned int before = nr_tios;

	/* Plenty in flight on both queues, held 1 s by the fault engine. */
	queue_mix(12);
	push_all();
	wait_taken(nr_tios);
	CHECK(busy() == nr_tios - before);
	for (unsigned int q = 0; q < NQ; q++)
		CHECK(bk_bf_reap(fe, q) == 0);

	daemon_stop();
	/* Everything taken was answered OKAY before the daemon let go. */
	check_all_answered();
	check_released();
	CHECK(state_writes() == 0);
	CHECK(journal_files() == NQ);

	/* The guest carries on while no daemon runs. */
	queue_mix(8);
	push_all();
	if (pgnt_later)
		CHECK(bk_ts_write_be(env.ts, "vbd", GUEST, DEVID, "blanket-persistent", "on") == 0);
	restart_and_adopt(0);
	if (pgnt_later)
		check_not_persistent();
	finish();
}

static void test_kill(unsigned int point)
{
	unsigned int before, seen = 0, unseen = 0;
	uint32_t rsp_before[NQ];
	uint64_t id;
	uint8_t op;
	int16_t st;

	queue_mix(12);
	/* Last on each queue: finished when taken, so unanswered when the daemon dies. */
	for (unsigned int q = 0; q < NQ; q++)
		queue_nop(q);
	push_all();
	/* All taken in one turn: the undelayed ones are queued to io_uring, the nops finished. */
	wait_taken(nr_tios);
	for (unsigned int q = 0; q < NQ; q++) {
		guest_reap(q);
		rsp_before[q] = bk_bf_sring(fe, q)->rsp_prod;
	}
	before = bk_bf_responses(fe);

	daemon_kill(point);
	check_released();
	CHECK(journal_files() == NQ);
	for (unsigned int q = 0; q < NQ; q++) {
		struct blkif_sring_hdr *h = bk_bf_sring(fe, q);

		if (point == BK_ABANDON_ANSWERED) {
			/* A response sits in the ring beyond rsp_prod, for one of ours. */
			bk_bf_read_rsp(fe, q, h->rsp_prod, &id, &op, &st);
			CHECK(id >> 16 == 0xA5A5A5A5A5A5ULL);
		}
		/* Only a publishing daemon moved rsp_prod (the nop, at least)... */
		if (point == BK_ABANDON_PUBLISHED)
			CHECK(h->rsp_prod != rsp_before[q]);
		else
			CHECK(h->rsp_prod == rsp_before[q]);
		unseen += h->rsp_prod - rsp_before[q];
		seen += guest_reap(q);
	}
	/* ...and died before the event: the guest has not looked. The next daemon must tell it. */
	CHECK(seen == 0);
	CHECK(bk_bf_responses(fe) == before + seen);

	queue_mix(6);
	push_all();
	restart_and_adopt(unseen);
	finish();
}

/* The new frontend uses the very grant refs and ports of the old one. */
static void check_same_ring(const uint32_t *refs, const uint32_t *ports)
{
	char key[64];

	for (unsigned int q = 0; q < NQ; q++) {
		snprintf(key, sizeof(key), "queue-%u/ring-ref0", q);
		CHECK(fe_u32(key) == refs[q]);
		snprintf(key, sizeof(key), "queue-%u/event-channel", q);
		CHECK(fe_u32(key) == ports[q]);
	}
}

/*
 * The guest's kernel is replaced while no daemon runs. @alone: it finds the backend Connected
 * and connects by itself (Linux's blkfront does: talk_to_blkback, then Connected), on a fresh
 * ring at index 0 where it queues more requests than the old ring had consumed; else it
 * waits in Initialising, its new ring at the old ring's very indices.
 */
static void test_reset(bool alone)
{
	uint32_t refs[NQ], ports[NQ], idx[NQ];
	unsigned int first = nr_tios, total_before;
	char key[64];

	/* Writes in flight, held by the fault engine: they never reach the disk. */
	for (unsigned int q = 0; q < NQ; q++)
		for (unsigned int i = 0; i < 6; i++)
			queue_write(q);
	push_all();
	wait_taken(nr_tios);
	daemon_kill(BK_ABANDON_NOW);
	check_released();
	CHECK(journal_files() == NQ);
	for (unsigned int q = 0; q < NQ; q++) {
		snprintf(key, sizeof(key), "queue-%u/ring-ref0", q);
		refs[q] = fe_u32(key);
		snprintf(key, sizeof(key), "queue-%u/event-channel", q);
		ports[q] = fe_u32(key);
		idx[q] = bk_bf_req_prod_pvt(fe, q);
	}
	CHECK(idx[0] == idx[1]);

	/* The guest resets its frontend (a new kernel): Closing, Closed, a fresh start. */
	CHECK(bk_xbf_set_state(bk_bf_xbf(fe), BK_XB_CLOSING) == 0);
	CHECK(bk_xbf_set_state(bk_bf_xbf(fe), BK_XB_CLOSED) == 0);
	bk_bf_close(fe);
	fe = NULL;
	for (unsigned int i = first; i < nr_tios; i++) {
		tios[i].given_up = true;
		/* Held by the fault engine (dropped) or with io_uring (landed): either. */
		model[tios[i].unit] = 0;
		unit_either[tios[i].unit] = true;
		unit_alt[tios[i].unit] = tios[i].tag;
		unit_busy[tios[i].unit] = false;
	}
	CHECK(bk_ts_write_be(env.ts, "vbd", GUEST, DEVID, "blanket-options", FAST_OPTS) == 0);
	if (alone) {
		CHECK(open_frontend(0) == 0);
		if (!fe)
			return;
		CHECK(bk_bf_prepare(fe) == 0);
		CHECK(bk_xbf_set_state(bk_bf_xbf(fe), BK_XB_INITIALISED) == 0);
		CHECK(bk_xbf_set_state(bk_bf_xbf(fe), BK_XB_CONNECTED) == 0);
		check_same_ring(refs, ports);
		CHECK(idx[0] < 20);
		queue_mix(10);
		push_all();
		/* Adopted (both Connected), but served from the ring, not the old journal. */
		restart_and_adopt(0);
		finish();
		return;
	}
	/* Its new rings look exactly like the old ones: same refs, port and indices. */
	CHECK(open_frontend(idx[0]) == 0);
	if (!fe)
		return;
	CHECK(bk_xbf_set_state(bk_bf_xbf(fe), BK_XB_INITIALISING) == 0);
	state_writes();
	CHECK(daemon_start() == 0);
	if (bk_bf_connect(fe) != 0) {
		CHECK(!"the reset frontend connects");
		return;
	}
	check_same_ring(refs, ports);
	/* Not adopted: the usual handshake, InitWait then Connected. */
	CHECK(state_writes() >= 2);
	/* Nothing of the old connection comes back: the new guest sees only its own answers. */
	total_before = nr_tios;
	queue_mix(6);
	push_all();
	CHECK(wait_all_done() == 0);
	CHECK(taken() == nr_tios - total_before);
	finish();
}

/* ------------------------------------------------------------------------------------------ */
/* Journals that cannot be served from. */

/* Queue @q's journal, as the daemon names and shapes it; NULL if there is none that fits. */
static struct bk_journal *open_journal(unsigned int q)
{
	struct bk_journal_geom g = { 0 };
	char dir[128], name[64], key[64];
	struct bk_journal *j;
	bool rec = false;

	g.nr_slots = bk_bf_ring_entries(fe, q);
	g.raw_size = (uint32_t)blkif_abi_slot_size(BLKIF_ABI_X86_64);
	g.abi = BLKIF_ABI_X86_64;
	g.nr_refs = 2;
	for (unsigned int p = 0; p < g.nr_refs; p++) {
		snprintf(key, sizeof(key), "queue-%u/ring-ref%u", q, p);
		g.refs[p] = fe_u32(key);
	}
	snprintf(key, sizeof(key), "queue-%u/event-channel", q);
	g.remote_port = fe_u32(key);
	snprintf(dir, sizeof(dir), "%s/inflight", statedir);
	snprintf(name, sizeof(name), "vbd-%u-%u-q%u", GUEST, DEVID, q);
	if (bk_journal_open(dir, name, &g, &j, &rec) < 0)
		return NULL;
	if (!rec) {
		bk_journal_close(j, true);
		return NULL;
	}
	return j;
}

/* The device failed: Closing, then Closed once the core shut it down. */
static bool closing_cond(void *data)
{
	return be_state() == BK_XB_CLOSING || be_state() == BK_XB_CLOSED;
}

/* Writes in flight on both queues, then kill -9: what each journal holds. */
static void kill_with_writes(unsigned int *live)
{
	for (unsigned int q = 0; q < NQ; q++)
		for (unsigned int i = 0; i < 6; i++)
			queue_write(q);
	push_all();
	wait_taken(nr_tios);
	daemon_kill(BK_ABANDON_NOW);
	CHECK(journal_files() == NQ);
	for (unsigned int q = 0; q < NQ; q++) {
		struct bk_journal *j = open_journal(q);

		CHECK(j);
		live[q] = j ? bk_journal_nr_live(j) : 0;
		CHECK(live[q] >= 3); /* at least those the fault engine held */
		bk_journal_close(j, false);
	}
}

static void test_adopt_fail(void)
{
	unsigned int live[NQ];
	char key[64];
	uint32_t port1;

	kill_with_writes(live);
	/* While no daemon runs, q1's event channel becomes garbage: q0 recovers, q1 fails. */
	snprintf(key, sizeof(key), "queue-1/event-channel");
	port1 = fe_u32(key);
	CHECK(bk_xbf_write(bk_bf_xbf(fe), key, "junk") == 0);
	CHECK(daemon_start() == 0);
	CHECK(bk_test_pump_until(env.loop, closing_cond, NULL, 100) == 0);
	/* Both journals kept, q0's with the requests it recovered (in flight, as before). */
	CHECK(journal_files() == NQ);
	CHECK(bk_xbf_write(bk_bf_xbf(fe), key, "%u", port1) == 0);
	for (unsigned int q = 0; q < NQ; q++) {
		struct bk_journal *j = open_journal(q);

		CHECK(j && bk_journal_nr_live(j) == live[q]);
		bk_journal_close(j, false);
	}
}

static void test_corrupt(void)
{
	_cleanup_free_ char *err = NULL;
	struct bk_journal *j;
	unsigned int live[NQ];

	kill_with_writes(live);
	/* q0's journal now says three fewer were consumed than the requests it holds. */
	j = open_journal(0);
	CHECK(j);
	if (!j)
		return;
	bk_journal_set_cons(j, bk_journal_req_cons(j) - 3);
	bk_journal_close(j, false);
	CHECK(daemon_start() == 0);
	/* Not served: the device fails, saying which journal and why. */
	CHECK(bk_test_pump_until(env.loop, closing_cond, NULL, 100) == 0);
	CHECK(bk_xbf_read_be(bk_bf_xbf(fe), "error", &err) == 0);
	CHECK(err && strstr(err, "vbd-5-51712-q0") && strstr(err, "is corrupt"));
	if (err)
		fprintf(stderr, "error node: %s\n", err);
	CHECK(taken() == 0);
	CHECK(journal_files() == NQ);
}

/* ------------------------------------------------------------------------------------------ */
/* Kill after kill. */

#define LOOP_ROUNDS 48U
/* Every other request held a few ms: some are with io_uring, some waiting, when a kill comes. */
#define LOOP_OPTS "inner=io_uring,delay=3ms:read+write:every=2"

static unsigned int loop_first; /* the first I/O of the loop */

/* A unit with nothing in flight, from a random place (writes and reads never overlap). */
static int free_unit(void)
{
	unsigned int start = (unsigned int)rand() % NR_UNITS;

	for (unsigned int i = 0; i < NR_UNITS; i++) {
		unsigned int u = (start + i) % NR_UNITS;

		if (!unit_busy[u])
			return (int)u;
	}
	return -1;
}

static void loop_queue(unsigned int q, bool write)
{
	int u = free_unit();
	struct tio *t;

	if (u < 0)
		return;
	t = new_tio(q, write ? BLKIF_OP_WRITE : BLKIF_OP_READ, (unsigned int)u);
	if (write) {
		t->tag = next_tag++;
		pattern(t->buf, (unsigned int)u, t->tag);
	} else {
		t->tag = model[u];
	}
	if (bk_bf_queue(fe, q, &t->io) < 0) {
		nr_tios--; /* the ring is full: the guest waits for answers first */
		return;
	}
	if (write)
		model[u] = t->tag;
	unit_busy[u] = true;
}

/* The guest's interrupt: take what was answered, free its units. */
static void loop_reap(void)
{
	for (unsigned int q = 0; q < NQ; q++)
		guest_reap(q);
	for (unsigned int i = loop_first; i < nr_tios; i++)
		if (tios[i].io.done && !tios[i].freed) {
			tios[i].freed = true;
			unit_busy[tios[i].unit] = false;
		}
}

static bool adopted_cond(void *data)
{
	/*
	 * Both queues' rings mapped: the connect, recovery included, is over. With persistent
	 * grants the re-issued requests' pages are mapped too (in the hook, after the connect).
	 */
	unsigned int n = bk_sim_guest_nr_mapped(env.sim, GUEST);

	return persistent ? n >= NQ * 2 : n == NQ * 2;
}

static void test_kill_loop(void)
{
	unsigned int kills[4] = { 0 }, early = 0;

	CHECK(bk_ts_write_be(env.ts, "vbd", GUEST, DEVID, "blanket-options", LOOP_OPTS) == 0);
	loop_first = nr_tios;
	for (unsigned int round = 0; round < LOOP_ROUNDS && !bk_test_failures; round++) {
		unsigned int point = (unsigned int)rand() % 4, turns = (unsigned int)rand() % 6;

		for (unsigned int q = 0; q < NQ; q++) {
			unsigned int n = 1 + (unsigned int)rand() % 6;

			for (unsigned int i = 0; i < n; i++) {
				loop_queue(q, true);
				loop_queue(q, false);
			}
		}
		push_all();
		for (unsigned int i = 0; i < turns; i++) {
			bk_loop_run_once(env.loop, 1);
			loop_reap();
		}
		if (point == 3)
			daemon_stop(); /* now and then a systemctl restart, as the lab does */
		else
			daemon_kill(point);
		kills[point]++;
		loop_reap();
		CHECK(daemon_start() == 0);
		if (round % 4 == 3) {
			/* Killed again right after the adoption, before it answered anything new.
			 */
			CHECK(bk_test_pump_until(env.loop, adopted_cond, NULL, 100) == 0);
			daemon_kill(BK_ABANDON_NOW);
			early++;
			CHECK(daemon_start() == 0);
		}
	}
	fprintf(stderr,
		"%u kills: %u with nothing answered, %u answered not published, %u published not "
		"notified, %u right after an adoption; %u handovers\n",
		kills[0] + kills[1] + kills[2] + early, kills[0], kills[1], kills[2], early,
		kills[3]);
	/* The last daemon serves everything still outstanding, and tells the guest. */
	if (bk_test_pump_until(env.loop, all_done_cond, NULL, 3000) < 0) {
		fprintf(stderr, "the guest still waits for %u request(s)\n", outstanding());
		CHECK(!"every request answered after the last restart");
		return;
	}
	check_all_answered();
	verify_disk();
	CHECK(bk_bf_disconnect(fe) == 0);
	CHECK(journal_files() == 0);
}

int main(int argc, char **argv)
{
	const char *scenario = argc > 1 ? argv[1] : "handover";

	persistent = argc > 2 && !strcmp(argv[2], "persistent");
	pgnt_later = argc > 2 && !strcmp(argv[2], "persistent-later");

	if (bk_bf_engines_missing("io_uring", "fault", NULL))
		return 77;
	/* Fixed, so a failure repeats; BK_TEST_SEED explores others. */
	srand(getenv("BK_TEST_SEED") ? (unsigned int)atoi(getenv("BK_TEST_SEED")) : 12345U);
	tios = calloc(MAX_IOS, sizeof(*tios));
	if (!tios || setup() < 0) {
		fprintf(stderr, "setup failed\n");
		bk_test_failures++;
	} else if (!strcmp(scenario, "handover")) {
		test_handover();
	} else if (!strcmp(scenario, "kill")) {
		test_kill(BK_ABANDON_NOW);
	} else if (!strcmp(scenario, "kill-answered")) {
		test_kill(BK_ABANDON_ANSWERED);
	} else if (!strcmp(scenario, "kill-published")) {
		test_kill(BK_ABANDON_PUBLISHED);
	} else if (!strcmp(scenario, "reconnect")) {
		test_reset(false);
	} else if (!strcmp(scenario, "kexec")) {
		test_reset(true);
	} else if (!strcmp(scenario, "adopt-fail")) {
		test_adopt_fail();
	} else if (!strcmp(scenario, "corrupt")) {
		test_corrupt();
	} else if (!strcmp(scenario, "kill-loop")) {
		test_kill_loop();
	} else {
		fprintf(stderr, "unknown scenario %s\n", scenario);
		bk_test_failures++;
	}
	bk_bf_close(fe);
	bk_bf_env_free(&env);
	free(tios);
	if (disk[0])
		unlink(disk);
	if (statedir[0])
		remove_statedir();
	return bk_test_exit();
}
