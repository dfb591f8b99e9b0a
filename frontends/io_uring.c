// SPDX-License-Identifier: MIT
/*
 * The io_uring engine (the default): one ring per device queue. queue() only fills an SQE; a
 * loop hook submits everything once per loop turn; what the submit completed at once is reaped
 * right after it, later completions wake the loop through the ring's fd (an eventfd with
 * DEFER_TASKRUN) and are reaped in batches. The store's fd is registered
 * (fixed file 0), and so is the backend's bounce pool when it offers one (READ/WRITE_FIXED).
 * Discard is fallocate(PUNCH_HOLE) on files; on block devices BLOCK_URING_CMD_DISCARD where
 * the kernel has it (6.12+), else BLKDISCARD on the blocking-work thread.
 *
 * Options, comma-separated: taskrun=defer|coop|none (ring mode, see ring_modes),
 * discard=auto|thread (thread: always BLKDISCARD on the thread).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/ioctl.h>

#include <liburing.h>

#include "engine-internal.h"
#include "loop.h"
#include "util/list.h"
#include "util/log.h"
#include "util/macros.h"

#define URING_MAX_DEPTH 4096u
#define URING_REAP_BATCH 64u
/*
 * Submission entries per ring, whatever the depth: the kernel's SQ (64 bytes an entry) is
 * memory every open queue holds, idle or not, and I/O is submitted once per loop turn, which
 * rarely prepares more than this. A turn that does submits early (push_sqe). The completion
 * queue holds the whole depth, so every I/O in flight has a place for its completion.
 */
#define URING_SQ_ENTRIES 64u

#ifndef BLOCK_URING_CMD_DISCARD
#define BLOCK_URING_CMD_DISCARD _IO(0x12, 0) /* linux/blkdev.h, 6.12 */
#endif

struct uring_engine {
	struct bk_engine base;
	struct bk_loop *loop;
	char name[64];
	struct io_uring ring;
	bool ring_ok;
	bool defer_taskrun; /* completions need io_uring_get_events() */
	const char *mode;   /* ring_modes[].name in use */
	int efd;
	struct bk_watch *watch;
	struct bk_hook *hook;
	bool hook_on;
	unsigned int depth;
	unsigned int inflight; /* accepted by queue(), not yet reported by done() */
	unsigned int unsubmitted;
	unsigned int nr_bufs;
	bool discard_cmd;	  /* block device discard as BLOCK_URING_CMD_DISCARD (6.12+) */
	struct bk_worker *worker; /* else BLKDISCARD on this thread, started on first use */
	unsigned int in_worker;	  /* of inflight: on the worker, not in the ring */
	unsigned int dispatching;
	bool close_pending;
	struct bk_ratelimit rl;
	struct list_head all; /* in engines, under engines_lock */
};

/* Every open instance, for the io-wq worker limit (limit_workers). */
static pthread_mutex_t engines_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_head engines = LIST_HEAD_INIT(engines);

static inline struct uring_engine *to_uring(struct bk_engine *e)
{
	return container_of(e, struct uring_engine, base);
}

static void uring_free(struct uring_engine *u);

static void hook_enable(struct uring_engine *u, bool on)
{
	if (u->hook_on != on) {
		u->hook_on = on;
		bk_hook_enable(u->hook, on);
	}
}

/* Fill one SQE for @io, resuming read/write after engine_priv[0] bytes. */
static void prep_sqe(struct uring_engine *u, struct io_uring_sqe *sqe, struct bk_io *io)
{
	uint64_t done = io->engine_priv[0];
	bool fixed_buf = io->buf_index >= 0 && (unsigned int)io->buf_index < u->nr_bufs;

	switch (io->op) {
	case BK_IO_READ:
	case BK_IO_WRITE: {
		bool rd = io->op == BK_IO_READ;
		unsigned int idx = 0;
		size_t off = 0;

		if (done == 0 && fixed_buf && bk_io_iov_contiguous(io)) {
			/* The whole transfer sits in one registered buffer. */
			if (rd)
				io_uring_prep_read_fixed(sqe, 0, io->iov[0].iov_base,
							 (unsigned int)io->len, io->offset,
							 io->buf_index);
			else
				io_uring_prep_write_fixed(sqe, 0, io->iov[0].iov_base,
							  (unsigned int)io->len, io->offset,
							  io->buf_index);
			break;
		}
		if (done == 0 && io->iovcnt > 1) {
			if (rd)
				io_uring_prep_readv(sqe, 0, io->iov, io->iovcnt, io->offset);
			else
				io_uring_prep_writev(sqe, 0, io->iov, io->iovcnt, io->offset);
			break;
		}
		/* One element, or the rest of a short transfer: one element at a time. */
		bk_io_resume_point(io, done, &idx, &off);
		{
			void *base = (char *)io->iov[idx].iov_base + off;
			unsigned int len = (unsigned int)(io->iov[idx].iov_len - off);

			if (fixed_buf && rd)
				io_uring_prep_read_fixed(sqe, 0, base, len, io->offset + done,
							 io->buf_index);
			else if (fixed_buf)
				io_uring_prep_write_fixed(sqe, 0, base, len, io->offset + done,
							  io->buf_index);
			else if (rd)
				io_uring_prep_read(sqe, 0, base, len, io->offset + done);
			else
				io_uring_prep_write(sqe, 0, base, len, io->offset + done);
		}
		break;
	}
	case BK_IO_FLUSH:
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		break;
	case BK_IO_DISCARD:
		if (u->base.store->is_blkdev) {
			/* Block devices only get here with discard_cmd: range in addr/addr3. */
			io_uring_prep_rw(IORING_OP_URING_CMD, sqe, 0, NULL, 0, 0);
			sqe->cmd_op = BLOCK_URING_CMD_DISCARD;
			sqe->addr = io->offset;
			sqe->addr3 = io->len;
			break;
		}
		io_uring_prep_fallocate(sqe, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)io->offset, (off_t)io->len);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, io);
}

/*
 * Put @io (new or resumed) in an SQE. -EAGAIN when the SQ is full and submitting what it holds
 * did not make room (the kernel short of memory): nothing was queued.
 */
static int push_sqe(struct uring_engine *u, struct bk_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		/* More prepared this turn than the SQ holds: submit those to make room. */
		if (io_uring_submit(&u->ring) >= 0)
			u->unsubmitted = 0;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EAGAIN;
	}
	prep_sqe(u, sqe, io);
	u->unsubmitted++;
	hook_enable(u, true);
	return 0;
}

static void complete(struct uring_engine *u, struct bk_io *io, int res)
{
	u->inflight--;
	io->done(io, res);
}

static void worker_done(void *data, struct bk_io *io, int res)
{
	struct uring_engine *u = data;

	u->in_worker--;
	complete(u, io, res);
}

/* BLKDISCARD on the blocking-work thread (kernels without io_uring block discard). */
static int to_worker(struct uring_engine *u, struct bk_io *io)
{
	if (!u->worker) {
		int r = bk_worker_new(u->loop, u->base.store, u->name, worker_done, u, &u->worker);

		if (r < 0)
			return r;
	}
	bk_worker_submit(u->worker, io);
	u->in_worker++;
	return 0;
}

/* One CQE: finish the I/O, or resume a short read/write. */
static void handle_cqe(struct uring_engine *u, struct bk_io *io, int res)
{
	uint64_t done;

	if (io->op == BK_IO_DISCARD && u->discard_cmd && (res == -EOPNOTSUPP || res == -ENOTTY)) {
		/* A kernel with URING_CMD but without block discard through it (before 6.12). */
		bk_log_dev(BK_LOG_INFO, u->name, "no io_uring block discard here, using a thread");
		u->discard_cmd = false;
		res = to_worker(u, io);
		if (res == 0)
			return;
	}
	if (res < 0 || (io->op != BK_IO_READ && io->op != BK_IO_WRITE)) {
		complete(u, io, res < 0 ? res : 0);
		return;
	}
	done = io->engine_priv[0] + (uint64_t)res;
	if (done >= io->len) {
		complete(u, io, (int)io->len);
		return;
	}
	if (res == 0) {
		bk_log_dev_rl(&u->rl, BK_LOG_ERR, u->name,
			      "%s at %llu: no progress after %llu of %llu bytes",
			      io->op == BK_IO_READ ? "read" : "write",
			      (unsigned long long)io->offset, (unsigned long long)done,
			      (unsigned long long)io->len);
		complete(u, io, -EIO);
		return;
	}
	io->engine_priv[0] = done;
	if (push_sqe(u, io) < 0)
		complete(u, io, -EIO);
}

static void reap(struct uring_engine *u)
{
	struct {
		struct bk_io *io;
		int res;
	} batch[URING_REAP_BATCH];

	u->dispatching++;
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;

		io_uring_for_each_cqe(&u->ring, head, cqe)
		{
			batch[n].io = io_uring_cqe_get_data(cqe);
			batch[n].res = cqe->res;
			if (++n == URING_REAP_BATCH)
				break;
		}
		if (!n)
			break;
		io_uring_cq_advance(&u->ring, n);
		for (unsigned int i = 0; i < n; i++) {
			/* Reaped after a close: the kernel is done with it, nobody is told. */
			if (u->close_pending)
				u->inflight--;
			else
				handle_cqe(u, batch[i].io, batch[i].res);
		}
		if (u->close_pending)
			break;
	}
	u->dispatching--;
	if (u->close_pending && !u->dispatching)
		uring_free(u);
}

static void uring_event(void *data, int fd, unsigned int events)
{
	struct uring_engine *u = data;
	uint64_t cnt;

	/* With DEFER_TASKRUN the kernel posts CQEs only when we ask (and wakes an eventfd). */
	if (u->defer_taskrun) {
		if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			bk_log_dev_rl(&u->rl, BK_LOG_WARNING, u->name, "reading eventfd: %m");
		io_uring_get_events(&u->ring);
	}
	reap(u);
}

static void uring_kick(struct bk_engine *e)
{
	struct uring_engine *u = to_uring(e);
	int r;

	if (!u->unsubmitted) {
		hook_enable(u, false);
		return;
	}
	r = io_uring_submit(&u->ring);
	if (r >= 0) {
		u->unsubmitted = r >= (int)u->unsubmitted ? 0 : u->unsubmitted - (unsigned int)r;
	} else if (r != -EAGAIN && r != -EBUSY && r != -EINTR) {
		bk_log_dev_rl(&u->rl, BK_LOG_ERR, u->name, "io_uring_submit: %s", strerror(-r));
	}
	/* What is left is retried next turn; a completion will wake the loop. */
	hook_enable(u, u->unsubmitted > 0);
	/*
	 * What the submit completed at once (reads from the page cache) is answered this turn:
	 * waiting for the ring to wake the loop would cost a turn of the loop per batch. Inside
	 * reap (a completion queued more), reap's own loop picks them up.
	 */
	if (!u->dispatching && io_uring_cq_ready(&u->ring))
		reap(u);
}

static void uring_hook(void *data)
{
	uring_kick(data);
}

static int uring_queue(struct bk_engine *e, struct bk_io *io)
{
	struct uring_engine *u = to_uring(e);
	int r;

	if (u->inflight >= u->depth)
		return -EAGAIN;
	r = bk_io_check(io);
	if (r < 0)
		return r;
	io->engine_priv[0] = 0;
	if (io->op == BK_IO_DISCARD && e->store->is_blkdev && !u->discard_cmd) {
		r = to_worker(u, io);
		if (r < 0)
			return r;
		u->inflight++;
		return 0;
	}
	r = push_sqe(u, io);
	if (r < 0)
		return r;
	u->inflight++;
	return 0;
}

static int uring_register_buffers(struct bk_engine *e, const struct iovec *iov, unsigned int n)
{
	struct uring_engine *u = to_uring(e);
	int r;

	if (u->inflight)
		return -EBUSY;
	if (u->nr_bufs) {
		io_uring_unregister_buffers(&u->ring);
		u->nr_bufs = 0;
	}
	if (!n)
		return 0;
	r = io_uring_register_buffers(&u->ring, iov, n);
	if (r < 0)
		return bk_log_errno(BK_LOG_WARNING, r, "%s: cannot register %u buffers: %m",
				    u->name, n);
	u->nr_bufs = n;
	return 0;
}

static unsigned int uring_inflight(const struct bk_engine *e)
{
	return container_of(e, struct uring_engine, base)->inflight;
}

/*
 * Closed with I/O still in the ring. The backend drains before closing, so only a simulated
 * kill (bk_core_abandon, tests) gets here. The kernel may still be reading or writing the
 * caller's buffers, which the caller frees or unmaps right after close, and io_uring_queue_exit
 * does not wait for that (the ring is torn down asynchronously). So submit what is queued and
 * wait for every completion, without calling done(): as when a killed process's I/O finishes
 * after its death, except that its memory cannot be reused in the meantime.
 */
static void uring_drain(struct uring_engine *u)
{
	unsigned int left = u->inflight - u->in_worker;

	bk_log_dev(BK_LOG_WARNING, u->name, "closed with %u I/O in flight: waiting for them",
		   u->inflight);
	while (left) {
		struct io_uring_cqe *cqe;
		int r;

		if (u->unsubmitted && io_uring_submit(&u->ring) >= (int)u->unsubmitted)
			u->unsubmitted = 0;
		r = io_uring_wait_cqe(&u->ring, &cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			log_err("%s: waiting for I/O at close: %s", u->name, strerror(-r));
			abort(); /* the kernel may still write into memory about to be freed */
		}
		io_uring_cqe_seen(&u->ring, cqe);
		left--;
	}
	u->inflight = u->in_worker;
}

/* qsort order of an array of pointers, by address. */
static int ptr_cmp(const void *a, const void *b)
{
	const void *const *pa = a, *const *pb = b;
	uintptr_t x = (uintptr_t)*pa, y = (uintptr_t)*pb;

	return (x > y) - (x < y);
}

/*
 * The io-wq worker limit of @u's loop's thread. Writes to a regular file that io_uring cannot
 * do without blocking (all buffered writes to a file system without async buffered writes,
 * tmpfs among them) go to the submitting thread's io-wq, hashed by inode: one file's writes run
 * one at a time. Every queued write still wakes an idle worker, which finds the file busy and
 * sleeps again: in the lab's PV dom0 that wakeup cost a fifth of the loop thread's time in
 * 1 MiB writes. So the thread gets one bounded worker per image its loop serves; a block
 * device (whose punted I/O is not hashed) lifts the limit. The limit is the thread's, set
 * through each ring (the kernel applies a ring's limit when a thread first submits to it): the
 * newest ring's count wins, and a count that shrinks is not lowered.
 */
static void limit_workers(struct uring_engine *u)
{
	_cleanup_free_ const void **stores = NULL;
	struct uring_engine *o;
	unsigned int limits[2] = { 0, 0 }; /* bounded, unbounded (0: as it is) */
	size_t n = 0, cap = 0, i;
	bool blkdev = false;
	int r;

	pthread_mutex_lock(&engines_lock);
	list_for_each_entry (o, &engines, all)
		cap++;
	stores = calloc(cap, sizeof(*stores));
	list_for_each_entry (o, &engines, all) {
		if (o->loop != u->loop)
			continue;
		blkdev |= o->base.store->is_blkdev;
		if (stores)
			stores[n] = o->base.store;
		n++;
	}
	pthread_mutex_unlock(&engines_lock);
	/* Count each store once: the queues of one disk share it (without memory: each queue). */
	if (stores && n) {
		qsort(stores, n, sizeof(*stores), ptr_cmp);
		limits[0] = 1;
		for (i = 1; i < n; i++)
			limits[0] += stores[i] != stores[i - 1];
	} else {
		limits[0] = n;
	}
	if (blkdev) /* the kernel's default: the ring's depth or 4 x CPUs, the smaller */
		limits[0] = BK_MIN(u->ring.sq.ring_entries,
				   4 * (unsigned int)BK_MAX(sysconf(_SC_NPROCESSORS_ONLN), 1L));
	r = io_uring_register_iowq_max_workers(&u->ring, limits);
	if (r < 0)
		log_debug("%s: io-wq worker limit not set: %s", u->name, strerror(-r));
}

static void uring_free(struct uring_engine *u)
{
	if (u->all.next) {
		pthread_mutex_lock(&engines_lock);
		list_del(&u->all);
		pthread_mutex_unlock(&engines_lock);
	}
	if (u->ring_ok && u->inflight > u->in_worker)
		uring_drain(u);
	/* Joins the worker: its BLKDISCARDs in progress finish, queued ones are dropped. */
	bk_worker_free(u->worker);
	bk_hook_free(u->hook);
	bk_watch_free(u->watch);
	if (u->ring_ok)
		io_uring_queue_exit(&u->ring);
	if (u->efd >= 0)
		close(u->efd);
	free(u);
}

static void uring_close(struct bk_engine *e)
{
	struct uring_engine *u;

	if (!e)
		return;
	u = to_uring(e);
	if (u->dispatching) {
		u->close_pending = true;
		return;
	}
	uring_free(u);
}

/*
 * Ring setup modes. Without an option the first is tried and, where the kernel refuses it
 * (before 6.1), plain task work. "taskrun=defer|coop|none" picks a mode and falls back from
 * there. COOP_TASKRUN is never chosen automatically: it does not interrupt the task to run
 * completion work, which a loop asleep in epoll rather than io_uring_enter() may see late.
 */
static const struct {
	const char *name;
	unsigned int flags;
	bool automatic;
} ring_modes[] = {
	{ "defer", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, true },
	{ "coop", IORING_SETUP_COOP_TASKRUN, false },
	{ "none", 0, true },
};

struct uring_opts {
	size_t first_mode; /* index in ring_modes */
	bool discard_thread;
};

/* Comma-separated: taskrun=defer|coop|none, discard=auto|thread. */
static int parse_options(const char *name, const char *options, struct uring_opts *ret)
{
	_cleanup_free_ char *copy = strdup(options ? options : "");
	struct uring_opts o = { 0 };
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool ok = false;

		if (strncmp(tok, "taskrun=", 8) == 0) {
			for (size_t i = 0; i < ARRAY_SIZE(ring_modes); i++)
				if (strcmp(tok + 8, ring_modes[i].name) == 0) {
					o.first_mode = i;
					ok = true;
				}
		} else if (strcmp(tok, "discard=auto") == 0 || strcmp(tok, "discard=thread") == 0) {
			o.discard_thread = tok[8] == 't';
			ok = true;
		}
		if (!ok) {
			log_err("%s: io_uring: bad option '%s' (known: taskrun=defer|coop|none, "
				"discard=auto|thread)",
				name, tok);
			return -EINVAL;
		}
	}
	*ret = o;
	return 0;
}

static int setup_ring(struct uring_engine *u, unsigned int depth, size_t first)
{
	unsigned int entries = BK_MIN(depth, URING_SQ_ENTRIES);
	int r = -EINVAL;

	for (size_t i = first; i < ARRAY_SIZE(ring_modes); i++) {
		struct io_uring_params p = {
			.flags = ring_modes[i].flags | IORING_SETUP_CQSIZE,
			.cq_entries = BK_MAX(depth, entries),
		};

		if (i != first && !ring_modes[i].automatic)
			continue;

		r = io_uring_queue_init_params(entries, &u->ring, &p);
		if (r == 0) {
			u->defer_taskrun = ring_modes[i].flags & IORING_SETUP_DEFER_TASKRUN;
			u->mode = ring_modes[i].name;
			return 0;
		}
		if (r != -EINVAL)
			break;
	}
	return r;
}

static int uring_open(struct bk_loop *loop, struct bk_store *store,
		      const struct bk_engine_params *p, struct bk_engine **ret)
{
	struct uring_engine *u;
	const char *name = p && p->name ? p->name : "io_uring";
	struct uring_opts opts;
	int r;

	if (!store || !p || !p->depth || p->depth > URING_MAX_DEPTH) {
		log_err("%s: io_uring needs a store and a depth of 1..%u", name, URING_MAX_DEPTH);
		return -EINVAL;
	}
	r = parse_options(name, p->options, &opts);
	if (r < 0)
		return r;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->base.ops = &bk_engine_uring_ops;
	u->base.store = store;
	u->loop = loop;
	u->depth = p->depth;
	u->efd = -1;
	u->rl = (struct bk_ratelimit)BK_RATELIMIT_INIT(5000, 10);
	snprintf(u->name, sizeof(u->name), "%s", name);

	/*
	 * A ring with DEFER_TASKRUN may only be entered by the thread that made it (SINGLE_ISSUER),
	 * and an I/O thread's devices connect from the main thread: plain task work there.
	 */
	if (bk_loop_threaded(loop) &&
	    ring_modes[opts.first_mode].flags & IORING_SETUP_SINGLE_ISSUER)
		opts.first_mode = ARRAY_SIZE(ring_modes) - 1;
	r = setup_ring(u, p->depth, opts.first_mode);
	if (r < 0) {
		log_err_errno(r, "%s: cannot set up io_uring: %m", name);
		goto fail;
	}
	u->ring_ok = true;
	if (store->is_blkdev && !opts.discard_thread) {
		struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);

		u->discard_cmd = probe && io_uring_opcode_supported(probe, IORING_OP_URING_CMD);
		io_uring_free_probe(probe);
	}
	r = io_uring_register_files(&u->ring, &store->fd, 1);
	if (r < 0) {
		log_err_errno(r, "%s: cannot register %s with io_uring: %m", name, store->path);
		goto fail;
	}
	/*
	 * The loop watches the ring's own fd: it polls readable while completions wait, so once
	 * they are reaped nothing is left to read (an eventfd would cost a read() per wakeup,
	 * and wake the loop again for completions reaped right after the submit). A
	 * DEFER_TASKRUN ring posts its completions only when asked: there an eventfd, which the
	 * kernel signals when it queues them, tells when to ask.
	 */
	if (u->defer_taskrun) {
		u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (u->efd < 0) {
			r = log_err_errno(neg_errno(), "%s: eventfd: %m", name);
			goto fail;
		}
		r = io_uring_register_eventfd(&u->ring, u->efd);
		if (r < 0) {
			log_err_errno(r, "%s: cannot register eventfd with io_uring: %m", name);
			goto fail;
		}
	}
	r = bk_loop_add_fd(loop, u->defer_taskrun ? u->efd : u->ring.ring_fd, BK_EV_READ,
			   uring_event, u, &u->watch);
	if (r < 0)
		goto fail;
	r = bk_loop_add_hook(loop, uring_hook, u, &u->hook);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&engines_lock);
	list_add_tail(&u->all, &engines);
	pthread_mutex_unlock(&engines_lock);
	limit_workers(u);
	log_debug("%s: io_uring on %s, depth %u, taskrun=%s%s", name, store->path, p->depth,
		  u->mode, u->discard_cmd ? ", discard by uring_cmd" : "");
	*ret = &u->base;
	return 0;
fail:
	uring_free(u);
	return r;
}

const struct bk_engine_ops bk_engine_uring_ops = {
	.name = "io_uring",
	.open = uring_open,
	.close = uring_close,
	.register_buffers = uring_register_buffers,
	.queue = uring_queue,
	.kick = uring_kick,
	.inflight = uring_inflight,
};
