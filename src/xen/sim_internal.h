/* SPDX-License-Identifier: MIT */
/*
 * Internals of the in-process Xen simulation, shared by its files: sim.c (machine, domains,
 * platforms, the ops table), sim_gnt.c (guest memory, grant tables), sim_evtchn.c (event
 * channels), sim_xs_tree.c (the xenstore node tree) and sim_xs.c (xenstore connections,
 * watches, transactions). Nothing outside src/xen/sim*.c includes this.
 */
#ifndef BK_XEN_SIM_INTERNAL_H
#define BK_XEN_SIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evtchn_batch.h"
#include "sim.h"
#include "xen.h"
#include "util/list.h"
#include "util/macros.h"

/*
 * The simulation is used from several threads at once (the daemon's I/O threads and the test
 * playing the guests): one process-wide lock, recursive (entry points call each other), taken
 * by every entry point for the whole call. Guest memory itself is shared without it, as real
 * guest memory is.
 */
void sim_lock(void);
void sim_unlock_cb(int *unused);
#define SIM_GUARD() _cleanup_(sim_unlock_cb) int sim_guard_ _unused_ = (sim_lock(), 0)

#define SIM_DOMID_MAX 0x7FEFU	     /* highest ordinary domid (DOMID_FIRST_RESERVED - 1) */
#define SIM_MAX_PAGES (1U << 20)     /* 4 GiB of guest memory; memfds are sparse */
#define SIM_GNT_FIRST_REF 8U	     /* refs below are reserved, as GNTTAB_NR_RESERVED_ENTRIES */
#define SIM_GNT_MAX_REFS 32768U	     /* 64 v1 grant frames */
#define SIM_EVTCHN_MAX_PORTS 4096U   /* per domain; port 0 is never used */
#define SIM_XS_EVENT_QUEUE_MAX 4096U /* watch events queued per connection, oldest dropped */
#define SIM_XS_PATH_MAX 3072U	     /* XENSTORE_ABS_PATH_MAX */
#define SIM_XS_VALUE_MAX 4096U	     /* XENSTORE_PAYLOAD_MAX */

/* One grant-table entry of a domain. */
struct sim_grant {
	bool in_use;
	bool readonly;
	uint32_t grantee;
	uint32_t pfn;
	unsigned int mapcount; /* pages mapped through gnt_map right now */
};

enum sim_port_state {
	SIM_PORT_FREE = 0,
	SIM_PORT_UNBOUND,     /* waiting for @remote_domid to bind */
	SIM_PORT_INTERDOMAIN, /* connected to @peer */
};

struct sim_evtchn;

/* One event-channel port of a domain. Guest ports have no handle; backend ports have one. */
struct sim_port {
	struct sim_domain *dom;
	uint32_t port;
	enum sim_port_state state;
	uint32_t remote_domid;	   /* UNBOUND: who may bind */
	struct sim_port *peer;	   /* INTERDOMAIN */
	struct sim_evtchn *handle; /* owning handle, NULL for a guest port */
	struct list_head hnode;	   /* in handle->ports */
	struct list_head qnode;	   /* in handle->ring while queued */
	bool queued;
	bool masked;
	bool pending;	    /* raised while masked: delivered on unmask */
	unsigned int kicks; /* guest ports: notifications received, see evtchn_take */
	unsigned int storm; /* guest ports: re-notifications left (bk_sim_guest_evtchn_storm) */
};

/*
 * A domain. Destroyed domains stay allocated (dead) until the machine is freed, so that
 * grant mappings and handle ports that refer to them stay valid.
 */
struct sim_domain {
	struct list_head node; /* in sim->domains, newest first */
	uint32_t domid;
	bool alive;
	unsigned int nr_pages;
	int memfd;
	void *mem; /* the guest's own mapping */
	struct sim_grant *grants;
	uint32_t nr_grants_alloc;
	struct sim_port **ports; /* indexed by port number */
	uint32_t nr_ports_alloc;
};

struct xs_node;

/* A pending fault injection (bk_sim_fault_inject). */
struct sim_fault {
	struct list_head node; /* in sim->faults */
	uint32_t domid;
	enum bk_sim_fault op;
	unsigned int countdown;
	int err;
};

struct bk_sim {
	struct list_head domains;
	struct list_head platforms;
	struct list_head xs_conns;
	struct list_head evtchns;
	struct list_head gnttabs;
	struct xs_node *xs_root;
	uint64_t xs_gen;	      /* bumped by every change to the committed tree */
	uint32_t xs_next_tx;	      /* transaction ids, never 0 */
	uint64_t xs_dropped;	      /* watch events dropped because a queue was full */
	struct list_head orphan_maps; /* grant mappings left when their handle closed */
	struct list_head faults;      /* struct sim_fault */
	unsigned int orphan_pages;
	unsigned int
		evtchn_ring_size; /* per-handle queue bound, 0: none (bk_sim_evtchn_ring_size) */
	uint64_t evtchn_reads;	  /* reads of pending ports, as read(2)s of /dev/xen/evtchn */
	uint64_t evtchn_writes;	  /* unmask writes, as write(2)s of /dev/xen/evtchn */
	uint64_t gnt_copy_segs;	  /* grant-copy segments carried out (any status) */
	uint64_t gnt_map_calls;	  /* successful gnt_map calls */
};

/* A platform: the machine as seen from one domain. */
struct sim_plat {
	struct bk_xen base;
	struct bk_sim *sim;
	uint32_t domid;
	struct list_head node;	 /* in sim->platforms */
	unsigned int nr_handles; /* open handles made from this platform */
	uint64_t xs_requests;	 /* xenstore requests made through it (bk_sim_xs_requests) */
	bool unprivileged;	 /* domain_alive says -EPERM (bk_sim_platform_unprivileged) */
};

struct sim_evtchn {
	struct bk_evtchn base;
	struct list_head node; /* in sim->evtchns */
	int efd;
	bool efd_ready;
	struct list_head ports; /* struct sim_port.hnode */
	struct list_head ring;	/* pending ports, struct sim_port.qnode */
	unsigned int ring_len;
	bool overflow; /* the queue overflowed: pending says -EFBIG, as the kernel's read */
	struct evtchn_batch batch; /* reads and unmasks in batches, as real_chan.c */
};

struct sim_xs {
	struct bk_xs base;
	struct list_head node; /* in sim->xs_conns */
	uint32_t domid;
	int efd;
	bool efd_ready;
	struct list_head watches; /* struct sim_watch */
	struct list_head events;  /* struct sim_watch_event, oldest first */
	unsigned int nr_events;
	struct list_head txs; /* struct sim_tx */
};

struct sim_gnttab {
	struct bk_gnttab base;
	struct list_head node; /* in sim->gnttabs */
	struct list_head maps; /* struct sim_map */
	unsigned int nr_mapped;
};

static inline struct sim_plat *sim_plat_of(struct bk_xen *x)
{
	return container_of(x, struct sim_plat, base);
}

/* sim.c */
struct sim_domain *sim_domain_live(struct bk_sim *sim, uint32_t domid);
/* The live domain, or else the newest dead one with that id. */
struct sim_domain *sim_domain_any(struct bk_sim *sim, uint32_t domid);
/* Make an eventfd readable (@ready) or not; @state caches what it is now. */
void sim_efd_set(int efd, bool *state, bool ready);
void sim_handle_get(struct bk_xen *x);
/* 0, or the injected -errno if this call of @op through platform @x must fail. */
int sim_fault_check(struct bk_xen *x, enum bk_sim_fault op);
void sim_handle_put(struct bk_xen *x);

/* sim_gnt.c */
int sim_domain_mem_init(struct sim_domain *d, unsigned int nr_pages);
/* Release the mappings orphaned by handles closed while they still mapped grants. */
void sim_gnt_fini(struct bk_sim *sim);
void sim_domain_gnt_destroy(struct sim_domain *d);
void sim_domain_gnt_free(struct sim_domain *d);
int sim_gnt_open(struct bk_xen *x, struct bk_gnttab **ret);
void sim_gnt_close(struct bk_gnttab *g);
int sim_gnt_map(struct bk_gnttab *g, uint32_t domid, const uint32_t *refs, unsigned int n,
		bool writable, void **ret_addr);
int sim_gnt_unmap(struct bk_gnttab *g, void *addr, unsigned int n);
int sim_gnt_copy(struct bk_gnttab *g, struct bk_gnt_copy_seg *segs, unsigned int n);
unsigned int sim_gnt_nr_mapped(struct bk_gnttab *g);

/* sim_evtchn.c */
void sim_domain_evtchn_destroy(struct sim_domain *d);
void sim_domain_evtchn_free(struct sim_domain *d);
int sim_evtchn_open(struct bk_xen *x, struct bk_evtchn **ret);
void sim_evtchn_close(struct bk_evtchn *e);
int sim_evtchn_fd(struct bk_evtchn *e);
int sim_evtchn_bind(struct bk_evtchn *e, uint32_t domid, uint32_t remote_port,
		    uint32_t *ret_local_port);
int sim_evtchn_unbind(struct bk_evtchn *e, uint32_t local_port);
int sim_evtchn_notify(struct bk_evtchn *e, uint32_t local_port);
int sim_evtchn_pending(struct bk_evtchn *e, uint32_t *ret_port);
int sim_evtchn_unmask(struct bk_evtchn *e, uint32_t local_port);
unsigned int sim_evtchn_nr_bound(struct bk_sim *sim);

/* sim_xs_tree.c: the node tree, paths and permissions. */
struct xs_node {
	struct xs_node *parent;
	struct list_head children; /* struct xs_node.sibling, in creation order */
	struct list_head sibling;
	char *name; /* last path component; "" for the root */
	char *value;
	size_t len;
	struct bk_xs_perm *perms; /* perms[0]: owner and everyone's default */
	unsigned int nr_perms;
};

struct xs_node *xs_node_new(struct xs_node *parent, const char *name, size_t name_len,
			    const struct bk_xs_perm *perms, unsigned int nr_perms);
/* NULL-safe; detaches from the parent and frees the subtree. */
void xs_node_free(struct xs_node *n);
struct xs_node *xs_tree_copy(const struct xs_node *root);
unsigned int xs_tree_count(const struct xs_node *root);
/* Node at absolute @path (already validated), NULL if absent. */
struct xs_node *xs_lookup(struct xs_node *root, const char *path);
/* Deepest existing node on the way to @path; *ret_rest points at what is left ("" if found). */
struct xs_node *xs_lookup_prefix(struct xs_node *root, const char *path, const char **ret_rest);
/* What @domid may do on a node with these perms (BK_XS_PERM_*). */
unsigned int xs_perm_of(const struct bk_xs_perm *perms, unsigned int nr, uint32_t domid);
int xs_node_set_value(struct xs_node *n, const void *val, size_t len);
int xs_node_set_perms(struct xs_node *n, const struct bk_xs_perm *perms, unsigned int nr);
/* Validate and canonicalise @path as seen by @domid; returns a malloc'd absolute path. */
int xs_path_canon(const char *path, uint32_t domid, bool allow_special, char **ret);
/* True if @path is @dir or below it. */
bool xs_path_is_under(const char *path, const char *dir);

/* sim_xs.c */
int sim_xs_init(struct bk_sim *sim);
void sim_xs_fini(struct bk_sim *sim);
/* As the toolstack: create @path (and parents) owned by dom0 with @perms. */
int sim_xs_make_node(struct bk_sim *sim, const char *path, const struct bk_xs_perm *perms,
		     unsigned int nr_perms);
int sim_xs_open(struct bk_xen *x, struct bk_xs **ret);
void sim_xs_close(struct bk_xs *xs);
int sim_xs_fd(struct bk_xs *xs);
int sim_xs_read(struct bk_xs *xs, uint32_t t, const char *path, char **ret_val, size_t *ret_len);
int sim_xs_write(struct bk_xs *xs, uint32_t t, const char *path, const void *val, size_t len);
int sim_xs_mkdir(struct bk_xs *xs, uint32_t t, const char *path);
int sim_xs_rm(struct bk_xs *xs, uint32_t t, const char *path);
int sim_xs_directory(struct bk_xs *xs, uint32_t t, const char *path, char ***ret_names,
		     unsigned int *ret_n);
int sim_xs_get_perms(struct bk_xs *xs, uint32_t t, const char *path, struct bk_xs_perm **ret_perms,
		     unsigned int *ret_n);
int sim_xs_set_perms(struct bk_xs *xs, uint32_t t, const char *path, const struct bk_xs_perm *perms,
		     unsigned int n);
int sim_xs_watch(struct bk_xs *xs, const char *path, const char *token);
int sim_xs_unwatch(struct bk_xs *xs, const char *path, const char *token);
int sim_xs_read_watch(struct bk_xs *xs, char **ret_path, char **ret_token);
int sim_xs_transaction_start(struct bk_xs *xs, uint32_t *ret_t);
int sim_xs_transaction_end(struct bk_xs *xs, uint32_t t, bool abort);
unsigned int sim_xs_nr_watches(struct bk_sim *sim);
/* Fire the special watch @name ("@releaseDomain", ...) on dom0's connections. */
void sim_xs_fire_special(struct bk_sim *sim, const char *name);

#endif
