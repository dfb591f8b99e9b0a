// SPDX-License-Identifier: MIT
/*
 * The fault engine fails exactly the requests its rules choose and passes the others to the
 * inner engine; delays hold requests back; bad option strings are refused naming the token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-engine-common.h"
#include "util/log.h"

#define PAGE 4096u

static int open_fault(struct bk_loop *loop, struct bk_store *s, const char *opts,
		      unsigned int depth, struct bk_engine **e)
{
	struct bk_engine_params ep = { .name = "fault q0", .depth = depth, .options = opts };

	return bk_engine_open("fault", loop, s, &ep, e);
}

/* Open with @opts, expecting -EINVAL and a log line that quotes @token. */
static void check_bad(struct bk_loop *loop, const char *opts, const char *token)
{
	struct bk_engine *e = NULL;
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO), r;
	char log[512] = "", want[128];
	size_t n;

	if (!tmp || saved < 0) {
		CHECK(false);
		return;
	}
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	r = open_fault(loop, NULL, opts, 4, &e);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(log, 1, sizeof(log) - 1, tmp);
	log[n] = 0;
	fclose(tmp);
	snprintf(want, sizeof(want), "bad option '%s'", token);
	CHECK(r == -EINVAL && !e);
	if (!strstr(log, want)) {
		fprintf(stderr, "options \"%s\": log \"%s\" lacks \"%s\"\n", opts, log, want);
		bk_test_failures++;
	}
}

static void test_bad_options(struct bk_loop *loop)
{
	check_bad(loop, "inner=null,fail=wrte", "fail=wrte");
	check_bad(loop, "inner=fault", "inner=fault");
	check_bad(loop, "inner=null,delay=5", "delay=5");
	check_bad(loop, "inner=null,delay=5ms:every=0", "delay=5ms:every=0");
	check_bad(loop, "inner=null,fail=read:offset=10-5", "fail=read:offset=10-5");
	check_bad(loop, "inner=null,fail=read:offset=10", "fail=read:offset=10");
	check_bad(loop, "inner=null,err=EFOO", "err=EFOO");
	check_bad(loop, "inner=null,fail=any:err=0", "fail=any:err=0");
	check_bad(loop, "inner=null,bogus", "bogus");
	check_bad(loop, "inner=null,fail=", "fail=");
	check_bad(loop,
		  "inner=null,fail=read,fail=read,fail=read,fail=read,fail=read,fail=read,"
		  "fail=read,fail=read,fail=write",
		  "fail=write");
}

/* Every third write fails with EIO; reads and the other writes pass through null. */
static void test_every(struct bk_loop *loop)
{
	struct bk_engine *e = NULL;
	struct tio t[12];
	unsigned int pending = 0, nw = 0;
	static uint8_t buf[PAGE];

	CHECK(open_fault(loop, NULL, "inner=null,fail=write:every=3,err=EIO", 16, &e) == 0);
	if (!e)
		return;
	CHECK(e->ops->register_buffers(e, &(struct iovec){ buf, PAGE }, 1) == 0);
	for (unsigned int i = 0; i < 12; i++) {
		t[i].iov[0] = (struct iovec){ buf, PAGE };
		tio_init(&t[i], &pending, i % 4 == 3 ? BK_IO_READ : BK_IO_WRITE, (uint64_t)i * PAGE,
			 1, -1);
		CHECK(tio_queue(e, &t[i]) == 0);
		CHECK(!t[i].done);
	}
	CHECK(bk_engine_inflight(e) == 12);
	CHECK(pump(loop, &pending, 100));
	CHECK(bk_engine_inflight(e) == 0);
	for (unsigned int i = 0; i < 12; i++) {
		bool fail = false;

		if (t[i].io.op == BK_IO_WRITE)
			fail = ++nw % 3 == 0;
		CHECK(t[i].ndone == 1);
		CHECK(t[i].res == (fail ? -EIO : (int)PAGE));
	}
	bk_engine_close(e);
}

/* after= and count=: with any ops, exactly the 3rd and 4th requests fail, with ENOSPC. */
static void test_after_count(struct bk_loop *loop)
{
	struct bk_engine *e = NULL;
	struct tio t[8];
	unsigned int pending = 0;

	CHECK(open_fault(loop, NULL, "inner=null,err=ENOSPC,fail=any:after=2:count=2", 8, &e) == 0);
	if (!e)
		return;
	for (unsigned int i = 0; i < 8; i++) {
		tio_init(&t[i], &pending, BK_IO_FLUSH, 0, 0, -1);
		CHECK(tio_queue(e, &t[i]) == 0);
	}
	CHECK(pump(loop, &pending, 100));
	for (unsigned int i = 0; i < 8; i++)
		CHECK(t[i].ndone == 1 && t[i].res == (i == 2 || i == 3 ? -ENOSPC : 0));
	bk_engine_close(e);
}

/* Over a real engine and file: reads overlapping 4096..8191 fail; the rest do real I/O. */
static void test_offset_real(struct bk_loop *loop)
{
	struct bk_store_params sp = { .want_direct = true };
	struct bk_store *s = NULL;
	struct bk_engine *e = NULL;
	struct tio w, r[4];
	unsigned int pending = 0;
	uint8_t *buf = aligned_alloc(PAGE, 6 * PAGE);
	char path[256];
	int fd = make_temp_file("/var/tmp", 1u << 20, path, sizeof(path));
	static const struct {
		uint64_t off;
		unsigned int pages;
		int res;
	} reads[4] = {
		{ 0, 1, PAGE },
		{ PAGE, 1, -ENOSPC },
		{ 2 * PAGE, 1, PAGE },
		{ 0, 2, -ENOSPC },
	};

	if (fd < 0 || !buf) {
		free(buf);
		return;
	}
	close(fd);
	CHECK(bk_store_open(path, &sp, &s) == 0);
	if (!s)
		goto out;
	/* No inner=: the default engine. */
	CHECK(open_fault(loop, s, "fail=read:offset=4096-8191:err=ENOSPC", 8, &e) == 0);
	if (!e)
		goto out;
	for (unsigned int b = 0; b < 3 * PAGE; b++)
		buf[b] = pattern_byte(b, 3);
	/* Writes to the range pass. */
	w.iov[0] = (struct iovec){ buf, 3 * PAGE };
	tio_init(&w, &pending, BK_IO_WRITE, 0, 1, -1);
	CHECK(tio_queue(e, &w) == 0);
	CHECK(pump(loop, &pending, 600));
	CHECK(w.res == (int)(3 * PAGE));
	for (unsigned int i = 0; i < 4; i++) {
		r[i].iov[0] = (struct iovec){ buf + 3 * PAGE, reads[i].pages * PAGE };
		tio_init(&r[i], &pending, BK_IO_READ, reads[i].off, 1, -1);
		memset(buf + 3 * PAGE, 0, 3 * PAGE);
		CHECK(tio_queue(e, &r[i]) == 0);
		CHECK(pump(loop, &pending, 600));
		CHECK(r[i].ndone == 1 && r[i].res == reads[i].res);
		if (reads[i].res > 0)
			CHECK(memcmp(buf + 3 * PAGE, buf + reads[i].off, PAGE) == 0);
	}
out:
	bk_engine_close(e);
	bk_store_close(s);
	unlink(path);
	free(buf);
}

static unsigned int seq;

struct otio {
	struct tio t;
	unsigned int order;
};

static void order_done(struct bk_io *io, int res)
{
	struct otio *o = (struct otio *)io;

	o->order = ++seq;
	o->t.res = res;
	o->t.ndone++;
	(*o->t.pending)--;
}

/* A delayed flush is held (counted in flight) and completes after a later write. */
static void test_delay(struct bk_loop *loop)
{
	struct bk_engine *e = NULL;
	struct otio f, w, extra;
	unsigned int pending = 0;
	static uint8_t buf[PAGE];

	CHECK(open_fault(loop, NULL, "inner=null,delay=200ms:flush", 2, &e) == 0);
	if (!e)
		return;
	tio_init(&f.t, &pending, BK_IO_FLUSH, 0, 0, -1);
	f.t.io.done = order_done;
	w.t.iov[0] = (struct iovec){ buf, PAGE };
	tio_init(&w.t, &pending, BK_IO_WRITE, 0, 1, -1);
	w.t.io.done = order_done;
	CHECK(tio_queue(e, &f.t) == 0);
	CHECK(bk_engine_inflight(e) == 1);
	CHECK(tio_queue(e, &w.t) == 0);
	/* Depth 2 counts the held request. */
	tio_init(&extra.t, &pending, BK_IO_FLUSH, 0, 0, -1);
	CHECK(tio_queue(e, &extra.t) == -EAGAIN);
	CHECK(pump(loop, &pending, 100));
	CHECK(f.t.ndone == 1 && f.t.res == 0);
	CHECK(w.t.ndone == 1 && w.t.res == (int)PAGE);
	CHECK(w.order < f.order);
	CHECK(bk_engine_inflight(e) == 0);
	bk_engine_close(e);
}

int main(void)
{
	struct bk_loop *loop;
	unsigned int base;

	bk_log_set_level(BK_LOG_WARNING);
	if (bk_loop_new(&loop) < 0)
		return 1;
	base = bk_loop_nr_objects(loop);
	test_bad_options(loop);
	test_every(loop);
	test_after_count(loop);
	test_offset_real(loop);
	test_delay(loop);
	CHECK(bk_loop_nr_objects(loop) == base);
	bk_loop_free(loop);
	return bk_test_failures ? 1 : 0;
}
