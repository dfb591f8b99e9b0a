// SPDX-License-Identifier: MIT
/*
 * Simulated event channels. Every domain has a port table; a guest allocates an unbound port
 * for a remote domain, and a handle (the backend's view, like /dev/xen/evtchn) binds to it.
 * Delivery to a handle follows libxenevtchn: the port is queued and masked, the handle's
 * eventfd is readable while anything is queued, and a notification that arrives while the
 * port is masked is remembered and delivered again on unmask. Delivery to a guest port just
 * counts, for bk_sim_guest_evtchn_take().
 *
 * Two things a test can ask for that the kernel does under load: a bounded per-handle queue
 * (bk_sim_evtchn_ring_size) that overflows as Linux's evtchn ring does (the event is lost, the
 * port stays masked, reads say EFBIG until the queue is reset), and a guest that notifies in a
 * tight loop on another CPU (bk_sim_guest_evtchn_storm: raised again whenever unmasked).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sim_internal.h"
#include "util/macros.h"

static struct sim_evtchn *evtchn_of(struct bk_evtchn *e)
{
	return container_of(e, struct sim_evtchn, base);
}

static struct sim_port *port_get(struct sim_domain *d, uint32_t port)
{
	if (port == 0 || port >= d->nr_ports_alloc)
		return NULL;
	return d->ports[port];
}

/* A new port in @d, lowest number first (deterministic). */
static int port_alloc(struct sim_domain *d, struct sim_port **ret)
{
	struct sim_port *p;
	uint32_t port;

	for (port = 1; port < d->nr_ports_alloc; port++)
		if (!d->ports[port])
			break;
	if (port >= d->nr_ports_alloc) {
		uint32_t nr = d->nr_ports_alloc ? d->nr_ports_alloc * 2 : 64;
		struct sim_port **t;

		if (port >= SIM_EVTCHN_MAX_PORTS)
			return -ENOSPC;
		nr = BK_MIN(nr, SIM_EVTCHN_MAX_PORTS);
		t = realloc(d->ports, nr * sizeof(*t));
		if (!t)
			return -ENOMEM;
		memset(t + d->nr_ports_alloc, 0, (nr - d->nr_ports_alloc) * sizeof(*t));
		d->ports = t;
		d->nr_ports_alloc = nr;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dom = d;
	p->port = port;
	list_init(&p->hnode);
	list_init(&p->qnode);
	d->ports[port] = p;
	*ret = p;
	return 0;
}

static void port_free(struct sim_port *p)
{
	p->dom->ports[p->port] = NULL;
	free(p);
}

static void ring_update(struct sim_evtchn *e)
{
	/* An overflowed handle polls as an error, which a poll loop sees as readable. */
	sim_efd_set(e->efd, &e->efd_ready, !list_empty(&e->ring) || e->overflow);
}

static unsigned int ring_size(struct sim_evtchn *e)
{
	return sim_plat_of(e->base.h.xen)->sim->evtchn_ring_size;
}

/*
 * Queue @p on its handle and mask it, as the kernel driver does on an upcall. When the queue
 * is full the kernel masks the port all the same and drops the event: nothing will deliver it
 * again, and the handle reports the loss on its next read.
 */
static void port_queue(struct sim_port *p)
{
	struct sim_evtchn *e = p->handle;
	unsigned int size = ring_size(e);

	p->masked = true;
	if (e->overflow || (size && e->ring_len >= size)) {
		e->overflow = true;
	} else {
		p->queued = true;
		list_add_tail(&p->qnode, &e->ring);
		e->ring_len++;
	}
	ring_update(e);
}

static void ring_del(struct sim_evtchn *e, struct sim_port *p)
{
	list_del(&p->qnode);
	p->queued = false;
	e->ring_len--;
}

/* An event arrives at @p from its peer. */
static void port_raise(struct sim_port *p)
{
	if (!p->handle) {
		p->kicks++;
		return;
	}
	if (p->masked)
		p->pending = true;
	else
		port_queue(p);
}

/* Disconnect @p from its peer; the peer goes back to unbound, waiting for p's domain. */
static void port_disconnect(struct sim_port *p)
{
	struct sim_port *peer = p->peer;

	if (p->state != SIM_PORT_INTERDOMAIN)
		return;
	peer->state = SIM_PORT_UNBOUND;
	peer->remote_domid = p->dom->domid;
	peer->peer = NULL;
	peer->pending = false;
	p->state = SIM_PORT_UNBOUND;
	p->peer = NULL;
}

void sim_domain_evtchn_destroy(struct sim_domain *d)
{
	for (uint32_t i = 1; i < d->nr_ports_alloc; i++) {
		struct sim_port *p = d->ports[i];

		if (!p)
			continue;
		port_disconnect(p);
		/* Handle ports belong to their handle until it unbinds them. */
		if (!p->handle)
			port_free(p);
	}
}

void sim_domain_evtchn_free(struct sim_domain *d)
{
	/* Called when the machine goes: every handle is closed by now. */
	sim_domain_evtchn_destroy(d);
	free(d->ports);
	d->ports = NULL;
	d->nr_ports_alloc = 0;
}

int bk_sim_guest_evtchn_alloc_unbound(struct bk_sim *sim, uint32_t domid, uint32_t remote_domid,
				      uint32_t *ret_port)
{
	SIM_GUARD();
	struct sim_domain *d = sim_domain_live(sim, domid);
	struct sim_port *p;
	int r;

	if (!d)
		return -ESRCH;
	r = port_alloc(d, &p);
	if (r < 0)
		return r;
	p->state = SIM_PORT_UNBOUND;
	p->remote_domid = remote_domid;
	*ret_port = p->port;
	return 0;
}

static struct sim_port *guest_port(struct bk_sim *sim, uint32_t domid, uint32_t port)
{
	struct sim_domain *d = sim_domain_live(sim, domid);
	struct sim_port *p;

	if (!d)
		return NULL;
	p = port_get(d, port);
	if (!p || p->handle)
		return NULL;
	return p;
}

int bk_sim_guest_evtchn_close(struct bk_sim *sim, uint32_t domid, uint32_t port)
{
	SIM_GUARD();
	struct sim_port *p = guest_port(sim, domid, port);

	if (!p)
		return -EINVAL;
	port_disconnect(p);
	port_free(p);
	return 0;
}

int bk_sim_guest_evtchn_notify(struct bk_sim *sim, uint32_t domid, uint32_t port)
{
	SIM_GUARD();
	struct sim_port *p = guest_port(sim, domid, port);

	if (!p)
		return -EINVAL;
	if (p->state != SIM_PORT_INTERDOMAIN)
		return -ENOTCONN;
	port_raise(p->peer);
	return 0;
}

unsigned int bk_sim_guest_evtchn_take(struct bk_sim *sim, uint32_t domid, uint32_t port)
{
	SIM_GUARD();
	struct sim_port *p = guest_port(sim, domid, port);
	unsigned int n;

	if (!p)
		return 0;
	n = p->kicks;
	p->kicks = 0;
	return n;
}

bool bk_sim_guest_evtchn_bound(struct bk_sim *sim, uint32_t domid, uint32_t port)
{
	SIM_GUARD();
	struct sim_port *p = guest_port(sim, domid, port);

	return p && p->state == SIM_PORT_INTERDOMAIN;
}

static int ring_read(struct evtchn_batch *b, uint32_t *ports, unsigned int max);
static int ports_unmask(struct evtchn_batch *b, const uint32_t *ports, unsigned int n);

static const struct evtchn_batch_ops sim_batch_ops = {
	.read = ring_read,
	.unmask = ports_unmask,
};

int sim_evtchn_open(struct bk_xen *x, struct bk_evtchn **ret)
{
	SIM_GUARD();
	struct sim_plat *plat = sim_plat_of(x);
	struct sim_evtchn *e;
	int r;

	r = sim_fault_check(x, BK_SIM_FAULT_EVTCHN_OPEN);
	if (r < 0)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->efd < 0) {
		r = neg_errno();
		free(e);
		return r;
	}
	e->base.h.xen = x;
	evtchn_batch_init(&e->batch, &sim_batch_ops);
	list_init(&e->ports);
	list_init(&e->ring);
	list_add_tail(&e->node, &plat->sim->evtchns);
	sim_handle_get(x);
	*ret = &e->base;
	return 0;
}

static void handle_port_release(struct sim_evtchn *e, struct sim_port *p)
{
	evtchn_batch_unbound(&e->batch, p->port);
	if (p->queued)
		ring_del(e, p);
	list_del(&p->hnode);
	port_disconnect(p);
	port_free(p);
	ring_update(e);
}

void sim_evtchn_close(struct bk_evtchn *be)
{
	SIM_GUARD();
	struct sim_evtchn *e = evtchn_of(be);

	while (!list_empty(&e->ports))
		handle_port_release(e, list_first_entry(&e->ports, struct sim_port, hnode));
	close(e->efd);
	list_del(&e->node);
	sim_handle_put(be->h.xen);
	free(e);
}

int sim_evtchn_fd(struct bk_evtchn *be)
{
	SIM_GUARD();
	return evtchn_of(be)->efd;
}

int sim_evtchn_bind(struct bk_evtchn *be, uint32_t domid, uint32_t remote_port,
		    uint32_t *ret_local_port)
{
	SIM_GUARD();
	struct sim_evtchn *e = evtchn_of(be);
	struct sim_plat *plat = sim_plat_of(be->h.xen);
	struct sim_domain *ld = sim_domain_live(plat->sim, plat->domid);
	struct sim_domain *rd = sim_domain_live(plat->sim, domid);
	struct sim_port *rp, *lp;
	int r;

	r = sim_fault_check(be->h.xen, BK_SIM_FAULT_EVTCHN_BIND);
	if (r < 0)
		return r;
	if (!ld)
		return -ESRCH;
	if (!rd)
		return -EINVAL;
	rp = port_get(rd, remote_port);
	if (!rp || rp->state != SIM_PORT_UNBOUND || rp->remote_domid != plat->domid)
		return -EINVAL;
	r = port_alloc(ld, &lp);
	if (r < 0)
		return r;
	lp->handle = e;
	lp->state = SIM_PORT_INTERDOMAIN;
	lp->peer = rp;
	rp->state = SIM_PORT_INTERDOMAIN;
	rp->peer = lp;
	list_add_tail(&lp->hnode, &e->ports);
	evtchn_batch_bound(&e->batch);
	*ret_local_port = lp->port;
	return 0;
}

/* @port of this handle, NULL if it is not one of ours. */
static struct sim_port *handle_port(struct sim_evtchn *e, uint32_t port)
{
	struct sim_port *p;

	list_for_each_entry (p, &e->ports, hnode)
		if (p->port == port)
			return p;
	return NULL;
}

int sim_evtchn_unbind(struct bk_evtchn *be, uint32_t local_port)
{
	SIM_GUARD();
	struct sim_evtchn *e = evtchn_of(be);
	struct sim_port *p = handle_port(e, local_port);

	if (!p)
		return -EINVAL;
	handle_port_release(e, p);
	return 0;
}

int sim_evtchn_notify(struct bk_evtchn *be, uint32_t local_port)
{
	SIM_GUARD();
	struct sim_port *p = handle_port(evtchn_of(be), local_port);
	int r;

	if (!p)
		return -EINVAL;
	r = sim_fault_check(be->h.xen, BK_SIM_FAULT_EVTCHN_NOTIFY);
	if (r < 0)
		return r;
	/* Xen drops a send on a port whose other end went away. */
	if (p->state == SIM_PORT_INTERDOMAIN)
		port_raise(p->peer);
	return 0;
}

/* The batch's read: up to @max ports off the queue, as one read(2) of /dev/xen/evtchn. */
static int ring_read(struct evtchn_batch *b, uint32_t *ports, unsigned int max)
{
	struct sim_evtchn *e = container_of(b, struct sim_evtchn, batch);
	unsigned int n = 0;

	sim_plat_of(e->base.h.xen)->sim->evtchn_reads++;
	if (e->overflow) {
		/*
		 * Events were lost. Like real_evtchn_pending, report it once and reset the queue:
		 * the ports still in it stay masked, their events lost with the others.
		 */
		while (!list_empty(&e->ring))
			ring_del(e, list_first_entry(&e->ring, struct sim_port, qnode));
		e->overflow = false;
		ring_update(e);
		return -EFBIG;
	}
	while (n < max && !list_empty(&e->ring)) {
		struct sim_port *p = list_first_entry(&e->ring, struct sim_port, qnode);

		ring_del(e, p);
		ports[n++] = p->port;
	}
	ring_update(e);
	return n ? (int)n : -EAGAIN;
}

int sim_evtchn_pending(struct bk_evtchn *be, uint32_t *ret_port)
{
	SIM_GUARD();
	return evtchn_batch_pending(&evtchn_of(be)->batch, ret_port);
}

static void port_unmask(struct sim_port *p)
{
	if (p->queued || !p->masked)
		return;
	p->masked = false;
	/* A storming guest notifies again as soon as the backend can hear it. */
	if (p->peer && p->peer->storm) {
		p->peer->storm--;
		p->pending = true;
	}
	if (p->pending) {
		p->pending = false;
		port_queue(p);
	}
}

/* The batch's unmask: @n ports in one write(2), which skips ports not bound here. */
static int ports_unmask(struct evtchn_batch *b, const uint32_t *ports, unsigned int n)
{
	struct sim_evtchn *e = container_of(b, struct sim_evtchn, batch);

	sim_plat_of(e->base.h.xen)->sim->evtchn_writes++;
	for (unsigned int i = 0; i < n; i++) {
		struct sim_port *p = handle_port(e, ports[i]);

		if (p)
			port_unmask(p);
	}
	return 0;
}

int sim_evtchn_unmask(struct bk_evtchn *be, uint32_t local_port)
{
	SIM_GUARD();
	struct sim_evtchn *e = evtchn_of(be);

	if (!handle_port(e, local_port))
		return -EINVAL;
	return evtchn_batch_unmask(&e->batch, local_port);
}

int bk_sim_guest_evtchn_storm(struct bk_sim *sim, uint32_t domid, uint32_t port,
			      unsigned int credit, unsigned int *ret_left)
{
	SIM_GUARD();
	struct sim_port *p = guest_port(sim, domid, port);
	unsigned int left;

	if (!p)
		return -EINVAL;
	if (p->state != SIM_PORT_INTERDOMAIN)
		return -ENOTCONN;
	left = p->storm;
	p->storm = credit;
	if (credit) {
		p->storm--;
		port_raise(p->peer);
	}
	if (ret_left)
		*ret_left = left;
	return 0;
}

void bk_sim_evtchn_ring_size(struct bk_sim *sim, unsigned int entries)
{
	SIM_GUARD();
	sim->evtchn_ring_size = entries;
}

void bk_sim_evtchn_calls(struct bk_sim *sim, uint64_t *ret_reads, uint64_t *ret_writes)
{
	SIM_GUARD();
	*ret_reads = sim->evtchn_reads;
	*ret_writes = sim->evtchn_writes;
}

unsigned int sim_evtchn_nr_bound(struct bk_sim *sim)
{
	struct sim_evtchn *e;
	struct sim_port *p;
	unsigned int n = 0;

	list_for_each_entry (e, &sim->evtchns, node)
		list_for_each_entry (p, &e->ports, hnode)
			n++;
	return n;
}
