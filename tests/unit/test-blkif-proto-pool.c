// SPDX-License-Identifier: MIT
/*
 * Unit tests of the blkif bounce pool: contiguous first-fit runs, exhaustion, reuse, and the
 * daemon-wide bounce-pool-budget (degraded sizes, refusal, reserve, accounting).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blkif/common.h"
#include "check.h"

int main(void)
{
	struct blkif_pool p;
	uint32_t a = 99, b = 99, c = 99, d = 99;

	/* 100 pages: not a multiple of 64, so the tail bits must never be handed out. */
	CHECK(blkif_pool_init(&p, 100, 100, 0) == 0);
	CHECK(p.nr_free == 100);
	CHECK(blkif_pool_get(&p, 0, &a) < 0 && a == 99);
	CHECK(blkif_pool_get(&p, 101, &a) < 0 && a == 99);
	CHECK(blkif_pool_get(&p, 60, &a) == 0 && a == 0);
	CHECK(blkif_pool_get(&p, 30, &b) == 0 && b == 60);
	CHECK(blkif_pool_get(&p, 11, &c) < 0 && c == 99); /* 10 left */
	CHECK(blkif_pool_get(&p, 10, &c) == 0 && c == 90);
	CHECK(p.nr_free == 0);
	CHECK(blkif_pool_get(&p, 1, &d) < 0);
	/* The whole pool is writable memory. */
	memset(p.base, 0xab, 100 * 4096);

	/* Free the middle run: a run of 31 does not fit (fragmented), 30 does. */
	blkif_pool_put(&p, b, 30);
	CHECK(p.nr_free == 30);
	CHECK(blkif_pool_get(&p, 31, &d) < 0);
	blkif_pool_put(&p, c, 10);
	CHECK(blkif_pool_get(&p, 40, &d) == 0 && d == 60);
	blkif_pool_put(&p, d, 40);
	blkif_pool_put(&p, a, 60);
	CHECK(p.nr_free == 100);
	CHECK(blkif_pool_get(&p, 100, &a) == 0 && a == 0);
	blkif_pool_put(&p, a, 100);

	/* Single pages are handed out in order across the word boundary. */
	for (uint32_t i = 0; i < 100; i++) {
		CHECK(blkif_pool_get(&p, 1, &a) == 0 && a == i);
	}
	CHECK(blkif_pool_get(&p, 1, &a) < 0);
	blkif_pool_put(&p, 64, 1);
	CHECK(blkif_pool_get(&p, 1, &a) == 0 && a == 64);
	blkif_pool_free(&p);
	blkif_pool_free(&p); /* twice is harmless */

	/* The daemon-wide budget: 1M (256 pages) for every pool together. */
	{
		struct blkif_pool x, y, z;
		struct bk_config cfg;

		bk_config_defaults(&cfg);
		cfg.bounce_pool_budget = 1U << 20;
		bk_config_install(&cfg);
		CHECK(blkif_pool_budget() == 1U << 20);
		CHECK(blkif_pool_bytes_in_use() == 0 && blkif_pool_nr_in_use() == 0);
		CHECK(blkif_pool_init(&x, 200, 100, 0) == 0 && x.nr_pages == 200);
		/* 56 left: less than wanted, enough for @min. */
		CHECK(blkif_pool_init(&y, 200, 50, 0) == 0 && y.nr_pages == 56 && y.nr_free == 56);
		CHECK(blkif_pool_bytes_in_use() == 256 * 4096 && blkif_pool_nr_in_use() == 2);
		CHECK(blkif_pool_init(&z, 1, 1, 0) == -ENOBUFS && z.base == NULL);
		blkif_pool_free(&z);
		blkif_pool_free(&y);
		/* 56 left, 40 of them kept for later pools: 16 is below @min 20. */
		CHECK(blkif_pool_init(&y, 200, 20, 40) == -ENOBUFS);
		CHECK(blkif_pool_init(&y, 200, 16, 40) == 0 && y.nr_pages == 16);
		blkif_pool_free(&y);
		blkif_pool_free(&x);
		CHECK(blkif_pool_bytes_in_use() == 0 && blkif_pool_nr_in_use() == 0);
		/* Always the whole want when it fits. */
		CHECK(blkif_pool_init(&x, 256, 256, 0) == 0 && x.nr_pages == 256);
		blkif_pool_free(&x);
	}

	if (bk_test_failures) {
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
