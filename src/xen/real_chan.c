// SPDX-License-Identifier: MIT
/*
 * Event channels over libxenevtchn (/dev/xen/evtchn) and grant tables over libxengnttab
 * (/dev/xen/gntdev): map, unmap, and batched grant copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "real_internal.h"  /* xenctrl.h brings xen/grant_table.h (GNTST_*, GNTCOPY_*) */
#include <xen/sys/evtchn.h> /* IOCTL_EVTCHN_RESET; needs domid_t from xenctrl.h */
#include "util/macros.h"

/*
 * Grants one gntdev handle may map (each device has its own): its rings, up to 16 queues x 16
 * pages (ring order 4), and blkif's persistent grants, up to 1056 per queue (the rest of the
 * data goes by grant copy). Kernels that still have
 * IOCTL_GNTDEV_SET_MAX_GRANTS cap a handle at this; current ones have no such ioctl
 * (libxengnttab then ignores the ENOTTY) and only gntdev's own module limit applies.
 */
#define REAL_MAX_GRANTS 65536U

/* ---- event channels ---- */

static xenevtchn_handle *evh(struct bk_evtchn *e)
{
	return container_of(e, struct real_evtchn, base)->h;
}

/*
 * The batch's read: /dev/xen/evtchn hands out as many queued ports as fit in the buffer. The
 * kernel masks a port when it queues it; it stays masked until unmasked. EFBIG means the
 * kernel's per-handle ring overflowed and events were lost.
 */
static int ports_read(struct evtchn_batch *b, uint32_t *ports, unsigned int max)
{
	struct real_evtchn *re = container_of(b, struct real_evtchn, batch);
	ssize_t n = read(re->fd, ports, (size_t)max * sizeof(*ports));
	int r;

	if (n < 0) {
		r = real_errno();
		/*
		 * Every read says EFBIG, and the fd polls as an error (readable to the loop),
		 * until the ring is reset: without the reset the caller would be called again at
		 * once, forever. Reset it and report the loss once. The ports still queued stay
		 * masked; the caller handles and unmasks every port anyway. The ioctl only fails
		 * on a bad fd, which the next read reports.
		 */
		if (r == -EFBIG)
			(void)ioctl(re->fd, IOCTL_EVTCHN_RESET);
		return r;
	}
	n /= (ssize_t)sizeof(*ports);
	return n > 0 ? (int)n : -EAGAIN;
}

/* The batch's unmask: the kernel takes many ports per write and skips those not bound here. */
static int ports_unmask(struct evtchn_batch *b, const uint32_t *ports, unsigned int n)
{
	struct real_evtchn *re = container_of(b, struct real_evtchn, batch);

	if (write(re->fd, ports, (size_t)n * sizeof(*ports)) < 0)
		return real_errno();
	return 0;
}

static const struct evtchn_batch_ops real_batch_ops = {
	.read = ports_read,
	.unmask = ports_unmask,
};

int real_evtchn_open(struct bk_xen *x, struct bk_evtchn **ret)
{
	struct real_evtchn *re;
	int flags, r;

	re = calloc(1, sizeof(*re));
	if (!re)
		return -ENOMEM;
	re->base.h.xen = x;
	evtchn_batch_init(&re->batch, &real_batch_ops);
	re->h = xenevtchn_open(NULL, 0);
	if (!re->h) {
		r = real_errno();
		free(re);
		return r;
	}
	re->fd = xenevtchn_fd(re->h);
	/*
	 * libxenevtchn opens /dev/xen/evtchn blocking and xenevtchn_pending() is a plain
	 * read(): make it non-blocking so "nothing pending" is EAGAIN instead of a stall.
	 */
	flags = fcntl(re->fd, F_GETFL);
	if (flags < 0 || fcntl(re->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		r = real_errno();
		xenevtchn_close(re->h);
		free(re);
		return r;
	}
	real_handle_get(x);
	*ret = &re->base;
	return 0;
}

void real_evtchn_close(struct bk_evtchn *e)
{
	struct real_evtchn *re;

	if (!e)
		return;
	re = container_of(e, struct real_evtchn, base);
	/* Closing the device unbinds every port still bound through it. */
	xenevtchn_close(re->h);
	real_handle_put(re->base.h.xen);
	free(re);
}

int real_evtchn_fd(struct bk_evtchn *e)
{
	return container_of(e, struct real_evtchn, base)->fd;
}

int real_evtchn_bind(struct bk_evtchn *e, uint32_t domid, uint32_t remote_port,
		     uint32_t *ret_local_port)
{
	xenevtchn_port_or_error_t p;

	if (domid >= REAL_DOMID_LIMIT)
		return -EINVAL;
	p = xenevtchn_bind_interdomain(evh(e), domid, remote_port);
	if (p < 0)
		return real_errno();
	evtchn_batch_bound(&container_of(e, struct real_evtchn, base)->batch);
	*ret_local_port = (uint32_t)p;
	return 0;
}

int real_evtchn_unbind(struct bk_evtchn *e, uint32_t local_port)
{
	if (xenevtchn_unbind(evh(e), local_port) < 0)
		return real_errno();
	evtchn_batch_unbound(&container_of(e, struct real_evtchn, base)->batch, local_port);
	return 0;
}

int real_evtchn_notify(struct bk_evtchn *e, uint32_t local_port)
{
	if (xenevtchn_notify(evh(e), local_port) < 0)
		return real_errno();
	return 0;
}

int real_evtchn_pending(struct bk_evtchn *e, uint32_t *ret_port)
{
	return evtchn_batch_pending(&container_of(e, struct real_evtchn, base)->batch, ret_port);
}

int real_evtchn_unmask(struct bk_evtchn *e, uint32_t local_port)
{
	return evtchn_batch_unmask(&container_of(e, struct real_evtchn, base)->batch, local_port);
}

/* ---- grant tables ---- */

static struct real_gnttab *rgt(struct bk_gnttab *g)
{
	return container_of(g, struct real_gnttab, base);
}

int real_gnt_open(struct bk_xen *x, struct bk_gnttab **ret)
{
	struct real_gnttab *rg;
	int r;

	rg = calloc(1, sizeof(*rg));
	if (!rg)
		return -ENOMEM;
	rg->base.h.xen = x;
	rg->batch = calloc(REAL_COPY_BATCH, sizeof(*rg->batch));
	rg->batch_idx = calloc(REAL_COPY_BATCH, sizeof(*rg->batch_idx));
	if (!rg->batch || !rg->batch_idx) {
		r = -ENOMEM;
		goto fail;
	}
	rg->h = xengnttab_open(NULL, 0);
	if (!rg->h) {
		r = real_errno();
		goto fail;
	}
	if (xengnttab_set_max_grants(rg->h, REAL_MAX_GRANTS) < 0) {
		r = real_errno();
		xengnttab_close(rg->h);
		goto fail;
	}
	real_handle_get(x);
	*ret = &rg->base;
	return 0;
fail:
	free(rg->batch);
	free(rg->batch_idx);
	free(rg);
	return r;
}

void real_gnt_close(struct bk_gnttab *g)
{
	struct real_gnttab *rg;

	if (!g)
		return;
	rg = rgt(g);
	/* Mappings left behind stay valid until munmap'd; the leak shows in nr_mapped first. */
	xengnttab_close(rg->h);
	real_handle_put(rg->base.h.xen);
	free(rg->batch);
	free(rg->batch_idx);
	free(rg);
}

int real_gnt_map(struct bk_gnttab *g, uint32_t domid, const uint32_t *refs, unsigned int n,
		 bool writable, void **ret_addr)
{
	struct real_gnttab *rg = rgt(g);
	void *addr;

	if (n == 0 || n > REAL_MAX_GRANTS || domid >= REAL_DOMID_LIMIT)
		return -EINVAL;
	/* The library only reads @refs; its prototype lacks the const. */
	addr = xengnttab_map_domain_grant_refs(rg->h, n, domid, (uint32_t *)(uintptr_t)refs,
					       writable ? PROT_READ | PROT_WRITE : PROT_READ);
	if (!addr)
		return real_errno();
	rg->nr_mapped += n;
	*ret_addr = addr;
	return 0;
}

int real_gnt_unmap(struct bk_gnttab *g, void *addr, unsigned int n)
{
	struct real_gnttab *rg = rgt(g);

	if (!addr || n == 0 || n > rg->nr_mapped)
		return -EINVAL;
	/* The library checks @n against the mapping made at @addr (EINVAL if they differ). */
	if (xengnttab_unmap(rg->h, addr, n) < 0)
		return real_errno();
	rg->nr_mapped -= n;
	return 0;
}

/* A segment the kernel would refuse (failing the whole ioctl): answer it here instead. */
static int16_t copy_seg_check(const struct bk_gnt_copy_seg *s)
{
	if (s->domid >= REAL_DOMID_LIMIT)
		return GNTST_bad_domain;
	if (!s->local || (uint32_t)s->offset + s->len > BK_PAGE_SIZE)
		return GNTST_bad_copy_arg;
	return GNTST_okay;
}

static void copy_seg_fill(xengnttab_grant_copy_segment_t *d, const struct bk_gnt_copy_seg *s)
{
	memset(d, 0, sizeof(*d));
	d->len = s->len;
	if (s->to_guest) {
		d->flags = GNTCOPY_dest_gref;
		d->source.virt = s->local;
		d->dest.foreign.ref = s->ref;
		d->dest.foreign.offset = s->offset;
		d->dest.foreign.domid = (uint16_t)s->domid;
	} else {
		d->flags = GNTCOPY_source_gref;
		d->source.foreign.ref = s->ref;
		d->source.foreign.offset = s->offset;
		d->source.foreign.domid = (uint16_t)s->domid;
		d->dest.virt = s->local;
	}
}

int real_gnt_copy(struct bk_gnttab *g, struct bk_gnt_copy_seg *segs, unsigned int n)
{
	struct real_gnttab *rg = rgt(g);
	unsigned int i = 0;

	while (i < n) {
		unsigned int nb = 0;

		/* Fill one kernel batch with the segments that pass the checks. */
		for (; i < n && nb < REAL_COPY_BATCH; i++) {
			int16_t st = copy_seg_check(&segs[i]);

			segs[i].status = st;
			if (st != GNTST_okay || segs[i].len == 0)
				continue;
			copy_seg_fill(&rg->batch[nb], &segs[i]);
			rg->batch_idx[nb++] = i;
		}
		if (nb == 0)
			continue;
		if (xengnttab_grant_copy(rg->h, nb, rg->batch) < 0) {
			int r = real_errno();

			/*
			 * A failed ioctl (EFAULT on a bad local buffer, ENOMEM) leaves the
			 * statuses unknown: fail this batch and everything after it.
			 */
			for (unsigned int k = rg->batch_idx[0]; k < n; k++)
				segs[k].status = GNTST_general_error;
			return r;
		}
		for (unsigned int k = 0; k < nb; k++)
			segs[rg->batch_idx[k]].status = rg->batch[k].status;
	}
	return 0;
}

unsigned int real_gnt_nr_mapped(struct bk_gnttab *g)
{
	return rgt(g)->nr_mapped;
}
