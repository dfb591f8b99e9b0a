// SPDX-License-Identifier: MIT
/*
 * Unit tests of the simulation's event channels: binding rules, delivery both ways, the
 * eventfd, masking and redelivery on unmask, unbind and handle close (rebind after a daemon
 * restart), domain destroy, the bounded queue's overflow (EFBIG), a storming guest, and the
 * batching of reads and unmasks (one read of many ports, one write of many unmasks).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen/sim.h"
#include "check.h"

#define GUEST 5U
#define OTHER 6U

static struct bk_sim *sim;
static struct bk_xen *dom0;

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_bind_rules(void)
{
	struct bk_evtchn *e;
	uint32_t gp, gp_other, lp = 777, lp2;

	CHECK(bk_evtchn_open(dom0, &e) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp) == 0);
	CHECK(gp != 0);
	/* Allocated for another domain: dom0 may not bind it. */
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, OTHER, &gp_other) == 0);
	CHECK(bk_evtchn_bind(e, GUEST, gp_other, &lp) == -EINVAL && lp == 777);
	/* Wrong port, wrong domain, port 0, unknown domain. */
	CHECK(bk_evtchn_bind(e, GUEST, gp + 100, &lp) == -EINVAL);
	CHECK(bk_evtchn_bind(e, OTHER, gp, &lp) == -EINVAL);
	CHECK(bk_evtchn_bind(e, GUEST, 0, &lp) == -EINVAL);
	CHECK(bk_evtchn_bind(e, 99, gp, &lp) == -EINVAL);
	CHECK(lp == 777);
	CHECK(!bk_sim_guest_evtchn_bound(sim, GUEST, gp));
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp) == -ENOTCONN);
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == 0);
	CHECK(bk_sim_guest_evtchn_bound(sim, GUEST, gp));
	/* Already bound: a second bind is refused. */
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp2) == -EINVAL);
	/* Ports of another handle or never bound are not ours. */
	CHECK(bk_evtchn_notify(e, lp + 50) == -EINVAL);
	CHECK(bk_evtchn_unmask(e, lp + 50) == -EINVAL);
	CHECK(bk_evtchn_unbind(e, lp + 50) == -EINVAL);
	CHECK(bk_evtchn_unbind(e, lp) == 0);
	CHECK(bk_evtchn_unbind(e, lp) == -EINVAL);
	CHECK(!bk_sim_guest_evtchn_bound(sim, GUEST, gp));
	/* Unbinding put the guest port back: it can be bound again. */
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == 0);
	bk_evtchn_close(e);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp) == 0);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp_other) == 0);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp_other) == -EINVAL);
}

static void test_delivery(void)
{
	struct bk_evtchn *e;
	uint32_t gp1, gp2, lp1, lp2, port = 0;
	int fd;

	CHECK(bk_evtchn_open(dom0, &e) == 0);
	fd = bk_evtchn_fd(e);
	CHECK(fd >= 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp1) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp2) == 0);
	CHECK(bk_evtchn_bind(e, GUEST, gp1, &lp1) == 0);
	CHECK(bk_evtchn_bind(e, GUEST, gp2, &lp2) == 0);
	CHECK(lp1 != lp2);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);

	/* Backend -> guest: counted on the guest port. */
	CHECK(bk_sim_guest_evtchn_take(sim, GUEST, gp1) == 0);
	CHECK(bk_evtchn_notify(e, lp1) == 0);
	CHECK(bk_evtchn_notify(e, lp1) == 0);
	CHECK(bk_sim_guest_evtchn_take(sim, GUEST, gp1) == 2);
	CHECK(bk_sim_guest_evtchn_take(sim, GUEST, gp1) == 0);
	CHECK(bk_sim_guest_evtchn_take(sim, GUEST, gp2) == 0);
	CHECK(!readable(fd));

	/* Guest -> backend: the fd becomes readable, the port comes out once, masked. */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp2) == 0);
	CHECK(readable(fd));
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp2) == 0);
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp2);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	/* Notifications while masked are remembered, not queued... */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp2) == 0);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	/* ...and delivered on unmask. */
	CHECK(bk_evtchn_unmask(e, lp2) == 0);
	CHECK(readable(fd));
	port = 0;
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp2);
	/* Unmask with nothing pending leaves the ring empty; the next kick arrives again. */
	CHECK(bk_evtchn_unmask(e, lp2) == 0);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);

	/* Two ports, in the order they fired, taken off the queue by one read. */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp2) == 0);
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp1) == 0);
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp2);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp1);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_unmask(e, lp1) == 0);
	CHECK(bk_evtchn_unmask(e, lp2) == 0);

	/* Unbinding a queued port takes it off the ring. */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp1) == 0);
	CHECK(readable(fd));
	CHECK(bk_evtchn_unbind(e, lp1) == 0);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);

	/* The guest closes its end: the backend's notify is dropped, as Xen does. */
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp2) == 0);
	CHECK(bk_evtchn_notify(e, lp2) == 0);
	CHECK(bk_evtchn_unbind(e, lp2) == 0);
	bk_evtchn_close(e);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp1) == 0);
}

/* The daemon restarts: its handle closes, the guest port goes back to unbound, a new handle binds.
 */
static void test_rebind_after_close(void)
{
	struct bk_evtchn *e, *e2;
	struct bk_sim_counts c;
	uint32_t gp, lp, port;

	CHECK(bk_evtchn_open(dom0, &e) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp) == 0);
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == 0);
	bk_sim_counts(sim, &c);
	CHECK(c.evtchn_handles == 1 && c.evtchn_bound == 1);
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp) == 0);
	bk_evtchn_close(e);
	bk_sim_counts(sim, &c);
	CHECK(c.evtchn_handles == 0 && c.evtchn_bound == 0);
	CHECK(!bk_sim_guest_evtchn_bound(sim, GUEST, gp));
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp) == -ENOTCONN);

	CHECK(bk_evtchn_open(dom0, &e2) == 0);
	CHECK(bk_evtchn_bind(e2, GUEST, gp, &lp) == 0);
	CHECK(bk_sim_guest_evtchn_bound(sim, GUEST, gp));
	/* Nothing from the old handle's life leaks into the new one. */
	CHECK(bk_evtchn_pending(e2, &port) == -EAGAIN);
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp) == 0);
	CHECK(bk_evtchn_pending(e2, &port) == 0 && port == lp);
	bk_evtchn_close(e2);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp) == 0);
}

/* A domU backend (driver domain) binding to another domU, and domain destroy. */
static void test_domu_and_destroy(void)
{
	struct bk_xen *x6;
	struct bk_evtchn *e6, *e0;
	uint32_t gp, gp0, lp, lp0;

	CHECK(bk_sim_platform(sim, OTHER, &x6) == 0);
	CHECK(bk_evtchn_open(x6, &e6) == 0);
	CHECK(bk_evtchn_open(dom0, &e0) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, OTHER, &gp) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp0) == 0);
	CHECK(bk_evtchn_bind(e0, GUEST, gp, &lp) == -EINVAL);
	CHECK(bk_evtchn_bind(e6, GUEST, gp, &lp) == 0);
	CHECK(bk_evtchn_bind(e0, GUEST, gp0, &lp0) == 0);
	CHECK(bk_evtchn_notify(e6, lp) == 0);
	CHECK(bk_sim_guest_evtchn_take(sim, GUEST, gp) == 1);

	CHECK(bk_sim_domain_destroy(sim, GUEST) == 0);
	CHECK(!bk_sim_guest_evtchn_bound(sim, GUEST, gp));
	/* The backend's ports stay its own until it unbinds; sends go nowhere. */
	CHECK(bk_evtchn_notify(e6, lp) == 0);
	CHECK(bk_evtchn_notify(e0, lp0) == 0);
	CHECK(bk_evtchn_unbind(e6, lp) == 0);
	bk_evtchn_close(e6);
	bk_evtchn_close(e0);
	bk_xen_free(x6);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp) == -ESRCH);
	CHECK(bk_sim_domain_create(sim, GUEST, 1) == 0);
}

/* A bounded queue overflows as the kernel's: the event is lost, reported once, then reset. */
static void test_overflow(void)
{
	struct bk_evtchn *e;
	uint32_t gp[3], lp[3], port = 0;
	int fd;

	CHECK(bk_evtchn_open(dom0, &e) == 0);
	fd = bk_evtchn_fd(e);
	for (int i = 0; i < 3; i++) {
		CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp[i]) == 0);
		CHECK(bk_evtchn_bind(e, GUEST, gp[i], &lp[i]) == 0);
	}
	bk_sim_evtchn_ring_size(sim, 2);
	/* Two fit. */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[0]) == 0);
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[1]) == 0);
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp[0]);
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp[1]);
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	CHECK(bk_evtchn_unmask(e, lp[0]) == 0 && bk_evtchn_unmask(e, lp[1]) == 0);
	/* Three do not: the third is lost, and so are the two queued when the queue resets. */
	for (int i = 0; i < 3; i++)
		CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[i]) == 0);
	CHECK(readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EFBIG);
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	/* Every port is left masked with nothing pending: unmasking delivers nothing... */
	for (int i = 0; i < 3; i++)
		CHECK(bk_evtchn_unmask(e, lp[i]) == 0);
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	/* ...and the next kick arrives again. */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[2]) == 0);
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp[2]);
	CHECK(bk_evtchn_unmask(e, lp[2]) == 0);
	bk_sim_evtchn_ring_size(sim, 0);
	bk_evtchn_close(e);
	for (int i = 0; i < 3; i++)
		CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp[i]) == 0);
}

/* What bk_evtchn_drain's callbacks saw. */
struct drained {
	uint32_t ports[8];
	unsigned int n, lost;
};

static void drained_port(void *data, uint32_t port)
{
	struct drained *d = data;

	if (d->n < 8)
		d->ports[d->n] = port;
	d->n++;
}

static void drained_lost(void *data)
{
	((struct drained *)data)->lost++;
}

/*
 * The backends' drain (src/xen/evtchn_util.c): ports in order, at most @max a call (the rest
 * stays queued for the next), and an overflow reported once, ending the call.
 */
static void test_drain(void)
{
	struct bk_evtchn *e;
	struct drained d = { 0 };
	uint32_t gp[3], lp[3];

	CHECK(bk_evtchn_open(dom0, &e) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp[i]) == 0);
		CHECK(bk_evtchn_bind(e, GUEST, gp[i], &lp[i]) == 0);
	}
	for (int i = 0; i < 3; i++)
		CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[i]) == 0);
	CHECK(bk_evtchn_drain(e, 2, drained_port, drained_lost, &d) == 2);
	CHECK(d.n == 2 && d.ports[0] == lp[0] && d.ports[1] == lp[1] && d.lost == 0);
	CHECK(bk_evtchn_drain(e, 2, drained_port, drained_lost, &d) == 1);
	CHECK(d.n == 3 && d.ports[2] == lp[2]);
	CHECK(bk_evtchn_drain(e, 2, drained_port, drained_lost, &d) == 0 && d.n == 3);
	for (int i = 0; i < 3; i++)
		CHECK(bk_evtchn_unmask(e, lp[i]) == 0);

	/* Overflow: EFBIG ends the call with one report, the queued port dropped with it. */
	bk_sim_evtchn_ring_size(sim, 1);
	memset(&d, 0, sizeof(d));
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[0]) == 0);
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[1]) == 0);
	CHECK(bk_evtchn_drain(e, 8, drained_port, drained_lost, &d) == 0 && d.n == 0);
	CHECK(d.lost == 1);
	CHECK(bk_evtchn_drain(e, 8, drained_port, drained_lost, &d) == 0 && d.lost == 1);
	bk_sim_evtchn_ring_size(sim, 0);
	bk_evtchn_close(e);
	for (int i = 0; i < 3; i++)
		CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp[i]) == 0);
}

/* A storming guest is raised again on every unmask, as many times as its credit says. */
static void test_storm(void)
{
	struct bk_evtchn *e;
	uint32_t gp, lp, port = 0;
	unsigned int left = 99, n = 0;

	CHECK(bk_evtchn_open(dom0, &e) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp) == 0);
	CHECK(bk_sim_guest_evtchn_storm(sim, GUEST, gp, 3, NULL) == -ENOTCONN);
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == 0);
	CHECK(bk_sim_guest_evtchn_storm(sim, GUEST, gp, 3, &left) == 0 && left == 0);
	/* Masked while we hold it: the storm cannot queue it twice. */
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp);
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	while (n < 10 && bk_evtchn_unmask(e, lp) == 0 && bk_evtchn_pending(e, &port) == 0) {
		n++;
		/* As many taken as bound: the handle reads no more until the next callback. */
		CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	}
	CHECK(n == 2); /* the first raise, then two more out of a credit of 3 */
	CHECK(bk_sim_guest_evtchn_storm(sim, GUEST, gp, 5, &left) == 0 && left == 0);
	CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp);
	CHECK(bk_sim_guest_evtchn_storm(sim, GUEST, gp, 0, &left) == 0 && left == 4);
	CHECK(bk_evtchn_unmask(e, lp) == 0);
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	bk_evtchn_close(e);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp) == 0);
}

/* Reads and unmask writes made so far, as syscalls on /dev/xen/evtchn. */
static void calls(uint64_t *ret_reads, uint64_t *ret_writes)
{
	bk_sim_evtchn_calls(sim, ret_reads, ret_writes);
}

/*
 * What a backend's event callback does: take at most @left ports (at least as many as it bound),
 * unmask each after handling it, stop at -EAGAIN. Returns the ports taken, in @got.
 */
static unsigned int callback(struct bk_evtchn *e, unsigned int left, uint32_t *got)
{
	unsigned int n = 0;
	uint32_t port;

	while (left--) {
		if (bk_evtchn_pending(e, &port) < 0)
			break;
		got[n++] = port;
		CHECK(bk_evtchn_unmask(e, port) == 0);
	}
	return n;
}

/*
 * Four ports pending at once cost one read and two unmask writes (the first three together,
 * then the last one at once, since nothing tells the handle the caller is done with it), not
 * a read and a write per port. A port read in a batch is never left behind by a caller that
 * takes as many ports as it bound, even when the guest raises them again meanwhile.
 */
static void test_batching(void)
{
	struct bk_evtchn *e;
	uint32_t gp[4], lp[4], got[16], port = 0;
	uint64_t r0, w0, r1, w1;
	unsigned int n, seen1 = 0;
	int fd;

	CHECK(bk_evtchn_open(dom0, &e) == 0);
	fd = bk_evtchn_fd(e);
	for (int i = 0; i < 4; i++) {
		CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp[i]) == 0);
		CHECK(bk_evtchn_bind(e, GUEST, gp[i], &lp[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[i]) == 0);
	calls(&r0, &w0);
	n = callback(e, 8, got);
	calls(&r1, &w1);
	CHECK(n == 4);
	for (unsigned int i = 0; i < n && i < 4; i++)
		CHECK(got[i] == lp[i]);
	CHECK(r1 - r0 == 1);
	CHECK(w1 - w0 == 2);
	CHECK(!readable(fd));
	/* Every port was unmasked: each is delivered again, in one more read. */
	for (int i = 3; i >= 0; i--)
		CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[i]) == 0);
	calls(&r0, &w0);
	CHECK(callback(e, 4, got) == 4 && got[0] == lp[3] && got[3] == lp[0]);
	calls(&r1, &w1);
	CHECK(r1 - r0 == 1 && w1 - w0 == 2);
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);

	/*
	 * Two of the four pending: the read that returns fewer than it asked for emptied the
	 * kernel's queue, so the callback ends after handing them out without a second read
	 * (which could only say EAGAIN: the fd polls readable again if more arrive).
	 */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[2]) == 0);
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[0]) == 0);
	calls(&r0, &w0);
	CHECK(callback(e, 4, got) == 2 && got[0] == lp[2] && got[1] == lp[0]);
	calls(&r1, &w1);
	CHECK(r1 - r0 == 1);
	CHECK(!readable(fd));
	/* The next callback reads again. */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[1]) == 0);
	CHECK(readable(fd));
	CHECK(callback(e, 4, got) == 1 && got[0] == lp[1]);

	/*
	 * A guest raising port 0 again as soon as it is unmasked, and port 1 raised meanwhile: a
	 * callback that takes four ports (as many as bound) leaves whatever it did not take in
	 * the handle's queue, where the fd says so, never read and held back out of sight.
	 */
	CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[0]) == 0);
	CHECK(bk_sim_guest_evtchn_storm(sim, GUEST, gp[0], 100, NULL) == 0);
	for (int turn = 0; turn < 20; turn++) {
		n = callback(e, 4, got);
		CHECK(n <= 4);
		for (unsigned int i = 0; i < n; i++)
			seen1 += got[i] == lp[1];
		/* Whatever is pending shows on the fd for the loop's next turn. */
		CHECK(readable(fd));
		if (turn == 3)
			CHECK(bk_sim_guest_evtchn_notify(sim, GUEST, gp[1]) == 0);
	}
	CHECK(bk_sim_guest_evtchn_storm(sim, GUEST, gp[0], 0, NULL) == 0);
	CHECK(seen1 == 1);
	/* Port 0 is still pending and the fd says so. */
	CHECK(readable(fd));
	n = callback(e, 4, got);
	CHECK(n >= 1 && got[0] == lp[0]);
	while (callback(e, 4, got))
		;
	CHECK(!readable(fd));
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
	bk_evtchn_close(e);
	for (int i = 0; i < 4; i++)
		CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp[i]) == 0);
}

static void test_faults(void)
{
	struct bk_evtchn *e;
	uint32_t gp, lp = 777;

	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_EVTCHN_OPEN, 0, -EMFILE) == 0);
	CHECK(bk_evtchn_open(dom0, &(struct bk_evtchn *){ NULL }) == -EMFILE);
	CHECK(bk_evtchn_open(dom0, &e) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(sim, GUEST, 0, &gp) == 0);
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_EVTCHN_BIND, 0, -ENOSPC) == 0);
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == -ENOSPC && lp == 777);
	CHECK(!bk_sim_guest_evtchn_bound(sim, GUEST, gp));
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == 0);
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_EVTCHN_NOTIFY, 0, -EIO) == 0);
	CHECK(bk_evtchn_notify(e, lp) == -EIO);
	CHECK(bk_sim_guest_evtchn_take(sim, GUEST, gp) == 0);
	CHECK(bk_evtchn_notify(e, lp) == 0);
	CHECK(bk_sim_guest_evtchn_take(sim, GUEST, gp) == 1);
	bk_evtchn_close(e);
	CHECK(bk_sim_guest_evtchn_close(sim, GUEST, gp) == 0);
}

int main(void)
{
	struct bk_sim_counts c;

	if (bk_sim_new(&sim) < 0 || bk_sim_domain_create(sim, GUEST, 1) < 0 ||
	    bk_sim_domain_create(sim, OTHER, 1) < 0 || bk_sim_platform(sim, 0, &dom0) < 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	test_bind_rules();
	test_delivery();
	test_rebind_after_close();
	test_faults();
	test_overflow();
	test_drain();
	test_storm();
	test_batching();
	test_domu_and_destroy();
	bk_sim_counts(sim, &c);
	CHECK(c.evtchn_handles == 0 && c.evtchn_bound == 0);
	bk_xen_free(dom0);
	bk_sim_free(sim);
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
