/* SPDX-License-Identifier: MIT */
/*
 * A generic xenbus frontend player for tests. It acts as the guest: writes keys and switches
 * state in the frontend directory through the guest's own simulated platform (so xenstore
 * permissions apply), reads what the backend published, and waits for the backend by pumping
 * the daemon's loop. Device-specific test frontends (blkfront.c, netfront.c) sit on top: they
 * keep a struct bk_xbfront and add rings, grants and event channels.
 */
#ifndef BK_TEST_XENBUS_FRONT_H
#define BK_TEST_XENBUS_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macros.h"

struct bk_sim;
struct bk_loop;
struct bk_xen;
struct bk_xs;

/* Default bound for waits: iterations of bk_loop_run_once(loop, BK_XBF_TICK_MS). */
#define BK_XBF_WAIT_ITERS 1000
#define BK_XBF_TICK_MS 10

struct bk_xbfront {
	struct bk_sim *sim;
	struct bk_loop *loop; /* the daemon's loop, pumped while waiting */
	struct bk_xen *xen;   /* the guest's platform */
	struct bk_xs *xs;     /* xenstore as the guest */
	uint32_t domid;	      /* the guest */
	uint32_t be_domid;    /* from <path>/backend-id */
	char *path;	      /* /local/domain/<domid>/device/<kind>/<devid> */
	char *be_path;	      /* from <path>/backend */
};

/*
 * Open a frontend player for @path in guest @domid (the toolstack already created the
 * directory with backend and backend-id, which are read here).
 */
int bk_xbf_open(struct bk_sim *sim, struct bk_loop *loop, uint32_t domid, const char *path,
		struct bk_xbfront **ret);
/* NULL-safe. Closes the guest's xenstore connection and platform. */
void bk_xbf_close(struct bk_xbfront *f);

/* printf into <path>/<key> as the guest. */
int bk_xbf_write(struct bk_xbfront *f, const char *key, const char *fmt, ...) _printf_(3, 4);
/* Raw bytes (may hold NULs or garbage: hostile-guest tests). */
int bk_xbf_write_raw(struct bk_xbfront *f, const char *key, const void *val, size_t len);
int bk_xbf_rm(struct bk_xbfront *f, const char *key);
/* Read <path>/<key> or <be_path>/<key> (as the guest: needs the toolstack's read grant). */
int bk_xbf_read(struct bk_xbfront *f, const char *key, char **ret);
int bk_xbf_read_be(struct bk_xbfront *f, const char *key, char **ret);
int bk_xbf_read_be_u32(struct bk_xbfront *f, const char *key, uint32_t *ret);

/* Write <path>/state. */
int bk_xbf_set_state(struct bk_xbfront *f, unsigned int state);
/* Backend's state; -ENOENT if absent, -EINVAL if not a clean number. */
int bk_xbf_be_state(struct bk_xbfront *f, unsigned int *ret);
/* Pump until the backend's state is @state. -ETIMEDOUT after @max_iters (0: default). */
int bk_xbf_wait_be_state(struct bk_xbfront *f, unsigned int state, unsigned int max_iters);

/* Run the daemon's loop @n turns. */
void bk_xbf_pump(struct bk_xbfront *f, unsigned int n);

/*
 * Pump @loop until @cond(@data) is true: 0, or -ETIMEDOUT after @max_iters turns (0: default).
 * The condition is checked before every turn, so an already true condition costs nothing.
 */
int bk_test_pump_until(struct bk_loop *loop, bool (*cond)(void *data), void *data,
		       unsigned int max_iters);

#endif
