// SPDX-License-Identifier: MIT
/*
 * One grant-copy batch per loop turn for the whole vif: with TX requests waiting on both
 * queues and frames waiting in the TAP for the guest, a single loop turn copies all of them
 * in one call. Shown by failing exactly one grant-copy call (the simulation's one-shot fault):
 * every TX packet of both queues is answered ERROR and every frame for the guest is answered
 * ERROR, in the same turn; then traffic flows again both ways. A data path that copies per
 * queue or per direction fails only part of them.
 *
 * Then the RX store (the backlog, frames read from the TAP in place into one buffer per
 * queue): rounds of frames of many sizes, large GSO ones among them, pile up past the
 * backlog's bound while the guest holds its buffers back; every frame reaches the guest once
 * and whole. (The store's wrap-around is test-netif-store's.)
 *
 * Root and a private network namespace (else 77), like the other netif tests.
 */
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "check.h"
#include "device.h"
#include "loop.h"
#include "netfront.h"
#include "netif-common.h"
#include "toolstack.h"
#include "xen/sim.h"

#define DOMID 5
#define DEVID 0
#define NR_TX 4U /* per queue */
#define NR_RX 3U

#define STORE_ROUNDS 4U
#define STORE_FRAMES 300U

static struct bk_bf_env env;
static uint8_t frame[70000], buf[70000];
static const uint8_t *to_guest = (const uint8_t *)"\x02\x00\x00\x00\x00\x01";

static void totals(struct bk_queue_stats *t)
{
	vif_totals(env.core, DOMID, DEVID, t);
}

static size_t store_len(unsigned int round, unsigned int i)
{
	return i % 2 == 0 ? 30000 - round * 1000 - i : 60 + (i * 397 + round * 91) % 1440;
}

static void store_rounds(struct bk_netfront *f, int ps, int ifindex)
{
	static bool seen[STORE_FRAMES];
	struct virtio_net_hdr tso = bk_pkt_vh_tso4(1448), plain = { 0 };
	struct bk_nf_rx_info info;
	unsigned int q, total = 0;

	for (unsigned int round = 0; round < STORE_ROUNDS; round++) {
		unsigned int base = 10000 + round * STORE_FRAMES, got = 0, tries = 0;

		memset(seen, 0, sizeof(seen));
		bk_nf_rx_hold(f, 0, true);
		bk_nf_rx_hold(f, 1, true);
		for (unsigned int i = 0; i < STORE_FRAMES; i++) {
			size_t len = store_len(round, i);
			bool gso = len > 1514;

			bk_pkt_frame(frame, len, gso ? 6 : 17, base + i, to_guest, gso);
			CHECK(bk_pkt_send(ps, ifindex, gso ? &tso : &plain, frame, len) == 0);
		}
		/*
		 * The guest gives its buffers back only when it found nothing new, so the
		 * backlog stays deep and the store never empties while the round runs.
		 */
		while (got < STORE_FRAMES && tries++ < 100000) {
			bool any = false;

			bk_loop_run_once(env.loop, 0);
			for (q = 0; q < 2; q++) {
				unsigned int sp;
				size_t len;
				int r = bk_nf_recv(f, q, buf, sizeof(buf), &info);

				if (r == -EAGAIN)
					continue;
				any = true;
				CHECK(r > 0);
				if (r <= 0 || !bk_pkt_ours(buf, (size_t)r))
					continue;
				sp = bk_pkt_sport(buf);
				CHECK(sp >= base && sp < base + STORE_FRAMES && !seen[sp - base]);
				if (sp < base || sp >= base + STORE_FRAMES)
					continue;
				seen[sp - base] = true;
				len = store_len(round, sp - base);
				bk_pkt_frame(frame, len, len > 1514 ? 6 : 17, sp, to_guest,
					     len > 1514);
				CHECK(r == (int)len && !memcmp(buf, frame, len));
				got++;
			}
			if (!any) {
				for (q = 0; q < 2; q++) {
					bk_nf_rx_hold(f, q, false);
					bk_nf_rx_hold(f, q, true);
				}
			}
		}
		for (q = 0; q < 2; q++)
			bk_nf_rx_hold(f, q, false);
		CHECK(got == STORE_FRAMES);
		total += got;
	}
	fprintf(stderr, "store: %u frames through held buffers, all whole\n", total);
}

int main(void)
{
	struct bk_nf_params p = { .pfn_count = 4000, .nr_queues = 2 };
	struct bk_netfront *f = NULL;
	struct bk_queue_stats t;
	struct bk_nf_tx_counts tc;
	struct bk_nf_rx_info info;
	struct virtio_net_hdr vh = { 0 };
	unsigned int q;
	int ifindex, ps, r;

	r = bk_pkt_netns_setup();
	if (r)
		return r;
	if (bk_nf_env_new(&env) < 0 || bk_bf_env_guest(&env, DOMID, 8192) < 0)
		return 1;
	CHECK(bk_nf_env_add_vif(&env, DOMID, DEVID, NULL) == 0);
	ifindex = (int)if_nametoindex("vif5.0");
	CHECK(ifindex > 0);
	CHECK(bk_pkt_if_up("vif5.0") == 0);
	ps = bk_pkt_socket(ifindex);
	CHECK(ps >= 0);
	/* Straight into the TAP's queue when send returns, not through a qdisc that could hold
	 * a frame past the loop turn below. */
	CHECK(ps < 0 ||
	      setsockopt(ps, SOL_PACKET, PACKET_QDISC_BYPASS, &(int){ 1 }, sizeof(int)) == 0);
	CHECK(bk_nf_open(&env, DOMID, DEVID, &p, &f) == 0);
	if (!f || ps < 0)
		goto out;
	CHECK(bk_nf_connect(f) == 0);
	CHECK(bk_nf_nr_queues(f) == 2);
	for (int i = 0; i < 100; i++)
		bk_loop_run_once(env.loop, 0);

	/* Work in both directions, none of it seen by the daemon yet. */
	for (unsigned int i = 0; i < NR_RX; i++) {
		bk_pkt_frame(frame, 1000, 17, 2000 + i, to_guest, false);
		CHECK(bk_pkt_send(ps, ifindex, &vh, frame, 1000) == 0);
	}
	for (unsigned int i = 0; i < 2 * NR_TX; i++) {
		bk_pkt_frame(frame, 1000, 17, 1000 + i, guest_mac, false);
		CHECK(bk_nf_send(f, i % 2, frame, 1000, &(struct bk_nf_tx){ 0 }) == 0);
	}

	/* The next grant copy fails as a whole; one hook run does everything. */
	CHECK(bk_sim_fault_inject(env.sim, 0, BK_SIM_FAULT_GNT_COPY, 0, -EIO) == 0);
	bk_loop_run_once(env.loop, 0); /* the event channel and the TAP fire */
	bk_loop_run_once(env.loop, 0); /* the device's per-turn hook runs (a prepare watcher) */
	totals(&t);
	fprintf(stderr,
		"one failed copy: tx dropped %llu, rx dropped %llu (rx %llu, waiting %llu)\n",
		(unsigned long long)t.net_tx_drop_copy, (unsigned long long)t.net_rx_drop_copy,
		(unsigned long long)t.net_rx_packets, (unsigned long long)t.inflight);
	CHECK(t.net_tx_drop_copy == 2 * NR_TX);
	CHECK(t.net_rx_drop_copy >= NR_RX); /* and any frame the stack sent on its own */
	CHECK(t.net_tx_packets == 0 && t.net_rx_packets == 0);
	for (q = 0; q < 2; q++)
		CHECK(bk_nf_tx_wait(f, q) == 0);
	bk_nf_tx_counts(f, &tc);
	CHECK(tc.error == 2 * NR_TX && tc.okay == 0);
	/* The guest finds each of those frames answered with an error status. */
	for (q = 0; q < 2; q++)
		while (bk_nf_recv(f, q, buf, sizeof(buf), &info) != -EAGAIN)
			;
	CHECK(bk_nf_rx_errors(f) >= NR_RX);

	/* Nothing is left failing: a frame each way gets through. */
	bk_sim_fault_clear(env.sim);
	bk_pkt_frame(frame, 1000, 17, 1500, guest_mac, false);
	CHECK(bk_nf_send(f, 1, frame, 1000, &(struct bk_nf_tx){ 0 }) == 0);
	CHECK(bk_nf_tx_wait(f, 1) == 0);
	bk_nf_tx_counts(f, &tc);
	CHECK(tc.okay == 1);
	bk_pkt_frame(frame, 1000, 17, 2500, to_guest, false);
	CHECK(bk_pkt_send(ps, ifindex, &vh, frame, 1000) == 0);
	for (int tries = 0; tries < 20; tries++) {
		r = bk_nf_recv_wait(f, buf, sizeof(buf), &info, &q);
		if (r <= 0 || (bk_pkt_ours(buf, (size_t)r) && bk_pkt_sport(buf) == 2500))
			break;
	}
	CHECK(r == 1000 && !memcmp(buf, frame, 1000));
	totals(&t);
	CHECK(t.net_tx_packets == 1 && t.net_rx_packets >= 1);

	store_rounds(f, ps, ifindex);
	CHECK(bk_nf_rx_errors(f) == NR_RX);
	bk_nf_close(f);
	close(ps);
out:
	bk_bf_env_free(&env);
	return bk_test_exit();
}
