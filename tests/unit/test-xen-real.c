// SPDX-License-Identifier: MIT
/*
 * The real platform against a live Xen: own domid, xenstore read/write/rm/directory/perms,
 * a transaction, a watch that fires, an event channel looped back to ourselves, and a grant
 * of our own page mapped and copied through gntdev. Skips (77) where there is no Xen, which
 * is every build machine; it runs for real in the lab. Every wait is a bounded poll(), so a
 * broken platform fails instead of hanging.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "xen/xen.h"

#if HAVE_XEN
#include <xenevtchn.h>
#include <xengnttab.h>
#include "check.h"
#endif

/* Upper bound on any wait for Xen to deliver something (a failure, never a timing assert). */
#define WAIT_MS 10000

static bool wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, WAIT_MS) == 1 && (p.revents & POLLIN);
}

static bool have_xenstore(void)
{
	return access("/run/xenstored/socket", F_OK) == 0 ||
	       access("/var/run/xenstored/socket", F_OK) == 0 ||
	       access("/dev/xen/xenbus", F_OK) == 0;
}

/* Wait for a watch event with @token (and @path if not NULL); drains the queue meanwhile. */
static bool wait_watch(struct bk_xs *xs, const char *path, const char *token)
{
	for (int rounds = 0; rounds < 16; rounds++) {
		char *p, *t;
		int r;

		while ((r = bk_xs_read_watch(xs, &p, &t)) == 0) {
			bool match = !strcmp(t, token) && (!path || !strcmp(p, path));

			free(p);
			free(t);
			if (match)
				return true;
		}
		if (r != -EAGAIN || !wait_readable(bk_xs_fd(xs)))
			return false;
	}
	return false;
}

static void drain_watch(struct bk_xs *xs)
{
	char *p, *t;

	while (bk_xs_read_watch(xs, &p, &t) == 0) {
		free(p);
		free(t);
	}
}

static void test_xenstore(struct bk_xen *x, uint32_t self)
{
	static const char val[] = "hello\0world"; /* a value with a NUL inside */
	char data[64], path[96], *v = NULL, **names = NULL, *wp, *wt;
	struct bk_xs_perm *perms = NULL;
	struct bk_xs *xs = NULL;
	bool had_data, found = false;
	unsigned int n = 0;
	size_t len = 0;
	uint32_t t;
	int r;

	snprintf(data, sizeof(data), "/local/domain/%u/data", self);
	snprintf(path, sizeof(path), "%s/blanketd-test", data);

	r = bk_xs_open(x, &xs);
	CHECK(r == 0);
	if (r < 0)
		return;
	CHECK(bk_xs_fd(xs) >= 0);

	r = bk_xs_read(xs, BK_XS_NULL, data, &v, &len);
	had_data = r == 0;
	free(v);
	v = NULL;
	CHECK(r == 0 || r == -ENOENT);

	bk_xs_rm(xs, BK_XS_NULL, path); /* leftovers of an earlier, killed run */
	CHECK(bk_xs_write(xs, BK_XS_NULL, path, val, sizeof(val) - 1) == 0);
	CHECK(bk_xs_read(xs, BK_XS_NULL, path, &v, &len) == 0);
	CHECK(v && len == sizeof(val) - 1 && !memcmp(v, val, len) && v[len] == '\0');
	free(v);
	v = NULL;

	CHECK(bk_xs_directory(xs, BK_XS_NULL, data, &names, &n) == 0);
	for (unsigned int i = 0; names && i < n; i++)
		found |= !strcmp(names[i], "blanketd-test");
	CHECK(found);
	free(names);

	CHECK(bk_xs_get_perms(xs, BK_XS_NULL, path, &perms, &n) == 0);
	CHECK(perms && n >= 1 && perms[0].perms <= BK_XS_PERM_BOTH);
	if (perms && n >= 1)
		CHECK(bk_xs_set_perms(xs, BK_XS_NULL, path, perms, n) == 0);
	free(perms);

	/* A transaction, retried on conflict as every caller must. */
	for (int tries = 0; tries < 8; tries++) {
		r = bk_xs_transaction_start(xs, &t);
		CHECK(r == 0);
		if (r < 0)
			break;
		CHECK(bk_xs_write(xs, t, path, "tx", 2) == 0);
		r = bk_xs_transaction_end(xs, t, false);
		if (r != -EAGAIN)
			break;
	}
	CHECK(r == 0);
	CHECK(bk_xs_read(xs, BK_XS_NULL, path, &v, &len) == 0);
	CHECK(v && len == 2 && !memcmp(v, "tx", 2));
	free(v);
	v = NULL;

	/* A watch fires once at registration, then on each change. */
	CHECK(bk_xs_watch(xs, path, "bk-real-test") == 0);
	CHECK(wait_watch(xs, path, "bk-real-test"));
	drain_watch(xs);
	CHECK(bk_xs_write(xs, BK_XS_NULL, path, "2", 1) == 0);
	CHECK(wait_watch(xs, path, "bk-real-test"));
	CHECK(bk_xs_unwatch(xs, path, "bk-real-test") == 0);
	drain_watch(xs);
	CHECK(bk_xs_read_watch(xs, &wp, &wt) == -EAGAIN);

	CHECK(bk_xs_rm(xs, BK_XS_NULL, path) == 0);
	CHECK(bk_xs_rm(xs, BK_XS_NULL, path) == -ENOENT);
	CHECK(bk_xs_read(xs, BK_XS_NULL, path, &v, &len) == -ENOENT);
	if (!had_data)
		bk_xs_rm(xs, BK_XS_NULL, data);
	bk_xs_close(xs);
}

static void test_evtchn(struct bk_xen *x, uint32_t self)
{
	struct bk_evtchn *e = NULL;
	uint32_t port;

	CHECK(bk_evtchn_open(x, &e) == 0);
	if (!e)
		return;
	CHECK(bk_evtchn_fd(e) >= 0);
	CHECK(bk_evtchn_pending(e, &port) == -EAGAIN); /* non-blocking with nothing bound */
#if HAVE_XEN
	/* Play the guest with a second handle: an unbound port for ourselves, bound through e. */
	xenevtchn_handle *peer = xenevtchn_open(NULL, 0);
	uint32_t lp = 0;
	int pp;

	CHECK(peer != NULL);
	if (peer) {
		pp = xenevtchn_bind_unbound_port(peer, self);
		CHECK(pp > 0);
		if (pp > 0 && bk_evtchn_bind(e, self, (uint32_t)pp, &lp) == 0) {
			CHECK(xenevtchn_notify(peer, (evtchn_port_t)pp) == 0);
			CHECK(wait_readable(bk_evtchn_fd(e)));
			CHECK(bk_evtchn_pending(e, &port) == 0 && port == lp);
			CHECK(bk_evtchn_pending(e, &port) == -EAGAIN);
			CHECK(bk_evtchn_unmask(e, lp) == 0);
			/* And back: our kick reaches the peer's handle. */
			CHECK(bk_evtchn_notify(e, lp) == 0);
			CHECK(wait_readable(xenevtchn_fd(peer)));
			CHECK(xenevtchn_pending(peer) == pp);
			CHECK(bk_evtchn_unbind(e, lp) == 0);
		} else {
			CHECK(!"bind to our own unbound port");
		}
		xenevtchn_close(peer);
	}
#else
	(void)self;
#endif
	bk_evtchn_close(e);
}

static void test_gnttab(struct bk_xen *x, uint32_t self)
{
	struct bk_gnttab *g = NULL;

	CHECK(bk_gnt_open(x, &g) == 0);
	if (!g)
		return;
	CHECK(bk_gnt_nr_mapped(g) == 0);
#if HAVE_XEN
	/* Grant one of our own pages to ourselves (gntalloc), then map and copy it via gntdev. */
	xengntshr_handle *gs = xengntshr_open(NULL, 0);
	unsigned char buf[300], *page = NULL, *map = NULL;
	uint32_t ref = 0;

	if (!gs) {
		fprintf(stderr, "no /dev/xen/gntalloc: grant map/copy not tested\n");
		goto out;
	}
	page = xengntshr_share_pages(gs, self, 1, &ref, 1);
	CHECK(page != NULL);
	if (!page)
		goto out;
	for (unsigned int i = 0; i < BK_PAGE_SIZE; i++)
		page[i] = (unsigned char)(i * 7);

	CHECK(bk_gnt_map(g, self, &ref, 1, true, (void **)&map) == 0);
	if (map) {
		CHECK(bk_gnt_nr_mapped(g) == 1);
		CHECK(!memcmp(map, page, BK_PAGE_SIZE));
		map[5] = 0xAB;
		CHECK(page[5] == 0xAB);
		CHECK(bk_gnt_unmap(g, map, 1) == 0);
		CHECK(bk_gnt_nr_mapped(g) == 0);
	}

	struct bk_gnt_copy_seg segs[3] = {
		{ .local = buf, .domid = self, .ref = ref, .offset = 100, .len = 200 },
		{ .local = buf, .domid = self, .ref = ref, .offset = 4000, .len = 200 },
		{ .local = buf,
		  .domid = self,
		  .ref = ref,
		  .offset = 3000,
		  .len = 16,
		  .to_guest = true },
	};

	memset(buf, 0, sizeof(buf));
	CHECK(bk_gnt_copy(g, segs, 2) == 0);
	CHECK(segs[0].status == 0 && !memcmp(buf, page + 100, 200));
	CHECK(segs[1].status < 0); /* crosses the page end: refused, batch still done */
	fprintf(stderr, "bad segment status: %s\n", bk_xen_gntst_str(segs[1].status));
	memset(buf, 0x5C, 16);
	CHECK(bk_gnt_copy(g, &segs[2], 1) == 0);
	CHECK(segs[2].status == 0 && page[3000] == 0x5C && page[3015] == 0x5C);

	xengntshr_unshare(gs, page, 1);
out:
	if (gs)
		xengntshr_close(gs);
#else
	(void)self;
#endif
	bk_gnt_close(g);
}

int main(void)
{
	struct bk_xen *x = NULL;
	uint32_t self = UINT32_MAX;
	int r;

	CHECK(!strcmp(bk_xen_gntst_str(0), "okay"));
	CHECK(strcmp(bk_xen_gntst_str(-3), bk_xen_gntst_str(-1)) != 0);
	if (bk_test_failures)
		return 1;

	if (access("/dev/xen/privcmd", F_OK) < 0 || !have_xenstore()) {
		printf("SKIP: not running on Xen (no /dev/xen/privcmd or xenstore)\n");
		return 77;
	}
	r = bk_xen_real_new(&x);
	if (r == -ENOSYS) {
		printf("SKIP: built without the xen libraries\n");
		return 77;
	}
	CHECK(r == 0);
	if (r < 0) {
		fprintf(stderr, "bk_xen_real_new: %s\n", strerror(-r));
		return 1;
	}

	CHECK(!strcmp(x->ops->name, "xen"));
	CHECK(x->ops->own_domid(x, &self) == 0 && self < 0x7FF0);
	printf("own domid %u\n", self);
	if (self < 0x7FF0) {
		r = x->ops->domain_alive(x, self);
		/* A driver domain may not ask (EPERM); dom0 must say we are alive. */
		CHECK(r == 1 || r == -EPERM || r == -EACCES);
		r = x->ops->domain_alive(x, 0x7FEF);
		CHECK(r == 0 || r == -EPERM || r == -EACCES);
		test_xenstore(x, self);
		test_evtchn(x, self);
		test_gnttab(x, self);
	}
	bk_xen_free(x);
	return bk_test_failures ? 1 : 0;
}
