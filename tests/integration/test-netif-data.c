// SPDX-License-Identifier: MIT
/*
 * netif end to end through the simulation and a real TAP in a private network namespace (root
 * needed, else 77): the vif's TAP exists at InitWait with every feature written; frames sent by
 * the test netfront arrive on the TAP byte for byte (plain, checksum-offloaded over 3 slots,
 * a 20000-byte GSO frame over 6 slots + extra) with the virtio_net_hdr that says so, every slot
 * answered; frames sent into the TAP reach the frontend whole (plain, partial checksum, GSO
 * with its extra), each response in its request's slot; the per-queue counters add up; and a
 * frontend that closes and connects again with new rings gets the same TAP and traffic (a
 * frontend reset); and a disconnect + removal leaves no TAP, no mapping and no bound port.
 *
 * With BLANKETCTL, also what `blanketctl stats --json`, `stats` and `list` show for the vif.
 *
 * Usage: test-netif-data VARIANT [BLANKETCTL]
 *   basic:  one queue, shared event channel, Linux netfront keys
 *   mq:     4 queues, split event channels; both directions use every queue
 *   minios: Mini-OS/Unikraft handshake: no InitWait wait, multi-queue-num-queues=1 written,
 *           no feature-rx-notify (RX buffers posted without a kick), no offloads
 *   handover: 2 queues; then the daemon stops (a restart): the TAP stays with its ifindex,
 *           the vif stays Connected, frames the guest sends meanwhile wait in the ring; a new
 *           daemon (core) adopts the vif, they reach the TAP, and traffic flows both ways
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "check.h"
#include "ctlrun.h"
#include "device.h"
#include "loop.h"
#include "netfront.h"
#include "netif/netif.h"
#include "service.h"
#include "netif-common.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xenbus_front.h"

#define DOMID 5
#define DEVID 0
#define NR_FRAMES 64

static struct bk_bf_env env;
static uint8_t frame[70000], buf[70000];

static void pump(void *data)
{
	bk_loop_run_once(env.loop, 0);
}

static struct bk_device *vif(void)
{
	return bk_core_find(env.core, "vif", DOMID, DEVID);
}

static void stats(struct bk_queue_stats *total, unsigned int *ret_nq)
{
	*ret_nq = vif_totals(env.core, DOMID, DEVID, total);
}

static void check_features(void)
{
	static const char *const ones[] = {
		"feature-rx-copy",	     "feature-sg",
		"feature-gso-tcpv4",	     "feature-gso-tcpv6",
		"feature-ipv6-csum-offload", "feature-split-event-channels"
	};
	static const char *const zeros[] = { "feature-rx-flip", "feature-xdp-headroom",
					     "feature-multicast-control", "feature-ctrl-ring" };
	_cleanup_free_ char *be = bk_ts_be_path(env.ts, "vif", DOMID, DEVID);
	char key[256];

	for (unsigned int i = 0; i < ARRAY_SIZE(ones) + ARRAY_SIZE(zeros); i++) {
		bool one = i < ARRAY_SIZE(ones);
		const char *k = one ? ones[i] : zeros[i - ARRAY_SIZE(ones)];
		char *v = NULL;

		snprintf(key, sizeof(key), "%s/%s", be, k);
		CHECK(bk_xs_read(bk_ts_xs(env.ts), BK_XS_NULL, key, &v, NULL) == 0 && v &&
		      !strcmp(v, one ? "1" : "0"));
		free(v);
	}
	snprintf(key, sizeof(key), "%s/multi-queue-max-queues", be);
	{
		char *v = NULL;

		CHECK(bk_xs_read(bk_ts_xs(env.ts), BK_XS_NULL, key, &v, NULL) == 0 && v &&
		      atoi(v) >= 4);
		free(v);
	}
}

/* Guest -> TAP: @n frames of @len bytes on queue q = i % nq, each verified on the wire. */
static void tx_frames(struct bk_netfront *f, int ps, unsigned int nq, unsigned int n, size_t len,
		      const struct bk_nf_tx *o, uint8_t proto, bool expect_gso)
{
	static bool seen[NR_FRAMES];
	struct virtio_net_hdr vh;
	unsigned int got = 0;

	memset(seen, 0, sizeof(seen));
	for (unsigned int i = 0; i < n; i++) {
		bk_pkt_frame(frame, len, proto, 1000 + i, guest_mac,
			     !!(o->flags & NIF_TXF_CSUM_BLANK));
		CHECK(bk_nf_send(f, i % nq, frame, len, o) == 0);
	}
	for (unsigned int q = 0; q < nq; q++)
		CHECK(bk_nf_tx_wait(f, q) == 0);
	while (got < n) {
		ssize_t r = bk_pkt_recv(ps, &vh, buf, sizeof(buf), pump, NULL, 2000);
		unsigned int sp;

		CHECK(r == (ssize_t)len);
		if (r != (ssize_t)len)
			break;
		sp = bk_pkt_sport(buf);
		CHECK(sp >= 1000 && sp < 1000 + n && !seen[sp - 1000]);
		if (sp < 1000 || sp >= 1000 + n)
			continue;
		seen[sp - 1000] = true;
		bk_pkt_frame(frame, len, proto, sp, guest_mac, !!(o->flags & NIF_TXF_CSUM_BLANK));
		CHECK(!memcmp(buf, frame, len));
		if (o->flags & NIF_TXF_CSUM_BLANK)
			CHECK((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && vh.csum_start == 34 &&
			      vh.csum_offset == (proto == 6 ? 16 : 6));
		if (expect_gso)
			CHECK(vh.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 &&
			      vh.gso_size == o->gso_size && vh.hdr_len == 54);
		else
			CHECK(vh.gso_type == VIRTIO_NET_HDR_GSO_NONE);
		got++;
	}
	CHECK(got == n);
}

/* TAP -> guest: @n frames of @len bytes sent into the TAP, each received whole. */
static void rx_frames(struct bk_netfront *f, int ps, int ifindex, unsigned int n, size_t len,
		      const struct virtio_net_hdr *vh, uint8_t proto, unsigned int *per_queue,
		      bool offloads)
{
	static bool seen[NR_FRAMES];
	unsigned int got = 0, tries = 0;

	memset(seen, 0, sizeof(seen));
	for (unsigned int i = 0; i < n; i++) {
		bk_pkt_frame(frame, len, proto, 2000 + i,
			     (const uint8_t *)"\x02\x00\x00\x00\x00\x01",
			     vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
		CHECK(bk_pkt_send(ps, ifindex, vh, frame, len) == 0);
	}
	while (got < n && tries++ < 4 * n + 100) {
		struct bk_nf_rx_info info;
		unsigned int q = 0, sp;
		int r = bk_nf_recv_wait(f, buf, sizeof(buf), &info, &q);

		CHECK(r > 0);
		if (r <= 0)
			break;
		if (!bk_pkt_ours(buf, (size_t)r))
			continue;
		sp = bk_pkt_sport(buf);
		CHECK(sp >= 2000 && sp < 2000 + n && !seen[sp - 2000]);
		if (sp < 2000 || sp >= 2000 + n)
			continue;
		seen[sp - 2000] = true;
		per_queue[q]++;
		got++;
		if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE && !offloads) {
			/* The kernel segmented it for a frontend without GSO: each piece verifies.
			 */
			CHECK((size_t)r <= 1514 && bk_pkt_l4_ok(buf, (size_t)r));
			got = n;
			break;
		}
		CHECK(r == (int)len);
		bk_pkt_frame(frame, len, proto, sp, (const uint8_t *)"\x02\x00\x00\x00\x00\x01",
			     vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
		CHECK(!memcmp(buf, frame, len));
		if (vh->gso_type == VIRTIO_NET_HDR_GSO_TCPV4) {
			CHECK(info.gso_type == NIF_GSO_TYPE_TCPV4 && info.gso_size == vh->gso_size);
			CHECK(info.flags & NIF_RXF_EXTRA_INFO);
		}
		if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			CHECK(offloads ? (info.flags & NIF_RXF_CSUM_BLANK) != 0
				       : (info.flags & NIF_RXF_DATA_VALIDATED) != 0);
	}
	CHECK(got == n);
}

/*
 * A frontend without feature-rx-notify never kicks for RX buffers: with every buffer used and
 * frames waiting, buffers it posts later are found by polling.
 */
static void rx_unkicked(struct bk_netfront *f, int ps, int ifindex)
{
	struct virtio_net_hdr vh = { 0 };
	struct bk_nf_rx_info info;
	unsigned int got = 0;
	int r;

	bk_nf_rx_hold(f, 0, true);
	for (unsigned int i = 0; i < 300; i++) {
		bk_pkt_frame(frame, 200, 17, 2000 + i, (const uint8_t *)"\x02\x00\x00\x00\x00\x01",
			     false);
		CHECK(bk_pkt_send(ps, ifindex, &vh, frame, 200) == 0);
		if (i % 50 == 49)
			for (int k = 0; k < 5; k++)
				bk_loop_run_once(env.loop, 0);
	}
	while (got < 256 && (r = bk_nf_recv_wait(f, buf, sizeof(buf), &info, NULL)) > 0)
		got++;
	CHECK(got == 256);
	/* Buffers come back without an event. */
	bk_nf_rx_hold(f, 0, false);
	while (got < 300 && (r = bk_nf_recv_wait(f, buf, sizeof(buf), &info, NULL)) > 0)
		got++;
	CHECK(got == 300);
}

/* Run blanketctl with @args while the daemon's loop keeps turning; output in @out. */
static int run_ctl(const char *blanketctl, const char *sock, const char *const *args, char *out,
		   size_t size)
{
	return bk_ctlrun(env.loop, blanketctl, sock, args, 0, out, size);
}

/* What an operator sees: blanketctl stats and list on the vif. */
static void ctl_check(const char *blanketctl, const struct bk_queue_stats *tot, unsigned int nq)
{
	static char out[1 << 16];
	char dir[] = "/tmp/test-netif-data.XXXXXX", sock[128];
	struct bk_service *svc = NULL;
	const char *t;

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	CHECK(bk_ctlrun_service(env.loop, env.core, dir, sock, sizeof(sock), &svc) == 0);
	if (svc) {
		const char *json[] = { "stats", "--json", "vif 5/0", NULL };
		const char *human[] = { "stats", NULL };
		const char *list[] = { "list", NULL };

		CHECK(run_ctl(blanketctl, sock, json, out, sizeof(out)) == 0);
		t = strstr(out, "\"total\":{");
		t = t ? strstr(t, "\"net\":{") : NULL;
		CHECK(bk_ctlrun_json_u64(t, "tx_packets") == tot->net_tx_packets);
		CHECK(bk_ctlrun_json_u64(t, "tx_bytes") == tot->net_tx_bytes);
		CHECK(bk_ctlrun_json_u64(t, "rx_packets") == tot->net_rx_packets);
		CHECK(bk_ctlrun_json_u64(t, "rx_bytes") == tot->net_rx_bytes);
		CHECK(bk_ctlrun_json_u64(t, "tx_gso") == tot->net_tx_gso);
		CHECK(run_ctl(blanketctl, sock, human, out, sizeof(out)) == 0);
		CHECK(strstr(out, "vif 5/0") && strstr(out, "TX-PKTS") && strstr(out, "RX-BYTES"));
		if (nq > 1)
			CHECK(strstr(out, "total") != NULL);
		CHECK(run_ctl(blanketctl, sock, list, out, sizeof(out)) == 0);
		CHECK(strstr(out, "tap=vif5.0") != NULL);
		printf("%s", out);
	}
	bk_service_free(svc);
	rmdir(dir);
}

static void stopped(void *data)
{
	*(bool *)data = true;
}

static bool flag_set(void *data)
{
	return *(bool *)data;
}

/* The daemon stops (handing over) and a new one adopts the vif; traffic goes on. */
static void restart(struct bk_netfront *f, int ps, int ifindex, unsigned int nq)
{
	static const struct bk_backend_ops *const kinds[] = { &netif_backend_ops, NULL };
	struct bk_core_params cp = { .loop = env.loop, .xen = env.xen };
	unsigned int per_queue[8] = { 0 }, state = 0;
	struct virtio_net_hdr vh;
	bool done = false;
	ssize_t n;

	bk_core_stop(env.core, stopped, &done);
	CHECK(bk_test_pump_until(env.loop, flag_set, &done, 0) == 0);
	bk_core_free(env.core);
	env.core = NULL;
	CHECK((int)if_nametoindex("vif5.0") == ifindex);
	CHECK(bk_ts_be_state(env.ts, "vif", DOMID, DEVID, &state) == 0 && state == 4);

	/* The guest keeps sending while no daemon runs. */
	for (unsigned int i = 0; i < 4; i++) {
		bk_pkt_frame(frame, 700, 17, 1000 + i, guest_mac, false);
		CHECK(bk_nf_send(f, i % nq, frame, 700, &(struct bk_nf_tx){ 0 }) == 0);
	}
	CHECK(bk_core_new(&cp, &env.core) == 0);
	for (unsigned int i = 0; kinds[i]; i++)
		CHECK(bk_core_register(env.core, kinds[i]) == 0);
	CHECK(bk_core_start(env.core) == 0);
	for (unsigned int i = 0; i < 4; i++) {
		n = bk_pkt_recv(ps, &vh, buf, sizeof(buf), pump, NULL, 2000);
		CHECK(n == 700 && bk_pkt_sport(buf) >= 1000 && bk_pkt_sport(buf) < 1004);
	}
	for (unsigned int q = 0; q < nq; q++)
		CHECK(bk_nf_tx_wait(f, q) == 0);
	CHECK(bk_ts_be_state(env.ts, "vif", DOMID, DEVID, &state) == 0 && state == 4);
	tx_frames(f, ps, nq, 16, 1000, &(struct bk_nf_tx){ 0 }, 17, false);
	rx_frames(f, ps, ifindex, 16, 1000, &(struct virtio_net_hdr){ 0 }, 17, per_queue, true);
	CHECK(bk_nf_rx_errors(f) == 0);
}

/*
 * The guest closes the vif and connects it again with new rings (a frontend reset, as after
 * a guest's driver reload): the backend goes InitWait from Closed, keeps the TAP (same
 * ifindex), maps the new rings, and traffic flows both ways. Returns the new frontend.
 */
static struct bk_netfront *reconnect(struct bk_netfront *f, const struct bk_nf_params *p, int ps,
				     int ifindex, unsigned int nq)
{
	unsigned int per_queue[8] = { 0 }, state = 0;

	CHECK(bk_nf_disconnect(f) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, DOMID) == 0);
	bk_nf_close(f);
	f = NULL;
	CHECK(bk_nf_open(&env, DOMID, DEVID, p, &f) == 0);
	if (!f)
		return NULL;
	CHECK(bk_xbf_set_state(bk_nf_xbf(f), BK_XB_INITIALISING) == 0);
	CHECK(bk_nf_connect(f) == 0);
	CHECK(bk_ts_be_state(env.ts, "vif", DOMID, DEVID, &state) == 0 && state == 4);
	CHECK((int)if_nametoindex("vif5.0") == ifindex);
	tx_frames(f, ps, nq, 8, 1000, &(struct bk_nf_tx){ 0 }, 17, false);
	rx_frames(f, ps, ifindex, 8, 1000, &(struct virtio_net_hdr){ 0 }, 17, per_queue, true);
	CHECK(bk_nf_rx_errors(f) == 0);
	return f;
}

int main(int argc, char **argv)
{
	const char *variant = argc > 1 ? argv[1] : "basic";
	struct bk_nf_params p = { .pfn_base = 0, .pfn_count = 7000 };
	struct bk_netfront *f = NULL;
	struct bk_queue_stats tot;
	struct bk_nf_tx_counts tc;
	unsigned int per_queue[8] = { 0 }, nq, sq, sent = 0, rcvd = 0;
	bool offloads = true, handover = false, threads = false;
	unsigned int fds;
	int ifindex, ps, r;

	r = bk_pkt_netns_setup();
	if (r)
		return r;
	if (!strcmp(variant, "mq") || !strcmp(variant, "mq-threads")) {
		p.nr_queues = 4;
		p.split = true;
		threads = variant[2] == '-';
	} else if (!strcmp(variant, "minios")) {
		p.nr_queues = 1;
		p.skip_initwait = true;
		p.no_rx_notify = true;
		p.no_offloads = true;
		offloads = false;
	} else if (!strcmp(variant, "handover")) {
		p.nr_queues = 2;
		handover = true;
	} else if (strcmp(variant, "basic")) {
		fprintf(stderr, "usage: %s basic|mq|mq-threads|minios|handover\n", argv[0]);
		return 1;
	}
	nq = BK_MAX(p.nr_queues, 1U);
	if ((threads ? bk_nf_env_new_threads(&env, 2) : bk_nf_env_new(&env)) < 0 ||
	    bk_bf_env_guest(&env, DOMID, 8192) < 0)
		return 1;
	if (threads) {
		CHECK(bk_core_nr_threads(env.core) == 2);
	}
	fds = bk_test_count_fds();
	CHECK(bk_nf_env_add_vif(&env, DOMID, DEVID, NULL) == 0);
	ifindex = (int)if_nametoindex("vif5.0");
	CHECK(ifindex > 0);
	check_features();
	CHECK(bk_pkt_if_up("vif5.0") == 0);
	ps = bk_pkt_socket(ifindex);
	CHECK(ps >= 0);
	CHECK(bk_nf_open(&env, DOMID, DEVID, &p, &f) == 0);
	if (!f || ps < 0)
		goto out;
	CHECK(bk_nf_connect(f) == 0);
	if (threads)
		CHECK(vif() && vif()->thread >= 0 && bk_device_loop(vif()) != env.loop);

	/* Guest TX. */
	tx_frames(f, ps, nq, NR_FRAMES, 1000, &(struct bk_nf_tx){ .flags = NIF_TXF_DATA_VALIDATED },
		  17, false);
	sent += NR_FRAMES;
	tx_frames(f, ps, nq, 8, 1514, &(struct bk_nf_tx){ .first_offset = 3000 }, 17, false);
	sent += 8;
	if (offloads) {
		tx_frames(f, ps, nq, 8, 5000,
			  &(struct bk_nf_tx){
				  .flags = NIF_TXF_CSUM_BLANK, .nr_slots = 3, .first_offset = 96 },
			  6, false);
		tx_frames(f, ps, nq, 8, 20000,
			  &(struct bk_nf_tx){ .flags = NIF_TXF_CSUM_BLANK,
					      .nr_slots = 6,
					      .gso_type = NIF_GSO_TYPE_TCPV4,
					      .gso_size = 1448 },
			  6, true);
		sent += 16;
	}
	bk_nf_tx_counts(f, &tc);
	CHECK(tc.error == 0 && tc.dropped == 0 && tc.other == 0);
	CHECK(tc.null == (offloads ? 8U : 0U));

	/* Guest RX. */
	rx_frames(f, ps, ifindex, NR_FRAMES, 1000, &(struct virtio_net_hdr){ 0 }, 17, per_queue,
		  offloads);
	rcvd += NR_FRAMES;
	rx_frames(f, ps, ifindex, 8, 1400,
		  &(struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					    .csum_start = 34,
					    .csum_offset = 6 },
		  17, per_queue, offloads);
	rcvd += 8;
	if (offloads) {
		struct virtio_net_hdr tso = bk_pkt_vh_tso4(1448);

		rx_frames(f, ps, ifindex, 8, 20000, &tso, 6, per_queue, offloads);
		rcvd += 8;
	}
	if (!strcmp(variant, "minios"))
		rx_unkicked(f, ps, ifindex);
	CHECK(bk_nf_rx_errors(f) == 0);
	if (nq > 1) {
		unsigned int used = 0;

		for (unsigned int q = 0; q < nq; q++)
			used += per_queue[q] > 0;
		CHECK(used >= 2);
	}

	stats(&tot, &sq);
	CHECK(sq == nq);
	CHECK(tot.net_tx_packets == sent && tot.net_rx_packets >= rcvd && tot.errors == 0);
	if (offloads)
		CHECK(tot.net_tx_gso == 8 && tot.net_tx_csum == 16 && tot.net_rx_gso == 8);
	fprintf(stderr, "%s: tx %llu frames %llu bytes, rx %llu frames %llu bytes\n", variant,
		(unsigned long long)tot.net_tx_packets, (unsigned long long)tot.net_tx_bytes,
		(unsigned long long)tot.net_rx_packets, (unsigned long long)tot.net_rx_bytes);

	if (argc > 2)
		ctl_check(argv[2], &tot, nq);
	if (handover)
		restart(f, ps, ifindex, nq);
	f = reconnect(f, &p, ps, ifindex, nq);
	if (!f)
		goto out;

	/* Teardown: nothing left. */
	CHECK(bk_nf_disconnect(f) == 0);
	CHECK(bk_sim_guest_nr_mapped(env.sim, DOMID) == 0);
	CHECK(bk_ts_remove(env.ts, "vif", DOMID, DEVID) == 0);
	bk_xbf_pump(bk_nf_xbf(f), 5);
	CHECK(vif() == NULL);
	CHECK(if_nametoindex("vif5.0") == 0);
out:
	if (ps >= 0)
		close(ps);
	bk_nf_close(f);
	/* No TAP queue, event channel or grant handle left open. */
	CHECK(bk_test_count_fds() == fds);
	bk_bf_env_free(&env);
	return bk_test_exit();
}
