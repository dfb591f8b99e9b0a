/* SPDX-License-Identifier: MIT */
/*
 * Daemon configuration: /etc/blanketd/blanketd.conf, a flat "key = value" file with '#'
 * comments (man blanketd.conf(5)), then command-line overrides (--set key=value). Every key has
 * a default, so no file is needed. Parsing is strict: an unknown key or a bad value stops
 * startup with "FILE:LINE: bad value 'X' for key 'Y': reason".
 *
 * Per-device settings do not live here: the hotplug script writes them into the device's
 * backend directory in xenstore (BK_XS_* below), and the backend reads them once the script
 * wrote hotplug-status=connected (backends/blkif/settings.c), using the daemon-wide values as
 * defaults and caps.
 */
#ifndef BK_CONF_H
#define BK_CONF_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "blanket/ctl.h" /* struct bk_ctl_limit */
#include "config.h"	 /* meson's: BK_SYSCONFDIR */

#define BK_CONFIG_DEFAULT_PATH BK_SYSCONFDIR "/blanketd/blanketd.conf"
#define BK_CONFIG_DEFAULT_SOCKET "/run/blanketd/control"
/* In-flight journals live in <state-directory>/inflight (see src/journal.h). */
#define BK_CONFIG_DEFAULT_STATE_DIR "/run/blanketd"

/* Limits on the numeric keys (the man page quotes them). */
#define BK_CFG_QUEUES_MAX 64U
#define BK_CFG_RING_ORDER_MAX 4U /* XENBUS_MAX_RING_GRANT_ORDER: 16 pages */
#define BK_CFG_INDIRECT_MIN 11U	 /* below this, indirect descriptors gain nothing */
#define BK_CFG_INDIRECT_MAX 256U
#define BK_CFG_BOUNCE_MAX (1ULL << 30) /* per queue */
/* bounce-pool-budget: all queues of all devices; "auto" is a quarter of RAM, at least 64M. */
#define BK_CFG_BUDGET_MIN (1ULL << 20)
#define BK_CFG_BUDGET_MAX (1ULL << 40)
#define BK_CFG_BUDGET_AUTO_MIN (64ULL << 20)
#define BK_CFG_COALESCE_MAX 10000U     /* ms */
#define BK_CFG_SHARE_WAIT_MAX 600000U  /* ms */
#define BK_CFG_QUEUE_IDLE_MIN 100U     /* ms */
#define BK_CFG_QUEUE_IDLE_MAX 3600000U /* ms */

/*
 * Canonical per-device xenstore keys, written by the hotplug script under
 * /local/domain/<self>/backend/vbd/<domid>/<devid>/ before hotplug-status=connected. All are
 * optional; a value that does not parse fails that device only (not the daemon).
 */
#define BK_XS_ENGINE "blanket-engine"	/* io_uring | aio | null: overrides "engine" */
#define BK_XS_QUEUES "blanket-queues"	/* 1..queues: caps what the frontend may ask for */
#define BK_XS_CACHE "blanket-cache"	/* writeback | writethrough | none (see enum) */
#define BK_XS_DISCARD "blanket-discard" /* on | off: advertise feature-discard (default on) */
#define BK_XS_OPTIONS "blanket-options" /* engine option string (bk_engine_params.options) */
#define BK_XS_SHARE "blanket-share"	/* on | off: share read-write with other guests (w!) */
#define BK_XS_IOPS "blanket-iops"	/* requests/s, 0 unlimited: overrides disk-rate-limit */
#define BK_XS_BPS "blanket-bps"		/* bytes/s (K, M, G), 0 unlimited */
#define BK_XS_BURST "blanket-burst"	/* ms of either rate the buckets hold */
/* on | off: offer feature-persistent (default on; O_DIRECT stores never) */
#define BK_XS_PERSISTENT "blanket-persistent"

enum bk_cache_mode {
	BK_CACHE_NONE = 0,	   /* O_DIRECT, flushes passed down: the default */
	BK_CACHE_WRITEBACK = 1,	   /* page cache; FLUSH/BARRIER requests fdatasync */
	BK_CACHE_WRITETHROUGH = 2, /* page cache, O_DSYNC: every write is durable when answered */
};

struct bk_config {
	int log_level;			    /* BK_LOG_* */
	char control_socket[108];	    /* absolute path, fits sockaddr_un.sun_path */
	char engine[16];		    /* io_uring | aio | null */
	unsigned int queues;		    /* max queues per device, 1..BK_CFG_QUEUES_MAX */
	unsigned int max_ring_page_order;   /* 0..BK_CFG_RING_ORDER_MAX */
	unsigned int max_indirect_segments; /* 0 (off) or BK_CFG_INDIRECT_MIN..MAX */
	uint64_t bounce_pool_size;	    /* bytes per queue, multiple of 4096 */
	uint64_t bounce_pool_budget;	    /* bytes for every pool together; 0: auto */
	unsigned int watch_coalesce_ms;
	bool cpu_affinity_set;	    /* false: do not pin */
	cpu_set_t cpu_affinity;	    /* for the daemon and its I/O threads */
	char cpu_affinity_str[128]; /* as written, for logs */
	/*
	 * Where the in-flight journals that make restarts invisible to guests live. Must outlive
	 * the process (tmpfs /run). On the simulated platform journals are kept only when this
	 * was set explicitly, so test processes never share files.
	 */
	char state_directory[108];
	bool state_directory_set;
	/* Every disk's rate limits unless its settings say otherwise; flags unused. */
	struct bk_ctl_limit disk_rate_limit;
	/*
	 * vif-port: the port of each named vif that is not a TAP, "VIFNAME:SPEC" entries
	 * separated by ';' (SPEC: virtio-net,pci=BDF[,...] or vhost-user,path=SOCKET[,...]; see
	 * frontends/virtio/net.h). "" : every vif gets a TAP.
	 */
	char vif_port[1024];
	/*
	 * How long a disk whose image another guest's dying device still has open (draining its
	 * in-flight I/O after the guest was destroyed) waits for it before being refused; 0:
	 * refused at once.
	 */
	unsigned int share_wait_ms;
	/*
	 * How long a disk's queue stays idle before it gives back what only requests need (its
	 * request slots, bounce pool pages and pinning, persistent-grant mappings).
	 */
	unsigned int queue_idle_ms;
	/*
	 * l0-pci-allow: the PCI devices blanketd may take for its own virtio drivers: "any",
	 * "none", or BDFs (DDDD:BB:DD.F) separated by commas, as normalised (no blanks).
	 */
	char l0_pci_allow[256];
	/*
	 * io-threads: I/O threads the devices are sharded over (all of a guest's on one); 0 keeps
	 * every device on the main loop; -1 ("auto"): one per CPU the daemon may run on.
	 */
	int io_threads;
};

#define BK_CFG_IO_THREADS_MAX 64
/* io-threads resolved: "auto" is the number of CPUs in the daemon's affinity mask (max 64). */
unsigned int bk_config_io_threads(const struct bk_config *cfg);

/* May blanketd take PCI device @bdf (l0-pci-allow)? */
bool bk_config_pci_allowed(const struct bk_config *cfg, const char *bdf);

/*
 * The port spec blanketd.conf's vif-port gives vif @ifname into @buf ("" for a TAP); -ENOSPC
 * when it does not fit.
 */
int bk_config_vif_port(const struct bk_config *cfg, const char *ifname, char *buf, size_t size);

/*
 * The bounce-pool budget in bytes: bounce-pool-budget, or for "auto" a quarter of the physical
 * memory (at least BK_CFG_BUDGET_AUTO_MIN).
 */
uint64_t bk_config_bounce_budget(const struct bk_config *cfg);

/* Fill @cfg with the built-in defaults (what an empty file gives). */
void bk_config_defaults(struct bk_config *cfg);

/*
 * Parse @path into @cfg (on top of what it holds). If @must_exist is false a missing file is
 * not an error (returns 0, 0 keys). Errors are logged as "path:line: ..." and returned as
 * -EINVAL (or -errno for I/O); @cfg may then be partly updated. Returns the number of keys set.
 */
int bk_config_load(struct bk_config *cfg, const char *path, bool must_exist);

/*
 * Set one key from "key=value" (the --set option). Errors are logged naming @origin (e.g.
 * "--set") and the value, and returned as -EINVAL.
 */
int bk_config_set(struct bk_config *cfg, const char *origin, const char *assignment);

/*
 * Set @key to @value; on failure write the reason into @why (for the caller's message) and
 * return -EINVAL (-ENOENT for an unknown key). @cfg is untouched on failure.
 */
int bk_config_set_key(struct bk_config *cfg, const char *key, const char *value, char *why,
		      size_t why_len);

/* Print the effective configuration in the file's syntax (for --dump-config and tests). */
void bk_config_dump(const struct bk_config *cfg, FILE *out);

/* The configuration in effect: defaults until the daemon installs its parsed copy. */
const struct bk_config *bk_config_current(void);
/* Make @cfg (copied) the configuration in effect. */
void bk_config_install(const struct bk_config *cfg);

/*
 * What blanketd's command line gives: defaults, then @path (NULL: the default file, which may
 * be missing; a named file must exist), then each "key=value" of @sets in order (--set).
 * Errors are logged with file, line, key and value; returns 0 or -EINVAL / -errno.
 */
int bk_config_build(struct bk_config *ret, const char *path, char *const *sets, unsigned int nsets);

/*
 * Put @cfg in effect: install it (bk_config_current), set the log level, and pin the process
 * (and threads created later, io_uring workers included) to cpu-affinity. Fails with a clear
 * message if the CPU list names no online CPU.
 */
int bk_config_apply(const struct bk_config *cfg);

/*
 * Strict value parsers, shared with the backends for their xenstore keys. Each returns 0 and
 * sets *ret, or -EINVAL with the reason in @why.
 */
int bk_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret, char *why,
		  size_t why_len);
/* A byte size: digits with an optional K, M, G suffix (powers of 1024). */
int bk_parse_size(const char *s, uint64_t *ret, char *why, size_t why_len);
/* "on|off|yes|no|true|false|1|0". */
int bk_parse_bool(const char *s, bool *ret, char *why, size_t why_len);
/* A CPU list: "0-3,6"; ascending or not, no overlaps, no blanks, CPUs < CPU_SETSIZE. */
int bk_parse_cpu_list(const char *s, cpu_set_t *ret, char *why, size_t why_len);
/* "writeback", "writethrough", "none". */
int bk_parse_cache_mode(const char *s, enum bk_cache_mode *ret, char *why, size_t why_len);
const char *bk_cache_mode_name(enum bk_cache_mode m);
/* "io_uring", "aio", "null" (whether the engine was built is checked at startup). */
int bk_parse_engine(const char *s, char *why, size_t why_len);

#endif
