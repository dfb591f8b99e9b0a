// SPDX-License-Identifier: MIT
/*
 * The checks the virtio-pci transport makes before it takes a device, against a made-up
 * sysfs and /proc under a temporary root: a malformed PCI address (-EINVAL), one that does
 * not exist (-ENODEV), a device that is not virtio, or virtio of another type (-ENODEV), a
 * virtio-blk device whose kernel disk or one of its partitions is mounted, stacked on
 * (holders) or used as swap (-EBUSY); an unused one passes. Taking a device when
 * uio_pci_generic is not loaded fails without touching the device (driver_override unwritten).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util/log.h"
#include "virtio/pci.h"

static char root[256];

static void put(const char *rel, const char *text)
{
	char path[512], dir[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(s - path), path);
		mkdir(dir, 0755);
	}
	if (text) {
		FILE *f = fopen(path, "w");

		CHECK(f);
		if (f) {
			fputs(text, f);
			fclose(f);
		}
	} else {
		mkdir(path, 0755);
	}
}

static void link_driver(const char *bdf, const char *drv)
{
	char path[512], target[512];

	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/%s/driver", root, bdf);
	snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", drv);
	unlink(path);
	CHECK(symlink(target, path) == 0);
}

#define BLK "0000:00:05.0"
#define DEV "sys/bus/pci/devices/" BLK

int main(void)
{
	char cmd[600];
	struct vpci *p = NULL;

	bk_log_set_level(BK_LOG_DEBUG);
	snprintf(root, sizeof(root), "/tmp/bk-test-vpci.XXXXXX");
	CHECK(mkdtemp(root));
	put("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
	put("proc/swaps", "Filename Type Size Used Priority\n");
	put(DEV "/vendor", "0x1af4\n");
	put(DEV "/device", "0x1042\n");
	put("sys/bus/pci/devices/0000:00:06.0/vendor", "0x8086\n");
	put("sys/bus/pci/devices/0000:00:06.0/device", "0x100e\n");
	put("sys/bus/pci/devices/0000:00:07.0/vendor", "0x1af4\n");
	put("sys/bus/pci/devices/0000:00:07.0/device", "0x1041\n");

	CHECK(vpci_check("t", root, "0000:00:05", 2) == -EINVAL);
	CHECK(vpci_check("t", root, "0000:00:05.0x", 2) == -EINVAL);
	CHECK(vpci_check("t", root, "0000:00:09.0", 2) == -ENODEV);
	CHECK(vpci_check("t", root, "0000:00:06.0", 2) == -ENODEV); /* e1000 */
	CHECK(vpci_check("t", root, "0000:00:07.0", 2) == -ENODEV); /* virtio-net */
	CHECK(vpci_check("t", root, "0000:00:07.0", 1) == 0);	    /* asked for net */
	CHECK(vpci_check("t", root, BLK, 2) == 0);		    /* no driver */

	/* The kernel's virtio-blk made vda with a partition vda1. */
	put("sys/bus/pci/drivers/virtio-pci", NULL);
	link_driver(BLK, "virtio-pci");
	put(DEV "/virtio3/block/vda/dev", "254:0\n");
	put(DEV "/virtio3/block/vda/holders", NULL);
	put(DEV "/virtio3/block/vda/vda1/dev", "254:1\n");
	put(DEV "/virtio3/block/vda/vda1/partition", "1\n");
	put(DEV "/virtio3/block/vda/vda1/holders", NULL);
	CHECK(vpci_check("t", root, BLK, 2) == 0); /* bound, but nothing uses it */

	put("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
				   "40 22 254:1 / /mnt/data rw - ext4 /dev/vda1 rw\n");
	CHECK(vpci_check("t", root, BLK, 2) == -EBUSY);
	put("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
	put("proc/swaps", "Filename Type Size Used Priority\n/dev/vda  partition 1 0 -2\n");
	CHECK(vpci_check("t", root, BLK, 2) == -EBUSY);
	put("proc/swaps", "Filename Type Size Used Priority\n");
	put(DEV "/virtio3/block/vda/holders/dm-0", "");
	CHECK(vpci_check("t", root, BLK, 2) == -EBUSY);
	snprintf(cmd, sizeof(cmd), "%s/" DEV "/virtio3/block/vda/holders/dm-0", root);
	unlink(cmd);
	CHECK(vpci_check("t", root, BLK, 2) == 0);

	/* No uio_pci_generic: refused before anything is written. */
	CHECK(vpci_open("t", root, BLK, 2, true, &p) == -ENOENT && !p);
	snprintf(cmd, sizeof(cmd), "%s/" DEV "/driver_override", root);
	CHECK(access(cmd, F_OK) < 0);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0);
	return bk_test_exit();
}
