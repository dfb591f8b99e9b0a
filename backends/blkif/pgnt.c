// SPDX-License-Identifier: MIT
/*
 * Persistent grants (feature-persistent), per queue. A frontend that negotiated them grants a
 * fixed set of its pages once and copies every request's data into them (Linux blkfront does),
 * so the backend may keep them mapped: each gref is mapped the first time a request uses it
 * (every new gref of a request in one map call) and then stays mapped, and the engine reads
 * and writes the guest's pages directly. The data then crosses dom0 once (the kernel's copy to
 * or from the page cache) instead of twice (grant copy into the bounce pool, then the kernel's
 * copy), and the copy the guest makes runs on the guest's vCPU. Only for buffered stores
 * (cache=writeback/writethrough) and disks without blanket-persistent=off: the others are not
 * offered feature-persistent at all (settings.c decides it when the store opens) and keep the
 * grant-copy path.
 *
 * Bounded as blkback bounds them (max_persistent_grants): at most BLKIF_PGNT_MAX grefs per
 * queue, each counted in the daemon-wide bounce-pool budget while mapped. A request with a gref
 * beyond the bound, or one the map refuses (a bad or read-only grant), goes the grant-copy
 * path instead, which answers per segment as before. Everything is
 * unmapped when the queue is trimmed (idle), disconnects, or the daemon stops; a daemon killed
 * with kill -9 loses its mappings with the process, and the re-issued requests map again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Hash slots: a power of two at least twice the bound (linear probing, no deletes). */
#define PGNT_HASH (2U * BLKIF_PGNT_MAX_POW2)

struct blkif_pgnt_chunk {
	void *addr;
	unsigned int n;
};

static unsigned int ref_hash(uint32_t ref)
{
	return (unsigned int)((ref * 0x9E3779B1U) >> 16) & (PGNT_HASH - 1);
}

/* The page @ref is mapped at, or NULL. */
static uint8_t *pgnt_find(const struct blkif_pgnt *pg, uint32_t ref)
{
	for (unsigned int h = ref_hash(ref);; h = (h + 1) & (PGNT_HASH - 1)) {
		if (!pg->pages[h])
			return NULL;
		if (pg->keys[h] == ref)
			return pg->pages[h];
	}
}

static void pgnt_insert(struct blkif_pgnt *pg, uint32_t ref, uint8_t *page)
{
	unsigned int h = ref_hash(ref);

	while (pg->pages[h])
		h = (h + 1) & (PGNT_HASH - 1);
	pg->keys[h] = ref;
	pg->pages[h] = page;
	pg->nr++;
}

static int pgnt_alloc(struct blkif_queue *q)
{
	struct blkif_pgnt *pg = &q->pgnt;

	pg->keys = calloc(PGNT_HASH, sizeof(*pg->keys));
	pg->pages = calloc(PGNT_HASH, sizeof(*pg->pages));
	/* At most one map call per request that brought a new gref: bounded by the grefs. */
	pg->chunks = calloc(BLKIF_PGNT_MAX, sizeof(*pg->chunks));
	pg->iovs = calloc((size_t)q->nr_slots * q->max_segs, sizeof(*pg->iovs));
	if (!pg->keys || !pg->pages || !pg->chunks || !pg->iovs) {
		blkif_pgnt_release(q);
		return -ENOMEM;
	}
	return 0;
}

void blkif_pgnt_release(struct blkif_queue *q)
{
	struct blkif_pgnt *pg = &q->pgnt;

	for (unsigned int i = 0; i < pg->nr_chunks; i++) {
		int r = bk_gnt_unmap(q->bd->gnt, pg->chunks[i].addr, pg->chunks[i].n);

		if (r < 0)
			dev_err_rl(q->bd->dev, "q%u: unmapping %u persistent grant(s): %d",
				   q->index, pg->chunks[i].n, r);
	}
	blkif_pool_uncharge(pg->nr);
	free(pg->keys);
	free(pg->pages);
	free(pg->chunks);
	free(pg->iovs);
	pg->keys = NULL;
	pg->pages = NULL;
	pg->chunks = NULL;
	pg->iovs = NULL;
	pg->nr = 0;
	pg->nr_chunks = 0;
}

/* Map the grefs of @s not mapped yet, in one call; -ENOSPC over the bounds, or the map's. */
static int pgnt_map_new(struct blkif_queue *q, struct blkif_slot *s)
{
	struct blkif_pgnt *pg = &q->pgnt;
	uint32_t refs[BLKIF_MAX_INDIRECT_SEGS];
	unsigned int n = 0;
	void *addr;
	int r;

	for (unsigned int i = 0; i < s->req.nr_segments; i++) {
		uint32_t ref = s->req.seg[i].gref;
		bool dup = false;

		if (pgnt_find(pg, ref))
			continue;
		/* A gref twice in one request (allowed) is mapped once. */
		for (unsigned int k = 0; k < n && !dup; k++)
			dup = refs[k] == ref;
		if (!dup)
			refs[n++] = ref;
	}
	if (!n)
		return 0;
	if (pg->nr + n > BLKIF_PGNT_MAX || !blkif_pool_charge(n)) {
		pg->refused++;
		return -ENOSPC;
	}
	/* Writable: a persistent page carries reads and writes alike, as blkfront grants it. */
	r = bk_gnt_map(q->bd->gnt, q->bd->dev->domid, refs, n, true, &addr);
	if (r < 0) {
		blkif_pool_uncharge(n);
		pg->refused++;
		dev_err_rl(q->bd->dev,
			   "q%u: request %#llx: mapping %u persistent grant(s) failed: %s "
			   "(copying instead)",
			   q->index, (unsigned long long)s->req.id, n, strerror(-r));
		return r;
	}
	pg->chunks[pg->nr_chunks++] = (struct blkif_pgnt_chunk){ .addr = addr, .n = n };
	for (unsigned int k = 0; k < n; k++)
		pgnt_insert(pg, refs[k], (uint8_t *)addr + (size_t)k * BK_PAGE_SIZE);
	return 0;
}

const uint8_t *blkif_pgnt_page(const struct blkif_queue *q, uint32_t ref)
{
	const struct blkif_pgnt *pg = &q->pgnt;

	if (!q->bd->persistent || pg->off || !pg->keys)
		return NULL;
	return pgnt_find(pg, ref);
}

bool blkif_pgnt_use(struct blkif_queue *q, struct blkif_slot *s)
{
	struct blkif_pgnt *pg = &q->pgnt;
	struct iovec *iov;
	unsigned int n = 0;

	if (!q->bd->persistent || pg->off || !s->req.nr_segments)
		return false;
	if (s->req.op != BLKIF_OP_READ && s->req.op != BLKIF_OP_WRITE)
		return false;
	if (!pg->keys && pgnt_alloc(q) < 0)
		return false;
	if (pgnt_map_new(q, s) < 0)
		return false;
	iov = pg->iovs + (size_t)(s - q->slots) * q->max_segs;
	for (unsigned int i = 0; i < s->req.nr_segments; i++) {
		const struct blkif_request_segment *g = &s->req.seg[i];
		uint8_t *base =
			pgnt_find(pg, g->gref) + ((size_t)g->first_sect << BLKIF_SECTOR_SHIFT);
		size_t len = (size_t)(g->last_sect - g->first_sect + 1U) << BLKIF_SECTOR_SHIFT;

		/* Segments that follow each other in our mapping go as one. */
		if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == base) {
			iov[n - 1].iov_len += len;
			continue;
		}
		iov[n++] = (struct iovec){ .iov_base = base, .iov_len = len };
	}
	s->mapped = true;
	s->iovs = iov;
	s->nr_iovs = (uint16_t)n;
	return true;
}
