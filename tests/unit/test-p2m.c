// SPDX-License-Identifier: MIT
/*
 * Dom0's p2m walk (src/xen/p2m.c) over a simulated p2m laid out as Linux lays it out: every
 * PFN of a 3-leaf table translates to its MFN; leaves stay mapped (a second lookup maps
 * nothing); a p2m_generation bump with a changed entry is seen (the cache is dropped and the
 * new MFN returned, never the stale one); a grown max_pfn is followed; entries that are not
 * RAM frames (invalid, foreign, identity) and PFNs past max_pfn are refused; an odd
 * generation that never settles gives -EAGAIN; a p2m without a frame-list tree gives
 * -EOPNOTSUPP. Mappings are balanced at close (the simulation aborts otherwise).
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "xen/p2m.h"

#define NR 1200 /* three leaf pages, the last one partial */

static uint64_t mfn_of(uint64_t pfn)
{
	return 0x5000000ull + pfn * 7; /* scattered: never pfn + constant */
}

int main(void)
{
	uint64_t *table = calloc(NR, sizeof(*table));
	struct bk_p2m *p = NULL;
	uint64_t mfn = 0, maps, walks;
	bool all = true;

	CHECK(table);
	if (!table)
		return bk_test_exit();
	for (uint64_t i = 0; i < NR; i++)
		table[i] = mfn_of(i);
	table[5] = BK_P2M_INVALID;
	table[6] = (1ull << 63) | 1234; /* foreign */
	table[7] = (1ull << 62) | 1234; /* identity */
	CHECK(bk_p2m_sim_new(table, NR, &p) == 0);
	if (!p)
		return bk_test_exit();

	for (uint64_t i = 0; i < NR; i++) {
		int r = bk_p2m_lookup(p, i, &mfn);

		if (i >= 5 && i <= 7)
			all &= r == -EFAULT;
		else
			all &= r == 0 && mfn == mfn_of(i);
	}
	CHECK(all);
	CHECK(p->walks == 1);
	/* top + one mid + three leaves */
	CHECK(p->maps == 5);
	maps = p->maps;
	CHECK(bk_p2m_lookup(p, 1000, &mfn) == 0 && mfn == mfn_of(1000));
	CHECK(p->maps == maps); /* cached */
	CHECK(bk_p2m_lookup(p, NR, &mfn) == -ERANGE);

	/* Linux changes an entry: the cache must not answer with the old MFN. */
	walks = p->walks;
	CHECK(bk_p2m_sim_set(p, 1000, 0x777777) == 0);
	CHECK(bk_p2m_generation(p) == 2);
	CHECK(bk_p2m_lookup(p, 1000, &mfn) == 0 && mfn == 0x777777);
	CHECK(p->walks == walks + 1);

	/* The p2m grows past a leaf and a mid page boundary (a grant mapping does this). */
	CHECK(bk_p2m_sim_set(p, 512 * 512 + 3, 0x888888) == 0);
	CHECK(bk_p2m_lookup(p, 512 * 512 + 3, &mfn) == 0 && mfn == 0x888888);
	CHECK(bk_p2m_lookup(p, 512 * 512 + 2, &mfn) == -EFAULT); /* a hole: invalid */
	CHECK(bk_p2m_lookup(p, 17, &mfn) == 0 && mfn == mfn_of(17));

	/* A change that never finishes: no answer rather than a torn one. */
	bk_p2m_sim_arch(p)->p2m_generation++;
	mfn = 1;
	CHECK(bk_p2m_lookup(p, 17, &mfn) == -EAGAIN);
	CHECK(mfn == 1);
	bk_p2m_sim_arch(p)->p2m_generation++;
	CHECK(bk_p2m_lookup(p, 17, &mfn) == 0 && mfn == mfn_of(17));

	/* Only the linear list published (SIF_VIRT_P2M_4TOOLS): the walk says so. */
	bk_p2m_sim_arch(p)->pfn_to_mfn_frame_list_list = BK_P2M_INVALID;
	bk_p2m_sim_arch(p)->p2m_generation += 2;
	CHECK(bk_p2m_lookup(p, 17, &mfn) == -EOPNOTSUPP);

	bk_p2m_close(p);
	free(table);
	return bk_test_exit();
}
