// SPDX-License-Identifier: MIT
/* The control socket server (see ctl.h and include/blanket/ctl.h for the protocol). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "blanket/ctl.h"
#include "ctl.h"
#include "device.h"
#include "loop.h"
#include "util/list.h"
#include "util/log.h"
#include "util/macros.h"

struct ctl_client {
	struct list_head link;
	struct bk_ctl *ctl;
	int fd;
	struct bk_watch *watch;
	uint8_t in[sizeof(struct bk_ctl_hdr) + BK_CTL_MAX_REQUEST];
	size_t in_len;
	struct bk_ctl_buf out; /* the pending reply */
	size_t out_off;
	bool close_after;   /* protocol error: close once the error reply is sent */
	double busy_since;  /* loop time of the last progress on a request or reply; <0 idle */
	double last_active; /* loop time of the last complete request */
};

struct bk_ctl {
	struct bk_loop *loop;
	char *path;
	char platform[16];
	int listen_fd;
	struct bk_watch *listen_watch;
	struct list_head clients;
	unsigned int nr_clients;
	struct bk_timer *sweep; /* drops clients stuck mid-request */
	double stuck_s;
	uint64_t start_ns;
	struct list_head *(*devices)(void *data);
	int (*device_error)(void *data, struct bk_device *dev, char *buf, size_t len);
	struct list_head *(*refused)(void *data);
	void (*lock)(void *data, bool on);
	void *data;
	struct bk_queue_stats *scratch; /* BK_CTL_MAX_QUEUES records for get_stats */
};

static void client_free(struct ctl_client *c)
{
	if (!c)
		return;
	list_del(&c->link);
	c->ctl->nr_clients--;
	bk_watch_free(c->watch);
	close(c->fd);
	bk_ctl_buf_release(&c->out);
	free(c);
}

/* Start a reply: header placeholder, filled by reply_finish(). */
static int reply_begin(struct ctl_client *c)
{
	int err = 0;

	c->out.len = 0;
	c->out_off = 0;
	c->out.max = BK_CTL_MAX_REPLY + sizeof(struct bk_ctl_hdr);
	return bk_ctl_buf_append(&c->out, NULL, sizeof(struct bk_ctl_hdr), &err) ? 0 : err;
}

static void reply_finish(struct ctl_client *c, uint16_t type)
{
	bk_ctl_hdr_encode((struct bk_ctl_hdr *)c->out.data, type,
			  (uint32_t)(c->out.len - sizeof(struct bk_ctl_hdr)), 0);
}

static void reply_error(struct ctl_client *c, int err, const char *fmt, ...) _printf_(3, 4);

static void reply_error(struct ctl_client *c, int err, const char *fmt, ...)
{
	struct bk_ctl_error e = { .err = err };
	int r = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	bk_ctl_strpad(e.msg, sizeof(e.msg), e.msg);
	log_debug("control: error reply: %s", e.msg);
	bk_ctl_error_swap(&e);
	c->out.len = 0;
	c->out_off = 0;
	c->out.max = BK_CTL_MAX_REPLY + sizeof(struct bk_ctl_hdr);
	if (!bk_ctl_buf_append(&c->out, NULL, sizeof(struct bk_ctl_hdr), &r) ||
	    !bk_ctl_buf_append(&c->out, &e, sizeof(e), &r)) {
		c->out.len = 0;
		c->close_after = true;
		return;
	}
	bk_ctl_hdr_encode((struct bk_ctl_hdr *)c->out.data, BK_CTL_ERROR, sizeof(e), err);
}

static uint64_t uptime_ms(const struct bk_ctl *ctl)
{
	return (bk_now_ns() - ctl->start_ns) / 1000000ULL;
}

/* Pass 0: the live devices; pass 1: the devices the backend refused (may be none). */
static struct list_head *ctl_list(struct bk_ctl *ctl, int pass)
{
	if (pass == 0)
		return ctl->devices(ctl->data);
	return ctl->refused ? ctl->refused(ctl->data) : NULL;
}

/* Visit every device; @pass is 1 for refused ones. */
#define for_each_ctl_device(ctl, dev, pass, head)         \
	for (pass = 0; pass < 2; pass++)                  \
		if ((head = ctl_list(ctl, pass)) != NULL) \
			list_for_each_entry (dev, head, link)

static const char *dev_kind(const struct bk_device *dev)
{
	return dev->ops && dev->ops->kind ? dev->ops->kind : "?";
}

/* Flags and, for a failed device, the error text. */
static uint32_t device_flags(struct bk_ctl *ctl, struct bk_device *dev, bool refused, char *err,
			     size_t len)
{
	uint32_t flags = 0;

	err[0] = '\0';
	if (dev->online)
		flags |= BK_CTL_DEV_ONLINE;
	if (dev->shutting_down)
		flags |= BK_CTL_DEV_SHUTTING_DOWN;
	if ((refused || dev->state == BK_XB_CLOSING || dev->state == BK_XB_CLOSED) &&
	    ctl->device_error && ctl->device_error(ctl->data, dev, err, len) > 0)
		flags |= BK_CTL_DEV_FAILED;
	if (refused && !(flags & BK_CTL_DEV_FAILED)) {
		snprintf(err, len, "refused by the backend");
		flags |= BK_CTL_DEV_FAILED;
	}
	return flags;
}

static int do_version(struct ctl_client *c)
{
	struct bk_ctl_version v = {
		.proto_version = BK_CTL_VERSION,
		.pid = (uint32_t)getpid(),
		.uptime_ms = uptime_ms(c->ctl),
	};
	int err = 0;

	bk_ctl_strpad(v.version, sizeof(v.version), BK_VERSION);
	bk_ctl_strpad(v.platform, sizeof(v.platform), c->ctl->platform);
	bk_ctl_version_swap(&v);
	return bk_ctl_buf_append(&c->out, &v, sizeof(v), &err) ? 0 : err;
}

void bk_ctl_get_status(struct bk_ctl *ctl, struct bk_ctl_status *ret)
{
	struct bk_ctl_status s = { .pid = (uint32_t)getpid(), .uptime_ms = uptime_ms(ctl) };
	struct list_head *head;
	struct bk_device *dev;
	char err_text[128];
	int pass;

	for_each_ctl_device(ctl, dev, pass, head)
	{
		uint32_t flags = device_flags(ctl, dev, pass, err_text, sizeof(err_text));

		s.nr_devices++;
		if (flags & BK_CTL_DEV_FAILED)
			s.nr_failed++;
		else if (dev->state == BK_XB_CONNECTED)
			s.nr_connected++;
		else if (dev->state == BK_XB_CLOSING || dev->state == BK_XB_CLOSED)
			s.nr_closing++;
		else
			s.nr_connecting++;
	}
	*ret = s;
}

static int do_status(struct ctl_client *c)
{
	struct bk_ctl_status s;
	int err = 0;

	bk_ctl_get_status(c->ctl, &s);
	bk_ctl_status_swap(&s);
	return bk_ctl_buf_append(&c->out, &s, sizeof(s), &err) ? 0 : err;
}

static unsigned int device_queues(struct bk_ctl *ctl, struct bk_device *dev, bool refused)
{
	int n;

	/* A refused device has no backend state to ask. */
	if (refused || !dev->ops || !dev->ops->get_stats)
		return 0;
	memset(ctl->scratch, 0, sizeof(*ctl->scratch) * BK_CTL_MAX_QUEUES);
	n = dev->ops->get_stats(dev, ctl->scratch, BK_CTL_MAX_QUEUES);
	if (n < 0) {
		dev_debug(dev, "get_stats failed: %d", n);
		return 0;
	}
	return BK_MIN((unsigned int)n, BK_CTL_MAX_QUEUES);
}

static int do_list(struct ctl_client *c)
{
	struct bk_ctl *ctl = c->ctl;
	struct bk_ctl_list *head;
	struct list_head *lh;
	struct bk_device *dev;
	size_t head_off = c->out.len;
	uint32_t nr = 0;
	int err = 0, pass;

	if (!bk_ctl_buf_append(&c->out, NULL, sizeof(*head), &err))
		return err;
	for_each_ctl_device(ctl, dev, pass, lh)
	{
		struct bk_ctl_device *d = bk_ctl_buf_append(&c->out, NULL, sizeof(*d), &err);

		if (!d)
			return err;
		bk_ctl_strpad(d->kind, sizeof(d->kind), dev_kind(dev));
		bk_ctl_strpad(d->name, sizeof(d->name), dev->name);
		d->domid = dev->domid;
		d->devid = dev->devid;
		d->state = dev->state;
		d->fe_state = dev->fe_state;
		d->flags = device_flags(ctl, dev, pass, d->error, sizeof(d->error));
		bk_ctl_strpad(d->error, sizeof(d->error), d->error);
		d->nr_queues = device_queues(ctl, dev, pass);
		if (!pass && dev->ops && dev->ops->describe &&
		    dev->ops->describe(dev, d->describe, sizeof(d->describe)) < 0)
			d->describe[0] = '\0';
		if (!pass && dev->loop && dev->thread >= 0) {
			/* Which I/O thread serves it (blanketd.conf io-threads). */
			size_t l = strnlen(d->describe, sizeof(d->describe));

			snprintf(d->describe + l, sizeof(d->describe) - l, "%sio-thread=%d",
				 l ? " " : "", dev->thread);
		}
		bk_ctl_strpad(d->describe, sizeof(d->describe), d->describe);
		bk_ctl_device_swap(d);
		nr++;
	}
	head = (struct bk_ctl_list *)(c->out.data + head_off);
	head->nr = nr;
	head->elem_size = sizeof(struct bk_ctl_device);
	bk_ctl_list_swap(head);
	return 0;
}

static int append_dev_stats(struct ctl_client *c, struct bk_device *dev, bool refused)
{
	struct bk_ctl *ctl = c->ctl;
	struct bk_ctl_dev_stats *d;
	struct bk_queue_stats *q;
	unsigned int nq = device_queues(ctl, dev, refused);
	int err = 0;

	d = bk_ctl_buf_append(&c->out, NULL, sizeof(*d), &err);
	if (!d)
		return err;
	bk_ctl_strpad(d->kind, sizeof(d->kind), dev_kind(dev));
	bk_ctl_strpad(d->name, sizeof(d->name), dev->name);
	d->domid = dev->domid;
	d->devid = dev->devid;
	d->nr_queues = nq;
	d->queue_size = sizeof(struct bk_queue_stats);
	bk_ctl_dev_stats_swap(d);
	if (!nq)
		return 0;
	q = bk_ctl_buf_append(&c->out, ctl->scratch, nq * sizeof(*q), &err);
	if (!q)
		return err;
	for (unsigned int i = 0; i < nq; i++)
		bk_ctl_queue_stats_swap(&q[i]);
	return 0;
}

static int do_stats(struct ctl_client *c, const uint8_t *payload, uint32_t len)
{
	struct bk_ctl *ctl = c->ctl;
	struct bk_ctl_stats_req req;
	struct bk_ctl_list *head;
	struct list_head *lh;
	struct bk_device *dev;
	size_t head_off;
	uint32_t nr = 0;
	int err = 0, r, pass;

	if (len < sizeof(req)) {
		reply_error(c, -EINVAL, "STATS request needs %zu payload bytes, got %u",
			    sizeof(req), len);
		return 1;
	}
	memcpy(&req, payload, sizeof(req));
	bk_ctl_stats_req_swap(&req);
	req.kind[sizeof(req.kind) - 1] = '\0';
	if (req.flags & ~BK_CTL_STATS_ALL) {
		reply_error(c, -EINVAL, "unknown STATS flags 0x%x", req.flags);
		return 1;
	}

	head_off = c->out.len;
	if (!bk_ctl_buf_append(&c->out, NULL, sizeof(*head), &err))
		return err;
	for_each_ctl_device(ctl, dev, pass, lh)
	{
		if (!(req.flags & BK_CTL_STATS_ALL) &&
		    (dev->domid != req.domid || dev->devid != req.devid ||
		     (req.kind[0] && strcmp(req.kind, dev_kind(dev)) != 0)))
			continue;
		r = append_dev_stats(c, dev, pass);
		if (r < 0)
			return r;
		nr++;
	}
	if (!nr && !(req.flags & BK_CTL_STATS_ALL)) {
		reply_error(c, -ENODEV, "no device %s%s%u/%u", req.kind, req.kind[0] ? " " : "",
			    req.domid, req.devid);
		return 1;
	}
	head = (struct bk_ctl_list *)(c->out.data + head_off);
	head->nr = nr;
	head->elem_size = sizeof(struct bk_ctl_dev_stats);
	bk_ctl_list_swap(head);
	return 0;
}

static int do_limit(struct ctl_client *c, const uint8_t *payload, uint32_t len)
{
	struct bk_ctl_limit_req req;
	struct bk_ctl_limit now;
	struct bk_device *dev, *found = NULL;
	char lim[96];
	int err = 0, r;

	if (len < sizeof(req)) {
		reply_error(c, -EINVAL, "LIMIT request needs %zu payload bytes, got %u",
			    sizeof(req), len);
		return 1;
	}
	memcpy(&req, payload, sizeof(req));
	bk_ctl_limit_req_swap(&req);
	req.kind[sizeof(req.kind) - 1] = '\0';
	if (req.limit.flags &
	    ~(uint32_t)(BK_CTL_LIMIT_IOPS | BK_CTL_LIMIT_BPS | BK_CTL_LIMIT_BURST)) {
		reply_error(c, -EINVAL, "unknown LIMIT flags 0x%x", req.limit.flags);
		return 1;
	}
	/* The daemon checks what blanketctl checked: another client may send anything. */
	if ((req.limit.flags & BK_CTL_LIMIT_IOPS) && req.limit.iops > BK_CTL_LIMIT_IOPS_MAX) {
		reply_error(c, -EINVAL, "iops=%llu: more than %llu",
			    (unsigned long long)req.limit.iops, BK_CTL_LIMIT_IOPS_MAX);
		return 1;
	}
	if ((req.limit.flags & BK_CTL_LIMIT_BPS) && req.limit.bps > BK_CTL_LIMIT_BPS_MAX) {
		reply_error(c, -EINVAL, "bps=%llu: more than %llu",
			    (unsigned long long)req.limit.bps, BK_CTL_LIMIT_BPS_MAX);
		return 1;
	}
	if ((req.limit.flags & BK_CTL_LIMIT_BURST) &&
	    (req.limit.burst_ms < BK_CTL_LIMIT_BURST_MIN ||
	     req.limit.burst_ms > BK_CTL_LIMIT_BURST_MAX)) {
		reply_error(c, -EINVAL, "burst=%u: not between %u and %u ms", req.limit.burst_ms,
			    BK_CTL_LIMIT_BURST_MIN, BK_CTL_LIMIT_BURST_MAX);
		return 1;
	}
	list_for_each_entry (dev, c->ctl->devices(c->ctl->data), link)
		if (dev->domid == req.domid && dev->devid == req.devid &&
		    (!req.kind[0] || !strcmp(req.kind, dev_kind(dev))))
			found = dev;
	if (!found) {
		reply_error(c, -ENODEV, "no device %s%s%u/%u", req.kind, req.kind[0] ? " " : "",
			    req.domid, req.devid);
		return 1;
	}
	if (!found->ops || !found->ops->set_limit) {
		reply_error(c, -EOPNOTSUPP, "%s has no rate limits", found->name);
		return 1;
	}
	r = found->ops->set_limit(found, &req.limit, &now);
	if (r < 0) {
		reply_error(c, r, "%s: cannot change its rate limits: %s", found->name,
			    strerror(-r));
		return 1;
	}
	if (req.limit.flags) {
		bk_ctl_format_limit(&now, lim, sizeof(lim));
		log_info("control: %s: rate limit set to %s", found->name, lim);
	}
	now.flags = 0;
	bk_ctl_limit_swap(&now);
	return bk_ctl_buf_append(&c->out, &now, sizeof(now), &err) ? 0 : err;
}

/* Build the reply to the complete request in c->in. */
/* The drivers of L0 devices, by kind ("virtio-blk", later "virtio-net"). */
#define L0_SOURCES 4
static struct {
	const char *kind;
	bk_ctl_l0_fill_fn fill;
} l0_sources[L0_SOURCES];

void bk_ctl_set_l0_source(const char *kind, bk_ctl_l0_fill_fn fill)
{
	unsigned int i;

	for (i = 0; i < L0_SOURCES && l0_sources[i].kind; i++)
		if (strcmp(l0_sources[i].kind, kind) == 0)
			break;
	assert(i < L0_SOURCES);
	l0_sources[i].kind = kind;
	l0_sources[i].fill = fill;
}

static int do_l0(struct ctl_client *c)
{
	struct bk_ctl_list *head;
	size_t head_off = c->out.len;
	uint32_t nr = 0;
	int err = 0;

	if (!bk_ctl_buf_append(&c->out, NULL, sizeof(*head), &err))
		return err;
	for (unsigned int i = 0; i < L0_SOURCES && l0_sources[i].kind; i++) {
		int r = l0_sources[i].fill(&c->out);

		if (r < 0)
			return r;
		nr += (uint32_t)r;
	}
	head = (struct bk_ctl_list *)(c->out.data + head_off);
	head->nr = nr;
	head->elem_size = sizeof(struct bk_ctl_l0dev);
	bk_ctl_list_swap(head);
	return 0;
}

static void handle_request_locked(struct ctl_client *c, const struct bk_ctl_hdr *h);

/* The devices hold still (their I/O threads wait) for the length of one request. */
static void handle_request(struct ctl_client *c, const struct bk_ctl_hdr *h)
{
	struct bk_ctl *ctl = c->ctl;

	if (ctl->lock)
		ctl->lock(ctl->data, true);
	handle_request_locked(c, h);
	if (ctl->lock)
		ctl->lock(ctl->data, false);
}

static void handle_request_locked(struct ctl_client *c, const struct bk_ctl_hdr *h)
{
	const uint8_t *payload = c->in + sizeof(*h);
	int r;

	r = reply_begin(c);
	if (r < 0)
		goto fail;
	switch (h->type) {
	case BK_CTL_REQ_VERSION:
		r = do_version(c);
		break;
	case BK_CTL_REQ_STATUS:
		r = do_status(c);
		break;
	case BK_CTL_REQ_LIST:
		r = do_list(c);
		break;
	case BK_CTL_REQ_STATS:
		r = do_stats(c, payload, h->length);
		break;
	case BK_CTL_REQ_LIMIT:
		r = do_limit(c, payload, h->length);
		break;
	case BK_CTL_REQ_L0:
		r = do_l0(c);
		break;
	default:
		reply_error(c, -EOPNOTSUPP, "unknown request type %u", h->type);
		return;
	}
	if (r > 0) /* already answered with an error */
		return;
	if (r == 0) {
		reply_finish(c, (uint16_t)(h->type | BK_CTL_REPLY));
		return;
	}
fail:
	if (r == -E2BIG)
		reply_error(c, r, "reply larger than %u bytes; ask for one device at a time",
			    BK_CTL_MAX_REPLY);
	else
		reply_error(c, r, "request failed: %s", strerror(-r));
}

/* Send what is pending; returns -errno if the client must go. */
static int client_flush(struct ctl_client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return neg_errno();
		}
		c->out_off += (size_t)n;
		c->busy_since = bk_loop_now(c->ctl->loop); /* progress: not stuck */
	}
	return 0;
}

static bool reply_pending(const struct ctl_client *c)
{
	return c->out_off < c->out.len;
}

/* Read until a whole request is buffered (1), the socket is drained (0), or EOF/error (<0). */
static int client_read(struct ctl_client *c, struct bk_ctl_hdr *h)
{
	for (;;) {
		size_t want = sizeof(*h);
		ssize_t n;
		int r;

		if (c->in_len >= sizeof(*h)) {
			r = bk_ctl_hdr_decode(c->in, BK_CTL_MAX_REQUEST, h);
			if (r < 0) {
				c->close_after = true;
				if (r == -EBADMSG)
					reply_error(c, r, "bad magic 0x%08x: not a blanketd client",
						    h->magic);
				else if (r == -EPROTONOSUPPORT)
					reply_error(c, r,
						    "protocol version %u not supported (blanketd "
						    "speaks version %u)",
						    h->version, BK_CTL_VERSION);
				else
					reply_error(c, r, "request payload of %u bytes exceeds %u",
						    h->length, BK_CTL_MAX_REQUEST);
				return 1;
			}
			want += h->length;
			if (c->in_len == want)
				return 1;
		}
		n = recv(c->fd, c->in + c->in_len, want - c->in_len, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return neg_errno();
		}
		c->in_len += (size_t)n;
		c->busy_since = bk_loop_now(c->ctl->loop);
	}
}

static void client_cb(void *data, int fd, unsigned int events)
{
	struct ctl_client *c = data;
	struct bk_ctl_hdr h;
	int r = 0;

	if (events & BK_EV_WRITE) {
		r = client_flush(c);
		if (r < 0)
			goto drop;
	}
	/* One request at a time: read the next only once the reply has gone. */
	while (!reply_pending(c)) {
		if (c->close_after)
			goto drop;
		r = client_read(c, &h);
		if (r < 0)
			goto drop;
		if (r == 0)
			break;
		if (!c->close_after)
			handle_request(c, &h);
		c->in_len = 0;
		c->last_active = bk_loop_now(c->ctl->loop);
		r = client_flush(c);
		if (r < 0)
			goto drop;
	}
	if (c->close_after && !reply_pending(c))
		goto drop;
	if (reply_pending(c) || c->in_len) {
		if (c->busy_since < 0)
			c->busy_since = bk_loop_now(c->ctl->loop);
	} else {
		c->busy_since = -1;
	}
	bk_watch_set_events(c->watch, reply_pending(c) ? BK_EV_WRITE : BK_EV_READ);
	return;
drop:
	if (r < 0 && r != -ECONNRESET && r != -EPIPE)
		log_debug("control: client %d: %s", fd, strerror(-r));
	client_free(c);
}

/* The client idle (between requests) for the longest time, or NULL. */
static struct ctl_client *oldest_idle(struct bk_ctl *ctl)
{
	struct ctl_client *c, *best = NULL;

	list_for_each_entry (c, &ctl->clients, link)
		if (c->busy_since < 0 && (!best || c->last_active < best->last_active))
			best = c;
	return best;
}

int bk_ctl_add_client(struct bk_ctl *ctl, int fd)
{
	struct ctl_client *c;
	int r, fl;

	if (ctl->nr_clients >= BK_CTL_MAX_CLIENTS) {
		/* Make room by closing the longest idle client (it can reconnect). */
		c = oldest_idle(ctl);
		if (!c) {
			log_warn("control: %u clients busy, refusing one more", BK_CTL_MAX_CLIENTS);
			close(fd);
			return -EMFILE;
		}
		log_debug("control: %u clients, closing the longest idle one", BK_CTL_MAX_CLIENTS);
		client_free(c);
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = neg_errno();
		close(fd);
		return r;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->ctl = ctl;
	c->fd = fd;
	c->busy_since = -1;
	c->last_active = bk_loop_now(ctl->loop);
	r = bk_loop_add_fd(ctl->loop, fd, BK_EV_READ, client_cb, c, &c->watch);
	if (r < 0) {
		close(fd);
		free(c);
		return r;
	}
	list_add_tail(&c->link, &ctl->clients);
	ctl->nr_clients++;
	return 0;
}

static void listen_cb(void *data, int fd, unsigned int events)
{
	struct bk_ctl *ctl = data;

	/* Bounded: at most a batch per turn, so a connect storm cannot starve the loop. */
	for (unsigned int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control: accept: %m");
			return;
		}
		bk_ctl_add_client(ctl, cfd);
	}
}

/* Create the directory (0700) if missing; an existing one is left as the admin made it. */
static int make_parent_dir(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	const char *dir;

	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_err_errno(neg_errno(), "control: cannot create %s: %m", dir);
	return 0;
}

/* Remove a socket left by a dead daemon; refuse if one still answers. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : log_err_errno(neg_errno(), "control: %s: %m", path);
	if (!S_ISSOCK(st.st_mode)) {
		log_err("control: %s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return neg_errno();
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN) {
		log_err("control: another blanketd is listening on %s", path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return log_err_errno(neg_errno(), "control: cannot remove stale %s: %m", path);
	return 0;
}

static int ctl_listen(struct bk_ctl *ctl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	int r;

	if (strlen(ctl->path) >= sizeof(sa.sun_path)) {
		log_err("control: socket path too long: %s", ctl->path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, ctl->path, strlen(ctl->path));
	r = make_parent_dir(ctl->path);
	if (r < 0)
		return r;
	r = clear_stale(ctl->path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_err_errno(neg_errno(), "control: socket: %m");
	if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0)
		return log_err_errno(neg_errno(), "control: bind %s: %m", ctl->path);
	if (chmod(ctl->path, 0600) < 0 || listen(fd, 16) < 0) {
		r = log_err_errno(neg_errno(), "control: %s: %m", ctl->path);
		unlink(ctl->path);
		return r;
	}
	r = bk_loop_add_fd(ctl->loop, fd, BK_EV_READ, listen_cb, ctl, &ctl->listen_watch);
	if (r < 0) {
		unlink(ctl->path);
		return r;
	}
	ctl->listen_fd = TAKE_FD(fd);
	return 0;
}

/* A client that made no progress on a request or reply for too long is dropped. */
static void sweep_cb(void *data)
{
	struct bk_ctl *ctl = data;
	struct ctl_client *c, *n;
	double now = bk_loop_now(ctl->loop);

	list_for_each_entry_safe (c, n, &ctl->clients, link) {
		if (c->busy_since >= 0 && now - c->busy_since > ctl->stuck_s) {
			log_debug("control: client %d stuck for %.0f s, closing", c->fd,
				  now - c->busy_since);
			client_free(c);
		}
	}
}

int bk_ctl_new(const struct bk_ctl_params *p, struct bk_ctl **ret)
{
	struct bk_ctl *ctl;
	int r;

	if (!p->loop || !p->devices)
		return -EINVAL;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->loop = p->loop;
	ctl->listen_fd = -1;
	list_init(&ctl->clients);
	ctl->start_ns = bk_now_ns();
	ctl->devices = p->devices;
	ctl->device_error = p->device_error;
	ctl->refused = p->refused;
	ctl->lock = p->lock;
	ctl->data = p->data;
	bk_ctl_strpad(ctl->platform, sizeof(ctl->platform), p->platform ? p->platform : "");
	ctl->scratch = calloc(BK_CTL_MAX_QUEUES, sizeof(*ctl->scratch));
	if (!ctl->scratch) {
		r = -ENOMEM;
		goto fail;
	}
	{
		unsigned int ms = p->stuck_timeout_ms ? p->stuck_timeout_ms : BK_CTL_STUCK_MS;
		unsigned int every = BK_MAX(ms / 4, 1U);

		ctl->stuck_s = ms / 1000.0;
		r = bk_loop_add_timer(ctl->loop, every, every, sweep_cb, ctl, &ctl->sweep);
		if (r < 0)
			goto fail;
	}
	if (p->path) {
		ctl->path = strdup(p->path);
		if (!ctl->path) {
			r = -ENOMEM;
			goto fail;
		}
		r = ctl_listen(ctl);
		if (r < 0) {
			free(ctl->path);
			ctl->path = NULL;
			goto fail;
		}
		log_debug("control: listening on %s", ctl->path);
	}
	*ret = ctl;
	return 0;
fail:
	bk_ctl_free(ctl);
	return r;
}

void bk_ctl_free(struct bk_ctl *ctl)
{
	if (!ctl)
		return;
	while (!list_empty(&ctl->clients))
		client_free(list_first_entry(&ctl->clients, struct ctl_client, link));
	bk_watch_free(ctl->listen_watch);
	bk_timer_free(ctl->sweep);
	if (ctl->listen_fd >= 0) {
		close(ctl->listen_fd);
		unlink(ctl->path);
	}
	free(ctl->path);
	free(ctl->scratch);
	free(ctl);
}

unsigned int bk_ctl_nr_clients(const struct bk_ctl *ctl)
{
	return ctl->nr_clients;
}
