// SPDX-License-Identifier: MIT
/*
 * netbench: the whole vif data path in one process, as root in a private network namespace:
 * the test netfront sends frames through the simulation, the netif backend grant-copies them
 * and writes them to the TAP, and a packet socket counts them (guest TX); the packet socket
 * sends frames into the TAP, the backend reads them and grant-copies them into the posted RX
 * buffers, and the netfront takes them (guest RX). Prints frames/s, Gb/s and process CPU per
 * frame; the CPU includes the test frontend and the packet socket, so it is an upper bound on
 * the backend's cost. 1514-byte frames (one slot) and 20000-byte GSO frames (5 slots + extra).
 *
 * Not a test: numbers depend on the machine. Usage: netbench [FRAMES [STATE-DIRECTORY]]: with a
 * state directory the rings keep their in-flight journals there, as the daemon does in
 * production (compare with and without to see what the journal costs).
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "device.h"
#include "loop.h"
#include "netfront.h"
#include "netif-common.h"
#include "toolstack.h"
#include "xen/sim.h"

static struct bk_bf_env env;
static uint8_t frame[70000], buf[70000];

static double clk(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, unsigned int n, size_t len, double wall, double cpu)
{
	printf("%-28s %7u frames %8.0f frames/s %6.2f Gb/s %7.2f us CPU/frame\n", what, n, n / wall,
	       (double)n * (double)len * 8 / wall / 1e9, cpu / n * 1e6);
}

static void tx(struct bk_netfront *f, int ps, unsigned int n, size_t len, bool gso)
{
	struct bk_nf_tx o = { .flags = NIF_TXF_DATA_VALIDATED };
	unsigned int sent = 0, got = 0;
	double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);

	if (gso)
		o = (struct bk_nf_tx){ .flags = NIF_TXF_CSUM_BLANK,
				       .gso_type = NIF_GSO_TYPE_TCPV4,
				       .gso_size = 1448 };
	bk_pkt_frame(frame, len, gso ? 6 : 17, 1000, guest_mac, gso);
	while (got < n) {
		struct virtio_net_hdr vh;
		struct iovec iov[2] = { { &vh, sizeof(vh) }, { buf, sizeof(buf) } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

		while (sent < n && sent - got < 64 && bk_nf_send(f, 0, frame, len, &o) == 0)
			sent++;
		bk_loop_run_once(env.loop, 0);
		bk_nf_tx_reap(f, 0);
		while (recvmsg(ps, &mh, MSG_DONTWAIT) > 0)
			got++;
	}
	report(gso ? "guest TX 20000 B GSO" : "guest TX 1514 B", n, len, clk(CLOCK_MONOTONIC) - w0,
	       clk(CLOCK_PROCESS_CPUTIME_ID) - c0);
}

static void rx(struct bk_netfront *f, int ps, int ifindex, unsigned int n, size_t len, bool gso)
{
	struct virtio_net_hdr vh = { 0 };
	unsigned int sent = 0, got = 0, turns = 0;
	double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);

	if (gso)
		vh = bk_pkt_vh_tso4(1448);
	bk_pkt_frame(frame, len, gso ? 6 : 17, 2000, (const uint8_t *)"\x02\0\0\0\0\1", gso);
	while (got < n) {
		struct bk_nf_rx_info info;

		while (sent < n && sent - got < 200 &&
		       bk_pkt_send(ps, ifindex, &vh, frame, len) == 0)
			sent++;
		bk_loop_run_once(env.loop, 0);
		while (bk_nf_recv(f, 0, buf, sizeof(buf), &info) > 0)
			got++;
		if (++turns > 10000000) {
			fprintf(stderr, "netbench: RX stuck at %u of %u frames\n", got, n);
			break;
		}
	}
	report(gso ? "guest RX 20000 B GSO" : "guest RX 1514 B", n, len, clk(CLOCK_MONOTONIC) - w0,
	       clk(CLOCK_PROCESS_CPUTIME_ID) - c0);
}

int main(int argc, char **argv)
{
	unsigned int n = argc > 1 ? (unsigned int)atoi(argv[1]) : 20000;
	struct bk_nf_params p = { .pfn_count = 2000 };
	struct bk_netfront *f = NULL;
	int ifindex, ps, r = bk_pkt_netns_setup();
	struct bk_config cfg;
	char why[128];

	if (r)
		return r;
	bk_log_set_level(BK_LOG_WARNING);
	if (argc > 2) {
		bk_config_defaults(&cfg);
		if (bk_config_set_key(&cfg, "state-directory", argv[2], why, sizeof(why)) < 0) {
			fprintf(stderr, "netbench: state directory %s: %s\n", argv[2], why);
			return 1;
		}
		bk_config_install(&cfg);
		printf("in-flight journals in %s/inflight\n", argv[2]);
	}
	if (bk_nf_env_new(&env) < 0 || bk_bf_env_guest(&env, 5, 4096) < 0 ||
	    bk_nf_env_add_vif(&env, 5, 0, NULL) < 0)
		return 1;
	ifindex = (int)if_nametoindex("vif5.0");
	if (ifindex <= 0 || bk_pkt_if_up("vif5.0") < 0 || (ps = bk_pkt_socket(ifindex)) < 0 ||
	    bk_nf_open(&env, 5, 0, &p, &f) < 0 || bk_nf_connect(f) < 0) {
		fprintf(stderr, "netbench: setting up the vif failed\n");
		return 1;
	}
	tx(f, ps, n, 1514, false);
	tx(f, ps, n / 10, 20000, true);
	rx(f, ps, ifindex, n, 1514, false);
	rx(f, ps, ifindex, n / 10, 20000, true);
	close(ps);
	bk_nf_close(f);
	bk_bf_env_free(&env);
	return 0;
}
