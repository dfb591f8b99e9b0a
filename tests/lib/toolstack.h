/* SPDX-License-Identifier: MIT */
/*
 * A simulated libxl for tests: adds and removes vbd/vif devices in the simulated xenstore the
 * way libxl 4.17 does (same keys, same permissions, one transaction), plays the hotplug
 * script, and destroys guests. It acts from the toolstack domain (dom0) through a platform of
 * its own, and waits for the daemon by pumping the daemon's loop.
 */
#ifndef BK_TEST_TOOLSTACK_H
#define BK_TEST_TOOLSTACK_H

#include <stdint.h>

struct bk_sim;
struct bk_loop;
struct bk_toolstack;

/* Iterations of bk_loop_run_once (10 ms each at most) before a wait gives up. */
#define BK_TS_WAIT_ITERS 1000

/*
 * A device to add. NULL strings take libxl's defaults for a PV disk (vbd: params "/dev/null",
 * mode "w", dev "xvda", device-type "disk", script "/etc/xen/scripts/block", type "phy"; vif:
 * mac "00:16:3e:00:00:01", bridge "xenbr0", script "/etc/xen/scripts/vif-bridge").
 * @extra_be / @extra_fe: NULL-terminated { key, value, key, value, ..., NULL } lists of extra
 * keys (per-device settings), written in the same transaction; a value of NULL is not allowed.
 */
struct bk_ts_dev {
	const char *kind; /* "vbd" or "vif" */
	uint32_t domid;	  /* frontend domain */
	uint32_t devid;	  /* vbd: 51712 for xvda; vif: the handle */
	const char *params;
	const char *mode;
	const char *dev;
	const char *device_type;
	const char *script;
	const char *type;
	const char *mac;
	const char *bridge;
	const char *const *extra_be;
	const char *const *extra_fe;
};

/* @backend_domid: the domain serving the devices (0: dom0). @loop: the daemon's loop. */
int bk_ts_new(struct bk_sim *sim, uint32_t backend_domid, struct bk_loop *loop,
	      struct bk_toolstack **ret);
/* NULL-safe. */
void bk_ts_free(struct bk_toolstack *ts);

/* Write the backend and frontend directories in one transaction, as libxl__device_generic_add. */
int bk_ts_add(struct bk_toolstack *ts, const struct bk_ts_dev *d);
/*
 * Several devices in one transaction (libxl uses one per device: this is for scale tests,
 * where the simulation's transaction cost would dominate).
 */
int bk_ts_add_many(struct bk_toolstack *ts, const struct bk_ts_dev *devs, unsigned int n);
/*
 * bk_ts_add, then as libxl: wait for the backend to reach InitWait and run the hotplug
 * script (hotplug-status=connected). -ETIMEDOUT if the backend never got there.
 * For a vbd the script is scripts/blanket-hotplug: params may be "k=v,...:/path" (engine,
 * queues, cache, discard, options with ';' for ','); it writes the blanket-* keys and
 * physical-device-path (the resolved path) first. An unknown setting or a missing target ends
 * in hotplug-status=error and -EINVAL. Then, for a block backend (one that wrote
 * feature-flush-cache), it waits until the backend published "sectors" (-ENODEV if it refused
 * the device instead), so a frontend opened afterwards sees what a booting guest sees.
 */
int bk_ts_attach(struct bk_toolstack *ts, const struct bk_ts_dev *d);
/* Write hotplug-status (e.g. "connected", "error") as the hotplug script would. */
int bk_ts_hotplug(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		  const char *status);
/*
 * Ask for removal as libxl: online=0 and state=5 in one transaction (no wait). The caller
 * pumps, then calls bk_ts_destroy_dirs().
 */
int bk_ts_request_remove(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid);
/* Remove both directories (and empty parents) as libxl__device_destroy. */
int bk_ts_destroy_dirs(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid);
/* The same for several devices, one transaction each call (only kind/domid/devid are used). */
int bk_ts_request_remove_many(struct bk_toolstack *ts, const struct bk_ts_dev *devs,
			      unsigned int n);
int bk_ts_destroy_dirs_many(struct bk_toolstack *ts, const struct bk_ts_dev *devs, unsigned int n);
/*
 * The whole detach: request removal, wait (pumping) for backend state 6, then remove both
 * directories. The directories are removed even on timeout (as libxl does after 10 s), and
 * -ETIMEDOUT is returned.
 */
int bk_ts_remove(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid);
/*
 * The guest is destroyed: bk_sim_domain_destroy(), then remove /local/domain/<domid> (which
 * holds the frontend directories) as the toolstack does. Backend directories are left to the
 * backend.
 */
int bk_ts_guest_destroyed(struct bk_toolstack *ts, uint32_t domid);

/* Backend directory of a device (malloc'd) or frontend directory. NULL on ENOMEM. */
char *bk_ts_be_path(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid);
char *bk_ts_fe_path(const char *kind, uint32_t domid, uint32_t devid);
/* Read backend state (strict); -ENOENT if absent. */
int bk_ts_be_state(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		   unsigned int *ret);
/* Write any backend key as the toolstack (e.g. to change a setting, or to storm). */
int bk_ts_write_be(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		   const char *key, const char *val);
/*
 * Read a backend key as a string into @val of @len bytes; @val is "" when the key is absent.
 * 0, or -errno (@val "").
 */
int bk_ts_read_be(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		  const char *key, char *val, size_t len);
/* True (1) if @path exists in xenstore, 0 if not, -errno on error. */
int bk_ts_exists(struct bk_toolstack *ts, const char *path);
/* The toolstack's own xenstore connection (dom0), for checks. */
struct bk_xs *bk_ts_xs(struct bk_toolstack *ts);
/*
 * Watch events the toolstack's connection received with @token since the last call (each
 * write under a watched node fires one); the others are dropped.
 */
unsigned int bk_ts_take_watch_events(struct bk_toolstack *ts, const char *token);

#endif
