// SPDX-License-Identifier: MIT
/*
 * The split virtqueue and the DMA pages, with this test playing the device: requests laid
 * out with and without indirect tables (every object inside one page), notification
 * decisions with EVENT_IDX and with VRING_USED_F_NO_NOTIFY, completions out of order, a full
 * ring, reset, and a device that writes impossible used entries (an id out of range, an id
 * not in flight, more completions than requests): virtq_get() answers -EIO and never reads
 * or writes outside the queue.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "util/log.h"
#include "util/macros.h"
#include "virtio/dma.h"
#include "virtio/virtqueue.h"

#define PAGE VIO_PAGE_SIZE

static bool in_one_page(const struct vio_dma *d, uint64_t addr, uint32_t len)
{
	uint64_t base = (uint64_t)(uintptr_t)d->base;

	return addr >= base && addr + len <= base + d->size && len <= PAGE &&
	       addr / PAGE == (addr + len - 1) / PAGE;
}

/* The device's view of request @slot of the avail ring: its segments, checked. */
static unsigned int dev_walk(struct virtq *vq, uint16_t slot, uint16_t *ret_head,
			     struct virtq_seg *out, unsigned int max)
{
	uint16_t head = vq->avail->ring[slot % vq->size], i = head;
	struct vring_desc *table = vq->desc;
	unsigned int n = 0;

	*ret_head = head;
	CHECK(head < vq->size);
	if (vq->desc[head].flags & VRING_DESC_F_INDIRECT) {
		CHECK(vq->indirect);
		CHECK(in_one_page(vq->dma, vq->desc[head].addr, vq->desc[head].len));
		CHECK(vq->desc[head].len % sizeof(struct vring_desc) == 0);
		table = (struct vring_desc *)(uintptr_t)vq->desc[head].addr;
		i = 0;
	}
	for (;;) {
		CHECK(n < max);
		if (n >= max)
			break;
		out[n].addr = table[i].addr;
		out[n].len = table[i].len;
		out[n].device_writes = table[i].flags & VRING_DESC_F_WRITE;
		n++;
		if (!(table[i].flags & VRING_DESC_F_NEXT))
			break;
		i = table[i].next;
	}
	return n;
}

static void dev_complete(struct virtq *vq, uint16_t head, uint32_t len)
{
	uint16_t idx = vq->used->idx;

	vq->used->ring[idx % vq->size] = (struct vring_used_elem){ head, len };
	__atomic_store_n(&vq->used->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static void make_segs(struct vio_dma *d, void **pages, unsigned int n, struct virtq_seg *segs)
{
	for (unsigned int i = 0; i < n; i++) {
		pages[i] = vio_dma_page_get(d);
		segs[i] = (struct virtq_seg){ vio_dma_addr(d, pages[i]), i == 0 ? 16 : PAGE,
					      i + 1 == n };
	}
}

static void test_layout(struct vio_dma *d, bool indirect)
{
	struct virtq vq;
	struct virtq_seg segs[6], seen[8];
	void *pages[6];
	int cookies[3];
	uint16_t head;
	unsigned int free_before = d->nr_free;

	CHECK(virtq_init(&vq, "test q0", 0, 16, d, false, indirect) == 0);
	CHECK(free_before - d->nr_free == 3u + (indirect ? 16u : 0u));
	CHECK(in_one_page(d, virtq_desc_addr(&vq), 16 * 16));
	CHECK(in_one_page(d, virtq_avail_addr(&vq), 4 + 2 * 16 + 2));
	CHECK(in_one_page(d, virtq_used_addr(&vq), 4 + 8 * 16 + 2));
	make_segs(d, pages, 6, segs);
	for (int k = 0; k < 3; k++) {
		int r = virtq_add(&vq, segs, 6, &cookies[k]);

		CHECK(r == 0 || (!indirect && k == 2 && r == -ENOSPC));
	}
	/* Without indirect: 18 of 16 descriptors would be needed for the third. */
	CHECK(virtq_inflight(&vq) == (indirect ? 3u : 2u));
	for (uint16_t s = 0; s < virtq_inflight(&vq); s++) {
		unsigned int n = dev_walk(&vq, s, &head, seen, 8);

		CHECK(n == 6);
		for (unsigned int i = 0; i < n && i < 6; i++) {
			CHECK(seen[i].addr == segs[i].addr && seen[i].len == segs[i].len);
			CHECK(seen[i].device_writes == segs[i].device_writes);
			CHECK(in_one_page(d, seen[i].addr, seen[i].len));
		}
	}
	/* Nothing is visible before publish. */
	CHECK(vq.avail->idx == 0);
	CHECK(virtq_publish(&vq));
	CHECK(vq.avail->idx == virtq_inflight(&vq));
	for (unsigned int i = 0; i < 6; i++)
		vio_dma_page_put(d, pages[i]);
	virtq_fini(&vq);
	CHECK(d->nr_free == free_before);
}

static void test_notify(struct vio_dma *d)
{
	struct virtq vq;
	struct virtq_seg seg = { 0 };
	uint16_t *avail_event;
	int x;

	seg.addr = (uint64_t)(uintptr_t)d->base;
	seg.len = 16;
	CHECK(virtq_init(&vq, "test q1", 1, 8, d, true, true) == 0);
	avail_event = (uint16_t *)&vq.used->ring[vq.size];
	/* The device waits for avail index 0 -> 1. */
	*avail_event = 0;
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0);
	CHECK(virtq_publish(&vq));
	/* It has not caught up: no new kick for 1 -> 3. */
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0 && virtq_add(&vq, &seg, 1, &x) == 0);
	CHECK(!virtq_publish(&vq));
	/* It sleeps again waiting for entry 3: the next publish (3 -> 4) kicks. */
	*avail_event = 3;
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0);
	CHECK(virtq_publish(&vq));
	/* Nothing new: nothing to say. */
	CHECK(!virtq_publish(&vq));
	/* virtq_arm asks for a call at the next used entry. */
	CHECK(!virtq_arm(&vq));
	CHECK(vq.avail->ring[vq.size] == 0);
	dev_complete(&vq, vq.avail->ring[0], 0);
	CHECK(virtq_arm(&vq));
	virtq_fini(&vq);

	/* Without EVENT_IDX, the device's NO_NOTIFY flag decides. */
	CHECK(virtq_init(&vq, "test q2", 2, 8, d, false, true) == 0);
	vq.used->flags = VRING_USED_F_NO_NOTIFY;
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0);
	CHECK(!virtq_publish(&vq));
	vq.used->flags = 0;
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0);
	CHECK(virtq_publish(&vq));
	virtq_fini(&vq);
}

static void test_complete(struct vio_dma *d, bool indirect)
{
	struct virtq vq;
	struct virtq_seg segs[3];
	void *pages[3], *cookie;
	int c[8];
	uint16_t heads[8];
	uint32_t len;
	unsigned int got = 0;

	CHECK(virtq_init(&vq, "test q3", 3, 8, d, true, indirect) == 0);
	make_segs(d, pages, 3, segs);
	/* Fill the ring: 8 with indirect, 2 chains of 3 without. */
	for (unsigned int k = 0; k < 8; k++)
		if (virtq_add(&vq, segs, 3, &c[k]) < 0)
			break;
	CHECK(virtq_inflight(&vq) == (indirect ? 8u : 2u));
	CHECK(virtq_add(&vq, segs, 3, &c[0]) == -ENOSPC);
	CHECK(virtq_add(&vq, segs, 0, &c[0]) == -EINVAL);
	CHECK(virtq_add(&vq, segs, virtq_max_segs(&vq) + 1, &c[0]) == -EINVAL);
	virtq_publish(&vq);
	for (uint16_t s = 0; s < virtq_inflight(&vq); s++) {
		struct virtq_seg seen[4];

		dev_walk(&vq, s, &heads[s], seen, 4);
	}
	/* Completed in reverse order, each with its own length. */
	for (int s = (int)virtq_inflight(&vq) - 1; s >= 0; s--)
		dev_complete(&vq, heads[s], 100u + (unsigned int)s);
	for (int s = (int)virtq_inflight(&vq) - 1; s >= 0; s--) {
		CHECK(virtq_get(&vq, &cookie, &len) == 1);
		CHECK(cookie == &c[s] && len == 100u + (unsigned int)s);
		got++;
	}
	CHECK(got == (indirect ? 8u : 2u));
	CHECK(virtq_get(&vq, &cookie, &len) == 0);
	CHECK(virtq_inflight(&vq) == 0 && vq.num_free == vq.size);
	/* The freed descriptors are reusable: the ring fills up again. */
	for (unsigned int k = 0; k < 8; k++)
		if (virtq_add(&vq, segs, 3, &c[k]) < 0)
			break;
	CHECK(virtq_inflight(&vq) == (indirect ? 8u : 2u));
	/* Reset forgets it all (a new back-end starts at 0). */
	virtq_reset(&vq);
	CHECK(virtq_inflight(&vq) == 0 && vq.num_free == vq.size && vq.avail_idx == 0);
	CHECK(vq.used->idx == 0 && vq.avail->idx == 0);
	for (unsigned int i = 0; i < 3; i++)
		vio_dma_page_put(d, pages[i]);
	virtq_fini(&vq);
}

/* A device that lies in the used ring gets -EIO, and nothing outside the queue is touched. */
static void test_hostile(struct vio_dma *d)
{
	struct virtq vq;
	struct virtq_seg seg = { (uint64_t)(uintptr_t)d->base, 16, false };
	void *cookie;
	uint32_t len;
	int x;

	CHECK(virtq_init(&vq, "test q4", 4, 8, d, true, true) == 0);
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0);
	virtq_publish(&vq);
	/* An id past the ring. */
	dev_complete(&vq, 0xffff, 0);
	CHECK(virtq_get(&vq, &cookie, &len) == -EIO);
	virtq_reset(&vq);
	/* An id in range that is not in flight. */
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0);
	virtq_publish(&vq);
	dev_complete(&vq, 5, 0);
	CHECK(virtq_get(&vq, &cookie, &len) == -EIO);
	virtq_reset(&vq);
	/* More completions than requests out. */
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0);
	virtq_publish(&vq);
	vq.used->ring[0] = (struct vring_used_elem){ 0, 0 };
	vq.used->idx = 200;
	CHECK(virtq_get(&vq, &cookie, &len) == -EIO);
	/* The same id twice: the second is not in flight any more. */
	virtq_reset(&vq);
	CHECK(virtq_add(&vq, &seg, 1, &x) == 0 && virtq_add(&vq, &seg, 1, &x) == 0);
	virtq_publish(&vq);
	dev_complete(&vq, vq.avail->ring[0], 0);
	dev_complete(&vq, vq.avail->ring[0], 0);
	CHECK(virtq_get(&vq, &cookie, &len) == 1 && cookie == &x);
	CHECK(virtq_get(&vq, &cookie, &len) == -EIO);
	virtq_fini(&vq);
}

static void test_dma(void)
{
	const char *why = NULL;
	struct vio_dma *d = NULL;

	CHECK(vio_dma_choose(VIO_DMA_FOR_VHOST_USER, &why) == VIO_DMA_IDENTITY && why);
	CHECK(vio_dma_choose(VIO_DMA_FOR_PCI, &why) != VIO_DMA_IDENTITY && why);
	/* The pagemap and p2m translations are tested in test-dma with a simulated p2m. */
	CHECK(vio_dma_new("test dma", 2, VIO_DMA_IDENTITY, &d) == 0 && d);
	if (!d)
		return;
	CHECK(d->fd >= 0 && d->size == 2 * PAGE);
	{
		void *a = vio_dma_page_get(d), *b = vio_dma_page_get(d);

		CHECK(a && b && a != b && !vio_dma_page_get(d));
		CHECK(vio_dma_addr(d, a) == (uint64_t)(uintptr_t)a);
		CHECK(((uintptr_t)a % PAGE) == 0 && ((uintptr_t)b % PAGE) == 0);
		vio_dma_page_put(d, a);
		vio_dma_page_put(d, b);
		CHECK(d->nr_free == 2);
	}
	vio_dma_free(d);
}

int main(void)
{
	struct vio_dma *d = NULL;

	bk_log_set_level(BK_LOG_WARNING);
	test_dma();
	CHECK(vio_dma_new("test", 256, VIO_DMA_IDENTITY, &d) == 0);
	if (!d)
		return bk_test_exit();
	test_layout(d, true);
	test_layout(d, false);
	test_notify(d);
	test_complete(d, true);
	test_complete(d, false);
	test_hostile(d);
	CHECK(d->nr_free == d->nr_pages);
	vio_dma_free(d);
	return bk_test_exit();
}
