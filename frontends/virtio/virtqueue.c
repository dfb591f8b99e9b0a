// SPDX-License-Identifier: MIT
/* A split virtqueue: see virtqueue.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/macros.h"
#include "virtqueue.h"

#define IND_MAX (VIO_PAGE_SIZE / sizeof(struct vring_desc))

static inline uint16_t *used_event(struct virtq *vq)
{
	return &vq->avail->ring[vq->size];
}

static inline uint16_t *avail_event(struct virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/* The EVENT_IDX test (virtio 1.2, 2.7.7.2): has @event_idx been crossed going old -> new? */
static inline bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

void virtq_reset(struct virtq *vq)
{
	memset(vq->desc, 0, VIO_PAGE_SIZE);
	memset(vq->avail, 0, VIO_PAGE_SIZE);
	memset(vq->used, 0, VIO_PAGE_SIZE);
	for (uint16_t i = 0; i < vq->size; i++) {
		vq->link[i] = (uint16_t)(i + 1);
		vq->cookie[i] = NULL;
		vq->chain_len[i] = 0;
	}
	vq->free_head = 0;
	vq->num_free = vq->size;
	vq->avail_idx = vq->kicked_idx = vq->last_used = 0;
	vq->nr_inflight = 0;
	/* Without EVENT_IDX, flags 0 asks for every interrupt; with it, used_event 0 does. */
}

int virtq_init(struct virtq *vq, const char *name, uint16_t index, uint16_t size,
	       struct vio_dma *dma, bool event_idx, bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	if (!size || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	snprintf(vq->name, sizeof(vq->name), "%s", name);
	vq->index = index;
	vq->size = size;
	vq->dma = dma;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	/* 16 * 256 = 4096; 4 + 2 * 256 + 2 = 518; 4 + 8 * 256 + 2 = 2054: one page each. */
	vq->desc = vio_dma_page_get(dma);
	vq->avail = vio_dma_page_get(dma);
	vq->used = vio_dma_page_get(dma);
	vq->cookie = calloc(size, sizeof(*vq->cookie));
	vq->chain_len = calloc(size, sizeof(*vq->chain_len));
	vq->ind = calloc(size, sizeof(*vq->ind));
	vq->link = calloc(size, sizeof(*vq->link));
	if (!vq->desc || !vq->avail || !vq->used || !vq->cookie || !vq->chain_len || !vq->ind ||
	    !vq->link)
		goto nomem;
	for (uint16_t i = 0; indirect && i < size; i++) {
		vq->ind[i] = vio_dma_page_get(dma);
		if (!vq->ind[i])
			goto nomem;
	}
	virtq_reset(vq);
	return 0;
nomem:
	virtq_fini(vq);
	return -ENOMEM;
}

void virtq_fini(struct virtq *vq)
{
	if (!vq->dma)
		return;
	for (uint16_t i = 0; vq->ind && i < vq->size; i++)
		if (vq->ind[i])
			vio_dma_page_put(vq->dma, vq->ind[i]);
	if (vq->desc)
		vio_dma_page_put(vq->dma, vq->desc);
	if (vq->avail)
		vio_dma_page_put(vq->dma, vq->avail);
	if (vq->used)
		vio_dma_page_put(vq->dma, vq->used);
	free(vq->cookie);
	free(vq->chain_len);
	free(vq->ind);
	free(vq->link);
	memset(vq, 0, sizeof(*vq));
}

uint64_t virtq_desc_addr(const struct virtq *vq)
{
	return vio_dma_addr(vq->dma, vq->desc);
}

uint64_t virtq_avail_addr(const struct virtq *vq)
{
	return vio_dma_addr(vq->dma, vq->avail);
}

uint64_t virtq_used_addr(const struct virtq *vq)
{
	return vio_dma_addr(vq->dma, vq->used);
}

unsigned int virtq_max_segs(const struct virtq *vq)
{
	return vq->indirect ? IND_MAX : vq->size;
}

unsigned int virtq_inflight(const struct virtq *vq)
{
	return vq->nr_inflight;
}

uint16_t virtq_used_idx(const struct virtq *vq)
{
	return __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
}

static void fill(struct vring_desc *d, const struct virtq_seg *s, bool more, uint16_t next)
{
	d->addr = s->addr;
	d->len = s->len;
	d->flags = (uint16_t)((s->device_writes ? VRING_DESC_F_WRITE : 0) |
			      (more ? VRING_DESC_F_NEXT : 0));
	d->next = more ? next : 0;
}

int virtq_add(struct virtq *vq, const struct virtq_seg *segs, unsigned int n, void *cookie)
{
	uint16_t head = vq->free_head, cur;

	if (!n || n > virtq_max_segs(vq) || !cookie)
		return -EINVAL;
	if (vq->indirect && n > 1) {
		struct vring_desc *t;

		if (!vq->num_free)
			return -ENOSPC;
		/* The table page belongs to this head for as long as the request is out. */
		t = vq->ind[head];
		for (unsigned int i = 0; i < n; i++)
			fill(&t[i], &segs[i], i + 1 < n, (uint16_t)(i + 1));
		vq->free_head = vq->link[head];
		vq->desc[head].addr = vio_dma_addr(vq->dma, t);
		vq->desc[head].len = (uint32_t)(n * sizeof(*t));
		vq->desc[head].flags = VRING_DESC_F_INDIRECT;
		vq->chain_len[head] = 1;
	} else {
		if (vq->num_free < n)
			return -ENOSPC;
		cur = head;
		for (unsigned int i = 0; i < n; i++) {
			uint16_t next = vq->link[cur];

			fill(&vq->desc[cur], &segs[i], i + 1 < n, next);
			if (i + 1 == n)
				vq->free_head = next;
			cur = next;
		}
		vq->chain_len[head] = (uint16_t)n;
	}
	vq->num_free = (uint16_t)(vq->num_free - vq->chain_len[head]);
	vq->cookie[head] = cookie;
	vq->avail->ring[vq->avail_idx % vq->size] = head;
	vq->avail_idx++;
	vq->nr_inflight++;
	return 0;
}

bool virtq_publish(struct virtq *vq)
{
	uint16_t old = vq->kicked_idx, new_idx = vq->avail_idx;

	if (old == new_idx)
		return false;
	/* Descriptors and ring entries before the index that exposes them. */
	bk_wmb();
	WRITE_ONCE(vq->avail->idx, new_idx);
	vq->kicked_idx = new_idx;
	/* The index before we read whether the device wants to hear about it. */
	bk_mb();
	if (vq->event_idx)
		return need_event(READ_ONCE(*avail_event(vq)), new_idx, old);
	return !(READ_ONCE(vq->used->flags) & VRING_USED_F_NO_NOTIFY);
}

int virtq_get(struct virtq *vq, void **ret_cookie, uint32_t *ret_len)
{
	uint16_t used_idx = READ_ONCE(vq->used->idx), head, len, i;
	struct vring_used_elem e;

	if (used_idx == vq->last_used)
		return 0;
	/* The index before the entries it covers. */
	bk_rmb();
	if ((uint16_t)(used_idx - vq->last_used) > vq->nr_inflight) {
		log_err("%s: device says %u completed, %u in flight", vq->name,
			(uint16_t)(used_idx - vq->last_used), vq->nr_inflight);
		return -EIO;
	}
	e.id = READ_ONCE(vq->used->ring[vq->last_used % vq->size].id);
	e.len = READ_ONCE(vq->used->ring[vq->last_used % vq->size].len);
	if (e.id >= vq->size || !vq->cookie[e.id]) {
		log_err("%s: device completed descriptor %u, which is not in flight", vq->name,
			e.id);
		return -EIO;
	}
	head = (uint16_t)e.id;
	vq->last_used++;
	*ret_cookie = vq->cookie[head];
	*ret_len = e.len;
	vq->cookie[head] = NULL;
	/* Back to the free list: the chain is ours, its next fields were written by us. */
	len = vq->chain_len[head];
	i = head;
	for (uint16_t k = 1; k < len; k++)
		i = vq->link[i];
	vq->link[i] = vq->free_head;
	vq->free_head = head;
	vq->num_free = (uint16_t)(vq->num_free + len);
	vq->nr_inflight--;
	return 1;
}

bool virtq_arm(struct virtq *vq)
{
	if (vq->event_idx)
		WRITE_ONCE(*used_event(vq), vq->last_used);
	/* The request for a notification before the last look at the index. */
	bk_mb();
	return READ_ONCE(vq->used->idx) != vq->last_used;
}
