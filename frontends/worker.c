// SPDX-License-Identifier: MIT
/*
 * The blocking-work thread of one engine instance. The loop thread appends I/Os to a FIFO under
 * a mutex; the thread runs each with a blocking system call, appends it to a done FIFO and
 * bumps an eventfd; the loop's eventfd callback reports the results. I/Os are linked through
 * engine_priv[1] and the result travels in engine_priv[0], so nothing is allocated per I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#include "engine-internal.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"

struct bk_worker {
	struct bk_loop *loop;
	struct bk_store *store;
	bk_worker_done_fn done;
	void *data;
	char name[64];
	int efd;
	struct bk_watch *watch;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;		  /* under lock */
	struct bk_io_fifo todo;	  /* under lock */
	struct bk_io_fifo done_q; /* under lock */
	unsigned int pending;	  /* loop thread only: submitted, not yet reported */
};

static int run_rw(struct bk_store *store, struct bk_io *io)
{
	uint64_t done = 0;

	while (done < io->len) {
		unsigned int idx;
		size_t off;
		ssize_t n;

		if (!bk_io_resume_point(io, done, &idx, &off))
			return -EIO;
		if (io->op == BK_IO_READ)
			n = pread(store->fd, (char *)io->iov[idx].iov_base + off,
				  io->iov[idx].iov_len - off, (off_t)(io->offset + done));
		else
			n = pwrite(store->fd, (char *)io->iov[idx].iov_base + off,
				   io->iov[idx].iov_len - off, (off_t)(io->offset + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return neg_errno();
		}
		if (n == 0)
			return -EIO; /* past the end: the store shrank under us */
		done += (uint64_t)n;
	}
	return (int)BK_MIN(done, (uint64_t)INT32_MAX);
}

int bk_io_run_sync(struct bk_store *store, struct bk_io *io)
{
	switch (io->op) {
	case BK_IO_READ:
	case BK_IO_WRITE:
		return run_rw(store, io);
	case BK_IO_FLUSH:
		return fdatasync(store->fd) < 0 ? neg_errno() : 0;
	case BK_IO_DISCARD:
		if (store->is_blkdev) {
			uint64_t range[2] = { io->offset, io->len };

			return ioctl(store->fd, BLKDISCARD, range) < 0 ? neg_errno() : 0;
		}
		return fallocate(store->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 (off_t)io->offset, (off_t)io->len) < 0
			       ? neg_errno()
			       : 0;
	default:
		return -EOPNOTSUPP;
	}
}

static void *worker_main(void *arg)
{
	struct bk_worker *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct bk_io *io;
		int res;

		while (!w->stop && !w->todo.head)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		io = bk_io_fifo_pop(&w->todo);
		pthread_mutex_unlock(&w->lock);

		res = bk_io_run_sync(w->store, io);

		pthread_mutex_lock(&w->lock);
		io->engine_priv[0] = (uint64_t)(int64_t)res;
		bk_io_fifo_push(&w->done_q, io);
		/* An eventfd write cannot block here: the counter is far from overflowing. */
		if (write(w->efd, &one, sizeof(one)) < 0)
			abort();
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void worker_event(void *data, int fd, unsigned int events)
{
	struct bk_worker *w = data;
	struct bk_io_fifo batch;
	struct bk_io *io;
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("%s: reading worker eventfd: %m", w->name);
	pthread_mutex_lock(&w->lock);
	batch = bk_io_fifo_take(&w->done_q);
	pthread_mutex_unlock(&w->lock);
	while ((io = bk_io_fifo_pop(&batch))) {
		w->pending--;
		/* done() may free the engine and this worker, but only once pending is 0. */
		w->done(w->data, io, (int)(int64_t)io->engine_priv[0]);
	}
}

int bk_worker_new(struct bk_loop *loop, struct bk_store *store, const char *name,
		  bk_worker_done_fn done, void *data, struct bk_worker **ret)
{
	struct bk_worker *w;
	sigset_t all, old;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->store = store;
	w->done = done;
	w->data = data;
	snprintf(w->name, sizeof(w->name), "%s", name);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		r = log_err_errno(neg_errno(), "%s: eventfd: %m", name);
		goto fail;
	}
	r = bk_loop_add_fd(loop, w->efd, BK_EV_READ, worker_event, w, &w->watch);
	if (r < 0)
		goto fail;
	/* Signals belong to the loop thread: the worker starts with all of them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		log_err_errno(r, "%s: cannot start worker thread: %m", name);
		goto fail;
	}
	w->started = true;
	*ret = w;
	return 0;
fail:
	bk_worker_free(w);
	return r;
}

void bk_worker_submit(struct bk_worker *w, struct bk_io *io)
{
	w->pending++;
	pthread_mutex_lock(&w->lock);
	bk_io_fifo_push(&w->todo, io);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void bk_worker_free(struct bk_worker *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	if (w->pending)
		log_err("%s: worker freed with %u I/O pending", w->name, w->pending);
	bk_watch_free(w->watch);
	if (w->efd >= 0)
		close(w->efd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
