// SPDX-License-Identifier: MIT
/* The RX store: the backlog's frames in one buffer per queue, read from the TAP in place. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((sizeof(struct netif_rx_frame) + len + 63) & ~(size_t)63);
}

int netif_store_init(struct netif_rx_store *s, uint32_t size)
{
	*s = (struct netif_rx_store){ .size = size };
	if (size < 2 * rec_size(NETIF_RX_MAX_LEN))
		return -EINVAL;
	/* Large: malloc maps it, and only pages the traffic reaches become resident. */
	s->buf = malloc(size);
	return s->buf ? 0 : -ENOMEM;
}

void netif_store_free(struct netif_rx_store *s)
{
	free(s->buf);
	s->buf = NULL;
}

struct netif_rx_frame *netif_store_reserve(struct netif_rx_store *s, unsigned int n)
{
	uint32_t room = n * rec_size(NETIF_RX_MAX_LEN);

	if (s->frames == 0)
		s->head = s->tail = s->wrap = 0;
	if (!s->wrap) {
		/* Frames in [head, tail). */
		if (s->tail + room <= s->size)
			return (struct netif_rx_frame *)(s->buf + s->tail);
		if (room >= s->head)
			return NULL;
		s->wrap = s->tail;
		s->tail = 0;
	}
	/* Frames in [head, wrap) and [0, tail): the tail stays below the head. */
	if (s->tail + room >= s->head)
		return NULL;
	return (struct netif_rx_frame *)(s->buf + s->tail);
}

struct netif_rx_frame *netif_store_slot(struct netif_rx_frame *first, unsigned int k)
{
	return (struct netif_rx_frame *)((uint8_t *)first + (size_t)k * rec_size(NETIF_RX_MAX_LEN));
}

struct netif_rx_frame *netif_store_commit(struct netif_rx_store *s, struct netif_rx_frame *f,
					  size_t len)
{
	uint32_t off = (uint32_t)((uint8_t *)f - s->buf);

	if (off != s->tail) {
		/* A later slot of the reservation: small frames move up, large ones stay. */
		if (len <= NETIF_STORE_MOVE_MAX) {
			memmove(s->buf + s->tail, f, sizeof(*f) + len);
			f = (struct netif_rx_frame *)(s->buf + s->tail);
		} else {
			struct netif_rx_frame *last = (struct netif_rx_frame *)(s->buf + s->last);

			/*
			 * The gap joins the frame before when that one ends at the tail, so
			 * records stay back to back; at the start of the buffer after a wrap
			 * there is none, and the gap is simply free until the head passes it.
			 */
			if (!s->frames)
				s->head = off;
			else if (s->last + last->size == s->tail)
				last->size += off - s->tail;
			s->tail = off;
		}
	}
	f->off = s->tail;
	f->size = rec_size(len);
	f->len = len;
	s->last = s->tail;
	s->tail += f->size;
	s->frames++;
	return f;
}
void netif_store_release(struct netif_rx_store *s, struct netif_rx_frame *f)
{
	s->head = f->off + f->size;
	if (s->wrap && s->head == s->wrap)
		s->head = s->wrap = 0;
	s->frames--;
}
