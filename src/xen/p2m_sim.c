// SPDX-License-Identifier: MIT
/*
 * A simulated dom0 p2m for tests: machine frames are pages in memory, numbered from
 * SIM_MFN_BASE, holding the frame-list tree the way Linux lays it out, and a simulated
 * shared_info.arch. "Mapping" a frame returns the live page, as a real mapping would.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "p2m.h"
#include "util/macros.h"

#define SIM_MFN_BASE 0x100000ull

struct sim_p2m {
	struct bk_p2m base;
	struct bk_p2m_arch arch;
	uint64_t **frames; /* simulated machine memory */
	uint64_t nr_frames;
	uint64_t nr_mapped;
};

static struct sim_p2m *to_sim(struct bk_p2m *p)
{
	return container_of(p, struct sim_p2m, base);
}

static const void *sim_map(struct bk_p2m *p, uint64_t mfn)
{
	struct sim_p2m *s = to_sim(p);

	if (mfn < SIM_MFN_BASE || mfn - SIM_MFN_BASE >= s->nr_frames) {
		errno = EFAULT;
		return NULL;
	}
	s->nr_mapped++;
	return s->frames[mfn - SIM_MFN_BASE];
}

static void sim_unmap(struct bk_p2m *p, const void *page)
{
	struct sim_p2m *s = to_sim(p);

	if (!s->nr_mapped)
		abort(); /* the walk unmapped more than it mapped */
	s->nr_mapped--;
}

static void sim_free(struct bk_p2m *p)
{
	struct sim_p2m *s = to_sim(p);

	if (s->nr_mapped)
		abort(); /* a mapping leaked */
	for (uint64_t i = 0; i < s->nr_frames; i++)
		free(s->frames[i]);
	free(s->frames);
	free(s);
}

static const struct bk_p2m_ops sim_ops = {
	.name = "sim",
	.map = sim_map,
	.unmap = sim_unmap,
	.free = sim_free,
};

/* A new machine frame filled with @fill; returns its MFN, 0 on ENOMEM. */
static uint64_t frame_new(struct sim_p2m *s, uint64_t fill)
{
	uint64_t **n = realloc(s->frames, (s->nr_frames + 1) * sizeof(*n));
	uint64_t *page = malloc(BK_P2M_PER_PAGE * sizeof(uint64_t));

	if (n)
		s->frames = n;
	if (!n || !page) {
		free(page);
		return 0;
	}
	for (unsigned int i = 0; i < BK_P2M_PER_PAGE; i++)
		page[i] = fill;
	s->frames[s->nr_frames] = page;
	return SIM_MFN_BASE + s->nr_frames++;
}

static uint64_t *frame(struct sim_p2m *s, uint64_t mfn)
{
	return s->frames[mfn - SIM_MFN_BASE];
}

/* The p2m entry slot of @pfn, building the tree down to it. */
static uint64_t *slot(struct sim_p2m *s, uint64_t pfn)
{
	uint64_t *top = frame(s, s->arch.pfn_to_mfn_frame_list_list);
	uint64_t li = pfn / BK_P2M_PER_PAGE, mi = li / BK_P2M_PER_PAGE;
	uint64_t *mid;

	if (mi >= BK_P2M_PER_PAGE)
		return NULL;
	if (top[mi] == BK_P2M_INVALID && !(top[mi] = frame_new(s, BK_P2M_INVALID)))
		return NULL;
	mid = frame(s, top[mi]);
	if (mid[li % BK_P2M_PER_PAGE] == BK_P2M_INVALID &&
	    !(mid[li % BK_P2M_PER_PAGE] = frame_new(s, BK_P2M_INVALID)))
		return NULL;
	return &frame(s, mid[li % BK_P2M_PER_PAGE])[pfn % BK_P2M_PER_PAGE];
}

int bk_p2m_sim_new(const uint64_t *table, uint64_t nr, struct bk_p2m **ret)
{
	struct sim_p2m *s = calloc(1, sizeof(*s));
	uint64_t top;
	int r;

	if (!s)
		return -ENOMEM;
	top = frame_new(s, BK_P2M_INVALID);
	r = bk_p2m_init(&s->base, &sim_ops, &s->arch);
	if (!top || r < 0)
		goto fail;
	s->arch.pfn_to_mfn_frame_list_list = top;
	for (uint64_t pfn = 0; pfn < nr; pfn++) {
		uint64_t *e = slot(s, pfn);

		if (!e)
			goto fail;
		*e = table[pfn];
	}
	s->arch.max_pfn = nr;
	*ret = &s->base;
	return 0;
fail:
	free(s->base.mid);
	sim_free(&s->base);
	return -ENOMEM;
}

int bk_p2m_sim_set(struct bk_p2m *p, uint64_t pfn, uint64_t mfn)
{
	struct sim_p2m *s = to_sim(p);
	uint64_t *e;

	__atomic_fetch_add(&s->arch.p2m_generation, 1, __ATOMIC_SEQ_CST);
	e = slot(s, pfn);
	if (e)
		*e = mfn;
	if (e && pfn >= s->arch.max_pfn)
		s->arch.max_pfn = pfn + 1;
	__atomic_fetch_add(&s->arch.p2m_generation, 1, __ATOMIC_SEQ_CST);
	return e ? 0 : -ENOMEM;
}

struct bk_p2m_arch *bk_p2m_sim_arch(struct bk_p2m *p)
{
	return &to_sim(p)->arch;
}
