// SPDX-License-Identifier: MIT
/*
 * vblkbench: 4 KiB random reads through the virtio-blk engine (vhost-user to a
 * qemu-storage-daemon exporting a file) next to the io_uring engine on the same file, with the
 * same queue count and depth. Prints requests/s and CPU microseconds per request: blanketd's
 * own (the process CPU clock) and, for virtio-blk, the back-end's (/proc/PID/stat), since there the file
 * I/O is done by the back-end process.
 *
 * Not a test: numbers depend on the machine. Usage:
 *   vblkbench [--seconds S] [--dir DIR] [--size MiB] [--qd N] [--queues N] [--buffered]
 *             [--options VIRTIO_BLK_ENGINE_OPTIONS]
 * --buffered opens the file without O_DIRECT for io_uring; qemu-storage-daemon uses O_DIRECT
 * wherever the filesystem allows it (use --dir /dev/shm for a buffered comparison).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "loop.h"
#include "qsd.h"
#include "util/log.h"
#include "util/macros.h"
#include "virtio/virtio-blk.h"
#include "benchlib.h"

#define MAX_QD 128u
#define MAX_Q 4u

static double opt_seconds = 3.0;
static const char *opt_dir = "/var/tmp";
static uint64_t opt_size = 256ull << 20;
static unsigned int opt_qd = 32, opt_queues = 1;
static bool opt_buffered;
static const char *opt_vopts;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

struct breq {
	struct bk_io io;
	struct iovec iov;
	struct bk_engine *e;
};

static struct {
	uint64_t done;
	bool stop;
	unsigned int out;
	int err;
} st;

/* utime + stime of @pid in seconds, all its threads. */
static double cpu_pid(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, stt = 0;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return 0;
	/* After ")": state(3) ... utime is field 14, stime 15. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
		return 0;
	return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static void breq_submit(struct breq *b);

static void breq_done(struct bk_io *io, int res)
{
	struct breq *b = container_of(io, struct breq, io);

	st.out--;
	if (res != 4096 && !st.err)
		st.err = res < 0 ? res : -EIO;
	st.done++;
	if (!st.stop && !st.err)
		breq_submit(b);
}

static void breq_submit(struct breq *b)
{
	b->io = (struct bk_io){ .op = BK_IO_READ,
				.iovcnt = 1,
				.buf_index = -1,
				.offset = (bench_rnd(&rng) % (opt_size / 4096)) * 4096,
				.len = 4096,
				.iov = &b->iov,
				.done = breq_done };
	if (bk_engine_queue(b->e, &b->io) == 0)
		st.out++;
	else if (!st.err)
		st.err = -EIO;
}

struct result {
	double iops, cpu_us, backend_cpu_us;
};

static int run(const char *engine, const char *options, struct bk_store *store, pid_t backend,
	       struct result *res)
{
	static struct breq reqs[MAX_Q][MAX_QD];
	struct bk_engine *e[MAX_Q] = { NULL };
	struct bk_loop *loop = NULL;
	uint8_t *bufs = aligned_alloc(4096, (size_t)MAX_Q * MAX_QD * 4096);
	double t0, c0, b0, t1;
	int r;

	if (!bufs)
		return -ENOMEM;
	r = bk_loop_new(&loop);
	if (r < 0)
		goto out;
	for (unsigned int q = 0; q < opt_queues; q++) {
		struct bk_engine_params ep = { .name = "bench",
					       .depth = opt_qd,
					       .options = options };

		r = bk_engine_open(engine, loop, store, &ep, &e[q]);
		if (r < 0)
			goto out;
	}
	memset(&st, 0, sizeof(st));
	/* Warm up for a tenth of the time, then count. */
	for (int pass = 0; pass < 2; pass++) {
		double until;

		st.stop = false;
		for (unsigned int q = 0; q < opt_queues; q++)
			for (unsigned int i = 0; i < opt_qd; i++) {
				reqs[q][i].e = e[q];
				reqs[q][i].iov =
					(struct iovec){ bufs + ((size_t)q * MAX_QD + i) * 4096,
							4096 };
				breq_submit(&reqs[q][i]);
			}
		st.done = 0;
		t0 = bench_now();
		c0 = bench_cpu();
		b0 = cpu_pid(backend);
		until = t0 + (pass ? opt_seconds : opt_seconds / 10);
		while (bench_now() < until && !st.err)
			bk_loop_run_once(loop, 100);
		t1 = bench_now();
		res->iops = (double)st.done / (t1 - t0);
		res->cpu_us = (bench_cpu() - c0) * 1e6 / (double)(st.done ? st.done : 1);
		res->backend_cpu_us =
			(cpu_pid(backend) - b0) * 1e6 / (double)(st.done ? st.done : 1);
		st.stop = true;
		for (unsigned int i = 0; i < 3000 && st.out; i++)
			bk_loop_run_once(loop, 10);
	}
	r = st.err;
out:
	for (unsigned int q = 0; q < opt_queues; q++)
		bk_engine_close(e[q]);
	bk_loop_free(loop);
	free(bufs);
	return r;
}

static void print(const char *what, const struct result *r)
{
	printf("  %-34s %9.0f IOPS  %6.1f us CPU/req (blanketd)", what, r->iops, r->cpu_us);
	if (r->backend_cpu_us > 0)
		printf(" + %5.1f (back-end) = %5.1f", r->backend_cpu_us,
		       r->cpu_us + r->backend_cpu_us);
	printf("\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 'm' },
		{ "qd", required_argument, NULL, 'q' },
		{ "queues", required_argument, NULL, 'n' },
		{ "buffered", no_argument, NULL, 'b' },
		{ "options", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	char dir[256], img[300], sock[300], opts[400];
	struct bk_qsd qsd = { .pid = -1 };
	struct bk_store_params sp = { 0 };
	struct bk_store *store = NULL;
	struct result rv = { 0 }, ru = { 0 };
	uint8_t *fill;
	int c, fd, r;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			opt_seconds = atof(optarg);
			break;
		case 'd':
			opt_dir = optarg;
			break;
		case 'm':
			opt_size = strtoull(optarg, NULL, 10) << 20;
			break;
		case 'q':
			opt_qd = (unsigned int)atoi(optarg);
			break;
		case 'n':
			opt_queues = (unsigned int)atoi(optarg);
			break;
		case 'b':
			opt_buffered = true;
			break;
		case 'o':
			opt_vopts = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!opt_qd || opt_qd > MAX_QD || !opt_queues || opt_queues > MAX_Q ||
	    opt_size < (1 << 20)) {
		fprintf(stderr, "vblkbench: --qd 1..%u, --queues 1..%u, --size >= 1\n", MAX_QD,
			MAX_Q);
		return 2;
	}
	bk_log_set_level(BK_LOG_WARNING);
	snprintf(dir, sizeof(dir), "%s/vblkbench.XXXXXX", opt_dir);
	if (!mkdtemp(dir)) {
		perror("vblkbench: mkdtemp");
		return 1;
	}
	snprintf(img, sizeof(img), "%s/disk.raw", dir);
	snprintf(sock, sizeof(sock), "%s/vhost.sock", dir);
	/* Real blocks, so both paths read the same allocated data. */
	fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	fill = malloc(1 << 20);
	if (fd < 0 || !fill) {
		perror("vblkbench: image");
		return 1;
	}
	for (uint64_t off = 0; off < opt_size; off += 1 << 20) {
		for (size_t i = 0; i < (1 << 20); i += 8)
			*(uint64_t *)(fill + i) = bench_rnd(&rng);
		if (pwrite(fd, fill, 1 << 20, (off_t)off) != 1 << 20) {
			perror("vblkbench: filling the image");
			return 1;
		}
	}
	fsync(fd);
	close(fd);
	free(fill);

	printf("4 KiB random reads, %u queue(s) x QD %u, %.0f s, %llu MiB file in %s (%s)\n",
	       opt_queues, opt_qd, opt_seconds, (unsigned long long)(opt_size >> 20), opt_dir,
	       opt_buffered ? "io_uring buffered" : "io_uring O_DIRECT");
	r = bk_qsd_start(&qsd, img, sock, opt_queues, true);
	if (r < 0) {
		fprintf(stderr, "vblkbench: cannot start qemu-storage-daemon: %s\n", strerror(-r));
	} else {
		snprintf(opts, sizeof(opts), "socket=%s%s%s", sock, opt_vopts ? "," : "",
			 opt_vopts ? opt_vopts : "");
		r = run("virtio-blk", opts, NULL, qsd.pid, &rv);
		if (r < 0)
			fprintf(stderr, "vblkbench: virtio-blk: %s\n", strerror(-r));
		else
			print(qsd.direct ? "virtio-blk (vhost-user, qsd O_DIRECT)"
					 : "virtio-blk (vhost-user, qsd buffered)",
			      &rv);
		bk_qsd_kill(&qsd);
	}
	sp.want_direct = !opt_buffered;
	r = bk_store_open(img, &sp, &store);
	if (r == 0) {
		r = run("io_uring", NULL, store, 0, &ru);
		if (r < 0)
			fprintf(stderr, "vblkbench: io_uring: %s\n", strerror(-r));
		else
			print("io_uring engine", &ru);
		bk_store_close(store);
	}
	unlink(img);
	unlink(sock);
	rmdir(dir);
	return 0;
}
