// SPDX-License-Identifier: MIT
/*
 * Restarts of the daemon are invisible to a vif's guest, through the simulation and a real TAP
 * in a private network namespace (root needed, else 77). A guest with two queues keeps verified
 * frames going both ways (guest -> TAP and TAP -> guest, 1 to 3 pages each) while the daemon
 * goes away and a new one takes the vif over:
 *
 *   term           the core stops as on SIGTERM, three times: what was taken is answered or
 *                  dropped, the vif stays Connected, the guest queues more meanwhile.
 *   kill-POINT     the daemon is killed at POINT of its data path (tx-taken, tx-answered,
 *                  tx-pushed, rx-taken, rx-answered, rx-pushed; see enum netif_point), three
 *                  times: the shared rings and the in-flight journals are rewound to what
 *                  they held at that point (what a process killed there leaves), then
 *                  bk_core_abandon and a new daemon.
 *   kill-loop      24 kills at points drawn at random, a SIGTERM now and then.
 *
 * The guest takes responses only when notified (an interrupt), as netfront does. After every
 * restart: every TX slot gets exactly one response, OKAY (no slot left unanswered, none
 * answered twice, no id the guest did not post); every frame the guest sent reaches the TAP,
 * byte for byte (a frame taken again may arrive twice, as on a network); every frame the
 * guest receives is whole and one that was sent, and frames are lost only in the round of a
 * kill (those the dead daemon held); the TAP keeps its ifindex, bridge and address; the
 * backend stays Connected without a state write. At the end three rings' worth of frames reach
 * the guest (no RX buffer was lost) and no journal file is left after the vif is removed.
 *
 * Usage: test-netif-restart SCENARIO
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_bridge.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"
#include "device.h"
#include "loop.h"
#include "netfront.h"
#include "netif-common.h"
#include "netif/netif.h"
#include "toolstack.h"
#include "xen/sim.h"
#include "xenbus_front.h"

#define DOMID 5
#define DEVID 0
#define NQ 2
#define MAX_SEQ 20000U
#define SPORT0 1024U
#define TAP "vif5.0"
#define BRIDGE "xbr0"
#define TAP_ADDR "10.77.0.1"
#define TAP_MTU 9200

static struct bk_bf_env env;
static struct bk_netfront *fe;
static char statedir[64];
static int ps = -1, ifindex;
static bool bridged;
static uint8_t frame[16384], buf[70000];
static const uint8_t host_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };

/* Guest -> TAP: how often each sequence number reached the TAP. */
static uint8_t tx_seen[MAX_SEQ];
static unsigned int tx_next, tx_dups;
/* TAP -> guest. */
static uint8_t rx_seen[MAX_SEQ];
static unsigned int rx_next, rx_got, rx_lost_ok, rx_bad;
static unsigned int guest_pending[NQ];

#define MAX_JFILES 8

static struct {
	bool armed, fired;
	enum netif_point point;
	unsigned int skip;
	uint8_t ring[NQ][2][4096];
	unsigned int nr_files;
	char name[MAX_JFILES][256];
	uint8_t *data[MAX_JFILES];
	size_t len[MAX_JFILES];
} kill;

static size_t frame_len(unsigned int seq)
{
	return 120 + (seq * 389U) % 9000U; /* 1 to 3 pages */
}

/* ------------------------------------------------------------------------------------------ */
/* The guest: frames in both directions, responses taken on interrupts only. */

static void guest_irq(void)
{
	for (unsigned int q = 0; q < NQ; q++) {
		struct bk_nf_rx_info info;
		unsigned int n = 0;
		int r;

		guest_pending[q] += bk_nf_take_notifies(fe, q);
		if (!guest_pending[q])
			continue;
		guest_pending[q] = 0;
		bk_nf_tx_reap(fe, q);
		/* Bounded: a ring going backwards is an error every time it is looked at. */
		while (n++ < 2 * 256 &&
		       (r = bk_nf_recv(fe, q, buf, sizeof(buf), &info)) != -EAGAIN) {
			unsigned int seq;

			if (r < 0 || !bk_pkt_ours(buf, (size_t)r)) {
				rx_bad += r < 0;
				continue;
			}
			seq = bk_pkt_sport(buf) - SPORT0;
			if (seq >= rx_next || rx_seen[seq] || (size_t)r != frame_len(seq)) {
				if (rx_bad++ < 5)
					fprintf(stderr, "guest: unexpected frame %u (%d bytes)\n",
						seq, r);
				continue;
			}
			bk_pkt_frame(frame, frame_len(seq), 17, SPORT0 + seq, host_mac, false);
			if (memcmp(buf, frame, (size_t)r)) {
				if (rx_bad++ < 5)
					fprintf(stderr, "guest: frame %u is not what was sent\n",
						seq);
				continue;
			}
			rx_seen[seq] = 1;
			rx_got++;
		}
	}
}

/* Queue @n frames on the guest's TX rings (less when they are full). */
static void guest_send(unsigned int n)
{
	for (unsigned int i = 0; i < n && tx_next < MAX_SEQ; i++) {
		unsigned int seq = tx_next;
		size_t len = frame_len(seq);

		bk_pkt_frame(frame, len, 17, SPORT0 + seq, guest_mac, false);
		if (bk_nf_send(fe, seq % NQ, frame, len, &(struct bk_nf_tx){ 0 }) < 0)
			break;
		tx_next++;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Dom0's side of the TAP. */

static void host_take(void)
{
	for (;;) {
		struct virtio_net_hdr vh;
		struct sockaddr_ll from;
		struct iovec iov[2] = { { &vh, sizeof(vh) }, { buf, sizeof(buf) } };
		struct msghdr mh = { .msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = iov,
				     .msg_iovlen = 2 };
		ssize_t r = recvmsg(ps, &mh, MSG_DONTWAIT);
		unsigned int seq;

		if (r < 0)
			return;
		r -= (ssize_t)sizeof(vh);
		if (r <= 0 || from.sll_pkttype == PACKET_OUTGOING || !bk_pkt_ours(buf, (size_t)r))
			continue;
		seq = bk_pkt_sport(buf) - SPORT0;
		CHECK(seq < tx_next && (size_t)r == frame_len(seq));
		if (seq >= tx_next || (size_t)r != frame_len(seq))
			continue;
		bk_pkt_frame(frame, frame_len(seq), 17, SPORT0 + seq, guest_mac, false);
		CHECK(!memcmp(buf, frame, (size_t)r));
		if (tx_seen[seq])
			tx_dups++;
		tx_seen[seq] = 1;
	}
}

static void host_send(unsigned int n)
{
	for (unsigned int i = 0; i < n && rx_next < MAX_SEQ; i++) {
		unsigned int seq = rx_next++;

		bk_pkt_frame(frame, frame_len(seq), 17, SPORT0 + seq, host_mac, false);
		CHECK(bk_pkt_send(ps, ifindex, &(struct virtio_net_hdr){ 0 }, frame,
				  frame_len(seq)) == 0);
	}
}

/* One loop turn of the daemon, then the guest and the host look. */
static void turn(void)
{
	bk_loop_run_once(env.loop, 1);
	if (kill.fired)
		return; /* the daemon died in that turn: nothing it did after reaches anyone */
	guest_irq();
	host_take();
}

static unsigned int tx_missing(void)
{
	unsigned int n = 0;

	for (unsigned int s = 0; s < tx_next; s++)
		n += !tx_seen[s];
	return n;
}

static unsigned int rx_missing(void)
{
	return rx_next - rx_got - rx_lost_ok;
}

static bool tx_all_answered(void)
{
	for (unsigned int q = 0; q < NQ; q++) {
		struct nif_sring_hdr *h = bk_nf_tx_sring(fe, q);

		if (READ_ONCE(h->req_prod) != READ_ONCE(h->rsp_prod))
			return false;
	}
	return true;
}

/* Pump until every frame went through and every TX slot was answered (and seen answered). */
static void drain(const char *when)
{
	unsigned int idle = 0, last = ~0U;

	/* Until done, or nothing moved for 3000 turns (a hang fails, it does not time out). */
	while (idle < 3000) {
		unsigned int now = tx_missing() + rx_missing() + (tx_all_answered() ? 0 : 1);

		if (!now)
			break;
		idle = now == last ? idle + 1 : 0;
		last = now;
		turn();
	}
	/* Nothing more arrives late. */
	for (unsigned int k = 0; k < 20; k++)
		turn();
	if (tx_missing() || rx_missing() || !tx_all_answered())
		fprintf(stderr,
			"%s: %u TX frames never reached the TAP, %u RX frames missing, "
			"TX answered: %s\n",
			when, tx_missing(), rx_missing(), tx_all_answered() ? "yes" : "no");
	CHECK(tx_missing() == 0);
	CHECK(rx_missing() == 0);
	CHECK(tx_all_answered());
	/* ...and the guest saw every answer: taken on interrupts, nothing outstanding. */
	for (unsigned int q = 0; q < NQ; q++)
		CHECK(bk_nf_tx_reap(fe, q) == 0);
}

/* ------------------------------------------------------------------------------------------ */
/* What a kill at a point leaves: the rings and the journal files, as they were there. */

static void journal_dir(char *dir, size_t len)
{
	snprintf(dir, len, "%s/inflight", statedir);
}

static void snapshot(void)
{
	char dir[128], path[400];
	struct dirent *de;
	DIR *d;

	for (unsigned int q = 0; q < NQ; q++) {
		memcpy(kill.ring[q][0], bk_nf_tx_sring(fe, q), 4096);
		memcpy(kill.ring[q][1], bk_nf_rx_sring(fe, q), 4096);
		/* Events sent before the kill are the guest's; later ones never happened. */
		guest_pending[q] += bk_nf_take_notifies(fe, q);
	}
	journal_dir(dir, sizeof(dir));
	kill.nr_files = 0;
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		struct stat st;
		unsigned int i = kill.nr_files;
		int fd;

		if (de->d_name[0] == '.' || i == MAX_JFILES)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0 || fstat(fd, &st) < 0) {
			CHECK(!"journal file");
			if (fd >= 0)
				close(fd);
			continue;
		}
		snprintf(kill.name[i], sizeof(kill.name[i]), "%s", de->d_name);
		kill.len[i] = (size_t)st.st_size;
		kill.data[i] = malloc(kill.len[i]);
		CHECK(kill.data[i] &&
		      pread(fd, kill.data[i], kill.len[i], 0) == (ssize_t)kill.len[i]);
		close(fd);
		kill.nr_files++;
	}
	if (d)
		closedir(d);
}

static void rewind_to_snapshot(void)
{
	char dir[128], path[400];

	for (unsigned int q = 0; q < NQ; q++) {
		memcpy(bk_nf_tx_sring(fe, q), kill.ring[q][0], 4096);
		memcpy(bk_nf_rx_sring(fe, q), kill.ring[q][1], 4096);
		bk_nf_take_notifies(fe, q);
	}
	journal_dir(dir, sizeof(dir));
	bk_test_dir_empty(dir);
	for (unsigned int i = 0; i < kill.nr_files; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, kill.name[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0 && pwrite(fd, kill.data[i], kill.len[i], 0) == (ssize_t)kill.len[i]);
		if (fd >= 0)
			close(fd);
		free(kill.data[i]);
		kill.data[i] = NULL;
	}
	kill.nr_files = 0;
}

static void point_hook(struct bk_device *dev, enum netif_point point, void *data)
{
	if (!kill.armed || point != kill.point || kill.skip--)
		return;
	kill.armed = false;
	kill.fired = true;
	snapshot();
}

/* ------------------------------------------------------------------------------------------ */
/* The daemon. */

static int daemon_start(void)
{
	static const struct bk_backend_ops *const kinds[] = { &netif_backend_ops, NULL };
	struct bk_core_params cp = { .loop = env.loop, .watch_coalesce_ms = 0 };
	int r;

	if ((r = bk_sim_platform(env.sim, 0, &env.xen)) < 0)
		return r;
	cp.xen = env.xen;
	if ((r = bk_core_new(&cp, &env.core)) < 0)
		return r;
	for (unsigned int i = 0; kinds[i]; i++)
		if ((r = bk_core_register(env.core, kinds[i])) < 0)
			return r;
	return bk_core_start(env.core);
}

static void stopped(void *data)
{
	*(bool *)data = true;
}

static bool flag_cond(void *data)
{
	return *(bool *)data;
}

static void daemon_gone(void)
{
	bk_core_free(env.core);
	env.core = NULL;
	bk_xen_free(env.xen);
	env.xen = NULL;
}

static void daemon_term(void)
{
	bool done = false;

	bk_core_stop(env.core, stopped, &done);
	CHECK(bk_test_pump_until(env.loop, flag_cond, &done, 3000) == 0);
	daemon_gone();
}

static void daemon_kill(void)
{
	bk_core_abandon(env.core, 0);
	daemon_gone();
	rewind_to_snapshot();
}

static unsigned int be_state(void)
{
	unsigned int st = 0;

	bk_ts_be_state(env.ts, "vif", DOMID, DEVID, &st);
	return st;
}

/* Watch events on the backend's state node since the last call (each write fires one). */
static unsigned int state_writes(void)
{
	return bk_ts_take_watch_events(env.ts, "restart-state");
}

/* ------------------------------------------------------------------------------------------ */
/* The TAP's place on dom0: a bridge and an address, kept across restarts. */

static void tap_place(void)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	/* sysfs shows the network namespace of its mount: our own, to read the TAP's master. */
	if (ioctl(s, SIOCBRADDBR, BRIDGE) == 0 && unshare(CLONE_NEWNS) == 0 &&
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("sysfs", "/sys", "sysfs", 0, NULL) == 0) {
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", BRIDGE);
		ifr.ifr_ifindex = ifindex;
		bridged = ioctl(s, SIOCBRADDIF, &ifr) == 0;
	}
	if (!bridged)
		fprintf(stderr, "no bridge in this kernel: not checking the TAP's bridge\n");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, TAP_ADDR, &sin->sin_addr);
	CHECK(ioctl(s, SIOCSIFADDR, &ifr) == 0);
	/* Frames of up to three pages both ways. */
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	ifr.ifr_mtu = TAP_MTU;
	CHECK(ioctl(s, SIOCSIFMTU, &ifr) == 0);
	close(s);
}

static bool tap_has_addr(void)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i; i = i->ifa_next) {
		char a[INET_ADDRSTRLEN];

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, TAP))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof(a));
		found |= !strcmp(a, TAP_ADDR);
	}
	freeifaddrs(ifa);
	return found;
}

static void check_tap(void)
{
	char link[256];
	ssize_t n;

	CHECK((int)if_nametoindex(TAP) == ifindex);
	CHECK(tap_has_addr());
	CHECK(bk_pkt_if_mtu(TAP) == TAP_MTU);
	if (bridged) {
		n = readlink("/sys/class/net/" TAP "/master", link, sizeof(link) - 1);
		CHECK(n > 0);
		if (n > 0) {
			link[n] = '\0';
			CHECK(strstr(link, BRIDGE) != NULL);
		}
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Rounds. */

/* Traffic both ways for @turns loop turns (or until a kill fired). */
static void traffic(unsigned int turns)
{
	for (unsigned int t = 0; t < turns && !kill.fired; t++) {
		guest_send(6);
		host_send(3);
		turn();
	}
}

/* The vif's rings are up and its TAP attached: frames for the guest are read from now on. */
static bool vif_serving(void *data)
{
	struct bk_device *dev = env.core ? bk_core_find(env.core, "vif", DOMID, DEVID) : NULL;
	char d[256];

	return dev && dev->state == BK_XB_CONNECTED && dev->ops->describe(dev, d, sizeof(d)) == 0 &&
	       strstr(d, "queues=") != NULL;
}

/* The new daemon took over: Connected throughout, no state written, traffic goes on. */
static void after_restart(const char *what, bool quiet)
{
	unsigned int rx_sent = rx_next;

	CHECK(be_state() == BK_XB_CONNECTED);
	check_tap();
	/* The guest kept sending while no daemon ran (or, @quiet, waits for the next). */
	if (!quiet)
		guest_send(20);
	CHECK(daemon_start() == 0);
	CHECK(bk_test_pump_until(env.loop, vif_serving, NULL, 2000) == 0);
	/*
	 * Each queue's guest got an event at connect, whatever it waits for (responses a dead
	 * daemon published without one). After a handover with nothing new, exactly that one.
	 */
	for (unsigned int q = 0; q < NQ; q++) {
		unsigned int ev = bk_nf_take_notifies(fe, q);

		CHECK(ev >= 1);
		if (quiet && !strcmp(what, "term"))
			CHECK(ev == 1);
		guest_pending[q] += ev;
	}
	/* Frames the previous daemon had read for the guest are lost, as on a wire. */
	for (unsigned int n = 0; n < 200 && rx_missing() > 0; n++)
		turn();
	rx_lost_ok += rx_missing();
	CHECK(rx_lost_ok <= rx_sent);
	traffic(40);
	drain(what);
	CHECK(be_state() == BK_XB_CONNECTED);
	/* Never anything but Connected: at most the one rewrite of it at connect, as blkif. */
	CHECK(state_writes() <= 1);
	check_tap();
}

static void round_term(bool quiet)
{
	traffic(30);
	if (quiet)
		drain("before term");
	daemon_term();
	after_restart("term", quiet);
}

static void round_kill(enum netif_point point, unsigned int skip, bool quiet)
{
	unsigned int n;

	kill.armed = true;
	kill.fired = false;
	kill.point = point;
	kill.skip = skip;
	for (n = 0; n < 2000 && !kill.fired; n++)
		traffic(1);
	CHECK(kill.fired);
	kill.armed = false;
	if (!kill.fired)
		return;
	kill.fired = false;
	daemon_kill();
	after_restart("kill", quiet);
}

static const char *const point_name[NETIF_POINT__MAX] = {
	[NETIF_POINT_TX_TAKEN] = "tx-taken",	   [NETIF_POINT_TX_ANSWERED] = "tx-answered",
	[NETIF_POINT_TX_PUSHED] = "tx-pushed",	   [NETIF_POINT_RX_TAKEN] = "rx-taken",
	[NETIF_POINT_RX_ANSWERED] = "rx-answered", [NETIF_POINT_RX_PUSHED] = "rx-pushed",
};

/* No RX buffer lost: three rings' worth of frames reach the guest. */
static void final_burst(void)
{
	for (unsigned int k = 0; k < 3 * 256 / 16; k++) {
		host_send(16);
		for (unsigned int t = 0; t < 20; t++)
			turn();
	}
	drain("final");
}

static unsigned int journal_files(void)
{
	char dir[128];

	journal_dir(dir, sizeof(dir));
	return bk_test_dir_count(dir, NULL);
}

static void remove_statedir(void)
{
	char dir[128];

	journal_dir(dir, sizeof(dir));
	rmdir(dir);
	rmdir(statedir);
}

int main(int argc, char **argv)
{
	const char *scen = argc > 1 ? argv[1] : "term";
	struct bk_nf_params p = { .nr_queues = NQ, .pfn_base = 0, .pfn_count = 7000 };
	struct bk_nf_tx_counts tc;
	struct bk_config cfg;
	char why[128], key[256];
	int kill_point = -1, r;
	bool loop = !strcmp(scen, "kill-loop");

	for (int i = 0; i < NETIF_POINT__MAX; i++)
		if (!strncmp(scen, "kill-", 5) && !strcmp(scen + 5, point_name[i]))
			kill_point = i;
	if (strcmp(scen, "term") && !loop && kill_point < 0) {
		fprintf(stderr, "usage: %s term|kill-loop|kill-POINT\n", argv[0]);
		return 1;
	}
	r = bk_pkt_netns_setup();
	if (r)
		return r;
	snprintf(statedir, sizeof(statedir), "/var/tmp/netif-restart-XXXXXX");
	if (!mkdtemp(statedir))
		return 1;
	bk_config_defaults(&cfg);
	if (bk_config_set_key(&cfg, "state-directory", statedir, why, sizeof(why)) < 0) {
		fprintf(stderr, "state-directory: %s\n", why);
		return 1;
	}
	bk_config_install(&cfg);
	netif_set_test_hook(point_hook, NULL);

	if (bk_nf_env_new(&env) < 0 || bk_bf_env_guest(&env, DOMID, 8192) < 0)
		return 1;
	CHECK(bk_nf_env_add_vif(&env, DOMID, DEVID, NULL) == 0);
	ifindex = (int)if_nametoindex(TAP);
	CHECK(ifindex > 0);
	CHECK(bk_pkt_if_up(TAP) == 0);
	tap_place();
	ps = bk_pkt_socket(ifindex);
	CHECK(ps >= 0);
	CHECK(bk_nf_open(&env, DOMID, DEVID, &p, &fe) == 0);
	if (!fe || ps < 0)
		goto out;
	CHECK(bk_nf_connect(fe) == 0);
	{
		_cleanup_free_ char *be = bk_ts_be_path(env.ts, "vif", DOMID, DEVID);

		snprintf(key, sizeof(key), "%s/state", be ? be : "?");
		CHECK(bk_xs_watch(bk_ts_xs(env.ts), key, "restart-state") == 0);
		state_writes();
	}
	traffic(40);
	drain("start");

	if (!strcmp(scen, "term")) {
		for (unsigned int i = 0; i < 3; i++)
			round_term(i == 0);
	} else if (!loop) {
		for (unsigned int i = 0; i < 3; i++)
			round_kill((enum netif_point)kill_point, i, i == 0);
	} else {
		srand(7);
		for (unsigned int i = 0; i < 24; i++) {
			if (i % 6 == 5)
				round_term(i % 12 == 5);
			else
				round_kill((enum netif_point)(rand() % NETIF_POINT__MAX),
					   (unsigned int)rand() % 3, i % 4 == 0);
		}
	}
	final_burst();

	bk_nf_tx_counts(fe, &tc);
	fprintf(stderr,
		"%s: %u frames guest->TAP (%u twice), %u TAP->guest (%u lost at kills); TX "
		"responses okay %u error %u dropped %u other %u unknown %u\n",
		scen, tx_next, tx_dups, rx_next, rx_lost_ok, tc.okay, tc.error, tc.dropped,
		tc.other, tc.unknown);
	CHECK(tc.error == 0 && tc.dropped == 0 && tc.other == 0 && tc.unknown == 0);
	CHECK(rx_bad == 0);
	CHECK(bk_nf_rx_errors(fe) == 0);
	if (!strcmp(scen, "term"))
		CHECK(tx_dups == 0); /* a stopping daemon answered everything it sent */

	CHECK(bk_nf_disconnect(fe) == 0);
	CHECK(bk_ts_remove(env.ts, "vif", DOMID, DEVID) == 0);
	bk_xbf_pump(bk_nf_xbf(fe), 5);
	CHECK(bk_core_find(env.core, "vif", DOMID, DEVID) == NULL);
	CHECK(journal_files() == 0);
out:
	if (ps >= 0)
		close(ps);
	bk_nf_close(fe);
	bk_bf_env_free(&env);
	remove_statedir();
	return bk_test_exit();
}
