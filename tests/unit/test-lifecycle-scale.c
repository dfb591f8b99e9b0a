// SPDX-License-Identifier: MIT
/*
 * The lifecycle under load: watch storms are coalesced (one probe per device, one
 * backend_changed per key per batch), garbage paths under backend/ are ignored, and 1000
 * devices created and removed leave no fd, sim handle or watch, loop object or memory behind.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "test-lifecycle-common.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define DOM 5U
#define STORM 10000

static void pump(struct fx *fx, int n)
{
	for (int i = 0; i < n; i++)
		bk_loop_run_once(fx->loop, 2);
}

static void test_storm(unsigned int coalesce_ms)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	_cleanup_free_ char *be = NULL;
	struct bk_xbfront *f = NULL;
	unsigned int fe_changes;
	struct fx fx;
	char val[16];

	CHECK(fx_init(&fx, coalesce_ms) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	be = bk_ts_be_path(fx.ts, "vbd", DOM, XVDA);

	/* A storm before the device is even created: one probe. */
	CHECK(bk_ts_add(fx.ts, &d) == 0);
	for (int i = 0; i < STORM; i++) {
		snprintf(val, sizeof(val), "/img%d", i);
		CHECK(bk_ts_write_be(fx.ts, "vbd", DOM, XVDA, "params", val) == 0);
	}
	CHECK(fx_wait_nr_devices(&fx, 1) == 0);
	pump(&fx, 20);
	CHECK(tb.probes == 1);

	/* A storm on a live device from both sides: one backend_changed, no repeated state. */
	{
		_cleanup_free_ char *path = bk_ts_fe_path("vbd", DOM, XVDA);

		CHECK(bk_xbf_open(fx.sim, fx.loop, DOM, path, &f) == 0);
	}
	if (!f)
		goto out;
	CHECK(bk_xbf_wait_be_state(f, 2, 0) == 0);
	pump(&fx, 10);
	tb.params_changes = 0;
	fe_changes = tb.fe_changes;
	for (int i = 0; i < STORM; i++) {
		snprintf(val, sizeof(val), "/img%d", i);
		CHECK(bk_ts_write_be(fx.ts, "vbd", DOM, XVDA, "params", val) == 0);
		CHECK(bk_xbf_set_state(f, 1) == 0);
	}
	pump(&fx, 20);
	CHECK(tb.params_changes == 1);
	CHECK(tb.fe_changes == fe_changes);
	CHECK(tb.probes == 1);

	/* More distinct keys in one batch than the core names: one backend_changed(NULL). */
	tb.null_keys = 0;
	tb.be_changes = 0;
	for (int i = 0; i < 12; i++) {
		char key[16];

		snprintf(key, sizeof(key), "setting-%d", i);
		CHECK(bk_ts_write_be(fx.ts, "vbd", DOM, XVDA, key, "1") == 0);
	}
	pump(&fx, 20);
	CHECK(tb.null_keys == 1);
	CHECK(tb.be_changes == 9); /* 8 named, then NULL */

	/* Many devices stormed at once: one probe each. */
	for (uint32_t i = 1; i <= 20; i++) {
		struct bk_ts_dev di = fx_vbd(DOM, XVDA + 16 * i);

		CHECK(bk_ts_add(fx.ts, &di) == 0);
	}
	for (int j = 0; j < 150; j++) {
		for (uint32_t i = 1; i <= 20; i++) {
			snprintf(val, sizeof(val), "%d", j);
			CHECK(bk_ts_write_be(fx.ts, "vbd", DOM, XVDA + 16 * i, "params", val) == 0);
		}
	}
	CHECK(fx_wait_nr_devices(&fx, 21) == 0);
	pump(&fx, 20);
	CHECK(tb.probes == 21);
	bk_xbf_close(f);
out:
	fx_fini(&fx);
}

/* Nodes under backend/vbd that are not <domid>/<devid>: ignored, nothing created. */
static void test_garbage_paths(void)
{
	static const char *const junk[] = {
		"/local/domain/0/backend/vbd/abc/1/online",
		"/local/domain/0/backend/vbd/5/xyz/online",
		"/local/domain/0/backend/vbd/05/51712/online",
		"/local/domain/0/backend/vbd/5/051712/online",
		"/local/domain/0/backend/vbd/99999/1/online",
		"/local/domain/0/backend/vbd/4294967295/1/online",
		"/local/domain/0/backend/vbd/5/4294967295/online",
		"/local/domain/0/backend/vbd/5/99999999999/online",
		"/local/domain/0/backend/vbd/-5/1/online",
		"/local/domain/0/backend/vbd/5/1_/online",
		"/local/domain/0/backend/vbd/6/7/8/9/online",
		"/local/domain/0/backend/vbd/online",
		"/local/domain/0/backend/vbdx/5/1/online",
	};
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++)
		CHECK(bk_xs_write(bk_ts_xs(fx.ts), BK_XS_NULL, junk[i], "1", 1) == 0);
	pump(&fx, 20);
	CHECK(tb.probes == 0);
	CHECK(bk_core_nr_devices(fx.core) == 0);
	/* A real device beside the junk still works. */
	{
		struct bk_ts_dev d = fx_vbd(DOM, XVDA);

		CHECK(bk_ts_attach(fx.ts, &d) == 0);
		CHECK(tb.probes == 1);
	}
	fx_fini(&fx);
}

#define NR_DOMS 10U
#define PER_DOM 100U
#define BATCH 50U

struct all_state {
	struct fx *fx;
	uint32_t first, n;
	unsigned int state;
};

static bool all_at(void *data)
{
	struct all_state *w = data;

	for (uint32_t i = w->first; i < w->first + w->n; i++) {
		unsigned int s;

		if (bk_ts_be_state(w->fx->ts, "vbd", 10 + i / PER_DOM, 1 + i % PER_DOM, &s) < 0 ||
		    s != w->state)
			return false;
	}
	return true;
}

/* Create and remove NR_DOMS * PER_DOM devices in batches, as fast as the toolstack can. */
static void many_round(struct fx *fx)
{
	const uint32_t total = NR_DOMS * PER_DOM;
	uint64_t dropped = bk_sim_xs_dropped(fx->sim);
	unsigned int probes = tb.probes, removes = tb.removes;
	struct bk_ts_dev devs[BATCH];

	for (uint32_t b = 0; b < total; b += BATCH) {
		struct all_state w = { fx, b, BATCH, 2 };

		for (uint32_t i = b; i < b + BATCH; i++)
			devs[i - b] = fx_vbd(10 + i / PER_DOM, 1 + i % PER_DOM);
		CHECK(bk_ts_add_many(fx->ts, devs, BATCH) == 0);
		CHECK(bk_test_pump_until(fx->loop, all_at, &w, 0) == 0);
	}
	CHECK(bk_core_nr_devices(fx->core) == total);
	CHECK(tb.probes == probes + total);
	for (uint32_t b = 0; b < total; b += BATCH) {
		struct all_state w = { fx, b, BATCH, 6 };

		for (uint32_t i = b; i < b + BATCH; i++)
			devs[i - b] = fx_vbd(10 + i / PER_DOM, 1 + i % PER_DOM);
		CHECK(bk_ts_request_remove_many(fx->ts, devs, BATCH) == 0);
		CHECK(bk_test_pump_until(fx->loop, all_at, &w, 0) == 0);
		CHECK(bk_ts_destroy_dirs_many(fx->ts, devs, BATCH) == 0);
	}
	CHECK(fx_wait_nr_devices(fx, 0) == 0);
	pump(fx, 5);
	CHECK(tb.removes == removes + total);
	/* The test is only meaningful if no watch event was lost. */
	CHECK(bk_sim_xs_dropped(fx->sim) == dropped);
}

static void test_many(void)
{
	struct bk_sim_counts c0, c1;
	unsigned int fds0, objs0;
	size_t mem0 = 0;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	for (uint32_t i = 0; i < NR_DOMS; i++)
		CHECK(bk_sim_domain_create(fx.sim, 10 + i, 16) == 0);
	/* Warm-up: tables that grow once (hashes, libev arrays) are at full size after it. */
	many_round(&fx);

	fds0 = bk_test_count_fds();
	objs0 = bk_loop_nr_objects(fx.loop);
	bk_sim_counts(fx.sim, &c0);
#ifndef UNDER_ASAN
	malloc_trim(0);
	mem0 = mallinfo2().uordblks;
#endif
	many_round(&fx);
	CHECK(bk_test_count_fds() == fds0);
	CHECK(bk_loop_nr_objects(fx.loop) == objs0);
	bk_sim_counts(fx.sim, &c1);
	CHECK(c1.xs_conns == c0.xs_conns);
	CHECK(c1.xs_watches == c0.xs_watches);
	CHECK(c1.xs_nodes == c0.xs_nodes);
	CHECK(c1.evtchn_handles == c0.evtchn_handles && c1.gnt_handles == c0.gnt_handles);
#ifndef UNDER_ASAN
	{
		size_t mem1 = mallinfo2().uordblks;

		/* Small slack for allocator bookkeeping; a leak of 1000 devices is far larger. */
		if (getenv("BK_TEST_DEBUG") || mem1 > mem0 + 16384)
			fprintf(stderr, "memory grew by %lld bytes over 1000 devices\n",
				(long long)mem1 - (long long)mem0);
		CHECK(mem1 <= mem0 + 16384);
	}
#else
	(void)mem0; /* LeakSanitizer checks at exit. */
#endif
	fx_fini(&fx);
}

/*
 * A storm that overflows the daemon's watch event queue pushes out the toolstack's event for
 * another device; the periodic rescan still finds that device.
 */
static void test_lost_events(void)
{
	struct bk_ts_dev a = fx_vbd(DOM, XVDA), b = fx_vbd(DOM, XVDA + 16);
	uint64_t dropped;
	struct fx fx;
	char val[16];

	fx_rescan_ms = 50;
	CHECK(fx_init(&fx, 0) == 0);
	fx_rescan_ms = 0;
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &b) == 0);
	pump(&fx, 10); /* nothing older left in the queue (the kind watch's first event) */
	dropped = bk_sim_xs_dropped(fx.sim);
	CHECK(bk_ts_add(fx.ts, &a) == 0);
	for (int i = 0; i < STORM; i++) {
		snprintf(val, sizeof(val), "%d", i);
		CHECK(bk_ts_write_be(fx.ts, "vbd", DOM, XVDA + 16, "params", val) == 0);
	}
	CHECK(bk_sim_xs_dropped(fx.sim) > dropped); /* the scenario happened */
	CHECK(fx_wait_nr_devices(&fx, 2) == 0);
	CHECK(bk_core_find(fx.core, "vbd", DOM, XVDA) != NULL);
	CHECK(tb.probes == 2);
	fx_fini(&fx);
}

/*
 * The periodic rescan with 1000 devices is spread over loop turns: no turn makes more than
 * BK_RESCAN_OPS_PER_TURN xenstore requests (counted by the simulation on the daemon's
 * platform), and a device whose removal event was lost is still found and removed.
 */
static void test_rescan_spread(void)
{
	const uint32_t total = NR_DOMS * PER_DOM;
	struct bk_ts_dev gone = fx_vbd(10 + 3, 1 + 42);
	struct bk_ts_dev devs[BATCH];
	uint64_t dropped, max_turn = 0, sweep_ops = 0, max_ns = 0;
	unsigned int turns = 0;
	struct fx fx;

	fx_rescan_ms = 300;
	CHECK(fx_init(&fx, 0) == 0);
	fx_rescan_ms = 0;
	for (uint32_t i = 0; i < NR_DOMS; i++)
		CHECK(bk_sim_domain_create(fx.sim, 10 + i, 16) == 0);
	for (uint32_t b = 0; b < total; b += BATCH) {
		struct all_state w = { &fx, b, BATCH, 2 };

		for (uint32_t i = b; i < b + BATCH; i++)
			devs[i - b] = fx_vbd(10 + i / PER_DOM, 1 + i % PER_DOM);
		CHECK(bk_ts_add_many(fx.ts, devs, BATCH) == 0);
		CHECK(bk_test_pump_until(fx.loop, all_at, &w, 0) == 0);
	}
	CHECK(bk_core_nr_devices(fx.core) == total);
	pump(&fx, 5);

	/* Behind the core's back: the removal's events are pushed out by a storm of junk. */
	dropped = bk_sim_xs_dropped(fx.sim);
	CHECK(bk_ts_destroy_dirs_many(fx.ts, &gone, 1) == 0);
	for (int i = 0; i < STORM; i++)
		CHECK(bk_xs_write(bk_ts_xs(fx.ts), BK_XS_NULL,
				  "/local/domain/0/backend/vbd/junk/1/online", "1", 1) == 0);
	CHECK(bk_sim_xs_dropped(fx.sim) > dropped);

	/* Turn by turn until a rescan found it (a few periods at most). */
	while (bk_core_find(fx.core, "vbd", gone.domid, gone.devid) && turns < 10000000) {
		uint64_t before = bk_sim_xs_requests(fx.xen), n, t0 = bk_now_ns();

		bk_loop_run_once(fx.loop, 0);
		n = bk_sim_xs_requests(fx.xen) - before;
		if (n)
			max_ns = BK_MAX(max_ns, bk_now_ns() - t0);
		max_turn = BK_MAX(max_turn, n);
		sweep_ops += n;
		turns++;
	}
	/* Informational (the simulation's timing says little about a real xenstored). */
	fprintf(stderr,
		"rescan: %llu xenstore requests in %u turns, at most %llu (%llu us) in "
		"one\n",
		(unsigned long long)sweep_ops, turns, (unsigned long long)max_turn,
		(unsigned long long)(max_ns / 1000));
	CHECK(bk_core_find(fx.core, "vbd", gone.domid, gone.devid) == NULL);
	CHECK(max_turn <= BK_RESCAN_OPS_PER_TURN);
	CHECK(bk_core_nr_devices(fx.core) == total - 1);
	CHECK(tb.removes == 1);
	fx_fini(&fx);
}

int main(void)
{
	test_storm(0);
	test_storm(20);
	test_garbage_paths();
	test_lost_events();
	test_rescan_spread();
	test_many();
	return fx_result("lifecycle-scale");
}
