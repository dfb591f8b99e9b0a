// SPDX-License-Identifier: MIT
/*
 * Checksum and GSO offloads between netif (flags + a GSO extra, no header offsets) and the
 * TAP's virtio_net_hdr (offsets, no guesswork). Header parsing is bounded by the bytes present
 * and by netback's own limits (IPv6 headers within 256 bytes), and safe on any input.
 */
#include <errno.h>
#include <string.h>

#include <linux/if_tun.h>

#include "proto.h"
#include "util/macros.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define MAX_VLAN_TAGS 2
#define IPV6_MAX_HDR_LEN 256U /* netback's and netfront's MAX_IPV6_HDR_LEN */

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_DSTOPTS_ 60

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

uint32_t netif_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += be16(p + i);
	if (i < len)
		s += (uint32_t)p[i] << 8;
	while (s >> 32)
		s = (s & 0xffffffffU) + (s >> 32);
	return (uint32_t)s;
}

uint16_t netif_csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* IPv6 extension headers up to the transport header, as skb_checksum_setup_ipv6 walks them. */
static int parse_ipv6(const uint8_t *f, size_t len, size_t l3, struct netif_hdrs *h, size_t *ret_l4)
{
	size_t off = l3 + 40;
	uint8_t next = f[l3 + 6];

	for (;;) {
		size_t hl;

		switch (next) {
		case IPPROTO_HOPOPTS_:
		case IPPROTO_ROUTING_:
		case IPPROTO_DSTOPTS_:
		case IPPROTO_AH_:
		case IPPROTO_FRAGMENT_:
			break;
		default:
			h->l4_proto = next;
			*ret_l4 = off;
			return 0;
		}
		if (off + 8 - l3 > IPV6_MAX_HDR_LEN)
			return -EPROTO;
		if (off + 8 > len)
			return -EMSGSIZE;
		if (next == IPPROTO_FRAGMENT_) {
			/* Offset or more-fragments set: a fragment has no whole L4 header. */
			if (be16(f + off + 2) & 0xfff9)
				return -EPROTO;
			hl = 8;
		} else if (next == IPPROTO_AH_) {
			hl = ((size_t)f[off + 1] + 2) * 4;
		} else {
			hl = ((size_t)f[off + 1] + 1) * 8;
		}
		next = f[off];
		off += hl;
	}
}

int netif_parse_hdrs(const uint8_t *f, size_t len, struct netif_hdrs *ret)
{
	struct netif_hdrs h = { 0 };
	size_t off = NETIF_ETH_HLEN, l4;
	uint16_t type;
	int r;

	if (len < NETIF_ETH_HLEN)
		return -EMSGSIZE;
	type = be16(f + 12);
	for (unsigned int tags = 0; type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ; tags++) {
		if (tags == MAX_VLAN_TAGS)
			return -EPROTO;
		if (off + 4 > len)
			return -EMSGSIZE;
		type = be16(f + off + 2);
		off += 4;
	}
	h.l3_off = (uint16_t)off;
	if (type == ETHERTYPE_IPV4) {
		size_t ihl;

		if (off + 20 > len)
			return -EMSGSIZE;
		if (f[off] >> 4 != 4)
			return -EPROTO;
		ihl = (size_t)(f[off] & 0xf) * 4;
		if (ihl < 20)
			return -EPROTO;
		if (off + ihl > len)
			return -EMSGSIZE;
		if (be16(f + off + 6) & 0x3fff) /* more fragments, or an offset */
			return -EPROTO;
		h.ip_version = 4;
		h.l4_proto = f[off + 9];
		l4 = off + ihl;
	} else if (type == ETHERTYPE_IPV6) {
		if (off + 40 > len)
			return -EMSGSIZE;
		if (f[off] >> 4 != 6)
			return -EPROTO;
		h.ip_version = 6;
		r = parse_ipv6(f, len, off, &h, &l4);
		if (r < 0)
			return r;
	} else {
		return -EPROTO;
	}

	if (h.l4_proto == IPPROTO_TCP_) {
		size_t doff;

		if (l4 + 20 > len)
			return -EMSGSIZE;
		doff = (size_t)(f[l4 + 12] >> 4) * 4;
		if (doff < 20)
			return -EPROTO;
		if (l4 + doff > len)
			return -EMSGSIZE;
		h.l4_len = (uint16_t)doff;
		h.csum_off = 16;
	} else if (h.l4_proto == IPPROTO_UDP_) {
		if (l4 + 8 > len)
			return -EMSGSIZE;
		h.l4_len = 8;
		h.csum_off = 6;
	} else {
		return -EPROTO;
	}
	h.l4_off = (uint16_t)l4; /* < 14 + 8 + 256 + 60: fits */
	*ret = h;
	return 0;
}

/* Write the pseudo-header sum into the L4 checksum field, as a partial checksum expects. */
static void write_pseudo_csum(uint8_t *f, size_t len, const struct netif_hdrs *h)
{
	uint32_t sum = 0;
	size_t l4_bytes = len - h->l4_off;

	if (h->ip_version == 4) {
		sum = netif_csum_add(sum, f + h->l3_off + 12, 8); /* source and destination */
		sum += h->l4_proto;
		sum += (uint32_t)(l4_bytes & 0xffff);
	} else {
		sum = netif_csum_add(sum, f + h->l3_off + 8, 32);
		sum += h->l4_proto;
		sum += (uint32_t)(l4_bytes >> 16) + (uint32_t)(l4_bytes & 0xffff);
	}
	put_be16(f + h->l4_off + h->csum_off, netif_csum_fold(sum));
}

#define FAIL(err, why)            \
	do {                      \
		*ret_why = (why); \
		return (err);     \
	} while (0)

int netif_tx_to_vnet(uint16_t txflags, const struct nif_extra *gso, uint8_t *frame, size_t len,
		     struct virtio_net_hdr *vh, struct netif_offload_info *info,
		     const char **ret_why)
{
	struct netif_hdrs h;
	int r;

	memset(vh, 0, sizeof(*vh));
	memset(info, 0, sizeof(*info));
	*ret_why = NULL;
	if (!gso && !(txflags & NIF_TXF_CSUM_BLANK)) {
		if (txflags & NIF_TXF_DATA_VALIDATED)
			vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
		return 0;
	}
	r = netif_parse_hdrs(frame, len, &h);
	if (r < 0)
		FAIL(r, gso ? "GSO frame without TCP over IP headers"
			    : "checksum offload on a frame without TCP/UDP over IP headers");
	if (gso) {
		bool v4 = gso->u.gso.type == NIF_GSO_TYPE_TCPV4;

		if (h.l4_proto != IPPROTO_TCP_ || h.ip_version != (v4 ? 4 : 6))
			FAIL(-EPROTO, "GSO type does not match the frame's headers");
		/* Some frontends forget csum_blank on GSO frames: netback forces it, so do we. */
		if (!(txflags & NIF_TXF_CSUM_BLANK)) {
			write_pseudo_csum(frame, len, &h);
			info->csum_fixup = true;
		}
		vh->gso_type = v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
		vh->gso_size = gso->u.gso.size;
		/* Keeps every header in the TAP skb's linear part (the XSA-423 lesson). */
		vh->hdr_len = (uint16_t)(h.l4_off + h.l4_len);
		info->gso = true;
	}
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->csum_start = h.l4_off;
	vh->csum_offset = h.csum_off;
	info->csum_partial = true;
	return 0;
}

unsigned int netif_tun_offload(const struct netif_feat *f)
{
	unsigned int flags = 0;

	/* tun has no per-family checksum bit: a v6-only gap is filled in software on RX. */
	if (f->csum_v4 || f->csum_v6)
		flags |= TUN_F_CSUM;
	/* A GSO frame reaches netfront with a partial checksum: it needs that family's csum. */
	if (f->sg && f->gso_tcpv4 && f->csum_v4)
		flags |= TUN_F_TSO4;
	if (f->sg && f->gso_tcpv6 && f->csum_v6)
		flags |= TUN_F_TSO6;
	/* Never UFO/USO/ECN: netif has no UDP GSO and no ECN flag. */
	return flags;
}

/* Finish a partial checksum: the field holds the pseudo-header sum, add the rest. */
static int csum_complete(uint8_t *f, size_t len, size_t start, size_t off)
{
	uint16_t c;

	if (start >= len || off > len - start || len - start - off < 2)
		return -EPROTO;
	c = (uint16_t)~netif_csum_fold(netif_csum_add(0, f + start, len - start));
	put_be16(f + start + off, c ? c : 0xffff); /* 0 means "no checksum" to UDP */
	return 0;
}

int netif_rx_from_vnet(const struct virtio_net_hdr *vh, uint8_t *frame, size_t len,
		       const struct netif_feat *f, struct netif_rx_meta *meta,
		       struct netif_offload_info *info, const char **ret_why)
{
	struct netif_hdrs h = { 0 };
	uint8_t gso = vh->gso_type, want_ip = 0;
	bool handover = false;

	memset(meta, 0, sizeof(*meta));
	memset(info, 0, sizeof(*info));
	*ret_why = NULL;
	if (len < NETIF_ETH_HLEN)
		FAIL(-EMSGSIZE, "frame shorter than an Ethernet header");
	if (len > NETIF_RX_MAX_LEN)
		FAIL(-EMSGSIZE, "frame larger than 64 KiB");
	if (!f->sg && len > NETIF_PAGE_SIZE)
		FAIL(-EMSGSIZE, "frame larger than a page for a frontend without feature-sg");
	if (gso != VIRTIO_NET_HDR_GSO_NONE) {
		if (gso == VIRTIO_NET_HDR_GSO_TCPV4 && f->gso_tcpv4 && f->sg)
			want_ip = 4;
		else if (gso == VIRTIO_NET_HDR_GSO_TCPV6 && f->gso_tcpv6 && f->sg)
			want_ip = 6;
		else
			FAIL(-EOPNOTSUPP,
			     "GSO type netif cannot carry or the frontend did not negotiate");
		if (vh->gso_size == 0)
			FAIL(-EPROTO, "GSO frame with size 0");
		if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
			FAIL(-EPROTO, "GSO frame without a partial checksum");
	}
	if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		/*
		 * netfront finds the checksum by parsing (no VLAN tag, IPv4/IPv6, TCP/UDP): hand
		 * the partial sum on only when it will find the same place, and only for a
		 * family it accepts; otherwise finish it here.
		 */
		if (netif_parse_hdrs(frame, len, &h) == 0 && h.l3_off == NETIF_ETH_HLEN &&
		    h.l4_off == vh->csum_start && h.csum_off == vh->csum_offset)
			handover = h.ip_version == 4 ? f->csum_v4 : f->csum_v6;
		if (want_ip) {
			if (!handover || h.l4_proto != IPPROTO_TCP_ || h.ip_version != want_ip)
				FAIL(-EPROTO, "GSO frame whose headers netfront would not find");
			meta->gso_type = want_ip == 4 ? NIF_GSO_TYPE_TCPV4 : NIF_GSO_TYPE_TCPV6;
			meta->gso_size = vh->gso_size;
			info->gso = true;
		}
		if (handover) {
			meta->flags = NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED;
			info->csum_partial = true;
		} else {
			if (csum_complete(frame, len, vh->csum_start, vh->csum_offset) < 0)
				FAIL(-EPROTO, "partial checksum outside the frame");
			meta->flags = NIF_RXF_DATA_VALIDATED;
			info->csum_sw = true;
		}
	} else if (vh->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		meta->flags = NIF_RXF_DATA_VALIDATED;
	}
	return 0;
}
