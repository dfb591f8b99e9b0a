// SPDX-License-Identifier: MIT
/*
 * The TAP port against the real kernel, as root in a fresh network namespace (skips with 77
 * otherwise): flags and vnet header size, frames with virtio_net_hdr both ways (a guest's
 * checksum-offloaded and GSO frames mapped by netif_tx_to_vnet arrive as such in the stack;
 * a GSO frame from the stack reaches the reader whole or segmented as TUNSETOFFLOAD says),
 * persistence across close and re-open (ifindex, MTU, MAC survive; gone once persistence is
 * off), multi-queue through the core loop's watches, carrier, errors naming the interface,
 * and no fd left behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#include "check.h"
#include "loop.h"
#include "netif/proto.h"
#include "netpkt.h"
#include "tap.h"

#define VH BK_TAP_VNET_HDR_LEN

static const uint8_t guest_mac[6] = { 0x00, 0x16, 0x3e, 0x01, 0x02, 0x03 };

/* Our next frame read from queue @q of the TAP, within 2 s; its length (header included). */
static ssize_t tap_recv(struct bk_tap *t, unsigned int q, uint8_t *buf, size_t size)
{
	for (int tries = 0; tries < 200; tries++) {
		struct iovec iov = { buf, size };
		struct bk_tap_pkt pkt = { .iov = &iov, .iovcnt = 1 };
		struct pollfd p = { .fd = bk_tap_fd(t, q), .events = POLLIN };

		if (poll(&p, 1, 10) <= 0)
			continue;
		if (bk_tap_read_batch(t, q, &pkt, 1) == 1 && bk_pkt_ours(buf + VH, pkt.len - VH))
			return (ssize_t)pkt.len;
	}
	return -1;
}

/* Write one frame after @vh to queue @q of the TAP: the packet's error (0), or -EIO. */
static int tap_write_one(struct bk_tap *t, unsigned int q, const struct virtio_net_hdr *vh,
			 const uint8_t *f, size_t len)
{
	uint8_t hdr[VH] = { 0 };
	struct iovec iov[2] = { { hdr, VH }, { (void *)f, len } };
	struct bk_tap_pkt p = { .iov = iov, .iovcnt = 2, .err = 1 };

	memcpy(hdr, vh, sizeof(*vh));
	return bk_tap_write_batch(t, q, &p, 1) == 1 ? p.err : -EIO;
}

/* An IPv4 TCP (proto 6) or UDP (17) frame of @len bytes, checksums left as partial sums. */
static size_t mkframe(uint8_t *f, size_t len, uint8_t proto, unsigned int sport,
		      struct netif_hdrs *h)
{
	bk_pkt_frame(f, len, proto, sport, guest_mac, true);
	CHECK(netif_parse_hdrs(f, len, h) == 0);
	return len;
}

static uint8_t frame[70000], buf[70000];

static void test_open_errors(void)
{
	struct bk_tap *t = NULL;
	char name[IFNAMSIZ];

	CHECK(bk_tap_vif_name(5, 0, name, sizeof(name)) == 0 && !strcmp(name, "vif5.0"));
	CHECK(bk_tap_vif_name(32752, 65535, name, sizeof(name)) == 0 &&
	      !strcmp(name, "vif32752.65535"));
	CHECK(bk_tap_vif_name(3275200, 65535, name, sizeof(name)) == -ENAMETOOLONG);
	CHECK(bk_tap_open("", 1, &t) == -EINVAL && !t);
	CHECK(bk_tap_open("a/b", 1, &t) == -EINVAL);
	CHECK(bk_tap_open("0123456789abcdef", 1, &t) == -EINVAL);
	CHECK(bk_tap_open("vif1.0", 0, &t) == -EINVAL);
	CHECK(bk_tap_open("vif1.0", BK_TAP_MAX_QUEUES + 1, &t) == -EINVAL);
	/* An existing interface that is not a TAP. */
	CHECK(bk_tap_open("lo", 1, &t) == -EINVAL && !t);
	CHECK(if_nametoindex("vif1.0") == 0);
	/* A single-queue TAP of the same name (not ours): refused, and left alone. */
	{
		struct ifreq ifr;
		int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vif9.9");
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		CHECK(fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) == 0);
		CHECK(bk_tap_open("vif9.9", 1, &t) == -EINVAL && !t);
		CHECK(if_nametoindex("vif9.9") != 0);
		if (fd >= 0)
			close(fd);
		CHECK(if_nametoindex("vif9.9") == 0);
	}
}

static void test_flags(void)
{
	struct bk_tap *t = NULL;
	struct ifreq ifr;
	uint8_t mac[6];
	int hdr = 0;

	CHECK(bk_tap_open("vif1.0", 1, &t) == 0);
	if (!t)
		return;
	CHECK(!bk_tap_reattached(t) && bk_tap_nr_queues(t) == 1);
	CHECK(bk_tap_ifindex(t) > 0 && (unsigned int)bk_tap_ifindex(t) == if_nametoindex("vif1.0"));
	CHECK(!strcmp(bk_tap_name(t), "vif1.0"));
	memset(&ifr, 0, sizeof(ifr));
	CHECK(ioctl(bk_tap_fd(t, 0), TUNGETIFF, &ifr) == 0);
	CHECK((ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)) ==
	      (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE));
	CHECK(ioctl(bk_tap_fd(t, 0), TUNGETVNETHDRSZ, &hdr) == 0 && hdr == 12);
	CHECK(fcntl(bk_tap_fd(t, 0), F_GETFL) & O_NONBLOCK);
	CHECK(fcntl(bk_tap_fd(t, 0), F_GETFD) & FD_CLOEXEC);
	CHECK(bk_tap_fd(t, 1) == -EINVAL);
	/* Nothing waiting: a read batch returns 0, not an error. */
	{
		struct iovec iov = { buf, sizeof(buf) };
		struct bk_tap_pkt p = { .iov = &iov, .iovcnt = 1 };

		CHECK(bk_tap_read_batch(t, 0, &p, 1) == 0);
	}
	/* MTU and MAC. */
	CHECK(bk_tap_set_mtu(t, 9000) == 0 && bk_pkt_if_mtu("vif1.0") == 9000);
	CHECK(bk_tap_set_mac(t, guest_mac) == 0);
	CHECK(bk_tap_get_mac(t, mac) == 0 && !memcmp(mac, guest_mac, 6));
	CHECK(bk_tap_set_mtu(t, 10) == -EINVAL);
	/* Offload flags the kernel does not know are refused. */
	CHECK(bk_tap_set_offload(t, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0);
	CHECK(bk_tap_set_offload(t, 0x40000000) == -EINVAL);
	/* The name follows a rename (vif-common.sh renames to vifname). */
	{
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vif1.0");
		snprintf(ifr.ifr_newname, sizeof(ifr.ifr_newname), "guest1-eth0");
		CHECK(s >= 0 && ioctl(s, SIOCSIFNAME, &ifr) == 0);
		if (s >= 0)
			close(s);
		CHECK(!strcmp(bk_tap_name(t), "guest1-eth0"));
		CHECK(bk_tap_set_mtu(t, 1500) == 0 && bk_pkt_if_mtu("guest1-eth0") == 1500);
	}
	bk_tap_close(t);
	/* Not persistent: gone with its last fd. */
	CHECK(if_nametoindex("guest1-eth0") == 0);
}

static void test_frames(void)
{
	struct netif_feat feat = {
		.sg = true, .gso_tcpv4 = true, .gso_tcpv6 = true, .csum_v4 = true, .csum_v6 = true
	};
	struct nif_extra gso = { .type = NIF_EXTRA_TYPE_GSO };
	struct netif_offload_info info;
	struct virtio_net_hdr vh, got;
	struct netif_rx_meta meta;
	struct netif_hdrs h;
	struct bk_tap *t = NULL;
	const char *why;
	size_t len;
	ssize_t n;
	int ps;

	CHECK(bk_tap_open("vif2.0", 1, &t) == 0);
	if (!t)
		return;
	CHECK(bk_pkt_if_flags("vif2.0", IFF_UP) >= 0);
	ps = bk_pkt_socket(bk_tap_ifindex(t));
	CHECK(ps >= 0);
	if (ps < 0)
		goto out;

	/* Guest TX, checksum offloaded: the stack gets a partial checksum at the right spot. */
	len = mkframe(frame, 300, 17, 1000, &h);
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, NULL, frame, len, &vh, &info, &why) == 0);
	CHECK(tap_write_one(t, 0, &vh, frame, len) == 0);
	n = bk_pkt_recv(ps, &got, buf, sizeof(buf), NULL, NULL, 2000);
	CHECK(n == (ssize_t)len && !memcmp(buf, frame, len));
	CHECK(got.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && got.csum_start == 34 &&
	      got.csum_offset == 6);

	/* Guest TX, GSO: the stack gets one 4000-byte TCP frame to segment. */
	len = mkframe(frame, 4000, 6, 1001, &h);
	gso.u.gso.size = 1000;
	gso.u.gso.type = NIF_GSO_TYPE_TCPV4;
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, &gso, frame, len, &vh, &info, &why) == 0);
	CHECK(tap_write_one(t, 0, &vh, frame, len) == 0);
	n = bk_pkt_recv(ps, &got, buf, sizeof(buf), NULL, NULL, 2000);
	CHECK(n == (ssize_t)len && !memcmp(buf, frame, len));
	CHECK(got.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && got.gso_size == 1000);
	CHECK(got.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && got.csum_start == 34);

	/* data_validated alone maps to DATA_VALID, which the TAP takes. */
	len = mkframe(frame, 200, 17, 1003, &h);
	CHECK(netif_tx_to_vnet(NIF_TXF_DATA_VALIDATED, NULL, frame, len, &vh, &info, &why) == 0);
	CHECK(vh.flags == VIRTIO_NET_HDR_F_DATA_VALID);
	CHECK(tap_write_one(t, 0, &vh, frame, len) == 0);
	n = bk_pkt_recv(ps, &got, buf, sizeof(buf), NULL, NULL, 2000);
	CHECK(n == (ssize_t)len && !memcmp(buf, frame, len));

	/* A frame the kernel refuses (csum_start past the frame) is that frame's error only. */
	{
		uint8_t hdr[VH] = { 0 };
		struct virtio_net_hdr bad = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					      .csum_start = 5000,
					      .csum_offset = 6 };
		struct iovec iov[2] = { { hdr, VH }, { frame, 300 } };
		struct iovec iov2[2] = { { buf, VH }, { frame, 300 } };
		struct bk_tap_pkt p[2] = { { .iov = iov, .iovcnt = 2 },
					   { .iov = iov2, .iovcnt = 2, .err = 1 } };

		memcpy(hdr, &bad, sizeof(bad));
		memset(buf, 0, VH);
		mkframe(frame, 300, 17, 1002, &h);
		CHECK(bk_tap_write_batch(t, 0, p, 2) == 2);
		CHECK(p[0].err == -EINVAL && p[1].err == 0);
		n = bk_pkt_recv(ps, &got, buf + VH, sizeof(buf) - VH, NULL, NULL, 2000);
		CHECK(n == 300 && buf[VH + 34] == 0x03 && buf[VH + 35] == 0xea); /* port 1002 */
	}

	/* Guest RX with TSO4 offered: one GSO frame, mapped to a GSO extra. */
	CHECK(bk_tap_set_offload(t, netif_tun_offload(&feat)) == 0);
	len = mkframe(frame, 4000, 6, 2000, &h);
	vh = bk_pkt_vh_tso4(1000);
	CHECK(bk_pkt_send(ps, bk_tap_ifindex(t), &vh, frame, len) == 0);
	n = tap_recv(t, 0, buf, sizeof(buf));
	CHECK(n == (ssize_t)(VH + len));
	if (n > 0) {
		memcpy(&got, buf, sizeof(got));
		CHECK(got.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && got.gso_size == 1000);
		CHECK(got.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
		CHECK(netif_rx_from_vnet(&got, buf + VH, (size_t)n - VH, &feat, &meta, &info,
					 &why) == 0);
		CHECK(meta.gso_type == NIF_GSO_TYPE_TCPV4 && meta.gso_size == 1000 &&
		      meta.flags == (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED));
		CHECK(!memcmp(buf + VH + 54, frame + 54, len - 54));
	}

	/* Checksum only: segmented by the stack, each segment still partial. */
	CHECK(bk_tap_set_offload(t, TUN_F_CSUM) == 0);
	CHECK(bk_pkt_send(ps, bk_tap_ifindex(t), &vh, frame, len) == 0);
	for (int i = 0; i < 4; i++) {
		size_t want = 54 + (i < 3 ? 1000 : 946);

		n = tap_recv(t, 0, buf, sizeof(buf));
		CHECK(n == (ssize_t)(VH + want));
		if (n <= 0)
			break;
		memcpy(&got, buf, sizeof(got));
		CHECK(got.gso_type == VIRTIO_NET_HDR_GSO_NONE);
		CHECK(got.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && got.csum_start == 34);
		CHECK(!memcmp(buf + VH + 54, frame + 54 + i * 1000, want - 54));
		/* Finished for a frontend that refused the offload: then it verifies. */
		feat.csum_v4 = false;
		CHECK(netif_rx_from_vnet(&got, buf + VH, want, &feat, &meta, &info, &why) == 0);
		CHECK(info.csum_sw && bk_pkt_l4_ok(buf + VH, want));
		feat.csum_v4 = true;
	}

	/* No offload: the reader gets segments with finished checksums. */
	CHECK(bk_tap_set_offload(t, 0) == 0);
	CHECK(bk_pkt_send(ps, bk_tap_ifindex(t), &vh, frame, len) == 0);
	for (int i = 0; i < 4; i++) {
		size_t want = 54 + (i < 3 ? 1000 : 946);

		n = tap_recv(t, 0, buf, sizeof(buf));
		CHECK(n == (ssize_t)(VH + want));
		if (n <= 0)
			break;
		memcpy(&got, buf, sizeof(got));
		CHECK(got.gso_type == VIRTIO_NET_HDR_GSO_NONE &&
		      !(got.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM));
		CHECK(bk_pkt_l4_ok(buf + VH, want));
	}
	close(ps);
out:
	bk_tap_close(t);
}

static void test_persist(void)
{
	struct bk_tap *t = NULL;
	uint8_t mac[6];
	int ifindex;

	CHECK(bk_tap_open("vif3.1", 2, &t) == 0);
	if (!t)
		return;
	ifindex = bk_tap_ifindex(t);
	CHECK(bk_tap_set_persist(t, true) == 0);
	CHECK(bk_tap_set_mtu(t, 4000) == 0 && bk_tap_set_mac(t, guest_mac) == 0);
	CHECK(bk_pkt_if_flags("vif3.1", IFF_UP) >= 0);
	bk_tap_close(t);
	/* A daemon restart: the interface stays, with what was set on it. */
	CHECK((int)if_nametoindex("vif3.1") == ifindex);
	CHECK(bk_pkt_if_mtu("vif3.1") == 4000 && (bk_pkt_if_flags("vif3.1", 0) & IFF_UP));

	t = NULL;
	CHECK(bk_tap_open("vif3.1", 4, &t) == 0);
	if (!t)
		return;
	CHECK(bk_tap_reattached(t) && bk_tap_ifindex(t) == ifindex && bk_tap_nr_queues(t) == 4);
	CHECK(bk_tap_get_mac(t, mac) == 0 && !memcmp(mac, guest_mac, 6));
	CHECK(bk_pkt_if_mtu("vif3.1") == 4000);
	/* Still persistent after re-attaching: survives a second close. */
	bk_tap_close(t);
	CHECK((int)if_nametoindex("vif3.1") == ifindex);
	t = NULL;
	CHECK(bk_tap_open("vif3.1", 1, &t) == 0);
	/* Device removal: persistence off, and it is gone. */
	bk_tap_remove(t);
	CHECK(if_nametoindex("vif3.1") == 0);
}

struct mq_state {
	struct bk_tap *t;
	unsigned int per_q[4];
	unsigned int flow_q[64]; /* queue + 1 where each source port's frames arrived */
	unsigned int total;
	bool mixed;
};

struct mq_watch {
	struct mq_state *st;
	unsigned int q;
};

static void mq_read(void *data, int fd, unsigned int events)
{
	struct mq_watch *w = data;
	struct mq_state *st = w->st;
	static uint8_t b[8][2048];
	struct iovec iov[8];
	struct bk_tap_pkt p[8];
	int n;

	for (int i = 0; i < 8; i++) {
		iov[i] = (struct iovec){ b[i], sizeof(b[i]) };
		p[i] = (struct bk_tap_pkt){ .iov = &iov[i], .iovcnt = 1 };
	}
	n = bk_tap_read_batch(st->t, w->q, p, 8);
	for (int i = 0; i < n; i++) {
		unsigned int port;

		if (!bk_pkt_ours(b[i] + VH, p[i].len - VH))
			continue;
		port = (unsigned int)(b[i][VH + 34] << 8 | b[i][VH + 35]) - 3000;
		st->per_q[w->q]++;
		st->total++;
		if (port < 64) {
			if (st->flow_q[port] && st->flow_q[port] != w->q + 1)
				st->mixed = true;
			st->flow_q[port] = w->q + 1;
		}
	}
}

static void test_multiqueue(void)
{
	struct virtio_net_hdr vh = { 0 };
	struct mq_state st = { 0 };
	struct mq_watch w[4];
	struct bk_loop *loop = NULL;
	struct netif_hdrs h;
	unsigned int used = 0;
	int ps;

	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_tap_open("vif4.0", 4, &st.t) == 0);
	if (!st.t || !loop)
		goto out;
	CHECK(bk_pkt_if_flags("vif4.0", IFF_UP) >= 0);
	ps = bk_pkt_socket(bk_tap_ifindex(st.t));
	CHECK(ps >= 0);
	for (unsigned int q = 0; q < 4; q++) {
		w[q] = (struct mq_watch){ &st, q };
		CHECK(bk_tap_watch(st.t, q, loop, BK_EV_READ, mq_read, &w[q]) == 0);
	}
	CHECK(bk_tap_watch(st.t, 4, loop, BK_EV_READ, mq_read, &w[0]) == -EINVAL);
	CHECK(bk_loop_nr_objects(loop) == 4);

	/* 64 flows, two frames each: spread over the queues, each flow on one queue. */
	for (int round = 0; round < 2; round++)
		for (unsigned int i = 0; i < 64; i++) {
			mkframe(frame, 100, 17, 3000 + i, &h);
			CHECK(bk_pkt_send(ps, bk_tap_ifindex(st.t), &vh, frame, 100) == 0);
		}
	for (int i = 0; i < 100 && st.total < 128; i++)
		bk_loop_run_once(loop, 20);
	CHECK(st.total == 128 && !st.mixed);
	for (unsigned int q = 0; q < 4; q++)
		used += st.per_q[q] > 0;
	CHECK(used >= 2);
	fprintf(stderr, "frames per queue: %u %u %u %u\n", st.per_q[0], st.per_q[1], st.per_q[2],
		st.per_q[3]);

	/* Any queue writes into the stack. */
	{
		struct virtio_net_hdr got, none = { 0 };

		mkframe(frame, 100, 17, 4242, &h);
		CHECK(tap_write_one(st.t, 3, &none, frame, 100) == 0);
		CHECK(bk_pkt_recv(ps, &got, buf, sizeof(buf), NULL, NULL, 2000) == 100);
	}
	/* Pausing a queue's watch. */
	bk_tap_watch_events(st.t, 0, 0);
	bk_tap_watch_events(st.t, 0, BK_EV_READ);
	if (ps >= 0)
		close(ps);
out:
	bk_tap_close(st.t);
	CHECK(!loop || bk_loop_nr_objects(loop) == 0);
	bk_loop_free(loop);
}

/*
 * The protocol layer and the TAP composed, with local pages standing in for granted ones (the
 * grant copies become memcpy): a guest's GSO frame in 3 TX slots reaches the stack whole, and a
 * stack GSO frame reaches "netfront" over RX requests, which reassembles it from its ring.
 */
static uint8_t pages[24][4096] __attribute__((aligned(4096)));
static uint8_t tx_ring[4096] __attribute__((aligned(4096))),
	rx_ring[4096] __attribute__((aligned(4096)));

static void test_datapath(void)
{
	struct netif_feat feat = {
		.sg = true, .gso_tcpv4 = true, .gso_tcpv6 = true, .csum_v4 = true, .csum_v6 = true
	};
	struct nif_sring_hdr *txh = (struct nif_sring_hdr *)tx_ring;
	struct nif_sring_hdr *rxh = (struct nif_sring_hdr *)rx_ring;
	static union nif_tx_slot copy[NETIF_RING_SIZE];
	static struct netif_tx_pkt pkt;
	static uint8_t asm_frame[65536], got_frame[65536];
	struct netif_offload_info info;
	struct virtio_net_hdr vh, got;
	struct netif_ring txr, rxr;
	struct bk_tap *t = NULL;
	struct netif_hdrs h;
	const char *why;
	uint32_t avail;
	size_t len;
	ssize_t n;
	int ps;

	CHECK(bk_tap_open("vif6.0", 1, &t) == 0);
	if (!t)
		return;
	CHECK(bk_pkt_if_flags("vif6.0", IFF_UP) >= 0);
	CHECK(bk_tap_set_offload(t, netif_tun_offload(&feat)) == 0);
	ps = bk_pkt_socket(bk_tap_ifindex(t));
	CHECK(ps >= 0);
	if (ps < 0)
		goto out;

	/* Guest TX: 5000 bytes = 1000 at offset 96 of page 0, then 3000 + 1000 on pages 1, 2. */
	len = mkframe(frame, 5000, 6, 3100, &h);
	memcpy(pages[0] + 96, frame, 1000);
	memcpy(pages[1], frame + 1000, 3000);
	memcpy(pages[2] + 4096 - 1000, frame + 4000, 1000);
	memset(tx_ring, 0, sizeof(tx_ring));
	{
		union nif_tx_slot s[5];

		memset(s, 0, sizeof(s));
		s[0].req = (struct nif_tx_req){ .gref = 0,
						.offset = 96,
						.id = 11,
						.size = 5000,
						.flags = NIF_TXF_CSUM_BLANK | NIF_TXF_EXTRA_INFO |
							 NIF_TXF_MORE_DATA };
		s[1].extra.type = NIF_EXTRA_TYPE_GSO;
		s[1].extra.u.gso.size = 1448;
		s[1].extra.u.gso.type = NIF_GSO_TYPE_TCPV4;
		s[2].req = (struct nif_tx_req){
			.gref = 1, .id = 12, .size = 3000, .flags = NIF_TXF_MORE_DATA
		};
		s[3].req = (struct nif_tx_req){ .gref = 2, .offset = 3096, .id = 13, .size = 1000 };
		memcpy(tx_ring + 64, s, 4 * 12);
	}
	txh->req_prod = 4;
	txh->rsp_event = 1;
	netif_ring_attach_tx(&txr, tx_ring);
	CHECK(netif_ring_unconsumed(&txr, &avail) == 0 && avail == 4);
	netif_ring_copy(&txr, copy, avail);
	CHECK(netif_tx_parse(copy, avail, &pkt) == NETIF_TX_OK && pkt.nr_consumed == 4);
	for (unsigned int k = 0; k < pkt.nr_frags; k++)
		memcpy(asm_frame + pkt.frag[k].pkt_off,
		       pages[pkt.frag[k].gref] + pkt.frag[k].offset, pkt.frag[k].size);
	CHECK(!memcmp(asm_frame, frame, len));
	CHECK(netif_tx_to_vnet(pkt.flags, netif_tx_pkt_gso(&pkt), asm_frame, pkt.len, &vh, &info,
			       &why) == 0);
	CHECK(tap_write_one(t, 0, &vh, asm_frame, pkt.len) == 0);
	netif_ring_consume(&txr, pkt.nr_consumed);
	CHECK(netif_tx_respond(&txr, &pkt, NIF_RSP_OKAY) == 4 && netif_ring_push(&txr));
	CHECK(txh->rsp_prod == 4);
	{
		struct nif_tx_rsp r[4];

		for (int i = 0; i < 4; i++)
			memcpy(&r[i], tx_ring + 64 + i * 12, 4);
		CHECK(r[0].id == 11 && r[0].status == 0 && r[1].status == NIF_RSP_NULL &&
		      r[2].id == 12 && r[2].status == 0 && r[3].id == 13 && r[3].status == 0);
	}
	n = bk_pkt_recv(ps, &got, buf, sizeof(buf), NULL, NULL, 2000);
	CHECK(n == (ssize_t)len && !memcmp(buf, frame, len));
	CHECK(got.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && got.gso_size == 1448);

	/* Guest RX: a 20000-byte GSO frame over 8 posted requests (it needs 5 + the extra). */
	len = mkframe(frame, 20000, 6, 3200, &h);
	vh = bk_pkt_vh_tso4(1448);
	CHECK(bk_pkt_send(ps, bk_tap_ifindex(t), &vh, frame, len) == 0);
	n = tap_recv(t, 0, buf, sizeof(buf));
	CHECK(n == (ssize_t)(VH + len));
	memset(rx_ring, 0, sizeof(rx_ring));
	for (uint16_t i = 0; i < 8; i++) {
		struct nif_rx_req rq = { .id = (uint16_t)(40 + i), .gref = 8U + i };

		memcpy(rx_ring + 64 + i * 8, &rq, 8);
	}
	rxh->req_prod = 8;
	rxh->rsp_event = 1;
	netif_ring_attach_rx(&rxr, rx_ring);
	if (n > 0) {
		struct netif_rx_meta meta;
		struct nif_rx_req reqs[NETIF_RX_MAX_SLOTS];
		union nif_rx_slot rsp[NETIF_RX_MAX_SLOTS];
		struct netif_rx_seg segs[NETIF_RX_MAX_SLOTS];
		uint32_t need;
		size_t flen = (size_t)n - VH, off = 0;
		int nseg;

		memcpy(&got, buf, sizeof(got));
		CHECK(netif_rx_from_vnet(&got, buf + VH, flen, &feat, &meta, &info, &why) == 0);
		need = netif_rx_slots(flen, &meta);
		CHECK(need == 6 && netif_ring_rx_wait(&rxr, need));
		netif_ring_copy(&rxr, reqs, need);
		netif_ring_consume(&rxr, need);
		nseg = netif_rx_build(reqs, need, flen, &meta, rsp, segs);
		CHECK(nseg == 5);
		for (int i = 0; i < nseg; i++)
			memcpy(pages[segs[i].gref] + segs[i].dst_off, buf + VH + segs[i].src_off,
			       segs[i].len);
		for (uint32_t i = 0; i < need; i++)
			netif_ring_put(&rxr, &rsp[i]);
		CHECK(netif_ring_push(&rxr) && rxh->rsp_prod == 6);

		/* netfront: responses by ring position, the extra after the first slot. */
		for (uint32_t i = 0; i < rxh->rsp_prod; i++) {
			union nif_rx_slot o;
			struct nif_rx_req rq = { .id = (uint16_t)(40 + i), .gref = 8U + i };

			memcpy(&o, rx_ring + 64 + i * 8, 8);
			if (i == 1) {
				CHECK(o.extra.type == NIF_EXTRA_TYPE_GSO &&
				      o.extra.u.gso.size == 1448 &&
				      o.extra.u.gso.type == NIF_GSO_TYPE_TCPV4);
				continue;
			}
			CHECK(o.rsp.id == rq.id && o.rsp.offset == 0 && o.rsp.status > 0);
			if (i == 0)
				CHECK(o.rsp.flags == (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED |
						      NIF_RXF_EXTRA_INFO | NIF_RXF_MORE_DATA));
			CHECK(!!(o.rsp.flags & NIF_RXF_MORE_DATA) == (i + 1 < rxh->rsp_prod));
			memcpy(got_frame + off, pages[rq.gref], (size_t)o.rsp.status);
			off += (size_t)o.rsp.status;
		}
		CHECK(off == len && !memcmp(got_frame, frame, len));
	}
	close(ps);
out:
	bk_tap_close(t);
}

/*
 * What persistence is for: a vif on a bridge stays on it across a daemon restart, and frames
 * from the re-attached queues reach the bridge. Membership is read from a sysfs mounted in a
 * private mount namespace (it then shows this network namespace's devices).
 */
static void test_bridge(void)
{
	char sys[] = "/tmp/test-tap-sysXXXXXX", path[256], link[256];
	struct virtio_net_hdr got;
	struct bk_tap *t = NULL;
	struct ifreq ifr;
	struct netif_hdrs h;
	ssize_t n;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ps = -1;

	if (s < 0 || ioctl(s, SIOCBRADDBR, "xenbr0") < 0) {
		fprintf(stderr, "note: no bridge support, bridge membership not checked\n");
		if (s >= 0)
			close(s);
		return;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !mkdtemp(sys)) {
		fprintf(stderr, "note: no private sysfs, bridge membership not checked\n");
		goto out;
	}
	if (mount("sysfs", sys, "sysfs", 0, NULL) < 0) {
		fprintf(stderr, "note: mounting sysfs: %m\n");
		rmdir(sys);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/class/net/vif7.0/master", sys);

	CHECK(bk_tap_open("vif7.0", 2, &t) == 0);
	if (!t)
		goto umount;
	CHECK(bk_tap_set_persist(t, true) == 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "xenbr0");
	ifr.ifr_ifindex = bk_tap_ifindex(t);
	CHECK(ioctl(s, SIOCBRADDIF, &ifr) == 0);
	CHECK(bk_pkt_if_flags("vif7.0", IFF_UP) >= 0 && bk_pkt_if_flags("xenbr0", IFF_UP) >= 0);
	n = readlink(path, link, sizeof(link) - 1);
	CHECK(n > 0 && (link[n] = 0, strstr(link, "/xenbr0") != NULL));

	/* Restart: close every queue, attach again. */
	bk_tap_close(t);
	t = NULL;
	n = readlink(path, link, sizeof(link) - 1);
	CHECK(n > 0 && (link[n] = 0, strstr(link, "/xenbr0") != NULL));
	CHECK(bk_tap_open("vif7.0", 2, &t) == 0);
	if (!t)
		goto umount;
	CHECK(bk_tap_reattached(t));
	n = readlink(path, link, sizeof(link) - 1);
	CHECK(n > 0 && (link[n] = 0, strstr(link, "/xenbr0") != NULL));

	/* A broadcast frame from the re-attached second queue arrives on the bridge. */
	ps = bk_pkt_socket((int)if_nametoindex("xenbr0"));
	CHECK(ps >= 0);
	for (int i = 0; i < 300 && !(bk_pkt_if_flags("vif7.0", 0) & IFF_RUNNING); i++)
		usleep(10000);
	/* STP is off on a new bridge: the port forwards at once. */
	{
		struct virtio_net_hdr none = { 0 };

		mkframe(frame, 100, 17, 4343, &h);
		CHECK(tap_write_one(t, 1, &none, frame, 100) == 0);
	}
	n = ps >= 0 ? bk_pkt_recv(ps, &got, buf, sizeof(buf), NULL, NULL, 2000) : -1;
	CHECK(n == 100 && !memcmp(buf, frame, 100));
	if (ps >= 0)
		close(ps);
	bk_tap_remove(t);
	CHECK(if_nametoindex("vif7.0") == 0);
umount:
	umount(sys);
	rmdir(sys);
out:
	/* Best effort (an up bridge refuses): the namespace goes with the process anyway. */
	(void)ioctl(s, SIOCBRDELBR, "xenbr0");
	close(s);
}

static void test_carrier(void)
{
	struct bk_tap *t = NULL;
	int f = 0;

	CHECK(bk_tap_open("vif5.0", 1, &t) == 0);
	if (!t)
		return;
	CHECK(bk_pkt_if_flags("vif5.0", IFF_UP) >= 0);
	/* Link state settles asynchronously (linkwatch): poll up to 3 s each way. */
	for (int i = 0; i < 300 && !((f = bk_pkt_if_flags("vif5.0", 0)) & IFF_RUNNING); i++)
		usleep(10000);
	CHECK(f & IFF_RUNNING);
	CHECK(bk_tap_set_carrier(t, false) == 0);
	for (int i = 0; i < 300 && ((f = bk_pkt_if_flags("vif5.0", 0)) & IFF_RUNNING); i++)
		usleep(10000);
	CHECK(!(f & IFF_RUNNING));
	CHECK(bk_tap_set_carrier(t, true) == 0);
	for (int i = 0; i < 300 && !((f = bk_pkt_if_flags("vif5.0", 0)) & IFF_RUNNING); i++)
		usleep(10000);
	CHECK(f & IFF_RUNNING);
	bk_tap_close(t);
}

/*
 * Several reads in one submission (bk_tap_read_many): the frames waiting, in order, each in
 * its own buffer; the reads past them find the queue empty (-EAGAIN) at once instead of
 * waiting; an empty queue gives 0. Without io_uring, -EOPNOTSUPP.
 */
static void test_read_many(void)
{
	static uint8_t rb[6][VH + 2048];
	struct bk_tap *t = NULL;
	struct iovec iov[6];
	struct bk_tap_pkt p[6];
	struct virtio_net_hdr vh = { 0 };
	struct netif_hdrs h;
	size_t len;
	int ps, r;

	CHECK(bk_tap_open("vif3.0", 1, &t) == 0);
	if (!t)
		return;
	CHECK(bk_pkt_if_flags("vif3.0", IFF_UP) >= 0);
	ps = bk_pkt_socket(bk_tap_ifindex(t));
	CHECK(ps >= 0);
	for (unsigned int i = 0; i < 6; i++) {
		iov[i] = (struct iovec){ rb[i], sizeof(rb[i]) };
		p[i] = (struct bk_tap_pkt){ .iov = &iov[i], .iovcnt = 1 };
	}
	r = bk_tap_read_many(t, 0, p, 6);
	if (r == -EOPNOTSUPP) {
		CHECK(!HAVE_LIBURING);
		goto out;
	}
	CHECK(r == 0);
	for (unsigned int i = 0; ps >= 0 && i < 4; i++) {
		len = mkframe(frame, 200 + 100 * i, 17, 3000 + i, &h);
		CHECK(bk_pkt_send(ps, bk_tap_ifindex(t), &vh, frame, len) == 0);
	}
	r = bk_tap_read_many(t, 0, p, 6);
	CHECK(r == 4);
	for (unsigned int i = 0; i < 6; i++) {
		if (i < 4) {
			CHECK(p[i].err == 0 && p[i].len == VH + 200 + 100 * i);
			CHECK(rb[i][VH + 34] == (3000 + i) >> 8 &&
			      rb[i][VH + 35] == ((3000 + i) & 0xff));
		} else {
			CHECK(p[i].err == -EAGAIN);
		}
	}
	CHECK(bk_tap_read_many(t, 0, p, 6) == 0);
out:
	if (ps >= 0)
		close(ps);
	bk_tap_close(t);
}

int main(void)
{
	unsigned int fds;
	int r = bk_pkt_netns_setup();

	if (r)
		return r;
	fds = bk_test_count_fds();
	test_open_errors();
	test_flags();
	test_frames();
	test_read_many();
	test_persist();
	test_multiqueue();
	test_datapath();
	test_bridge();
	test_carrier();
	CHECK(bk_test_count_fds() == fds);
	return bk_test_exit();
}
