/* SPDX-License-Identifier: MIT */
/*
 * Frames on dom0's side of a vif, for the TAP and netif tests: a private network namespace,
 * interface flags, a packet socket with virtio_net_hdr on an interface, and IPv4 TCP/UDP
 * frames marked by their destination port (BK_PKT_PORT_MARK) so that a reader can tell ours
 * from the stack's own traffic.
 */
#ifndef BK_TEST_NETPKT_H
#define BK_TEST_NETPKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/virtio_net.h>

#define BK_PKT_PORT_MARK 0x4242 /* destination port of our frames: anything else is the stack's */

/* As root, enter a fresh network namespace with /dev/net/tun and IPv6 off; 0, else 77 (skip). */
int bk_pkt_netns_setup(void);
/* Interface @name's flags (before setting), with @set or'ed in when non-zero; -1 on error. */
int bk_pkt_if_flags(const char *name, short set);
/* Bring @name up: 0 or -1. */
int bk_pkt_if_up(const char *name);
/* @name's MTU or -1. */
int bk_pkt_if_mtu(const char *name);

/* A non-blocking packet socket on @ifindex with virtio_net_hdr (10 bytes) before each frame. */
int bk_pkt_socket(int ifindex);
/* Send frame @f of @len bytes after @vh out of @ifindex: 0 or -1. */
int bk_pkt_send(int s, int ifindex, const struct virtio_net_hdr *vh, const uint8_t *f, size_t len);
/*
 * Our next frame seen by the packet socket (not one we sent) into @vh and @f. @pump (may be
 * NULL) runs before each poll (the daemon's loop); gives up after @tries polls of 1 ms. Its
 * length or -1.
 */
ssize_t bk_pkt_recv(int s, struct virtio_net_hdr *vh, uint8_t *f, size_t size, void (*pump)(void *),
		    void *data, int tries);
/* @f is one of our frames: IPv4 with the marked destination port. */
bool bk_pkt_ours(const uint8_t *f, size_t len);

/* Store @v big-endian in 2 bytes. */
void bk_pkt_put16(uint8_t *p, unsigned int v);
/*
 * Build an IPv4 TCP (proto 6) or UDP (17) broadcast frame of @len bytes from @src_mac in @f,
 * payload keyed by @sport. The L4 checksum is the pseudo-header sum (partial) when @partial,
 * else complete. Returns @len.
 */
size_t bk_pkt_frame(uint8_t *f, size_t len, uint8_t proto, unsigned int sport,
		    const uint8_t *src_mac, bool partial);
/*
 * The virtio_net_hdr of a TCPv4 frame from bk_pkt_frame() to be segmented at @gso_size: TSO4,
 * checksum needed from the L4 header (offset 34) at its checksum field, headers 54 bytes.
 */
struct virtio_net_hdr bk_pkt_vh_tso4(uint16_t gso_size);
/* The frame's L4 checksum verifies (pseudo-header included). */
bool bk_pkt_l4_ok(const uint8_t *f, size_t len);
/* The source port of a frame built by bk_pkt_frame(). */
unsigned int bk_pkt_sport(const uint8_t *f);

#endif
