// SPDX-License-Identifier: MIT
/*
 * One backend device: creation from the toolstack's directory, the frontend's state (hostile),
 * toolstack removal, frontend disappearance, and the accessors backends use. Every ops call
 * the core makes happens from a batch (device_core.c), never from inside a backend's own call
 * into the core, so a backend may call bk_device_fail()/bk_device_shutdown_done() anywhere.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "device_internal.h"

const char *bk_xenbus_state_name(enum bk_xenbus_state s)
{
	static const char *const names[] = {
		[BK_XB_UNKNOWN] = "Unknown",
		[BK_XB_INITIALISING] = "Initialising",
		[BK_XB_INITWAIT] = "InitWait",
		[BK_XB_INITIALISED] = "Initialised",
		[BK_XB_CONNECTED] = "Connected",
		[BK_XB_CLOSING] = "Closing",
		[BK_XB_CLOSED] = "Closed",
		[BK_XB_RECONFIGURING] = "Reconfiguring",
		[BK_XB_RECONFIGURED] = "Reconfigured",
	};

	if ((unsigned int)s < ARRAY_SIZE(names))
		return names[s];
	return "Invalid";
}

struct bk_loop *bk_device_loop(struct bk_device *dev)
{
	return dev->loop ? dev->loop : dev->core->loop;
}

static void op_begin(struct bk_core *core, struct bk_loop *loop)
{
	core->op_loop = loop;
	if (loop)
		bk_loop_lock(loop);
}

/* Unlock what the op holds: the loop it began on, or the one its device moved to. */
static void op_end(struct bk_core *core)
{
	if (core->op_loop)
		bk_loop_unlock(core->op_loop);
	core->op_loop = NULL;
}

void bk_dev_lock(struct bk_dev_priv *p)
{
	op_begin(p->pub.core, p->pub.loop);
}

void bk_dev_unlock(struct bk_dev_priv *p)
{
	op_end(p->pub.core);
}

int bk_device_move(struct bk_device *dev, struct bk_loop *loop)
{
	struct bk_core *core = dev->core;
	unsigned int to;

	if (dev->loop == loop)
		return 0;
	for (to = 0; to < core->nr_threads; to++)
		if (core->threads[to].loop == loop)
			break;
	if (to == core->nr_threads || dev->thread < 0)
		return -EINVAL;
	/*
	 * Nothing of the device is on its old loop any more: let that go before taking the new
	 * one, so the main thread never holds two I/O loops but in index order (lock_all).
	 */
	if (core->op_loop != loop) {
		if (core->op_loop)
			bk_loop_unlock(core->op_loop);
		bk_loop_lock(loop);
		core->op_loop = loop;
	}
	core->threads[dev->thread].nr_devices--;
	core->threads[to].nr_devices++;
	dev_info(dev, "moving from I/O thread %d to %u", dev->thread, to);
	dev->thread = (int)to;
	dev->loop = loop;
	return 0;
}

/*
 * Give a new device its loop: the I/O thread of its domain's other devices (one guest's devices
 * share a thread, so one guest's load stays on one thread and the per-thread fairness of ring
 * batches and rate limits holds between guests as before), else the least loaded thread.
 */
static void dev_place(struct bk_dev_priv *p)
{
	struct bk_core *core = p->pub.core;
	struct bk_device *other;
	unsigned int best = 0;

	if (!core->nr_threads)
		return;
	list_for_each_entry (other, &core->devices, link) {
		if (other->domid == p->pub.domid && other->thread >= 0) {
			best = (unsigned int)other->thread;
			goto found;
		}
	}
	for (unsigned int i = 1; i < core->nr_threads; i++)
		if (core->threads[i].nr_devices < core->threads[best].nr_devices)
			best = i;
found:
	p->pub.thread = (int)best;
	p->pub.loop = core->threads[best].loop;
	core->threads[best].nr_devices++;
}

static void dev_unplace(struct bk_dev_priv *p)
{
	struct bk_core *core = p->pub.core;

	if (p->pub.thread < 0)
		return;
	core->threads[p->pub.thread].nr_devices--;
	p->pub.thread = -1;
	p->pub.loop = NULL;
}

struct bk_xen *bk_device_xen(struct bk_device *dev)
{
	return dev->core->xen;
}

int bk_device_journal_dir(struct bk_device *dev, char *buf, size_t len)
{
	const struct bk_config *cfg = bk_config_current();
	struct bk_xen *xen = bk_device_xen(dev);
	int n;

	/* Test processes on the simulation must never share journal files by default. */
	if (!cfg->state_directory[0] ||
	    (!strcmp(xen->ops->name, "sim") && !cfg->state_directory_set))
		return -ENOENT;
	n = snprintf(buf, len, "%s/inflight", cfg->state_directory);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int bk_device_journal_name(struct bk_device *dev, unsigned int queue, const char *tag, char *buf,
			   size_t len)
{
	int n;

	n = snprintf(buf, len, "%s-%u-%u-q%u%s%s", dev->ops->kind, dev->domid, dev->devid, queue,
		     tag ? "-" : "", tag ? tag : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct bk_xs *bk_device_xs(struct bk_device *dev)
{
	return dev->core->xs;
}

int bk_device_read_be(struct bk_device *dev, const char *key, char **ret)
{
	return bk_xs_read_str(dev->core->xs, BK_XS_NULL, dev->be_path, key, ret);
}

int bk_device_read_fe(struct bk_device *dev, const char *key, char **ret)
{
	if (!dev->fe_path)
		return -ENOENT;
	return bk_xs_read_str(dev->core->xs, BK_XS_NULL, dev->fe_path, key, ret);
}

int bk_device_read_fe_u32(struct bk_device *dev, const char *key, uint32_t *ret)
{
	if (!dev->fe_path)
		return -ENOENT;
	return bk_xs_read_u32(dev->core->xs, BK_XS_NULL, dev->fe_path, key, ret);
}

bool bk_device_left_connected(struct bk_device *dev)
{
	_cleanup_free_ char *be = NULL, *fe = NULL;

	return bk_device_read_be(dev, "state", &be) == 0 && !strcmp(be, "4") &&
	       bk_device_read_fe(dev, "state", &fe) == 0 && !strcmp(fe, "4");
}

int bk_device_hotplug_status(struct bk_device *dev)
{
	_cleanup_free_ char *v = NULL;

	if (bk_device_read_be(dev, "hotplug-status", &v) < 0)
		return 0;
	if (!strcmp(v, "connected"))
		return 1;
	if (!strcmp(v, "error"))
		return -1;
	return 0;
}

bool bk_device_frontend_reset(struct bk_device *dev)
{
	if (dev->state != BK_XB_CLOSED)
		return false;
	dev_info(dev, "frontend reset: waiting for it to reconnect");
	bk_device_set_state(dev, BK_XB_INITWAIT);
	return true;
}

void bk_device_closing(struct bk_device *dev)
{
	if (dev->state != BK_XB_CLOSING && dev->state != BK_XB_CLOSED)
		bk_device_set_state(dev, BK_XB_CLOSING);
}

int bk_device_write_be(struct bk_device *dev, const char *key, const char *fmt, ...)
{
	va_list ap;
	int r;

	/* Writing under a removed directory would recreate it: stale nodes. */
	if (bk_dev_priv(dev)->be_gone)
		return -ENOENT;
	va_start(ap, fmt);
	r = bk_xs_vprintf(dev->core->xs, BK_XS_NULL, dev->be_path, key, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * Write be_path/state only if the directory still exists (as Linux's xenbus_switch_state):
 * writing into a directory the toolstack just removed would recreate it, a stale node.
 * Linux does the check and the write in one transaction; here they are two back-to-back
 * requests (a window of one xenstore round trip) because a transaction per state change costs
 * too much with thousands of devices (the simulation copies the whole tree per transaction).
 */
static int write_state(struct bk_device *dev, enum bk_xenbus_state state)
{
	struct bk_xs *xs = dev->core->xs;
	char *val;
	size_t len;
	int r;

	r = bk_xs_read(xs, BK_XS_NULL, dev->be_path, &val, &len);
	if (r < 0)
		return r;
	free(val);
	return bk_xs_printf(xs, BK_XS_NULL, dev->be_path, "state", "%u", (unsigned int)state);
}

int bk_device_set_state(struct bk_device *dev, enum bk_xenbus_state state)
{
	struct bk_dev_priv *p = bk_dev_priv(dev);
	int r;

	assert((unsigned int)state <= BK_XB_RECONFIGURED);
	if (p->be_gone)
		return -ENOENT;
	r = write_state(dev, state);
	if (r == -ENOENT) {
		/* The toolstack removed the directory; the next batch sees it. */
		dev_debug(dev, "not writing state %s: backend directory gone",
			  bk_xenbus_state_name(state));
		return r;
	}
	if (r < 0) {
		dev_err(dev, "cannot write state %s: %s", bk_xenbus_state_name(state),
			strerror(-r));
		return r;
	}
	if (state != dev->state)
		dev_debug(dev, "state %s -> %s", bk_xenbus_state_name(dev->state),
			  bk_xenbus_state_name(state));
	dev->state = state;
	/* Going back to InitWait..Connected after a finished shutdown is a reconnect. */
	if (dev->shutdown_complete && state >= BK_XB_INITWAIT && state <= BK_XB_CONNECTED &&
	    !p->removing && !dev->core->stopping) {
		dev->shutting_down = false;
		dev->shutdown_complete = false;
		p->fe_vanished = false;
		p->failed = false;
	}
	return 0;
}

int bk_device_fail(struct bk_device *dev, int err, const char *fmt, ...)
{
	struct bk_dev_priv *p = bk_dev_priv(dev);
	char msg[256];
	va_list ap;

	if (err < 0)
		err = -err;
	if (err == 0)
		err = EIO;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The error node is read by tools and people: no guest byte may reach it raw. */
	bk_printable(msg, msg, sizeof(msg));
	if (!p->failed)
		dev_err(dev, "%s", msg);
	else
		dev_err_rl(dev, "%s", msg);
	p->failed = true;
	if (!p->be_gone) {
		bk_xs_printf(dev->core->xs, BK_XS_NULL, dev->be_path, "error", "%d %s", err, msg);
		if (dev->state != BK_XB_CLOSING && dev->state != BK_XB_CLOSED)
			bk_device_set_state(dev, BK_XB_CLOSING);
	}
	/* Stop the I/O from the next batch, not from inside the backend's own call. */
	if (p->active && !p->zombie) {
		p->want_shutdown = true;
		bk_core_mark_dirty(p, 0);
	}
	return -err;
}

void bk_device_shutdown_done(struct bk_device *dev)
{
	struct bk_dev_priv *p = bk_dev_priv(dev);

	if (!dev->shutting_down || dev->shutdown_complete) {
		dev_warn(dev, "shutdown_done without a shutdown in progress");
		return;
	}
	dev->shutdown_complete = true;
	bk_core_mark_dirty(p, BK_DIRTY_FE);
}

void bk_dev_note_key(struct bk_dev_priv *p, const char *key, size_t len)
{
	if (!key || len == 0 || len >= BK_DEV_KEY_LEN) {
		p->keys_overflow = true;
		return;
	}
	/* The core handles these itself. */
	if ((len == 5 && memcmp(key, "state", 5) == 0) ||
	    (len == 6 && memcmp(key, "online", 6) == 0))
		return;
	for (unsigned int i = 0; i < p->nr_keys; i++)
		if (strncmp(p->keys[i], key, len) == 0 && p->keys[i][len] == '\0')
			return;
	if (p->nr_keys == BK_DEV_MAX_KEYS) {
		p->keys_overflow = true;
		return;
	}
	memcpy(p->keys[p->nr_keys], key, len);
	p->keys[p->nr_keys][len] = '\0';
	p->nr_keys++;
}

static struct bk_dev_priv *dev_alloc(struct bk_core *core, unsigned int kind, uint32_t domid,
				     uint32_t devid)
{
	const struct bk_backend_ops *ops = core->kinds[kind].ops;
	struct bk_dev_priv *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (asprintf(&p->pub.be_path, "%s/%u/%u", core->kinds[kind].path, domid, devid) < 0) {
		free(p);
		return NULL;
	}
	p->pub.core = core;
	p->pub.ops = ops;
	list_init(&p->pub.link);
	list_init(&p->dirty_link);
	list_init(&p->sweep_link);
	list_init(&p->remote_link);
	p->pub.thread = -1;
	snprintf(p->pub.name, sizeof(p->pub.name), "%s %u/%u",
		 ops->log_name ? ops->log_name : ops->kind, domid, devid);
	p->pub.domid = domid;
	p->pub.devid = devid;
	/* The toolstack creates the directory with state Initialising. */
	p->pub.state = BK_XB_INITIALISING;
	p->pub.fe_state = BK_XB_UNKNOWN;
	p->pub.online = true;
	p->pub.rl = (struct bk_ratelimit)BK_RATELIMIT_INIT(5000, 10);
	p->kind = kind;
	p->hnode.key = bk_dev_key(kind, domid, devid);
	return p;
}

/*
 * Refuse a device: log, write error and Closed, and keep it as a zombie so that the events of
 * our own writes do not probe it again. It goes away with its directory or with online=0.
 */
_printf_(3, 4) static void dev_refuse(struct bk_dev_priv *p, int err, const char *fmt, ...)
{
	struct bk_device *dev = &p->pub;
	char msg[256];
	va_list ap;

	if (err < 0)
		err = -err;
	if (err == 0)
		err = EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bk_printable(msg, msg, sizeof(msg));
	if (!p->failed) {
		dev_err(dev, "refusing device: %s", msg);
		bk_xs_printf(dev->core->xs, BK_XS_NULL, dev->be_path, "error", "%d %s", err, msg);
	}
	p->zombie = true;
	bk_xs_printf(dev->core->xs, BK_XS_NULL, dev->be_path, "state", "%u", BK_XB_CLOSED);
	dev->state = BK_XB_CLOSED;
	list_add_tail(&dev->link, &dev->core->zombies);
}

void bk_dev_create(struct bk_core *core, unsigned int kind, uint32_t domid, uint32_t devid)
{
	const struct bk_backend_ops *ops = core->kinds[kind].ops;
	_cleanup_free_ char *frontend = NULL;
	char *expect = NULL;
	struct bk_dev_priv *p;
	struct bk_device *dev;
	uint32_t online, feid;
	char buf[128];
	int r;

	p = dev_alloc(core, kind, domid, devid);
	if (!p) {
		log_err("%s %u/%u: out of memory", ops->kind, domid, devid);
		return;
	}
	dev = &p->pub;
	/* Not there, half written, or withdrawn: nothing to do until the next event. */
	r = bk_xs_read_u32(core->xs, BK_XS_NULL, dev->be_path, "online", &online);
	if (r < 0 || online == 0)
		goto not_ready;
	r = bk_xs_read_str(core->xs, BK_XS_NULL, dev->be_path, "frontend", &frontend);
	if (r == -ENOENT)
		goto not_ready;
	bk_hash_add(core->devs, &p->hnode);
	if (r < 0) {
		dev_refuse(p, r, "cannot read frontend: %s", strerror(-r));
		return;
	}
	r = bk_xs_read_u32(core->xs, BK_XS_NULL, dev->be_path, "frontend-id", &feid);
	if (r < 0) {
		dev_refuse(p, r, "cannot read frontend-id: %s", strerror(-r));
		return;
	}
	if (feid != domid) {
		dev_refuse(p, EINVAL, "frontend-id %u does not match the directory's domain %u",
			   feid, domid);
		return;
	}
	if (asprintf(&expect, "/local/domain/%u/device/%s/%u", feid, ops->kind, devid) < 0) {
		dev_refuse(p, ENOMEM, "out of memory");
		return;
	}
	if (strcmp(frontend, expect) != 0) {
		dev_refuse(p, EPERM, "frontend path '%s' is not %s",
			   bk_printable(frontend, buf, sizeof(buf)), expect);
		free(expect);
		return;
	}
	dev->fe_path = expect;
	if (asprintf(&p->fe_state_path, "%s/state", dev->fe_path) < 0)
		p->fe_state_path = NULL;
	if (asprintf(&p->fe_token, "fe:%u:%u:%u", kind, domid, devid) < 0)
		p->fe_token = NULL;
	if (!p->fe_state_path || !p->fe_token) {
		dev_refuse(p, ENOMEM, "out of memory");
		return;
	}
	r = bk_xs_watch(core->xs, p->fe_state_path, p->fe_token);
	if (r < 0) {
		dev_refuse(p, r, "cannot watch %s: %s", p->fe_state_path, strerror(-r));
		return;
	}
	p->fe_watched = true;

	list_add_tail(&dev->link, &core->devices);
	core->nr_devices++;
	p->active = true;
	dev_place(p);
	if (dev->thread >= 0)
		dev_info(dev, "new device, frontend %s, on I/O thread %d", dev->fe_path,
			 dev->thread);
	else
		dev_info(dev, "new device, frontend %s", dev->fe_path);
	bk_dev_lock(p);
	r = ops->probe(dev);
	bk_dev_unlock(p);
	if (r < 0) {
		/* The probe cleaned up after itself: no remove for a refused device. */
		p->active = false;
		list_del(&dev->link);
		core->nr_devices--;
		bk_xs_unwatch(core->xs, p->fe_state_path, p->fe_token);
		p->fe_watched = false;
		list_del(&p->dirty_link);
		p->dirty_flags = 0;
		dev_unplace(p);
		dev_refuse(p, r, "probe failed: %s", strerror(-r));
		return;
	}
	/* Read the frontend's state in this same batch. */
	bk_core_mark_dirty(p, BK_DIRTY_FE);
	return;

not_ready:
	free(dev->be_path);
	free(p);
}

void bk_dev_destroy(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;
	struct bk_core *core = dev->core;

	if (p->fe_watched)
		bk_xs_unwatch(core->xs, p->fe_state_path, p->fe_token);
	if (p->active) {
		dev_info(dev, "removed");
		if (dev->ops->remove)
			dev->ops->remove(dev);
		core->nr_devices--;
	}
	list_del(&dev->link);
	list_del(&p->dirty_link);
	list_del(&p->sweep_link);
	if (dev->thread >= 0) {
		/* Its loop holds nothing of it any more: nothing can queue it again. */
		pthread_mutex_lock(&core->remote_lock);
		list_del(&p->remote_link);
		pthread_mutex_unlock(&core->remote_lock);
		dev_unplace(p);
	}
	bk_hash_del(core->devs, &p->hnode);
	free(p->fe_state_path);
	free(p->fe_token);
	free(dev->fe_path);
	free(dev->be_path);
	free(p);
}

/* Remove the backend directory and its backend/<kind>/<domid> parent once empty (libxl does). */
static void remove_be_dir(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;
	struct bk_core *core = dev->core;
	_cleanup_free_ char *parent = NULL;
	int r = 0;

	if (asprintf(&parent, "%s/%u", core->kinds[p->kind].path, dev->domid) < 0) {
		parent = NULL;
		return;
	}
	for (int tries = 0; tries < 8; tries++) {
		char **names = NULL;
		unsigned int n = 1;
		uint32_t t;

		r = bk_xs_transaction_start(core->xs, &t);
		if (r < 0)
			break;
		r = bk_xs_rm(core->xs, t, dev->be_path);
		if (r < 0 && r != -ENOENT) {
			bk_xs_transaction_end(core->xs, t, true);
			break;
		}
		if (bk_xs_directory(core->xs, t, parent, &names, &n) == 0) {
			free(names);
			if (n == 0)
				bk_xs_rm(core->xs, t, parent);
		}
		r = bk_xs_transaction_end(core->xs, t, false);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0)
		dev_warn(dev, "cannot remove %s: %s", dev->be_path, strerror(-r));
}

static bool fe_deliverable(struct bk_dev_priv *p)
{
	const struct bk_device *dev = &p->pub;

	return p->active && !p->removing && !p->want_shutdown && !dev->core->stopping &&
	       !(dev->shutting_down && !dev->shutdown_complete);
}

/*
 * Is the frontend's domain still there? In dom0 the hypervisor says (domctl). A driver
 * domain may not ask it (-EPERM, core->no_domctl): there xenstore decides. /local/domain/<id>
 * readable: alive; absent: gone. Unreadable (-EACCES: xenstored shows a driver domain neither
 * that node nor, when it is missing, its parent, so absence reads -EACCES too): the frontend
 * directory decides, which the toolstack makes readable to the backend's domain and removes
 * with the guest. 1 alive, 0 gone, -errno when xenstore cannot tell.
 */
static int frontend_domain_alive(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;
	struct bk_core *core = dev->core;
	char path[40], *val;
	size_t len;
	int r;

	if (!core->no_domctl) {
		r = core->xen->ops->domain_alive(core->xen, dev->domid);
		if (r != -EPERM)
			return r;
		core->no_domctl = true;
	}
	snprintf(path, sizeof(path), "/local/domain/%u", dev->domid);
	r = bk_xs_read(core->xs, BK_XS_NULL, path, &val, &len);
	if (r == 0) {
		free(val);
		return 1;
	}
	if (r != -EACCES)
		return r == -ENOENT ? 0 : r;
	if (!dev->fe_path)
		return -EINVAL;
	r = bk_xs_read(core->xs, BK_XS_NULL, dev->fe_path, &val, &len);
	if (r == 0) {
		free(val);
		return 1;
	}
	return r == -ENOENT || r == -EACCES ? 0 : r;
}

/* The frontend's state: a hostile value. */
static void read_frontend(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;
	struct bk_core *core = dev->core;
	_cleanup_free_ char *val = NULL;
	enum bk_xenbus_state s;
	uint64_t v;
	char buf[32];
	int r;

	r = bk_xs_read_str(core->xs, BK_XS_NULL, p->fe_state_path, NULL, &val);
	if (r == -ENOENT || r == -EACCES) {
		/* Before the frontend ever showed up, absence only matters for a dead domain. */
		if (!p->fe_seen && frontend_domain_alive(p) != 0)
			return;
		if (!p->fe_vanished) {
			/* A guest can repeat this: rate limited. */
			bk_log_dev_rl(&dev->rl, BK_LOG_INFO, dev->name,
				      "frontend %s vanished: tearing down", dev->fe_path);
			p->fe_vanished = true;
			p->want_shutdown = true;
		}
		return;
	}
	if (r < 0 && r != -EINVAL) {
		dev_warn_rl(dev, "cannot read frontend state: %s", strerror(-r));
		return;
	}
	p->fe_seen = true;
	p->fe_vanished = false;
	if (r < 0 || bk_parse_u64(val, &v) < 0 || v > BK_XB_RECONFIGURED) {
		dev_warn_rl(dev, "frontend wrote invalid state '%s': treating it as Closed",
			    val ? bk_printable(val, buf, sizeof(buf)) : "<binary>");
		s = BK_XB_CLOSED;
	} else {
		s = (enum bk_xenbus_state)v;
	}
	if (!fe_deliverable(p) || s == dev->fe_state)
		return;
	dev_debug(dev, "frontend %s -> %s", bk_xenbus_state_name(dev->fe_state),
		  bk_xenbus_state_name(s));
	dev->fe_state = s;
	if (dev->ops->frontend_changed)
		dev->ops->frontend_changed(dev, s);
}

/* The backend directory: still there? toolstack asking for removal? */
static void read_backend(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;
	struct bk_core *core = dev->core;
	uint32_t v;
	char *val;
	size_t len;
	int r;

	r = bk_xs_read(core->xs, BK_XS_NULL, dev->be_path, &val, &len);
	if (r == -ENOENT) {
		dev_info(dev, "backend directory removed");
		p->be_gone = true;
		p->want_shutdown = true;
		return;
	}
	if (r == 0)
		free(val);
	if (bk_xs_read_u32(core->xs, BK_XS_NULL, dev->be_path, "online", &v) == 0 &&
	    dev->online != (v != 0)) {
		dev->online = v != 0;
		dev_debug(dev, "online=%u", v);
	}
	if (!dev->online && !p->removing) {
		dev_info(dev, "toolstack requested removal (online=0)");
		p->removing = true;
		p->want_shutdown = true;
	}
	if (bk_xs_read_u32(core->xs, BK_XS_NULL, dev->be_path, "state", &v) == 0 &&
	    v != dev->state && (v == BK_XB_CLOSING || v == BK_XB_CLOSED) && !p->want_shutdown &&
	    !dev->shutting_down) {
		dev_info(dev, "state set to %s by the toolstack: shutting down",
			 bk_xenbus_state_name(v));
		p->want_shutdown = true;
	}
}

static void start_shutdown(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;

	dev->shutting_down = true;
	dev->shutdown_complete = false;
	dev_debug(dev, "shutting down");
	if (p->active && dev->ops->shutdown)
		dev->ops->shutdown(dev);
	else
		bk_device_shutdown_done(dev);
}

/* Shutdown finished: Closed, and destroy when nothing should stay. Returns true if destroyed. */
static bool finish_shutdown(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;
	struct bk_core *core = dev->core;

	if (!p->be_gone && !core->stopping) {
		uint32_t v;

		/* The node, not our memory of it: the toolstack may have written Closing since. */
		if (dev->state != BK_XB_CLOSED ||
		    bk_xs_read_u32(core->xs, BK_XS_NULL, dev->be_path, "state", &v) < 0 ||
		    v != BK_XB_CLOSED)
			bk_device_set_state(dev, BK_XB_CLOSED);
	}
	if (p->fe_vanished && !p->be_gone && !core->stopping && frontend_domain_alive(p) == 0) {
		dev_info(dev, "frontend domain is gone: removing %s", dev->be_path);
		remove_be_dir(p);
		p->be_gone = true;
	}
	if (p->be_gone || (p->removing && !dev->online) || core->stopping) {
		bk_dev_destroy(p);
		return true;
	}
	return false;
}

static void process_zombie(struct bk_dev_priv *p)
{
	struct bk_device *dev = &p->pub;
	struct bk_core *core = dev->core;
	uint32_t v;
	int r;

	r = bk_xs_read_u32(core->xs, BK_XS_NULL, dev->be_path, "online", &v);
	if (r == -ENOENT || (r == 0 && v == 0) || core->stopping) {
		/* Removal requested: answer Closed at once so libxl need not time out. */
		if (r == 0 && !core->stopping)
			bk_xs_printf(core->xs, BK_XS_NULL, dev->be_path, "state", "%u",
				     BK_XB_CLOSED);
		bk_dev_destroy(p);
		return;
	}
	/* Someone rewrote the directory after we refused it: try again from scratch. */
	r = bk_xs_read_u32(core->xs, BK_XS_NULL, dev->be_path, "state", &v);
	if (r == 0 && v != BK_XB_CLOSED) {
		unsigned int kind = p->kind;
		uint32_t domid = dev->domid, devid = dev->devid;

		bk_dev_destroy(p);
		bk_core_queue_create(core, kind, domid, devid);
	}
}

static void dev_process(struct bk_dev_priv *p, unsigned int flags)
{
	struct bk_device *dev = &p->pub;
	char keys[BK_DEV_MAX_KEYS][BK_DEV_KEY_LEN];
	unsigned int nr_keys = p->nr_keys;
	bool overflow = p->keys_overflow;

	/* Take the keys first: a callback may mark the device dirty again. */
	memcpy(keys, p->keys, sizeof(keys[0]) * nr_keys);
	p->nr_keys = 0;
	p->keys_overflow = false;

	if (!p->be_gone && (flags & BK_DIRTY_BE))
		read_backend(p);
	if (!p->be_gone && fe_deliverable(p) && dev->ops->backend_changed) {
		for (unsigned int i = 0; i < nr_keys && fe_deliverable(p); i++)
			dev->ops->backend_changed(dev, keys[i]);
		if (overflow && fe_deliverable(p))
			dev->ops->backend_changed(dev, NULL);
	}
	if (!p->be_gone && (flags & BK_DIRTY_FE))
		read_frontend(p);
	if (p->want_shutdown) {
		p->want_shutdown = false;
		if (!dev->shutting_down)
			start_shutdown(p);
	}
	if (dev->shutting_down && dev->shutdown_complete)
		finish_shutdown(p);
}

void bk_dev_process(struct bk_dev_priv *p, unsigned int flags)
{
	/* The loop and the core outlive @p, which processing may destroy. */
	struct bk_loop *loop = p->pub.loop;
	struct bk_core *core = p->pub.core;

	if (p->zombie) {
		process_zombie(p); /* never placed: no loop */
		return;
	}
	op_begin(core, loop);
	dev_process(p, flags);
	op_end(core);
}
