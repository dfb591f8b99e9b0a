/* SPDX-License-Identifier: MIT */
/*
 * One event port's XSA-332 policy (as Linux's lateeoi), shared by the backends: the port stays
 * masked from its event until its ring has been taken to the end; an event after which nothing
 * was taken since the port was last unmasked is spurious; after BK_EVPORT_SPURIOUS_LIMIT
 * spurious events in a row the port stays masked for a growing delay (2 ms up to
 * BK_EVPORT_BACKOFF_MAX_MS) before it is unmasked, so a storming guest costs the loop a few
 * wakeups, not one per notify. The backend's timer callback serves the ring again and unmasks
 * the port (bk_evport_rearm) once it caught up.
 */
#ifndef BK_XEN_EVPORT_H
#define BK_XEN_EVPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "xen.h"

#define BK_EVPORT_SPURIOUS_LIMIT 16U
#define BK_EVPORT_BACKOFF_MAX_MS 64U

struct bk_evport {
	struct bk_evtchn *evtchn;
	uint32_t port;		   /* local */
	bool masked;		   /* since its event: not caught up, or backing off */
	bool event;		   /* a guest's event not yet settled */
	unsigned int spurious_run; /* spurious events in a row */
	unsigned int taken;	   /* work taken since the port was unmasked */
	struct bk_timer *backoff;  /* calls the backend's @cb when the delay is over */
};

/* Bind @p to @port of @e, its back-off timer calling @cb(@data). -errno. */
int bk_evport_init(struct bk_evport *p, struct bk_loop *loop, struct bk_evtchn *e, uint32_t port,
		   bk_timer_cb cb, void *data);
/* NULL-safe on a zeroed @p. Does not unbind the port. */
void bk_evport_free(struct bk_evport *p);
/* The port's event arrived (the kernel masked it); @lost: ours were lost (EFBIG), not the guest's.
 */
void bk_evport_event(struct bk_evport *p, bool lost);
/* @n requests (or buffers) were taken from the ring behind the port. */
static inline void bk_evport_took(struct bk_evport *p, unsigned int n)
{
	p->taken += n;
}

/* What bk_evport_settle found. */
enum {
	BK_EVPORT_SPURIOUS = 1U << 0, /* the event took nothing: count it */
	BK_EVPORT_STORM = 1U << 1,    /* the port just started backing off: say so once */
};

/*
 * After serving the port's event: @idle, its ring was taken to the end; @blame, taking nothing
 * is the guest's doing (not our budget or rate limit). Counts the event (once), backs the port
 * off if it storms, else unmasks it if @idle. Returns BK_EVPORT_* flags.
 */
unsigned int bk_evport_settle(struct bk_evport *p, bool idle, bool blame);
/* Unmask the port if masked, @idle and not backing off (an event not yet settled settles). */
void bk_evport_rearm(struct bk_evport *p, bool idle);
/* Stop backing off (the queue goes away). */
void bk_evport_stop(struct bk_evport *p);

static inline bool bk_evport_backing_off(const struct bk_evport *p)
{
	return p->backoff && bk_timer_active(p->backoff);
}

#endif
