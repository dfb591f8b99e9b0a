// SPDX-License-Identifier: MIT
/*
 * Simulated guest memory and grant tables. Each domain's memory is one memfd; the guest sees
 * it through its own shared mapping, and a grant mapping maps the same memfd pages again, so
 * both sides really share the bytes, and a read-only grant is mapped PROT_READ so a stray
 * write faults just as it would under Xen.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xen/xen.h>
#include <xen/grant_table.h>

#include "sim_internal.h"
#include "util/log.h"
#include "util/macros.h"

/* One grant mapping made by gnt_map: @n pages at @addr. */
struct sim_map {
	struct list_head node; /* in gnttab->maps */
	void *addr;
	unsigned int n;
	struct sim_map_page {
		struct sim_domain *dom;
		uint32_t ref;
	} pages[];
};

static struct sim_gnttab *gnttab_of(struct bk_gnttab *g)
{
	return container_of(g, struct sim_gnttab, base);
}

static struct bk_sim *gnttab_sim(struct bk_gnttab *g)
{
	return sim_plat_of(g->h.xen)->sim;
}

int sim_domain_mem_init(struct sim_domain *d, unsigned int nr_pages)
{
	char name[32];
	size_t size = (size_t)nr_pages * BK_PAGE_SIZE;
	void *mem;
	int fd;

	d->nr_pages = nr_pages;
	if (nr_pages == 0)
		return 0;
	snprintf(name, sizeof(name), "bk-sim-dom%u", d->domid);
	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (ftruncate(fd, (off_t)size) < 0) {
		int r = neg_errno();

		close(fd);
		return r;
	}
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		int r = neg_errno();

		close(fd);
		return r;
	}
	d->memfd = fd;
	d->mem = mem;
	return 0;
}

/* The domain dies: its memory goes from the guest's view, its grants end. */
void sim_domain_gnt_destroy(struct sim_domain *d)
{
	/* Grant mappings held by others are their own mmaps of the memfd and stay valid. */
	if (d->mem)
		munmap(d->mem, (size_t)d->nr_pages * BK_PAGE_SIZE);
	d->mem = NULL;
	if (d->memfd >= 0)
		close(d->memfd);
	d->memfd = -1;
	for (uint32_t i = 0; i < d->nr_grants_alloc; i++)
		d->grants[i].in_use = false;
}

void sim_domain_gnt_free(struct sim_domain *d)
{
	sim_domain_gnt_destroy(d);
	free(d->grants);
	d->grants = NULL;
	d->nr_grants_alloc = 0;
}

void *bk_sim_guest_page(struct bk_sim *sim, uint32_t domid, uint32_t pfn)
{
	SIM_GUARD();
	struct sim_domain *d = sim_domain_live(sim, domid);

	if (!d || pfn >= d->nr_pages)
		return NULL;
	return (char *)d->mem + (size_t)pfn * BK_PAGE_SIZE;
}

int bk_sim_guest_grant(struct bk_sim *sim, uint32_t domid, uint32_t grantee, uint32_t pfn,
		       bool readonly, uint32_t *ret_ref)
{
	SIM_GUARD();
	struct sim_domain *d = sim_domain_live(sim, domid);
	uint32_t ref;

	if (!d)
		return -ESRCH;
	if (pfn >= d->nr_pages)
		return -EINVAL;
	/* Lowest free ref, as a guest's free list would mostly hand out: deterministic. */
	for (ref = SIM_GNT_FIRST_REF; ref < d->nr_grants_alloc; ref++)
		if (!d->grants[ref].in_use && d->grants[ref].mapcount == 0)
			break;
	if (ref >= d->nr_grants_alloc) {
		uint32_t nr = d->nr_grants_alloc ? d->nr_grants_alloc * 2 : 64;
		struct sim_grant *g;

		if (ref >= SIM_GNT_MAX_REFS)
			return -ENOSPC;
		nr = BK_MIN(nr, SIM_GNT_MAX_REFS);
		g = realloc(d->grants, nr * sizeof(*g));
		if (!g)
			return -ENOMEM;
		memset(g + d->nr_grants_alloc, 0, (nr - d->nr_grants_alloc) * sizeof(*g));
		d->grants = g;
		d->nr_grants_alloc = nr;
	}
	d->grants[ref] = (struct sim_grant){
		.in_use = true,
		.readonly = readonly,
		.grantee = grantee,
		.pfn = pfn,
	};
	*ret_ref = ref;
	return 0;
}

int bk_sim_guest_revoke(struct bk_sim *sim, uint32_t domid, uint32_t ref)
{
	SIM_GUARD();
	struct sim_domain *d = sim_domain_live(sim, domid);
	struct sim_grant *g;

	if (!d)
		return -ESRCH;
	if (ref >= d->nr_grants_alloc || !d->grants[ref].in_use)
		return -EINVAL;
	g = &d->grants[ref];
	if (g->mapcount)
		return -EBUSY;
	g->in_use = false;
	return 0;
}

unsigned int bk_sim_guest_nr_mapped(struct bk_sim *sim, uint32_t domid)
{
	SIM_GUARD();
	struct sim_domain *d = sim_domain_any(sim, domid);
	unsigned int n = 0;

	if (!d)
		return 0;
	for (uint32_t i = 0; i < d->nr_grants_alloc; i++)
		n += d->grants[i].mapcount;
	return n;
}

uint64_t bk_sim_gnt_copy_segs(struct bk_sim *sim)
{
	return sim->gnt_copy_segs;
}

uint64_t bk_sim_gnt_map_calls(struct bk_sim *sim)
{
	return sim->gnt_map_calls;
}

unsigned int bk_sim_guest_nr_grants(struct bk_sim *sim, uint32_t domid)
{
	SIM_GUARD();
	struct sim_domain *d = sim_domain_live(sim, domid);
	unsigned int n = 0;

	if (!d)
		return 0;
	for (uint32_t i = 0; i < d->nr_grants_alloc; i++)
		n += d->grants[i].in_use;
	return n;
}

/*
 * The grant @ref of @d as @caller would use it; GNTST_okay or the status Xen would give.
 * @write: the caller wants to write the page.
 */
static int grant_check(struct sim_domain *d, uint32_t ref, uint32_t caller, bool write)
{
	struct sim_grant *g;

	if (!d || !d->alive)
		return GNTST_bad_domain;
	if (ref >= d->nr_grants_alloc || !d->grants[ref].in_use)
		return GNTST_bad_gntref;
	g = &d->grants[ref];
	if (g->grantee != caller)
		return GNTST_permission_denied;
	if (write && g->readonly)
		return GNTST_permission_denied;
	return GNTST_okay;
}

int sim_gnt_open(struct bk_xen *x, struct bk_gnttab **ret)
{
	SIM_GUARD();
	struct sim_plat *p = sim_plat_of(x);
	struct sim_gnttab *g;
	int r;

	r = sim_fault_check(x, BK_SIM_FAULT_GNT_OPEN);
	if (r < 0)
		return r;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->base.h.xen = x;
	list_init(&g->maps);
	list_add_tail(&g->node, &p->sim->gnttabs);
	sim_handle_get(x);
	*ret = &g->base;
	return 0;
}

/* Unmap @m and take its pages off the count at @nr_mapped. */
static void map_release(struct sim_map *m, unsigned int *nr_mapped)
{
	munmap(m->addr, (size_t)m->n * BK_PAGE_SIZE);
	for (unsigned int i = 0; i < m->n; i++)
		m->pages[i].dom->grants[m->pages[i].ref].mapcount--;
	*nr_mapped -= m->n;
	list_del(&m->node);
	free(m);
}

void sim_gnt_close(struct bk_gnttab *bg)
{
	SIM_GUARD();
	struct sim_gnttab *g = gnttab_of(bg);
	struct bk_sim *sim = gnttab_sim(bg);

	/*
	 * As with gntdev, mappings outlive the handle until munmap'd: they stay mapped (and
	 * counted, so the guest cannot revoke them) until the machine is freed.
	 */
	if (g->nr_mapped)
		log_warn("sim: grant handle closed with %u page(s) still mapped", g->nr_mapped);
	while (!list_empty(&g->maps)) {
		struct sim_map *m = list_first_entry(&g->maps, struct sim_map, node);

		list_del(&m->node);
		list_add_tail(&m->node, &sim->orphan_maps);
	}
	sim->orphan_pages += g->nr_mapped;
	list_del(&g->node);
	sim_handle_put(bg->h.xen);
	free(g);
}

void sim_gnt_fini(struct bk_sim *sim)
{
	while (!list_empty(&sim->orphan_maps))
		map_release(list_first_entry(&sim->orphan_maps, struct sim_map, node),
			    &sim->orphan_pages);
}

static int status_to_errno(int st)
{
	switch (st) {
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_permission_denied:
		return -EACCES;
	default:
		return -EINVAL;
	}
}

int sim_gnt_map(struct bk_gnttab *bg, uint32_t domid, const uint32_t *refs, unsigned int n,
		bool writable, void **ret_addr)
{
	SIM_GUARD();
	struct sim_gnttab *g = gnttab_of(bg);
	struct sim_plat *p = sim_plat_of(bg->h.xen);
	struct sim_domain *d = sim_domain_live(p->sim, domid);
	int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
	struct sim_map *m;
	size_t size;
	char *addr;
	int r;

	if (n == 0 || !refs || n > SIM_GNT_MAX_REFS)
		return -EINVAL;
	r = sim_fault_check(bg->h.xen, BK_SIM_FAULT_GNT_MAP);
	if (r < 0)
		return r;
	/* Check every ref before touching anything: all or nothing. */
	for (unsigned int i = 0; i < n; i++) {
		int st = grant_check(d, refs[i], p->domid, writable);

		if (st != GNTST_okay)
			return status_to_errno(st);
	}
	m = calloc(1, sizeof(*m) + n * sizeof(m->pages[0]));
	if (!m)
		return -ENOMEM;
	size = (size_t)n * BK_PAGE_SIZE;
	addr = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED) {
		free(m);
		return neg_errno();
	}
	for (unsigned int i = 0; i < n; i++) {
		off_t off = (off_t)d->grants[refs[i]].pfn * BK_PAGE_SIZE;

		if (mmap(addr + (size_t)i * BK_PAGE_SIZE, BK_PAGE_SIZE, prot,
			 MAP_SHARED | MAP_FIXED, d->memfd, off) == MAP_FAILED) {
			r = neg_errno();
			munmap(addr, size);
			free(m);
			return r;
		}
	}
	m->addr = addr;
	m->n = n;
	for (unsigned int i = 0; i < n; i++) {
		m->pages[i].dom = d;
		m->pages[i].ref = refs[i];
		d->grants[refs[i]].mapcount++;
	}
	g->nr_mapped += n;
	p->sim->gnt_map_calls++;
	list_add_tail(&m->node, &g->maps);
	*ret_addr = addr;
	return 0;
}

int sim_gnt_unmap(struct bk_gnttab *bg, void *addr, unsigned int n)
{
	SIM_GUARD();
	struct sim_gnttab *g = gnttab_of(bg);
	struct sim_map *m;

	list_for_each_entry (m, &g->maps, node) {
		if (m->addr != addr)
			continue;
		if (m->n != n)
			return -EINVAL;
		map_release(m, &g->nr_mapped);
		return 0;
	}
	return -EINVAL;
}

int sim_gnt_copy(struct bk_gnttab *bg, struct bk_gnt_copy_seg *segs, unsigned int n)
{
	SIM_GUARD();
	struct sim_plat *p = sim_plat_of(bg->h.xen);
	struct bk_sim *sim = gnttab_sim(bg);
	int r;

	if (n && !segs)
		return -EINVAL;
	r = sim_fault_check(bg->h.xen, BK_SIM_FAULT_GNT_COPY);
	if (r < 0)
		return r;
	sim->gnt_copy_segs += n;
	for (unsigned int i = 0; i < n; i++) {
		struct bk_gnt_copy_seg *s = &segs[i];
		struct sim_domain *d = sim_domain_live(sim, s->domid);
		char *page;
		int st;

		if ((unsigned int)s->offset + s->len > BK_PAGE_SIZE || !s->local) {
			s->status = GNTST_bad_copy_arg;
			continue;
		}
		/* Like the real platform, which never passes an empty segment to the kernel. */
		if (s->len == 0) {
			s->status = GNTST_okay;
			continue;
		}
		st = grant_check(d, s->ref, p->domid, s->to_guest);
		if (st != GNTST_okay) {
			s->status = (int16_t)st;
			continue;
		}
		page = (char *)d->mem + (size_t)d->grants[s->ref].pfn * BK_PAGE_SIZE;
		if (s->to_guest)
			memcpy(page + s->offset, s->local, s->len);
		else
			memcpy(s->local, page + s->offset, s->len);
		s->status = GNTST_okay;
	}
	return 0;
}

unsigned int sim_gnt_nr_mapped(struct bk_gnttab *bg)
{
	SIM_GUARD();
	return gnttab_of(bg)->nr_mapped;
}
