// SPDX-License-Identifier: MIT
/*
 * The simulated xenstore: connections (each acting as its platform's domain), the operations
 * with xenstored's permission checks, watches and transactions.
 *
 * Transactions work on a full copy of the tree taken at start; commit fails with -EAGAIN if
 * the committed tree changed at all since then, otherwise the copy becomes the tree and the
 * watches fire for what the transaction changed. Watch events queue per connection, at most
 * SIM_XS_EVENT_QUEUE_MAX; when full the oldest is dropped and counted (bk_sim_xs_dropped).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sim_internal.h"
#include "util/macros.h"

struct sim_watch {
	struct list_head node; /* in conn->watches */
	char *path;	       /* absolute, or a special "@..." path */
	char *token;
	bool relative; /* registered relative to /local/domain/<domid>: events are too */
};

struct sim_watch_event {
	struct list_head node; /* in conn->events */
	struct sim_watch *watch;
	char *path;
	char *token;
};

/* One change to the tree, fired as watch events (at once, or when its transaction commits). */
struct sim_change {
	struct list_head node;
	char *path;
	struct bk_xs_perm *perms; /* of the changed node, for the watchers' read check */
	unsigned int nr_perms;
	struct xs_node *removed; /* rm: the detached subtree, for watches below @path */
};

struct sim_tx {
	struct list_head node; /* in conn->txs */
	uint32_t id;
	uint64_t gen;
	struct xs_node *root;
	struct list_head changes;
};

/* Where an operation runs: the committed tree or a transaction's copy, as some domain. */
struct xs_ctx {
	struct bk_sim *sim;
	uint32_t domid;
	struct sim_tx *tx;
	struct xs_node *root;
};

static struct sim_xs *conn_of(struct bk_xs *xs)
{
	return container_of(xs, struct sim_xs, base);
}

static struct bk_sim *conn_sim(struct sim_xs *c)
{
	return sim_plat_of(c->base.h.xen)->sim;
}

static void event_free(struct sim_watch_event *ev)
{
	list_del(&ev->node);
	free(ev->path);
	free(ev->token);
	free(ev);
}

static void conn_efd_update(struct sim_xs *c)
{
	sim_efd_set(c->efd, &c->efd_ready, !list_empty(&c->events));
}

static void queue_event(struct bk_sim *sim, struct sim_xs *c, struct sim_watch *w, const char *path)
{
	struct sim_watch_event *ev;

	if (w->relative) {
		/* The event names the node as the watcher named it. */
		char prefix[32];
		size_t n = (size_t)snprintf(prefix, sizeof(prefix), "/local/domain/%u/", c->domid);

		if (strncmp(path, prefix, n) == 0)
			path += n;
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		goto drop;
	ev->watch = w;
	ev->path = strdup(path);
	ev->token = strdup(w->token);
	if (!ev->path || !ev->token) {
		free(ev->path);
		free(ev->token);
		free(ev);
		goto drop;
	}
	if (c->nr_events >= SIM_XS_EVENT_QUEUE_MAX) {
		event_free(list_first_entry(&c->events, struct sim_watch_event, node));
		c->nr_events--;
		sim->xs_dropped++;
	}
	list_add_tail(&ev->node, &c->events);
	c->nr_events++;
	conn_efd_update(c);
	return;
drop:
	sim->xs_dropped++;
}

static bool may_see(uint32_t domid, const struct bk_xs_perm *perms, unsigned int nr)
{
	return xs_perm_of(perms, nr, domid) & BK_XS_PERM_READ;
}

static void fire_change(struct bk_sim *sim, const struct sim_change *ch)
{
	struct sim_xs *c;
	struct sim_watch *w;

	list_for_each_entry (c, &sim->xs_conns, node) {
		list_for_each_entry (w, &c->watches, node) {
			const char *rest;
			struct xs_node *n;

			if (w->path[0] != '/')
				continue;
			if (xs_path_is_under(ch->path, w->path)) {
				if (may_see(c->domid, ch->perms, ch->nr_perms))
					queue_event(sim, c, w, ch->path);
				continue;
			}
			if (!ch->removed || !xs_path_is_under(w->path, ch->path))
				continue;
			/* An ancestor of the watched path went: fire with the watch's own path. */
			n = xs_lookup_prefix(ch->removed, w->path + strlen(ch->path), &rest);
			if (may_see(c->domid, n->perms, n->nr_perms))
				queue_event(sim, c, w, w->path);
		}
	}
}

static void change_free(struct sim_change *ch)
{
	list_del(&ch->node);
	free(ch->path);
	free(ch->perms);
	xs_node_free(ch->removed);
	free(ch);
}

/* Record a change to @n (or, with @removed, of the detached subtree) at @path. */
static void record_change(struct xs_ctx *x, const char *path, const struct xs_node *n,
			  struct xs_node *removed)
{
	struct sim_change *ch = calloc(1, sizeof(*ch));

	if (ch) {
		list_init(&ch->node);
		ch->path = strdup(path);
		ch->perms = malloc(n->nr_perms * sizeof(*ch->perms));
	}
	if (!ch || !ch->path || !ch->perms) {
		/* Out of memory: the change stands, its watch events are lost. */
		if (ch) {
			free(ch->path);
			free(ch->perms);
			free(ch);
		}
		xs_node_free(removed);
		x->sim->xs_dropped++;
		if (!x->tx)
			x->sim->xs_gen++;
		return;
	}
	memcpy(ch->perms, n->perms, n->nr_perms * sizeof(*ch->perms));
	ch->nr_perms = n->nr_perms;
	ch->removed = removed;
	if (x->tx) {
		list_add_tail(&ch->node, &x->tx->changes);
		return;
	}
	x->sim->xs_gen++;
	fire_change(x->sim, ch);
	change_free(ch);
}

static int ctx_get(struct sim_xs *c, uint32_t t, struct xs_ctx *ret)
{
	struct bk_sim *sim = conn_sim(c);
	struct sim_tx *tx;

	*ret = (struct xs_ctx){ .sim = sim, .domid = c->domid, .root = sim->xs_root };
	if (t == BK_XS_NULL)
		return 0;
	list_for_each_entry (tx, &c->txs, node) {
		if (tx->id == t) {
			ret->tx = tx;
			ret->root = tx->root;
			return 0;
		}
	}
	return -ENOENT;
}

/* Look up an existing node that the context's domain may access with @need. */
static int node_get(struct xs_ctx *x, const char *path, unsigned int need, struct xs_node **ret)
{
	struct xs_node *n = xs_lookup(x->root, path);

	if (!n)
		return -ENOENT;
	if ((xs_perm_of(n->perms, n->nr_perms, x->domid) & need) != need)
		return -EACCES;
	*ret = n;
	return 0;
}

/*
 * Create @path and missing parents. Each new node inherits its parent's perms; a domU
 * becomes the owner of what it creates. Needs write access to the deepest existing node.
 */
static int node_create(struct xs_ctx *x, const char *path, struct xs_node **ret)
{
	const char *rest;
	struct xs_node *parent = xs_lookup_prefix(x->root, path, &rest);
	struct xs_node *first = NULL, *n = parent;

	if (!(xs_perm_of(parent->perms, parent->nr_perms, x->domid) & BK_XS_PERM_WRITE))
		return -EACCES;
	while (*rest) {
		size_t len = strcspn(rest, "/");
		struct xs_node *c = xs_node_new(n, rest, len, n->perms, n->nr_perms);

		if (!c) {
			xs_node_free(first);
			return -ENOMEM;
		}
		if (x->domid != 0)
			c->perms[0].domid = x->domid;
		if (!first)
			first = c;
		n = c;
		rest += len;
		while (*rest == '/')
			rest++;
	}
	*ret = n;
	return 0;
}

static int do_write(struct xs_ctx *x, const char *path, const void *val, size_t len, bool mkdir)
{
	_cleanup_free_ char *v = NULL;
	struct xs_node *n;
	int r;

	/* Allocate first, so a failure cannot leave a half-made node behind. */
	if (!mkdir) {
		v = malloc(len + 1);
		if (!v)
			return -ENOMEM;
		if (len)
			memcpy(v, val, len);
		v[len] = '\0';
	}
	r = node_get(x, path, BK_XS_PERM_WRITE, &n);
	if (r == 0 && mkdir)
		return 0; /* an existing node: nothing changes, nothing fires */
	if (r == -ENOENT)
		r = node_create(x, path, &n);
	if (r < 0)
		return r;
	if (!mkdir) {
		free(n->value);
		n->value = TAKE_PTR(v);
		n->len = len;
	}
	record_change(x, path, n, NULL);
	return 0;
}

int sim_xs_init(struct bk_sim *sim)
{
	static const struct bk_xs_perm none = { .domid = 0, .perms = BK_XS_PERM_NONE };

	sim->xs_root = xs_node_new(NULL, "", 0, &none, 1);
	if (!sim->xs_root)
		return -ENOMEM;
	return sim_xs_make_node(sim, "/local/domain/0", &none, 1);
}

void sim_xs_fini(struct bk_sim *sim)
{
	xs_node_free(sim->xs_root);
	sim->xs_root = NULL;
}

int sim_xs_make_node(struct bk_sim *sim, const char *path, const struct bk_xs_perm *perms,
		     unsigned int nr_perms)
{
	struct xs_ctx x = { .sim = sim, .domid = 0, .root = sim->xs_root };
	struct xs_node *n;
	int r;

	n = xs_lookup(x.root, path);
	if (!n) {
		r = node_create(&x, path, &n);
		if (r < 0)
			return r;
	}
	r = xs_node_set_perms(n, perms, nr_perms);
	if (r < 0)
		return r;
	record_change(&x, path, n, NULL);
	return 0;
}

int sim_xs_open(struct bk_xen *xen, struct bk_xs **ret)
{
	SIM_GUARD();
	struct sim_plat *p = sim_plat_of(xen);
	struct sim_xs *c;
	int r;

	r = sim_fault_check(xen, BK_SIM_FAULT_XS_OPEN);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0) {
		r = neg_errno();
		free(c);
		return r;
	}
	c->base.h.xen = xen;
	c->domid = p->domid;
	list_init(&c->watches);
	list_init(&c->events);
	list_init(&c->txs);
	list_add_tail(&c->node, &p->sim->xs_conns);
	sim_handle_get(xen);
	*ret = &c->base;
	return 0;
}

static void tx_free(struct sim_tx *tx)
{
	while (!list_empty(&tx->changes))
		change_free(list_first_entry(&tx->changes, struct sim_change, node));
	xs_node_free(tx->root);
	list_del(&tx->node);
	free(tx);
}

static void watch_free(struct sim_xs *c, struct sim_watch *w)
{
	struct sim_watch_event *ev, *en;

	/* Like libxenstore's xs_unwatch: events of this watch still queued go too. */
	list_for_each_entry_safe (ev, en, &c->events, node) {
		if (ev->watch == w) {
			event_free(ev);
			c->nr_events--;
		}
	}
	conn_efd_update(c);
	list_del(&w->node);
	free(w->path);
	free(w->token);
	free(w);
}

void sim_xs_close(struct bk_xs *xs)
{
	SIM_GUARD();
	struct sim_xs *c = conn_of(xs);

	while (!list_empty(&c->txs))
		tx_free(list_first_entry(&c->txs, struct sim_tx, node));
	while (!list_empty(&c->watches))
		watch_free(c, list_first_entry(&c->watches, struct sim_watch, node));
	close(c->efd);
	list_del(&c->node);
	sim_handle_put(xs->h.xen);
	free(c);
}

int sim_xs_fd(struct bk_xs *xs)
{
	SIM_GUARD();
	return conn_of(xs)->efd;
}

/* One request on the wire of a real xenstore connection (bk_sim_xs_requests counts them). */
static void count_request(struct bk_xs *xs)
{
	sim_plat_of(xs->h.xen)->xs_requests++;
}

/* Canonical path and context for an operation on @path in transaction @t. */
static int op_begin(struct bk_xs *xs, enum bk_sim_fault op, uint32_t t, const char *path,
		    struct xs_ctx *x, char **ret_path)
{
	struct sim_xs *c = conn_of(xs);
	int r;

	count_request(xs);
	r = sim_fault_check(xs->h.xen, op);
	if (r < 0)
		return r;
	r = ctx_get(c, t, x);
	if (r < 0)
		return r;
	return xs_path_canon(path, c->domid, false, ret_path);
}

int sim_xs_read(struct bk_xs *xs, uint32_t t, const char *path, char **ret_val, size_t *ret_len)
{
	SIM_GUARD();
	_cleanup_free_ char *abs = NULL;
	struct xs_ctx x;
	struct xs_node *n;
	char *v;
	int r;

	r = op_begin(xs, BK_SIM_FAULT_XS_READ, t, path, &x, &abs);
	if (r < 0)
		return r;
	r = node_get(&x, abs, BK_XS_PERM_READ, &n);
	if (r < 0)
		return r;
	v = malloc(n->len + 1);
	if (!v)
		return -ENOMEM;
	memcpy(v, n->value, n->len + 1);
	*ret_val = v;
	if (ret_len)
		*ret_len = n->len;
	return 0;
}

int sim_xs_write(struct bk_xs *xs, uint32_t t, const char *path, const void *val, size_t len)
{
	SIM_GUARD();
	_cleanup_free_ char *abs = NULL;
	struct xs_ctx x;
	int r;

	if (len > SIM_XS_VALUE_MAX)
		return -E2BIG;
	if (len && !val)
		return -EINVAL;
	r = op_begin(xs, BK_SIM_FAULT_XS_WRITE, t, path, &x, &abs);
	if (r < 0)
		return r;
	return do_write(&x, abs, val, len, false);
}

int sim_xs_mkdir(struct bk_xs *xs, uint32_t t, const char *path)
{
	SIM_GUARD();
	_cleanup_free_ char *abs = NULL;
	struct xs_ctx x;
	int r;

	r = op_begin(xs, BK_SIM_FAULT_XS_MKDIR, t, path, &x, &abs);
	if (r < 0)
		return r;
	return do_write(&x, abs, NULL, 0, true);
}

int sim_xs_rm(struct bk_xs *xs, uint32_t t, const char *path)
{
	SIM_GUARD();
	_cleanup_free_ char *abs = NULL;
	struct xs_ctx x;
	struct xs_node *n;
	int r;

	r = op_begin(xs, BK_SIM_FAULT_XS_RM, t, path, &x, &abs);
	if (r < 0)
		return r;
	if (strcmp(abs, "/") == 0)
		return -EINVAL;
	r = node_get(&x, abs, BK_XS_PERM_WRITE, &n);
	if (r < 0)
		return r;
	list_del(&n->sibling);
	n->parent = NULL;
	record_change(&x, abs, n, n);
	return 0;
}

int sim_xs_directory(struct bk_xs *xs, uint32_t t, const char *path, char ***ret_names,
		     unsigned int *ret_n)
{
	SIM_GUARD();
	_cleanup_free_ char *abs = NULL;
	struct xs_ctx x;
	struct xs_node *n, *ch;
	unsigned int nr = 0, i = 0;
	size_t size = 0;
	char **names, *s;
	int r;

	r = op_begin(xs, BK_SIM_FAULT_XS_DIRECTORY, t, path, &x, &abs);
	if (r < 0)
		return r;
	r = node_get(&x, abs, BK_XS_PERM_READ, &n);
	if (r < 0)
		return r;
	list_for_each_entry (ch, &n->children, sibling) {
		nr++;
		size += strlen(ch->name) + 1;
	}
	names = malloc((nr + 1) * sizeof(char *) + size);
	if (!names)
		return -ENOMEM;
	s = (char *)(names + nr + 1);
	list_for_each_entry (ch, &n->children, sibling) {
		size_t len = strlen(ch->name) + 1;

		memcpy(s, ch->name, len);
		names[i++] = s;
		s += len;
	}
	names[nr] = NULL;
	*ret_names = names;
	*ret_n = nr;
	return 0;
}

int sim_xs_get_perms(struct bk_xs *xs, uint32_t t, const char *path, struct bk_xs_perm **ret_perms,
		     unsigned int *ret_n)
{
	SIM_GUARD();
	_cleanup_free_ char *abs = NULL;
	struct bk_xs_perm *p;
	struct xs_ctx x;
	struct xs_node *n;
	int r;

	r = op_begin(xs, BK_SIM_FAULT__MAX, t, path, &x, &abs);
	if (r < 0)
		return r;
	r = node_get(&x, abs, BK_XS_PERM_READ, &n);
	if (r < 0)
		return r;
	p = malloc(n->nr_perms * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p, n->perms, n->nr_perms * sizeof(*p));
	*ret_perms = p;
	*ret_n = n->nr_perms;
	return 0;
}

int sim_xs_set_perms(struct bk_xs *xs, uint32_t t, const char *path, const struct bk_xs_perm *perms,
		     unsigned int nr)
{
	SIM_GUARD();
	_cleanup_free_ char *abs = NULL;
	struct xs_ctx x;
	struct xs_node *n;
	int r;

	if (nr == 0 || !perms || nr > 1024)
		return -EINVAL;
	for (unsigned int i = 0; i < nr; i++)
		if (perms[i].perms > BK_XS_PERM_BOTH || perms[i].domid > SIM_DOMID_MAX)
			return -EINVAL;
	r = op_begin(xs, BK_SIM_FAULT_XS_SET_PERMS, t, path, &x, &abs);
	if (r < 0)
		return r;
	n = xs_lookup(x.root, abs);
	if (!n)
		return -ENOENT;
	/* Only the owner (or dom0) may change perms; a domU may not give its node away. */
	if (x.domid != 0) {
		if (n->perms[0].domid != x.domid)
			return -EACCES;
		if (perms[0].domid != x.domid)
			return -EPERM;
	}
	r = xs_node_set_perms(n, perms, nr);
	if (r < 0)
		return r;
	record_change(&x, abs, n, NULL);
	return 0;
}

int sim_xs_watch(struct bk_xs *xs, const char *path, const char *token)
{
	SIM_GUARD();
	struct sim_xs *c = conn_of(xs);
	struct sim_watch *w;
	char *abs;
	int r;

	if (!token)
		return -EINVAL;
	count_request(xs);
	r = sim_fault_check(xs->h.xen, BK_SIM_FAULT_XS_WATCH);
	if (r < 0)
		return r;
	r = xs_path_canon(path, c->domid, true, &abs);
	if (r < 0)
		return r;
	list_for_each_entry (w, &c->watches, node) {
		if (strcmp(w->path, abs) == 0 && strcmp(w->token, token) == 0) {
			free(abs);
			return -EEXIST;
		}
	}
	w = calloc(1, sizeof(*w));
	if (!w || !(w->token = strdup(token))) {
		free(w);
		free(abs);
		return -ENOMEM;
	}
	w->path = abs;
	w->relative = path[0] != '/' && path[0] != '@';
	list_add_tail(&w->node, &c->watches);
	/* xenstored fires every new watch once, whatever the node's state. */
	queue_event(conn_sim(c), c, w, w->path);
	return 0;
}

int sim_xs_unwatch(struct bk_xs *xs, const char *path, const char *token)
{
	SIM_GUARD();
	struct sim_xs *c = conn_of(xs);
	_cleanup_free_ char *abs = NULL;
	struct sim_watch *w;
	int r;

	count_request(xs);
	if (!token)
		return -EINVAL;
	r = xs_path_canon(path, c->domid, true, &abs);
	if (r < 0)
		return r;
	list_for_each_entry (w, &c->watches, node) {
		if (strcmp(w->path, abs) == 0 && strcmp(w->token, token) == 0) {
			watch_free(c, w);
			return 0;
		}
	}
	return -ENOENT;
}

int sim_xs_read_watch(struct bk_xs *xs, char **ret_path, char **ret_token)
{
	SIM_GUARD();
	struct sim_xs *c = conn_of(xs);
	struct sim_watch_event *ev;

	if (list_empty(&c->events))
		return -EAGAIN;
	ev = list_first_entry(&c->events, struct sim_watch_event, node);
	*ret_path = TAKE_PTR(ev->path);
	*ret_token = TAKE_PTR(ev->token);
	event_free(ev);
	c->nr_events--;
	conn_efd_update(c);
	return 0;
}

int sim_xs_transaction_start(struct bk_xs *xs, uint32_t *ret_t)
{
	SIM_GUARD();
	struct sim_xs *c = conn_of(xs);
	struct bk_sim *sim = conn_sim(c);
	struct sim_tx *tx;
	int r;

	count_request(xs);
	r = sim_fault_check(xs->h.xen, BK_SIM_FAULT_XS_TX_START);
	if (r < 0)
		return r;
	tx = calloc(1, sizeof(*tx));
	if (!tx)
		return -ENOMEM;
	tx->root = xs_tree_copy(sim->xs_root);
	if (!tx->root) {
		free(tx);
		return -ENOMEM;
	}
	list_init(&tx->changes);
	tx->gen = sim->xs_gen;
	tx->id = sim->xs_next_tx++;
	if (sim->xs_next_tx == BK_XS_NULL)
		sim->xs_next_tx = 1;
	list_add_tail(&tx->node, &c->txs);
	*ret_t = tx->id;
	return 0;
}

int sim_xs_transaction_end(struct bk_xs *xs, uint32_t t, bool abort)
{
	SIM_GUARD();
	struct sim_xs *c = conn_of(xs);
	struct bk_sim *sim = conn_sim(c);
	struct sim_change *ch;
	struct xs_ctx x;
	int r;

	count_request(xs);
	if (t == BK_XS_NULL)
		return -EINVAL;
	r = ctx_get(c, t, &x);
	if (r < 0)
		return r;
	if (abort) {
		tx_free(x.tx);
		return 0;
	}
	r = sim_fault_check(xs->h.xen, BK_SIM_FAULT_XS_TX_COMMIT);
	if (r < 0) {
		tx_free(x.tx);
		return r;
	}
	if (x.tx->gen != sim->xs_gen) {
		tx_free(x.tx);
		return -EAGAIN;
	}
	if (!list_empty(&x.tx->changes)) {
		struct xs_node *old = sim->xs_root;

		sim->xs_root = x.tx->root;
		x.tx->root = old;
		sim->xs_gen++;
		list_for_each_entry (ch, &x.tx->changes, node)
			fire_change(sim, ch);
	}
	tx_free(x.tx);
	return 0;
}

void sim_xs_fire_special(struct bk_sim *sim, const char *name)
{
	struct sim_xs *c;
	struct sim_watch *w;

	list_for_each_entry (c, &sim->xs_conns, node) {
		if (c->domid != 0)
			continue;
		list_for_each_entry (w, &c->watches, node)
			if (strcmp(w->path, name) == 0)
				queue_event(sim, c, w, name);
	}
}

unsigned int sim_xs_nr_watches(struct bk_sim *sim)
{
	struct sim_xs *c;
	struct sim_watch *w;
	unsigned int n = 0;

	list_for_each_entry (c, &sim->xs_conns, node)
		list_for_each_entry (w, &c->watches, node)
			n++;
	return n;
}
