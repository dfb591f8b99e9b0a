// SPDX-License-Identifier: MIT
/*
 * Backing stores: open a regular file (usually a sparse raw image) or a block device, and probe
 * what a guest is told about it: size, block sizes, discard support.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>

#include "engine.h"
#include "util/log.h"
#include "util/macros.h"

/* Filesystems whose fallocate(FALLOC_FL_PUNCH_HOLE) is known to work. */
static const long punch_hole_fs[] = {
	0xEF53,	    /* ext4 (and ext3 mounted by the ext4 driver) */
	0x58465342, /* xfs */
	0x9123683E, /* btrfs */
	0x01021994, /* tmpfs */
	0xF2F52010, /* f2fs */
	0x2FC12FC1, /* zfs */
	0x7461636f, /* ocfs2 */
	0x01161970, /* gfs2 */
};

static bool fs_punches_holes(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(punch_hole_fs); i++)
		if ((long)sfs.f_type == punch_hole_fs[i])
			return true;
	return false;
}

/* Read one unsigned number from a sysfs file; -errno if absent or unparsable. */
static int read_sysfs_u64(const char *path, uint64_t *ret)
{
	char buf[64], *end;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	unsigned long long v;

	if (fd < 0)
		return neg_errno();
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? neg_errno() : -ENODATA;
	buf[n] = 0;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	*ret = v;
	return 0;
}

/*
 * A queue attribute of the disk behind @st_rdev. Partitions have no queue/ directory of their
 * own; their parent disk's applies.
 */
static int read_queue_attr(dev_t rdev, const char *attr, uint64_t *ret)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/%s", major(rdev), minor(rdev),
		 attr);
	if (read_sysfs_u64(path, ret) == 0)
		return 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/%s", major(rdev), minor(rdev),
		 attr);
	return read_sysfs_u64(path, ret);
}

static int probe_blkdev(struct bk_store *s, const struct stat *st)
{
	uint64_t size, v;
	int lbs = 0;
	unsigned int pbs = 0;
	char path[128];

	if (ioctl(s->fd, BLKGETSIZE64, &size) < 0)
		return log_err_errno(neg_errno(), "%s: BLKGETSIZE64 failed: %m", s->path);
	if (ioctl(s->fd, BLKSSZGET, &lbs) < 0 || lbs <= 0)
		lbs = 512;
	if (ioctl(s->fd, BLKPBSZGET, &pbs) < 0 || pbs == 0)
		pbs = (unsigned int)lbs;
	s->size = size;
	s->logical_block = (uint32_t)lbs;
	s->physical_block = BK_MAX(pbs, (unsigned int)lbs);

	/* discard_max_bytes is 0 when the device cannot discard at all. */
	if (!s->readonly && read_queue_attr(st->st_rdev, "discard_max_bytes", &v) == 0 && v > 0) {
		s->discard = true;
		if (read_queue_attr(st->st_rdev, "discard_granularity", &v) == 0 && v > 0 &&
		    v <= UINT32_MAX)
			s->discard_granularity = (uint32_t)v;
		else
			s->discard_granularity = s->logical_block;
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/discard_alignment",
			 major(st->st_rdev), minor(st->st_rdev));
		if (read_sysfs_u64(path, &v) == 0 && v <= UINT32_MAX)
			s->discard_alignment = (uint32_t)v;
	}
	return 0;
}

static void probe_file(struct bk_store *s, const struct stat *st)
{
	uint32_t blksize =
		st->st_blksize > 0 && st->st_blksize <= (1 << 20) ? (uint32_t)st->st_blksize : 4096;

	s->size = (uint64_t)st->st_size;
	s->logical_block = 512;
#ifdef STATX_DIOALIGN
	/* O_DIRECT needs offsets aligned to what the filesystem says, which may exceed 512. */
	if (s->direct) {
		struct statx stx;

		if (statx(s->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
		    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align > 512 &&
		    stx.stx_dio_offset_align <= 4096)
			s->logical_block = stx.stx_dio_offset_align;
	}
#endif
	s->physical_block = BK_MAX(blksize, s->logical_block);
	/*
	 * There is no side-effect-free probe for hole punching, so trust the filesystem type.
	 * Granularity is the filesystem block: smaller punches only zero.
	 */
	if (!s->readonly && fs_punches_holes(s->fd)) {
		s->discard = true;
		s->discard_granularity = blksize;
		s->discard_alignment = 0;
	}
}

int bk_store_open(const char *path, const struct bk_store_params *p, struct bk_store **ret)
{
	static const struct bk_store_params defaults = { .want_direct = true };
	_cleanup_free_ struct bk_store *s = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int flags, fl, r;

	if (!path || !*path || !ret)
		return -EINVAL;
	if (!p)
		p = &defaults;
	flags = (p->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	/*
	 * At open rather than RWF_DSYNC per write: the kernel then applies it to every write
	 * whatever issues it (io_uring, libaio, a worker thread), with nothing for each engine to
	 * pass and get wrong; blkif has no per-request FUA that would need the finer grain.
	 */
	if (p->dsync)
		flags |= O_DSYNC;
	if (p->want_direct) {
		fd = open(path, flags | O_DIRECT);
		/* tmpfs and some FUSE filesystems refuse O_DIRECT with EINVAL. */
		if (fd < 0 && errno != EINVAL)
			return log_err_errno(neg_errno(), "cannot open %s: %m", path);
	}
	if (fd < 0) {
		fd = open(path, flags);
		if (fd < 0)
			return log_err_errno(neg_errno(), "cannot open %s: %m", path);
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return log_err_errno(neg_errno(), "cannot read the flags of %s: %m", path);
	/* A write answered before it is durable would break cache=writethrough's promise. */
	if (p->dsync && !(fl & O_DSYNC)) {
		log_err("cannot open %s with O_DSYNC", path);
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0)
		return log_err_errno(neg_errno(), "cannot stat %s: %m", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		log_err("cannot use %s: not a regular file or block device", path);
		return -EINVAL;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	s->fd = fd;
	s->readonly = p->readonly;
	s->direct = (fl & O_DIRECT) != 0;
	s->dsync = (fl & O_DSYNC) != 0;
	s->is_blkdev = S_ISBLK(st.st_mode);
	if (s->is_blkdev) {
		r = probe_blkdev(s, &st);
		if (r < 0) {
			free(s->path);
			return r;
		}
	} else {
		probe_file(s, &st);
	}
	log_debug("%s: %s, %" PRIu64 " bytes, blocks %u/%u, %s%s%s, discard %s (granularity %u)",
		  path, s->is_blkdev ? "block device" : "file", s->size, s->logical_block,
		  s->physical_block, s->direct ? "direct" : "buffered", s->dsync ? ", dsync" : "",
		  s->readonly ? ", read-only" : "", s->discard ? "yes" : "no",
		  s->discard_granularity);
	TAKE_FD(fd);
	*ret = TAKE_PTR(s);
	return 0;
}

void bk_store_close(struct bk_store *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s);
}
