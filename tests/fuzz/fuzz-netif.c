// SPDX-License-Identifier: MIT
/*
 * libFuzzer target over the netif protocol layer (backends/netif/proto.c, offload.c): a
 * guest's TX ring page at any indices, parsed packet by packet as the backend will, each
 * accepted packet turned into a virtio_net_hdr over hostile frame bytes; and a hostile frame
 * with a hostile virtio_net_hdr from the TAP mapped and laid over RX requests. Whatever the
 * parser or the mappings accept must be inside the rules. Built with -Dfuzz=true (clang); the
 * corpus is also replayed by tests/fuzz/replay.c in the fuzz suite.
 *
 * Input: byte 0 = frontend features (bit 0 sg, 1 gso-tcpv4, 2 gso-tcpv6, 3 csum v4, 4 csum
 * v6); bytes 1-4 = starting ring index; bytes 5-14 = the TAP's virtio_net_hdr; then the TX ring
 * page (4096 bytes), then the frame bytes (what is missing is zero).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netif/proto.h"

#define HDR 15U

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t ring_page[4096] __attribute__((aligned(4096)));
static union nif_tx_slot slots[NETIF_RING_SIZE];
static struct netif_tx_pkt pkt;
static uint8_t frame_in[NETIF_RX_MAX_LEN + 1];
static uint8_t frame[NETIF_TX_MAX_LEN + 1];

static void invariant(int cond)
{
	if (!cond)
		abort();
}

static void check_vnet(const struct virtio_net_hdr *vh, size_t len)
{
	if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		invariant((size_t)vh->csum_start + vh->csum_offset + 2 <= len);
	if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		invariant(vh->gso_type == VIRTIO_NET_HDR_GSO_TCPV4 ||
			  vh->gso_type == VIRTIO_NET_HDR_GSO_TCPV6);
		invariant(vh->gso_size > 0 && vh->hdr_len <= len);
		invariant(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
	}
}

static void check_accepted(uint32_t avail)
{
	uint32_t sum = 0;

	invariant(pkt.nr_consumed <= avail);
	switch (pkt.verdict) {
	case NETIF_TX_OK:
		invariant(pkt.why == NULL);
		invariant(pkt.nr_frags >= 1 && pkt.nr_frags <= 1 + NETIF_TX_SLOTS_OK);
		invariant(pkt.nr_consumed == pkt.nr_extras + pkt.nr_frags);
		invariant(pkt.frag[0].size >= NETIF_ETH_HLEN);
		for (uint32_t k = 0; k < pkt.nr_frags; k++) {
			invariant((uint32_t)pkt.frag[k].offset + pkt.frag[k].size <=
				  NETIF_PAGE_SIZE);
			invariant(pkt.frag[k].pkt_off == sum);
			sum += pkt.frag[k].size;
		}
		invariant(sum == pkt.len);
		if (netif_tx_pkt_gso(&pkt)) {
			const struct nif_extra *g = netif_tx_pkt_gso(&pkt);

			invariant(g->u.gso.size > 0);
			invariant(g->u.gso.type == NIF_GSO_TYPE_TCPV4 ||
				  g->u.gso.type == NIF_GSO_TYPE_TCPV6);
		}
		break;
	case NETIF_TX_DROP:
		invariant(pkt.why != NULL);
		invariant(pkt.nr_frags >= 1 && pkt.nr_frags <= NETIF_TX_MAX_FRAGS);
		invariant(pkt.nr_consumed == pkt.nr_extras + pkt.nr_frags);
		break;
	case NETIF_TX_MCAST_ADD:
	case NETIF_TX_MCAST_DEL:
		invariant(pkt.nr_consumed == 1 + pkt.nr_extras);
		break;
	default:
		abort();
	}
}

static void fuzz_tx(uint32_t start, const uint8_t *fin, size_t fin_len)
{
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)ring_page;
	struct netif_ring r;

	netif_ring_attach_tx(&r, ring_page);
	r.req_cons = r.rsp_prod_pvt = r.rsp_pushed = start;
	for (int round = 0; round < 3; round++) {
		uint32_t avail, done = 0;

		if (netif_ring_unconsumed(&r, &avail) < 0)
			return; /* the device would fail here */
		invariant(avail <= NETIF_RING_SIZE);
		netif_ring_copy(&r, slots, avail);
		while (done < avail) {
			struct virtio_net_hdr vh;
			struct netif_offload_info info;
			const char *why;
			enum netif_tx_verdict v = netif_tx_parse(slots + done, avail - done, &pkt);

			if (v == NETIF_TX_FATAL) {
				invariant(pkt.why != NULL);
				return;
			}
			check_accepted(avail - done);
			if (v == NETIF_TX_OK) {
				/* The frame the grant copies would assemble: hostile bytes. */
				size_t n = fin_len < pkt.len ? fin_len : pkt.len;

				memcpy(frame, fin, n);
				memset(frame + n, 0, pkt.len - n);
				if (netif_tx_to_vnet(pkt.flags, netif_tx_pkt_gso(&pkt), frame,
						     pkt.len, &vh, &info, &why) == 0)
					check_vnet(&vh, pkt.len);
				else
					invariant(why != NULL);
			}
			invariant(netif_tx_respond(&r, &pkt,
						   v == NETIF_TX_DROP
							   ? NIF_RSP_ERROR
							   : NIF_RSP_OKAY) == pkt.nr_consumed);
			done += pkt.nr_consumed;
		}
		netif_ring_consume(&r, done);
		invariant(r.rsp_prod_pvt == r.req_cons);
		netif_ring_push(&r);
		/* The guest moves its producer on between rounds. */
		h->req_prod += (uint32_t)round * 7;
		if (!netif_ring_final_check(&r))
			break;
	}
}

static void fuzz_rx(const struct netif_feat *f, const struct virtio_net_hdr *vh, const uint8_t *fin,
		    size_t len)
{
	struct nif_rx_req reqs[NETIF_RX_MAX_SLOTS];
	union nif_rx_slot rsp[NETIF_RX_MAX_SLOTS];
	struct netif_rx_seg segs[NETIF_RX_MAX_SLOTS];
	struct netif_offload_info info;
	struct netif_rx_meta meta;
	struct netif_hdrs hh;
	const char *why;
	uint32_t nslots;
	size_t total = 0;
	int nseg;

	memcpy(frame_in, fin, len);
	if (netif_rx_from_vnet(vh, frame_in, len, f, &meta, &info, &why) < 0) {
		invariant(why != NULL);
		return;
	}
	if (meta.gso_type != NIF_GSO_TYPE_NONE) {
		invariant(f->sg);
		invariant(meta.gso_type == NIF_GSO_TYPE_TCPV4 ? f->gso_tcpv4 : f->gso_tcpv6);
		invariant(meta.gso_size > 0 && (meta.flags & NIF_RXF_CSUM_BLANK));
	}
	if (meta.flags & NIF_RXF_CSUM_BLANK) {
		/* Handed on only where netfront's own parsing finds the checksum. */
		invariant(netif_parse_hdrs(frame_in, len, &hh) == 0);
		invariant(hh.l3_off == NETIF_ETH_HLEN && hh.l4_off == vh->csum_start &&
			  hh.csum_off == vh->csum_offset);
		invariant(hh.ip_version == 4 ? f->csum_v4 : f->csum_v6);
	}
	nslots = netif_rx_slots(len, &meta);
	invariant(nslots >= 1 && nslots <= NETIF_RX_MAX_SLOTS);
	for (uint32_t i = 0; i < nslots; i++)
		reqs[i] = (struct nif_rx_req){ .id = (uint16_t)(i * 3), .gref = i };
	nseg = netif_rx_build(reqs, nslots, len, &meta, rsp, segs);
	invariant(nseg >= 1 && (uint32_t)nseg <= nslots);
	for (int i = 0; i < nseg; i++) {
		const struct nif_rx_rsp *o = &rsp[segs[i].slot].rsp;

		invariant(segs[i].len > 0 && segs[i].dst_off + segs[i].len <= NETIF_PAGE_SIZE);
		invariant(segs[i].src_off == total && segs[i].gref == segs[i].slot);
		invariant(o->status == segs[i].len && o->offset == 0);
		invariant(!!(o->flags & NIF_RXF_MORE_DATA) == (i + 1 < nseg));
		total += segs[i].len;
	}
	invariant(total == len);
	if (meta.gso_type != NIF_GSO_TYPE_NONE)
		invariant(rsp[1].extra.type == NIF_EXTRA_TYPE_GSO);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct netif_feat f;
	struct virtio_net_hdr vh;
	uint32_t start;
	size_t n;

	if (size < HDR)
		return 0;
	f = (struct netif_feat){
		.sg = data[0] & 1,
		.gso_tcpv4 = data[0] & 2,
		.gso_tcpv6 = data[0] & 4,
		.csum_v4 = data[0] & 8,
		.csum_v6 = data[0] & 16,
	};
	memcpy(&start, data + 1, sizeof(start));
	memcpy(&vh, data + 5, sizeof(vh));
	data += HDR;
	size -= HDR;

	n = size < sizeof(ring_page) ? size : sizeof(ring_page);
	memset(ring_page, 0, sizeof(ring_page));
	memcpy(ring_page, data, n);
	data += n;
	size -= n;
	if (size > NETIF_RX_MAX_LEN)
		size = NETIF_RX_MAX_LEN;

	fuzz_tx(start, data, size);
	fuzz_rx(&f, &vh, data, size);
	return 0;
}
