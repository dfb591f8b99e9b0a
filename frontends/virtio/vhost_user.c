// SPDX-License-Identifier: MIT
/* The vhost-user front-end: see vhost_user.h. Message layouts from the public specification. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macros.h"
#include "vhost_user.h"

enum vhu_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_GET_CONFIG = 24,
};

#define VHU_VERSION 0x1
#define VHU_FLAG_REPLY (1u << 2)
#define VHU_FLAG_NEED_REPLY (1u << 3)
#define VHU_MAX_CONFIG 256u

/* The protocol features blanketd uses when offered. */
#define VHU_WANTED_PROTOCOL                                                             \
	(VIO_BIT(VHOST_USER_PROTOCOL_F_MQ) | VIO_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
	 VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIG))

struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhu_state {
	uint32_t index;
	uint32_t num;
};

struct vhu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhu_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vhu_mem {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_region regions[1]; /* blanketd sends one region */
};

struct vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHU_MAX_CONFIG];
};

struct vhu_msg {
	struct vhu_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_state state;
		struct vhu_addr addr;
		struct vhu_mem mem;
		struct vhu_config config;
	};
} __attribute__((packed));

static const char *req_name(uint32_t req)
{
	switch (req) {
	case VHOST_USER_GET_FEATURES:
		return "GET_FEATURES";
	case VHOST_USER_SET_FEATURES:
		return "SET_FEATURES";
	case VHOST_USER_SET_OWNER:
		return "SET_OWNER";
	case VHOST_USER_SET_MEM_TABLE:
		return "SET_MEM_TABLE";
	case VHOST_USER_SET_VRING_NUM:
		return "SET_VRING_NUM";
	case VHOST_USER_SET_VRING_ADDR:
		return "SET_VRING_ADDR";
	case VHOST_USER_SET_VRING_BASE:
		return "SET_VRING_BASE";
	case VHOST_USER_SET_VRING_KICK:
		return "SET_VRING_KICK";
	case VHOST_USER_SET_VRING_CALL:
		return "SET_VRING_CALL";
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return "GET_PROTOCOL_FEATURES";
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		return "SET_PROTOCOL_FEATURES";
	case VHOST_USER_GET_QUEUE_NUM:
		return "GET_QUEUE_NUM";
	case VHOST_USER_SET_VRING_ENABLE:
		return "SET_VRING_ENABLE";
	case VHOST_USER_GET_CONFIG:
		return "GET_CONFIG";
	}
	return "?";
}

/* Send @m (header + @m->hdr.size bytes of payload) with @fd attached when >= 0. */
static int send_msg(struct vhu_conn *c, struct vhu_msg *m, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { m, sizeof(m->hdr) + m->hdr.size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	m->hdr.flags |= VHU_VERSION;
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	do
		n = sendmsg(c->sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return bk_log_errno(BK_LOG_WARNING, neg_errno(), "%s: vhost-user %s: %m", c->name,
				    req_name(m->hdr.request));
	if ((size_t)n != iov.iov_len)
		return bk_log_errno(BK_LOG_WARNING, -EIO, "%s: vhost-user %s: short send", c->name,
				    req_name(m->hdr.request));
	return 0;
}

static int recv_all(struct vhu_conn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(c->sock, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : neg_errno();
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read the reply to @req into @m; its payload must be @size bytes (0: up to sizeof). */
static int recv_reply(struct vhu_conn *c, uint32_t req, struct vhu_msg *m, uint32_t size)
{
	int r = recv_all(c, &m->hdr, sizeof(m->hdr));

	if (r < 0)
		return bk_log_errno(BK_LOG_WARNING, r, "%s: vhost-user %s: no reply: %m", c->name,
				    req_name(req));
	if (m->hdr.request != req || !(m->hdr.flags & VHU_FLAG_REPLY) ||
	    m->hdr.size > sizeof(*m) - sizeof(m->hdr) || (size && m->hdr.size != size))
		return bk_log_errno(BK_LOG_WARNING, -EPROTO,
				    "%s: vhost-user %s: bad reply (request %u, flags %#x, size %u)",
				    c->name, req_name(req), m->hdr.request, m->hdr.flags,
				    m->hdr.size);
	r = recv_all(c, (uint8_t *)m + sizeof(m->hdr), m->hdr.size);
	if (r < 0)
		return bk_log_errno(BK_LOG_WARNING, r, "%s: vhost-user %s: reply cut: %m", c->name,
				    req_name(req));
	return 0;
}

static int get_u64(struct vhu_conn *c, uint32_t req, uint64_t *ret)
{
	struct vhu_msg m = { .hdr = { .request = req } };
	int r = send_msg(c, &m, -1);

	if (r < 0)
		return r;
	r = recv_reply(c, req, &m, sizeof(uint64_t));
	if (r < 0)
		return r;
	*ret = m.u64;
	return 0;
}

/*
 * Send @m; with REPLY_ACK negotiated and @ack set, wait for the back-end's verdict, so an
 * error is seen at the message that caused it.
 */
static int send_acked(struct vhu_conn *c, struct vhu_msg *m, int fd, bool ack)
{
	uint32_t req = m->hdr.request;
	int r;

	ack = ack && (c->protocol_features & VIO_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	if (ack)
		m->hdr.flags |= VHU_FLAG_NEED_REPLY;
	r = send_msg(c, m, fd);
	if (r < 0 || !ack)
		return r;
	r = recv_reply(c, req, m, sizeof(uint64_t));
	if (r < 0)
		return r;
	if (m->u64)
		return bk_log_errno(BK_LOG_WARNING, -EIO, "%s: vhost-user %s refused (%llu)",
				    c->name, req_name(req), (unsigned long long)m->u64);
	return 0;
}

static int set_u64(struct vhu_conn *c, uint32_t req, uint64_t v, bool ack)
{
	struct vhu_msg m = { .hdr = { .request = req, .size = sizeof(uint64_t) }, .u64 = v };

	return send_acked(c, &m, -1, ack);
}

static int set_state(struct vhu_conn *c, uint32_t req, uint32_t index, uint32_t num)
{
	struct vhu_msg m = {
		.hdr = { .request = req, .size = sizeof(struct vhu_state) },
		.state = { .index = index, .num = num },
	};

	return send_acked(c, &m, -1, false);
}

static int set_fd(struct vhu_conn *c, uint32_t req, uint32_t index, int fd)
{
	struct vhu_msg m = { .hdr = { .request = req, .size = sizeof(uint64_t) }, .u64 = index };

	return send_acked(c, &m, fd, false);
}

void vhu_close(struct vhu_conn *c)
{
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
}

int vhu_connect(const char *name, const char *path, unsigned int timeout_ms, struct vhu_conn *ret)
{
	struct vhu_conn c = { .sock = -1, .timeout_ms = timeout_ms, .max_queues = 1 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	uint64_t proto = 0, qnum = 1;
	int r;

	snprintf(c.name, sizeof(c.name), "%s", name);
	if (strlen(path) >= sizeof(sa.sun_path))
		return bk_log_errno(BK_LOG_ERR, -ENAMETOOLONG, "%s: socket path too long: %s", name,
				    path);
	memcpy(sa.sun_path, path, strlen(path));
	c.sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.sock < 0)
		return log_err_errno(neg_errno(), "%s: socket: %m", name);
	if (setsockopt(c.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c.sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		r = log_err_errno(neg_errno(), "%s: socket timeouts: %m", name);
		goto fail;
	}
	if (connect(c.sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* Callers retry this one quietly while a back-end restarts. */
		r = neg_errno();
		goto fail;
	}
	r = get_u64(&c, VHOST_USER_GET_FEATURES, &c.features);
	if (r < 0)
		goto fail;
	if (!(c.features & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) ||
	    !(c.features & VIO_BIT(VIRTIO_F_VERSION_1))) {
		r = bk_log_errno(BK_LOG_ERR, -EPROTO,
				 "%s: vhost-user back-end at %s offers features %#llx: needs "
				 "PROTOCOL_FEATURES (30) and VERSION_1 (32)",
				 name, path, (unsigned long long)c.features);
		goto fail;
	}
	{
		struct vhu_msg own = { .hdr = { .request = VHOST_USER_SET_OWNER } };

		r = send_msg(&c, &own, -1);
		if (r < 0)
			goto fail;
	}
	r = get_u64(&c, VHOST_USER_GET_PROTOCOL_FEATURES, &proto);
	if (r < 0)
		goto fail;
	c.protocol_features = proto & VHU_WANTED_PROTOCOL;
	r = set_u64(&c, VHOST_USER_SET_PROTOCOL_FEATURES, c.protocol_features, false);
	if (r < 0)
		goto fail;
	if (c.protocol_features & VIO_BIT(VHOST_USER_PROTOCOL_F_MQ)) {
		r = get_u64(&c, VHOST_USER_GET_QUEUE_NUM, &qnum);
		if (r < 0)
			goto fail;
		c.max_queues = qnum ? (unsigned int)BK_MIN(qnum, 1024u) : 1;
	}
	log_debug("%s: vhost-user %s: features %#llx, protocol %#llx, %u queues", name, path,
		  (unsigned long long)c.features, (unsigned long long)c.protocol_features,
		  c.max_queues);
	*ret = c;
	return 0;
fail:
	close(c.sock);
	return r;
}

const char *vhu_lost(int sock)
{
	char c;
	ssize_t n = recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return NULL;
	/* Nothing is expected from the back-end between messages we send: EOF or a stray. */
	return n == 0 ? "the back-end closed the connection" : "unexpected data or error";
}

int vhu_get_config(struct vhu_conn *c, uint32_t offset, void *buf, uint32_t size)
{
	struct vhu_msg m = {
		.hdr = { .request = VHOST_USER_GET_CONFIG, .size = 12 + size },
		.config = { .offset = offset, .size = size },
	};
	int r;

	if (!(c->protocol_features & VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIG)))
		return bk_log_errno(BK_LOG_ERR, -EOPNOTSUPP,
				    "%s: vhost-user back-end has no CONFIG protocol feature",
				    c->name);
	if (size > VHU_MAX_CONFIG)
		return -EINVAL;
	r = send_msg(c, &m, -1);
	if (r < 0)
		return r;
	r = recv_reply(c, VHOST_USER_GET_CONFIG, &m, 12 + size);
	if (r < 0)
		return r;
	if (m.config.size != size)
		return bk_log_errno(BK_LOG_ERR, -EPROTO, "%s: GET_CONFIG answered %u bytes of %u",
				    c->name, m.config.size, size);
	memcpy(buf, m.config.region, size);
	return 0;
}

int vhu_start(struct vhu_conn *c, uint64_t features, const struct vio_dma *dma,
	      struct virtq *const *vqs, const int *kick_fds, const int *call_fds, unsigned int n)
{
	struct vhu_msg m = {
		.hdr = { .request = VHOST_USER_SET_MEM_TABLE, .size = sizeof(struct vhu_mem) },
		.mem = { .nregions = 1 },
	};
	int r;

	r = set_u64(c, VHOST_USER_SET_FEATURES, features | VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES),
		    false);
	if (r < 0)
		return r;
	/* Identity DMA: the back-end's "guest physical" address is our virtual address. */
	m.mem.regions[0] = (struct vhu_region){
		.guest_phys_addr = (uint64_t)(uintptr_t)dma->base,
		.memory_size = dma->size,
		.userspace_addr = (uint64_t)(uintptr_t)dma->base,
		.mmap_offset = 0,
	};
	r = send_acked(c, &m, dma->fd, true);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < n; i++) {
		const struct virtq *vq = vqs[i];
		struct vhu_msg a = {
			.hdr = { .request = VHOST_USER_SET_VRING_ADDR,
				 .size = sizeof(struct vhu_addr) },
			.addr = { .index = vq->index,
				  .desc = virtq_desc_addr(vq),
				  .used = virtq_used_addr(vq),
				  .avail = virtq_avail_addr(vq) },
		};

		r = set_state(c, VHOST_USER_SET_VRING_NUM, vq->index, vq->size);
		if (r >= 0)
			r = set_state(c, VHOST_USER_SET_VRING_BASE, vq->index, 0);
		if (r >= 0)
			r = send_acked(c, &a, -1, false);
		/* CALL before KICK: a back-end starts the ring when it gets the kick fd. */
		if (r >= 0)
			r = set_fd(c, VHOST_USER_SET_VRING_CALL, vq->index, call_fds[i]);
		if (r >= 0)
			r = set_fd(c, VHOST_USER_SET_VRING_KICK, vq->index, kick_fds[i]);
		if (r >= 0) {
			struct vhu_msg e = {
				.hdr = { .request = VHOST_USER_SET_VRING_ENABLE,
					 .size = sizeof(struct vhu_state) },
				.state = { .index = vq->index, .num = 1 },
			};

			/* Acked: once the last ring is enabled, the back-end is ready. */
			r = send_acked(c, &e, -1, i + 1 == n);
		}
		if (r < 0)
			return r;
	}
	return 0;
}
