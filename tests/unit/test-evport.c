// SPDX-License-Identifier: MIT
/*
 * The shared XSA-332 port policy (src/xen/evport.h) on a simulated port: masked from its event
 * until settled idle, an event that took nothing counted as spurious unless not the guest's
 * doing, work resetting the run, 16 spurious events in a row backing the port off (kept masked,
 * the timer calling back after the delay, said once), a lost event not counted.
 */
#include <errno.h>
#include <stdio.h>

#include "check.h"
#include "loop.h"
#include "xen/evport.h"
#include "xen/sim.h"

#define GUEST 5U

static struct bk_sim *sim;
static struct bk_xen *dom0;
static unsigned int backoff_calls;

static void backoff_cb(void *data)
{
	backoff_calls++;
}

/* One fd callback's read of the handle: true if @lp was pending (then masked). */
static bool take(struct bk_evtchn *e, uint32_t lp)
{
	uint32_t port = 0;
	int r = bk_evtchn_pending(e, &port);

	/* The batch ends with the next call (evtchn_batch.h). */
	CHECK(bk_evtchn_pending(e, &(uint32_t){ 0 }) == -EAGAIN);
	if (r < 0)
		return false;
	CHECK(port == lp);
	return port == lp;
}

/* The guest notifies: true if the event reached the handle (the port was unmasked). */
static bool delivered(struct bk_evtchn *e, uint32_t gp, uint32_t lp)
{
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp) == 0);
	return take(e, lp);
}

int main(void)
{
	struct bk_loop *loop = NULL;
	struct bk_evtchn *e = NULL;
	struct bk_evport p = { 0 };
	uint32_t gp, lp;
	unsigned int v;

	if (bk_sim_new(&sim) < 0 || bk_sim_domain_create(sim, GUEST, 1) < 0 ||
	    bk_sim_platform(sim, 0, &dom0) < 0 || bk_loop_new(&loop) < 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	CHECK(bk_evtchn_open(dom0, &e) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp) == 0);
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == 0);
	CHECK(bk_evport_init(&p, loop, e, lp, backoff_cb, NULL) == 0);

	/* An event that took work, ring caught up: not spurious, unmasked. */
	CHECK(delivered(e, gp, lp));
	bk_evport_event(&p, false);
	bk_evport_took(&p, 3);
	CHECK(bk_evport_settle(&p, true, true) == 0);
	CHECK(!p.masked);
	/* Not caught up: stays masked (the guest's notifies wait), unmasked by a rearm when idle.
	 */
	CHECK(delivered(e, gp, lp));
	bk_evport_event(&p, false);
	bk_evport_took(&p, 1);
	CHECK(bk_evport_settle(&p, false, true) == 0);
	CHECK(p.masked && !delivered(e, gp, lp));
	bk_evport_rearm(&p, false);
	CHECK(p.masked);
	bk_evport_rearm(&p, true);
	CHECK(!p.masked);
	/* The notify made while masked comes out once unmasked. */
	CHECK(take(e, lp));
	/* Nothing taken but not the guest's doing (budget, rate limit): not counted. */
	bk_evport_event(&p, false);
	CHECK(bk_evport_settle(&p, true, false) == 0);
	CHECK(!p.masked && p.spurious_run == 0);
	/* A lost event (EFBIG) is served but not counted. */
	CHECK(delivered(e, gp, lp));
	bk_evport_event(&p, true);
	CHECK(bk_evport_settle(&p, true, true) == 0);
	CHECK(!p.masked && p.spurious_run == 0);

	/* Spurious events: counted, unmasked at once up to the limit... */
	for (unsigned int i = 0; i < BK_EVPORT_SPURIOUS_LIMIT; i++) {
		CHECK(delivered(e, gp, lp));
		bk_evport_event(&p, false);
		CHECK(bk_evport_settle(&p, true, true) == BK_EVPORT_SPURIOUS);
		CHECK(!p.masked);
	}
	/* ...then the port backs off, masked, said once... */
	CHECK(delivered(e, gp, lp));
	bk_evport_event(&p, false);
	v = bk_evport_settle(&p, true, true);
	CHECK(v == (BK_EVPORT_SPURIOUS | BK_EVPORT_STORM));
	CHECK(p.masked && bk_evport_backing_off(&p));
	CHECK(!delivered(e, gp, lp));
	bk_evport_rearm(&p, true); /* not while backing off */
	CHECK(p.masked);
	/* ...until the timer calls back (2 ms); then a rearm unmasks it. */
	for (int i = 0; i < 100 && !backoff_calls; i++)
		bk_loop_run_once(loop, 10);
	CHECK(backoff_calls == 1 && !bk_evport_backing_off(&p));
	bk_evport_rearm(&p, true);
	CHECK(!p.masked);
	CHECK(take(e, lp));
	/* Still storming: backs off again, not said again. */
	bk_evport_event(&p, false);
	CHECK(bk_evport_settle(&p, true, true) == BK_EVPORT_SPURIOUS);
	CHECK(bk_evport_backing_off(&p));
	bk_evport_stop(&p);
	CHECK(!bk_evport_backing_off(&p));
	bk_evport_rearm(&p, true);
	/* Work resets the run: the next empty event is not backed off. */
	CHECK(delivered(e, gp, lp));
	bk_evport_event(&p, false);
	bk_evport_took(&p, 1);
	CHECK(bk_evport_settle(&p, true, true) == 0);
	CHECK(p.spurious_run == 0 && !p.masked);
	CHECK(delivered(e, gp, lp));
	bk_evport_event(&p, false);
	CHECK(bk_evport_settle(&p, true, true) == BK_EVPORT_SPURIOUS);
	CHECK(!p.masked && !bk_evport_backing_off(&p));

	bk_evport_free(&p);
	CHECK(bk_evtchn_unbind(e, lp) == 0);
	bk_evtchn_close(e);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp) == 0);
	bk_loop_free(loop);
	bk_xen_free(dom0);
	bk_sim_free(sim);
	return bk_test_exit();
}
