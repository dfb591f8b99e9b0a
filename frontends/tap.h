/* SPDX-License-Identifier: MIT */
/*
 * The TAP port of a vif: where a netif backend's frames meet the dom0 network stack (a bridge,
 * NAT or routing, as the vif-* scripts set up). One multi-queue TAP per vif
 * (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE), one non-blocking fd per guest queue,
 * every frame preceded by a 12-byte virtio_net_hdr (TUNSETVNETHDRSZ) so checksum and GSO
 * offloads survive end to end.
 *
 * Restarts: with persistence on (TUNSETPERSIST) the interface outlives our fds, so its
 * ifindex, addresses, MTU, MAC and bridge membership survive a daemon restart; the next daemon
 * attaches to it again by name with bk_tap_open(). The scripts may rename the interface
 * (vif-common.sh: vifD.N -> vifname); the fds keep working and bk_tap_name() follows.
 *
 * The module never owns the loop: bk_tap_watch() asks the core to watch a queue's fd. Every
 * error is logged naming the interface and returned as -errno.
 */
#ifndef BK_TAP_H
#define BK_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "loop.h"

/* Bytes of virtio_net_hdr before every frame read or written (virtio_net_hdr_v1 size). */
#define BK_TAP_VNET_HDR_LEN 12U
/* The kernel's limit on queues of one TAP. */
#define BK_TAP_MAX_QUEUES 256U

struct bk_tap;

/* "vif<domid>.<devid>" into @buf; -ENAMETOOLONG if it does not fit an interface name. */
int bk_tap_vif_name(unsigned int domid, unsigned int devid, char *buf, size_t size);

/*
 * Create the TAP @name with @nr_queues queues, or attach to it if it exists (a persistent TAP
 * a previous daemon left). -EINVAL for a bad name or queue count, or when @name exists and is
 * not a multi-queue TAP; -EBUSY when its queues are taken.
 */
int bk_tap_open(const char *name, unsigned int nr_queues, struct bk_tap **ret);
/* NULL-safe. Closes every queue: a persistent TAP stays, any other disappears. */
void bk_tap_close(struct bk_tap *t);
/* Persistence off, then close: the interface disappears (device removal). NULL-safe. */
void bk_tap_remove(struct bk_tap *t);

/* The interface's current name (refreshed from the kernel: scripts may rename it). */
const char *bk_tap_name(struct bk_tap *t);
int bk_tap_ifindex(const struct bk_tap *t);
unsigned int bk_tap_nr_queues(const struct bk_tap *t);
/* True when bk_tap_open() attached to an interface that already existed. */
bool bk_tap_reattached(const struct bk_tap *t);
/* The non-blocking fd of queue @q. */
int bk_tap_fd(const struct bk_tap *t, unsigned int q);

/* Keep the interface when the last fd closes (on), or not (off). */
int bk_tap_set_persist(struct bk_tap *t, bool on);
/* What the reader (we, for the guest) accepts: TUN_F_* flags, see netif_tun_offload(). */
int bk_tap_set_offload(struct bk_tap *t, unsigned int tun_flags);
/* Carrier on/off (a stalled guest: off, as netback does). */
int bk_tap_set_carrier(struct bk_tap *t, bool on);
int bk_tap_set_mtu(struct bk_tap *t, unsigned int mtu);
int bk_tap_set_mac(struct bk_tap *t, const uint8_t mac[6]);
int bk_tap_get_mac(struct bk_tap *t, uint8_t mac[6]);

/*
 * Ask the core loop to watch queue @q's fd for @events (BK_EV_*); replaces an earlier watch of
 * that queue. The watch is freed with the TAP. bk_tap_watch_events() changes the events (0
 * pauses, e.g. while the guest has no RX slots).
 */
int bk_tap_watch(struct bk_tap *t, unsigned int q, struct bk_loop *loop, unsigned int events,
		 bk_fd_cb cb, void *data);
void bk_tap_watch_events(struct bk_tap *t, unsigned int q, unsigned int events);

/* One frame: the caller's buffers, the virtio_net_hdr first. */
struct bk_tap_pkt {
	const struct iovec *iov;
	unsigned int iovcnt;
	size_t len; /* read: bytes received, header included */
	int err;    /* write: 0, or -errno when the kernel refused this frame */
};

/*
 * Read up to @n frames from queue @q, one syscall each (the TAP character device moves one
 * frame per read; there is no multi-frame call), until the queue is empty. Returns how many
 * were read (0: nothing waiting), or -errno if the first read failed.
 *
 * Only io_uring batches TAP I/O (bench/tapbench: 0.3 us instead of 1.6 us per frame where a
 * syscall costs 1 us): see bk_tap_read_many().
 */
int bk_tap_read_batch(struct bk_tap *t, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n);
/*
 * Up to @n non-blocking reads from queue @q in one io_uring submission (RWF_NOWAIT: an empty
 * queue answers -EAGAIN at once instead of holding the buffer). They run in order, so the
 * frames are in the TAP's order; each packet gets len and err (0, or -EAGAIN where the queue
 * was empty, which can be followed by a frame that arrived meanwhile). Returns how many frames
 * were read, or -EOPNOTSUPP without io_uring (use bk_tap_read_batch()), which is also the
 * answer for every TAP once the kernel refused such a read (older kernels' tun files).
 */
int bk_tap_read_many(struct bk_tap *t, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n);
/*
 * Write up to @n frames to queue @q. A frame the kernel refuses (bad header: -EINVAL) gets
 * its err set and counts as done; the batch stops early only on -EAGAIN. Returns how many
 * frames were done. With io_uring (built in and allowed), a batch of two frames or more is one
 * submission that returns with every frame written (TAP writes complete inline), so the
 * buffers may be reused at once; a full TAP then shows as -EAGAIN in the frames' err.
 */
int bk_tap_write_batch(struct bk_tap *t, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n);
/* Batched writes through io_uring (the default where it exists) or one syscall per frame. */
void bk_tap_set_uring(struct bk_tap *t, bool on);

#endif
