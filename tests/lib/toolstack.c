// SPDX-License-Identifier: MIT
/* The simulated toolstack (libxl 4.17's device add/remove and domain destroy, in xenstore). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

#define TS_TX_TRIES 16

struct bk_toolstack {
	struct bk_sim *sim;
	struct bk_loop *loop;
	struct bk_xen *xen;
	struct bk_xs *xs;
	uint32_t be_domid;
};

int bk_ts_new(struct bk_sim *sim, uint32_t backend_domid, struct bk_loop *loop,
	      struct bk_toolstack **ret)
{
	struct bk_toolstack *ts = calloc(1, sizeof(*ts));
	int r;

	if (!ts)
		return -ENOMEM;
	ts->sim = sim;
	ts->loop = loop;
	ts->be_domid = backend_domid;
	/* libxl runs in dom0. */
	r = bk_sim_platform(sim, 0, &ts->xen);
	if (r < 0)
		goto fail;
	r = bk_xs_open(ts->xen, &ts->xs);
	if (r < 0)
		goto fail;
	*ret = ts;
	return 0;
fail:
	bk_ts_free(ts);
	return r;
}

void bk_ts_free(struct bk_toolstack *ts)
{
	if (!ts)
		return;
	bk_xs_close(ts->xs);
	bk_xen_free(ts->xen);
	free(ts);
}

struct bk_xs *bk_ts_xs(struct bk_toolstack *ts)
{
	return ts->xs;
}

unsigned int bk_ts_take_watch_events(struct bk_toolstack *ts, const char *token)
{
	unsigned int n = 0;
	char *path, *tok;

	while (bk_xs_read_watch(ts->xs, &path, &tok) == 0) {
		if (!strcmp(tok, token))
			n++;
		free(path);
		free(tok);
	}
	return n;
}

char *bk_ts_be_path(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid)
{
	char *p;

	if (asprintf(&p, "/local/domain/%u/backend/%s/%u/%u", ts->be_domid, kind, domid, devid) < 0)
		return NULL;
	return p;
}

char *bk_ts_fe_path(const char *kind, uint32_t domid, uint32_t devid)
{
	char *p;

	if (asprintf(&p, "/local/domain/%u/device/%s/%u", domid, kind, devid) < 0)
		return NULL;
	return p;
}

int bk_ts_exists(struct bk_toolstack *ts, const char *path)
{
	char *val;
	size_t len;
	int r = bk_xs_read(ts->xs, BK_XS_NULL, path, &val, &len);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	free(val);
	return 1;
}

struct kv {
	const char *key;
	char val[128];
};

static int write_pairs(struct bk_xs *xs, uint32_t t, const char *dir, const struct kv *kv,
		       unsigned int n, const char *const *extra)
{
	int r;

	for (unsigned int i = 0; i < n; i++) {
		r = bk_xs_printf(xs, t, dir, kv[i].key, "%s", kv[i].val);
		if (r < 0)
			return r;
	}
	for (; extra && extra[0]; extra += 2) {
		if (!extra[1])
			return -EINVAL;
		r = bk_xs_printf(xs, t, dir, extra[0], "%s", extra[1]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* rm, mkdir, set perms, write: one side of libxl__device_generic_add. */
static int add_dir(struct bk_xs *xs, uint32_t t, const char *dir, uint32_t owner, uint32_t reader,
		   const struct kv *kv, unsigned int n, const char *const *extra)
{
	const struct bk_xs_perm perms[] = {
		{ .domid = owner, .perms = BK_XS_PERM_NONE },
		{ .domid = reader, .perms = BK_XS_PERM_READ },
	};
	int r;

	r = bk_xs_rm(xs, t, dir);
	if (r < 0 && r != -ENOENT)
		return r;
	r = bk_xs_mkdir(xs, t, dir);
	if (r < 0)
		return r;
	r = bk_xs_set_perms(xs, t, dir, perms, ARRAY_SIZE(perms));
	if (r < 0)
		return r;
	return write_pairs(xs, t, dir, kv, n, extra);
}

/* Run @fn in a transaction, retrying on conflicts as libxl does. */
static int ts_tx(struct bk_toolstack *ts, int (*fn)(struct bk_toolstack *ts, uint32_t t, void *arg),
		 void *arg)
{
	int r = -EIO;

	for (int tries = 0; tries < TS_TX_TRIES; tries++) {
		uint32_t t;

		r = bk_xs_transaction_start(ts->xs, &t);
		if (r < 0)
			return r;
		r = fn(ts, t, arg);
		if (r < 0) {
			bk_xs_transaction_end(ts->xs, t, true);
			return r;
		}
		r = bk_xs_transaction_end(ts->xs, t, false);
		if (r != -EAGAIN)
			return r;
	}
	return r;
}

#define KV(k, ...)                                                   \
	do {                                                         \
		kv[n].key = (k);                                     \
		snprintf(kv[n].val, sizeof(kv[n].val), __VA_ARGS__); \
		n++;                                                 \
	} while (0)
#define OR(a, b) ((a) ? (a) : (b))

static int add_t(struct bk_toolstack *ts, uint32_t t, const struct bk_ts_dev *d)
{
	_cleanup_free_ char *be = NULL, *fe = NULL;
	struct kv bkv[20], fkv[12];
	unsigned int nb = 0, nf = 0;
	bool vif;
	int r;

	if (!d->kind || (strcmp(d->kind, "vbd") != 0 && strcmp(d->kind, "vif") != 0))
		return -EINVAL;
	vif = strcmp(d->kind, "vif") == 0;
	be = bk_ts_be_path(ts, d->kind, d->domid, d->devid);
	fe = bk_ts_fe_path(d->kind, d->domid, d->devid);
	if (!be || !fe)
		return -ENOMEM;

	{
		struct kv *kv = bkv;
		unsigned int n = 0;

		KV("frontend", "%s", fe);
		KV("frontend-id", "%u", d->domid);
		KV("online", "1");
		KV("state", "1");
		if (vif) {
			KV("script", "%s", OR(d->script, "/etc/xen/scripts/vif-bridge"));
			KV("mac", "%s", OR(d->mac, "00:16:3e:00:00:01"));
			KV("bridge", "%s", OR(d->bridge, "xenbr0"));
			KV("handle", "%u", d->devid);
			KV("type", "%s", OR(d->type, "vif"));
		} else {
			KV("removable", "0");
			KV("bootable", "1");
			KV("dev", "%s", OR(d->dev, "xvda"));
			KV("type", "%s", OR(d->type, "phy"));
			KV("mode", "%s", OR(d->mode, "w"));
			KV("device-type", "%s", OR(d->device_type, "disk"));
			KV("discard-enable", "1");
			KV("specification", "xen");
			KV("params", "%s", OR(d->params, "/dev/null"));
			KV("script", "%s", OR(d->script, "/etc/xen/scripts/block"));
		}
		nb = n;
	}
	{
		struct kv *kv = fkv;
		unsigned int n = 0;

		KV("backend", "%s", be);
		KV("backend-id", "%u", ts->be_domid);
		KV("state", "1");
		if (vif) {
			KV("handle", "%u", d->devid);
			KV("mac", "%s", OR(d->mac, "00:16:3e:00:00:01"));
		} else {
			KV("virtual-device", "%u", d->devid);
			KV("device-type", "%s", OR(d->device_type, "disk"));
			KV("protocol", "x86_64-abi");
		}
		KV("trusted", "1");
		nf = n;
	}

	r = add_dir(ts->xs, t, fe, d->domid, ts->be_domid, fkv, nf, d->extra_fe);
	if (r == 0)
		r = add_dir(ts->xs, t, be, ts->be_domid, d->domid, bkv, nb, d->extra_be);
	return r;
}

struct devs_arg {
	const struct bk_ts_dev *devs;
	unsigned int n;
};

static int add_many_t(struct bk_toolstack *ts, uint32_t t, void *arg)
{
	const struct devs_arg *a = arg;

	for (unsigned int i = 0; i < a->n; i++) {
		int r = add_t(ts, t, &a->devs[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

int bk_ts_add(struct bk_toolstack *ts, const struct bk_ts_dev *d)
{
	struct devs_arg a = { d, 1 };

	return ts_tx(ts, add_many_t, &a);
}

int bk_ts_add_many(struct bk_toolstack *ts, const struct bk_ts_dev *devs, unsigned int n)
{
	struct devs_arg a = { devs, n };

	return ts_tx(ts, add_many_t, &a);
}

int bk_ts_be_state(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		   unsigned int *ret)
{
	_cleanup_free_ char *be = bk_ts_be_path(ts, kind, domid, devid);
	uint32_t v;
	int r;

	if (!be)
		return -ENOMEM;
	r = bk_xs_read_u32(ts->xs, BK_XS_NULL, be, "state", &v);
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

int bk_ts_write_be(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		   const char *key, const char *val)
{
	_cleanup_free_ char *be = bk_ts_be_path(ts, kind, domid, devid);

	if (!be)
		return -ENOMEM;
	return bk_xs_printf(ts->xs, BK_XS_NULL, be, key, "%s", val);
}

int bk_ts_read_be(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		  const char *key, char *val, size_t len)
{
	_cleanup_free_ char *be = bk_ts_be_path(ts, kind, domid, devid);
	_cleanup_free_ char *v = NULL;
	char p[256];
	size_t n;
	int r;

	val[0] = '\0';
	if (!be)
		return -ENOMEM;
	snprintf(p, sizeof(p), "%s/%s", be, key);
	r = bk_xs_read(ts->xs, BK_XS_NULL, p, &v, &n);
	if (r < 0)
		return r;
	snprintf(val, len, "%s", v);
	return 0;
}

struct ts_wait {
	struct bk_toolstack *ts;
	const char *kind;
	uint32_t domid, devid;
	unsigned int state;
};

static bool ts_state_is(void *data)
{
	struct ts_wait *w = data;
	unsigned int s;

	return bk_ts_be_state(w->ts, w->kind, w->domid, w->devid, &s) == 0 && s == w->state;
}

static int ts_wait_state(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
			 unsigned int state)
{
	struct ts_wait w = { ts, kind, domid, devid, state };

	return bk_test_pump_until(ts->loop, ts_state_is, &w, BK_TS_WAIT_ITERS);
}

int bk_ts_hotplug(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid,
		  const char *status)
{
	return bk_ts_write_be(ts, kind, domid, devid, "hotplug-status", status);
}

/* Names a target may give settings under (scripts/blanket-hotplug), and their keys. */
static const char *const ts_settings[][2] = {
	{ "engine", "blanket-engine" },	  { "queues", "blanket-queues" },
	{ "cache", "blanket-cache" },	  { "discard", "blanket-discard" },
	{ "options", "blanket-options" }, { "share", "blanket-share" },
	{ "iops", "blanket-iops" },	  { "bps", "blanket-bps" },
	{ "burst", "blanket-burst" },	  { "persistent", "blanket-persistent" },
};

struct script_arg {
	const char *be;
	const char *path;
	char *settings; /* "k=v,k=v" as the target gave them, or NULL */
};

static int script_keys_t(struct bk_toolstack *ts, uint32_t t, void *arg)
{
	const struct script_arg *a = arg;
	_cleanup_free_ char *copy = a->settings ? strdup(a->settings) : NULL;
	char *save = NULL;
	int r;

	if (a->settings && !copy)
		return -ENOMEM;
	for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		size_t i = 0;

		*eq = '\0'; /* checked by the caller */
		while (strcmp(tok, ts_settings[i][0]))
			i++;
		if (!strcmp(tok, "options")) /* ';' stands for the engine syntax's ',' */
			for (char *c = eq + 1; *c; c++)
				if (*c == ';')
					*c = ',';
		r = bk_xs_printf(ts->xs, t, a->be, ts_settings[i][1], "%s", eq + 1);
		if (r < 0)
			return r;
	}
	return bk_xs_printf(ts->xs, t, a->be, "physical-device-path", "%s", a->path);
}

/* The script's failure: hotplug-error, then hotplug-status=error; returns -EINVAL. */
static int script_fail(struct bk_toolstack *ts, const struct bk_ts_dev *d, const char *why)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "blanket: %s", why);
	bk_ts_write_be(ts, d->kind, d->domid, d->devid, "hotplug-error", msg);
	bk_ts_hotplug(ts, d->kind, d->domid, d->devid, "error");
	return -EINVAL;
}

/*
 * scripts/blanket-hotplug "add" for a vbd: split the target (params) into settings and path,
 * write the blanket-* keys and physical-device-path, then hotplug-status=connected. As the
 * script, a name that is not a setting or a target that does not exist ends in
 * hotplug-status=error; unlike it, the values and the kind of file are left to the backend to
 * check, so tests reach the backend's own refusals.
 */
static int play_blanket_script(struct bk_toolstack *ts, const struct bk_ts_dev *d)
{
	_cleanup_free_ char *be = bk_ts_be_path(ts, d->kind, d->domid, d->devid);
	_cleanup_free_ char *params = strdup(d->params ? d->params : "/dev/null");
	char real[PATH_MAX], why[200];
	struct script_arg a = { .be = be };
	char *colon, *target;
	int r;

	if (!be || !params)
		return -ENOMEM;
	colon = strchr(params, ':');
	target = params;
	if (params[0] != '/' && colon) {
		*colon = '\0';
		target = colon + 1;
		if (strchr(params, '=')) {
			_cleanup_free_ char *check = strdup(params);
			char *save = NULL;

			if (!check)
				return -ENOMEM;
			for (char *tok = strtok_r(check, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				char *eq = strchr(tok, '=');
				size_t i = 0;

				if (eq)
					*eq = '\0';
				while (i < ARRAY_SIZE(ts_settings) &&
				       strcmp(tok, ts_settings[i][0]))
					i++;
				if (!eq || i == ARRAY_SIZE(ts_settings)) {
					snprintf(why, sizeof(why), "unknown setting '%.64s'", tok);
					return script_fail(ts, d, why);
				}
			}
			a.settings = params;
		}
	}
	if (!realpath(target, real)) {
		snprintf(why, sizeof(why), "target %.150s does not exist", target);
		return script_fail(ts, d, why);
	}
	a.path = real;
	r = ts_tx(ts, script_keys_t, &a);
	if (r < 0)
		return r;
	return bk_ts_hotplug(ts, d->kind, d->domid, d->devid, "connected");
}

/* A block backend (it offers flushes) published its size, or refused the device. */
static bool ts_block_ready(void *data)
{
	struct ts_wait *w = data;
	_cleanup_free_ char *be = bk_ts_be_path(w->ts, w->kind, w->domid, w->devid);
	char key[256];
	unsigned int s;

	if (!be)
		return false;
	if (bk_ts_be_state(w->ts, w->kind, w->domid, w->devid, &s) == 0 && s >= 5) {
		w->state = s;
		return true;
	}
	snprintf(key, sizeof(key), "%s/feature-flush-cache", be);
	if (bk_ts_exists(w->ts, key) != 1)
		return true; /* not a block backend: nothing to wait for */
	snprintf(key, sizeof(key), "%s/sectors", be);
	return bk_ts_exists(w->ts, key) == 1;
}

int bk_ts_attach(struct bk_toolstack *ts, const struct bk_ts_dev *d)
{
	struct ts_wait w = { ts, d->kind, d->domid, d->devid, 0 };
	int r = bk_ts_add(ts, d);

	if (r < 0)
		return r;
	r = ts_wait_state(ts, d->kind, d->domid, d->devid, 2);
	if (r < 0)
		return r;
	if (strcmp(d->kind, "vbd"))
		return bk_ts_hotplug(ts, d->kind, d->domid, d->devid, "connected");
	r = play_blanket_script(ts, d);
	if (r < 0)
		return r;
	/*
	 * libxl returns here; the guest then boots (or blkfront notices the new device) and
	 * reads the features. Wait for the backend to have taken the script's keys, so a test's
	 * frontend reading at InitWait finds the size as a booting guest would.
	 */
	r = bk_test_pump_until(ts->loop, ts_block_ready, &w, BK_TS_WAIT_ITERS);
	if (r < 0)
		return r;
	return w.state >= 5 ? -ENODEV : 0;
}

static int request_remove_t(struct bk_toolstack *ts, uint32_t t, const struct bk_ts_dev *d)
{
	_cleanup_free_ char *be = bk_ts_be_path(ts, d->kind, d->domid, d->devid);
	int r;

	if (!be)
		return -ENOMEM;
	r = bk_xs_printf(ts->xs, t, be, "online", "0");
	if (r == 0)
		r = bk_xs_printf(ts->xs, t, be, "state", "5");
	return r;
}

static int request_remove_many_t(struct bk_toolstack *ts, uint32_t t, void *arg)
{
	const struct devs_arg *a = arg;

	for (unsigned int i = 0; i < a->n; i++) {
		int r = request_remove_t(ts, t, &a->devs[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

int bk_ts_request_remove(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid)
{
	struct bk_ts_dev d = { .kind = kind, .domid = domid, .devid = devid };
	struct devs_arg a = { &d, 1 };

	return ts_tx(ts, request_remove_many_t, &a);
}

int bk_ts_request_remove_many(struct bk_toolstack *ts, const struct bk_ts_dev *devs, unsigned int n)
{
	struct devs_arg a = { devs, n };

	return ts_tx(ts, request_remove_many_t, &a);
}

/* Remove @path, then its parents while empty, but not above @stop (libxl__xs_path_cleanup). */
static int path_cleanup(struct bk_xs *xs, uint32_t t, char *path, size_t stop)
{
	int r = bk_xs_rm(xs, t, path);

	if (r < 0 && r != -ENOENT)
		return r;
	for (;;) {
		char *slash = strrchr(path, '/');
		char **names;
		unsigned int n;

		if (!slash || (size_t)(slash - path) < stop)
			return 0;
		*slash = '\0';
		if (bk_xs_directory(xs, t, path, &names, &n) < 0)
			return 0;
		free(names);
		if (n > 0)
			return 0;
		r = bk_xs_rm(xs, t, path);
		if (r < 0 && r != -ENOENT)
			return r;
	}
}

static int destroy_dirs_t(struct bk_toolstack *ts, uint32_t t, const struct bk_ts_dev *d)
{
	_cleanup_free_ char *be = bk_ts_be_path(ts, d->kind, d->domid, d->devid);
	_cleanup_free_ char *fe = bk_ts_fe_path(d->kind, d->domid, d->devid);
	size_t be_stop, fe_stop;
	int r;

	if (!be || !fe)
		return -ENOMEM;
	/* Empty parents go up to backend/<kind>/<domid>; backend/<kind> and device/<kind> stay. */
	be_stop =
		(size_t)snprintf(NULL, 0, "/local/domain/%u/backend/%s", ts->be_domid, d->kind) + 1;
	fe_stop = strlen(fe) - strlen(strrchr(fe, '/')) + 1;
	r = path_cleanup(ts->xs, t, fe, fe_stop);
	if (r == 0)
		r = path_cleanup(ts->xs, t, be, be_stop);
	return r;
}

static int destroy_many_t(struct bk_toolstack *ts, uint32_t t, void *arg)
{
	const struct devs_arg *a = arg;

	for (unsigned int i = 0; i < a->n; i++) {
		int r = destroy_dirs_t(ts, t, &a->devs[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

int bk_ts_destroy_dirs(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid)
{
	struct bk_ts_dev d = { .kind = kind, .domid = domid, .devid = devid };
	struct devs_arg a = { &d, 1 };

	return ts_tx(ts, destroy_many_t, &a);
}

int bk_ts_destroy_dirs_many(struct bk_toolstack *ts, const struct bk_ts_dev *devs, unsigned int n)
{
	struct devs_arg a = { devs, n };

	return ts_tx(ts, destroy_many_t, &a);
}

int bk_ts_remove(struct bk_toolstack *ts, const char *kind, uint32_t domid, uint32_t devid)
{
	int r, w;

	r = bk_ts_request_remove(ts, kind, domid, devid);
	if (r < 0)
		return r;
	w = ts_wait_state(ts, kind, domid, devid, 6);
	r = bk_ts_destroy_dirs(ts, kind, domid, devid);
	if (r < 0)
		return r;
	return w;
}

int bk_ts_guest_destroyed(struct bk_toolstack *ts, uint32_t domid)
{
	char path[64];
	int r;

	r = bk_sim_domain_destroy(ts->sim, domid);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	r = bk_xs_rm(ts->xs, BK_XS_NULL, path);
	return r == -ENOENT ? 0 : r;
}
