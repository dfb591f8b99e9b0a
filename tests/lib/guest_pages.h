/* SPDX-License-Identifier: MIT */
/*
 * The guest pages a test frontend may use ([base, base + count) of its domain's simulated
 * memory) and which of them are in use: the page allocator blkfront and netfront share, and
 * the set-up they share (the pages and the xenbus frontend player on the device's directory).
 */
#ifndef BK_TEST_GUEST_PAGES_H
#define BK_TEST_GUEST_PAGES_H

#include <stdbool.h>
#include <stdint.h>

struct bk_gpages {
	uint32_t base, count;
	bool *used; /* per page of the range */
};

/* All @count pages from @base free: 0, -EINVAL for an empty range, or -ENOMEM. */
int bk_gpages_init(struct bk_gpages *gp, uint32_t base, uint32_t count);
/* Release the bookkeeping (not the pages' grants); NULL-safe, may be called twice. */
void bk_gpages_fini(struct bk_gpages *gp);
/* Take the first run of @n free consecutive pages: 0 and its first pfn, or -EBUSY. */
int bk_gpages_alloc(struct bk_gpages *gp, unsigned int n, uint32_t *ret_pfn);
/* Give page @pfn back; a pfn outside the range is ignored. */
void bk_gpages_free(struct bk_gpages *gp, uint32_t pfn);

struct bk_bf_env;
struct bk_xbfront;

/*
 * Open a frontend of device @kind @domid/@devid on @env: its pages [pfn_base, + pfn_count) and
 * its xenbus player. 0, or -errno with nothing left to undo.
 */
int bk_front_open(struct bk_bf_env *env, const char *kind, uint32_t domid, uint32_t devid,
		  uint32_t pfn_base, uint32_t pfn_count, struct bk_gpages *ret_pages,
		  struct bk_xbfront **ret_xbf);
/* Undo bk_front_open() (after the frontend revoked its grants). */
void bk_front_close(struct bk_gpages *pages, struct bk_xbfront *xbf);

#endif
