// SPDX-License-Identifier: MIT
/*
 * The io_uring engine on real files (O_DIRECT and buffered) and, if possible, a loop device:
 * with the default ring (DEFER_TASKRUN where the kernel has it, block discard through
 * io_uring where it has that), then with each older completion mode and the discard thread
 * forced, and option checking.
 */
#include <errno.h>

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

int main(void)
{
	static const char *const modes[] = { NULL, "taskrun=coop", "taskrun=none,discard=thread" };
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(modes) && r != 77; i++)
		r = run_engine_suite("io_uring", modes[i]);
	if (r == 77)
		return r;
	test_bad_options();
	return bk_test_failures ? 1 : 0;
}
