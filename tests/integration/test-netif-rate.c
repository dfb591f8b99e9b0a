// SPDX-License-Identifier: MIT
/*
 * The vif's TX credit limiter (xl.cfg rate=) through the simulation and a real TAP (root,
 * else 77). Throughput is measured in bytes against the limiter's credit refills, never
 * against the wall clock:
 *   - the toolstack's `rate` key "25000,20000" (10Mb/s@20ms): while the guest keeps its TX ring
 *     full, the bytes reaching the TAP stay within one window's credit of refills x 25000, the
 *     queues count throttled time, and `blanketctl stats` shows it;
 *   - `blanketctl limit vif 5/0 rate=40Mb/s@10ms` while the guest sends: the same bound with
 *     the new credit (50000 every 10 ms), and `blanketctl limit` shows it back;
 *   - a frame larger than the credit (9000 bytes against 1000 every 10 ms) still passes once
 *     enough credit gathered, after at least 8 refills;
 *   - bad values are refused naming the value: `rate=10Mb` from blanketctl, and a `rate` key
 *     that is not BYTES,USEC (then TX is unlimited, as netback);
 *   - `rate=off` lifts the limit.
 *
 * Usage: test-netif-rate BLANKETCTL
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
#include "netif-common.h"
#include "netif/netif.h"
#include "service.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xenbus_front.h"

#define DOMID 5
#define DEVID 0
#define FRAME 1000U

static struct bk_bf_env env;
static struct bk_netfront *fe;
static const char *blanketctl;
static char sock[128], out[1 << 16];
static uint8_t frame[16384];
static int ps = -1;

static struct bk_device *vif(void)
{
	return bk_core_find(env.core, "vif", DOMID, DEVID);
}

static struct bk_queue_stats total(void)
{
	struct bk_queue_stats qs[8], t = { 0 };
	struct bk_device *dev = vif();
	int n = dev ? dev->ops->get_stats(dev, qs, 8) : 0;

	for (int i = 0; i < n && i < 8; i++) {
		t.net_tx_bytes += qs[i].net_tx_bytes;
		t.net_tx_packets += qs[i].net_tx_packets;
		t.throttled += qs[i].throttled;
		t.throttled_ns += qs[i].throttled_ns;
	}
	return t;
}

static uint64_t refills(void)
{
	return vif() ? netif_credit_refills(vif()) : 0;
}

static int run_ctl(const char *const *args)
{
	return bk_ctlrun(env.loop, blanketctl, sock, args, BK_CTLRUN_STDERR, out, sizeof(out));
}

/* Drain what the TAP received (the packet socket), so the kernel never drops for us. */
static void host_drain(void)
{
	static uint8_t buf[70000];

	while (recv(ps, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Keep the guest's ring full of @len-byte frames until the limiter refilled @n more times. */
static uint64_t send_until_refills(uint64_t n, size_t len, uint64_t credit, uint64_t *ret_bytes)
{
	uint64_t r0 = refills(), b0 = total().net_tx_bytes;
	unsigned int turns = 0;

	bk_pkt_frame(frame, len, 17, 3000, guest_mac, false);
	/* Until the refills, or more bytes than they could let through (no limit at all). */
	while (refills() < r0 + n && total().net_tx_bytes - b0 < 131072 + 2 * n * credit &&
	       turns++ < 200000) {
		while (bk_nf_send(fe, 0, frame, len, &(struct bk_nf_tx){ 0 }) == 0)
			;
		bk_loop_run_once(env.loop, 5);
		bk_nf_tx_reap(fe, 0);
		host_drain();
	}
	CHECK(refills() >= r0 + n);
	*ret_bytes = total().net_tx_bytes - b0;
	return refills() - r0;
}

/*
 * Over @n refills of @credit bytes, with the ring always full of @len-byte frames: at most the
 * credit held at the start (one window, or the 128 KiB burst) plus what the refills added, and
 * at least what the refills added short of a frame each (a refill comes only when a frame no
 * longer fits).
 */
static void check_bound(const char *what, uint64_t bytes, uint64_t n, uint64_t credit, size_t len)
{
	uint64_t burst = credit > 131072 ? credit : 131072;
	uint64_t hi = burst + n * credit, lo = n ? (n - 1) * (credit - len) : 0;

	fprintf(stderr, "%s: %llu bytes over %llu refills of %llu (bounds %llu..%llu)\n", what,
		(unsigned long long)bytes, (unsigned long long)n, (unsigned long long)credit,
		(unsigned long long)lo, (unsigned long long)hi);
	CHECK(bytes <= hi);
	CHECK(bytes >= lo);
}

static void check_ctl(void)
{
	const char *stats[] = { "stats", "vif 5/0", NULL };
	const char *json[] = { "stats", "--json", "vif 5/0", NULL };
	const char *show[] = { "limit", "vif", "5/0", NULL };
	const char *set[] = { "limit", "vif", "5/0", "rate=40Mb/s@10ms", NULL };
	const char *bad[] = { "limit", "vif", "5/0", "rate=10Mb", NULL };
	const char *badi[] = { "limit", "vif", "5/0", "rate=10Mb/s@0ms", NULL };
	const char *iops[] = { "limit", "vif", "5/0", "iops=100", NULL };
	const char *slow[] = { "limit", "vif", "5/0", "rate=800kb/s@10ms", NULL };
	const char *off[] = { "limit", "vif", "5/0", "off", NULL };
	struct bk_queue_stats t;
	uint64_t bytes, n;
	const char *j;
	char d[256];

	/* Throttled time is shown. */
	CHECK(run_ctl(stats) == 0);
	CHECK(strstr(out, "THROTTLED") != NULL);
	CHECK(run_ctl(json) == 0);
	j = strstr(out, "\"total\":{");
	t = total();
	CHECK(j && bk_ctlrun_json_u64(j, "throttled_ns") > 0);
	CHECK(t.throttled > 0 && t.throttled_ns > 0);

	CHECK(run_ctl(show) == 0);
	fprintf(stderr, "limit: %s", out);
	CHECK(strstr(out, "burst=20") != NULL);

	/* Changed while the guest runs. */
	CHECK(run_ctl(set) == 0);
	fprintf(stderr, "limit: %s", out);
	CHECK(strstr(out, "burst=10") != NULL);
	CHECK(vif()->ops->describe(vif(), d, sizeof(d)) == 0 && strstr(d, "rate=50000,10000"));
	n = send_until_refills(60, FRAME, 50000, &bytes);
	check_bound("rate=40Mb/s@10ms", bytes, n, 50000, FRAME);

	/* Refused, naming the value; nothing changed. */
	CHECK(run_ctl(bad) != 0);
	CHECK(strstr(out, "rate=10Mb") != NULL);
	CHECK(run_ctl(badi) != 0);
	CHECK(strstr(out, "rate=10Mb/s@0ms") != NULL);
	CHECK(run_ctl(iops) != 0);
	CHECK(vif()->ops->describe(vif(), d, sizeof(d)) == 0 && strstr(d, "rate=50000,10000"));

	/* A frame larger than the credit passes once enough gathered. */
	CHECK(bk_nf_tx_wait(fe, 0) == 0); /* what the guest queued went first */
	CHECK(run_ctl(slow) == 0);
	CHECK(vif()->ops->describe(vif(), d, sizeof(d)) == 0 && strstr(d, "rate=1000,10000"));
	{
		uint64_t r0 = refills(), p0 = total().net_tx_packets;

		bk_pkt_frame(frame, 9000, 17, 3001, guest_mac, false);
		CHECK(bk_nf_send(fe, 0, frame, 9000, &(struct bk_nf_tx){ 0 }) == 0);
		for (unsigned int k = 0; k < 20000 && total().net_tx_packets == p0; k++) {
			bk_loop_run_once(env.loop, 5);
			host_drain();
		}
		CHECK(total().net_tx_packets == p0 + 1);
		fprintf(stderr, "a 9000-byte frame against 1000 bytes per window: %llu refills\n",
			(unsigned long long)(refills() - r0));
		CHECK(refills() - r0 >= 8);
		CHECK(bk_nf_tx_wait(fe, 0) == 0);
	}

	CHECK(run_ctl(off) == 0);
	CHECK(vif()->ops->describe(vif(), d, sizeof(d)) == 0 && !strstr(d, "rate="));
}

int main(int argc, char **argv)
{
	static const char *const extra[] = { "rate", "25000,20000", NULL };
	struct bk_nf_params p = { .pfn_base = 0, .pfn_count = 7000 };
	struct bk_service *svc = NULL;
	char dir[] = "/tmp/test-netif-rate.XXXXXX", d[256];
	uint64_t bytes, n;
	int r, ifindex;

	if (argc < 2) {
		fprintf(stderr, "usage: %s BLANKETCTL\n", argv[0]);
		return 1;
	}
	blanketctl = argv[1];
	r = bk_pkt_netns_setup();
	if (r)
		return r;
	if (!mkdtemp(dir))
		return 1;
	if (bk_nf_env_new(&env) < 0 || bk_bf_env_guest(&env, DOMID, 8192) < 0)
		return 1;
	CHECK(bk_nf_env_add_vif(&env, DOMID, DEVID, extra) == 0);
	ifindex = (int)if_nametoindex("vif5.0");
	CHECK(ifindex > 0 && bk_pkt_if_up("vif5.0") == 0);
	ps = bk_pkt_socket(ifindex);
	CHECK(ps >= 0);
	CHECK(bk_nf_open(&env, DOMID, DEVID, &p, &fe) == 0);
	if (!fe || ps < 0)
		goto out;
	CHECK(bk_nf_connect(fe) == 0);
	CHECK(vif()->ops->describe(vif(), d, sizeof(d)) == 0 && strstr(d, "rate=25000,20000"));

	/* The toolstack's rate: 25000 bytes every 20 ms. */
	n = send_until_refills(25, FRAME, 25000, &bytes);
	check_bound("rate key 25000,20000", bytes, n, 25000, FRAME);

	CHECK(bk_ctlrun_service(env.loop, env.core, dir, sock, sizeof(sock), &svc) == 0);
	if (svc)
		check_ctl();
	bk_service_free(svc);

	/* A key that is not BYTES,USEC: refused (logged naming it), TX unlimited. */
	CHECK(bk_ts_write_be(env.ts, "vif", DOMID, DEVID, "rate", "25000,20000") == 0);
	bk_xbf_pump(bk_nf_xbf(fe), 5);
	CHECK(vif()->ops->describe(vif(), d, sizeof(d)) == 0 && strstr(d, "rate=25000,20000"));
	CHECK(bk_ts_write_be(env.ts, "vif", DOMID, DEVID, "rate", "lots") == 0);
	bk_xbf_pump(bk_nf_xbf(fe), 5);
	CHECK(vif()->ops->describe(vif(), d, sizeof(d)) == 0 && !strstr(d, "rate="));
	{
		uint64_t a, b;

		CHECK(netif_credit_parse("25000,20000", &a, &b) == 0 && a == 25000 && b == 20000);
		CHECK(netif_credit_parse("25000", &a, &b) < 0);
		CHECK(netif_credit_parse("-1,20000", &a, &b) < 0);
		CHECK(netif_credit_parse("1,0", &a, &b) < 0);
		CHECK(netif_credit_parse("1,2x", &a, &b) < 0);
	}

	CHECK(bk_nf_disconnect(fe) == 0);
out:
	if (ps >= 0)
		close(ps);
	bk_nf_close(fe);
	bk_bf_env_free(&env);
	rmdir(dir);
	return bk_test_exit();
}
