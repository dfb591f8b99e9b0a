// SPDX-License-Identifier: MIT
/* The in-flight journal: see journal.h for the protocol and why it is crash-safe. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "util/log.h"
#include "util/macros.h"

#define JOURNAL_MAGIC 0x4c4e524a4b4e4c42ULL /* "BLNKJRNL" */
#define JOURNAL_VERSION 1U

enum {
	ENT_FREE = 0,
	ENT_INFLIGHT = 1,
	ENT_RESPONDED = 2,
};

struct journal_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	struct bk_journal_geom geom;
	uint32_t req_cons;
	uint32_t rsp_pushed;
	uint64_t next_seq;
	uint8_t pad[64];
};

struct journal_ent {
	uint32_t state;
	uint32_t rsp_idx;
	uint64_t seq;
	uint8_t raw[BK_JOURNAL_RAW_MAX];
};

/*
 * Every store into the mapping goes through jstore*(): what a killed process leaves is exactly
 * the sequence of these stores up to some point, and a test can stop after each one.
 */
static void (*store_hook)(void *data);
static void *store_hook_data;

void bk_journal_set_store_hook(void (*fn)(void *data), void *data)
{
	store_hook = fn;
	store_hook_data = data;
}

static inline void jstored(void)
{
	if (unlikely(store_hook))
		store_hook(store_hook_data);
}

/* One aligned store of a field, visible (release) after everything stored before it. */
#define jstore(ptr, val)                                          \
	do {                                                      \
		__atomic_store_n((ptr), (val), __ATOMIC_RELEASE); \
		jstored();                                        \
	} while (0)

/* Bytes nobody reads until a later jstore() makes them count (an entry's raw copy). */
static void jstore_bytes(void *dst, const void *src, size_t n)
{
	if (src)
		memcpy(dst, src, n);
	else
		memset(dst, 0, n);
	jstored();
}

struct bk_journal {
	struct journal_hdr *hdr;
	struct journal_ent *ents;
	uint32_t nr_ents;
	size_t map_len;
	char *path;
	unsigned int live;
	/* Process-local: free entries (a stack) and entries answered but not yet published. */
	uint32_t *free;
	uint32_t nr_free;
	uint32_t *answered;
	uint32_t nr_answered;
	bool dropping; /* an entry was released: the header is invalidated */
};

static uint32_t nr_entries(uint32_t nr_slots)
{
	return nr_slots * 2;
}

static size_t journal_size(uint32_t nr_slots)
{
	return sizeof(struct journal_hdr) +
	       (size_t)nr_entries(nr_slots) * sizeof(struct journal_ent);
}

/* Rebuild the free stack from the mapping (entries in use are never on it). */
static void rebuild_free(struct bk_journal *j)
{
	j->nr_free = 0;
	j->live = 0;
	j->nr_answered = 0;
	for (uint32_t i = j->nr_ents; i-- > 0;) {
		if (j->ents[i].state == ENT_FREE)
			j->free[j->nr_free++] = i;
		else
			j->live++;
	}
}

static bool geom_valid(const struct bk_journal_geom *g)
{
	return g->nr_slots > 0 && g->nr_slots <= 65536 && g->raw_size > 0 &&
	       g->raw_size <= BK_JOURNAL_RAW_MAX && g->nr_refs <= BK_JOURNAL_MAX_REFS;
}

static int mkdir_p(const char *dir)
{
	_cleanup_free_ char *copy = strdup(dir);

	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST)
			return neg_errno();
		*p = '/';
	}
	if (mkdir(copy, 0700) < 0 && errno != EEXIST)
		return neg_errno();
	return 0;
}

int bk_journal_open(const char *dir, const char *name, const struct bk_journal_geom *g,
		    struct bk_journal **ret, bool *ret_recovering)
{
	_cleanup_free_ struct bk_journal *j = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len;
	void *map;
	bool keep = false;
	int r;

	if (!geom_valid(g) || strchr(name, '/'))
		return -EINVAL;
	r = mkdir_p(dir);
	if (r < 0)
		return log_err_errno(r, "cannot create journal directory %s: %m", dir);
	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		path = NULL;
		return -ENOMEM;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return log_err_errno(neg_errno(), "cannot open journal %s: %m", path);
	if (fstat(fd, &st) < 0)
		return neg_errno();
	len = journal_size(g->nr_slots);
	if ((uint64_t)st.st_size == len)
		keep = true;
	else if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)len) < 0)
		return log_err_errno(neg_errno(), "cannot size journal %s: %m", path);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return log_err_errno(neg_errno(), "cannot map journal %s: %m", path);

	j = calloc(1, sizeof(*j));
	if (j) {
		j->nr_ents = nr_entries(g->nr_slots);
		j->free = calloc(j->nr_ents, sizeof(*j->free));
		j->answered = calloc(j->nr_ents, sizeof(*j->answered));
	}
	if (!j || !j->free || !j->answered) {
		if (j) {
			free(j->free);
			free(j->answered);
		}
		munmap(map, len);
		return -ENOMEM;
	}
	j->hdr = map;
	j->ents = (struct journal_ent *)(j->hdr + 1);
	j->map_len = len;

	if (keep)
		keep = j->hdr->magic == JOURNAL_MAGIC && j->hdr->version == JOURNAL_VERSION &&
		       j->hdr->hdr_size == sizeof(struct journal_hdr) &&
		       memcmp(&j->hdr->geom, g, sizeof(*g)) == 0;
	if (!keep) {
		/* Magic first out and last in: a half-written header never looks valid. */
		jstore(&j->hdr->magic, 0);
		jstore_bytes((uint8_t *)map + sizeof(uint64_t), NULL, len - sizeof(uint64_t));
		jstore(&j->hdr->version, JOURNAL_VERSION);
		jstore(&j->hdr->hdr_size, (uint32_t)sizeof(struct journal_hdr));
		jstore_bytes(&j->hdr->geom, g, sizeof(*g));
		jstore(&j->hdr->magic, JOURNAL_MAGIC);
	}
	rebuild_free(j);
	j->path = TAKE_PTR(path);
	*ret_recovering = keep;
	*ret = TAKE_PTR(j);
	return 0;
}

void bk_journal_close(struct bk_journal *j, bool discard)
{
	if (!j)
		return;
	munmap(j->hdr, j->map_len);
	if (discard)
		unlink(j->path);
	free(j->path);
	free(j->free);
	free(j->answered);
	free(j);
}

int bk_journal_record(struct bk_journal *j, const void *raw)
{
	struct journal_ent *e;
	uint64_t seq;
	uint32_t i;

	if (!j->nr_free)
		return -ENOSPC;
	i = j->free[--j->nr_free];
	e = &j->ents[i];
	j->live++;
	seq = j->hdr->next_seq;
	jstore(&j->hdr->next_seq, seq + 1);
	jstore_bytes(e->raw, raw, j->hdr->geom.raw_size);
	jstore(&e->seq, seq);
	jstore(&e->rsp_idx, 0);
	/* The entry is complete before it counts. */
	jstore(&e->state, ENT_INFLIGHT);
	return (int)i;
}

void bk_journal_set_cons(struct bk_journal *j, uint32_t req_cons)
{
	jstore(&j->hdr->req_cons, req_cons);
}

void bk_journal_responded(struct bk_journal *j, int ent, uint32_t rsp_idx)
{
	struct journal_ent *e;

	if (ent < 0 || (uint32_t)ent >= j->nr_ents || j->ents[ent].state != ENT_INFLIGHT)
		return;
	e = &j->ents[ent];
	jstore(&e->rsp_idx, rsp_idx);
	jstore(&e->state, ENT_RESPONDED);
	j->answered[j->nr_answered++] = (uint32_t)ent;
}

static void ent_free(struct bk_journal *j, uint32_t i)
{
	jstore(&j->ents[i].state, ENT_FREE);
	j->free[j->nr_free++] = i;
	j->live--;
}

void bk_journal_set_pushed(struct bk_journal *j, uint32_t rsp_prod)
{
	/* Published first: a crash in between leaves answered entries that recovery skips. */
	jstore(&j->hdr->rsp_pushed, rsp_prod);
	for (uint32_t k = 0; k < j->nr_answered; k++)
		ent_free(j, j->answered[k]);
	j->nr_answered = 0;
}

void bk_journal_release(struct bk_journal *j, int ent)
{
	if (ent < 0 || (uint32_t)ent >= j->nr_ents || j->ents[ent].state != ENT_INFLIGHT)
		return;
	/*
	 * A request dropped unanswered: its ring is going away, and the journal no longer
	 * accounts for every request consumed. Invalid from the first one on, so that a crash
	 * from here leaves nothing a next run could adopt.
	 */
	if (!j->dropping) {
		jstore(&j->hdr->magic, 0);
		j->dropping = true;
	}
	ent_free(j, (uint32_t)ent);
}

uint32_t bk_journal_req_cons(const struct bk_journal *j)
{
	return __atomic_load_n(&j->hdr->req_cons, __ATOMIC_ACQUIRE);
}

uint32_t bk_journal_rsp_pushed(const struct bk_journal *j)
{
	return __atomic_load_n(&j->hdr->rsp_pushed, __ATOMIC_ACQUIRE);
}

unsigned int bk_journal_nr_live(const struct bk_journal *j)
{
	return j->live;
}

/* Entry indices, oldest (lowest sequence number) first. */
static void sort_by_seq(const struct bk_journal *j, uint32_t *idx, unsigned int n)
{
	/* At most 2 * nr_slots entries, once per restart: insertion sort is plenty. */
	for (unsigned int a = 1; a < n; a++) {
		uint32_t v = idx[a];
		unsigned int b = a;

		for (; b > 0 && j->ents[idx[b - 1]].seq > j->ents[v].seq; b--)
			idx[b] = idx[b - 1];
		idx[b] = v;
	}
}

/*
 * Recovery only flips what it finds, each flip one store, in an order where every prefix
 * recovers to the same answer: answers the ring published are freed, answers it did not
 * publish become in flight again (they are answered again, at a new index), then the header
 * catches up with the ring (rsp_pushed, and req_cons past a request recorded but not yet
 * counted). The entries stay where they are: the backend adopts each one for the request it
 * re-issues. A second recovery, before or after any of these stores, classifies every entry
 * the same way, so a crash loop neither loses nor duplicates a request.
 */
int bk_journal_recover(struct bk_journal *j, uint32_t shared_rsp_prod,
		       void (*reissue)(int ent, const void *raw, void *data), void *data,
		       struct bk_journal_recovery *ret)
{
	struct journal_hdr *h = j->hdr;
	uint32_t cons = __atomic_load_n(&h->req_cons, __ATOMIC_ACQUIRE);
	uint32_t pushed = __atomic_load_n(&h->rsp_pushed, __ATOMIC_ACQUIRE);
	uint32_t published, outstanding;
	_cleanup_free_ uint32_t *todo = NULL;
	unsigned int n = 0;
	bool bad_state = false;

	/*
	 * The shared rsp_prod is the truth about what the guest may have seen, but the guest
	 * can write it: trust it only between what we recorded as pushed and what we consumed
	 * (a crash between the push and bk_journal_set_pushed leaves it ahead of the journal).
	 */
	if ((uint32_t)(shared_rsp_prod - pushed) <= (uint32_t)(cons - pushed))
		published = shared_rsp_prod;
	else
		published = pushed;
	outstanding = cons - published;

	todo = calloc(j->nr_ents, sizeof(*todo));
	if (!todo)
		return -ENOMEM;
	/*
	 * Every response index lies below cons (one response per request consumed). One in
	 * [published, cons) was never published: its request runs again. One below published
	 * was (a crash inside bk_journal_set_pushed leaves such entries behind): it is done.
	 */
	for (uint32_t i = 0; i < j->nr_ents; i++) {
		const struct journal_ent *e = &j->ents[i];
		uint32_t state = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);

		if (state == ENT_INFLIGHT ||
		    (state == ENT_RESPONDED && (uint32_t)(e->rsp_idx - published) < outstanding))
			todo[n++] = i;
		else if (state != ENT_FREE && state != ENT_RESPONDED)
			bad_state = true;
	}
	sort_by_seq(j, todo, n);
	ret->journal_cons = cons;
	ret->journal_pushed = pushed;
	ret->published = published;
	ret->found = n;
	ret->outstanding = outstanding;
	/*
	 * Every request consumed and not published is in the journal, plus at most the one a
	 * crash caught between recording it and counting it in req_cons (the newest, not yet
	 * answered). Anything else and the journal cannot say what the guest waits for.
	 */
	if (bad_state || outstanding > h->geom.nr_slots || n < outstanding || n > outstanding + 1 ||
	    n > h->geom.nr_slots ||
	    (n == outstanding + 1 && j->ents[todo[n - 1]].state != ENT_INFLIGHT))
		return -EUCLEAN;

	for (uint32_t i = 0; i < j->nr_ents; i++) {
		struct journal_ent *e = &j->ents[i];

		if (e->state == ENT_RESPONDED && (uint32_t)(e->rsp_idx - published) >= outstanding)
			jstore(&e->state, ENT_FREE);
	}
	for (unsigned int k = 0; k < n; k++)
		if (j->ents[todo[k]].state == ENT_RESPONDED)
			jstore(&j->ents[todo[k]].state, ENT_INFLIGHT);
	if (pushed != published)
		jstore(&h->rsp_pushed, published);
	if (n == outstanding + 1) {
		cons++;
		jstore(&h->req_cons, cons);
	}
	rebuild_free(j);
	/* Oldest first; each entry stays live, owned by the request re-issued from it. */
	for (unsigned int k = 0; k < n; k++)
		reissue((int)todo[k], j->ents[todo[k]].raw, data);
	ret->req_cons = cons;
	ret->rsp_prod = published;
	return (int)n;
}

const char *bk_journal_path(const struct bk_journal *j)
{
	return j->path;
}
