/* SPDX-License-Identifier: MIT */
/*
 * Virtio 1.x definitions blanketd's userspace drivers need: feature bits, the split ring
 * layout, and virtio-blk requests and config. Written from the virtio 1.2 specification.
 * Everything here is little-endian on the wire; blanketd only runs on little-endian hosts
 * (x86-64, the only Xen PV dom0 architecture), which vio_le.h-style swaps would not change.
 */
#ifndef BK_VIRTIO_H
#define BK_VIRTIO_H

#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the virtio frontends assume a little-endian host"
#endif

#define VIO_PAGE_SIZE 4096u

/* Device-independent feature bits. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* virtio-blk feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIO_BIT(b) (1ull << (b))

/* Split ring (virtio 1.2, 2.7). */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_USED_F_NO_NOTIFY 1
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then used_event */
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* [size], then avail_event */
};

/* virtio-blk requests (5.2.6). Sectors are always 512 bytes. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WZ_F_UNMAP 1

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct virtio_blk_dwz {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* The config fields blanketd reads, with their offsets (5.2.4). */
struct virtio_blk_config {
	uint64_t capacity;		   /* 0: in 512-byte sectors */
	uint32_t size_max;		   /* 8 */
	uint32_t seg_max;		   /* 12 */
	uint32_t geometry;		   /* 16 */
	uint32_t blk_size;		   /* 20 */
	uint8_t physical_block_exp;	   /* 24 */
	uint8_t alignment_offset;	   /* 25 */
	uint16_t min_io_size;		   /* 26 */
	uint32_t opt_io_size;		   /* 28 */
	uint8_t writeback;		   /* 32 */
	uint8_t unused0;		   /* 33 */
	uint16_t num_queues;		   /* 34 */
	uint32_t max_discard_sectors;	   /* 36 */
	uint32_t max_discard_seg;	   /* 40 */
	uint32_t discard_sector_alignment; /* 44 */
	uint32_t max_write_zeroes_sectors; /* 48 */
	uint32_t max_write_zeroes_seg;	   /* 52 */
	uint8_t write_zeroes_may_unmap;	   /* 56 */
	uint8_t unused1[3];
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio_blk_config layout");
_Static_assert(sizeof(struct vring_desc) == 16, "vring_desc layout");

#endif
