/* SPDX-License-Identifier: MIT */
/*
 * DMA memory for the virtio drivers: one memfd-backed region of 4 KiB pages, handed out a page
 * at a time (every DMA object - a ring, an indirect table, a request header, a data buffer -
 * fits in one page, so no device ever needs two pages to be contiguous), and the translation
 * from a pointer into the region to the address a device must be given.
 *
 * Translation modes:
 *   identity  the device address is our virtual address. vhost-user: the back-end maps the
 *             memfd itself and the memory table says "guest physical" == our address.
 *   pagemap   the PFN from /proc/self/pagemap (bare metal, HVM/PVH dom0, no IOMMU). The pages
 *             are pinned by registering them with io_uring (mlock does not keep a page at
 *             one frame: compaction moves mlocked pages).
 *   p2m       PFN -> MFN through dom0's p2m (PV dom0). The pages come from
 *             /dev/xen/hypercall (unmovable kernel pages); their MFNs are looked up once and
 *             looked up again whenever p2m_generation has moved since (a page that really
 *             moved is reported and its new MFN used from then on).
 * pagemap and p2m keep one frame number per page; vio_dma_addr() is then an array read (and a
 * generation compare in p2m mode).
 */
#ifndef BK_VIRTIO_DMA_H
#define BK_VIRTIO_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

struct bk_p2m;

enum vio_dma_mode {
	VIO_DMA_IDENTITY,
	VIO_DMA_PAGEMAP,
	VIO_DMA_P2M,
};

/* What a transport needs from its device addresses. */
enum vio_dma_user {
	VIO_DMA_FOR_VHOST_USER, /* a back-end process maps our memfd */
	VIO_DMA_FOR_PCI,	/* a device does DMA to physical/machine frames */
};

struct vio_dma {
	char name[64];
	enum vio_dma_mode mode;
	int fd; /* the memfd, shared with a vhost-user back-end */
	uint8_t *base;
	size_t size;
	unsigned int nr_pages;
	unsigned int nr_free;
	uint32_t *free; /* stack of free page indices */
	/* pagemap and p2m modes */
	uint64_t *pfn;	     /* per page: its PFN (pinned: never changes) */
	uint64_t *frame;     /* per page: the frame a device is given (PFN, or MFN) */
	struct bk_p2m *p2m;  /* p2m mode */
	uint64_t generation; /* p2m_generation @frame was checked at */
	uint64_t refreshes;  /* times the generation moved and the frames were checked again */
	uint64_t moved;	     /* pages found at a new MFN by a refresh (pinning failed) */
	bool own_p2m;	     /* the p2m was opened here (closed at free) */
	void *pin;	     /* io_uring that pins the pages (pagemap mode) */
};

/*
 * Where a region's pages come from and how their frames are found, for tests: @pfn_of gives
 * the PFN of a page (instead of /proc/self/pagemap), @p2m is the p2m to read (instead of
 * dom0's own), and the pages are plain memfd pages (not pinned).
 */
struct vio_dma_env {
	int (*pfn_of)(void *ctx, const void *page, uint64_t *ret_pfn);
	void *ctx;
	struct bk_p2m *p2m;
};

/*
 * Pick the translation for @user on this machine and say why in @reason (a static string).
 * Never fails: a mode that is not implemented is still named, and vio_dma_new() refuses it.
 */
enum vio_dma_mode vio_dma_choose(enum vio_dma_user user, const char **reason);
const char *vio_dma_mode_name(enum vio_dma_mode mode);

/*
 * A region of @nr_pages pages in @mode, populated and locked (best effort: mlock keeps it out
 * of swap; in identity mode nothing depends on where the pages sit in physical memory).
 * @name names the device in logs. -EOPNOTSUPP for modes not implemented yet.
 */
int vio_dma_new(const char *name, unsigned int nr_pages, enum vio_dma_mode mode,
		struct vio_dma **ret);
/* The same with the pages and frames from @env (tests); @env NULL is vio_dma_new(). */
int vio_dma_new_env(const char *name, unsigned int nr_pages, enum vio_dma_mode mode,
		    const struct vio_dma_env *env, struct vio_dma **ret);
/* NULL-safe. A vhost-user back-end that still maps the memfd keeps its pages alive. */
void vio_dma_free(struct vio_dma *d);

/* One page (not zeroed), or NULL when none is free. */
void *vio_dma_page_get(struct vio_dma *d);
/* Give a page from vio_dma_page_get() back. */
void vio_dma_page_put(struct vio_dma *d, void *page);

/*
 * p2m mode: the generation moved, so look every page's MFN up again. 0, or -errno when a page
 * has no MFN any more (the region must not be used: its old frames may belong to anyone).
 */
int vio_dma_refresh(struct vio_dma *d);
/* Read the generation of dom0's p2m (p2m mode; 0 otherwise). */
uint64_t vio_dma_p2m_generation(const struct vio_dma *d);

/* The device address of @p, which lies inside the region. */
static inline uint64_t vio_dma_addr(struct vio_dma *d, const void *p)
{
	size_t off;

	if (d->mode == VIO_DMA_IDENTITY)
		return (uint64_t)(uintptr_t)p;
	/* Never hand a device an MFN from before a p2m change without looking again. */
	if (d->p2m && vio_dma_p2m_generation(d) != d->generation)
		vio_dma_refresh(d);
	off = (size_t)((const uint8_t *)p - d->base);
	return d->frame[off / VIO_PAGE_SIZE] * VIO_PAGE_SIZE + off % VIO_PAGE_SIZE;
}

#endif
