// SPDX-License-Identifier: MIT
/* Walking dom0's p2m frame-list tree: see p2m.h. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "p2m.h"
#include "util/macros.h"

#define WALK_TRIES 100

int bk_p2m_init(struct bk_p2m *p, const struct bk_p2m_ops *ops,
		const volatile struct bk_p2m_arch *arch)
{
	p->ops = ops;
	p->arch = arch;
	p->generation = 1; /* odd: nothing cached yet */
	p->mid = calloc(BK_P2M_PER_PAGE, sizeof(*p->mid));
	return p->mid ? 0 : -ENOMEM;
}

/* Drop every cached mapping (the p2m moved, or we are closing). */
static void p2m_drop(struct bk_p2m *p)
{
	for (uint64_t i = 0; p->leaf && i < p->nr_leaf; i++)
		if (p->leaf[i])
			p->ops->unmap(p, p->leaf[i]);
	free(p->leaf);
	p->leaf = NULL;
	p->nr_leaf = 0;
	for (unsigned int i = 0; p->mid && i < BK_P2M_PER_PAGE; i++)
		if (p->mid[i]) {
			p->ops->unmap(p, p->mid[i]);
			p->mid[i] = NULL;
		}
	if (p->top)
		p->ops->unmap(p, p->top);
	p->top = NULL;
	p->generation = 1;
}

void bk_p2m_close(struct bk_p2m *p)
{
	if (!p)
		return;
	p2m_drop(p);
	free(p->mid);
	p->ops->free(p);
}

static const uint64_t *map_frame(struct bk_p2m *p, uint64_t mfn, int *r)
{
	const uint64_t *page;

	/* An entry of the tree that is not a frame: the tree is being rebuilt, or broken. */
	if (mfn == 0 || mfn == BK_P2M_INVALID || (mfn & BK_P2M_FLAG_MASK)) {
		*r = -EFAULT;
		return NULL;
	}
	page = p->ops->map(p, mfn);
	if (!page) {
		*r = errno > 0 ? -errno : -EIO;
		return NULL;
	}
	p->maps++;
	return page;
}

/* Start again from the frame-list-list for generation @gen (even). */
static int p2m_rewalk(struct bk_p2m *p, uint64_t gen)
{
	uint64_t fll = p->arch->pfn_to_mfn_frame_list_list;
	uint64_t max_pfn = p->arch->max_pfn;
	int r = 0;

	p2m_drop(p);
	if (fll == BK_P2M_INVALID)
		return -EOPNOTSUPP;
	if (!fll || !max_pfn)
		return -ENODEV;
	if (max_pfn > (uint64_t)BK_P2M_PER_PAGE * BK_P2M_PER_PAGE * BK_P2M_PER_PAGE)
		return -EOPNOTSUPP;
	p->nr_leaf = BK_DIV_ROUND_UP(max_pfn, BK_P2M_PER_PAGE);
	p->leaf = calloc(p->nr_leaf, sizeof(*p->leaf));
	if (!p->leaf) {
		p->nr_leaf = 0;
		return -ENOMEM;
	}
	p->top = map_frame(p, fll, &r);
	if (!p->top)
		return r;
	p->max_pfn = max_pfn;
	p->generation = gen;
	p->walks++;
	return 0;
}

/* One attempt at @pfn in the cached tree; the caller checks the generation around it. */
static int p2m_read(struct bk_p2m *p, uint64_t pfn, uint64_t *ret_mfn)
{
	uint64_t li = pfn / BK_P2M_PER_PAGE;
	unsigned int mi = (unsigned int)(li / BK_P2M_PER_PAGE);
	uint64_t mfn;
	int r = 0;

	if (pfn >= p->max_pfn)
		return -ERANGE;
	if (!p->leaf[li]) {
		if (!p->mid[mi]) {
			p->mid[mi] = map_frame(p, READ_ONCE(p->top[mi]), &r);
			if (!p->mid[mi])
				return r;
		}
		p->leaf[li] = map_frame(p, READ_ONCE(p->mid[mi][li % BK_P2M_PER_PAGE]), &r);
		if (!p->leaf[li])
			return r;
	}
	mfn = READ_ONCE(p->leaf[li][pfn % BK_P2M_PER_PAGE]);
	if (mfn == BK_P2M_INVALID || (mfn & BK_P2M_FLAG_MASK))
		return -EFAULT;
	*ret_mfn = mfn;
	return 0;
}

int bk_p2m_lookup(struct bk_p2m *p, uint64_t pfn, uint64_t *ret_mfn)
{
	for (int tries = 0; tries < WALK_TRIES; tries++) {
		uint64_t gen = READ_ONCE(p->arch->p2m_generation), mfn = 0;
		int r;

		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (gen & 1) { /* Linux is changing the p2m right now */
			sched_yield();
			continue;
		}
		if (gen != p->generation) {
			r = p2m_rewalk(p, gen);
			if (r < 0)
				return r;
		}
		r = p2m_read(p, pfn, &mfn);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (READ_ONCE(p->arch->p2m_generation) != gen)
			continue; /* what we read may be torn: walk again */
		if (r < 0)
			return r;
		*ret_mfn = mfn;
		return 0;
	}
	return -EAGAIN;
}
