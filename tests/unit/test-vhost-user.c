// SPDX-License-Identifier: MIT
/*
 * The vhost-user front-end against scripted back-ends (a thread on the other end of a unix
 * socket): the messages of a full handshake in order with their payloads (SET_OWNER without
 * one, the memory table with the memfd attached and identity addresses, CALL before KICK with
 * an fd each), and back-ends that lack PROTOCOL_FEATURES, refuse the memory table, answer
 * with the wrong request, or never answer (timeout): each a clean error, never a hang.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "util/log.h"
#include "virtio/vhost_user.h"

enum script {
	GOOD,
	NO_PROTOCOL_FEATURES,
	REFUSE_MEM_TABLE,
	WRONG_REPLY,
	SILENT,
};

struct backend {
	enum script script;
	int lfd;
	char path[108];
	pthread_t thread;
	/* What the back-end saw. */
	uint32_t reqs[64];
	unsigned int nreqs;
	int fds_seen;
	bool owner_empty;
	uint64_t mem_gpa, mem_uaddr, mem_size;
	uint64_t features_set;
};

struct hdr {
	uint32_t request, flags, size;
} __attribute__((packed));

static int recv_msg(int fd, struct hdr *h, uint8_t *payload, size_t max, int *ret_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(fd, &mh, 0);

	*ret_fd = -1;
	if (n != sizeof(*h))
		return -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_type == SCM_RIGHTS)
			memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
	if (h->size > max || (h->size && recv(fd, payload, h->size, MSG_WAITALL) != h->size))
		return -1;
	return 0;
}

static void reply(int fd, uint32_t req, const void *payload, uint32_t size)
{
	uint8_t buf[512];
	struct hdr h = { req, 0x1 | 0x4, size };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), payload, size);
	if (write(fd, buf, sizeof(h) + size) < 0)
		perror("backend write");
}

static void *backend_main(void *data)
{
	struct backend *b = data;
	int fd = accept(b->lfd, NULL, NULL);
	uint8_t payload[512];
	struct hdr h;
	int rfd;

	while (fd >= 0 && recv_msg(fd, &h, payload, sizeof(payload), &rfd) == 0) {
		uint64_t v = 0;

		if (b->nreqs < 64)
			b->reqs[b->nreqs++] = h.request;
		if (rfd >= 0) {
			b->fds_seen++;
			close(rfd);
		}
		if (b->script == SILENT)
			continue;
		switch (h.request) {
		case 1: /* GET_FEATURES */
			v = (1ull << 32) | (1ull << 29) | (1ull << 28);
			if (b->script != NO_PROTOCOL_FEATURES)
				v |= 1ull << 30;
			reply(fd, b->script == WRONG_REPLY ? 15 : 1, &v, 8);
			break;
		case 2:
			memcpy(&b->features_set, payload, 8);
			break;
		case 3:
			b->owner_empty = h.size == 0;
			break;
		case 5: /* SET_MEM_TABLE: nregions, padding, then one region */
			memcpy(&b->mem_gpa, payload + 8, 8);
			memcpy(&b->mem_size, payload + 16, 8);
			memcpy(&b->mem_uaddr, payload + 24, 8);
			v = b->script == REFUSE_MEM_TABLE;
			if (h.flags & 0x8)
				reply(fd, 5, &v, 8);
			break;
		case 15: /* GET_PROTOCOL_FEATURES: MQ, REPLY_ACK, CONFIG */
			v = 1 | 8 | (1 << 9);
			reply(fd, 15, &v, 8);
			break;
		case 17:
			v = 2;
			reply(fd, 17, &v, 8);
			break;
		case 18:
			if (h.flags & 0x8)
				reply(fd, 18, &v, 8);
			break;
		case 24: { /* GET_CONFIG: echo with a recognisable capacity */
			uint64_t cap = 12345;

			memcpy(payload + 12, &cap, 8);
			reply(fd, 24, payload, h.size);
			break;
		}
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int backend_start(struct backend *b, enum script s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static unsigned int n;

	memset(b, 0, sizeof(*b));
	b->script = s;
	snprintf(b->path, sizeof(b->path), "/tmp/bk-vhu-test.%d.%u", getpid(), n++);
	memcpy(sa.sun_path, b->path, strlen(b->path) + 1);
	unlink(b->path);
	b->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b->lfd < 0 || bind(b->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(b->lfd, 1) < 0)
		return -errno;
	return pthread_create(&b->thread, NULL, backend_main, b) ? -EAGAIN : 0;
}

static void backend_stop(struct backend *b)
{
	pthread_join(b->thread, NULL);
	close(b->lfd);
	unlink(b->path);
}

static void test_good(void)
{
	static const uint32_t want[] = { 1, 3, 15, 16, 17, 24, 2, 5, 8, 10, 9, 13, 12, 18 };
	struct backend b;
	struct vhu_conn c;
	struct vio_dma *d = NULL;
	struct virtq vq;
	struct virtq *vqs[1] = { &vq };
	uint8_t cfg[60] = { 0 };
	uint64_t cap;
	int kick = dup(0), call = dup(0);

	CHECK(backend_start(&b, GOOD) == 0);
	CHECK(vhu_connect("test vhu", b.path, 2000, &c) == 0);
	CHECK(c.max_queues == 2 && (c.features & (1ull << 30)));
	CHECK(vhu_get_config(&c, 0, cfg, sizeof(cfg)) == 0);
	memcpy(&cap, cfg, 8);
	CHECK(cap == 12345);
	CHECK(vio_dma_new("test vhu", 8, VIO_DMA_IDENTITY, &d) == 0);
	if (d) {
		CHECK(virtq_init(&vq, "test vhu q0", 0, 64, d, true, false) == 0);
		CHECK(vhu_start(&c, (1ull << 32) | (1ull << 29), d, vqs, &kick, &call, 1) == 0);
		virtq_fini(&vq);
	}
	vhu_close(&c);
	backend_stop(&b);
	CHECK(b.nreqs == sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < b.nreqs && i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(b.reqs[i] == want[i]);
	CHECK(b.owner_empty);
	CHECK(b.fds_seen == 3); /* the memfd, the call fd, the kick fd */
	CHECK(d && b.mem_gpa == (uint64_t)(uintptr_t)d->base && b.mem_uaddr == b.mem_gpa &&
	      b.mem_size == d->size);
	CHECK(b.features_set == ((1ull << 32) | (1ull << 29) | (1ull << 30)));
	vio_dma_free(d);
	close(kick);
	close(call);
}

static void test_bad(enum script s, int want_connect, int want_start)
{
	struct backend b;
	struct vhu_conn c = { .sock = -1 };
	struct vio_dma *d = NULL;
	int r;

	CHECK(backend_start(&b, s) == 0);
	r = vhu_connect("test vhu bad", b.path, 300, &c);
	CHECK(r == want_connect);
	if (r == 0) {
		CHECK(vio_dma_new("test vhu", 1, VIO_DMA_IDENTITY, &d) == 0);
		if (d)
			CHECK(vhu_start(&c, 1ull << 32, d, NULL, NULL, NULL, 0) == want_start);
		vio_dma_free(d);
		vhu_close(&c);
	}
	backend_stop(&b);
}

int main(void)
{
	unsigned int fds = bk_test_count_fds();

	bk_log_set_level(BK_LOG_WARNING);
	test_good();
	test_bad(NO_PROTOCOL_FEATURES, -EPROTO, 0);
	test_bad(WRONG_REPLY, -EPROTO, 0);
	test_bad(SILENT, -ETIMEDOUT, 0);
	test_bad(REFUSE_MEM_TABLE, 0, -EIO);
	CHECK(vhu_connect("test vhu none", "/nonexistent/x.sock", 300, &(struct vhu_conn){ 0 }) ==
	      -ENOENT);
	CHECK(bk_test_count_fds() == fds);
	return bk_test_exit();
}
