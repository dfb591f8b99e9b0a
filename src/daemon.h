/* SPDX-License-Identifier: MIT */
/*
 * The daemon's runtime, kept out of main.c: the platform (real Xen or the in-process
 * simulation), the loop, the device core with its backend kinds, and signals through a
 * signalfd watched in the loop (SIGTERM/SIGINT: stop every device, then leave the loop;
 * SIGHUP: the on_reload hook, or a log line).
 */
#ifndef BK_DAEMON_H
#define BK_DAEMON_H

#include <stdbool.h>

struct bk_backend_ops;
struct bk_core;
struct bk_daemon;
struct bk_loop;
struct bk_sim;
struct bk_xen;

struct bk_daemon_params {
	/* "xen" (default when NULL) or "sim" (an empty simulated machine: demos, tests). */
	const char *platform;
	/* Backend kinds to serve, NULL-terminated. */
	const struct bk_backend_ops *const *kinds;
	/* Xenstore watch coalescing delay (struct bk_core_params.watch_coalesce_ms). */
	unsigned int watch_coalesce_ms;
	/* I/O threads (struct bk_core_params.io_threads). */
	unsigned int io_threads;
	/* After a stop signal, give devices this long to shut down (0: 15000 ms). */
	unsigned int stop_timeout_ms;
	/*
	 * Optional: the in-flight journal directory, swept at start of the journals of devices
	 * removed while no daemon ran (bk_core_sweep_journals). NULL: no sweep.
	 */
	const char *journal_dir;
	/*
	 * Where the kernel's xenbus backend drivers show up, one directory per kind it serves
	 * (/sys/bus/xen-backend/drivers/vbd with xen-blkback loaded, .../vif with xen-netback).
	 * A kind the kernel serves in this domain is left to it: two backends writing one device's
	 * nodes would break it. NULL: that directory on the xen platform, no check on sim.
	 */
	const char *kernel_backends_dir;
	/* Optional: a stop signal arrived (before the devices are shut down). */
	void (*on_stopping)(void *data);
	/* Optional: SIGHUP. */
	void (*on_reload)(void *data);
	void *data;
};

/* Platform, loop, core, signals; the kinds registered. Nothing is watched yet. */
int bk_daemon_new(const struct bk_daemon_params *p, struct bk_daemon **ret);
/* Arm the xenstore watches and pick up existing devices. */
int bk_daemon_start(struct bk_daemon *d);
/*
 * Run until a stop signal and the end of every device's shutdown. Returns 0, or -ETIMEDOUT
 * when devices did not finish within stop_timeout_ms.
 */
int bk_daemon_run(struct bk_daemon *d);
/* NULL-safe. */
void bk_daemon_free(struct bk_daemon *d);

struct bk_loop *bk_daemon_loop(struct bk_daemon *d);
struct bk_core *bk_daemon_core(struct bk_daemon *d);
struct bk_xen *bk_daemon_xen(struct bk_daemon *d);
/* The simulated machine (platform "sim"), NULL on real Xen: demos add guests to it. */
struct bk_sim *bk_daemon_sim(struct bk_daemon *d);
/* Whether this daemon serves @kind ("vbd", "vif"): registered and not left to the kernel. */
bool bk_daemon_serves(const struct bk_daemon *d, const char *kind);
/* "xen" or "sim". */
const char *bk_daemon_platform(const struct bk_daemon *d);

#endif
