// SPDX-License-Identifier: MIT
/* The modern virtio-pci transport from userspace: see pci.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "pci.h"
#include "util/log.h"
#include "util/macros.h"

/* Common configuration (4.1.4.3). */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_CFGGEN 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF 0x1e
#define CC_Q_DESCLO 0x20
#define CC_Q_AVAILLO 0x28
#define CC_Q_USEDLO 0x30
#define CC_LEN 0x38

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8

#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

#define PCI_COMMAND 0x04
#define PCI_CMD_MEMORY 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_CMD_INTX_DISABLE 0x400
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CAP_VNDR 0x09

#define UIO_DRIVER "uio_pci_generic"
#define VIRTIO_PCI_DRIVER "virtio-pci"

static uint8_t rd8(volatile uint8_t *b, size_t off)
{
	return *(volatile uint8_t *)(b + off);
}
static uint16_t rd16(volatile uint8_t *b, size_t off)
{
	return *(volatile uint16_t *)(b + off);
}
static uint32_t rd32(volatile uint8_t *b, size_t off)
{
	return *(volatile uint32_t *)(b + off);
}
static void wr8(volatile uint8_t *b, size_t off, uint8_t v)
{
	*(volatile uint8_t *)(b + off) = v;
}
static void wr16(volatile uint8_t *b, size_t off, uint16_t v)
{
	*(volatile uint16_t *)(b + off) = v;
}
static void wr32(volatile uint8_t *b, size_t off, uint32_t v)
{
	*(volatile uint32_t *)(b + off) = v;
}
static void wr64(volatile uint8_t *b, size_t off, uint64_t v)
{
	wr32(b, off, (uint32_t)v);
	wr32(b, off + 4, (uint32_t)(v >> 32));
}

/* A sysfs file's first line, without its newline. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f)
		return neg_errno();
	if (!fgets(buf, (int)len, f))
		r = ferror(f) ? -EIO : -ENODATA;
	fclose(f);
	if (r == 0)
		buf[strcspn(buf, "\n")] = 0;
	return r;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int r = 0;

	if (fd < 0)
		return neg_errno();
	n = write(fd, s, strlen(s));
	if (n < 0)
		r = neg_errno();
	else if ((size_t)n != strlen(s))
		r = -EIO;
	close(fd);
	return r;
}

/* The name of the driver bound to the device in @dir, "" when none. */
static int driver_of(const char *dir, char *buf, size_t len)
{
	char link[512], target[512];
	ssize_t n;

	snprintf(link, sizeof(link), "%s/driver", dir);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		buf[0] = 0;
		return errno == ENOENT ? 0 : neg_errno();
	}
	target[n] = 0;
	snprintf(buf, len, "%.*s", (int)len - 1,
		 strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
	return 0;
}

static bool valid_bdf(const char *bdf)
{
	unsigned int d, b, s, f;
	int end = 0;

	return strlen(bdf) == 12 && sscanf(bdf, "%4x:%2x:%2x.%1x%n", &d, &b, &s, &f, &end) == 4 &&
	       end == 12 && s < 32 && f < 8;
}

/* Is block device @name (sysfs dir @bdir, "maj:min" in its dev file) in use? */
static int block_in_use(const char *root, const char *bdir, const char *name, char *why, size_t len)
{
	char path[4096], dev[32], line[4096];
	DIR *dir;
	struct dirent *de;
	FILE *f;
	bool busy = false;

	snprintf(path, sizeof(path), "%s/dev", bdir);
	if (read_line(path, dev, sizeof(dev)) < 0)
		return 0;
	/* device-mapper, md, or anything else stacked on it */
	snprintf(path, sizeof(path), "%s/holders", bdir);
	dir = opendir(path);
	while (dir && (de = readdir(dir)))
		if (de->d_name[0] != '.') {
			snprintf(why, len, "%s is held by %s", name, de->d_name);
			busy = true;
			break;
		}
	if (dir)
		closedir(dir);
	if (busy)
		return 1;
	snprintf(path, sizeof(path), "%s/proc/self/mountinfo", root);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		char mm[32], mnt[1024];

		/* "id parent maj:min root mountpoint ..." */
		if (sscanf(line, "%*s %*s %31s %*s %1023s", mm, mnt) == 2 && strcmp(mm, dev) == 0) {
			snprintf(why, len, "/dev/%.64s (%s) is mounted on %.300s", name, dev, mnt);
			busy = true;
			break;
		}
	}
	if (f)
		fclose(f);
	if (busy)
		return 1;
	snprintf(path, sizeof(path), "%s/proc/swaps", root);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		char want[80];
		int n = snprintf(want, sizeof(want), "/dev/%s", name);

		if (strncmp(line, want, (size_t)n) == 0 && (line[n] == ' ' || line[n] == '\t')) {
			snprintf(why, len, "/dev/%s is in use as swap", name);
			busy = true;
			break;
		}
	}
	if (f)
		fclose(f);
	return busy;
}

/* Any block device the kernel made of the device in @dir (and its partitions) in use? */
static int device_in_use(const char *root, const char *dir, char *why, size_t len)
{
	char path[1024];
	DIR *d = opendir(dir), *vd = NULL, *bd = NULL, *pd = NULL;
	struct dirent *de, *ve, *pe;
	int busy = 0;

	while (d && !busy && (de = readdir(d))) {
		if (strncmp(de->d_name, "virtio", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/block", dir, de->d_name);
		vd = opendir(path);
		while (vd && !busy && (ve = readdir(vd))) {
			char bdir[1400];

			if (ve->d_name[0] == '.')
				continue;
			snprintf(bdir, sizeof(bdir), "%s/%s", path, ve->d_name);
			busy = block_in_use(root, bdir, ve->d_name, why, len);
			pd = opendir(bdir);
			while (pd && !busy && (pe = readdir(pd))) {
				char part[1700], probe[1800];
				struct stat st;

				if (strncmp(pe->d_name, ve->d_name, strlen(ve->d_name)) != 0)
					continue;
				snprintf(part, sizeof(part), "%s/%s", bdir, pe->d_name);
				snprintf(probe, sizeof(probe), "%s/partition", part);
				if (stat(probe, &st) == 0)
					busy = block_in_use(root, part, pe->d_name, why, len);
			}
			if (pd)
				closedir(pd);
			pd = NULL;
		}
		if (vd)
			closedir(vd);
		vd = NULL;
	}
	if (d)
		closedir(d);
	(void)bd;
	return busy;
}

int vpci_check(const char *name, const char *root, const char *bdf, unsigned int virtio_type)
{
	char dir[256], path[320], val[64], drv[64], why[1200] = "";
	unsigned long vendor, device;

	if (!valid_bdf(bdf))
		return bk_log_errno(BK_LOG_ERR, -EINVAL,
				    "%s: '%s' is not a PCI address (expected DDDD:BB:DD.F, "
				    "e.g. 0000:00:05.0)",
				    name, bdf);
	if (!bk_config_pci_allowed(bk_config_current(), bdf))
		return bk_log_errno(
			BK_LOG_ERR, -EPERM,
			"%s: PCI device %s is not in l0-pci-allow (%s): blanketd may not "
			"take it (see blanketd.conf(5))",
			name, bdf, bk_config_current()->l0_pci_allow);
	snprintf(dir, sizeof(dir), "%s/sys/bus/pci/devices/%s", root, bdf);
	snprintf(path, sizeof(path), "%s/vendor", dir);
	if (read_line(path, val, sizeof(val)) < 0)
		return bk_log_errno(BK_LOG_ERR, -ENODEV, "%s: no PCI device %s (no %s)", name, bdf,
				    dir);
	vendor = strtoul(val, NULL, 16);
	snprintf(path, sizeof(path), "%s/device", dir);
	if (read_line(path, val, sizeof(val)) < 0)
		return bk_log_errno(BK_LOG_ERR, -ENODEV, "%s: PCI device %s has no device id", name,
				    bdf);
	device = strtoul(val, NULL, 16);
	if (vendor != VPCI_VENDOR || device < 0x1000 || device > 0x107f)
		return bk_log_errno(
			BK_LOG_ERR, -ENODEV,
			"%s: PCI device %s is not a virtio device (vendor %#06lx, device "
			"%#06lx; virtio is vendor 0x1af4, device 0x1000-0x107f)",
			name, bdf, vendor, device);
	/* Modern ids are 0x1040 + type; transitional ones 0x1000 + a legacy number. */
	if (device >= 0x1040 ? device - 0x1040 != virtio_type
			     : !((virtio_type == 2 && device == 0x1001) ||
				 (virtio_type == 1 && device == 0x1000)))
		return bk_log_errno(BK_LOG_ERR, -ENODEV,
				    "%s: PCI device %s is virtio device %#06lx, not virtio type %u "
				    "(%#06x)",
				    name, bdf, device, virtio_type, 0x1040 + virtio_type);
	if (driver_of(dir, drv, sizeof(drv)) < 0)
		drv[0] = 0;
	if (drv[0] && strcmp(drv, UIO_DRIVER) != 0 && device_in_use(root, dir, why, sizeof(why)))
		return bk_log_errno(BK_LOG_ERR, -EBUSY,
				    "%s: PCI device %s is in use by the kernel's %s driver: %s",
				    name, bdf, drv, why);
	return 0;
}

/* Bind @p to uio_pci_generic (unless it already is) and remember its previous driver. */
static int bind_uio(struct vpci *p)
{
	char path[512], drv[64];
	int r;

	r = driver_of(p->dir, p->prev_driver, sizeof(p->prev_driver));
	if (r < 0)
		return log_err_errno(r, "%s: reading the driver of %s: %m", p->name, p->bdf);
	if (strcmp(p->prev_driver, UIO_DRIVER) == 0) {
		/*
		 * Our driver_override says a blanketd bound it and never gave it back: killed
		 * with the device taken. It is ours to hand back to the kernel's virtio driver
		 * (what it had before, as far as anyone can still know); an administrator's own
		 * uio binding has no override and stays as it is.
		 */
		snprintf(path, sizeof(path), "%s/driver_override", p->dir);
		if (read_line(path, drv, sizeof(drv)) == 0 && strcmp(drv, UIO_DRIVER) == 0) {
			snprintf(path, sizeof(path), "%s/sys/bus/pci/drivers/" VIRTIO_PCI_DRIVER,
				 p->root);
			snprintf(p->prev_driver, sizeof(p->prev_driver), "%s",
				 access(path, F_OK) == 0 ? VIRTIO_PCI_DRIVER : "");
			p->bound = true;
			log_info("%s: taking %s again: a previous blanketd left it bound to %s",
				 p->name, p->bdf, UIO_DRIVER);
		}
		return 0;
	}
	snprintf(path, sizeof(path), "%s/sys/bus/pci/drivers/" UIO_DRIVER, p->root);
	if (access(path, F_OK) < 0)
		return bk_log_errno(BK_LOG_ERR, -ENOENT,
				    "%s: the %s module is not loaded (modprobe %s): it is needed "
				    "to drive %s from userspace",
				    p->name, UIO_DRIVER, UIO_DRIVER, p->bdf);
	snprintf(path, sizeof(path), "%s/driver_override", p->dir);
	r = write_str(path, UIO_DRIVER);
	if (r < 0)
		return log_err_errno(r, "%s: writing %s: %m", p->name, path);
	if (p->prev_driver[0]) {
		snprintf(path, sizeof(path), "%s/driver/unbind", p->dir);
		r = write_str(path, p->bdf);
		if (r < 0)
			return log_err_errno(r, "%s: unbinding %s from %s: %m", p->name, p->bdf,
					     p->prev_driver);
		log_info("%s: took %s from the kernel's %s driver", p->name, p->bdf,
			 p->prev_driver);
	}
	p->bound = true;
	snprintf(path, sizeof(path), "%s/sys/bus/pci/drivers_probe", p->root);
	r = write_str(path, p->bdf);
	if (r < 0)
		return log_err_errno(r, "%s: binding %s to %s: %m", p->name, p->bdf, UIO_DRIVER);
	if (driver_of(p->dir, drv, sizeof(drv)) < 0 || strcmp(drv, UIO_DRIVER) != 0)
		return bk_log_errno(BK_LOG_ERR, -EIO, "%s: %s is bound to '%s', not %s", p->name,
				    p->bdf, drv, UIO_DRIVER);
	return 0;
}

static void unbind_uio(struct vpci *p)
{
	char path[512];
	int r;

	if (!p->bound)
		return;
	snprintf(path, sizeof(path), "%s/sys/bus/pci/drivers/" UIO_DRIVER "/unbind", p->root);
	r = write_str(path, p->bdf);
	if (r < 0)
		log_warn_errno(r, "%s: unbinding %s from %s: %m", p->name, p->bdf, UIO_DRIVER);
	snprintf(path, sizeof(path), "%s/driver_override", p->dir);
	write_str(path, "\n");
	if (p->prev_driver[0]) {
		snprintf(path, sizeof(path), "%s/sys/bus/pci/drivers/%s/bind", p->root,
			 p->prev_driver);
		r = write_str(path, p->bdf);
		if (r < 0)
			log_warn_errno(r, "%s: giving %s back to %s: %m", p->name, p->bdf,
				       p->prev_driver);
		else
			log_info("%s: gave %s back to the kernel's %s driver", p->name, p->bdf,
				 p->prev_driver);
	}
	p->bound = false;
}

static int open_uio(struct vpci *p)
{
	char path[512];
	DIR *d;
	struct dirent *de;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "%s/uio", p->dir);
	d = opendir(path);
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, "uio", 3) == 0) {
			snprintf(path, sizeof(path), "%s/dev/%s", p->root, de->d_name);
			p->uio_fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
			r = p->uio_fd < 0 ? neg_errno() : 0;
			break;
		}
	if (d)
		closedir(d);
	if (r < 0)
		return log_err_errno(r, "%s: the uio device of %s: %m", p->name, p->bdf);
	return 0;
}

static int cfg_read(struct vpci *p, unsigned int off, void *buf, size_t len)
{
	ssize_t n = pread(p->cfg_fd, buf, len, off);

	return n == (ssize_t)len ? 0 : n < 0 ? neg_errno() : -EIO;
}

static int cfg_write16(struct vpci *p, unsigned int off, uint16_t v)
{
	ssize_t n = pwrite(p->cfg_fd, &v, sizeof(v), off);

	return n == sizeof(v) ? 0 : n < 0 ? neg_errno() : -EIO;
}

static int map_bar(struct vpci *p, unsigned int bar)
{
	char path[512];
	struct stat st;
	int fd;

	if (p->bar[bar])
		return 0;
	snprintf(path, sizeof(path), "%s/resource%u", p->dir, bar);
	fd = open(path, O_RDWR | O_CLOEXEC | O_SYNC);
	if (fd < 0)
		return log_err_errno(neg_errno(), "%s: %s: %m", p->name, path);
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return bk_log_errno(BK_LOG_ERR, -EIO, "%s: %s has no size", p->name, path);
	}
	p->bar[bar] = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p->bar[bar] == MAP_FAILED) {
		p->bar[bar] = NULL;
		return log_err_errno(neg_errno(), "%s: mapping %s: %m", p->name, path);
	}
	p->bar_len[bar] = (size_t)st.st_size;
	return 0;
}

/* Walk the vendor capabilities and map the four windows. */
static int find_windows(struct vpci *p)
{
	uint8_t cfg[256];
	unsigned int ptr, hops = 0;
	int r = cfg_read(p, 0, cfg, sizeof(cfg));

	if (r < 0)
		return log_err_errno(r, "%s: reading the config space of %s: %m", p->name, p->bdf);
	if (!(cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		goto legacy;
	for (ptr = cfg[PCI_CAP_PTR] & ~3u; ptr >= 0x40 && ptr < 0xfc && hops < 48;
	     ptr = cfg[ptr + 1] & ~3u, hops++) {
		unsigned int type = cfg[ptr + 3], bar = cfg[ptr + 4];
		uint32_t off, len;
		volatile uint8_t **win;

		if (cfg[ptr] != PCI_CAP_VNDR || ptr + 16 > sizeof(cfg) || bar > 5)
			continue;
		memcpy(&off, &cfg[ptr + 8], 4);
		memcpy(&len, &cfg[ptr + 12], 4);
		switch (type) {
		case CAP_COMMON:
			win = &p->common;
			break;
		case CAP_NOTIFY:
			win = &p->notify;
			break;
		case CAP_ISR:
			win = &p->isr;
			break;
		case CAP_DEVICE:
			win = &p->devcfg;
			break;
		default:
			continue;
		}
		if (*win)
			continue; /* the first of each type (4.1.4.1) */
		r = map_bar(p, bar);
		if (r < 0)
			return r;
		if (off > p->bar_len[bar] || len > p->bar_len[bar] - off)
			return bk_log_errno(BK_LOG_ERR, -EPROTO,
					    "%s: %s: virtio capability %u (%u bytes at %u) lies "
					    "outside BAR%u (%zu bytes)",
					    p->name, p->bdf, type, len, off, bar, p->bar_len[bar]);
		*win = (volatile uint8_t *)p->bar[bar] + off;
		if (type == CAP_NOTIFY) {
			if (ptr + 20 > sizeof(cfg))
				return -EPROTO;
			memcpy(&p->notify_mult, &cfg[ptr + 16], 4);
			p->notify_len = len;
		} else if (type == CAP_DEVICE) {
			p->devcfg_len = len;
		} else if (type == CAP_COMMON && len < CC_LEN) {
			return bk_log_errno(BK_LOG_ERR, -EPROTO,
					    "%s: %s: common config of %u bytes is too short",
					    p->name, p->bdf, len);
		}
	}
	if (p->common && p->notify && p->isr && p->devcfg)
		return 0;
legacy:
	return bk_log_errno(BK_LOG_ERR, -ENODEV,
			    "%s: %s has no modern virtio capabilities (a legacy-only device? use "
			    "disable-legacy=on / a virtio 1.0 device)",
			    p->name, p->bdf);
}

int vpci_reset(struct vpci *p)
{
	if (!p->common)
		return 0;
	wr8(p->common, CC_STATUS, 0);
	for (int i = 0; i < 1000; i++) {
		if (rd8(p->common, CC_STATUS) == 0)
			return 0;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return bk_log_errno(BK_LOG_ERR, -ETIMEDOUT, "%s: %s did not finish its reset in 1 s",
			    p->name, p->bdf);
}

uint8_t vpci_status(struct vpci *p)
{
	return rd8(p->common, CC_STATUS);
}

static void status_set(struct vpci *p, uint8_t bits)
{
	wr8(p->common, CC_STATUS, rd8(p->common, CC_STATUS) | bits);
}

int vpci_open(const char *name, const char *root, const char *bdf, unsigned int virtio_type,
	      bool intx, struct vpci **ret)
{
	struct vpci *p;
	uint16_t cmd;
	int r;

	r = vpci_check(name, root, bdf, virtio_type);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->root, sizeof(p->root), "%s", root);
	snprintf(p->bdf, sizeof(p->bdf), "%s", bdf);
	snprintf(p->dir, sizeof(p->dir), "%s/sys/bus/pci/devices/%s", root, bdf);
	p->cfg_fd = p->uio_fd = -1;
	r = bind_uio(p);
	if (r < 0)
		goto fail;
	if (intx) {
		r = open_uio(p);
		if (r < 0)
			goto fail;
	}
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/config", p->dir);
		p->cfg_fd = open(path, O_RDWR | O_CLOEXEC);
		if (p->cfg_fd < 0) {
			r = log_err_errno(neg_errno(), "%s: %s: %m", name, path);
			goto fail;
		}
	}
	r = cfg_read(p, PCI_COMMAND, &cmd, sizeof(cmd));
	if (r < 0)
		goto fail;
	/*
	 * Registers first, DMA only after the reset: a device a killed blanketd left running
	 * still holds its rings' and buffers' addresses, frames the kernel has since freed.
	 */
	cmd |= PCI_CMD_MEMORY;
	cmd &= (uint16_t)~PCI_CMD_MASTER;
	if (intx)
		cmd &= (uint16_t)~PCI_CMD_INTX_DISABLE;
	else
		cmd |= PCI_CMD_INTX_DISABLE;
	r = cfg_write16(p, PCI_COMMAND, cmd);
	if (r < 0) {
		log_err_errno(r, "%s: enabling the registers of %s: %m", name, bdf);
		goto fail;
	}
	r = find_windows(p);
	if (r < 0)
		goto fail;
	if (vpci_status(p) & ~ST_ACK) /* a kernel driver leaves ACKNOWLEDGE set */
		log_info("%s: %s was left running (status %#x): resetting it before enabling DMA",
			 name, bdf, vpci_status(p));
	r = vpci_reset(p);
	if (r < 0)
		goto fail;
	cmd |= PCI_CMD_MASTER;
	r = cfg_write16(p, PCI_COMMAND, cmd);
	if (r < 0) {
		log_err_errno(r, "%s: enabling bus mastering on %s: %m", name, bdf);
		goto fail;
	}
	status_set(p, ST_ACK);
	status_set(p, ST_DRIVER);
	wr32(p->common, CC_DFSELECT, 0);
	p->features = rd32(p->common, CC_DF);
	wr32(p->common, CC_DFSELECT, 1);
	p->features |= (uint64_t)rd32(p->common, CC_DF) << 32;
	p->num_queues = rd16(p->common, CC_NUMQ);
	log_info("%s: %s (virtio %#06x) bound to %s, %u queue(s), features %#llx, %s", name, bdf,
		 0x1040 + virtio_type, UIO_DRIVER, p->num_queues, (unsigned long long)p->features,
		 intx ? "INTx" : "polled");
	*ret = p;
	return 0;
fail:
	vpci_close(p);
	return r;
}

static bool keep_bound;

void vpci_keep_bound(bool on)
{
	keep_bound = on;
}

void vpci_close(struct vpci *p)
{
	uint16_t cmd;

	if (!p)
		return;
	/* Nothing may be written into memory we are about to give back. */
	vpci_reset(p);
	if (p->cfg_fd >= 0 && cfg_read(p, PCI_COMMAND, &cmd, sizeof(cmd)) == 0)
		cfg_write16(p, PCI_COMMAND, (uint16_t)(cmd & ~PCI_CMD_MASTER));
	for (unsigned int i = 0; i < 6; i++)
		if (p->bar[i])
			munmap(p->bar[i], p->bar_len[i]);
	if (p->cfg_fd >= 0)
		close(p->cfg_fd);
	if (p->uio_fd >= 0)
		close(p->uio_fd);
	if (keep_bound && p->bound)
		log_info("%s: %s stays with %s for the next blanketd (its guests stay connected)",
			 p->name, p->bdf, UIO_DRIVER);
	else
		unbind_uio(p);
	free(p);
}

int vpci_get_config(struct vpci *p, uint32_t off, void *buf, uint32_t size)
{
	if (off > p->devcfg_len || size > p->devcfg_len - off)
		size = off < p->devcfg_len ? (uint32_t)(p->devcfg_len - off) : 0;
	for (int tries = 0; tries < 100; tries++) {
		uint8_t gen = rd8(p->common, CC_CFGGEN);

		for (uint32_t i = 0; i < size; i++)
			((uint8_t *)buf)[i] = rd8(p->devcfg, off + i);
		if (rd8(p->common, CC_CFGGEN) == gen)
			return 0;
	}
	return -EAGAIN;
}

int vpci_set_features(struct vpci *p, uint64_t features)
{
	/* After a vpci_reset() (a second negotiation) the driver says hello again. */
	if (!(rd8(p->common, CC_STATUS) & ST_DRIVER))
		status_set(p, ST_ACK | ST_DRIVER);
	wr32(p->common, CC_GFSELECT, 0);
	wr32(p->common, CC_GF, (uint32_t)features);
	wr32(p->common, CC_GFSELECT, 1);
	wr32(p->common, CC_GF, (uint32_t)(features >> 32));
	status_set(p, ST_FEATURES_OK);
	if (!(rd8(p->common, CC_STATUS) & ST_FEATURES_OK))
		return bk_log_errno(BK_LOG_ERR, -EPROTO, "%s: %s refused features %#llx", p->name,
				    p->bdf, (unsigned long long)features);
	return 0;
}

unsigned int vpci_queue_max(struct vpci *p, uint16_t index)
{
	if (index >= p->num_queues)
		return 0;
	wr16(p->common, CC_Q_SELECT, index);
	return rd16(p->common, CC_Q_SIZE);
}

int vpci_queue_setup(struct vpci *p, uint16_t index, uint16_t size, uint64_t desc, uint64_t avail,
		     uint64_t used)
{
	unsigned int max = vpci_queue_max(p, index);

	if (!max || size > max)
		return bk_log_errno(BK_LOG_ERR, -EINVAL,
				    "%s: %s: queue %u of size %u (the device allows %u)", p->name,
				    p->bdf, index, size, max);
	wr16(p->common, CC_Q_SELECT, index);
	wr16(p->common, CC_Q_SIZE, size);
	wr16(p->common, CC_Q_MSIX, 0xffff);
	wr64(p->common, CC_Q_DESCLO, desc);
	wr64(p->common, CC_Q_AVAILLO, avail);
	wr64(p->common, CC_Q_USEDLO, used);
	/* Cached: every doorbell costs one trap to L0, not three. */
	if (index < ARRAY_SIZE(p->notify_at))
		p->notify_at[index] = (uint32_t)rd16(p->common, CC_Q_NOFF) * p->notify_mult;
	wr16(p->common, CC_Q_ENABLE, 1);
	return 0;
}

int vpci_driver_ok(struct vpci *p)
{
	wr16(p->common, CC_MSIX, 0xffff);
	status_set(p, ST_DRIVER_OK);
	if (rd8(p->common, CC_STATUS) & 0xc0)
		return bk_log_errno(BK_LOG_ERR, -EIO, "%s: %s failed at DRIVER_OK (status %#x)",
				    p->name, p->bdf, rd8(p->common, CC_STATUS));
	return 0;
}

void vpci_notify(struct vpci *p, uint16_t index)
{
	size_t off;

	if (index < ARRAY_SIZE(p->notify_at)) {
		off = p->notify_at[index];
	} else {
		wr16(p->common, CC_Q_SELECT, index);
		off = (size_t)rd16(p->common, CC_Q_NOFF) * p->notify_mult;
	}
	if (off + 2 <= p->notify_len)
		wr16(p->notify, off, index);
}

int vpci_irq_ack(struct vpci *p)
{
	uint32_t count;
	uint16_t cmd;
	uint8_t isr;

	if (p->uio_fd >= 0 && read(p->uio_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return neg_errno();
	p->interrupts++;
	isr = rd8(p->isr, 0); /* reading clears it and lowers the line */
	if (p->uio_fd >= 0 && cfg_read(p, PCI_COMMAND, &cmd, sizeof(cmd)) == 0 &&
	    (cmd & PCI_CMD_INTX_DISABLE))
		cfg_write16(p, PCI_COMMAND, (uint16_t)(cmd & ~PCI_CMD_INTX_DISABLE));
	return isr;
}
