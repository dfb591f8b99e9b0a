// SPDX-License-Identifier: MIT
/*
 * Unit tests of the simulation's xenstore: read/write/mkdir/rm/directory, watches (initial
 * fire, child change, ancestor removal, unwatch, the fd, the queue bound), transactions
 * (commit, conflict, abort, watches on commit) and xenstored's permission rules.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen/sim.h"
#include "check.h"

#define GUEST 5U
#define OTHER 6U

static struct bk_sim *sim;
static struct bk_xen *x0, *x5, *x6;
static struct bk_xs *xs0, *xs5, *xs6;

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The value at @path, or NULL; the caller frees. */
static char *rd(struct bk_xs *xs, uint32_t t, const char *path)
{
	char *v = NULL;
	size_t len;

	if (bk_xs_read(xs, t, path, &v, &len) < 0)
		return NULL;
	return v;
}

static bool val_is(struct bk_xs *xs, uint32_t t, const char *path, const char *want)
{
	char *v = rd(xs, t, path);
	bool ok = v && strcmp(v, want) == 0;

	free(v);
	return ok;
}

static int wr(struct bk_xs *xs, uint32_t t, const char *path, const char *val)
{
	return bk_xs_write(xs, t, path, val, strlen(val));
}

/* Pop the next event; true if it is (@path, @token). */
static bool event_is(struct bk_xs *xs, const char *path, const char *token)
{
	char *p = NULL, *t = NULL;
	bool ok;

	if (bk_xs_read_watch(xs, &p, &t) < 0)
		return false;
	ok = strcmp(p, path) == 0 && strcmp(t, token) == 0;
	if (!ok)
		fprintf(stderr, "event (%s, %s), wanted (%s, %s)\n", p, t, path, token);
	free(p);
	free(t);
	return ok;
}

static bool no_event(struct bk_xs *xs)
{
	char *p, *t;

	if (bk_xs_read_watch(xs, &p, &t) == -EAGAIN)
		return true;
	fprintf(stderr, "unexpected event (%s, %s)\n", p, t);
	free(p);
	free(t);
	return false;
}

static void test_basic(void)
{
	char **names = NULL;
	unsigned int n = 0;
	char *v = NULL;
	size_t len;
	static const char bin[5] = { 'a', 0, 'b', 0, 'c' };

	CHECK(val_is(xs0, 0, "/local/domain/0", ""));
	CHECK(wr(xs0, 0, "/a/b/c", "v1") == 0);
	CHECK(val_is(xs0, 0, "/a/b/c", "v1"));
	CHECK(val_is(xs0, 0, "/a/b", ""));
	CHECK(wr(xs0, 0, "/a/b/c", "longer value") == 0);
	CHECK(val_is(xs0, 0, "/a/b/c", "longer value"));
	CHECK(bk_xs_write(xs0, 0, "/a/bin", bin, sizeof(bin)) == 0);
	CHECK(bk_xs_read(xs0, 0, "/a/bin", &v, &len) == 0 && len == 5 && memcmp(v, bin, 5) == 0 &&
	      v[5] == 0);
	free(v);
	v = (char *)"untouched";
	len = 42;
	CHECK(bk_xs_read(xs0, 0, "/a/none", &v, &len) == -ENOENT);
	CHECK(strcmp(v, "untouched") == 0 && len == 42);
	CHECK(bk_xs_mkdir(xs0, 0, "/a/d1") == 0);
	CHECK(bk_xs_mkdir(xs0, 0, "/a/d1") == 0);
	CHECK(bk_xs_mkdir(xs0, 0, "/a/d2/deep") == 0);
	CHECK(bk_xs_directory(xs0, 0, "/a", &names, &n) == 0);
	CHECK(n == 4);
	if (names && n == 4)
		CHECK(strcmp(names[0], "b") == 0 && strcmp(names[1], "bin") == 0 &&
		      strcmp(names[2], "d1") == 0 && strcmp(names[3], "d2") == 0);
	free(names);
	CHECK(bk_xs_directory(xs0, 0, "/a/d1", &names, &n) == 0 && n == 0);
	free(names);
	CHECK(bk_xs_directory(xs0, 0, "/nope", &names, &n) == -ENOENT);
	CHECK(bk_xs_rm(xs0, 0, "/a/b") == 0);
	CHECK(rd(xs0, 0, "/a/b/c") == NULL);
	CHECK(bk_xs_rm(xs0, 0, "/a/b") == -ENOENT);
	CHECK(bk_xs_rm(xs0, 0, "/") == -EINVAL);
	/* Bad paths. */
	CHECK(wr(xs0, 0, "/a//b", "x") == -EINVAL);
	CHECK(wr(xs0, 0, "/a/b/", "x") == -EINVAL);
	CHECK(wr(xs0, 0, "/a/b c", "x") == -EINVAL);
	CHECK(wr(xs0, 0, "", "x") == -EINVAL);
	CHECK(bk_xs_write(xs0, 0, "/a/big", "", 4097) == -E2BIG);
	/* Relative paths are under the connection's own domain. */
	CHECK(wr(xs5, 0, "device/vbd/1/state", "1") == 0);
	CHECK(val_is(xs0, 0, "/local/domain/5/device/vbd/1/state", "1"));
	CHECK(bk_xs_rm(xs0, 0, "/a") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/5/device") == 0);
}

static void test_watches(void)
{
	int fd = bk_xs_fd(xs0);
	char *p = (char *)"keep", *t = (char *)"keep";

	CHECK(fd >= 0);
	CHECK(!readable(fd));
	CHECK(bk_xs_read_watch(xs0, &p, &t) == -EAGAIN);
	CHECK(strcmp(p, "keep") == 0 && strcmp(t, "keep") == 0);
	/* Fires once at once, even for a node that does not exist. */
	CHECK(bk_xs_watch(xs0, "/w/x", "tok") == 0);
	CHECK(bk_xs_watch(xs0, "/w/x", "tok") == -EEXIST);
	CHECK(readable(fd));
	CHECK(event_is(xs0, "/w/x", "tok"));
	CHECK(!readable(fd));
	CHECK(no_event(xs0));
	/* The node, a child, a grandchild; not a sibling or a name prefix. */
	CHECK(wr(xs0, 0, "/w/x", "1") == 0);
	CHECK(wr(xs0, 0, "/w/x/y/z", "2") == 0);
	CHECK(wr(xs0, 0, "/w/xx", "3") == 0);
	CHECK(wr(xs0, 0, "/w/other", "4") == 0);
	CHECK(readable(fd));
	CHECK(event_is(xs0, "/w/x", "tok"));
	CHECK(event_is(xs0, "/w/x/y/z", "tok"));
	CHECK(no_event(xs0));
	/* A write of the same value still fires; mkdir of an existing node does not. */
	CHECK(wr(xs0, 0, "/w/x", "1") == 0);
	CHECK(bk_xs_mkdir(xs0, 0, "/w/x") == 0);
	CHECK(event_is(xs0, "/w/x", "tok"));
	CHECK(no_event(xs0));
	/* Watches of several connections and tokens. */
	CHECK(bk_xs_watch(xs0, "/w/x/y", "deep") == 0);
	CHECK(event_is(xs0, "/w/x/y", "deep"));
	/* Removal of an ancestor fires every watch below it, with the watch's path. */
	CHECK(bk_xs_rm(xs0, 0, "/w") == 0);
	CHECK(event_is(xs0, "/w/x", "tok"));
	CHECK(event_is(xs0, "/w/x/y", "deep"));
	CHECK(no_event(xs0));
	/* Unwatch, and its queued events go. */
	CHECK(bk_xs_watch(xs0, "/u", "t1") == 0);
	CHECK(bk_xs_unwatch(xs0, "/u", "t1") == 0);
	CHECK(!readable(fd));
	CHECK(no_event(xs0));
	CHECK(wr(xs0, 0, "/u", "1") == 0);
	CHECK(no_event(xs0));
	CHECK(bk_xs_unwatch(xs0, "/u", "t1") == -ENOENT);
	CHECK(bk_xs_unwatch(xs0, "/w/x", "tok") == 0);
	CHECK(bk_xs_unwatch(xs0, "/w/x/y", "deep") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/u") == 0);
}

static void test_watch_rm(void)
{
	CHECK(wr(xs0, 0, "/r/a/b", "1") == 0);
	CHECK(bk_xs_watch(xs0, "/r/a/b", "child") == 0);
	CHECK(bk_xs_watch(xs0, "/r", "parent") == 0);
	CHECK(bk_xs_watch(xs0, "/r/a/b/c/d", "absent") == 0);
	CHECK(event_is(xs0, "/r/a/b", "child"));
	CHECK(event_is(xs0, "/r", "parent"));
	CHECK(event_is(xs0, "/r/a/b/c/d", "absent"));
	CHECK(bk_xs_rm(xs0, 0, "/r/a") == 0);
	CHECK(event_is(xs0, "/r/a/b", "child"));
	CHECK(event_is(xs0, "/r/a", "parent"));
	CHECK(event_is(xs0, "/r/a/b/c/d", "absent"));
	CHECK(no_event(xs0));
	CHECK(bk_xs_unwatch(xs0, "/r/a/b", "child") == 0);
	CHECK(bk_xs_unwatch(xs0, "/r", "parent") == 0);
	CHECK(bk_xs_unwatch(xs0, "/r/a/b/c/d", "absent") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/r") == 0);
}

/* A guest's relative watch reports relative paths; a domU only sees what it may read. */
static void test_watch_domu(void)
{
	CHECK(bk_xs_watch(xs5, "device", "rel") == 0);
	CHECK(event_is(xs5, "device", "rel"));
	CHECK(wr(xs0, 0, "/local/domain/5/device/vbd", "x") == 0);
	CHECK(event_is(xs5, "device/vbd", "rel"));
	CHECK(bk_xs_unwatch(xs5, "device", "rel") == 0);

	CHECK(bk_xs_watch(xs5, "/secret", "s") == 0);
	CHECK(event_is(xs5, "/secret", "s"));
	CHECK(wr(xs0, 0, "/secret/k", "1") == 0);
	CHECK(no_event(xs5));
	CHECK(bk_xs_unwatch(xs5, "/secret", "s") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/secret") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/5/device") == 0);
}

static void test_queue_bound(void)
{
	char path[32];
	uint64_t before = bk_sim_xs_dropped(sim);
	unsigned int n = 0;
	char *p, *t;

	CHECK(bk_xs_watch(xs6, "/q", "q") == 0);
	CHECK(bk_xs_mkdir(xs0, 0, "/q") == 0);
	CHECK(bk_xs_set_perms(xs0, 0, "/q", &(struct bk_xs_perm){ 0, BK_XS_PERM_READ }, 1) == 0);
	for (unsigned int i = 0; i < 5000; i++) {
		snprintf(path, sizeof(path), "/q/%u", i);
		CHECK(wr(xs0, 0, path, "") == 0);
	}
	while (bk_xs_read_watch(xs6, &p, &t) == 0) {
		if (n == 0)
			/* The oldest were dropped; what is left is the newest, in order. */
			CHECK(strcmp(p, "/q/904") == 0);
		n++;
		free(p);
		free(t);
	}
	CHECK(n == 4096);
	CHECK(bk_sim_xs_dropped(sim) - before == 5002 - 4096);
	CHECK(bk_xs_unwatch(xs6, "/q", "q") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/q") == 0);
}

static void test_transactions(void)
{
	uint32_t t, t2;
	char **names;
	unsigned int n;

	CHECK(bk_xs_watch(xs0, "/tx", "tx") == 0);
	CHECK(event_is(xs0, "/tx", "tx"));
	/* Commit: invisible until then, watches fire on commit. */
	CHECK(bk_xs_transaction_start(xs0, &t) == 0 && t != 0);
	CHECK(wr(xs0, t, "/tx/a", "1") == 0);
	CHECK(bk_xs_mkdir(xs0, t, "/tx/dir") == 0);
	CHECK(val_is(xs0, t, "/tx/a", "1"));
	CHECK(rd(xs0, 0, "/tx/a") == NULL);
	CHECK(bk_xs_directory(xs0, t, "/tx", &names, &n) == 0 && n == 2);
	free(names);
	CHECK(no_event(xs0));
	CHECK(bk_xs_transaction_end(xs0, t, false) == 0);
	CHECK(val_is(xs0, 0, "/tx/a", "1"));
	CHECK(event_is(xs0, "/tx/a", "tx"));
	CHECK(event_is(xs0, "/tx/dir", "tx"));
	CHECK(no_event(xs0));
	/* The id is gone after commit. */
	CHECK(bk_xs_transaction_end(xs0, t, false) == -ENOENT);
	CHECK(rd(xs0, t, "/tx/a") == NULL);

	/* Conflict: someone else changed the store meanwhile -> -EAGAIN, nothing applied. */
	CHECK(bk_xs_transaction_start(xs0, &t) == 0);
	CHECK(wr(xs0, t, "/tx/a", "2") == 0);
	CHECK(bk_xs_rm(xs0, t, "/tx/dir") == 0);
	CHECK(wr(xs5, 0, "data/x", "guest") == 0);
	CHECK(bk_xs_transaction_end(xs0, t, false) == -EAGAIN);
	CHECK(val_is(xs0, 0, "/tx/a", "1"));
	CHECK(bk_xs_mkdir(xs0, 0, "/tx/dir") == 0);
	CHECK(no_event(xs0));

	/* Abort discards. */
	CHECK(bk_xs_transaction_start(xs0, &t) == 0);
	CHECK(wr(xs0, t, "/tx/a", "3") == 0);
	CHECK(bk_xs_transaction_end(xs0, t, true) == 0);
	CHECK(val_is(xs0, 0, "/tx/a", "1"));
	CHECK(no_event(xs0));

	/* Two transactions: the first commit wins, the second must retry. */
	CHECK(bk_xs_transaction_start(xs0, &t) == 0);
	CHECK(bk_xs_transaction_start(xs6, &t2) == 0 && t2 != t);
	CHECK(wr(xs0, t, "/tx/a", "4") == 0);
	CHECK(bk_xs_transaction_end(xs0, t2, false) == -ENOENT); /* not this connection's */
	CHECK(bk_xs_transaction_end(xs0, t, false) == 0);
	CHECK(event_is(xs0, "/tx/a", "tx"));
	CHECK(bk_xs_transaction_end(xs6, t2, false) == -EAGAIN);
	/* A transaction left open is released with its connection (checked by LSan). */
	CHECK(bk_xs_transaction_start(xs6, &t2) == 0);
	CHECK(wr(xs6, t2, "data/y", "1") == 0);
	CHECK(bk_xs_unwatch(xs0, "/tx", "tx") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/tx") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/5/data") == 0);
}

static void test_perms(void)
{
	struct bk_xs_perm *p = NULL;
	unsigned int n = 0;
	static const struct bk_xs_perm be[] = { { 0, BK_XS_PERM_NONE },
						{ GUEST, BK_XS_PERM_READ } };
	static const struct bk_xs_perm mine[] = { { GUEST, BK_XS_PERM_NONE },
						  { OTHER, BK_XS_PERM_WRITE } };
	static const struct bk_xs_perm theirs[] = { { OTHER, BK_XS_PERM_NONE } };
	char **names;

	/* The toolstack made /local/domain/5 owned by 5. */
	CHECK(bk_xs_get_perms(xs0, 0, "/local/domain/5", &p, &n) == 0);
	CHECK(n == 1 && p && p[0].domid == GUEST && p[0].perms == BK_XS_PERM_NONE);
	free(p);
	/* A domU writes its own area; what it creates is its own. */
	CHECK(wr(xs5, 0, "/local/domain/5/device/vbd/768/state", "1") == 0);
	CHECK(bk_xs_get_perms(xs5, 0, "/local/domain/5/device/vbd/768/state", &p, &n) == 0);
	CHECK(n == 1 && p && p[0].domid == GUEST);
	free(p);
	/* It may not read, write, list or remove another domain's nodes. */
	CHECK(wr(xs0, 0, "/local/domain/6/secret", "s") == 0);
	CHECK(rd(xs5, 0, "/local/domain/6/secret") == NULL);
	CHECK(bk_xs_read(xs5, 0, "/local/domain/6/secret", &(char *){ NULL }, NULL) == -EACCES);
	CHECK(wr(xs5, 0, "/local/domain/6/secret", "x") == -EACCES);
	CHECK(wr(xs5, 0, "/local/domain/6/new/deep", "x") == -EACCES);
	CHECK(bk_xs_mkdir(xs5, 0, "/local/domain/6/new") == -EACCES);
	CHECK(bk_xs_rm(xs5, 0, "/local/domain/6/secret") == -EACCES);
	CHECK(bk_xs_directory(xs5, 0, "/local/domain/6", &names, &n) == -EACCES);
	CHECK(bk_xs_get_perms(xs5, 0, "/local/domain/6", &p, &n) == -EACCES);
	CHECK(wr(xs5, 0, "/top", "x") == -EACCES);
	CHECK(val_is(xs0, 0, "/local/domain/6/secret", "s"));
	/* Nor the backend directory until the toolstack grants read access. */
	CHECK(wr(xs0, 0, "/local/domain/0/backend/vbd/5/768/state", "2") == 0);
	CHECK(rd(xs5, 0, "/local/domain/0/backend/vbd/5/768/state") == NULL);
	CHECK(bk_xs_set_perms(xs0, 0, "/local/domain/0/backend/vbd/5/768", be, 2) == 0);
	CHECK(wr(xs0, 0, "/local/domain/0/backend/vbd/5/768/state", "4") == 0);
	CHECK(bk_xs_get_perms(xs0, 0, "/local/domain/0/backend/vbd/5/768/state", &p, &n) == 0);
	CHECK(n == 1 && p && p[0].domid == 0);
	free(p);
	/* A node dom0 creates inherits its parent's perms exactly. */
	CHECK(wr(xs0, 0, "/local/domain/0/backend/vbd/5/768/feature", "1") == 0);
	CHECK(bk_xs_get_perms(xs0, 0, "/local/domain/0/backend/vbd/5/768/feature", &p, &n) == 0);
	CHECK(n == 2 && p && memcmp(p, be, sizeof(be)) == 0);
	free(p);
	CHECK(val_is(xs5, 0, "/local/domain/0/backend/vbd/5/768/feature", "1"));
	CHECK(bk_xs_set_perms(xs0, 0, "/local/domain/0/backend/vbd/5/768/state", be, 2) == 0);
	CHECK(val_is(xs5, 0, "/local/domain/0/backend/vbd/5/768/state", "4"));
	CHECK(wr(xs5, 0, "/local/domain/0/backend/vbd/5/768/state", "6") == -EACCES);
	/* Read-only for 5, invisible to 6. */
	CHECK(rd(xs6, 0, "/local/domain/0/backend/vbd/5/768/state") == NULL);
	/* Get/set round trip by the owner; a specific entry grants access to another domU. */
	CHECK(bk_xs_set_perms(xs5, 0, "/local/domain/5/device/vbd/768", mine, 2) == 0);
	CHECK(bk_xs_get_perms(xs5, 0, "/local/domain/5/device/vbd/768", &p, &n) == 0);
	CHECK(n == 2 && p && memcmp(p, mine, sizeof(mine)) == 0);
	free(p);
	CHECK(wr(xs6, 0, "/local/domain/5/device/vbd/768", "from6") == 0);
	CHECK(rd(xs6, 0, "/local/domain/5/device/vbd/768") == NULL); /* write-only */
	CHECK(val_is(xs5, 0, "/local/domain/5/device/vbd/768", "from6"));
	/* A domU creating below a node it may write owns the new node. */
	CHECK(wr(xs6, 0, "/local/domain/5/device/vbd/768/by6", "x") == 0);
	CHECK(bk_xs_get_perms(xs0, 0, "/local/domain/5/device/vbd/768/by6", &p, &n) == 0);
	CHECK(n == 2 && p && p[0].domid == OTHER && p[1].domid == OTHER);
	free(p);
	/* Not the owner: no set_perms; the owner may not give a node away. */
	CHECK(bk_xs_set_perms(xs6, 0, "/local/domain/5/device/vbd/768", theirs, 1) == -EACCES);
	CHECK(bk_xs_set_perms(xs5, 0, "/local/domain/5/device/vbd/768", theirs, 1) == -EPERM);
	CHECK(bk_xs_set_perms(xs5, 0, "/local/domain/5/device/vbd/768", mine, 0) == -EINVAL);
	/* dom0 may do all of it. */
	CHECK(bk_xs_set_perms(xs0, 0, "/local/domain/5/device/vbd/768", theirs, 1) == 0);
	CHECK(rd(xs5, 0, "/local/domain/5/device/vbd/768") == NULL);
	CHECK(val_is(xs6, 0, "/local/domain/5/device/vbd/768", "from6"));
	CHECK(val_is(xs0, 0, "/local/domain/6/secret", "s"));
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/5/device") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/6/secret") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/0/backend") == 0);
}

/* @introduceDomain / @releaseDomain fire for dom0 on domain create and destroy. */
static void test_special_watches(void)
{
	CHECK(bk_xs_watch(xs0, "@releaseDomain", "rel") == 0);
	CHECK(bk_xs_watch(xs0, "@introduceDomain", "intro") == 0);
	CHECK(bk_xs_watch(xs5, "@releaseDomain", "rel5") == 0);
	CHECK(bk_xs_watch(xs0, "@bad/path", "x") == -EINVAL);
	CHECK(event_is(xs0, "@releaseDomain", "rel"));
	CHECK(event_is(xs0, "@introduceDomain", "intro"));
	CHECK(event_is(xs5, "@releaseDomain", "rel5"));
	/* Ordinary changes do not fire them. */
	CHECK(wr(xs0, 0, "/sp", "1") == 0);
	CHECK(no_event(xs0));
	CHECK(bk_sim_domain_create(sim, 9, 1) == 0);
	CHECK(event_is(xs0, "@introduceDomain", "intro"));
	CHECK(no_event(xs0));
	CHECK(bk_sim_domain_destroy(sim, 9) == 0);
	CHECK(event_is(xs0, "@releaseDomain", "rel"));
	CHECK(no_event(xs0));
	CHECK(no_event(xs5)); /* not privileged */
	CHECK(bk_xs_unwatch(xs0, "@releaseDomain", "rel") == 0);
	CHECK(bk_xs_unwatch(xs0, "@introduceDomain", "intro") == 0);
	CHECK(bk_xs_unwatch(xs5, "@releaseDomain", "rel5") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/sp") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/9") == 0);
}

static void test_faults(void)
{
	uint32_t t;

	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT__MAX, 0, -EIO) == -EINVAL);
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_XS_WRITE, 0, 5) == -EINVAL);
	/* The second write through a dom0 platform fails; the guest's writes do not count. */
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_XS_WRITE, 1, -EIO) == 0);
	CHECK(wr(xs5, 0, "f", "g") == 0);
	CHECK(wr(xs0, 0, "/f/1", "a") == 0);
	CHECK(wr(xs5, 0, "f", "g") == 0);
	CHECK(wr(xs0, 0, "/f/2", "b") == -EIO);
	CHECK(rd(xs0, 0, "/f/2") == NULL);
	CHECK(wr(xs0, 0, "/f/2", "b") == 0);
	/* A forced conflict: the transaction is gone, nothing applied; the retry works. */
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_XS_TX_COMMIT, 0, -EAGAIN) == 0);
	CHECK(bk_xs_transaction_start(xs0, &t) == 0);
	CHECK(wr(xs0, t, "/f/3", "c") == 0);
	CHECK(bk_xs_transaction_end(xs0, t, false) == -EAGAIN);
	CHECK(bk_xs_transaction_end(xs0, t, false) == -ENOENT);
	CHECK(rd(xs0, 0, "/f/3") == NULL);
	CHECK(bk_xs_transaction_start(xs0, &t) == 0);
	CHECK(wr(xs0, t, "/f/3", "c") == 0);
	CHECK(bk_xs_transaction_end(xs0, t, false) == 0);
	CHECK(val_is(xs0, 0, "/f/3", "c"));
	/* Cleared injections never fire. */
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_XS_READ, 0, -EIO) == 0);
	bk_sim_fault_clear(sim);
	CHECK(val_is(xs0, 0, "/f/3", "c"));
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_XS_OPEN, 0, -ENOMEM) == 0);
	CHECK(bk_xs_open(x0, &(struct bk_xs *){ NULL }) == -ENOMEM);
	CHECK(bk_xs_rm(xs0, 0, "/f") == 0);
	CHECK(bk_xs_rm(xs0, 0, "/local/domain/5/f") == 0);
}

int main(void)
{
	struct bk_sim_counts c;
	unsigned int base_nodes;

	if (bk_sim_new(&sim) < 0 || bk_sim_domain_create(sim, GUEST, 1) < 0 ||
	    bk_sim_domain_create(sim, OTHER, 1) < 0 || bk_sim_platform(sim, 0, &x0) < 0 ||
	    bk_sim_platform(sim, GUEST, &x5) < 0 || bk_sim_platform(sim, OTHER, &x6) < 0 ||
	    bk_xs_open(x0, &xs0) < 0 || bk_xs_open(x5, &xs5) < 0 || bk_xs_open(x6, &xs6) < 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	bk_sim_counts(sim, &c);
	/* /, local, domain, 0, 5, 6 */
	CHECK(c.xs_nodes == 6 && c.xs_conns == 3 && c.xs_watches == 0);
	base_nodes = c.xs_nodes;
	test_basic();
	test_watches();
	test_watch_rm();
	test_watch_domu();
	test_queue_bound();
	test_transactions();
	test_perms();
	test_special_watches();
	test_faults();
	bk_sim_counts(sim, &c);
	CHECK(c.xs_nodes == base_nodes && c.xs_watches == 0);
	bk_xs_close(xs0);
	bk_xs_close(xs5);
	bk_xs_close(xs6);
	bk_sim_counts(sim, &c);
	CHECK(c.xs_conns == 0);
	bk_xen_free(x0);
	bk_xen_free(x5);
	bk_xen_free(x6);
	bk_sim_free(sim);
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
