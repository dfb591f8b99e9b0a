/* SPDX-License-Identifier: MIT */
/*
 * Shared by the lifecycle tests: a fixture (simulated machine, loop, core, toolstack) and a
 * tiny test backend for kind "vbd" that counts what the core asks of it and follows the
 * xenbus handshake the simplest way.
 */
#ifndef BK_TEST_LIFECYCLE_COMMON_H
#define BK_TEST_LIFECYCLE_COMMON_H

#include <stdbool.h>
#include <stdio.h>

#include "device.h"
#include "loop.h"
#include "lib/toolstack.h"
#include "xen/sim.h"
#include "lib/xenbus_front.h"
#include "check.h"

#define XVDA 51712U

/* What the test backend saw. Reset by fx_init. */
struct tb_stats {
	unsigned int probes;
	unsigned int removes;
	unsigned int shutdowns;
	unsigned int fe_changes;
	unsigned int be_changes;
	unsigned int params_changes;
	unsigned int null_keys;
	unsigned int hotplug_changes;
	enum bk_xenbus_state last_fe;
	/* Knobs. */
	int probe_ret;	      /* returned by probe when non-zero */
	bool async_shutdown;  /* shutdown does not finish until tb_finish_shutdowns() */
	bool fail_on_connect; /* bk_device_fail when the frontend says Initialised */
	bool hook_shutdown;   /* shutdown finishes from a loop hook it enables (as blkif) */
};
extern struct tb_stats tb;
extern const struct bk_backend_ops tb_ops;

/* Finish every shutdown held back by async_shutdown; returns how many. */
unsigned int tb_finish_shutdowns(void);

struct fx {
	struct bk_sim *sim;
	struct bk_xen *xen;
	struct bk_loop *loop;
	struct bk_core *core;
	struct bk_toolstack *ts;
};

/* struct bk_core_params.rescan_ms for the next fx_init (0: default). */
extern unsigned int fx_rescan_ms;
/*
 * For the next fx_init: non-zero runs the core in this driver domain (created with the
 * machine) on an unprivileged platform (no domctl: domain_alive says -EPERM), and the
 * toolstack puts the backend directories under /local/domain/<fx_drvdom>/backend.
 */
extern uint32_t fx_drvdom;
/* Sets up everything and starts the core with @coalesce_ms. Returns 0 or -errno. */
int fx_init(struct fx *fx, unsigned int coalesce_ms);
/* Stops the core (waiting for shutdowns), frees everything. */
void fx_fini(struct fx *fx);
/* Pump until the core has @n live devices. */
int fx_wait_nr_devices(struct fx *fx, unsigned int n);
/* A vbd for guest @domid at @devid with libxl's defaults. */
struct bk_ts_dev fx_vbd(uint32_t domid, uint32_t devid);
/* 1 if @path exists. */
int fx_exists(struct fx *fx, const char *path);
/* Exit code from `bk_test_failures`. */
int fx_result(const char *name);

#endif
