/* SPDX-License-Identifier: MIT */
/*
 * The modern virtio-pci transport (virtio 1.2, 4.1) driven from userspace through sysfs: the
 * device named by its PCI address is bound to uio_pci_generic (driver_override), its BARs
 * are mapped from resourceN, the vendor capabilities give the common, notify, ISR and device
 * config windows, and interrupts are INTx read from /dev/uioN (re-enabled through the config
 * space), or none at all when the caller polls. At close the device is reset (so it writes
 * no memory any more), bus mastering is turned off, and the device goes back to the driver
 * it had (or stays with uio_pci_generic if it was there before).
 *
 * Every path starts at @root ("" on a real system), so tests run against a made-up sysfs.
 */
#ifndef BK_VIRTIO_PCI_H
#define BK_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VPCI_VENDOR 0x1af4

struct vpci {
	char name[96];
	char root[128];
	char bdf[16];
	char dir[256];	      /* <root>/sys/bus/pci/devices/<bdf> */
	char prev_driver[64]; /* the driver it had, "" for none */
	bool bound;	      /* we bound it to uio_pci_generic */
	uint16_t device_id;
	int cfg_fd; /* <dir>/config */
	int uio_fd; /* /dev/uioN, -1 when polling */
	void *bar[6];
	size_t bar_len[6];
	volatile uint8_t *common;
	volatile uint8_t *notify;
	uint32_t notify_mult;
	size_t notify_len;
	volatile uint8_t *isr;
	volatile uint8_t *devcfg;
	size_t devcfg_len;
	uint16_t num_queues;
	uint32_t notify_at[64]; /* per queue set up: offset of its doorbell in the notify window */
	uint64_t features;	/* offered by the device */
	uint64_t interrupts;
};

/*
 * Check that @bdf (DDDD:BB:DD.F) exists under @root, is a modern virtio device of type
 * @virtio_type (2: block) and is not held by a kernel driver with a mounted filesystem (or a
 * holder such as device-mapper). Errors name the value: -EINVAL a malformed address,
 * -EPERM not named by the configuration's l0-pci-allow, -ENODEV no such device, or not the
 * right kind, -EBUSY in use. Nothing is changed.
 */
int vpci_check(const char *name, const char *root, const char *bdf, unsigned int virtio_type);

/*
 * vpci_check(), then take the device (unbind its driver, bind uio_pci_generic), map it,
 * reset it, set ACKNOWLEDGE|DRIVER and read its features. @intx: open /dev/uioN for INTx.
 */
int vpci_open(const char *name, const char *root, const char *bdf, unsigned int virtio_type,
	      bool intx, struct vpci **ret);
/* Reset the device, then give it back. NULL-safe. Call before freeing memory it may write. */
void vpci_close(struct vpci *p);
/*
 * From now on (@on), vpci_close() resets a device and turns DMA off but leaves it with
 * uio_pci_generic: the daemon is stopping and hands its guests' disks over to the next one,
 * which takes the device again. Process-wide.
 */
void vpci_keep_bound(bool on);

/* Write status 0 and wait until the device reads it back as 0 (1 s at most). */
int vpci_reset(struct vpci *p);
/* @size bytes of device config from @off (generation-checked). */
int vpci_get_config(struct vpci *p, uint32_t off, void *buf, uint32_t size);
/* Accept @features, FEATURES_OK, and check the device kept it (-EPROTO otherwise). */
int vpci_set_features(struct vpci *p, uint64_t features);
/* Queue @index: largest size the device allows (0: no such queue). */
unsigned int vpci_queue_max(struct vpci *p, uint16_t index);
/* Set queue @index up with @size entries at these device addresses, no MSI-X vector. */
int vpci_queue_setup(struct vpci *p, uint16_t index, uint16_t size, uint64_t desc, uint64_t avail,
		     uint64_t used);
/* DRIVER_OK: the device may start processing queues. */
int vpci_driver_ok(struct vpci *p);
/* Notify queue @index (a write to its doorbell). */
void vpci_notify(struct vpci *p, uint16_t index);
/* Device status byte (NEEDS_RESET 0x40, FAILED 0x80). */
uint8_t vpci_status(struct vpci *p);

/*
 * After the uio fd polled readable: consume the count, read (and so clear) the ISR and
 * re-enable INTx. Returns the ISR byte (bit 0: a queue, bit 1: config), or -errno.
 */
int vpci_irq_ack(struct vpci *p);

#endif
