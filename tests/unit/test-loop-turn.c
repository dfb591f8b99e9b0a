// SPDX-License-Identifier: MIT
/*
 * A loop's turns (loop.h): bk_loop_clock_ns reads the clock once per turn of the calling
 * thread's loop and anew outside a turn, on a plain loop and on an I/O thread; a hook that
 * enables another hook and disables it again before the poll does not cut the poll short,
 * while a hook left enabled from inside a hook still runs before the loop blocks. Work queued
 * for a turn's end (bk_loop_at_turn_end) runs once, when the loop is about to block, with a
 * clock that counts what the turn's hooks spent; only in the calling thread's own turn of that
 * loop, and not after it was cancelled.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

struct clk {
	uint64_t a, b; /* two readings 2 ms apart in one callback */
	atomic_int turns;
};

static void clk_cb(void *data)
{
	struct clk *c = data;

	c->a = bk_loop_clock_ns();
	sleep_ms(2);
	c->b = bk_loop_clock_ns();
	atomic_fetch_add(&c->turns, 1);
}

static void test_clock_plain(void)
{
	struct bk_loop *loop = NULL;
	struct bk_timer *t = NULL;
	struct clk c = { 0 };
	uint64_t x, y, first_a;

	/* Outside a turn: a new reading each call. */
	x = bk_loop_clock_ns();
	sleep_ms(2);
	y = bk_loop_clock_ns();
	CHECK(y >= x + 1000000);

	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_loop_add_timer(loop, 1, 0, clk_cb, &c, &t) == 0);
	bk_loop_run_once(loop, 1000);
	CHECK(atomic_load(&c.turns) == 1);
	/* One turn, one reading. */
	CHECK(c.a == c.b);
	CHECK(c.a >= y);
	first_a = c.a;

	bk_timer_rearm(t, 1, 0);
	bk_loop_run_once(loop, 1000);
	CHECK(atomic_load(&c.turns) == 2);
	CHECK(c.a == c.b);
	/* The next turn reads again: later than the first turn's callback ran. */
	CHECK(c.a >= first_a + 2000000);

	/* The loop returned: out of a turn again. */
	x = bk_loop_clock_ns();
	sleep_ms(2);
	CHECK(bk_loop_clock_ns() >= x + 1000000);
	bk_timer_free(t);
	bk_loop_free(loop);
}

/* The same on an I/O thread, whose turns the loop's lock brackets. */
static void test_clock_thread(void)
{
	struct bk_loop *loop = NULL;
	struct bk_timer *t = NULL;
	struct clk c = { 0 };
	uint64_t x;

	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_loop_start_thread(loop, "turn-test") == 0);
	bk_loop_lock(loop);
	CHECK(bk_loop_add_timer(loop, 1, 0, clk_cb, &c, &t) == 0);
	bk_loop_unlock(loop);
	for (int i = 0; i < 5000 && !atomic_load(&c.turns); i++)
		sleep_ms(1);
	CHECK(atomic_load(&c.turns) == 1);
	bk_loop_lock(loop);
	CHECK(c.a == c.b && c.a != 0);
	/* The main thread is in no turn: its readings are its own and fresh. */
	x = bk_loop_clock_ns();
	CHECK(x >= c.b + 2000000);
	bk_timer_free(t);
	bk_loop_unlock(loop);
	bk_loop_free(loop);
}

struct hooks {
	struct bk_hook *a, *b;
	bool leave_b_on;
	int a_runs, b_runs;
};

static void hook_b(void *data)
{
	struct hooks *h = data;

	h->b_runs++;
	bk_hook_enable(h->b, false);
}

/* A enables B from inside the hooks; like an engine kicked at once, it may disable it again. */
static void hook_a(void *data)
{
	struct hooks *h = data;

	h->a_runs++;
	bk_hook_enable(h->a, false);
	bk_hook_enable(h->b, true);
	if (!h->leave_b_on)
		bk_hook_enable(h->b, false);
}

static void fired_cb(void *data)
{
	atomic_fetch_add((atomic_int *)data, 1);
}

static void test_late_hooks(void)
{
	struct bk_loop *loop = NULL;
	struct bk_timer *t = NULL;
	struct hooks h = { 0 };
	atomic_int fired = 0;

	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_loop_add_hook(loop, hook_a, &h, &h.a) == 0);
	CHECK(bk_loop_add_hook(loop, hook_b, &h, &h.b) == 0);
	/*
	 * B enabled and disabled again inside A: the poll after A blocks until the timer, the
	 * only thing left to wake it. (Cut short, run_once would return before the timer.)
	 */
	CHECK(bk_loop_add_timer(loop, 50, 0, fired_cb, &fired, &t) == 0);
	bk_hook_enable(h.a, true);
	bk_loop_run_once(loop, -1);
	CHECK(h.a_runs == 1 && h.b_runs == 0);
	CHECK(atomic_load(&fired) == 1);

	/*
	 * B left enabled inside A: the poll after A does not block (the timer, 5 s away, has not
	 * fired when run_once returns), and B runs at the next turn.
	 */
	h.leave_b_on = true;
	bk_timer_rearm(t, 5000, 0);
	bk_hook_enable(h.a, true);
	bk_loop_run_once(loop, -1);
	CHECK(h.a_runs == 2 && h.b_runs == 0);
	CHECK(atomic_load(&fired) == 1);
	bk_timer_rearm(t, 50, 0);
	bk_loop_run_once(loop, -1);
	CHECK(h.b_runs == 1);
	CHECK(atomic_load(&fired) == 2);
	bk_timer_free(t);
	bk_hook_free(h.a);
	bk_hook_free(h.b);
	CHECK(bk_loop_nr_objects(loop) == 0);
	bk_loop_free(loop);
}

struct ends {
	struct bk_loop *loop, *other;
	struct bk_hook *hook;
	struct bk_turn_end e, dropped;
	uint64_t start, at, e_now;
	int e_runs, dropped_runs;
	bool queued_other, queued_twice;
	pthread_t e_thread, hook_thread;
};

static void end_cb(struct bk_turn_end *e, uint64_t now)
{
	struct ends *x = container_of(e, struct ends, e);

	x->e_runs++;
	x->e_now = now;
	x->e_thread = pthread_self();
}

static void dropped_cb(struct bk_turn_end *e, uint64_t now _unused_)
{
	struct ends *x = container_of(e, struct ends, dropped);

	x->dropped_runs++;
}

/* In a hook: queue both, cancel one, spend 3 ms; the turn's end is later than that. */
static void ends_hook(void *data)
{
	struct ends *x = data;

	bk_hook_enable(x->hook, false);
	x->hook_thread = pthread_self();
	x->start = bk_loop_clock_ns();
	x->e.cb = end_cb;
	x->dropped.cb = dropped_cb;
	CHECK(bk_loop_at_turn_end(x->loop, &x->e));
	x->queued_twice = bk_loop_at_turn_end(x->loop, &x->e);
	x->queued_other = bk_loop_at_turn_end(x->other, &x->dropped);
	CHECK(bk_loop_at_turn_end(x->loop, &x->dropped));
	bk_loop_turn_end_cancel(&x->dropped);
	sleep_ms(3);
	x->at = bk_loop_clock_ns();
}

static void enable_cb(void *data)
{
	bk_hook_enable(data, true);
}

static void quit_cb(void *data)
{
	bk_loop_quit(data);
}

static void test_turn_end(bool threaded)
{
	struct ends x = { 0 };

	CHECK(bk_loop_new(&x.loop) == 0);
	CHECK(bk_loop_new(&x.other) == 0);
	/* Outside any turn: nothing is queued. */
	x.e.cb = end_cb;
	CHECK(!bk_loop_at_turn_end(x.loop, &x.e));
	CHECK(bk_loop_add_hook(x.loop, ends_hook, &x, &x.hook) == 0);
	if (threaded) {
		CHECK(bk_loop_start_thread(x.loop, "turn-end") == 0);
		bk_loop_lock(x.loop);
		/* Another thread holding the loop is not in its turn either. */
		CHECK(!bk_loop_at_turn_end(x.loop, &x.e));
		bk_hook_enable(x.hook, true);
		bk_loop_unlock(x.loop);
		for (int i = 0; i < 5000; i++) {
			bk_loop_lock(x.loop);
			bool done = x.e_runs > 0;
			bk_loop_unlock(x.loop);
			if (done)
				break;
			sleep_ms(1);
		}
		bk_loop_lock(x.loop);
	} else {
		struct bk_timer *go = NULL, *quit = NULL;

		/*
		 * From a timer, so that the hook runs in a turn (a loop's first hooks run before
		 * it first polls); the loop runs on, and blocks, until the second timer.
		 */
		CHECK(bk_loop_add_timer(x.loop, 1, 0, enable_cb, x.hook, &go) == 0);
		CHECK(bk_loop_add_timer(x.loop, 50, 0, quit_cb, x.loop, &quit) == 0);
		bk_loop_run(x.loop);
		bk_timer_free(go);
		bk_timer_free(quit);
	}
	CHECK(x.e_runs == 1);
	CHECK(x.dropped_runs == 0);
	CHECK(x.queued_twice);
	CHECK(!x.queued_other);
	CHECK(!x.e.queued && !x.dropped.queued);
	CHECK(pthread_equal(x.e_thread, x.hook_thread));
	/* One reading for the turn, even after 3 ms; the turn's end counts them. */
	CHECK(x.at == x.start);
	CHECK(x.e_now >= x.start + 3000000);
	/* Values never go back on a thread: the end's reading is behind no later one. */
	if (!threaded)
		CHECK(bk_loop_clock_ns() >= x.e_now);
	if (threaded)
		bk_loop_unlock(x.loop);
	bk_loop_stop_thread(x.loop);
	bk_hook_free(x.hook);
	bk_loop_free(x.loop);
	bk_loop_free(x.other);
}

int main(void)
{
	test_clock_plain();
	test_clock_thread();
	test_late_hooks();
	test_turn_end(false);
	test_turn_end(true);
	return bk_test_failures ? 1 : 0;
}
