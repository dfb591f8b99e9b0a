// SPDX-License-Identifier: MIT
/*
 * A stand-in blanketd for blanketctl tests: serves the control socket at argv[1] with a fixed
 * device list ("healthy" or "degraded" per argv[2]) until SIGTERM, or 120 s at most.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blanket/ctl.h"
#include "ctl.h"
#include "device.h"
#include "loop.h"
#include "util/list.h"
#include "util/log.h"

struct fake {
	struct bk_device dev;
	unsigned int nq;
	struct bk_queue_stats q[2];
	const char *desc;
	const char *error;
};

static struct list_head devices = LIST_HEAD_INIT(devices);
static struct fake devs[3];
static struct bk_loop *loop;

static int get_stats(struct bk_device *dev, struct bk_queue_stats *qs, unsigned int max)
{
	struct fake *f = container_of(dev, struct fake, dev);

	for (unsigned int i = 0; i < f->nq && i < max; i++)
		qs[i] = f->q[i];
	return (int)f->nq;
}

static int describe(struct bk_device *dev, char *buf, size_t len)
{
	snprintf(buf, len, "%s", container_of(dev, struct fake, dev)->desc);
	return 0;
}

static const struct bk_backend_ops vbd_ops = {
	.kind = "vbd",
	.log_name = "vbd",
	.get_stats = get_stats,
	.describe = describe,
};

static struct list_head *get_devices(void *data)
{
	return &devices;
}

static int dev_error(void *data, struct bk_device *dev, char *buf, size_t len)
{
	struct fake *f = container_of(dev, struct fake, dev);

	if (!f->error)
		return 0;
	snprintf(buf, len, "%s", f->error);
	return 1;
}

static void quit(void *data)
{
	bk_loop_quit(loop);
}

static void add(unsigned int i, uint32_t domid, uint32_t devid, enum bk_xenbus_state st,
		unsigned int nq, const char *desc)
{
	struct fake *f = &devs[i];

	f->dev.ops = &vbd_ops;
	f->dev.domid = domid;
	f->dev.devid = devid;
	f->dev.state = st;
	f->dev.fe_state = st;
	f->dev.online = true;
	snprintf(f->dev.name, sizeof(f->dev.name), "vbd %u/%u", domid, devid);
	f->nq = nq;
	f->desc = desc;
	for (unsigned int q = 0; q < nq; q++) {
		struct bk_queue_stats *s = &f->q[q];

		s->reqs[BK_REQ_READ] = 1000 + q;
		s->reqs[BK_REQ_WRITE] = 500;
		s->reqs[BK_REQ_FLUSH] = 7;
		s->bytes_read = 3ULL << 20;	/* 3 MiB */
		s->bytes_written = 1536 * 1024; /* 1.5 MiB */
		s->inflight = q;
		s->notify_in = 900;
		s->notify_out = 800;
		/* 1000 samples near 100 us, 10 near 5 ms, 1 near 80 ms. */
		s->lat_hist[bk_lat_bucket(100000)] = 1000;
		s->lat_hist[bk_lat_bucket(5000000)] = 10;
		s->lat_hist[bk_lat_bucket(80000000)] = 1;
	}
	list_add_tail(&f->dev.link, &devices);
}

int main(int argc, char **argv)
{
	struct bk_ctl_params p = { .devices = get_devices,
				   .device_error = dev_error,
				   .platform = "sim" };
	struct bk_ctl *ctl;
	struct bk_timer *limit;
	int r;

	if (argc != 3)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	add(0, 5, 51712, BK_XB_CONNECTED, 2,
	    "file=/var/lib/images/g1.raw engine=io_uring queues=2 ring-order=4 indirect=256");
	add(1, 5, 51728, BK_XB_INITWAIT, 0, "dev=/dev/loop0 engine=aio");
	if (strcmp(argv[2], "degraded") == 0) {
		add(2, 9, 268439552, BK_XB_CLOSED, 1,
		    "file=/srv/\"odd\"\tname\xff.img engine=null");
		devs[2].error = "ring-page-order 9 above maximum 4";
	}
	if (bk_loop_new(&loop) < 0)
		return 1;
	p.loop = loop;
	p.path = argv[1];
	r = bk_ctl_new(&p, &ctl);
	if (r < 0)
		return 1;
	/* SIGTERM ends the process (default action); the test removes the socket. */
	bk_loop_add_timer(loop, 120000, 0, quit, NULL, &limit);
	bk_loop_run(loop);
	bk_timer_free(limit);
	bk_ctl_free(ctl);
	bk_loop_free(loop);
	return 0;
}
