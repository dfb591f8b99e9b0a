/* SPDX-License-Identifier: MIT */
/*
 * blanketd-simdemo: the real daemon runtime (daemon.c, the blkif backend, the control socket)
 * on the simulated platform, with simulated guests in the same process. guest.c plays each
 * guest (toolstack attach, blkfront connect, verified random I/O driven by a loop hook);
 * simdemo.c holds the options, the phases, the reports and the leak checks.
 */
#ifndef BK_SIMDEMO_H
#define BK_SIMDEMO_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "blkfront.h"

struct bk_core;
struct bk_hook;
struct bk_loop;
struct bk_sim;
struct bk_toolstack;

/* Sectors whose content the guest does not know (discarded, failed write, foreign image). */
#define SD_VER_UNKNOWN UINT32_MAX
/* Largest request the guests make: 32 pages (indirect), and 11 pages without indirect. */
#define SD_MAX_SECTORS 256U
#define SD_DIRECT_SECTORS (BLKIF_MAX_SEGMENTS_PER_REQUEST * 8U)
#define SD_MAX_QUEUES 16U
#define SD_MAX_DEPTH 32U
#define SD_READBACK 64U

/* What the command line asked for (simdemo.c). */
struct sd_opts {
	unsigned int guests;
	uint64_t ops; /* per guest; 0: run for @seconds */
	unsigned int seconds;
	uint64_t size;	     /* bytes per disk */
	unsigned int queues; /* asked for; the backend's multi-queue-max-queues caps it */
	unsigned int ring_order;
	unsigned int depth; /* requests in flight per queue */
	bool indirect;	    /* use indirect descriptors when the backend offers them */
	bool hostile;
	bool serve;
	bool quiet;
	bool corrupt;	/* testing: corrupt one written sector behind guest 1's back */
	bool no_verify; /* the null engine keeps no data: reads are not checked */
	uint64_t seed;
	bool seeded;
	const char *dir;
	const char *image;
	bool image_fresh; /* --image did not exist: created sparse (reads zeros) */
	const char *engine;
	const char *results;
	const char *control_socket;
	const char *blanketctl;
};

struct sd_guest;

/* One request slot of a guest: preallocated, so the data path never allocates. */
struct sd_io {
	struct bk_bf_io io;
	struct sd_guest *g;
	unsigned int q;
	bool busy;
	uint32_t ver; /* writes: version of the data sent */
	uint8_t *buf; /* SD_MAX_SECTORS * 512 */
};

struct sd_range {
	uint64_t sector;
	uint32_t nr;
};

struct sd_guest {
	const struct sd_opts *o;
	unsigned int index;
	uint32_t domid;
	uint32_t devid;
	char name[48]; /* "vbd 1/51712", as the daemon names the device */
	bool hostile;
	bool own_file; /* created by us: unlink at the end */
	char path[PATH_MAX];

	/* Machine (borrowed from the daemon) and the guest's blkfront. */
	struct bk_bf_env env;
	struct bk_blkfront *bf;
	bool attached;

	/* Negotiated. */
	unsigned int nr_queues;
	unsigned int ring_order;
	unsigned int max_indirect; /* 0: none */
	bool discard;

	/* The disk region this guest uses (a slice when guests share --image). */
	uint64_t first_sector;
	uint64_t nr_sectors;
	uint32_t *ver; /* per sector: 0 never written (zeros), SD_VER_UNKNOWN, or a version */
	uint32_t next_ver;
	uint64_t rng;

	struct sd_io *ios;
	unsigned int nr_ios;
	struct sd_range readback[SD_READBACK];
	unsigned int rb_head, rb_len;

	/* Progress and results. */
	bool stop_issuing;
	bool io_done;
	bool hostile_fired;
	bool corrupted;
	bool started;
	double last_progress; /* loop time of the last completion */
	uint64_t issued, completed;
	uint64_t reads, writes, flushes, discards;
	uint64_t bytes_written, bytes_read, verified_bytes;
	uint64_t errors, mismatches;
	char verdict_why[256];
	bool failed;
};

/* Verified everything it did (the hostile guest: saw its device fail as intended). */
static inline bool sd_guest_ok(const struct sd_guest *g)
{
	return g->io_done && !g->failed;
}

/* guest.c */
int sd_guest_setup(struct sd_guest *g, struct bk_sim *sim, struct bk_loop *loop,
		   struct bk_core *core, struct bk_toolstack *ts);
/* One step of the guest's workload: reap, verify, issue. Called once per loop turn. */
void sd_guest_step(struct sd_guest *g, double now, double deadline);
/* Remove the device as the toolstack (Closing -> Closed, directories gone). */
int sd_guest_remove(struct sd_guest *g);
/* After the daemon stopped its devices: only remove the directories. */
int sd_guest_remove_dirs(struct sd_guest *g);
/* Mapped grants the guest still has, or a missing/left-over node: 0 when clean. */
int sd_guest_leak_check(struct sd_guest *g, char *why, size_t len);
/* Close the frontend and free; unlink the disk if we created it. NULL-safe members. */
void sd_guest_free(struct sd_guest *g);
/* The error node of the guest's backend directory, if any (hostile verdicts). */
int sd_guest_be_error(struct sd_guest *g, char **ret);

#endif
