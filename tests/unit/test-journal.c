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
	.nr_slots = 8, .raw_size = 112, .abi = 0, .nr_refs = 2, .refs = { 10, 11 }, .remote_port = 7,
};

struct seen {
	unsigned int n;
	uint8_t ids[16];
};

static void reissue(const void *raw, void *data)
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
	uint32_t cons, rsp;

	/* Crash with nothing answered: all five again, in order. */
	j = reopen(setup());
	memset(&s, 0, sizeof(s));
	CHECK(bk_journal_recover(j, 100, reissue, &s, &cons, &rsp) == 5);
	CHECK(cons == 105 && rsp == 100);
	CHECK(s.n == 5 && s.ids[0] == 1 && s.ids[4] == 5);
	bk_journal_close(j, true);

	/* Two answered (ids 2 and 4 at 100, 101) but not published. */
	j = setup();
	bk_journal_responded(j, ent[1], 100);
	bk_journal_responded(j, ent[3], 101);
	j = reopen(j);
	memset(&s, 0, sizeof(s));
	CHECK(bk_journal_recover(j, 100, reissue, &s, &cons, &rsp) == 5);
	CHECK(rsp == 100);
	bk_journal_close(j, true);

	/* Published in the ring, crash before the journal noted it: the ring says 102. */
	j = setup();
	bk_journal_responded(j, ent[1], 100);
	bk_journal_responded(j, ent[3], 101);
	j = reopen(j);
	memset(&s, 0, sizeof(s));
	CHECK(bk_journal_recover(j, 102, reissue, &s, &cons, &rsp) == 3);
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
	CHECK(bk_journal_recover(j, 101, reissue, &s, &cons, &rsp) == 4);
	CHECK(rsp == 101);
	bk_journal_close(j, true);

	/* A hostile rsp_prod outside [pushed, cons] is ignored. */
	j = reopen(setup());
	memset(&s, 0, sizeof(s));
	CHECK(bk_journal_recover(j, 5000, reissue, &s, &cons, &rsp) == 5);
	CHECK(rsp == 100);
	bk_journal_close(j, true);
	j = reopen(setup());
	memset(&s, 0, sizeof(s));
	CHECK(bk_journal_recover(j, 99, reissue, &s, &cons, &rsp) == 5);
	CHECK(rsp == 100);
	/* After recovery the journal is empty: a second crash re-issues nothing. */
	j = reopen(j);
	memset(&s, 0, sizeof(s));
	CHECK(bk_journal_recover(j, 100, reissue, &s, &cons, &rsp) == 0);
	bk_journal_close(j, true);
}

/* A crash between recording a request and advancing the consumer index. */
static void test_crash_before_cons(void)
{
	struct bk_journal *j = setup();
	struct seen s = { 0 };
	uint32_t cons, rsp;
	uint8_t raw[112];

	raw_of(raw, 6);
	CHECK(bk_journal_record(j, raw) >= 0); /* index 105, cons still says 105 */
	j = reopen(j);
	CHECK(bk_journal_recover(j, 100, reissue, &s, &cons, &rsp) == 6);
	CHECK(cons == 106 && rsp == 100);
	CHECK(s.n == 6 && s.ids[5] == 6);
	bk_journal_close(j, true);
}

static void test_wrap(void)
{
	struct bk_journal *j;
	struct seen s = { 0 };
	uint32_t cons, rsp;
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
	CHECK(bk_journal_recover(j, 0, reissue, &s, &cons, &rsp) == 1);
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
	uint32_t cons, rsp;
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
	j = reopen_as(j, "reuse");
	CHECK(bk_journal_recover(j, 0, reissue, &s, &cons, &rsp) == 16);
	CHECK(s.n == 16 && s.ids[0] == 10 && s.ids[15] == 25);
	CHECK(cons == 16 && rsp == 0);
	bk_journal_close(j, true);
}

/* Recovery's callback may record the re-issued requests in the same journal. */
struct rerecord {
	struct bk_journal *j;
	unsigned int n;
};

static void reissue_record(const void *raw, void *data)
{
	struct rerecord *r = data;

	if (bk_journal_record(r->j, raw) >= 0)
		r->n++;
}

static void test_recover_records(void)
{
	struct bk_journal *j = reopen(setup());
	struct rerecord r = { .j = j };
	uint32_t cons, rsp;

	CHECK(bk_journal_recover(j, 100, reissue_record, &r, &cons, &rsp) == 5);
	CHECK(r.n == 5);
	CHECK(bk_journal_nr_live(j) == 5);
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
	test_recover_records();
	test_geometry_mismatch();
	rmdir(dir);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
	if (bk_test_failures)
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
	return bk_test_failures ? 1 : 0;
}
