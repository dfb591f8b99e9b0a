// SPDX-License-Identifier: MIT
/*
 * Backing-store probing: sizes, block sizes, O_DIRECT and its fallback, O_DSYNC, discard
 * support, read-only opens, errors that name the path; on loop devices when the machine has them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "test-engine-common.h"
#include "util/log.h"

#define SIZE ((3u << 20) + 512u)

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* Run bk_store_open with stderr captured into @log. */
static int open_capture(const char *path, const struct bk_store_params *p, struct bk_store **s,
			char *log, size_t log_len)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO), r;
	size_t n = 0;

	log[0] = 0;
	if (!tmp || saved < 0) {
		if (tmp)
			fclose(tmp);
		return bk_store_open(path, p, s);
	}
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	r = bk_store_open(path, p, s);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(log, 1, log_len - 1, tmp);
	log[n] = 0;
	fclose(tmp);
	return r;
}

static void test_errors(void)
{
	struct bk_store *s = NULL;
	char log[512];

	CHECK(open_capture("/nonexistent/disk.img", NULL, &s, log, sizeof(log)) == -ENOENT);
	CHECK(!s);
	CHECK(strstr(log, "cannot open /nonexistent/disk.img: No such file or directory"));
	CHECK(open_capture("/var/tmp", NULL, &s, log, sizeof(log)) < 0 && !s);
	CHECK(strstr(log, "/var/tmp") != NULL);
	CHECK(open_capture("/dev/null", NULL, &s, log, sizeof(log)) == -EINVAL && !s);
	CHECK(strstr(log, "/dev/null: not a regular file or block device") != NULL);
	CHECK(bk_store_open(NULL, NULL, &s) == -EINVAL && !s);
	CHECK(bk_store_open("", NULL, &s) == -EINVAL && !s);
	bk_store_close(NULL);
}

static void test_file(const char *dir, bool want_direct)
{
	struct bk_store_params rw = { .want_direct = want_direct };
	struct bk_store_params ro = { .readonly = true, .want_direct = want_direct };
	struct bk_store_params sync = { .want_direct = want_direct, .dsync = true };
	struct bk_store *s = NULL;
	char path[256];
	struct stat st;
	int fd = make_temp_file(dir, SIZE, path, sizeof(path));

	if (fd < 0) {
		fprintf(stderr, "no file in %s: %s (skipped)\n", dir, strerror(-fd));
		return;
	}
	CHECK(fstat(fd, &st) == 0);
	close(fd);

	CHECK(bk_store_open(path, &rw, &s) == 0);
	if (s) {
		fprintf(stderr, "%s: size %llu blocks %u/%u %s discard %d/%u\n", path,
			(unsigned long long)s->size, s->logical_block, s->physical_block,
			s->direct ? "direct" : "buffered", s->discard, s->discard_granularity);
		CHECK(strcmp(s->path, path) == 0);
		CHECK(!s->is_blkdev && !s->readonly);
		CHECK(s->size == SIZE);
		CHECK(pow2(s->logical_block) && s->logical_block >= 512);
		CHECK(pow2(s->physical_block) && s->physical_block >= s->logical_block);
		CHECK(s->physical_block == (uint32_t)st.st_blksize);
		if (!want_direct)
			CHECK(!s->direct);
		CHECK(((fcntl(s->fd, F_GETFL) & O_DIRECT) != 0) == s->direct);
		CHECK(!(fcntl(s->fd, F_GETFL) & O_DSYNC) && !s->dsync);
		CHECK((fcntl(s->fd, F_GETFL) & O_ACCMODE) == O_RDWR);
		CHECK((fcntl(s->fd, F_GETFD) & FD_CLOEXEC) != 0);
		if (fs_punches_holes(path)) {
			CHECK(s->discard);
			CHECK(s->discard_granularity == (uint32_t)st.st_blksize);
		}
		bk_store_close(s);
		s = NULL;
	}

	CHECK(bk_store_open(path, &ro, &s) == 0);
	if (s) {
		CHECK(s->readonly && !s->discard);
		CHECK((fcntl(s->fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
		CHECK(s->size == SIZE);
		bk_store_close(s);
		s = NULL;
	}

	/* cache=writethrough: every write durable when it completes (O_DSYNC). */
	CHECK(bk_store_open(path, &sync, &s) == 0);
	if (s) {
		CHECK(s->dsync && (fcntl(s->fd, F_GETFL) & O_DSYNC));
		CHECK(((fcntl(s->fd, F_GETFL) & O_DIRECT) != 0) == s->direct);
		CHECK((fcntl(s->fd, F_GETFL) & O_ACCMODE) == O_RDWR);
		bk_store_close(s);
	}
	unlink(path);
}

/* A read-only, or otherwise unwritable, file: read-write open fails naming it. */
static void test_unwritable(void)
{
	char path[256], log[512];
	struct bk_store_params rw = { .want_direct = true };
	struct bk_store *s = NULL;
	int fd = make_temp_file("/var/tmp", 4096, path, sizeof(path));

	if (fd < 0)
		return;
	close(fd);
	chmod(path, 0400);
	if (geteuid() != 0) {
		CHECK(open_capture(path, &rw, &s, log, sizeof(log)) == -EACCES && !s);
		CHECK(strstr(log, "Permission denied") && strstr(log, path));
	}
	unlink(path);
	/* root bypasses mode bits, but sysfs refuses to open a read-only attribute for writing. */
	if (access("/sys/kernel/uevent_seqnum", R_OK) == 0) {
		CHECK(open_capture("/sys/kernel/uevent_seqnum", &rw, &s, log, sizeof(log)) ==
			      -EACCES &&
		      !s);
		CHECK(strstr(log, "cannot open /sys/kernel/uevent_seqnum: Permission denied"));
	}
}

static void test_blkdev(const char *args, uint32_t want_lbs)
{
	struct bk_store_params rw = { .want_direct = true };
	struct bk_store_params ro = { .readonly = true, .want_direct = true };
	struct bk_store *s = NULL;
	char path[256], dev[64], sys[128];
	struct stat st;
	unsigned long long max = 0;
	FILE *f;
	int fd = make_temp_file("/var/tmp", 8u << 20, path, sizeof(path));

	if (fd < 0)
		return;
	close(fd);
	if (loopdev_attach(path, args, dev, sizeof(dev)) < 0) {
		fprintf(stderr, "no loop device (%s): block-device part skipped\n", args);
		unlink(path);
		return;
	}
	CHECK(bk_store_open(dev, &rw, &s) == 0);
	if (s) {
		fprintf(stderr, "%s: size %llu blocks %u/%u %s discard %d/%u/%u\n", dev,
			(unsigned long long)s->size, s->logical_block, s->physical_block,
			s->direct ? "direct" : "buffered", s->discard, s->discard_granularity,
			s->discard_alignment);
		CHECK(s->is_blkdev && s->direct);
		CHECK(s->size == 8u << 20);
		CHECK(s->logical_block == want_lbs);
		CHECK(pow2(s->physical_block) && s->physical_block >= s->logical_block);
		/* What sysfs says about discard, read here independently. */
		CHECK(stat(dev, &st) == 0);
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/queue/discard_max_bytes",
			 major(st.st_rdev), minor(st.st_rdev));
		f = fopen(sys, "r");
		if (f) {
			CHECK(fscanf(f, "%llu", &max) == 1);
			fclose(f);
			CHECK(s->discard == (max > 0));
		}
		if (s->discard)
			CHECK(pow2(s->discard_granularity) &&
			      s->discard_granularity >= s->logical_block);
		bk_store_close(s);
		s = NULL;
	}
	CHECK(bk_store_open(dev, &ro, &s) == 0);
	if (s) {
		CHECK(s->is_blkdev && s->readonly && !s->discard);
		CHECK((fcntl(s->fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
		bk_store_close(s);
	}
	loopdev_detach(dev);
	unlink(path);
}

int main(void)
{
	bk_log_set_level(BK_LOG_WARNING);
	test_errors();
	test_file("/var/tmp", true);
	test_file("/dev/shm", false);
	test_file("/dev/shm", true);
	test_unwritable();
	test_blkdev("", 512);
	test_blkdev("--sector-size 4096", 4096);
	return bk_test_failures ? 1 : 0;
}
