// SPDX-License-Identifier: MIT
/*
 * The in-flight journal: crash at every step of the take/answer/publish protocol, reopen, and
 * check that recovery re-issues exactly the requests the guest has not seen answered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "check.h"

static char dir[64];

static const struct bk_journal_geom geom = {
	.nr_slots = 8,
	.raw_size = 112,
	.abi = 0,
	.nr_refs = 2,
	.refs = { 10, 11 },
	.remote_port = 7,
};

struct seen {
	unsigned int n;
	uint8_t ids[16];
};

static void reissue(int ent, const void *raw, void *data)
{
	struct seen *s = data;

	if (s->n < 16)
		s->ids[s->n] = ((const uint8_t *)raw)[0];
	s->n++;
}

static void raw_of(uint8_t *raw, uint8_t id)
{
	memset(raw, 0xee, 112);
	raw[0] = id;
}

/* bk_journal_recover, with the two indices it continues from. */
static int recover(struct bk_journal *j, uint32_t shared_rsp_prod,
		   void (*fn)(int ent, const void *raw, void *data), void *data, uint32_t *ret_cons,
		   uint32_t *ret_rsp)
{
	struct bk_journal_recovery rec;
	int r = bk_journal_recover(j, shared_rsp_prod, fn, data, &rec);

	if (r >= 0) {
		*ret_cons = rec.req_cons;
		*ret_rsp = rec.rsp_prod;
	}
	return r;
}

static int ent[5];

/* Five requests taken (ids 1..5, ring indices 100..104); vary how far answering got. */
static struct bk_journal *setup(void)
{
	struct bk_journal *j;
	bool rec = true;
	uint8_t raw[112];

	CHECK(bk_journal_open(dir, "q0", &geom, &j, &rec) == 0);
	CHECK(!rec);
	for (uint8_t i = 0; i < 5; i++) {
		raw_of(raw, (uint8_t)(i + 1));
		ent[i] = bk_journal_record(j, raw);
		CHECK(ent[i] >= 0);
	}
	bk_journal_set_cons(j, 105);
	bk_journal_set_pushed(j, 100);
	CHECK(bk_journal_nr_live(j) == 5);
	return j;
}

static struct bk_journal *reopen_as(struct bk_journal *j, const char *name)
{
	bool rec = false;

	bk_journal_close(j, false); /* the crash: nothing is cleaned up */
	CHECK(bk_journal_open(dir, name, &geom, &j, &rec) == 0);
	CHECK(rec);
	return j;
}

static struct bk_journal *reopen(struct bk_journal *j)
{
	return reopen_as(j, "q0");
}

static void test_crash_points(void)
{
	struct bk_journal *j;
	struct seen s;
	uint32_t cons = 0, rsp = 0;

	/* Crash with nothing answered: all five again, in order. */
	j = reopen(setup());
	memset(&s, 0, sizeof(s));
	CHECK(recover(j, 100, reissue, &s, &cons, &rsp) == 5);
	CHECK(cons == 105 && rsp == 100);
	CHECK(s.n == 5 && s.ids[0] == 1 && s.ids[4] == 5);
	bk_journal_close(j, true);

	/* Two answered (ids 2 and 4 at 100, 101) but not published. */
	j = setup();
	bk_journal_responded(j, ent[1], 100);
	bk_journal_responded(j, ent[3], 101);
	j = reopen(j);
	memset(&s, 0, sizeof(s));
	CHECK(recover(j, 100, reissue, &s, &cons, &rsp) == 5);
	CHECK(rsp == 100);
	bk_journal_close(j, true);

	/* Published in the ring, crash before the journal noted it: the ring says 102. */
	j = setup();
	bk_journal_responded(j, ent[1], 100);
	bk_journal_responded(j, ent[3], 101);
	j = reopen(j);
	memset(&s, 0, sizeof(s));
	CHECK(recover(j, 102, reissue, &s, &cons, &rsp) == 3);
	CHECK(rsp == 102 && cons == 105);
	CHECK(s.n == 3 && s.ids[0] == 1 && s.ids[1] == 3 && s.ids[2] == 5);
	bk_journal_close(j, true);

	/* Fully published: only the rest. The freed entry is reused by the next take. */
	j = setup();
	bk_journal_responded(j, ent[1], 100);
	CHECK(bk_journal_nr_live(j) == 5);
	bk_journal_set_pushed(j, 101);
	CHECK(bk_journal_nr_live(j) == 4);
	j = reopen(j);
	memset(&s, 0, sizeof(s));
	CHECK(recover(j, 101, reissue, &s, &cons, &rsp) == 4);
	CHECK(rsp == 101);
	bk_journal_close(j, true);

	/* A hostile rsp_prod outside [pushed, cons] is ignored. */
	j = reopen(setup());
	memset(&s, 0, sizeof(s));
	CHECK(recover(j, 5000, reissue, &s, &cons, &rsp) == 5);
	CHECK(rsp == 100);
	bk_journal_close(j, true);
	j = reopen(setup());
	memset(&s, 0, sizeof(s));
	CHECK(recover(j, 99, reissue, &s, &cons, &rsp) == 5);
	CHECK(rsp == 100);
	/* The re-issued requests keep their entries: a second crash re-issues them again. */
	j = reopen(j);
	memset(&s, 0, sizeof(s));
	CHECK(recover(j, 100, reissue, &s, &cons, &rsp) == 5);
	CHECK(cons == 105 && rsp == 100 && s.ids[0] == 1 && s.ids[4] == 5);
	bk_journal_close(j, true);
}

/* A crash between recording a request and advancing the consumer index. */
static void test_crash_before_cons(void)
{
	struct bk_journal *j = setup();
	struct seen s = { 0 };
	uint32_t cons = 0, rsp = 0;
	uint8_t raw[112];

	raw_of(raw, 6);
	CHECK(bk_journal_record(j, raw) >= 0); /* index 105, cons still says 105 */
	j = reopen(j);
	CHECK(recover(j, 100, reissue, &s, &cons, &rsp) == 6);
	CHECK(cons == 106 && rsp == 100);
	CHECK(s.n == 6 && s.ids[5] == 6);
	bk_journal_close(j, true);
}

static void test_wrap(void)
{
	struct bk_journal *j;
	struct seen s = { 0 };
	uint32_t cons = 0, rsp = 0;
	uint8_t raw[112];
	bool rec;

	/* Indices straddle 2^32. */
	CHECK(bk_journal_open(dir, "wrap", &geom, &j, &rec) == 0);
	raw_of(raw, 1);
	int e0 = bk_journal_record(j, raw);
	raw_of(raw, 2);
	CHECK(bk_journal_record(j, raw) >= 0);
	bk_journal_set_pushed(j, 0xffffffffU);
	bk_journal_set_cons(j, 1);
	bk_journal_responded(j, e0, 0xffffffffU);
	bk_journal_close(j, false);
	CHECK(bk_journal_open(dir, "wrap", &geom, &j, &rec) == 0 && rec);
	CHECK(recover(j, 0, reissue, &s, &cons, &rsp) == 1);
	CHECK(s.ids[0] == 2 && cons == 1 && rsp == 0);
	bk_journal_close(j, true);
}

/*
 * A slot answered and reused before the publish: the answered record must survive until the
 * publish, and the journal must hold 2 * nr_slots records meanwhile.
 */
static void test_reuse_before_publish(void)
{
	struct bk_journal *j;
	struct seen s = { 0 };
	uint32_t cons = 0, rsp = 0;
	uint8_t raw[112];
	int e[16];
	bool rec;

	CHECK(bk_journal_open(dir, "reuse", &geom, &j, &rec) == 0);
	for (unsigned int i = 0; i < 8; i++) {
		raw_of(raw, (uint8_t)(10 + i));
		e[i] = bk_journal_record(j, raw);
	}
	bk_journal_set_cons(j, 8);
	for (unsigned int i = 0; i < 8; i++)
		bk_journal_responded(j, e[i], i);
	/* All eight slots reused for new requests before anything is published. */
	for (unsigned int i = 8; i < 16; i++) {
		raw_of(raw, (uint8_t)(10 + i));
		e[i] = bk_journal_record(j, raw);
		CHECK(e[i] >= 0);
	}
	bk_journal_set_cons(j, 16);
	CHECK(bk_journal_record(j, raw) == -ENOSPC);
	CHECK(bk_journal_nr_live(j) == 16);
	/*
	 * The guest cannot have queued the eight new ones before it saw the first eight answers:
	 * the ring published them, the journal had not learnt it yet.
	 */
	j = reopen_as(j, "reuse");
	CHECK(recover(j, 8, reissue, &s, &cons, &rsp) == 8);
	CHECK(s.n == 8 && s.ids[0] == 18 && s.ids[7] == 25);
	CHECK(cons == 16 && rsp == 8);
	bk_journal_close(j, true);
}

/*
 * Re-issued requests keep their entries: the caller adopts them (no second record), answers
 * them like any other, and the journal empties once those answers are published.
 */
struct adopt {
	int ents[16];
	unsigned int n;
};

static void reissue_adopt(int e, const void *raw, void *data)
{
	struct adopt *a = data;

	if (a->n < 16)
		a->ents[a->n] = e;
	a->n++;
}

static void test_recover_adopts(void)
{
	struct bk_journal *j = reopen(setup());
	struct adopt a = { 0 };
	uint32_t cons = 0, rsp = 0;

	CHECK(recover(j, 100, reissue_adopt, &a, &cons, &rsp) == 5);
	CHECK(a.n == 5);
	CHECK(bk_journal_nr_live(j) == 5);
	for (unsigned int i = 0; i < 5 && i < a.n; i++)
		bk_journal_responded(j, a.ents[i], 100 + i);
	bk_journal_set_pushed(j, 105);
	CHECK(bk_journal_nr_live(j) == 0);
	j = reopen(j);
	a.n = 0;
	CHECK(recover(j, 105, reissue_adopt, &a, &cons, &rsp) == 0);
	CHECK(cons == 105 && rsp == 105);
	bk_journal_close(j, true);
}

/*
 * A journal that cannot account for the requests the ring says are outstanding is corrupt:
 * recovery refuses (nothing re-issued, nothing changed) and says with which numbers.
 */
static void test_corrupt(void)
{
	struct bk_journal_recovery rec;
	struct bk_journal *j;
	struct seen s = { 0 };
	uint32_t cons = 0, rsp = 0;
	uint8_t raw[112];

	/* Five taken, but the consumer index says eight: three requests lost. */
	j = setup();
	bk_journal_set_cons(j, 108);
	j = reopen(j);
	CHECK(bk_journal_recover(j, 100, reissue, &s, &rec) == -EUCLEAN);
	CHECK(s.n == 0);
	CHECK(rec.outstanding == 8 && rec.found == 5 && rec.journal_cons == 108 &&
	      rec.published == 100);
	CHECK(bk_journal_nr_live(j) == 5);
	/* Refused without a store: the same answer again. */
	CHECK(bk_journal_recover(j, 100, reissue, &s, &rec) == -EUCLEAN);
	bk_journal_close(j, true);

	/* Two more recorded than the consumer index can explain (one is a crash, two is not). */
	j = setup();
	raw_of(raw, 6);
	CHECK(bk_journal_record(j, raw) >= 0);
	raw_of(raw, 7);
	CHECK(bk_journal_record(j, raw) >= 0);
	j = reopen(j);
	CHECK(bk_journal_recover(j, 100, reissue, &s, &rec) == -EUCLEAN);
	CHECK(rec.outstanding == 5 && rec.found == 7);
	bk_journal_close(j, true);

	/* More outstanding than the ring holds. */
	j = setup();
	bk_journal_set_cons(j, 109);
	j = reopen(j);
	CHECK(bk_journal_recover(j, 100, reissue, &s, &rec) == -EUCLEAN);
	CHECK(s.n == 0);
	bk_journal_close(j, true);

	/* The one extra is the newest and unanswered, else it is no crash between two steps. */
	j = setup();
	bk_journal_set_cons(j, 104);
	bk_journal_responded(j, ent[4], 100);
	j = reopen(j);
	CHECK(recover(j, 100, reissue, &s, &cons, &rsp) == -EUCLEAN);
	bk_journal_close(j, true);
}

/* A crash inside bk_journal_set_pushed: answers published, their entries not yet freed. */
static void test_crash_in_set_pushed(void)
{
	struct bk_journal *j = setup();
	struct seen s = { 0 };
	uint32_t cons = 0, rsp = 0;

	bk_journal_responded(j, ent[1], 100);
	bk_journal_responded(j, ent[3], 101);
	/*
	 * A process that answered nothing stores rsp_pushed and frees nothing: exactly what a kill
	 * right after the first store of set_pushed leaves.
	 */
	j = reopen(j);
	bk_journal_set_pushed(j, 102);
	CHECK(bk_journal_nr_live(j) == 5);
	j = reopen(j);
	CHECK(recover(j, 102, reissue, &s, &cons, &rsp) == 3);
	CHECK(cons == 105 && rsp == 102);
	CHECK(s.n == 3 && s.ids[0] == 1 && s.ids[1] == 3 && s.ids[2] == 5);
	CHECK(bk_journal_nr_live(j) == 3);
	bk_journal_close(j, true);
}

static void test_geometry_mismatch(void)
{
	struct bk_journal_geom other = geom;
	struct bk_journal *j;
	bool rec;

	j = setup();
	bk_journal_close(j, false);
	other.refs[1] = 12; /* the frontend reconnected with new ring pages */
	CHECK(bk_journal_open(dir, "q0", &other, &j, &rec) == 0);
	CHECK(!rec);
	CHECK(bk_journal_nr_live(j) == 0);
	bk_journal_close(j, true);

	other = geom;
	other.raw_size = 4096;
	CHECK(bk_journal_open(dir, "q0", &other, &j, &rec) == -EINVAL);
	CHECK(bk_journal_open(dir, "a/b", &geom, &j, &rec) == -EINVAL);
	char path[128];
	snprintf(path, sizeof(path), "%s/q0", dir);
	CHECK(access(path, F_OK) != 0);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/bk-journal-%d/inflight", (int)getpid());
	test_crash_points();
	test_wrap();
	test_crash_before_cons();
	test_reuse_before_publish();
	test_recover_adopts();
	test_corrupt();
	test_crash_in_set_pushed();
	test_geometry_mismatch();
	rmdir(dir);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
	if (bk_test_failures)
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
	return bk_test_failures ? 1 : 0;
}
