// SPDX-License-Identifier: MIT
/*
 * What the real platform needs from the domain it runs in, checked when it opens: a driver
 * domain set up without one of them gets an error naming it, instead of libxen's bare
 * "No such file or directory" at the first guest's connect.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "util/macros.h"
#include "xen.h"

static const struct {
	const char *path;
	const char *what;
	const char *provider;
} needed[] = {
	{ "/dev/xen/evtchn", "the event channel device", "the xen-evtchn module" },
	{ "/dev/xen/gntdev", "the grant device (map and copy guest pages)",
	  "the xen-gntdev module" },
};

/* How libxenstore reaches xenstored: its socket (in dom0) or the xenbus device (in a domU). */
static const char *const xenstore_paths[] = {
	"/run/xenstored/socket",
	"/var/run/xenstored/socket",
	"/dev/xen/xenbus",
	"/proc/xen/xenbus",
};

int bk_xen_missing_node(const char *root, char *ret_msg, size_t len)
{
	char path[PATH_MAX];
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(needed); i++) {
		snprintf(path, sizeof(path), "%s%s", root, needed[i].path);
		if (access(path, R_OK | W_OK) == 0)
			continue;
		r = -errno;
		if (r == -EACCES)
			snprintf(ret_msg, len,
				 "%s: %s: permission denied (blanketd must run as root)",
				 needed[i].path, needed[i].what);
		else
			snprintf(ret_msg, len, "%s: %s is missing (load %s)", needed[i].path,
				 needed[i].what, needed[i].provider);
		return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(xenstore_paths); i++) {
		snprintf(path, sizeof(path), "%s%s", root, xenstore_paths[i]);
		if (access(path, F_OK) == 0)
			return 0;
	}
	snprintf(ret_msg, len,
		 "no way to xenstore: neither %s nor %s exists (in dom0 start xenstored; in a "
		 "driver domain mount xenfs on /proc/xen or check the kernel's xenbus frontend)",
		 xenstore_paths[0], xenstore_paths[2]);
	return -ENOENT;
}
