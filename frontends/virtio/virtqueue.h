/* SPDX-License-Identifier: MIT */
/*
 * A split virtqueue driven from userspace (virtio 1.2, 2.7), transport-independent: the
 * descriptor table, the available ring and the used ring each sit in their own DMA page, and
 * each indirect table is one page, so the queue size is at most 256. With EVENT_IDX the driver
 * asks for a notification at the next used entry and kicks only when the device's avail_event
 * says it is waiting; without it, it honours VRING_USED_F_NO_NOTIFY.
 *
 * Everything the device writes (used ring entries, avail_event) is read once and checked: a
 * broken or hostile back-end gets a -EIO from virtq_get(), never an out-of-bounds access.
 */
#ifndef BK_VIRTQUEUE_H
#define BK_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "dma.h"
#include "virtio.h"

#define VIRTQ_MAX_SIZE 256u

/* One buffer of a request: a device address, its length, and whether the device writes it. */
struct virtq_seg {
	uint64_t addr;
	uint32_t len;
	bool device_writes;
};

struct virtq {
	char name[64];
	uint16_t index;
	uint16_t size;
	bool event_idx;
	bool indirect;
	struct vio_dma *dma;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t free_head;
	uint16_t num_free;
	uint16_t avail_idx;	 /* next avail index we publish */
	uint16_t kicked_idx;	 /* avail index at the last notification decision */
	uint16_t last_used;	 /* next used entry we read */
	void **cookie;		 /* per head descriptor: the caller's request, NULL if free */
	uint16_t *chain_len;	 /* per head: descriptors used in the table (1 when indirect) */
	uint16_t *link;		 /* our copy of each descriptor's next: the device cannot bend it */
	struct vring_desc **ind; /* per head: its indirect table page (when indirect) */
	unsigned int nr_inflight;
};

/* Set up a queue of @size (power of 2, <= 256) in pages from @dma. */
int virtq_init(struct virtq *vq, const char *name, uint16_t index, uint16_t size,
	       struct vio_dma *dma, bool event_idx, bool indirect);
/* Give the pages back. Safe on a zeroed or half-initialised queue. */
void virtq_fini(struct virtq *vq);
/*
 * Forget everything the device saw (a new back-end will start at index 0): rings zeroed, all
 * descriptors free, cookies dropped. The caller re-adds what it still wants done.
 */
void virtq_reset(struct virtq *vq);

uint64_t virtq_desc_addr(const struct virtq *vq);
uint64_t virtq_avail_addr(const struct virtq *vq);
uint64_t virtq_used_addr(const struct virtq *vq);

/*
 * Add one request of @n segments (device-readable ones first) carrying @cookie (non-NULL).
 * Not visible to the device until virtq_publish(). -ENOSPC when the ring has no room now,
 * -EINVAL when it never will (@n over the limit).
 */
int virtq_add(struct virtq *vq, const struct virtq_seg *segs, unsigned int n, void *cookie);
/* Largest @n virtq_add() accepts. */
unsigned int virtq_max_segs(const struct virtq *vq);

/* Publish what was added; returns true when the device must be notified (kicked). */
bool virtq_publish(struct virtq *vq);

/*
 * The next completed request: 1 and its cookie and written length, 0 when nothing is there,
 * -EIO when the device wrote an impossible used entry (the queue is then unusable).
 */
int virtq_get(struct virtq *vq, void **ret_cookie, uint32_t *ret_len);

/*
 * Ask for a notification at the next completion, then look once more: returns true if
 * something completed in the meantime (call virtq_get() again before sleeping).
 */
bool virtq_arm(struct virtq *vq);

/* Requests added and not yet returned by virtq_get(). */
unsigned int virtq_inflight(const struct virtq *vq);

/* The device's used index as it is now (to tell whether completions wait, without taking them). */
uint16_t virtq_used_idx(const struct virtq *vq);

#endif
