// SPDX-License-Identifier: MIT
/*
 * The null engine, for benchmarks: every I/O succeeds without touching the store (reads leave
 * buffers untouched). Like a real engine it never completes inside queue(): the loop hook
 * wakes the loop through an eventfd, whose callback reports the batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "engine-internal.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"

struct null_engine {
	struct bk_engine base;
	char name[64];
	unsigned int depth;
	unsigned int inflight;
	int efd;
	struct bk_watch *watch;
	struct bk_hook *hook;
	bool hook_on;
	bool kicked;		    /* eventfd written, callback not yet run */
	struct bk_io_fifo queued;   /* not yet kicked */
	struct bk_io_fifo finished; /* kicked: report at the next eventfd callback */
	unsigned int dispatching;
	bool close_pending;
};

static inline struct null_engine *to_null(struct bk_engine *e)
{
	return container_of(e, struct null_engine, base);
}

static void null_free(struct null_engine *n)
{
	if (n->inflight)
		log_err("%s: null engine closed with %u I/O in flight", n->name, n->inflight);
	bk_hook_free(n->hook);
	bk_watch_free(n->watch);
	if (n->efd >= 0)
		close(n->efd);
	free(n);
}

static void null_event(void *data, int fd, unsigned int events)
{
	struct null_engine *n = data;
	struct bk_io_fifo batch = bk_io_fifo_take(&n->finished);
	struct bk_io *io;
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("%s: reading eventfd: %m", n->name);
	n->kicked = false;
	n->dispatching++;
	while (!n->close_pending && (io = bk_io_fifo_pop(&batch))) {
		n->inflight--;
		io->done(io, io->op == BK_IO_READ || io->op == BK_IO_WRITE ? (int)io->len : 0);
	}
	if (--n->dispatching == 0 && n->close_pending)
		null_free(n);
}

static void null_kick(struct bk_engine *e)
{
	struct null_engine *n = to_null(e);
	struct bk_io *io;
	uint64_t one = 1;

	while ((io = bk_io_fifo_pop(&n->queued)))
		bk_io_fifo_push(&n->finished, io);
	if (n->finished.head && !n->kicked) {
		if (write(n->efd, &one, sizeof(one)) < 0)
			log_err("%s: writing eventfd: %m", n->name);
		else
			n->kicked = true;
	}
	if (n->hook_on) {
		n->hook_on = false;
		bk_hook_enable(n->hook, false);
	}
}

static void null_hook(void *data)
{
	null_kick(data);
}

static int null_queue(struct bk_engine *e, struct bk_io *io)
{
	struct null_engine *n = to_null(e);
	int r;

	if (n->inflight >= n->depth)
		return -EAGAIN;
	r = bk_io_check(io);
	if (r < 0)
		return r;
	n->inflight++;
	bk_io_fifo_push(&n->queued, io);
	if (!n->hook_on) {
		n->hook_on = true;
		bk_hook_enable(n->hook, true);
	}
	return 0;
}

static int null_register_buffers(struct bk_engine *e, const struct iovec *iov, unsigned int nr)
{
	return 0;
}

static unsigned int null_inflight(const struct bk_engine *e)
{
	return container_of(e, struct null_engine, base)->inflight;
}

static void null_close(struct bk_engine *e)
{
	struct null_engine *n;

	if (!e)
		return;
	n = to_null(e);
	if (n->dispatching)
		n->close_pending = true;
	else
		null_free(n);
}

static int null_open(struct bk_loop *loop, struct bk_store *store, const struct bk_engine_params *p,
		     struct bk_engine **ret)
{
	const char *name = p && p->name ? p->name : "null";
	struct null_engine *n;
	int r;

	if (!p || !p->depth) {
		log_err("%s: null engine needs a depth", name);
		return -EINVAL;
	}
	if (p->options && *p->options) {
		log_err("%s: null engine takes no options (got '%s')", name, p->options);
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->base.ops = &bk_engine_null_ops;
	n->base.store = store;
	n->depth = p->depth;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->efd < 0) {
		r = log_err_errno(neg_errno(), "%s: eventfd: %m", name);
		goto fail;
	}
	r = bk_loop_add_fd(loop, n->efd, BK_EV_READ, null_event, n, &n->watch);
	if (r < 0)
		goto fail;
	r = bk_loop_add_hook(loop, null_hook, n, &n->hook);
	if (r < 0)
		goto fail;
	*ret = &n->base;
	return 0;
fail:
	null_free(n);
	return r;
}

const struct bk_engine_ops bk_engine_null_ops = {
	.name = "null",
	.open = null_open,
	.close = null_close,
	.register_buffers = null_register_buffers,
	.queue = null_queue,
	.kick = null_kick,
	.inflight = null_inflight,
};
