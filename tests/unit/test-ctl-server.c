// SPDX-License-Identifier: MIT
/*
 * The control socket server against a test-only device list: every request, protocol errors,
 * several clients at once, a client that does not read its reply, fragmented requests, the
 * client limit, stale and live sockets, permissions, and no leaked loop objects.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "blanket/ctl.h"
#include "ctl.h"
#include "device.h"
#include "loop.h"
#include "util/list.h"
#include "util/log.h"
#include "check.h"

/* A device as the core would hold it, with canned stats. */
struct fake_dev {
	struct bk_device dev;
	unsigned int nq;
	struct bk_queue_stats *q;
	const char *desc;
	const char *error;
};

static struct list_head devices = LIST_HEAD_INIT(devices);
static struct list_head refused = LIST_HEAD_INIT(refused);
static struct bk_loop *loop;

static int fake_get_stats(struct bk_device *dev, struct bk_queue_stats *qs, unsigned int max)
{
	struct fake_dev *f = container_of(dev, struct fake_dev, dev);

	for (unsigned int i = 0; i < f->nq && i < max; i++)
		qs[i] = f->q[i];
	return (int)f->nq;
}

static int fake_describe(struct bk_device *dev, char *buf, size_t len)
{
	struct fake_dev *f = container_of(dev, struct fake_dev, dev);

	snprintf(buf, len, "%s", f->desc);
	return 0;
}

/* One set of limits for every fake vbd: what the last LIMIT request changed. */
static struct bk_ctl_limit fake_limit = { .burst_ms = 100 };

static int fake_set_limit(struct bk_device *dev, const struct bk_ctl_limit *want,
			  struct bk_ctl_limit *ret_now)
{
	if (want->flags & BK_CTL_LIMIT_IOPS)
		fake_limit.iops = want->iops;
	if (want->flags & BK_CTL_LIMIT_BPS)
		fake_limit.bps = want->bps;
	if (want->flags & BK_CTL_LIMIT_BURST)
		fake_limit.burst_ms = want->burst_ms;
	*ret_now = fake_limit;
	return 0;
}

static const struct bk_backend_ops fake_vbd_ops = {
	.kind = "vbd",
	.log_name = "vbd",
	.get_stats = fake_get_stats,
	.describe = fake_describe,
	.set_limit = fake_set_limit,
};

static const struct bk_backend_ops fake_vif_ops = {
	.kind = "vif",
	.log_name = "vif",
};

static struct list_head *test_devices(void *data)
{
	return &devices;
}

static struct list_head *test_refused(void *data)
{
	return &refused;
}

static int test_device_error(void *data, struct bk_device *dev, char *buf, size_t len)
{
	struct fake_dev *f = container_of(dev, struct fake_dev, dev);

	CHECK(data == &devices);
	if (!f->error)
		return 0;
	snprintf(buf, len, "%s", f->error);
	return 1;
}

static struct fake_dev *add_dev(const struct bk_backend_ops *ops, uint32_t domid, uint32_t devid,
				enum bk_xenbus_state state, unsigned int nq)
{
	struct fake_dev *f = calloc(1, sizeof(*f));

	f->dev.ops = ops;
	f->dev.domid = domid;
	f->dev.devid = devid;
	f->dev.state = state;
	f->dev.fe_state = state;
	f->dev.online = true;
	snprintf(f->dev.name, sizeof(f->dev.name), "%s %u/%u", ops->log_name, domid, devid);
	f->nq = nq;
	f->q = calloc(nq ? nq : 1, sizeof(*f->q));
	for (unsigned int i = 0; i < nq; i++) {
		f->q[i].reqs[BK_REQ_READ] = 1000 * domid + i;
		f->q[i].bytes_read = (1ULL << 40) + devid + i;
		f->q[i].bytes_written = 4096ULL * (i + 1);
		f->q[i].inflight = i;
		f->q[i].lat_hist[BK_LAT_BUCKETS - 1] = 0xabcdef0012345678ULL + i;
	}
	f->desc = "file=/img.raw engine=null";
	list_add_tail(&f->dev.link, &devices);
	return f;
}

static void free_devs(void)
{
	while (!list_empty(&devices)) {
		struct fake_dev *f = list_first_entry(&devices, struct fake_dev, dev.link);

		list_del(&f->dev.link);
		free(f->q);
		free(f);
	}
}

static int client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (strlen(path) >= sizeof(sa.sun_path)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	/* Let the server accept. */
	bk_loop_run_once(loop, 0);
	return fd;
}

static void send_raw(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	CHECK(n == (ssize_t)len);
}

static void send_req(int fd, uint16_t type, const void *payload, uint32_t len)
{
	struct bk_ctl_hdr h;

	bk_ctl_hdr_encode(&h, type, len, 0);
	send_raw(fd, &h, sizeof(h));
	if (len)
		send_raw(fd, payload, len);
}

/*
 * Turn the loop and read until one whole reply is in. Returns 0, or -ECONNRESET if the server
 * closed first. Bounded by loop turns, not by time.
 */
static int recv_reply(int fd, struct bk_ctl_hdr *h, uint8_t **ret_payload)
{
	uint8_t *buf = NULL;
	size_t have = 0, want = sizeof(*h);
	struct timespec start, now;

	*ret_payload = NULL;
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* Bounded by time, not turns: a loaded machine may need many turns for one reply. */
	for (;;) {
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 60)
			break;

		if (have >= sizeof(*h) && want == sizeof(*h)) {
			int r = bk_ctl_hdr_decode(buf, BK_CTL_MAX_REPLY, h);

			CHECK(r == 0);
			want += h->length;
		}
		if (have == want && have >= sizeof(*h)) {
			memmove(buf, buf + sizeof(*h), h->length);
			*ret_payload = buf;
			return 0;
		}
		buf = realloc(buf, want);
		n = recv(fd, buf + have, want - have, MSG_DONTWAIT);
		if (n == 0) {
			free(buf);
			return -ECONNRESET;
		}
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		bk_loop_run_once(loop, 5);
	}
	free(buf);
	return -ETIMEDOUT;
}

/* True once the server has closed @fd (reads EOF). */
static bool server_closed(int fd)
{
	char c;

	for (int turn = 0; turn < 1000; turn++) {
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n > 0)
			return false;
		bk_loop_run_once(loop, 5);
	}
	return false;
}

static int expect_error(int fd, int err, const char *needle)
{
	struct bk_ctl_hdr h;
	struct bk_ctl_error e;
	uint8_t *p = NULL;

	if (recv_reply(fd, &h, &p) < 0) {
		CHECK(!"no error reply");
		return -1;
	}
	CHECK(h.type == BK_CTL_ERROR);
	CHECK(h.status == err);
	CHECK(h.length == sizeof(e));
	memcpy(&e, p, sizeof(e));
	bk_ctl_error_swap(&e);
	CHECK(e.err == err);
	CHECK(e.msg[sizeof(e.msg) - 1] == '\0');
	if (!strstr(e.msg, needle)) {
		fprintf(stderr, "error message '%s' lacks '%s'\n", e.msg, needle);
		bk_test_failures++;
	}
	free(p);
	return 0;
}

static void limit_req(int fd, const char *kind, uint32_t domid, uint32_t devid,
		      const struct bk_ctl_limit *l)
{
	struct bk_ctl_limit_req r = { .domid = domid, .devid = devid, .limit = *l };

	bk_ctl_strpad(r.kind, sizeof(r.kind), kind);
	bk_ctl_limit_req_swap(&r);
	send_req(fd, BK_CTL_REQ_LIMIT, &r, sizeof(r));
}

/* LIMIT: change only the named fields, read back, and every refusal named. */
static void test_limit(int fd)
{
	struct bk_ctl_limit l = { .iops = 300, .bps = 1 << 20, .flags = BK_CTL_LIMIT_IOPS };
	struct bk_ctl_limit got;
	struct bk_ctl_hdr h;
	uint8_t *p = NULL;

	limit_req(fd, "vbd", 5, 51712, &l);
	CHECK(recv_reply(fd, &h, &p) == 0);
	CHECK(h.type == (BK_CTL_REQ_LIMIT | BK_CTL_REPLY) && h.length == sizeof(got));
	if (p) {
		memcpy(&got, p, sizeof(got));
		bk_ctl_limit_swap(&got);
		/* bps was not named: unchanged. */
		CHECK(got.iops == 300 && got.bps == 0 && got.burst_ms == 100 && got.flags == 0);
	}
	free(p);
	p = NULL;
	l = (struct bk_ctl_limit){ 0 };
	limit_req(fd, "", 5, 51712, &l); /* read only, any kind */
	CHECK(recv_reply(fd, &h, &p) == 0 && h.length == sizeof(got));
	if (p) {
		memcpy(&got, p, sizeof(got));
		bk_ctl_limit_swap(&got);
		CHECK(got.iops == 300);
	}
	free(p);
	limit_req(fd, "vbd", 5, 1, &l);
	expect_error(fd, -ENODEV, "no device vbd 5/1");
	limit_req(fd, "vif", 7, 0, &l);
	expect_error(fd, -EOPNOTSUPP, "vif 7/0 has no rate limits");
	l = (struct bk_ctl_limit){ .burst_ms = 0, .flags = BK_CTL_LIMIT_BURST };
	limit_req(fd, "vbd", 5, 51712, &l);
	expect_error(fd, -EINVAL, "burst=0");
	l = (struct bk_ctl_limit){ .iops = 20000000, .flags = BK_CTL_LIMIT_IOPS };
	limit_req(fd, "vbd", 5, 51712, &l);
	expect_error(fd, -EINVAL, "iops=20000000");
	l = (struct bk_ctl_limit){ .bps = 1ULL << 41, .flags = BK_CTL_LIMIT_BPS };
	limit_req(fd, "vbd", 5, 51712, &l);
	expect_error(fd, -EINVAL, "bps=2199023255552");
	l = (struct bk_ctl_limit){ .flags = 0x80 };
	limit_req(fd, "vbd", 5, 51712, &l);
	expect_error(fd, -EINVAL, "unknown LIMIT flags 0x80");
	send_req(fd, BK_CTL_REQ_LIMIT, "abc", 3);
	expect_error(fd, -EINVAL, "LIMIT request needs 40 payload bytes, got 3");
	CHECK(fake_limit.iops == 300 && fake_limit.burst_ms == 100);
}

static void test_version(int fd)
{
	struct bk_ctl_hdr h;
	struct bk_ctl_version v;
	uint8_t *p;

	send_req(fd, BK_CTL_REQ_VERSION, NULL, 0);
	CHECK(recv_reply(fd, &h, &p) == 0);
	CHECK(h.type == (BK_CTL_REQ_VERSION | BK_CTL_REPLY) && h.status == 0);
	CHECK(h.length == sizeof(v));
	memcpy(&v, p, sizeof(v));
	bk_ctl_version_swap(&v);
	CHECK(v.proto_version == BK_CTL_VERSION);
	CHECK(strcmp(v.version, BK_VERSION) == 0);
	CHECK(strcmp(v.platform, "sim") == 0);
	CHECK(v.pid == (uint32_t)getpid());
	free(p);
}

static void test_list(int fd)
{
	struct bk_ctl_hdr h;
	struct bk_ctl_list l;
	struct bk_ctl_device d[4];
	uint8_t *p;

	send_req(fd, BK_CTL_REQ_LIST, NULL, 0);
	CHECK(recv_reply(fd, &h, &p) == 0);
	CHECK(h.type == (BK_CTL_REQ_LIST | BK_CTL_REPLY));
	memcpy(&l, p, sizeof(l));
	bk_ctl_list_swap(&l);
	CHECK(l.nr == 4 && l.elem_size == sizeof(struct bk_ctl_device));
	CHECK(h.length == sizeof(l) + 4 * sizeof(struct bk_ctl_device));
	memcpy(d, p + sizeof(l), sizeof(d));
	for (int i = 0; i < 4; i++)
		bk_ctl_device_swap(&d[i]);
	CHECK(strcmp(d[0].kind, "vbd") == 0 && d[0].domid == 5 && d[0].devid == 51712);
	CHECK(strcmp(d[0].name, "vbd 5/51712") == 0);
	CHECK(d[0].state == BK_XB_CONNECTED && d[0].nr_queues == 2);
	CHECK(d[0].flags == BK_CTL_DEV_ONLINE);
	CHECK(strcmp(d[0].describe, "file=/img.raw engine=null") == 0);
	CHECK(d[1].nr_queues == BK_CTL_MAX_QUEUES); /* 100 reported, capped */
	CHECK(d[2].flags == (BK_CTL_DEV_ONLINE | BK_CTL_DEV_FAILED));
	CHECK(strcmp(d[2].error, "ring-page-order 9 above maximum 4") == 0);
	CHECK(strcmp(d[3].kind, "vif") == 0 && d[3].nr_queues == 0 && d[3].describe[0] == 0);
	free(p);
}

static void test_status(int fd)
{
	struct bk_ctl_hdr h;
	struct bk_ctl_status s;
	uint8_t *p;

	send_req(fd, BK_CTL_REQ_STATUS, NULL, 0);
	CHECK(recv_reply(fd, &h, &p) == 0);
	CHECK(h.type == (BK_CTL_REQ_STATUS | BK_CTL_REPLY) && h.length == sizeof(s));
	memcpy(&s, p, sizeof(s));
	bk_ctl_status_swap(&s);
	CHECK(s.nr_devices == 4);
	CHECK(s.nr_connected == 2);
	CHECK(s.nr_failed == 1);
	CHECK(s.nr_connecting == 1);
	CHECK(s.nr_closing == 0);
	free(p);
}

static void stats_req(int fd, const char *kind, uint32_t domid, uint32_t devid, uint32_t flags)
{
	struct bk_ctl_stats_req r = { .domid = domid, .devid = devid, .flags = flags };

	bk_ctl_strpad(r.kind, sizeof(r.kind), kind);
	bk_ctl_stats_req_swap(&r);
	send_req(fd, BK_CTL_REQ_STATS, &r, sizeof(r));
}

static void test_stats(int fd)
{
	struct fake_dev *f0 = list_first_entry(&devices, struct fake_dev, dev.link);
	struct bk_ctl_hdr h;
	struct bk_ctl_list l;
	struct bk_ctl_dev_stats ds;
	struct bk_queue_stats q;
	size_t off;
	uint8_t *p;

	/* One device. */
	stats_req(fd, "vbd", 5, 51712, 0);
	CHECK(recv_reply(fd, &h, &p) == 0);
	CHECK(h.type == (BK_CTL_REQ_STATS | BK_CTL_REPLY));
	CHECK(h.length == sizeof(l) + sizeof(ds) + 2 * sizeof(q));
	memcpy(&l, p, sizeof(l));
	bk_ctl_list_swap(&l);
	CHECK(l.nr == 1 && l.elem_size == sizeof(ds));
	memcpy(&ds, p + sizeof(l), sizeof(ds));
	bk_ctl_dev_stats_swap(&ds);
	CHECK(ds.domid == 5 && ds.devid == 51712 && ds.nr_queues == 2);
	CHECK(ds.queue_size == sizeof(q) && strcmp(ds.name, "vbd 5/51712") == 0);
	for (unsigned int i = 0; i < 2; i++) {
		memcpy(&q, p + sizeof(l) + sizeof(ds) + i * sizeof(q), sizeof(q));
		bk_ctl_queue_stats_swap(&q);
		CHECK(memcmp(&q, &f0->q[i], sizeof(q)) == 0);
	}
	free(p);

	/* Kind left empty matches any kind. */
	stats_req(fd, "", 5, 51712, 0);
	CHECK(recv_reply(fd, &h, &p) == 0 && h.type == (BK_CTL_REQ_STATS | BK_CTL_REPLY));
	free(p);

	/* All devices: 2 + 64 + 1 + 0 queue records. */
	stats_req(fd, "", 0, 0, BK_CTL_STATS_ALL);
	CHECK(recv_reply(fd, &h, &p) == 0);
	memcpy(&l, p, sizeof(l));
	bk_ctl_list_swap(&l);
	CHECK(l.nr == 4);
	CHECK(h.length == sizeof(l) + 4 * sizeof(ds) + (2 + 64 + 1) * sizeof(q));
	off = sizeof(l);
	for (unsigned int i = 0; i < l.nr && off + sizeof(ds) <= h.length; i++) {
		memcpy(&ds, p + off, sizeof(ds));
		bk_ctl_dev_stats_swap(&ds);
		off += sizeof(ds) + (size_t)ds.nr_queues * ds.queue_size;
		if (i == 1) {
			memcpy(&q, p + off - sizeof(q), sizeof(q));
			bk_ctl_queue_stats_swap(&q);
			CHECK(q.reqs[BK_REQ_READ] == 6000 + 63);
		}
	}
	CHECK(off == h.length);
	free(p);

	/* Errors that keep the connection. */
	stats_req(fd, "vbd", 5, 1, 0);
	expect_error(fd, -ENODEV, "no device vbd 5/1");
	stats_req(fd, "vif", 5, 51712, 0);
	expect_error(fd, -ENODEV, "no device vif 5/51712");
	stats_req(fd, "", 0, 0, 0x80);
	expect_error(fd, -EINVAL, "unknown STATS flags");
	send_req(fd, BK_CTL_REQ_STATS, "abc", 3);
	expect_error(fd, -EINVAL, "needs 24 payload bytes");
	send_req(fd, 77, NULL, 0);
	expect_error(fd, -EOPNOTSUPP, "unknown request type 77");
	test_version(fd);
}

/* Devices the backend refused: listed and counted as failed, no stats. */
static void test_refused_devices(int fd)
{
	struct fake_dev *a = add_dev(&fake_vbd_ops, 8, 51712, BK_XB_CLOSED, 0);
	struct fake_dev *b = add_dev(&fake_vbd_ops, 9, 51712, BK_XB_CLOSED, 0);
	struct bk_ctl_hdr h;
	struct bk_ctl_status st;
	struct bk_ctl_list l;
	struct bk_ctl_device d;
	struct bk_ctl_dev_stats ds;
	uint8_t *p;

	/* Move them to the refused list; only one has an error node. */
	list_del(&a->dev.link);
	list_add_tail(&a->dev.link, &refused);
	list_del(&b->dev.link);
	list_add_tail(&b->dev.link, &refused);
	a->error = "2 /img/missing.raw: No such file or directory";
	a->nq = 3; /* must not be asked for */

	send_req(fd, BK_CTL_REQ_STATUS, NULL, 0);
	CHECK(recv_reply(fd, &h, &p) == 0);
	memcpy(&st, p, sizeof(st));
	bk_ctl_status_swap(&st);
	CHECK(st.nr_devices == 6 && st.nr_failed == 3 && st.nr_connected == 2);
	free(p);

	send_req(fd, BK_CTL_REQ_LIST, NULL, 0);
	CHECK(recv_reply(fd, &h, &p) == 0);
	memcpy(&l, p, sizeof(l));
	bk_ctl_list_swap(&l);
	CHECK(l.nr == 6);
	memcpy(&d, p + sizeof(l) + 4 * sizeof(d), sizeof(d));
	bk_ctl_device_swap(&d);
	CHECK(d.domid == 8 && (d.flags & BK_CTL_DEV_FAILED) && d.nr_queues == 0);
	CHECK(strcmp(d.error, "2 /img/missing.raw: No such file or directory") == 0);
	CHECK(d.describe[0] == '\0');
	memcpy(&d, p + sizeof(l) + 5 * sizeof(d), sizeof(d));
	bk_ctl_device_swap(&d);
	CHECK(d.domid == 9 && strcmp(d.error, "refused by the backend") == 0);
	free(p);

	stats_req(fd, "vbd", 8, 51712, 0);
	CHECK(recv_reply(fd, &h, &p) == 0);
	CHECK(h.type == (BK_CTL_REQ_STATS | BK_CTL_REPLY));
	memcpy(&ds, p + sizeof(l), sizeof(ds));
	bk_ctl_dev_stats_swap(&ds);
	CHECK(ds.domid == 8 && ds.nr_queues == 0);
	free(p);

	list_del(&a->dev.link);
	list_del(&b->dev.link);
	free(a->q);
	free(a);
	free(b->q);
	free(b);
}

/* Header problems: error reply naming the problem, then the server hangs up. */
static void test_bad_headers(const char *path)
{
	struct bk_ctl_hdr h;
	int fd;

	fd = client_connect(path);
	bk_ctl_hdr_encode(&h, BK_CTL_REQ_VERSION, 0, 0);
	((uint8_t *)&h)[4] = 7; /* version 7 */
	send_raw(fd, &h, sizeof(h));
	expect_error(fd, -EPROTONOSUPPORT, "protocol version 7 not supported");
	CHECK(server_closed(fd));
	close(fd);

	fd = client_connect(path);
	send_raw(fd, "GET / HTTP/1.1\r\n\r\n", 18);
	expect_error(fd, -EBADMSG, "bad magic");
	CHECK(server_closed(fd));
	close(fd);

	fd = client_connect(path);
	bk_ctl_hdr_encode(&h, BK_CTL_REQ_STATS, BK_CTL_MAX_REQUEST + 1, 0);
	send_raw(fd, &h, sizeof(h));
	expect_error(fd, -EMSGSIZE, "exceeds");
	CHECK(server_closed(fd));
	close(fd);
}

/* A request dribbled in byte by byte over many loop turns, beside another client. */
static void test_fragmented(const char *path)
{
	struct bk_ctl_stats_req r = { .domid = 5, .devid = 51712 };
	uint8_t msg[sizeof(struct bk_ctl_hdr) + sizeof(r)];
	struct bk_ctl_hdr h;
	uint8_t *p;
	int a = client_connect(path), b = client_connect(path);

	bk_ctl_strpad(r.kind, sizeof(r.kind), "vbd");
	bk_ctl_stats_req_swap(&r);
	bk_ctl_hdr_encode((struct bk_ctl_hdr *)msg, BK_CTL_REQ_STATS, sizeof(r), 0);
	memcpy(msg + sizeof(h), &r, sizeof(r));
	for (size_t i = 0; i < sizeof(msg); i++) {
		send_raw(a, msg + i, 1);
		bk_loop_run_once(loop, 0);
		if (i == 5)
			test_version(b);
	}
	CHECK(recv_reply(a, &h, &p) == 0);
	CHECK(h.type == (BK_CTL_REQ_STATS | BK_CTL_REPLY));
	free(p);
	close(a);
	close(b);
}

/* A client that asks for a big reply and does not read it must not stall anyone. */
static void test_slow_reader(const char *path)
{
	struct bk_ctl_hdr h;
	uint8_t *p;
	int slow, fast;

	for (unsigned int i = 0; i < 100; i++)
		add_dev(&fake_vbd_ops, 100 + i, 768, BK_XB_CONNECTED, 100);
	slow = client_connect(path);
	fast = client_connect(path);
	stats_req(slow, "", 0, 0, BK_CTL_STATS_ALL);
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(loop, 0);
	/* The server is stuck on nothing: another client is served meanwhile. */
	test_version(fast);
	CHECK(recv_reply(slow, &h, &p) == 0);
	CHECK(h.length > (size_t)100 * 64 * sizeof(struct bk_queue_stats));
	free(p);

	/* Past the reply limit: a clear error, not a truncated reply. */
	for (unsigned int i = 0; i < 100; i++)
		add_dev(&fake_vbd_ops, 300 + i, 768, BK_XB_CONNECTED, 100);
	stats_req(slow, "", 0, 0, BK_CTL_STATS_ALL);
	expect_error(slow, -E2BIG, "one device at a time");
	close(slow);
	close(fast);
}

static void test_client_limit(struct bk_ctl *ctl, const char *path)
{
	int fds[BK_CTL_MAX_CLIENTS + 2];
	struct bk_ctl_hdr h;

	for (unsigned int i = 0; i < BK_CTL_MAX_CLIENTS; i++) {
		fds[i] = client_connect(path);
		bk_loop_run_once(loop, 1); /* distinct connect times */
	}
	CHECK(bk_ctl_nr_clients(ctl) == BK_CTL_MAX_CLIENTS);
	/* One more: the longest idle client makes room. */
	fds[BK_CTL_MAX_CLIENTS] = client_connect(path);
	CHECK(server_closed(fds[0]));
	CHECK(bk_ctl_nr_clients(ctl) == BK_CTL_MAX_CLIENTS);
	test_version(fds[BK_CTL_MAX_CLIENTS]);
	test_version(fds[1]);

	/* All of them half-way through a request: a newcomer is refused, nobody is evicted. */
	bk_ctl_hdr_encode(&h, BK_CTL_REQ_VERSION, 0, 0);
	for (unsigned int i = 1; i <= BK_CTL_MAX_CLIENTS; i++)
		send_raw(fds[i], &h, 3);
	for (int i = 0; i < 5; i++)
		bk_loop_run_once(loop, 0);
	fds[BK_CTL_MAX_CLIENTS + 1] = client_connect(path);
	CHECK(server_closed(fds[BK_CTL_MAX_CLIENTS + 1]));
	CHECK(bk_ctl_nr_clients(ctl) == BK_CTL_MAX_CLIENTS);

	/* Stuck clients are dropped after the (short, in this test) stuck timeout. */
	CHECK(server_closed(fds[1]));
	for (int i = 0; i < 200 && bk_ctl_nr_clients(ctl); i++)
		bk_loop_run_once(loop, 5);
	CHECK(bk_ctl_nr_clients(ctl) == 0);
	for (unsigned int i = 0; i <= BK_CTL_MAX_CLIENTS + 1; i++)
		close(fds[i]);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/*
 * Garbage and near-valid requests from many short connections: every reply that comes back is
 * well formed, the server never wedges, and no client is left behind.
 */
static void test_garbage(struct bk_ctl *ctl)
{
	for (int iter = 0; iter < 300; iter++) {
		uint8_t msg[600];
		size_t len = 1 + rnd() % sizeof(msg);
		int sv[2];

		for (size_t i = 0; i < len; i++)
			msg[i] = (uint8_t)rnd();
		if (iter % 3 == 0) {
			/* A valid header with a random type, length and payload. */
			uint32_t plen = rnd() % 3 ? rnd() % 64 : rnd();

			bk_ctl_hdr_encode((struct bk_ctl_hdr *)msg, (uint16_t)(rnd() % 8), plen,
					  (int32_t)rnd());
			if (len < sizeof(struct bk_ctl_hdr))
				len = sizeof(struct bk_ctl_hdr);
		}
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
		CHECK(bk_ctl_add_client(ctl, sv[1]) == 0);
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		send_raw(sv[0], msg, len);
		shutdown(sv[0], SHUT_WR);
		/* Read every reply until the server hangs up. */
		for (int turn = 0; turn < 2000; turn++) {
			struct bk_ctl_hdr h;
			uint8_t *p = NULL;
			int r = recv_reply(sv[0], &h, &p);

			free(p);
			if (r < 0)
				break;
			CHECK(h.type == BK_CTL_ERROR || (h.type & BK_CTL_REPLY));
		}
		close(sv[0]);
	}
	for (int i = 0; i < 100 && bk_ctl_nr_clients(ctl); i++)
		bk_loop_run_once(loop, 5);
	CHECK(bk_ctl_nr_clients(ctl) == 0);
}

static void test_socketpair(struct bk_ctl *ctl)
{
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(bk_ctl_add_client(ctl, sv[1]) == 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	test_version(sv[0]);
	test_list(sv[0]);
	close(sv[0]);
}

int main(void)
{
	char dir[] = "/tmp/test-ctl.XXXXXX", sockdir[64], path[100];
	struct bk_ctl_params p = {
		.platform = "sim",
		.devices = test_devices,
		.device_error = test_device_error,
		.refused = test_refused,
		.data = &devices,
		.stuck_timeout_ms = 3000, /* long enough for a loaded machine in test_slow_reader */
	};
	struct bk_ctl *ctl = NULL, *other = NULL;
	struct fake_dev *failed;
	struct stat st;
	unsigned int base;
	int fd;

	bk_log_set_prefix(0);
	if (!mkdtemp(dir) || bk_loop_new(&loop) < 0)
		return 1;
	base = bk_loop_nr_objects(loop);
	snprintf(sockdir, sizeof(sockdir), "%s/run", dir);
	snprintf(path, sizeof(path), "%s/control", sockdir);

	add_dev(&fake_vbd_ops, 5, 51712, BK_XB_CONNECTED, 2);
	add_dev(&fake_vbd_ops, 6, 51712, BK_XB_CONNECTED, 100);
	failed = add_dev(&fake_vbd_ops, 7, 51728, BK_XB_CLOSED, 1);
	failed->error = "ring-page-order 9 above maximum 4";
	add_dev(&fake_vif_ops, 7, 0, BK_XB_INITWAIT, 0);

	/* A stale socket from a dead daemon is replaced. */
	CHECK(mkdir(sockdir, 0700) == 0);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		memcpy(sa.sun_path, path, strlen(path) + 1);
		CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		close(s);
	}
	CHECK(rmdir(sockdir) < 0); /* the stale socket is there */
	unlink(path);
	CHECK(rmdir(sockdir) == 0);

	p.loop = loop;
	p.path = path;
	CHECK(bk_ctl_new(&p, &ctl) == 0);
	if (!ctl)
		return 1;
	CHECK(stat(sockdir, &st) == 0 && (st.st_mode & 07777) == 0700);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600);

	/* A second server on a live socket refuses. */
	CHECK(bk_ctl_new(&p, &other) == -EADDRINUSE);
	CHECK(other == NULL);

	fd = client_connect(path);
	CHECK(fd >= 0);
	test_version(fd);
	test_list(fd);
	test_status(fd);
	test_stats(fd);
	test_limit(fd);
	test_refused_devices(fd);
	close(fd);
	test_bad_headers(path);
	test_fragmented(path);
	test_socketpair(ctl);
	test_garbage(ctl);
	test_client_limit(ctl, path);
	test_slow_reader(path);

	bk_ctl_free(ctl);
	CHECK(access(path, F_OK) < 0); /* unlinked */
	CHECK(bk_loop_nr_objects(loop) == base);
	bk_ctl_free(NULL);

	/* A path that is not a socket is left alone. */
	close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	CHECK(bk_ctl_new(&p, &other) == -EEXIST);
	unlink(path);
	rmdir(sockdir);
	rmdir(dir);
	free_devs();
	bk_loop_free(loop);
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
