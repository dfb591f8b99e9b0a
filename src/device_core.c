// SPDX-License-Identifier: MIT
/*
 * The device core: one xenstore connection, a watch on backend/<kind> per registered kind and
 * one on each frontend's state, and the coalescing of watch events (XSA-349). Events only mark
 * devices dirty (or queue a creation); a batch at the next loop turn (a 0 ms timer), or after
 * watch_coalesce_ms, processes each dirty device once, however many events it had. The periodic
 * rescan (the safety net for lost events) is spread over loop turns, a bounded slice per batch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device_internal.h"

/* Passes over the dirty set per batch: work a pass creates is done in the same batch. */
#define BK_BATCH_PASSES 16

static unsigned int hash_idx(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (unsigned int)(key & (BK_HASH_SIZE - 1));
}

void bk_hash_add(struct bk_hnode **tab, struct bk_hnode *n)
{
	unsigned int i = hash_idx(n->key);

	n->next = tab[i];
	tab[i] = n;
}

void bk_hash_del(struct bk_hnode **tab, struct bk_hnode *n)
{
	for (struct bk_hnode **pp = &tab[hash_idx(n->key)]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			return;
		}
	}
}

struct bk_hnode *bk_hash_find(struct bk_hnode *const *tab, uint64_t key)
{
	for (struct bk_hnode *n = tab[hash_idx(key)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

static bool core_has_work(const struct bk_core *core)
{
	return !list_empty(&core->dirty) || !list_empty(&core->pending);
}

/* A rescan is in progress or requested: it goes on at the next loop turn. */
static bool sweep_pending(const struct bk_core *core)
{
	if (core->sweep.kind >= 0)
		return true;
	for (unsigned int k = 0; k < core->nr_kinds; k++)
		if (core->kinds[k].rescan)
			return true;
	return false;
}

/*
 * Run a batch at the next loop turn (or after watch_coalesce_ms). A timer rather than a loop
 * hook: backends enable their own hooks from the callbacks a batch makes, and a hook enabled
 * from inside another hook would only run after the loop slept.
 */
static void core_schedule(struct bk_core *core)
{
	if (!bk_timer_active(core->timer))
		bk_timer_rearm(core->timer, core->coalesce_ms, 0);
}

/*
 * Devices marked dirty from their I/O thread (bk_device_fail, bk_device_shutdown_done from a
 * callback there) reach the dirty set here, on the main thread.
 */
static void remote_cb(void *data)
{
	struct bk_core *core = data;

	pthread_mutex_lock(&core->remote_lock);
	while (!list_empty(&core->remote)) {
		struct bk_dev_priv *p =
			list_first_entry(&core->remote, struct bk_dev_priv, remote_link);
		unsigned int flags = p->remote_flags;

		list_del(&p->remote_link);
		p->remote_flags = 0;
		bk_core_mark_dirty(p, flags);
	}
	pthread_mutex_unlock(&core->remote_lock);
}

void bk_core_mark_dirty(struct bk_dev_priv *p, unsigned int flags)
{
	struct bk_core *core = p->pub.core;

	if (p->pub.loop && bk_loop_on_own_thread(p->pub.loop)) {
		/* The dirty set and the batch timer are the main thread's. */
		pthread_mutex_lock(&core->remote_lock);
		if (list_empty(&p->remote_link))
			list_add_tail(&p->remote_link, &core->remote);
		p->remote_flags |= flags;
		pthread_mutex_unlock(&core->remote_lock);
		bk_async_send(core->remote_async);
		return;
	}
	if (list_empty(&p->dirty_link))
		list_add_tail(&p->dirty_link, &core->dirty);
	p->dirty_flags |= flags;
	core_schedule(core);
}

void bk_core_queue_create(struct bk_core *core, unsigned int kind, uint32_t domid, uint32_t devid)
{
	uint64_t key = bk_dev_key(kind, domid, devid);
	struct bk_pending *e;

	if (core->stopping || bk_hash_find(core->pend, key))
		return;
	if (core->nr_pending >= BK_PENDING_MAX) {
		core->kinds[kind].rescan = true;
		core_schedule(core);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		core->kinds[kind].rescan = true;
		core_schedule(core);
		return;
	}
	e->hnode.key = key;
	bk_hash_add(core->pend, &e->hnode);
	list_add_tail(&e->link, &core->pending);
	core->nr_pending++;
	core_schedule(core);
}

static struct bk_dev_priv *find_priv(struct bk_core *core, unsigned int kind, uint32_t domid,
				     uint32_t devid)
{
	struct bk_hnode *n = bk_hash_find(core->devs, bk_dev_key(kind, domid, devid));

	return n ? container_of(n, struct bk_dev_priv, hnode) : NULL;
}

/* Canonical decimal id (no sign, no leading zero) in s[0..len), at most @max. */
static int parse_id(const char *s, size_t len, uint32_t max, uint32_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

/* Mark every device of @kind (and of @domid unless UINT32_MAX) dirty. */
static void mark_all(struct bk_core *core, unsigned int kind, uint32_t domid, unsigned int flags)
{
	struct bk_device *dev;
	struct bk_list_pass {
		struct list_head *head;
	} lists[] = { { &core->devices }, { &core->zombies } };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		list_for_each_entry (dev, lists[i].head, link) {
			struct bk_dev_priv *p = bk_dev_priv(dev);

			if (p->kind == kind && (domid == UINT32_MAX || dev->domid == domid))
				bk_core_mark_dirty(p, flags);
		}
	}
}

/* An event under backend/<kind>: "", "/<domid>", "/<domid>/<devid>[/<key>...]". */
static void backend_event(struct bk_core *core, unsigned int kind, const char *path)
{
	const struct bk_kind *k = &core->kinds[kind];
	size_t plen = strlen(k->path);
	const char *rest, *s, *key;
	uint32_t domid, devid;
	struct bk_dev_priv *p;

	if (strncmp(path, k->path, plen) != 0 || (path[plen] != '\0' && path[plen] != '/'))
		goto garbage;
	rest = path + plen;
	if (*rest == '\0') {
		core->kinds[kind].rescan = true;
		core_schedule(core);
		return;
	}
	rest++;
	s = strchr(rest, '/');
	if (parse_id(rest, s ? (size_t)(s - rest) : strlen(rest), BK_DOMID_MAX, &domid) < 0)
		goto garbage;
	if (!s) {
		mark_all(core, kind, domid, BK_DIRTY_BE);
		bk_core_queue_create(core, kind, domid, BK_DEVID_ANY);
		return;
	}
	rest = s + 1;
	s = strchr(rest, '/');
	if (parse_id(rest, s ? (size_t)(s - rest) : strlen(rest), UINT32_MAX - 1, &devid) < 0)
		goto garbage;
	p = find_priv(core, kind, domid, devid);
	if (!p) {
		bk_core_queue_create(core, kind, domid, devid);
		return;
	}
	if (s) {
		key = s + 1;
		s = strchr(key, '/');
		bk_dev_note_key(p, key, s ? (size_t)(s - key) : strlen(key));
	}
	bk_core_mark_dirty(p, BK_DIRTY_BE);
	return;

garbage:
	if (bk_ratelimit_ok(&core->rl))
		log_debug("ignoring watch event for %.128s", path);
}

/* "fe:<kind>:<domid>:<devid>": our own per-device token. */
static void frontend_event(struct bk_core *core, const char *token)
{
	uint32_t v[3];
	const char *s = token + 3;
	struct bk_dev_priv *p;

	for (int i = 0; i < 3; i++) {
		const char *e = strchr(s, i < 2 ? ':' : '\0');

		if (!e || parse_id(s, (size_t)(e - s), UINT32_MAX - 1, &v[i]) < 0)
			return;
		s = e + 1;
	}
	if (v[0] >= core->nr_kinds || v[1] > BK_DOMID_MAX)
		return;
	p = find_priv(core, v[0], v[1], v[2]);
	if (p)
		bk_core_mark_dirty(p, BK_DIRTY_FE);
}

static void xs_event(struct bk_core *core, const char *path, const char *token)
{
	if (strncmp(token, "fe:", 3) == 0) {
		frontend_event(core, token);
		return;
	}
	for (unsigned int k = 0; k < core->nr_kinds; k++) {
		if (strcmp(token, core->kinds[k].token) == 0) {
			backend_event(core, k, path);
			return;
		}
	}
}

static void xs_fd_cb(void *data, int fd _unused_, unsigned int events _unused_)
{
	struct bk_core *core = data;

	for (;;) {
		char *path, *token;
		int r = bk_xs_read_watch(core->xs, &path, &token);

		if (r == -EAGAIN)
			break;
		if (r < 0) {
			if (bk_ratelimit_ok(&core->rl))
				log_err_errno(r, "reading xenstore watch events: %m");
			break;
		}
		xs_event(core, path, token);
		free(path);
		free(token);
	}
}

/* A listing that keeps failing the same way is logged again after this long. */
#define LIST_RELOG_NS (600ULL * 1000000000ULL)

/*
 * List @path (backend/<kind> or a guest's directory under it). A directory that is not there
 * is no error (nothing to serve yet). Any other failure is logged in one line, once per
 * directory until it changes, the listing works again, or ten minutes passed: a driver domain
 * whose toolstack did not let it read its backend directory (EACCES) would otherwise serve
 * nothing there and never say why, and every rescan would say it again.
 */
static int core_list(struct bk_core *core, const char *path, char ***ret_names, unsigned int *ret_n)
{
	int r = bk_xs_directory(core->xs, BK_XS_NULL, path, ret_names, ret_n);
	struct bk_list_fail *f = NULL, *slot = NULL;
	uint64_t now;

	for (unsigned int i = 0; i < BK_LIST_FAIL_MAX && !f; i++) {
		struct bk_list_fail *e = &core->list_fail[i];

		if (e->path && !strcmp(e->path, path))
			f = e;
		else if (!e->path && !slot)
			slot = e;
	}
	if (r >= 0 || r == -ENOENT) {
		if (f) {
			log_info("%s can be listed again", path);
			free(f->path);
			*f = (struct bk_list_fail){ 0 };
		}
		return r;
	}
	now = bk_now_ns();
	if (f && f->err == r && now - f->logged_ns < LIST_RELOG_NS)
		return r;
	if (!f && slot) {
		slot->path = strdup(path);
		if (slot->path)
			f = slot;
	}
	if (f) {
		f->err = r;
		f->logged_ns = now;
	} else if (!bk_ratelimit_ok(&core->rl)) {
		return r;
	}
	if (r == -EACCES)
		log_err("cannot list %s: domain %u (this blanketd) may not read it: %s; the "
			"toolstack must give it read access, or devices there may go unserved",
			path, core->domid, strerror(-r));
	else
		log_err("cannot list %s as domain %u: %s", path, core->domid, strerror(-r));
	return r;
}

static void scan_domain(struct bk_core *core, unsigned int kind, uint32_t domid)
{
	_cleanup_free_ char *path = NULL;
	char **devs = NULL;
	unsigned int n = 0;

	if (asprintf(&path, "%s/%u", core->kinds[kind].path, domid) < 0) {
		path = NULL;
		return;
	}
	if (core_list(core, path, &devs, &n) < 0)
		return;
	for (unsigned int i = 0; i < n; i++) {
		uint32_t devid;

		if (parse_id(devs[i], strlen(devs[i]), UINT32_MAX - 1, &devid) == 0 &&
		    !find_priv(core, kind, domid, devid))
			bk_core_queue_create(core, kind, domid, devid);
	}
	free(devs);
}

static void sweep_end(struct bk_core *core)
{
	struct bk_sweep *sw = &core->sweep;

	while (!list_empty(&sw->devs))
		list_del(sw->devs.next);
	free(sw->domids);
	sw->domids = NULL;
	sw->nr_domids = sw->next_domid = 0;
	sw->listed = false;
	sw->kind = -1;
}

/* Start the rescan of the first kind that asked for one; false if none did. */
static bool sweep_begin(struct bk_core *core)
{
	struct bk_sweep *sw = &core->sweep;
	struct list_head *lists[] = { &core->devices, &core->zombies };
	struct bk_device *dev;

	for (unsigned int k = 0; k < core->nr_kinds; k++) {
		if (!core->kinds[k].rescan)
			continue;
		/* A request from now on needs a sweep that starts after it: the next one. */
		core->kinds[k].rescan = false;
		sw->kind = (int)k;
		for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
			list_for_each_entry (dev, lists[i], link) {
				struct bk_dev_priv *p = bk_dev_priv(dev);

				if (p->kind == k)
					list_add_tail(&p->sweep_link, &sw->devs);
			}
		}
		return true;
	}
	return false;
}

static void sweep_list(struct bk_core *core)
{
	struct bk_sweep *sw = &core->sweep;
	char **doms = NULL;
	unsigned int nd = 0;

	sw->listed = true;
	if (core_list(core, core->kinds[sw->kind].path, &doms, &nd) < 0)
		return;
	sw->domids = calloc(nd ? nd : 1, sizeof(*sw->domids));
	if (!sw->domids) {
		/* The devices are still re-checked; the listing waits for the next rescan. */
		free(doms);
		return;
	}
	for (unsigned int i = 0; i < nd; i++) {
		uint32_t domid;

		if (parse_id(doms[i], strlen(doms[i]), BK_DOMID_MAX, &domid) == 0)
			sw->domids[sw->nr_domids++] = domid;
	}
	free(doms);
}

/*
 * One slice of the rescan, the safety net for lost watch events: at most
 * BK_RESCAN_OPS_PER_TURN xenstore requests, counting BK_RESCAN_DEV_OPS for each device it
 * marks dirty (the batch re-reads it right after). The rest waits for the next loop turn, so a
 * thousand devices never hold every guest's I/O up for a whole rescan.
 */
static void sweep_step(struct bk_core *core)
{
	struct bk_sweep *sw = &core->sweep;
	unsigned int budget = BK_RESCAN_OPS_PER_TURN;

	if (core->stopping) {
		sweep_end(core);
		return;
	}
	while (budget > 0) {
		if (sw->kind < 0 && !sweep_begin(core))
			return;
		if (!sw->listed) {
			sweep_list(core);
			budget--;
		} else if (sw->next_domid < sw->nr_domids) {
			scan_domain(core, (unsigned int)sw->kind, sw->domids[sw->next_domid++]);
			budget--;
		} else if (!list_empty(&sw->devs)) {
			struct bk_dev_priv *p;

			if (budget < BK_RESCAN_DEV_OPS)
				return;
			p = list_first_entry(&sw->devs, struct bk_dev_priv, sweep_link);
			list_del(&p->sweep_link);
			bk_core_mark_dirty(p, BK_DIRTY_BE | BK_DIRTY_FE);
			budget -= BK_RESCAN_DEV_OPS;
		} else {
			sweep_end(core);
		}
	}
}

static void run_pending(struct bk_core *core)
{
	while (!list_empty(&core->pending)) {
		struct bk_pending *e = list_first_entry(&core->pending, struct bk_pending, link);
		uint64_t key = e->hnode.key;
		unsigned int kind = (unsigned int)(key >> 48);
		uint32_t domid = (uint32_t)(key >> 32) & 0xFFFFU, devid = (uint32_t)key;

		list_del(&e->link);
		bk_hash_del(core->pend, &e->hnode);
		core->nr_pending--;
		free(e);
		if (core->stopping)
			continue;
		if (devid == BK_DEVID_ANY)
			scan_domain(core, kind, domid);
		else if (!find_priv(core, kind, domid, devid))
			bk_dev_create(core, kind, domid, devid);
	}
}

static void run_dirty(struct bk_core *core)
{
	struct list_head local;

	if (list_empty(&core->dirty))
		return;
	/* Take the whole set: devices dirtied while processing go to the next pass. */
	local = core->dirty;
	local.next->prev = &local;
	local.prev->next = &local;
	list_init(&core->dirty);
	while (!list_empty(&local)) {
		struct bk_dev_priv *p = list_first_entry(&local, struct bk_dev_priv, dirty_link);
		unsigned int flags = p->dirty_flags;

		list_del(&p->dirty_link);
		p->dirty_flags = 0;
		bk_dev_process(p, flags);
	}
}

static void core_batch(struct bk_core *core)
{
	/* Once per batch: what the slice marks dirty is processed in the passes below. */
	sweep_step(core);
	for (int pass = 0; pass < BK_BATCH_PASSES && core_has_work(core); pass++) {
		run_pending(core);
		run_dirty(core);
	}
	if (core_has_work(core)) {
		/* Something keeps itself busy: carry on shortly rather than spin. */
		bk_timer_rearm(core->timer, BK_MAX(core->coalesce_ms, 1U), 0);
	} else if (sweep_pending(core) && !core->stopping) {
		/* The next slice at the next turn, after the loop polled the guests' ports. */
		bk_timer_rearm(core->timer, 0, 0);
	}
	if (core->stopping && core->nr_devices == 0 && core->stop_done) {
		void (*done)(void *) = core->stop_done;

		core->stop_done = NULL;
		done(core->stop_data);
	}
}

static void timer_cb(void *data)
{
	core_batch(data);
}

static void rescan_cb(void *data)
{
	struct bk_core *core = data;

	if (core->stopping)
		return;
	for (unsigned int k = 0; k < core->nr_kinds; k++)
		core->kinds[k].rescan = true;
	core_schedule(core);
}

int bk_core_new(const struct bk_core_params *prm, struct bk_core **ret)
{
	struct bk_core *core;
	int r;

	if (!prm || !prm->loop || !prm->xen)
		return -EINVAL;
	core = calloc(1, sizeof(*core));
	if (!core)
		return -ENOMEM;
	core->loop = prm->loop;
	core->xen = prm->xen;
	core->coalesce_ms = prm->watch_coalesce_ms;
	core->rl = (struct bk_ratelimit)BK_RATELIMIT_INIT(5000, 10);
	list_init(&core->devices);
	list_init(&core->zombies);
	list_init(&core->dirty);
	list_init(&core->pending);
	list_init(&core->sweep.devs);
	list_init(&core->remote);
	pthread_mutex_init(&core->remote_lock, NULL);
	core->sweep.kind = -1;

	r = prm->xen->ops->own_domid(prm->xen, &core->domid);
	if (r < 0) {
		log_err_errno(r, "cannot find our own domain id: %m");
		goto fail;
	}
	/* A driver domain may not ask the hypervisor about domains: say once what that changes. */
	if (prm->xen->ops->domain_alive(prm->xen, core->domid) == -EPERM) {
		core->no_domctl = true;
		log_notice("domain %u: no domctl (not privileged): frontend domain liveness comes "
			   "from xenstore (/local/domain/<id>, the frontend directory) instead; "
			   "disks on the L0 PCI path (engine=virtio-blk, needs dom0's p2m) are "
			   "disabled",
			   core->domid);
	}
	r = bk_xs_open(prm->xen, &core->xs);
	if (r < 0) {
		log_err_errno(r, "cannot open xenstore: %m");
		goto fail;
	}
	r = bk_loop_add_fd(core->loop, bk_xs_fd(core->xs), BK_EV_READ, xs_fd_cb, core,
			   &core->xs_watch);
	if (r < 0)
		goto fail;
	r = bk_loop_add_timer(core->loop, 1000, 0, timer_cb, core, &core->timer);
	if (r < 0)
		goto fail;
	bk_timer_stop(core->timer);
	core->rescan_ms = prm->rescan_ms ? prm->rescan_ms : BK_RESCAN_MS_DEFAULT;
	r = bk_loop_add_async(core->loop, remote_cb, core, &core->remote_async);
	if (r < 0)
		goto fail;
	if (prm->io_threads) {
		core->threads = calloc(prm->io_threads, sizeof(*core->threads));
		if (!core->threads) {
			r = -ENOMEM;
			goto fail;
		}
		for (unsigned int i = 0; i < prm->io_threads; i++) {
			char name[16];

			r = bk_loop_new(&core->threads[i].loop);
			if (r < 0)
				goto fail;
			core->nr_threads++;
			snprintf(name, sizeof(name), "blanketd-io%u", i % 100U);
			r = bk_loop_start_thread(core->threads[i].loop, name);
			if (r < 0) {
				log_err_errno(r, "cannot start I/O thread %u: %m", i);
				goto fail;
			}
		}
		log_info("%u I/O thread(s)", core->nr_threads);
	}
	*ret = core;
	return 0;

fail:
	bk_core_free(core);
	return r;
}

int bk_core_register(struct bk_core *core, const struct bk_backend_ops *ops)
{
	struct bk_kind *k;

	if (!ops || !ops->kind || !ops->probe || !*ops->kind || strchr(ops->kind, '/'))
		return -EINVAL;
	if (core->started)
		return -EBUSY;
	if (core->nr_kinds == BK_CORE_MAX_KINDS)
		return -ENOSPC;
	for (unsigned int i = 0; i < core->nr_kinds; i++)
		if (strcmp(core->kinds[i].ops->kind, ops->kind) == 0)
			return -EEXIST;
	k = &core->kinds[core->nr_kinds];
	if (asprintf(&k->path, "/local/domain/%u/backend/%s", core->domid, ops->kind) < 0) {
		k->path = NULL;
		return -ENOMEM;
	}
	if (asprintf(&k->token, "be:%u", core->nr_kinds) < 0) {
		free(k->path);
		k->path = NULL;
		k->token = NULL;
		return -ENOMEM;
	}
	k->ops = ops;
	core->nr_kinds++;
	return 0;
}

int bk_core_start(struct bk_core *core)
{
	int r;

	if (core->started)
		return -EALREADY;
	for (unsigned int i = 0; i < core->nr_kinds; i++) {
		struct bk_kind *k = &core->kinds[i];

		r = bk_xs_watch(core->xs, k->path, k->token);
		if (r < 0)
			return log_err_errno(r, "cannot watch %s: %m", k->path);
		k->watched = true;
		/* The watch fires at once too; an explicit scan does not depend on it. */
		k->rescan = true;
		log_info("serving %s devices under %s", k->ops->kind, k->path);
	}
	if (core->rescan_ms != UINT_MAX) {
		r = bk_loop_add_timer(core->loop, core->rescan_ms, core->rescan_ms, rescan_cb, core,
				      &core->rescan_timer);
		if (r < 0)
			return r;
	}
	core->started = true;
	core_schedule(core);
	return 0;
}

void bk_core_stop(struct bk_core *core, void (*done)(void *data), void *data)
{
	struct bk_device *dev;

	/* Devices' callbacks read it on their threads. */
	bk_core_lock_all(core);
	core->stopping = true;
	bk_core_unlock_all(core);
	core->stop_done = done;
	core->stop_data = data;
	list_for_each_entry (dev, &core->devices, link) {
		struct bk_dev_priv *p = bk_dev_priv(dev);

		p->want_shutdown = true;
		bk_core_mark_dirty(p, BK_DIRTY_BE);
	}
	/* Refused devices have nothing to shut down. */
	while (!list_empty(&core->zombies))
		bk_dev_destroy(
			bk_dev_priv(list_first_entry(&core->zombies, struct bk_device, link)));
	if (core->nr_devices == 0 && done) {
		core->stop_done = NULL;
		done(data);
	}
}

void bk_core_free(struct bk_core *core)
{
	if (!core)
		return;
	while (!list_empty(&core->zombies))
		bk_dev_destroy(
			bk_dev_priv(list_first_entry(&core->zombies, struct bk_device, link)));
	if (!list_empty(&core->devices))
		log_warn("freeing the core with %u live devices", core->nr_devices);
	while (!list_empty(&core->devices)) {
		struct bk_dev_priv *p =
			bk_dev_priv(list_first_entry(&core->devices, struct bk_device, link));
		struct bk_loop *loop = p->pub.loop;

		if (loop)
			bk_loop_lock(loop);
		bk_dev_destroy(p);
		if (loop)
			bk_loop_unlock(loop);
	}
	while (!list_empty(&core->pending)) {
		struct bk_pending *e = list_first_entry(&core->pending, struct bk_pending, link);

		list_del(&e->link);
		free(e);
	}
	sweep_end(core);
	for (unsigned int i = 0; i < BK_LIST_FAIL_MAX; i++)
		free(core->list_fail[i].path);
	for (unsigned int i = 0; i < core->nr_kinds; i++) {
		struct bk_kind *k = &core->kinds[i];

		if (k->watched)
			bk_xs_unwatch(core->xs, k->path, k->token);
		free(k->path);
		free(k->token);
	}
	bk_timer_free(core->rescan_timer);
	bk_timer_free(core->timer);
	bk_watch_free(core->xs_watch);
	bk_async_free(core->remote_async);
	bk_xs_close(core->xs);
	for (unsigned int i = 0; i < core->nr_threads; i++) {
		struct bk_loop *loop = core->threads[i].loop;

		bk_loop_stop_thread(loop);
		if (bk_loop_nr_objects(loop))
			log_warn("I/O thread %u: %u watch(es), timer(s) or hook(s) left behind", i,
				 bk_loop_nr_objects(loop));
		else
			bk_loop_free(loop);
	}
	free(core->threads);
	pthread_mutex_destroy(&core->remote_lock);
	free(core);
}

unsigned int bk_core_nr_devices(const struct bk_core *core)
{
	return core->nr_devices;
}

struct bk_device *bk_core_find(struct bk_core *core, const char *kind, uint32_t domid,
			       uint32_t devid)
{
	for (unsigned int k = 0; k < core->nr_kinds; k++) {
		if (strcmp(core->kinds[k].ops->kind, kind) == 0) {
			struct bk_dev_priv *p = find_priv(core, k, domid, devid);

			return (p && !p->zombie) ? &p->pub : NULL;
		}
	}
	return NULL;
}

struct list_head *bk_core_devices(struct bk_core *core)
{
	return &core->devices;
}

bool bk_core_stopping(const struct bk_core *core)
{
	return core->stopping;
}

void bk_core_abandon(struct bk_core *core, unsigned int point)
{
	core->stopping = true;
	while (!list_empty(&core->zombies))
		bk_dev_destroy(
			bk_dev_priv(list_first_entry(&core->zombies, struct bk_device, link)));
	while (!list_empty(&core->devices)) {
		struct bk_device *dev = list_first_entry(&core->devices, struct bk_device, link);
		struct bk_dev_priv *p = bk_dev_priv(dev);
		struct bk_loop *loop = dev->loop;

		if (loop)
			bk_loop_lock(loop);
		if (p->active && dev->ops->abandon) {
			dev->ops->abandon(dev, point);
			p->active = false; /* no remove: abandon freed it */
			core->nr_devices--;
		}
		bk_dev_destroy(p);
		if (loop)
			bk_loop_unlock(loop);
	}
	core->stop_done = NULL;
}

uint32_t bk_core_domid(const struct bk_core *core)
{
	return core->domid;
}

unsigned int bk_core_nr_threads(const struct bk_core *core)
{
	return core->nr_threads;
}

void bk_core_lock_all(struct bk_core *core)
{
	for (unsigned int i = 0; i < core->nr_threads; i++)
		bk_loop_lock(core->threads[i].loop);
}

void bk_core_unlock_all(struct bk_core *core)
{
	for (unsigned int i = core->nr_threads; i-- > 0;)
		bk_loop_unlock(core->threads[i].loop);
}

/* A journal's name (bk_device_journal_name): its device, or -EINVAL. */
static int journal_owner(const struct bk_core *core, const char *name, unsigned int *ret_kind,
			 uint32_t *ret_domid, uint32_t *ret_devid)
{
	for (unsigned int k = 0; k < core->nr_kinds; k++) {
		size_t len = strlen(core->kinds[k].ops->kind);
		const char *s = name + len, *e;

		if (strncmp(name, core->kinds[k].ops->kind, len) != 0 || *s != '-')
			continue;
		s++;
		e = strchr(s, '-');
		if (!e || parse_id(s, (size_t)(e - s), BK_DOMID_MAX, ret_domid) < 0)
			return -EINVAL;
		s = e + 1;
		e = strchr(s, '-');
		if (!e || !e[1] || parse_id(s, (size_t)(e - s), UINT32_MAX - 1, ret_devid) < 0)
			return -EINVAL;
		*ret_kind = k;
		return 0;
	}
	return -EINVAL;
}

int bk_core_sweep_journals(struct bk_core *core, const char *dir)
{
	struct dirent *de;
	int n = 0, r;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		r = neg_errno();
		if (r == -ENOENT)
			return 0;
		return log_err_errno(r, "cannot read the journal directory %s: %m", dir);
	}
	while ((de = readdir(d))) {
		const struct bk_kind *k;
		_cleanup_free_ char *path = NULL;
		uint32_t domid, devid;
		unsigned int kind;
		struct stat st;
		const char *what;
		char *val;
		size_t len;

		if (journal_owner(core, de->d_name, &kind, &domid, &devid) < 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		k = &core->kinds[kind];
		what = k->ops->log_name ? k->ops->log_name : k->ops->kind;
		if (asprintf(&path, "%s/%u/%u", k->path, domid, devid) < 0) {
			path = NULL;
			continue;
		}
		r = bk_xs_read(core->xs, BK_XS_NULL, path, &val, &len);
		if (r == 0) {
			free(val); /* the device exists: its journal may be adopted */
			continue;
		}
		if (r != -ENOENT) {
			log_warn_errno(
				r, "%s %u/%u: keeping in-flight journal %s/%s: cannot check %s: %m",
				what, domid, devid, dir, de->d_name, path);
			continue;
		}
		if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			log_warn_errno(neg_errno(),
				       "%s %u/%u: cannot remove in-flight journal %s/%s: %m", what,
				       domid, devid, dir, de->d_name);
			continue;
		}
		log_notice(
			"%s %u/%u: removed in-flight journal %s/%s: the device was removed while "
			"no daemon ran",
			what, domid, devid, dir, de->d_name);
		n++;
	}
	closedir(d);
	return n;
}
