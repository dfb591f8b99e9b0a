// SPDX-License-Identifier: MIT
/*
 * Crash-point sweep of the in-flight journal. A model daemon serves a model ring through the
 * journal exactly as backends/blkif does (take: record, set_cons; answer: responded; publish:
 * store the shared rsp_prod, set_pushed; restart: recover and adopt; disconnect: release), over
 * a realistic sequence: several taken, answered out of order, published, more taken, the ring
 * indices wrapping past 2^32, restarts (one right after another), a disconnect. After every
 * store into the journal (the test-only store hook) and after the shared ring's rsp_prod store,
 * the journal file and the ring are snapshotted: that is exactly what a process killed there
 * leaves (the file is MAP_SHARED). Each snapshot is then recovered as the next daemon would
 * (with the adoption check of ring.c) and checked:
 *   - nothing whose response the snapshot's ring published is re-issued;
 *   - everything taken and not published is re-issued exactly once, oldest first, with its
 *     bytes, or (only the one taken and not yet counted) left to be taken from the ring again;
 *   - req_cons and rsp_prod continue where the ring is, and the journal keeps serving: all the
 *     rest is answered and published, and the journal is then empty;
 *   - a kill at any store of the recovery itself, and a second recovery of the recovered
 *     state, give the same answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "journal.h"

#define NR 8U		  /* ring entries = backend slots */
#define RAW 112U	  /* one ring slot */
#define MAXREQ 64U	  /* requests the guest ever queues */
#define START 0xfffffff6U /* ring indices wrap past 2^32 ten requests in */
#define MAXSNAP 4096U
#define MAXSUB 512U

static char dir[64];
static const struct bk_journal_geom geom = {
	.nr_slots = NR,
	.raw_size = RAW,
	.abi = 0,
	.nr_refs = 1,
	.refs = { 42 },
	.remote_port = 9,
};

/* ------------------------------------------------------------------------------------------ */
/* The model: ring, daemon and what the guest has seen. Offsets from START (never wrap). */

struct truth {
	uint32_t req_prod;	   /* queued by the guest */
	uint32_t shared_rsp;	   /* the ring's rsp_prod: published */
	uint32_t cons_lo, cons_hi; /* where taking must continue (hi: taken, not yet counted) */
	bool dropping;		   /* the ring is being dropped (disconnect): nothing to adopt */
	bool answered[MAXREQ];
	uint32_t rsp_of[MAXREQ]; /* response index of an answered request */
};

static struct {
	struct truth t;
	struct bk_journal *j;
	uint32_t cons, rsp_pvt;
	int ent[MAXREQ];
} m;

static uint32_t idx(uint32_t off)
{
	return START + off;
}

static void raw_of(uint8_t *raw, uint32_t k)
{
	for (unsigned int i = 0; i < RAW; i++)
		raw[i] = (uint8_t)(k * 31 + i);
	memcpy(raw, &k, sizeof(k));
}

static bool published(const struct truth *t, uint32_t k)
{
	return t->answered[k] && t->rsp_of[k] < t->shared_rsp;
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshots. */

struct snap {
	struct truth t;
	uint8_t *bytes;
	size_t len;
};

static struct snap snaps[MAXSNAP];
static unsigned int nr_snaps;
static int snap_fd = -1;
static bool recording;

static uint8_t *file_bytes(int fd, size_t *ret_len)
{
	off_t len = lseek(fd, 0, SEEK_END);
	uint8_t *b;

	if (len < 0)
		abort();
	b = malloc((size_t)len + 1);
	if (!b || pread(fd, b, (size_t)len, 0) != len)
		abort();
	*ret_len = (size_t)len;
	return b;
}

static void snap_now(void)
{
	struct snap *s;

	if (!recording || snap_fd < 0)
		return;
	if (nr_snaps == MAXSNAP)
		abort();
	s = &snaps[nr_snaps++];
	s->t = m.t;
	s->bytes = file_bytes(snap_fd, &s->len);
}

static void store_hook(void *data)
{
	(void)data;
	snap_now();
}

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void write_file(const char *name, const uint8_t *b, size_t len)
{
	char path[128];
	int fd;

	path_of(path, sizeof(path), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, b, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* ------------------------------------------------------------------------------------------ */
/* Recovery as ring.c's queue_journal does it when adopting. */

struct result {
	int r;
	bool fresh;
	uint32_t cons, rsp;
	unsigned int n;
	uint32_t k[NR * 2 + 2];
	int ent[NR * 2 + 2];
	bool raw_ok;
};

static void reissue(int ent, const void *raw, void *data)
{
	struct result *res = data;
	uint8_t want[RAW];
	uint32_t k;

	memcpy(&k, raw, sizeof(k));
	raw_of(want, k < MAXREQ ? k : 0);
	if (k >= MAXREQ || memcmp(want, raw, RAW))
		res->raw_ok = false;
	if (res->n < NR * 2 + 2) {
		res->k[res->n] = k;
		/* The backend admits it into a slot, which adopts its entry. */
		res->ent[res->n] = ent;
	}
	res->n++;
}

/* Open @name and recover it against the ring @shared_rsp/@req_prod; leaves it open in *ret_j. */
static void daemon_recover(const char *name, uint32_t shared_rsp, uint32_t req_prod,
			   struct bk_journal **ret_j, struct result *res)
{
	struct bk_journal_recovery rec;
	struct bk_journal *j;
	uint32_t cons, rsp;
	bool adopt = false;

	memset(res, 0, sizeof(*res));
	res->raw_ok = true;
	res->r = bk_journal_open(dir, name, &geom, &j, &adopt);
	if (res->r < 0) {
		*ret_j = NULL;
		return;
	}
	*ret_j = j;
	if (adopt) {
		cons = bk_journal_req_cons(j);
		rsp = bk_journal_rsp_pushed(j);
		/* The ring must be the one the journal was written for (ring.c). */
		if ((uint32_t)(req_prod - cons) > NR ||
		    (uint32_t)(shared_rsp - rsp) > (uint32_t)(cons - rsp))
			adopt = false;
	}
	if (!adopt) {
		/* Not adoptable: ring.c starts afresh from the shared ring. */
		res->fresh = true;
		bk_journal_close(j, true);
		res->r = bk_journal_open(dir, name, &geom, &j, &adopt);
		*ret_j = res->r < 0 ? NULL : j;
		if (res->r < 0)
			return;
		res->cons = res->rsp = shared_rsp;
		bk_journal_set_cons(j, shared_rsp);
		bk_journal_set_pushed(j, shared_rsp);
		return;
	}
	res->r = bk_journal_recover(j, shared_rsp, reissue, res, &rec);
	if (res->r < 0)
		return;
	res->cons = rec.req_cons;
	res->rsp = rec.rsp_prod;
}

static bool same_result(const struct result *a, const struct result *b)
{
	if (a->r < 0 || b->r < 0)
		return a->r == b->r;
	if (a->cons != b->cons || a->rsp != b->rsp || a->n != b->n)
		return false;
	/* The same requests, from the same entries (recovery moves nothing). */
	for (unsigned int i = 0; i < a->n && i < NR * 2 + 2; i++)
		if (a->k[i] != b->k[i] || a->ent[i] != b->ent[i])
			return false;
	return true;
}

static unsigned int failed_snaps, nr_sub_kills;

/* What recovering snapshot @s gave, checked against what its ring and guest had seen. */
static bool check_result(const struct snap *s, const struct result *res, char *why, size_t len)
{
	const struct truth *t = &s->t;
	unsigned int times[MAXREQ] = { 0 };
	uint32_t cons, rsp;

	if (res->r < 0) {
		snprintf(why, len, "recovery failed: %s", strerror(-res->r));
		return false;
	}
	if (!res->raw_ok) {
		snprintf(why, len, "a re-issued request's bytes are not what was taken");
		return false;
	}
	if (t->dropping) {
		if (res->fresh)
			return true;
		snprintf(why, len, "a ring being dropped was adopted");
		return false;
	}
	cons = res->cons - START;
	rsp = res->rsp - START;
	if (rsp != t->shared_rsp) {
		snprintf(why, len, "continues answering at +%u, the ring published up to +%u", rsp,
			 t->shared_rsp);
		return false;
	}
	if (cons < t->cons_lo || cons > t->cons_hi) {
		snprintf(why, len, "continues taking at +%u, the daemon had taken +%u..+%u", cons,
			 t->cons_lo, t->cons_hi);
		return false;
	}
	if (res->n > NR * 2 + 2) {
		snprintf(why, len, "%u requests re-issued", res->n);
		return false;
	}
	for (unsigned int i = 0; i < res->n; i++) {
		if (res->k[i] >= MAXREQ) {
			snprintf(why, len, "re-issued an unknown request %u", res->k[i]);
			return false;
		}
		if (i && res->k[i] <= res->k[i - 1]) {
			snprintf(why, len, "re-issued +%u after +%u: not oldest first", res->k[i],
				 res->k[i - 1]);
			return false;
		}
		times[res->k[i]]++;
	}
	for (uint32_t k = 0; k < t->req_prod; k++) {
		/* Run once more: re-issued, or taken from the ring again. */
		unsigned int runs = times[k] + (k >= cons);

		if (published(t, k) && runs) {
			snprintf(why, len,
				 "request +%u answered at +%u and published (rsp_prod +%u), "
				 "but run again (%s)",
				 k, t->rsp_of[k], t->shared_rsp,
				 times[k] ? "re-issued" : "taken again");
			return false;
		}
		if (!published(t, k) && runs != 1) {
			snprintf(why, len,
				 "request +%u (%s) not published, but runs %u times after "
				 "recovery",
				 k, t->answered[k] ? "answered" : "not answered", runs);
			return false;
		}
	}
	if (cons - rsp != res->n) {
		snprintf(why, len, "%u outstanding (+%u..+%u), %u re-issued", cons - rsp, rsp, cons,
			 res->n);
		return false;
	}
	return true;
}

/*
 * After a recovery, the journal keeps serving: answer what was re-issued and what the ring
 * still holds, publish, and the journal is then empty and recovers to the ring's end. Closes
 * @j.
 */
static bool serve_rest(struct bk_journal *j, const struct snap *s, const struct result *res,
		       char *why, size_t len)
{
	uint32_t cons = res->cons, rsp = res->rsp, req_prod = idx(s->t.req_prod);
	struct result again;
	uint8_t raw[RAW];

	if (s->t.dropping) {
		bk_journal_close(j, true);
		return true;
	}
	for (unsigned int i = 0; i < res->n; i++)
		bk_journal_responded(j, res->ent[i], rsp++);
	while (cons != req_prod) {
		int e;

		raw_of(raw, cons - START);
		e = bk_journal_record(j, raw);
		if (e < 0) {
			snprintf(why, len, "no journal entry for a new request: %d", e);
			bk_journal_close(j, true);
			return false;
		}
		bk_journal_set_cons(j, ++cons);
		bk_journal_responded(j, e, rsp++);
	}
	bk_journal_set_pushed(j, rsp);
	if (bk_journal_nr_live(j) != 0) {
		snprintf(why, len, "%u entries live with everything answered and published",
			 bk_journal_nr_live(j));
		bk_journal_close(j, true);
		return false;
	}
	bk_journal_close(j, false);
	daemon_recover("chk", rsp, req_prod, &j, &again);
	bk_journal_close(j, true);
	if (again.r < 0 || again.fresh || again.n || again.cons != req_prod ||
	    again.rsp != req_prod) {
		snprintf(why, len,
			 "after serving the rest: r %d fresh %d, %u re-issued, cons +%u "
			 "rsp +%u (want +%u)",
			 again.r, again.fresh, again.n, again.cons - START, again.rsp - START,
			 s->t.req_prod);
		return false;
	}
	return true;
}

/* Recover snapshot @s; also at every store of that recovery, and once more afterwards. */
static void check_snap(unsigned int k)
{
	static struct snap sub[MAXSUB];
	const struct snap *s = &snaps[k];
	struct result res, res2;
	struct bk_journal *j;
	unsigned int nr_sub = 0;
	char why[320] = "", path[128];
	bool ok;

	write_file("chk", s->bytes, s->len);
	path_of(path, sizeof(path), "chk");
	/* Every store of the recovery is a kill point too. */
	snap_fd = open(path, O_RDONLY);
	recording = true;
	{
		unsigned int base = nr_snaps;

		daemon_recover("chk", idx(s->t.shared_rsp), idx(s->t.req_prod), &j, &res);
		recording = false;
		if (nr_snaps - base > MAXSUB)
			abort();
		for (unsigned int i = base; i < nr_snaps; i++)
			sub[nr_sub++] = snaps[i];
		nr_sub_kills += nr_sub;
		nr_snaps = base;
	}
	close(snap_fd);
	snap_fd = -1;
	ok = check_result(s, &res, why, sizeof(why));
	/* A second recovery of the recovered state gives the same answer. */
	if (ok && j) {
		bk_journal_close(j, false);
		daemon_recover("chk", idx(s->t.shared_rsp), idx(s->t.req_prod), &j, &res2);
		if (!same_result(&res, &res2)) {
			snprintf(why, sizeof(why),
				 "a second recovery of the recovered state differs: "
				 "%u re-issued from +%u (was %u from +%u)",
				 res2.n, res2.cons - START, res.n, res.cons - START);
			ok = false;
		}
		if (ok)
			ok = serve_rest(j, s, &res2, why, sizeof(why));
		else
			bk_journal_close(j, true);
		j = NULL;
	}
	if (j)
		bk_journal_close(j, true);
	/* Killed at any store of the recovery: the next one gives the same answer. */
	for (unsigned int i = 0; ok && i < nr_sub; i++) {
		write_file("chk", sub[i].bytes, sub[i].len);
		daemon_recover("chk", idx(s->t.shared_rsp), idx(s->t.req_prod), &j, &res2);
		if (j)
			bk_journal_close(j, true);
		if (!same_result(&res, &res2)) {
			char w2[200];

			if (!check_result(s, &res2, w2, sizeof(w2)))
				snprintf(why, sizeof(why), "killed at store %u of the recovery: %s",
					 i + 1, w2);
			else
				snprintf(why, sizeof(why),
					 "killed at store %u of the recovery: "
					 "%u re-issued from +%u (was %u from +%u)",
					 i + 1, res2.n, res2.cons - START, res.n, res.cons - START);
			ok = false;
		}
	}
	for (unsigned int i = 0; i < nr_sub; i++)
		free(sub[i].bytes);
	if (!ok) {
		if (failed_snaps++ < 12)
			fprintf(stderr, "kill after store %u (published +%u, taken +%u..+%u): %s\n",
				k, s->t.shared_rsp, s->t.cons_lo, s->t.cons_hi, why);
		bk_test_failures++;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* The model daemon. */

static void guest_queue(uint32_t n)
{
	m.t.req_prod += n;
	if (m.t.req_prod - m.t.shared_rsp > NR || m.t.req_prod > MAXREQ)
		abort(); /* the guest never has more than the ring outstanding */
}

static void take(void)
{
	uint32_t k = m.cons;
	uint8_t raw[RAW];

	if (k >= m.t.req_prod || m.cons - m.rsp_pvt >= NR)
		abort();
	raw_of(raw, k);
	m.cons++;
	m.t.cons_hi = m.cons; /* taken off the ring, not counted yet */
	m.ent[k] = bk_journal_record(m.j, raw);
	if (m.ent[k] < 0)
		abort();
	bk_journal_set_cons(m.j, idx(m.cons));
	m.t.cons_lo = m.cons;
}

static void take_n(unsigned int n)
{
	while (n--)
		take();
}

static void answer(uint32_t k)
{
	if (k >= m.cons || m.t.answered[k])
		abort();
	m.t.answered[k] = true; /* the response is written at rsp_pvt */
	m.t.rsp_of[k] = m.rsp_pvt++;
	bk_journal_responded(m.j, m.ent[k], idx(m.t.rsp_of[k]));
}

static void publish(void)
{
	m.t.shared_rsp = m.rsp_pvt; /* the ring's rsp_prod store... */
	snap_now();
	bk_journal_set_pushed(m.j, idx(m.rsp_pvt)); /* ...then the journal learns it */
}

static void daemon_open(void)
{
	bool rec;

	if (bk_journal_open(dir, "q", &geom, &m.j, &rec) < 0 || rec)
		abort();
	bk_journal_set_cons(m.j, idx(m.cons));
	bk_journal_set_pushed(m.j, idx(m.rsp_pvt));
}

/* kill -9 and a new daemon adopting the ring: what the guest has not seen runs again. */
static void restart(void)
{
	struct result res;

	bk_journal_close(m.j, false);
	daemon_recover("q", idx(m.t.shared_rsp), idx(m.t.req_prod), &m.j, &res);
	if (res.r < 0 || !m.j || res.fresh) {
		fprintf(stderr, "the model's own restart failed: %d\n", res.r);
		bk_test_failures++;
		abort();
	}
	m.cons = res.cons - START;
	m.rsp_pvt = res.rsp - START;
	m.t.cons_lo = m.t.cons_hi = m.cons;
	for (unsigned int i = 0; i < res.n && i < NR * 2 + 2; i++) {
		m.ent[res.k[i]] = res.ent[i];
		m.t.answered[res.k[i]] = false; /* answered again, at a new index */
	}
}

/* The guest disconnects: the queue drops what it had taken, the journal goes. */
static void disconnect(void)
{
	m.t.dropping = true;
	for (uint32_t k = 0; k < m.cons; k++)
		if (!m.t.answered[k])
			bk_journal_release(m.j, m.ent[k]);
	bk_journal_close(m.j, true);
	m.j = NULL;
}

static void script(void)
{
	daemon_open();
	guest_queue(6);
	take_n(5);
	answer(1);
	answer(3);
	publish();
	answer(0);
	answer(4);
	take();
	answer(5);
	publish();
	answer(2); /* answered, not published */
	guest_queue(7);
	take_n(6); /* indices wrap past 2^32 */
	answer(8);
	answer(6);
	publish();
	answer(11);
	answer(7);
	restart(); /* re-issues 7, 9, 10, 11 */
	take();
	answer(10);
	answer(12);
	publish();
	guest_queue(5);
	take_n(5);
	answer(7);
	answer(9);
	answer(14);
	answer(13);
	publish();
	answer(11);
	restart();
	restart(); /* killed again before anything new was answered */
	for (uint32_t k = 0; k < m.cons; k++)
		if (!m.t.answered[k])
			answer(k);
	publish();
	guest_queue(8);
	take_n(8);
	answer(20);
	answer(18);
	publish();
	guest_queue(2);
	take_n(2);
	disconnect();
}

int main(void)
{
	char path[128];

	snprintf(dir, sizeof(dir), "/tmp/bk-journal-sweep-%d", (int)getpid());
	bk_journal_set_store_hook(store_hook, NULL);
	memset(&m, 0, sizeof(m));
	/* The journal file the model daemon writes, read back at every store. */
	path_of(path, sizeof(path), "q");
	recording = false;
	{
		struct bk_journal *j;
		bool rec;

		/* Create it first, so the sweep can read it from the first store on. */
		if (bk_journal_open(dir, "q", &geom, &j, &rec) < 0) {
			fprintf(stderr, "cannot create the journal under %s\n", dir);
			return 1;
		}
		bk_journal_close(j, true);
	}
	snap_fd = open(path, O_RDONLY | O_CREAT, 0600);
	recording = true;
	script();
	recording = false;
	close(snap_fd);
	snap_fd = -1;
	printf("%u kill points\n", nr_snaps);
	CHECK(nr_snaps > 100);

	{
		unsigned int total = nr_snaps;

		for (unsigned int k = 0; k < total; k++)
			check_snap(k);
		printf("%u kill points inside those recoveries\n", nr_sub_kills);
		if (failed_snaps)
			fprintf(stderr, "%u of %u kill points recover wrongly\n", failed_snaps,
				total);
		for (unsigned int k = 0; k < total; k++)
			free(snaps[k].bytes);
	}
	path_of(path, sizeof(path), "chk");
	unlink(path);
	path_of(path, sizeof(path), "q");
	unlink(path);
	rmdir(dir);
	return bk_test_exit();
}
