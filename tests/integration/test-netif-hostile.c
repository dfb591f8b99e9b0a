// SPDX-License-Identifier: MIT
/*
 * A hostile netfront against the vif backend, through the simulation and real TAPs in a
 * private network namespace (root, else 77). Each case runs on a fresh victim vif of guest 5
 * while guest 6's bystander vif stays connected; after every case the bystander still passes a
 * verified frame each way, and the victim is either still serving (drop cases: the bad packet
 * answered ERROR) or failed and Closing (fatal cases), its rings unmapped.
 *
 * Cases (netback's rules, backends/netif/proto.h):
 *   slots-19 (first + 18 data slots): delivered; slots-20 and slots-21: answered ERROR, the
 *   vif serves on; slots-22: fatal. Offset + size past the page: fatal. A first slot shorter
 *   than an Ethernet header: ERROR. A zero-length data slot: delivered. A missing extra
 *   (extra_info on the last posted slot): fatal. GSO size 0: fatal. Bogus TX and RX ring
 *   indices: fatal. A frontend asking for 9 queues (8 offered), for 0, and one giving a ring
 *   ref it never granted: refused at connect.
 *
 * RX backlog (a guest holding its buffers): the backend holds a bounded backlog and sleeps
 * (rx-stall); a paused TAP's backlog goes out on the next turns when buffers come back
 * (rx-paused next turn); expiry that empties a paused backlog reads the TAP again (rx expiry).
 *
 * Event storms (XSA-332): a guest notifying its TX port with an empty TX ring, or its RX port
 * while its RX ring has no buffers (split and shared ports), is backed off: at most 64 of a
 * 0.6 s storm's events reach the daemon, while the bystander passes frames.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "check.h"
#include "device.h"
#include "loop.h"
#include "netfront.h"
#include "netif-common.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xenbus_front.h"

#define VICTIM 5
#define BYSTANDER 6
#define PAGES_PER_FRONT 600U

static struct bk_bf_env env;
static struct bk_netfront *by;
static int by_ps = -1, by_ifindex;
static uint8_t frame[70000], buf[70000];
static unsigned int next_devid;

static void pump(void *data)
{
	bk_loop_run_once(env.loop, 0);
}

static const uint8_t dom0_mac[6] = { 0x02, 0, 0, 0, 0, 1 };

/* One verified frame each way through the bystander. */
static void bystander_ok(const char *after)
{
	struct virtio_net_hdr vh = { 0 };
	struct bk_nf_rx_info info;
	unsigned int sp = 3000 + next_devid;
	ssize_t n;
	int r;

	bk_pkt_frame(frame, 800, 17, sp, guest_mac, false);
	CHECK(bk_nf_send(by, 0, frame, 800, &(struct bk_nf_tx){ 0 }) == 0);
	n = bk_pkt_recv(by_ps, &vh, buf, sizeof(buf), pump, NULL, 2000);
	CHECK(n == 800 && !memcmp(buf, frame, 800));
	CHECK(bk_nf_tx_wait(by, 0) == 0);
	bk_pkt_frame(frame, 900, 17, sp, dom0_mac, false);
	CHECK(bk_pkt_send(by_ps, by_ifindex, &vh, frame, 900) == 0);
	do {
		r = bk_nf_recv_wait(by, buf, sizeof(buf), &info, NULL);
	} while (r > 0 && !bk_pkt_ours(buf, (size_t)r));
	CHECK(r == 900 && !memcmp(buf, frame, 900));
	if (bk_test_failures)
		fprintf(stderr, "bystander checked after %s\n", after);
}

struct victim {
	struct bk_netfront *f;
	uint32_t devid;
	char ifname[16];
	int ps, ifindex;
};

static int victim_open(struct victim *v, const struct bk_nf_params *extra, bool connect)
{
	struct bk_nf_params p = { .pfn_count = PAGES_PER_FRONT, .rx_bufs = 64 };

	if (extra)
		p = *extra;
	v->devid = next_devid++;
	p.pfn_base = v->devid * PAGES_PER_FRONT;
	p.pfn_count = PAGES_PER_FRONT;
	if (!p.rx_bufs)
		p.rx_bufs = 64;
	v->ps = -1;
	snprintf(v->ifname, sizeof(v->ifname), "vif%u.%u", VICTIM, v->devid);
	if (bk_nf_env_add_vif(&env, VICTIM, v->devid, NULL) < 0)
		return -1;
	v->ifindex = (int)if_nametoindex(v->ifname);
	if (v->ifindex <= 0 || bk_pkt_if_up(v->ifname) < 0)
		return -1;
	v->ps = bk_pkt_socket(v->ifindex);
	if (v->ps < 0 || bk_nf_open(&env, VICTIM, v->devid, &p, &v->f) < 0)
		return -1;
	return connect ? bk_nf_connect(v->f) : 0;
}

static unsigned int victim_state(struct victim *v)
{
	unsigned int s = 0;

	bk_ts_be_state(env.ts, "vif", VICTIM, v->devid, &s);
	return s;
}

static void victim_close(struct victim *v)
{
	bk_ts_remove(env.ts, "vif", VICTIM, v->devid);
	bk_nf_close(v->f);
	v->f = NULL;
	if (v->ps >= 0)
		close(v->ps);
	CHECK(bk_sim_guest_nr_mapped(env.sim, VICTIM) == 0);
	CHECK(if_nametoindex(v->ifname) == 0);
}

static bool failed(void *data)
{
	struct victim *v = data;

	return victim_state(v) >= BK_XB_CLOSING;
}

/* A frame of @len bytes in @nr data slots (sizes: even split), raw. */
static void put_chain(struct victim *v, size_t len, unsigned int nr, const uint16_t *sizes,
		      uint16_t first_flags, const struct nif_extra *extra, bool extra_missing)
{
	size_t done = 0;

	bk_pkt_frame(frame, len, 17, 4000, guest_mac, false);
	for (unsigned int s = 0; s < nr; s++) {
		union nif_tx_slot slot;
		size_t chunk = sizes ? sizes[s] : (s + 1 == nr ? len - done : len / nr);
		uint32_t ref = 0;

		CHECK(bk_nf_grant_bytes(v->f, frame + done, BK_MIN(chunk, 4096U), 0, &ref) == 0);
		memset(&slot, 0, sizeof(slot));
		slot.req.gref = ref;
		slot.req.id = (uint16_t)(100 + s);
		slot.req.size = (uint16_t)(s ? chunk : len);
		slot.req.flags = s + 1 < nr ? NIF_TXF_MORE_DATA : 0;
		if (s == 0) {
			slot.req.flags |= first_flags;
			if (extra || extra_missing)
				slot.req.flags |= NIF_TXF_EXTRA_INFO;
		}
		bk_nf_tx_put_raw(v->f, 0, &slot);
		if (s == 0 && extra) {
			memset(&slot, 0, sizeof(slot));
			slot.extra = *extra;
			bk_nf_tx_put_raw(v->f, 0, &slot);
		}
		done += chunk;
	}
	bk_nf_tx_push(v->f, 0);
}

/* The victim serves on: @ok_frames frame(s) of the chain reached the TAP, and a plain one does. */
static void expect_served(struct victim *v, const char *name, bool delivered, int16_t status)
{
	struct virtio_net_hdr vh;
	struct bk_nf_tx_counts tc;
	ssize_t n;

	CHECK(bk_nf_tx_wait(v->f, 0) == 0);
	bk_nf_tx_counts(v->f, &tc);
	if (status == NIF_RSP_OKAY)
		CHECK(tc.error == 0 && tc.okay > 0);
	else
		CHECK(tc.error > 0);
	n = bk_pkt_recv(v->ps, &vh, buf, sizeof(buf), pump, NULL, delivered ? 2000 : 50);
	CHECK(delivered ? n > 0 : n < 0);
	CHECK(victim_state(v) == BK_XB_CONNECTED);
	bk_pkt_frame(frame, 600, 17, 4001, guest_mac, false);
	CHECK(bk_nf_send(v->f, 0, frame, 600, &(struct bk_nf_tx){ 0 }) == 0);
	n = bk_pkt_recv(v->ps, &vh, buf, sizeof(buf), pump, NULL, 2000);
	CHECK(n == 600 && !memcmp(buf, frame, 600));
	if (bk_test_failures)
		fprintf(stderr, "after case %s\n", name);
}

static void expect_fatal(struct victim *v, const char *name)
{
	CHECK(bk_test_pump_until(env.loop, failed, v, 0) == 0);
	if (bk_test_failures)
		fprintf(stderr, "after case %s\n", name);
}

static void case_slots(unsigned int nr, bool fatal)
{
	struct victim v = { 0 };
	char name[32];

	snprintf(name, sizeof(name), "slots-%u", nr);
	CHECK(victim_open(&v, NULL, true) == 0);
	if (v.f) {
		/* 2 bytes per data slot after the first, the first takes the rest. */
		uint16_t sizes[32];

		for (unsigned int s = 1; s < nr; s++)
			sizes[s] = 2;
		sizes[0] = (uint16_t)(200 - 2 * (nr - 1));
		put_chain(&v, 200, nr, sizes, 0, NULL, false);
		if (fatal)
			expect_fatal(&v, name);
		else
			expect_served(&v, name, nr <= 19, nr <= 19 ? NIF_RSP_OKAY : NIF_RSP_ERROR);
	}
	victim_close(&v);
	bystander_ok(name);
}

static void case_raw(const char *name, bool fatal, void (*bad)(struct victim *v))
{
	struct victim v = { 0 };

	CHECK(victim_open(&v, NULL, true) == 0);
	if (v.f) {
		bad(&v);
		if (fatal)
			expect_fatal(&v, name);
		else
			expect_served(&v, name, false, NIF_RSP_ERROR);
	}
	victim_close(&v);
	bystander_ok(name);
}

static void bad_page_cross(struct victim *v)
{
	union nif_tx_slot slot = { 0 };
	uint32_t ref;

	bk_pkt_frame(frame, 1000, 17, 4000, guest_mac, false);
	CHECK(bk_nf_grant_bytes(v->f, frame, 1000, 0, &ref) == 0);
	slot.req = (struct nif_tx_req){ .gref = ref, .offset = 3500, .id = 1, .size = 1000 };
	bk_nf_tx_put_raw(v->f, 0, &slot);
	bk_nf_tx_push(v->f, 0);
}

static void bad_runt(struct victim *v)
{
	union nif_tx_slot slot = { 0 };
	uint32_t ref;

	CHECK(bk_nf_grant_bytes(v->f, "0123456789abc", 13, 0, &ref) == 0);
	slot.req = (struct nif_tx_req){ .gref = ref, .id = 1, .size = 13 };
	bk_nf_tx_put_raw(v->f, 0, &slot);
	bk_nf_tx_push(v->f, 0);
}

static void bad_missing_extra(struct victim *v)
{
	put_chain(v, 300, 1, NULL, 0, NULL, true);
}

static void bad_gso_zero(struct victim *v)
{
	struct nif_extra e = { .type = NIF_EXTRA_TYPE_GSO };

	e.u.gso.type = NIF_GSO_TYPE_TCPV4;
	put_chain(v, 3000, 1, NULL, NIF_TXF_CSUM_BLANK, &e, false);
}

static void bad_tx_index(struct victim *v)
{
	struct nif_sring_hdr *h = bk_nf_tx_sring(v->f, 0);

	WRITE_ONCE(h->req_prod, h->req_prod + 1000);
	bk_nf_kick(v->f, 0);
}

static void bad_rx_index(struct victim *v)
{
	struct nif_sring_hdr *h = bk_nf_rx_sring(v->f, 0);
	struct virtio_net_hdr vh = { 0 };

	WRITE_ONCE(h->req_prod, h->req_prod + 5000);
	/* A frame for the guest makes the backend look at the RX ring. */
	bk_pkt_frame(frame, 500, 17, 4002, dom0_mac, false);
	CHECK(bk_pkt_send(v->ps, v->ifindex, &vh, frame, 500) == 0);
}

static void good_zero_slot(void)
{
	struct victim v = { 0 };
	uint16_t sizes[3] = { 500, 0, 300 };

	CHECK(victim_open(&v, NULL, true) == 0);
	if (v.f) {
		put_chain(&v, 800, 3, sizes, 0, NULL, false);
		expect_served(&v, "zero-length slot", true, NIF_RSP_OKAY);
	}
	victim_close(&v);
	bystander_ok("zero-length slot");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool victim_stats(struct victim *v, struct bk_queue_stats *qs)
{
	struct bk_device *dev = bk_core_find(env.core, "vif", VICTIM, v->devid);

	return dev && dev->ops->get_stats(dev, qs, 1) == 1;
}

/*
 * A victim (@p: its parameters, or NULL) that holds its RX buffers while @n frames come from
 * dom0, so its backlog fills; its queue's counters after that in @qs. False if it did not
 * connect (already counted as a failure).
 */
static bool victim_backlog(struct victim *v, const struct bk_nf_params *p, unsigned int n,
			   struct bk_queue_stats *qs)
{
	struct virtio_net_hdr vh = { 0 };

	CHECK(victim_open(v, p, true) == 0);
	if (!v->f)
		return false;
	bk_nf_rx_hold(v->f, 0, true);
	for (unsigned int i = 0; i < n; i++) {
		bk_pkt_frame(frame, 1500, 17, 5000 + i, dom0_mac, false);
		CHECK(bk_pkt_send(v->ps, v->ifindex, &vh, frame, 1500) == 0);
		if (i % 50 == 49)
			for (int k = 0; k < 5; k++)
				bk_loop_run_once(env.loop, 0);
	}
	for (int k = 0; k < 20; k++)
		bk_loop_run_once(env.loop, 1);
	if (!victim_stats(v, qs)) {
		CHECK(!"the victim's counters");
		return false;
	}
	return true;
}

/*
 * A guest that never takes what it receives (XSA-392): its 64 posted buffers fill, the
 * backend holds a bounded backlog and stops reading the TAP, counts the wait as ring-full, and
 * its loop sleeps instead of spinning; the bystander is unaffected; once the guest takes its
 * frames and posts buffers again, the backlog drains to it.
 */
static void case_rx_stall(void)
{
	struct victim v = { 0 };
	struct bk_queue_stats qs[1];
	double w0, c0, wall, cpu;
	unsigned int got = 0;

	if (!victim_backlog(&v, NULL, 450, qs))
		goto out;
	CHECK(qs[0].ring_full >= 1);
	CHECK(qs[0].net_rx_packets == 64);
	/* Bounded: at most the backlog's 512 KiB (and a frame) held, the rest in the kernel. */
	CHECK(qs[0].inflight >= 200 && qs[0].inflight * 1500 <= (512U << 10) + 1500);
	fprintf(stderr, "rx-stall: %llu delivered, %llu held, ring-full %llu\n",
		(unsigned long long)qs[0].net_rx_packets, (unsigned long long)qs[0].inflight,
		(unsigned long long)qs[0].ring_full);
	/* Nothing to do for the stalled vif: 30 loop turns of up to 10 ms must mostly sleep. */
	w0 = now_s();
	c0 = cpu_s();
	for (int k = 0; k < 30; k++)
		bk_loop_run_once(env.loop, 10);
	wall = now_s() - w0;
	cpu = cpu_s() - c0;
	fprintf(stderr, "rx-stall: 30 idle turns took %.0f ms wall, %.0f ms cpu\n", wall * 1e3,
		cpu * 1e3);
	CHECK(wall >= 0.2);
	bystander_ok("rx-stall");
	/* The guest catches up: everything held reaches it. */
	for (;;) {
		struct bk_nf_rx_info info;
		int r = bk_nf_recv(v.f, 0, buf, sizeof(buf), &info);

		if (r == -EAGAIN)
			break;
		CHECK(r == 1500);
		got++;
	}
	CHECK(got == 64);
	bk_nf_rx_hold(v.f, 0, false);
	/* Every frame: what the backend held, and what waited in the kernel's TAP queue (500). */
	while (got < 450) {
		struct bk_nf_rx_info info;
		int r = bk_nf_recv_wait(v.f, buf, sizeof(buf), &info, NULL);

		if (r < 0)
			break;
		CHECK(r == 1500);
		got++;
	}
	fprintf(stderr, "rx-stall: the guest got %u frames after catching up\n", got);
	CHECK(got == 450);
	CHECK(bk_nf_rx_errors(v.f) == 0);
out:
	victim_close(&v);
}

/* The guest takes what is on its RX ring without giving the buffers back: how many frames. */
static unsigned int rx_take_held(struct victim *v)
{
	struct bk_nf_rx_info info;
	unsigned int got = 0;
	int r;

	while ((r = bk_nf_recv(v->f, 0, buf, sizeof(buf), &info)) != -EAGAIN) {
		CHECK(r == 1500);
		if (r < 0)
			break;
		got++;
	}
	return got;
}

/*
 * A paused TAP's backlog goes to the guest on the next loop turns, not after the timer: the
 * guest holds 256 buffers while frames come, so the backlog fills and the TAP is paused; then
 * it gives all 256 back at once. One turn lays at most 64 frames (NETIF_RX_BATCH), so the hook
 * must run again by itself: four turns that do not sleep fill all 256, with no timer in them.
 */
static void case_rx_paused_next_turn(void)
{
	struct bk_nf_params p = { .rx_bufs = 256 };
	struct victim v = { 0 };
	struct bk_queue_stats qs[1];
	uint64_t before = 0;

	if (!victim_backlog(&v, &p, 700, qs))
		goto out;
	/* 256 in the guest's buffers, the backlog at its bound (TAP paused), the rest queued. */
	CHECK(qs[0].net_rx_packets == 256);
	CHECK(qs[0].inflight * 1500 >= (512U << 10) / 2 + 64 * 1500);
	CHECK(rx_take_held(&v) == 256);
	before = qs[0].net_rx_packets;
	bk_nf_rx_hold(v.f, 0, false); /* 256 buffers back, one event */
	for (int k = 0; k < 8; k++)
		bk_loop_run_once(env.loop, 0);
	CHECK(victim_stats(&v, qs));
	fprintf(stderr,
		"rx-paused: %llu frames delivered in 8 turns after the guest gave 256 "
		"buffers back\n",
		(unsigned long long)(qs[0].net_rx_packets - before));
	CHECK(qs[0].net_rx_packets - before == 256);
	CHECK(bk_nf_rx_errors(v.f) == 0);
out:
	victim_close(&v);
	bystander_ok("rx-paused next turn");
}

/*
 * Expiry that empties a paused backlog reads the TAP again: the guest holds its 64 buffers,
 * the backlog fills (TAP paused), every held frame expires after NETIF_RX_EXPIRE_S; then the
 * frames the kernel queued meanwhile, and one sent after the expiry, still reach the guest
 * once it gives its buffers back.
 */
static void case_rx_expire_resumes(void)
{
	struct virtio_net_hdr vh = { 0 };
	struct bk_nf_rx_info info;
	struct victim v = { 0 };
	struct bk_queue_stats qs[1];
	uint64_t held = 0;
	unsigned int got = 0;
	double t0;
	int r;

	if (!victim_backlog(&v, NULL, 450, qs))
		goto out;
	held = qs[0].inflight;
	CHECK(qs[0].net_rx_packets == 64 && held * 1500 >= (512U << 10) / 2);
	/* The timer expires them (it runs every second while frames wait). */
	t0 = now_s();
	while (now_s() - t0 < 15.0 && victim_stats(&v, qs) && qs[0].net_rx_drop_expired < held)
		bk_loop_run_once(env.loop, 100);
	fprintf(stderr, "rx-expire: %llu of %llu held frames expired after %.1f s, %llu held now\n",
		(unsigned long long)qs[0].net_rx_drop_expired, (unsigned long long)held,
		now_s() - t0, (unsigned long long)qs[0].inflight);
	CHECK(qs[0].net_rx_drop_expired == held);
	CHECK(rx_take_held(&v) == 64);
	bk_pkt_frame(frame, 1000, 17, 4999, dom0_mac, false);
	CHECK(bk_pkt_send(v.ps, v.ifindex, &vh, frame, 1000) == 0);
	bk_nf_rx_hold(v.f, 0, false);
	/* What the kernel queued while the TAP was paused, then the frame sent after expiry. */
	do {
		r = bk_nf_recv_wait(v.f, buf, sizeof(buf), &info, NULL);
		if (r == 1500)
			got++;
	} while (r == 1500);
	fprintf(stderr, "rx-expire: %u queued frames, then %d\n", got, r);
	CHECK(r == 1000 && !memcmp(buf, frame, 1000));
	CHECK(got == 450 - 64 - held);
	CHECK(bk_nf_rx_errors(v.f) == 0);
out:
	victim_close(&v);
	bystander_ok("rx expiry");
}

static bool be_at_least(void *data)
{
	struct victim *v = data;
	unsigned int s = 0;

	return bk_ts_be_state(env.ts, "vif", VICTIM, v->devid, &s) == 0 && s >= BK_XB_INITWAIT;
}

/*
 * The hotplug script gates Connected: a frontend that connected before the script finished
 * sees the backend stay in InitWait (its rings mapped) until hotplug-status=connected; a
 * script that fails (hotplug-status=error) fails the vif: Closing.
 */
static void case_hotplug(bool script_ok)
{
	const char *name = script_ok ? "hotplug late" : "hotplug error";
	struct bk_nf_params p = { .rx_bufs = 64, .pfn_count = PAGES_PER_FRONT };
	struct victim v = { .ps = -1 };
	struct bk_ts_dev d = { .kind = "vif", .domid = VICTIM };
	struct virtio_net_hdr vh;
	ssize_t n;

	v.devid = next_devid++;
	d.devid = v.devid;
	p.pfn_base = v.devid * PAGES_PER_FRONT;
	snprintf(v.ifname, sizeof(v.ifname), "vif%u.%u", VICTIM, v.devid);
	CHECK(bk_ts_add(env.ts, &d) == 0);
	CHECK(bk_test_pump_until(env.loop, be_at_least, &v, 0) == 0);
	CHECK(victim_state(&v) == BK_XB_INITWAIT);
	CHECK(bk_nf_open(&env, VICTIM, v.devid, &p, &v.f) == 0);
	if (!v.f)
		goto out;
	CHECK(bk_nf_prepare(v.f) == 0);
	CHECK(bk_xbf_set_state(bk_nf_xbf(v.f), BK_XB_CONNECTED) == 0);
	bk_xbf_pump(bk_nf_xbf(v.f), 20);
	CHECK(victim_state(&v) == BK_XB_INITWAIT);
	CHECK(bk_ts_hotplug(env.ts, "vif", VICTIM, v.devid, script_ok ? "connected" : "error") ==
	      0);
	if (!script_ok) {
		expect_fatal(&v, name);
		goto out;
	}
	CHECK(bk_xbf_wait_be_state(bk_nf_xbf(v.f), BK_XB_CONNECTED, 0) == 0);
	v.ifindex = (int)if_nametoindex(v.ifname);
	CHECK(v.ifindex > 0 && bk_pkt_if_up(v.ifname) == 0);
	v.ps = bk_pkt_socket(v.ifindex);
	bk_pkt_frame(frame, 600, 17, 4003, guest_mac, false);
	CHECK(bk_nf_send(v.f, 0, frame, 600, &(struct bk_nf_tx){ 0 }) == 0);
	n = bk_pkt_recv(v.ps, &vh, buf, sizeof(buf), pump, NULL, 2000);
	CHECK(n == 600 && !memcmp(buf, frame, 600));
out:
	if (bk_test_failures)
		fprintf(stderr, "after case %s\n", name);
	victim_close(&v);
	bystander_ok(name);
}

/* The guest's end of the victim's @key ("event-channel", "event-channel-tx", ...), or 0. */
static uint32_t victim_port(struct victim *v, const char *key)
{
	_cleanup_free_ char *val = NULL;

	if (bk_xbf_read(bk_nf_xbf(v->f), key, &val) < 0)
		return 0;
	return (uint32_t)strtoul(val, NULL, 10);
}

/* Storm notifications the guest may send per loop turn: far more than one turn needs. */
#define STORM_CREDIT 100000U
/* How long each storm lasts, and the events of it that may reach the daemon (XSA-332). */
#define STORM_S 0.6
#define STORM_EVENTS_MAX 64U

/*
 * A guest storming a port that has no work for us (XSA-332): its TX port with an empty TX
 * ring (@rx false), or its RX port while its RX ring has no buffers and frames wait for it
 * (@rx true; @split: event-channel-tx/-rx, else the one port). The port is kept masked and
 * backed off: few of the storm's events reach the daemon, each counted as spurious, while
 * the bystander passes verified frames during the storm. Afterwards the victim serves again.
 */
static void case_storm(bool rx, bool split)
{
	struct bk_nf_params p = { .split = split, .rx_bufs = 64 };
	struct victim v = { 0 };
	struct bk_queue_stats before, after;
	const char *key = split ? (rx ? "event-channel-rx" : "event-channel-tx") : "event-channel";
	struct virtio_net_hdr vh;
	unsigned int turns = 0, checks = 0;
	uint32_t port;
	ssize_t n;
	double t0;

	fprintf(stderr, "storm: %s port%s\n", rx ? "RX (no buffers)" : "TX (empty ring)",
		split ? ", split" : "");
	if (rx) {
		/* 64 frames fill its buffers, which it holds; the rest wait in the backlog. */
		if (!victim_backlog(&v, &p, 100, &before))
			goto out;
	} else {
		CHECK(victim_open(&v, &p, true) == 0);
		if (!v.f)
			goto out;
		for (int k = 0; k < 20; k++)
			bk_loop_run_once(env.loop, 1);
		CHECK(victim_stats(&v, &before));
	}
	port = victim_port(&v, key);
	CHECK(port != 0);
	if (!port)
		goto out;
	t0 = now_s();
	while (now_s() - t0 < STORM_S) {
		CHECK(bk_sim_guest_evtchn_storm(env.sim, VICTIM, port, STORM_CREDIT, NULL) == 0);
		bk_loop_run_once(env.loop, 1);
		if (++turns % 100 == 0) {
			bystander_ok(rx ? "a turn of the RX storm" : "a turn of the TX storm");
			checks++;
		}
	}
	CHECK(bk_sim_guest_evtchn_storm(env.sim, VICTIM, port, 0, NULL) == 0);
	CHECK(victim_stats(&v, &after));
	fprintf(stderr,
		"storm: %u turns in %.1f s, %llu events reached the daemon, %llu spurious, "
		"%u bystander checks\n",
		turns, STORM_S, (unsigned long long)(after.notify_in - before.notify_in),
		(unsigned long long)(after.spurious - before.spurious), checks);
	/* The storm went on for a while, the bystander passing frames meanwhile... */
	CHECK(turns >= 100 && checks >= 1);
	/* ...and it was backed off: few of its events reached the daemon, all spurious. */
	CHECK(after.notify_in - before.notify_in <= STORM_EVENTS_MAX);
	CHECK(after.spurious - before.spurious > 16);
	CHECK(after.spurious - before.spurious <= after.notify_in - before.notify_in);
	/* The victim still serves once the storm is over: what waited for it, and a frame out. */
	if (rx) {
		CHECK(rx_take_held(&v) == 64);
		bk_nf_rx_hold(v.f, 0, false);
		for (unsigned int got = 64; got < 100; got++) {
			struct bk_nf_rx_info info;
			int r = bk_nf_recv_wait(v.f, buf, sizeof(buf), &info, NULL);

			CHECK(r == 1500);
			if (r != 1500)
				break;
		}
	}
	bk_pkt_frame(frame, 600, 17, 4005, guest_mac, false);
	CHECK(bk_nf_send(v.f, 0, frame, 600, &(struct bk_nf_tx){ 0 }) == 0);
	n = bk_pkt_recv(v.ps, &vh, buf, sizeof(buf), pump, NULL, 2000);
	CHECK(n == 600 && !memcmp(buf, frame, 600));
	CHECK(victim_state(&v) == BK_XB_CONNECTED);
out:
	if (bk_test_failures)
		fprintf(stderr, "after the storm case\n");
	victim_close(&v);
	bystander_ok("storm");
}

/* The frontend's keys are refused at connect: the victim never says Connected. */
static void case_keys(const char *name, const char *key, const char *val)
{
	struct victim v = { 0 };

	CHECK(victim_open(&v, &(struct bk_nf_params){ .nr_queues = 2 }, false) == 0);
	if (v.f) {
		CHECK(bk_xbf_wait_be_state(bk_nf_xbf(v.f), BK_XB_INITWAIT, 0) == 0);
		CHECK(bk_nf_prepare(v.f) == 0);
		CHECK(bk_xbf_write(bk_nf_xbf(v.f), key, "%s", val) == 0);
		CHECK(bk_xbf_set_state(bk_nf_xbf(v.f), BK_XB_CONNECTED) == 0);
		expect_fatal(&v, name);
		CHECK(victim_state(&v) != BK_XB_CONNECTED);
	}
	victim_close(&v);
	bystander_ok(name);
}

int main(void)
{
	struct bk_nf_params bp = { .pfn_base = 0, .pfn_count = PAGES_PER_FRONT };
	int r = bk_pkt_netns_setup();

	if (r)
		return r;
	if (bk_nf_env_new(&env) < 0 || bk_bf_env_guest(&env, VICTIM, 24 * PAGES_PER_FRONT) < 0 ||
	    bk_bf_env_guest(&env, BYSTANDER, PAGES_PER_FRONT) < 0)
		return 1;
	CHECK(bk_nf_env_add_vif(&env, BYSTANDER, 0, NULL) == 0);
	by_ifindex = (int)if_nametoindex("vif6.0");
	CHECK(by_ifindex > 0 && bk_pkt_if_up("vif6.0") == 0);
	by_ps = bk_pkt_socket(by_ifindex);
	CHECK(by_ps >= 0);
	CHECK(bk_nf_open(&env, BYSTANDER, 0, &bp, &by) == 0);
	if (!by || by_ps < 0)
		goto out;
	CHECK(bk_nf_connect(by) == 0);
	bystander_ok("start");

	case_slots(19, false);
	case_slots(20, false);
	case_slots(21, false);
	case_slots(22, true);
	case_raw("offset+size past the page", true, bad_page_cross);
	case_raw("frame shorter than an Ethernet header", false, bad_runt);
	good_zero_slot();
	case_raw("missing extra", true, bad_missing_extra);
	case_raw("GSO size 0", true, bad_gso_zero);
	case_raw("bogus TX ring index", true, bad_tx_index);
	case_raw("bogus RX ring index", true, bad_rx_index);
	case_rx_stall();
	case_rx_paused_next_turn();
	case_rx_expire_resumes();
	case_storm(false, false);
	case_storm(false, true);
	case_storm(true, true);
	case_storm(true, false);
	case_hotplug(true);
	case_hotplug(false);
	case_keys("9 queues", "multi-queue-num-queues", "9");
	case_keys("0 queues", "multi-queue-num-queues", "0");
	case_keys("ring ref never granted", "queue-1/rx-ring-ref", "99999");
	case_keys("no rx-copy", "request-rx-copy", "0");
out:
	if (by_ps >= 0)
		close(by_ps);
	bk_nf_close(by);
	bk_bf_env_free(&env);
	return bk_test_exit();
}
