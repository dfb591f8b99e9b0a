// SPDX-License-Identifier: MIT
/*
 * The start-up sweep of in-flight journals (bk_core_sweep_journals): a journal whose device
 * directory (backend/<kind>/<domid>/<devid> of our domain) is gone belonged to a device removed
 * while no daemon ran, and goes; every journal of a device that still exists stays (the device
 * may be adopted), and so does anything the sweep cannot attribute or check. Also through the
 * daemon: bk_daemon_start() sweeps the journal directory it was given.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "daemon.h"
#include "device.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"

static int probe_refuse(struct bk_device *dev)
{
	(void)dev;
	return -ENODEV;
}

static const struct bk_backend_ops vbd_ops = { .kind = "vbd", .probe = probe_refuse };
static const struct bk_backend_ops vif_ops = { .kind = "vif", .probe = probe_refuse };

static char tmpdir[64], jdir[128];

static void touch(const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", jdir, name);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
}

static bool exists(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", jdir, name);
	return access(path, F_OK) == 0;
}

static void be_node(struct bk_xs *xs, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "/local/domain/0/backend/%s", rel);
	CHECK(bk_xs_write(xs, BK_XS_NULL, path, "", 0) == 0);
}

static void rm_rf_jdir(void)
{
	static const char *const left[] = {
		"vbd-5-51712-q0", "vbd-5-51712-q1",  "vbd-7-2-q0",  "vif-9-0-q0",
		"README",	  "vbd-05-51712-q0", "vbd-5-51712", "vbd-x-1-q0",
		"vbd-6-1-q0",	  "vbd-5-51728-q0",  "vbd-7-1-q3",
	};
	char path[256];

	for (size_t i = 0; i < ARRAY_SIZE(left); i++) {
		snprintf(path, sizeof(path), "%s/%s", jdir, left[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/vbd-9-9-q0", jdir);
	rmdir(path);
	rmdir(jdir);
	rmdir(tmpdir);
}

static void test_sweep(void)
{
	struct bk_core_params prm = { 0 };
	struct bk_core *core = NULL;
	struct bk_sim *sim = NULL;
	struct bk_xen *xen = NULL;
	struct bk_loop *loop = NULL;
	struct bk_xs *xs = NULL;
	char path[256];

	CHECK(bk_sim_new(&sim) == 0);
	CHECK(bk_sim_platform(sim, 0, &xen) == 0);
	CHECK(bk_loop_new(&loop) == 0);
	if (!sim || !xen || !loop)
		goto out;
	CHECK(bk_xs_open(xen, &xs) == 0);
	prm.loop = loop;
	prm.xen = xen;
	CHECK(bk_core_new(&prm, &core) == 0);
	if (!core || !xs)
		goto out;
	CHECK(bk_core_register(core, &vbd_ops) == 0);
	CHECK(bk_core_register(core, &vif_ops) == 0);

	/* Devices that exist: vbd 5/51712, vbd 7/2, vif 9/0. */
	be_node(xs, "vbd/5/51712/online");
	be_node(xs, "vbd/7/2/online");
	be_node(xs, "vif/9/0/online");
	/* Another backend domain's device of the same name does not count. */
	CHECK(bk_xs_write(xs, BK_XS_NULL, "/local/domain/1/backend/vbd/6/1/online", "1", 1) == 0);

	/* A missing directory is nothing to sweep. */
	CHECK(bk_core_sweep_journals(core, jdir) == 0);
	CHECK(mkdir(jdir, 0700) == 0);
	touch("vbd-5-51712-q0");  /* device exists: kept (it may be adopted) */
	touch("vbd-5-51712-q1");  /* ... every queue */
	touch("vbd-7-2-q0");	  /* exists */
	touch("vif-9-0-q0");	  /* another registered kind, exists */
	touch("vbd-5-51728-q0");  /* same domain, device gone: removed */
	touch("vbd-6-1-q0");	  /* domain's directory gone (ours; domain 1's does not count) */
	touch("vbd-7-1-q3");	  /* domain still has devices, this one gone */
	touch("README");	  /* not a journal name: kept */
	touch("vbd-05-51712-q0"); /* not canonical: cannot be attributed, kept */
	touch("vbd-5-51712");	  /* no queue part: kept */
	touch("vbd-x-1-q0");	  /* garbage: kept */
	snprintf(path, sizeof(path), "%s/vbd-9-9-q0", jdir);
	CHECK(mkdir(path, 0700) == 0); /* not a regular file: kept */

	CHECK(bk_core_sweep_journals(core, jdir) == 3);
	CHECK(exists("vbd-5-51712-q0"));
	CHECK(exists("vbd-5-51712-q1"));
	CHECK(exists("vbd-7-2-q0"));
	CHECK(exists("vif-9-0-q0"));
	CHECK(!exists("vbd-5-51728-q0"));
	CHECK(!exists("vbd-6-1-q0"));
	CHECK(!exists("vbd-7-1-q3"));
	CHECK(exists("README"));
	CHECK(exists("vbd-05-51712-q0"));
	CHECK(exists("vbd-5-51712"));
	CHECK(exists("vbd-x-1-q0"));
	CHECK(exists("vbd-9-9-q0"));

	/* A store that cannot answer (here: one failed read) removes nothing it could not check. */
	snprintf(path, sizeof(path), "%s/inflight2", tmpdir);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/inflight2/vbd-8-1-q0", tmpdir);
	CHECK(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)) == 0);
	snprintf(path, sizeof(path), "%s/inflight2", tmpdir);
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_XS_READ, 0, -EIO) == 0);
	CHECK(bk_core_sweep_journals(core, path) == 0);
	CHECK(bk_core_sweep_journals(core, path) == 1);
	CHECK(rmdir(path) == 0); /* the journal is gone, nothing else was there */
	/* Idempotent. */
	CHECK(bk_core_sweep_journals(core, jdir) == 0);
	CHECK(exists("vbd-5-51712-q0") && exists("vbd-7-2-q0"));
out:
	bk_core_free(core);
	bk_xs_close(xs);
	bk_loop_free(loop);
	bk_xen_free(xen);
	bk_sim_free(sim);
}

/* The daemon sweeps at start: the simulated machine is empty, so every journal is stale. */
static void test_daemon_start(void)
{
	static const struct bk_backend_ops *const kinds[] = { &vbd_ops, NULL };
	struct bk_daemon_params p = { 0 };
	struct bk_daemon *d = NULL;

	touch("vbd-5-51728-q0");
	p.platform = "sim";
	p.kinds = kinds;
	p.journal_dir = jdir;
	CHECK(bk_daemon_new(&p, &d) == 0);
	if (!d)
		return;
	CHECK(exists("vbd-5-51728-q0")); /* not before start */
	CHECK(bk_daemon_start(d) == 0);
	CHECK(!exists("vbd-5-51728-q0"));
	CHECK(exists("README"));
	bk_daemon_free(d);
}

int main(void)
{
	if (!getenv("BK_TEST_DEBUG"))
		bk_log_set_level(BK_LOG_WARNING);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bk-sweep-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 77;
	}
	snprintf(jdir, sizeof(jdir), "%s/inflight", tmpdir);
	test_sweep();
	test_daemon_start();
	rm_rf_jdir();
	return bk_test_exit();
}
