// SPDX-License-Identifier: MIT
/* One event port's XSA-332 masking, spurious counting and back-off (evport.h). */
#include <errno.h>

#include "evport.h"
#include "util/macros.h"

int bk_evport_init(struct bk_evport *p, struct bk_loop *loop, struct bk_evtchn *e, uint32_t port,
		   bk_timer_cb cb, void *data)
{
	int r;

	*p = (struct bk_evport){ .evtchn = e, .port = port };
	r = bk_loop_add_timer(loop, 0, 0, cb, data, &p->backoff);
	if (r < 0)
		return r;
	bk_timer_stop(p->backoff);
	return 0;
}

void bk_evport_free(struct bk_evport *p)
{
	bk_timer_free(p->backoff);
	p->backoff = NULL;
}

void bk_evport_event(struct bk_evport *p, bool lost)
{
	p->masked = true;
	if (!lost)
		p->event = true;
}

void bk_evport_rearm(struct bk_evport *p, bool idle)
{
	if (!p->masked || !idle || bk_evport_backing_off(p))
		return;
	p->masked = false;
	p->taken = 0;
	bk_evtchn_unmask(p->evtchn, p->port);
}

unsigned int bk_evport_settle(struct bk_evport *p, bool idle, bool blame)
{
	unsigned int ret = 0;

	if (!p->event) {
		bk_evport_rearm(p, idle);
		return 0;
	}
	p->event = false;
	/*
	 * Spurious if nothing was taken since the port was last unmasked, by this run or by work
	 * resumed meanwhile: on an empty ring, or one we cannot take from (the port then stays
	 * masked until the backend progresses).
	 */
	if (p->taken) {
		p->spurious_run = 0;
	} else if (blame) {
		ret |= BK_EVPORT_SPURIOUS;
		p->spurious_run++;
	}
	if (idle && p->spurious_run > BK_EVPORT_SPURIOUS_LIMIT) {
		unsigned int shift = BK_MIN(p->spurious_run - BK_EVPORT_SPURIOUS_LIMIT, 6U);

		bk_timer_rearm(p->backoff, BK_MIN(1U << shift, BK_EVPORT_BACKOFF_MAX_MS), 0);
		if (p->spurious_run == BK_EVPORT_SPURIOUS_LIMIT + 1)
			ret |= BK_EVPORT_STORM;
		return ret;
	}
	bk_evport_rearm(p, idle);
	return ret;
}

void bk_evport_stop(struct bk_evport *p)
{
	if (p->backoff)
		bk_timer_stop(p->backoff);
}
