// SPDX-License-Identifier: MIT
/*
 * The checks the virtio-pci transport makes before it takes a device, against a made-up
 * sysfs and /proc under a temporary root: a malformed PCI address (-EINVAL), one that does
 * not exist (-ENODEV), a device that is not virtio, or virtio of another type (-ENODEV), a
 * virtio-blk device whose kernel disk or one of its partitions is mounted, stacked on
 * (holders) or used as swap (-EBUSY); an unused one passes. Taking a device when
 * uio_pci_generic is not loaded fails without touching the device (driver_override unwritten).
 * A device a killed blanketd left bound to uio_pci_generic (driver_override still names it) is
 * taken again as blanketd's own: when it is given up, it goes back to the kernel's virtio-pci
 * driver, unless the daemon is stopping (vpci_keep_bound: its guests stay connected for the
 * next one); one an administrator bound to uio_pci_generic (no override) stays there. A device
 * the configuration's l0-pci-allow does not name is refused (-EPERM, naming the device and the
 * option) before anything is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"
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

/* Does the file at @rel (under the root) hold @text? */
static bool file_has(const char *rel, const char *text)
{
	char path[512], buf[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strstr(buf, text) != NULL;
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

	/* Only what l0-pci-allow names. */
	{
		struct bk_config c;
		char why[160], log[1024] = "", path[512];
		int fd, saved = dup(2);
		ssize_t n;

		bk_config_defaults(&c);
		CHECK(bk_config_set_key(&c, "l0-pci-allow", "0000:00:0a.0", why, sizeof(why)) == 0);
		bk_config_install(&c);
		snprintf(path, sizeof(path), "%s/log", root);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		CHECK(fd >= 0);
		dup2(fd, 2);
		CHECK(vpci_check("t", root, BLK, 2) == -EPERM);
		CHECK(vpci_open("t", root, BLK, 2, true, &p) == -EPERM && !p);
		dup2(saved, 2);
		close(saved);
		n = pread(fd, log, sizeof(log) - 1, 0);
		log[n > 0 ? n : 0] = 0;
		close(fd);
		CHECK(strstr(log, "PCI device " BLK " is not in l0-pci-allow (0000:00:0a.0)"));
		snprintf(path, sizeof(path), "%s/" DEV "/driver_override", root);
		CHECK(access(path, F_OK) < 0);
		CHECK(bk_config_set_key(&c, "l0-pci-allow", "0000:00:0a.0,0000:00:05.0", why,
					sizeof(why)) == 0);
		bk_config_install(&c);
		CHECK(vpci_check("t", root, BLK, 2) == 0);
		bk_config_defaults(&c);
		bk_config_install(&c);
	}

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

	/*
	 * A killed blanketd left the device with uio_pci_generic and its driver_override. No
	 * config file here, so the open fails after the bind step and gives the device up.
	 */
	put("sys/bus/pci/drivers/uio_pci_generic/unbind", "");
	put("sys/bus/pci/drivers/virtio-pci/bind", "");
	put(DEV "/driver_override", "uio_pci_generic\n");
	link_driver(BLK, "uio_pci_generic");
	CHECK(vpci_open("t", root, BLK, 2, false, &p) < 0 && !p);
	CHECK(file_has("sys/bus/pci/drivers/uio_pci_generic/unbind", BLK));
	CHECK(file_has("sys/bus/pci/drivers/virtio-pci/bind", BLK));

	/*
	 * A stopping daemon hands its guests' disks over to the next one: the device it took
	 * stays with uio_pci_generic (reset, DMA off) instead of going to dom0's kernel under
	 * the guests' feet.
	 */
	put("sys/bus/pci/drivers/uio_pci_generic/unbind", "");
	put("sys/bus/pci/drivers/virtio-pci/bind", "");
	put(DEV "/driver_override", "uio_pci_generic\n");
	link_driver(BLK, "uio_pci_generic");
	vpci_keep_bound(true);
	CHECK(vpci_open("t", root, BLK, 2, false, &p) < 0 && !p);
	vpci_keep_bound(false);
	CHECK(!file_has("sys/bus/pci/drivers/uio_pci_generic/unbind", BLK));
	CHECK(!file_has("sys/bus/pci/drivers/virtio-pci/bind", BLK));

	/* An administrator's uio binding (no driver_override) is left alone. */
	put("sys/bus/pci/drivers/uio_pci_generic/unbind", "");
	put("sys/bus/pci/drivers/virtio-pci/bind", "");
	put(DEV "/driver_override", "(null)\n");
	link_driver(BLK, "uio_pci_generic");
	CHECK(vpci_open("t", root, BLK, 2, false, &p) < 0 && !p);
	CHECK(!file_has("sys/bus/pci/drivers/uio_pci_generic/unbind", BLK));
	CHECK(!file_has("sys/bus/pci/drivers/virtio-pci/bind", BLK));

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0);
	return bk_test_exit();
}
