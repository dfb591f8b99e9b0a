// SPDX-License-Identifier: MIT
/*
 * Taking pending ports off an event-channel handle, as every backend's channel callback does:
 * a bounded number per call, so a guest that notifies as fast as we unmask cannot keep the
 * single loop thread here (the rest waits in the kernel's queue and the fd stays readable),
 * and the kernel's overflow (EFBIG: events lost, their ports left masked) reported once.
 */
#include <errno.h>

#include "xen.h"

unsigned int bk_evtchn_drain(struct bk_evtchn *e, unsigned int max,
			     void (*on_port)(void *data, uint32_t port),
			     void (*on_lost)(void *data), void *data)
{
	unsigned int n = 0;
	uint32_t port;

	while (n < max) {
		int r = bk_evtchn_pending(e, &port);

		if (r == -EFBIG) {
			on_lost(data);
			break;
		}
		if (r < 0)
			break;
		n++;
		on_port(data, port);
	}
	return n;
}
