// SPDX-License-Identifier: MIT
/*
 * Issuing a batch of grant-copy segments and reading its per-segment status: what every
 * backend does with bk_gnt_copy, in one place (blkif's request data and indirect descriptors,
 * netif's TX and RX frames).
 */
#include <stdint.h>

#include <xen/grant_table.h>

#include "xen.h"

int bk_gnt_copy_batch(struct bk_gnttab *g, struct bk_gnt_copy_seg *segs, unsigned int n)
{
	int r;

	if (!n)
		return 0;
	r = bk_gnt_copy(g, segs, n);
	if (r < 0) {
		/* The call failed as a whole: no segment may be taken as copied. */
		for (unsigned int i = 0; i < n; i++)
			segs[i].status = GNTST_general_error;
		return r;
	}
	return 0;
}

int16_t bk_gnt_copy_status(const struct bk_gnt_copy_seg *segs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (segs[i].status != GNTST_okay)
			return segs[i].status;
	return GNTST_okay;
}
