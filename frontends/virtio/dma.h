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
 *   pagemap   the PFN from /proc/self/pagemap (bare metal, HVM/PVH dom0, no IOMMU).
 *   p2m       PFN -> MFN through dom0's p2m, re-checked when p2m_generation moves (PV dom0).
 * Only identity is implemented; the other two are refused with -EOPNOTSUPP so a PCI transport
 * gets a clear error until they land (see pv-dom0-dma.md for what they need: pages that
 * stay put, which mlock does not give).
 */
#ifndef BK_VIRTIO_DMA_H
#define BK_VIRTIO_DMA_H

#include <stddef.h>
#include <stdint.h>

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
/* NULL-safe. A vhost-user back-end that still maps the memfd keeps its pages alive. */
void vio_dma_free(struct vio_dma *d);

/* One page (not zeroed), or NULL when none is free. */
void *vio_dma_page_get(struct vio_dma *d);
/* Give a page from vio_dma_page_get() back. */
void vio_dma_page_put(struct vio_dma *d, void *page);

/* The device address of @p, which lies inside the region. */
static inline uint64_t vio_dma_addr(const struct vio_dma *d, const void *p)
{
	/* Only identity exists so far; pagemap/p2m will look the page up here. */
	(void)d;
	return (uint64_t)(uintptr_t)p;
}

#endif
