/* SPDX-License-Identifier: MIT */
/*
 * The blkif ring protocol, free of any Xen or I/O dependency: both ring ABIs (x86_64 and
 * x86_32 layouts differ), copy-once request fetch, request validation, response writing.
 *
 * Everything in a shared ring page is hostile and may change under our feet: each request is
 * copied out of its slot once (XSA-155) and only the private copy is decoded and validated.
 * Every response slot is zeroed before it is filled (XSA-216). The protocol always counts in
 * 512-byte sectors, whatever the backing store's block size.
 */
#ifndef BK_BLKIF_PROTO_H
#define BK_BLKIF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>
#include <xen/io/protocols.h>

#define BLKIF_SECTOR_SHIFT 9
#define BLKIF_SECTOR_SIZE 512U
#define BLKIF_SECTORS_PER_PAGE 8U
/* Segments we advertise for indirect requests (feature-max-indirect-segments). */
#define BLKIF_MAX_INDIRECT_SEGS 256U
/* Segment descriptors per indirect page: 512, so 256 segments take one page. */
#define BLKIF_SEGS_PER_INDIRECT_PAGE (4096U / sizeof(struct blkif_request_segment))
#define BLKIF_MAX_RING_ORDER 4U
#define BLKIF_MAX_RING_PAGES (1U << BLKIF_MAX_RING_ORDER)
/* Largest slot of either ABI: the request of x86_64. */
#define BLKIF_MAX_SLOT_SIZE 112U

enum blkif_abi {
	BLKIF_ABI_X86_64 = 0,
	BLKIF_ABI_X86_32 = 1,
};

/* The ABI named by the frontend's "protocol" key; NULL (absent) means native. -EINVAL else. */
int blkif_abi_parse(const char *protocol, enum blkif_abi *ret);
const char *blkif_abi_name(enum blkif_abi abi);
/* Size of one ring slot (union of request and response) and of a response. */
size_t blkif_abi_slot_size(enum blkif_abi abi);
size_t blkif_abi_rsp_size(enum blkif_abi abi);
/* Entries of a ring of @nr_pages pages: a power of two, as the frontend computes it. */
uint32_t blkif_ring_entries(enum blkif_abi abi, unsigned int nr_pages);

/*
 * A request decoded from the private copy of one slot. For BLKIF_OP_INDIRECT, @op holds the
 * wrapped operation and the segments arrive later (blkif_req_load_indirect).
 */
struct blkif_req {
	uint8_t operation; /* as written on the ring */
	uint8_t op;	   /* effective operation (indirect unwrapped) */
	bool indirect;
	uint8_t discard_flag;
	uint16_t handle;
	uint16_t nr_segments;
	uint16_t nr_indirect_pages;
	uint64_t id;
	uint64_t sector;
	uint64_t nr_sectors; /* discard: as requested; read/write: sum of the segments once checked
			      */
	grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	/*
	 * The caller's array, never touched by decoding: room for BLKIF_MAX_SEGMENTS_PER_REQUEST
	 * and for the limits' max_indirect_segs (the checks admit no more).
	 */
	struct blkif_request_segment *seg;
};

/* What the device allows; the validation rules read only this. */
struct blkif_limits {
	uint64_t nr_sectors; /* device size in 512-byte sectors */
	bool readonly;
	bool discard; /* feature-discard advertised */
	bool flush;   /* feature-flush-cache advertised */
	bool barrier; /* feature-barrier advertised */
	uint16_t max_indirect_segs;
};

/* Decode the private copy @raw (one slot, copied once) of a request in @abi layout. */
void blkif_req_decode(enum blkif_abi abi, const void *raw, struct blkif_req *req);

/*
 * Validate what the request header says. Returns BLKIF_RSP_OKAY, or the status to answer
 * with (BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP); @ret_why names the broken rule for the log.
 * Direct read/write requests have their segments checked here too; indirect ones need
 * blkif_req_load_indirect() then blkif_req_check_segs().
 */
int blkif_req_check(struct blkif_req *req, const struct blkif_limits *lim, const char **ret_why);
/* Take the segment descriptors of an indirect request from our private copy @descs. */
void blkif_req_load_indirect(struct blkif_req *req, const void *descs, size_t len);
/* Check every segment and the sector range; fills req->nr_sectors. Same returns as above. */
int blkif_req_check_segs(struct blkif_req *req, const struct blkif_limits *lim,
			 const char **ret_why);
/* Bytes of data the request moves (after the checks passed). */
static inline uint64_t blkif_req_bytes(const struct blkif_req *req)
{
	return req->nr_sectors << BLKIF_SECTOR_SHIFT;
}
/* True for operations that carry data to the device (write, flush/barrier with segments). */
bool blkif_req_writes(const struct blkif_req *req);

/* Header of a shared ring, as DEFINE_RING_TYPES lays it out (64 bytes before the slots). */
struct blkif_sring_hdr {
	uint32_t req_prod, req_event;
	uint32_t rsp_prod, rsp_event;
	uint8_t pad[48];
};

/* The backend's private view of one shared ring. */
struct blkif_ring {
	struct blkif_sring_hdr *sring;
	uint8_t *slots;
	enum blkif_abi abi;
	uint32_t slot_size;
	uint32_t rsp_size;
	uint32_t nr_ents;
	uint32_t req_cons;
	uint32_t rsp_prod_pvt;
	uint32_t rsp_pushed; /* last rsp_prod we published */
};

/* Attach to a mapped ring of @nr_pages pages (the frontend has initialised it). */
void blkif_ring_attach(struct blkif_ring *r, void *addr, unsigned int nr_pages, enum blkif_abi abi);
/*
 * Requests waiting to be taken, from one read of req_prod. -EPROTO when the producer claims
 * more requests than the ring holds (a bogus frontend: fail the device).
 */
int blkif_ring_pending(struct blkif_ring *r, uint32_t *ret_n);
/*
 * True when no more requests may be taken because every slot is taken or awaits its response
 * (RING_REQUEST_CONS_OVERFLOW).
 */
bool blkif_ring_cons_full(const struct blkif_ring *r);
/* Copy the next request slot into @raw (blkif_abi_slot_size bytes) once, and consume it. */
void blkif_ring_take(struct blkif_ring *r, void *raw);
/* Write one zeroed-then-filled response at rsp_prod_pvt (not yet visible). */
void blkif_ring_put_rsp(struct blkif_ring *r, uint64_t id, uint8_t op, int16_t status);
/* Publish written responses; true when the frontend asked to be notified. */
bool blkif_ring_push(struct blkif_ring *r);
/* Re-arm req_event and re-check (RING_FINAL_CHECK_FOR_REQUESTS): true if work arrived. */
bool blkif_ring_final_check(struct blkif_ring *r);

#endif
