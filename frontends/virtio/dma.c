// SPDX-License-Identifier: MIT
/* DMA memory for the virtio drivers: see dma.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "dma.h"
#if HAVE_LIBURING
#include <liburing.h>
#endif
#include "util/log.h"
#include "util/macros.h"
#include "virtio.h"
#include "xen/p2m.h"

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

/* The PFN of a mapped page from /proc/self/pagemap (frame numbers need CAP_SYS_ADMIN). */
static int pagemap_pfn(void *ctx, const void *page, uint64_t *ret_pfn)
{
	int fd = *(int *)ctx;
	uint64_t e;
	off_t at = (off_t)((uintptr_t)page / VIO_PAGE_SIZE * sizeof(e));

	if (pread(fd, &e, sizeof(e), at) != sizeof(e))
		return neg_errno();
	if (!(e & (1ull << 63)))
		return -ENXIO; /* not present */
	e &= (1ull << 55) - 1;
	if (!e)
		return -EPERM; /* frame numbers hidden */
	*ret_pfn = e;
	return 0;
}

uint64_t vio_dma_p2m_generation(const struct vio_dma *d)
{
	return d->p2m ? bk_p2m_generation(d->p2m) : 0;
}

/* Look every page's device frame up (p2m: MFN of its PFN); @first: no old value to compare. */
static int frames_lookup(struct vio_dma *d, bool first)
{
	for (int tries = 0; tries < 10; tries++) {
		uint64_t gen = vio_dma_p2m_generation(d);

		for (unsigned int i = 0; i < d->nr_pages; i++) {
			uint64_t f = d->pfn[i];
			int r = 0;

			if (d->mode == VIO_DMA_P2M)
				r = bk_p2m_lookup(d->p2m, d->pfn[i], &f);
			if (r < 0)
				return log_err_errno(
					r,
					"%s: DMA page %u (PFN %#llx) has no machine frame "
					"in dom0's p2m: %m",
					d->name, i, (unsigned long long)d->pfn[i]);
			if (!first && f != d->frame[i]) {
				d->moved++;
				log_warn(
					"%s: DMA page %u (PFN %#llx) moved from MFN %#llx to %#llx "
					"although it is pinned",
					d->name, i, (unsigned long long)d->pfn[i],
					(unsigned long long)d->frame[i], (unsigned long long)f);
			}
			d->frame[i] = f;
		}
		if (vio_dma_p2m_generation(d) == gen) {
			d->generation = gen;
			return 0;
		}
	}
	return log_err_errno(-EAGAIN, "%s: dom0's p2m keeps changing: %m", d->name);
}

int vio_dma_refresh(struct vio_dma *d)
{
	if (!d->p2m)
		return 0;
	d->refreshes++;
	log_debug("%s: p2m generation %llu -> %llu: checking %u DMA pages again", d->name,
		  (unsigned long long)d->generation, (unsigned long long)vio_dma_p2m_generation(d),
		  d->nr_pages);
	return frames_lookup(d, false);
}

/* Pin the region by registering it with io_uring (a long-term pin: compaction skips it). */
static int pin_uring(struct vio_dma *d)
{
#if HAVE_LIBURING
	struct io_uring *ring = calloc(1, sizeof(*ring));
	struct iovec iov = { d->base, d->size };
	int r;

	if (!ring)
		return -ENOMEM;
	r = io_uring_queue_init(1, ring, 0);
	if (r < 0) {
		free(ring);
		return r;
	}
	r = io_uring_register_buffers(ring, &iov, 1);
	if (r < 0) {
		io_uring_queue_exit(ring);
		free(ring);
		return r;
	}
	d->pin = ring;
	return 0;
#else
	(void)d;
	return -EOPNOTSUPP;
#endif
}

static void unpin_uring(struct vio_dma *d)
{
#if HAVE_LIBURING
	if (d->pin) {
		io_uring_queue_exit(d->pin);
		free(d->pin);
	}
#endif
	d->pin = NULL;
}

/* Where the pages come from: a memfd (identity, tests), or pinned pages for a device. */
static int pages_map(struct vio_dma *d, const struct vio_dma_env *env)
{
	int r;

	if (d->mode == VIO_DMA_P2M && !env) {
		/* Zeroed kernel pages that are never migrated (libxencall uses them). */
		d->fd = open("/dev/xen/hypercall", O_RDWR | O_CLOEXEC);
		if (d->fd < 0)
			return log_err_errno(neg_errno(),
					     "%s: /dev/xen/hypercall (pinned DMA pages in a PV "
					     "dom0): %m",
					     d->name);
		d->base = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
		if (d->base == MAP_FAILED) {
			d->base = NULL;
			return log_err_errno(neg_errno(),
					     "%s: mapping %zu bytes of /dev/xen/hypercall: %m",
					     d->name, d->size);
		}
		return 0;
	}
	d->fd = memfd_create("blanketd-virtio", MFD_CLOEXEC);
	if (d->fd < 0)
		return log_err_errno(neg_errno(), "%s: memfd_create: %m", d->name);
	if (ftruncate(d->fd, (off_t)d->size) < 0)
		return log_err_errno(neg_errno(), "%s: sizing the DMA memfd to %zu bytes: %m",
				     d->name, d->size);
	d->base = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, d->fd, 0);
	if (d->base == MAP_FAILED) {
		d->base = NULL;
		return log_err_errno(neg_errno(), "%s: mapping %zu bytes of DMA memory: %m",
				     d->name, d->size);
	}
	/* Keeps the pages in RAM; it does not keep them at one physical address. */
	if (mlock(d->base, d->size) < 0)
		log_debug("%s: mlock of the DMA memory: %m (continuing)", d->name);
	if (d->mode == VIO_DMA_PAGEMAP && !env) {
		r = pin_uring(d);
		if (r < 0)
			return log_err_errno(r,
					     "%s: pinning %zu bytes of DMA memory with io_uring "
					     "buffer registration (RLIMIT_MEMLOCK?): %m",
					     d->name, d->size);
	}
	return 0;
}

/* Pagemap and p2m: every page's PFN, then its device frame. */
static int frames_init(struct vio_dma *d, const struct vio_dma_env *env)
{
	int (*pfn_of)(void *, const void *, uint64_t *) = env ? env->pfn_of : pagemap_pfn;
	int pm_fd = -1, r = 0;
	void *ctx = env ? env->ctx : &pm_fd;

	d->pfn = calloc(d->nr_pages, sizeof(*d->pfn));
	d->frame = calloc(d->nr_pages, sizeof(*d->frame));
	if (!d->pfn || !d->frame)
		return -ENOMEM;
	if (!env) {
		pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (pm_fd < 0)
			return log_err_errno(neg_errno(), "%s: /proc/self/pagemap: %m", d->name);
	}
	for (unsigned int i = 0; i < d->nr_pages && r >= 0; i++) {
		r = pfn_of(ctx, d->base + (size_t)i * VIO_PAGE_SIZE, &d->pfn[i]);
		if (r < 0)
			log_err_errno(r, "%s: the PFN of DMA page %u from /proc/self/pagemap: %m%s",
				      d->name, i,
				      r == -EPERM ? " (frame numbers need CAP_SYS_ADMIN)" : "");
	}
	if (pm_fd >= 0)
		close(pm_fd);
	if (r < 0)
		return r;
	if (d->mode == VIO_DMA_P2M) {
		if (env) {
			d->p2m = env->p2m;
		} else {
			r = bk_p2m_open_real(&d->p2m);
			if (r < 0)
				return log_err_errno(r, "%s: reading dom0's p2m: %m", d->name);
			d->own_p2m = true;
		}
	}
	return frames_lookup(d, true);
}

int vio_dma_new_env(const char *name, unsigned int nr_pages, enum vio_dma_mode mode,
		    const struct vio_dma_env *env, struct vio_dma **ret)
{
	struct vio_dma *d;
	int r;

	if (!nr_pages || (mode == VIO_DMA_P2M && env && !env->p2m))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->mode = mode;
	d->fd = -1;
	d->nr_pages = nr_pages;
	d->size = (size_t)nr_pages * VIO_PAGE_SIZE;
	d->free = calloc(nr_pages, sizeof(*d->free));
	if (!d->free) {
		r = -ENOMEM;
		goto fail;
	}
	r = pages_map(d, env);
	if (r < 0)
		goto fail;
	if (mode != VIO_DMA_IDENTITY) {
		r = frames_init(d, env);
		if (r < 0)
			goto fail;
	}
	for (unsigned int i = 0; i < nr_pages; i++)
		d->free[i] = nr_pages - 1 - i;
	d->nr_free = nr_pages;
	*ret = d;
	return 0;
fail:
	vio_dma_free(d);
	return r;
}

int vio_dma_new(const char *name, unsigned int nr_pages, enum vio_dma_mode mode,
		struct vio_dma **ret)
{
	return vio_dma_new_env(name, nr_pages, mode, NULL, ret);
}

void vio_dma_free(struct vio_dma *d)
{
	if (!d)
		return;
	unpin_uring(d);
	if (d->base)
		munmap(d->base, d->size);
	if (d->fd >= 0)
		close(d->fd);
	if (d->own_p2m)
		bk_p2m_close(d->p2m);
	free(d->pfn);
	free(d->frame);
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
