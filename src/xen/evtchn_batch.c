// SPDX-License-Identifier: MIT
/* Batched reads and unmasks of an event-channel handle: see evtchn_batch.h. */
#include <errno.h>
#include <string.h>

#include "evtchn_batch.h"
#include "util/macros.h"

void evtchn_batch_init(struct evtchn_batch *b, const struct evtchn_batch_ops *ops)
{
	memset(b, 0, sizeof(*b));
	b->ops = ops;
}

void evtchn_batch_bound(struct evtchn_batch *b)
{
	b->nr_bound++;
}

/* Drop every @port from @a[0..*n), keeping the order of the others. */
static void drop_port(uint32_t *a, unsigned int *n, uint32_t port)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < *n; i++)
		if (a[i] != port)
			a[k++] = a[i];
	*n = k;
}

void evtchn_batch_unbound(struct evtchn_batch *b, uint32_t port)
{
	if (b->nr_bound)
		b->nr_bound--;
	drop_port(b->ports + b->head, &b->len, port);
	drop_port(b->unmask, &b->nr_unmask, port);
}

static int flush(struct evtchn_batch *b)
{
	unsigned int n = b->nr_unmask;

	if (!n)
		return 0;
	b->nr_unmask = 0;
	return b->ops->unmask(b, b->unmask, n);
}

int evtchn_batch_pending(struct evtchn_batch *b, uint32_t *ret_port)
{
	unsigned int want = BK_MAX(b->nr_bound, 1U), ask;
	int r;

	if (!b->len) {
		/*
		 * The caller may stop once it has taken as many as it bound, and a read that
		 * returned fewer than it asked for emptied the kernel's queue: read no more (a
		 * port raised since makes the fd poll readable).
		 */
		if (b->taken >= want || b->emptied) {
			b->taken = 0;
			b->emptied = false;
			return -EAGAIN;
		}
		ask = BK_MIN(want - b->taken, EVTCHN_BATCH_MAX);
		r = b->ops->read(b, b->ports, ask);
		if (r <= 0) {
			b->taken = 0;
			return r < 0 ? r : -EAGAIN;
		}
		b->head = 0;
		b->len = (unsigned int)r;
		b->emptied = b->len < ask;
	}
	/*
	 * The batch's last port: the caller may not come back, so unmask what waited now. The
	 * write fails only on a broken handle, which the next read reports; the port must still
	 * reach the caller, or it would stay masked for good.
	 */
	if (b->len == 1)
		(void)flush(b);
	*ret_port = b->ports[b->head++];
	b->len--;
	b->taken++;
	return 0;
}

int evtchn_batch_unmask(struct evtchn_batch *b, uint32_t port)
{
	if (!b->len)
		return b->ops->unmask(b, &port, 1);
	/* Full only for a caller unmasking ports it was not handed: write those now. */
	if (b->nr_unmask == EVTCHN_BATCH_MAX) {
		int r = flush(b);

		if (r < 0)
			return r;
	}
	b->unmask[b->nr_unmask++] = port;
	return 0;
}
