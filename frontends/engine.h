/* SPDX-License-Identifier: MIT */
/*
 * I/O engines ("frontends" in blanketd's vocabulary: what does the real I/O on the cloud's
 * devices). A backing store (struct bk_store) is opened once per guest device; an engine
 * instance (struct bk_engine) is created per device queue on top of it. Backends queue
 * struct bk_io requests without making a syscall; the engine submits everything queued in one
 * go once per loop turn (a loop hook) and calls io->done from the loop when each completes.
 */
#ifndef BK_ENGINE_H
#define BK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct bk_loop;

/* A file or block device serving one guest disk. */
struct bk_store {
	char *path;
	int fd;
	bool is_blkdev;
	bool readonly;
	bool direct;              /* opened O_DIRECT */
	bool dsync;               /* opened O_DSYNC: a write completes once it is durable */
	uint64_t size;            /* bytes */
	uint32_t logical_block;   /* bytes, e.g. 512 */
	uint32_t physical_block;  /* bytes, e.g. 4096 */
	bool discard;             /* punch hole / BLKDISCARD works */
	uint32_t discard_granularity; /* bytes */
	uint32_t discard_alignment;   /* bytes */
};

struct bk_store_params {
	bool readonly;
	/* Try O_DIRECT, fall back to buffered if the filesystem refuses it. */
	bool want_direct;
	/* Open O_DSYNC (cache=writethrough): every write is durable when it completes. */
	bool dsync;
};

/* Open and probe @path (regular file or block device). Errors name the path. */
int bk_store_open(const char *path, const struct bk_store_params *p, struct bk_store **ret);
/* NULL-safe. */
void bk_store_close(struct bk_store *s);

enum bk_io_op {
	BK_IO_READ = 0,
	BK_IO_WRITE = 1,
	BK_IO_FLUSH = 2,   /* fdatasync / IORING_OP_FSYNC(DATASYNC) */
	BK_IO_DISCARD = 3, /* fallocate(PUNCH_HOLE|KEEP_SIZE) or BLKDISCARD */
};

/*
 * One I/O. The caller owns the memory (no per-request malloc in engines): it lives until
 * done() is called. @iov buffers are aligned to 4096 when the store is O_DIRECT.
 */
struct bk_io {
	uint8_t op;            /* enum bk_io_op */
	uint16_t iovcnt;
	int16_t buf_index;     /* registered buffer index when all iov sit in one, else -1 */
	uint64_t offset;       /* bytes */
	uint64_t len;          /* bytes: discard length; for read/write the sum of iov */
	struct iovec *iov;
	/*
	 * Called from the loop (an fd or timer callback, or inside kick() for what the submit
	 * completed at once; never from inside queue()): @res is -errno, or on success the
	 * bytes transferred (always io->len for read/write: engines resubmit short transfers)
	 * and 0 for flush and discard. May queue new I/O, and may
	 * close the engine once nothing else is in flight.
	 */
	void (*done)(struct bk_io *io, int res);
	void *priv;
	uint64_t engine_priv[2]; /* owned by the engine while the I/O is queued */
};

struct bk_engine;

/*
 * An engine instance belongs to the thread that opened it (io_uring uses SINGLE_ISSUER): queue,
 * kick and close it only from that thread's loop.
 */
struct bk_engine_params {
	const char *name;  /* device/queue name for logs: "vbd 5/51712 q0" */
	unsigned int depth; /* maximum in flight */
	/*
	 * Engine-specific options, comma-separated; NULL or "" for defaults. Unknown or bad
	 * tokens fail open() with -EINVAL and a log naming the token.
	 *   io_uring: taskrun=defer|coop|none, discard=auto|thread
	 *   aio:      fdsync=thread
	 *   null:     none
	 *   fault:    inner=ENGINE, err=ERR, fail=OPS:COND..., delay=Nms:OPS:COND... (fault.c)
	 */
	const char *options;
};

struct bk_engine_ops {
	const char *name; /* "io_uring", "aio", "null", "fault" */
	/* Create an instance for one queue. The store must outlive it ("null" accepts NULL). */
	int (*open)(struct bk_loop *loop, struct bk_store *store, const struct bk_engine_params *p,
		    struct bk_engine **ret);
	/* Free; nothing may be in flight (the backend drains first). */
	void (*close)(struct bk_engine *e);
	/*
	 * Optional: register fixed buffers once (the backend's bounce pool) so I/O that uses
	 * them (io->buf_index >= 0) skips per-I/O page pinning. Call with nothing in flight;
	 * calling again replaces the set, n = 0 drops it. On failure (-EOPNOTSUPP, -ENOMEM,
	 * -EBUSY) keep using buf_index = -1. io_uring uses READ/WRITE_FIXED when an I/O's iov
	 * elements are contiguous in memory, plain readv/writev otherwise.
	 */
	int (*register_buffers)(struct bk_engine *e, const struct iovec *iov, unsigned int n);
	/*
	 * Queue without a syscall; -EAGAIN when depth is reached, -EINVAL for a malformed
	 * request (unknown op, read/write without iov, over 1 GiB, or len not the sum of the
	 * iov). I/O errors, including
	 * EBADF for writes to a read-only store, arrive through done().
	 */
	int (*queue)(struct bk_engine *e, struct bk_io *io);
	/*
	 * Submit what is queued now (normally done by the engine's loop hook). May call done()
	 * for I/O the submit completed at once, so the caller answers it in the same turn.
	 */
	void (*kick)(struct bk_engine *e);
	/* I/Os queued or in flight. */
	unsigned int (*inflight)(const struct bk_engine *e);
	/*
	 * Optional: the loop an instance with @options must be opened on (a device that several
	 * instances share and that is driven from one loop, once it is open), or NULL when any
	 * loop will do.
	 */
	struct bk_loop *(*loop_of)(const char *options);
};

/* Base of every engine instance; implementations embed it first. */
struct bk_engine {
	const struct bk_engine_ops *ops;
	struct bk_store *store;
};

/* Look an engine up by name; NULL if unknown or not built. */
const struct bk_engine_ops *bk_engine_find(const char *name);
/* Comma-separated list of built engines (for error messages and --help). */
const char *bk_engine_names(void);

/* Find @name and open an instance; logs and returns -ENOENT if the engine is unknown. */
int bk_engine_open(const char *name, struct bk_loop *loop, struct bk_store *store,
		   const struct bk_engine_params *p, struct bk_engine **ret);
/* The loop @name with @options must be opened on (ops->loop_of), or NULL: any. */
struct bk_loop *bk_engine_loop_of(const char *name, const char *options);

static inline int bk_engine_queue(struct bk_engine *e, struct bk_io *io)
{
	return e->ops->queue(e, io);
}

static inline void bk_engine_kick(struct bk_engine *e)
{
	e->ops->kick(e);
}

static inline unsigned int bk_engine_inflight(const struct bk_engine *e)
{
	return e->ops->inflight(e);
}

/* NULL-safe. Nothing may be in flight. */
static inline void bk_engine_close(struct bk_engine *e)
{
	if (e)
		e->ops->close(e);
}

#endif
