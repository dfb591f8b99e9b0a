/* SPDX-License-Identifier: MIT */
/*
 * The front-end (driver) side of the vhost-user protocol (QEMU docs/interop/vhost-user.rst),
 * as far as a block or net driver needs it: connect, negotiate virtio and protocol features,
 * read the device config, hand over the memory table (memfds over SCM_RIGHTS, guest physical
 * address == our address: identity DMA), and set each vring up with its kick and call
 * eventfds. Messages are synchronous, with a receive timeout, and happen only at start and
 * at reconnect; the data path never touches the socket.
 */
#ifndef BK_VHOST_USER_H
#define BK_VHOST_USER_H

#include <stdint.h>

#include "dma.h"
#include "virtqueue.h"

/* Feature bit 30 of GET_FEATURES: the back-end speaks protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_CONFIG 9

struct vhu_conn {
	char name[64];
	int sock;
	uint64_t features;	    /* offered by the back-end */
	uint64_t protocol_features; /* negotiated */
	unsigned int max_queues;    /* GET_QUEUE_NUM, 1 without MQ */
	unsigned int timeout_ms;
};

/*
 * Connect to the back-end at @path and run the first part of the handshake (GET_FEATURES,
 * SET_OWNER, protocol features, GET_QUEUE_NUM). @name names the device in logs. Fails with
 * -ECONNREFUSED / -ENOENT when nobody listens (callers retry), -EPROTO for a back-end that
 * lacks what blanketd needs.
 */
int vhu_connect(const char *name, const char *path, unsigned int timeout_ms, struct vhu_conn *ret);
/* Close the socket (the back-end sees a disconnect and stops its rings). */
void vhu_close(struct vhu_conn *c);
/*
 * The socket became readable between our messages: NULL when that was a spurious wake-up,
 * else why the connection is lost (the back-end closed it, or sent what nobody asked for).
 */
const char *vhu_lost(int sock);

/* GET_CONFIG: @size bytes of device config from @offset (needs protocol feature CONFIG). */
int vhu_get_config(struct vhu_conn *c, uint32_t offset, void *buf, uint32_t size);

/*
 * Finish the handshake: SET_FEATURES @features (the virtio features the driver accepts; bit 30
 * is added), SET_MEM_TABLE with @dma as the only region, then for each of the @n queues
 * SET_VRING_NUM, SET_VRING_BASE 0, SET_VRING_ADDR, SET_VRING_CALL @call_fds[i],
 * SET_VRING_KICK @kick_fds[i] and SET_VRING_ENABLE 1.
 */
int vhu_start(struct vhu_conn *c, uint64_t features, const struct vio_dma *dma,
	      struct virtq *const *vqs, const int *kick_fds, const int *call_fds, unsigned int n);

#endif
