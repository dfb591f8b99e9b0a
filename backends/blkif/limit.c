// SPDX-License-Identifier: MIT
/*
 * Per-device rate limits: two token buckets, requests and bytes, refilled continuously at
 * their rates and holding at most burst_ms worth of them.
 *
 * The datapath asks before taking each request off the ring (blkif_limiter_may_take: a whole
 * request token and a non-negative byte balance), charges one request when it takes it, and
 * charges its bytes when it dispatches it (an indirect request's size is known only once its
 * descriptors are fetched), so the byte bucket may go into debt by one request: the next take
 * then waits until the debt is paid. A queue that may not take stops (its port stays masked,
 * as for a blocked queue) and the device's one timer wakes its queues when the buckets allow
 * the next request: no timer per request, and other devices never wait for it.
 *
 * Tokens are kept in units of 1e-9 (rate x nanoseconds), so refills are exact integers and a
 * test that advances a fake clock (blkif_set_clock) can count what each refill admits.
 */
#include <errno.h>
#include <string.h>

#include "blkif.h"
#include "common.h"
#include "loop.h"

#define NSEC 1000000000LL

static uint64_t (*clock_fn)(void) = bk_loop_clock_ns;

void blkif_set_clock(uint64_t (*now)(void))
{
	clock_fn = now ? now : bk_loop_clock_ns;
}

uint64_t blkif_now(void)
{
	return clock_fn();
}

uint64_t blkif_now_fresh(void)
{
	return clock_fn == bk_loop_clock_ns ? bk_loop_clock_fresh_ns() : clock_fn();
}

bool blkif_clock_is_loop(void)
{
	return clock_fn == bk_loop_clock_ns;
}

static void bucket_set(struct blkif_bucket *b, uint64_t rate, uint32_t burst_ms, __int128 floor)
{
	b->rate = rate;
	b->cap = (__int128)rate * burst_ms * 1000000;
	/* Room for one request at least, or a short burst at a low rate would never admit. */
	if (b->cap < floor)
		b->cap = floor;
	b->tokens = b->cap;
}

static void bucket_refill(struct blkif_bucket *b, uint64_t dt_ns)
{
	if (!b->rate)
		return;
	b->tokens += (__int128)b->rate * dt_ns;
	if (b->tokens > b->cap)
		b->tokens = b->cap;
}

/* Nanoseconds until the bucket holds @need (scaled) tokens. */
static uint64_t bucket_wait(const struct blkif_bucket *b, __int128 need)
{
	__int128 missing = need - b->tokens;

	if (!b->rate || missing <= 0)
		return 0;
	return (uint64_t)((missing + b->rate - 1) / b->rate);
}

void blkif_limiter_set(struct blkif_limiter *l, const struct bk_ctl_limit *set, uint64_t now)
{
	l->set = *set;
	l->set.flags = 0;
	l->on = set->iops || set->bps;
	bucket_set(&l->ops, set->iops, set->burst_ms, NSEC);
	bucket_set(&l->bytes, set->bps, set->burst_ms, 1);
	l->last_ns = now;
}

static void refill(struct blkif_limiter *l, uint64_t now)
{
	uint64_t dt = now > l->last_ns ? now - l->last_ns : 0;

	bucket_refill(&l->ops, dt);
	bucket_refill(&l->bytes, dt);
	l->last_ns = now;
}

bool blkif_limiter_may_take(struct blkif_limiter *l, uint64_t now)
{
	if (!l->on)
		return true;
	refill(l, now);
	return (!l->ops.rate || l->ops.tokens >= NSEC) && (!l->bytes.rate || l->bytes.tokens >= 0);
}

void blkif_limiter_charge(struct blkif_limiter *l, uint64_t reqs, uint64_t bytes)
{
	if (!l->on)
		return;
	if (l->ops.rate)
		l->ops.tokens -= (__int128)reqs * NSEC;
	if (l->bytes.rate)
		l->bytes.tokens -= (__int128)bytes * NSEC;
}

uint64_t blkif_limiter_wait_ns(const struct blkif_limiter *l)
{
	uint64_t a = bucket_wait(&l->ops, NSEC), b = bucket_wait(&l->bytes, 0);

	return a > b ? a : b;
}

/*
 * The device's timer: the buckets allow a request again; the hook serves the queues. The time
 * held back so far shows in the stats now, but the throttled interval stays open: only a pass
 * over the queue that is not held back closes it (blkif_unthrottle), so no time between this
 * callback and that pass goes uncounted.
 */
static void throttle_cb(void *data)
{
	struct blkif_dev *bd = data;
	uint64_t now = blkif_now();

	for (unsigned int i = 0; bd->queues && i < bd->nr_queues; i++) {
		struct blkif_queue *q = &bd->queues[i];

		if (q->throttled_since) {
			q->stats->throttled_ns += now - q->throttled_since;
			q->throttled_since = now;
		}
	}
	bk_hook_enable(bd->hook, true);
}

void blkif_unthrottle(struct blkif_queue *q)
{
	uint64_t now;

	if (!q->throttled_since)
		return;
	now = blkif_now();
	if (now > q->throttled_since)
		q->stats->throttled_ns += now - q->throttled_since;
	q->throttled_since = 0;
}

void blkif_throttle(struct blkif_queue *q)
{
	struct blkif_dev *bd = q->bd;
	uint64_t ms;

	if (!q->throttled_since) {
		q->throttled_since = blkif_now();
		q->stats->throttled++;
	}
	if (bd->throttle && bk_timer_active(bd->throttle))
		return;
	ms = (blkif_limiter_wait_ns(&bd->limiter) + 999999) / 1000000;
	if (!ms)
		ms = 1;
	if (!bd->throttle) {
		if (bk_loop_add_timer(bk_device_loop(bd->dev), ms, 0, throttle_cb, bd,
				      &bd->throttle) < 0) {
			/* Without a timer, retry from the next loop turn rather than stall. */
			q->throttled_since = 0;
			bk_hook_enable(bd->hook, true);
		}
		return;
	}
	bk_timer_rearm(bd->throttle, ms, 0);
}

int blkif_set_limit(struct bk_device *dev, const struct bk_ctl_limit *want,
		    struct bk_ctl_limit *ret_now)
{
	struct blkif_dev *bd = blkif_of(dev);
	struct bk_ctl_limit l;
	char buf[96];

	if (!bd)
		return -ENODEV;
	l = bd->limiter.set;
	if (want->flags & BK_CTL_LIMIT_IOPS)
		l.iops = want->iops;
	if (want->flags & BK_CTL_LIMIT_BPS)
		l.bps = want->bps;
	if (want->flags & BK_CTL_LIMIT_BURST)
		l.burst_ms = want->burst_ms;
	if (l.iops > BK_CTL_LIMIT_IOPS_MAX || l.bps > BK_CTL_LIMIT_BPS_MAX ||
	    l.burst_ms < BK_CTL_LIMIT_BURST_MIN || l.burst_ms > BK_CTL_LIMIT_BURST_MAX)
		return -ERANGE;
	if (want->flags) {
		/* Also what the store's next open (a reconnect) starts from. */
		bd->rate = l;
		blkif_limiter_set(&bd->limiter, &l, blkif_now());
		bk_ctl_format_limit(&l, buf, sizeof(buf));
		dev_info(dev, "rate limit now %s", buf);
		/* Throttled queues are re-evaluated at once against the new buckets. */
		if (bd->throttle && bk_timer_active(bd->throttle)) {
			bk_timer_stop(bd->throttle);
			throttle_cb(bd);
		}
	}
	*ret_now = bd->limiter.set;
	return 0;
}
