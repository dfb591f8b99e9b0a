/* SPDX-License-Identifier: MIT */
/*
 * A test blkfront: plays Linux's xen-blkfront through the simulation, on top of the xenbus
 * frontend player (xenbus_front.h) and the simulated toolstack (toolstack.h). It grants pages,
 * fills rings in either ABI (multi-page, multi-queue, indirect), kicks, and checks responses,
 * including that every response's padding bytes came back zero. It can also write arbitrary
 * hostile bytes into ring slots, ring indices and indirect pages.
 *
 * Also here: struct bk_bf_env, a whole simulated machine (sim, loop, dom0 platform, device
 * core with blkif registered, toolstack) so each integration test starts with one call.
 */
#ifndef BK_TEST_BLKFRONT_H
#define BK_TEST_BLKFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkif/proto.h"

struct bk_sim;
struct bk_loop;
struct bk_xen;
struct bk_core;
struct bk_toolstack;
struct bk_xbfront;

/* ------------------------------------------------------------------------------------------ */
/* The machine. */

struct bk_bf_env {
	struct bk_sim *sim;
	struct bk_loop *loop;
	struct bk_xen *xen; /* dom0's platform, the daemon's */
	struct bk_core *core;
	struct bk_toolstack *ts;
};

/*
 * True (after printing "... not built: skip") when an engine of the NULL-terminated list was
 * not built in: the test then exits 77.
 */
bool bk_bf_engines_missing(const char *first, ...);

/* Machine with dom0 running the core (blkif registered, started) and a toolstack. */
int bk_bf_env_new(struct bk_bf_env *env);
/* The same with the backend kinds @kinds (NULL-terminated) registered instead. */
struct bk_backend_ops;
int bk_bf_env_new_kinds(struct bk_bf_env *env, const struct bk_backend_ops *const *kinds);
/* The same with @io_threads I/O threads (NULL @kinds: blkif). */
int bk_bf_env_new_threads(struct bk_bf_env *env, const struct bk_backend_ops *const *kinds,
			  unsigned int io_threads);
/* Stop the core (pumping until done) and free everything. NULL-safe members. */
void bk_bf_env_free(struct bk_bf_env *env);
/* Create guest @domid with @nr_pages pages. */
int bk_bf_env_guest(struct bk_bf_env *env, uint32_t domid, unsigned int nr_pages);
/*
 * Add a vbd as libxl would and run the hotplug script once the backend reached InitWait.
 * @extra_be: NULL or { key, value, ..., NULL } (e.g. blanket-engine).
 */
int bk_bf_env_add_vbd(struct bk_bf_env *env, uint32_t domid, uint32_t devid, const char *params,
		      const char *mode, const char *device_type, const char *const *extra_be);
/* Requests vbd @domid/@devid holds in flight in its first queue's statistics; 0 if no device. */
unsigned int bk_bf_env_inflight(struct bk_bf_env *env, uint32_t domid, uint32_t devid);

/*
 * A scratch backing file of @size bytes under @dir (e.g. /var/tmp), filled with @fill; its
 * path goes to @path (at least 64 bytes). Returns the open fd or -errno. Unlink it after.
 */
int bk_bf_tmpfile(const char *dir, uint64_t size, int fill, char *path, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* The frontend. */

struct bk_bf_params {
	unsigned int nr_queues;	 /* 0 or 1: one queue, keys at the top (no multi-queue key) */
	unsigned int ring_order; /* 0: one page and "ring-ref" */
	const char *protocol;	 /* NULL: no protocol key (native) */
	enum blkif_abi abi;	 /* layout used to fill the ring (match protocol) */
	/*
	 * Write feature-persistent=1; if the backend offers it too, grant data and indirect
	 * pages read-write once and reuse them (as Linux blkfront), ending them at reset.
	 */
	bool persistent;
	/* With persistent: reuse the grants even when the backend does not offer them. */
	bool persistent_anyway;
	uint32_t start_index; /* initial ring indices (2^32 wrap tests) */
	uint32_t pfn_base;    /* guest pages this frontend may use: [base, base+count) */
	uint32_t pfn_count;
};

/* One I/O in flight through the frontend. Data lives in test memory (@data). */
struct bk_bf_io {
	uint8_t op;	     /* BLKIF_OP_* (READ, WRITE, FLUSH_DISKCACHE, WRITE_BARRIER, DISCARD) */
	bool indirect;	     /* force BLKIF_OP_INDIRECT (also used when > 11 segments) */
	bool readonly_grant; /* grant the data pages read-only (hostile tests) */
	uint8_t discard_flag; /* discard: the flag byte (BLKIF_DISCARD_SECURE) */
	uint64_t sector;
	uint32_t nr_sectors; /* 512-byte sectors; data is whole pages, the last one partial */
	uint8_t *data;	     /* nr_sectors * 512 bytes: written from, or read into */
	/* Results. */
	bool done;
	int16_t status;
	uint8_t rsp_op;
	unsigned int rsp_seq; /* bk_bf_responses() counting this one: the order of answers */
	/* Internal. */
	bool persist; /* its pages are persistent grants */
	uint64_t id;
	unsigned int nr_pages;
	uint32_t pfns[BLKIF_MAX_INDIRECT_SEGS + 1];
	uint32_t refs[BLKIF_MAX_INDIRECT_SEGS + 1];
};

struct bk_blkfront;

int bk_bf_open(struct bk_bf_env *env, uint32_t domid, uint32_t devid, const struct bk_bf_params *p,
	       struct bk_blkfront **ret);
/* NULL-safe: revokes its grants (where not still mapped), closes ports, frees. */
void bk_bf_close(struct bk_blkfront *f);
struct bk_xbfront *bk_bf_xbf(struct bk_blkfront *f);

/* Wait for InitWait, read the backend's features (bk_bf_feature). */
int bk_bf_wait_initwait(struct bk_blkfront *f);
/* Read a numeric backend key (features, sectors, info); -ENOENT if absent. */
int bk_bf_feature(struct bk_blkfront *f, const char *key, uint64_t *ret);
/*
 * Set up rings (granted, initialised), event channels, and write every frontend key for the
 * params. A test may then overwrite keys through bk_bf_xbf() before bk_bf_initialise().
 */
int bk_bf_prepare(struct bk_blkfront *f);
/* State Initialised, then wait for the backend to be Connected (-ETIMEDOUT, or its state). */
int bk_bf_initialise(struct bk_blkfront *f);
/* All of the above. */
int bk_bf_connect(struct bk_blkfront *f);
/* bk_bf_open then bk_bf_connect; NULL (nothing left open) if either fails. */
struct bk_blkfront *bk_bf_open_connect(struct bk_bf_env *env, uint32_t domid, uint32_t devid,
				       const struct bk_bf_params *p);
/* Frontend Closing then Closed, waiting for the backend each time (as blkfront on detach). */
int bk_bf_disconnect(struct bk_blkfront *f);
/* Tear our rings down (after a disconnect) so bk_bf_prepare can run again (reconnect). */
void bk_bf_reset(struct bk_blkfront *f);

/*
 * Put one request on queue @q's ring (not yet visible). Grants the data pages (and the
 * indirect page) from the frontend's page range. -EBUSY: ring or pages full.
 */
int bk_bf_queue(struct bk_blkfront *f, unsigned int q, struct bk_bf_io *io);
/* Publish queued requests; notify the backend if it asked (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY). */
void bk_bf_push(struct bk_blkfront *f, unsigned int q);
/*
 * Queue @n 4 KiB reads of consecutive pages (sector 8 * i) into @bufs[i] on queue @q and
 * push them: @ios are zeroed first. The count queued (< @n: ring or pages full).
 */
unsigned int bk_bf_queue_reads(struct bk_blkfront *f, unsigned int q, struct bk_bf_io *ios,
			       unsigned int n, uint8_t (*bufs)[4096]);
/* Take the responses that arrived; completes their ios. Returns how many. */
unsigned int bk_bf_reap(struct bk_blkfront *f, unsigned int q);
/* Pump the daemon until @io is done; -ETIMEDOUT. */
int bk_bf_wait(struct bk_blkfront *f, unsigned int q, struct bk_bf_io *io);
/* Pump until nothing of ours is outstanding on @q. */
int bk_bf_wait_all(struct bk_blkfront *f, unsigned int q);
/* Queue, push and wait one request; returns the response status (or -errno). */
int bk_bf_io_sync(struct bk_blkfront *f, unsigned int q, struct bk_bf_io *io);
/* Convenience: one synchronous read/write of @nr_sectors at @sector. Returns the status. */
int bk_bf_rw(struct bk_blkfront *f, unsigned int q, uint8_t op, uint64_t sector,
	     uint32_t nr_sectors, void *data, bool indirect);

/* Responses whose padding was not zero (XSA-216), unknown ids, and responses seen so far. */
unsigned int bk_bf_bad_padding(const struct bk_blkfront *f);
unsigned int bk_bf_unknown_ids(const struct bk_blkfront *f);
unsigned int bk_bf_responses(const struct bk_blkfront *f);
unsigned int bk_bf_outstanding(const struct bk_blkfront *f, unsigned int q);
/* Persistent grants the frontend holds (0 unless both sides offered them). */
unsigned int bk_bf_persistent_grants(const struct bk_blkfront *f);

/* ------------------------------------------------------------------------------------------ */
/* Hostile access. */

/* The shared ring of queue @q (header, then slots), its entries and slot size. */
struct blkif_sring_hdr *bk_bf_sring(struct bk_blkfront *f, unsigned int q);
uint32_t bk_bf_ring_entries(const struct bk_blkfront *f, unsigned int q);
/* Slot for ring index @idx. */
uint8_t *bk_bf_slot(struct bk_blkfront *f, unsigned int q, uint32_t idx);
/* Write @len raw bytes as the next request (private producer index + 1). */
void bk_bf_put_raw(struct bk_blkfront *f, unsigned int q, const void *raw, size_t len);
/* Our private request producer index (next slot to fill), settable. */
uint32_t bk_bf_req_prod_pvt(const struct bk_blkfront *f, unsigned int q);
void bk_bf_set_req_prod_pvt(struct bk_blkfront *f, unsigned int q, uint32_t v);
/* Notify the backend on queue @q's port, unconditionally. */
int bk_bf_kick(struct bk_blkfront *f, unsigned int q);
/* Notifications the backend sent on @q since the last call. */
unsigned int bk_bf_take_notifies(struct bk_blkfront *f, unsigned int q);
/* Read the response at ring index @idx (any ABI). */
void bk_bf_read_rsp(struct bk_blkfront *f, unsigned int q, uint32_t idx, uint64_t *ret_id,
		    uint8_t *ret_op, int16_t *ret_status);
/* Allocate a guest page from the frontend's range; its address; grant it. */
int bk_bf_alloc_page(struct bk_blkfront *f, uint32_t *ret_pfn);
void bk_bf_free_page(struct bk_blkfront *f, uint32_t pfn);
void *bk_bf_page(struct bk_blkfront *f, uint32_t pfn);
int bk_bf_grant(struct bk_blkfront *f, uint32_t pfn, bool readonly, uint32_t *ret_ref);
/* Encode a request in the frontend's ABI into @raw (BLKIF_MAX_SLOT_SIZE bytes). */
size_t bk_bf_encode_rw(const struct bk_blkfront *f, void *raw, uint8_t op, uint8_t nr_segments,
		       uint64_t id, uint64_t sector, const struct blkif_request_segment *segs);
size_t bk_bf_encode_indirect(const struct bk_blkfront *f, void *raw, uint8_t indirect_op,
			     uint16_t nr_segments, uint64_t id, uint64_t sector,
			     const uint32_t *indirect_refs, unsigned int nr_refs);
size_t bk_bf_encode_discard(const struct bk_blkfront *f, void *raw, uint64_t id, uint64_t sector,
			    uint64_t nr_sectors);

#endif
