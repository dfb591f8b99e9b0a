/* SPDX-License-Identifier: MIT */
/*
 * The in-flight journal: what a ring backend needs to survive its own restart (systemctl
 * restart, or SIGKILL followed by a start) without the guest seeing an error or losing data.
 *
 * Requests and responses share ring slots, so after a crash the shared ring cannot tell which
 * consumed requests were answered. Each queue therefore keeps, in a file under /run mapped
 * shared (it outlives the process, not the machine, exactly like the guest), a record of:
 * the ring geometry it belongs to, the consumer index, the last published response index, and
 * for every request taken but not yet answered-and-published, its raw slot bytes (the private
 * copy, so a response that overwrote the slot loses nothing).
 *
 * Protocol for the datapath (every step a plain store into the mapping; no syscalls):
 *   take:     ent = bk_journal_record(raw), then bk_journal_set_cons(req_cons)
 *   answer:   write the response at rsp_prod_pvt, bk_journal_responded(ent, that index)
 *   publish:  push rsp_prod to the ring, then bk_journal_set_pushed(rsp_prod), which frees
 *             the entries answered since the last publish
 * Entries belong to the journal, not to the backend's request slots: a slot is reused as soon
 * as its request is answered, while the record must live until the answer is published. Twice
 * nr_slots entries cover both.
 * A crash after any single store of these steps (or of a recovery) leaves a journal from which
 * bk_journal_recover() rebuilds the exact set of requests to issue again (writes are
 * idempotent: the guest keeps the data pages granted and unchanged until it sees the
 * response); tests/unit/test-journal-sweep.c checks every such point.
 */
#ifndef BK_JOURNAL_H
#define BK_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#define BK_JOURNAL_RAW_MAX 128U
#define BK_JOURNAL_MAX_REFS 16U

/* What identifies the ring a journal belongs to; a mismatch means "start afresh". */
struct bk_journal_geom {
	uint32_t nr_slots; /* request slots of the backend queue */
	uint32_t raw_size; /* bytes of one ring slot (<= BK_JOURNAL_RAW_MAX) */
	uint32_t abi;	   /* backend-defined ring layout */
	uint32_t nr_refs;  /* ring pages */
	uint32_t refs[BK_JOURNAL_MAX_REFS];
	uint32_t remote_port;
};

struct bk_journal;

/*
 * Open (creating) @dir/@name. When the file holds a journal for the same geometry, it is kept
 * and *ret_recovering is set: call bk_journal_recover() before serving. Otherwise it is
 * initialised empty. @dir is created (0700) if missing.
 */
int bk_journal_open(const char *dir, const char *name, const struct bk_journal_geom *g,
		    struct bk_journal **ret, bool *ret_recovering);
/* NULL-safe. @discard removes the file (device gone or disconnected for good). */
void bk_journal_close(struct bk_journal *j, bool discard);

/* Record a taken request; returns its entry, or -ENOSPC (a caller bug: more than allowed). */
int bk_journal_record(struct bk_journal *j, const void *raw);
void bk_journal_set_cons(struct bk_journal *j, uint32_t req_cons);
void bk_journal_responded(struct bk_journal *j, int ent, uint32_t rsp_idx);
/* Responses up to @rsp_prod are published: free the entries answered before. */
void bk_journal_set_pushed(struct bk_journal *j, uint32_t rsp_prod);
/*
 * Forget an entry without an answer (the request is dropped with its ring). The journal stops
 * describing an adoptable ring from the first release on: only for a ring being torn down.
 */
void bk_journal_release(struct bk_journal *j, int ent);
/* The consumer index the journal holds (to check it belongs to a ring before recovering). */
uint32_t bk_journal_req_cons(const struct bk_journal *j);
/* The last response index recorded as published (same purpose). */
uint32_t bk_journal_rsp_pushed(const struct bk_journal *j);
/* Entries in use (tests, stats). */
unsigned int bk_journal_nr_live(const struct bk_journal *j);

/* What a recovery found (also filled when it fails with -EUCLEAN, for the log line). */
struct bk_journal_recovery {
	uint32_t req_cons;	  /* take requests from here on */
	uint32_t rsp_prod;	  /* answer from here on: what the ring published */
	uint32_t journal_cons;	  /* the consumer index the journal held */
	uint32_t journal_pushed;  /* the response index it held as published */
	uint32_t published;	  /* the ring's rsp_prod, as far as it is trusted */
	unsigned int outstanding; /* consumed and not published: what the guest waits for */
	unsigned int found;	  /* requests the journal holds taken and not published */
};

/*
 * Rebuild the ring position after a restart. @shared_rsp_prod is what the shared ring shows
 * as published (hostile: trusted only inside the range the journal allows). Calls @reissue
 * for every request that must run again, oldest first, with its entry: the entry stays live,
 * and the caller owns it as if it had just recorded it (bk_journal_responded, release). Fills
 * @ret and returns how many were re-issued. Idempotent: a crash anywhere inside, or a second
 * recovery before anything else happened, gives the same answer. -EUCLEAN: the journal does
 * not account for the requests the ring says are outstanding (@ret has the numbers); nothing
 * is changed then.
 */
int bk_journal_recover(struct bk_journal *j, uint32_t shared_rsp_prod,
		       void (*reissue)(int ent, const void *raw, void *data), void *data,
		       struct bk_journal_recovery *ret);
/* The journal's file (for log lines). */
const char *bk_journal_path(const struct bk_journal *j);

/*
 * Test-only: call @fn after every store into any journal's mapping (NULL: none). A test
 * snapshots the file there, which is exactly what a process killed at that point leaves.
 */
void bk_journal_set_store_hook(void (*fn)(void *data), void *data);

#endif
