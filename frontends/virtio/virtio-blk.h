/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk engine ("virtio-blk"): guest disk I/O served by a virtio-blk device that
 * blanketd drives itself, today through a vhost-user socket (qemu-storage-daemon, SPDK).
 *
 * Options (struct bk_engine_params.options), comma-separated:
 *   socket=PATH           the vhost-user-blk back-end (required)
 *   queue=N               the device queue this instance uses (default: the next free one)
 *   queues=N              at most N device queues set up (default: all the device has, <= 16)
 *   qsize=N               ring size, a power of 2 up to 256 (default 256)
 *   pool=N                data bounce pages in the shared memory per queue (default 1024)
 *   discard=auto|write-zeroes   write-zeroes: discards go out as WRITE_ZEROES with unmap
 *   event-idx=on|off, indirect=on|off   turn ring features off (tests, odd back-ends)
 *   reconnect-timeout=S   fail in-flight I/O with EIO when the back-end is away this long
 *                         (seconds, default 60; 0 waits for ever)
 *   range=OFFSET+SIZE     the guest disk is these bytes of the device (default: all of it);
 *                         I/O past its end fails with EIO and never reaches the device
 *   owner=NAME            who the range belongs to: the instances (queues) of one guest disk
 *                         share a range; a range overlapping another owner's is refused
 * Every engine instance opened on the same socket and loop shares one connection (a vhost-user
 * back-end serves one front-end at a time) and one memory region; each takes one queue.
 */
#ifndef BK_VIRTIO_BLK_H
#define BK_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

struct bk_engine;
struct bk_store;

/* What the device offers: a backend advertises to its guest only what is true here. */
struct bk_vblk_info {
	uint64_t size;		 /* bytes */
	uint32_t logical_block;	 /* bytes */
	uint32_t physical_block; /* bytes */
	unsigned int nr_queues;	 /* device queues set up */
	unsigned int queue;	 /* the one this instance uses */
	bool readonly;
	bool flush;	   /* FLUSH offered: the device may cache writes */
	bool discard;	   /* BK_IO_DISCARD works (DISCARD, or WRITE_ZEROES with unmap) */
	bool write_zeroes; /* WRITE_ZEROES offered */
	uint32_t discard_granularity; /* bytes */
	uint64_t max_discard;	      /* bytes per device request (the engine splits larger ones) */
	uint64_t reconnects;	      /* back-end restarts survived */
};

/* Fill @ret for a "virtio-blk" engine instance; -EINVAL for another engine. */
int bk_vblk_info(const struct bk_engine *e, struct bk_vblk_info *ret);

/*
 * The store of a guest disk served by this engine (no file: no fd): its size is the SIZE of
 * range=OFFSET+SIZE in @options, which the disk must name (the device is only opened with
 * the engine, and its range is checked against the device then). @name names the disk.
 */
int bk_vblk_store_open(const char *name, const char *options, bool readonly, struct bk_store **ret);

#endif
