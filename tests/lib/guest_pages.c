// SPDX-License-Identifier: MIT
/* A test frontend's guest pages: see guest_pages.h. */
#include <errno.h>
#include <stdlib.h>

#include "blkfront.h"
#include "guest_pages.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xenbus_front.h"

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

int bk_front_open(struct bk_bf_env *env, const char *kind, uint32_t domid, uint32_t devid,
		  uint32_t pfn_base, uint32_t pfn_count, struct bk_gpages *ret_pages,
		  struct bk_xbfront **ret_xbf)
{
	_cleanup_free_ char *path = bk_ts_fe_path(kind, domid, devid);
	int r;

	if (!path)
		return -ENOMEM;
	r = bk_gpages_init(ret_pages, pfn_base, pfn_count);
	if (r < 0)
		return r;
	r = bk_xbf_open(env->sim, env->loop, domid, path, ret_xbf);
	if (r < 0)
		bk_gpages_fini(ret_pages);
	return r;
}

void bk_front_close(struct bk_gpages *pages, struct bk_xbfront *xbf)
{
	bk_xbf_close(xbf);
	bk_gpages_fini(pages);
}
