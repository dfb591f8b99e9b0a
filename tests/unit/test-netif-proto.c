// SPDX-License-Identifier: MIT
/*
 * Unit tests of the netif protocol layer: ring index checks (overflow, 2^32 wrap), TX slot
 * chains at every netback limit on either side (18/19/20 slots after the first, offset + size
 * around a page, first-slot size around 14, size-field wrap, zero-length slots, extras and
 * their chain), the responses a packet gets, header parsing (VLAN, IPv4 options, IPv6
 * extension headers, fragments, truncation), both offload mappings with checksums verified
 * independently, and the RX slot layout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <linux/if_tun.h>

#include "netif/proto.h"
#include "check.h"

static uint8_t page[4096] __attribute__((aligned(4096)));
static union nif_tx_slot slots[NETIF_RING_SIZE];
static struct netif_tx_pkt pkt;

/* Rings. */

static void test_ring(void)
{
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)page;
	union nif_tx_slot copy[4];
	struct netif_ring r;
	uint32_t n = 99;

	memset(page, 0, sizeof(page));
	netif_ring_attach_tx(&r, page);
	CHECK(r.slot_size == 12 && r.rsp_size == 4);
	CHECK(netif_ring_unconsumed(&r, &n) == 0 && n == 0);
	h->req_prod = 256;
	CHECK(netif_ring_unconsumed(&r, &n) == 0 && n == 256);
	h->req_prod = 257;
	n = 7;
	CHECK(netif_ring_unconsumed(&r, &n) == -EPROTO && n == 7);

	/* Indices wrap at 2^32. */
	r.req_cons = r.rsp_prod_pvt = r.rsp_pushed = 0xfffffffeU;
	h->req_prod = 2;
	CHECK(netif_ring_unconsumed(&r, &n) == 0 && n == 4);
	h->req_prod = 0xfffffffeU + 257;
	CHECK(netif_ring_unconsumed(&r, &n) == -EPROTO);
	/* Slots whose response is not written yet cannot hold new requests. */
	r.req_cons = 100;
	r.rsp_prod_pvt = 0;
	h->req_prod = 257;
	CHECK(netif_ring_unconsumed(&r, &n) == -EPROTO);
	h->req_prod = 256;
	CHECK(netif_ring_unconsumed(&r, &n) == 0 && n == 156);

	/* Copy wraps around the slot array; consume moves req_cons only. */
	memset(page, 0, sizeof(page));
	netif_ring_attach_tx(&r, page);
	r.req_cons = r.rsp_prod_pvt = 254;
	for (uint32_t i = 0; i < 4; i++) {
		union nif_tx_slot s = { .req = { .id = (uint16_t)(500 + i) } };

		memcpy(page + 64 + ((254 + i) % 256) * 12, &s, 12);
	}
	h->req_prod = 258;
	netif_ring_copy(&r, copy, 4);
	CHECK(copy[0].req.id == 500 && copy[1].req.id == 501 && copy[2].req.id == 502 &&
	      copy[3].req.id == 503);
	CHECK(r.req_cons == 254);
	netif_ring_consume(&r, 4);
	CHECK(r.req_cons == 258);

	/* Push: notify only when rsp_event lies in the published range. */
	memset(page, 0, sizeof(page));
	netif_ring_attach_tx(&r, page);
	h->rsp_event = 1;
	netif_ring_put(&r, &(struct nif_tx_rsp){ .id = 3, .status = 0 });
	CHECK(netif_ring_push(&r) && h->rsp_prod == 1);
	netif_ring_put(&r, &(struct nif_tx_rsp){ .id = 4, .status = 0 });
	CHECK(!netif_ring_push(&r) && h->rsp_prod == 2);
	h->rsp_event = 3;
	netif_ring_put(&r, &(struct nif_tx_rsp){ .id = 5, .status = 0 });
	CHECK(netif_ring_push(&r));

	/* Final check re-arms req_event. */
	r.req_cons = 7;
	h->req_prod = 7;
	CHECK(!netif_ring_final_check(&r) && h->req_event == 8);
	h->req_prod = 8;
	CHECK(netif_ring_final_check(&r));

	/* RX wait asks for an event at the next request when short. */
	memset(page, 0, sizeof(page));
	netif_ring_attach_rx(&r, page);
	CHECK(r.slot_size == 8 && r.rsp_size == 8);
	r.req_cons = 10;
	h->req_prod = 12;
	CHECK(netif_ring_rx_wait(&r, 2));
	CHECK(!netif_ring_rx_wait(&r, 3) && h->req_event == 13);
}

/*
 * A guest that moves req_prod every time the backend asks for an event, without ever posting
 * enough RX buffers: the RX wait must look once more and give up, not loop for as long as the
 * guest keeps it moving (the only thread serves every device). The moves are made exactly at
 * the backend's writes, not by a racing thread: the ring page is read-only, each write to
 * req_event faults, the handler moves req_prod, lets the write through by single-stepping it
 * (x86-64's trap flag) and protects the page again. After MOVE_MAX moves the guest stops, so a
 * looping wait ends and the count shows how long it was held.
 */
#if defined(__x86_64__)
#define MOVE_MAX 1000U
#define TRAP_FLAG 0x100

static uint8_t *mv_page;
static uint32_t mv_base;
static volatile sig_atomic_t mv_writes;

static void mv_segv(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)mv_page;

	if ((uint8_t *)si->si_addr < mv_page || (uint8_t *)si->si_addr >= mv_page + 4096) {
		signal(sig, SIG_DFL); /* a real crash: let it happen */
		return;
	}
	mprotect(mv_page, 4096, PROT_READ | PROT_WRITE);
	if ((unsigned int)mv_writes < MOVE_MAX)
		h->req_prod = mv_base + 1 - (uint32_t)(mv_writes % 2); /* 1, 0, 1, ...: never 3 */
	mv_writes++;
	uc->uc_mcontext.gregs[REG_EFL] |= TRAP_FLAG; /* the write, then SIGTRAP */
}

static void mv_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	uc->uc_mcontext.gregs[REG_EFL] &= ~TRAP_FLAG;
	mprotect(mv_page, 4096, PROT_READ);
}

static void test_rx_wait_moving_guest(void)
{
	struct sigaction sa = { .sa_flags = SA_SIGINFO }, old_segv, old_trap;
	struct nif_sring_hdr *h;
	struct netif_ring r;
	bool got;

	mv_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mv_page != MAP_FAILED);
	if (mv_page == MAP_FAILED)
		return;
	h = (struct nif_sring_hdr *)mv_page;
	netif_ring_attach_rx(&r, mv_page);
	mv_base = 0xfffffff0U; /* and across the 2^32 wrap */
	r.req_cons = r.rsp_prod_pvt = r.rsp_pushed = mv_base;
	h->req_prod = mv_base;
	mv_writes = 0;
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = mv_segv;
	CHECK(sigaction(SIGSEGV, &sa, &old_segv) == 0);
	sa.sa_sigaction = mv_trap;
	CHECK(sigaction(SIGTRAP, &sa, &old_trap) == 0);
	CHECK(mprotect(mv_page, 4096, PROT_READ) == 0);

	got = netif_ring_rx_wait(&r, 3);

	mprotect(mv_page, 4096, PROT_READ | PROT_WRITE);
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGTRAP, &old_trap, NULL);
	if (mv_writes != 1)
		fprintf(stderr,
			"rx wait: held for %u req_event writes by a guest moving req_prod\n",
			(unsigned int)mv_writes);
	CHECK(mv_writes == 1);
	CHECK(!got);
	/* It asked for an event at the next request after what it saw first. */
	CHECK(h->req_event == mv_base + 1);
	munmap(mv_page, 4096);
}
#else
static void test_rx_wait_moving_guest(void)
{
	fprintf(stderr, "rx wait with a moving req_prod: needs x86-64's trap flag, skipped\n");
}
#endif

/* TX chains. */

static uint32_t nslots;

static void tx_reset(void)
{
	memset(slots, 0, sizeof(slots));
	nslots = 0;
}

static void tx_put(uint16_t id, uint16_t offset, uint16_t size, uint16_t flags)
{
	slots[nslots++].req = (struct nif_tx_req){
		.gref = 1000U + id, .offset = offset, .flags = flags, .id = id, .size = size
	};
}

static void tx_extra(uint8_t type, uint8_t flags, uint16_t gso_size, uint8_t gso_type)
{
	union nif_tx_slot *s = &slots[nslots++];

	s->extra.type = type;
	s->extra.flags = flags;
	s->extra.u.gso.size = gso_size;
	s->extra.u.gso.type = gso_type;
}

/* First slot of @first_own bytes, then @n slots of @each bytes. */
static void tx_chain(uint32_t n, uint16_t first_own, uint16_t each)
{
	tx_put(0, 0, (uint16_t)(first_own + n * each), n ? NIF_TXF_MORE_DATA : 0);
	for (uint32_t i = 1; i <= n; i++)
		tx_put((uint16_t)i, 0, each, i < n ? NIF_TXF_MORE_DATA : 0);
}

static enum netif_tx_verdict parse(void)
{
	return netif_tx_parse(slots, nslots, &pkt);
}

static void test_tx_simple(void)
{
	tx_reset();
	tx_put(7, 100, 60, 0);
	CHECK(parse() == NETIF_TX_OK && pkt.why == NULL);
	CHECK(pkt.nr_consumed == 1 && pkt.nr_frags == 1 && pkt.nr_extras == 0 && pkt.len == 60);
	CHECK(pkt.frag[0].gref == 1007 && pkt.frag[0].offset == 100 && pkt.frag[0].size == 60 &&
	      pkt.frag[0].id == 7 && pkt.frag[0].pkt_off == 0);
	CHECK(netif_tx_pkt_gso(&pkt) == NULL);

	/* First-slot size around ETH_HLEN: a drop, not fatal. */
	tx_reset();
	tx_put(1, 0, 13, 0);
	CHECK(parse() == NETIF_TX_DROP && pkt.nr_consumed == 1 && pkt.why);
	tx_reset();
	tx_put(1, 0, 14, 0);
	CHECK(parse() == NETIF_TX_OK);
	tx_reset();
	tx_put(1, 0, 0, 0);
	CHECK(parse() == NETIF_TX_DROP);

	/* First slot offset + size around the page end: fatal past it. */
	tx_reset();
	tx_put(1, 4036, 60, 0);
	CHECK(parse() == NETIF_TX_OK);
	tx_reset();
	tx_put(1, 4037, 60, 0);
	CHECK(parse() == NETIF_TX_FATAL && pkt.why);
	/* ... with the first slot's own share, not the total. */
	tx_reset();
	tx_put(1, 4000, 200, NIF_TXF_MORE_DATA);
	tx_put(2, 0, 104, 0);
	CHECK(parse() == NETIF_TX_OK && pkt.frag[0].size == 96 && pkt.frag[1].pkt_off == 96);
	tx_reset();
	tx_put(1, 4000, 200, NIF_TXF_MORE_DATA);
	tx_put(2, 0, 103, 0);
	CHECK(parse() == NETIF_TX_FATAL);

	/* Nothing to parse. */
	CHECK(netif_tx_parse(slots, 0, &pkt) == NETIF_TX_FATAL);
}

static void test_tx_slot_limits(void)
{
	/* 18 slots after the first: accepted. */
	tx_reset();
	tx_chain(18, 60, 100);
	CHECK(parse() == NETIF_TX_OK && pkt.nr_frags == 19 && pkt.nr_consumed == 19);
	CHECK(pkt.frag[18].id == 18 && pkt.frag[18].pkt_off == 60 + 17 * 100 && pkt.len == 1860);
	/* 19 and 20: consumed and dropped. */
	tx_reset();
	tx_chain(19, 60, 100);
	CHECK(parse() == NETIF_TX_DROP && pkt.nr_consumed == 20 && pkt.nr_frags == 20);
	CHECK(pkt.frag[19].id == 19);
	tx_reset();
	tx_chain(20, 60, 100);
	CHECK(parse() == NETIF_TX_DROP && pkt.nr_consumed == 21 && pkt.nr_frags == 21);
	CHECK(pkt.frag[20].id == 20);
	/* 21: fatal. */
	tx_reset();
	tx_chain(21, 60, 100);
	CHECK(parse() == NETIF_TX_FATAL);
	/* A dropped chain still dies on a slot crossing a page. */
	tx_reset();
	tx_chain(19, 60, 100);
	slots[19].req.offset = 3997;
	CHECK(parse() == NETIF_TX_FATAL);
	slots[19].req.offset = 3996;
	CHECK(parse() == NETIF_TX_DROP);

	/* A chain longer than the requests posted is fatal; exactly posted is fine. */
	tx_reset();
	tx_chain(3, 60, 100);
	CHECK(netif_tx_parse(slots, 4, &pkt) == NETIF_TX_OK);
	CHECK(netif_tx_parse(slots, 3, &pkt) == NETIF_TX_FATAL);
	CHECK(netif_tx_parse(slots, 1, &pkt) == NETIF_TX_FATAL);

	/* Later slots: offset + size around the page end. */
	tx_reset();
	tx_put(0, 0, 160, NIF_TXF_MORE_DATA);
	tx_put(1, 3996, 100, 0);
	CHECK(parse() == NETIF_TX_OK);
	slots[1].req.offset = 3997;
	CHECK(parse() == NETIF_TX_FATAL);

	/* A slot larger than the bytes left: drop (the size field wrapped). */
	tx_reset();
	tx_put(0, 0, 1000, NIF_TXF_MORE_DATA);
	tx_put(1, 0, 986, 0);
	CHECK(parse() == NETIF_TX_OK && pkt.frag[0].size == 14);
	slots[1].req.size = 987;
	CHECK(parse() == NETIF_TX_DROP); /* the first slot is left with 13 */
	slots[1].req.size = 1000;
	CHECK(parse() == NETIF_TX_DROP);
	slots[1].req.size = 1001;
	CHECK(parse() == NETIF_TX_DROP && pkt.nr_consumed == 2);
	/* A 70000-byte frame: the first size field says 4464. */
	tx_reset();
	tx_put(0, 0, (uint16_t)70000, NIF_TXF_MORE_DATA);
	for (int i = 1; i <= 17; i++)
		tx_put((uint16_t)i, 0, 4096, i < 17 ? NIF_TXF_MORE_DATA : 0);
	CHECK(parse() == NETIF_TX_DROP && pkt.nr_consumed == 18);

	/* Zero-length slots are listed (for their response) and copy nothing. */
	tx_reset();
	tx_put(0, 0, 100, NIF_TXF_MORE_DATA);
	tx_put(1, 0, 0, NIF_TXF_MORE_DATA);
	tx_put(2, 0, 40, NIF_TXF_MORE_DATA);
	tx_put(3, 4096, 0, 0);
	CHECK(parse() == NETIF_TX_OK && pkt.nr_frags == 4 && pkt.frag[0].size == 60);
	CHECK(pkt.frag[1].size == 0 && pkt.frag[2].pkt_off == 60 && pkt.frag[3].size == 0);
	CHECK(pkt.frag[3].pkt_off == 100);
}

static void test_tx_extras(void)
{
	const struct nif_extra *g;

	tx_reset();
	tx_put(0, 0, 3000, NIF_TXF_EXTRA_INFO | NIF_TXF_MORE_DATA | NIF_TXF_CSUM_BLANK);
	tx_extra(NIF_EXTRA_TYPE_GSO, 0, 1448, NIF_GSO_TYPE_TCPV4);
	tx_put(1, 0, 2000, 0);
	CHECK(parse() == NETIF_TX_OK && pkt.nr_consumed == 3 && pkt.nr_extras == 1);
	CHECK(pkt.nr_frags == 2 && pkt.frag[1].id == 1 && pkt.frag[0].size == 1000);
	g = netif_tx_pkt_gso(&pkt);
	CHECK(g && g->u.gso.size == 1448 && g->u.gso.type == NIF_GSO_TYPE_TCPV4);
	/* GSO size 0 and unknown GSO types are fatal; TCPV6 is fine. */
	slots[1].extra.u.gso.size = 0;
	CHECK(parse() == NETIF_TX_FATAL);
	slots[1].extra.u.gso.size = 1;
	CHECK(parse() == NETIF_TX_OK);
	slots[1].extra.u.gso.type = NIF_GSO_TYPE_TCPV6;
	CHECK(parse() == NETIF_TX_OK);
	slots[1].extra.u.gso.type = 3;
	CHECK(parse() == NETIF_TX_FATAL);
	slots[1].extra.u.gso.type = 0;
	CHECK(parse() == NETIF_TX_FATAL);

	/* Extra types 0 and >= 6 are fatal; 5 (XDP, Linux's list) and 4 (hash) are kept. */
	slots[1].extra.u.gso.type = NIF_GSO_TYPE_TCPV4;
	slots[1].extra.type = 0;
	CHECK(parse() == NETIF_TX_FATAL);
	slots[1].extra.type = 6;
	CHECK(parse() == NETIF_TX_FATAL);
	slots[1].extra.type = 5;
	CHECK(parse() == NETIF_TX_OK && pkt.extra_mask == 1U << 4 && !netif_tx_pkt_gso(&pkt));
	slots[1].extra.type = 4;
	CHECK(parse() == NETIF_TX_OK);

	/* The MORE flag chains extras; a chain past the posted requests is fatal. */
	tx_reset();
	tx_put(0, 0, 100, NIF_TXF_EXTRA_INFO);
	tx_extra(NIF_EXTRA_TYPE_HASH, NIF_EXTRA_FLAG_MORE, 0, 0);
	tx_extra(NIF_EXTRA_TYPE_GSO, 0, 1000, NIF_GSO_TYPE_TCPV6);
	CHECK(parse() == NETIF_TX_OK && pkt.nr_extras == 2 && pkt.nr_consumed == 3);
	CHECK(netif_tx_pkt_gso(&pkt) != NULL);
	slots[2].extra.flags = NIF_EXTRA_FLAG_MORE;
	CHECK(parse() == NETIF_TX_FATAL && pkt.why);
	CHECK(netif_tx_parse(slots, 2, &pkt) == NETIF_TX_FATAL);
	CHECK(netif_tx_parse(slots, 1, &pkt) == NETIF_TX_FATAL);

	/* Multicast: answered at once; data slots are not part of it (netback's order). */
	tx_reset();
	tx_put(0, 0, 0, NIF_TXF_EXTRA_INFO | NIF_TXF_MORE_DATA);
	tx_extra(NIF_EXTRA_TYPE_MCAST_ADD, 0, 0, 0);
	tx_put(1, 0, 100, 0);
	CHECK(parse() == NETIF_TX_MCAST_ADD && pkt.nr_consumed == 2 && pkt.nr_frags == 0);
	slots[1].extra.type = NIF_EXTRA_TYPE_MCAST_DEL;
	CHECK(parse() == NETIF_TX_MCAST_DEL && pkt.nr_consumed == 2);
}

static void test_tx_respond(void)
{
	struct nif_sring_hdr *h = (struct nif_sring_hdr *)page;
	struct nif_tx_rsp rsp[8];
	struct netif_ring r;

	memset(page, 0xaa, sizeof(page));
	h->rsp_event = 1;
	netif_ring_attach_tx(&r, page);
	tx_reset();
	tx_put(40, 0, 300, NIF_TXF_EXTRA_INFO | NIF_TXF_MORE_DATA);
	tx_extra(NIF_EXTRA_TYPE_HASH, NIF_EXTRA_FLAG_MORE, 0, 0);
	tx_extra(NIF_EXTRA_TYPE_GSO, 0, 100, NIF_GSO_TYPE_TCPV4);
	tx_put(41, 0, 100, NIF_TXF_MORE_DATA);
	tx_put(42, 0, 100, 0);
	CHECK(parse() == NETIF_TX_OK);
	CHECK(netif_tx_respond(&r, &pkt, NIF_RSP_OKAY) == 5);
	for (int i = 0; i < 5; i++)
		memcpy(&rsp[i], page + 64 + i * 12, 4);
	CHECK(rsp[0].id == 40 && rsp[0].status == NIF_RSP_OKAY);
	CHECK(rsp[1].status == NIF_RSP_NULL && rsp[2].status == NIF_RSP_NULL);
	CHECK(rsp[3].id == 41 && rsp[3].status == 0 && rsp[4].id == 42 && rsp[4].status == 0);
	CHECK(r.rsp_prod_pvt == 5);

	/* A dropped 20-slot chain: every consumed slot answered ERROR. */
	tx_reset();
	tx_chain(19, 60, 100);
	CHECK(parse() == NETIF_TX_DROP);
	CHECK(netif_tx_respond(&r, &pkt, NIF_RSP_ERROR) == 20);
	for (int i = 0; i < 20; i++) {
		struct nif_tx_rsp x;

		memcpy(&x, page + 64 + (5 + i) * 12, 4);
		CHECK(x.id == i && x.status == NIF_RSP_ERROR);
	}
	/* Multicast: the first slot and a NULL for the extra. */
	tx_reset();
	tx_put(9, 0, 0, NIF_TXF_EXTRA_INFO);
	tx_extra(NIF_EXTRA_TYPE_MCAST_ADD, 0, 0, 0);
	CHECK(parse() == NETIF_TX_MCAST_ADD);
	CHECK(netif_tx_respond(&r, &pkt, NIF_RSP_OKAY) == 2);
	memcpy(&rsp[0], page + 64 + 25 * 12, 4);
	memcpy(&rsp[1], page + 64 + 26 * 12, 4);
	CHECK(rsp[0].id == 9 && rsp[0].status == 0 && rsp[1].status == NIF_RSP_NULL);
}

/* Frames. */

static uint8_t frame[70000];

static size_t eth(uint8_t *f, uint16_t type, int vlans)
{
	size_t off = 12;

	memset(f, 0, 12);
	f[0] = 0x02;
	f[6] = 0x04;
	for (int i = 0; i < vlans; i++) {
		f[off] = i == 0 && vlans > 1 ? 0x88 : 0x81;
		f[off + 1] = i == 0 && vlans > 1 ? 0xa8 : 0x00;
		f[off + 2] = 0;
		f[off + 3] = 5;
		off += 4;
	}
	f[off] = (uint8_t)(type >> 8);
	f[off + 1] = (uint8_t)type;
	return off + 2;
}

/* IPv4 header with @opt bytes of options; returns the L4 offset. */
static size_t ipv4(uint8_t *f, size_t off, uint8_t proto, size_t opt, size_t total)
{
	uint8_t *ip = f + off;
	size_t ihl = 20 + opt;

	memset(ip, 0, ihl);
	ip[0] = (uint8_t)(0x40 | (ihl / 4));
	ip[2] = (uint8_t)((total - off) >> 8);
	ip[3] = (uint8_t)(total - off);
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	return off + ihl;
}

static size_t ipv6(uint8_t *f, size_t off, uint8_t next, size_t total)
{
	uint8_t *ip = f + off;

	memset(ip, 0, 40);
	ip[0] = 0x60;
	ip[4] = (uint8_t)((total - off - 40) >> 8);
	ip[5] = (uint8_t)(total - off - 40);
	ip[6] = next;
	ip[7] = 64;
	ip[8] = 0xfd;
	ip[23] = 1;
	ip[24] = 0xfd;
	ip[39] = 2;
	return off + 40;
}

static void l4(uint8_t *f, size_t off, uint8_t proto, size_t total, uint8_t doff)
{
	memset(f + off, 0, proto == 6 ? (size_t)doff * 4 : 8);
	f[off] = 0x30;
	f[off + 1] = 0x39;
	f[off + 3] = 80;
	if (proto == 6) {
		f[off + 12] = (uint8_t)(doff << 4);
	} else {
		f[off + 4] = (uint8_t)((total - off) >> 8);
		f[off + 5] = (uint8_t)(total - off);
	}
	for (size_t i = off + (proto == 6 ? (size_t)doff * 4 : 8); i < total; i++)
		f[i] = (uint8_t)(i * 7 + 3);
}

/* Independent check: the L4 checksum over pseudo-header + segment verifies. */
static int l4_csum_ok(const uint8_t *f, size_t len, const struct netif_hdrs *h)
{
	uint64_t s = 0;
	size_t n = len - h->l4_off;

	if (h->ip_version == 4)
		for (int i = 0; i < 8; i += 2)
			s += (uint32_t)(f[h->l3_off + 12 + i] << 8 | f[h->l3_off + 13 + i]);
	else
		for (int i = 0; i < 32; i += 2)
			s += (uint32_t)(f[h->l3_off + 8 + i] << 8 | f[h->l3_off + 9 + i]);
	s += h->l4_proto + n;
	for (size_t i = 0; i < n; i++)
		s += i & 1 ? f[h->l4_off + i] : (uint32_t)f[h->l4_off + i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

/* Fill the field with the pseudo-header sum, as a sender of a partial checksum does. */
static void partial(uint8_t *f, size_t len, const struct netif_hdrs *h)
{
	uint64_t s = 0;
	size_t n = len - h->l4_off;
	uint8_t *c = f + h->l4_off + h->csum_off;

	if (h->ip_version == 4)
		for (int i = 0; i < 8; i += 2)
			s += (uint32_t)(f[h->l3_off + 12 + i] << 8 | f[h->l3_off + 13 + i]);
	else
		for (int i = 0; i < 32; i += 2)
			s += (uint32_t)(f[h->l3_off + 8 + i] << 8 | f[h->l3_off + 9 + i]);
	s += h->l4_proto + n;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	c[0] = (uint8_t)(s >> 8);
	c[1] = (uint8_t)s;
}

static void test_parse(void)
{
	struct netif_hdrs h;
	size_t o, len;

	/* IPv4/TCP with 12 bytes of TCP options and 8 of IP options. */
	len = 200;
	o = ipv4(frame, eth(frame, 0x0800, 0), 6, 8, len);
	l4(frame, o, 6, len, 8);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	CHECK(h.l3_off == 14 && h.l4_off == 42 && h.l4_len == 32 && h.csum_off == 16);
	CHECK(h.ip_version == 4 && h.l4_proto == 6);
	/* The TCP header must be whole: its end at the frame end is fine, one short is not. */
	CHECK(netif_parse_hdrs(frame, 74, &h) == 0);
	CHECK(netif_parse_hdrs(frame, 73, &h) == -EMSGSIZE);
	CHECK(netif_parse_hdrs(frame, 13, &h) == -EMSGSIZE);
	CHECK(netif_parse_hdrs(frame, 14, &h) == -EMSGSIZE);
	/* doff < 5, ihl < 5, version, fragments, other protocols. */
	frame[o + 12] = 0x40;
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[o + 12] = 0x50;
	CHECK(netif_parse_hdrs(frame, len, &h) == 0 && h.l4_len == 20);
	frame[14] = 0x44;
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[14] = 0x57;
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[14] = 0x47;
	frame[20] = 0x20; /* more fragments */
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[20] = 0x00;
	frame[21] = 0x01; /* offset */
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[21] = 0;
	frame[23] = 1; /* ICMP */
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[23] = 6;
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	frame[12] = 0x08;
	frame[13] = 0x06; /* ARP */
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);

	/* Two VLAN tags are parsed, a third is refused. */
	len = 100;
	o = ipv4(frame, eth(frame, 0x0800, 2), 17, 0, len);
	l4(frame, o, 17, len, 0);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0 && h.l3_off == 22 && h.l4_off == 42);
	CHECK(h.csum_off == 6 && h.l4_len == 8 && h.l4_proto == 17);
	CHECK(netif_parse_hdrs(frame, 49, &h) == -EMSGSIZE);
	o = ipv4(frame, eth(frame, 0x0800, 3), 17, 0, len);
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);

	/* IPv6: hop-by-hop (8), routing (24), an atomic fragment header, AH (16), TCP. */
	len = 300;
	o = ipv6(frame, eth(frame, 0x86dd, 0), 0, len);
	frame[o] = 43;
	frame[o + 1] = 0;
	frame[o + 8] = 44;
	frame[o + 9] = 2;
	frame[o + 32] = 51;
	frame[o + 34] = 0;
	frame[o + 35] = 0; /* offset 0, MF 0 */
	frame[o + 40] = 6;
	frame[o + 41] = 2;
	l4(frame, o + 56, 6, len, 5);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	CHECK(h.ip_version == 6 && h.l4_off == o + 56 && h.l4_proto == 6 && h.l3_off == 14);
	frame[o + 35] = 1; /* more fragments */
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[o + 35] = 0;
	frame[o + 34] = 0x08; /* offset 1 */
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	frame[o + 34] = 0;
	CHECK(netif_parse_hdrs(frame, o + 56 + 19, &h) == -EMSGSIZE);
	CHECK(netif_parse_hdrs(frame, o + 40, &h) == -EMSGSIZE);

	/* Extension headers may fill 256 bytes from the IPv6 header on, not more. */
	len = 600;
	o = ipv6(frame, eth(frame, 0x86dd, 0), 60, len);
	frame[o] = 17;
	frame[o + 1] = 26; /* 216 bytes: 40 + 216 = 256 */
	l4(frame, o + 216, 17, len, 0);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0 && h.l4_off == o + 216);
	frame[o] = 60;
	frame[o + 216] = 17;
	frame[o + 217] = 0; /* one more 8-byte header: past 256 */
	CHECK(netif_parse_hdrs(frame, len, &h) == -EPROTO);
	/* A header length running past the frame. */
	frame[o] = 17;
	frame[o + 1] = 255;
	CHECK(netif_parse_hdrs(frame, len, &h) == -EMSGSIZE);
}

static void test_tx_vnet(void)
{
	struct nif_extra gso = { .type = NIF_EXTRA_TYPE_GSO };
	struct netif_offload_info info;
	struct virtio_net_hdr vh;
	struct netif_hdrs h;
	const char *why;
	size_t o, len;

	/* No offload: an empty header; data_validated passes through. */
	len = 60;
	o = ipv4(frame, eth(frame, 0x0800, 0), 6, 0, len);
	l4(frame, o, 6, len, 5);
	CHECK(netif_tx_to_vnet(0, NULL, frame, len, &vh, &info, &why) == 0);
	CHECK(vh.flags == 0 && vh.gso_type == 0 && vh.csum_start == 0);
	CHECK(netif_tx_to_vnet(NIF_TXF_DATA_VALIDATED, NULL, frame, len, &vh, &info, &why) == 0);
	CHECK(vh.flags == VIRTIO_NET_HDR_F_DATA_VALID);
	/* Not even parsed without offload: any bytes go. */
	CHECK(netif_tx_to_vnet(0, NULL, frame, 14, &vh, &info, &why) == 0);

	/* csum_blank: offsets found by parsing; the guest's pseudo sum is kept. */
	len = 1000;
	o = ipv4(frame, eth(frame, 0x0800, 1), 17, 4, len);
	l4(frame, o, 17, len, 0);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	partial(frame, len, &h);
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, NULL, frame, len, &vh, &info, &why) == 0);
	CHECK(vh.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && vh.csum_start == 42 &&
	      vh.csum_offset == 6 && vh.gso_type == 0);
	CHECK(info.csum_partial && !info.gso && !info.csum_fixup);
	frame[23 + 4] = 1; /* ICMP: no L4 checksum to offload */
	why = NULL;
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, NULL, frame, len, &vh, &info, &why) == -EPROTO &&
	      why);
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, NULL, frame, 20, &vh, &info, &why) == -EMSGSIZE);

	/* GSO TCPv4 with csum_blank. */
	len = 5000;
	o = ipv4(frame, eth(frame, 0x0800, 0), 6, 0, len);
	l4(frame, o, 6, len, 8);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	partial(frame, len, &h);
	gso.u.gso.size = 1448;
	gso.u.gso.type = NIF_GSO_TYPE_TCPV4;
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, &gso, frame, len, &vh, &info, &why) == 0);
	CHECK(vh.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && vh.gso_type == VIRTIO_NET_HDR_GSO_TCPV4);
	CHECK(vh.gso_size == 1448 && vh.hdr_len == 14 + 20 + 32 && vh.csum_start == 34 &&
	      vh.csum_offset == 16);
	CHECK(info.gso && info.csum_partial && !info.csum_fixup);
	/* Without csum_blank: the pseudo-header sum is rewritten (netback's fixup). */
	frame[o + 16] = 0x12;
	frame[o + 17] = 0x34;
	CHECK(netif_tx_to_vnet(0, &gso, frame, len, &vh, &info, &why) == 0);
	CHECK(info.csum_fixup && vh.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM);
	{
		uint8_t want[2];

		memcpy(want, frame + o + 16, 2);
		partial(frame, len, &h);
		CHECK(!memcmp(want, frame + o + 16, 2));
	}
	/* The GSO type must match the frame. */
	gso.u.gso.type = NIF_GSO_TYPE_TCPV6;
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, &gso, frame, len, &vh, &info, &why) == -EPROTO);
	o = ipv6(frame, eth(frame, 0x86dd, 0), 17, len);
	l4(frame, o, 17, len, 0);
	CHECK(netif_tx_to_vnet(NIF_TXF_CSUM_BLANK, &gso, frame, len, &vh, &info, &why) == -EPROTO);
	/* GSO TCPv6 with a hop-by-hop header, no csum_blank. */
	o = ipv6(frame, eth(frame, 0x86dd, 0), 0, len);
	frame[o] = 6;
	frame[o + 1] = 0;
	l4(frame, o + 8, 6, len, 5);
	CHECK(netif_tx_to_vnet(0, &gso, frame, len, &vh, &info, &why) == 0);
	CHECK(vh.gso_type == VIRTIO_NET_HDR_GSO_TCPV6 && vh.csum_start == 62 && vh.hdr_len == 82 &&
	      info.csum_fixup);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	{
		uint8_t want[2];

		memcpy(want, frame + 62 + 16, 2);
		partial(frame, len, &h);
		CHECK(!memcmp(want, frame + 62 + 16, 2));
	}
}

static void test_rx_vnet(void)
{
	struct netif_feat all = {
		.sg = true, .gso_tcpv4 = true, .gso_tcpv6 = true, .csum_v4 = true, .csum_v6 = true
	};
	struct netif_feat f;
	struct virtio_net_hdr vh = { 0 };
	struct netif_offload_info info;
	struct netif_rx_meta m;
	struct netif_hdrs h;
	const char *why;
	size_t o, len;

	/* Plain frames; DATA_VALID -> data_validated. */
	len = 60;
	o = ipv4(frame, eth(frame, 0x0800, 0), 6, 0, len);
	l4(frame, o, 6, len, 5);
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == 0 && m.flags == 0);
	vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == 0 &&
	      m.flags == NIF_RXF_DATA_VALIDATED && m.gso_type == 0);
	CHECK(netif_rx_from_vnet(&vh, frame, 13, &all, &m, &info, &why) == -EMSGSIZE && why);
	CHECK(netif_rx_from_vnet(&vh, frame, 14, &all, &m, &info, &why) == 0);
	CHECK(netif_rx_from_vnet(&vh, frame, 65535, &all, &m, &info, &why) == 0);
	CHECK(netif_rx_from_vnet(&vh, frame, 65536, &all, &m, &info, &why) == -EMSGSIZE);
	f = all;
	f.sg = false;
	CHECK(netif_rx_from_vnet(&vh, frame, 4096, &f, &m, &info, &why) == 0);
	CHECK(netif_rx_from_vnet(&vh, frame, 4097, &f, &m, &info, &why) == -EMSGSIZE);

	/* A partial checksum where netfront will find it: handed on. */
	len = 1500;
	o = ipv4(frame, eth(frame, 0x0800, 0), 17, 0, len);
	l4(frame, o, 17, len, 0);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	partial(frame, len, &h);
	vh = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .csum_start = 34,
				      .csum_offset = 6 };
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == 0);
	CHECK(m.flags == (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED) && info.csum_partial &&
	      !info.csum_sw);
	CHECK(!l4_csum_ok(frame, len, &h)); /* still partial */
	/* The frontend refused IPv4 offload: finished here. */
	f = all;
	f.csum_v4 = false;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &f, &m, &info, &why) == 0);
	CHECK(m.flags == NIF_RXF_DATA_VALIDATED && info.csum_sw && l4_csum_ok(frame, len, &h));

	/* IPv6 TCP to a frontend without ipv6-csum-offload: finished here. */
	len = 3000;
	o = ipv6(frame, eth(frame, 0x86dd, 0), 6, len);
	l4(frame, o, 6, len, 5);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	partial(frame, len, &h);
	vh = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .csum_start = 54,
				      .csum_offset = 16 };
	f = all;
	f.csum_v6 = false;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &f, &m, &info, &why) == 0);
	CHECK(m.flags == NIF_RXF_DATA_VALIDATED && l4_csum_ok(frame, len, &h));

	/* A VLAN-tagged frame: netfront would not find the header, so finished here. */
	len = 800;
	o = ipv4(frame, eth(frame, 0x0800, 1), 6, 0, len);
	l4(frame, o, 6, len, 5);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	partial(frame, len, &h);
	vh = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .csum_start = 38,
				      .csum_offset = 16 };
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == 0);
	CHECK(m.flags == NIF_RXF_DATA_VALIDATED && l4_csum_ok(frame, len, &h));

	/* Offsets at the frame's end: field must fit. */
	vh.csum_start = (uint16_t)(len - 2);
	vh.csum_offset = 0;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == 0);
	vh.csum_start = (uint16_t)(len - 1);
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EPROTO);
	vh.csum_start = 0xffff;
	vh.csum_offset = 0xffff;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EPROTO);

	/* GSO: carried in an extra when negotiated. */
	len = 20000;
	o = ipv4(frame, eth(frame, 0x0800, 0), 6, 0, len);
	l4(frame, o, 6, len, 8);
	CHECK(netif_parse_hdrs(frame, len, &h) == 0);
	partial(frame, len, &h);
	vh = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				      .gso_size = 1448,
				      .hdr_len = 66,
				      .csum_start = 34,
				      .csum_offset = 16 };
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == 0);
	CHECK(m.gso_type == NIF_GSO_TYPE_TCPV4 && m.gso_size == 1448 && info.gso);
	CHECK(m.flags == (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED));
	f = all;
	f.gso_tcpv4 = false;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &f, &m, &info, &why) == -EOPNOTSUPP);
	f = all;
	f.sg = false;
	CHECK(netif_rx_from_vnet(&vh, frame, 4000, &f, &m, &info, &why) == -EOPNOTSUPP);
	f = all;
	f.csum_v4 = false;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &f, &m, &info, &why) == -EPROTO);
	vh.gso_size = 0;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EPROTO);
	vh.gso_size = 1448;
	vh.flags = 0;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EPROTO);
	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EPROTO);
	vh.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EOPNOTSUPP);
	vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EOPNOTSUPP);
	vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	vh.csum_start = 35;
	CHECK(netif_rx_from_vnet(&vh, frame, len, &all, &m, &info, &why) == -EPROTO);
}

static void test_offload_flags(void)
{
	struct netif_feat f = { 0 };

	/* Mini-OS: no keys at all; IPv4 checksum offload is on unless refused. */
	f.csum_v4 = true;
	CHECK(netif_tun_offload(&f) == TUN_F_CSUM);
	f = (struct netif_feat){
		.sg = true, .gso_tcpv4 = true, .gso_tcpv6 = true, .csum_v4 = true, .csum_v6 = true
	};
	CHECK(netif_tun_offload(&f) == (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
	f.sg = false;
	CHECK(netif_tun_offload(&f) == TUN_F_CSUM);
	f.sg = true;
	f.csum_v6 = false;
	CHECK(netif_tun_offload(&f) == (TUN_F_CSUM | TUN_F_TSO4));
	f.csum_v4 = false;
	CHECK(netif_tun_offload(&f) == 0);
	f.csum_v6 = true;
	f.gso_tcpv6 = false;
	CHECK(netif_tun_offload(&f) == TUN_F_CSUM);
}

static void test_rx_build(void)
{
	struct netif_rx_meta m = { .flags = NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED };
	struct nif_rx_req reqs[NETIF_RX_MAX_SLOTS + 1];
	union nif_rx_slot rsp[NETIF_RX_MAX_SLOTS + 1];
	struct netif_rx_seg segs[NETIF_RX_MAX_SLOTS + 1];

	for (uint16_t i = 0; i < NETIF_RX_MAX_SLOTS + 1; i++)
		reqs[i] = (struct nif_rx_req){ .id = (uint16_t)(100 + i), .gref = 200U + i };

	CHECK(netif_rx_slots(0, &m) == 0);
	CHECK(netif_rx_slots(1, &m) == 1);
	CHECK(netif_rx_slots(4096, &m) == 1);
	CHECK(netif_rx_slots(4097, &m) == 2);
	CHECK(netif_rx_slots(65535, &m) == 16);
	CHECK(netif_rx_slots(65536, &m) == 0);

	/* 9000 bytes, no GSO: 4096 + 4096 + 808. */
	CHECK(netif_rx_build(reqs, 3, 9000, &m, rsp, segs) == 3);
	CHECK(rsp[0].rsp.id == 100 && rsp[0].rsp.offset == 0 && rsp[0].rsp.status == 4096);
	CHECK(rsp[0].rsp.flags ==
	      (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED | NIF_RXF_MORE_DATA));
	CHECK(rsp[1].rsp.id == 101 && rsp[1].rsp.flags == NIF_RXF_MORE_DATA);
	CHECK(rsp[2].rsp.id == 102 && rsp[2].rsp.flags == 0 && rsp[2].rsp.status == 808);
	CHECK(segs[0].gref == 200 && segs[0].len == 4096 && segs[0].src_off == 0);
	CHECK(segs[2].gref == 202 && segs[2].len == 808 && segs[2].src_off == 8192 &&
	      segs[2].slot == 2 && segs[2].dst_off == 0);
	CHECK(netif_rx_build(reqs, 2, 9000, &m, rsp, segs) == -EINVAL);
	CHECK(netif_rx_build(reqs, 4, 9000, &m, rsp, segs) == -EINVAL);

	/* GSO: the extra sits right after the first data slot. */
	m.gso_type = NIF_GSO_TYPE_TCPV6;
	m.gso_size = 1440;
	CHECK(netif_rx_slots(65535, &m) == 17);
	CHECK(netif_rx_slots(100, &m) == 2);
	CHECK(netif_rx_build(reqs, 3, 5000, &m, rsp, segs) == 2);
	CHECK(rsp[0].rsp.id == 100 && rsp[0].rsp.status == 4096);
	CHECK(rsp[0].rsp.flags == (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED |
				   NIF_RXF_EXTRA_INFO | NIF_RXF_MORE_DATA));
	CHECK(rsp[1].extra.type == NIF_EXTRA_TYPE_GSO && rsp[1].extra.flags == 0);
	CHECK(rsp[1].extra.u.gso.size == 1440 && rsp[1].extra.u.gso.type == NIF_GSO_TYPE_TCPV6);
	CHECK(rsp[1].extra.u.gso.pad == 0 && rsp[1].extra.u.gso.features == 0);
	CHECK(rsp[2].rsp.id == 102 && rsp[2].rsp.status == 904 && rsp[2].rsp.flags == 0);
	CHECK(segs[1].gref == 202 && segs[1].slot == 2 && segs[1].src_off == 4096);
	/* One data slot + extra. */
	CHECK(netif_rx_build(reqs, 2, 100, &m, rsp, segs) == 1);
	CHECK(rsp[0].rsp.flags ==
	      (NIF_RXF_CSUM_BLANK | NIF_RXF_DATA_VALIDATED | NIF_RXF_EXTRA_INFO));
	CHECK(rsp[1].extra.type == NIF_EXTRA_TYPE_GSO);
	/* The largest frame: 16 data slots + the extra. */
	CHECK(netif_rx_build(reqs, 17, 65535, &m, rsp, segs) == 16);
	CHECK(rsp[16].rsp.id == 116 && rsp[16].rsp.status == 65535 - 15 * 4096);
}

int main(void)
{
	test_ring();
	test_rx_wait_moving_guest();
	test_tx_simple();
	test_tx_slot_limits();
	test_tx_extras();
	test_tx_respond();
	test_parse();
	test_tx_vnet();
	test_rx_vnet();
	test_offload_flags();
	test_rx_build();
	return bk_test_exit();
}
