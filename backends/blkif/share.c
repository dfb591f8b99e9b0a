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
 * The rules are the block script's (check_sharing): read-write is refused while another guest
 * has the image in any mode; read-only is refused while another guest has it read-write.
 * The same guest may open its image twice, and a forced claim (mode "w!", blanket-share=on)
 * is never refused and never refuses a read-only claim.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

struct blkif_claim {
	struct list_head link;
	bool blk;
	dev_t dev; /* st_rdev of a block device, st_dev of a file */
	ino_t ino; /* files only */
	bool rw;
	bool forced;
	const struct blkif_dev *bd;
};

/* The daemon is one thread: every device's claims in one list. */
static struct list_head claims = LIST_HEAD_INIT(claims);

static bool same_image(const struct blkif_claim *a, const struct blkif_claim *b)
{
	return a->blk == b->blk && a->dev == b->dev && (a->blk || a->ino == b->ino);
}

/* The claim in the way of @want, or NULL. */
static const struct blkif_claim *conflict(const struct blkif_claim *want)
{
	const struct blkif_claim *c;

	if (want->forced)
		return NULL;
	list_for_each_entry (c, &claims, link) {
		if (!same_image(c, want) || c->bd->dev->domid == want->bd->dev->domid)
			continue;
		if (want->rw || (c->rw && !c->forced))
			return c;
	}
	return NULL;
}

int blkif_claim_image(struct blkif_dev *bd, char *why, size_t len)
{
	const struct blkif_claim *other;
	struct blkif_claim *c;
	struct stat st;

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
	c->blk = S_ISBLK(st.st_mode);
	c->dev = c->blk ? st.st_rdev : st.st_dev;
	c->ino = c->blk ? 0 : st.st_ino;
	c->rw = !bd->lim.readonly;
	c->forced = bd->share && c->rw;
	c->bd = bd;
	other = conflict(c);
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
	list_add_tail(&c->link, &claims);
	bd->claim = c;
	if (c->forced)
		dev_info(bd->dev, "%s: sharing forced, not checked against other guests",
			 bd->params);
	return 0;
}

void blkif_release_image(struct blkif_dev *bd)
{
	if (!bd->claim)
		return;
	list_del(&bd->claim->link);
	free(bd->claim);
	bd->claim = NULL;
}
