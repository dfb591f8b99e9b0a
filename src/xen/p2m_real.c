// SPDX-License-Identifier: MIT
/*
 * Dom0's p2m through libxenctrl and libxenforeignmemory: the shared_info frame from the
 * domain's info, and every frame mapped with DOMID_SELF (mapping domain 0 by its id fails with
 * ESRCH, pv-dom0-dma.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <xenctrl.h>
#include <xenforeignmemory.h>

#include "p2m.h"
#include "util/log.h"
#include "util/macros.h"

_Static_assert(offsetof(shared_info_t, arch) == BK_P2M_ARCH_OFFSET, "shared_info.arch offset");
_Static_assert(offsetof(shared_info_t, arch.p2m_generation) ==
		       BK_P2M_ARCH_OFFSET + offsetof(struct bk_p2m_arch, p2m_generation),
	       "shared_info.arch.p2m_generation offset");

struct real_p2m {
	struct bk_p2m base;
	xenforeignmemory_handle *fmem;
	void *shinfo;
};

static const void *real_map(struct bk_p2m *p, uint64_t mfn)
{
	struct real_p2m *rp = container_of(p, struct real_p2m, base);
	xen_pfn_t f = (xen_pfn_t)mfn;
	int err = 0;
	void *page = xenforeignmemory_map(rp->fmem, DOMID_SELF, PROT_READ, 1, &f, &err);

	if (page && err) {
		xenforeignmemory_unmap(rp->fmem, page, 1);
		errno = -err > 0 ? -err : EFAULT;
		return NULL;
	}
	return page;
}

static void real_unmap(struct bk_p2m *p, const void *page)
{
	struct real_p2m *rp = container_of(p, struct real_p2m, base);

	xenforeignmemory_unmap(rp->fmem, (void *)page, 1);
}

static void real_free(struct bk_p2m *p)
{
	struct real_p2m *rp = container_of(p, struct real_p2m, base);

	if (rp->shinfo)
		xenforeignmemory_unmap(rp->fmem, rp->shinfo, 1);
	if (rp->fmem)
		xenforeignmemory_close(rp->fmem);
	free(rp);
}

static const struct bk_p2m_ops real_ops = {
	.name = "xen",
	.map = real_map,
	.unmap = real_unmap,
	.free = real_free,
};

int bk_p2m_open_real(struct bk_p2m **ret)
{
	struct real_p2m *rp = calloc(1, sizeof(*rp));
	xc_interface *xc;
	xc_domaininfo_t info;
	int n, r;

	if (!rp)
		return -ENOMEM;
	xc = xc_interface_open(NULL, NULL, 0);
	if (!xc) {
		r = log_err_errno(errno > 0 ? -errno : -EIO, "p2m: xc_interface_open: %m");
		free(rp);
		return r;
	}
	n = xc_domain_getinfolist(xc, 0, 1, &info);
	r = n == 1 && info.domain == 0 ? 0 : errno > 0 ? -errno : -ENODEV;
	xc_interface_close(xc);
	if (r < 0) {
		free(rp);
		return log_err_errno(r, "p2m: reading dom0's shared_info frame: %m%s",
				     r == -EPERM
					     ? " (only dom0 may: this domain has no domctl, e.g. "
					       "a driver domain)"
					     : "");
	}
	rp->fmem = xenforeignmemory_open(NULL, 0);
	if (!rp->fmem) {
		r = log_err_errno(errno > 0 ? -errno : -EIO, "p2m: xenforeignmemory_open: %m");
		free(rp);
		return r;
	}
	rp->shinfo = (void *)real_map(&rp->base, info.shared_info_frame);
	if (!rp->shinfo) {
		r = log_err_errno(
			errno > 0 ? -errno : -EIO,
			"p2m: mapping dom0's shared_info (frame %#llx) with DOMID_SELF: %m",
			(unsigned long long)info.shared_info_frame);
		real_free(&rp->base);
		return r;
	}
	r = bk_p2m_init(&rp->base, &real_ops,
			(const volatile void *)((uint8_t *)rp->shinfo + BK_P2M_ARCH_OFFSET));
	if (r < 0) {
		real_free(&rp->base);
		return r;
	}
	*ret = &rp->base;
	return 0;
}
