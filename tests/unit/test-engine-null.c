// SPDX-License-Identifier: MIT
/*
 * The null engine completes everything from the loop, never inside queue(), with res = len,
 * leaves read buffers alone, enforces its depth, and keeps going when done() queues more.
 * Also the registry: names, lookup, unknown engines.
 */
#include <errno.h>
#include <string.h>

#include "test-engine-common.h"
#include "util/log.h"

#define DEPTH 8u

struct chain {
	struct tio t;
	struct bk_engine *e;
	unsigned int left; /* requeue this many more times from done() */
	unsigned int total;
};

static void chain_done(struct bk_io *io, int res)
{
	struct chain *c = (struct chain *)io;

	c->total++;
	if (res != (int)io->len)
		bk_test_failures++;
	if (c->left && (c->left--, bk_engine_queue(c->e, io) == 0))
		return;
	(*c->t.pending)--;
}

static void test_registry(void)
{
	const char *names = bk_engine_names();

	CHECK(strstr(names, "null") != NULL);
	CHECK(strstr(names, "fault") != NULL || true);
	CHECK(bk_engine_find("null") != NULL);
	CHECK(bk_engine_find("nope") == NULL);
	CHECK(bk_engine_find(NULL) == NULL);
	if (bk_engine_find("io_uring"))
		CHECK(strncmp(names, "io_uring", 8) == 0);
}

int main(void)
{
	struct bk_loop *loop;
	struct bk_engine *e = NULL, *bad = NULL;
	struct bk_engine_params ep = { .name = "null q0", .depth = DEPTH };
	struct tio t[DEPTH + 1];
	struct chain ch;
	unsigned int pending = 0, base;
	uint8_t buf[DEPTH][512];

	bk_log_set_level(BK_LOG_WARNING);
	test_registry();
	CHECK(bk_loop_new(&loop) == 0);
	base = bk_loop_nr_objects(loop);
	CHECK(bk_engine_open("nope", loop, NULL, &ep, &bad) == -ENOENT && !bad);
	ep.options = "x=1";
	CHECK(bk_engine_open("null", loop, NULL, &ep, &bad) == -EINVAL && !bad);
	ep.options = NULL;
	CHECK(bk_engine_open("null", loop, NULL, &ep, &e) == 0);
	if (!e)
		return 1;

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned int i = 0; i < DEPTH; i++) {
		t[i].iov[0] = (struct iovec){ buf[i], sizeof(buf[i]) };
		tio_init(&t[i], &pending,
			 i % 3 == 2 ? BK_IO_FLUSH
			 : i % 2    ? BK_IO_WRITE
				    : BK_IO_READ,
			 (uint64_t)i * 512, i % 3 == 2 ? 0 : 1, -1);
		CHECK(tio_queue(e, &t[i]) == 0);
		CHECK(!t[i].done);
	}
	t[DEPTH].iov[0] = (struct iovec){ buf[0], 512 };
	tio_init(&t[DEPTH], &pending, BK_IO_READ, 0, 1, -1);
	CHECK(tio_queue(e, &t[DEPTH]) == -EAGAIN);
	CHECK(bk_engine_inflight(e) == DEPTH);
	CHECK(pump(loop, &pending, 100));
	CHECK(bk_engine_inflight(e) == 0);
	for (unsigned int i = 0; i < DEPTH; i++) {
		CHECK(t[i].ndone == 1);
		CHECK(t[i].res == (i % 3 == 2 ? 0 : 512));
	}
	for (unsigned int i = 0; i < sizeof(buf); i++)
		CHECK(((uint8_t *)buf)[i] == 0x5a);

	/* done() requeueing itself: the loop must not stall between rounds. */
	ch = (struct chain){ .e = e, .left = 1000 };
	ch.t.iov[0] = (struct iovec){ buf[0], 512 };
	tio_init(&ch.t, &pending, BK_IO_WRITE, 0, 1, -1);
	ch.t.io.done = chain_done;
	CHECK(tio_queue(e, &ch.t) == 0);
	CHECK(pump(loop, &pending, 5000));
	CHECK(ch.total == 1001);

	/* Malformed requests are refused up front. */
	tio_init(&t[0], &pending, BK_IO_READ, 0, 0, -1);
	CHECK(tio_queue(e, &t[0]) == -EINVAL);
	t[0].io.op = 9;
	CHECK(tio_queue(e, &t[0]) == -EINVAL);
	t[0].iov[0] = (struct iovec){ buf[0], 512 };
	tio_init(&t[0], &pending, BK_IO_WRITE, 0, 1, -1);
	t[0].io.len = 1024;
	CHECK(tio_queue(e, &t[0]) == -EINVAL);
	t[0].io.done = NULL;
	t[0].io.len = 512;
	CHECK(tio_queue(e, &t[0]) == -EINVAL);
	CHECK(bk_engine_inflight(e) == 0);

	bk_engine_close(e);
	CHECK(bk_loop_nr_objects(loop) == base);
	bk_loop_free(loop);
	return bk_test_failures ? 1 : 0;
}
