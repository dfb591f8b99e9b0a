// SPDX-License-Identifier: MIT
/*
 * The io_uring engine on real files (O_DIRECT and buffered) and, if possible, a loop device:
 * with the default ring (DEFER_TASKRUN where the kernel has it, block discard through
 * io_uring where it has that), then with each older completion mode and the discard thread
 * forced, option checking, and a depth past the ring's submission queue (one turn queueing
 * more I/O than the SQ holds submits early and loses nothing).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "test-engine-common.h"
#include "util/macros.h"

static void test_bad_options(void)
{
	struct bk_engine_params ep = { .name = "uring opts", .depth = 4, .options = "taskrun=x" };
	struct bk_store fake = { .fd = 0, .path = (char *)"stdin" };
	struct bk_loop *loop = NULL;
	struct bk_engine *e = NULL;

	CHECK(bk_loop_new(&loop) == 0);
	if (!loop)
		return;
	CHECK(bk_engine_open("io_uring", loop, &fake, &ep, &e) == -EINVAL && !e);
	ep.options = "bogus";
	CHECK(bk_engine_open("io_uring", loop, &fake, &ep, &e) == -EINVAL && !e);
	ep.options = "taskrun=none,discard=maybe";
	CHECK(bk_engine_open("io_uring", loop, &fake, &ep, &e) == -EINVAL && !e);
	bk_loop_free(loop);
}

/* 300 reads queued in one turn, more than the 64-entry SQ: every one completes, with its data. */
static void test_deep(void)
{
	enum { N = 300, DEEP_PAGE = 4096 };
	struct bk_engine_params ep = { .name = "uring deep", .depth = N };
	struct bk_store_params sp = { 0 };
	static struct tio t[N];
	static uint8_t bufs[N][DEEP_PAGE];
	struct bk_store *store = NULL;
	struct bk_loop *loop = NULL;
	struct bk_engine *e = NULL;
	unsigned int pending = 0;
	char path[128];
	int fd = make_temp_file("/var/tmp", (uint64_t)N * DEEP_PAGE, path, sizeof(path));

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	for (unsigned int i = 0; i < N; i++) {
		memset(bufs[i], (int)(i & 0xff), DEEP_PAGE);
		CHECK(pwrite(fd, bufs[i], DEEP_PAGE, (off_t)i * DEEP_PAGE) == DEEP_PAGE);
	}
	close(fd);
	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_store_open(path, &sp, &store) == 0);
	if (loop && store && bk_engine_open("io_uring", loop, store, &ep, &e) == 0) {
		memset(bufs, 0xee, sizeof(bufs));
		for (unsigned int i = 0; i < N; i++) {
			t[i].iov[0] = (struct iovec){ bufs[i], DEEP_PAGE };
			tio_init(&t[i], &pending, BK_IO_READ, (uint64_t)i * DEEP_PAGE, 1, -1);
			CHECK(tio_queue(e, &t[i]) == 0);
		}
		CHECK(bk_engine_inflight(e) == N);
		bk_engine_kick(e);
		CHECK(pump(loop, &pending, 600));
		for (unsigned int i = 0; i < N; i++) {
			CHECK(t[i].ndone == 1 && t[i].res == DEEP_PAGE);
			CHECK(bufs[i][0] == (uint8_t)i && bufs[i][DEEP_PAGE - 1] == (uint8_t)i);
		}
		bk_engine_close(e);
	} else {
		CHECK(!"opening the deep engine");
	}
	bk_store_close(store);
	bk_loop_free(loop);
	unlink(path);
}

/*
 * Buffered reads of pages in the page cache complete during the submit: kick() answers them
 * at once (done() before it returns), with their data, for every ring mode, instead of
 * leaving them for the loop's next turn. A write to the same file completes too (inline, or
 * later from a worker), and the ring's own fd then wakes the loop for what is left.
 */
static void test_inline(const char *options)
{
	enum { N = 8, PG = 4096 };
	struct bk_engine_params ep = { .name = "uring inline", .depth = 2 * N, .options = options };
	struct bk_store_params sp = { 0 };
	static struct tio t[2 * N];
	static uint8_t bufs[2 * N][PG];
	struct bk_store *store = NULL;
	struct bk_loop *loop = NULL;
	struct bk_engine *e = NULL;
	unsigned int pending = 0;
	char path[128];
	int fd = make_temp_file("/var/tmp", (uint64_t)N * PG, path, sizeof(path));

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	for (unsigned int i = 0; i < N; i++) {
		memset(bufs[i], (int)(0x40 + i), PG);
		CHECK(pwrite(fd, bufs[i], PG, (off_t)i * PG) == PG);
	}
	close(fd);
	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_store_open(path, &sp, &store) == 0);
	if (loop && store && bk_engine_open("io_uring", loop, store, &ep, &e) == 0) {
		memset(bufs, 0, sizeof(bufs));
		for (unsigned int i = 0; i < N; i++) {
			t[i].iov[0] = (struct iovec){ bufs[i], PG };
			tio_init(&t[i], &pending, BK_IO_READ, (uint64_t)i * PG, 1, -1);
			CHECK(tio_queue(e, &t[i]) == 0);
		}
		bk_engine_kick(e);
		CHECK(pending == 0);
		CHECK(bk_engine_inflight(e) == 0);
		for (unsigned int i = 0; i < N; i++)
			CHECK(t[i].ndone == 1 && t[i].res == PG && bufs[i][0] == 0x40 + i &&
			      bufs[i][PG - 1] == 0x40 + i);
		/* Writes: whether they finish inline or on a worker, each is answered once. */
		for (unsigned int i = N; i < 2 * N; i++) {
			memset(bufs[i], 0x77, PG);
			t[i].iov[0] = (struct iovec){ bufs[i], PG };
			tio_init(&t[i], &pending, BK_IO_WRITE, (uint64_t)(i - N) * PG, 1, -1);
			CHECK(tio_queue(e, &t[i]) == 0);
		}
		bk_engine_kick(e);
		CHECK(pump(loop, &pending, 600));
		for (unsigned int i = N; i < 2 * N; i++)
			CHECK(t[i].ndone == 1 && t[i].res == PG);
		bk_engine_close(e);
	} else {
		CHECK(!"opening the engine");
	}
	bk_store_close(store);
	bk_loop_free(loop);
	unlink(path);
}

/*
 * The io-wq worker limit (io_uring.c, limit_workers): three engines on one loop, two of them
 * on the same file, leave this thread's io-wq one bounded worker per file, which a fresh ring
 * of the same thread reads back (a limit of 0 asks without changing).
 */
static void test_worker_limit(void)
{
	enum { PG = 4096 };
	struct bk_engine_params ep = { .name = "uring wq", .depth = 4 };
	struct bk_store_params sp = { 0 };
	static struct tio t[3];
	static uint8_t bufs[3][PG];
	struct bk_store *store[2] = { NULL, NULL };
	struct bk_engine *e[3] = { NULL, NULL, NULL };
	struct bk_loop *loop = NULL;
	unsigned int pending = 0, limits[2] = { 0, 0 };
	struct io_uring probe;
	char path[2][128];

	CHECK(bk_loop_new(&loop) == 0);
	for (int i = 0; i < 2; i++) {
		int fd = make_temp_file("/var/tmp", 4 * PG, path[i], sizeof(path[i]));

		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
		CHECK(bk_store_open(path[i], &sp, &store[i]) == 0);
	}
	if (!loop || !store[0] || !store[1])
		goto out;
	for (int i = 0; i < 3; i++) {
		CHECK(bk_engine_open("io_uring", loop, store[i == 2], &ep, &e[i]) == 0);
		if (!e[i])
			goto out;
		/* This thread's first submit to each ring applies the ring's limit to it. */
		t[i].iov[0] = (struct iovec){ bufs[i], PG };
		tio_init(&t[i], &pending, BK_IO_READ, 0, 1, -1);
		CHECK(tio_queue(e[i], &t[i]) == 0);
		bk_engine_kick(e[i]);
	}
	CHECK(pump(loop, &pending, 600));
	if (io_uring_queue_init(4, &probe, 0) == 0) {
		CHECK(io_uring_register_iowq_max_workers(&probe, limits) == 0);
		CHECK(limits[0] == 2);
		io_uring_queue_exit(&probe);
	} else {
		CHECK(!"a ring to read the limit with");
	}
out:
	for (int i = 0; i < 3; i++)
		if (e[i])
			bk_engine_close(e[i]);
	for (int i = 0; i < 2; i++) {
		bk_store_close(store[i]);
		unlink(path[i]);
	}
	bk_loop_free(loop);
}

int main(void)
{
	static const char *const modes[] = { NULL, "taskrun=coop", "taskrun=none,discard=thread" };
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(modes) && r != 77; i++)
		r = run_engine_suite("io_uring", modes[i]);
	if (r == 77)
		return r;
	test_bad_options();
	test_deep();
	test_inline(NULL);
	test_inline("taskrun=none");
	test_worker_limit();
	return bk_test_failures ? 1 : 0;
}
