// SPDX-License-Identifier: MIT
/*
 * The virtio-blk engine's PCI options, without a device: a PCI address that does not exist
 * fails open() with -ENODEV, a malformed one with -EINVAL, and socket= with pci= together,
 * neither of them, or a bad dma= / irq= value are refused (-EINVAL). The store of a blkif disk
 * on a range (bk_vblk_store_open) has the range's size and no file; without range= it is
 * refused. Nothing here takes a
 * device: the address used (0000:ff:1f.7) is absent on ordinary machines; the test skips if
 * it is not.
 */
#include <errno.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "loop.h"
#include "util/log.h"
#include "virtio/virtio-blk.h"

static int open_with(struct bk_loop *loop, const char *options)
{
	struct bk_engine_params p = { .name = "test", .depth = 8, .options = options };
	struct bk_engine *e = NULL;
	int r = bk_engine_open("virtio-blk", loop, NULL, &p, &e);

	if (r == 0)
		bk_engine_close(e);
	return r;
}

int main(void)
{
	struct bk_loop *loop = NULL;

	if (access("/sys/bus/pci/devices/0000:ff:1f.7", F_OK) == 0)
		return 77;
	CHECK(bk_loop_new(&loop) == 0);
	if (!loop)
		return bk_test_exit();
	CHECK(open_with(loop, "pci=0000:ff:1f.7") == -ENODEV);
	CHECK(open_with(loop, "pci=0000:ff:1f.7,range=0+1048576") == -ENODEV);
	CHECK(open_with(loop, "pci=00:05.0") == -EINVAL);
	CHECK(open_with(loop, "pci=0000:ff:1f.7,socket=/nonexistent") == -EINVAL);
	CHECK(open_with(loop, "queues=1") == -EINVAL);
	CHECK(open_with(loop, "pci=0000:ff:1f.7,dma=pfn") == -EINVAL);
	CHECK(open_with(loop, "pci=0000:ff:1f.7,irq=msi") == -EINVAL);
	{
		struct bk_store *st = NULL;

		CHECK(bk_vblk_store_open("vbd 5/51712", "pci=0000:ff:1f.7,range=1048576+67108864",
					 true, &st) == 0);
		CHECK(st && st->fd < 0 && st->size == 67108864 && st->readonly &&
		      st->logical_block == 512 && !st->discard);
		bk_store_close(st);
		st = NULL;
		CHECK(bk_vblk_store_open("vbd 5/51712", "pci=0000:ff:1f.7", false, &st) == -EINVAL);
		CHECK(!st);
		CHECK(bk_vblk_store_open("vbd 5/51712", "range=0+4096", false, &st) == -EINVAL);
	}
	bk_loop_free(loop);
	return bk_test_exit();
}
