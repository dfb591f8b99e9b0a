// SPDX-License-Identifier: MIT
/*
 * Connecting the rings: read what the frontend published (every value hostile), map each
 * queue's ring pages, bind its event channel, and set up its bounded resources (request slots,
 * bounce pool, copy batch, engine instance). Releasing undoes exactly what was done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loop.h"

static int read_queue_keys(struct blkif_dev *bd, struct blkif_queue *q, const char *prefix)
{
	struct bk_device *dev = bd->dev;
	uint32_t refs[BLKIF_MAX_RING_PAGES];
	char key[64];
	int r;

	for (unsigned int i = 0; i < q->ring_pages; i++) {
		if (bd->ring_order == 0) {
			snprintf(key, sizeof(key), "%sring-ref", prefix);
			r = bk_device_read_fe_u32(dev, key, &refs[i]);
			if (r == -ENOENT) {
				snprintf(key, sizeof(key), "%sring-ref0", prefix);
				r = bk_device_read_fe_u32(dev, key, &refs[i]);
			}
		} else {
			snprintf(key, sizeof(key), "%sring-ref%u", prefix, i);
			r = bk_device_read_fe_u32(dev, key, &refs[i]);
		}
		if (r < 0)
			return bk_device_fail(dev, r, "reading %s from the frontend: %s", key,
					      strerror(-r));
	}
	r = bk_device_need_fe_u32(dev, prefix, "event-channel", &q->remote_port);
	if (r < 0)
		return r;

	memcpy(q->refs, refs, sizeof(q->refs[0]) * q->ring_pages);
	r = bk_device_map_ring(dev, bd->gnt, q->index, refs, q->ring_pages, &q->ring_addr);
	if (r < 0)
		return r;
	q->mapped = true;
	blkif_ring_attach(&q->ring, q->ring_addr, q->ring_pages, bd->abi);
	/* Start from what the frontend published, not from zero: it may be a reconnect. */
	q->ring.req_cons = q->ring.rsp_prod_pvt = q->ring.rsp_pushed =
		READ_ONCE(q->ring.sring->rsp_prod);

	r = bk_device_bind_port(dev, bd->evtchn, q->index, "", q->remote_port, &q->local_port);
	if (r < 0)
		return r;
	q->bound = true;
	return 0;
}

static void journal_reissue(int ent, const void *raw, void *data)
{
	blkif_queue_admit(data, raw, ent);
}

/*
 * Open the queue's in-flight journal. When adopting a device a previous run left Connected,
 * re-issue what that run had taken and not answered, and continue from its ring position;
 * otherwise (or when the journal does not fit the shared ring) start afresh.
 */
static int queue_journal(struct blkif_dev *bd, struct blkif_queue *q)
{
	struct bk_device *dev = bd->dev;
	struct bk_journal_geom g = { 0 };
	char dir[BK_JOURNAL_DIR_MAX], name[BK_JOURNAL_NAME_MAX];
	uint32_t cons, rsp, req_prod, shared_rsp;
	bool recovering = false;
	int r;

	if (bk_device_journal_dir(dev, dir, sizeof(dir)) < 0)
		return 0;
	r = bk_device_journal_name(dev, q->index, NULL, name, sizeof(name));
	if (r < 0)
		return bk_device_fail(dev, r, "q%u: in-flight journal name: %s", q->index,
				      strerror(-r));
	g.nr_slots = q->nr_slots;
	g.raw_size = (uint32_t)blkif_abi_slot_size(bd->abi);
	g.abi = bd->abi;
	g.nr_refs = q->ring_pages;
	memcpy(g.refs, q->refs, sizeof(g.refs[0]) * q->ring_pages);
	g.remote_port = q->remote_port;

	r = bk_journal_open(dir, name, &g, &q->journal, &recovering);
	if (r < 0)
		return bk_device_fail(dev, r, "q%u: in-flight journal %s/%s: %s", q->index, dir,
				      name, strerror(-r));
	if (recovering && bd->adopting) {
		/*
		 * The ring must be the one the journal was written for, not a new one the guest
		 * set up with the same grant refs and port (a new kernel finds the backend still
		 * Connected and connects by itself): only we write rsp_prod, and we published
		 * at least up to the journal's index and never beyond what we consumed. The
		 * guest may have queued more since, but never more than the ring holds.
		 */
		cons = bk_journal_req_cons(q->journal);
		rsp = bk_journal_rsp_pushed(q->journal);
		/* Each guest-writable index read once: the checks and recovery see one value. */
		req_prod = READ_ONCE(q->ring.sring->req_prod);
		shared_rsp = READ_ONCE(q->ring.sring->rsp_prod);
		if ((uint32_t)(req_prod - cons) > q->ring.nr_ents ||
		    (uint32_t)(shared_rsp - rsp) > (uint32_t)(cons - rsp)) {
			dev_warn(dev, "q%u: in-flight journal does not match the ring, ignoring it",
				 q->index);
		} else {
			const char *path = bk_journal_path(q->journal);
			struct bk_journal_recovery rec;

			r = bk_journal_recover(q->journal, shared_rsp, journal_reissue, q, &rec);
			if (r == -EUCLEAN)
				return bk_device_fail(
					dev, r,
					"q%u: in-flight journal %s is corrupt: the ring has "
					"%u request(s) taken and not answered (consumed up "
					"to %u, published up to %u), the journal holds %u",
					q->index, path, rec.outstanding, rec.journal_cons,
					rec.published, rec.found);
			if (r < 0)
				return bk_device_fail(dev, r,
						      "q%u: recovering in-flight journal %s: %s",
						      q->index, path, strerror(-r));
			q->ring.req_cons = rec.req_cons;
			q->ring.rsp_prod_pvt = q->ring.rsp_pushed = rec.rsp_prod;
			if (r > 0)
				bk_log_dev(BK_LOG_NOTICE, dev->name,
					   "q%u: re-issuing %d request(s) a previous run left in "
					   "flight",
					   q->index, r);
			return 0;
		}
	}
	if (recovering) {
		/* A fresh connection with the same grants: the old records are stale. */
		bk_journal_close(q->journal, true);
		q->journal = NULL;
		r = bk_journal_open(dir, name, &g, &q->journal, &recovering);
		if (r < 0)
			return bk_device_fail(dev, r, "q%u: in-flight journal %s/%s: %s", q->index,
					      dir, name, strerror(-r));
	}
	bk_journal_set_cons(q->journal, q->ring.req_cons);
	bk_journal_set_pushed(q->journal, q->ring.rsp_pushed);
	return 0;
}

static int queue_setup(struct blkif_dev *bd, struct blkif_queue *q)
{
	struct bk_device *dev = bd->dev;
	struct bk_engine_params ep = { 0 };
	/* Segments, and bounce pages, of the largest request the device admits. */
	unsigned int max_segs = BK_MAX(bd->max_indirect, BLKIF_MAX_SEGMENTS_PER_REQUEST);
	char prefix[32] = "";
	int r;

	if (bd->nr_queues > 1)
		snprintf(prefix, sizeof(prefix), "queue-%u/", q->index);
	r = read_queue_keys(bd, q, prefix);
	if (r < 0)
		return r;

	/* The slots, their segments and the copy batch come with the first request (io.c). */
	q->nr_slots = q->ring.nr_ents;
	q->max_segs = max_segs;
	/* Later queues keep their minimum: a device is served whole (maybe degraded) or not. */
	r = blkif_pool_init(&q->pool, bd->pool_pages, max_segs,
			    (bd->nr_queues - 1 - q->index) * max_segs);
	if (r == -ENOBUFS)
		return bk_device_fail(
			dev, r,
			"q%u: bounce-pool-budget exhausted: %llu KiB in use of %llu "
			"KiB by %u pools, %u queue(s) to set up need %u KiB each for "
			"the largest request",
			q->index, (unsigned long long)(blkif_pool_bytes_in_use() >> 10),
			(unsigned long long)(blkif_pool_budget() >> 10), blkif_pool_nr_in_use(),
			bd->nr_queues - q->index, max_segs * (BK_PAGE_SIZE >> 10));
	if (r < 0)
		return bk_device_fail(dev, r, "q%u: bounce pool of %u pages: %s", q->index,
				      bd->pool_pages, strerror(-r));
	if (q->pool.nr_pages < bd->pool_pages) {
		uint64_t mine = (uint64_t)q->pool.nr_pages * BK_PAGE_SIZE;

		dev_warn_rl(
			dev,
			"q%u: bounce-pool-budget nearly exhausted (%llu KiB of %llu KiB held by "
			"%u pools): degraded to a pool of %u KiB instead of %u KiB (the largest "
			"request needs %u KiB)",
			q->index, (unsigned long long)((blkif_pool_bytes_in_use() - mine) >> 10),
			(unsigned long long)(blkif_pool_budget() >> 10), blkif_pool_nr_in_use() - 1,
			q->pool.nr_pages * (BK_PAGE_SIZE >> 10),
			bd->pool_pages * (BK_PAGE_SIZE >> 10), max_segs * (BK_PAGE_SIZE >> 10));
	}
	ep.name = q->name;
	ep.depth = q->nr_slots;
	ep.options = bd->engine_opts;
	r = bk_engine_open(bd->engine_name, bk_device_loop(dev), bd->store, &ep, &q->engine);
	if (r < 0)
		return bk_device_fail(dev, r, "q%u: opening engine %s on %s: %s", q->index,
				      bd->engine_name, bd->params, strerror(-r));
	r = bk_evport_init(&q->ev, bk_device_loop(dev), bd->evtchn, q->local_port, blkif_backoff_cb,
			   q);
	if (r < 0)
		return bk_device_fail(dev, r, "q%u: timer: %s", q->index, strerror(-r));
	r = bk_loop_add_timer(bk_device_loop(dev), 0, 0, blkif_idle_cb, q, &q->idle);
	if (r < 0)
		return bk_device_fail(dev, r, "q%u: timer: %s", q->index, strerror(-r));
	bk_timer_stop(q->idle);
	return queue_journal(bd, q);
}

int blkif_rings_connect(struct blkif_dev *bd)
{
	struct bk_device *dev = bd->dev;
	_cleanup_free_ char *proto = NULL;
	uint32_t nq = 1, order = 0, pers = 0;
	char shown[33];
	int r;

	r = bk_device_read_fe(dev, "protocol", &proto);
	if (r < 0 && r != -ENOENT)
		return bk_device_fail(dev, r, "reading protocol from the frontend: %s",
				      strerror(-r));
	/* The guest wrote it: bounded and printable before it reaches the log and error node. */
	if (blkif_abi_parse(proto, &bd->abi) < 0)
		return bk_device_fail(dev, -EINVAL, "unknown protocol '%s' from the frontend",
				      bk_printable(proto, shown, sizeof(shown)));

	r = bk_device_fe_nr_queues(dev, bd->offered_queues, &nq);
	if (r < 0)
		return r;
	/* It read multi-queue-max-queues before the script's blanket-queues lowered it. */
	if (nq > bd->max_queues)
		dev_warn(dev, "frontend asked for %u queues before %s=%u was published: serving %u",
			 nq, BK_XS_QUEUES, bd->max_queues, nq);

	r = bk_device_read_fe_opt_u32(dev, "ring-page-order", &order);
	if (r < 0)
		return bk_device_fail(dev, r, "ring-page-order from the frontend is not a number");
	if (order > bd->max_order)
		return bk_device_fail(dev, -EINVAL,
				      "frontend asked for ring-page-order %u, we offer up to %u",
				      order, bd->max_order);

	/*
	 * Used when we offered them (settings.c) and the frontend takes them: one that asks
	 * without our offer (blanket-persistent=off) is served by grant copy, whatever it does
	 * with its grants.
	 */
	r = bk_device_read_fe_opt_u32(dev, "feature-persistent", &pers);
	bd->persistent = bd->pgnt_offer && r >= 0 && pers == 1;

	bd->nr_queues = nq;
	bd->ring_order = order;
	bd->stats_queues = nq;
	bd->queues = calloc(nq, sizeof(*bd->queues));
	if (!bd->queues)
		return bk_device_fail(dev, -ENOMEM, "no memory for %u queues", nq);
	for (unsigned int i = 0; i < nq; i++) {
		struct blkif_queue *q = &bd->queues[i];

		q->bd = bd;
		q->index = i;
		q->ring_pages = 1U << order;
		q->stats = &bd->stats[i];
		q->stats->inflight = 0;
		snprintf(q->name, sizeof(q->name), "%s q%u", dev->name, i);
		list_init(&q->free_list);
		list_init(&q->wait_list);
		list_init(&q->done_list);
	}

	r = bk_device_chan_open(dev, blkif_evtchn_cb, bd, &bd->gnt, &bd->evtchn, &bd->evtchn_watch);
	if (r < 0) {
		blkif_rings_release(bd);
		return r;
	}

	for (unsigned int i = 0; i < nq; i++) {
		r = queue_setup(bd, &bd->queues[i]);
		if (r < 0) {
			blkif_rings_release(bd);
			return r;
		}
	}
	/*
	 * A previous run may have published responses and died before its notify: the guest
	 * still waits for that event, and rsp_event stays below what we publish from now on, so
	 * no later push would send one. Tell each queue once (a spurious event costs blkfront a
	 * look at its ring).
	 */
	for (unsigned int i = 0; bd->adopting && i < nq; i++)
		bk_evtchn_notify(bd->evtchn, bd->queues[i].local_port);
	bd->connected = true;
	return 0;
}

void blkif_rings_release(struct blkif_dev *bd)
{
	/*
	 * Journals are kept when handing over (the next daemon continues from its ring position)
	 * and when taking over a device failed half-way: the queues set up so far have recovered
	 * their journals, and the requests in them are still what the guest waits for.
	 */
	bool keep = bd->handover || (bd->adopting && !bd->connected);

	for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++) {
		struct blkif_queue *q = &bd->queues[i];

		/* Only called with nothing in flight: every slot is free or abandoned. */
		blkif_queue_lat_flush(q);
		bk_evport_free(&q->ev);
		bk_timer_free(q->idle);
		bk_engine_close(q->engine); /* waits for the kernel to finish with our buffers */
		blkif_pgnt_release(q);
		bk_journal_close(q->journal, !keep);
		q->journal = NULL;
		if (q->bound)
			bk_evtchn_unbind(bd->evtchn, q->local_port);
		if (q->mapped)
			bk_gnt_unmap(bd->gnt, q->ring_addr, q->ring_pages);
		blkif_batch_free(&q->batch);
		blkif_pool_free(&q->pool);
		free(q->slots);
		free(q->segs);
		q->stats->inflight = 0;
	}
	free(bd->queues);
	bd->queues = NULL;
	bd->nr_queues = 0;
	bk_device_chan_close(&bd->gnt, &bd->evtchn, &bd->evtchn_watch);
	bd->connected = false;
}
