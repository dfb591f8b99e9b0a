// SPDX-License-Identifier: MIT
/*
 * Shared-image safety: which guest has which image open, read-write or read-only, in this
 * daemon. Xen's block script decides from xenstore (physical-device keys another backend may
 * have left behind, hence its stale "device already in use"); this registry holds only what is
 * really open: a claim is taken right after the store opened and dropped when it closes, so a
 * device torn down for any reason (guest destroyed mid-I/O, failed, removed) frees its image.
 *
 * An image is keyed as the kernel knows it: a block device by st_rdev (two device nodes, a
 * symlink or /dev/mapper vs /dev/dm-N are the same disk), a file by st_dev and st_ino.
 *
 * A loop device counts as its backing file too (LOOP_GET_STATUS64 gives the file's st_dev and
 * st_ino), so /dev/loop0 and the file it maps are one image.
 *
 * The rules are the block script's (check_sharing): read-write is refused while another guest
 * has the image in any mode; read-only is refused while another guest has it read-write.
 * The same guest may open its image twice, and a forced claim (mode "w!", blanket-share=on)
 * is never refused and never refuses a read-only claim.
 *
 * A holder that is going away (its device torn down, finishing the I/O the kernel still has in
 * flight for a destroyed guest) does not refuse: the new device waits in InitWait, its store
 * closed, until that claim is released, then opens and connects; after share-wait-ms it is
 * refused as if the holder were alive. A live holder refuses at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/loop.h>

#include "common.h"
#include "loop.h"

/* The kernel's block major of loop devices (LOOP_MAJOR in linux/major.h). */
#define BLKIF_LOOP_MAJOR 7

/* An image as the kernel knows it. */
struct image_key {
	bool blk;
	dev_t dev; /* st_rdev of a block device, st_dev of a file */
	ino_t ino; /* files only */
};

struct blkif_claim {
	struct list_head link;
	struct image_key key[2]; /* the store; for a loop device also its backing file */
	unsigned int nkeys;
	bool rw;
	bool forced;
	bool leaving; /* its device is being torn down: the claim goes once its I/O drained */
	const struct blkif_dev *bd;
};

/*
 * Every device's claims in one list, and the devices waiting, shared by the I/O threads: under
 * share_lock (recursive: a claim unwaits its device), which is taken last, never held while
 * waiting for anything else. A waiter on another thread is woken by its async, not its timer.
 */
static pthread_mutex_t share_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static struct list_head claims = LIST_HEAD_INIT(claims);
static struct list_head waiters = LIST_HEAD_INIT(waiters);

static void share_unlock_cb(int *unused _unused_)
{
	pthread_mutex_unlock(&share_lock);
}

#define SHARE_LOCKED() \
	_cleanup_(share_unlock_cb) int share_guard_ _unused_ = (pthread_mutex_lock(&share_lock), 0)

static bool same_key(const struct image_key *a, const struct image_key *b)
{
	return a->blk == b->blk && a->dev == b->dev && (a->blk || a->ino == b->ino);
}

static bool same_image(const struct blkif_claim *a, const struct blkif_claim *b)
{
	for (unsigned int i = 0; i < a->nkeys; i++)
		for (unsigned int j = 0; j < b->nkeys; j++)
			if (same_key(&a->key[i], &b->key[j]))
				return true;
	return false;
}

/* The holder's device is being torn down: its claim goes once its in-flight I/O drained. */
static bool leaving(const struct blkif_claim *c)
{
	return c->leaving;
}

void blkif_share_leaving(struct blkif_dev *bd)
{
	SHARE_LOCKED();

	if (bd->claim)
		bd->claim->leaving = true;
}

/*
 * The claim in the way of @want, or NULL: a live holder first (refused at once), else one
 * that is going away (@ret_leaving, worth waiting for).
 */
static const struct blkif_claim *conflict(const struct blkif_claim *want, bool *ret_leaving)
{
	const struct blkif_claim *c, *gone = NULL;

	*ret_leaving = false;
	if (want->forced)
		return NULL;
	list_for_each_entry (c, &claims, link) {
		if (!same_image(c, want) || c->bd->dev->domid == want->bd->dev->domid)
			continue;
		if (!want->rw && !(c->rw && !c->forced))
			continue;
		if (!leaving(c))
			return c;
		gone = gone ? gone : c;
	}
	*ret_leaving = gone != NULL;
	return gone;
}

/* A loop device's backing file, as a file key (false: not a loop device, or unbound). */
static bool loop_backing(int fd, const struct stat *st, struct image_key *ret)
{
	struct loop_info64 li;
	unsigned int maj, min;

	if (!S_ISBLK(st->st_mode) || major(st->st_rdev) != BLKIF_LOOP_MAJOR)
		return false;
	memset(&li, 0, sizeof(li));
	if (ioctl(fd, LOOP_GET_STATUS64, &li) < 0)
		return false;
	/* lo_device is the kernel's huge_encode_dev() of the file's st_dev. */
	maj = (unsigned int)((li.lo_device & 0xfff00U) >> 8);
	min = (unsigned int)((li.lo_device & 0xffU) | ((li.lo_device >> 12) & 0xfff00U));
	ret->blk = false;
	ret->dev = makedev(maj, min);
	ret->ino = (ino_t)li.lo_inode;
	return true;
}

static void share_wait_cb(void *data)
{
	struct blkif_dev *bd = data;

	/* Released, or the bound passed: try again (the claim decides which). */
	blkif_backend_changed(bd->dev, NULL);
}

void blkif_share_unwait(struct blkif_dev *bd)
{
	SHARE_LOCKED();

	if (bd->share_waiting) {
		list_del(&bd->share_link);
		bd->share_waiting = false;
	}
	/* Stopped, not freed: this may run from its own callback (bd_free frees it). */
	if (bd->share_timer)
		bk_timer_stop(bd->share_timer);
	bd->share_deadline = 0;
}

/* Wait for @holder to release the image, or refuse once share-wait-ms has passed. */
static int wait_for(struct blkif_dev *bd, const struct blkif_claim *holder, char *why, size_t len)
{
	const struct bk_device *od = holder->bd->dev;
	uint64_t now = blkif_now(), wait_ms = bk_config_current()->share_wait_ms, left_ms;
	bool first = !bd->share_deadline;
	int r;

	if (first)
		bd->share_deadline = now + wait_ms * 1000000U;
	if (now >= bd->share_deadline) {
		snprintf(why, len,
			 "%s is in use %s by guest %u (vbd %u/%u), still finishing its I/O after "
			 "%llu ms: refusing it %s to guest %u (mode w! or blanket-share=on forces "
			 "sharing)",
			 bd->params, holder->rw ? "read-write" : "read-only", od->domid, od->domid,
			 od->devid, (unsigned long long)wait_ms,
			 bd->lim.readonly ? "read-only" : "read-write", bd->dev->domid);
		blkif_share_unwait(bd);
		return -EBUSY;
	}
	left_ms = (bd->share_deadline - now + 999999U) / 1000000U;
	if (!bd->share_wake) {
		r = bk_loop_add_async(bk_device_loop(bd->dev), share_wait_cb, bd, &bd->share_wake);
		if (r < 0) {
			blkif_share_unwait(bd);
			snprintf(why, len, "cannot wait for %s: %s", bd->params, strerror(-r));
			return r;
		}
	}
	if (!bd->share_timer) {
		r = bk_loop_add_timer(bk_device_loop(bd->dev), left_ms, 0, share_wait_cb, bd,
				      &bd->share_timer);
		if (r < 0) {
			blkif_share_unwait(bd);
			snprintf(why, len, "cannot wait for %s: %s", bd->params, strerror(-r));
			return r;
		}
	} else {
		bk_timer_rearm(bd->share_timer, left_ms, 0);
	}
	if (first)
		dev_info(bd->dev,
			 "%s is still open for guest %u (vbd %u/%u), which is going away: "
			 "waiting up to %llu ms for its in-flight I/O to finish",
			 bd->params, od->domid, od->domid, od->devid, (unsigned long long)wait_ms);
	if (!bd->share_waiting) {
		list_add_tail(&bd->share_link, &waiters);
		bd->share_waiting = true;
	}
	return -EAGAIN;
}

int blkif_claim_image(struct blkif_dev *bd, char *why, size_t len)
{
	const struct blkif_claim *other;
	struct blkif_claim *c;
	struct stat st;
	bool gone;
	SHARE_LOCKED();

	if (bd->claim)
		return 0;
	/* No file (engine virtio-blk): the engine refuses overlapping ranges itself. */
	if (bd->store->fd < 0)
		return 0;
	if (fstat(bd->store->fd, &st) < 0) {
		int r = neg_errno();

		snprintf(why, len, "stat of %s: %s", bd->params, strerror(-r));
		return r;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->key[0].blk = S_ISBLK(st.st_mode);
	c->key[0].dev = c->key[0].blk ? st.st_rdev : st.st_dev;
	c->key[0].ino = c->key[0].blk ? 0 : st.st_ino;
	c->nkeys = 1 + loop_backing(bd->store->fd, &st, &c->key[1]);
	c->rw = !bd->lim.readonly;
	c->forced = bd->share && c->rw;
	c->bd = bd;
	other = conflict(c, &gone);
	if (other && bd->adopting) {
		/*
		 * A previous run (an older version, or w! since dropped) served both: the guest
		 * is running on it, and refusing now would take its disk away. Keep it, say so.
		 */
		dev_warn(bd->dev,
			 "%s is also open %s for guest %u (vbd %u/%u): kept, as the previous run "
			 "served both",
			 bd->params, other->rw ? "read-write" : "read-only", other->bd->dev->domid,
			 other->bd->dev->domid, other->bd->dev->devid);
		other = NULL;
	}
	if (other && gone) {
		int r = wait_for(bd, other, why, len);

		free(c);
		return r;
	}
	if (other) {
		const struct bk_device *od = other->bd->dev;

		snprintf(why, len,
			 "%s is in use %s by guest %u (vbd %u/%u): refusing it %s to guest %u "
			 "(mode w! or blanket-share=on forces sharing)",
			 bd->params, other->rw ? "read-write" : "read-only", od->domid, od->domid,
			 od->devid, c->rw ? "read-write" : "read-only", bd->dev->domid);
		free(c);
		return -EBUSY;
	}
	if (bd->share_deadline)
		dev_info(bd->dev, "%s released by the guest that went away: opening it",
			 bd->params);
	blkif_share_unwait(bd);
	list_add_tail(&c->link, &claims);
	bd->claim = c;
	if (c->forced)
		dev_info(bd->dev, "%s: sharing forced, not checked against other guests",
			 bd->params);
	return 0;
}

void blkif_release_image(struct blkif_dev *bd)
{
	struct blkif_dev *w;
	SHARE_LOCKED();

	if (!bd->claim)
		return;
	list_del(&bd->claim->link);
	free(bd->claim);
	bd->claim = NULL;
	/*
	 * Devices waiting for an image try again from their loop (not from inside a teardown,
	 * and maybe on another thread). Not list_for_each_entry: the list head cast to a struct
	 * blkif_dev would be misaligned.
	 */
	for (struct list_head *n = waiters.next; n != &waiters; n = n->next) {
		w = list_entry(n, struct blkif_dev, share_link);
		if (w->share_wake)
			bk_async_send(w->share_wake);
	}
}
