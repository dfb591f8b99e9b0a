// SPDX-License-Identifier: MIT
/*
 * The real Xen platform over Debian 12's libxen 4.17: libxenctrl (own domain, domain state),
 * libxenstore (real_xs.c), libxenevtchn and libxengnttab (real_chan.c). Built when meson finds
 * the xen* libraries (HAVE_XEN); real_none.c stands in otherwise.
 *
 * A platform and its handles are used from one thread at a time (the daemon's loop), like the
 * simulation. libxenstore starts a reader thread of its own on the first watch, so open
 * xenstore connections after any daemonising fork(), never before.
 *
 * Where this differs from the simulation (sim.c), for whoever debugs a lab failure that the
 * unit tests did not show:
 *  - Watches: both fire a new watch once at registration (xenstored does so whatever the
 *    node's state). The sim caps each connection's event queue and drops the oldest; the real
 *    queue lives in libxenstore and is unbounded. The xs fd is libxenstore's watch pipe: it
 *    stays readable while any event is queued, so drain with read_watch until -EAGAIN. If
 *    xenstored goes away, the fd never becomes readable again; the next request fails
 *    (-EBADF/-EINVAL) and read_watch returns -EINVAL.
 *  - xs_rm of a missing node: xenstored reports success when the parent exists; real_xs.c
 *    probes first so both return -ENOENT (the probe is racy outside a transaction).
 *  - Transactions: xenstored conflicts per node touched, the sim when anything changed at
 *    all; both say -EAGAIN, so callers must loop either way. Special watches (@releaseDomain,
 *    @introduceDomain) really fire here; the sim accepts and never fires them.
 *  - Permissions: the values read back may include entries the toolstack added; only the
 *    read/write bits are mapped (the library's OWNER/ENOENT_OK/IGNORE bits are dropped).
 *  - Event channels: both queue a port and mask it on delivery; a kick while masked is
 *    re-delivered on unmask. The kernel accepts unmask while the port is still queued (the
 *    sim ignores that unmask) and its per-handle ring can overflow: pending then returns
 *    -EFBIG and the caller must poll every bound port. The real fd is /dev/xen/evtchn made
 *    O_NONBLOCK here (libxenevtchn opens it blocking).
 *  - Grants: a map failure is one -errno for the whole call (no per-ref status); the sim
 *    models read-only maps but not the TLB or GNTMAP flags. gnt_copy segments that the
 *    kernel would refuse (offset + len > 4096, bad domid, no buffer) get a GNTST status here
 *    without being sent, so one bad guest segment does not fail the batch.
 *  - domain_alive: the sim knows only alive/destroyed. Here a dying domain and a domain shut
 *    down for good (poweroff, reboot, crash) count as gone; a domain shut down for suspend
 *    (save, migration, checkpoint) counts as alive, since it may resume on the same rings.
 *    In a driver domain the domctl is refused (-EPERM): rely on xenstore instead.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "real_internal.h"
#include "util/log.h"
#include "util/macros.h"

static struct real_xen *real_of(struct bk_xen *x)
{
	return container_of(x, struct real_xen, base);
}

void real_handle_get(struct bk_xen *x)
{
	real_of(x)->nr_handles++;
}

void real_handle_put(struct bk_xen *x)
{
	struct real_xen *rx = real_of(x);

	assert(rx->nr_handles > 0);
	rx->nr_handles--;
}

/* True if /proc/xen/capabilities (xenfs) says this is the control domain. */
static bool is_control_domain(void)
{
	char buf[64] = "";
	FILE *f;
	bool ret;

	f = fopen("/proc/xen/capabilities", "re");
	if (!f)
		return false;
	ret = fgets(buf, sizeof(buf), f) && strstr(buf, "control_d");
	fclose(f);
	return ret;
}

/*
 * Our domid. The robust source is xenstore's relative path "domid": xenstored resolves it
 * under /local/domain/<the connection's domain>, and the toolstack writes that key for dom0
 * (xen-init-dom0) and for every domain it builds, driver domains included. A dom0 whose
 * toolstack never ran xen-init-dom0 lacks the key: then, and only if xenfs says we are the
 * control domain or the privileged domctl works, the answer is 0. Anything else is an error
 * rather than a guess, since a wrong domid would point the backend at someone else's nodes.
 */
static int lookup_own_domid(struct real_xen *rx, uint32_t *ret)
{
	struct xs_handle *h;
	xc_domaininfo_t info;
	unsigned int len;
	uint64_t v;
	char *s;
	int r;

	h = xs_open(0);
	if (!h)
		return real_errno();
	s = xs_read(h, XBT_NULL, "domid", &len);
	r = s ? 0 : real_errno();
	xs_close(h);
	if (s) {
		if (strlen(s) != len || bk_parse_u64(s, &v) < 0 || v >= REAL_DOMID_LIMIT)
			r = -EINVAL;
		free(s);
		if (r < 0)
			return r;
		*ret = (uint32_t)v;
		return 0;
	}
	if (r != -ENOENT)
		return r;
	if (is_control_domain() || xc_domain_getinfolist(rx->xc, 0, 1, &info) == 1) {
		*ret = 0;
		return 0;
	}
	return -ENOENT;
}

static int real_own_domid(struct bk_xen *x, uint32_t *ret_domid)
{
	struct real_xen *rx = real_of(x);
	uint32_t d;
	int r;

	if (!rx->have_domid) {
		r = lookup_own_domid(rx, &d);
		if (r < 0)
			return r;
		rx->domid = d;
		rx->have_domid = true;
	}
	*ret_domid = rx->domid;
	return 0;
}

static int real_domain_alive(struct bk_xen *x, uint32_t domid)
{
	xc_domaininfo_t info;
	unsigned int reason;
	int n;

	if (domid >= REAL_DOMID_LIMIT)
		return -EINVAL;
	/* Returns the first domain with id >= @domid: check it is the one we asked about. */
	n = xc_domain_getinfolist(real_of(x)->xc, domid, 1, &info);
	if (n < 0)
		return real_errno();
	if (n == 0 || info.domain != domid)
		return 0;
	if (info.flags & XEN_DOMINF_dying)
		return 0;
	if (info.flags & XEN_DOMINF_shutdown) {
		reason = (info.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
		return reason == SHUTDOWN_suspend ? 1 : 0;
	}
	return 1;
}

static void real_free(struct bk_xen *x)
{
	struct real_xen *rx = real_of(x);

	/* Handles point at their platform: closing them first is the caller's job. */
	assert(rx->nr_handles == 0);
	xc_interface_close(rx->xc);
	free(rx);
}

static const struct bk_xen_ops real_ops = {
	.name = "xen",
	.free = real_free,
	.own_domid = real_own_domid,
	.domain_alive = real_domain_alive,
	.xs_open = real_xs_open,
	.xs_close = real_xs_close,
	.xs_fd = real_xs_fd,
	.xs_read = real_xs_read,
	.xs_write = real_xs_write,
	.xs_mkdir = real_xs_mkdir,
	.xs_rm = real_xs_rm,
	.xs_directory = real_xs_directory,
	.xs_get_perms = real_xs_get_perms,
	.xs_set_perms = real_xs_set_perms,
	.xs_watch = real_xs_watch,
	.xs_unwatch = real_xs_unwatch,
	.xs_read_watch = real_xs_read_watch,
	.xs_transaction_start = real_xs_transaction_start,
	.xs_transaction_end = real_xs_transaction_end,
	.evtchn_open = real_evtchn_open,
	.evtchn_close = real_evtchn_close,
	.evtchn_fd = real_evtchn_fd,
	.evtchn_bind = real_evtchn_bind,
	.evtchn_unbind = real_evtchn_unbind,
	.evtchn_notify = real_evtchn_notify,
	.evtchn_pending = real_evtchn_pending,
	.evtchn_unmask = real_evtchn_unmask,
	.gnt_open = real_gnt_open,
	.gnt_close = real_gnt_close,
	.gnt_map = real_gnt_map,
	.gnt_unmap = real_gnt_unmap,
	.gnt_copy = real_gnt_copy,
	.gnt_nr_mapped = real_gnt_nr_mapped,
};

int bk_xen_real_new(struct bk_xen **ret)
{
	struct real_xen *rx;
	char msg[256];
	int r;

	/* Not running on Xen at all: say so plainly instead of letting libxenctrl log it. */
	if (access("/dev/xen/privcmd", F_OK) < 0)
		return -ENODEV;
	/* A domain (typically a driver domain) set up without a device we need: name it. */
	r = bk_xen_missing_node("", msg, sizeof(msg));
	if (r < 0) {
		log_err("%s", msg);
		return r;
	}
	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->base.ops = &real_ops;
	rx->xc = xc_interface_open(NULL, NULL, 0);
	if (!rx->xc) {
		r = real_errno();
		free(rx);
		return r;
	}
	*ret = &rx->base;
	return 0;
}
