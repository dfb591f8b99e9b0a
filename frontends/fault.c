// SPDX-License-Identifier: MIT
/*
 * The fault engine, for tests: wraps another engine and fails or delays chosen requests.
 *
 * Options (bk_engine_params.options), comma-separated tokens:
 *
 *   inner=ENGINE              engine to wrap (default: the default engine); not "fault"
 *   err=ERR                   error for fail rules that name none (default EIO)
 *   fail=OPS[:COND]...        fail matching requests
 *   delay=Nms[:OPS][:COND]... hand matching requests to the inner engine N ms late
 *
 *   OPS  := OP[+OP]...  with OP one of read, write, flush, discard, any (default any)
 *   COND := every=N     only the Nth, 2Nth, ... matching request
 *         | after=N     not the first N matching requests
 *         | count=N     at most N times
 *         | offset=A-B  only requests overlapping bytes A..B (inclusive)
 *         | err=ERR     this rule's error
 *   ERR  := EIO | ENOSPC | EROFS | EBADF | EINVAL | ENOMEM | EOPNOTSUPP | ETIMEDOUT | ENODEV
 *           | a positive errno number
 *
 * Every rule counts the requests it matches (ops and offset) whatever the other rules do; a
 * request is failed by the first fail rule that fires, else delayed by the longest delay rule
 * that fires. Examples: "inner=io_uring,fail=write:every=3,err=EIO",
 * "fail=read:offset=4096-8191", "delay=20ms:flush". Failures complete from the loop (an
 * eventfd), never inside queue(). At most FAULT_MAX_RULES rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "engine-internal.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"

#define FAULT_MAX_RULES 8
#define OP_BIT(op) (1u << (op))
#define OPS_ANY 0xfu

struct fault_rule {
	bool delay;
	uint8_t ops;
	bool has_range;
	uint64_t lo, hi;
	uint64_t every, after, count;
	int err; /* 0: the engine default */
	uint64_t delay_ms;
	uint64_t seen, hits;
};

struct fault_engine {
	struct bk_engine base;
	struct bk_loop *loop;
	char name[64];
	struct bk_engine *inner;
	struct fault_rule rules[FAULT_MAX_RULES];
	unsigned int nrules;
	int default_err;
	unsigned int depth;
	unsigned int held; /* failed or delayed: not yet handed to the inner engine */
	int efd;
	struct bk_watch *watch;
	struct bk_timer *timer;
	struct bk_io_fifo failed;  /* result in engine_priv[0] */
	struct bk_io_fifo delayed; /* due time (ns) in engine_priv[0], sorted */
	unsigned int dispatching;
	bool close_pending;
};

static inline struct fault_engine *to_fault(struct bk_engine *e)
{
	return container_of(e, struct fault_engine, base);
}

static const struct {
	const char *name;
	int err;
} err_names[] = {
	{ "EIO", EIO },
	{ "ENOSPC", ENOSPC },
	{ "EROFS", EROFS },
	{ "EBADF", EBADF },
	{ "EINVAL", EINVAL },
	{ "ENOMEM", ENOMEM },
	{ "EOPNOTSUPP", EOPNOTSUPP },
	{ "ETIMEDOUT", ETIMEDOUT },
	{ "ENODEV", ENODEV },
};

static const char *const op_names[] = { "read", "write", "flush", "discard" };

/* A whole decimal number with an optional suffix that must follow it exactly. */
static bool parse_u64(const char *s, const char *suffix, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || strcmp(end, suffix) != 0)
		return false;
	*ret = v;
	return true;
}

static bool parse_err(const char *s, int *ret)
{
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(err_names); i++)
		if (strcmp(s, err_names[i].name) == 0) {
			*ret = err_names[i].err;
			return true;
		}
	if (parse_u64(s, "", &v) && v > 0 && v < 4096) {
		*ret = (int)v;
		return true;
	}
	return false;
}

static bool parse_ops(char *s, uint8_t *ret)
{
	uint8_t ops = 0;
	char *save = NULL;

	for (char *op = strtok_r(s, "+", &save); op; op = strtok_r(NULL, "+", &save)) {
		bool found = strcmp(op, "any") == 0;

		if (found)
			ops |= OPS_ANY;
		for (size_t i = 0; !found && i < ARRAY_SIZE(op_names); i++)
			if (strcmp(op, op_names[i]) == 0) {
				ops |= (uint8_t)OP_BIT(i);
				found = true;
			}
		if (!found)
			return false;
	}
	*ret = ops;
	return ops != 0;
}

static bool parse_cond(struct fault_rule *r, char *c)
{
	char *dash;

	if (strncmp(c, "every=", 6) == 0)
		return parse_u64(c + 6, "", &r->every) && r->every > 0;
	if (strncmp(c, "after=", 6) == 0)
		return parse_u64(c + 6, "", &r->after);
	if (strncmp(c, "count=", 6) == 0)
		return parse_u64(c + 6, "", &r->count) && r->count > 0;
	if (strncmp(c, "err=", 4) == 0)
		return parse_err(c + 4, &r->err);
	if (strncmp(c, "offset=", 7) == 0) {
		dash = strchr(c + 7, '-');
		if (!dash)
			return false;
		*dash = 0;
		r->has_range = true;
		return parse_u64(c + 7, "", &r->lo) && parse_u64(dash + 1, "", &r->hi) &&
		       r->lo <= r->hi;
	}
	return false;
}

/* "fail=..." or "delay=..." after the '=': colon-separated parts. */
static bool parse_rule(struct fault_rule *r, char *spec)
{
	char *save = NULL, *part = strtok_r(spec, ":", &save);

	*r = (struct fault_rule){ .ops = OPS_ANY, .every = 1 };
	if (!part)
		return false;
	for (bool first = true; part; part = strtok_r(NULL, ":", &save), first = false) {
		if (first && !strchr(part, '=')) {
			if (!parse_ops(part, &r->ops))
				return false;
			continue;
		}
		if (!parse_cond(r, part))
			return false;
	}
	return true;
}

static int parse_options(struct fault_engine *f, const char *options, char *inner, size_t len)
{
	_cleanup_free_ char *copy = strdup(options ? options : "");
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		/* Kept for the message: parsing writes into the token. */
		char shown[128];
		bool ok = false;

		snprintf(shown, sizeof(shown), "%s", tok);
		if (strncmp(tok, "inner=", 6) == 0) {
			ok = tok[6] && strcmp(tok + 6, "fault") != 0 && strlen(tok + 6) < len;
			if (ok)
				snprintf(inner, len, "%s", tok + 6);
		} else if (strncmp(tok, "err=", 4) == 0) {
			ok = parse_err(tok + 4, &f->default_err);
		} else if (strncmp(tok, "fail=", 5) == 0 || strncmp(tok, "delay=", 6) == 0) {
			bool delay = tok[0] == 'd';
			char *spec = tok + (delay ? 6 : 5);
			struct fault_rule *r = &f->rules[f->nrules];
			uint64_t ms = 0;

			if (f->nrules < FAULT_MAX_RULES && delay) {
				char *colon = strchr(spec, ':');

				if (colon)
					*colon = 0;
				ok = parse_u64(spec, "ms", &ms) && ms > 0 && ms <= 600000;
				spec = colon ? colon + 1 : NULL;
				if (ok && spec)
					ok = parse_rule(r, spec);
				else if (ok)
					*r = (struct fault_rule){ .ops = OPS_ANY, .every = 1 };
			} else if (f->nrules < FAULT_MAX_RULES) {
				ok = parse_rule(r, spec);
			}
			if (ok) {
				r->delay = delay;
				r->delay_ms = ms;
				f->nrules++;
			}
		}
		if (!ok) {
			log_err("%s: fault engine: bad option '%s'", f->name, shown);
			return -EINVAL;
		}
	}
	return 0;
}

/* Does @r fire for @io? Counts the request if it matches. */
static bool rule_fires(struct fault_rule *r, const struct bk_io *io)
{
	uint64_t end = io->len ? io->offset + io->len - 1 : io->offset;

	if (!(r->ops & OP_BIT(io->op)))
		return false;
	if (r->has_range && (io->op == BK_IO_FLUSH || end < r->lo || io->offset > r->hi))
		return false;
	r->seen++;
	if (r->seen <= r->after || (r->seen - r->after) % r->every != 0)
		return false;
	if (r->count && r->hits >= r->count)
		return false;
	r->hits++;
	return true;
}

static void wake(struct fault_engine *f)
{
	uint64_t one = 1;

	if (write(f->efd, &one, sizeof(one)) < 0)
		log_err("%s: writing eventfd: %m", f->name);
}

static void fail_later(struct fault_engine *f, struct bk_io *io, int err)
{
	io->engine_priv[0] = (uint64_t)(int64_t)-err;
	bk_io_fifo_push(&f->failed, io);
	wake(f);
}

static void arm_timer(struct fault_engine *f)
{
	uint64_t now = bk_now_ns(), due;

	if (!f->delayed.head) {
		bk_timer_stop(f->timer);
		return;
	}
	due = f->delayed.head->engine_priv[0];
	bk_timer_rearm(f->timer, due > now ? BK_DIV_ROUND_UP(due - now, 1000000) : 0, 0);
}

/* Insert by due time; equal times keep their order. */
static void delay_insert(struct fault_engine *f, struct bk_io *io, uint64_t due)
{
	struct bk_io *prev = NULL, *cur = f->delayed.head;

	io->engine_priv[0] = due;
	while (cur && cur->engine_priv[0] <= due) {
		prev = cur;
		cur = (struct bk_io *)(uintptr_t)cur->engine_priv[1];
	}
	io->engine_priv[1] = (uintptr_t)cur;
	if (prev)
		prev->engine_priv[1] = (uintptr_t)io;
	else
		f->delayed.head = io;
	if (!cur)
		f->delayed.tail = io;
}

static void fault_free(struct fault_engine *f)
{
	if (f->held)
		log_err("%s: fault engine closed with %u I/O held", f->name, f->held);
	bk_engine_close(f->inner);
	bk_timer_free(f->timer);
	bk_watch_free(f->watch);
	if (f->efd >= 0)
		close(f->efd);
	free(f);
}

static void fault_event(void *data, int fd, unsigned int events)
{
	struct fault_engine *f = data;
	struct bk_io_fifo batch = bk_io_fifo_take(&f->failed);
	struct bk_io *io;
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("%s: reading eventfd: %m", f->name);
	f->dispatching++;
	while (!f->close_pending && (io = bk_io_fifo_pop(&batch))) {
		f->held--;
		io->done(io, (int)(int64_t)io->engine_priv[0]);
	}
	if (--f->dispatching == 0 && f->close_pending)
		fault_free(f);
}

static void fault_timer(void *data)
{
	struct fault_engine *f = data;
	uint64_t now = bk_now_ns();
	struct bk_io *io;
	int r;

	while (f->delayed.head && f->delayed.head->engine_priv[0] <= now) {
		io = bk_io_fifo_pop(&f->delayed);
		f->held--;
		r = bk_engine_queue(f->inner, io);
		if (r < 0) {
			f->held++;
			fail_later(f, io, -r);
		}
	}
	arm_timer(f);
}

static int fault_queue(struct bk_engine *e, struct bk_io *io)
{
	struct fault_engine *f = to_fault(e);
	uint64_t delay_ms = 0;
	int err = 0, r;

	if (f->held + bk_engine_inflight(f->inner) >= f->depth)
		return -EAGAIN;
	r = bk_io_check(io);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < f->nrules; i++) {
		struct fault_rule *rule = &f->rules[i];

		if (!rule_fires(rule, io))
			continue;
		if (!rule->delay && !err)
			err = rule->err ? rule->err : f->default_err;
		else if (rule->delay)
			delay_ms = BK_MAX(delay_ms, rule->delay_ms);
	}
	if (err) {
		f->held++;
		fail_later(f, io, err);
		return 0;
	}
	if (delay_ms) {
		f->held++;
		delay_insert(f, io, bk_now_ns() + delay_ms * 1000000);
		arm_timer(f);
		return 0;
	}
	return bk_engine_queue(f->inner, io);
}

static int fault_register_buffers(struct bk_engine *e, const struct iovec *iov, unsigned int n)
{
	struct fault_engine *f = to_fault(e);

	if (!f->inner->ops->register_buffers)
		return -EOPNOTSUPP;
	return f->inner->ops->register_buffers(f->inner, iov, n);
}

static void fault_kick(struct bk_engine *e)
{
	bk_engine_kick(to_fault(e)->inner);
}

static unsigned int fault_inflight(const struct bk_engine *e)
{
	const struct fault_engine *f = container_of(e, struct fault_engine, base);

	return f->held + bk_engine_inflight(f->inner);
}

static void fault_close(struct bk_engine *e)
{
	struct fault_engine *f;

	if (!e)
		return;
	f = to_fault(e);
	if (f->dispatching)
		f->close_pending = true;
	else
		fault_free(f);
}

static int fault_open(struct bk_loop *loop, struct bk_store *store,
		      const struct bk_engine_params *p, struct bk_engine **ret)
{
	const char *name = p && p->name ? p->name : "fault";
	struct bk_engine_params ip;
	struct fault_engine *f;
	char inner[32];
	int r;

	if (!p || !p->depth) {
		log_err("%s: fault engine needs a depth", name);
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->base.ops = &bk_engine_fault_ops;
	f->base.store = store;
	f->loop = loop;
	f->depth = p->depth;
	f->default_err = EIO;
	f->efd = -1;
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(inner, sizeof(inner), "%s", bk_engine_names());
	inner[strcspn(inner, ",")] = 0; /* the default engine comes first */

	r = parse_options(f, p->options, inner, sizeof(inner));
	if (r < 0)
		goto fail;
	ip = (struct bk_engine_params){ .name = name, .depth = p->depth };
	r = bk_engine_open(inner, loop, store, &ip, &f->inner);
	if (r < 0)
		goto fail;
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		r = log_err_errno(neg_errno(), "%s: eventfd: %m", name);
		goto fail;
	}
	r = bk_loop_add_fd(loop, f->efd, BK_EV_READ, fault_event, f, &f->watch);
	if (r < 0)
		goto fail;
	r = bk_loop_add_timer(loop, 1000, 0, fault_timer, f, &f->timer);
	if (r < 0)
		goto fail;
	bk_timer_stop(f->timer); /* armed by the first delayed request */
	log_debug("%s: fault engine over %s with %u rules", name, inner, f->nrules);
	*ret = &f->base;
	return 0;
fail:
	fault_free(f);
	return r;
}

const struct bk_engine_ops bk_engine_fault_ops = {
	.name = "fault",
	.open = fault_open,
	.close = fault_close,
	.register_buffers = fault_register_buffers,
	.queue = fault_queue,
	.kick = fault_kick,
	.inflight = fault_inflight,
};
