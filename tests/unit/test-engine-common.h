/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the engine and store unit tests: a check macro, temp files, a request wrapper
 * that records its completion, a bounded loop pump, and the I/O suite run against each real
 * engine (io_uring, aio) on /var/tmp (O_DIRECT) and /dev/shm (buffered).
 */
#ifndef TEST_ENGINE_COMMON_H
#define TEST_ENGINE_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"
#include "loop.h"
#include "check.h"

/* A request and what became of it. */
struct tio {
	struct bk_io io;
	struct iovec iov[4];
	int res;
	bool done;
	unsigned int *pending; /* decremented on completion */
	unsigned int ndone;    /* completions seen (must end at 1) */
};

/* Set @t up as op at @offset over @iovcnt iov already filled by the caller. */
void tio_init(struct tio *t, unsigned int *pending, enum bk_io_op op, uint64_t offset,
	      unsigned int iovcnt, int buf_index);

/* Queue @t on @e and count it pending; returns queue()'s result. */
int tio_queue(struct bk_engine *e, struct tio *t);

/*
 * Run loop turns until *pending is 0, at most @max_turns turns of up to 100 ms each.
 * Returns true if everything completed.
 */
bool pump(struct bk_loop *loop, const unsigned int *pending, unsigned int max_turns);

/* Create a sparse file of @size in @dir; returns its fd and fills @path (size >= 64). */
int make_temp_file(const char *dir, uint64_t size, char *path, size_t path_len);

/*
 * True if @path sits on a filesystem known to punch holes (ext4, xfs, btrfs, tmpfs): there the
 * store must report discard and discards must free blocks. Elsewhere those checks are skipped.
 */
bool fs_punches_holes(const char *path);

/* Deterministic contents for (offset, byte) so reads can be verified. */
uint8_t pattern_byte(uint64_t file_off, uint32_t seed);

/*
 * Attach @file to a free loop device with extra losetup @args (may be ""); returns 0 and the
 * device path, or -errno when loop devices are not available here (skip that part).
 */
int loopdev_attach(const char *file, const char *args, char *dev, size_t dev_len);
void loopdev_detach(const char *dev);

/*
 * For engines that reach the file through a server process (virtio-blk: a vhost-user back-end
 * exporting it). When set, each part of the suite calls start() with the file or block device
 * it is about to use and the suite's options, and opens the engine with the options start()
 * wrote to @opts; a negative return skips that part. stop() ends the server.
 */
struct engine_suite_server {
	int (*start)(const char *path, const char *options, char *opts, size_t len);
	void (*stop)(void);
};
extern const struct engine_suite_server *engine_suite_server;

/*
 * The whole I/O suite for one engine opened with @options (may be NULL); returns 0, 1 on
 * bk_test_failures so far, or 77 if the engine cannot run here.
 */
int run_engine_suite(const char *engine, const char *options);

#endif
