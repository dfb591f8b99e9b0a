// SPDX-License-Identifier: MIT
/* DMA memory for the virtio drivers: see dma.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dma.h"
#include "util/log.h"
#include "util/macros.h"
#include "virtio.h"

const char *vio_dma_mode_name(enum vio_dma_mode mode)
{
	switch (mode) {
	case VIO_DMA_IDENTITY:
		return "identity";
	case VIO_DMA_PAGEMAP:
		return "pagemap";
	case VIO_DMA_P2M:
		return "p2m";
	}
	return "?";
}

/* True in a PV domain: Xen publishes no "hvm" in its CPUID, but /proc/xen says "control_d". */
static bool running_pv_dom0(void)
{
	char buf[64] = "";
	FILE *f = fopen("/proc/xen/capabilities", "re");
	bool cd;

	if (!f)
		return false;
	cd = fgets(buf, sizeof(buf), f) && strstr(buf, "control_d");
	fclose(f);
	/* A PVH/HVM dom0 has no /sys/hypervisor/guest_type "PV". */
	if (cd) {
		f = fopen("/sys/hypervisor/guest_type", "re");
		if (f) {
			cd = fgets(buf, sizeof(buf), f) && strncmp(buf, "PV", 2) == 0;
			fclose(f);
		}
	}
	return cd;
}

enum vio_dma_mode vio_dma_choose(enum vio_dma_user user, const char **reason)
{
	if (user == VIO_DMA_FOR_VHOST_USER) {
		*reason = "the vhost-user back-end maps our memfd, so descriptors carry our own "
			  "virtual addresses";
		return VIO_DMA_IDENTITY;
	}
	if (running_pv_dom0()) {
		*reason = "PV dom0: a device needs machine frames, PFN -> MFN through dom0's p2m";
		return VIO_DMA_P2M;
	}
	*reason = "not a PV domain: a device without an IOMMU sees our PFNs (pagemap)";
	return VIO_DMA_PAGEMAP;
}

int vio_dma_new(const char *name, unsigned int nr_pages, enum vio_dma_mode mode,
		struct vio_dma **ret)
{
	_cleanup_free_ struct vio_dma *d = NULL;
	int r;

	if (mode != VIO_DMA_IDENTITY)
		return bk_log_errno(BK_LOG_ERR, -EOPNOTSUPP,
				    "%s: DMA translation mode %s is not implemented yet", name,
				    vio_dma_mode_name(mode));
	if (!nr_pages)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->mode = mode;
	d->nr_pages = nr_pages;
	d->size = (size_t)nr_pages * VIO_PAGE_SIZE;
	d->free = calloc(nr_pages, sizeof(*d->free));
	if (!d->free)
		return -ENOMEM;
	d->fd = memfd_create("blanketd-virtio", MFD_CLOEXEC);
	if (d->fd < 0) {
		r = log_err_errno(neg_errno(), "%s: memfd_create: %m", name);
		goto fail;
	}
	if (ftruncate(d->fd, (off_t)d->size) < 0) {
		r = log_err_errno(neg_errno(), "%s: sizing the DMA memfd to %zu bytes: %m", name,
				  d->size);
		goto fail;
	}
	d->base = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, d->fd, 0);
	if (d->base == MAP_FAILED) {
		d->base = NULL;
		r = log_err_errno(neg_errno(), "%s: mapping %zu bytes of DMA memory: %m", name,
				  d->size);
		goto fail;
	}
	/* Keeps the pages in RAM; it does not keep them at one physical address (identity). */
	if (mlock(d->base, d->size) < 0)
		log_debug("%s: mlock of the DMA memory: %m (continuing)", name);
	for (unsigned int i = 0; i < nr_pages; i++)
		d->free[i] = nr_pages - 1 - i;
	d->nr_free = nr_pages;
	*ret = TAKE_PTR(d);
	return 0;
fail:
	if (d->fd >= 0)
		close(d->fd);
	free(d->free);
	return r;
}

void vio_dma_free(struct vio_dma *d)
{
	if (!d)
		return;
	if (d->base)
		munmap(d->base, d->size);
	if (d->fd >= 0)
		close(d->fd);
	free(d->free);
	free(d);
}

void *vio_dma_page_get(struct vio_dma *d)
{
	uint8_t *p;

	if (!d->nr_free)
		return NULL;
	p = d->base + (size_t)d->free[--d->nr_free] * VIO_PAGE_SIZE;
	return p;
}

void vio_dma_page_put(struct vio_dma *d, void *page)
{
	size_t off = (size_t)((uint8_t *)page - d->base);

	if (off >= d->size || off % VIO_PAGE_SIZE || d->nr_free >= d->nr_pages)
		abort(); /* a driver bug: never a value from a device */
	d->free[d->nr_free++] = (uint32_t)(off / VIO_PAGE_SIZE);
}
