/* SPDX-License-Identifier: MIT */
/*
 * The netif (Xen PV network) ring protocol, free of any Xen, TAP or I/O dependency.
 *
 * Design note for the backend that will use this file
 * ---------------------------------------------------
 * - Rings. One page each, 64-byte header, 256 slots (TX slots 12 bytes, RX slots 8). struct
 *   netif_ring is the backend's private view; every index check uses private copies, never the
 *   shared ones a guest can rewrite. netif_ring_unconsumed() is netback's "impossible number of
 *   requests" check, and also refuses requests in slots whose response is not written yet
 *   (both fatal; a well-behaved frontend never trips either). Copy the unconsumed TX slots
 *   out once (netif_ring_copy), parse the private copy, then netif_ring_consume() what the
 *   parser used (XSA-155).
 * - TX (guest -> us). netif_tx_parse() takes one packet off the private copy and applies
 *   netback's rules in netback's order (Linux xenvif_tx_build_gops, get_extras,
 *   count_requests): extras first (a missing extra, type 0 or >= NIF_EXTRA_TYPE_MAX is
 *   fatal); a multicast extra ends the packet there (netback answers it and does not count
 *   the data slots, which are then parsed as the next packet); then the slot chain: the
 *   first + 18 data slots are accepted, 20 or 21 slots are consumed and answered ERROR, 22
 *   or a chain longer than the frontend posted is fatal; offset + size > 4096 is fatal; a slot
 *   larger than the bytes left (a frame >= 64 KiB whose size field wrapped) is a drop; a
 *   first slot shorter than an Ethernet header is a drop; GSO size 0 or an unknown GSO type
 *   is fatal. NETIF_TX_FATAL means: stop the queue, carrier off, fail the device (netback's
 *   vif->disabled), answer nothing more. NETIF_TX_DROP means: answer every consumed slot
 *   with netif_tx_respond(..., NIF_RSP_ERROR) and go on. Zero-length data slots (XSA-448)
 *   appear in the fragment list with size 0: copy nothing for them, answer them like the rest.
 *   Every consumed slot gets exactly one response; extras get NIF_RSP_NULL.
 * - TX to the TAP: netif_tx_to_vnet() builds the virtio_net_hdr. netif carries no header
 *   offsets, so they come from parsing Ethernet (two VLAN tags at most), IPv4 or IPv6 (with
 *   extension headers) and TCP/UDP in the copied frame, bounded by the bytes present. A GSO
 *   frame without csum_blank gets its pseudo-header checksum rewritten, as netback does
 *   (counted as a "gso checksum fixup"). A failure here is a drop AFTER the slots were
 *   answered OKAY, as netback drops in skb_checksum_setup.
 * - RX (TAP -> guest). netif_rx_from_vnet() turns the virtio_net_hdr of a frame read from
 *   the TAP into netif flags and a GSO extra, finishing a partial checksum in software when
 *   the frontend could not take it (feature keys, or offsets that netfront would not find by
 *   parsing). netif_rx_slots() says how many RX requests the frame needs (wait for them
 *   with netif_ring_rx_wait()); netif_rx_build() lays the frame over those requests: data
 *   slots filled to 4096 bytes from offset 0, the GSO extra after the first data slot, one
 *   response per request written in the request's own slot (netfront indexes responses by
 *   ring position), and a copy plan (one grant-copy segment per data slot). Put the responses
 *   in the order their requests were consumed, so each lands in its request's slot. When a
 *   copy fails, overwrite that slot's status with NIF_RSP_ERROR before netif_ring_put().
 * - Offloads: netif_tun_offload() derives TUNSETOFFLOAD from the frontend's keys.
 * - Not here: the hash extra is parsed and ignored (no TX hash, no RX hash extra), no XDP
 *   headroom (advertise feature-xdp-headroom=0), no control ring or multicast filter. The
 *   index protocol (publish + notify check, final check) is src/xen/ring.h, shared with blkif.
 * Nothing here allocates; every function works on memory the caller owns.
 */
#ifndef BK_NETIF_PROTO_H
#define BK_NETIF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_net.h>

#define NETIF_PAGE_SIZE 4096U
#define NETIF_RING_SIZE 256U /* entries of either ring: (4096 - 64) / 12 (or 8), rounded down */
#define NETIF_ETH_HLEN 14U

/* Wire layout, written from the public ABI description (io/netif.h). */

/* TX request flags. */
#define NIF_TXF_CSUM_BLANK (1U << 0)	 /* the L4 checksum is blank (partial) */
#define NIF_TXF_DATA_VALIDATED (1U << 1) /* the checksum was checked */
#define NIF_TXF_MORE_DATA (1U << 2)	 /* another data slot follows */
#define NIF_TXF_EXTRA_INFO (1U << 3)	 /* an extra slot follows the first */

/* RX response flags. */
#define NIF_RXF_DATA_VALIDATED (1U << 0)
#define NIF_RXF_CSUM_BLANK (1U << 1)
#define NIF_RXF_MORE_DATA (1U << 2)
#define NIF_RXF_EXTRA_INFO (1U << 3)
#define NIF_RXF_GSO_PREFIX (1U << 4) /* deprecated, never sent */

/* Response status. */
#define NIF_RSP_DROPPED (-2)
#define NIF_RSP_ERROR (-1)
#define NIF_RSP_OKAY 0
#define NIF_RSP_NULL 1 /* the answer to an extra slot */

/* Extra slot types. Linux adds XDP (5) to Xen's list, so netback accepts types 1..5. */
#define NIF_EXTRA_TYPE_NONE 0
#define NIF_EXTRA_TYPE_GSO 1
#define NIF_EXTRA_TYPE_MCAST_ADD 2
#define NIF_EXTRA_TYPE_MCAST_DEL 3
#define NIF_EXTRA_TYPE_HASH 4
#define NIF_EXTRA_TYPE_XDP 5
#define NIF_EXTRA_TYPE_MAX 6
#define NIF_EXTRA_FLAG_MORE (1U << 0)

#define NIF_GSO_TYPE_NONE 0
#define NIF_GSO_TYPE_TCPV4 1
#define NIF_GSO_TYPE_TCPV6 2

struct nif_tx_req {
	uint32_t gref;
	uint16_t offset;
	uint16_t flags;
	uint16_t id;
	uint16_t size; /* first slot: the whole packet; later slots: this slot */
};

struct nif_tx_rsp {
	uint16_t id;
	int16_t status;
};

struct nif_extra {
	uint8_t type;
	uint8_t flags;
	union {
		struct {
			uint16_t size; /* MSS */
			uint8_t type;  /* NIF_GSO_TYPE_* */
			uint8_t pad;
			uint16_t features;
		} gso;
		struct {
			uint8_t addr[6];
		} mcast;
		struct {
			uint8_t type;
			uint8_t algorithm;
			uint8_t value[4];
		} hash;
		struct {
			uint16_t headroom;
			uint16_t pad[2];
		} xdp;
		uint16_t pad[3];
	} u;
};

/* One TX ring slot holds a request, an extra, or (once answered) a response. */
union nif_tx_slot {
	struct nif_tx_req req;
	struct nif_extra extra;
	struct nif_tx_rsp rsp;
};

struct nif_rx_req {
	uint16_t id;
	uint16_t pad;
	uint32_t gref;
};

struct nif_rx_rsp {
	uint16_t id;
	uint16_t offset;
	uint16_t flags;
	int16_t status; /* > 0: bytes; < 0: NIF_RSP_* */
};

union nif_rx_slot {
	struct nif_rx_req req;
	struct nif_rx_rsp rsp;
	struct nif_extra extra;
};

/* Header of a shared ring (64 bytes before the slots). */
struct nif_sring_hdr {
	uint32_t req_prod, req_event;
	uint32_t rsp_prod, rsp_event;
	uint8_t pad[48];
};

/* The backend's private view of one shared ring (TX or RX). */
struct netif_ring {
	struct nif_sring_hdr *sring;
	uint8_t *slots;
	uint32_t slot_size; /* 12 (TX) or 8 (RX) */
	uint32_t rsp_size;  /* 4 (TX) or 8 (RX) */
	uint32_t req_cons;
	uint32_t rsp_prod_pvt;
	uint32_t rsp_pushed; /* last rsp_prod we published */
};

/* Attach to a mapped TX or RX ring page (the frontend initialised it). */
void netif_ring_attach_tx(struct netif_ring *r, void *page);
void netif_ring_attach_rx(struct netif_ring *r, void *page);
/*
 * Requests posted and not yet consumed, from one read of req_prod. -EPROTO when the frontend
 * claims more than the ring holds ("impossible number of requests": fail the device).
 */
int netif_ring_unconsumed(struct netif_ring *r, uint32_t *ret_n);
/* Copy @n slots from req_cons on into @dst (n * slot_size bytes), without consuming them. */
void netif_ring_copy(const struct netif_ring *r, void *dst, uint32_t n);
/* Consume @n requests (after netif_ring_copy and parsing). */
void netif_ring_consume(struct netif_ring *r, uint32_t n);
/* Write one response at rsp_prod_pvt (not yet visible to the frontend). */
void netif_ring_put(struct netif_ring *r, const void *rsp);
/* Publish written responses; true when the frontend asked to be notified. */
bool netif_ring_push(struct netif_ring *r);
/* Re-arm req_event and re-check (RING_FINAL_CHECK_FOR_REQUESTS): true if work arrived. */
bool netif_ring_final_check(struct netif_ring *r);
/*
 * RX: true when at least @needed requests are posted; otherwise asks the frontend for an
 * event at the next request (req_event = req_prod + 1) and re-checks, as netback does.
 */
bool netif_ring_rx_wait(struct netif_ring *r, uint32_t needed);

/* TX: one packet off the private copy of the ring. */

/* Data slots netback accepts after the first (XEN_NETBK_LEGACY_SLOTS_MAX). */
#define NETIF_TX_SLOTS_OK 18U
/* More data slots than this after the first are fatal (netback's fatal_skb_slots). */
#define NETIF_TX_SLOTS_FATAL 20U
/* Data slots a parsed packet can list: the first and up to 20 after it. */
#define NETIF_TX_MAX_FRAGS (1U + NETIF_TX_SLOTS_FATAL)
/* Largest packet: the first slot's size field is 16 bits. */
#define NETIF_TX_MAX_LEN 0xffffU

enum netif_tx_verdict {
	NETIF_TX_OK = 0,    /* copy the fragments, answer OKAY (or ERROR if a copy failed) */
	NETIF_TX_DROP,	    /* answer every consumed slot ERROR */
	NETIF_TX_FATAL,	    /* the frontend is broken: disable the queue */
	NETIF_TX_MCAST_ADD, /* a multicast request: answer it (OKAY or ERROR), no data */
	NETIF_TX_MCAST_DEL, /* same, for removal (netback always answers OKAY) */
};

struct netif_tx_frag {
	uint32_t gref;
	uint16_t offset;
	uint16_t size;	  /* bytes in this slot; the first slot's own share, not the total */
	uint16_t id;	  /* the slot's request id, for its response */
	uint32_t pkt_off; /* where these bytes go in the packet */
};

struct netif_tx_pkt {
	enum netif_tx_verdict verdict;
	const char *why;      /* the broken rule (NULL when OK) */
	uint16_t flags;	      /* the first slot's NIF_TXF_* */
	uint16_t len;	      /* bytes in the packet (the first slot's size field) */
	uint16_t nr_consumed; /* ring slots used: first + extras + data slots after the first */
	uint16_t nr_extras;
	uint16_t nr_frags;   /* entries of frag[] (on a drop: every data slot consumed) */
	uint16_t extra_mask; /* bit (type - 1) for each extra type present */
	struct nif_extra extra[NIF_EXTRA_TYPE_MAX - 1]; /* by type - 1; the last one sent wins */
	struct netif_tx_frag frag[NETIF_TX_MAX_FRAGS];
};

/*
 * Parse the packet starting at @slots[0]: @avail slots copied from the ring (req_cons on).
 * Fills @pkt and returns its verdict. On OK, DROP, MCAST_* consume pkt->nr_consumed slots;
 * on FATAL, nothing more may be taken from this ring.
 */
enum netif_tx_verdict netif_tx_parse(const union nif_tx_slot *slots, uint32_t avail,
				     struct netif_tx_pkt *pkt);
/* The packet's GSO extra, or NULL. */
const struct nif_extra *netif_tx_pkt_gso(const struct netif_tx_pkt *pkt);
/*
 * Write the responses for every slot @pkt consumed, in ring order: @status for the first
 * slot, NIF_RSP_NULL for each extra, @status for each data slot after the first. Returns how
 * many were written (pkt->nr_consumed). Not for FATAL packets.
 */
uint32_t netif_tx_respond(struct netif_ring *r, const struct netif_tx_pkt *pkt, int16_t status);

/* Headers found in a frame: the offsets checksum and GSO offloads need. */
struct netif_hdrs {
	uint16_t l3_off;    /* after Ethernet and VLAN tags */
	uint16_t l4_off;    /* after IPv4 options or IPv6 extension headers */
	uint16_t l4_len;    /* TCP header with options, or 8 for UDP */
	uint16_t csum_off;  /* of the checksum field inside the L4 header: 16 TCP, 6 UDP */
	uint8_t ip_version; /* 4 or 6 */
	uint8_t l4_proto;   /* 6 TCP, 17 UDP */
};

/*
 * Find the L3 and L4 headers of an Ethernet frame of @len bytes. -EPROTO when it is not
 * unfragmented IPv4/IPv6 carrying TCP or UDP with the whole L4 header present; -EMSGSIZE
 * when headers run past the frame. Reads nothing beyond @len.
 */
int netif_parse_hdrs(const uint8_t *frame, size_t len, struct netif_hdrs *ret);

/* Offload statistics the mapping reports (the backend adds them to its counters). */
struct netif_offload_info {
	bool csum_partial; /* a partial checksum was handed on */
	bool gso;	   /* a GSO frame was handed on */
	bool csum_fixup;   /* pseudo-header rewritten (TX GSO without csum_blank) */
	bool csum_sw;	   /* checksum completed in software (RX) */
};

/*
 * TX: the virtio_net_hdr for the guest's frame @frame (@len bytes, copied, may be rewritten)
 * from the first slot's flags and the GSO extra (NULL if none). 0, or -EPROTO / -EMSGSIZE
 * with @ret_why set: drop the frame.
 */
int netif_tx_to_vnet(uint16_t txflags, const struct nif_extra *gso, uint8_t *frame, size_t len,
		     struct virtio_net_hdr *vh, struct netif_offload_info *info,
		     const char **ret_why);

/* What the frontend negotiated (its xenstore keys) that the mapping depends on. */
struct netif_feat {
	bool sg;	/* feature-sg */
	bool gso_tcpv4; /* feature-gso-tcpv4 */
	bool gso_tcpv6; /* feature-gso-tcpv6 */
	bool csum_v4;	/* !feature-no-csum-offload */
	bool csum_v6;	/* feature-ipv6-csum-offload */
};

/* TUNSETOFFLOAD flags (TUN_F_*) for a TAP whose reader serves a frontend with @f. */
unsigned int netif_tun_offload(const struct netif_feat *f);

/* RX: what netfront must be told about one frame. */
struct netif_rx_meta {
	uint16_t flags;	   /* NIF_RXF_* of the first slot (without more_data/extra_info) */
	uint8_t gso_type;  /* NIF_GSO_TYPE_*; NONE: no GSO extra */
	uint16_t gso_size; /* MSS */
};

/*
 * RX: map the virtio_net_hdr @vh of the frame @frame (@len bytes after the header, copied,
 * may be rewritten to finish a checksum) for a frontend with @f. 0, or -EPROTO / -EMSGSIZE /
 * -EOPNOTSUPP with @ret_why set: drop the frame.
 */
int netif_rx_from_vnet(const struct virtio_net_hdr *vh, uint8_t *frame, size_t len,
		       const struct netif_feat *f, struct netif_rx_meta *meta,
		       struct netif_offload_info *info, const char **ret_why);

/* netfront takes at most 18 slots per packet (XEN_NETIF_NR_SLOTS_MIN). */
#define NETIF_RX_MAX_SLOTS 18U
/* Largest frame we place: 16 data slots + a GSO extra fit in 18. */
#define NETIF_RX_MAX_LEN 65535U

/* RX requests (ring slots) a frame of @len bytes with @meta needs; 0 if it cannot be sent. */
uint32_t netif_rx_slots(size_t len, const struct netif_rx_meta *meta);

/* One grant copy into a guest RX page: @len bytes from @src_off in the frame. */
struct netif_rx_seg {
	uint32_t gref;
	uint16_t dst_off;
	uint16_t len;
	uint32_t src_off;
	uint16_t slot; /* index into the responses, to write a failed copy's status */
};

/*
 * Lay a frame of @len bytes over @nr_reqs RX requests (copied from the ring, in ring order;
 * exactly netif_rx_slots() of them): fills @rsp[nr_reqs] (each the response for the request
 * in the same position) and @segs (one per data slot). Returns the number of segments, or
 * -EINVAL if @nr_reqs is not what the frame needs.
 */
int netif_rx_build(const struct nif_rx_req *reqs, uint32_t nr_reqs, size_t len,
		   const struct netif_rx_meta *meta, union nif_rx_slot *rsp,
		   struct netif_rx_seg *segs);

/* Internet checksum helpers (exposed for tests). */
uint32_t netif_csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t netif_csum_fold(uint32_t sum);

#endif
