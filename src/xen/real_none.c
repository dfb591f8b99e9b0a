// SPDX-License-Identifier: MIT
/* The real platform when blanketd is built without the xen* libraries: not available. */
#include <errno.h>

#include "xen.h"

int bk_xen_real_new(struct bk_xen **ret)
{
	(void)ret;
	return -ENOSYS;
}
