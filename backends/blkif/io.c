// SPDX-License-Identifier: MIT
/*
 * The blkif datapath. One turn of a queue: take what is left of the device's BLKIF_BUDGET for
 * this loop turn (each request copied once and validated), fetch the indirect descriptors of
 * all of them in one grant-copy batch, give them bounce pages, copy all write data in one
 * batch, queue the I/O with the engine and kick it once. Completions are collected and
 * answered in the loop hook: one batch copies the read data out, the responses are written,
 * pushed and notified once.
 *
 * Memory is bounded per queue: slots = ring entries, bounce pool fixed; when either runs out
 * we stop taking requests (ring_full) and resume from the hook when something completes.
 *
 * Barriers are ordered as blkback orders them: nothing more is taken while a valid barrier is
 * unanswered, the barrier starts once everything before it completed (the drain), and nothing
 * behind it starts before it completed. A flush or barrier carrying data is a flush, the
 * write, then a flush (enum blkif_phase).
 *
 * Events (XSA-332, as lateeoi; src/xen/evport.h, shared with netif): a port stays masked from its
 * event until its queue has taken everything on the ring. While the queue cannot take (blocked, or
 * the device's budget is spent) the guest's notifies cannot reach us; the hook serves the queue
 * again when it progresses, and unmasks the port once it caught up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blkif.h"
#include "common.h"
#include "loop.h"

static struct bk_device *qdev(const struct blkif_queue *q)
{
	return q->bd->dev;
}

/* Work for the hook: in its run, another pass of it (blkif_hook_cb); else its next run. */
static void hook_on(struct blkif_dev *bd)
{
	if (bd->in_hook)
		bd->hook_again = true;
	else
		bk_hook_enable(bd->hook, true);
}

static unsigned int stats_type(const struct blkif_req *req)
{
	switch (req->op) {
	case BLKIF_OP_READ:
		return BK_REQ_READ;
	case BLKIF_OP_WRITE:
		return BK_REQ_WRITE;
	case BLKIF_OP_FLUSH_DISKCACHE:
		return BK_REQ_FLUSH;
	case BLKIF_OP_WRITE_BARRIER:
		return BK_REQ_BARRIER;
	case BLKIF_OP_DISCARD:
		return BK_REQ_DISCARD;
	default:
		return BK_REQ_OTHER;
	}
}

/* The request is over (any status): answer it in the next completion batch. */
static void slot_finish(struct blkif_slot *s, int16_t status)
{
	if (s->status == BLKIF_RSP_OKAY)
		s->status = status;
	s->stage = BLKIF_S_DONE;
	/* The barrier completed: what was taken behind it may start. */
	if (s->q->barrier_running == s)
		s->q->barrier_running = NULL;
	list_add_tail(&s->link, &s->q->done_list);
	hook_on(s->q->bd);
}

static void slot_release(struct blkif_queue *q, struct blkif_slot *s)
{
	/* Only a barrier admitted as valid holds the queue: a refused one releases nothing. */
	if (s->barrier) {
		s->barrier = false;
		q->barrier_pending--;
	}
	if (s->pool_pages) {
		blkif_pool_put(&q->pool, s->pool_first, s->pool_pages);
		s->pool_pages = 0;
	}
	s->mapped = false; /* the mapping stays with the queue's persistent grants */
	s->stage = BLKIF_S_FREE;
	list_add(&s->link, &q->free_list);
	q->busy--;
}

/*
 * The clock for this pass over @q (taking, or answering), read at most once: stamping and
 * measuring each request with its own reading cost as much as the rest of taking it. Each pass
 * starts with queue_clock_reset, so a request's answer reads a later time than its take.
 */
static void queue_clock_reset(struct blkif_queue *q)
{
	q->now_ns = 0;
}

static uint64_t queue_now(struct blkif_queue *q)
{
	if (!q->now_ns)
		q->now_ns = blkif_now();
	return q->now_ns;
}

static void lat_count(struct blkif_queue *q, uint64_t start, uint64_t end, unsigned int n)
{
	q->stats->lat_hist[bk_lat_bucket(end > start ? end - start : 0)] += n;
}

void blkif_queue_lat_flush(struct blkif_queue *q)
{
	if (!q->lat_late_n)
		return;
	bk_loop_turn_end_cancel(&q->lat_late);
	lat_count(q, q->lat_late_start, blkif_now_fresh(), q->lat_late_n);
	q->lat_late_n = 0;
}

static void lat_late_cb(struct bk_turn_end *e, uint64_t now)
{
	struct blkif_queue *q = container_of(e, struct blkif_queue, lat_late);

	lat_count(q, q->lat_late_start, now, q->lat_late_n);
	q->lat_late_n = 0;
}

/*
 * Count @s's latency. A request taken in an earlier turn is timed by this turn's clock. One
 * taken this same turn (a read from the page cache, answered right after the submit) waits
 * for the turn's end, when the loop reads the clock anyway: a request answered at once does
 * not count as taking no time, and costs no reading of its own. Outside the loop's own turn
 * (a test's clock, another thread holding the loop) it gets a reading now.
 */
static void lat_account(struct blkif_queue *q, const struct blkif_slot *s)
{
	uint64_t now = queue_now(q);

	if (now != s->start_ns) {
		lat_count(q, s->start_ns, now, 1);
		return;
	}
	if (q->lat_late_n && q->lat_late_start != s->start_ns)
		blkif_queue_lat_flush(q);
	if (!q->lat_late_n) {
		q->lat_late.cb = lat_late_cb;
		if (!blkif_clock_is_loop() ||
		    !bk_loop_at_turn_end(bk_device_loop(q->bd->dev), &q->lat_late)) {
			lat_count(q, s->start_ns, blkif_now_fresh(), 1);
			return;
		}
		q->lat_late_start = s->start_ns;
	}
	q->lat_late_n++;
}

static void slot_respond(struct blkif_queue *q, struct blkif_slot *s)
{
	struct bk_queue_stats *st = q->stats;

	if (!q->dead) {
		uint64_t bytes = blkif_req_bytes(&s->req);

		/* Indirect requests answer with the wrapped operation, as blkback does. */
		blkif_ring_put_rsp(&q->ring, s->req.id, s->req.op, s->status);
		if (q->journal)
			bk_journal_responded(q->journal, s->jent, q->ring.rsp_prod_pvt - 1);
		if (s->status != BLKIF_RSP_OKAY) {
			st->errors++;
		} else if (s->req.op == BLKIF_OP_READ) {
			st->bytes_read += bytes;
		} else if (blkif_req_writes(&s->req)) {
			st->bytes_written += bytes;
		}
		lat_account(q, s);
	} else if (q->journal) {
		bk_journal_release(q->journal, s->jent);
	}
	slot_release(q, s);
}

/* Grant-copy batches. */

static void batch_reset(struct blkif_copy_batch *b)
{
	b->n = 0;
	b->nr_owners = 0;
}

static bool batch_room(const struct blkif_copy_batch *b, unsigned int nsegs)
{
	return b->n + nsegs <= b->cap && b->nr_owners < b->owners_cap;
}

static void batch_own(struct blkif_copy_batch *b, struct blkif_slot *s)
{
	s->copy_first = b->n;
	s->copy_n = 0;
	b->owners[b->nr_owners++] = s;
}

static void batch_add(struct blkif_copy_batch *b, struct blkif_slot *s, uint32_t domid,
		      uint32_t ref, uint16_t offset, uint16_t len, void *local, bool to_guest)
{
	struct bk_gnt_copy_seg *g = &b->segs[b->n++];

	g->local = local;
	g->domid = domid;
	g->ref = ref;
	g->offset = offset;
	g->len = len;
	g->to_guest = to_guest;
	g->status = GNTST_general_error;
	s->copy_n++;
}

static void batch_run(struct blkif_queue *q)
{
	struct blkif_copy_batch *b = &q->batch;
	int r;

	if (!b->n)
		return;
	r = bk_gnt_copy_batch(q->bd->gnt, b->segs, b->n);
	if (r < 0)
		dev_err_rl(qdev(q), "q%u: grant copy of %u segments failed: %d", q->index, b->n, r);
}

/* First failed segment status of @s in the batch, 0 if all copied. */
static int16_t batch_status(const struct blkif_copy_batch *b, const struct blkif_slot *s)
{
	return bk_gnt_copy_status(b->segs + s->copy_first, s->copy_n);
}

static void log_copy_fail(struct blkif_queue *q, struct blkif_slot *s, int16_t gst,
			  const char *what)
{
	dev_err_rl(qdev(q), "q%u: request %#llx: grant copy of %s failed: %s", q->index,
		   (unsigned long long)s->req.id, what, bk_xen_gntst_str(gst));
}

/* What a queue needs only while it serves requests. */

/*
 * Set up @q's slots, their segment arrays and the copy batch, and register its bounce pool with
 * the engine (which pins it): on the first request, and the first after a trim.
 */
static int queue_populate(struct blkif_queue *q)
{
	struct bk_engine *e = q->engine;

	q->slots = calloc(q->nr_slots, sizeof(*q->slots));
	/* Apart from the slots: untouched pages of it cost nothing until a request needs them. */
	q->segs = calloc((size_t)q->nr_slots * q->max_segs, sizeof(*q->segs));
	if (!q->slots || !q->segs || blkif_batch_init(&q->batch, BLKIF_COPY_BATCH, q->nr_slots)) {
		free(q->slots);
		free(q->segs);
		q->slots = NULL;
		q->segs = NULL;
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < q->nr_slots; i++) {
		q->slots[i].q = q;
		q->slots[i].req.seg = q->segs + (size_t)i * q->max_segs;
		list_add_tail(&q->slots[i].link, &q->free_list);
	}
	/* Nothing is in flight without slots, as register_buffers wants. */
	if (e->ops->register_buffers && !q->engine_inflight) {
		struct iovec iov = {
			.iov_base = q->pool.base,
			.iov_len = (size_t)q->pool.nr_pages * BK_PAGE_SIZE,
		};

		q->pool.registered = e->ops->register_buffers(e, &iov, 1) >= 0;
	}
	return 0;
}

/* Nothing taken, in flight or waiting: what queue_populate set up may go. */
static bool queue_idle(const struct blkif_queue *q)
{
	return q->slots && !q->dead && !q->busy && !q->engine_inflight &&
	       list_empty(&q->wait_list) && list_empty(&q->done_list) && !q->barrier_pending &&
	       !q->barrier_running;
}

/* Undo queue_populate on an idle queue: every slot is on the free list. */
static void queue_trim(struct blkif_queue *q)
{
	blkif_pgnt_release(q);
	if (q->pool.registered) {
		q->engine->ops->register_buffers(q->engine, NULL, 0);
		q->pool.registered = false;
	}
	blkif_pool_drop(&q->pool);
	blkif_batch_free(&q->batch);
	free(q->slots);
	free(q->segs);
	q->slots = NULL;
	q->segs = NULL;
	list_init(&q->free_list);
}

void blkif_idle_cb(void *data)
{
	struct blkif_queue *q = data;
	uint64_t idle_ms;

	/* Busy again: the hook arms the timer once it is idle again. */
	if (!queue_idle(q))
		return;
	idle_ms = (blkif_now() - q->active_ns) / 1000000U;
	if (idle_ms < blkif_idle_trim_ms()) {
		bk_timer_rearm(q->idle, blkif_idle_trim_ms() - idle_ms, 0);
		return;
	}
	queue_trim(q);
}

/* Taking requests off the ring. */

/* Decode and validate the private copy @raw into slot @s (taken off the free list). */
static void slot_admit(struct blkif_queue *q, struct blkif_slot *s, const void *raw)
{
	struct blkif_dev *bd = q->bd;
	const char *why;
	int st;

	blkif_req_decode(bd->abi, raw, &s->req);
	s->status = BLKIF_RSP_OKAY;
	s->phase = BLKIF_P_IO;
	s->barrier = false;
	s->need_desc = false;
	s->charged = false;
	s->mapped = false;
	s->copy_only = false;
	s->start_ns = queue_now(q);
	s->stage = BLKIF_S_WAIT;
	q->active_ns = s->start_ns;

	q->stats->reqs[stats_type(&s->req)]++;
	if (s->req.indirect)
		q->stats->reqs[BK_REQ_INDIRECT]++;
	st = blkif_req_check(&s->req, &bd->lim, &why);
	if (st != BLKIF_RSP_OKAY) {
		dev_err_rl(qdev(q), "q%u: request %#llx (op %u, %u segments, sector %llu): %s",
			   q->index, (unsigned long long)s->req.id, s->req.operation,
			   s->req.nr_segments, (unsigned long long)s->req.sector, why);
		slot_finish(s, (int16_t)st);
		return;
	}
	if (s->req.op == BLKIF_OP_WRITE_BARRIER) {
		s->barrier = true;
		q->barrier_pending++;
	}
	s->need_desc = s->req.indirect;
	list_add_tail(&s->link, &q->wait_list);
}

/*
 * A free slot for a request taken off the ring (@jent < 0: recorded in the journal before
 * anything can answer it, so a crash from here on loses nothing), or re-issued from the
 * journal (@jent: the slot adopts that entry instead of recording it again).
 */
static struct blkif_slot *slot_get(struct blkif_queue *q, const void *raw, int jent)
{
	struct blkif_slot *s = list_first_entry(&q->free_list, struct blkif_slot, link);

	list_del(&s->link);
	q->busy++;
	if (jent < 0 && q->journal)
		jent = bk_journal_record(q->journal, raw);
	s->jent = jent;
	return s;
}

void blkif_queue_admit(struct blkif_queue *q, const void *raw, int jent)
{
	queue_clock_reset(q);
	if (!q->slots && queue_populate(q) < 0) {
		dev_err(qdev(q), "q%u: no memory for %u request slots", q->index, q->nr_slots);
		return;
	}
	if (list_empty(&q->free_list)) {
		/* The journal never holds more than the ring's entries. */
		dev_err(qdev(q), "q%u: no free slot for a recovered request", q->index);
		return;
	}
	slot_admit(q, slot_get(q, raw, jent), raw);
	hook_on(q->bd);
}

/* Why a queue stopped taking requests. */
enum queue_state {
	QUEUE_IDLE,	 /* took everything on the ring: a notify from now on means new requests */
	QUEUE_BLOCKED,	 /* cannot take: slots, bounce pages, engine, a barrier, a handover */
	QUEUE_BUDGET,	 /* the device spent this turn's budget: more next turn */
	QUEUE_THROTTLED, /* the device's rate limit holds it back: its timer resumes it */
};

/*
 * @ret_drained: stopped because the ring is empty (req_event re-armed, or left to the hook
 * when this take found requests), not for a limit.
 * @ret_throttled: stopped with requests on the ring because the rate limit said so.
 */
static int queue_take(struct blkif_queue *q, unsigned int budget, unsigned int *ret_taken,
		      bool *ret_drained, bool *ret_throttled)
{
	struct blkif_limiter *lim = &q->bd->limiter;
	uint64_t now = lim->on ? blkif_now() : 0;
	uint8_t raw[BLKIF_MAX_SLOT_SIZE];
	unsigned int taken = 0, spins = 0;
	bool drained = false, throttled = false;

	/* Handing over to the next daemon: finish what we have, take nothing new. */
	while (taken < budget && !q->barrier_pending && !q->bd->handover) {
		struct blkif_slot *s;
		uint32_t n;
		int r;

		r = blkif_ring_pending(&q->ring, &n);
		if (r < 0)
			return r;
		if (n == 0) {
			/*
			 * A take that found requests leaves req_event as it is and asks the hook
			 * for a look before the loop sleeps (another pass, when the hook runs):
			 * only a look that finds nothing re-arms (blkif_hook_cb). Requests the
			 * guest posts meanwhile need no event of their own then: each would wake
			 * the loop for a turn that finds them taken.
			 */
			if (taken) {
				q->arm_later = true;
				hook_on(q->bd);
				drained = true;
				break;
			}
			q->arm_later = false;
			/* Re-arm req_event; a guest flipping req_prod cannot keep us here. */
			if (!blkif_ring_final_check(&q->ring) || ++spins > 4) {
				drained = true;
				break;
			}
			continue;
		}
		if (!q->slots && queue_populate(q) < 0)
			return -ENOMEM;
		if (list_empty(&q->free_list) || blkif_ring_cons_full(&q->ring)) {
			if (!q->stalled)
				q->stats->ring_full++;
			q->stalled = true;
			break;
		}
		/* Held back: the ring keeps the request, the guest's notifies stay masked. */
		if (!blkif_limiter_may_take(lim, now)) {
			throttled = true;
			break;
		}
		blkif_limiter_charge(lim, 1, 0);
		blkif_ring_take(&q->ring, raw);
		s = slot_get(q, raw, -1);
		if (q->journal)
			bk_journal_set_cons(q->journal, q->ring.req_cons);
		taken++;
		slot_admit(q, s, raw);
		/* Its bytes at once when the header tells them: the next take sees the debt. */
		if (lim->on && !s->need_desc) {
			s->charged = true;
			blkif_limiter_charge(
				lim, 0,
				s->req.op == BLKIF_OP_DISCARD ? 0 : blkif_req_bytes(&s->req));
		}
	}
	*ret_taken = taken;
	*ret_drained = drained;
	*ret_throttled = throttled;
	bk_evport_took(&q->ev, taken);
	return 0;
}

/*
 * Copy the descriptors of every new indirect request straight into its private segment array
 * (the one copy, XSA-155), then validate them.
 */
static void queue_fetch_indirect(struct blkif_queue *q)
{
	struct blkif_copy_batch *b = &q->batch;
	struct blkif_slot *s;
	uint32_t domid = qdev(q)->domid;

	batch_reset(b);
	list_for_each_entry (s, &q->wait_list, link) {
		unsigned int left;

		if (!s->need_desc)
			continue;
		/* Each descriptor page copy is at most one segment: always room at 1024. */
		if (!batch_room(b, s->req.nr_indirect_pages))
			break;
		batch_own(b, s);
		left = s->req.nr_segments;
		for (unsigned int p = 0; p < s->req.nr_indirect_pages; p++) {
			unsigned int cnt = BK_MIN(left, (unsigned int)BLKIF_SEGS_PER_INDIRECT_PAGE);
			uint16_t len = (uint16_t)(cnt * sizeof(struct blkif_request_segment));
			uint8_t *dst = (uint8_t *)s->req.seg + (size_t)p * BK_PAGE_SIZE;
			const uint8_t *mapped = blkif_pgnt_page(q, s->req.indirect_grefs[p]);

			/* Copied once either way; checked below, on our copy. */
			if (mapped)
				memcpy(dst, mapped, len);
			else
				batch_add(b, s, domid, s->req.indirect_grefs[p], 0, len, dst,
					  false);
			left -= cnt;
		}
	}
	if (!b->nr_owners)
		return;
	batch_run(q);
	for (unsigned int i = 0; i < b->nr_owners; i++) {
		int16_t gst;
		const char *why;
		int st;

		s = b->owners[i];
		s->need_desc = false;
		gst = batch_status(b, s);
		if (gst != GNTST_okay) {
			log_copy_fail(q, s, gst, "indirect descriptors");
			st = BLKIF_RSP_ERROR;
		} else {
			st = blkif_req_check_segs(&s->req, &q->bd->lim, &why);
			if (st != BLKIF_RSP_OKAY)
				dev_err_rl(qdev(q), "q%u: indirect request %#llx: %s", q->index,
					   (unsigned long long)s->req.id, why);
		}
		if (st != BLKIF_RSP_OKAY) {
			list_del(&s->link);
			slot_finish(s, (int16_t)st);
		}
	}
	batch_reset(b);
}

static void io_done(struct bk_io *io, int res);

/* Point @s's I/O at @op: the bounce pages for a read or write, nothing for a flush. */
static void slot_set_io(struct blkif_queue *q, struct blkif_slot *s, uint8_t op)
{
	struct bk_io *io = &s->io;

	memset(io, 0, sizeof(*io));
	io->done = io_done;
	io->priv = s;
	io->buf_index = -1;
	io->op = op;
	io->offset = s->req.sector << BLKIF_SECTOR_SHIFT;
	if ((op == BK_IO_READ || op == BK_IO_WRITE) && s->mapped) {
		io->iov = s->iovs;
		io->iovcnt = s->nr_iovs;
		io->len = blkif_req_bytes(&s->req);
	} else if (op == BK_IO_READ || op == BK_IO_WRITE) {
		uint64_t bytes = blkif_req_bytes(&s->req);

		s->iov.iov_base = q->pool.base + (size_t)s->pool_first * BK_PAGE_SIZE;
		s->iov.iov_len = bytes;
		io->iov = &s->iov;
		io->iovcnt = 1;
		io->len = bytes;
		if (q->pool.registered)
			io->buf_index = 0;
	}
}

/* Hand one request to the engine; false if the engine is full (the slot goes back). */
static bool slot_submit(struct blkif_queue *q, struct blkif_slot *s)
{
	struct bk_io *io = &s->io;
	uint8_t op;
	int r;

	s->phase = BLKIF_P_IO;
	switch (s->req.op) {
	case BLKIF_OP_READ:
		op = BK_IO_READ;
		break;
	case BLKIF_OP_WRITE:
		op = BK_IO_WRITE;
		break;
	case BLKIF_OP_FLUSH_DISKCACHE:
	case BLKIF_OP_WRITE_BARRIER:
		/* With data: the flush before it first, then the write and a flush (io_done). */
		op = BK_IO_FLUSH;
		if (blkif_req_bytes(&s->req))
			s->phase = BLKIF_P_PREFLUSH;
		break;
	case BLKIF_OP_DISCARD:
		if (!s->req.nr_sectors) {
			slot_finish(s, BLKIF_RSP_OKAY);
			return true;
		}
		op = BK_IO_DISCARD;
		break;
	default:
		slot_finish(s, BLKIF_RSP_EOPNOTSUPP);
		return true;
	}
	slot_set_io(q, s, op);
	if (op == BK_IO_DISCARD)
		io->len = s->req.nr_sectors << BLKIF_SECTOR_SHIFT;
	r = bk_engine_queue(q->engine, io);
	if (r == -EAGAIN) {
		s->stage = BLKIF_S_WAIT;
		list_add(&s->link, &q->wait_list); /* ready: bounce filled, retried first */
		if (!q->stalled)
			q->stats->ring_full++;
		q->stalled = true;
		return false;
	}
	if (r < 0) {
		dev_err_rl(qdev(q), "q%u: request %#llx: queueing I/O failed: %d", q->index,
			   (unsigned long long)s->req.id, r);
		slot_finish(s, BLKIF_RSP_ERROR);
		return true;
	}
	s->stage = BLKIF_S_IO;
	q->engine_inflight++;
	return true;
}

/* Copy in the data of the writes gathered in the batch, then queue them all. */
static void flush_copyin(struct blkif_queue *q)
{
	struct blkif_copy_batch *b = &q->batch;

	batch_run(q);
	for (unsigned int i = 0; i < b->nr_owners; i++) {
		struct blkif_slot *s = b->owners[i];
		int16_t gst = batch_status(b, s);

		s->copy_n = 0;
		if (gst != GNTST_okay) {
			log_copy_fail(q, s, gst, "write data");
			slot_finish(s, BLKIF_RSP_ERROR);
			continue;
		}
		slot_submit(q, s);
	}
	batch_reset(b);
}

/* Data segments of @s between its bounce buffer and the guest's pages. */
static void add_data_segs(struct blkif_queue *q, struct blkif_slot *s, bool to_guest)
{
	uint8_t *buf = q->pool.base + (size_t)s->pool_first * BK_PAGE_SIZE;
	uint32_t domid = qdev(q)->domid;
	size_t off = 0;

	batch_own(&q->batch, s);
	for (unsigned int i = 0; i < s->req.nr_segments; i++) {
		const struct blkif_request_segment *g = &s->req.seg[i];
		uint16_t len =
			(uint16_t)((g->last_sect - g->first_sect + 1U) << BLKIF_SECTOR_SHIFT);

		batch_add(&q->batch, s, domid, g->gref,
			  (uint16_t)(g->first_sect << BLKIF_SECTOR_SHIFT), len, buf + off,
			  to_guest);
		off += len;
	}
}

/* Dispatch waiting requests in order, as far as bounce pages, barriers and the engine allow. */
static void queue_dispatch(struct blkif_queue *q)
{
	struct blkif_copy_batch *b = &q->batch;

	batch_reset(b);
	while (!list_empty(&q->wait_list)) {
		struct blkif_slot *s = list_first_entry(&q->wait_list, struct blkif_slot, link);
		/* A discard's nr_sectors is its range, not data: it needs no bounce pages. */
		uint64_t bytes = s->req.op == BLKIF_OP_DISCARD ? 0 : blkif_req_bytes(&s->req);
		bool is_write = blkif_req_writes(&s->req);

		if (s->need_desc)
			break; /* descriptors not fetched yet (the batch was full): next turn */

		/* Nothing taken behind a barrier starts before the barrier completed. */
		if (q->barrier_running && q->barrier_running != s)
			break;
		if (s->req.op == BLKIF_OP_WRITE_BARRIER) {
			/* It starts once everything before it completed (blkback drains). */
			if (q->engine_inflight || b->nr_owners) {
				if (b->nr_owners)
					flush_copyin(q);
				break;
			}
			q->barrier_running = s;
		}
		/* On the guest's persistent grants: no bounce pages, no copy in or out. */
		if (bytes && !s->pool_pages && !s->mapped && !s->copy_only &&
		    blkif_pgnt_use(q, s) && !s->charged) {
			s->charged = true;
			blkif_limiter_charge(&q->bd->limiter, 0, bytes);
		}
		if (bytes && !s->pool_pages && !s->mapped) {
			unsigned int npages = (unsigned int)BK_DIV_ROUND_UP(bytes, BK_PAGE_SIZE);

			if (blkif_pool_get(&q->pool, npages, &s->pool_first) < 0) {
				if (!q->stalled)
					q->stats->ring_full++;
				q->stalled = true;
				break;
			}
			s->pool_pages = npages;
			/* An indirect request's bytes, known once its descriptors are. */
			if (!s->charged) {
				s->charged = true;
				blkif_limiter_charge(&q->bd->limiter, 0, bytes);
			}
			if (is_write) {
				if (!batch_room(b, s->req.nr_segments))
					flush_copyin(q);
				list_del(&s->link);
				s->stage = BLKIF_S_COPYIN;
				add_data_segs(q, s, false);
				continue;
			}
		}
		list_del(&s->link);
		if (!slot_submit(q, s))
			break;
	}
	if (b->nr_owners)
		flush_copyin(q);
}

static void queue_push(struct blkif_queue *q)
{
	if (q->dead || q->ring.rsp_prod_pvt == q->ring.rsp_pushed)
		return;
	bool notify = blkif_ring_push(&q->ring);

	if (q->journal)
		bk_journal_set_pushed(q->journal, q->ring.rsp_pushed);
	if (notify) {
		bk_evtchn_notify(q->bd->evtchn, q->local_port);
		q->stats->notify_out++;
	}
}

static void fail_ring(struct blkif_queue *q)
{
	struct blkif_dev *bd = q->bd;

	bk_device_fail(qdev(q), -EPROTO,
		       "q%u: frontend's ring producer index %u is more than %u entries beyond "
		       "our responses (%u): bogus frontend",
		       q->index, READ_ONCE(q->ring.sring->req_prod), q->ring.nr_ents,
		       q->ring.rsp_prod_pvt);
	blkif_start_disconnect(bd, 0, false);
}

/* Serve @q within what is left of its device's budget this turn; the port is left as it is. */
static enum queue_state queue_serve(struct blkif_queue *q)
{
	struct blkif_dev *bd = q->bd;
	unsigned int budget = BLKIF_BUDGET - BK_MIN(bd->budget_used, BLKIF_BUDGET);
	unsigned int taken = 0;
	bool drained = false, throttled = false;

	q->stalled = false;
	queue_clock_reset(q);
	/*
	 * Old requests first: they hold their place before anything new is taken. Some may still
	 * need their indirect descriptors (re-issued from the journal, or a full batch last turn).
	 */
	if (!list_empty(&q->wait_list))
		queue_fetch_indirect(q);
	queue_dispatch(q);
	if (list_empty(&q->wait_list) && !q->stalled && budget) {
		int r = queue_take(q, budget, &taken, &drained, &throttled);

		if (r == -ENOMEM) {
			bk_device_fail(qdev(q), r, "q%u: no memory for %u request slots", q->index,
				       q->nr_slots);
			blkif_start_disconnect(bd, 0, false);
			return QUEUE_BLOCKED;
		}
		if (r < 0) {
			fail_ring(q);
			return QUEUE_BLOCKED;
		}
		queue_fetch_indirect(q);
		queue_dispatch(q);
	}
	if (q->engine_inflight)
		bk_engine_kick(q->engine);
	bd->budget_used += taken;
	/*
	 * Stopped by the budget, not by an empty ring: the hook renews it next turn (a turn of
	 * the loop, other devices first: not another pass). An empty ring needs no turn of its
	 * own: req_event is re-armed, or the hook's next look re-arms it (queue_take).
	 */
	if (taken && !drained)
		bk_hook_enable(bd->hook, true);
	/*
	 * Held back by the rate limit with requests on the ring: count that time even when the
	 * queue is also blocked on something else this turn, or it goes unaccounted until the
	 * next turn that finds it only throttled.
	 */
	if (throttled)
		blkif_throttle(q);
	else
		blkif_unthrottle(q);
	if (!list_empty(&q->wait_list) || q->stalled || q->barrier_pending || bd->handover)
		return QUEUE_BLOCKED;
	if (throttled)
		return QUEUE_THROTTLED;
	if (drained)
		return QUEUE_IDLE;
	/* Out of budget: the device's other queues go first next turn, from the hook. */
	if (taken)
		bd->rr = (q->index + 1) % bd->nr_queues;
	return QUEUE_BUDGET;
}

/* Unmask the port of a queue that caught up, unless it is backing off. */
static void queue_rearm(struct blkif_queue *q, enum queue_state st)
{
	bk_evport_rearm(&q->ev, st == QUEUE_IDLE);
}

void blkif_queue_run(struct blkif_queue *q)
{
	enum queue_state st;

	if (q->dead)
		return;
	st = queue_serve(q);
	if (!q->dead)
		queue_rearm(q, st);
}

/* Answer everything on the done list: read data out in one batch, then the responses. */
static void queue_answer(struct blkif_queue *q)
{
	struct blkif_copy_batch *b = &q->batch;

	queue_clock_reset(q);
	while (!list_empty(&q->done_list)) {
		struct blkif_slot *s, *tmp;

		batch_reset(b);
		list_for_each_entry_safe (s, tmp, &q->done_list, link) {
			bool copy = !q->dead && s->status == BLKIF_RSP_OKAY &&
				    s->req.op == BLKIF_OP_READ && s->pool_pages;

			if (copy && !batch_room(b, s->req.nr_segments))
				break;
			list_del(&s->link);
			if (copy) {
				add_data_segs(q, s, true);
			} else {
				batch_own(b, s);
			}
		}
		batch_run(q);
		for (unsigned int i = 0; i < b->nr_owners; i++) {
			int16_t gst;

			s = b->owners[i];
			gst = batch_status(b, s);
			if (gst != GNTST_okay) {
				log_copy_fail(q, s, gst, "read data");
				s->status = BLKIF_RSP_ERROR;
			}
			slot_respond(q, s);
		}
		batch_reset(b);
	}
}

/* Answer everything on the done list and publish the responses with one push. */
static void queue_complete(struct blkif_queue *q)
{
	queue_answer(q);
	queue_push(q);
}

/* Test-only: a kill at @point (enum bk_abandon_point) on the way to answering @q's guest. */
static void queue_crash(struct blkif_queue *q, unsigned int point)
{
	if (q->dead || point == BK_ABANDON_NOW)
		return;
	/* Responses written and journaled as answered, then the process dies... */
	queue_answer(q);
	/* ...or dies after publishing them, before the journal learnt it (and before a notify). */
	if (point == BK_ABANDON_PUBLISHED)
		blkif_ring_push(&q->ring);
}

/*
 * Test-only (ops->abandon, see bk_core_abandon): the daemon is killed. Nothing is answered
 * beyond @point and nothing is written to xenstore; the journals and the shared rings stay as
 * they are. What a dead process loses is released: grant mappings, event channels, and the
 * engines, which wait for the kernel to finish with our bounce buffers before those are
 * unmapped (io_uring.c). Requests the engines still held are simply dropped.
 */
void blkif_abandon(struct bk_device *dev, unsigned int point)
{
	struct blkif_dev *bd = blkif_of(dev);

	if (!bd)
		return;
	dev_info(dev, "simulated kill with %u request(s) taken", blkif_dev_busy(bd));
	for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++)
		queue_crash(&bd->queues[i], point);
	/* The release a handover makes keeps the journals, as a dead process leaves its files. */
	bd->handover = true;
	if (bd->connected)
		blkif_rings_release(bd);
	bd->handover = false;
	blkif_remove(dev);
}

static const char *const phase_name[] = {
	[BLKIF_P_IO] = "I/O",
	[BLKIF_P_PREFLUSH] = "flush before the write",
	[BLKIF_P_WRITE] = "write",
	[BLKIF_P_POSTFLUSH] = "flush after the write",
};

static void io_done(struct bk_io *io, int res)
{
	struct blkif_slot *s = io->priv;
	struct blkif_queue *q = s->q;
	int r;

	q->engine_inflight--;
	/*
	 * The kernel could not take the guest's mapped pages (no page behind a PTE for O_DIRECT,
	 * an alignment the image refuses): do the request again through the bounce pool.
	 */
	if ((res == -EFAULT || res == -EINVAL) && s->mapped && !q->dead) {
		if (res == -EFAULT && !q->pgnt.off) {
			q->pgnt.off = true;
			dev_warn(qdev(q),
				 "q%u: I/O on persistent grants faulted: copying from now on",
				 q->index);
		}
		s->mapped = false;
		s->copy_only = true;
		s->stage = BLKIF_S_WAIT;
		list_add(&s->link, &q->wait_list);
		hook_on(q->bd);
		return;
	}
	if (res < 0) {
		/* A failed flush before the data fails the request: the data is not written. */
		if (!q->dead)
			dev_err_rl(qdev(q), "q%u: request %#llx: %s at offset %llu failed: %s",
				   q->index, (unsigned long long)s->req.id, phase_name[s->phase],
				   (unsigned long long)io->offset, strerror(-res));
		slot_finish(s, BLKIF_RSP_ERROR);
		return;
	}
	if (q->dead || s->phase == BLKIF_P_IO || s->phase == BLKIF_P_POSTFLUSH) {
		slot_finish(s, BLKIF_RSP_OKAY);
		return;
	}
	/* A flush or barrier carrying data: its flush, write and flush, one after the other. */
	s->phase = s->phase == BLKIF_P_PREFLUSH ? BLKIF_P_WRITE : BLKIF_P_POSTFLUSH;
	slot_set_io(q, s, s->phase == BLKIF_P_WRITE ? BK_IO_WRITE : BK_IO_FLUSH);
	r = bk_engine_queue(q->engine, io);
	if (r < 0) {
		dev_err_rl(qdev(q), "q%u: request %#llx: queueing the %s failed: %d", q->index,
			   (unsigned long long)s->req.id, phase_name[s->phase], r);
		slot_finish(s, BLKIF_RSP_ERROR);
		return;
	}
	q->engine_inflight++;
	hook_on(q->bd); /* the hook kicks the engine */
}

unsigned int blkif_dev_inflight(const struct blkif_dev *bd)
{
	unsigned int n = 0;

	for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++)
		n += bd->queues[i].engine_inflight;
	return n;
}

unsigned int blkif_dev_busy(const struct blkif_dev *bd)
{
	unsigned int n = 0;

	for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++)
		n += bd->queues[i].busy;
	return n;
}

void blkif_queue_kill(struct blkif_queue *q)
{
	struct blkif_slot *s, *tmp;

	q->dead = true;
	bk_evport_stop(&q->ev);
	q->barrier_running = NULL; /* nothing is dispatched any more */
	/* Not yet with the engine: into the void at once. */
	list_for_each_entry_safe (s, tmp, &q->wait_list, link) {
		list_del(&s->link);
		slot_release(q, s);
	}
	list_for_each_entry_safe (s, tmp, &q->done_list, link) {
		list_del(&s->link);
		slot_release(q, s);
	}
}

/* One pass of the hook over @bd's queues, from a rotating start. */
static void hook_pass(struct blkif_dev *bd, unsigned int first)
{
	for (unsigned int k = 0; bd->queues && k < bd->nr_queues; k++) {
		struct blkif_queue *q = &bd->queues[(first + k) % bd->nr_queues];

		if (q->dead) {
			blkif_queue_kill(q); /* completions that arrived since */
			continue;
		}
		queue_complete(q);
		blkif_queue_run(q);
		queue_complete(q); /* errors found while taking, and what completed at once */
		if (q->engine_inflight)
			bk_engine_kick(q->engine);
		else if (queue_idle(q) && !bk_timer_active(q->idle))
			bk_timer_rearm(q->idle, blkif_idle_trim_ms(), 0);
	}
}

void blkif_hook_cb(void *data)
{
	struct blkif_dev *bd = data;
	unsigned int first = bd->rr;

	bk_hook_enable(bd->hook, false);
	/* A new turn: the device's share again, shared by its queues from a rotating start. */
	bd->budget_used = 0;
	/*
	 * What a pass asks of the hook (an I/O queued for the engine, what the kick completed at
	 * once, a guest that queued more meanwhile) is served by another pass, not by a turn of
	 * the loop of its own: a poll and the loop's clock readings for a request or two, every
	 * request, when reads come from the page cache. A pass that moves nothing asks for
	 * nothing, and the run ends. The budget stays the turn's: a spent one (queue_serve) and
	 * the passes' bound leave the rest to the next turn, other devices first.
	 */
	bd->in_hook = true;
	for (unsigned int pass = 0; pass < BLKIF_HOOK_PASSES; pass++) {
		bd->hook_again = false;
		hook_pass(bd, first);
		if (!bd->hook_again)
			break;
	}
	bd->in_hook = false;
	if (bd->hook_again) {
		bk_hook_enable(bd->hook, true);
	} else {
		/*
		 * The last pass moved nothing, so every queue it could take from has re-armed
		 * req_event. One that could not take (its slots all in flight, requests waiting
		 * for pages, handing over) re-arms here, as it would have before it stopped: the
		 * completion or the next daemon that lets it take again runs it.
		 */
		for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++) {
			struct blkif_queue *q = &bd->queues[i];

			if (q->arm_later && !q->dead && q->ring.sring) {
				q->arm_later = false;
				blkif_ring_final_check(&q->ring);
			}
		}
	}
	if (bd->draining && blkif_dev_inflight(bd) == 0)
		blkif_finish_disconnect(bd);
	else if (bd->handover && blkif_dev_busy(bd) == 0)
		blkif_finish_handover(bd);
}

static struct blkif_queue *queue_of_port(struct blkif_dev *bd, uint32_t port)
{
	for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++)
		if (bd->queues[i].bound && bd->queues[i].local_port == port)
			return &bd->queues[i];
	return NULL;
}

/* An event on @q's port, which the kernel masked when it queued the event. */
/* @lost: no event from the guest, ours were lost (EFBIG): serve, but count nothing on it. */
static void queue_event(struct blkif_queue *q, bool lost)
{
	enum queue_state st;
	unsigned int v;

	bk_evport_event(&q->ev, lost);
	if (!lost)
		q->stats->notify_in++;
	st = queue_serve(q);
	if (q->dead)
		return;
	/*
	 * As lateeoi (XSA-332), spurious if nothing was taken since the port was last unmasked
	 * (evport.h); a queue that cannot take keeps its port masked until it progresses. Meeting
	 * the end of the device's budget or its rate limit is not the guest's doing.
	 */
	v = bk_evport_settle(&q->ev, st == QUEUE_IDLE, st != QUEUE_BUDGET && st != QUEUE_THROTTLED);
	if (v & BK_EVPORT_SPURIOUS)
		q->stats->spurious++;
	if (v & BK_EVPORT_STORM)
		dev_warn_rl(qdev(q), "q%u: event storm on an empty ring, backing off", q->index);
}

/*
 * The handle's queue of pending ports overflowed (EFBIG; it is reset now): events were lost
 * and their ports left masked. Take every queue as having had one.
 */
static void dev_events_lost(void *data)
{
	struct blkif_dev *bd = data;

	dev_warn_rl(bd->dev, "event channel queue overflowed, events lost: checking every queue");
	for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++) {
		struct blkif_queue *q = &bd->queues[i];

		if (q->bound && !q->dead)
			queue_event(q, true);
	}
}

static void dev_port_event(void *data, uint32_t port)
{
	struct blkif_dev *bd = data;
	struct blkif_queue *q = queue_of_port(bd, port);

	if (!q || q->dead)
		bk_evtchn_unmask(bd->evtchn, port);
	else
		queue_event(q, false);
}

void blkif_evtchn_cb(void *data, int fd, unsigned int events)
{
	struct blkif_dev *bd = data;

	/* Each queue's port once per callback, on average; the rest on the loop's next turn. */
	bk_evtchn_drain(bd->evtchn, BK_MAX(bd->nr_queues, 1U), dev_port_event, dev_events_lost, bd);
}

void blkif_backoff_cb(void *data)
{
	struct blkif_queue *q = data;

	if (q->dead || !q->ev.masked)
		return;
	/* Unmasks the port if the queue caught up; else the hook does once it progresses. */
	blkif_queue_run(q);
	hook_on(q->bd);
}
