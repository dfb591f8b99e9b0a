// SPDX-License-Identifier: MIT
/* Shared by the engine tests: see test-engine-common.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "test-engine-common.h"
#include "util/log.h"

const struct engine_suite_server *engine_suite_server;

#define FILE_SIZE (16u << 20)
#define DEPTH 64u
#define SLOT (16u << 10)
#define PAGE 4096u

static void tio_done(struct bk_io *io, int res)
{
	struct tio *t = (struct tio *)io;

	t->res = res;
	t->done = true;
	t->ndone++;
	if (t->pending)
		(*t->pending)--;
}

void tio_init(struct tio *t, unsigned int *pending, enum bk_io_op op, uint64_t offset,
	      unsigned int iovcnt, int buf_index)
{
	uint64_t len = 0;

	for (unsigned int i = 0; i < iovcnt; i++)
		len += t->iov[i].iov_len;
	t->io = (struct bk_io){
		.op = (uint8_t)op,
		.iovcnt = (uint16_t)iovcnt,
		.buf_index = (int16_t)buf_index,
		.offset = offset,
		.len = len,
		.iov = iovcnt ? t->iov : NULL,
		.done = tio_done,
	};
	t->res = -1000;
	t->done = false;
	t->ndone = 0;
	t->pending = pending;
}

int tio_queue(struct bk_engine *e, struct tio *t)
{
	int r = bk_engine_queue(e, &t->io);

	if (r == 0 && t->pending)
		(*t->pending)++;
	return r;
}

bool pump(struct bk_loop *loop, const unsigned int *pending, unsigned int max_turns)
{
	for (unsigned int i = 0; i < max_turns && *pending; i++)
		bk_loop_run_once(loop, 100);
	return *pending == 0;
}

int make_temp_file(const char *dir, uint64_t size, char *path, size_t path_len)
{
	int fd;

	snprintf(path, path_len, "%s/bk-engine-test.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int r = -errno;

		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

bool fs_punches_holes(const char *path)
{
	static const long known[] = { 0xEF53, 0x58465342, 0x9123683E, 0x01021994 };
	struct statfs sfs;

	if (statfs(path, &sfs) < 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if ((long)sfs.f_type == known[i])
			return true;
	return false;
}

uint8_t pattern_byte(uint64_t file_off, uint32_t seed)
{
	uint64_t x = (file_off + 1) * 0x9E3779B97F4A7C15ull ^ seed;

	return (uint8_t)(x >> 29);
}

int loopdev_attach(const char *file, const char *args, char *dev, size_t dev_len)
{
	char cmd[512];
	FILE *f;
	size_t n;

	if (geteuid() != 0 || access("/sbin/losetup", X_OK) != 0)
		return -ENOTSUP;
	snprintf(cmd, sizeof(cmd), "/sbin/losetup --find --show %s '%s' 2>/dev/null", args, file);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	if (!fgets(dev, (int)dev_len, f)) {
		pclose(f);
		return -ENODEV;
	}
	if (pclose(f) != 0)
		return -ENODEV;
	n = strlen(dev);
	while (n && (dev[n - 1] == '\n' || dev[n - 1] == ' '))
		dev[--n] = 0;
	return strncmp(dev, "/dev/loop", 9) == 0 ? 0 : -ENODEV;
}

void loopdev_detach(const char *dev)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "/sbin/losetup -d '%s'", dev);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not detach %s\n", dev);
}

/* Lay io @i out over @pool: contiguous pages, or in reverse order (not contiguous). */
static void layout(struct tio *t, uint8_t *pool, unsigned int i, unsigned int npages, bool reverse)
{
	for (unsigned int p = 0; p < npages; p++) {
		unsigned int slot_page = reverse ? npages - 1 - p : p;

		t->iov[p].iov_base = pool + (size_t)i * SLOT + (size_t)slot_page * PAGE;
		t->iov[p].iov_len = PAGE;
	}
}

struct ctx {
	const char *engine;
	const char *options;
	const char *dir;
	char path[256];
	struct bk_loop *loop;
	struct bk_store *store;
	struct bk_engine *e;
	uint8_t *wpool, *rpool; /* registered as buffers 0 and 1 */
	bool registered;
};

/* 64 random-offset writes of 4..16 KiB in one batch, then reads, with data checks. */
static void test_random_rw(struct ctx *c, uint32_t seed)
{
	static struct tio w[DEPTH], r[DEPTH], extra;
	unsigned int slots[FILE_SIZE / SLOT / 2], pending = 0, npages[DEPTH];
	unsigned int rnd = seed;
	int rfd = open(c->path, O_RDONLY | O_CLOEXEC);
	uint8_t *chk = malloc(SLOT);

	CHECK(rfd >= 0 && chk);
	/* Distinct slots in the first half of the file, in random order. */
	for (unsigned int i = 0; i < ARRAY_SIZE(slots); i++)
		slots[i] = i;
	for (unsigned int i = ARRAY_SIZE(slots) - 1; i > 0; i--) {
		unsigned int j = (unsigned int)rand_r(&rnd) % (i + 1), tmp = slots[i];

		slots[i] = slots[j];
		slots[j] = tmp;
	}
	for (unsigned int i = 0; i < DEPTH; i++) {
		uint64_t off = (uint64_t)slots[i] * SLOT;
		/* Even: registered and contiguous; 2 mod 4: registered index but scattered. */
		bool reverse = i % 2 == 1 || i % 4 == 2;
		int bi = c->registered && i % 2 == 0 ? 0 : -1;

		npages[i] = 1 + (unsigned int)rand_r(&rnd) % 4;
		layout(&w[i], c->wpool, i, npages[i], reverse);
		for (unsigned int p = 0; p < npages[i]; p++)
			for (unsigned int b = 0; b < PAGE; b++)
				((uint8_t *)w[i].iov[p].iov_base)[b] =
					pattern_byte(off + (uint64_t)p * PAGE + b, seed);
		tio_init(&w[i], &pending, BK_IO_WRITE, off, npages[i], bi);
		CHECK(tio_queue(c->e, &w[i]) == 0);
	}
	/* The engine is at depth now. */
	extra.iov[0] = (struct iovec){ c->rpool, PAGE };
	tio_init(&extra, &pending, BK_IO_READ, 0, 1, -1);
	CHECK(tio_queue(c->e, &extra) == -EAGAIN);
	CHECK(bk_engine_inflight(c->e) == DEPTH);
	/* Nothing completes inside queue(). */
	for (unsigned int i = 0; i < DEPTH; i++)
		CHECK(!w[i].done);
	CHECK(pump(c->loop, &pending, 600));
	CHECK(bk_engine_inflight(c->e) == 0);
	for (unsigned int i = 0; i < DEPTH; i++) {
		CHECK(w[i].ndone == 1);
		CHECK(w[i].res == (int)(npages[i] * PAGE));
	}

	/* What reached the file, read independently. */
	for (unsigned int i = 0; i < DEPTH && rfd >= 0 && chk; i++) {
		uint64_t off = w[i].io.offset;
		size_t len = npages[i] * PAGE;
		bool ok = pread(rfd, chk, len, (off_t)off) == (ssize_t)len;

		for (size_t b = 0; ok && b < len; b++)
			ok = chk[b] == pattern_byte(off + b, seed);
		CHECK(ok);
	}

	/* Read back through the engine into other buffers, with the same layouts. */
	memset(c->rpool, 0, DEPTH * SLOT);
	for (unsigned int i = 0; i < DEPTH; i++) {
		bool reverse = i % 2 == 1 || i % 4 == 2;
		int bi = c->registered && i % 2 == 0 ? 1 : -1;

		layout(&r[i], c->rpool, i, npages[i], reverse);
		tio_init(&r[i], &pending, BK_IO_READ, w[i].io.offset, npages[i], bi);
		CHECK(tio_queue(c->e, &r[i]) == 0);
	}
	CHECK(pump(c->loop, &pending, 600));
	for (unsigned int i = 0; i < DEPTH; i++) {
		bool ok = r[i].ndone == 1 && r[i].res == (int)(npages[i] * PAGE);

		for (unsigned int p = 0; ok && p < npages[i]; p++)
			for (unsigned int b = 0; ok && b < PAGE; b++)
				ok = ((uint8_t *)r[i].iov[p].iov_base)[b] ==
				     pattern_byte(w[i].io.offset + (uint64_t)p * PAGE + b, seed);
		CHECK(ok);
	}
	free(chk);
	if (rfd >= 0)
		close(rfd);
}

static void test_flush(struct ctx *c)
{
	struct tio f;
	unsigned int pending = 0;

	tio_init(&f, &pending, BK_IO_FLUSH, 0, 0, -1);
	CHECK(tio_queue(c->e, &f) == 0);
	CHECK(pump(c->loop, &pending, 600));
	CHECK(f.ndone == 1 && f.res == 0);
}

/* A discard punches a hole: fewer blocks, SEEK_HOLE finds it, and it reads as zeros. */
static void test_discard(struct ctx *c)
{
	const uint64_t off = 8u << 20, len = 1u << 20;
	struct tio d, rd;
	unsigned int pending = 0;
	int fd = open(c->path, O_RDWR | O_CLOEXEC);
	uint8_t *buf = malloc(len);
	struct stat before, after;
	bool zero = true;

	CHECK(fd >= 0 && buf);
	if (fd < 0 || !buf)
		goto out;
	if (!fs_punches_holes(c->path)) {
		fprintf(stderr, "%s: filesystem of %s may not punch holes: discard skipped\n",
			c->engine, c->dir);
		goto out;
	}
	memset(buf, 0xa5, len);
	CHECK(pwrite(fd, buf, len, (off_t)off) == (ssize_t)len);
	CHECK(fsync(fd) == 0);
	CHECK(fstat(fd, &before) == 0);
	CHECK(lseek(fd, (off_t)off, SEEK_HOLE) >= (off_t)(off + len));
	CHECK(c->store->discard);

	tio_init(&d, &pending, BK_IO_DISCARD, off, 0, -1);
	d.io.len = len;
	CHECK(tio_queue(c->e, &d) == 0);
	CHECK(pump(c->loop, &pending, 600));
	CHECK(d.ndone == 1 && d.res == 0);
	CHECK(fstat(fd, &after) == 0);
	CHECK(before.st_blocks - after.st_blocks >= (blkcnt_t)(len / 512));
	CHECK(lseek(fd, (off_t)off, SEEK_HOLE) == (off_t)off);

	rd.iov[0] = (struct iovec){ c->rpool, PAGE };
	memset(c->rpool, 0xff, PAGE);
	tio_init(&rd, &pending, BK_IO_READ, off + len / 2, 1, -1);
	CHECK(tio_queue(c->e, &rd) == 0);
	CHECK(pump(c->loop, &pending, 600));
	CHECK(rd.res == (int)PAGE);
	for (unsigned int b = 0; b < PAGE; b++)
		zero = zero && c->rpool[b] == 0;
	CHECK(zero);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
}

/* A read crossing the end of the file comes back short, is resumed, and then fails. */
static void test_past_eof(struct ctx *c)
{
	struct tio t;
	unsigned int pending = 0;

	t.iov[0] = (struct iovec){ c->rpool, PAGE };
	t.iov[1] = (struct iovec){ c->rpool + 2 * PAGE, PAGE };
	tio_init(&t, &pending, BK_IO_READ, FILE_SIZE - PAGE, 2, -1);
	CHECK(tio_queue(c->e, &t) == 0);
	CHECK(pump(c->loop, &pending, 600));
	CHECK(t.ndone == 1 && t.res == -EIO);
}

/* A read-only store reads, and refuses writes and discards with EBADF. */
static void test_readonly(struct ctx *c)
{
	struct bk_store_params sp = { .readonly = true, .want_direct = c->store->direct };
	struct bk_engine_params ep = { .name = "test ro", .depth = 4, .options = c->options };
	struct bk_store *ro = NULL;
	struct bk_engine *e = NULL;
	struct tio w, d, r;
	unsigned int pending = 0;

	CHECK(bk_store_open(c->path, &sp, &ro) == 0);
	if (!ro)
		return;
	CHECK(ro->readonly && !ro->discard);
	CHECK(bk_engine_open(c->engine, c->loop, ro, &ep, &e) == 0);
	if (!e)
		goto out;
	w.iov[0] = (struct iovec){ c->wpool, PAGE };
	tio_init(&w, &pending, BK_IO_WRITE, 0, 1, -1);
	tio_init(&d, &pending, BK_IO_DISCARD, 0, 0, -1);
	d.io.len = PAGE;
	r.iov[0] = (struct iovec){ c->rpool, PAGE };
	tio_init(&r, &pending, BK_IO_READ, 0, 1, -1);
	CHECK(tio_queue(e, &w) == 0);
	CHECK(tio_queue(e, &d) == 0);
	CHECK(tio_queue(e, &r) == 0);
	CHECK(pump(c->loop, &pending, 600));
	CHECK(w.ndone == 1 && w.res == -EBADF);
	CHECK(d.ndone == 1 && d.res == -EBADF);
	CHECK(r.ndone == 1 && r.res == (int)PAGE);
out:
	bk_engine_close(e);
	bk_store_close(ro);
}

struct closer {
	struct tio t;
	struct bk_engine **e;
	unsigned int *left;
};

static void closer_done(struct bk_io *io, int res)
{
	struct closer *cl = (struct closer *)io;

	cl->t.res = res;
	cl->t.ndone++;
	if (--*cl->left == 0) {
		bk_engine_close(*cl->e);
		*cl->e = NULL;
	}
}

/* The last done() closes the engine from inside the engine's own completion callback. */
static void test_close_in_done(struct ctx *c)
{
	struct bk_engine_params ep = { .name = "test close", .depth = 4, .options = c->options };
	struct bk_engine *e = NULL;
	struct closer cl[4];
	unsigned int left = 0;

	CHECK(bk_engine_open(c->engine, c->loop, c->store, &ep, &e) == 0);
	if (!e)
		return;
	for (unsigned int i = 0; i < 4; i++) {
		cl[i].t.iov[0] = (struct iovec){ c->rpool + (size_t)i * PAGE, PAGE };
		tio_init(&cl[i].t, NULL, BK_IO_READ, (uint64_t)i * PAGE, 1, -1);
		cl[i].t.io.done = closer_done;
		cl[i].e = &e;
		cl[i].left = &left;
		CHECK(bk_engine_queue(e, &cl[i].t.io) == 0);
		left++;
	}
	for (unsigned int i = 0; i < 600 && left; i++)
		bk_loop_run_once(c->loop, 100);
	CHECK(left == 0 && e == NULL);
	for (unsigned int i = 0; i < 4; i++)
		CHECK(cl[i].t.ndone == 1 && cl[i].t.res == (int)PAGE);
	bk_engine_close(e);
}

static int suite_on_dir(const char *engine, const char *options, const char *dir, bool want_direct)
{
	struct bk_store_params sp = { .want_direct = want_direct };
	struct bk_engine_params ep = { .name = "test q0", .depth = DEPTH, .options = options };
	struct ctx c = { .engine = engine, .options = options, .dir = dir };
	unsigned int base_objects;
	int fd, r, before = bk_test_failures;
	char server_opts[512];

	fd = make_temp_file(dir, FILE_SIZE, c.path, sizeof(c.path));
	if (fd < 0) {
		fprintf(stderr, "%s: cannot create a file in %s: %s (skipped)\n", engine, dir,
			strerror(-fd));
		return 77;
	}
	close(fd);
	if (engine_suite_server) {
		r = engine_suite_server->start(c.path, options, server_opts, sizeof(server_opts));
		CHECK(r == 0);
		if (r < 0) {
			unlink(c.path);
			return 0;
		}
		c.options = ep.options = server_opts;
	}
	CHECK(bk_loop_new(&c.loop) == 0);
	base_objects = bk_loop_nr_objects(c.loop);
	CHECK(bk_store_open(c.path, &sp, &c.store) == 0);
	if (!c.store)
		goto out;
	fprintf(stderr, "%s on %s: %s\n", engine, dir, c.store->direct ? "O_DIRECT" : "buffered");
	r = bk_engine_open(engine, c.loop, c.store, &ep, &c.e);
	CHECK(r == 0);
	if (r < 0)
		goto out;
	c.wpool = aligned_alloc(PAGE, DEPTH * SLOT);
	c.rpool = aligned_alloc(PAGE, DEPTH * SLOT);
	CHECK(c.wpool && c.rpool);
	if (!c.wpool || !c.rpool)
		goto out;

	test_random_rw(&c, 1);
	if (c.e->ops->register_buffers) {
		struct iovec bufs[2] = { { c.wpool, DEPTH * SLOT }, { c.rpool, DEPTH * SLOT } };

		CHECK(c.e->ops->register_buffers(c.e, bufs, 2) == 0);
		c.registered = true;
		test_random_rw(&c, 2);
	}
	test_flush(&c);
	test_discard(&c);
	test_past_eof(&c);
	test_readonly(&c);
	test_close_in_done(&c);
out:
	bk_engine_close(c.e);
	bk_store_close(c.store);
	if (c.loop) {
		CHECK(bk_loop_nr_objects(c.loop) == base_objects);
		bk_loop_free(c.loop);
	}
	free(c.wpool);
	free(c.rpool);
	if (engine_suite_server)
		engine_suite_server->stop();
	unlink(c.path);
	fprintf(stderr, "%s on %s: %s\n", engine, dir,
		bk_test_failures == before ? "ok" : "FAILED");
	return 0;
}

/* On a loop device: write, read back, discard through the blocking-work thread. */
static void suite_on_blkdev(const char *engine, const char *options)
{
	struct bk_store_params sp = { .want_direct = true };
	struct bk_engine_params ep = { .name = "test blk", .depth = 8, .options = options };
	char path[256], dev[64], server_opts[512];
	bool server = false;
	struct bk_loop *loop = NULL;
	struct bk_store *s = NULL;
	struct bk_engine *e = NULL;
	struct tio w, r, d;
	unsigned int pending = 0;
	uint8_t *buf = aligned_alloc(PAGE, 2 * SLOT);
	bool ok = true;
	int fd = make_temp_file("/var/tmp", FILE_SIZE, path, sizeof(path));

	if (fd < 0 || !buf) {
		free(buf);
		return;
	}
	close(fd);
	if (loopdev_attach(path, "", dev, sizeof(dev)) < 0) {
		fprintf(stderr, "%s: no loop device here, block-device part skipped\n", engine);
		goto out_file;
	}
	if (engine_suite_server) {
		if (engine_suite_server->start(dev, options, server_opts, sizeof(server_opts)) <
		    0) {
			fprintf(stderr, "%s: no server on %s, block-device part skipped\n", engine,
				dev);
			goto out;
		}
		server = true;
		ep.options = server_opts;
	}
	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_store_open(dev, &sp, &s) == 0);
	if (!s)
		goto out;
	CHECK(s->is_blkdev && s->size == FILE_SIZE);
	fprintf(stderr, "%s on %s: block device, discard %s\n", engine, dev,
		s->discard ? "yes" : "no");
	CHECK(bk_engine_open(engine, loop, s, &ep, &e) == 0);
	if (!e)
		goto out;
	for (unsigned int b = 0; b < SLOT; b++)
		buf[b] = pattern_byte(b, 7);
	w.iov[0] = (struct iovec){ buf, SLOT };
	tio_init(&w, &pending, BK_IO_WRITE, 0, 1, -1);
	CHECK(tio_queue(e, &w) == 0);
	CHECK(pump(loop, &pending, 600));
	CHECK(w.res == (int)SLOT);
	r.iov[0] = (struct iovec){ buf + SLOT, SLOT };
	tio_init(&r, &pending, BK_IO_READ, 0, 1, -1);
	CHECK(tio_queue(e, &r) == 0);
	CHECK(pump(loop, &pending, 600));
	CHECK(r.res == (int)SLOT && memcmp(buf, buf + SLOT, SLOT) == 0);
	if (s->discard) {
		tio_init(&d, &pending, BK_IO_DISCARD, 0, 0, -1);
		d.io.len = SLOT;
		CHECK(tio_queue(e, &d) == 0);
		CHECK(pump(loop, &pending, 600));
		CHECK(d.ndone == 1 && d.res == 0);
		/* A loop device discards by punching a hole in its file: zeros come back. */
		tio_init(&r, &pending, BK_IO_READ, 0, 1, -1);
		CHECK(tio_queue(e, &r) == 0);
		CHECK(pump(loop, &pending, 600));
		for (unsigned int b = 0; b < SLOT; b++)
			ok = ok && buf[SLOT + b] == 0;
		CHECK(r.res == (int)SLOT && ok);
	}
out:
	bk_engine_close(e);
	bk_store_close(s);
	bk_loop_free(loop);
	if (server)
		engine_suite_server->stop();
	loopdev_detach(dev);
out_file:
	unlink(path);
	free(buf);
}

int run_engine_suite(const char *engine, const char *options)
{
	int ran = 0;

	if (!bk_engine_find(engine)) {
		fprintf(stderr, "%s: not built\n", engine);
		return 77;
	}
	bk_log_set_level(BK_LOG_WARNING);
	fprintf(stderr, "== %s, options \"%s\"\n", engine, options ? options : "");
	ran += suite_on_dir(engine, options, "/var/tmp", true) == 0;
	ran += suite_on_dir(engine, options, "/dev/shm", false) == 0;
	if (!ran)
		return 77;
	suite_on_blkdev(engine, options);
	return bk_test_failures ? 1 : 0;
}
