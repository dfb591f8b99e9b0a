// SPDX-License-Identifier: MIT
/* The libev binding: the only file that includes ev.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <ev.h>

#include "loop.h"
#include "util/list.h"
#include "util/log.h"
#include "util/macros.h"

struct bk_loop {
	struct ev_loop *ev;
	unsigned int nr_objects;
	struct ev_timer oneshot; /* bounds bk_loop_run_once */
	/*
	 * A hook enabled from inside a hook would only run after the next poll: libev has
	 * already collected this turn's prepare watchers, the running one included (a hook that
	 * stays enabled for more work is still active). An active idle watcher makes that poll
	 * non-blocking, so the promise of bk_hook_enable() holds.
	 */
	struct ev_idle nosleep;
	unsigned int in_hooks;
	unsigned int nr_late; /* hooks enabled from inside a hook, not yet run: nosleep's reason */
	/* I/O thread (bk_loop_start_thread); see loop.h for the locking. */
	bool threaded;
	bool quit; /* under lock */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* the loop's thread waits here while others want the lock */
	atomic_uint waiters; /* threads in bk_loop_lock */
	struct ev_async wake;
};

struct bk_async {
	struct ev_async a;
	struct bk_loop *loop;
	bk_hook_cb cb;
	void *data;
};

struct bk_watch {
	struct ev_io io;
	struct bk_loop *loop;
	bk_fd_cb cb;
	void *data;
};

struct bk_timer {
	struct ev_timer t;
	struct bk_loop *loop;
	bk_timer_cb cb;
	void *data;
};

struct bk_hook {
	struct ev_prepare prep;
	bool late; /* enabled from inside a hook: counted in loop->nr_late until it runs */
	struct bk_loop *loop;
	bk_hook_cb cb;
	void *data;
};

/*
 * The calling thread's clock for this loop turn (bk_loop_clock_ns). A loop marks its thread as
 * in a turn when it wakes from its backend (acquire) and as out of one when it goes back to it
 * (release) or returns.
 *
 * A turn's reading is libev's: libev reads the clock right after its backend returns (and
 * again right before it blocks), so a reading of our own would be one more syscall per turn
 * wherever the vDSO cannot serve CLOCK_MONOTONIC (a PV dom0 without a stable TSC). ev_now() is
 * the wall clock in seconds, so it is turned into CLOCK_MONOTONIC ns against a reading of our
 * own taken at most every CAL_NS: within that span the two advance alike. A wall clock stepped
 * back, or forward by more than CAL_NS, is seen at once (ev_now behind the calibration, or too
 * far ahead) and calibrated again; a smaller forward step shows for at most CAL_NS. Whatever
 * the source, a thread's readings never go back (hand_out), but for the one reading a turn
 * keeps while fresh ones (bk_loop_clock_fresh_ns) move on.
 */
#define CAL_NS 250000000ULL

static _Thread_local bool turn_on;   /* between waking and blocking again */
static _Thread_local bool turn_read; /* turn_ns holds this turn's reading */
static _Thread_local uint64_t turn_ns;
static _Thread_local struct bk_loop *turn_loop; /* whose turn it is */
static _Thread_local bool cal_ok;
static _Thread_local double cal_ev;    /* ev_now() at the calibration */
static _Thread_local uint64_t cal_ns;  /* CLOCK_MONOTONIC then */
static _Thread_local uint64_t last_ns; /* the latest value handed out */
static _Thread_local struct list_head turn_ends = { NULL, NULL };

static uint64_t hand_out(uint64_t ns)
{
	if (ns < last_ns)
		ns = last_ns;
	last_ns = ns;
	return ns;
}

/* @loop's latest clock reading (libev's), as CLOCK_MONOTONIC ns. */
static uint64_t ev_clock_ns(struct bk_loop *loop)
{
	double ev = ev_now(loop->ev), d = ev - cal_ev;

	if (!cal_ok || d < 0 || d * 1e9 >= (double)CAL_NS) {
		cal_ns = bk_now_ns();
		cal_ev = ev;
		cal_ok = true;
		return hand_out(cal_ns);
	}
	return hand_out(cal_ns + (uint64_t)(d * 1e9));
}

uint64_t bk_loop_clock_fresh_ns(void)
{
	return hand_out(bk_now_ns());
}

uint64_t bk_loop_clock_ns(void)
{
	if (!turn_on || !turn_loop)
		return bk_loop_clock_fresh_ns();
	if (!turn_read) {
		turn_ns = ev_clock_ns(turn_loop);
		turn_read = true;
	}
	return turn_ns;
}

bool bk_loop_at_turn_end(struct bk_loop *loop, struct bk_turn_end *e)
{
	if (e->queued)
		return true;
	if (!turn_on || turn_loop != loop)
		return false;
	if (!turn_ends.next)
		list_init(&turn_ends);
	list_add_tail(&e->link, &turn_ends);
	e->queued = true;
	return true;
}

void bk_loop_turn_end_cancel(struct bk_turn_end *e)
{
	if (!e->queued)
		return;
	list_del(&e->link);
	e->queued = false;
}

static void turn_begin(struct ev_loop *ev)
{
	turn_on = true;
	turn_read = false;
	turn_loop = ev_userdata(ev);
}

/*
 * The turn is over: run what waited for its end, with the clock libev read just before it
 * blocks (@ev), or a reading of our own when the loop returned instead.
 */
static void turn_end(struct ev_loop *ev)
{
	/*
	 * Before blocking, libev has just read the clock: the best moment to calibrate against
	 * it when that is due (ev_clock_ns), so readings of later turns are off by microseconds.
	 */
	uint64_t now = ev ? ev_clock_ns(ev_userdata(ev)) : 0;

	if (turn_ends.next && !list_empty(&turn_ends)) {
		if (!ev)
			now = bk_loop_clock_fresh_ns();

		while (!list_empty(&turn_ends)) {
			struct bk_turn_end *e =
				list_first_entry(&turn_ends, struct bk_turn_end, link);

			bk_loop_turn_end_cancel(e);
			e->cb(e, now);
		}
	}
	turn_on = false;
	turn_read = false;
	turn_loop = NULL;
}

/*
 * ev_run starts with the hooks, before it first polls: that stretch is a turn too, read
 * afresh (libev has not updated its clock since the loop last ran).
 */
static void run_begin(struct bk_loop *loop)
{
	ev_now_update(loop->ev);
	turn_begin(loop->ev);
}

/* A loop without a thread of its own only marks its turns. */
static void plain_release_cb(struct ev_loop *ev)
{
	turn_end(ev);
}

static void plain_acquire_cb(struct ev_loop *ev)
{
	turn_begin(ev);
}

static void nosleep_cb(struct ev_loop *ev, ev_idle *w, int revents _unused_)
{
	ev_idle_stop(ev, w);
}

int bk_loop_new(struct bk_loop **ret)
{
	struct bk_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->ev = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!loop->ev) {
		free(loop);
		return -ENOMEM;
	}
	ev_idle_init(&loop->nosleep, nosleep_cb);
	ev_set_userdata(loop->ev, loop);
	ev_set_loop_release_cb(loop->ev, plain_release_cb, plain_acquire_cb);
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->cond, NULL);
	*ret = loop;
	return 0;
}

void bk_loop_free(struct bk_loop *loop)
{
	if (!loop)
		return;
	bk_loop_stop_thread(loop);
	ev_timer_stop(loop->ev, &loop->oneshot);
	ev_idle_stop(loop->ev, &loop->nosleep);
	ev_loop_destroy(loop->ev);
	pthread_cond_destroy(&loop->cond);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
}

int bk_loop_run(struct bk_loop *loop)
{
	run_begin(loop);
	ev_run(loop->ev, 0);
	turn_end(NULL);
	return 0;
}

static void oneshot_cb(struct ev_loop *ev _unused_, ev_timer *w _unused_, int revents _unused_)
{
}

void bk_loop_run_once(struct bk_loop *loop, int timeout_ms)
{
	run_begin(loop);
	if (timeout_ms == 0) {
		ev_run(loop->ev, EVRUN_NOWAIT);
		turn_end(NULL);
		return;
	}
	if (timeout_ms > 0) {
		ev_timer_init(&loop->oneshot, oneshot_cb, timeout_ms / 1000.0, 0.);
		ev_timer_start(loop->ev, &loop->oneshot);
	}
	ev_run(loop->ev, EVRUN_ONCE);
	ev_timer_stop(loop->ev, &loop->oneshot);
	turn_end(NULL);
}

void bk_loop_quit(struct bk_loop *loop)
{
	ev_break(loop->ev, EVBREAK_ALL);
}

double bk_loop_now(struct bk_loop *loop)
{
	return ev_now(loop->ev);
}

unsigned int bk_loop_nr_objects(const struct bk_loop *loop)
{
	return loop->nr_objects;
}

static int to_ev(unsigned int events)
{
	return ((events & BK_EV_READ) ? EV_READ : 0) | ((events & BK_EV_WRITE) ? EV_WRITE : 0);
}

static void io_cb(struct ev_loop *ev _unused_, ev_io *io, int revents)
{
	struct bk_watch *w = container_of(io, struct bk_watch, io);
	unsigned int events =
		((revents & EV_READ) ? BK_EV_READ : 0) | ((revents & EV_WRITE) ? BK_EV_WRITE : 0);

	w->cb(w->data, io->fd, events);
}

int bk_loop_add_fd(struct bk_loop *loop, int fd, unsigned int events, bk_fd_cb cb, void *data,
		   struct bk_watch **ret)
{
	struct bk_watch *w;

	if (fd < 0 || !cb)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->cb = cb;
	w->data = data;
	ev_io_init(&w->io, io_cb, fd, to_ev(events));
	if (events)
		ev_io_start(loop->ev, &w->io);
	loop->nr_objects++;
	*ret = w;
	return 0;
}

void bk_watch_set_events(struct bk_watch *w, unsigned int events)
{
	ev_io_stop(w->loop->ev, &w->io);
	ev_io_set(&w->io, w->io.fd, to_ev(events));
	if (events)
		ev_io_start(w->loop->ev, &w->io);
}

void bk_watch_free(struct bk_watch *w)
{
	if (!w)
		return;
	ev_io_stop(w->loop->ev, &w->io);
	w->loop->nr_objects--;
	free(w);
}

static void timer_cb(struct ev_loop *ev _unused_, ev_timer *et, int revents _unused_)
{
	struct bk_timer *t = container_of(et, struct bk_timer, t);

	t->cb(t->data);
}

int bk_loop_add_timer(struct bk_loop *loop, uint64_t after_ms, uint64_t repeat_ms, bk_timer_cb cb,
		      void *data, struct bk_timer **ret)
{
	struct bk_timer *t;

	if (!cb)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->loop = loop;
	t->cb = cb;
	t->data = data;
	ev_timer_init(&t->t, timer_cb, after_ms / 1000.0, repeat_ms / 1000.0);
	ev_timer_start(loop->ev, &t->t);
	loop->nr_objects++;
	*ret = t;
	return 0;
}

void bk_timer_rearm(struct bk_timer *t, uint64_t after_ms, uint64_t repeat_ms)
{
	ev_timer_stop(t->loop->ev, &t->t);
	ev_timer_set(&t->t, after_ms / 1000.0, repeat_ms / 1000.0);
	ev_timer_start(t->loop->ev, &t->t);
}

void bk_timer_stop(struct bk_timer *t)
{
	ev_timer_stop(t->loop->ev, &t->t);
}

bool bk_timer_active(const struct bk_timer *t)
{
	return ev_is_active(&t->t);
}

void bk_timer_free(struct bk_timer *t)
{
	if (!t)
		return;
	ev_timer_stop(t->loop->ev, &t->t);
	t->loop->nr_objects--;
	free(t);
}

/* @h ran or was disabled: the next poll need not be cut short for it any more. */
static void hook_unlate(struct bk_hook *h)
{
	if (!h->late)
		return;
	h->late = false;
	if (--h->loop->nr_late == 0)
		ev_idle_stop(h->loop->ev, &h->loop->nosleep);
}

static void prepare_cb(struct ev_loop *ev _unused_, ev_prepare *p, int revents _unused_)
{
	struct bk_hook *h = container_of(p, struct bk_hook, prep);
	struct bk_loop *loop = h->loop; /* the callback may free its own hook */

	hook_unlate(h);
	loop->in_hooks++;
	h->cb(h->data);
	loop->in_hooks--;
}

int bk_loop_add_hook(struct bk_loop *loop, bk_hook_cb cb, void *data, struct bk_hook **ret)
{
	struct bk_hook *h;

	if (!cb)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->cb = cb;
	h->data = data;
	ev_prepare_init(&h->prep, prepare_cb);
	loop->nr_objects++;
	*ret = h;
	return 0;
}

void bk_hook_enable(struct bk_hook *h, bool on)
{
	if (on) {
		if (h->loop->in_hooks && !h->late) {
			h->late = true;
			h->loop->nr_late++;
			ev_idle_start(h->loop->ev, &h->loop->nosleep);
		}
		ev_prepare_start(h->loop->ev, &h->prep);
	} else {
		/* Disabled again before the next poll (say, kicked directly): no reason to hurry.
		 */
		hook_unlate(h);
		ev_prepare_stop(h->loop->ev, &h->prep);
	}
}

void bk_hook_free(struct bk_hook *h)
{
	if (!h)
		return;
	hook_unlate(h);
	ev_prepare_stop(h->loop->ev, &h->prep);
	h->loop->nr_objects--;
	free(h);
}

/* I/O threads: libev's pattern for a loop other threads use (release/acquire + ev_async). */

static void release_cb(struct ev_loop *ev)
{
	struct bk_loop *loop = ev_userdata(ev);

	turn_end(ev);
	pthread_mutex_unlock(&loop->lock);
}

static void acquire_cb(struct ev_loop *ev)
{
	struct bk_loop *loop = ev_userdata(ev);

	turn_begin(ev);
	pthread_mutex_lock(&loop->lock);
	/*
	 * A mutex is not fair: a loop that never sleeps would take it back at once, every turn.
	 * Let whoever waits for it go first.
	 */
	while (atomic_load(&loop->waiters) > 0)
		pthread_cond_wait(&loop->cond, &loop->lock);
}

static void wake_cb(struct ev_loop *ev, ev_async *w _unused_, int revents _unused_)
{
	struct bk_loop *loop = ev_userdata(ev);

	if (loop->quit)
		ev_break(ev, EVBREAK_ALL);
}

static void *loop_thread(void *data)
{
	struct bk_loop *loop = data;

	pthread_mutex_lock(&loop->lock);
	run_begin(loop);
	ev_run(loop->ev, 0);
	turn_end(NULL);
	pthread_mutex_unlock(&loop->lock);
	return NULL;
}

int bk_loop_start_thread(struct bk_loop *loop, const char *name)
{
	int r;

	if (loop->threaded)
		return -EALREADY;
	ev_set_loop_release_cb(loop->ev, release_cb, acquire_cb);
	ev_async_init(&loop->wake, wake_cb);
	ev_async_start(loop->ev, &loop->wake);
	loop->quit = false;
	r = pthread_create(&loop->thread, NULL, loop_thread, loop);
	if (r) {
		ev_async_stop(loop->ev, &loop->wake);
		ev_set_loop_release_cb(loop->ev, plain_release_cb, plain_acquire_cb);
		return -r;
	}
	if (name) {
		char buf[16];

		/* The kernel keeps 15 bytes of a thread's name. */
		snprintf(buf, sizeof(buf), "%s", name);
		pthread_setname_np(loop->thread, buf);
	}
	loop->threaded = true;
	return 0;
}

void bk_loop_stop_thread(struct bk_loop *loop)
{
	if (!loop || !loop->threaded)
		return;
	bk_loop_lock(loop);
	loop->quit = true;
	bk_loop_unlock(loop);
	pthread_join(loop->thread, NULL);
	loop->threaded = false;
	ev_async_stop(loop->ev, &loop->wake);
	ev_set_loop_release_cb(loop->ev, plain_release_cb, plain_acquire_cb);
}

bool bk_loop_threaded(const struct bk_loop *loop)
{
	return loop->threaded;
}

bool bk_loop_on_own_thread(const struct bk_loop *loop)
{
	return loop->threaded && pthread_equal(loop->thread, pthread_self());
}

void bk_loop_lock(struct bk_loop *loop)
{
	if (!loop->threaded)
		return;
	atomic_fetch_add(&loop->waiters, 1);
	/* A loop asleep in its backend gives the lock back at once; a busy one at its turn. */
	pthread_mutex_lock(&loop->lock);
	atomic_fetch_sub(&loop->waiters, 1);
	/* Timers armed from here count from now, not from when the loop last woke. */
	ev_now_update(loop->ev);
	/*
	 * ...and so does this thread's clock for the turn (bk_loop_clock_ns): libev's reading
	 * just taken, against this thread's calibration (every loop's ev_now is the wall clock).
	 */
	if (turn_on) {
		turn_ns = ev_clock_ns(loop);
		turn_read = true;
	}
}

void bk_loop_unlock(struct bk_loop *loop)
{
	if (!loop->threaded)
		return;
	pthread_cond_broadcast(&loop->cond);
	pthread_mutex_unlock(&loop->lock);
	/* What was added meanwhile counts from the loop's next turn: wake it for that. */
	ev_async_send(loop->ev, &loop->wake);
}

static void async_cb(struct ev_loop *ev _unused_, ev_async *w, int revents _unused_)
{
	struct bk_async *a = container_of(w, struct bk_async, a);

	a->cb(a->data);
}

int bk_loop_add_async(struct bk_loop *loop, bk_hook_cb cb, void *data, struct bk_async **ret)
{
	struct bk_async *a;

	if (!cb)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->cb = cb;
	a->data = data;
	ev_async_init(&a->a, async_cb);
	ev_async_start(loop->ev, &a->a);
	loop->nr_objects++;
	*ret = a;
	return 0;
}

void bk_async_send(struct bk_async *a)
{
	ev_async_send(a->loop->ev, &a->a);
}

void bk_async_free(struct bk_async *a)
{
	if (!a)
		return;
	ev_async_stop(a->loop->ev, &a->a);
	a->loop->nr_objects--;
	free(a);
}
