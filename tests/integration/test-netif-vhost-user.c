// SPDX-License-Identifier: MIT
/*
 * A vif whose port is a vhost-user-net back-end: DPDK's testpmd with its vhost PMD in macswap
 * mode (an echo that swaps the MAC addresses), reached through blanketd.conf's vif-port. The
 * test netfront sends frames; each comes back through testpmd and blanketd to the guest, and
 * every byte is checked (the two MAC addresses swapped, the rest as sent):
 *   - plain frames of 60..1514 bytes, on every queue the back-end has;
 *   - checksum offload: a TCP and a UDP frame with csum_blank leave with only the pseudo-header
 *     sum in the field and NEEDS_CSUM + csum_start/offset in the virtio_net_hdr; they come back
 *     either still partial (NETRXF_csum_blank, bytes equal) or with a valid checksum, which
 *     the vhost library computed at the place the header named: a header without NEEDS_CSUM
 *     or with the wrong offsets would bring back an invalid checksum;
 *   - GSO: a 20000-byte TCPv4 frame with a GSO extra goes out as one GSO frame (testpmd with
 *     tso=1: HOST_TSO4 taken) and comes back whole over mergeable RX buffers, checksum valid.
 *     (macswap sets no TSO on its way back, so GSO towards the guest is not exercised here;
 *     that mapping is netif's, shared with the TAP and tested by netif-data-*);
 *   - testpmd killed (-9) and started again on the same socket: blanketd reconnects, frames
 *     flow again on every queue;
 *   - blanketctl (argv[2]) shows the port as an L0 device with the vif as its user: `list`
 *     and `list --json` its transport, DMA mode and link; `stats --json` exactly the frames
 *     and bytes each queue pair carried each way in the exchange above, and after testpmd's
 *     restart (below) one reconnect;
 *   - a vif-port that names a missing socket fails that vif with the path in the log.
 * Skips (77) where dpdk-testpmd is not installed or cannot start (it runs with --no-huge).
 *
 * Usage: test-netif-vhost-user [TESTPMD [BLANKETCTL]]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"
#include "ctlrun.h"
#include "device.h"
#include "loop.h"
#include "netfront.h"
#include "netif-common.h"
#include "service.h"
#include "toolstack.h"
#include "util/log.h"
#include "xenbus_front.h"

#define DOMID 5
#define DEVID 0
#define VIFNAME "tp0"

static struct bk_bf_env env;
static uint8_t frame[70000], buf[70000];
static char dir[] = "/tmp/bk-vhu-net-XXXXXX";
static char sock[128], logpath[160];
static pid_t pmd = -1;
static char out[1 << 16];
/* What the guest sent on each queue pair (frames, Ethernet bytes); echo() counts. */
static uint64_t sent[2], sent_bytes[2];

static void pmd_stop(void)
{
	if (pmd > 0) {
		kill(pmd, SIGTERM);
		waitpid(pmd, NULL, 0);
		pmd = -1;
	}
}

/* testpmd, macswap, one port: 0 once its socket exists, 77 if it cannot run. */
static int pmd_start(const char *testpmd)
{
	char vdev[256], prefix[64];

	snprintf(sock, sizeof(sock), "%s/vhost.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/testpmd.log", dir);
	snprintf(vdev, sizeof(vdev), "net_vhost0,iface=%s,queues=2,tso=1", sock);
	snprintf(prefix, sizeof(prefix), "bkvhu%d", (int)getpid());
	pmd = fork();
	if (pmd < 0)
		return 1;
	if (pmd == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(testpmd, testpmd, "--no-huge", "-m", "256", "--no-pci", "--lcores=0@0,1@1",
		      "--file-prefix", prefix, "--vdev", vdev, "--", "--forward-mode=macswap",
		      "--auto-start", "--nb-cores=1", "--rxq=2", "--txq=2",
		      "--total-num-mbufs=8192", "--stats-period=3600", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300; i++) {
		struct stat st;
		int status;

		if (stat(sock, &st) == 0)
			return 0;
		if (waitpid(pmd, &status, WNOHANG) == pmd) {
			pmd = -1;
			fprintf(stderr,
				"SKIP: testpmd exited before its socket appeared (see %s)\n",
				logpath);
			return 77;
		}
		usleep(100000);
	}
	fprintf(stderr, "SKIP: testpmd made no socket in 30 s\n");
	return 77;
}

/* Frame @len from the guest, its echo checked byte for byte; @info: what netfront saw. */
static int echo(struct bk_netfront *f, unsigned int q, size_t len, uint8_t proto,
		unsigned int sport, const struct bk_nf_tx *o, struct bk_nf_rx_info *info)
{
	bool partial = !!(o->flags & NIF_TXF_CSUM_BLANK);
	size_t l4 = 34, csum = l4 + (proto == 6 ? 16 : 6);
	unsigned int tries = 0;
	int r;

	bk_pkt_frame(frame, len, proto, sport, guest_mac, partial);
	CHECK(bk_nf_send(f, q, frame, len, o) == 0);
	CHECK(bk_nf_tx_wait(f, q) == 0);
	if (q < 2) {
		sent[q]++;
		sent_bytes[q] += len;
	}
	do {
		r = bk_nf_recv_wait(f, buf, sizeof(buf), info, NULL);
	} while (r > 0 && (!bk_pkt_ours(buf, (size_t)r) || bk_pkt_sport(buf) != sport) &&
		 tries++ < 16);
	CHECK(r == (int)len);
	if (r != (int)len)
		return -1;
	/* macswap: the guest's MAC is the destination now, broadcast the source. */
	CHECK(!memcmp(buf, guest_mac, 6) && !memcmp(buf + 6, "\xff\xff\xff\xff\xff\xff", 6));
	CHECK(!memcmp(buf + 12, frame + 12, csum - 12));
	CHECK(!memcmp(buf + csum + 2, frame + csum + 2, len - csum - 2));
	if (partial && (info->flags & NIF_RXF_CSUM_BLANK))
		CHECK(!memcmp(buf + csum, frame + csum, 2)); /* still the pseudo-header sum */
	else
		CHECK(bk_pkt_l4_ok(buf, len));
	return 0;
}

/*
 * blanketctl's view of the port while the vif is connected: an L0 virtio-net device (the
 * vhost-user socket, identity DMA, no MAC of its own, link up) used by the vif, and on each
 * queue pair exactly the frames and bytes that went each way (macswap echoes every frame on
 * the pair it came in on).
 */
static void check_ctl(const char *blanketctl)
{
	struct bk_service *svc = NULL;
	char csock[128], want[512];
	const char *t;

	CHECK(bk_ctlrun_service(env.loop, env.core, dir, csock, sizeof(csock), &svc) == 0);
	if (!svc)
		return;
	{
		const char *args[] = { "list", "--json", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		t = strstr(out, "\"l0_devices\":[{");
		CHECK(t != NULL);
		snprintf(want, sizeof(want),
			 "{\"kind\":\"virtio-net\",\"name\":\"%s\",\"transport\":\"vhost-user\","
			 "\"dma_mode\":\"identity\",\"dma_why\":\"",
			 sock);
		CHECK(t && strstr(t, want));
		CHECK(t && strstr(t, "\"mac\":\"\",\"link_up\":true"));
		snprintf(want, sizeof(want), "\"users\":[{\"owner\":\"vif %u/%u\"}]", DOMID, DEVID);
		CHECK(t && strstr(t, want));
		for (unsigned int q = 0; q < 2; q++) {
			snprintf(want, sizeof(want),
				 "{\"index\":%u,\"size\":256,\"owner\":\"vif %u/%u\"}", q, DOMID,
				 DEVID);
			CHECK(t && strstr(t, want));
		}
		if (bk_test_failures)
			fprintf(stderr, "blanketctl list --json said:\n%s\n", out);
	}
	{
		const char *args[] = { "list", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		snprintf(want, sizeof(want),
			 "L0 virtio-net %s (vhost-user, DMA identity, eventfd): no MAC, link up, "
			 "2 queue pairs",
			 sock);
		CHECK(strstr(out, want));
		snprintf(want, sizeof(want), "used by vif %u/%u\n", DOMID, DEVID);
		CHECK(strstr(out, want));
		/* The vif itself is still in the guest devices' table, before the L0 devices. */
		CHECK(strstr(out, " vif ") && strstr(out, " vif ") < strstr(out, "L0 virtio-net"));
		if (bk_test_failures)
			fprintf(stderr, "blanketctl list said:\n%s\n", out);
	}
	{
		const char *args[] = { "stats", "--json", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		t = strstr(out, "\"l0_devices\":[{");
		CHECK(t != NULL);
		for (unsigned int q = 0; q < 2 && t; q++) {
			const char *qt;

			snprintf(want, sizeof(want), "{\"index\":%u,", q);
			qt = strstr(t, want);
			CHECK(qt != NULL);
			CHECK(bk_ctlrun_json_u64(qt, "tx_frames") == sent[q]);
			CHECK(bk_ctlrun_json_u64(qt, "tx_bytes") == sent_bytes[q]);
			CHECK(bk_ctlrun_json_u64(qt, "rx_frames") == sent[q]);
			CHECK(bk_ctlrun_json_u64(qt, "rx_bytes") == sent_bytes[q]);
			CHECK(bk_ctlrun_json_u64(qt, "rx_drops") == 0);
			CHECK(bk_ctlrun_json_u64(qt, "tx_waits") == 0);
			/* The device takes CSUM: nothing is finished in software. */
			CHECK(bk_ctlrun_json_u64(qt, "tx_csum_sw") == 0);
			/* Every frame came back, so the device used every TX page: none held. */
			CHECK(bk_ctlrun_json_u64(qt, "tx_pages") == 0);
		}
		if (bk_test_failures)
			fprintf(stderr, "blanketctl stats --json said:\n%s\n", out);
	}
	{
		const char *args[] = { "stats", NULL };

		CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
		snprintf(want, sizeof(want), "L0 virtio-net %s (vhost-user, DMA identity, eventfd)",
			 sock);
		CHECK(strstr(out, want) && strstr(out, "RX-FRAMES"));
		if (bk_test_failures)
			fprintf(stderr, "blanketctl stats said:\n%s\n", out);
	}
	bk_service_free(svc);
}

/* After testpmd's restart: the port counts one reconnect and has its back-end again. */
static void check_ctl_reconnected(const char *blanketctl)
{
	struct bk_service *svc = NULL;
	const char *args[] = { "stats", "--json", NULL };
	char csock[128];
	const char *t;

	CHECK(bk_ctlrun_service(env.loop, env.core, dir, csock, sizeof(csock), &svc) == 0);
	if (!svc)
		return;
	CHECK(bk_ctlrun(env.loop, blanketctl, csock, args, 0, out, sizeof(out)) == 0);
	t = strstr(out, "{\"kind\":\"virtio-net\"");
	CHECK(t && strstr(t, "\"connected\":true,\"reconnects\":1,"));
	if (bk_test_failures)
		fprintf(stderr, "blanketctl stats --json said:\n%s\n", out);
	bk_service_free(svc);
}

static void check_vif_failed_on_bad_socket(void)
{
	struct bk_config c;
	char why[160], spec[200];
	const char *extra[] = { "vifname", VIFNAME, NULL };
	struct bk_device *dev;

	bk_config_defaults(&c);
	snprintf(spec, sizeof(spec), VIFNAME ":vhost-user,path=%s/nothing.sock", dir);
	CHECK(bk_config_set_key(&c, "vif-port", spec, why, sizeof(why)) == 0);
	bk_config_install(&c);
	/* The toolstack waits for InitWait in vain. */
	CHECK(bk_nf_env_add_vif(&env, DOMID, DEVID + 1, extra) < 0);
	for (int i = 0; i < 10; i++)
		bk_loop_run_once(env.loop, 10);
	dev = bk_core_find(env.core, "vif", DOMID, DEVID + 1);
	/* No port, no vif: probe failed and nothing was left behind. */
	CHECK(!dev || !dev->priv);
}

int main(int argc, char **argv)
{
	const char *testpmd = argc > 1 ? argv[1] : "/usr/bin/dpdk-testpmd";
	const char *blanketctl = argc > 2 ? argv[2] : NULL;
	const char *extra[] = { "vifname", VIFNAME, NULL };
	struct bk_nf_params p = { .pfn_base = 0, .pfn_count = 7000, .nr_queues = 2 };
	struct bk_netfront *f = NULL;
	struct bk_nf_rx_info info;
	struct bk_nf_tx_counts tc;
	struct bk_queue_stats tot;
	struct bk_config c;
	char why[160], spec[200];
	unsigned int sport = 100, nq;
	int r;

	if (access(testpmd, X_OK) != 0) {
		fprintf(stderr, "SKIP: %s not installed (apt-get install dpdk-dev)\n", testpmd);
		return 77;
	}
	if (!mkdtemp(dir))
		return 1;
	r = pmd_start(testpmd);
	if (r) {
		pmd_stop();
		return r;
	}
	bk_config_defaults(&c);
	snprintf(spec, sizeof(spec), VIFNAME ":vhost-user,path=%s,queues=2", sock);
	CHECK(bk_config_set_key(&c, "vif-port", spec, why, sizeof(why)) == 0);
	bk_config_install(&c);

	if (bk_nf_env_new(&env) < 0 || bk_bf_env_guest(&env, DOMID, 8192) < 0)
		return 1;
	CHECK(bk_nf_env_add_vif(&env, DOMID, DEVID, extra) == 0);
	CHECK(bk_nf_open(&env, DOMID, DEVID, &p, &f) == 0);
	if (!f)
		goto out;
	CHECK(bk_nf_connect(f) == 0);
	nq = bk_nf_nr_queues(f);
	CHECK(nq == 2); /* the back-end's two queue pairs */

	/* Plain frames on every queue, sizes across one page. */
	for (size_t len = 60; len <= 1514; len += 97)
		for (unsigned int q = 0; q < nq; q++)
			echo(f, q, len, 17, sport++, &(struct bk_nf_tx){ 0 }, &info);
	/* Checksum offload, TCP and UDP, over several slots. */
	echo(f, 0, 1400, 6, sport++,
	     &(struct bk_nf_tx){ .flags = NIF_TXF_CSUM_BLANK, .nr_slots = 2, .first_offset = 3000 },
	     &info);
	echo(f, 1, 900, 17, sport++, &(struct bk_nf_tx){ .flags = NIF_TXF_CSUM_BLANK }, &info);
	/*
	 * GSO: one 20000-byte TCPv4 frame with its GSO extra goes to the device as one GSO frame
	 * (HOST_TSO4); testpmd's macswap sets no TSO on the way back, so it returns as one
	 * 20000-byte frame over merged RX buffers, its checksum finished by the vhost library.
	 */
	echo(f, 0, 20000, 6, sport++,
	     &(struct bk_nf_tx){ .flags = NIF_TXF_CSUM_BLANK,
				 .nr_slots = 6,
				 .gso_type = NIF_GSO_TYPE_TCPV4,
				 .gso_size = 1448 },
	     &info);

	bk_nf_tx_counts(f, &tc);
	CHECK(tc.error == 0 && tc.dropped == 0 && tc.other == 0 && tc.unknown == 0);
	if (blanketctl)
		check_ctl(blanketctl);

	/*
	 * The switch restarts (kill -9, a new testpmd on the same socket): blanketd reconnects and
	 * frames flow again. What the guest sends meanwhile is lost, like on a pulled cable.
	 */
	kill(pmd, SIGKILL);
	waitpid(pmd, NULL, 0);
	pmd = -1;
	unlink(sock);
	for (int i = 0; i < 20; i++)
		bk_loop_run_once(env.loop, 10);
	CHECK(pmd_start(testpmd) == 0);
	{
		bool back = false;

		for (int tries = 0; tries < 100 && !back; tries++) {
			bk_pkt_frame(frame, 800, 17, sport, guest_mac, false);
			CHECK(bk_nf_send(f, 0, frame, 800, &(struct bk_nf_tx){ 0 }) == 0);
			CHECK(bk_nf_tx_wait(f, 0) == 0);
			for (int i = 0; i < 20 && !back; i++) {
				int got = bk_nf_recv(f, 0, buf, sizeof(buf), &info);

				if (got == 800 && bk_pkt_sport(buf) == sport)
					back = true;
				else if (got <= 0)
					bk_loop_run_once(env.loop, 10);
			}
		}
		CHECK(back);
		sport++;
	}
	for (unsigned int q = 0; q < nq; q++)
		echo(f, q, 1000, 17, sport++, &(struct bk_nf_tx){ 0 }, &info);
	CHECK(bk_nf_rx_errors(f) == 0);
	if (blanketctl)
		check_ctl_reconnected(blanketctl);
	vif_totals(env.core, DOMID, DEVID, &tot);
	CHECK(tot.net_tx_gso == 1 && tot.net_tx_csum == 3);
	CHECK(tot.net_tx_drop_copy == 0 && tot.errors == 0);
	fprintf(stderr, "vif %u/%u: %llu frames each way, %llu bytes to testpmd\n", DOMID, DEVID,
		(unsigned long long)tot.net_tx_packets, (unsigned long long)tot.net_tx_bytes);
	CHECK(bk_nf_disconnect(f) == 0);
	bk_nf_close(f);
	f = NULL;
	check_vif_failed_on_bad_socket();
out:
	bk_nf_close(f);
	bk_bf_env_free(&env);
	pmd_stop();
	unlink(logpath);
	unlink(sock);
	rmdir(dir);
	return bk_test_exit();
}
