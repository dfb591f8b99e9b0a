// SPDX-License-Identifier: MIT
/*
 * The per-queue bounce pool (XSA-392: what a guest can make us hold is bounded) and the
 * grant-copy batch arrays. The pool is one mapping, so the engine can register it once as a
 * fixed buffer (which pins it); requests get contiguous runs of pages, first fit. Every pool
 * together stays within the daemon-wide bounce-pool-budget: one that does not fit gets what is
 * left, down to the pages of the largest request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

/* Daemon-wide: what every mapped pool holds, shared by the I/O threads. */
static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t pools_bytes;
static unsigned int pools_nr;

uint64_t blkif_pool_bytes_in_use(void)
{
	uint64_t v;

	pthread_mutex_lock(&pools_lock);
	v = pools_bytes;
	pthread_mutex_unlock(&pools_lock);
	return v;
}

unsigned int blkif_pool_nr_in_use(void)
{
	unsigned int v;

	pthread_mutex_lock(&pools_lock);
	v = pools_nr;
	pthread_mutex_unlock(&pools_lock);
	return v;
}

static void pools_account(int64_t bytes, int nr)
{
	pthread_mutex_lock(&pools_lock);
	pools_bytes += (uint64_t)bytes;
	pools_nr += (unsigned int)nr;
	pthread_mutex_unlock(&pools_lock);
}

uint64_t blkif_pool_budget(void)
{
	return bk_config_bounce_budget(bk_config_current());
}

int blkif_pool_init(struct blkif_pool *p, unsigned int want, unsigned int min, unsigned int reserve)
{
	uint64_t budget = blkif_pool_budget();
	uint64_t left;
	unsigned int nr_pages;
	size_t words;
	void *base;
	int r;

	memset(p, 0, sizeof(*p));
	/* Take the pages out of the budget at once: another thread's pool may be sizing too. */
	pthread_mutex_lock(&pools_lock);
	left = budget > pools_bytes ? (budget - pools_bytes) / BK_PAGE_SIZE : 0;
	left = left > reserve ? left - reserve : 0;
	nr_pages = (unsigned int)BK_MIN((uint64_t)want, left);
	if (nr_pages == 0 || nr_pages < min) {
		pthread_mutex_unlock(&pools_lock);
		return -ENOBUFS;
	}
	pools_bytes += (uint64_t)nr_pages * BK_PAGE_SIZE;
	pools_nr++;
	pthread_mutex_unlock(&pools_lock);
	words = BK_DIV_ROUND_UP(nr_pages, 64U);
	base = mmap(NULL, (size_t)nr_pages * BK_PAGE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		r = neg_errno();
		pools_account(-(int64_t)nr_pages * BK_PAGE_SIZE, -1);
		return r;
	}
	p->map = calloc(words, sizeof(uint64_t));
	if (!p->map) {
		munmap(base, (size_t)nr_pages * BK_PAGE_SIZE);
		pools_account(-(int64_t)nr_pages * BK_PAGE_SIZE, -1);
		return -ENOMEM;
	}
	/* Pages past the end are marked used so the search never hands them out. */
	for (size_t i = nr_pages; i < words * 64; i++)
		p->map[i / 64] |= 1ULL << (i % 64);
	p->base = base;
	p->nr_pages = nr_pages;
	p->nr_free = nr_pages;
	return 0;
}

void blkif_pool_free(struct blkif_pool *p)
{
	if (p->base) {
		munmap(p->base, (size_t)p->nr_pages * BK_PAGE_SIZE);
		pools_account(-(int64_t)p->nr_pages * BK_PAGE_SIZE, -1);
	}
	free(p->map);
	memset(p, 0, sizeof(*p));
}

void blkif_pool_drop(struct blkif_pool *p)
{
	/* Only fails on a bad range: then the pages simply stay. */
	if (p->base)
		(void)madvise(p->base, (size_t)p->nr_pages * BK_PAGE_SIZE, MADV_DONTNEED);
}

static bool page_used(const struct blkif_pool *p, unsigned int i)
{
	return p->map[i / 64] & (1ULL << (i % 64));
}

int blkif_pool_get(struct blkif_pool *p, unsigned int n, uint32_t *ret_first)
{
	unsigned int run = 0;

	if (n == 0 || n > p->nr_free)
		return -ENOSPC;
	for (unsigned int i = 0; i < p->nr_pages; i++) {
		if (run == 0 && (i % 64) == 0 && p->map[i / 64] == UINT64_MAX) {
			i += 63; /* a full word: skip it */
			continue;
		}
		if (page_used(p, i)) {
			run = 0;
			continue;
		}
		if (++run == n) {
			uint32_t first = i + 1 - n;

			for (unsigned int j = first; j <= i; j++)
				p->map[j / 64] |= 1ULL << (j % 64);
			p->nr_free -= n;
			*ret_first = first;
			return 0;
		}
	}
	return -ENOSPC;
}

void blkif_pool_put(struct blkif_pool *p, uint32_t first, unsigned int n)
{
	for (unsigned int j = first; j < first + n; j++)
		p->map[j / 64] &= ~(1ULL << (j % 64));
	p->nr_free += n;
}

bool blkif_pool_charge(unsigned int n)
{
	uint64_t bytes = (uint64_t)n * BK_PAGE_SIZE, budget = blkif_pool_budget();
	bool ok;

	/* Persistent grants of devices on other I/O threads count in the same budget. */
	pthread_mutex_lock(&pools_lock);
	ok = pools_bytes + bytes <= budget;
	if (ok)
		pools_bytes += bytes;
	pthread_mutex_unlock(&pools_lock);
	return ok;
}

void blkif_pool_uncharge(unsigned int n)
{
	pools_account(-(int64_t)n * BK_PAGE_SIZE, 0);
}

int blkif_batch_init(struct blkif_copy_batch *b, unsigned int cap, unsigned int owners)
{
	memset(b, 0, sizeof(*b));
	b->segs = calloc(cap, sizeof(*b->segs));
	b->owners = calloc(owners, sizeof(*b->owners));
	if (!b->segs || !b->owners) {
		blkif_batch_free(b);
		return -ENOMEM;
	}
	b->cap = cap;
	b->owners_cap = owners;
	return 0;
}

void blkif_batch_free(struct blkif_copy_batch *b)
{
	free(b->segs);
	free(b->owners);
	memset(b, 0, sizeof(*b));
}
