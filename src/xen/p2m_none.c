// SPDX-License-Identifier: MIT
/* Dom0's p2m when blanketd is built without the Xen libraries: not available. */
#include <errno.h>

#include "p2m.h"

int bk_p2m_open_real(struct bk_p2m **ret)
{
	(void)ret;
	return -ENOSYS;
}
