// SPDX-License-Identifier: MIT
/*
 * tapbench: what one TAP queue costs per frame, the floor under the netif datapath. As root,
 * in a private network namespace: frames written to the TAP (guest TX: 60-byte, 1514-byte and
 * 64 KiB GSO TCP frames with a virtio_net_hdr) and frames read from it (guest RX: the stack
 * sends bursts through a packet socket, the same sizes, GSO kept whole by TUNSETOFFLOAD).
 * Prints frames/s, Gb/s and CPU nanoseconds per frame of the TAP syscalls alone (the RX
 * sender's cost is excluded by timing the reads only).
 *
 * With io_uring, the same again with one submission per burst of 64 frames (IORING_OP_WRITEV /
 * READV on the non-blocking fds), to see what batching the syscalls saves; "tx-batch" is
 * bk_tap_write_batch() itself, which submits a burst that way.
 *
 * Not a test: numbers depend on the machine. Usage: tapbench [--frames N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#if HAVE_LIBURING
#include <liburing.h>
#endif

#include "netif/proto.h"
#include "tap.h"
#include "util/log.h"
#include "benchlib.h"

#define VH BK_TAP_VNET_HDR_LEN
#define BURST 64U

static uint8_t frame[65536], rbuf[BURST][VH + 65536];

static void put16(uint8_t *p, unsigned int v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* An IPv4 TCP frame of @len bytes to a MAC nobody has; the TCP checksum left partial. */
static void mkframe(size_t len)
{
	uint32_t sum;

	memset(frame, 0, len);
	memcpy(frame, "\x02\x00\x00\x00\x00\x09\x00\x16\x3e\x00\x00\x01\x08\x00", 14);
	frame[14] = 0x45;
	put16(frame + 16, (unsigned int)(len - 14));
	frame[20] = 0x40;
	frame[22] = 64;
	frame[23] = 6;
	memcpy(frame + 26, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8);
	put16(frame + 24, (uint16_t)~netif_csum_fold(netif_csum_add(0, frame + 14, 20)));
	put16(frame + 34, 5001);
	put16(frame + 36, 5201);
	frame[46] = 0x50;
	frame[47] = 0x10;
	sum = netif_csum_add(0, frame + 26, 8) + 6 + (uint32_t)(len - 34);
	put16(frame + 50, netif_csum_fold(sum));
}

static struct virtio_net_hdr vnet_for(size_t len)
{
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				     .csum_start = 34,
				     .csum_offset = 16 };

	if (len > 1514) {
		vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		vh.gso_size = 1448;
		vh.hdr_len = 54;
	}
	return vh;
}

static void report(const char *what, size_t len, unsigned long n, double wall, double cpu)
{
	printf("%-8s %6zu B  %9.0f frames/s  %7.2f Gb/s  %7.0f ns CPU/frame\n", what, len,
	       (double)n / wall, (double)n * (double)len * 8 / wall / 1e9, cpu * 1e9 / (double)n);
}

static void bench_tx(struct bk_tap *t, size_t len, unsigned long frames, bool uring)
{
	struct virtio_net_hdr vh = vnet_for(len);
	uint8_t hdr[VH] = { 0 };
	struct iovec iov[2] = { { hdr, VH }, { frame, len } };
	struct bk_tap_pkt pkts[BURST];
	unsigned long done = 0, errs = 0;
	double w0, c0;

	mkframe(len);
	memcpy(hdr, &vh, sizeof(vh));
	bk_tap_set_uring(t, uring);
	for (unsigned int i = 0; i < BURST; i++)
		pkts[i] = (struct bk_tap_pkt){ .iov = iov, .iovcnt = 2 };
	w0 = bench_now();
	c0 = bench_cpu();
	while (done < frames) {
		int n = bk_tap_write_batch(t, 0, pkts, BURST);

		for (int i = 0; i < n; i++)
			errs += pkts[i].err != 0;
		done += (unsigned long)(n > 0 ? n : 0);
	}
	report(uring ? "tx-batch" : "tx", len, done, bench_now() - w0, bench_cpu() - c0);
	if (errs)
		printf("  (%lu frames refused)\n", errs);
}

static void bench_rx(struct bk_tap *t, int ps, size_t len, unsigned long frames)
{
	struct virtio_net_hdr vh = vnet_for(len);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_IP),
				   .sll_ifindex = bk_tap_ifindex(t),
				   .sll_halen = 6 };
	struct iovec siov[2] = { { &vh, sizeof(vh) }, { frame, len } };
	struct mmsghdr msgs[BURST];
	struct iovec riov[BURST];
	struct bk_tap_pkt pkts[BURST];
	unsigned long got = 0, lost = 0;
	double wall = 0, cpu = 0;

	mkframe(len);
	memcpy(sll.sll_addr, frame, 6);
	for (unsigned int i = 0; i < BURST; i++) {
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sll,
							 .msg_namelen = sizeof(sll),
							 .msg_iov = siov,
							 .msg_iovlen = 2 } };
		riov[i] = (struct iovec){ rbuf[i], sizeof(rbuf[i]) };
		pkts[i] = (struct bk_tap_pkt){ .iov = &riov[i], .iovcnt = 1 };
	}
	while (got + lost < frames) {
		int sent = sendmmsg(ps, msgs, BURST, 0), n, have = 0;
		double w0, c0;

		if (sent <= 0)
			break;
		w0 = bench_now();
		c0 = bench_cpu();
		while (have < sent) {
			n = bk_tap_read_batch(t, 0, pkts, BURST);
			if (n <= 0)
				break;
			have += n;
		}
		wall += bench_now() - w0;
		cpu += bench_cpu() - c0;
		got += (unsigned long)have;
		lost += (unsigned long)(sent - have);
	}
	report("rx", len, got, wall, cpu);
	if (lost)
		printf("  (%lu frames not seen: the stack dropped them)\n", lost);
}

#if HAVE_LIBURING
/* Submit @n prepared SQEs and reap them; returns how many completed with a frame. */
static int uring_burst(struct io_uring *ring, unsigned int n, struct bk_tap_pkt *pkts)
{
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;
	int ok = 0;

	if (io_uring_submit_and_wait(ring, n) < 0)
		return -1;
	io_uring_for_each_cqe(ring, head, cqe)
	{
		if (cqe->res > 0) {
			ok++;
			pkts[cqe->user_data].len = (size_t)cqe->res;
		}
		seen++;
	}
	io_uring_cq_advance(ring, seen);
	return ok;
}

static void bench_tx_uring(struct io_uring *ring, struct bk_tap *t, size_t len,
			   unsigned long frames)
{
	struct virtio_net_hdr vh = vnet_for(len);
	uint8_t hdr[VH] = { 0 };
	struct iovec iov[2] = { { hdr, VH }, { frame, len } };
	struct bk_tap_pkt pkts[BURST];
	unsigned long done = 0, errs = 0;
	double w0, c0;

	mkframe(len);
	memcpy(hdr, &vh, sizeof(vh));
	w0 = bench_now();
	c0 = bench_cpu();
	while (done < frames) {
		int n;

		for (unsigned int i = 0; i < BURST; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			io_uring_prep_writev(sqe, bk_tap_fd(t, 0), iov, 2, 0);
			sqe->user_data = i;
		}
		n = uring_burst(ring, BURST, pkts);
		if (n < 0)
			break;
		done += BURST;
		errs += BURST - (unsigned int)n;
	}
	report("tx-uring", len, done, bench_now() - w0, bench_cpu() - c0);
	if (errs)
		printf("  (%lu frames refused)\n", errs);
}

static void bench_rx_uring(struct io_uring *ring, struct bk_tap *t, int ps, size_t len,
			   unsigned long frames)
{
	struct virtio_net_hdr vh = vnet_for(len);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_IP),
				   .sll_ifindex = bk_tap_ifindex(t),
				   .sll_halen = 6 };
	struct iovec siov[2] = { { &vh, sizeof(vh) }, { frame, len } };
	struct mmsghdr msgs[BURST];
	struct iovec riov[BURST];
	struct bk_tap_pkt pkts[BURST];
	unsigned long got = 0, lost = 0;
	double wall = 0, cpu = 0;

	mkframe(len);
	memcpy(sll.sll_addr, frame, 6);
	for (unsigned int i = 0; i < BURST; i++) {
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sll,
							 .msg_namelen = sizeof(sll),
							 .msg_iov = siov,
							 .msg_iovlen = 2 } };
		riov[i] = (struct iovec){ rbuf[i], sizeof(rbuf[i]) };
	}
	while (got + lost < frames) {
		int sent = sendmmsg(ps, msgs, BURST, 0), n;
		double w0, c0;

		if (sent <= 0)
			break;
		w0 = bench_now();
		c0 = bench_cpu();
		for (int i = 0; i < sent; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			io_uring_prep_readv(sqe, bk_tap_fd(t, 0), &riov[i], 1, 0);
			sqe->user_data = (uint64_t)i;
		}
		n = uring_burst(ring, (unsigned int)sent, pkts);
		wall += bench_now() - w0;
		cpu += bench_cpu() - c0;
		if (n < 0)
			break;
		got += (unsigned long)n;
		lost += (unsigned long)(sent - n);
	}
	report("rx-uring", len, got, wall, cpu);
	if (lost)
		printf("  (%lu frames not seen: the stack dropped them)\n", lost);
}
#endif

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "frames", required_argument, NULL, 'n' }, {} };
	static const size_t sizes[] = { 60, 1514, 65000 };
	unsigned long frames = 200000;
	struct bk_tap *t = NULL;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	int c, ps, one = 1;

	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		if (c != 'n') {
			fprintf(stderr, "usage: tapbench [--frames N]\n");
			return 2;
		}
		frames = strtoul(optarg, NULL, 10);
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "tapbench: needs root (unshare(CLONE_NEWNET): %m)\n");
		return 1;
	}
	if (bk_tap_open("bench0", 1, &t) < 0)
		return 1;
	{
		struct ifreq ifr = { 0 };
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "bench0");
		if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
			return 1;
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			return 1;
		close(s);
	}
	if (bk_tap_set_offload(t, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)
		return 1;
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	sll.sll_ifindex = bk_tap_ifindex(t);
	if (ps < 0 || setsockopt(ps, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
	    bind(ps, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "tapbench: packet socket: %m\n");
		return 1;
	}
	printf("one TAP queue, %lu frames each, vnet header %u bytes\n", frames, VH);
	for (unsigned int i = 0; i < 3; i++)
		bench_tx(t, sizes[i], sizes[i] > 1514 ? frames / 10 : frames, false);
	/* bk_tap_write_batch() as the daemon calls it: one io_uring submission per burst. */
	for (unsigned int i = 0; HAVE_LIBURING && i < 3; i++)
		bench_tx(t, sizes[i], sizes[i] > 1514 ? frames / 10 : frames, true);
	for (unsigned int i = 0; i < 3; i++)
		bench_rx(t, ps, sizes[i], sizes[i] > 1514 ? frames / 10 : frames);
#if HAVE_LIBURING
	{
		struct io_uring ring;

		if (io_uring_queue_init(BURST, &ring, 0) == 0) {
			for (unsigned int i = 0; i < 3; i++)
				bench_tx_uring(&ring, t, sizes[i],
					       sizes[i] > 1514 ? frames / 10 : frames);
			for (unsigned int i = 0; i < 3; i++)
				bench_rx_uring(&ring, t, ps, sizes[i],
					       sizes[i] > 1514 ? frames / 10 : frames);
			io_uring_queue_exit(&ring);
		}
	}
#endif
	close(ps);
	bk_tap_close(t);
	return 0;
}
