/* SPDX-License-Identifier: MIT */
/*
 * The in-process Xen simulation: a "machine" with domains, each with guest memory (memfd
 * pages), a grant table, event channels, and one shared in-memory xenstore with watches,
 * transactions and permissions. bk_sim_platform() gives a struct bk_xen that behaves like the
 * real platform seen from a given domain, so the daemon runs unchanged on top; the guest side
 * (tests/lib's test frontends) uses the bk_sim_guest_* calls plus a platform of its own domain
 * for xenstore.
 *
 * What it does NOT model (keep tests that depend on these in the lab):
 *  - real hypervisor scheduling, timing, or concurrency: everything runs on the caller's thread;
 *  - grant map/unmap TLB effects, GNTMAP_* flags beyond read-only, transitive/sub-page grants,
 *    grant table v2;
 *  - event channel FIFO/2-level ABI details, VIRQs, IPIs, priorities; lateeoi is not modelled
 *    (unmask is the only re-arm); the handle's queue is unbounded unless a test bounds it;
 *  - xenstore quotas, the wire protocol, introduced/released domains (the special watches
 *    @introduceDomain / @releaseDomain do fire, for dom0 connections, on domain create and
 *    destroy), transaction conflicts finer than "anything changed";
 *  - domain memory accounting, ballooning, PV page tables, the p2m.
 */
#ifndef BK_XEN_SIM_H
#define BK_XEN_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "xen.h"

struct bk_sim;

/* A machine with dom0 (domid 0) already running, with xenstore's /local/domain/0. */
int bk_sim_new(struct bk_sim **ret);
/* NULL-safe. Every platform returned by bk_sim_platform must have been freed. */
void bk_sim_free(struct bk_sim *sim);

/*
 * The platform as seen from inside @domid (0 = dom0, the backend's view). Free it with
 * bk_xen_free(). Xenstore connections opened through it act as @domid for permissions.
 */
int bk_sim_platform(struct bk_sim *sim, uint32_t domid, struct bk_xen **ret);
/*
 * Make @x (a platform from bk_sim_platform) a domain without the hypervisor's domain-control
 * privilege, as a driver domain on real Xen: its domain_alive() answers -EPERM (the domctl is
 * refused); xenstore, grants and event channels work as before.
 */
void bk_sim_platform_unprivileged(struct bk_xen *x);

/*
 * Create a guest domain with @nr_pages pages of memory. Like the toolstack, also creates
 * /local/domain/<domid> owned by the domain (dom0 full access).
 */
int bk_sim_domain_create(struct bk_sim *sim, uint32_t domid, unsigned int nr_pages);
/*
 * Destroy a domain as the hypervisor would: its event channels close (the remote ends see
 * them unbound), its grant table goes away (mappings held by others stay valid until
 * unmapped, as with real Xen), domain_alive() says 0. Does not touch xenstore: tests play
 * the toolstack for that.
 */
int bk_sim_domain_destroy(struct bk_sim *sim, uint32_t domid);

/* Guest memory: address of page @pfn of @domid as seen by the guest, NULL if out of range. */
void *bk_sim_guest_page(struct bk_sim *sim, uint32_t domid, uint32_t pfn);
/* Grant page @pfn of @domid to @grantee. */
int bk_sim_guest_grant(struct bk_sim *sim, uint32_t domid, uint32_t grantee, uint32_t pfn,
		       bool readonly, uint32_t *ret_ref);
/* End a grant. -EBUSY while someone still maps it (as gnttab_end_foreign_access would). */
int bk_sim_guest_revoke(struct bk_sim *sim, uint32_t domid, uint32_t ref);
/* Number of refs of @domid currently mapped by anyone (release checks). */
unsigned int bk_sim_guest_nr_mapped(struct bk_sim *sim, uint32_t domid);
/* Number of live grants (not revoked) in @domid's table. */
unsigned int bk_sim_guest_nr_grants(struct bk_sim *sim, uint32_t domid);
/*
 * Grant-copy segments the simulation carried out so far (any status, by any domain), and
 * gnt_map calls that mapped something: what a datapath costs in hypercalls.
 */
uint64_t bk_sim_gnt_copy_segs(struct bk_sim *sim);
uint64_t bk_sim_gnt_map_calls(struct bk_sim *sim);

/* An unbound port in @domid that @remote_domid may bind to. */
int bk_sim_guest_evtchn_alloc_unbound(struct bk_sim *sim, uint32_t domid, uint32_t remote_domid,
				      uint32_t *ret_port);
/* Close a guest port (the remote end sees it unbound). */
int bk_sim_guest_evtchn_close(struct bk_sim *sim, uint32_t domid, uint32_t port);
/* The guest kicks @port: the bound remote end becomes pending. -ENOTCONN if not bound. */
int bk_sim_guest_evtchn_notify(struct bk_sim *sim, uint32_t domid, uint32_t port);
/*
 * Notifications the guest received on @port since the last call (the counter is reset), so
 * a test frontend can wait for "the backend kicked me".
 */
unsigned int bk_sim_guest_evtchn_take(struct bk_sim *sim, uint32_t domid, uint32_t port);
/* True if @port of @domid is bound to a remote end right now. */
bool bk_sim_guest_evtchn_bound(struct bk_sim *sim, uint32_t domid, uint32_t port);
/*
 * A guest that notifies @port in a tight loop on another CPU: the backend's end is raised now
 * and again every time the backend unmasks it, @credit times in all (0 stops the storm). A
 * test refills the credit every loop turn; @ret_left (may be NULL) gets what the previous
 * credit had left, so a credit used up within one turn means a callback never returned.
 */
int bk_sim_guest_evtchn_storm(struct bk_sim *sim, uint32_t domid, uint32_t port,
			      unsigned int credit, unsigned int *ret_left);

/*
 * Bound every event-channel handle's queue of pending ports to @entries (0: unbounded, the
 * default), as Linux's evtchn ring is bounded. An event that finds the queue full is lost (its
 * port stays masked) and the handle's next evtchn_pending says -EFBIG once and resets the
 * queue (what real_evtchn_pending does), dropping the ports still queued: the caller must then
 * treat every port it bound as pending.
 */
void bk_sim_evtchn_ring_size(struct bk_sim *sim, unsigned int entries);

/*
 * Reads of pending ports and unmask writes made through every handle so far: what would be
 * read(2) and write(2) calls on /dev/xen/evtchn (tests of how the handles batch them).
 */
void bk_sim_evtchn_calls(struct bk_sim *sim, uint64_t *ret_reads, uint64_t *ret_writes);

/* Open handles across the whole simulation (leak checks in tests). */
struct bk_sim_counts {
	unsigned int xs_conns;
	unsigned int xs_watches;
	unsigned int evtchn_handles;
	unsigned int evtchn_bound; /* ports bound through evtchn handles */
	unsigned int gnt_handles;
	unsigned int gnt_mapped_pages;
	unsigned int xs_nodes;
};
void bk_sim_counts(struct bk_sim *sim, struct bk_sim_counts *ret);

/*
 * Watch events dropped so far because a connection's queue was full (at most 4096 events
 * are queued per xenstore connection; when full, the oldest is dropped).
 */
uint64_t bk_sim_xs_dropped(struct bk_sim *sim);

/*
 * Xenstore requests made so far through the connections of @xen, a platform of this
 * simulation (each a round trip on a real xenstore: read, write, mkdir, rm, directory,
 * permissions, watch, unwatch, transaction start and end; not reading a watch event).
 */
uint64_t bk_sim_xs_requests(struct bk_xen *xen);

/*
 * Errors the simulated platform returns where the real one leaves room (nothing changes on
 * failure):
 *  - gnt_map: -EINVAL unknown or revoked ref (or n == 0), -EACCES ref granted to another
 *    domain or a writable map of a read-only grant, -ESRCH unknown or destroyed domain.
 *    gnt_unmap: -EINVAL unless (addr, n) is exactly one earlier gnt_map. As with gntdev,
 *    closing a gnttab handle leaves its mappings in place (still counted in
 *    bk_sim_guest_nr_mapped and gnt_mapped_pages, so leaks show) until bk_sim_free.
 *    gnt_copy: a segment with len 0 succeeds without looking at its grant.
 *  - evtchn_bind: -EINVAL unless the remote port is unbound and allocated for the caller's
 *    domain; notify/unmask/unbind: -EINVAL for a port this handle did not bind. Closing a
 *    handle unbinds its ports. The evtchn and xs fds are eventfds the simulation drains
 *    itself: poll them, never read them.
 *  - xs_*: -ENOENT absent node or unknown transaction (or one of another connection), -EACCES
 *    no permission, -EINVAL bad path, -E2BIG value over 4096 bytes; set_perms: -EACCES when
 *    not the owner, -EPERM when a domU gives its node away; xs_watch: -EEXIST for the same
 *    path and token twice; xs_unwatch: -ENOENT. Relative paths are under
 *    /local/domain/<domid>, and watches registered with one report relative paths.
 */

/* Calls that bk_sim_fault_inject() can make fail. */
enum bk_sim_fault {
	BK_SIM_FAULT_XS_OPEN,
	BK_SIM_FAULT_XS_READ,
	BK_SIM_FAULT_XS_WRITE,
	BK_SIM_FAULT_XS_MKDIR,
	BK_SIM_FAULT_XS_RM,
	BK_SIM_FAULT_XS_DIRECTORY,
	BK_SIM_FAULT_XS_SET_PERMS,
	BK_SIM_FAULT_XS_WATCH,
	BK_SIM_FAULT_XS_TX_START,
	BK_SIM_FAULT_XS_TX_COMMIT, /* transaction_end without abort; the transaction is gone */
	BK_SIM_FAULT_EVTCHN_OPEN,
	BK_SIM_FAULT_EVTCHN_BIND,
	BK_SIM_FAULT_EVTCHN_NOTIFY,
	BK_SIM_FAULT_GNT_OPEN,
	BK_SIM_FAULT_GNT_MAP,
	BK_SIM_FAULT_GNT_COPY, /* the whole batch: -errno, no segment touched */
	BK_SIM_FAULT__MAX,
};

/*
 * Fault injection, one shot: of the calls of @op made through platforms of @domid, the @nth
 * next one (0: the very next) fails with @err (a negative errno, e.g. -EAGAIN for a
 * transaction conflict) and changes nothing. Injecting again for the same (domid, op)
 * replaces the pending one. -EINVAL for a bad @op or an @err that is not negative.
 */
int bk_sim_fault_inject(struct bk_sim *sim, uint32_t domid, enum bk_sim_fault op, unsigned int nth,
			int err);
/* Drop every pending injection. */
void bk_sim_fault_clear(struct bk_sim *sim);

#endif
