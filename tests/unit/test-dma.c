// SPDX-License-Identifier: MIT
/*
 * DMA address translation (frontends/virtio/dma.c) with a simulated dom0 p2m and made-up
 * PFNs: in p2m mode every page's device address is its MFN (never its PFN) plus the offset;
 * in pagemap mode it is the PFN; when p2m_generation moves, the next address is looked up
 * again (a page Linux moved gets its new MFN, and is counted), and a region whose page lost
 * its machine frame is refused at creation.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "util/log.h"
#include "virtio/dma.h"
#include "xen/p2m.h"

#define PAGES 8
#define NR_PFN 4096

struct fake {
	uint8_t *base;
	uint64_t first_pfn;
};

/* Page i of the region is at PFN first_pfn + 3 * i: frames are never contiguous. */
static int fake_pfn(void *ctx, const void *page, uint64_t *ret_pfn)
{
	struct fake *f = ctx;

	if (!f->base) /* dma.c asks for page 0 first */
		f->base = (uint8_t *)page;
	*ret_pfn = f->first_pfn + 3 * (uint64_t)(((const uint8_t *)page - f->base) / 4096);
	return 0;
}

static uint64_t mfn_of(uint64_t pfn)
{
	return 0x900000 - pfn * 5;
}

int main(void)
{
	uint64_t *table = calloc(NR_PFN, sizeof(*table));
	struct bk_p2m *p2m = NULL;
	struct vio_dma *d = NULL;
	struct fake f = { .first_pfn = 1000 };
	struct vio_dma_env env = { .pfn_of = fake_pfn, .ctx = &f };
	uint8_t *pg;
	bool all = true;

	bk_log_set_level(BK_LOG_ERR);
	CHECK(table);
	if (!table)
		return bk_test_exit();
	for (uint64_t i = 0; i < NR_PFN; i++)
		table[i] = mfn_of(i);
	CHECK(bk_p2m_sim_new(table, NR_PFN, &p2m) == 0);
	env.p2m = p2m;

	CHECK(vio_dma_new_env("test p2m", PAGES, VIO_DMA_P2M, &env, &d) == 0);
	if (!d)
		return bk_test_exit();
	CHECK(d->base == f.base);
	for (unsigned int i = 0; i < PAGES; i++) {
		uint64_t pfn = f.first_pfn + 3 * i;

		all &= vio_dma_addr(d, d->base + i * 4096 + 100) == mfn_of(pfn) * 4096 + 100;
	}
	CHECK(all);

	/* Linux moves page 2's frame (p2m generation +2): the next address has the new MFN. */
	pg = d->base + 2 * 4096;
	CHECK(vio_dma_addr(d, pg) == mfn_of(f.first_pfn + 6) * 4096);
	CHECK(bk_p2m_sim_set(p2m, f.first_pfn + 6, 0x424242) == 0);
	CHECK(vio_dma_addr(d, pg + 8) == 0x424242ull * 4096 + 8);
	CHECK(d->refreshes == 1);
	CHECK(d->moved == 1);
	/* A generation move that changes nothing else: same addresses, one more check. */
	CHECK(bk_p2m_sim_set(p2m, 3000, 0x111) == 0);
	CHECK(vio_dma_addr(d, d->base) == mfn_of(f.first_pfn) * 4096);
	CHECK(d->refreshes == 2 && d->moved == 1);
	vio_dma_free(d);
	d = NULL;

	/* pagemap mode: the PFN itself. */
	f.base = NULL;
	CHECK(vio_dma_new_env("test pagemap", PAGES, VIO_DMA_PAGEMAP, &env, &d) == 0);
	if (d)
		CHECK(vio_dma_addr(d, d->base + 5 * 4096 + 1) == (f.first_pfn + 15) * 4096 + 1);
	vio_dma_free(d);
	d = NULL;

	/* A page whose PFN has no machine frame: refused, never a made-up address. */
	CHECK(bk_p2m_sim_set(p2m, 2000 + 3 * 4, BK_P2M_INVALID) == 0);
	f.base = NULL;
	f.first_pfn = 2000;
	CHECK(vio_dma_new_env("test hole", PAGES, VIO_DMA_P2M, &env, &d) == -EFAULT);
	CHECK(!d);

	bk_p2m_close(p2m);
	free(table);
	return bk_test_exit();
}
