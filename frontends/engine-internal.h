/* SPDX-License-Identifier: MIT */
/*
 * Shared by the engine implementations (not by backends): the ops tables, the blocking-work
 * thread, an intrusive FIFO of I/Os, and the helpers that resume a short transfer.
 */
#ifndef BK_ENGINE_INTERNAL_H
#define BK_ENGINE_INTERNAL_H

#include "engine.h"

struct bk_loop;

extern const struct bk_engine_ops bk_engine_uring_ops;
extern const struct bk_engine_ops bk_engine_aio_ops;
extern const struct bk_engine_ops bk_engine_null_ops;
extern const struct bk_engine_ops bk_engine_fault_ops;
extern const struct bk_engine_ops bk_engine_vblk_ops;

/*
 * A FIFO of I/Os linked through io->engine_priv[1] (no allocation). Only valid while the engine
 * that owns engine_priv holds the I/O.
 */
struct bk_io_fifo {
	struct bk_io *head;
	struct bk_io *tail;
};

static inline void bk_io_fifo_push(struct bk_io_fifo *f, struct bk_io *io)
{
	io->engine_priv[1] = 0;
	if (f->tail)
		f->tail->engine_priv[1] = (uintptr_t)io;
	else
		f->head = io;
	f->tail = io;
}

static inline struct bk_io *bk_io_fifo_pop(struct bk_io_fifo *f)
{
	struct bk_io *io = f->head;

	if (io) {
		f->head = (struct bk_io *)(uintptr_t)io->engine_priv[1];
		if (!f->head)
			f->tail = NULL;
	}
	return io;
}

static inline struct bk_io_fifo bk_io_fifo_take(struct bk_io_fifo *f)
{
	struct bk_io_fifo all = *f;

	f->head = f->tail = NULL;
	return all;
}

/*
 * Where a read or write resumes after @done bytes: the iov element and the offset inside it.
 * Returns false if @done is at or past the end of the iov.
 */
bool bk_io_resume_point(const struct bk_io *io, uint64_t done, unsigned int *ret_idx,
			size_t *ret_off);

/*
 * Reject a malformed request (a backend bug, not guest input): unknown op, read/write without
 * iov, over BK_IO_MAX_LEN, or with len not the sum of the iov. Returns 0 or -EINVAL.
 */
#define BK_IO_MAX_LEN (1u << 30)
int bk_io_check(const struct bk_io *io);

/* True if every iov element starts where the previous one ends (one fixed-buffer transfer). */
bool bk_io_iov_contiguous(const struct bk_io *io);

/*
 * The blocking-work thread: runs I/O the kernel offers no asynchronous path for (BLKDISCARD,
 * fdatasync when aio lacks IO_CMD_FDSYNC, fallocate for aio) off the loop, and hands each
 * result back through an eventfd watched by the loop. Started on first use by its engine.
 */
struct bk_worker;
typedef void (*bk_worker_done_fn)(void *data, struct bk_io *io, int res);

int bk_worker_new(struct bk_loop *loop, struct bk_store *store, const char *name,
		  bk_worker_done_fn done, void *data, struct bk_worker **ret);
/* Hand @io over; its result arrives through done() from the loop. Never fails. */
void bk_worker_submit(struct bk_worker *w, struct bk_io *io);
/* NULL-safe; nothing may be pending. Joins the thread. */
void bk_worker_free(struct bk_worker *w);
/* The blocking system call the worker makes for @io; returns bytes (read/write), 0 or -errno. */
int bk_io_run_sync(struct bk_store *store, struct bk_io *io);

#endif
