// SPDX-License-Identifier: MIT
/*
 * The Linux AIO engine (libaio), for kernels or policies without io_uring. One AIO context per
 * device queue with its iocbs preallocated to the queue depth; queue() fills an iocb, a loop
 * hook submits the batch with one io_submit(), and an eventfd set on every iocb wakes the loop
 * to reap completions. Flush is IO_CMD_FDSYNC where the kernel has it (4.18+), else the
 * blocking-work thread (or always with the option "fdsync=thread"); discard always goes to
 * that thread (AIO has no such command).
 *
 * Kernel AIO is only asynchronous with O_DIRECT: on a buffered store io_submit() does the copy
 * itself, so the loop waits for it. Prefer io_uring for buffered stores.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include <libaio.h>

#include "engine-internal.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"

#define AIO_MAX_DEPTH 4096u

struct aio_engine {
	struct bk_engine base;
	struct bk_loop *loop;
	char name[64];
	io_context_t ctx;
	int efd;
	struct bk_watch *watch;
	struct bk_hook *hook;
	bool hook_on;
	unsigned int depth;
	unsigned int inflight; /* accepted by queue(), not yet reported */
	struct iocb *iocbs;    /* depth of them */
	struct iocb **free_iocbs;
	unsigned int nfree;
	struct iocb **pending; /* prepared, not yet submitted */
	unsigned int npending;
	struct io_event *events;
	struct bk_io_fifo failed; /* refused by io_submit: reported from the eventfd callback */
	bool fdsync_missing;	  /* the kernel refused IO_CMD_FDSYNC once */
	struct bk_worker *worker;
	unsigned int dispatching;
	bool close_pending;
	struct bk_ratelimit rl;
};

static inline struct aio_engine *to_aio(struct bk_engine *e)
{
	return container_of(e, struct aio_engine, base);
}

static void aio_free(struct aio_engine *a);

static void hook_enable(struct aio_engine *a, bool on)
{
	if (a->hook_on != on) {
		a->hook_on = on;
		bk_hook_enable(a->hook, on);
	}
}

static void wake(struct aio_engine *a)
{
	uint64_t one = 1;

	if (write(a->efd, &one, sizeof(one)) < 0)
		bk_log_dev_rl(&a->rl, BK_LOG_ERR, a->name, "writing eventfd: %m");
}

static void complete(struct aio_engine *a, struct bk_io *io, int res)
{
	a->inflight--;
	io->done(io, res);
}

static void worker_done(void *data, struct bk_io *io, int res)
{
	complete(data, io, res);
}

static int to_worker(struct aio_engine *a, struct bk_io *io)
{
	if (!a->worker) {
		int r = bk_worker_new(a->loop, a->base.store, a->name, worker_done, a, &a->worker);

		if (r < 0)
			return r;
	}
	bk_worker_submit(a->worker, io);
	return 0;
}

/* Prepare an iocb for @io, resuming a read/write after engine_priv[0] bytes. */
static void prep_iocb(struct aio_engine *a, struct bk_io *io)
{
	struct iocb *cb = a->free_iocbs[--a->nfree];
	int fd = a->base.store->fd;
	uint64_t done = io->engine_priv[0];

	switch (io->op) {
	case BK_IO_READ:
	case BK_IO_WRITE:
		if (done == 0 && io->iovcnt > 1) {
			if (io->op == BK_IO_READ)
				io_prep_preadv(cb, fd, io->iov, io->iovcnt, (long long)io->offset);
			else
				io_prep_pwritev(cb, fd, io->iov, io->iovcnt, (long long)io->offset);
		} else {
			unsigned int idx = 0;
			size_t off = 0;
			void *base;
			size_t len;

			bk_io_resume_point(io, done, &idx, &off);
			base = (char *)io->iov[idx].iov_base + off;
			len = io->iov[idx].iov_len - off;
			if (io->op == BK_IO_READ)
				io_prep_pread(cb, fd, base, len, (long long)(io->offset + done));
			else
				io_prep_pwrite(cb, fd, base, len, (long long)(io->offset + done));
		}
		break;
	default: /* BK_IO_FLUSH: discards never get here */
		io_prep_fdsync(cb, fd);
		break;
	}
	cb->data = io;
	io_set_eventfd(cb, a->efd);
	a->pending[a->npending++] = cb;
	hook_enable(a, true);
}

static void release_iocb(struct aio_engine *a, struct iocb *cb)
{
	a->free_iocbs[a->nfree++] = cb;
}

static void handle_event(struct aio_engine *a, struct iocb *cb, long res)
{
	struct bk_io *io = cb->data;
	uint64_t done;

	release_iocb(a, cb);
	if (res < 0 || (io->op != BK_IO_READ && io->op != BK_IO_WRITE)) {
		complete(a, io, res < 0 ? (int)res : 0);
		return;
	}
	done = io->engine_priv[0] + (uint64_t)res;
	if (done >= io->len) {
		complete(a, io, (int)io->len);
		return;
	}
	if (res == 0) {
		bk_log_dev_rl(&a->rl, BK_LOG_ERR, a->name,
			      "%s at %llu: no progress after %llu of %llu bytes",
			      io->op == BK_IO_READ ? "read" : "write",
			      (unsigned long long)io->offset, (unsigned long long)done,
			      (unsigned long long)io->len);
		complete(a, io, -EIO);
		return;
	}
	io->engine_priv[0] = done;
	prep_iocb(a, io);
}

static void aio_event(void *data, int fd, unsigned int events)
{
	struct aio_engine *a = data;
	struct bk_io_fifo failed = bk_io_fifo_take(&a->failed);
	struct timespec zero = { 0, 0 };
	struct bk_io *io;
	uint64_t cnt;
	int n;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		bk_log_dev_rl(&a->rl, BK_LOG_WARNING, a->name, "reading eventfd: %m");
	a->dispatching++;
	while (!a->close_pending && (io = bk_io_fifo_pop(&failed)))
		complete(a, io, (int)(int64_t)io->engine_priv[0]);
	while (!a->close_pending) {
		n = io_getevents(a->ctx, 0, (long)a->depth, a->events, &zero);
		if (n <= 0) {
			if (n < 0 && n != -EINTR)
				bk_log_dev_rl(&a->rl, BK_LOG_ERR, a->name, "io_getevents: %s",
					      strerror(-n));
			break;
		}
		for (int i = 0; i < n && !a->close_pending; i++)
			handle_event(a, a->events[i].obj, (long)a->events[i].res);
	}
	if (--a->dispatching == 0 && a->close_pending)
		aio_free(a);
}

static void aio_kick(struct bk_engine *e)
{
	struct aio_engine *a = to_aio(e);
	bool woke = false;

	while (a->npending) {
		int r = io_submit(a->ctx, (long)a->npending, a->pending);
		struct bk_io *io;

		if (r > 0) {
			a->npending -= (unsigned int)r;
			memmove(a->pending, a->pending + r, a->npending * sizeof(*a->pending));
			continue;
		}
		if (r == -EAGAIN || r == -EINTR || r == 0)
			break; /* retried next turn: a completion will wake the loop */
		/* The first iocb was refused. */
		io = a->pending[0]->data;
		release_iocb(a, a->pending[0]);
		a->npending--;
		memmove(a->pending, a->pending + 1, a->npending * sizeof(*a->pending));
		if (io->op == BK_IO_FLUSH && r == -EINVAL && !a->fdsync_missing) {
			bk_log_dev(BK_LOG_NOTICE, a->name,
				   "kernel AIO has no fdsync here, flushing from a thread");
			a->fdsync_missing = true;
		}
		if (io->op == BK_IO_FLUSH && a->fdsync_missing) {
			r = to_worker(a, io);
			if (r == 0)
				continue;
		}
		io->engine_priv[0] = (uint64_t)(int64_t)r;
		bk_io_fifo_push(&a->failed, io);
		if (!woke) {
			wake(a);
			woke = true;
		}
	}
	hook_enable(a, a->npending > 0);
}

static void aio_hook(void *data)
{
	aio_kick(data);
}

static int aio_queue(struct bk_engine *e, struct bk_io *io)
{
	struct aio_engine *a = to_aio(e);
	int r;

	if (a->inflight >= a->depth)
		return -EAGAIN;
	r = bk_io_check(io);
	if (r < 0)
		return r;
	io->engine_priv[0] = 0;
	if (io->op == BK_IO_DISCARD || (io->op == BK_IO_FLUSH && a->fdsync_missing)) {
		r = to_worker(a, io);
		if (r < 0)
			return r;
		a->inflight++;
		return 0;
	}
	a->inflight++;
	prep_iocb(a, io);
	return 0;
}

static unsigned int aio_inflight(const struct bk_engine *e)
{
	return container_of(e, struct aio_engine, base)->inflight;
}

static void aio_free(struct aio_engine *a)
{
	if (a->inflight)
		log_err("%s: aio engine closed with %u I/O in flight", a->name, a->inflight);
	bk_worker_free(a->worker);
	bk_hook_free(a->hook);
	bk_watch_free(a->watch);
	if (a->ctx)
		io_destroy(a->ctx);
	if (a->efd >= 0)
		close(a->efd);
	free(a->iocbs);
	free(a->free_iocbs);
	free(a->pending);
	free(a->events);
	free(a);
}

static void aio_close(struct bk_engine *e)
{
	struct aio_engine *a;

	if (!e)
		return;
	a = to_aio(e);
	if (a->dispatching)
		a->close_pending = true;
	else
		aio_free(a);
}

static int aio_open(struct bk_loop *loop, struct bk_store *store, const struct bk_engine_params *p,
		    struct bk_engine **ret)
{
	const char *name = p && p->name ? p->name : "aio";
	struct aio_engine *a;
	int r;

	if (!store || !p || !p->depth || p->depth > AIO_MAX_DEPTH) {
		log_err("%s: aio needs a store and a depth of 1..%u", name, AIO_MAX_DEPTH);
		return -EINVAL;
	}
	/* "fdsync=thread" forces the flush fallback (kernels whose fdsync misbehaves; tests). */
	if (p->options && *p->options && strcmp(p->options, "fdsync=thread") != 0) {
		log_err("%s: aio: bad option '%s' (known: fdsync=thread)", name, p->options);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->base.ops = &bk_engine_aio_ops;
	a->base.store = store;
	a->loop = loop;
	a->depth = p->depth;
	a->efd = -1;
	a->rl = (struct bk_ratelimit)BK_RATELIMIT_INIT(5000, 10);
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->fdsync_missing = p->options && *p->options;

	a->iocbs = calloc(p->depth, sizeof(*a->iocbs));
	a->free_iocbs = calloc(p->depth, sizeof(*a->free_iocbs));
	a->pending = calloc(p->depth, sizeof(*a->pending));
	a->events = calloc(p->depth, sizeof(*a->events));
	if (!a->iocbs || !a->free_iocbs || !a->pending || !a->events) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned int i = 0; i < p->depth; i++)
		a->free_iocbs[a->nfree++] = &a->iocbs[i];

	r = io_setup((int)p->depth, &a->ctx);
	if (r < 0) {
		a->ctx = 0;
		log_err_errno(r, "%s: io_setup(%u): %m", name, p->depth);
		goto fail;
	}
	a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->efd < 0) {
		r = log_err_errno(neg_errno(), "%s: eventfd: %m", name);
		goto fail;
	}
	r = bk_loop_add_fd(loop, a->efd, BK_EV_READ, aio_event, a, &a->watch);
	if (r < 0)
		goto fail;
	r = bk_loop_add_hook(loop, aio_hook, a, &a->hook);
	if (r < 0)
		goto fail;
	if (!store->direct)
		bk_log_dev(BK_LOG_NOTICE, name,
			   "aio on buffered %s submits synchronously; io_uring is better here",
			   store->path);
	*ret = &a->base;
	return 0;
fail:
	aio_free(a);
	return r;
}

const struct bk_engine_ops bk_engine_aio_ops = {
	.name = "aio",
	.open = aio_open,
	.close = aio_close,
	.queue = aio_queue,
	.kick = aio_kick,
	.inflight = aio_inflight,
};
