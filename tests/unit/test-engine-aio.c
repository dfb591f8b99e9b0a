// SPDX-License-Identifier: MIT
/*
 * The libaio engine on real files (O_DIRECT and buffered) and, if possible, a loop device;
 * then flush through the blocking-work thread ("fdsync=thread"), and option checking.
 */
#include <errno.h>
#include <unistd.h>

#include "test-engine-common.h"

static void test_flush_thread(void)
{
	struct bk_engine_params ep = { .name = "aio thread",
				       .depth = 4,
				       .options = "fdsync=thread" };
	struct bk_store_params sp = { .want_direct = true };
	struct bk_loop *loop = NULL;
	struct bk_store *s = NULL;
	struct bk_engine *e = NULL;
	struct tio f[3];
	unsigned int pending = 0;
	char path[256];
	int fd = make_temp_file("/var/tmp", 1u << 20, path, sizeof(path));

	if (fd < 0)
		return;
	close(fd);
	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_store_open(path, &sp, &s) == 0);
	if (!loop || !s)
		goto out;
	ep.options = "fdsync=nope";
	CHECK(bk_engine_open("aio", loop, s, &ep, &e) == -EINVAL && !e);
	ep.options = "fdsync=thread";
	CHECK(bk_engine_open("aio", loop, s, &ep, &e) == 0);
	if (!e)
		goto out;
	for (unsigned int i = 0; i < 3; i++) {
		tio_init(&f[i], &pending, BK_IO_FLUSH, 0, 0, -1);
		CHECK(tio_queue(e, &f[i]) == 0);
	}
	CHECK(bk_engine_inflight(e) == 3);
	CHECK(pump(loop, &pending, 600));
	for (unsigned int i = 0; i < 3; i++)
		CHECK(f[i].ndone == 1 && f[i].res == 0);
	CHECK(bk_engine_inflight(e) == 0);
out:
	bk_engine_close(e);
	bk_store_close(s);
	bk_loop_free(loop);
	unlink(path);
}

int main(void)
{
	int r = run_engine_suite("aio", NULL);

	if (r == 77)
		return r;
	test_flush_thread();
	return bk_test_failures ? 1 : 0;
}
