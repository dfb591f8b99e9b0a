// SPDX-License-Identifier: MIT
/*
 * iotool: the lab's small disk exerciser, built static and run inside the guests and in dom0.
 *
 * Data is a pattern derived from (seed, byte offset), so any range can be verified without
 * keeping a copy. Every command prints one line starting with "IOTOOL" and exits 0 on success.
 *
 *   iotool rw DEV OFF_MIB LEN_MIB SEED THREADS [FLUSH]
 *       random-sized chunks in random order, O_DIRECT, written then fsync, read back and
 *       verified; prints the checksum of the range. With FLUSH, each thread also fdatasyncs
 *       after every FLUSH chunks it wrote (flushes among the writes)
 *   iotool write DEV OFF_MIB LEN_MIB SEED        sequential pattern write + fsync
 *   iotool verify DEV OFF_MIB LEN_MIB SEED       check the pattern
 *   iotool sum DEV OFF_MIB LEN_MIB               checksum of the range (buffered reads)
 *   iotool trywrite DEV                          a 4 KiB O_DIRECT write at offset 0: the errno
 *   iotool discard DEV OFF_MIB LEN_MIB           BLKDISCARD
 *   iotool zero DEV OFF_MIB LEN_MIB              check the range reads as zeroes
 *   iotool iops DEV LEN_MIB SECS THREADS
 *       random 4 KiB O_DIRECT requests (reads and writes in turn) over the first LEN_MIB MiB
 *       for SECS seconds from THREADS threads; prints the requests done and their rate
 *       (a measurement: the lab's rate-limit scenario compares guests with it)
 *   iotool cpu DEV OFF_MIB LEN_MIB BS_KIB r|w
 *       sequential O_DIRECT reads or writes of BS_KIB blocks from one thread; prints the
 *       whole system's busy CPU time meanwhile (/proc/stat: user, nice, system, irq, softirq)
 *       and that time per MiB moved
 *   iotool bench DEV OFF_MIB LEN_MIB BS_KIB QD SECONDS rand|seq
 *       O_DIRECT reads of BS_KIB blocks for SECONDS from QD threads (QD requests in flight:
 *       a queue depth without an async I/O library in the static guest tool), at random
 *       block-aligned offsets of the range or sequentially through it (wrapping); prints
 *       requests, bytes, IOPS and MB/s (10^6 bytes)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "labtool.h"

#define MIB (1024ULL * 1024ULL)
#define BLK 4096ULL
#define MAX_CHUNK (256ULL * 1024ULL)

struct chunk {
	uint64_t off;
	uint32_t len;
};

struct job {
	int fd;
	int idx;
	int nthreads;
	int verify;
	int flush_every;
	uint64_t seed;
	struct chunk *chunks;
	size_t nchunks;
	long failures;
	uint64_t bytes;
};

/* Fill @buf with the pattern of the range starting at byte @off (8-byte aligned). */
static void fill(uint64_t *buf, uint64_t off, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len / 8; i++)
		buf[i] = lab_word(seed, (off / 8) + i);
}

/* Offset of the first mismatching byte, or -1. */
static long long check(const uint64_t *buf, uint64_t off, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len / 8; i++)
		if (buf[i] != lab_word(seed, (off / 8) + i))
			return (long long)(off + i * 8);
	return -1;
}

static uint64_t sum_update(uint64_t h, const uint64_t *buf, size_t len)
{
	for (size_t i = 0; i < len / 8; i++)
		h = (h ^ buf[i]) * 0x100000001b3ULL;
	return h;
}

static void *xalloc(size_t len)
{
	void *p;

	if (posix_memalign(&p, BLK, len)) {
		printf("IOTOOL error: out of memory\n");
		exit(1);
	}
	return p;
}

/* Split [off, off+len) into random chunk sizes (4 KiB .. 256 KiB) and shuffle the order. */
static struct chunk *make_chunks(uint64_t off, uint64_t len, uint64_t *rng, size_t *ret_n)
{
	size_t cap = len / BLK + 1, n = 0;
	struct chunk *c = calloc(cap, sizeof(*c));
	uint64_t pos = off;

	while (pos < off + len) {
		uint64_t sz = ((lab_mix((*rng)++) % (MAX_CHUNK / BLK)) + 1) * BLK;
		if (sz > off + len - pos)
			sz = off + len - pos;
		c[n].off = pos;
		c[n].len = (uint32_t)sz;
		n++;
		pos += sz;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = lab_mix((*rng)++) % (i + 1);
		struct chunk t = c[i];
		c[i] = c[j];
		c[j] = t;
	}
	*ret_n = n;
	return c;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	uint64_t *buf = xalloc(MAX_CHUNK);
	int since_flush = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	/* One thread per CPU, so blk-mq spreads the requests over every hardware queue. */
	CPU_ZERO(&set);
	CPU_SET(j->idx % (ncpu > 0 ? ncpu : 1), &set);
	sched_setaffinity(0, sizeof(set), &set);

	for (size_t i = j->idx; i < j->nchunks; i += j->nthreads) {
		struct chunk *c = &j->chunks[i];
		ssize_t r;

		if (!j->verify) {
			fill(buf, c->off, c->len, j->seed);
			r = pwrite(j->fd, buf, c->len, (off_t)c->off);
		} else {
			memset(buf, 0, c->len);
			r = pread(j->fd, buf, c->len, (off_t)c->off);
		}
		if (r != (ssize_t)c->len) {
			printf("IOTOOL error: %s at %" PRIu64 " len %u: %s\n",
			       j->verify ? "read" : "write", c->off, c->len,
			       r < 0 ? strerror(errno) : "short");
			j->failures++;
			continue;
		}
		if (j->verify) {
			long long bad = check(buf, c->off, c->len, j->seed);
			if (bad >= 0) {
				printf("IOTOOL error: mismatch at byte %lld\n", bad);
				j->failures++;
			}
		}
		j->bytes += c->len;
		if (!j->verify && j->flush_every > 0 && ++since_flush >= j->flush_every) {
			since_flush = 0;
			if (fdatasync(j->fd)) {
				printf("IOTOOL error: fdatasync after %" PRIu64 ": %s\n", c->off,
				       strerror(errno));
				j->failures++;
			}
		}
	}
	free(buf);
	return NULL;
}

static long run_pass(int fd, uint64_t off, uint64_t len, uint64_t seed, uint64_t *rng, int nthr,
		     int verify, int flush_every)
{
	struct job jobs[64];
	pthread_t tids[64];
	size_t n;
	struct chunk *chunks = make_chunks(off, len, rng, &n);
	long failures = 0;

	for (int t = 0; t < nthr; t++) {
		jobs[t] = (struct job){ .fd = fd,
					.idx = t,
					.nthreads = nthr,
					.verify = verify,
					.flush_every = flush_every,
					.seed = seed,
					.chunks = chunks,
					.nchunks = n };
		pthread_create(&tids[t], NULL, worker, &jobs[t]);
	}
	for (int t = 0; t < nthr; t++) {
		pthread_join(tids[t], NULL);
		failures += jobs[t].failures;
	}
	free(chunks);
	return failures;
}

static int sum_range(const char *dev, uint64_t off, uint64_t len, uint64_t *ret)
{
	int fd = open(dev, O_RDONLY);
	uint64_t *buf = xalloc(MIB), h = 0xcbf29ce484222325ULL;

	if (fd < 0)
		return -errno;
	for (uint64_t pos = off; pos < off + len; pos += MIB) {
		size_t want = (size_t)(off + len - pos < MIB ? off + len - pos : MIB);
		if (pread(fd, buf, want, (off_t)pos) != (ssize_t)want) {
			close(fd);
			free(buf);
			return -EIO;
		}
		h = sum_update(h, buf, want);
	}
	close(fd);
	free(buf);
	*ret = h;
	return 0;
}

/* Sequential write / verify / zero-check of a range; mode 'w', 'v' or 'z'. */
static int seq(const char *dev, uint64_t off, uint64_t len, uint64_t seed, char mode)
{
	int fd = open(dev, (mode == 'w' ? O_RDWR : O_RDONLY) | O_DIRECT);
	uint64_t *buf = xalloc(MIB);

	if (fd < 0) {
		printf("IOTOOL error: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	for (uint64_t pos = off; pos < off + len; pos += MIB) {
		size_t want = (size_t)(off + len - pos < MIB ? off + len - pos : MIB);
		long long bad = -1;

		if (mode == 'w') {
			fill(buf, pos, want, seed);
			if (pwrite(fd, buf, want, (off_t)pos) != (ssize_t)want) {
				printf("IOTOOL error: write at %" PRIu64 ": %s\n", pos,
				       strerror(errno));
				return 1;
			}
			continue;
		}
		if (pread(fd, buf, want, (off_t)pos) != (ssize_t)want) {
			printf("IOTOOL error: read at %" PRIu64 ": %s\n", pos, strerror(errno));
			return 1;
		}
		if (mode == 'v') {
			bad = check(buf, pos, want, seed);
		} else {
			for (size_t i = 0; i < want / 8 && bad < 0; i++)
				if (buf[i])
					bad = (long long)(pos + i * 8);
		}
		if (bad >= 0) {
			printf("IOTOOL error: %s mismatch at byte %lld\n",
			       mode == 'v' ? "pattern" : "zero", bad);
			return 1;
		}
	}
	if (mode == 'w' && fsync(fd)) {
		printf("IOTOOL error: fsync: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	free(buf);
	printf("IOTOOL %s ok bytes=%" PRIu64 "\n",
	       mode == 'w'   ? "write"
	       : mode == 'v' ? "verify"
			     : "zero",
	       len);
	return 0;
}

static int cmd_rw(const char *dev, uint64_t off, uint64_t len, uint64_t seed, int nthr,
		  int flush_every)
{
	int fd = open(dev, O_RDWR | O_DIRECT);
	uint64_t rng = seed * 7 + 1, h;
	long f;

	if (fd < 0) {
		printf("IOTOOL error: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	if (nthr < 1 || nthr > 64)
		nthr = 1;
	f = run_pass(fd, off, len, seed, &rng, nthr, 0, flush_every);
	if (!f && fsync(fd)) {
		printf("IOTOOL error: fsync: %s\n", strerror(errno));
		f++;
	}
	if (!f)
		f = run_pass(fd, off, len, seed, &rng, nthr, 1, 0);
	close(fd);
	if (f) {
		printf("IOTOOL rw FAILED errors=%ld\n", f);
		return 1;
	}
	if (sum_range(dev, off, len, &h)) {
		printf("IOTOOL error: checksum read failed\n");
		return 1;
	}
	printf("IOTOOL rw ok bytes=%" PRIu64 " sum=%016" PRIx64 "\n", len, h);
	return 0;
}

/* Busy time of all CPUs so far, in ms (the "cpu" line of /proc/stat, idle and iowait left out,
 * steal too: time the hypervisor gave to others is not ours). */
static int busy_ms(uint64_t *ret)
{
	unsigned long long v[8] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 7 || hz <= 0)
		return -EIO;
	/* user nice system idle iowait irq softirq steal */
	*ret = (v[0] + v[1] + v[2] + v[5] + v[6]) * 1000ULL / (unsigned long long)hz;
	return 0;
}

/*
 * Sequential O_DIRECT I/O of @bs bytes at a time over the range, one request in flight, and the
 * system's busy CPU time meanwhile. The write data is filled once, so the loop itself costs
 * next to nothing: what is measured is the block layer, the driver and the interrupts.
 */
static int cmd_cpu(const char *dev, uint64_t off, uint64_t len, uint64_t bs, const char *mode)
{
	int wr = !strcmp(mode, "w"), fd;
	uint64_t *buf, b0, b1, done = 0;
	double t0, t1;

	if ((!wr && strcmp(mode, "r")) || bs < BLK || bs % BLK || bs > 64 * MIB || len < bs) {
		printf("IOTOOL error: cpu: bad block size or mode\n");
		return 1;
	}
	fd = open(dev, (wr ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		printf("IOTOOL error: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	buf = xalloc(bs);
	fill(buf, 0, bs, 77);
	if (busy_ms(&b0)) {
		printf("IOTOOL error: cannot read /proc/stat\n");
		return 1;
	}
	t0 = lab_now();
	for (uint64_t pos = off; pos + bs <= off + len; pos += bs) {
		ssize_t r = wr ? pwrite(fd, buf, bs, (off_t)pos) : pread(fd, buf, bs, (off_t)pos);

		if (r != (ssize_t)bs) {
			printf("IOTOOL error: %s at %" PRIu64 ": %s\n", wr ? "write" : "read", pos,
			       r < 0 ? strerror(errno) : "short");
			return 1;
		}
		done += bs;
	}
	t1 = lab_now();
	if (busy_ms(&b1)) {
		printf("IOTOOL error: cannot read /proc/stat\n");
		return 1;
	}
	close(fd);
	free(buf);
	printf("IOTOOL cpu ok mode=%s bs_kib=%" PRIu64 " bytes=%" PRIu64
	       " secs=%.2f busy_ms=%" PRIu64 " ms_per_mib=%.2f\n",
	       mode, bs / 1024, done, t1 - t0, b1 - b0,
	       (double)(b1 - b0) / ((double)done / (double)MIB));
	return 0;
}

struct bench {
	int fd;
	uint64_t off, len, bs;
	int rnd;
	double end;
	uint64_t next; /* seq: the next offset in the range, shared */
	int failed;
};

struct bench_thread {
	pthread_t tid;
	struct bench *b;
	uint64_t seed, ios;
};

static void *bench_main(void *arg)
{
	struct bench_thread *t = arg;
	struct bench *b = t->b;
	uint64_t *buf = xalloc(b->bs), x = t->seed | 1, blocks = b->len / b->bs;

	while (!__atomic_load_n(&b->failed, __ATOMIC_RELAXED)) {
		uint64_t pos;

		/* The clock every 64 requests: cheap next to a request. */
		if (!(t->ios & 63) && lab_now() >= b->end)
			break;
		if (b->rnd) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			pos = b->off + (x % blocks) * b->bs;
		} else {
			pos = b->off + __atomic_fetch_add(&b->next, b->bs, __ATOMIC_RELAXED) %
					       (blocks * b->bs);
		}
		if (pread(b->fd, buf, b->bs, (off_t)pos) != (ssize_t)b->bs) {
			printf("IOTOOL error: bench read at %" PRIu64 ": %s\n", pos,
			       strerror(errno));
			__atomic_store_n(&b->failed, 1, __ATOMIC_RELAXED);
			break;
		}
		t->ios++;
	}
	free(buf);
	return NULL;
}

static int cmd_bench(const char *dev, uint64_t off, uint64_t len, uint64_t bs, int qd, int secs,
		     const char *mode)
{
	struct bench b = { .off = off, .len = len, .bs = bs, .rnd = !strcmp(mode, "rand") };
	struct bench_thread *t;
	uint64_t ios = 0;
	double t0, t1;

	if ((!b.rnd && strcmp(mode, "seq")) || bs < BLK || bs % BLK || bs > 64 * MIB || len < bs ||
	    qd < 1 || qd > 256 || secs < 1) {
		printf("IOTOOL error: bench: bad block size, depth, time or mode\n");
		return 1;
	}
	b.fd = open(dev, O_RDONLY | O_DIRECT);
	if (b.fd < 0) {
		printf("IOTOOL error: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	t = calloc((size_t)qd, sizeof(*t));
	if (!t)
		return 1;
	t0 = lab_now();
	b.end = t0 + secs;
	for (int i = 0; i < qd; i++) {
		t[i].b = &b;
		t[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		if (pthread_create(&t[i].tid, NULL, bench_main, &t[i])) {
			printf("IOTOOL error: bench: cannot start thread %d\n", i);
			return 1;
		}
	}
	for (int i = 0; i < qd; i++) {
		pthread_join(t[i].tid, NULL);
		ios += t[i].ios;
	}
	t1 = lab_now();
	close(b.fd);
	free(t);
	if (b.failed)
		return 1;
	printf("IOTOOL bench ok mode=%s bs_kib=%" PRIu64 " qd=%d ios=%" PRIu64 " bytes=%" PRIu64
	       " secs=%.2f iops=%.0f mbps=%.2f\n",
	       mode, bs / 1024, qd, ios, ios * bs, t1 - t0, (double)ios / (t1 - t0),
	       (double)(ios * bs) / (t1 - t0) / 1e6);
	return 0;
}

struct iops_job {
	int fd;
	unsigned int idx;
	uint64_t blocks;
	double end;
	uint64_t ops;
	int err;
};

static void *iops_thread(void *arg)
{
	struct iops_job *j = arg;
	uint64_t *buf = xalloc(BLK), rng = 0x1234567ULL + j->idx;

	fill(buf, 0, BLK, 99);
	while (lab_now() < j->end) {
		uint64_t off;
		ssize_t r;

		rng = lab_mix(rng);
		off = (rng % j->blocks) * BLK;
		r = (j->ops & 1) ? pwrite(j->fd, buf, BLK, (off_t)off)
				 : pread(j->fd, buf, BLK, (off_t)off);
		if (r != (ssize_t)BLK) {
			j->err = r < 0 ? errno : EIO;
			break;
		}
		j->ops++;
	}
	free(buf);
	return NULL;
}

static int cmd_iops(const char *dev, uint64_t len, unsigned int secs, int nthr)
{
	struct iops_job jobs[64];
	pthread_t th[64];
	uint64_t ops = 0;
	double t0, t1;
	int fd, err = 0;

	if (nthr < 1 || nthr > 64 || len < BLK || secs < 1) {
		printf("IOTOOL error: iops: bad arguments\n");
		return 1;
	}
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		printf("IOTOOL error: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	t0 = lab_now();
	for (int i = 0; i < nthr; i++) {
		jobs[i] = (struct iops_job){
			.fd = fd, .idx = (unsigned int)i, .blocks = len / BLK, .end = t0 + secs
		};
		pthread_create(&th[i], NULL, iops_thread, &jobs[i]);
	}
	for (int i = 0; i < nthr; i++) {
		pthread_join(th[i], NULL);
		ops += jobs[i].ops;
		err = err ? err : jobs[i].err;
	}
	t1 = lab_now();
	close(fd);
	if (err) {
		printf("IOTOOL iops FAILED: %s\n", strerror(err));
		return 1;
	}
	printf("IOTOOL iops ok ops=%" PRIu64 " secs=%.1f iops=%.0f\n", ops, t1 - t0,
	       (double)ops / (t1 - t0));
	return 0;
}

static int cmd_trywrite(const char *dev)
{
	int fd = open(dev, O_RDWR | O_DIRECT);
	uint64_t *buf = xalloc(BLK);

	memset(buf, 0xab, BLK);
	if (fd < 0) {
		printf("IOTOOL trywrite open-failed errno=%d (%s)\n", errno, strerror(errno));
		return 0;
	}
	if (pwrite(fd, buf, BLK, 0) != (ssize_t)BLK) {
		printf("IOTOOL trywrite write-failed errno=%d (%s)\n", errno, strerror(errno));
		return 0;
	}
	if (fsync(fd)) {
		printf("IOTOOL trywrite fsync-failed errno=%d (%s)\n", errno, strerror(errno));
		return 0;
	}
	printf("IOTOOL trywrite succeeded\n");
	return 0;
}

static int cmd_discard(const char *dev, uint64_t off, uint64_t len)
{
	int fd = open(dev, O_RDWR);
	uint64_t range[2] = { off, len };

	if (fd < 0 || ioctl(fd, BLKDISCARD, range)) {
		printf("IOTOOL discard failed: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	printf("IOTOOL discard ok bytes=%" PRIu64 "\n", len);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "", *dev = argc > 2 ? argv[2] : "";
	uint64_t off = argc > 3 ? strtoull(argv[3], NULL, 0) * MIB : 0;
	uint64_t len = argc > 4 ? strtoull(argv[4], NULL, 0) * MIB : 0;
	uint64_t seed = argc > 5 ? strtoull(argv[5], NULL, 0) : 0;
	uint64_t h;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "rw") && (argc == 7 || argc == 8))
		return cmd_rw(dev, off, len, seed, atoi(argv[6]), argc == 8 ? atoi(argv[7]) : 0);
	if (!strcmp(cmd, "iops") && argc == 6)
		return cmd_iops(dev, off, (unsigned int)atoi(argv[4]), atoi(argv[5]));
	if (!strcmp(cmd, "bench") && argc == 9)
		return cmd_bench(dev, off, len, seed * 1024, atoi(argv[6]), atoi(argv[7]), argv[8]);
	if (!strcmp(cmd, "cpu") && argc == 7)
		return cmd_cpu(dev, off, len, seed * 1024, argv[6]);
	if (!strcmp(cmd, "write") && argc == 6)
		return seq(dev, off, len, seed, 'w');
	if (!strcmp(cmd, "verify") && argc == 6)
		return seq(dev, off, len, seed, 'v');
	if (!strcmp(cmd, "zero") && argc == 5)
		return seq(dev, off, len, 0, 'z');
	if (!strcmp(cmd, "trywrite") && argc == 3)
		return cmd_trywrite(dev);
	if (!strcmp(cmd, "discard") && argc == 5)
		return cmd_discard(dev, off, len);
	if (!strcmp(cmd, "sum") && argc == 5) {
		if (sum_range(dev, off, len, &h)) {
			printf("IOTOOL sum failed\n");
			return 1;
		}
		printf("IOTOOL sum ok bytes=%" PRIu64 " sum=%016" PRIx64 "\n", len, h);
		return 0;
	}
	fprintf(stderr,
		"usage: iotool rw|write|verify|sum|zero|trywrite|discard|iops|cpu|bench DEV ...\n");
	return 2;
}
