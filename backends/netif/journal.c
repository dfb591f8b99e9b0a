// SPDX-License-Identifier: MIT
/*
 * What a vif needs to survive a restart of the daemon, kill -9 included.
 *
 * Why the ring's own indices do not suffice: the data path holds nothing across loop turns
 * (every request taken is answered and published in the same turn), so requests between the
 * shared rsp_prod and req_prod are exactly the ones a next daemon must take again. But a
 * response is written over its own request's slot (netfront finds RX responses by ring
 * position, and TX responses go to the slots consumed), and a process killed between writing
 * responses and publishing rsp_prod leaves slots that hold half a response and half a request:
 * a TX slot whose gref is now "id | status << 16", an RX slot whose gref is "flags | status <<
 * 16". Taken again, they copy from or into some other grant of the guest: a garbage frame
 * with a valid checksum on the bridge, or a frame written over another buffer of the guest.
 *
 * So each ring keeps the shared in-flight journal (src/journal.h) with one entry per slot
 * taken, recorded before any response can overwrite it. After a kill, recovery gives back the
 * raw slots that were taken and not published, oldest first; they are written back into their
 * own ring slots (which belong to the backend until their responses are published: a frontend
 * never writes there), and the ring is then exactly as the guest left it, served from
 * rsp_prod on like any ring. The journal is then started afresh: a crash during the write-back
 * finds the old journal and writes the same bytes again; a crash after it finds the ring
 * whole. A TX frame taken again may reach the bridge twice (what a network may do); an RX
 * buffer filled and not published is filled again with a later frame; a frame the previous
 * daemon held for the guest is lost, as on a wire.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "journal.h"

static void (*test_hook)(struct bk_device *dev, enum netif_point point, void *data);
static void *test_hook_data;

void netif_set_test_hook(void (*fn)(struct bk_device *dev, enum netif_point point, void *data),
			 void *data)
{
	test_hook = fn;
	test_hook_data = data;
}

static void point(struct netif_queue *q, struct netif_ring *r, enum netif_point p)
{
	if (unlikely(test_hook))
		test_hook(q->nd->dev, r == &q->tx ? p : p + NETIF_POINT_RX_TAKEN, test_hook_data);
}

static struct netif_jring *jring(struct netif_queue *q, struct netif_ring *r)
{
	return r == &q->tx ? &q->jtx : &q->jrx;
}

void netif_journal_take(struct netif_queue *q, struct netif_ring *r, const void *raw, uint32_t n)
{
	struct netif_jring *jr = jring(q, r);
	uint32_t idx = r->req_cons - n;

	for (uint32_t i = 0; jr->j && i < n; i++, idx++) {
		jr->ent[idx & (NETIF_RING_SIZE - 1)] =
			bk_journal_record(jr->j, (const uint8_t *)raw + (size_t)i * r->slot_size);
		bk_journal_set_cons(jr->j, idx + 1);
	}
	if (n)
		point(q, r, NETIF_POINT_TX_TAKEN);
}

void netif_journal_answered(struct netif_queue *q, struct netif_ring *r)
{
	struct netif_jring *jr = jring(q, r);

	if (r->rsp_pushed == r->rsp_prod_pvt)
		return;
	for (uint32_t idx = r->rsp_pushed; jr->j && idx != r->rsp_prod_pvt; idx++)
		bk_journal_responded(jr->j, jr->ent[idx & (NETIF_RING_SIZE - 1)], idx);
	point(q, r, NETIF_POINT_TX_ANSWERED);
}

void netif_journal_pushed(struct netif_queue *q, struct netif_ring *r)
{
	struct netif_jring *jr = jring(q, r);

	if (jr->pushed == r->rsp_pushed)
		return;
	jr->pushed = r->rsp_pushed;
	/* Published, not yet notified, and the journal not yet told. */
	point(q, r, NETIF_POINT_TX_PUSHED);
	if (jr->j)
		bk_journal_set_pushed(jr->j, r->rsp_pushed);
}

struct writeback {
	struct netif_ring *r;
	uint32_t idx;
};

/* Put a taken, unpublished request back in its own slot; its entry goes with the journal. */
static void writeback(int ent, const void *raw, void *data)
{
	struct writeback *wb = data;
	struct netif_ring *r = wb->r;

	memcpy(r->slots + (size_t)(wb->idx & (NETIF_RING_SIZE - 1)) * r->slot_size, raw,
	       r->slot_size);
	wb->idx++;
}

/*
 * A ring a previous run served: put back what it took and did not publish. 0 (nothing to
 * do, or done), or -errno after bk_device_fail().
 */
static int recover(struct netif_queue *q, struct netif_ring *r, struct netif_jring *jr,
		   const char *what)
{
	struct bk_device *dev = q->nd->dev;
	uint32_t cons = bk_journal_req_cons(jr->j), rsp = bk_journal_rsp_pushed(jr->j);
	/* Each guest-writable index read once. */
	uint32_t req_prod = READ_ONCE(r->sring->req_prod);
	uint32_t shared_rsp = READ_ONCE(r->sring->rsp_prod);
	struct bk_journal_recovery rec;
	struct writeback wb = { r, shared_rsp }; /* slots from the published index on */
	int n;

	/*
	 * The ring must be the one the journal was written for (same refs and port are checked
	 * by the geometry; a new ring at the same grants starts from 0 again): we published at
	 * least up to the journal's index and never beyond what we consumed, and the guest
	 * never posts more than a ring beyond what we consumed.
	 */
	if ((uint32_t)(req_prod - cons) > NETIF_RING_SIZE ||
	    (uint32_t)(shared_rsp - rsp) > (uint32_t)(cons - rsp)) {
		dev_warn(dev, "q%u: %s in-flight journal does not match the ring, ignoring it",
			 q->index, what);
		return 0;
	}
	n = bk_journal_recover(jr->j, shared_rsp, writeback, &wb, &rec);
	if (n == -EUCLEAN)
		return bk_device_fail(dev, n,
				      "q%u: %s in-flight journal %s is corrupt: the ring has %u "
				      "slot(s) taken and not answered (consumed up to %u, "
				      "published up to %u), the journal holds %u",
				      q->index, what, bk_journal_path(jr->j), rec.outstanding,
				      rec.journal_cons, rec.published, rec.found);
	if (n < 0)
		return bk_device_fail(dev, n, "q%u: recovering %s in-flight journal %s: %s",
				      q->index, what, bk_journal_path(jr->j), strerror(-n));
	if (wb.idx != rec.rsp_prod + (uint32_t)n)
		return bk_device_fail(dev, -EUCLEAN,
				      "q%u: %s in-flight journal %s does not start at the ring's "
				      "published index %u",
				      q->index, what, bk_journal_path(jr->j), rec.rsp_prod);
	r->req_cons = r->rsp_prod_pvt = r->rsp_pushed = rec.rsp_prod;
	if (n > 0)
		bk_log_dev(BK_LOG_NOTICE, dev->name,
			   "q%u: %d %s slot(s) a previous run took and did not answer are served "
			   "again",
			   q->index, n, what);
	return 0;
}

static int jring_open(struct netif_queue *q, struct netif_ring *r, const char *dir)
{
	struct netif_dev *nd = q->nd;
	struct bk_device *dev = nd->dev;
	struct netif_jring *jr = jring(q, r);
	bool tx = r == &q->tx, recovering = false;
	const char *what = tx ? "TX" : "RX";
	struct bk_journal_geom g = {
		.nr_slots = NETIF_RING_SIZE,
		.raw_size = r->slot_size,
		.abi = tx ? 1 : 2,
		.nr_refs = 1,
		.refs = { tx ? q->tx_ref : q->rx_ref },
		.remote_port = tx ? q->tx_rport : q->rx_rport,
	};
	char name[BK_JOURNAL_NAME_MAX];
	int r2;

	r2 = bk_device_journal_name(dev, q->index, tx ? "tx" : "rx", name, sizeof(name));
	if (r2 < 0)
		return bk_device_fail(dev, r2, "q%u: in-flight journal name: %s", q->index,
				      strerror(-r2));
	r2 = bk_journal_open(dir, name, &g, &jr->j, &recovering);
	if (r2 < 0)
		return bk_device_fail(dev, r2, "q%u: in-flight journal %s/%s: %s", q->index, dir,
				      name, strerror(-r2));
	if (recovering && nd->adopting) {
		r2 = recover(q, r, jr, what);
		if (r2 < 0)
			return r2;
	}
	if (recovering) {
		/* Recovered into the ring, or stale (a fresh connection with the same grants). */
		bk_journal_close(jr->j, true);
		jr->j = NULL;
		r2 = bk_journal_open(dir, name, &g, &jr->j, &recovering);
		if (r2 < 0)
			return bk_device_fail(dev, r2, "q%u: in-flight journal %s/%s: %s", q->index,
					      dir, name, strerror(-r2));
	}
	bk_journal_set_cons(jr->j, r->req_cons);
	bk_journal_set_pushed(jr->j, r->rsp_pushed);
	return 0;
}

int netif_journal_open(struct netif_queue *q)
{
	char dir[BK_JOURNAL_DIR_MAX];
	int r;

	q->jtx.pushed = q->tx.rsp_pushed;
	q->jrx.pushed = q->rx.rsp_pushed;
	if (bk_device_journal_dir(q->nd->dev, dir, sizeof(dir)) < 0)
		return 0;
	r = jring_open(q, &q->tx, dir);
	if (r < 0)
		return r;
	return jring_open(q, &q->rx, dir);
}

void netif_journal_close(struct netif_queue *q, bool keep)
{
	bk_journal_close(q->jtx.j, !keep);
	bk_journal_close(q->jrx.j, !keep);
	q->jtx.j = q->jrx.j = NULL;
}
