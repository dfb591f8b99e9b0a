/* SPDX-License-Identifier: MIT */
/*
 * The blanketd control protocol, spoken over the UNIX stream socket /run/blanketd/control
 * (root only: directory 0700, socket 0600). blanketctl uses it; so may outside tools.
 *
 * Framing. Every message is a 16-byte header followed by @length payload bytes. All integers
 * are little-endian, all structs below are fixed-width with explicit padding, and strings are
 * NUL-padded char arrays (always NUL-terminated). The client sends one request and reads one
 * reply before sending the next; the daemon answers requests in order.
 *
 *   request:  hdr{magic, version=BK_CTL_VERSION, type=BK_CTL_REQ_*, length, status=0} payload
 *   reply:    hdr{magic, version=BK_CTL_VERSION, type=request|BK_CTL_REPLY, length, status=0}
 *   error:    hdr{magic, version=BK_CTL_VERSION, type=BK_CTL_ERROR, length=128,
 *                 status=-errno} struct bk_ctl_error
 *
 * A request with a bad magic, an unknown version, or a payload over BK_CTL_MAX_REQUEST gets an
 * error reply (-EBADMSG, -EPROTONOSUPPORT, -EMSGSIZE) whose header carries the daemon's own
 * version, and the daemon then closes the connection. An unknown request type or a bad payload
 * gets an error reply (-EOPNOTSUPP, -EINVAL, -ENODEV) and the connection stays usable.
 *
 * Requests and their reply payloads:
 *
 *   VERSION  (no payload)  -> struct bk_ctl_version
 *   STATUS   (no payload)  -> struct bk_ctl_status
 *   LIST     (no payload)  -> struct bk_ctl_list, then nr x struct bk_ctl_device
 *   STATS    struct bk_ctl_stats_req
 *                          -> struct bk_ctl_list, then nr x { struct bk_ctl_dev_stats,
 *                             nr_queues x queue_size bytes: struct bk_queue_stats }
 *   LIMIT    struct bk_ctl_limit_req (the fields named in limit.flags change, the others stay;
 *            flags 0 only reads)  -> struct bk_ctl_limit (the limits now in effect, flags 0)
 *            -ENODEV: no such device; -EOPNOTSUPP: its backend has no rate limits;
 *            -EINVAL: a value out of range (the message names it).
 *   L0       (no payload)  -> struct bk_ctl_list (elem_size: sizeof(struct bk_ctl_l0dev)),
 *                             then nr x { struct bk_ctl_l0dev, nr_users x user_size bytes:
 *                             struct bk_ctl_l0user, nr_queues x queue_size bytes: struct
 *                             bk_ctl_l0queue }: the cloud's (L0) devices blanketd drives itself.
 *            A daemon older than this request answers -EOPNOTSUPP.
 *
 * Compatibility: within one version, structs only grow at the end, and every variable part
 * carries its own element size (bk_ctl_list.elem_size, bk_ctl_dev_stats.queue_size), so a
 * reader takes the fields it knows and skips the rest. Incompatible changes bump
 * BK_CTL_VERSION.
 */
#ifndef BLANKET_CTL_H
#define BLANKET_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

#define BK_CTL_MAGIC 0x4b4e4c42U /* the bytes "BLNK" */
#define BK_CTL_VERSION 1U
#define BK_CTL_DEFAULT_SOCKET "/run/blanketd/control"

/* Bounds: a request payload, a whole reply, and the queues reported per device. */
#define BK_CTL_MAX_REQUEST 256U
#define BK_CTL_MAX_REPLY (16U << 20)
#define BK_CTL_MAX_QUEUES 64U

enum bk_ctl_type {
	BK_CTL_REQ_VERSION = 1,
	BK_CTL_REQ_LIST = 2,
	BK_CTL_REQ_STATS = 3,
	BK_CTL_REQ_STATUS = 4,
	BK_CTL_REQ_LIMIT = 5,
	BK_CTL_REQ_L0 = 6,
	BK_CTL_REPLY = 0x8000, /* or'ed into the request type */
	BK_CTL_ERROR = 0xffff,
};

struct bk_ctl_hdr {
	uint32_t magic;	  /* BK_CTL_MAGIC */
	uint16_t version; /* BK_CTL_VERSION */
	uint16_t type;	  /* enum bk_ctl_type */
	uint32_t length;  /* payload bytes after the header */
	int32_t status;	  /* replies: 0 or -errno (Linux numbers); requests: 0 */
};

struct bk_ctl_error {
	int32_t err;   /* same as hdr.status */
	char msg[124]; /* human-readable, e.g. "no device vbd 5/51712" */
};

struct bk_ctl_version {
	uint32_t proto_version; /* BK_CTL_VERSION of the daemon */
	uint32_t pid;
	char version[32];  /* package version, "0.1.0" */
	char platform[16]; /* "xen" or "sim" */
	uint64_t uptime_ms;
};

/* Device flags in bk_ctl_device.flags and bk_ctl_status. */
enum {
	BK_CTL_DEV_ONLINE = 1U << 0,	    /* the toolstack wants it (online=1) */
	BK_CTL_DEV_SHUTTING_DOWN = 1U << 1, /* draining I/O before release */
	BK_CTL_DEV_FAILED = 1U << 2,	    /* closed with an error (see bk_ctl_device.error) */
};

struct bk_ctl_status {
	uint32_t nr_devices;
	uint32_t nr_connected;	/* backend state Connected */
	uint32_t nr_connecting; /* Initialising .. Initialised */
	uint32_t nr_closing;	/* Closing or Closed, without error */
	uint32_t nr_failed;	/* BK_CTL_DEV_FAILED */
	uint32_t pid;
	uint64_t uptime_ms;
};

/* Head of a variable reply (LIST, STATS). */
struct bk_ctl_list {
	uint32_t nr; /* elements that follow */
	uint32_t
		elem_size; /* LIST: sizeof(struct bk_ctl_device); STATS: sizeof(bk_ctl_dev_stats) */
};

struct bk_ctl_device {
	char kind[8];	/* xenstore kind: "vbd", "vif" */
	uint32_t domid; /* frontend domain */
	uint32_t devid;
	uint32_t state;	    /* backend xenbus state (1..8, as xen/io/xenbus.h) */
	uint32_t fe_state;  /* frontend xenbus state as last read */
	uint32_t nr_queues; /* 0 if the backend reports no stats */
	uint32_t flags;	    /* BK_CTL_DEV_* */
	char name[48];	    /* "vbd 5/51712" */
	char describe[256]; /* backend's one-liner: "file=/img.raw engine=io_uring queues=4 ..." */
	char error[128];    /* the error the device failed with, if BK_CTL_DEV_FAILED */
};

enum {
	BK_CTL_STATS_ALL = 1U << 0, /* every device; kind/domid/devid ignored */
};

struct bk_ctl_stats_req {
	char kind[8]; /* "vbd" */
	uint32_t domid;
	uint32_t devid;
	uint32_t flags; /* BK_CTL_STATS_* */
	uint32_t pad;
};

struct bk_ctl_dev_stats {
	char kind[8];
	uint32_t domid;
	uint32_t devid;
	uint32_t nr_queues;  /* queue records that follow (at most BK_CTL_MAX_QUEUES) */
	uint32_t queue_size; /* bytes per record: sizeof(struct bk_queue_stats) of the sender */
	char name[48];
};

/*
 * A disk's rate limits: two token buckets (requests and bytes) refilled at these rates, each
 * holding at most @burst_ms worth of its rate. 0 is unlimited. The same text form
 * ("iops=500,bps=20M,burst=200", or "off") is used by blanketctl, the configuration and the
 * xl target settings (bk_ctl_parse_limit).
 */
#define BK_CTL_LIMIT_IOPS_MAX 10000000ULL /* requests per second */
#define BK_CTL_LIMIT_BPS_MAX (1ULL << 40) /* bytes per second */
#define BK_CTL_LIMIT_BURST_MIN 1U	  /* ms */
#define BK_CTL_LIMIT_BURST_MAX 60000U
#define BK_CTL_LIMIT_BURST_DEFAULT 100U

enum {
	BK_CTL_LIMIT_IOPS = 1U << 0, /* iops given */
	BK_CTL_LIMIT_BPS = 1U << 1,  /* bps given */
	BK_CTL_LIMIT_BURST = 1U << 2 /* burst_ms given */
};

struct bk_ctl_limit {
	uint64_t iops;	   /* requests per second; 0: unlimited */
	uint64_t bps;	   /* bytes per second; 0: unlimited */
	uint32_t burst_ms; /* each bucket holds this much of its rate */
	uint32_t flags;	   /* BK_CTL_LIMIT_*: in a request, the fields to change */
};

struct bk_ctl_limit_req {
	char kind[8]; /* "vbd" ("" matches any kind) */
	uint32_t domid;
	uint32_t devid;
	struct bk_ctl_limit limit;
};

/* An L0 device's flags (bk_ctl_l0dev.flags): what the device offers and how it is. */
enum {
	BK_CTL_L0_FLUSH = 1U << 0,
	BK_CTL_L0_DISCARD = 1U << 1,
	BK_CTL_L0_WRITE_ZEROES = 1U << 2,
	BK_CTL_L0_READONLY = 1U << 3,
	BK_CTL_L0_CONNECTED = 1U << 4, /* vhost-user: the back-end is there; PCI: always */
	BK_CTL_L0_LINK_UP = 1U << 5,   /* virtio-net: the link is up */
};

/*
 * A device of the cloud (L0) that blanketd drives itself: virtio-blk (a disk's engine) or
 * virtio-net (a vif's port), over PCI or vhost-user.
 */
struct bk_ctl_l0dev {
	char kind[16];	    /* "virtio-blk" | "virtio-net" */
	char name[112];	    /* the PCI address, or the vhost-user socket path */
	char transport[16]; /* "pci" | "vhost-user" */
	char dma_mode[16];  /* "identity" | "pagemap" | "p2m" */
	char dma_why[128];  /* why that mode (as logged at start) */
	char irq[16];	    /* PCI: "INTx" | "polled"; vhost-user: "eventfd" */
	union {
		uint64_t capacity; /* virtio-blk: bytes */
		uint64_t mac;	   /* virtio-net: its MAC, first byte in bits 47..40; 0: none */
	};
	uint64_t features;	  /* negotiated virtio features */
	uint64_t lost_interrupts; /* PCI INTx: completions only the safety poll found */
	uint64_t reconnects;	  /* vhost-user: back-end restarts survived */
	uint32_t block_size;	  /* virtio-blk: bytes */
	uint32_t flags;		  /* BK_CTL_L0_* */
	uint32_t nr_users;	  /* struct bk_ctl_l0user records that follow */
	uint32_t user_size;
	uint32_t nr_queues; /* struct bk_ctl_l0queue records after the users */
	uint32_t queue_size;
};

/* One guest disk on a byte range of an L0 device; the vif of a virtio-net port (range 0+0). */
struct bk_ctl_l0user {
	char owner[48];	 /* "vbd 5/51712" / "vif 5/0", or "" when none was named */
	uint64_t offset; /* bytes */
	uint64_t size;
};

/*
 * One virtqueue of an L0 device (virtio-net: one queue pair): who uses it and what it did.
 * The counters are the device kind's: eight 64-bit words either way.
 */
struct bk_ctl_l0queue {
	uint32_t index;
	uint32_t size;	/* entries (virtio-net: of each ring of the pair) */
	char owner[48]; /* the disk or vif whose I/O it carries, "" when free */
	union {
		struct {		/* virtio-blk: completed device requests */
			uint64_t reads; /* by type */
			uint64_t writes;
			uint64_t flushes;
			uint64_t discards; /* DISCARD and WRITE_ZEROES */
			uint64_t errors;   /* any status but OK */
			uint64_t bytes_read;
			uint64_t bytes_written;
			uint64_t inflight; /* requests with the device now */
		};
		struct { /* virtio-net: frames, bytes of Ethernet frames (no virtio header) */
			uint64_t rx_frames; /* from the device, handed to the vif */
			uint64_t rx_bytes;
			uint64_t tx_frames; /* from the vif, given to the device */
			uint64_t tx_bytes;
			uint64_t rx_drops; /* malformed or too large RX frames */
			uint64_t tx_waits; /* no ring or buffer space: the rest of a batch waited */
			uint64_t tx_csum_sw; /* partial checksums finished in software */
			uint64_t tx_pages;   /* pages of sent TX frames the device still holds */
		};
	};
};

_Static_assert(sizeof(struct bk_ctl_l0dev) == 360, "wire layout");
_Static_assert(sizeof(struct bk_ctl_l0user) == 64, "wire layout");
_Static_assert(sizeof(struct bk_ctl_l0queue) == 120, "wire layout");
_Static_assert(sizeof(struct bk_ctl_limit) == 24, "wire layout");
_Static_assert(sizeof(struct bk_ctl_limit_req) == 40, "wire layout");
_Static_assert(sizeof(struct bk_ctl_hdr) == 16, "wire layout");
_Static_assert(sizeof(struct bk_ctl_error) == 128, "wire layout");
_Static_assert(sizeof(struct bk_ctl_version) == 64, "wire layout");
_Static_assert(sizeof(struct bk_ctl_status) == 32, "wire layout");
_Static_assert(sizeof(struct bk_ctl_device) == 464, "wire layout");
_Static_assert(sizeof(struct bk_ctl_stats_req) == 24, "wire layout");
_Static_assert(sizeof(struct bk_ctl_dev_stats) == 72, "wire layout");
_Static_assert(sizeof(struct bk_queue_stats) == (175 + 17 + 2) * 8, "wire layout");

/*
 * Helpers (src/ctl_proto.c, linked into blanketd and blanketctl). The *_swap functions convert
 * between host and wire byte order in place (the same call both ways; no-ops on little-endian
 * hosts).
 */
struct bk_ctl_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max; /* refuse to grow past this: appends then fail with -E2BIG */
};

/* Append @len bytes (zeroed if @src is NULL); returns a pointer to them or NULL (-E2BIG/-ENOMEM
 * via *err). */
void *bk_ctl_buf_append(struct bk_ctl_buf *b, const void *src, size_t len, int *err);
void bk_ctl_buf_release(struct bk_ctl_buf *b);

/* Fill @h in wire order. */
void bk_ctl_hdr_encode(struct bk_ctl_hdr *h, uint16_t type, uint32_t length, int32_t status);
/*
 * Decode a received header into host order. Checks magic, version and @max_len; returns 0,
 * -EBADMSG, -EPROTONOSUPPORT or -EMSGSIZE. @ret is filled even on failure (for messages).
 */
int bk_ctl_hdr_decode(const void *wire, uint32_t max_len, struct bk_ctl_hdr *ret);

void bk_ctl_error_swap(struct bk_ctl_error *e);
void bk_ctl_version_swap(struct bk_ctl_version *v);
void bk_ctl_status_swap(struct bk_ctl_status *s);
void bk_ctl_list_swap(struct bk_ctl_list *l);
void bk_ctl_device_swap(struct bk_ctl_device *d);
void bk_ctl_stats_req_swap(struct bk_ctl_stats_req *r);
void bk_ctl_dev_stats_swap(struct bk_ctl_dev_stats *d);
void bk_ctl_queue_stats_swap(struct bk_queue_stats *q);
void bk_ctl_limit_swap(struct bk_ctl_limit *l);
void bk_ctl_limit_req_swap(struct bk_ctl_limit_req *r);
void bk_ctl_l0dev_swap(struct bk_ctl_l0dev *d);
void bk_ctl_l0user_swap(struct bk_ctl_l0user *u);
void bk_ctl_l0queue_swap(struct bk_ctl_l0queue *q);

/*
 * Parse one rate-limit setting (@key "iops", "bps" with an optional K/M/G suffix, or "burst"
 * in ms) into @l, setting its flag. -EINVAL with the reason, naming key and value, in @why;
 * -ENOENT (and @why) for an unknown key. @l is untouched on failure.
 */
int bk_ctl_parse_limit_key(const char *key, const char *value, struct bk_ctl_limit *l, char *why,
			   size_t len);
/*
 * Parse "iops=N,bps=SIZE,burst=MS" (any of them, in any order) or "off" (iops=0,bps=0) on top
 * of @l. On failure @l is untouched and @why names the bad part.
 */
int bk_ctl_parse_limit(const char *spec, struct bk_ctl_limit *l, char *why, size_t len);
/*
 * A vif's rate as xl.cfg writes it (the value of `rate=`: RATE/s[@INTERVAL], k/M/G powers of
 * 1000, B bytes or b bits, s/ms/us, 50 ms by default) into @l: bps the rate in bytes per
 * second, burst_ms the credit window. -EINVAL with @why naming the value.
 */
int bk_ctl_parse_vif_rate(const char *value, struct bk_ctl_limit *l, char *why, size_t len);
/* "iops=500,bps=20M,burst=100", "iops=500,burst=100" or "off" (burst only when limited). */
void bk_ctl_format_limit(const struct bk_ctl_limit *l, char *buf, size_t len);

/* Copy @s into the fixed array @dst of @size bytes, NUL-padded and always terminated. */
void bk_ctl_strpad(char *dst, size_t size, const char *s);
/* Xenbus state name ("Connected"), "Unknown" out of range. */
const char *bk_ctl_state_name(uint32_t state);

#endif
