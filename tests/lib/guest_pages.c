// SPDX-License-Identifier: MIT
/* A test frontend's guest pages: see guest_pages.h. */
#include <errno.h>
#include <stdlib.h>

#include "guest_pages.h"

int bk_gpages_init(struct bk_gpages *gp, uint32_t base, uint32_t count)
{
	if (!count)
		return -EINVAL;
	gp->used = calloc(count, sizeof(bool));
	if (!gp->used)
		return -ENOMEM;
	gp->base = base;
	gp->count = count;
	return 0;
}

void bk_gpages_fini(struct bk_gpages *gp)
{
	if (!gp)
		return;
	free(gp->used);
	gp->used = NULL;
	gp->count = 0;
}

int bk_gpages_alloc(struct bk_gpages *gp, unsigned int n, uint32_t *ret_pfn)
{
	for (uint32_t i = 0; i + n <= gp->count; i++) {
		unsigned int j;

		for (j = 0; j < n && !gp->used[i + j]; j++)
			;
		if (j == n) {
			for (j = 0; j < n; j++)
				gp->used[i + j] = true;
			*ret_pfn = gp->base + i;
			return 0;
		}
	}
	return -EBUSY;
}

void bk_gpages_free(struct bk_gpages *gp, uint32_t pfn)
{
	if (pfn >= gp->base && pfn - gp->base < gp->count)
		gp->used[pfn - gp->base] = false;
}
