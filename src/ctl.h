/* SPDX-License-Identifier: MIT */
/*
 * The control socket server: a UNIX stream socket watched through the loop, speaking the
 * protocol in include/blanket/ctl.h. Everything is non-blocking; each client has a bounded
 * request buffer and at most one reply pending (the next request is read only once the reply
 * is sent), so a slow or stuck client costs one reply's memory and never stalls the daemon.
 */
#ifndef BK_CTL_H
#define BK_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bk_ctl;
struct bk_device;
struct bk_loop;
struct list_head;

/*
 * Most clients at once. Another one is admitted by closing the longest idle client; if all
 * are in the middle of a request, it is refused.
 */
#define BK_CTL_MAX_CLIENTS 32U
/* A client half-way through sending a request, or with a reply unread, that makes no progress
 * for this long is dropped. */
#define BK_CTL_STUCK_MS 30000U

struct bk_ctl_params {
	struct bk_loop *loop;
	/* Socket path; its directory is created 0700 if missing, the socket is made 0600. */
	const char *path;
	/* "xen" or "sim", for VERSION. */
	const char *platform;
	/* The live devices (struct bk_device.link), e.g. bk_core_devices(); read per request. */
	struct list_head *(*devices)(void *data);
	/*
	 * Optional: for a device in state Closing or Closed, write the error it failed with into
	 * @buf and return 1; return 0 if it closed cleanly.
	 */
	int (*device_error)(void *data, struct bk_device *dev, char *buf, size_t len);
	/*
	 * Optional: devices the backend refused at probe (listed, counted as failed, no stats;
	 * their error comes from @device_error, else "refused by the backend").
	 */
	struct list_head *(*refused)(void *data);
	/*
	 * Optional: keep every device still while a request reads or changes them (@on true)
	 * and let them go (false), e.g. bk_core_lock_all() with I/O threads.
	 */
	void (*lock)(void *data, bool on);
	void *data;
	/* 0: BK_CTL_STUCK_MS (tests use a short one). */
	unsigned int stuck_timeout_ms;
};

/*
 * Bind and listen on p->path (a stale socket left by a dead daemon is replaced; a live one
 * gives -EADDRINUSE) and start serving from the loop.
 */
int bk_ctl_new(const struct bk_ctl_params *p, struct bk_ctl **ret);
/* NULL-safe: close every client and the socket, and unlink the path. */
void bk_ctl_free(struct bk_ctl *ctl);
/* Serve an already connected stream socket (tests, socket activation); takes @fd. */
int bk_ctl_add_client(struct bk_ctl *ctl, int fd);
/* Device counts as STATUS reports them (host byte order). */
struct bk_ctl_status;
void bk_ctl_get_status(struct bk_ctl *ctl, struct bk_ctl_status *ret);
/* Clients connected now. */
unsigned int bk_ctl_nr_clients(const struct bk_ctl *ctl);

/*
 * The L0 request's source: a driver of the cloud's devices (frontends/virtio) appends, in wire
 * order, one { struct bk_ctl_l0dev, its users, its queues } per device it drives to @b and
 * returns how many (or -errno). Set once by that driver when it first takes a device; until
 * then L0 answers with no devices. Process-wide: the core does not link the drivers.
 */
struct bk_ctl_buf;
typedef int (*bk_ctl_l0_fill_fn)(struct bk_ctl_buf *b);
void bk_ctl_set_l0_source(const char *kind, bk_ctl_l0_fill_fn fill);

#endif
