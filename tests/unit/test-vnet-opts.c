// SPDX-License-Identifier: MIT
/*
 * The virtio-net port's spec (frontends/virtio/net.h), without a device: the good forms parse
 * into the right options; every bad one is refused with a reason that names the value; a PCI
 * address that does not exist fails bk_vnet_open() with -ENODEV and a socket that does not
 * exist with -ENOENT, neither leaving anything behind. The address used (0000:ff:1f.7) is absent
 * on ordinary machines; that part skips if it is not.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"
#include "util/log.h"
#include "virtio/dma.h"
#include "virtio/net.h"

static void good(void)
{
	struct bk_vnet_opts o;
	char why[160];

	CHECK(bk_vnet_parse("virtio-net,pci=0000:00:05.0", &o, why, sizeof(why)) == 0);
	CHECK(!strcmp(o.pci, "0000:00:05.0") && !o.path[0] && !o.poll && o.queues == 0 &&
	      o.dma == -1);
	CHECK(bk_vnet_parse("virtio-net,pci=0000:0a:1f.7,irq=poll", &o, why, sizeof(why)) == 0);
	CHECK(o.poll && !strcmp(o.pci, "0000:0a:1f.7"));
	CHECK(bk_vnet_parse("virtio-net,pci=0000:00:05.0,dma=pagemap", &o, why, sizeof(why)) == 0);
	CHECK(o.dma == VIO_DMA_PAGEMAP);
	CHECK(bk_vnet_parse("vhost-user,path=/run/sw0.sock,queues=4", &o, why, sizeof(why)) == 0);
	CHECK(!strcmp(o.path, "/run/sw0.sock") && !o.pci[0] && o.queues == 4);
}

static void bad(void)
{
	static const struct {
		const char *spec, *why;
	} cases[] = {
		{ "virtio-blk,pci=0000:00:05.0", "unknown port kind 'virtio-blk'" },
		{ "virtio-net", "virtio-net needs pci=" },
		{ "virtio-net,pci=00:05.0", "pci='00:05.0' is not a PCI address" },
		{ "virtio-net,pci=0000:00:20.0", "pci='0000:00:20.0' is not a PCI address" },
		{ "virtio-net,pci=0000:00:05.0x", "pci='0000:00:05.0x'" },
		{ "virtio-net,pci=0000:00:05.0,irq=msix", "irq='msix': intx or poll" },
		{ "virtio-net,pci=0000:00:05.0,path=/x", "unknown option 'path'" },
		{ "virtio-net,pci=0000:00:05.0,dma=pfn", "dma='pfn': auto, pagemap or p2m" },
		{ "vhost-user,path=/x,dma=p2m", "unknown option 'dma'" },
		{ "vhost-user", "vhost-user needs path=" },
		{ "vhost-user,path=run/x.sock", "path='run/x.sock' is not an absolute" },
		{ "vhost-user,path=/x,queues=9", "queues='9': 1..8" },
		{ "vhost-user,path=/x,queues=", "queues='': 1..8" },
		{ "vhost-user,path=/x,queues=0", "queues='0': 1..8" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bk_vnet_opts o = { .queues = 77 };
		char why[160] = "";

		CHECK(bk_vnet_parse(cases[i].spec, &o, why, sizeof(why)) == -EINVAL);
		CHECK(strstr(why, cases[i].why) != NULL);
		CHECK(o.queues == 77); /* untouched on failure */
		if (!strstr(why, cases[i].why))
			fprintf(stderr, "  '%s': got '%s', want '%s'\n", cases[i].spec, why,
				cases[i].why);
	}
}

static void absent(void)
{
	struct bk_loop *loop;
	struct bk_vnet_opts o;
	struct bk_vnet *v = NULL;
	char why[160];
	unsigned int fds = bk_test_count_fds();

	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_vnet_parse("vhost-user,path=/nonexistent/bk-vnet.sock", &o, why, sizeof(why)) ==
	      0);
	CHECK(bk_vnet_open("vif 1/0", loop, &o, &v) == -ENOENT && !v);
	if (access("/sys/bus/pci/devices/0000:ff:1f.7", F_OK) != 0) {
		CHECK(bk_vnet_parse("virtio-net,pci=0000:ff:1f.7", &o, why, sizeof(why)) == 0);
		CHECK(bk_vnet_open("vif 1/0", loop, &o, &v) == -ENODEV && !v);
	}
	CHECK(bk_loop_nr_objects(loop) == 0);
	bk_loop_free(loop);
	CHECK(bk_test_count_fds() == fds);
}

int main(void)
{
	bk_log_set_prefix(0);
	good();
	bad();
	absent();
	return bk_test_exit();
}
