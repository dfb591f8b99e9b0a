/* SPDX-License-Identifier: MIT */
/*
 * The Xen platform layer. Backends and the daemon core talk to Xen only through this ops table,
 * so the same code runs over the real libxen* libraries (real.c) and over the in-process
 * simulation (sim.c, for unit tests and fuzzing).
 *
 * Objects: one struct bk_xen per platform instance; from it, xenstore connections
 * (struct bk_xs), event-channel handles (struct bk_evtchn: one pollable fd, many ports) and
 * grant-table handles (struct bk_gnttab). Every object starts with a pointer to its platform,
 * which carries the ops; the inline wrappers below dispatch. All calls return >= 0 on success
 * or -errno, and leave ret_* untouched on failure.
 */
#ifndef BK_XEN_H
#define BK_XEN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_XS_NULL 0U /* "no transaction" */
#define BK_PAGE_SIZE 4096U
#define BK_DOMID_SELF 0x7FF0U

struct bk_xen;
struct bk_xs;
struct bk_evtchn;
struct bk_gnttab;

/* Xenstore permission, as in xs_lib.h: the first entry names the owner and everyone's default. */
enum {
	BK_XS_PERM_NONE = 0,
	BK_XS_PERM_READ = 1,
	BK_XS_PERM_WRITE = 2,
	BK_XS_PERM_BOTH = 3,
};

struct bk_xs_perm {
	uint32_t domid;
	uint32_t perms; /* BK_XS_PERM_* */
};

/*
 * One segment of a grant copy: between a guest's granted page (domid, ref, offset) and local
 * memory. @status is written per segment: 0 on success, a negative GNTST_* value from
 * xen/grant_table.h on failure (the caller answers the request with an error).
 */
struct bk_gnt_copy_seg {
	void *local;
	uint32_t domid;
	uint32_t ref;
	uint16_t offset; /* in the guest page */
	uint16_t len;    /* offset + len <= 4096 */
	bool to_guest;   /* true: local -> guest page; false: guest page -> local */
	int16_t status;
};

struct bk_xen_ops {
	const char *name; /* "xen" or "sim" */
	/* Release the platform; every handle made from it must be closed first. */
	void (*free)(struct bk_xen *x);

	/* The domain this process runs in. */
	int (*own_domid)(struct bk_xen *x, uint32_t *ret_domid);
	/* 1 if @domid exists and is not dying, 0 if gone or dying, -errno on error. */
	int (*domain_alive)(struct bk_xen *x, uint32_t domid);

	/* Xenstore connection with a pollable fd that becomes readable when a watch fires. */
	int (*xs_open)(struct bk_xen *x, struct bk_xs **ret);
	void (*xs_close)(struct bk_xs *xs);
	int (*xs_fd)(struct bk_xs *xs);
	/* Value as a NUL-terminated malloc'd string (Xenstore values may hold NULs: @ret_len). */
	int (*xs_read)(struct bk_xs *xs, uint32_t t, const char *path, char **ret_val,
		       size_t *ret_len);
	int (*xs_write)(struct bk_xs *xs, uint32_t t, const char *path, const void *val,
			size_t len);
	int (*xs_mkdir)(struct bk_xs *xs, uint32_t t, const char *path);
	/* Removes the node and its children; -ENOENT if absent. */
	int (*xs_rm)(struct bk_xs *xs, uint32_t t, const char *path);
	/* Child names as one malloc'd array of pointers into the same allocation (free once). */
	int (*xs_directory)(struct bk_xs *xs, uint32_t t, const char *path, char ***ret_names,
			    unsigned int *ret_n);
	int (*xs_get_perms)(struct bk_xs *xs, uint32_t t, const char *path,
			    struct bk_xs_perm **ret_perms, unsigned int *ret_n);
	int (*xs_set_perms)(struct bk_xs *xs, uint32_t t, const char *path,
			    const struct bk_xs_perm *perms, unsigned int n);
	/* Fires once at once, then on every change of @path or anything below it. */
	int (*xs_watch)(struct bk_xs *xs, const char *path, const char *token);
	int (*xs_unwatch)(struct bk_xs *xs, const char *path, const char *token);
	/* Next fired watch, non-blocking: -EAGAIN when none. Both strings are malloc'd. */
	int (*xs_read_watch)(struct bk_xs *xs, char **ret_path, char **ret_token);
	int (*xs_transaction_start)(struct bk_xs *xs, uint32_t *ret_t);
	/* Commit (or abort); -EAGAIN when a conflicting change means the caller must retry. */
	int (*xs_transaction_end)(struct bk_xs *xs, uint32_t t, bool abort);

	/* Event channels: one handle, one fd, any number of bound ports. */
	int (*evtchn_open)(struct bk_xen *x, struct bk_evtchn **ret);
	void (*evtchn_close)(struct bk_evtchn *e);
	int (*evtchn_fd)(struct bk_evtchn *e);
	int (*evtchn_bind)(struct bk_evtchn *e, uint32_t domid, uint32_t remote_port,
			   uint32_t *ret_local_port);
	int (*evtchn_unbind)(struct bk_evtchn *e, uint32_t local_port);
	int (*evtchn_notify)(struct bk_evtchn *e, uint32_t local_port);
	/*
	 * Next pending port (masked until unmasked), non-blocking: -EAGAIN when none. -EFBIG:
	 * the handle's queue of pending ports overflowed and events were lost; the queue has
	 * been reset (said once per overflow), and the caller must treat every port it bound
	 * through @e as pending and masked: handle each, then unmask it.
	 *
	 * Ports are read in batches (evtchn_batch.h): a caller must take, per fd callback, as
	 * many ports as it bound through @e or up to -EAGAIN, or a port already read waits
	 * until the fd is next readable. Once that many went out, the next call says -EAGAIN
	 * without reading: one read per callback.
	 */
	int (*evtchn_pending)(struct bk_evtchn *e, uint32_t *ret_port);
	/* Unmasks made while ports of the batch are still to be taken go in one write. */
	int (*evtchn_unmask)(struct bk_evtchn *e, uint32_t local_port);

	/* Grant tables: map, unmap, copy. */
	int (*gnt_open)(struct bk_xen *x, struct bk_gnttab **ret);
	void (*gnt_close)(struct bk_gnttab *g);
	/* Map @n refs of @domid contiguously; read-only unless @writable. */
	int (*gnt_map)(struct bk_gnttab *g, uint32_t domid, const uint32_t *refs, unsigned int n,
		       bool writable, void **ret_addr);
	int (*gnt_unmap)(struct bk_gnttab *g, void *addr, unsigned int n);
	/*
	 * Copy @n segments in one batch. Returns 0 when the batch was carried out (check each
	 * segment's status) or -errno when nothing could be done.
	 */
	int (*gnt_copy)(struct bk_gnttab *g, struct bk_gnt_copy_seg *segs, unsigned int n);
	/* Number of grant pages this handle has mapped right now (leak checks, stats). */
	unsigned int (*gnt_nr_mapped)(struct bk_gnttab *g);
};

/* Base of every platform; implementations embed it first. */
struct bk_xen {
	const struct bk_xen_ops *ops;
};

/* Every handle starts with this. */
struct bk_xen_handle {
	struct bk_xen *xen;
};

struct bk_xs {
	struct bk_xen_handle h;
};
struct bk_evtchn {
	struct bk_xen_handle h;
};
struct bk_gnttab {
	struct bk_xen_handle h;
};

/* The real platform over libxen*; -ENOSYS when built without Xen libraries. */
int bk_xen_real_new(struct bk_xen **ret);
/*
 * The first node under @root ("" for /) that the real platform needs and this domain lacks:
 * /dev/xen/evtchn, /dev/xen/gntdev (present and read-write), then a way to xenstore (its
 * socket or the xenbus device). 0 when nothing is missing; else -errno and @ret_msg (@len
 * bytes) names the node, what it is for and what provides it.
 */
int bk_xen_missing_node(const char *root, char *ret_msg, size_t len);

static inline void bk_xen_free(struct bk_xen *x)
{
	if (x)
		x->ops->free(x);
}

#define BK_XOPS(obj) ((obj)->h.xen->ops)

static inline int bk_xs_open(struct bk_xen *x, struct bk_xs **ret)
{
	return x->ops->xs_open(x, ret);
}
static inline void bk_xs_close(struct bk_xs *xs)
{
	if (xs)
		BK_XOPS(xs)->xs_close(xs);
}
static inline int bk_xs_fd(struct bk_xs *xs)
{
	return BK_XOPS(xs)->xs_fd(xs);
}
static inline int bk_xs_read(struct bk_xs *xs, uint32_t t, const char *path, char **ret_val,
			     size_t *ret_len)
{
	return BK_XOPS(xs)->xs_read(xs, t, path, ret_val, ret_len);
}
static inline int bk_xs_write(struct bk_xs *xs, uint32_t t, const char *path, const void *val,
			      size_t len)
{
	return BK_XOPS(xs)->xs_write(xs, t, path, val, len);
}
static inline int bk_xs_mkdir(struct bk_xs *xs, uint32_t t, const char *path)
{
	return BK_XOPS(xs)->xs_mkdir(xs, t, path);
}
static inline int bk_xs_rm(struct bk_xs *xs, uint32_t t, const char *path)
{
	return BK_XOPS(xs)->xs_rm(xs, t, path);
}
static inline int bk_xs_directory(struct bk_xs *xs, uint32_t t, const char *path,
				  char ***ret_names, unsigned int *ret_n)
{
	return BK_XOPS(xs)->xs_directory(xs, t, path, ret_names, ret_n);
}
static inline int bk_xs_get_perms(struct bk_xs *xs, uint32_t t, const char *path,
				  struct bk_xs_perm **ret_perms, unsigned int *ret_n)
{
	return BK_XOPS(xs)->xs_get_perms(xs, t, path, ret_perms, ret_n);
}
static inline int bk_xs_set_perms(struct bk_xs *xs, uint32_t t, const char *path,
				  const struct bk_xs_perm *perms, unsigned int n)
{
	return BK_XOPS(xs)->xs_set_perms(xs, t, path, perms, n);
}
static inline int bk_xs_watch(struct bk_xs *xs, const char *path, const char *token)
{
	return BK_XOPS(xs)->xs_watch(xs, path, token);
}
static inline int bk_xs_unwatch(struct bk_xs *xs, const char *path, const char *token)
{
	return BK_XOPS(xs)->xs_unwatch(xs, path, token);
}
static inline int bk_xs_read_watch(struct bk_xs *xs, char **ret_path, char **ret_token)
{
	return BK_XOPS(xs)->xs_read_watch(xs, ret_path, ret_token);
}
static inline int bk_xs_transaction_start(struct bk_xs *xs, uint32_t *ret_t)
{
	return BK_XOPS(xs)->xs_transaction_start(xs, ret_t);
}
static inline int bk_xs_transaction_end(struct bk_xs *xs, uint32_t t, bool abort)
{
	return BK_XOPS(xs)->xs_transaction_end(xs, t, abort);
}

static inline int bk_evtchn_open(struct bk_xen *x, struct bk_evtchn **ret)
{
	return x->ops->evtchn_open(x, ret);
}
static inline void bk_evtchn_close(struct bk_evtchn *e)
{
	if (e)
		BK_XOPS(e)->evtchn_close(e);
}
static inline int bk_evtchn_fd(struct bk_evtchn *e)
{
	return BK_XOPS(e)->evtchn_fd(e);
}
static inline int bk_evtchn_bind(struct bk_evtchn *e, uint32_t domid, uint32_t remote_port,
				 uint32_t *ret_local_port)
{
	return BK_XOPS(e)->evtchn_bind(e, domid, remote_port, ret_local_port);
}
static inline int bk_evtchn_unbind(struct bk_evtchn *e, uint32_t port)
{
	return BK_XOPS(e)->evtchn_unbind(e, port);
}
static inline int bk_evtchn_notify(struct bk_evtchn *e, uint32_t port)
{
	return BK_XOPS(e)->evtchn_notify(e, port);
}
static inline int bk_evtchn_pending(struct bk_evtchn *e, uint32_t *ret_port)
{
	return BK_XOPS(e)->evtchn_pending(e, ret_port);
}
static inline int bk_evtchn_unmask(struct bk_evtchn *e, uint32_t port)
{
	return BK_XOPS(e)->evtchn_unmask(e, port);
}

static inline int bk_gnt_open(struct bk_xen *x, struct bk_gnttab **ret)
{
	return x->ops->gnt_open(x, ret);
}
static inline void bk_gnt_close(struct bk_gnttab *g)
{
	if (g)
		BK_XOPS(g)->gnt_close(g);
}
static inline int bk_gnt_map(struct bk_gnttab *g, uint32_t domid, const uint32_t *refs,
			     unsigned int n, bool writable, void **ret_addr)
{
	return BK_XOPS(g)->gnt_map(g, domid, refs, n, writable, ret_addr);
}
static inline int bk_gnt_unmap(struct bk_gnttab *g, void *addr, unsigned int n)
{
	return BK_XOPS(g)->gnt_unmap(g, addr, n);
}
static inline int bk_gnt_copy(struct bk_gnttab *g, struct bk_gnt_copy_seg *segs, unsigned int n)
{
	return BK_XOPS(g)->gnt_copy(g, segs, n);
}
static inline unsigned int bk_gnt_nr_mapped(struct bk_gnttab *g)
{
	return BK_XOPS(g)->gnt_nr_mapped(g);
}

/* Helpers over the ops (xs_util.c). */
/* Read @dir/@key (key may be NULL) as a string. */
int bk_xs_read_str(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, char **ret);
/* Read and parse an unsigned decimal; -EINVAL when not a clean number in range. */
int bk_xs_read_u64(struct bk_xs *xs, uint32_t t, const char *dir, const char *key,
		   uint64_t *ret);
int bk_xs_read_u32(struct bk_xs *xs, uint32_t t, const char *dir, const char *key,
		   uint32_t *ret);
/* printf into @dir/@key (@key may be NULL). */
int bk_xs_vprintf(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, const char *fmt,
		  va_list ap) __attribute__((format(printf, 5, 0)));
int bk_xs_printf(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, const char *fmt,
		 ...) __attribute__((format(printf, 5, 6)));
/* Strict decimal parser used for every hostile number: no sign, no spaces, no overflow. */
int bk_parse_u64(const char *s, uint64_t *ret);

/* Text for a GNTST_* grant status (bk_gnt_copy_seg.status), for log lines (gntst.c). */
const char *bk_xen_gntst_str(int16_t st);

/*
 * Copy @n segments in one call (gcopy.c). When the call fails as a whole, every segment's
 * status is GNTST_general_error and its -errno is returned (log it; answer with the statuses).
 */
int bk_gnt_copy_batch(struct bk_gnttab *g, struct bk_gnt_copy_seg *segs, unsigned int n);
/* The first failed status of @n segments after a copy, 0 (GNTST_okay) if all were copied. */
int16_t bk_gnt_copy_status(const struct bk_gnt_copy_seg *segs, unsigned int n);

/*
 * Take up to @max pending ports off @e (evtchn_util.c): @on_port(@data, port) for each, the
 * port still masked (the callee unmasks it when it should). When the handle's queue overflowed
 * (events lost, their ports left masked, the queue reset) @on_lost(@data) once, and stop: the
 * caller must treat every port it bound as pending and unmask it. Returns the ports taken.
 */
unsigned int bk_evtchn_drain(struct bk_evtchn *e, unsigned int max,
			     void (*on_port)(void *data, uint32_t port), void (*on_lost)(void *data),
			     void *data);

#endif
