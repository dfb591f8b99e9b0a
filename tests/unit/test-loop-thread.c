// SPDX-License-Identifier: MIT
/*
 * A loop on an I/O thread (loop.h): a timer added from the main thread under the loop's lock
 * fires on the loop's thread although the loop was asleep with nothing else to wake it; the
 * lock keeps the main thread out of the loop's callbacks; a loop that never sleeps still lets
 * the main thread in at its next turn; an async sent from the I/O thread runs on the main
 * loop; stopping joins the thread and leaves nothing behind.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait (at most 5 s) for *@flag, without touching the loop. */
static bool wait_flag(atomic_int *flag)
{
	double end = now_s() + 5.0;

	while (!atomic_load(flag) && now_s() < end)
		usleep(1000);
	return atomic_load(flag) != 0;
}

/* A new loop, running on an I/O thread of its own; NULL (a check failed) if not. */
static struct bk_loop *io_loop_start(void)
{
	struct bk_loop *loop = NULL;

	CHECK(bk_loop_new(&loop) == 0);
	if (loop)
		CHECK(bk_loop_start_thread(loop, "bk-test-io") == 0);
	return loop;
}

/* The test freed its objects: none is left on @loop; stopping joins its thread; free it. */
static void io_loop_end(struct bk_loop *loop)
{
	bk_loop_lock(loop);
	CHECK(bk_loop_nr_objects(loop) == 0);
	bk_loop_unlock(loop);
	bk_loop_stop_thread(loop);
	CHECK(!bk_loop_threaded(loop));
	bk_loop_free(loop);
}

struct fired {
	struct bk_loop *loop;
	atomic_int fired;
	bool on_own_thread;
	pthread_t who;
};

static void fired_cb(void *data)
{
	struct fired *f = data;

	f->who = pthread_self();
	f->on_own_thread = bk_loop_on_own_thread(f->loop);
	atomic_store(&f->fired, 1);
}

/* The loop sleeps with only its wakeup active: a timer added under the lock must still fire. */
static void test_wake(void)
{
	struct bk_loop *loop = NULL;
	struct bk_timer *t = NULL;
	struct fired f = { 0 };

	CHECK(bk_loop_new(&loop) == 0);
	f.loop = loop;
	CHECK(!bk_loop_threaded(loop));
	CHECK(bk_loop_start_thread(loop, "bk-test-io") == 0);
	CHECK(bk_loop_threaded(loop));
	CHECK(bk_loop_start_thread(loop, "bk-test-io") == -EALREADY);
	CHECK(!bk_loop_on_own_thread(loop));
	/* Let it go to sleep first. */
	usleep(50 * 1000);
	bk_loop_lock(loop);
	CHECK(bk_loop_add_timer(loop, 10, 0, fired_cb, &f, &t) == 0);
	bk_loop_unlock(loop);
	CHECK(wait_flag(&f.fired));
	CHECK(f.on_own_thread);
	CHECK(!pthread_equal(f.who, pthread_self()));

	/* Again, a second time, to show the wakeup re-arms. */
	atomic_store(&f.fired, 0);
	usleep(50 * 1000);
	bk_loop_lock(loop);
	bk_timer_rearm(t, 10, 0);
	bk_loop_unlock(loop);
	CHECK(wait_flag(&f.fired));

	bk_loop_lock(loop);
	bk_timer_free(t);
	bk_loop_unlock(loop);
	io_loop_end(loop);
}

struct busy {
	atomic_int inside; /* in a callback right now */
	atomic_int calls;
};

static void busy_timer_cb(void *data)
{
	struct busy *b = data;

	atomic_store(&b->inside, 1);
	usleep(2000);
	atomic_fetch_add(&b->calls, 1);
	atomic_store(&b->inside, 0);
}

/* With the lock held, the loop's callbacks never run: the main thread sees none inside. */
static void test_exclusion(void)
{
	struct bk_loop *loop = io_loop_start();
	struct bk_timer *t = NULL;
	struct busy b = { 0 };
	unsigned int seen_inside = 0;

	if (!loop)
		return;
	bk_loop_lock(loop);
	CHECK(bk_loop_add_timer(loop, 1, 1, busy_timer_cb, &b, &t) == 0);
	bk_loop_unlock(loop);
	for (int i = 0; i < 100; i++) {
		bk_loop_lock(loop);
		for (int j = 0; j < 5; j++) {
			if (atomic_load(&b.inside))
				seen_inside++;
			usleep(200);
		}
		bk_loop_unlock(loop);
		usleep(1000);
	}
	CHECK(seen_inside == 0);
	/* And the loop did run in between. */
	CHECK(atomic_load(&b.calls) > 10);
	bk_loop_lock(loop);
	bk_timer_free(t);
	bk_loop_unlock(loop);
	io_loop_end(loop);
}

struct spin {
	struct bk_hook *h;
	atomic_uint turns;
};

static void spin_hook(void *data)
{
	struct spin *s = data;

	atomic_fetch_add(&s->turns, 1);
	/* Always more to do: the loop never sleeps. */
	bk_hook_enable(s->h, true);
}

/* A loop that never sleeps still hands the lock over at its next turn, every time. */
static void test_busy_loop_fair(void)
{
	struct bk_loop *loop = io_loop_start();
	struct spin s = { 0 };
	unsigned int before;

	if (!loop)
		return;
	bk_loop_lock(loop);
	CHECK(bk_loop_add_hook(loop, spin_hook, &s, &s.h) == 0);
	bk_hook_enable(s.h, true);
	bk_loop_unlock(loop);
	for (int i = 0; i < 200; i++) {
		bk_loop_lock(loop);
		before = atomic_load(&s.turns);
		usleep(100);
		/* Held: the loop is stopped between callbacks. */
		CHECK(atomic_load(&s.turns) == before);
		bk_loop_unlock(loop);
	}
	/* And, let go, it runs again. */
	before = atomic_load(&s.turns);
	for (int i = 0; i < 5000 && atomic_load(&s.turns) == before; i++)
		usleep(1000);
	CHECK(atomic_load(&s.turns) > before);
	bk_loop_lock(loop);
	bk_hook_free(s.h);
	bk_loop_unlock(loop);
	io_loop_end(loop);
}

static void send_cb(void *data)
{
	bk_async_send(data);
}

/* An I/O thread tells the main loop: the async runs there, at its next turn. */
static void test_async(void)
{
	struct bk_loop *main_loop = NULL, *io = NULL;
	struct fired f = { 0 };
	struct bk_async *a = NULL;
	struct bk_timer *t = NULL;
	double end;

	CHECK(bk_loop_new(&main_loop) == 0);
	CHECK(bk_loop_new(&io) == 0);
	f.loop = main_loop;
	CHECK(bk_loop_add_async(main_loop, fired_cb, &f, &a) == 0);
	CHECK(bk_loop_nr_objects(main_loop) == 1);
	CHECK(bk_loop_add_timer(io, 20, 0, send_cb, a, &t) == 0);
	CHECK(bk_loop_start_thread(io, "bk-test-io") == 0);
	end = now_s() + 5.0;
	while (!atomic_load(&f.fired) && now_s() < end)
		bk_loop_run_once(main_loop, 100);
	CHECK(atomic_load(&f.fired));
	CHECK(pthread_equal(f.who, pthread_self()));
	bk_loop_stop_thread(io);
	bk_timer_free(t);
	bk_async_free(a);
	CHECK(bk_loop_nr_objects(main_loop) == 0);
	bk_loop_free(io);
	bk_loop_free(main_loop);
}

int main(void)
{
	test_wake();
	test_exclusion();
	test_busy_loop_fair();
	test_async();
	return bk_test_exit();
}
