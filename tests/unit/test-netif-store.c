// SPDX-License-Identifier: MIT
/*
 * The netif RX store (backends/netif/store.c): 1 to 8 slots of the largest size reserved at
 * once, read into in place, each committed at its real size (small frames move up, large ones
 * leave a gap) or skipped, released oldest first. A long random run checks that a reservation
 * never overlaps a frame still held, that every frame's bytes survive its commit and last
 * until its release, that the tail wraps (many times) with frames still held, and that a
 * reservation only fails when the frames held leave too little room.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "netif/common.h"

#define STORE_SIZE (1U << 20)
#define OPS 200000U
#define MAXQ 4096U

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245U + 12345U;
	return rnd_state >> 8;
}

static uint8_t pat(uint32_t seed, size_t i)
{
	return (uint8_t)(seed * 31U + i * 7U + (i >> 8));
}

struct held {
	struct netif_rx_frame *f;
	uint32_t seed;
};

static struct held fifo[MAXQ];

int main(void)
{
	struct netif_rx_store s;
	uint32_t first_i = 0, n = 0, live = 0, wraps = 0, last_off = 0, refused = 0;
	uint32_t max = (uint32_t)((sizeof(struct netif_rx_frame) + NETIF_RX_MAX_LEN + 63) & ~63UL);
	bool bad_overlap = false, bad_data = false, bad_refuse = false;

	CHECK(netif_store_init(&s, STORE_SIZE) == 0);
	for (uint32_t op = 0; op < OPS; op++) {
		uint32_t what = rnd() % 100;

		if (what < 55 && n + 8 < MAXQ) {
			unsigned int slots = 1 + rnd() % 8;
			struct netif_rx_frame *first = netif_store_reserve(&s, slots);
			uintptr_t lo, hi;

			if (!first) {
				refused++;
				/* What the held frames take, gaps they absorbed included. */
				live = 0;
				for (uint32_t k = 0; k < n; k++)
					live += fifo[(first_i + k) % MAXQ].f->size;
				/*
				 * Enough room means: twice the reservation (the tail may sit
				 * just short of the end), or once plus the largest reservation
				 * (8 slots) the tail wrapped short of.
				 */
				if (live + (slots > 8 ? 2 * slots : slots + 8) * max < STORE_SIZE)
					bad_refuse = true;
				goto release;
			}
			lo = (uintptr_t)first;
			hi = lo + (uintptr_t)slots * max;
			if (lo < (uintptr_t)s.buf || hi > (uintptr_t)s.buf + STORE_SIZE)
				bad_overlap = true;
			for (uint32_t k = 0; k < n; k++) {
				struct netif_rx_frame *g = fifo[(first_i + k) % MAXQ].f;
				uintptr_t glo = (uintptr_t)g, ghi = glo + g->size;

				if (lo < ghi && glo < hi)
					bad_overlap = true;
			}
			/* Each slot: read into in place (or found empty), committed in order. */
			for (unsigned int k = 0; k < slots; k++) {
				struct netif_rx_frame *f = netif_store_slot(first, k);
				/* Mostly small frames, some of every size up to the largest. */
				size_t len = rnd() % 4 ? 60 + rnd() % 1455
						       : rnd() % (NETIF_RX_MAX_LEN + 1);

				if (rnd() % 10 == 0)
					continue; /* the read found nothing: not committed */
				for (size_t i = 0; i < len; i++)
					f->data[i] = pat(op + k, i);
				f = netif_store_commit(&s, f, len);
				for (size_t i = 0; i < len; i++)
					if (f->data[i] != pat(op + k, i)) {
						bad_data = true;
						break;
					}
				fifo[(first_i + n) % MAXQ] = (struct held){ f, op + k };
				if (n && f->off < last_off)
					wraps++;
				last_off = f->off;
				n++;
			}
			continue;
		}
	release:
		if (n) {
			struct held h = fifo[first_i];

			for (size_t i = 0; i < h.f->len; i++)
				if (h.f->data[i] != pat(h.seed, i)) {
					bad_data = true;
					break;
				}
			netif_store_release(&s, h.f);
			first_i = (first_i + 1) % MAXQ;
			n--;
		}
	}
	fprintf(stderr, "store: %u wraps with frames held, %u reservations refused\n", wraps,
		refused);
	CHECK(!bad_overlap);
	CHECK(!bad_data);
	CHECK(!bad_refuse);
	CHECK(wraps > 100);
	CHECK(refused > 0);
	netif_store_free(&s);
	return bk_test_exit();
}
