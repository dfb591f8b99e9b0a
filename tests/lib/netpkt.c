// SPDX-License-Identifier: MIT
/* Frames on dom0's side of a vif: see netpkt.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "netif/proto.h"
#include "netpkt.h"

int bk_pkt_netns_setup(void)
{
	int fd;

	if (geteuid() != 0) {
		fprintf(stderr, "skip: needs root\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "skip: unshare(CLONE_NEWNET): %m\n");
		return 77;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "skip: /dev/net/tun: %m\n");
		return 77;
	}
	close(fd);
	/* No router solicitations or MLD reports on our TAPs (best effort; readers filter too). */
	fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			fprintf(stderr, "note: disable_ipv6: %m\n");
		close(fd);
	}
	return 0;
}

int bk_pkt_if_flags(const char *name, short set)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		r = (unsigned short)ifr.ifr_flags;
		if (set) {
			ifr.ifr_flags |= set;
			if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
				r = -1;
		}
	}
	if (s >= 0)
		close(s);
	return r;
}

int bk_pkt_if_up(const char *name)
{
	return bk_pkt_if_flags(name, IFF_UP) < 0 ? -1 : 0;
}

int bk_pkt_if_mtu(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (s >= 0 && ioctl(s, SIOCGIFMTU, &ifr) == 0)
		r = ifr.ifr_mtu;
	if (s >= 0)
		close(s);
	return r;
}

int bk_pkt_socket(int ifindex)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	int one = 1, big = 8 << 20;
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));

	if (s < 0)
		return -1;
	/* Best effort: a burst from the daemon must not overflow the default buffer. */
	setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

int bk_pkt_send(int s, int ifindex, const struct virtio_net_hdr *vh, const uint8_t *f, size_t len)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_IP),
		.sll_ifindex = ifindex,
		.sll_halen = 6,
	};
	struct iovec iov[2] = { { (void *)vh, sizeof(*vh) }, { (void *)f, len } };
	struct msghdr mh = {
		.msg_name = &sll, .msg_namelen = sizeof(sll), .msg_iov = iov, .msg_iovlen = 2
	};

	memcpy(sll.sll_addr, f, 6);
	return sendmsg(s, &mh, 0) == (ssize_t)(sizeof(*vh) + len) ? 0 : -1;
}

bool bk_pkt_ours(const uint8_t *f, size_t len)
{
	return len >= 38 && f[12] == 0x08 && f[13] == 0x00 && f[36] == (BK_PKT_PORT_MARK >> 8) &&
	       f[37] == (BK_PKT_PORT_MARK & 0xff);
}

ssize_t bk_pkt_recv(int s, struct virtio_net_hdr *vh, uint8_t *f, size_t size, void (*pump)(void *),
		    void *data, int tries)
{
	while (tries-- > 0) {
		struct sockaddr_ll from;
		struct iovec iov[2] = { { vh, sizeof(*vh) }, { f, size } };
		struct msghdr mh = { .msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = iov,
				     .msg_iovlen = 2 };
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		if (pump)
			pump(data);
		if (poll(&p, 1, 1) <= 0)
			continue;
		n = recvmsg(s, &mh, 0);
		if (n < (ssize_t)sizeof(*vh))
			continue;
		n -= (ssize_t)sizeof(*vh);
		if (from.sll_pkttype != PACKET_OUTGOING && bk_pkt_ours(f, (size_t)n))
			return n;
	}
	return -1;
}

void bk_pkt_put16(uint8_t *p, unsigned int v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

size_t bk_pkt_frame(uint8_t *f, size_t len, uint8_t proto, unsigned int sport,
		    const uint8_t *src_mac, bool partial)
{
	size_t l4 = 34, hl = proto == 6 ? 20 : 8;
	uint32_t sum;

	memset(f, 0, len);
	memset(f, 0xff, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08;
	f[14] = 0x45;
	bk_pkt_put16(f + 16, (unsigned int)(len - 14));
	f[20] = 0x40;
	f[22] = 64;
	f[23] = proto;
	memcpy(f + 26, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8);
	bk_pkt_put16(f + 24, (uint16_t)~netif_csum_fold(netif_csum_add(0, f + 14, 20)));
	bk_pkt_put16(f + l4, sport);
	bk_pkt_put16(f + l4 + 2, BK_PKT_PORT_MARK);
	if (proto == 6) {
		f[l4 + 12] = 0x50;
		f[l4 + 13] = 0x18;
		bk_pkt_put16(f + l4 + 14, 65535);
	} else {
		bk_pkt_put16(f + l4 + 4, (unsigned int)(len - l4));
	}
	for (size_t i = l4 + hl; i < len; i++)
		f[i] = (uint8_t)(i * 13 + sport);
	/* Partial checksum: the pseudo-header sum in the field. */
	sum = netif_csum_add(0, f + 26, 8) + proto + (uint32_t)(len - l4);
	bk_pkt_put16(f + l4 + (proto == 6 ? 16 : 6), netif_csum_fold(sum));
	if (!partial) {
		uint16_t c = (uint16_t)~netif_csum_fold(netif_csum_add(0, f + l4, len - l4));

		bk_pkt_put16(f + l4 + (proto == 6 ? 16 : 6), c ? c : 0xffff);
	}
	return len;
}

struct virtio_net_hdr bk_pkt_vh_tso4(uint16_t gso_size)
{
	return (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					.gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
					.gso_size = gso_size,
					.hdr_len = 54,
					.csum_start = 34,
					.csum_offset = 16 };
}

bool bk_pkt_l4_ok(const uint8_t *f, size_t len)
{
	struct netif_hdrs h;
	uint32_t sum;

	if (netif_parse_hdrs(f, len, &h) < 0)
		return false;
	sum = netif_csum_add(0, f + h.l3_off + 12, 8) + h.l4_proto + (uint32_t)(len - h.l4_off);
	sum = netif_csum_add(sum, f + h.l4_off, len - h.l4_off);
	return netif_csum_fold(sum) == 0xffff;
}

unsigned int bk_pkt_sport(const uint8_t *f)
{
	return (unsigned int)(f[34] << 8 | f[35]);
}
