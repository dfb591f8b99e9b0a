// SPDX-License-Identifier: MIT
/*
 * The vif's TX credit limiter (xl.cfg `rate=`), with netback's semantics: the toolstack writes
 * the backend key `rate` = "BYTES,USEC", a credit of BYTES every USEC microseconds. The credit
 * starts full; a guest frame larger than what is left waits until the window has passed, when
 * one window's credit is added, capped at max(128 KiB, BYTES) so that a frame larger than the
 * credit still passes once enough has gathered; a timer at the end of the window resumes the
 * queues it held back. Only the guest's TX is limited (as netback).
 *
 * Unlike netback, whose credit is per queue (a 4-queue vif gets 4 times its rate), the credit
 * here is the vif's, shared by its queues: the rate is what the operator wrote.
 * It is not blkif's token bucket (limit.c: continuous refill, a burst in ms of the rate,
 * requests and bytes): windows of fixed credit are what netback and xl's `rate=` mean.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blanket/ctl.h"
#include "common.h"
#include "loop.h"

#define CREDIT_MAX_BURST (128U << 10)

static uint64_t window_ns(const struct netif_credit *c)
{
	return c->usec * 1000;
}

static void add_credit(struct netif_credit *c)
{
	uint64_t max_burst = BK_MAX(c->bytes, (uint64_t)CREDIT_MAX_BURST);
	uint64_t max_credit = c->remaining + c->bytes;

	if (max_credit < c->remaining)
		max_credit = UINT64_MAX;
	c->remaining = BK_MIN(max_credit, max_burst);
	c->refills++;
}

/* Queues held back count the time they waited; they run again. */
static void release_queues(struct netif_dev *nd, uint64_t now)
{
	for (unsigned int i = 0; i < nd->nr_queues; i++) {
		struct netif_queue *q = &nd->queues[i];

		if (!q->credit_wait)
			continue;
		q->credit_wait = false;
		q->stats->throttled_ns += now - q->credit_since;
		q->kicked_tx = true;
	}
}

static void credit_timer_cb(void *data)
{
	struct netif_dev *nd = data;
	struct netif_credit *c = &nd->credit;

	add_credit(c);
	release_queues(nd, bk_now_ns());
	if (nd->running)
		bk_hook_enable(nd->hook, true);
}

int netif_credit_init(struct netif_dev *nd)
{
	int r = bk_loop_add_timer(bk_device_loop(nd->dev), 0, 0, credit_timer_cb, nd,
				  &nd->credit.timer);

	if (r < 0)
		return r;
	bk_timer_stop(nd->credit.timer);
	return 0;
}

void netif_credit_free(struct netif_dev *nd)
{
	bk_timer_free(nd->credit.timer);
	nd->credit.timer = NULL;
}

void netif_credit_set(struct netif_dev *nd, uint64_t bytes, uint64_t usec)
{
	struct netif_credit *c = &nd->credit;

	c->bytes = usec ? bytes : 0;
	c->usec = usec;
	c->remaining = c->bytes;
	c->window_start = bk_now_ns();
	if (c->timer)
		bk_timer_stop(c->timer);
	/* A new rate applies at once: queues held back by the old one look again. */
	release_queues(nd, c->window_start);
	if (nd->running)
		bk_hook_enable(nd->hook, true);
}

bool netif_credit_exceeded(struct netif_queue *q, uint32_t size)
{
	struct netif_dev *nd = q->nd;
	struct netif_credit *c = &nd->credit;
	uint64_t now, next;

	if (likely(!c->bytes))
		return false;
	if (q->credit_wait)
		return true; /* the timer is set */
	if (size <= c->remaining) {
		c->remaining -= size;
		return false;
	}
	now = bk_now_ns();
	next = c->window_start + window_ns(c);
	if (now >= next) {
		c->window_start = now;
		add_credit(c);
		if (size <= c->remaining) {
			c->remaining -= size;
			return false;
		}
		next = now + window_ns(c);
	}
	/* Wait for the window's end; the timer adds its credit and kicks the queue. */
	c->window_start = next;
	q->credit_wait = true;
	q->credit_since = now;
	q->stats->throttled++;
	if (!bk_timer_active(c->timer))
		bk_timer_rearm(c->timer, BK_MAX((next - now + 999999) / 1000000, (uint64_t)1), 0);
	return true;
}

int netif_credit_parse(const char *s, uint64_t *ret_bytes, uint64_t *ret_usec)
{
	unsigned long long b, u;
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	b = strtoull(s, &end, 10);
	if (errno || *end != ',' || end[1] == '-' || !end[1])
		return -EINVAL;
	u = strtoull(end + 1, &end, 10);
	if (errno || *end || u == 0 || u > 60000000ULL || b > (1ULL << 40))
		return -EINVAL;
	*ret_bytes = b;
	*ret_usec = u;
	return 0;
}

/* The toolstack's `rate` key (absent: unlimited). Read at probe and when it changes. */
void netif_credit_read_key(struct netif_dev *nd)
{
	struct bk_device *dev = nd->dev;
	_cleanup_free_ char *v = NULL;
	uint64_t bytes = 0, usec = 0;
	char shown[40];

	if (bk_device_read_be(dev, "rate", &v) == 0 && v[0] &&
	    netif_credit_parse(v, &bytes, &usec) < 0) {
		dev_warn(dev, "rate '%s' is not BYTES,USEC (1 to 60000000 us): TX unlimited",
			 bk_printable(v, shown, sizeof(shown)));
		bytes = usec = 0;
	}
	if (bytes == nd->credit.bytes && usec == nd->credit.usec)
		return;
	netif_credit_set(nd, bytes, usec);
	if (bytes)
		dev_info(dev, "TX rate limit: %" PRIu64 " bytes every %" PRIu64 " us", bytes, usec);
	else if (v)
		dev_info(dev, "TX rate limit off");
}

/* ops->set_limit: bps is the rate in bytes per second, burst_ms the credit window. */
int netif_set_limit(struct bk_device *dev, const struct bk_ctl_limit *want,
		    struct bk_ctl_limit *ret_now)
{
	struct netif_dev *nd = netif_of(dev);
	struct netif_credit *c;
	uint64_t bps, usec, bytes;

	if (!nd)
		return -ENODEV;
	c = &nd->credit;
	if ((want->flags & BK_CTL_LIMIT_IOPS) && want->iops)
		return -ERANGE; /* a vif has no request rate */
	bps = c->bytes ? c->bytes * 1000000 / c->usec : 0;
	usec = c->usec ? c->usec : 50000; /* xl's default window */
	if (want->flags & BK_CTL_LIMIT_BPS)
		bps = want->bps;
	if (want->flags & BK_CTL_LIMIT_BURST)
		usec = (uint64_t)want->burst_ms * 1000;
	bytes = bps * usec / 1000000;
	if (bps && !bytes)
		return -ERANGE; /* less than a byte per window */
	if (want->flags & (BK_CTL_LIMIT_BPS | BK_CTL_LIMIT_BURST))
		netif_credit_set(nd, bytes, usec);
	memset(ret_now, 0, sizeof(*ret_now));
	ret_now->bps = c->bytes ? c->bytes * 1000000 / c->usec : 0;
	ret_now->burst_ms = (uint32_t)((c->usec ? c->usec : 50000) / 1000);
	return 0;
}

uint64_t netif_credit_refills(struct bk_device *dev)
{
	struct netif_dev *nd = netif_of(dev);

	return nd ? nd->credit.refills : 0;
}
