// SPDX-License-Identifier: MIT
/*
 * The device lifecycle over the simulation: creation by the toolstack, the xenbus handshake
 * and reconnect, toolstack removal, a guest destroyed under a live device, refused devices,
 * hostile frontend states, bk_device_fail, and bk_core_stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-lifecycle-common.h"

#define DOM 5U
/* A driver domain serving DOM (test_drvdom_*). */
#define DRV 7U

static int be_state(struct fx *fx, uint32_t domid, uint32_t devid)
{
	unsigned int s;
	int r = bk_ts_be_state(fx->ts, "vbd", domid, devid, &s);

	return r < 0 ? r : (int)s;
}

static struct bk_xbfront *open_front(struct fx *fx, uint32_t domid, uint32_t devid)
{
	_cleanup_free_ char *path = bk_ts_fe_path("vbd", domid, devid);
	struct bk_xbfront *f = NULL;

	CHECK(path && bk_xbf_open(fx->sim, fx->loop, domid, path, &f) == 0);
	return f;
}

/* The toolstack writes libxl's keys and permissions: who may read and write what. */
static void test_toolstack_perms(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	_cleanup_free_ char *be = NULL, *fe = NULL, *v = NULL;
	struct bk_xs_perm *perms = NULL;
	struct bk_xbfront *f = NULL;
	unsigned int n = 0;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_sim_domain_create(fx.sim, 6, 16) == 0);
	d.extra_be = (const char *const[]){ "direct-io-safe", "1", NULL };
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	be = bk_ts_be_path(fx.ts, "vbd", DOM, XVDA);
	fe = bk_ts_fe_path("vbd", DOM, XVDA);
	CHECK(bk_xs_get_perms(bk_ts_xs(fx.ts), BK_XS_NULL, be, &perms, &n) == 0);
	CHECK(n == 2 && perms && perms[0].domid == 0 && perms[0].perms == BK_XS_PERM_NONE &&
	      perms[1].domid == DOM && perms[1].perms == BK_XS_PERM_READ);
	free(perms);
	perms = NULL;
	CHECK(bk_xs_get_perms(bk_ts_xs(fx.ts), BK_XS_NULL, fe, &perms, &n) == 0);
	CHECK(n == 2 && perms && perms[0].domid == DOM && perms[1].domid == 0 &&
	      perms[1].perms == BK_XS_PERM_READ);
	free(perms);
	f = open_front(&fx, DOM, XVDA);
	if (f) {
		CHECK(bk_xbf_read_be(f, "direct-io-safe", &v) == 0 && v && strcmp(v, "1") == 0);
		/* The guest may not write the backend's directory. */
		CHECK(bk_xs_printf(f->xs, BK_XS_NULL, be, "state", "4") == -EACCES);
		bk_xbf_close(f);
	}
	/* Another guest sees neither directory. */
	{
		struct bk_xen *x6 = NULL;
		struct bk_xs *xs6 = NULL;
		char *val = NULL;
		size_t len;

		CHECK(bk_sim_platform(fx.sim, 6, &x6) == 0);
		if (x6 && bk_xs_open(x6, &xs6) == 0) {
			CHECK(bk_xs_read(xs6, BK_XS_NULL, be, &val, &len) == -EACCES);
			CHECK(bk_xs_read(xs6, BK_XS_NULL, fe, &val, &len) == -EACCES);
			bk_xs_close(xs6);
		}
		bk_xen_free(x6);
	}
	fx_fini(&fx);
}

/* Attach, connect, close, reconnect, then detach as the toolstack. */
static void test_handshake(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct bk_sim_counts c0, c1;
	struct bk_device *dev;
	struct bk_xbfront *f;
	struct fx fx;
	char *be, *fe;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	bk_sim_counts(fx.sim, &c0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	CHECK(tb.probes == 1);
	dev = bk_core_find(fx.core, "vbd", DOM, XVDA);
	CHECK(dev != NULL);
	if (!dev)
		goto out;
	CHECK(strcmp(dev->name, "vbd 5/51712") == 0);
	CHECK(strcmp(dev->fe_path, "/local/domain/5/device/vbd/51712") == 0);
	CHECK(bk_core_nr_devices(fx.core) == 1);
	bk_sim_counts(fx.sim, &c1);
	CHECK(c1.xs_watches == c0.xs_watches + 1); /* the frontend's state */

	f = open_front(&fx, DOM, XVDA);
	if (!f)
		goto out;
	CHECK(bk_xbf_wait_be_state(f, 2, 0) == 0);
	bk_xbf_pump(f, 4);
	CHECK(tb.hotplug_changes == 1);
	CHECK(tb.last_fe == BK_XB_INITIALISING);
	CHECK(bk_xbf_set_state(f, 3) == 0);
	CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
	CHECK(bk_xbf_set_state(f, 4) == 0);
	bk_xbf_pump(f, 4);
	CHECK(tb.last_fe == BK_XB_CONNECTED);
	CHECK(bk_xbf_set_state(f, 5) == 0);
	CHECK(bk_xbf_wait_be_state(f, 5, 0) == 0);
	CHECK(bk_xbf_set_state(f, 6) == 0);
	CHECK(bk_xbf_wait_be_state(f, 6, 0) == 0);
	/* Kexec: the frontend starts over, the backend goes back to InitWait. */
	CHECK(bk_xbf_set_state(f, 1) == 0);
	CHECK(bk_xbf_wait_be_state(f, 2, 0) == 0);
	CHECK(bk_xbf_set_state(f, 3) == 0);
	CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
	CHECK(tb.shutdowns == 0 && tb.removes == 0);
	bk_xbf_close(f);

	/* Detach: online=0 + Closing -> shutdown, Closed, removal; libxl removes the dirs. */
	CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	CHECK(tb.shutdowns == 1 && tb.removes == 1);
	CHECK(bk_core_nr_devices(fx.core) == 0);
	CHECK(bk_core_find(fx.core, "vbd", DOM, XVDA) == NULL);
	be = bk_ts_be_path(fx.ts, "vbd", DOM, XVDA);
	fe = bk_ts_fe_path("vbd", DOM, XVDA);
	CHECK(fx_exists(&fx, be) == 0);
	CHECK(fx_exists(&fx, fe) == 0);
	free(be);
	free(fe);
	bk_loop_run_once(fx.loop, 10);
	bk_sim_counts(fx.sim, &c1);
	CHECK(c1.xs_watches == c0.xs_watches);
	CHECK(tb.probes == 1);
out:
	fx_fini(&fx);
}

/* A slow shutdown: Closed (6) only once the backend says it is done. */
static void test_async_removal(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	tb.async_shutdown = true;
	CHECK(bk_ts_request_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(fx.loop, 5);
	CHECK(tb.shutdowns == 1);
	CHECK(be_state(&fx, DOM, XVDA) == 5); /* as the toolstack left it */
	CHECK(bk_core_nr_devices(fx.core) == 1);
	CHECK(tb_finish_shutdowns() == 1);
	CHECK(fx_wait_nr_devices(&fx, 0) == 0);
	CHECK(be_state(&fx, DOM, XVDA) == 6);
	CHECK(tb.removes == 1);
	CHECK(bk_ts_destroy_dirs(fx.ts, "vbd", DOM, XVDA) == 0);
	fx_fini(&fx);
}

/*
 * Removal of a device that is already Closed (the frontend closed it, or it vanished): the
 * toolstack's Closing must still be answered with Closed, or libxl waits 10 s.
 */
static void test_remove_closed(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct bk_ts_dev d2 = fx_vbd(DOM, XVDA + 16);
	struct bk_xbfront *f;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	CHECK(bk_ts_attach(fx.ts, &d2) == 0);
	f = open_front(&fx, DOM, XVDA);
	if (f) {
		CHECK(bk_xbf_set_state(f, 4) == 0);
		CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
		CHECK(bk_xbf_set_state(f, 6) == 0);
		CHECK(bk_xbf_wait_be_state(f, 6, 0) == 0);
		bk_xbf_close(f);
	}
	CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	/* The second one went Closed through a vanished frontend (domain alive). */
	f = open_front(&fx, DOM, XVDA + 16);
	if (f) {
		CHECK(bk_xs_rm(f->xs, BK_XS_NULL, f->path) == 0);
		CHECK(bk_xbf_wait_be_state(f, 6, 0) == 0);
		bk_xbf_close(f);
	}
	CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA + 16) == 0);
	CHECK(bk_core_nr_devices(fx.core) == 0 && tb.removes == 2);
	fx_fini(&fx);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test-lifecycle: the loop slept with work pending\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/*
 * A backend finishing its shutdown from a loop hook it enabled inside ops->shutdown: the loop
 * must not sleep before the hook and the core's follow-up ran (the loop is run without a
 * timeout here; an alarm fails the test if it blocks).
 */
static void test_hook_shutdown(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	tb.hook_shutdown = true;
	CHECK(bk_ts_request_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	signal(SIGALRM, on_alarm);
	alarm(20);
	for (int i = 0; i < 50 && bk_core_nr_devices(fx.core) > 0; i++)
		bk_loop_run_once(fx.loop, -1);
	alarm(0);
	CHECK(bk_core_nr_devices(fx.core) == 0);
	CHECK(tb.shutdowns == 1 && tb.removes == 1);
	CHECK(be_state(&fx, DOM, XVDA) == 6);
	CHECK(bk_ts_destroy_dirs(fx.ts, "vbd", DOM, XVDA) == 0);
	fx_fini(&fx);
}

/* The toolstack removes the backend directory under a live device: nothing is recreated. */
static void test_backend_dir_removed(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	_cleanup_free_ char *be = NULL;
	struct bk_device *dev;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	be = bk_ts_be_path(fx.ts, "vbd", DOM, XVDA);
	dev = bk_core_find(fx.core, "vbd", DOM, XVDA);
	CHECK(dev != NULL);
	tb.async_shutdown = true;
	CHECK(bk_ts_destroy_dirs(fx.ts, "vbd", DOM, XVDA) == 0);
	/* Before the core even saw the removal. */
	if (dev)
		CHECK(bk_device_set_state(dev, BK_XB_CLOSING) == -ENOENT);
	CHECK(fx_exists(&fx, be) == 0);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(fx.loop, 2);
	CHECK(tb.shutdowns == 1 && bk_core_nr_devices(fx.core) == 1);
	/* A backend finishing late must not recreate the directory. */
	if (dev) {
		CHECK(bk_device_set_state(dev, BK_XB_CLOSED) == -ENOENT);
		CHECK(bk_device_write_be(dev, "sectors", "%u", 8) == -ENOENT);
	}
	CHECK(tb_finish_shutdowns() == 1);
	CHECK(fx_wait_nr_devices(&fx, 0) == 0);
	CHECK(tb.removes == 1);
	CHECK(fx_exists(&fx, be) == 0);
	CHECK(fx_exists(&fx, "/local/domain/0/backend/vbd/5") == 0);
	fx_fini(&fx);
}

/* The guest dies under a connected device: teardown, and nothing left in backend/. */
static void test_guest_destroyed(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct bk_ts_dev d2 = fx_vbd(DOM, XVDA + 16);
	struct bk_sim_counts c0, c1;
	struct bk_xbfront *f;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	bk_sim_counts(fx.sim, &c0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	CHECK(bk_ts_attach(fx.ts, &d2) == 0);
	f = open_front(&fx, DOM, XVDA);
	if (!f)
		goto out;
	CHECK(bk_xbf_set_state(f, 4) == 0);
	CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
	bk_xbf_close(f);

	CHECK(bk_ts_guest_destroyed(fx.ts, DOM) == 0);
	CHECK(fx_wait_nr_devices(&fx, 0) == 0);
	bk_loop_run_once(fx.loop, 10);
	CHECK(tb.shutdowns == 2 && tb.removes == 2);
	CHECK(fx_exists(&fx, "/local/domain/0/backend/vbd/5") == 0);
	CHECK(fx_exists(&fx, "/local/domain/5") == 0);
	bk_sim_counts(fx.sim, &c1);
	CHECK(c1.xs_watches == c0.xs_watches);
	/* backend/ and backend/vbd may stay (as with libxl); nothing else. */
	CHECK(c1.xs_nodes <= c0.xs_nodes + 2);
out:
	fx_fini(&fx);
}

/*
 * The frontend directory goes away while the domain lives: teardown to Closed, the device
 * stays; when the frontend comes back at Initialising, the backend reconnects.
 */
static void test_frontend_vanishes(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct bk_xbfront *f;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	f = open_front(&fx, DOM, XVDA);
	if (!f)
		goto out;
	CHECK(bk_xbf_set_state(f, 4) == 0);
	CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
	/* The guest removes its own directory (it owns it). */
	CHECK(bk_xs_rm(f->xs, BK_XS_NULL, f->path) == 0);
	CHECK(bk_xbf_wait_be_state(f, 6, 0) == 0);
	CHECK(tb.shutdowns == 1 && tb.removes == 0);
	CHECK(bk_core_nr_devices(fx.core) == 1);
	CHECK(bk_xbf_set_state(f, 1) == 0);
	CHECK(bk_xbf_wait_be_state(f, 2, 0) == 0);
	CHECK(bk_xbf_set_state(f, 3) == 0);
	CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
	bk_xbf_close(f);
	CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	CHECK(tb.removes == 1);
out:
	fx_fini(&fx);
}

/* Backend keys that point the backend elsewhere: refused, Closed, error written, no probe. */
static void test_bogus_frontend(void)
{
	static const char *const bogus[][4] = {
		{ "frontend", "/local/domain/6/device/vbd/51712", NULL },
		{ "frontend", "/local/domain/5/device/vbd/51712/../../../../0", NULL },
		{ "frontend", "/local/domain/5/device/vif/51712", NULL },
		{ "frontend", "/local/domain/5/device/vbd/51713", NULL },
		{ "frontend", "/local/domain/05/device/vbd/51712", NULL },
		{ "frontend", "local/domain/5/device/vbd/51712", NULL },
		{ "frontend", "/local/domain/0/backend/vbd/5/51712\n", NULL },
		{ "frontend-id", "6", NULL },
		{ "frontend-id", "-5", NULL },
		{ "frontend-id", "5x", NULL },
	};
	struct bk_sim_counts c0, c1;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_sim_domain_create(fx.sim, 6, 16) == 0);
	bk_sim_counts(fx.sim, &c0);
	for (size_t i = 0; i < ARRAY_SIZE(bogus); i++) {
		struct bk_ts_dev d = fx_vbd(DOM, XVDA);
		_cleanup_free_ char *be = bk_ts_be_path(fx.ts, "vbd", DOM, XVDA);
		_cleanup_free_ char *err = NULL;

		d.extra_be = bogus[i];
		CHECK(bk_ts_add(fx.ts, &d) == 0);
		for (int j = 0; j < 10; j++)
			bk_loop_run_once(fx.loop, 2);
		CHECK(be_state(&fx, DOM, XVDA) == 6);
		CHECK(bk_xs_read_str(bk_ts_xs(fx.ts), BK_XS_NULL, be, "error", &err) == 0);
		CHECK(err && strtol(err, NULL, 10) > 0);
		CHECK(tb.probes == 0);
		CHECK(bk_core_nr_devices(fx.core) == 0);
		CHECK(bk_core_find(fx.core, "vbd", DOM, XVDA) == NULL);
		/* libxl gives up and removes it: the refused device goes too. */
		CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA) == 0);
		bk_loop_run_once(fx.loop, 10);
		bk_sim_counts(fx.sim, &c1);
		CHECK(c1.xs_watches == c0.xs_watches);
	}
	/* A good device at the same place afterwards is served. */
	{
		struct bk_ts_dev d = fx_vbd(DOM, XVDA);

		CHECK(bk_ts_attach(fx.ts, &d) == 0);
		CHECK(tb.probes == 1);
	}
	fx_fini(&fx);
}

/* A probe that refuses: Closed with the error node, no remove, no retry storm. */
static void test_probe_refused(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *be = NULL;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	be = bk_ts_be_path(fx.ts, "vbd", DOM, XVDA);
	tb.probe_ret = -ENODEV;
	CHECK(bk_ts_add(fx.ts, &d) == 0);
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(fx.loop, 2);
	CHECK(tb.probes == 1);
	CHECK(be_state(&fx, DOM, XVDA) == 6);
	CHECK(bk_xs_read_str(bk_ts_xs(fx.ts), BK_XS_NULL, be, "error", &err) == 0);
	CHECK(err && strncmp(err, "19 ", 3) == 0);
	CHECK(bk_core_nr_devices(fx.core) == 0);
	CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	CHECK(tb.removes == 0 && tb.shutdowns == 0);
	fx_fini(&fx);
}

/* Every unparsable frontend state is Closed; each round trips through Initialising. */
static void test_hostile_state(void)
{
	static const struct {
		const char *val;
		size_t len;
	} bad[] = {
		{ "9", 1 },    { "abc", 3 },  { "", 0 },    { "-1", 2 },
		{ " 4", 2 },   { "4 ", 2 },   { "0x4", 3 }, { "99999999999999999999999", 23 },
		{ "4\0x", 3 }, { "\xff", 1 }, { "+4", 2 },  { "4294967300", 10 },
	};
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct bk_xbfront *f;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	f = open_front(&fx, DOM, XVDA);
	if (!f)
		goto out;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(bk_xbf_set_state(f, 3) == 0);
		CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
		CHECK(bk_xbf_write_raw(f, "state", bad[i].val, bad[i].len) == 0);
		CHECK(bk_xbf_wait_be_state(f, 6, 0) == 0);
		CHECK(tb.last_fe == BK_XB_CLOSED);
		CHECK(bk_xbf_set_state(f, 1) == 0);
		CHECK(bk_xbf_wait_be_state(f, 2, 0) == 0);
		CHECK(tb.last_fe == BK_XB_INITIALISING);
	}
	/* A valid Unknown (0) is delivered as such. */
	CHECK(bk_xbf_set_state(f, 0) == 0);
	bk_xbf_pump(f, 4);
	CHECK(tb.last_fe == BK_XB_UNKNOWN);
	CHECK(tb.shutdowns == 0);
	CHECK(bk_core_nr_devices(fx.core) == 1);
	bk_xbf_close(f);
out:
	fx_fini(&fx);
}

/* bk_device_fail: error node, Closing, shutdown, Closed; then the frontend can restart. */
static void test_fail(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	_cleanup_free_ char *err = NULL;
	struct bk_xbfront *f;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	f = open_front(&fx, DOM, XVDA);
	if (!f)
		goto out;
	tb.fail_on_connect = true;
	CHECK(bk_xbf_set_state(f, 3) == 0);
	CHECK(bk_xbf_wait_be_state(f, 6, 0) == 0);
	CHECK(bk_xbf_read_be(f, "error", &err) == 0);
	CHECK(err && strcmp(err, "22 test failure") == 0);
	CHECK(tb.shutdowns == 1 && tb.removes == 0);
	CHECK(bk_core_nr_devices(fx.core) == 1);
	tb.fail_on_connect = false;
	CHECK(bk_xbf_set_state(f, 6) == 0);
	CHECK(bk_xbf_set_state(f, 1) == 0);
	CHECK(bk_xbf_wait_be_state(f, 2, 0) == 0);
	CHECK(bk_xbf_set_state(f, 3) == 0);
	CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
	bk_xbf_close(f);
out:
	fx_fini(&fx);
}

/* Two kinds side by side: a vif from the toolstack reaches the vif backend only. */
static void test_vif_kind(void)
{
	struct bk_backend_ops vif_ops = tb_ops;
	struct bk_core_params prm = { 0 };
	struct bk_ts_dev v = { .kind = "vif", .domid = DOM, .devid = 0 };
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	_cleanup_free_ char *mac = NULL;
	struct bk_device *dev;
	struct fx fx;

	vif_ops.kind = "vif";
	vif_ops.log_name = "vif";
	CHECK(fx_init(&fx, 0) == 0);
	/* Restart the core with both kinds. */
	bk_core_stop(fx.core, NULL, NULL);
	bk_core_free(fx.core);
	prm.loop = fx.loop;
	prm.xen = fx.xen;
	CHECK(bk_core_new(&prm, &fx.core) == 0);
	CHECK(bk_core_register(fx.core, &tb_ops) == 0);
	CHECK(bk_core_register(fx.core, &vif_ops) == 0);
	CHECK(bk_core_register(fx.core, &vif_ops) == -EEXIST);
	CHECK(bk_core_start(fx.core) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &v) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	CHECK(bk_core_nr_devices(fx.core) == 2);
	dev = bk_core_find(fx.core, "vif", DOM, 0);
	CHECK(dev && strcmp(dev->name, "vif 5/0") == 0 && dev->ops == &vif_ops);
	CHECK(dev && strcmp(dev->fe_path, "/local/domain/5/device/vif/0") == 0);
	if (dev)
		CHECK(bk_device_read_be(dev, "mac", &mac) == 0 && mac &&
		      strcmp(mac, "00:16:3e:00:00:01") == 0);
	CHECK(bk_core_find(fx.core, "vbd", DOM, 0) == NULL);
	CHECK(bk_core_find(fx.core, "vif", DOM, XVDA) == NULL);
	CHECK(bk_ts_remove(fx.ts, "vif", DOM, 0) == 0);
	CHECK(bk_core_nr_devices(fx.core) == 1);
	fx_fini(&fx);
}

/* The frontend watch cannot be set: the device is refused cleanly, and served once re-added. */
static void test_watch_fails(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	_cleanup_free_ char *be = NULL, *err = NULL;
	struct bk_sim_counts c0, c1;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	be = bk_ts_be_path(fx.ts, "vbd", DOM, XVDA);
	bk_sim_counts(fx.sim, &c0);
	CHECK(bk_sim_fault_inject(fx.sim, 0, BK_SIM_FAULT_XS_WATCH, 0, -ENOSPC) == 0);
	CHECK(bk_ts_add(fx.ts, &d) == 0);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(fx.loop, 2);
	CHECK(tb.probes == 0 && bk_core_nr_devices(fx.core) == 0);
	CHECK(be_state(&fx, DOM, XVDA) == 6);
	CHECK(bk_xs_read_str(bk_ts_xs(fx.ts), BK_XS_NULL, be, "error", &err) == 0);
	CHECK(err && strtol(err, NULL, 10) == ENOSPC);
	bk_sim_counts(fx.sim, &c1);
	CHECK(c1.xs_watches == c0.xs_watches);
	CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	CHECK(tb.probes == 1);
	fx_fini(&fx);
}

static void on_stopped(void *data)
{
	(*(int *)data)++;
}

/* bk_core_stop waits for every shutdown and leaves the xenstore states alone. */
static void test_stop(void)
{
	struct bk_core_params prm = { 0 };
	int stopped = 0;
	struct fx fx;

	CHECK(fx_init(&fx, 0) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	for (uint32_t i = 0; i < 3; i++) {
		struct bk_ts_dev d = fx_vbd(DOM, XVDA + 16 * i);

		CHECK(bk_ts_attach(fx.ts, &d) == 0);
	}
	tb.async_shutdown = true;
	bk_core_stop(fx.core, on_stopped, &stopped);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(fx.loop, 2);
	CHECK(tb.shutdowns == 3 && stopped == 0 && bk_core_nr_devices(fx.core) == 3);
	CHECK(tb_finish_shutdowns() == 3);
	for (int i = 0; i < 10 && !stopped; i++)
		bk_loop_run_once(fx.loop, 2);
	CHECK(stopped == 1);
	CHECK(tb.removes == 3 && bk_core_nr_devices(fx.core) == 0);
	CHECK(be_state(&fx, DOM, XVDA) == 2);
	bk_core_free(fx.core);
	fx.core = NULL;

	/* A new core picks the devices up again (daemon restart). */
	prm.loop = fx.loop;
	prm.xen = fx.xen;
	CHECK(bk_core_new(&prm, &fx.core) == 0);
	CHECK(bk_core_register(fx.core, &tb_ops) == 0);
	CHECK(bk_core_start(fx.core) == 0);
	CHECK(bk_core_register(fx.core, &tb_ops) == -EBUSY);
	CHECK(fx_wait_nr_devices(&fx, 3) == 0);
	CHECK(tb.probes == 6);
	tb.async_shutdown = false;
	fx_fini(&fx);
}

/*
 * In a driver domain (no domctl: domain_alive says -EPERM) the guest dies under a connected
 * device and the toolstack only removes its /local/domain/<id> (no online=0, as when xl is
 * gone): the frontend's disappearance must be enough for a teardown that leaves nothing in
 * the driver domain's backend/.
 */
static void test_drvdom_guest_destroyed(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct bk_xbfront *f;
	struct fx fx;

	fx_drvdom = DRV;
	CHECK(fx_init(&fx, 0) == 0);
	fx_drvdom = 0;
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	CHECK(fx_exists(&fx, "/local/domain/7/backend/vbd/5/51712") == 1);
	f = open_front(&fx, DOM, XVDA);
	if (!f)
		goto out;
	CHECK(bk_xbf_set_state(f, 4) == 0);
	CHECK(bk_xbf_wait_be_state(f, 4, 0) == 0);
	bk_xbf_close(f);

	CHECK(bk_ts_guest_destroyed(fx.ts, DOM) == 0);
	CHECK(fx_wait_nr_devices(&fx, 0) == 0);
	CHECK(tb.shutdowns == 1 && tb.removes == 1);
	CHECK(fx_exists(&fx, "/local/domain/7/backend/vbd/5") == 0);
out:
	fx_fini(&fx);
}

/*
 * In a driver domain, a backend directory whose guest died before the frontend was ever read
 * (destroyed right after the toolstack wrote both, or while no daemon ran): torn down and
 * removed, not kept waiting for a frontend that will never come.
 */
static void test_drvdom_stale_backend(void)
{
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct fx fx;

	fx_drvdom = DRV;
	CHECK(fx_init(&fx, 0) == 0);
	fx_drvdom = 0;
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_add(fx.ts, &d) == 0);
	CHECK(bk_ts_guest_destroyed(fx.ts, DOM) == 0);
	for (int i = 0; i < 200; i++)
		bk_loop_run_once(fx.loop, 10);
	CHECK(bk_core_nr_devices(fx.core) == 0);
	CHECK(fx_exists(&fx, "/local/domain/7/backend/vbd/5") == 0);
	fx_fini(&fx);
}

struct run_arg {
	struct fx *fx;
	unsigned int turns;
};

static void run_turns(void *data)
{
	struct run_arg *a = data;

	for (unsigned int i = 0; i < a->turns; i++)
		bk_loop_run_once(a->fx->loop, 5);
}

/* Run @fx's loop for @turns turns of at most 5 ms; what it logged (malloc'd). */
static char *run_logged(struct fx *fx, unsigned int turns)
{
	struct run_arg a = { fx, turns };

	return bk_test_capture_stderr(run_turns, &a);
}

/*
 * A driver domain whose toolstack did not let it read its backend directory (EACCES): the
 * rescans that list it say so in one line naming the path and the domain, not once per rescan;
 * the same for each of two guests' directories under it; a directory that is simply not there yet
 * is not an error. Then, readable again, a device under it is served.
 */
static void test_drvdom_backend_unreadable(void)
{
	const char *kind_dir = "/local/domain/7/backend/vbd";
	const char *dom_dir = "/local/domain/7/backend/vbd/5";
	const char *other_dir = "/local/domain/7/backend/vbd/6";
	const struct bk_xs_perm none[] = { { .domid = 0, .perms = BK_XS_PERM_NONE } };
	const struct bk_xs_perm drv[] = { { .domid = DRV, .perms = BK_XS_PERM_NONE } };
	struct bk_ts_dev d = fx_vbd(DOM, XVDA);
	struct bk_xs *xs;
	char *log;
	struct fx fx;

	fx_drvdom = DRV;
	fx_rescan_ms = 10;
	CHECK(fx_init(&fx, 0) == 0);
	fx_drvdom = 0;
	fx_rescan_ms = 0;
	xs = bk_ts_xs(fx.ts);
	/* Nothing under backend/ yet: nothing to say. */
	log = run_logged(&fx, 20);
	CHECK(log && bk_test_count_lines(log, "cannot list", NULL) == 0);
	free(log);

	/* The kind's directory, made by dom0 and not given to the driver domain. */
	CHECK(bk_xs_printf(xs, BK_XS_NULL, "/local/domain/7/backend", "vbd", "%s", "") == 0);
	CHECK(bk_xs_set_perms(xs, BK_XS_NULL, kind_dir, none, 1) == 0);
	log = run_logged(&fx, 60);
	printf("%s unreadable: %u line(s) about it\n", kind_dir,
	       log ? bk_test_count_lines(log, kind_dir, NULL) : 0);
	CHECK(log && bk_test_count_lines(log, "cannot list", kind_dir, "domain 7",
					 "Permission denied", NULL) == 1);
	CHECK(log && bk_test_count_lines(log, "cannot list", NULL) == 1);
	free(log);

	/* Given to it, but two guests' directories under it are not: one line each. */
	CHECK(bk_xs_set_perms(xs, BK_XS_NULL, kind_dir, drv, 1) == 0);
	CHECK(bk_xs_printf(xs, BK_XS_NULL, kind_dir, "5", "%s", "") == 0);
	CHECK(bk_xs_set_perms(xs, BK_XS_NULL, dom_dir, none, 1) == 0);
	CHECK(bk_xs_printf(xs, BK_XS_NULL, kind_dir, "6", "%s", "") == 0);
	CHECK(bk_xs_set_perms(xs, BK_XS_NULL, other_dir, none, 1) == 0);
	log = run_logged(&fx, 60);
	CHECK(log && bk_test_count_lines(log, "cannot list", dom_dir, "domain 7",
					 "Permission denied", NULL) == 1);
	CHECK(log && bk_test_count_lines(log, "cannot list", other_dir, "domain 7",
					 "Permission denied", NULL) == 1);
	CHECK(log && bk_test_count_lines(log, "cannot list", NULL) == 2);
	free(log);

	/* Readable: the toolstack's device there is served. */
	CHECK(bk_xs_rm(xs, BK_XS_NULL, other_dir) == 0);
	CHECK(bk_xs_set_perms(xs, BK_XS_NULL, dom_dir, drv, 1) == 0);
	CHECK(bk_sim_domain_create(fx.sim, DOM, 16) == 0);
	CHECK(bk_ts_attach(fx.ts, &d) == 0);
	CHECK(fx_wait_nr_devices(&fx, 1) == 0);
	CHECK(bk_ts_remove(fx.ts, "vbd", DOM, XVDA) == 0);
	CHECK(fx_wait_nr_devices(&fx, 0) == 0);
	fx_fini(&fx);
}

int main(void)
{
	test_handshake();
	test_toolstack_perms();
	test_async_removal();
	test_guest_destroyed();
	test_backend_dir_removed();
	test_hook_shutdown();
	test_remove_closed();
	test_frontend_vanishes();
	test_bogus_frontend();
	test_probe_refused();
	test_hostile_state();
	test_fail();
	test_stop();
	test_vif_kind();
	test_watch_fails();
	test_drvdom_guest_destroyed();
	test_drvdom_stale_backend();
	test_drvdom_backend_unreadable();
	return fx_result("lifecycle");
}
