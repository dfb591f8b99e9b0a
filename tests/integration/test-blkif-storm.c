// SPDX-License-Identifier: MIT
/*
 * Guests that try to take the daemon's only thread, and what they must not get.
 *
 *  storm  One guest keeps its queue blocked (its bounce pool full of writes the fault engine
 *         holds back, one more request left on the ring) and notifies in a tight loop; another
 *         storms on an empty ring. Every event callback must return to the loop (a storm that
 *         is re-raised whenever its port is unmasked, with a credit refilled every turn, must
 *         never use up its credit within one turn), the blocked queue's port stays masked
 *         (at most a couple of events reach the daemon, each counted as spurious), a
 *         bystander's I/O completes, and once the writes complete the blocked guest is served
 *         without another notify.
 *  handover  The daemon stops (hands over to the next one: takes nothing new) while a guest
 *         storms with a request on its ring: the event that took nothing is spurious, the port
 *         stays masked, every callback returns, and the handover completes.
 *  efbig  The event-channel handle's queue overflows (bounded to one entry in the
 *         simulation, as the kernel's ring is bounded): the events lost must not lose I/O, so
 *         every bound port is treated as pending.
 *  fair   A 4-queue and a 1-queue guest, all rings kept full: requests served per loop turn
 *         must be about the same for both (the budget is per device), and the 4-queue guest's
 *         share spread over all its queues.
 *
 * Usage: test-blkif-storm storm|handover|efbig|fair [ENGINE]  (bystander engine, default io_uring)
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
#include "util/macros.h"
#include "xen/sim.h"
#include "xenbus_front.h"
#include "check.h"

#define DISK_BYTES (16U << 20)
#define SECTORS (DISK_BYTES / 512U)
#define BLOCKED 11 /* storms with its queue blocked */
#define EMPTY 13   /* storms on an empty ring */
#define GOOD 12	   /* the bystander */
#define FOUR 14	   /* 4 queues */
#define ONE 15	   /* 1 queue */
#define DEVID 51712

/* Notifications a storming guest may send in one loop turn: far more than one turn needs. */
#define STORM_CREDIT 1000U
/*
 * 1 MiB writes: four fill the default 4 MiB bounce pool and the fifth waits for pages. A
 * request queued after them then stays on the ring: nothing new is taken while older ones wait.
 */
#define BIG_SECTORS 2048U
#define NR_BIG 5U

static struct bk_bf_env env;
static const char *engine;
static char path[64];

static uint32_t guest_port(struct bk_blkfront *f, unsigned int q, bool mq)
{
	_cleanup_free_ char *v = NULL;
	char key[64];

	if (mq)
		snprintf(key, sizeof(key), "queue-%u/event-channel", q);
	else
		snprintf(key, sizeof(key), "event-channel");
	if (bk_xbf_read(bk_bf_xbf(f), key, &v) < 0)
		return 0;
	return (uint32_t)strtoul(v, NULL, 10);
}

static bool get_stats(uint32_t domid, struct bk_queue_stats *qs, unsigned int n)
{
	struct bk_device *dev = bk_core_find(env.core, "vbd", domid, DEVID);

	memset(qs, 0, n * sizeof(*qs));
	return dev && dev->ops->get_stats(dev, qs, n) == (int)n;
}

static struct bk_blkfront *attach(uint32_t domid, const char *eng, const char *opts,
				  const struct bk_bf_params *p)
{
	const char *extra[] = { "blanket-engine", eng, opts ? "blanket-options" : NULL, opts,
				NULL };

	/* The guests share one image read-write on purpose (each in its own region): "w!". */
	if (bk_bf_env_guest(&env, domid, 4096) < 0 ||
	    bk_bf_env_add_vbd(&env, domid, DEVID, path, "w!", "disk", extra) < 0)
		return NULL;
	return bk_bf_open_connect(&env, domid, DEVID, p);
}

static void detach(struct bk_blkfront *f)
{
	if (!f)
		return;
	CHECK(bk_bf_bad_padding(f) == 0);
	CHECK(bk_bf_disconnect(f) == 0);
	bk_bf_close(f);
}

static void io_init(struct bk_bf_io *io, uint8_t op, uint64_t sector, uint32_t nr, uint8_t *data)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->sector = sector;
	io->nr_sectors = nr;
	io->data = data;
}

/* ------------------------------------------------------------------------------------------ */

#define GOOD_QD 4U
#define GOOD_IOS 128U
/* Loop turns the storm phase may last (each blocks at most 1 ms when nothing is ready). */
#define STORM_TURNS_MAX 50000U

/* The bystander: @GOOD_IOS verified 4 KiB writes then reads, @GOOD_QD at a time. */
struct bystander {
	struct bk_blkfront *f;
	struct bk_bf_io ios[GOOD_QD];
	uint8_t bufs[GOOD_QD][4096];
	unsigned int issued, done, bad;
};

static void by_issue(struct bystander *b, unsigned int slot)
{
	unsigned int n = b->issued++;
	bool write = n < GOOD_IOS / 2;
	uint64_t sector = 8ULL * (n % (GOOD_IOS / 2));

	io_init(&b->ios[slot], write ? BLKIF_OP_WRITE : BLKIF_OP_READ, sector, 8, b->bufs[slot]);
	if (write)
		memset(b->bufs[slot], (int)(0x40 + n % 64), 4096);
	CHECK(bk_bf_queue(b->f, 0, &b->ios[slot]) == 0);
}

/* Reap, verify and refill; true once every request completed. */
static bool by_step(struct bystander *b)
{
	bool queued = false;

	if (b->issued == 0) {
		for (unsigned int i = 0; i < GOOD_QD; i++)
			by_issue(b, i);
		bk_bf_push(b->f, 0);
		return false;
	}
	bk_bf_reap(b->f, 0);
	for (unsigned int i = 0; i < GOOD_QD; i++) {
		struct bk_bf_io *io = &b->ios[i];

		if (!io->done)
			continue;
		io->done = false;
		b->done++;
		if (io->status != BLKIF_RSP_OKAY) {
			b->bad++;
		} else if (io->op == BLKIF_OP_READ) {
			unsigned int w = (unsigned int)(io->sector / 8); /* the write's number */

			if (b->bufs[i][0] != 0x40 + w % 64 || b->bufs[i][4095] != 0x40 + w % 64)
				b->bad++;
		}
		if (b->issued < GOOD_IOS && (b->issued < GOOD_IOS / 2 || b->done >= GOOD_IOS / 2)) {
			by_issue(b, i);
			queued = true;
		} else {
			io->op = 0;
		}
	}
	if (queued)
		bk_bf_push(b->f, 0);
	return b->done == GOOD_IOS;
}

/* Refill a storm's credit; false if the previous credit was used up within the turn. */
static bool storm_refill(uint32_t domid, uint32_t port, unsigned int credit)
{
	unsigned int left = 0;

	CHECK(bk_sim_guest_evtchn_storm(env.sim, domid, port, credit, &left) == 0);
	return left > 0;
}

static void test_storm(void)
{
	static struct bystander by;
	static struct bk_bf_io big[NR_BIG + 1];
	static uint8_t bigbuf[NR_BIG][BIG_SECTORS * 512];
	struct bk_bf_params bp = { .pfn_base = 0, .pfn_count = 2048 };
	struct bk_bf_params ep = { .pfn_base = 0, .pfn_count = 64 };
	struct bk_bf_params gp = { .pfn_base = 0, .pfn_count = 256 };
	struct bk_queue_stats before, after, empty;
	struct bk_blkfront *blocked, *idle;
	uint32_t bport, eport;
	unsigned int turns = 0, exhausted = 0, blocked_turns = 0;
	static uint8_t buf[4096];

	printf("storm: a blocked queue and an empty ring storm while a bystander does I/O\n");
	/* Held for 4 s: longer than the storm phase takes, even under ASan (about 0.5 s). */
	blocked = attach(BLOCKED, "fault", "inner=null,delay=4000ms:write", &bp);
	idle = attach(EMPTY, "null", NULL, &ep);
	by.f = attach(GOOD, engine, NULL, &gp);
	CHECK(blocked && idle && by.f);
	if (!blocked || !idle || !by.f)
		goto out;

	for (unsigned int i = 0; i < NR_BIG; i++) {
		io_init(&big[i], BLKIF_OP_WRITE, (uint64_t)i * BIG_SECTORS, BIG_SECTORS, bigbuf[i]);
		CHECK(bk_bf_queue(blocked, 0, &big[i]) == 0);
	}
	bk_bf_push(blocked, 0);
	bk_xbf_pump(bk_bf_xbf(blocked), 5);
	CHECK(get_stats(BLOCKED, &before, 1));
	CHECK(before.ring_full > 0); /* the pool is full: the queue stopped consuming */
	io_init(&big[NR_BIG], BLKIF_OP_READ, 0, 8, buf);
	CHECK(bk_bf_queue(blocked, 0, &big[NR_BIG]) == 0);
	bk_bf_push(blocked, 0);
	bk_xbf_pump(bk_bf_xbf(blocked), 5);
	CHECK(bk_bf_reap(blocked, 0) == 0);
	CHECK(get_stats(BLOCKED, &before, 1));

	bport = guest_port(blocked, 0, false);
	eport = guest_port(idle, 0, false);
	CHECK(bport && eport);
	/*
	 * Storm until the bystander is done. The blocked queue's numbers are taken while its
	 * writes are held (on a very slow machine they may complete before the bystander does).
	 */
	after = before;
	while (turns < STORM_TURNS_MAX) {
		if (turns > 0) {
			exhausted += !storm_refill(BLOCKED, bport, STORM_CREDIT);
			exhausted += !storm_refill(EMPTY, eport, STORM_CREDIT);
		} else {
			storm_refill(BLOCKED, bport, STORM_CREDIT);
			storm_refill(EMPTY, eport, STORM_CREDIT);
		}
		if (exhausted)
			break; /* a callback did not return: no point going on */
		if (by_step(&by))
			break;
		bk_loop_run_once(env.loop, 1);
		turns++;
		bk_bf_reap(blocked, 0);
		if (blocked_turns + 1 == turns && bk_bf_outstanding(blocked, 0) == NR_BIG + 1) {
			blocked_turns++;
			CHECK(get_stats(BLOCKED, &after, 1));
		}
	}
	storm_refill(BLOCKED, bport, 0);
	storm_refill(EMPTY, eport, 0);
	CHECK(get_stats(EMPTY, &empty, 1));
	printf("  %u turns (%u with the queue blocked); bystander %u/%u done (%u bad); blocked "
	       "queue: %llu events, %llu spurious; empty ring: %llu events, %llu spurious\n",
	       turns, blocked_turns, by.done, GOOD_IOS, by.bad,
	       (unsigned long long)(after.notify_in - before.notify_in),
	       (unsigned long long)(after.spurious - before.spurious),
	       (unsigned long long)empty.notify_in, (unsigned long long)empty.spurious);
	if (exhausted)
		fprintf(stderr,
			"  an event callback handled %u storm events without returning to "
			"the loop\n",
			STORM_CREDIT);
	CHECK(exhausted == 0);
	CHECK(by.done == GOOD_IOS && by.bad == 0);
	/* The storm went on for a while against the blocked queue... */
	CHECK(blocked_turns >= 20);
	/* ...which kept its port masked: the storm reached the daemon only a few times... */
	CHECK(after.notify_in - before.notify_in <= 2);
	/* ...and any that did took nothing: spurious. */
	CHECK(after.spurious - before.spurious == after.notify_in - before.notify_in);
	/* The empty ring's storm is counted and backed off. */
	CHECK(empty.spurious > 16 && empty.spurious <= empty.notify_in);
	CHECK(empty.notify_in < (unsigned long long)turns * 2 + 2);

	/* The writes complete: the blocked guest is served without notifying again. */
	for (unsigned int i = 0; i < 2000 && bk_bf_outstanding(blocked, 0); i++) {
		bk_loop_run_once(env.loop, 10);
		bk_bf_reap(blocked, 0);
	}
	CHECK(bk_bf_outstanding(blocked, 0) == 0);
	for (unsigned int i = 0; i <= NR_BIG; i++)
		CHECK(big[i].done && big[i].status == BLKIF_RSP_OKAY);
	/* Both stormers still serve. */
	CHECK(bk_bf_rw(blocked, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
	CHECK(bk_bf_rw(idle, 0, BLKIF_OP_READ, 0, 8, buf, false) == BLKIF_RSP_OKAY);
out:
	detach(blocked);
	detach(idle);
	detach(by.f);
}

/* ------------------------------------------------------------------------------------------ */

static void stopped(void *data)
{
	*(bool *)data = true;
}

static bool flag_cond(void *data)
{
	return *(bool *)data;
}

static void test_handover(void)
{
	static struct bk_bf_io w, r;
	static uint8_t wbuf[4096], rbuf[4096];
	struct bk_bf_params p = { .pfn_base = 0, .pfn_count = 64 };
	struct bk_queue_stats before, after;
	struct bk_blkfront *f;
	unsigned int turns = 0, exhausted = 0;
	uint32_t port;
	bool done = false;

	printf("handover: a guest storms while the daemon hands over\n");
	f = attach(BLOCKED, "fault", "inner=null,delay=1000ms:write", &p);
	CHECK(f != NULL);
	if (!f)
		return;
	port = guest_port(f, 0, false);
	/* A write the daemon holds: the handover waits for it. */
	io_init(&w, BLKIF_OP_WRITE, 0, 8, wbuf);
	CHECK(bk_bf_queue(f, 0, &w) == 0);
	bk_bf_push(f, 0);
	bk_xbf_pump(bk_bf_xbf(f), 3);
	CHECK(get_stats(BLOCKED, &before, 1));
	bk_core_stop(env.core, stopped, &done);
	/* The guest queues more and storms: nothing new is taken until the next daemon. */
	io_init(&r, BLKIF_OP_READ, 8, 8, rbuf);
	CHECK(bk_bf_queue(f, 0, &r) == 0);
	bk_bf_push(f, 0);
	after = before;
	while (!done && turns < 5000) {
		unsigned int left = 0;
		int rs = bk_sim_guest_evtchn_storm(env.sim, BLOCKED, port, STORM_CREDIT, &left);

		/* -ENOTCONN: released, the handover completes in this turn's hook. */
		CHECK(rs == 0 || rs == -ENOTCONN);
		exhausted += rs == 0 && left == 0 && turns > 0;
		if (exhausted)
			break;
		bk_loop_run_once(env.loop, 1);
		turns++;
		if (bk_core_find(env.core, "vbd", BLOCKED, DEVID))
			CHECK(get_stats(BLOCKED, &after, 1));
	}
	bk_sim_guest_evtchn_storm(env.sim, BLOCKED, port, 0, NULL); /* may be unbound by now */
	printf("  %u turns, handover %s; %llu events, %llu spurious\n", turns,
	       done ? "done" : "NOT done", (unsigned long long)(after.notify_in - before.notify_in),
	       (unsigned long long)(after.spurious - before.spurious));
	if (exhausted)
		fprintf(stderr, "  an event callback handled %u storm events without returning\n",
			STORM_CREDIT);
	CHECK(exhausted == 0);
	CHECK(done);
	/* The one event that got through took nothing: spurious, and the port stayed masked. */
	CHECK(after.spurious - before.spurious >= 1);
	CHECK(after.notify_in - before.notify_in <= 2);
	CHECK(after.spurious - before.spurious == after.notify_in - before.notify_in);
	/* The held write was answered; the read waits for the next daemon. */
	bk_bf_reap(f, 0);
	CHECK(w.done && w.status == BLKIF_RSP_OKAY && !r.done);
	if (!done)
		bk_test_pump_until(env.loop, flag_cond, &done, 0);
	bk_core_free(env.core);
	env.core = NULL;
	bk_bf_close(f);
}

/* ------------------------------------------------------------------------------------------ */

static void test_efbig(void)
{
	static struct bk_bf_io ios[4];
	static uint8_t bufs[4][4096];
	struct bk_bf_params p = { .nr_queues = 4, .pfn_base = 0, .pfn_count = 256 };
	struct bk_blkfront *f;
	unsigned int rounds = 0;

	printf("efbig: one pending port per handle fits; the others are lost\n");
	f = attach(FOUR, engine, NULL, &p);
	CHECK(f != NULL);
	if (!f)
		return;
	bk_sim_evtchn_ring_size(env.sim, 1);
	for (; rounds < 20; rounds++) {
		bool ok = true;

		for (unsigned int q = 0; q < 4; q++) {
			io_init(&ios[q], q % 2 ? BLKIF_OP_READ : BLKIF_OP_WRITE,
				8ULL * (rounds * 4 + q), 8, bufs[q]);
			CHECK(bk_bf_queue(f, q, &ios[q]) == 0);
		}
		/* All four notify before the daemon looks: three of the events are lost. */
		for (unsigned int q = 0; q < 4; q++)
			bk_bf_push(f, q);
		for (unsigned int q = 0; q < 4; q++)
			ok = bk_bf_wait_all(f, q) == 0 && ios[q].status == BLKIF_RSP_OKAY && ok;
		if (!ok)
			break;
	}
	bk_sim_evtchn_ring_size(env.sim, 0);
	printf("  %u/20 rounds served\n", rounds);
	CHECK(rounds == 20);
	detach(f);
}

/* ------------------------------------------------------------------------------------------ */

#define FAIR_TURNS 400U
#define FAIR_WARMUP 20U
#define FAIR_ORDER 2U /* 128 entries per ring: more than a turn's budget */

struct loaded {
	struct bk_blkfront *f;
	unsigned int nq, ents;
	struct bk_bf_io *ios;
	uint8_t (*bufs)[4096];
	uint64_t served[4];
};

static int load_fill(struct loaded *l)
{
	l->ents = bk_bf_ring_entries(l->f, 0);
	l->ios = calloc((size_t)l->nq * l->ents, sizeof(*l->ios));
	l->bufs = calloc((size_t)l->nq * l->ents, sizeof(*l->bufs));
	if (!l->ios || !l->bufs)
		return -ENOMEM;
	for (unsigned int q = 0; q < l->nq; q++) {
		for (unsigned int i = 0; i < l->ents; i++) {
			unsigned int k = q * l->ents + i;

			io_init(&l->ios[k], BLKIF_OP_READ, 8ULL * k, 8, l->bufs[k]);
			if (bk_bf_queue(l->f, q, &l->ios[k]) < 0)
				return -EBUSY;
		}
		bk_bf_push(l->f, q);
	}
	return 0;
}

/* Reap and re-queue everything that completed; count it when @count. */
static unsigned int load_step(struct loaded *l, bool count)
{
	unsigned int n = 0;

	for (unsigned int q = 0; q < l->nq; q++) {
		unsigned int got = bk_bf_reap(l->f, q);

		if (!got)
			continue;
		for (unsigned int i = 0; i < l->ents; i++) {
			struct bk_bf_io *io = &l->ios[q * l->ents + i];

			if (!io->done)
				continue;
			CHECK(io->status == BLKIF_RSP_OKAY);
			io->done = false;
			CHECK(bk_bf_queue(l->f, q, io) == 0);
		}
		bk_bf_push(l->f, q);
		if (count)
			l->served[q] += got;
		n += got;
	}
	return n;
}

static void load_free(struct loaded *l)
{
	if (l->f)
		for (unsigned int q = 0; q < l->nq; q++)
			CHECK(bk_bf_wait_all(l->f, q) == 0);
	detach(l->f);
	free(l->ios);
	free(l->bufs);
}

static void test_fair(void)
{
	struct bk_bf_params p4 = { .nr_queues = 4, .ring_order = FAIR_ORDER, .pfn_count = 1024 };
	struct bk_bf_params p1 = { .nr_queues = 0, .ring_order = FAIR_ORDER, .pfn_count = 1024 };
	struct loaded four = { .nq = 4 }, one = { .nq = 1 };
	uint64_t t4 = 0, t1 = 0, qmin = UINT64_MAX, max4 = 0, max1 = 0;

	printf("fair: a 4-queue and a 1-queue guest, every ring kept full\n");
	four.f = attach(FOUR, "null", NULL, &p4);
	one.f = attach(ONE, "null", NULL, &p1);
	CHECK(four.f && one.f);
	if (!four.f || !one.f)
		goto out;
	CHECK(load_fill(&four) == 0 && load_fill(&one) == 0);
	for (unsigned int turn = 0; turn < FAIR_TURNS; turn++) {
		bool count = turn >= FAIR_WARMUP;
		unsigned int n4, n1;

		bk_loop_run_once(env.loop, 0);
		n4 = load_step(&four, count);
		n1 = load_step(&one, count);
		if (count) {
			max4 = BK_MAX(max4, n4);
			max1 = BK_MAX(max1, n1);
		}
	}
	for (unsigned int q = 0; q < 4; q++) {
		t4 += four.served[q];
		qmin = BK_MIN(qmin, four.served[q]);
	}
	t1 = one.served[0];
	printf("  per turn: 4-queue guest %.1f (max %llu; per queue %llu %llu %llu %llu), "
	       "1-queue guest %.1f (max %llu)\n",
	       (double)t4 / (FAIR_TURNS - FAIR_WARMUP), (unsigned long long)max4,
	       (unsigned long long)four.served[0], (unsigned long long)four.served[1],
	       (unsigned long long)four.served[2], (unsigned long long)four.served[3],
	       (double)t1 / (FAIR_TURNS - FAIR_WARMUP), (unsigned long long)max1);
	CHECK(t1 > 0 && t4 > 0);
	/* The same share per device, whatever its queue count... */
	CHECK(t4 * 2 <= t1 * 3 && t1 * 2 <= t4 * 3);
	/* ...and no queue of the 4-queue guest left behind (round-robin start). */
	CHECK(qmin * 8 >= t4);
out:
	load_free(&four);
	load_free(&one);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "storm";
	int fd;

	engine = argc > 2 ? argv[2] : "io_uring";
	if (bk_bf_engines_missing(engine, "fault", "null", NULL))
		return 77;
	fd = bk_bf_tmpfile("/var/tmp", DISK_BYTES, 0, path, sizeof(path));
	if (fd < 0 || bk_bf_env_new(&env) < 0)
		return 1;
	if (!strcmp(mode, "storm")) {
		test_storm();
	} else if (!strcmp(mode, "handover")) {
		test_handover();
	} else if (!strcmp(mode, "efbig")) {
		test_efbig();
	} else if (!strcmp(mode, "fair")) {
		test_fair();
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		bk_test_failures++;
	}
	bk_bf_env_free(&env);
	close(fd);
	unlink(path);
	return bk_test_exit();
}
