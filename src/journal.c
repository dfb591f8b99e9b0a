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

static int cmp_seq(const void *a, const void *b)
{
	const struct journal_ent *x = *(struct journal_ent *const *)a;
	const struct journal_ent *y = *(struct journal_ent *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int bk_journal_recover(struct bk_journal *j, uint32_t shared_rsp_prod,
		       void (*reissue)(const void *raw, void *data), void *data,
		       uint32_t *ret_req_cons, uint32_t *ret_rsp_prod)
{
	struct journal_hdr *h = j->hdr;
	uint32_t cons = h->req_cons, pushed = h->rsp_pushed, published;
	_cleanup_free_ struct journal_ent **todo = NULL;
	_cleanup_free_ uint8_t *raws = NULL;
	unsigned int n = 0;

	/*
	 * The shared rsp_prod is the truth about what the guest may have seen, but the guest
	 * can write it: trust it only between what we recorded as pushed and what we consumed
	 * (a crash between the push and bk_journal_set_pushed leaves it ahead of the journal).
	 */
	if ((uint32_t)(shared_rsp_prod - pushed) <= (uint32_t)(cons - pushed))
		published = shared_rsp_prod;
	else
		published = pushed;

	todo = calloc(j->nr_ents, sizeof(*todo));
	if (!todo)
		return -ENOMEM;
	for (uint32_t i = 0; i < j->nr_ents; i++) {
		struct journal_ent *e = &j->ents[i];
		uint32_t state = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);

		if (state == ENT_INFLIGHT)
			todo[n++] = e;
		else if (state == ENT_RESPONDED &&
			 (uint32_t)(e->rsp_idx - pushed) >= (uint32_t)(published - pushed))
			todo[n++] = e; /* answered, but the answer was never published */
	}
	if ((uint32_t)(cons - published) + 1 == n) {
		/* A crash between recording a request and advancing the consumer index. */
		cons++;
	} else if ((uint32_t)(cons - published) < n) {
		/* More requests than the ring can have outstanding: the journal is corrupt. */
		return -EUCLEAN;
	}
	qsort(todo, n, sizeof(*todo), cmp_seq);
	/* Copy out, then empty the journal: re-issuing records the requests afresh. */
	raws = malloc((size_t)BK_MAX(n, 1U) * h->geom.raw_size);
	if (!raws)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++)
		memcpy(raws + (size_t)i * h->geom.raw_size, todo[i]->raw, h->geom.raw_size);
	jstore_bytes(j->ents, NULL, (size_t)j->nr_ents * sizeof(*j->ents));
	rebuild_free(j);
	jstore(&h->rsp_pushed, published);
	for (unsigned int i = 0; i < n; i++)
		reissue(raws + (size_t)i * h->geom.raw_size, data);

	*ret_req_cons = cons;
	*ret_rsp_prod = published;
	return (int)n;
}
