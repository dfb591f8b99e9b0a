// SPDX-License-Identifier: MIT
/* The TAP port of a vif: multi-queue TAP with virtio_net_hdr, persistence, offloads, carrier. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "config.h"
#if HAVE_LIBURING
#include <liburing.h>
#endif

#include "tap.h"
#include "util/log.h"
#include "util/macros.h"

struct bk_tap_queue {
	int fd;
	struct bk_watch *watch;
};

struct bk_tap {
	char name[IFNAMSIZ];
	int ifindex;
	bool reattached;
	bool uring_off; /* no io_uring here (none built in, refused, or switched off) */
#if HAVE_LIBURING
	struct io_uring *ring; /* write batches, made at the first one */
#endif
	unsigned int nr_queues;
	struct bk_tap_queue q[];
};

/*
 * The kernel refused a non-blocking io_uring read of a TAP (RWF_NOWAIT needs FMODE_NOWAIT on
 * the file, which tun's files do not have in older kernels, Debian 12's among them): every TAP
 * reads with readv from then on. Without RWF_NOWAIT, io_uring would wait for frames instead.
 */
static atomic_bool uring_reads_refused;

/* Entries of the write ring: a batch larger than this takes several submissions. */
#define TAP_URING_ENTRIES 256U

#define TAP_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)

int bk_tap_vif_name(unsigned int domid, unsigned int devid, char *buf, size_t size)
{
	int n = snprintf(buf, size, "vif%u.%u", domid, devid);

	if (n < 0 || (size_t)n >= size || n >= IFNAMSIZ)
		return -ENAMETOOLONG;
	return 0;
}

/* What the kernel's dev_valid_name() accepts, checked first for a clearer message. */
static bool name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == ':' || name[i] == ' ' || name[i] == '\t' ||
		    name[i] == '\n')
			return false;
	return true;
}

static int attach_queue(struct bk_tap *t, unsigned int q)
{
	_cleanup_close_ int fd = -1;
	struct ifreq ifr;
	int r;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return log_err_errno(neg_errno(), "tap %s: opening /dev/net/tun: %m", t->name);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, t->name, strlen(t->name));
	ifr.ifr_flags = TAP_FLAGS;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = neg_errno();
		if (r == -EINVAL)
			return log_err_errno(r,
					     "tap %s: attaching queue %u: %m (the interface exists "
					     "and is not a multi-queue TAP with a vnet header)",
					     t->name, q);
		return log_err_errno(r, "tap %s: attaching queue %u: %m", t->name, q);
	}
	t->q[q].fd = TAKE_FD(fd);
	return 0;
}

static int tap_ioctl(struct bk_tap *t, unsigned long req, void *arg, const char *what)
{
	if (ioctl(t->q[0].fd, req, arg) < 0)
		return log_err_errno(neg_errno(), "tap %s: %s: %m", bk_tap_name(t), what);
	return 0;
}

int bk_tap_open(const char *name, unsigned int nr_queues, struct bk_tap **ret)
{
	struct bk_tap *t;
	int hdr = (int)BK_TAP_VNET_HDR_LEN;
	int r;

	if (!name_ok(name))
		return log_err_errno(-EINVAL, "tap '%s': not a valid interface name", name);
	if (nr_queues == 0 || nr_queues > BK_TAP_MAX_QUEUES)
		return log_err_errno(-EINVAL, "tap %s: %u queues (1..%u)", name, nr_queues,
				     BK_TAP_MAX_QUEUES);
	t = calloc(1, sizeof(*t) + nr_queues * sizeof(t->q[0]));
	if (!t)
		return -ENOMEM;
	snprintf(t->name, sizeof(t->name), "%s", name);
	for (unsigned int q = 0; q < nr_queues; q++)
		t->q[q].fd = -1;
	t->nr_queues = nr_queues;
	t->reattached = if_nametoindex(name) != 0;

	for (unsigned int q = 0; q < nr_queues; q++) {
		r = attach_queue(t, q);
		if (r < 0)
			goto fail;
	}
	r = tap_ioctl(t, TUNSETVNETHDRSZ, &hdr, "TUNSETVNETHDRSZ");
	if (r < 0)
		goto fail;
	t->ifindex = (int)if_nametoindex(bk_tap_name(t));
	if (t->ifindex == 0) {
		r = log_err_errno(neg_errno(), "tap %s: no interface index: %m", t->name);
		goto fail;
	}
	*ret = t;
	return 0;
fail:
	bk_tap_close(t);
	return r;
}

void bk_tap_close(struct bk_tap *t)
{
	if (!t)
		return;
#if HAVE_LIBURING
	if (t->ring) {
		io_uring_queue_exit(t->ring);
		free(t->ring);
	}
#endif
	for (unsigned int q = 0; q < t->nr_queues; q++) {
		bk_watch_free(t->q[q].watch);
		if (t->q[q].fd >= 0)
			close(t->q[q].fd);
	}
	free(t);
}

void bk_tap_remove(struct bk_tap *t)
{
	if (!t)
		return;
	(void)bk_tap_set_persist(t, false);
	bk_tap_close(t);
}

const char *bk_tap_name(struct bk_tap *t)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (t->q[0].fd >= 0 && ioctl(t->q[0].fd, TUNGETIFF, &ifr) == 0 && ifr.ifr_name[0])
		memcpy(t->name, ifr.ifr_name, sizeof(t->name));
	t->name[IFNAMSIZ - 1] = '\0';
	return t->name;
}

int bk_tap_ifindex(const struct bk_tap *t)
{
	return t->ifindex;
}

unsigned int bk_tap_nr_queues(const struct bk_tap *t)
{
	return t->nr_queues;
}

bool bk_tap_reattached(const struct bk_tap *t)
{
	return t->reattached;
}

int bk_tap_fd(const struct bk_tap *t, unsigned int q)
{
	return q < t->nr_queues ? t->q[q].fd : -EINVAL;
}

int bk_tap_set_persist(struct bk_tap *t, bool on)
{
	return tap_ioctl(t, TUNSETPERSIST, (void *)(uintptr_t)(on ? 1 : 0), "TUNSETPERSIST");
}

int bk_tap_set_offload(struct bk_tap *t, unsigned int tun_flags)
{
	return tap_ioctl(t, TUNSETOFFLOAD, (void *)(uintptr_t)tun_flags, "TUNSETOFFLOAD");
}

int bk_tap_set_carrier(struct bk_tap *t, bool on)
{
	int v = on;

	return tap_ioctl(t, TUNSETCARRIER, &v, on ? "carrier on" : "carrier off");
}

int bk_tap_set_mac(struct bk_tap *t, const uint8_t mac[6])
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	/* On the TAP fd itself: no name involved, so a rename cannot race it. */
	return tap_ioctl(t, SIOCSIFHWADDR, &ifr, "setting the MAC address");
}

int bk_tap_get_mac(struct bk_tap *t, uint8_t mac[6])
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = tap_ioctl(t, SIOCGIFHWADDR, &ifr, "reading the MAC address");
	if (r < 0)
		return r;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

int bk_tap_set_mtu(struct bk_tap *t, unsigned int mtu)
{
	_cleanup_close_ int s = -1;
	struct ifreq ifr;

	/* The TAP fd has no MTU ioctl: go through a socket, by the current name. */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return log_err_errno(neg_errno(), "tap %s: socket for MTU: %m", bk_tap_name(t));
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, bk_tap_name(t), IFNAMSIZ);
	ifr.ifr_mtu = (int)mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
		return log_err_errno(neg_errno(), "tap %s: setting MTU %u: %m", t->name, mtu);
	return 0;
}

int bk_tap_watch(struct bk_tap *t, unsigned int q, struct bk_loop *loop, unsigned int events,
		 bk_fd_cb cb, void *data)
{
	struct bk_watch *w;
	int r;

	if (q >= t->nr_queues)
		return -EINVAL;
	r = bk_loop_add_fd(loop, t->q[q].fd, events, cb, data, &w);
	if (r < 0)
		return log_err_errno(r, "tap %s: watching queue %u: %m", t->name, q);
	bk_watch_free(t->q[q].watch);
	t->q[q].watch = w;
	return 0;
}

void bk_tap_watch_events(struct bk_tap *t, unsigned int q, unsigned int events)
{
	if (q < t->nr_queues && t->q[q].watch)
		bk_watch_set_events(t->q[q].watch, events);
}

int bk_tap_read_batch(struct bk_tap *t, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n)
{
	unsigned int i = 0;

	if (q >= t->nr_queues)
		return -EINVAL;
	while (i < n) {
		ssize_t got = readv(t->q[q].fd, pkts[i].iov, (int)pkts[i].iovcnt);

		if (got < 0) {
			int r = neg_errno();

			if (r == -EINTR)
				continue;
			if (r == -EAGAIN || i > 0)
				break; /* a hard error shows again on the next call */
			return log_err_errno(r, "tap %s: reading queue %u: %m", t->name, q);
		}
		pkts[i++].len = (size_t)got;
	}
	return (int)i;
}

void bk_tap_set_uring(struct bk_tap *t, bool on)
{
	t->uring_off = !on;
}

#if HAVE_LIBURING
static struct io_uring *tap_ring(struct bk_tap *t)
{
	struct io_uring *ring;
	int r;

	if (t->uring_off)
		return NULL;
	if (t->ring)
		return t->ring;
	ring = calloc(1, sizeof(*ring));
	if (!ring) {
		t->uring_off = true;
		return NULL;
	}
	r = io_uring_queue_init(TAP_URING_ENTRIES, ring, 0);
	if (r < 0) {
		log_info("tap %s: no io_uring for batched writes (%s): one syscall per frame",
			 t->name, strerror(-r));
		free(ring);
		t->uring_off = true;
		return NULL;
	}
	t->ring = ring;
	return ring;
}

/*
 * One io_uring_enter() for up to TAP_URING_ENTRIES frames, waiting for all of them: a TAP
 * write never blocks (O_NONBLOCK), so they complete inline and the frames' buffers are free
 * again when this returns. -errno: nothing was submitted, the caller writes them one by one.
 */
static int write_uring(struct io_uring *ring, int fd, struct bk_tap_pkt *pkts, unsigned int n)
{
	struct io_uring_cqe *cqe;
	unsigned int seen = 0;
	int r;

	for (unsigned int i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		io_uring_prep_writev(sqe, fd, pkts[i].iov, pkts[i].iovcnt, 0);
		io_uring_sqe_set_data64(sqe, i);
		pkts[i].err = 0;
	}
	r = io_uring_submit_and_wait(ring, n);
	if (r < 0 && r != -EINTR)
		return r;
	while (seen < n) {
		r = io_uring_wait_cqe(ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r; /* cannot happen with entries submitted; keeps the ring sane */
		if (cqe->user_data < n && cqe->res < 0)
			pkts[cqe->user_data].err = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		seen++;
	}
	return 0;
}
#endif

int bk_tap_read_many(struct bk_tap *t, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n)
{
#if HAVE_LIBURING
	struct io_uring *ring;
	struct io_uring_cqe *cqe;
	unsigned int seen = 0;
	int r, got = 0;

	if (q >= t->nr_queues || n > TAP_URING_ENTRIES)
		return -EINVAL;
	if (atomic_load_explicit(&uring_reads_refused, memory_order_relaxed))
		return -EOPNOTSUPP;
	ring = tap_ring(t);
	if (!ring)
		return -EOPNOTSUPP;
	for (unsigned int i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		io_uring_prep_readv(sqe, t->q[q].fd, pkts[i].iov, pkts[i].iovcnt, 0);
		sqe->rw_flags = RWF_NOWAIT;
		io_uring_sqe_set_data64(sqe, i);
		pkts[i].err = -EAGAIN;
		pkts[i].len = 0;
	}
	r = io_uring_submit_and_wait(ring, n);
	if (r < 0 && r != -EINTR) {
		log_warn("tap %s: io_uring read batch: %s: one syscall per frame from now", t->name,
			 strerror(-r));
		t->uring_off = true;
		return -EOPNOTSUPP;
	}
	while (seen < n) {
		r = io_uring_wait_cqe(ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		if (cqe->user_data < n) {
			struct bk_tap_pkt *p = &pkts[cqe->user_data];

			if (cqe->res >= 0) {
				p->err = 0;
				p->len = (size_t)cqe->res;
				got++;
			} else {
				p->err = cqe->res;
			}
		}
		io_uring_cqe_seen(ring, cqe);
		seen++;
	}
	if (got == 0 && pkts[0].err == -EOPNOTSUPP) {
		/* The caller falls back to readv, and every TAP reads so from now on. */
		if (!atomic_exchange(&uring_reads_refused, true))
			log_info("tap %s: the kernel refuses non-blocking io_uring reads of TAPs "
				 "(%s): TAP frames are read with readv, one syscall each",
				 t->name, strerror(EOPNOTSUPP));
		return -EOPNOTSUPP;
	}
	if (got == 0 && pkts[0].err != -EAGAIN)
		return log_err_errno(pkts[0].err, "tap %s: reading queue %u: %m", t->name, q);
	return got;
#else
	return -EOPNOTSUPP;
#endif
}

int bk_tap_write_batch(struct bk_tap *t, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n)
{
	unsigned int i = 0;

	if (q >= t->nr_queues)
		return -EINVAL;
#if HAVE_LIBURING
	/* One frame: a plain writev is one syscall too, and cheaper than a submission. */
	while (n - i >= 2 && tap_ring(t)) {
		unsigned int k = BK_MIN(n - i, TAP_URING_ENTRIES);
		int r = write_uring(t->ring, t->q[q].fd, pkts + i, k);

		if (r < 0) {
			log_warn("tap %s: io_uring write batch: %s: one syscall per frame from now",
				 t->name, strerror(-r));
			t->uring_off = true;
			break;
		}
		i += k;
	}
#endif
	while (i < n) {
		ssize_t put = writev(t->q[q].fd, pkts[i].iov, (int)pkts[i].iovcnt);

		if (put < 0) {
			int r = neg_errno();

			if (r == -EINTR)
				continue;
			if (r == -EAGAIN)
				break;
			pkts[i++].err = r; /* this frame only: the caller counts the drop */
			continue;
		}
		pkts[i++].err = 0;
	}
	return (int)i;
}
