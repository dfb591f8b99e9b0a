/* SPDX-License-Identifier: MIT */
/*
 * Private to the real platform (real.c, real_xs.c, real_chan.c): the handle types over the
 * libxen* handles and the ops each file provides to the table in real.c.
 */
#ifndef BK_XEN_REAL_INTERNAL_H
#define BK_XEN_REAL_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "evtchn_batch.h"
#include "xen.h"

/* First reserved domain id (DOMID_FIRST_RESERVED): every real domain is below it. */
#define REAL_DOMID_LIMIT 0x7FF0U

/*
 * Grant-copy segments handed to the kernel in one ioctl. The handle keeps a scratch array of
 * this size so gnt_copy never allocates; bigger batches go in several ioctls.
 */
#define REAL_COPY_BATCH 256U

struct real_xen {
	struct bk_xen base;
	xc_interface *xc;
	bool have_domid; /* own domid cached after the first lookup */
	uint32_t domid;
	unsigned int nr_handles; /* open xs/evtchn/gnttab handles: must be 0 at free */
};

struct real_xs {
	struct bk_xs base;
	struct xs_handle *h;
	int fd; /* libxenstore's watch pipe, from xs_fileno() */
};

struct real_evtchn {
	struct bk_evtchn base;
	xenevtchn_handle *h;
	int fd;
	struct evtchn_batch batch; /* many ports per read(2), many unmasks per write(2) */
};

struct real_gnttab {
	struct bk_gnttab base;
	xengnttab_handle *h;
	unsigned int nr_mapped;
	xengnttab_grant_copy_segment_t *batch; /* REAL_COPY_BATCH entries */
	uint32_t *batch_idx;		       /* batch slot -> caller's segment */
};

/* -errno of a failed libxen call; never 0 (some paths fail without setting errno). */
static inline int real_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Handle accounting, so freeing a platform with open handles is caught (real.c). */
void real_handle_get(struct bk_xen *x);
void real_handle_put(struct bk_xen *x);

/* real_xs.c */
int real_xs_open(struct bk_xen *x, struct bk_xs **ret);
void real_xs_close(struct bk_xs *xs);
int real_xs_fd(struct bk_xs *xs);
int real_xs_read(struct bk_xs *xs, uint32_t t, const char *path, char **ret_val, size_t *ret_len);
int real_xs_write(struct bk_xs *xs, uint32_t t, const char *path, const void *val, size_t len);
int real_xs_mkdir(struct bk_xs *xs, uint32_t t, const char *path);
int real_xs_rm(struct bk_xs *xs, uint32_t t, const char *path);
int real_xs_directory(struct bk_xs *xs, uint32_t t, const char *path, char ***ret_names,
		      unsigned int *ret_n);
int real_xs_get_perms(struct bk_xs *xs, uint32_t t, const char *path, struct bk_xs_perm **ret_perms,
		      unsigned int *ret_n);
int real_xs_set_perms(struct bk_xs *xs, uint32_t t, const char *path,
		      const struct bk_xs_perm *perms, unsigned int n);
int real_xs_watch(struct bk_xs *xs, const char *path, const char *token);
int real_xs_unwatch(struct bk_xs *xs, const char *path, const char *token);
int real_xs_read_watch(struct bk_xs *xs, char **ret_path, char **ret_token);
int real_xs_transaction_start(struct bk_xs *xs, uint32_t *ret_t);
int real_xs_transaction_end(struct bk_xs *xs, uint32_t t, bool abort);

/* real_chan.c: event channels and grant tables */
int real_evtchn_open(struct bk_xen *x, struct bk_evtchn **ret);
void real_evtchn_close(struct bk_evtchn *e);
int real_evtchn_fd(struct bk_evtchn *e);
int real_evtchn_bind(struct bk_evtchn *e, uint32_t domid, uint32_t remote_port,
		     uint32_t *ret_local_port);
int real_evtchn_unbind(struct bk_evtchn *e, uint32_t local_port);
int real_evtchn_notify(struct bk_evtchn *e, uint32_t local_port);
int real_evtchn_pending(struct bk_evtchn *e, uint32_t *ret_port);
int real_evtchn_unmask(struct bk_evtchn *e, uint32_t local_port);

int real_gnt_open(struct bk_xen *x, struct bk_gnttab **ret);
void real_gnt_close(struct bk_gnttab *g);
int real_gnt_map(struct bk_gnttab *g, uint32_t domid, const uint32_t *refs, unsigned int n,
		 bool writable, void **ret_addr);
int real_gnt_unmap(struct bk_gnttab *g, void *addr, unsigned int n);
int real_gnt_copy(struct bk_gnttab *g, struct bk_gnt_copy_seg *segs, unsigned int n);
unsigned int real_gnt_nr_mapped(struct bk_gnttab *g);

#endif
