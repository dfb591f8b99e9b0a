// SPDX-License-Identifier: MIT
/*
 * Unit tests of the simulation's guest memory and grant tables: shared bytes through map and
 * copy, read-only enforcement (a write through a read-only mapping really faults), revoke
 * while mapped, invalid refs, the wrong grantee, destroyed domains, and leak counters.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/grant_table.h>

#include "xen/sim.h"
#include "check.h"

#define GUEST 5U
#define OTHER 6U

static struct bk_sim *sim;
static struct bk_xen *dom0;
static struct bk_gnttab *gt;

static void setup(void)
{
	if (bk_sim_new(&sim) < 0 || bk_sim_domain_create(sim, GUEST, 16) < 0 ||
	    bk_sim_domain_create(sim, OTHER, 4) < 0 || bk_sim_platform(sim, 0, &dom0) < 0 ||
	    bk_gnt_open(dom0, &gt) < 0) {
		fprintf(stderr, "setup failed\n");
		exit(1);
	}
}

static void teardown(void)
{
	struct bk_sim_counts c;

	bk_gnt_close(gt);
	bk_sim_counts(sim, &c);
	CHECK(c.gnt_handles == 0 && c.gnt_mapped_pages == 0);
	bk_xen_free(dom0);
	bk_sim_free(sim);
}

static void test_guest_memory(void)
{
	CHECK(bk_sim_guest_page(sim, GUEST, 0) != NULL);
	CHECK(bk_sim_guest_page(sim, GUEST, 15) != NULL);
	CHECK(bk_sim_guest_page(sim, GUEST, 16) == NULL);
	CHECK(bk_sim_guest_page(sim, 77, 0) == NULL);
	CHECK((char *)bk_sim_guest_page(sim, GUEST, 1) - (char *)bk_sim_guest_page(sim, GUEST, 0) ==
	      BK_PAGE_SIZE);
}

static void test_map_shared(void)
{
	uint32_t refs[3];
	char *g[3], *m;
	void *addr = NULL;

	for (unsigned int i = 0; i < 3; i++) {
		/* Non-contiguous pfns: the mapping must still be contiguous. */
		g[i] = bk_sim_guest_page(sim, GUEST, 2 + 3 * i);
		memset(g[i], 'a' + (int)i, BK_PAGE_SIZE);
		CHECK(bk_sim_guest_grant(sim, GUEST, 0, 2 + 3 * i, false, &refs[i]) == 0);
	}
	CHECK(refs[0] >= GNTTAB_NR_RESERVED_ENTRIES);
	CHECK(bk_sim_guest_nr_grants(sim, GUEST) == 3);
	CHECK(bk_gnt_map(gt, GUEST, refs, 3, true, &addr) == 0);
	if (!addr)
		return;
	m = addr;
	CHECK(m[0] == 'a' && m[BK_PAGE_SIZE] == 'b' && m[2 * BK_PAGE_SIZE + 4095] == 'c');
	CHECK(bk_gnt_nr_mapped(gt) == 3);
	CHECK(bk_sim_guest_nr_mapped(sim, GUEST) == 3);
	/* Both sides see each other's writes. */
	m[BK_PAGE_SIZE + 10] = 'X';
	CHECK(g[1][10] == 'X');
	g[2][20] = 'Y';
	CHECK(m[2 * BK_PAGE_SIZE + 20] == 'Y');
	/* Revoke while mapped is refused and the grant stays. */
	CHECK(bk_sim_guest_revoke(sim, GUEST, refs[1]) == -EBUSY);
	CHECK(bk_sim_guest_nr_grants(sim, GUEST) == 3);
	/* Unmap must name the exact mapping. */
	CHECK(bk_gnt_unmap(gt, m + BK_PAGE_SIZE, 2) == -EINVAL);
	CHECK(bk_gnt_unmap(gt, m, 2) == -EINVAL);
	CHECK(bk_gnt_unmap(gt, m, 3) == 0);
	CHECK(bk_gnt_nr_mapped(gt) == 0);
	CHECK(bk_sim_guest_nr_mapped(sim, GUEST) == 0);
	for (unsigned int i = 0; i < 3; i++)
		CHECK(bk_sim_guest_revoke(sim, GUEST, refs[i]) == 0);
	CHECK(bk_sim_guest_nr_grants(sim, GUEST) == 0);
	CHECK(bk_sim_guest_revoke(sim, GUEST, refs[0]) == -EINVAL);
}

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t faulted;

static void on_segv(int sig)
{
	(void)sig;
	faulted = 1;
	siglongjmp(fault_jmp, 1);
}

/* Write through @p; true if it faulted. */
static bool write_faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old_segv, old_bus;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	faulted = 0;
	if (sigsetjmp(fault_jmp, 1) == 0)
		*p = 'Z';
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return faulted;
}

static void test_readonly(void)
{
	uint32_t ref;
	void *addr = NULL;
	char buf[16] = "from-backend";
	struct bk_gnt_copy_seg seg;
	char *g = bk_sim_guest_page(sim, GUEST, 4);

	memset(g, 'r', BK_PAGE_SIZE);
	CHECK(bk_sim_guest_grant(sim, GUEST, 0, 4, true, &ref) == 0);
	/* A writable map of a read-only grant is refused, and nothing stays mapped. */
	CHECK(bk_gnt_map(gt, GUEST, &ref, 1, true, &addr) == -EACCES && addr == NULL);
	CHECK(bk_gnt_nr_mapped(gt) == 0 && bk_sim_guest_nr_mapped(sim, GUEST) == 0);
	/* Copy into it: permission_denied, page untouched. */
	seg = (struct bk_gnt_copy_seg){
		.local = buf, .domid = GUEST, .ref = ref, .len = 4, .to_guest = true, .status = 99
	};
	CHECK(bk_gnt_copy(gt, &seg, 1) == 0);
	CHECK(seg.status == GNTST_permission_denied);
	CHECK(g[0] == 'r');
	/* Copy out of it works. */
	seg = (struct bk_gnt_copy_seg){ .local = buf,
					.domid = GUEST,
					.ref = ref,
					.offset = 100,
					.len = 8,
					.to_guest = false,
					.status = 99 };
	CHECK(bk_gnt_copy(gt, &seg, 1) == 0 && seg.status == GNTST_okay);
	CHECK(memcmp(buf, "rrrrrrrr", 8) == 0);
	/* A read-only mapping reads, and a write through it faults. */
	CHECK(bk_gnt_map(gt, GUEST, &ref, 1, false, &addr) == 0);
	if (addr) {
		CHECK(((char *)addr)[4095] == 'r');
		CHECK(write_faults((char *)addr + 8));
		CHECK(g[8] == 'r');
		CHECK(bk_gnt_unmap(gt, addr, 1) == 0);
	}
	/* Sanity check of the fault catcher itself: a writable page does not fault. */
	CHECK(!write_faults(g + 8));
	CHECK(bk_sim_guest_revoke(sim, GUEST, ref) == 0);
}

static void test_copy(void)
{
	uint32_t ref, other_ref, ro_ref;
	char out[64], in[64];
	char *g = bk_sim_guest_page(sim, GUEST, 7);
	struct bk_gnt_copy_seg segs[7];

	memset(g, 0, BK_PAGE_SIZE);
	CHECK(bk_sim_guest_grant(sim, GUEST, 0, 7, false, &ref) == 0);
	CHECK(bk_sim_guest_grant(sim, GUEST, OTHER, 8, false, &other_ref) == 0);
	CHECK(bk_sim_guest_grant(sim, GUEST, 0, 9, true, &ro_ref) == 0);
	memcpy(out, "hello, guest", 13);
	memset(in, 0, sizeof(in));
	segs[0] = (struct bk_gnt_copy_seg){ .local = out,
					    .domid = GUEST,
					    .ref = ref,
					    .offset = 4000,
					    .len = 13,
					    .to_guest = true };
	segs[1] = (struct bk_gnt_copy_seg){
		.local = in, .domid = GUEST, .ref = ref, .offset = 4000, .len = 13
	};
	/* Crosses the page end. */
	segs[2] = (struct bk_gnt_copy_seg){
		.local = in, .domid = GUEST, .ref = ref, .offset = 4090, .len = 7
	};
	segs[3] = (struct bk_gnt_copy_seg){ .local = in, .domid = GUEST, .ref = 4000, .len = 1 };
	segs[4] =
		(struct bk_gnt_copy_seg){ .local = in, .domid = GUEST, .ref = other_ref, .len = 1 };
	segs[5] = (struct bk_gnt_copy_seg){ .local = in, .domid = 99, .ref = ref, .len = 1 };
	segs[6] = (struct bk_gnt_copy_seg){
		.local = out, .domid = GUEST, .ref = ro_ref, .len = 1, .to_guest = true
	};
	for (unsigned int i = 0; i < 7; i++)
		segs[i].status = 99;
	CHECK(bk_gnt_copy(gt, segs, 7) == 0);
	CHECK(segs[0].status == GNTST_okay);
	CHECK(memcmp(g + 4000, "hello, guest", 13) == 0);
	CHECK(segs[1].status == GNTST_okay);
	CHECK(strcmp(in, "hello, guest") == 0);
	CHECK(segs[2].status == GNTST_bad_copy_arg);
	CHECK(segs[3].status == GNTST_bad_gntref);
	CHECK(segs[4].status == GNTST_permission_denied);
	CHECK(segs[5].status == GNTST_bad_domain);
	CHECK(segs[6].status == GNTST_permission_denied);
	CHECK(bk_gnt_copy(gt, NULL, 0) == 0);
	CHECK(bk_sim_guest_revoke(sim, GUEST, ref) == 0);
	CHECK(bk_sim_guest_revoke(sim, GUEST, other_ref) == 0);
	CHECK(bk_sim_guest_revoke(sim, GUEST, ro_ref) == 0);
	/* A revoked ref is bad. */
	segs[0].status = 99;
	CHECK(bk_gnt_copy(gt, segs, 1) == 0 && segs[0].status == GNTST_bad_gntref);
	/* Empty segments succeed untouched, as on the real platform; a NULL buffer never does. */
	segs[0].len = 0;
	segs[0].status = 99;
	segs[1] = segs[0];
	segs[1].local = NULL;
	CHECK(bk_gnt_copy(gt, segs, 2) == 0);
	CHECK(segs[0].status == GNTST_okay && segs[1].status == GNTST_bad_copy_arg);
}

/*
 * The backends' batch call (src/xen/gcopy.c): per-segment statuses as the platform gave them,
 * the first failure of a range, and a call that fails as a whole leaves no segment looking
 * copied.
 */
static void test_copy_batch(void)
{
	uint32_t ref;
	char out[16] = "batch", in[16];
	struct bk_gnt_copy_seg segs[3];

	CHECK(bk_sim_guest_grant(sim, GUEST, 0, 10, false, &ref) == 0);
	segs[0] = (struct bk_gnt_copy_seg){
		.local = out, .domid = GUEST, .ref = ref, .len = 6, .to_guest = true
	};
	segs[1] = (struct bk_gnt_copy_seg){ .local = in, .domid = GUEST, .ref = ref, .len = 6 };
	segs[2] = (struct bk_gnt_copy_seg){ .local = in, .domid = GUEST, .ref = 4000, .len = 1 };
	CHECK(bk_gnt_copy_batch(gt, segs, 3) == 0);
	CHECK(bk_gnt_copy_status(segs, 2) == GNTST_okay && !strcmp(in, "batch"));
	CHECK(bk_gnt_copy_status(segs, 3) == GNTST_bad_gntref);
	CHECK(bk_gnt_copy_status(segs + 2, 1) == GNTST_bad_gntref);
	CHECK(bk_gnt_copy_status(segs, 0) == GNTST_okay);
	CHECK(bk_gnt_copy_batch(gt, NULL, 0) == 0);

	/* The whole call fails: every segment is an error, even those that were fine before. */
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_GNT_COPY, 0, -EIO) == 0);
	CHECK(bk_gnt_copy_batch(gt, segs, 2) == -EIO);
	CHECK(segs[0].status == GNTST_general_error && segs[1].status == GNTST_general_error);
	CHECK(bk_gnt_copy_status(segs, 2) == GNTST_general_error);
	CHECK(bk_sim_guest_revoke(sim, GUEST, ref) == 0);
}

static void test_invalid_map(void)
{
	uint32_t refs[2], other_ref;
	void *addr = NULL;

	CHECK(bk_sim_guest_grant(sim, GUEST, 0, 0, false, &refs[0]) == 0);
	CHECK(bk_sim_guest_grant(sim, GUEST, OTHER, 1, false, &other_ref) == 0);
	CHECK(bk_sim_guest_grant(sim, GUEST, 0, 99, false, &refs[1]) == -EINVAL);
	CHECK(bk_sim_guest_grant(sim, 42, 0, 0, false, &refs[1]) == -ESRCH);
	refs[1] = 12345;
	/* One bad ref in a batch: nothing is mapped. */
	CHECK(bk_gnt_map(gt, GUEST, refs, 2, true, &addr) == -EINVAL && addr == NULL);
	CHECK(bk_sim_guest_nr_mapped(sim, GUEST) == 0);
	/* Granted to another domain. */
	CHECK(bk_gnt_map(gt, GUEST, &other_ref, 1, false, &addr) == -EACCES && addr == NULL);
	/* Right ref, wrong domain. */
	CHECK(bk_gnt_map(gt, OTHER, refs, 1, false, &addr) == -EINVAL && addr == NULL);
	CHECK(bk_gnt_map(gt, 99, refs, 1, false, &addr) == -ESRCH && addr == NULL);
	CHECK(bk_gnt_map(gt, GUEST, refs, 0, false, &addr) == -EINVAL && addr == NULL);
	CHECK(bk_gnt_nr_mapped(gt) == 0);
	/* Revoked ref. */
	CHECK(bk_sim_guest_revoke(sim, GUEST, refs[0]) == 0);
	CHECK(bk_gnt_map(gt, GUEST, refs, 1, false, &addr) == -EINVAL && addr == NULL);
	CHECK(bk_sim_guest_revoke(sim, GUEST, other_ref) == 0);
}

/* The grantee's view: OTHER maps a page GUEST granted to it through its own platform. */
static void test_domu_grantee(void)
{
	struct bk_xen *x6;
	struct bk_gnttab *g6;
	uint32_t ref;
	void *addr = NULL;

	CHECK(bk_sim_platform(sim, OTHER, &x6) == 0);
	CHECK(bk_gnt_open(x6, &g6) == 0);
	CHECK(bk_sim_guest_grant(sim, GUEST, OTHER, 3, false, &ref) == 0);
	CHECK(bk_gnt_map(gt, GUEST, &ref, 1, true, &addr) == -EACCES);
	CHECK(bk_gnt_map(g6, GUEST, &ref, 1, true, &addr) == 0);
	if (addr)
		CHECK(bk_gnt_unmap(g6, addr, 1) == 0);
	bk_gnt_close(g6);
	CHECK(bk_sim_guest_nr_mapped(sim, GUEST) == 0);
	CHECK(bk_sim_guest_revoke(sim, GUEST, ref) == 0);
	bk_xen_free(x6);
}

static void test_destroy(void)
{
	uint32_t ref, ref2;
	void *addr = NULL, *addr2 = NULL;
	char *g = bk_sim_guest_page(sim, OTHER, 1);
	struct bk_gnt_copy_seg seg;
	char c = 0;

	memset(g, 'd', BK_PAGE_SIZE);
	CHECK(bk_sim_guest_grant(sim, OTHER, 0, 1, false, &ref) == 0);
	CHECK(bk_sim_guest_grant(sim, OTHER, 0, 2, false, &ref2) == 0);
	CHECK(bk_gnt_map(gt, OTHER, &ref, 1, true, &addr) == 0);
	CHECK(bk_sim_domain_destroy(sim, OTHER) == 0);
	CHECK(bk_sim_domain_destroy(sim, OTHER) == -ESRCH);
	CHECK(dom0->ops->domain_alive(dom0, OTHER) == 0);
	CHECK(dom0->ops->domain_alive(dom0, GUEST) == 1);
	CHECK(bk_sim_guest_page(sim, OTHER, 1) == NULL);
	CHECK(bk_sim_guest_nr_grants(sim, OTHER) == 0);
	/* New maps and copies are refused... */
	CHECK(bk_gnt_map(gt, OTHER, &ref2, 1, true, &addr2) == -ESRCH && addr2 == NULL);
	seg = (struct bk_gnt_copy_seg){ .local = &c, .domid = OTHER, .ref = ref2, .len = 1 };
	CHECK(bk_gnt_copy(gt, &seg, 1) == 0 && seg.status == GNTST_bad_domain);
	/* ...but the existing mapping stays valid until unmapped. */
	if (addr) {
		CHECK(((char *)addr)[100] == 'd');
		((char *)addr)[100] = 'e';
		CHECK(((char *)addr)[100] == 'e');
	}
	CHECK(bk_sim_guest_nr_mapped(sim, OTHER) == 1);
	CHECK(bk_gnt_unmap(gt, addr, 1) == 0);
	CHECK(bk_sim_guest_nr_mapped(sim, OTHER) == 0);
	/* The domid can be used again. */
	CHECK(bk_sim_domain_create(sim, OTHER, 2) == 0);
	CHECK(bk_sim_domain_create(sim, OTHER, 2) == -EEXIST);
	CHECK(((char *)bk_sim_guest_page(sim, OTHER, 1))[100] == 0);
}

/*
 * A machine freed with everything still open: handles, mappings, watches, bound ports. It
 * must release all of it (LSan in the sanitizer build checks).
 */
static void test_free_leftovers(void)
{
	struct bk_sim *s;
	struct bk_xen *x;
	struct bk_gnttab *g;
	struct bk_evtchn *e;
	struct bk_xs *xs;
	struct bk_sim_counts c;
	uint32_t ref, gp, lp, t;
	void *addr = NULL;

	if (bk_sim_new(&s) < 0) {
		bk_test_failures++;
		return;
	}
	CHECK(bk_sim_domain_create(s, GUEST, 2) == 0);
	CHECK(bk_sim_platform(s, 0, &x) == 0);
	CHECK(bk_gnt_open(x, &g) == 0);
	CHECK(bk_evtchn_open(x, &e) == 0);
	CHECK(bk_xs_open(x, &xs) == 0);
	CHECK(bk_sim_guest_grant(s, GUEST, 0, 1, false, &ref) == 0);
	CHECK(bk_gnt_map(g, GUEST, &ref, 1, true, &addr) == 0);
	CHECK(bk_sim_guest_evtchn_alloc_unbound(s, GUEST, 0, &gp) == 0);
	CHECK(bk_evtchn_bind(e, GUEST, gp, &lp) == 0);
	CHECK(bk_sim_guest_evtchn_notify(s, GUEST, gp) == 0);
	CHECK(bk_xs_watch(xs, "/local/domain/5", "w") == 0);
	CHECK(bk_xs_transaction_start(xs, &t) == 0);
	CHECK(bk_xs_write(xs, t, "/local/domain/5/x", "1", 1) == 0);
	bk_sim_counts(s, &c);
	CHECK(c.gnt_handles == 1 && c.gnt_mapped_pages == 1 && c.evtchn_handles == 1 &&
	      c.evtchn_bound == 1 && c.xs_conns == 1 && c.xs_watches == 1);
	/*
	 * Closing a grant handle leaves its mappings in place, as gntdev does: still usable,
	 * still counted, and the guest cannot revoke them.
	 */
	bk_gnt_close(g);
	bk_sim_counts(s, &c);
	CHECK(c.gnt_handles == 0 && c.gnt_mapped_pages == 1);
	CHECK(bk_sim_guest_nr_mapped(s, GUEST) == 1);
	CHECK(bk_sim_guest_revoke(s, GUEST, ref) == -EBUSY);
	if (addr) {
		((char *)addr)[5] = 'o';
		CHECK(((char *)bk_sim_guest_page(s, GUEST, 1))[5] == 'o');
	}
	bk_sim_free(s);
}

/* The same calls give the same refs and ports: no hidden state. */
static void test_deterministic(void)
{
	uint32_t first[4] = { 0 }, again[4] = { 0 };

	for (int round = 0; round < 2; round++) {
		uint32_t *out = round ? again : first;
		struct bk_sim *s;

		if (bk_sim_new(&s) < 0) {
			bk_test_failures++;
			return;
		}
		CHECK(bk_sim_domain_create(s, GUEST, 4) == 0);
		CHECK(bk_sim_guest_grant(s, GUEST, 0, 1, false, &out[0]) == 0);
		CHECK(bk_sim_guest_grant(s, GUEST, 0, 2, false, &out[1]) == 0);
		CHECK(bk_sim_guest_revoke(s, GUEST, out[0]) == 0);
		CHECK(bk_sim_guest_grant(s, GUEST, 0, 3, false, &out[2]) == 0);
		CHECK(bk_sim_guest_evtchn_alloc_unbound(s, GUEST, 0, &out[3]) == 0);
		bk_sim_free(s);
	}
	CHECK(memcmp(first, again, sizeof(first)) == 0);
	/* A freed ref is handed out again (lowest first), as a guest's free list would. */
	CHECK(first[2] == first[0] && first[1] != first[0]);
}

static void test_faults(void)
{
	uint32_t ref;
	void *addr = NULL;
	char c;
	struct bk_gnt_copy_seg seg = { .local = &c, .domid = GUEST, .len = 1, .status = 99 };

	CHECK(bk_sim_guest_grant(sim, GUEST, 0, 0, false, &ref) == 0);
	seg.ref = ref;
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_GNT_MAP, 0, -ENOMEM) == 0);
	CHECK(bk_gnt_map(gt, GUEST, &ref, 1, true, &addr) == -ENOMEM && addr == NULL);
	CHECK(bk_sim_guest_nr_mapped(sim, GUEST) == 0);
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_GNT_COPY, 0, -EFAULT) == 0);
	CHECK(bk_gnt_copy(gt, &seg, 1) == -EFAULT && seg.status == 99);
	CHECK(bk_gnt_copy(gt, &seg, 1) == 0 && seg.status == GNTST_okay);
	CHECK(bk_sim_fault_inject(sim, 0, BK_SIM_FAULT_GNT_OPEN, 0, -EMFILE) == 0);
	CHECK(bk_gnt_open(dom0, &(struct bk_gnttab *){ NULL }) == -EMFILE);
	CHECK(bk_sim_guest_revoke(sim, GUEST, ref) == 0);
}

int main(void)
{
	setup();
	test_guest_memory();
	test_map_shared();
	test_readonly();
	test_copy();
	test_copy_batch();
	test_invalid_map();
	test_domu_grantee();
	test_destroy();
	test_faults();
	teardown();
	test_free_leftovers();
	test_deterministic();
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
