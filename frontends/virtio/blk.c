// SPDX-License-Identifier: MIT
/*
 * The virtio-blk engine over vhost-user: see virtio-blk.h for the options.
 *
 * One struct vblk_dev per back-end socket (and loop) owns the connection, the shared memory
 * (struct vio_dma) and every device queue; each engine instance owns one queue. A bk_io is cut
 * into device requests ("chunks") of at most CHUNK_PAGES data pages, each page its own
 * descriptor, bounced through pages of the shared memory (the caller's buffers are not in
 * memory the back-end can map). queue() only links the I/O in; a loop hook puts everything
 * waiting on the ring and kicks once per turn; the call eventfd brings completions back.
 *
 * When the back-end goes away (its socket closes), the device keeps every chunk it had sent
 * with its data, retries the connection every RETRY_MS, and on success sets the rings up
 * from index 0 and sends the same chunks again: a restarted back-end has lost its queue
 * state, and a read or write done twice gives the same result.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blanket/ctl.h"
#include "ctl.h"
#include "engine-internal.h"
#include "loop.h"
#include "pci.h"
#include "util/list.h"
#include "util/log.h"
#include "util/macros.h"
#include "vhost_user.h"
#include "virtio-blk.h"
#include "virtqueue.h"

#define CHUNK_PAGES 64u /* data pages per device request: 256 KiB */
#define MAX_QUEUES 16u
#define SLOT_SIZE 64u /* header, discard payload and status of one request */
#define RETRY_MS 100u
#define MSG_TIMEOUT_MS 5000u
#define SECTOR 512u

/* The features blanketd can use. */
#define WANTED_FEATURES                                                     \
	(VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(VIRTIO_F_EVENT_IDX) |        \
	 VIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | \
	 VIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIO_BIT(VIRTIO_BLK_F_RO) |         \
	 VIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIO_BIT(VIRTIO_BLK_F_FLUSH) |     \
	 VIO_BIT(VIRTIO_BLK_F_TOPOLOGY) | VIO_BIT(VIRTIO_BLK_F_MQ) |        \
	 VIO_BIT(VIRTIO_BLK_F_DISCARD) | VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES))

struct vblk_queue;

/* One device request: a chunk of a bk_io. */
struct vblk_req {
	struct list_head link; /* queue's free list, or its sent list in sending order */
	struct vblk_queue *q;
	struct bk_io *io; /* NULL once its engine closed: the result is dropped */
	uint8_t *slot;	  /* header at 0, discard payload at 16, status at 32 */
	uint64_t io_off;  /* bytes into the I/O (read/write) */
	uint32_t len;	  /* data bytes */
	unsigned int npages;
	unsigned int nsegs;
	void *pages[CHUNK_PAGES];
	struct virtq_seg segs[CHUNK_PAGES + 2];
};

struct vblk_engine;

/* A byte range of the device that one guest disk owns; the engines of its queues share it. */
struct vblk_range {
	struct list_head link; /* the device's ranges */
	uint64_t off;
	uint64_t size;
	char *owner;
	unsigned int refs;
};

struct vblk_queue {
	struct vblk_dev *dev;
	unsigned int index;
	struct virtq vq;
	int kick_fd;
	int call_fd;
	struct bk_watch *call_watch;
	struct vblk_req *reqs;
	struct list_head free_reqs;
	struct list_head sent;
	void **slot_pages;
	unsigned int nr_slot_pages;
	struct vblk_engine *owner;
	uint16_t poll_used; /* PCI with INTx: the used index at the safety net's last tick */
	bool poll_seen;
	/* Completed device requests, for blanketctl (read without a lock: statistics). */
	struct {
		uint64_t reads, writes, flushes, discards, errors, bytes_read, bytes_written;
	} st;
};

struct vblk_dev {
	struct list_head link; /* the registry */
	char name[96];
	char *path;		     /* the socket, or "pci:" and the PCI address */
	struct vpci *pci;	     /* the PCI transport; NULL over vhost-user */
	struct bk_watch *irq_watch;  /* PCI: INTx from /dev/uioN */
	struct bk_timer *poll_timer; /* PCI: polled (irq=poll), or INTx's safety net */
	uint64_t lost_interrupts;    /* PCI: completions the safety net had to take */
	struct bk_loop *loop;
	unsigned int refs;
	unsigned int busy; /* inside a callback that may drop the last reference */
	bool dead;	   /* last reference gone while busy: freed when busy drops to 0 */
	struct vhu_conn conn;
	bool connected;
	bool failed_over; /* gave up waiting: I/O fails with EIO until the back-end is back */
	struct bk_watch *sock_watch;
	struct bk_timer *retry;
	uint64_t lost_ns;
	uint64_t reconnects;
	unsigned int reconnect_timeout_s;
	uint64_t features; /* negotiated */
	struct virtio_blk_config cfg;
	bool wz_discard; /* discard=write-zeroes */
	struct vio_dma *dma;
	unsigned int qsize;
	unsigned int nq;
	unsigned int chunk_pages;
	struct vblk_queue *q;
	struct list_head ranges;
	struct bk_ratelimit rl;
	enum vio_dma_mode dma_mode;
	const char *dma_why; /* why that mode, as logged */
	bool poll;	     /* PCI: irq=poll */
};

struct vblk_engine {
	struct bk_engine base;
	char name[64];
	struct vblk_dev *dev;
	struct vblk_queue *q;
	struct vblk_range *range;
	unsigned int depth;
	bool readonly;		    /* the device is read-only, or the store was opened so */
	unsigned int inflight;	    /* accepted, done() not yet called */
	struct bk_io_fifo waiting;  /* accepted, not all chunks sent yet */
	struct bk_io_fifo finished; /* result known without the device: reported by the hook */
	struct bk_hook *hook;
	bool hook_on;
	unsigned int dispatching;
	bool close_pending;
};

struct vblk_opts {
	char *socket;
	char *pci; /* PCI address of a virtio-blk device (instead of socket) */
	char *key; /* registry key: the socket path or "pci:" + address */
	int dma;   /* -1 auto, else the enum vio_dma_mode forced (dma=pagemap: a test) */
	bool poll; /* irq=poll */
	int queue; /* -1: next free */
	unsigned int queues;
	unsigned int qsize;
	unsigned int pool;
	bool wz_discard;
	bool event_idx;
	bool indirect;
	unsigned int reconnect_timeout_s;
	bool has_range;
	uint64_t range_off;
	uint64_t range_size;
	char *owner;
};

static struct list_head devices = LIST_HEAD_INIT(devices);
static int ctl_fill(struct bk_ctl_buf *b);
static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;

static inline struct vblk_engine *to_vblk(struct bk_engine *e)
{
	return container_of(e, struct vblk_engine, base);
}

static bool has(const struct vblk_dev *d, unsigned int bit)
{
	return d->features & VIO_BIT(bit);
}

/*
 * Per-I/O progress in engine_priv[0]: sectors sent (40 bits), chunks out (16 bits), first
 * errno (8 bits). engine_priv[1] links the I/O while it waits.
 */
#define P_SENT(p) ((p) & ((1ull << 40) - 1))
#define P_OUT(p) (((p) >> 40) & 0xffff)
#define P_ERR(p) ((int)((p) >> 56))
#define P_MAKE(sent, out, err) ((sent) | ((uint64_t)(out) << 40) | ((uint64_t)(err) << 56))

static void hook_enable(struct vblk_engine *e, bool on)
{
	if (e->hook_on != on) {
		e->hook_on = on;
		bk_hook_enable(e->hook, on);
	}
}

/* Copy between the I/O's iov at byte @off and @n bytes of pages. */
static void copy_pages(struct bk_io *io, uint64_t off, void *const *pages, uint32_t n,
		       bool to_pages)
{
	unsigned int idx = 0;
	size_t in_iov = 0, in_page = 0, pg = 0;

	if (!bk_io_resume_point(io, off, &idx, &in_iov))
		return;
	while (n) {
		size_t step = BK_MIN(io->iov[idx].iov_len - in_iov, VIO_PAGE_SIZE - in_page);
		uint8_t *a = (uint8_t *)io->iov[idx].iov_base + in_iov;
		uint8_t *b = (uint8_t *)pages[pg] + in_page;

		step = BK_MIN(step, n);
		if (to_pages)
			memcpy(b, a, step);
		else
			memcpy(a, b, step);
		n -= (uint32_t)step;
		in_iov += step;
		in_page += step;
		if (in_iov == io->iov[idx].iov_len) {
			idx++;
			in_iov = 0;
		}
		if (in_page == VIO_PAGE_SIZE) {
			pg++;
			in_page = 0;
		}
	}
}

static void req_release(struct vblk_req *rq)
{
	struct vblk_dev *d = rq->q->dev;

	for (unsigned int i = 0; i < rq->npages; i++)
		vio_dma_page_put(d->dma, rq->pages[i]);
	rq->npages = 0;
	rq->io = NULL;
	list_del(&rq->link);
	list_add(&rq->link, &rq->q->free_reqs);
}

/* Bytes of device work in @io: none for a flush, whatever its len says. */
static uint64_t io_total(const struct bk_io *io)
{
	return io->op == BK_IO_FLUSH ? 0 : io->len;
}

/* done() for an I/O whose last chunk is back; the engine may be closed from inside. */
static void io_finish(struct vblk_engine *e, struct bk_io *io, int res)
{
	e->inflight--;
	io->done(io, res);
}

static void io_result(struct vblk_engine *e, struct bk_io *io)
{
	uint64_t p = io->engine_priv[0];
	int err = P_ERR(p);

	if (err)
		io_finish(e, io, -err);
	else if (io->op == BK_IO_READ || io->op == BK_IO_WRITE)
		io_finish(e, io, (int)io->len);
	else
		io_finish(e, io, 0);
}

/* Statistics of a request the device answered with @status. */
static void count_done(struct vblk_queue *q, const struct vblk_req *rq, uint8_t status)
{
	const struct virtio_blk_outhdr *hdr = (const void *)rq->slot;

	if (status != VIRTIO_BLK_S_OK) {
		q->st.errors++;
		return;
	}
	switch (hdr->type) {
	case VIRTIO_BLK_T_IN:
		q->st.reads++;
		q->st.bytes_read += rq->len;
		break;
	case VIRTIO_BLK_T_OUT:
		q->st.writes++;
		q->st.bytes_written += rq->len;
		break;
	case VIRTIO_BLK_T_FLUSH:
		q->st.flushes++;
		break;
	default:
		q->st.discards++;
		break;
	}
}

/* One chunk is back with device status @status. */
static void req_complete(struct vblk_queue *q, struct vblk_req *rq)
{
	struct bk_io *io = rq->io;
	struct vblk_engine *e = q->owner;
	uint8_t status = READ_ONCE(rq->slot[32]);
	uint64_t p;
	int err = 0;

	count_done(q, rq, status);

	/* Its engine closed (or is closing from inside a done()): nobody is told. */
	if (!io || !e || e->close_pending) {
		req_release(rq);
		return;
	}
	if (status == VIRTIO_BLK_S_OK && io->op == BK_IO_READ)
		copy_pages(io, rq->io_off, rq->pages, rq->len, false);
	else if (status == VIRTIO_BLK_S_UNSUPP)
		err = EOPNOTSUPP;
	else if (status != VIRTIO_BLK_S_OK)
		err = EIO;
	req_release(rq);
	p = io->engine_priv[0];
	io->engine_priv[0] = P_MAKE(P_SENT(p), P_OUT(p) - 1, P_ERR(p) ? P_ERR(p) : err);
	/* Done when nothing is out and everything was sent (the I/O is not waiting). */
	if (P_OUT(io->engine_priv[0]) == 0 && P_SENT(p) * SECTOR >= io_total(io))
		io_result(e, io);
}

static void dev_lost(struct vblk_dev *d, const char *why);

/* Completions freed pages (shared by all queues) and ring room: what waits may go now. */
static void wake_waiters(struct vblk_dev *d)
{
	for (unsigned int i = 0; i < d->nq; i++) {
		struct vblk_engine *o = d->q[i].owner;

		if (o && o->waiting.head && !o->close_pending)
			hook_enable(o, true);
	}
}

static void dev_free(struct vblk_dev *d);

/* Keep @d alive across callbacks that may close its last engine. */
static void dev_hold(struct vblk_dev *d)
{
	d->busy++;
}

/* Returns false if @d was freed. */
static bool dev_release(struct vblk_dev *d)
{
	if (--d->busy == 0 && d->dead) {
		dev_free(d);
		return false;
	}
	return true;
}

static void reap(struct vblk_queue *q)
{
	struct vblk_dev *d = q->dev;
	struct vblk_engine *e = q->owner;
	void *cookie;
	uint32_t len;
	int r;

	dev_hold(d);
	if (e)
		e->dispatching++;
	do {
		while ((r = virtq_get(&q->vq, &cookie, &len)) > 0)
			req_complete(q, cookie);
		if (r < 0) {
			dev_lost(d, "impossible used ring entry");
			break;
		}
	} while (virtq_arm(&q->vq));
	if (e && !--e->dispatching && e->close_pending)
		e->base.ops->close(&e->base);
	if (dev_release(d))
		wake_waiters(d);
}

static void call_event(void *data, int fd, unsigned int events)
{
	struct vblk_queue *q = data;
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		bk_log_dev_rl(&q->dev->rl, BK_LOG_WARNING, q->dev->name, "q%u: call eventfd: %m",
			      q->index);
	if (q->dev->connected)
		reap(q);
}

/* Lay one chunk of @io out in @rq: header, data pages, status. */
static int req_build(struct vblk_engine *e, struct vblk_req *rq, struct bk_io *io, uint64_t sent,
		     uint64_t *ret_bytes)
{
	struct vblk_dev *d = e->dev;
	struct virtio_blk_outhdr *hdr = (void *)rq->slot;
	struct virtio_blk_dwz *dwz = (void *)(rq->slot + 16);
	uint64_t left = io_total(io) - sent, bytes = 0;
	unsigned int n = 0;

	memset(rq->slot, 0, SLOT_SIZE);
	rq->slot[32] = 0xff; /* not a status a device returns: a missing write is an error */
	hdr->sector = (e->range->off + io->offset + sent) / SECTOR;
	rq->segs[n++] = (struct virtq_seg){ vio_dma_addr(d->dma, hdr), sizeof(*hdr), false };
	switch (io->op) {
	case BK_IO_READ:
	case BK_IO_WRITE: {
		unsigned int want =
			(unsigned int)BK_MIN(BK_DIV_ROUND_UP(left, VIO_PAGE_SIZE), d->chunk_pages);

		if (d->dma->nr_free < want)
			return -ENOSPC;
		hdr->type = io->op == BK_IO_READ ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
		for (unsigned int i = 0; i < want; i++) {
			uint32_t len = (uint32_t)BK_MIN(left - bytes, VIO_PAGE_SIZE);

			rq->pages[i] = vio_dma_page_get(d->dma);
			rq->segs[n++] = (struct virtq_seg){ vio_dma_addr(d->dma, rq->pages[i]), len,
							    io->op == BK_IO_READ };
			bytes += len;
		}
		rq->npages = want;
		rq->io_off = sent;
		rq->len = (uint32_t)bytes;
		if (io->op == BK_IO_WRITE)
			copy_pages(io, sent, rq->pages, rq->len, true);
		break;
	}
	case BK_IO_FLUSH:
		hdr->type = VIRTIO_BLK_T_FLUSH;
		hdr->sector = 0;
		bytes = 0;
		break;
	case BK_IO_DISCARD: {
		bool wz = has(d, VIRTIO_BLK_F_WRITE_ZEROES) &&
			  (d->wz_discard || !has(d, VIRTIO_BLK_F_DISCARD));
		uint64_t max = wz ? d->cfg.max_write_zeroes_sectors : d->cfg.max_discard_sectors;

		if (!max || max > UINT32_MAX)
			max = UINT32_MAX & ~7u;
		bytes = BK_MIN(left, max * SECTOR);
		hdr->type = wz ? VIRTIO_BLK_T_WRITE_ZEROES : VIRTIO_BLK_T_DISCARD;
		hdr->sector = 0;
		dwz->sector = (e->range->off + io->offset + sent) / SECTOR;
		dwz->num_sectors = (uint32_t)(bytes / SECTOR);
		dwz->flags = wz ? VIRTIO_BLK_WZ_F_UNMAP : 0;
		rq->segs[n++] =
			(struct virtq_seg){ vio_dma_addr(d->dma, dwz), sizeof(*dwz), false };
		break;
	}
	}
	rq->segs[n++] = (struct virtq_seg){ vio_dma_addr(d->dma, rq->slot + 32), 1, true };
	rq->nsegs = n;
	rq->io = io;
	*ret_bytes = bytes;
	return 0;
}

/* Send chunks of the waiting I/Os until something runs out; true if anything went. */
static bool send_waiting(struct vblk_engine *e)
{
	struct vblk_queue *q = e->q;
	bool any = false;

	while (e->waiting.head) {
		struct bk_io *io = e->waiting.head;
		uint64_t p = io->engine_priv[0], sent = P_SENT(p) * SECTOR, bytes = 0;
		struct vblk_req *rq;
		int r;

		if (list_empty(&q->free_reqs))
			break;
		rq = list_first_entry(&q->free_reqs, struct vblk_req, link);
		if (req_build(e, rq, io, sent, &bytes) < 0)
			break;
		r = virtq_add(&q->vq, rq->segs, rq->nsegs, rq);
		if (r < 0) {
			/* -ENOSPC: the ring is full until something completes. */
			rq->io = NULL;
			for (unsigned int i = 0; i < rq->npages; i++)
				vio_dma_page_put(e->dev->dma, rq->pages[i]);
			rq->npages = 0;
			break;
		}
		list_del(&rq->link);
		list_add_tail(&rq->link, &q->sent);
		any = true;
		sent += bytes;
		io->engine_priv[0] = P_MAKE(sent / SECTOR, P_OUT(p) + 1, P_ERR(p));
		if (sent >= io_total(io))
			bk_io_fifo_pop(&e->waiting);
	}
	return any;
}

static void kick_queue(struct vblk_queue *q)
{
	uint64_t one = 1;

	if (q->dev->pci) {
		if (virtq_publish(&q->vq))
			vpci_notify(q->dev->pci, (uint16_t)q->index);
		return;
	}
	if (virtq_publish(&q->vq) && write(q->kick_fd, &one, sizeof(one)) < 0)
		bk_log_dev_rl(&q->dev->rl, BK_LOG_WARNING, q->dev->name, "q%u: kick: %m", q->index);
}

static void vblk_kick(struct bk_engine *be)
{
	struct vblk_engine *e = to_vblk(be);
	struct bk_io_fifo fin = bk_io_fifo_take(&e->finished);
	struct bk_io *io;

	e->dispatching++;
	while (!e->close_pending && (io = bk_io_fifo_pop(&fin)))
		io_result(e, io);
	e->dispatching--;
	if (e->close_pending) {
		if (!e->dispatching)
			be->ops->close(be);
		return;
	}
	if (e->dev->connected && send_waiting(e))
		kick_queue(e->q);
	/* What is still waiting goes when a completion frees room (reap enables the hook). */
	hook_enable(e, e->finished.head != NULL);
}

static void vblk_hook(void *data)
{
	vblk_kick(data);
}

/* Answer @io from the hook with @err (0: success) without the device. */
static void finish_later(struct vblk_engine *e, struct bk_io *io, int err)
{
	io->engine_priv[0] = P_MAKE(0, 0, err);
	bk_io_fifo_push(&e->finished, io);
	hook_enable(e, true);
}

static int vblk_queue(struct bk_engine *be, struct bk_io *io)
{
	struct vblk_engine *e = to_vblk(be);
	struct vblk_dev *d = e->dev;
	int r;

	if (e->inflight >= e->depth)
		return -EAGAIN;
	r = bk_io_check(io);
	if (r < 0)
		return r;
	if (io->offset % SECTOR || io->len % SECTOR)
		return -EINVAL;
	e->inflight++;
	io->engine_priv[0] = 0;
	/* Never outside the guest's range: another guest's data may sit right after it. */
	if (io->op != BK_IO_FLUSH &&
	    (io->offset > e->range->size || io->len > e->range->size - io->offset)) {
		finish_later(e, io, EIO);
		return 0;
	}
	if (d->failed_over) {
		finish_later(e, io, EIO);
		return 0;
	}
	switch (io->op) {
	case BK_IO_WRITE:
		if (e->readonly) {
			finish_later(e, io, EBADF);
			return 0;
		}
		break;
	case BK_IO_FLUSH:
		/* Without FLUSH the device has no volatile cache (virtio 1.2, 5.2.6.2). */
		if (!has(d, VIRTIO_BLK_F_FLUSH)) {
			finish_later(e, io, 0);
			return 0;
		}
		break;
	case BK_IO_DISCARD:
		if (e->readonly) {
			finish_later(e, io, EBADF);
			return 0;
		}
		if (!has(d, VIRTIO_BLK_F_DISCARD) && !has(d, VIRTIO_BLK_F_WRITE_ZEROES)) {
			finish_later(e, io, EOPNOTSUPP);
			return 0;
		}
		if (!io->len) {
			finish_later(e, io, 0);
			return 0;
		}
		break;
	}
	bk_io_fifo_push(&e->waiting, io);
	hook_enable(e, true);
	return 0;
}

static unsigned int vblk_inflight(const struct bk_engine *be)
{
	return container_of(be, struct vblk_engine, base)->inflight;
}

/* ---- the device: connection, queues, reconnect ---- */

static void queue_stop(struct vblk_queue *q)
{
	bk_watch_free(q->call_watch);
	q->call_watch = NULL;
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->call_fd >= 0)
		close(q->call_fd);
	q->kick_fd = q->call_fd = -1;
}

static void dev_fail_all(struct vblk_dev *d);

static void sock_event(void *data, int fd, unsigned int events)
{
	struct vblk_dev *d = data;
	const char *why = vhu_lost(fd);

	if (why)
		dev_lost(d, why);
}

static void retry_cb(void *data);

static void dev_lost(struct vblk_dev *d, const char *why)
{
	if (!d->connected)
		return;
	if (d->pci) {
		/* No back-end to wait for: its I/O fails (from the timer, outside the reap). */
		log_err("%s: device failed (%s, status %#x): failing its I/O with EIO", d->name,
			why, vpci_status(d->pci));
		d->connected = false;
		d->lost_ns = bk_now_ns();
		bk_timer_rearm(d->retry, 0, RETRY_MS);
		return;
	}
	log_warn("%s: vhost-user back-end lost (%s): reconnecting, %s", d->name, why,
		 "in-flight I/O will be sent again");
	d->connected = false;
	d->lost_ns = bk_now_ns();
	bk_watch_free(d->sock_watch);
	d->sock_watch = NULL;
	vhu_close(&d->conn);
	for (unsigned int i = 0; i < d->nq; i++)
		queue_stop(&d->q[i]);
	bk_timer_rearm(d->retry, RETRY_MS, RETRY_MS);
}

/* ---- the PCI transport ---- */

/* Reap every queue: INTx says nothing about which queue completed. */
static void pci_reap_all(struct vblk_dev *d)
{
	dev_hold(d);
	for (unsigned int i = 0; i < d->nq && d->connected && !d->dead; i++)
		reap(&d->q[i]);
	dev_release(d);
}

static void irq_event(void *data, int fd, unsigned int events)
{
	struct vblk_dev *d = data;
	int isr = vpci_irq_ack(d->pci);

	if (isr < 0)
		bk_log_dev_rl(&d->rl, BK_LOG_WARNING, d->name, "uio interrupt: %s", strerror(-isr));
	if (d->connected)
		pci_reap_all(d);
}

static void poll_cb(void *data)
{
	struct vblk_dev *d = data;
	unsigned int lost = 0;

	if (!d->connected)
		return;
	if (!d->irq_watch) { /* irq=poll */
		pci_reap_all(d);
		return;
	}
	/*
	 * With INTx this is a safety net. A completion the device posted before the previous
	 * tick and that no interrupt has brought since lost its interrupt: take it now. Newer
	 * ones are left to their interrupt (under nested emulation it may take milliseconds).
	 */
	for (unsigned int i = 0; i < d->nq; i++) {
		struct vblk_queue *q = &d->q[i];
		uint16_t used = virtq_used_idx(&q->vq);

		if (q->poll_seen && q->vq.last_used != used &&
		    (uint16_t)(q->poll_used - q->vq.last_used) <=
			    (uint16_t)(used - q->vq.last_used) &&
		    q->poll_used != q->vq.last_used)
			lost += (uint16_t)(q->poll_used - q->vq.last_used);
		q->poll_used = used;
		q->poll_seen = true;
	}
	if (!lost)
		return;
	d->lost_interrupts += lost;
	bk_log_dev_rl(&d->rl, BK_LOG_WARNING, d->name,
		      "%u completion(s) waited over 100 ms with no interrupt (%llu so far)", lost,
		      (unsigned long long)d->lost_interrupts);
	pci_reap_all(d);
}

/*
 * Before any guest I/O: read sector 0 twice into a page filled with two different patterns.
 * A device that reports success while the page kept its pattern both times wrote somewhere
 * else: the device addresses are wrong (e.g. PFNs where a PV dom0 needs MFNs), and nothing
 * may be sent to it.
 */
static int pci_dma_check(struct vblk_dev *d, const char *why)
{
	struct vblk_queue *q = &d->q[0];
	struct vblk_req *rq = list_first_entry(&q->free_reqs, struct vblk_req, link);
	uint8_t *page = vio_dma_page_get(d->dma);
	unsigned int unchanged = 0;
	int r = 0;

	if (!page)
		return -ENOMEM;
	for (unsigned int pass = 0; pass < 2 && r == 0; pass++) {
		struct virtio_blk_outhdr *hdr = (void *)rq->slot;
		struct virtq_seg segs[3];
		uint8_t fill = pass ? 0x3c : 0xc3;
		void *cookie = NULL;
		uint32_t len;
		int got = 0;

		memset(page, fill, VIO_PAGE_SIZE);
		memset(rq->slot, 0, SLOT_SIZE);
		rq->slot[32] = 0xff;
		hdr->type = VIRTIO_BLK_T_IN;
		segs[0] = (struct virtq_seg){ vio_dma_addr(d->dma, hdr), sizeof(*hdr), false };
		segs[1] = (struct virtq_seg){ vio_dma_addr(d->dma, page), SECTOR, true };
		segs[2] = (struct virtq_seg){ vio_dma_addr(d->dma, rq->slot + 32), 1, true };
		r = virtq_add(&q->vq, segs, 3, rq);
		if (r < 0)
			break;
		if (virtq_publish(&q->vq))
			vpci_notify(d->pci, 0);
		for (int i = 0; i < 5000 && got == 0; i++) {
			got = virtq_get(&q->vq, &cookie, &len);
			if (got == 0)
				nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		}
		if (got <= 0) {
			r = bk_log_errno(BK_LOG_ERR, -EIO,
					 "%s: DMA check: the device did not complete a read of "
					 "sector 0 in 5 s (device status %#x): its rings are not "
					 "where we put them? DMA mode %s (%s)",
					 d->name, vpci_status(d->pci),
					 vio_dma_mode_name(d->dma->mode), why);
			break;
		}
		if (READ_ONCE(rq->slot[32]) != VIRTIO_BLK_S_OK) {
			r = bk_log_errno(BK_LOG_ERR, -EIO,
					 "%s: DMA check: reading sector 0 failed with status %#x",
					 d->name, rq->slot[32]);
			break;
		}
		bool same = true;

		for (unsigned int k = 0; k < SECTOR && same; k++)
			same = page[k] == fill;
		unchanged += same;
	}
	vio_dma_page_put(d->dma, page);
	if (r == 0 && unchanged == 2)
		r = bk_log_errno(BK_LOG_ERR, -EIO,
				 "%s: DMA check: the device completed two reads of sector 0 but "
				 "never wrote our page: its DMA went to other frames. The device "
				 "addresses are wrong for this machine: DMA mode %s (%s)",
				 d->name, vio_dma_mode_name(d->dma->mode), why);
	if (r == 0)
		log_info("%s: DMA check passed: the device reads into our pages (%s mode)", d->name,
			 vio_dma_mode_name(d->dma->mode));
	return r;
}

static int dev_start_pci(struct vblk_dev *d, bool poll)
{
	int r = vpci_set_features(d->pci, d->features);

	if (r < 0)
		return r;
	for (unsigned int i = 0; i < d->nq; i++) {
		struct vblk_queue *q = &d->q[i];

		virtq_reset(&q->vq);
		r = vpci_queue_setup(d->pci, (uint16_t)i, (uint16_t)d->qsize,
				     virtq_desc_addr(&q->vq), virtq_avail_addr(&q->vq),
				     virtq_used_addr(&q->vq));
		if (r < 0)
			return r;
	}
	r = vpci_driver_ok(d->pci);
	if (r < 0)
		return r;
	if (!poll && d->pci->uio_fd >= 0) {
		r = bk_loop_add_fd(d->loop, d->pci->uio_fd, BK_EV_READ, irq_event, d,
				   &d->irq_watch);
		if (r < 0)
			return r;
	}
	/* Polled, or with INTx a slow safety net so that a lost interrupt never hangs I/O. */
	r = bk_loop_add_timer(d->loop, d->irq_watch ? 100 : 1, d->irq_watch ? 100 : 1, poll_cb, d,
			      &d->poll_timer);
	if (r < 0)
		return r;
	d->connected = true;
	for (unsigned int i = 0; i < d->nq; i++)
		virtq_arm(&d->q[i].vq);
	return 0;
}

/* Set every queue up on a fresh connection and send again what was out. */
static int dev_start_queues(struct vblk_dev *d)
{
	struct virtq *vqs[MAX_QUEUES];
	int kicks[MAX_QUEUES], calls[MAX_QUEUES];
	int r;

	for (unsigned int i = 0; i < d->nq; i++) {
		struct vblk_queue *q = &d->q[i];

		virtq_reset(&q->vq);
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0 || q->call_fd < 0)
			return log_err_errno(neg_errno(), "%s: eventfd: %m", d->name);
		r = bk_loop_add_fd(d->loop, q->call_fd, BK_EV_READ, call_event, q, &q->call_watch);
		if (r < 0)
			return r;
		vqs[i] = &q->vq;
		kicks[i] = q->kick_fd;
		calls[i] = q->call_fd;
	}
	r = vhu_start(&d->conn, d->features, d->dma, vqs, kicks, calls, d->nq);
	if (r < 0)
		return r;
	r = bk_loop_add_fd(d->loop, d->conn.sock, BK_EV_READ, sock_event, d, &d->sock_watch);
	if (r < 0)
		return r;
	d->connected = true;
	for (unsigned int i = 0; i < d->nq; i++) {
		struct vblk_queue *q = &d->q[i];
		struct vblk_req *rq;
		bool any = false;

		/* Same chunks, same order: the data is still in their pages. */
		list_for_each_entry (rq, &q->sent, link) {
			rq->slot[32] = 0xff;
			r = virtq_add(&q->vq, rq->segs, rq->nsegs, rq);
			if (r < 0) /* cannot happen: they fitted in a ring of the same size */
				return log_err_errno(r, "%s: q%u: re-sending: %m", d->name, i);
			any = true;
		}
		virtq_arm(&q->vq);
		if (any)
			kick_queue(q);
		if (q->owner && q->owner->waiting.head)
			hook_enable(q->owner, true);
	}
	return 0;
}

/* Connect and negotiate; on a reconnect, check it is still the same device. */
static int dev_connect(struct vblk_dev *d, bool quiet)
{
	struct virtio_blk_config cfg = { 0 };
	struct vhu_conn c;
	int r;

	r = vhu_connect(d->name, d->path, MSG_TIMEOUT_MS, &c);
	if (r < 0) {
		if (!quiet)
			log_err("%s: cannot connect to vhost-user back-end %s: %s", d->name,
				d->path, strerror(-r));
		return r;
	}
	r = vhu_get_config(&c, 0, &cfg, sizeof(cfg));
	if (r < 0)
		goto fail;
	if (d->features) {
		if ((c.features & d->features) != d->features || cfg.capacity != d->cfg.capacity) {
			r = bk_log_errno(BK_LOG_ERR, -ENXIO,
					 "%s: the back-end at %s came back as another device "
					 "(features %#llx, %llu sectors; was %#llx, %llu)",
					 d->name, d->path, (unsigned long long)c.features,
					 (unsigned long long)cfg.capacity,
					 (unsigned long long)d->features,
					 (unsigned long long)d->cfg.capacity);
			goto fail;
		}
	} else {
		d->cfg = cfg;
	}
	d->conn = c;
	return 0;
fail:
	vhu_close(&c);
	return r;
}

static void retry_cb(void *data)
{
	struct vblk_dev *d = data;
	int r;

	if (d->pci) {
		bk_timer_stop(d->retry);
		if (!d->failed_over) {
			d->failed_over = true;
			dev_fail_all(d);
		}
		return;
	}

	r = dev_connect(d, true);
	if (r == 0) {
		r = dev_start_queues(d);
		if (r == 0) {
			bk_timer_stop(d->retry);
			d->reconnects++;
			d->failed_over = false;
			log_notice("%s: vhost-user back-end %s is back after %.1f s", d->name,
				   d->path, (double)(bk_now_ns() - d->lost_ns) / 1e9);
			return;
		}
		d->connected = true; /* so that dev_lost tears the half-built state down */
		dev_lost(d, "set-up failed");
	}
	if (!d->failed_over && d->reconnect_timeout_s &&
	    bk_now_ns() - d->lost_ns > (uint64_t)d->reconnect_timeout_s * 1000000000ull) {
		log_err("%s: vhost-user back-end %s away for %u s: failing its I/O", d->name,
			d->path, d->reconnect_timeout_s);
		d->failed_over = true;
		dev_fail_all(d);
	}
}

/* The back-end is gone for good: every chunk out and every waiting I/O fails with EIO. */
static void dev_fail_all(struct vblk_dev *d)
{
	dev_hold(d);
	for (unsigned int i = 0; i < d->nq && !d->dead; i++) {
		struct vblk_queue *q = &d->q[i];
		struct vblk_engine *e = q->owner;
		struct vblk_req *rq, *tmp;
		struct bk_io *io;

		if (e)
			e->dispatching++;
		list_for_each_entry_safe (rq, tmp, &q->sent, link) {
			rq->slot[32] = VIRTIO_BLK_S_IOERR;
			req_complete(q, rq);
		}
		if (e && !--e->dispatching && e->close_pending) {
			e->base.ops->close(&e->base);
			continue;
		}
		virtq_reset(&q->vq);
		if (!e)
			continue;
		while ((io = bk_io_fifo_pop(&e->waiting))) {
			/* Chunks of it may have failed above; the rest never went. */
			if (P_OUT(io->engine_priv[0]) == 0)
				finish_later(e, io, EIO);
			else
				io->engine_priv[0] =
					P_MAKE(io->len / SECTOR, P_OUT(io->engine_priv[0]), EIO);
		}
	}
	dev_release(d);
}

static void dev_free(struct vblk_dev *d)
{
	if (!d)
		return;
	bk_watch_free(d->irq_watch); /* before its fd closes */
	bk_timer_free(d->poll_timer);
	/* Reset first: the device must write none of the memory freed below. */
	vpci_close(d->pci);
	d->pci = NULL;
	bk_watch_free(d->sock_watch);
	bk_timer_free(d->retry);
	vhu_close(&d->conn);
	for (unsigned int i = 0; d->q && i < d->nq; i++) {
		struct vblk_queue *q = &d->q[i];

		queue_stop(q);
		/* Pages first: the back-end process keeps its own mapping of the memfd. */
		for (unsigned int k = 0; q->reqs && k < d->qsize; k++)
			for (unsigned int p = 0; p < q->reqs[k].npages; p++)
				vio_dma_page_put(d->dma, q->reqs[k].pages[p]);
		for (unsigned int k = 0; k < q->nr_slot_pages; k++)
			if (q->slot_pages[k])
				vio_dma_page_put(d->dma, q->slot_pages[k]);
		free(q->slot_pages);
		free(q->reqs);
		virtq_fini(&q->vq);
	}
	free(d->q);
	vio_dma_free(d->dma);
	while (!list_empty(&d->ranges)) {
		struct vblk_range *rg = list_first_entry(&d->ranges, struct vblk_range, link);

		list_del(&rg->link);
		free(rg->owner);
		free(rg);
	}
	free(d->path);
	free(d);
}

static int queue_init(struct vblk_dev *d, struct vblk_queue *q, unsigned int index,
		      const struct vblk_opts *o)
{
	char name[128];
	int r;

	q->dev = d;
	q->index = index;
	q->kick_fd = q->call_fd = -1;
	list_init(&q->free_reqs);
	list_init(&q->sent);
	snprintf(name, sizeof(name), "%.96s q%u", d->name, index);
	r = virtq_init(&q->vq, name, (uint16_t)index, (uint16_t)d->qsize, d->dma,
		       has(d, VIRTIO_F_EVENT_IDX), has(d, VIRTIO_F_INDIRECT_DESC));
	if (r < 0)
		return r;
	q->reqs = calloc(d->qsize, sizeof(*q->reqs));
	q->nr_slot_pages = d->qsize * SLOT_SIZE / VIO_PAGE_SIZE;
	if (!q->nr_slot_pages)
		q->nr_slot_pages = 1;
	q->slot_pages = calloc(q->nr_slot_pages, sizeof(*q->slot_pages));
	if (!q->reqs || !q->slot_pages)
		return -ENOMEM;
	for (unsigned int k = 0; k < q->nr_slot_pages; k++)
		if (!(q->slot_pages[k] = vio_dma_page_get(d->dma)))
			return -ENOMEM;
	for (unsigned int k = 0; k < d->qsize; k++) {
		struct vblk_req *rq = &q->reqs[k];

		rq->q = q;
		rq->slot = (uint8_t *)q->slot_pages[k * SLOT_SIZE / VIO_PAGE_SIZE] +
			   k * SLOT_SIZE % VIO_PAGE_SIZE;
		list_add_tail(&rq->link, &q->free_reqs);
	}
	return 0;
}

static int dev_new(struct bk_loop *loop, const char *path, const struct vblk_opts *o,
		   struct vblk_dev **ret)
{
	struct vblk_dev *d = calloc(1, sizeof(*d));
	uint64_t want;
	const char *why;
	enum vio_dma_mode mode;
	unsigned int ring_pages, pages;
	int r;

	if (!d)
		return -ENOMEM;
	d->path = strdup(path);
	if (!d->path) {
		free(d);
		return -ENOMEM;
	}
	snprintf(d->name, sizeof(d->name), "virtio-blk %s", path);
	d->loop = loop;
	d->conn.sock = -1;
	d->rl = (struct bk_ratelimit)BK_RATELIMIT_INIT(5000, 10);
	list_init(&d->ranges);
	d->reconnect_timeout_s = o->reconnect_timeout_s;
	d->wz_discard = o->wz_discard;
	if (o->pci) {
		snprintf(d->name, sizeof(d->name), "virtio-blk %s", o->pci);
		r = vpci_open(d->name, "", o->pci, 2, !o->poll, &d->pci);
		if (r < 0)
			goto fail;
		if (!(d->pci->features & VIO_BIT(VIRTIO_F_VERSION_1))) {
			r = bk_log_errno(BK_LOG_ERR, -EPROTO, "%s: the device lacks VERSION_1",
					 d->name);
			goto fail;
		}
		r = vpci_get_config(d->pci, 0, &d->cfg, sizeof(d->cfg));
		if (r < 0)
			goto fail;
		/* What the vhost-user handshake would have said. */
		d->conn.features = d->pci->features;
		d->conn.max_queues = d->pci->num_queues;
		if (vpci_queue_max(d->pci, 0) < o->qsize) {
			unsigned int max = vpci_queue_max(d->pci, 0);

			if (max < 4) {
				r = bk_log_errno(BK_LOG_ERR, -EPROTO, "%s: queue 0 has %u entries",
						 d->name, max);
				goto fail;
			}
			while (max & (max - 1))
				max &= max - 1;
			((struct vblk_opts *)o)->qsize = max;
		}
	} else {
		r = dev_connect(d, false);
		if (r < 0)
			goto fail;
	}
	want = WANTED_FEATURES;
	/* A device behind no IOMMU takes our addresses as they are; some insist on the bit. */
	if (o->pci)
		want |= VIO_BIT(VIRTIO_F_ACCESS_PLATFORM);
	if (!o->event_idx)
		want &= ~VIO_BIT(VIRTIO_F_EVENT_IDX);
	if (!o->indirect)
		want &= ~VIO_BIT(VIRTIO_F_INDIRECT_DESC);
	d->features = d->conn.features & want;
	if (!has(d, VIRTIO_BLK_F_BLK_SIZE) || d->cfg.blk_size < SECTOR ||
	    d->cfg.blk_size > VIO_PAGE_SIZE || (d->cfg.blk_size & (d->cfg.blk_size - 1)))
		d->cfg.blk_size = SECTOR;
	d->nq = 1;
	if (has(d, VIRTIO_BLK_F_MQ))
		d->nq = BK_MIN(BK_MIN((unsigned int)d->cfg.num_queues, d->conn.max_queues),
			       BK_MIN(o->queues, MAX_QUEUES));
	if (!d->nq)
		d->nq = 1;
	if (!has(d, VIRTIO_BLK_F_MQ))
		d->features &= ~VIO_BIT(VIRTIO_BLK_F_MQ);
	d->qsize = o->qsize;
	d->chunk_pages =
		BK_MIN(CHUNK_PAGES, (has(d, VIRTIO_F_INDIRECT_DESC) ? 256u : d->qsize) - 2);
	if (has(d, VIRTIO_BLK_F_SEG_MAX) && d->cfg.seg_max)
		d->chunk_pages = BK_MIN(d->chunk_pages, d->cfg.seg_max);
	if (has(d, VIRTIO_BLK_F_SIZE_MAX) && d->cfg.size_max && d->cfg.size_max < VIO_PAGE_SIZE) {
		r = bk_log_errno(BK_LOG_ERR, -EPROTO, "%s: size_max %u is below a page", d->name,
				 d->cfg.size_max);
		goto fail;
	}
	/* Per queue: three ring pages, indirect tables, request slots, and the data pool. */
	ring_pages = 3 + (has(d, VIRTIO_F_INDIRECT_DESC) ? d->qsize : 0) +
		     BK_DIV_ROUND_UP(d->qsize * SLOT_SIZE, VIO_PAGE_SIZE);
	pages = d->nq * (ring_pages + BK_MAX(o->pool, 2 * d->chunk_pages));
	mode = vio_dma_choose(o->pci ? VIO_DMA_FOR_PCI : VIO_DMA_FOR_VHOST_USER, &why);
	if (o->dma >= 0 && (enum vio_dma_mode)o->dma != mode) {
		log_warn("%s: DMA mode %s forced by dma=%s instead of %s (%s)", d->name,
			 vio_dma_mode_name((enum vio_dma_mode)o->dma),
			 vio_dma_mode_name((enum vio_dma_mode)o->dma), vio_dma_mode_name(mode),
			 why);
		mode = (enum vio_dma_mode)o->dma;
		why = "forced by the dma= option";
	}
	log_info("%s: DMA mode %s: %s", d->name, vio_dma_mode_name(mode), why);
	d->dma_mode = mode;
	d->dma_why = why;
	d->poll = o->poll;
	r = vio_dma_new(d->name, pages, mode, &d->dma);
	if (r < 0)
		goto fail;
	d->q = calloc(d->nq, sizeof(*d->q));
	if (!d->q) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned int i = 0; i < d->nq; i++) {
		r = queue_init(d, &d->q[i], i, o);
		if (r < 0) {
			d->nq = i + 1; /* free what this one got */
			log_err_errno(r, "%s: q%u: %m", d->name, i);
			goto fail;
		}
	}
	r = bk_loop_add_timer(loop, RETRY_MS, RETRY_MS, retry_cb, d, &d->retry);
	if (r < 0)
		goto fail;
	bk_timer_stop(d->retry);
	r = o->pci ? dev_start_pci(d, o->poll) : dev_start_queues(d);
	if (r < 0) {
		log_err_errno(r, "%s: setting up the device: %m", d->name);
		goto fail;
	}
	if (o->pci) {
		r = pci_dma_check(d, why);
		if (r < 0)
			goto fail;
	}
	log_info("%s: %llu bytes, block %u, %u queue(s) of %u, features %#llx "
		 "(flush %s, discard %s, write-zeroes %s%s); DMA: %s mode, %u pages: %s",
		 d->name, (unsigned long long)d->cfg.capacity * SECTOR, d->cfg.blk_size, d->nq,
		 d->qsize, (unsigned long long)d->features,
		 has(d, VIRTIO_BLK_F_FLUSH) ? "yes" : "no",
		 has(d, VIRTIO_BLK_F_DISCARD) ? "yes" : "no",
		 has(d, VIRTIO_BLK_F_WRITE_ZEROES) ? "yes" : "no",
		 has(d, VIRTIO_BLK_F_RO) ? ", read-only" : "", vio_dma_mode_name(mode), pages, why);
	*ret = d;
	return 0;
fail:
	dev_free(d);
	return r;
}

/* ---- options, open, close ---- */

static int parse_uint(const char *s, unsigned int max, unsigned int *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -EINVAL;
	*ret = (unsigned int)v;
	return 0;
}

static int parse_onoff(const char *s, bool *ret)
{
	if (strcmp(s, "on") == 0)
		*ret = true;
	else if (strcmp(s, "off") == 0)
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

static void opts_free(struct vblk_opts *o)
{
	free(o->socket);
	free(o->pci);
	free(o->key);
	free(o->owner);
}

static int parse_options(const char *name, const char *options, struct vblk_opts *o)
{
	_cleanup_free_ char *copy = strdup(options ? options : "");
	char *save = NULL;

	*o = (struct vblk_opts){ .queue = -1,
				 .dma = -1,
				 .queues = MAX_QUEUES,
				 .qsize = VIRTQ_MAX_SIZE,
				 .pool = 1024,
				 .event_idx = true,
				 .indirect = true,
				 .reconnect_timeout_s = 60 };
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');
		unsigned int u = 0;
		int r = -EINVAL;

		if (val)
			*val++ = 0;
		if (!val) {
			r = -EINVAL;
		} else if (strcmp(tok, "socket") == 0 && *val) {
			free(o->socket);
			o->socket = strdup(val);
			r = o->socket ? 0 : -ENOMEM;
		} else if (strcmp(tok, "pci") == 0 && *val) {
			free(o->pci);
			o->pci = strdup(val);
			r = o->pci ? 0 : -ENOMEM;
		} else if (strcmp(tok, "irq") == 0) {
			r = strcmp(val, "intx") == 0 || strcmp(val, "poll") == 0 ? 0 : -EINVAL;
			o->poll = val[0] == 'p';
		} else if (strcmp(tok, "dma") == 0) {
			r = 0;
			if (strcmp(val, "auto") == 0)
				o->dma = -1;
			else if (strcmp(val, "pagemap") == 0)
				o->dma = VIO_DMA_PAGEMAP;
			else if (strcmp(val, "p2m") == 0)
				o->dma = VIO_DMA_P2M;
			else
				r = -EINVAL;
		} else if (strcmp(tok, "queue") == 0) {
			r = parse_uint(val, MAX_QUEUES - 1, &u);
			o->queue = (int)u;
		} else if (strcmp(tok, "queues") == 0) {
			r = parse_uint(val, MAX_QUEUES, &u);
			o->queues = u;
			r = r < 0 || !u ? -EINVAL : 0;
		} else if (strcmp(tok, "qsize") == 0) {
			r = parse_uint(val, VIRTQ_MAX_SIZE, &u);
			o->qsize = u;
			r = r < 0 || u < 4 || (u & (u - 1)) ? -EINVAL : 0;
		} else if (strcmp(tok, "pool") == 0) {
			r = parse_uint(val, 1u << 20, &u);
			o->pool = u;
		} else if (strcmp(tok, "discard") == 0) {
			r = strcmp(val, "auto") == 0 || strcmp(val, "write-zeroes") == 0 ? 0
											 : -EINVAL;
			o->wz_discard = val[0] == 'w';
		} else if (strcmp(tok, "event-idx") == 0) {
			r = parse_onoff(val, &o->event_idx);
		} else if (strcmp(tok, "indirect") == 0) {
			r = parse_onoff(val, &o->indirect);
		} else if (strcmp(tok, "range") == 0) {
			unsigned long long off = 0, size = 0;
			int end = 0;

			r = sscanf(val, "%llu+%llu%n", &off, &size, &end) == 2 && !val[end] &&
					    size && !(off % SECTOR) && !(size % SECTOR) &&
					    off + size > off
				    ? 0
				    : -EINVAL;
			o->has_range = true;
			o->range_off = off;
			o->range_size = size;
		} else if (strcmp(tok, "owner") == 0) {
			free(o->owner);
			o->owner = strdup(val);
			r = o->owner ? 0 : -ENOMEM;
		} else if (strcmp(tok, "reconnect-timeout") == 0) {
			r = parse_uint(val, 86400, &u);
			o->reconnect_timeout_s = u;
		}
		if (r < 0) {
			log_err("%s: virtio-blk: bad option '%s%s%s' (known: socket=PATH, pci=BDF, "
				"irq=intx|poll, dma=auto|pagemap|p2m, queue=N, "
				"queues=N, qsize=N, pool=N, discard=auto|write-zeroes, "
				"event-idx=on|off, indirect=on|off, reconnect-timeout=S, "
				"range=OFFSET+SIZE, owner=NAME)",
				name, tok, val ? "=" : "", val ? val : "");
			opts_free(o);
			return r;
		}
	}
	if (!o->socket == !o->pci) {
		log_err("%s: virtio-blk needs socket=PATH or pci=BDF in its options (one of them)",
			name);
		opts_free(o);
		return -EINVAL;
	}
	if (o->pci) {
		o->key = malloc(strlen(o->pci) + 5);
		if (o->key)
			sprintf(o->key, "pci:%s", o->pci);
	} else {
		o->key = strdup(o->socket);
	}
	if (!o->key) {
		opts_free(o);
		return -ENOMEM;
	}
	return 0;
}

/*
 * The range @o asks for (the whole device by default), shared with the other queues of the
 * same owner and refused when it overlaps another owner's (or differs from its own owner's).
 */
static int range_claim(struct vblk_dev *d, const char *name, const struct vblk_opts *o,
		       struct vblk_range **ret)
{
	uint64_t cap = d->cfg.capacity * SECTOR;
	uint64_t off = o->has_range ? o->range_off : 0, size = o->has_range ? o->range_size : cap;
	const char *owner = o->owner ? o->owner : "";
	struct vblk_range *rg;

	if (off >= cap || size > cap - off)
		return bk_log_errno(BK_LOG_ERR, -EINVAL,
				    "%s: range %llu+%llu is past the end of %s (%llu bytes)", name,
				    (unsigned long long)off, (unsigned long long)size, d->name,
				    (unsigned long long)cap);
	list_for_each_entry (rg, &d->ranges, link) {
		if (strcmp(rg->owner, owner) == 0 && rg->off == off && rg->size == size) {
			rg->refs++;
			*ret = rg;
			return 0;
		}
		if (off < rg->off + rg->size && rg->off < off + size)
			return bk_log_errno(BK_LOG_ERR, -EBUSY,
					    "%s: range %llu+%llu of %s overlaps %llu+%llu of "
					    "owner '%s'",
					    name, (unsigned long long)off, (unsigned long long)size,
					    d->name, (unsigned long long)rg->off,
					    (unsigned long long)rg->size, rg->owner);
	}
	rg = calloc(1, sizeof(*rg));
	if (!rg || !(rg->owner = strdup(owner))) {
		free(rg);
		return -ENOMEM;
	}
	rg->off = off;
	rg->size = size;
	rg->refs = 1;
	list_add_tail(&rg->link, &d->ranges);
	*ret = rg;
	return 0;
}

static void range_put(struct vblk_range *rg)
{
	if (!rg || --rg->refs)
		return;
	list_del(&rg->link);
	free(rg->owner);
	free(rg);
}

static void dev_put(struct vblk_dev *d)
{
	bool last;

	pthread_mutex_lock(&devices_lock);
	last = --d->refs == 0;
	if (last)
		list_del(&d->link);
	pthread_mutex_unlock(&devices_lock);
	if (last && d->busy)
		d->dead = true;
	else if (last)
		dev_free(d);
}

static void vblk_close(struct bk_engine *be)
{
	struct vblk_engine *e;
	struct vblk_req *rq;

	if (!be)
		return;
	e = to_vblk(be);
	if (e->dispatching) {
		e->close_pending = true;
		return;
	}
	if (e->inflight)
		bk_log_dev(BK_LOG_WARNING, e->name,
			   "closed with %u I/O in flight: their results are dropped", e->inflight);
	/* The back-end only ever writes our bounce pages, never the caller's buffers. */
	list_for_each_entry (rq, &e->q->sent, link)
		rq->io = NULL;
	e->q->owner = NULL;
	bk_hook_free(e->hook);
	range_put(e->range);
	dev_put(e->dev);
	free(e);
}

static int vblk_open(struct bk_loop *loop, struct bk_store *store, const struct bk_engine_params *p,
		     struct bk_engine **ret)
{
	const char *name = p && p->name ? p->name : "virtio-blk";
	struct vblk_opts o;
	struct vblk_dev *d = NULL, *it;
	struct vblk_engine *e;
	int r;

	if (!p || !p->depth)
		return bk_log_errno(BK_LOG_ERR, -EINVAL, "%s: virtio-blk needs a depth", name);
	r = parse_options(name, p->options, &o);
	if (r < 0)
		return r;
	pthread_mutex_lock(&devices_lock);
	list_for_each_entry (it, &devices, link)
		if (strcmp(it->path, o.key) == 0) {
			d = it;
			break;
		}
	if (d && d->loop != loop) {
		pthread_mutex_unlock(&devices_lock);
		r = bk_log_errno(BK_LOG_ERR, -EBUSY,
				 "%s: virtio-blk %s is driven from another thread's loop", name,
				 o.key);
		goto out;
	}
	if (d)
		d->refs++;
	pthread_mutex_unlock(&devices_lock);
	if (!d) {
		r = dev_new(loop, o.key, &o, &d);
		if (r < 0)
			goto out;
		d->refs = 1;
		pthread_mutex_lock(&devices_lock);
		list_add_tail(&d->link, &devices);
		pthread_mutex_unlock(&devices_lock);
		bk_ctl_set_l0_source("virtio-blk", ctl_fill);
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		dev_put(d);
		r = -ENOMEM;
		goto out;
	}
	e->base.ops = &bk_engine_vblk_ops;
	e->base.store = store;
	e->dev = d;
	e->depth = p->depth;
	e->readonly = has(d, VIRTIO_BLK_F_RO) || (store && store->readonly);
	snprintf(e->name, sizeof(e->name), "%s", name);
	/* The range first: an overlap is the reason to give, even when no queue is free. */
	r = range_claim(d, name, &o, &e->range);
	if (r < 0)
		goto fail;
	if (o.queue >= 0) {
		if ((unsigned int)o.queue >= d->nq || d->q[o.queue].owner) {
			r = bk_log_errno(BK_LOG_ERR, -EBUSY, "%s: %s: queue %d is %s", name,
					 d->name, o.queue,
					 (unsigned int)o.queue >= d->nq ? "not set up" : "taken");
			goto fail;
		}
		e->q = &d->q[o.queue];
	} else {
		for (unsigned int i = 0; i < d->nq && !e->q; i++)
			if (!d->q[i].owner)
				e->q = &d->q[i];
		if (!e->q) {
			r = bk_log_errno(BK_LOG_ERR, -EBUSY, "%s: %s: all %u queues are taken",
					 name, d->name, d->nq);
			goto fail;
		}
	}
	r = bk_loop_add_hook(loop, vblk_hook, &e->base, &e->hook);
	if (r < 0)
		goto fail;
	e->q->owner = e;
	if (store && store->size > e->range->size)
		bk_log_dev(BK_LOG_WARNING, name, "%s is smaller (%llu bytes) than %s (%llu)",
			   d->name, (unsigned long long)e->range->size, store->path,
			   (unsigned long long)store->size);
	log_debug("%s: virtio-blk on %s, queue %u, depth %u", name, d->path, e->q->index, e->depth);
	*ret = &e->base;
	r = 0;
	goto out;
fail:
	range_put(e->range);
	dev_put(d);
	free(e);
out:
	opts_free(&o);
	return r;
}

int bk_vblk_store_open(const char *name, const char *options, bool readonly, struct bk_store **ret)
{
	struct bk_store *st;
	struct vblk_opts o;
	int r = parse_options(name, options, &o);

	if (r < 0)
		return r;
	if (!o.has_range) {
		r = bk_log_errno(BK_LOG_ERR, -EINVAL,
				 "%s: a guest disk on virtio-blk %s needs range=OFFSET+SIZE (the "
				 "target's offset= and size=)",
				 name, o.key);
		opts_free(&o);
		return r;
	}
	st = calloc(1, sizeof(*st));
	if (st)
		st->path = strdup(o.key);
	if (!st || !st->path) {
		free(st);
		opts_free(&o);
		return -ENOMEM;
	}
	st->fd = -1;
	st->readonly = readonly;
	st->size = o.range_size;
	st->logical_block = SECTOR;
	st->physical_block = SECTOR;
	opts_free(&o);
	*ret = st;
	return 0;
}

/* One device's L0 record, its users and its queues, in wire order. */
static int ctl_fill_dev(struct bk_ctl_buf *b, const struct vblk_dev *d)
{
	const struct vblk_range *rg;
	struct bk_ctl_l0dev *w;
	size_t off = b->len;
	uint32_t users = 0;
	int err = 0;

	if (!bk_ctl_buf_append(b, NULL, sizeof(*w), &err))
		return err;
	list_for_each_entry (rg, &d->ranges, link) {
		struct bk_ctl_l0user *u = bk_ctl_buf_append(b, NULL, sizeof(*u), &err);

		if (!u)
			return err;
		bk_ctl_strpad(u->owner, sizeof(u->owner), rg->owner);
		u->offset = rg->off;
		u->size = rg->size;
		bk_ctl_l0user_swap(u);
		users++;
	}
	for (unsigned int i = 0; i < d->nq; i++) {
		const struct vblk_queue *q = &d->q[i];
		struct bk_ctl_l0queue *w_q = bk_ctl_buf_append(b, NULL, sizeof(*w_q), &err);
		const struct vblk_req *rq;

		if (!w_q)
			return err;
		w_q->index = i;
		w_q->size = d->qsize;
		bk_ctl_strpad(w_q->owner, sizeof(w_q->owner), q->owner ? q->owner->name : "");
		w_q->reads = q->st.reads;
		w_q->writes = q->st.writes;
		w_q->flushes = q->st.flushes;
		w_q->discards = q->st.discards;
		w_q->errors = q->st.errors;
		w_q->bytes_read = q->st.bytes_read;
		w_q->bytes_written = q->st.bytes_written;
		list_for_each_entry (rq, &q->sent, link)
			w_q->inflight++;
		bk_ctl_l0queue_swap(w_q);
	}
	w = (struct bk_ctl_l0dev *)(b->data + off);
	bk_ctl_strpad(w->kind, sizeof(w->kind), "virtio-blk");
	bk_ctl_strpad(w->name, sizeof(w->name), d->pci ? d->pci->bdf : d->path);
	bk_ctl_strpad(w->transport, sizeof(w->transport), d->pci ? "pci" : "vhost-user");
	bk_ctl_strpad(w->dma_mode, sizeof(w->dma_mode), vio_dma_mode_name(d->dma_mode));
	bk_ctl_strpad(w->dma_why, sizeof(w->dma_why), d->dma_why ? d->dma_why : "");
	bk_ctl_strpad(w->irq, sizeof(w->irq), !d->pci ? "eventfd" : d->poll ? "polled" : "INTx");
	w->capacity = d->cfg.capacity * SECTOR;
	w->features = d->features;
	w->lost_interrupts = d->lost_interrupts;
	w->reconnects = d->reconnects;
	w->block_size = d->cfg.blk_size;
	w->flags = (has(d, VIRTIO_BLK_F_FLUSH) ? BK_CTL_L0_FLUSH : 0) |
		   (has(d, VIRTIO_BLK_F_DISCARD) ? BK_CTL_L0_DISCARD : 0) |
		   (has(d, VIRTIO_BLK_F_WRITE_ZEROES) ? BK_CTL_L0_WRITE_ZEROES : 0) |
		   (has(d, VIRTIO_BLK_F_RO) ? BK_CTL_L0_READONLY : 0) |
		   (d->pci || d->connected ? BK_CTL_L0_CONNECTED : 0);
	w->nr_users = users;
	w->user_size = sizeof(struct bk_ctl_l0user);
	w->nr_queues = d->nq;
	w->queue_size = sizeof(struct bk_ctl_l0queue);
	bk_ctl_l0dev_swap(w);
	return 0;
}

/* The control socket's L0 request: every device this process drives. */
static int ctl_fill(struct bk_ctl_buf *b)
{
	const struct vblk_dev *d;
	int n = 0, r = 0;

	pthread_mutex_lock(&devices_lock);
	list_for_each_entry (d, &devices, link) {
		r = ctl_fill_dev(b, d);
		if (r < 0)
			break;
		n++;
	}
	pthread_mutex_unlock(&devices_lock);
	return r < 0 ? r : n;
}

int bk_vblk_info(const struct bk_engine *be, struct bk_vblk_info *ret)
{
	const struct vblk_engine *e;
	const struct vblk_dev *d;

	if (!be || be->ops != &bk_engine_vblk_ops)
		return -EINVAL;
	e = container_of(be, struct vblk_engine, base);
	d = e->dev;
	*ret = (struct bk_vblk_info){
		.size = e->range->size,
		.logical_block = d->cfg.blk_size,
		.physical_block = d->cfg.blk_size
				  << (has(d, VIRTIO_BLK_F_TOPOLOGY) && d->cfg.physical_block_exp < 4
					      ? d->cfg.physical_block_exp
					      : 0),
		.nr_queues = d->nq,
		.queue = e->q->index,
		.readonly = has(d, VIRTIO_BLK_F_RO),
		.flush = has(d, VIRTIO_BLK_F_FLUSH),
		.discard = !has(d, VIRTIO_BLK_F_RO) &&
			   (has(d, VIRTIO_BLK_F_DISCARD) || has(d, VIRTIO_BLK_F_WRITE_ZEROES)),
		.write_zeroes = has(d, VIRTIO_BLK_F_WRITE_ZEROES),
		.discard_granularity =
			has(d, VIRTIO_BLK_F_DISCARD) && d->cfg.discard_sector_alignment
				? d->cfg.discard_sector_alignment * SECTOR
				: d->cfg.blk_size,
		.max_discard =
			(uint64_t)(has(d, VIRTIO_BLK_F_DISCARD) ? d->cfg.max_discard_sectors
								: d->cfg.max_write_zeroes_sectors) *
			SECTOR,
		.reconnects = d->reconnects,
	};
	return 0;
}

/* A device already driven for other disks: their loop (one I/O thread drives it). */
static struct bk_loop *vblk_loop_of(const char *options)
{
	struct bk_loop *loop = NULL;
	struct vblk_dev *it;
	struct vblk_opts o;

	if (parse_options("virtio-blk", options, &o) < 0)
		return NULL; /* the open says why */
	pthread_mutex_lock(&devices_lock);
	list_for_each_entry (it, &devices, link)
		if (strcmp(it->path, o.key) == 0)
			loop = it->loop;
	pthread_mutex_unlock(&devices_lock);
	opts_free(&o);
	return loop;
}

const struct bk_engine_ops bk_engine_vblk_ops = {
	.name = "virtio-blk",
	.open = vblk_open,
	.close = vblk_close,
	.queue = vblk_queue,
	.kick = vblk_kick,
	.inflight = vblk_inflight,
	.loop_of = vblk_loop_of,
};
