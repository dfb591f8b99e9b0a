/* SPDX-License-Identifier: MIT */
/*
 * Dom0's own p2m (pseudo-physical frame -> machine frame), read from userspace, for drivers
 * that hand addresses to a device in a PV dom0 (frontends/virtio/dma.c; pv-dom0-dma.md).
 *
 * Linux publishes its p2m in shared_info.arch: max_pfn, the three-level frame-list tree
 * (pfn_to_mfn_frame_list_list: a page of MFNs of pages of MFNs of p2m pages, 512 entries
 * each), and p2m_generation, which it increments before and after every change of the p2m
 * mappings (odd: a change is in progress). The walk maps machine frames read-only through a
 * backend: the real one maps dom0's shared_info and frames with xenforeignmemory and
 * DOMID_SELF (p2m_real.c), the simulated one serves frames from memory (p2m_sim.c, tests).
 * Leaf pages stay mapped, so a lookup costs a few memory reads until the generation moves;
 * then every cached mapping is dropped and the tree is walked again.
 */
#ifndef BK_XEN_P2M_H
#define BK_XEN_P2M_H

#include <stdbool.h>
#include <stdint.h>

#define BK_P2M_PER_PAGE 512u /* 8-byte entries in a 4 KiB page */
#define BK_P2M_INVALID (~0ull)
/* Linux marks foreign (grant-mapped) and identity (I/O) frames with the top two bits. */
#define BK_P2M_FLAG_MASK (3ull << 62)

/* The fields of shared_info.arch the walk reads (x86-64 layout, offset 3088 in the page). */
struct bk_p2m_arch {
	uint64_t max_pfn;
	uint64_t pfn_to_mfn_frame_list_list;
	uint64_t nmi_reason;
	uint64_t p2m_cr3;
	uint64_t p2m_vaddr;
	uint64_t p2m_generation;
};
#define BK_P2M_ARCH_OFFSET 3088u

struct bk_p2m;

struct bk_p2m_ops {
	const char *name;
	/* Map machine frame @mfn read-only; NULL and errno set on failure. */
	const void *(*map)(struct bk_p2m *p, uint64_t mfn);
	/* Drop a mapping from map(). */
	void (*unmap)(struct bk_p2m *p, const void *page);
	/* Release the backend (the walk's own mappings are gone by then). */
	void (*free)(struct bk_p2m *p);
};

struct bk_p2m {
	const struct bk_p2m_ops *ops;
	const volatile struct bk_p2m_arch *arch; /* inside the mapped shared_info */
	uint64_t generation;			 /* of what is cached; odd: nothing cached */
	uint64_t max_pfn;
	const uint64_t *top;   /* the frame-list-list page */
	const uint64_t **mid;  /* [512] frame-list pages, mapped on demand */
	const uint64_t **leaf; /* [nr_leaf] p2m pages, mapped on demand */
	uint64_t nr_leaf;
	uint64_t walks; /* times the cache was dropped and the tree walked again */
	uint64_t maps;	/* frames mapped (tests check the cache) */
};

/*
 * Dom0's p2m through xenforeignmemory. -ENOSYS without the Xen libraries, -ENODEV when this
 * is not a PV domain with a p2m (the frame-list tree absent), -errno from libxen.
 */
int bk_p2m_open_real(struct bk_p2m **ret);
/* NULL-safe. */
void bk_p2m_close(struct bk_p2m *p);

/* For backends: set the common part up (@arch mapped by the backend). */
int bk_p2m_init(struct bk_p2m *p, const struct bk_p2m_ops *ops,
		const volatile struct bk_p2m_arch *arch);

/*
 * The machine frame of @pfn. -ERANGE past max_pfn, -EFAULT when the entry is not a RAM frame
 * of ours (invalid, foreign, identity), -EAGAIN when the p2m kept changing under the walk,
 * -EOPNOTSUPP when Linux published no frame-list tree (only the linear list at p2m_vaddr),
 * -errno when a frame cannot be mapped.
 */
int bk_p2m_lookup(struct bk_p2m *p, uint64_t pfn, uint64_t *ret_mfn);

/* The current p2m_generation (one memory read: callers compare it with a saved value). */
static inline uint64_t bk_p2m_generation(const struct bk_p2m *p)
{
	return p->arch->p2m_generation;
}

/*
 * A simulated p2m for tests: @nr entries of @table (copied into simulated machine frames,
 * numbered from 0x100000, with the tree built as Linux builds it). bk_p2m_sim_set() changes
 * one entry the way Linux does (generation +1, write, +1) and may grow max_pfn.
 */
int bk_p2m_sim_new(const uint64_t *table, uint64_t nr, struct bk_p2m **ret);
int bk_p2m_sim_set(struct bk_p2m *p, uint64_t pfn, uint64_t mfn);
/* Raw access for tests: the simulated shared_info.arch (to set an odd generation, etc.). */
struct bk_p2m_arch *bk_p2m_sim_arch(struct bk_p2m *p);

#endif
