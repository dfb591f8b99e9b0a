// SPDX-License-Identifier: MIT
/*
 * The in-process Xen simulation: the machine, its domains, and the platform ops table that
 * shows the machine from one domain. Grant tables, event channels and xenstore live in
 * sim_gnt.c, sim_evtchn.c and sim_xs*.c.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim_internal.h"
#include "util/log.h"
#include "util/macros.h"

static pthread_mutex_t sim_mutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void sim_lock(void)
{
	pthread_mutex_lock(&sim_mutex);
}

void sim_unlock_cb(int *unused _unused_)
{
	pthread_mutex_unlock(&sim_mutex);
}

struct sim_domain *sim_domain_live(struct bk_sim *sim, uint32_t domid)
{
	struct sim_domain *d;

	list_for_each_entry (d, &sim->domains, node)
		if (d->domid == domid && d->alive)
			return d;
	return NULL;
}

struct sim_domain *sim_domain_any(struct bk_sim *sim, uint32_t domid)
{
	struct sim_domain *d = sim_domain_live(sim, domid);

	if (d)
		return d;
	/* Newest first: the most recently destroyed incarnation. */
	list_for_each_entry (d, &sim->domains, node)
		if (d->domid == domid)
			return d;
	return NULL;
}

void sim_efd_set(int efd, bool *state, bool ready)
{
	uint64_t v = 1;
	ssize_t r;

	if (*state == ready)
		return;
	/*
	 * Neither call can fail on an eventfd only we touch; if a caller read the fd anyway,
	 * the read finds it empty (-EAGAIN), which is the state we want.
	 */
	if (ready)
		r = write(efd, &v, sizeof(v));
	else
		r = read(efd, &v, sizeof(v));
	(void)r;
	*state = ready;
}

void sim_handle_get(struct bk_xen *x)
{
	sim_plat_of(x)->nr_handles++;
}

void sim_handle_put(struct bk_xen *x)
{
	struct sim_plat *p = sim_plat_of(x);

	assert(p->nr_handles > 0);
	p->nr_handles--;
}

int bk_sim_fault_inject(struct bk_sim *sim, uint32_t domid, enum bk_sim_fault op, unsigned int nth,
			int err)
{
	SIM_GUARD();
	struct sim_fault *f;

	if ((unsigned int)op >= BK_SIM_FAULT__MAX || err >= 0)
		return -EINVAL;
	list_for_each_entry (f, &sim->faults, node)
		if (f->domid == domid && f->op == op)
			goto set;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->domid = domid;
	f->op = op;
	list_add_tail(&f->node, &sim->faults);
set:
	f->countdown = nth;
	f->err = err;
	return 0;
}

void bk_sim_fault_clear(struct bk_sim *sim)
{
	SIM_GUARD();
	while (!list_empty(&sim->faults)) {
		struct sim_fault *f = list_first_entry(&sim->faults, struct sim_fault, node);

		list_del(&f->node);
		free(f);
	}
}

int sim_fault_check(struct bk_xen *x, enum bk_sim_fault op)
{
	struct sim_plat *p = sim_plat_of(x);
	struct sim_fault *f;
	int err;

	list_for_each_entry (f, &p->sim->faults, node) {
		if (f->domid != p->domid || f->op != op)
			continue;
		if (f->countdown) {
			f->countdown--;
			return 0;
		}
		err = f->err;
		list_del(&f->node);
		free(f);
		return err;
	}
	return 0;
}

static void domain_free(struct sim_domain *d)
{
	sim_domain_evtchn_free(d);
	sim_domain_gnt_free(d);
	free(d);
}

static int domain_new(struct bk_sim *sim, uint32_t domid, unsigned int nr_pages)
{
	struct sim_domain *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->domid = domid;
	d->alive = true;
	d->memfd = -1;
	r = sim_domain_mem_init(d, nr_pages);
	if (r < 0) {
		free(d);
		return r;
	}
	list_add(&d->node, &sim->domains);
	return 0;
}

int bk_sim_new(struct bk_sim **ret)
{
	struct bk_sim *sim;
	int r;

	sim = calloc(1, sizeof(*sim));
	if (!sim)
		return -ENOMEM;
	list_init(&sim->domains);
	list_init(&sim->platforms);
	list_init(&sim->xs_conns);
	list_init(&sim->evtchns);
	list_init(&sim->gnttabs);
	list_init(&sim->orphan_maps);
	list_init(&sim->faults);
	sim->xs_next_tx = 1;
	r = domain_new(sim, 0, 0);
	if (r < 0)
		goto fail;
	r = sim_xs_init(sim);
	if (r < 0)
		goto fail;
	*ret = sim;
	return 0;
fail:
	bk_sim_free(sim);
	return r;
}

static void plat_free(struct bk_xen *x);

void bk_sim_free(struct bk_sim *sim)
{
	SIM_GUARD();
	struct sim_domain *d, *dn;

	if (!sim)
		return;
	/* Leftovers are a caller bug, but release them so leak checks point at the real culprit. */
	while (!list_empty(&sim->xs_conns))
		sim_xs_close(&list_first_entry(&sim->xs_conns, struct sim_xs, node)->base);
	while (!list_empty(&sim->evtchns))
		sim_evtchn_close(&list_first_entry(&sim->evtchns, struct sim_evtchn, node)->base);
	while (!list_empty(&sim->gnttabs))
		sim_gnt_close(&list_first_entry(&sim->gnttabs, struct sim_gnttab, node)->base);
	while (!list_empty(&sim->platforms))
		plat_free(&list_first_entry(&sim->platforms, struct sim_plat, node)->base);
	sim_gnt_fini(sim);
	bk_sim_fault_clear(sim);
	sim_xs_fini(sim);
	list_for_each_entry_safe (d, dn, &sim->domains, node) {
		list_del(&d->node);
		domain_free(d);
	}
	free(sim);
}

int bk_sim_domain_create(struct bk_sim *sim, uint32_t domid, unsigned int nr_pages)
{
	SIM_GUARD();
	char path[64];
	struct bk_xs_perm perm = { .domid = domid, .perms = BK_XS_PERM_NONE };
	int r;

	if (domid == 0 || domid > SIM_DOMID_MAX || nr_pages > SIM_MAX_PAGES)
		return -EINVAL;
	if (sim_domain_live(sim, domid))
		return -EEXIST;
	r = domain_new(sim, domid, nr_pages);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	r = sim_xs_make_node(sim, path, &perm, 1);
	if (r < 0) {
		struct sim_domain *d = sim_domain_live(sim, domid);

		list_del(&d->node);
		domain_free(d);
		return r;
	}
	sim_xs_fire_special(sim, "@introduceDomain");
	return 0;
}

int bk_sim_domain_destroy(struct bk_sim *sim, uint32_t domid)
{
	SIM_GUARD();
	struct sim_domain *d;

	if (domid == 0)
		return -EPERM;
	d = sim_domain_live(sim, domid);
	if (!d)
		return -ESRCH;
	d->alive = false;
	sim_domain_evtchn_destroy(d);
	sim_domain_gnt_destroy(d);
	sim_xs_fire_special(sim, "@releaseDomain");
	return 0;
}

void bk_sim_counts(struct bk_sim *sim, struct bk_sim_counts *ret)
{
	SIM_GUARD();
	struct sim_evtchn *e;
	struct sim_gnttab *g;
	struct list_head *l;
	struct bk_sim_counts c = { 0 };

	for (l = sim->xs_conns.next; l != &sim->xs_conns; l = l->next)
		c.xs_conns++;
	c.xs_watches = sim_xs_nr_watches(sim);
	list_for_each_entry (e, &sim->evtchns, node)
		c.evtchn_handles++;
	c.evtchn_bound = sim_evtchn_nr_bound(sim);
	list_for_each_entry (g, &sim->gnttabs, node) {
		c.gnt_handles++;
		c.gnt_mapped_pages += g->nr_mapped;
	}
	c.gnt_mapped_pages += sim->orphan_pages;
	c.xs_nodes = xs_tree_count(sim->xs_root);
	*ret = c;
}

uint64_t bk_sim_xs_dropped(struct bk_sim *sim)
{
	SIM_GUARD();
	return sim->xs_dropped;
}

uint64_t bk_sim_xs_requests(struct bk_xen *xen)
{
	SIM_GUARD();
	return sim_plat_of(xen)->xs_requests;
}

/* Platform ops. */

static int plat_own_domid(struct bk_xen *x, uint32_t *ret_domid)
{
	SIM_GUARD();
	*ret_domid = sim_plat_of(x)->domid;
	return 0;
}

static int plat_domain_alive(struct bk_xen *x, uint32_t domid)
{
	SIM_GUARD();
	struct sim_plat *p = sim_plat_of(x);

	/* Xen refuses the domctl to a domain without the control privilege. */
	if (p->unprivileged)
		return -EPERM;
	return sim_domain_live(p->sim, domid) ? 1 : 0;
}

static void plat_free(struct bk_xen *x)
{
	SIM_GUARD();
	struct sim_plat *p = sim_plat_of(x);

	/* Handles point at their platform: closing them first is the caller's job. */
	assert(p->nr_handles == 0);
	list_del(&p->node);
	free(p);
}

static const struct bk_xen_ops sim_ops = {
	.name = "sim",
	.free = plat_free,
	.own_domid = plat_own_domid,
	.domain_alive = plat_domain_alive,
	.xs_open = sim_xs_open,
	.xs_close = sim_xs_close,
	.xs_fd = sim_xs_fd,
	.xs_read = sim_xs_read,
	.xs_write = sim_xs_write,
	.xs_mkdir = sim_xs_mkdir,
	.xs_rm = sim_xs_rm,
	.xs_directory = sim_xs_directory,
	.xs_get_perms = sim_xs_get_perms,
	.xs_set_perms = sim_xs_set_perms,
	.xs_watch = sim_xs_watch,
	.xs_unwatch = sim_xs_unwatch,
	.xs_read_watch = sim_xs_read_watch,
	.xs_transaction_start = sim_xs_transaction_start,
	.xs_transaction_end = sim_xs_transaction_end,
	.evtchn_open = sim_evtchn_open,
	.evtchn_close = sim_evtchn_close,
	.evtchn_fd = sim_evtchn_fd,
	.evtchn_bind = sim_evtchn_bind,
	.evtchn_unbind = sim_evtchn_unbind,
	.evtchn_notify = sim_evtchn_notify,
	.evtchn_pending = sim_evtchn_pending,
	.evtchn_unmask = sim_evtchn_unmask,
	.gnt_open = sim_gnt_open,
	.gnt_close = sim_gnt_close,
	.gnt_map = sim_gnt_map,
	.gnt_unmap = sim_gnt_unmap,
	.gnt_copy = sim_gnt_copy,
	.gnt_nr_mapped = sim_gnt_nr_mapped,
};

void bk_sim_platform_unprivileged(struct bk_xen *x)
{
	SIM_GUARD();
	sim_plat_of(x)->unprivileged = true;
}

int bk_sim_platform(struct bk_sim *sim, uint32_t domid, struct bk_xen **ret)
{
	SIM_GUARD();
	struct sim_plat *p;

	if (!sim_domain_live(sim, domid))
		return -ESRCH;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->base.ops = &sim_ops;
	p->sim = sim;
	p->domid = domid;
	list_add_tail(&p->node, &sim->platforms);
	*ret = &p->base;
	return 0;
}
