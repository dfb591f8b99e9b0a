// SPDX-License-Identifier: MIT
/*
 * virtio-net as a vif's port: see net.h. One struct bk_vnet per device; its DMA memory holds
 * every ring, one page per RX buffer (fixed per queue, posted again as soon as its frame was
 * copied out) and the TX pages, taken per frame from the shared pool and given back when the
 * device used them (reaped at the next write or stats read: no TX interrupt is needed).
 */
#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blanket/ctl.h"
#include "ctl.h"
#include "net.h"
#include "pci.h"
#include "util/list.h"
#include "util/log.h"
#include "util/macros.h"
#include "vhost_user.h"
#include "virtqueue.h"

#define VNET_HDR_LEN 12u  /* virtio_net_hdr_v1: VERSION_1 always has num_buffers */
#define VNET_MAX_PAIRS 8u /* netif's queue cap */
#define VNET_QSIZE 256u	  /* descriptors per ring */
#define VNET_FRAME_MAX (VNET_HDR_LEN + 65535u)
#define VNET_TX_PAGES 17u /* a 64 KiB frame and its header, one page each */
#define VNET_TX_POOL 2u	  /* TX pages per pair, in ring sizes */
#define VNET_MRG_MAX 18u  /* buffers of one merged RX frame we accept */
#define MSG_TIMEOUT_MS 5000u
#define POLL_MS 100u
#define RETRY_MS 100u
#define VIRTIO_TYPE_NET 1u

/* Always taken when offered; the rest depends on the guest (bk_vnet_start). */
#define BASE_FEATURES                                                                            \
	(VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(VIRTIO_F_EVENT_IDX) | VIO_BIT(VIRTIO_NET_F_MAC) | \
	 VIO_BIT(VIRTIO_NET_F_STATUS) | VIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |                        \
	 VIO_BIT(VIRTIO_NET_F_CSUM) | VIO_BIT(VIRTIO_NET_F_HOST_TSO4) |                          \
	 VIO_BIT(VIRTIO_NET_F_HOST_TSO6))

struct vnet_txbuf {
	struct vnet_txbuf *next; /* free list */
	unsigned int npages;	 /* 0: free */
	void *pages[VNET_TX_PAGES];
};

struct vnet_pair {
	struct bk_vnet *v;
	unsigned int index;
	struct virtq rx, tx;
	int rx_call, rx_kick, tx_call, tx_kick; /* eventfds; PCI: rx_call is signalled by INTx */
	uint8_t *rxpage[VNET_QSIZE];		/* RX buffer i: cookie i + 1 */
	struct vnet_txbuf *txb, *txfree;
	unsigned int tx_pages; /* pages held by TX frames in flight */
	struct bk_watch *watch;
	bk_fd_cb cb;
	void *data;
	unsigned int events;
	struct bk_vnet_pair_stats st;
};

struct bk_vnet {
	char name[128];
	char owner[48];	       /* the vif, for blanketctl */
	struct list_head link; /* in devices, once open */
	enum vio_dma_mode dma_mode;
	const char *dma_why; /* why that mode, as logged */
	struct bk_loop *loop;
	struct bk_vnet_opts o;
	struct vpci *pci;
	struct vhu_conn conn;
	struct vio_dma *dma;
	uint64_t offered, features;
	struct virtio_net_config cfg;
	unsigned int max_pairs, pairs, qsize;
	struct vnet_pair *q;
	bool started;
	struct bk_watch *irq_watch;
	struct bk_timer *poll_timer;
	/* vhost-user: the socket, and reconnecting after the back-end went away. */
	struct bk_watch *sock_watch;
	struct bk_timer *retry;
	unsigned int want_pairs, want_flags; /* what the last bk_vnet_start() asked */
	bool lost;
	uint64_t reconnects; /* back-end restarts survived */
	struct bk_ratelimit rl;
	uint64_t interrupts; /* PCI: INTx received (the rest is counted per pair) */
};

/* Every open device, for the control socket's L0 request (another thread reads it). */
static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_head devices = LIST_HEAD_INIT(devices);

static bool has(const struct bk_vnet *v, unsigned int bit)
{
	return v->features & VIO_BIT(bit);
}

/* ---- options ---- */

/* The reason into the caller's @why, and -EINVAL. */
#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), -EINVAL)

static bool valid_bdf(const char *s)
{
	unsigned int d, b, s2, f;
	char tail;

	return strlen(s) == 12 && sscanf(s, "%4x:%2x:%2x.%1x%c", &d, &b, &s2, &f, &tail) == 4 &&
	       s2 < 32 && f < 8;
}

int bk_vnet_parse(const char *spec, struct bk_vnet_opts *ret, char *why, size_t why_len)
{
	struct bk_vnet_opts o = { .dma = -1 };
	char buf[256], *save = NULL, *tok;
	bool pci;

	if (strlen(spec) >= sizeof(buf))
		return WHY("port spec too long: '%.40s...'", spec);
	snprintf(buf, sizeof(buf), "%s", spec);
	tok = strtok_r(buf, ",", &save);
	if (!tok || (strcmp(tok, "virtio-net") && strcmp(tok, "vhost-user")))
		return WHY("unknown port kind '%s' (virtio-net or vhost-user)", tok ? tok : "");
	pci = !strcmp(tok, "virtio-net");
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : "";

		if (eq)
			*eq = '\0';
		if (pci && !strcmp(tok, "pci")) {
			if (!valid_bdf(val))
				return WHY("pci='%s' is not a PCI address DDDD:BB:DD.F", val);
			snprintf(o.pci, sizeof(o.pci), "%s", val);
		} else if (pci && !strcmp(tok, "irq")) {
			if (strcmp(val, "intx") && strcmp(val, "poll"))
				return WHY("irq='%s': intx or poll", val);
			o.poll = !strcmp(val, "poll");
		} else if (!pci && !strcmp(tok, "path")) {
			if (val[0] != '/' || strlen(val) >= sizeof(o.path))
				return WHY("path='%s' is not an absolute socket path that fits",
					   val);
			snprintf(o.path, sizeof(o.path), "%s", val);
		} else if (pci && !strcmp(tok, "dma")) {
			/* A test of the address translation: pagemap gives a PV dom0's PFNs. */
			if (!strcmp(val, "auto"))
				o.dma = -1;
			else if (!strcmp(val, "pagemap"))
				o.dma = VIO_DMA_PAGEMAP;
			else if (!strcmp(val, "p2m"))
				o.dma = VIO_DMA_P2M;
			else
				return WHY("dma='%s': auto, pagemap or p2m", val);
		} else if (!strcmp(tok, "queues")) {
			char *end;
			unsigned long n = strtoul(val, &end, 10);

			if (!val[0] || *end || n < 1 || n > VNET_MAX_PAIRS)
				return WHY("queues='%s': 1..8", val);
			o.queues = (unsigned int)n;
		} else {
			return WHY("unknown option '%s'", tok);
		}
	}
	if (pci && !o.pci[0])
		return WHY("virtio-net needs pci=DDDD:BB:DD.F");
	if (!pci && !o.path[0])
		return WHY("vhost-user needs path=/socket");
	*ret = o;
	return 0;
}

/* ---- RX ---- */

static void kick(struct vnet_pair *q, struct virtq *vq, int fd)
{
	uint64_t one = 1;

	if (!virtq_publish(vq))
		return;
	if (q->v->pci)
		vpci_notify(q->v->pci, vq->index);
	else if (write(fd, &one, sizeof(one)) < 0)
		bk_log_dev_rl(&q->v->rl, BK_LOG_WARNING, q->v->name, "q%u: kick: %m", q->index);
}

static int rx_post(struct vnet_pair *q, unsigned int i)
{
	struct virtq_seg seg = { vio_dma_addr(q->v->dma, q->rxpage[i]), VIO_PAGE_SIZE, true };

	return virtq_add(&q->rx, &seg, 1, (void *)(uintptr_t)(i + 1));
}

/* Copy @len bytes of @src to offset @off of the caller's buffers; false if they do not fit. */
static bool iov_put(const struct bk_tap_pkt *p, size_t off, const uint8_t *src, size_t len)
{
	for (unsigned int i = 0; i < p->iovcnt && len; i++) {
		size_t l = p->iov[i].iov_len, n;

		if (off >= l) {
			off -= l;
			continue;
		}
		n = BK_MIN(len, l - off);
		memcpy((uint8_t *)p->iov[i].iov_base + off, src, n);
		src += n;
		len -= n;
		off = 0;
	}
	return len == 0;
}

/* The next used RX buffer: its index, or -EAGAIN (none), -EPROTO (the device lied). */
static int rx_next(struct vnet_pair *q, uint32_t *ret_len)
{
	void *cookie;
	int r = virtq_get(&q->rx, &cookie, ret_len);
	uintptr_t i = (uintptr_t)cookie;

	if (r == 0)
		return -EAGAIN;
	if (r < 0 || i == 0 || i > q->v->qsize || *ret_len > VIO_PAGE_SIZE)
		return -EPROTO;
	return (int)(i - 1);
}

/* One frame out of the used ring into @p; -EAGAIN: none; -EMSGSIZE: dropped; -EPROTO. */
static int rx_frame(struct vnet_pair *q, struct bk_tap_pkt *p)
{
	struct bk_vnet *v = q->v;
	struct virtio_net_hdr_v1 hdr;
	uint32_t len;
	unsigned int nbuf = 1, b = 0;
	size_t total = 0;
	bool fits = true;
	int i = rx_next(q, &len);

	if (i < 0)
		return i;
	if (len < VNET_HDR_LEN) {
		rx_post(q, (unsigned int)i);
		return -EMSGSIZE;
	}
	memcpy(&hdr, q->rxpage[i], sizeof(hdr));
	if (has(v, VIRTIO_NET_F_MRG_RXBUF))
		nbuf = hdr.num_buffers;
	if (nbuf < 1 || nbuf > VNET_MRG_MAX)
		fits = false;
	hdr.num_buffers = 0;
	for (;;) {
		const uint8_t *src = q->rxpage[i];
		size_t l = len;

		if (b == 0) {
			fits = fits && iov_put(p, 0, (const uint8_t *)&hdr, VNET_HDR_LEN);
			src += VNET_HDR_LEN;
			l -= VNET_HDR_LEN;
			total = VNET_HDR_LEN;
		}
		fits = fits && total + l <= VNET_FRAME_MAX && iov_put(p, total, src, l);
		total += l;
		rx_post(q, (unsigned int)i); /* cannot fail: the ring had room for it */
		if (++b >= nbuf)
			break;
		i = rx_next(q, &len);
		if (i < 0) /* the device publishes a merged frame at once */
			return -EPROTO;
	}
	if (!fits)
		return -EMSGSIZE;
	p->len = total;
	p->err = 0;
	return 0;
}

int bk_vnet_read(struct bk_vnet *v, unsigned int qi, struct bk_tap_pkt *pkts, unsigned int n)
{
	struct vnet_pair *q;
	unsigned int got = 0;

	for (unsigned int k = 0; k < n; k++)
		pkts[k].err = -EAGAIN;
	if (!v->started || qi >= v->pairs)
		return 0;
	q = &v->q[qi];
	while (got < n) {
		int r = rx_frame(q, &pkts[got]);

		if (r == -EAGAIN) {
			/* Empty: ask for an interrupt, and look once more after asking. */
			if (!virtq_arm(&q->rx))
				break;
			continue;
		}
		if (r == -EMSGSIZE) {
			q->st.rx_drop++;
			bk_log_dev_rl(&v->rl, BK_LOG_WARNING, v->name,
				      "q%u: dropping a malformed or oversized RX frame", qi);
			continue;
		}
		if (r < 0) {
			q->st.rx_drop++;
			bk_log_dev_rl(&v->rl, BK_LOG_ERR, v->name,
				      "q%u: impossible used RX entry: the device is broken", qi);
			break;
		}
		q->st.rx_frames++;
		q->st.rx_bytes += pkts[got].len - VNET_HDR_LEN;
		got++;
	}
	kick(q, &q->rx, q->rx_kick);
	return (int)got;
}

/* ---- TX ---- */

static void tx_reap(struct vnet_pair *q)
{
	void *cookie;
	uint32_t len;

	while (virtq_get(&q->tx, &cookie, &len) > 0) {
		struct vnet_txbuf *t = cookie;

		if (!t)
			continue;
		for (unsigned int i = 0; i < t->npages; i++)
			vio_dma_page_put(q->v->dma, t->pages[i]);
		q->tx_pages -= t->npages;
		t->npages = 0;
		t->next = q->txfree;
		q->txfree = t;
	}
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

/*
 * The device lacks CSUM: finish the partial checksum in the caller's frame (the field holds
 * the pseudo-header sum). The bytes from csum_start on must be in one buffer.
 */
static int csum_sw(const struct bk_tap_pkt *p, const struct virtio_net_hdr_v1 *h, size_t total)
{
	size_t start = VNET_HDR_LEN + h->csum_start, off = 0;
	uint32_t sum;
	uint16_t c;
	uint8_t *f;

	if (start >= total || (size_t)h->csum_offset + 2 > total - start)
		return -EINVAL;
	for (unsigned int i = 0; i < p->iovcnt; i++) {
		size_t l = p->iov[i].iov_len;

		if (start < off + l) {
			if (total - start > off + l - start)
				return -EINVAL;
			f = (uint8_t *)p->iov[i].iov_base + (start - off);
			sum = csum_add(0, f, total - start);
			while (sum >> 16)
				sum = (sum & 0xffff) + (sum >> 16);
			c = (uint16_t)~sum;
			if (!c)
				c = 0xffff; /* 0 means "no checksum" to UDP */
			f[h->csum_offset] = (uint8_t)(c >> 8);
			f[h->csum_offset + 1] = (uint8_t)c;
			return 0;
		}
		off += l;
	}
	return -EINVAL;
}

/* Check and adjust one frame's header for the device; -errno: refuse the frame. */
static int tx_header(struct vnet_pair *q, const struct bk_tap_pkt *p, size_t total,
		     struct virtio_net_hdr_v1 *h)
{
	struct bk_vnet *v = q->v;
	uint8_t gso;

	if (total < VNET_HDR_LEN + 14 || total > VNET_FRAME_MAX)
		return -EINVAL;
	if (p->iov[0].iov_len >= VNET_HDR_LEN)
		memcpy(h, p->iov[0].iov_base, VNET_HDR_LEN);
	else
		return -EINVAL;
	h->num_buffers = 0;
	gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4 && !has(v, VIRTIO_NET_F_HOST_TSO4))
		return -EOPNOTSUPP;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !has(v, VIRTIO_NET_F_HOST_TSO6))
		return -EOPNOTSUPP;
	if (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
	    gso != VIRTIO_NET_HDR_GSO_TCPV6)
		return -EOPNOTSUPP;
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !has(v, VIRTIO_NET_F_CSUM)) {
		if (gso != VIRTIO_NET_HDR_GSO_NONE)
			return -EOPNOTSUPP;
		if (csum_sw(p, h, total) < 0)
			return -EINVAL;
		h->flags = VIRTIO_NET_HDR_F_DATA_VALID;
		h->csum_start = h->csum_offset = 0;
		q->st.tx_csum_sw++;
	}
	return 0;
}

/* Copy the frame (its header replaced by @h) into pages; the number of pages, or -ENOBUFS. */
static int tx_copy(struct bk_vnet *v, struct vnet_txbuf *t, const struct bk_tap_pkt *p,
		   size_t total, const struct virtio_net_hdr_v1 *h, struct virtq_seg *segs)
{
	unsigned int np = (unsigned int)BK_DIV_ROUND_UP(total, VIO_PAGE_SIZE);
	size_t pos, skip = VNET_HDR_LEN;

	for (unsigned int k = 0; k < np; k++) {
		t->pages[k] = vio_dma_page_get(v->dma);
		if (!t->pages[k]) {
			for (unsigned int j = 0; j < k; j++)
				vio_dma_page_put(v->dma, t->pages[j]);
			return -ENOBUFS;
		}
		segs[k] = (struct virtq_seg){
			vio_dma_addr(v->dma, t->pages[k]),
			(uint32_t)BK_MIN(VIO_PAGE_SIZE, total - k * VIO_PAGE_SIZE), false
		};
	}
	memcpy(t->pages[0], h, VNET_HDR_LEN);
	pos = VNET_HDR_LEN;
	/* The caller's bytes after its header, gathered into the pages. */
	for (unsigned int i = 0; i < p->iovcnt; i++) {
		const uint8_t *src = p->iov[i].iov_base;
		size_t l = p->iov[i].iov_len;

		if (skip) {
			size_t s = BK_MIN(skip, l);

			src += s;
			l -= s;
			skip -= s;
		}
		while (l) {
			size_t room = VIO_PAGE_SIZE - pos % VIO_PAGE_SIZE, n = BK_MIN(room, l);

			memcpy((uint8_t *)t->pages[pos / VIO_PAGE_SIZE] + pos % VIO_PAGE_SIZE, src,
			       n);
			src += n;
			l -= n;
			pos += n;
		}
	}
	t->npages = np;
	return (int)np;
}

int bk_vnet_write(struct bk_vnet *v, unsigned int qi, struct bk_tap_pkt *pkts, unsigned int n)
{
	struct vnet_pair *q;
	unsigned int done = 0;

	if (!v->started || qi >= v->pairs) {
		for (unsigned int k = 0; k < n; k++)
			pkts[k].err = -ENETDOWN;
		return (int)n;
	}
	q = &v->q[qi];
	tx_reap(q);
	for (; done < n; done++) {
		struct bk_tap_pkt *p = &pkts[done];
		struct virtq_seg segs[VNET_TX_PAGES];
		struct virtio_net_hdr_v1 h;
		struct vnet_txbuf *t = q->txfree;
		size_t total = 0;
		int r, np;

		for (unsigned int i = 0; i < p->iovcnt; i++)
			total += p->iov[i].iov_len;
		p->err = 0;
		r = tx_header(q, p, total, &h);
		if (r < 0) {
			p->err = r;
			bk_log_dev_rl(&v->rl, BK_LOG_WARNING, v->name,
				      "q%u: refusing a %zu-byte TX frame: %s", qi, total,
				      strerror(-r));
			continue;
		}
		if (!t ||
		    q->tx_pages + BK_DIV_ROUND_UP(total, VIO_PAGE_SIZE) > VNET_TX_POOL * v->qsize) {
			q->st.tx_full++;
			break;
		}
		np = tx_copy(v, t, p, total, &h, segs);
		if (np < 0) {
			q->st.tx_full++;
			break;
		}
		r = virtq_add(&q->tx, segs, (unsigned int)np, t);
		if (r < 0) {
			for (int j = 0; j < np; j++)
				vio_dma_page_put(v->dma, t->pages[j]);
			t->npages = 0;
			q->st.tx_full++;
			break;
		}
		q->txfree = t->next;
		q->tx_pages += (unsigned int)np;
		q->st.tx_frames++;
		q->st.tx_bytes += total - VNET_HDR_LEN;
	}
	kick(q, &q->tx, q->tx_kick);
	return (int)done;
}

/* ---- events ---- */

static bool rx_pending(struct vnet_pair *q)
{
	return virtq_used_idx(&q->rx) != q->rx.last_used;
}

/* Wake the reader of @q through its eventfd (also where INTx cannot say which queue). */
static void signal_rx(struct vnet_pair *q)
{
	uint64_t one = 1;

	if (write(q->rx_call, &one, sizeof(one)) < 0 && errno != EAGAIN)
		bk_log_dev_rl(&q->v->rl, BK_LOG_WARNING, q->v->name, "q%u: eventfd: %m", q->index);
}

static void rx_event(void *data, int fd, unsigned int events)
{
	struct vnet_pair *q = data;
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		bk_log_dev_rl(&q->v->rl, BK_LOG_WARNING, q->v->name, "q%u: call eventfd: %m",
			      q->index);
	if (q->cb)
		q->cb(q->data, fd, events);
}

int bk_vnet_watch(struct bk_vnet *v, unsigned int qi, struct bk_loop *loop, unsigned int events,
		  bk_fd_cb cb, void *data)
{
	struct vnet_pair *q;
	struct bk_watch *w;
	int r;

	if (qi >= v->max_pairs)
		return -EINVAL;
	q = &v->q[qi];
	r = bk_loop_add_fd(loop, q->rx_call, events, rx_event, q, &w);
	if (r < 0)
		return log_err_errno(r, "%s: q%u: watching the RX eventfd: %m", v->name, qi);
	bk_watch_free(q->watch);
	q->watch = w;
	q->cb = cb;
	q->data = data;
	q->events = events;
	/* Frames may be waiting already (the device wrote while nobody watched). */
	if (events && v->started && qi < v->pairs && rx_pending(q))
		signal_rx(q);
	return 0;
}

void bk_vnet_watch_events(struct bk_vnet *v, unsigned int qi, unsigned int events)
{
	struct vnet_pair *q;

	if (qi >= v->max_pairs || !v->q[qi].watch)
		return;
	q = &v->q[qi];
	bk_watch_set_events(q->watch, events);
	/* A resumed reader may have left frames behind whose interrupt it already took. */
	if (events && !q->events && v->started && qi < v->pairs && rx_pending(q))
		signal_rx(q);
	q->events = events;
}

static void pci_wake(struct bk_vnet *v)
{
	for (unsigned int i = 0; i < v->pairs; i++)
		if (rx_pending(&v->q[i]))
			signal_rx(&v->q[i]);
}

static void irq_event(void *data, int fd, unsigned int events)
{
	struct bk_vnet *v = data;
	int isr = vpci_irq_ack(v->pci);

	v->interrupts++;
	if (isr < 0)
		bk_log_dev_rl(&v->rl, BK_LOG_WARNING, v->name, "uio interrupt: %s", strerror(-isr));
	else if (isr & 2)
		log_info("%s: config changed: link %s", v->name,
			 bk_vnet_link_up(v) ? "up" : "down");
	if (v->started)
		pci_wake(v);
}

/* Polled, or with INTx a safety net: an RX frame never waits for a lost interrupt. */
static void poll_cb(void *data)
{
	struct bk_vnet *v = data;

	if (v->started)
		pci_wake(v);
}

/* ---- set-up ---- */

static void stop(struct bk_vnet *v)
{
	if (!v->started)
		return;
	v->started = false;
	if (v->pci) {
		vpci_reset(v->pci); /* before any page it could write is reused */
	} else {
		bk_watch_free(v->sock_watch);
		v->sock_watch = NULL;
		vhu_close(&v->conn);
		v->conn.sock = -1;
	}
	for (unsigned int i = 0; i < v->max_pairs; i++) {
		struct vnet_pair *q = &v->q[i];

		for (unsigned int k = 0; q->txb && k < v->qsize; k++) {
			struct vnet_txbuf *t = &q->txb[k];

			for (unsigned int j = 0; j < t->npages; j++)
				vio_dma_page_put(v->dma, t->pages[j]);
			t->npages = 0;
		}
		q->tx_pages = 0;
		q->txfree = NULL;
		for (unsigned int k = v->qsize; q->txb && k-- > 0;) {
			q->txb[k].next = q->txfree;
			q->txfree = &q->txb[k];
		}
		virtq_reset(&q->rx);
		virtq_reset(&q->tx);
	}
}

static void sock_event(void *data, int fd, unsigned int events);

/* Connect (vhost-user), negotiate, set the rings up, post the RX buffers. */
static int start(struct bk_vnet *v, unsigned int pairs, unsigned int tun_flags, bool quiet)
{
	uint64_t want = BASE_FEATURES;
	int r;

	stop(v);
	if (!v->pci) {
		r = vhu_connect(v->name, v->o.path, MSG_TIMEOUT_MS, &v->conn);
		if (r < 0) {
			v->conn.sock = -1;
			if (!quiet)
				log_err_errno(r, "%s: cannot connect to %s: %m", v->name,
					      v->o.path);
			return r;
		}
		if ((v->conn.features & v->features) != v->features && v->features) {
			vhu_close(&v->conn);
			v->conn.sock = -1;
			return log_err_errno(
				-ENXIO, "%s: the back-end came back without features %#llx",
				v->name, (unsigned long long)(v->features & ~v->conn.features));
		}
	}
	if (v->pci)
		want |= VIO_BIT(VIRTIO_F_ACCESS_PLATFORM);
	if (pairs > 1)
		want |= VIO_BIT(VIRTIO_NET_F_MQ);
	if (tun_flags & TUN_F_CSUM)
		want |= VIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
	/* Large frames arrive merged over single pages; without MRG_RXBUF they could not. */
	if ((tun_flags & TUN_F_CSUM) && (v->offered & VIO_BIT(VIRTIO_NET_F_MRG_RXBUF))) {
		if (tun_flags & TUN_F_TSO4)
			want |= VIO_BIT(VIRTIO_NET_F_GUEST_TSO4);
		if (tun_flags & TUN_F_TSO6)
			want |= VIO_BIT(VIRTIO_NET_F_GUEST_TSO6);
	}
	v->features = v->offered & want;
	v->pairs = pairs;
	if (v->pci) {
		r = vpci_set_features(v->pci, v->features);
		for (unsigned int i = 0; r >= 0 && i < 2 * pairs; i++) {
			struct virtq *vq = i & 1 ? &v->q[i / 2].tx : &v->q[i / 2].rx;

			r = vpci_queue_setup(v->pci, (uint16_t)i, (uint16_t)v->qsize,
					     virtq_desc_addr(vq), virtq_avail_addr(vq),
					     virtq_used_addr(vq));
		}
		if (r >= 0)
			r = vpci_driver_ok(v->pci);
	} else {
		struct virtq *vqs[2 * VNET_MAX_PAIRS];
		int kicks[2 * VNET_MAX_PAIRS], calls[2 * VNET_MAX_PAIRS];

		for (unsigned int i = 0; i < pairs; i++) {
			vqs[2 * i] = &v->q[i].rx;
			vqs[2 * i + 1] = &v->q[i].tx;
			kicks[2 * i] = v->q[i].rx_kick;
			kicks[2 * i + 1] = v->q[i].tx_kick;
			calls[2 * i] = v->q[i].rx_call;
			calls[2 * i + 1] = v->q[i].tx_call;
		}
		r = vhu_start(&v->conn, v->features, v->dma, vqs, kicks, calls, 2 * pairs);
		if (r >= 0)
			r = bk_loop_add_fd(v->loop, v->conn.sock, BK_EV_READ, sock_event, v,
					   &v->sock_watch);
	}
	if (r < 0) {
		if (!v->pci) {
			vhu_close(&v->conn);
			v->conn.sock = -1;
		}
		return log_err_errno(r, "%s: starting %u queue pair(s): %m", v->name, pairs);
	}
	v->started = true;
	v->lost = false;
	for (unsigned int i = 0; i < pairs; i++) {
		struct vnet_pair *q = &v->q[i];

		for (unsigned int k = 0; k < v->qsize; k++)
			rx_post(q, k);
		virtq_arm(&q->rx);
		kick(q, &q->rx, q->rx_kick);
	}
	log_info("%s: started, %u queue pair(s) of %u, features %#llx (csum %s, tso4 %s, "
		 "tso6 %s, guest csum %s, guest tso %s, mergeable rx %s), link %s",
		 v->name, pairs, v->qsize, (unsigned long long)v->features,
		 has(v, VIRTIO_NET_F_CSUM) ? "yes" : "no",
		 has(v, VIRTIO_NET_F_HOST_TSO4) ? "yes" : "no",
		 has(v, VIRTIO_NET_F_HOST_TSO6) ? "yes" : "no",
		 has(v, VIRTIO_NET_F_GUEST_CSUM) ? "yes" : "no",
		 has(v, VIRTIO_NET_F_GUEST_TSO4) || has(v, VIRTIO_NET_F_GUEST_TSO6) ? "yes" : "no",
		 has(v, VIRTIO_NET_F_MRG_RXBUF) ? "yes" : "no", bk_vnet_link_up(v) ? "up" : "down");
	/* Frames may have arrived before anyone looked (a reconnect). */
	for (unsigned int i = 0; i < pairs; i++)
		if (v->q[i].watch && v->q[i].events)
			signal_rx(&v->q[i]);
	return 0;
}

int bk_vnet_start(struct bk_vnet *v, unsigned int pairs, unsigned int tun_flags)
{
	pairs = BK_MAX(1U, BK_MIN(pairs, v->max_pairs));
	v->want_pairs = pairs;
	v->want_flags = tun_flags;
	if (v->retry)
		bk_timer_stop(v->retry);
	return start(v, pairs, tun_flags, false);
}

/*
 * The vhost-user back-end went away (a switch restarting): drop what was in flight (frames,
 * like a cable pulled), and try again every RETRY_MS with the same queues and offloads; the
 * back-end starts its rings from index 0.
 */
static void lost(struct bk_vnet *v, const char *why)
{
	if (!v->started)
		return;
	log_warn("%s: %s: reconnecting every %u ms", v->name, why, RETRY_MS);
	stop(v);
	v->lost = true;
	bk_timer_rearm(v->retry, RETRY_MS, RETRY_MS);
}

static void sock_event(void *data, int fd, unsigned int events)
{
	struct bk_vnet *v = data;
	const char *why = vhu_lost(fd);

	if (why)
		lost(v, why);
}

static void retry_cb(void *data)
{
	struct bk_vnet *v = data;

	if (!v->lost || start(v, v->want_pairs, v->want_flags, true) < 0)
		return;
	bk_timer_stop(v->retry);
	v->reconnects++;
	log_info("%s: the back-end is back", v->name);
}

static int pair_init(struct bk_vnet *v, struct vnet_pair *q, unsigned int i)
{
	char name[160];
	bool ev = v->offered & VIO_BIT(VIRTIO_F_EVENT_IDX);
	int r;

	q->v = v;
	q->index = i;
	q->rx_call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->rx_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->tx_call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->tx_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->rx_call < 0 || q->rx_kick < 0 || q->tx_call < 0 || q->tx_kick < 0)
		return log_err_errno(neg_errno(), "%s: eventfd: %m", v->name);
	snprintf(name, sizeof(name), "%s rx%u", v->name, i);
	r = virtq_init(&q->rx, name, (uint16_t)(2 * i), (uint16_t)v->qsize, v->dma, ev, false);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "%s tx%u", v->name, i);
	r = virtq_init(&q->tx, name, (uint16_t)(2 * i + 1), (uint16_t)v->qsize, v->dma, ev, false);
	if (r < 0)
		return r;
	for (unsigned int k = 0; k < v->qsize; k++)
		if (!(q->rxpage[k] = vio_dma_page_get(v->dma)))
			return -ENOMEM;
	q->txb = calloc(v->qsize, sizeof(*q->txb));
	if (!q->txb)
		return -ENOMEM;
	for (unsigned int k = v->qsize; k-- > 0;) {
		q->txb[k].next = q->txfree;
		q->txfree = &q->txb[k];
	}
	return 0;
}

void bk_vnet_close(struct bk_vnet *v)
{
	if (!v)
		return;
	if (v->link.next) {
		pthread_mutex_lock(&devices_lock);
		list_del(&v->link);
		pthread_mutex_unlock(&devices_lock);
	}
	bk_watch_free(v->irq_watch);
	bk_timer_free(v->poll_timer);
	bk_timer_free(v->retry);
	stop(v);
	/* Reset (and handed back) before the pages it could write are freed. */
	vpci_close(v->pci);
	vhu_close(&v->conn);
	for (unsigned int i = 0; v->q && i < v->max_pairs; i++) {
		struct vnet_pair *q = &v->q[i];

		bk_watch_free(q->watch);
		virtq_fini(&q->rx);
		virtq_fini(&q->tx);
		for (unsigned int k = 0; k < v->qsize; k++)
			if (q->rxpage[k])
				vio_dma_page_put(v->dma, q->rxpage[k]);
		free(q->txb);
		if (q->rx_call >= 0)
			close(q->rx_call);
		if (q->rx_kick >= 0)
			close(q->rx_kick);
		if (q->tx_call >= 0)
			close(q->tx_call);
		if (q->tx_kick >= 0)
			close(q->tx_kick);
	}
	free(v->q);
	vio_dma_free(v->dma);
	free(v);
}

/* ---- the control socket's view ---- */

/* One device's L0 record: the vif as its user, and its queue pairs, in wire order. */
static int ctl_fill_dev(struct bk_ctl_buf *b, struct bk_vnet *v)
{
	struct bk_ctl_l0user *u;
	struct bk_ctl_l0dev *w;
	size_t off = b->len;
	uint8_t mac[6];
	int err = 0;

	if (!bk_ctl_buf_append(b, NULL, sizeof(*w), &err))
		return err;
	u = bk_ctl_buf_append(b, NULL, sizeof(*u), &err);
	if (!u)
		return err;
	bk_ctl_strpad(u->owner, sizeof(u->owner), v->owner);
	bk_ctl_l0user_swap(u);
	for (unsigned int i = 0; i < v->max_pairs; i++) {
		struct vnet_pair *q = &v->q[i];
		struct bk_ctl_l0queue *w_q = bk_ctl_buf_append(b, NULL, sizeof(*w_q), &err);

		if (!w_q)
			return err;
		/* Take back what the device used, so tx_pages counts pages still in its hands. */
		if (v->started && i < v->pairs)
			tx_reap(q);
		w_q->index = i;
		w_q->size = v->qsize;
		bk_ctl_strpad(w_q->owner, sizeof(w_q->owner),
			      v->started && i < v->pairs ? v->owner : "");
		w_q->rx_frames = q->st.rx_frames;
		w_q->rx_bytes = q->st.rx_bytes;
		w_q->tx_frames = q->st.tx_frames;
		w_q->tx_bytes = q->st.tx_bytes;
		w_q->rx_drops = q->st.rx_drop;
		w_q->tx_waits = q->st.tx_full;
		w_q->tx_csum_sw = q->st.tx_csum_sw;
		w_q->tx_pages = q->tx_pages;
		bk_ctl_l0queue_swap(w_q);
	}
	w = (struct bk_ctl_l0dev *)(b->data + off);
	bk_ctl_strpad(w->kind, sizeof(w->kind), "virtio-net");
	bk_ctl_strpad(w->name, sizeof(w->name), bk_vnet_name(v));
	bk_ctl_strpad(w->transport, sizeof(w->transport), v->pci ? "pci" : "vhost-user");
	bk_ctl_strpad(w->dma_mode, sizeof(w->dma_mode), vio_dma_mode_name(v->dma_mode));
	bk_ctl_strpad(w->dma_why, sizeof(w->dma_why), v->dma_why ? v->dma_why : "");
	bk_ctl_strpad(w->irq, sizeof(w->irq),
		      !v->pci	     ? "eventfd"
		      : v->irq_watch ? "INTx"
				     : "polled");
	if (bk_vnet_mac(v, mac) == 0)
		for (unsigned int k = 0; k < 6; k++)
			w->mac = w->mac << 8 | mac[k];
	w->features = v->features;
	w->lost_interrupts = 0;
	w->reconnects = v->reconnects;
	w->flags = (v->pci || (v->started && !v->lost) ? BK_CTL_L0_CONNECTED : 0) |
		   (bk_vnet_link_up(v) ? BK_CTL_L0_LINK_UP : 0);
	w->nr_users = 1;
	w->user_size = sizeof(struct bk_ctl_l0user);
	w->nr_queues = v->max_pairs;
	w->queue_size = sizeof(struct bk_ctl_l0queue);
	bk_ctl_l0dev_swap(w);
	return 0;
}

/* The control socket's L0 request: every virtio-net port this process drives. */
static int ctl_fill(struct bk_ctl_buf *b)
{
	struct bk_vnet *v;
	int n = 0, r = 0;

	pthread_mutex_lock(&devices_lock);
	list_for_each_entry (v, &devices, link) {
		r = ctl_fill_dev(b, v);
		if (r < 0)
			break;
		n++;
	}
	pthread_mutex_unlock(&devices_lock);
	return r < 0 ? r : n;
}

int bk_vnet_open(const char *name, struct bk_loop *loop, const struct bk_vnet_opts *o,
		 struct bk_vnet **ret)
{
	struct bk_vnet *v = calloc(1, sizeof(*v));
	enum vio_dma_mode mode;
	const char *why;
	unsigned int pages;
	int r;

	if (!v)
		return -ENOMEM;
	v->o = *o;
	v->loop = loop;
	snprintf(v->owner, sizeof(v->owner), "%s", name);
	v->conn.sock = -1;
	v->rl = (struct bk_ratelimit)BK_RATELIMIT_INIT(5000, 10);
	snprintf(v->name, sizeof(v->name), "%s: %s %s", name,
		 o->pci[0] ? "virtio-net" : "vhost-user", o->pci[0] ? o->pci : o->path);
	v->qsize = VNET_QSIZE;
	if (o->pci[0]) {
		r = vpci_open(v->name, "", o->pci, VIRTIO_TYPE_NET, !o->poll, &v->pci);
		if (r < 0)
			goto fail;
		v->offered = v->pci->features;
		if (!(v->offered & VIO_BIT(VIRTIO_F_VERSION_1))) {
			r = bk_log_errno(BK_LOG_ERR, -EPROTO, "%s: the device lacks VERSION_1",
					 v->name);
			goto fail;
		}
		/* More pairs need the control queue (VQ_PAIRS_SET): not done, one pair. */
		v->max_pairs = 1;
		r = vpci_get_config(v->pci, 0, &v->cfg,
				    (uint32_t)BK_MIN(sizeof(v->cfg), v->pci->devcfg_len));
		if (r < 0)
			goto fail;
		{
			unsigned int max =
				BK_MIN(vpci_queue_max(v->pci, 0), vpci_queue_max(v->pci, 1));

			if (max < 16) {
				r = bk_log_errno(BK_LOG_ERR, -EPROTO, "%s: queues of %u entries",
						 v->name, max);
				goto fail;
			}
			while (max & (max - 1))
				max &= max - 1;
			v->qsize = BK_MIN(v->qsize, max);
		}
	} else {
		/* Learn the features; the queues start at bk_vnet_start on a fresh connection. */
		r = vhu_connect(v->name, o->path, MSG_TIMEOUT_MS, &v->conn);
		if (r < 0) {
			log_err("%s: cannot connect to the vhost-user back-end %s: %s", v->name,
				o->path, strerror(-r));
			goto fail;
		}
		v->offered = v->conn.features;
		/* GET_QUEUE_NUM of a net back-end counts queue pairs. */
		v->max_pairs = (v->offered & VIO_BIT(VIRTIO_NET_F_MQ)) ? v->conn.max_queues : 1;
		vhu_close(&v->conn);
		v->conn.sock = -1;
	}
	v->max_pairs = BK_MAX(1U, BK_MIN(v->max_pairs, o->queues ? o->queues : VNET_MAX_PAIRS));
	/* Per pair: two rings of three pages, the RX buffers and the TX pool. */
	pages = v->max_pairs * (6 + v->qsize + VNET_TX_POOL * v->qsize);
	mode = vio_dma_choose(v->pci ? VIO_DMA_FOR_PCI : VIO_DMA_FOR_VHOST_USER, &why);
	if (o->dma >= 0 && (enum vio_dma_mode)o->dma != mode) {
		log_warn("%s: DMA mode %s forced by dma= instead of %s (%s)", v->name,
			 vio_dma_mode_name((enum vio_dma_mode)o->dma), vio_dma_mode_name(mode),
			 why);
		mode = (enum vio_dma_mode)o->dma;
		why = "forced by the dma= option";
	}
	v->dma_mode = mode;
	v->dma_why = why;
	r = vio_dma_new(v->name, pages, mode, &v->dma);
	if (r < 0)
		goto fail;
	v->q = calloc(v->max_pairs, sizeof(*v->q));
	if (!v->q) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned int i = 0; i < v->max_pairs; i++)
		v->q[i].rx_call = v->q[i].rx_kick = v->q[i].tx_call = v->q[i].tx_kick = -1;
	for (unsigned int i = 0; i < v->max_pairs; i++) {
		r = pair_init(v, &v->q[i], i);
		if (r < 0) {
			log_err_errno(r, "%s: q%u: %m", v->name, i);
			goto fail;
		}
	}
	if (!v->pci) {
		r = bk_loop_add_timer(loop, RETRY_MS, RETRY_MS, retry_cb, v, &v->retry);
		if (r < 0)
			goto fail;
		bk_timer_stop(v->retry);
	}
	if (v->pci) {
		if (!o->poll && v->pci->uio_fd >= 0) {
			r = bk_loop_add_fd(loop, v->pci->uio_fd, BK_EV_READ, irq_event, v,
					   &v->irq_watch);
			if (r < 0)
				goto fail;
		}
		r = bk_loop_add_timer(loop, v->irq_watch ? POLL_MS : 1, v->irq_watch ? POLL_MS : 1,
				      poll_cb, v, &v->poll_timer);
		if (r < 0)
			goto fail;
	}
	log_info("%s: %u queue pair(s) of %u, offers %#llx%s; DMA: %s mode, %u pages: %s", v->name,
		 v->max_pairs, v->qsize, (unsigned long long)v->offered,
		 (v->offered & VIO_BIT(VIRTIO_NET_F_MAC)) ? "" : " (no MAC)",
		 vio_dma_mode_name(mode), pages, why);
	pthread_mutex_lock(&devices_lock);
	list_add_tail(&v->link, &devices);
	pthread_mutex_unlock(&devices_lock);
	bk_ctl_set_l0_source("virtio-net", ctl_fill);
	*ret = v;
	return 0;
fail:
	bk_vnet_close(v);
	return r;
}

const char *bk_vnet_name(const struct bk_vnet *v)
{
	return v->o.pci[0] ? v->o.pci : v->o.path;
}

uint64_t bk_vnet_features(const struct bk_vnet *v)
{
	return v->offered;
}

uint64_t bk_vnet_negotiated(const struct bk_vnet *v)
{
	return v->features;
}

unsigned int bk_vnet_max_pairs(const struct bk_vnet *v)
{
	return v->max_pairs;
}

int bk_vnet_mac(const struct bk_vnet *v, uint8_t mac[6])
{
	if (!v->pci || !(v->offered & VIO_BIT(VIRTIO_NET_F_MAC)))
		return -ENOENT;
	memcpy(mac, v->cfg.mac, 6);
	return 0;
}

bool bk_vnet_link_up(struct bk_vnet *v)
{
	uint16_t st = VIRTIO_NET_S_LINK_UP;

	if (v->pci && (v->offered & VIO_BIT(VIRTIO_NET_F_STATUS)) &&
	    vpci_get_config(v->pci, 6, &st, sizeof(st)) < 0)
		return false;
	return st & VIRTIO_NET_S_LINK_UP;
}

void bk_vnet_stats(const struct bk_vnet *v, struct bk_vnet_stats *ret)
{
	*ret = (struct bk_vnet_stats){ .interrupts = v->interrupts };
	for (unsigned int i = 0; v->q && i < v->max_pairs; i++) {
		const struct bk_vnet_pair_stats *st = &v->q[i].st;

		ret->rx_frames += st->rx_frames;
		ret->tx_frames += st->tx_frames;
		ret->rx_drop += st->rx_drop;
		ret->tx_full += st->tx_full;
		ret->tx_csum_sw += st->tx_csum_sw;
	}
}
