// SPDX-License-Identifier: MIT
/* The lifecycle tests' fixture and test backend. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test-lifecycle-common.h"
#include "util/log.h"

struct tb_stats tb;
unsigned int fx_rescan_ms;
uint32_t fx_drvdom;

#define TB_MAX_HELD 2048
static struct bk_device *held[TB_MAX_HELD];
static unsigned int nr_held;
static struct bk_hook *tb_hook;

static void tb_hook_cb(void *data)
{
	(void)data;
	bk_hook_enable(tb_hook, false);
	tb_finish_shutdowns();
}

struct tb_priv {
	unsigned int magic;
};

static int tb_probe(struct bk_device *dev)
{
	struct tb_priv *p;

	tb.probes++;
	if (tb.probe_ret)
		return tb.probe_ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->magic = 0x7e57;
	dev->priv = p;
	bk_device_write_be(dev, "feature-test", "1");
	bk_device_set_state(dev, BK_XB_INITWAIT);
	return 0;
}

static void tb_frontend_changed(struct bk_device *dev, enum bk_xenbus_state s)
{
	struct tb_priv *p = dev->priv;

	CHECK(p && p->magic == 0x7e57);
	CHECK((unsigned int)s <= BK_XB_RECONFIGURED);
	tb.fe_changes++;
	tb.last_fe = s;
	switch (s) {
	case BK_XB_INITIALISED:
	case BK_XB_CONNECTED:
		if (tb.fail_on_connect) {
			bk_device_fail(dev, -EINVAL, "test failure");
			break;
		}
		if (dev->state == BK_XB_INITWAIT)
			bk_device_set_state(dev, BK_XB_CONNECTED);
		break;
	case BK_XB_CLOSING:
		if (dev->state != BK_XB_CLOSED)
			bk_device_set_state(dev, BK_XB_CLOSING);
		break;
	case BK_XB_CLOSED:
		bk_device_set_state(dev, BK_XB_CLOSED);
		break;
	case BK_XB_INITIALISING:
		if (dev->state == BK_XB_CLOSED)
			bk_device_set_state(dev, BK_XB_INITWAIT);
		break;
	default:
		break;
	}
}

static void tb_backend_changed(struct bk_device *dev, const char *key)
{
	CHECK(dev->priv != NULL);
	tb.be_changes++;
	if (!key)
		tb.null_keys++;
	else if (strcmp(key, "params") == 0)
		tb.params_changes++;
	else if (strcmp(key, "hotplug-status") == 0)
		tb.hotplug_changes++;
}

static void tb_shutdown(struct bk_device *dev)
{
	tb.shutdowns++;
	CHECK(dev->shutting_down && !dev->shutdown_complete);
	if (tb.hook_shutdown && nr_held < TB_MAX_HELD) {
		/* Finish in a loop hook enabled from inside this callback, as blkif does. */
		if (!tb_hook)
			CHECK(bk_loop_add_hook(bk_device_loop(dev), tb_hook_cb, NULL, &tb_hook) ==
			      0);
		if (tb_hook) {
			held[nr_held++] = dev;
			bk_hook_enable(tb_hook, true);
			return;
		}
	}
	if (tb.async_shutdown && nr_held < TB_MAX_HELD) {
		held[nr_held++] = dev;
		return;
	}
	bk_device_shutdown_done(dev);
}

static void tb_remove(struct bk_device *dev)
{
	struct tb_priv *p = dev->priv;

	CHECK(p && p->magic == 0x7e57);
	for (unsigned int i = 0; i < nr_held; i++)
		CHECK(held[i] != dev);
	tb.removes++;
	free(p);
	dev->priv = NULL;
}

const struct bk_backend_ops tb_ops = {
	.kind = "vbd",
	.log_name = "vbd",
	.probe = tb_probe,
	.frontend_changed = tb_frontend_changed,
	.backend_changed = tb_backend_changed,
	.shutdown = tb_shutdown,
	.remove = tb_remove,
};

unsigned int tb_finish_shutdowns(void)
{
	unsigned int n = nr_held;

	/* Take the list first: shutdown_done only marks the device for the next batch. */
	nr_held = 0;
	for (unsigned int i = 0; i < n; i++)
		bk_device_shutdown_done(held[i]);
	return n;
}

int fx_init(struct fx *fx, unsigned int coalesce_ms)
{
	struct bk_core_params prm = { 0 };
	int r;

	memset(fx, 0, sizeof(*fx));
	memset(&tb, 0, sizeof(tb));
	nr_held = 0;
	if (!getenv("BK_TEST_DEBUG"))
		bk_log_set_level(BK_LOG_WARNING);
	else
		bk_log_set_level(BK_LOG_DEBUG);
	r = bk_sim_new(&fx->sim);
	if (r < 0)
		return r;
	if (fx_drvdom) {
		r = bk_sim_domain_create(fx->sim, fx_drvdom, 16);
		if (r < 0)
			return r;
	}
	r = bk_sim_platform(fx->sim, fx_drvdom, &fx->xen);
	if (r < 0)
		return r;
	if (fx_drvdom)
		bk_sim_platform_unprivileged(fx->xen);
	r = bk_loop_new(&fx->loop);
	if (r < 0)
		return r;
	prm.loop = fx->loop;
	prm.xen = fx->xen;
	prm.watch_coalesce_ms = coalesce_ms;
	prm.rescan_ms = fx_rescan_ms;
	r = bk_core_new(&prm, &fx->core);
	if (r < 0)
		return r;
	r = bk_core_register(fx->core, &tb_ops);
	if (r < 0)
		return r;
	r = bk_core_start(fx->core);
	if (r < 0)
		return r;
	return bk_ts_new(fx->sim, fx_drvdom, fx->loop, &fx->ts);
}

static void on_stopped(void *data)
{
	*(bool *)data = true;
}

static bool is_true(void *data)
{
	return *(bool *)data;
}

void fx_fini(struct fx *fx)
{
	if (fx->core) {
		bool stopped = false;

		bk_core_stop(fx->core, on_stopped, &stopped);
		tb_finish_shutdowns();
		CHECK(bk_test_pump_until(fx->loop, is_true, &stopped, 0) == 0);
		bk_core_free(fx->core);
	}
	bk_hook_free(tb_hook);
	tb_hook = NULL;
	bk_ts_free(fx->ts);
	if (fx->loop)
		CHECK(bk_loop_nr_objects(fx->loop) == 0);
	bk_loop_free(fx->loop);
	bk_xen_free(fx->xen);
	bk_sim_free(fx->sim);
	memset(fx, 0, sizeof(*fx));
}

struct nr_wait {
	struct fx *fx;
	unsigned int n;
};

static bool nr_is(void *data)
{
	struct nr_wait *w = data;

	return bk_core_nr_devices(w->fx->core) == w->n;
}

int fx_wait_nr_devices(struct fx *fx, unsigned int n)
{
	struct nr_wait w = { fx, n };

	return bk_test_pump_until(fx->loop, nr_is, &w, 0);
}

struct bk_ts_dev fx_vbd(uint32_t domid, uint32_t devid)
{
	return (struct bk_ts_dev){ .kind = "vbd", .domid = domid, .devid = devid };
}

int fx_exists(struct fx *fx, const char *path)
{
	return bk_ts_exists(fx->ts, path);
}

int fx_result(const char *name)
{
	if (bk_test_failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, bk_test_failures);
		return 1;
	}
	printf("%s: all checks passed\n", name);
	return 0;
}
