/* SPDX-License-Identifier: MIT */
/*
 * The event loop. This file's .c is the only user of libev: modules ask the core to watch an
 * fd, arm a timer, or run a hook once per loop turn (before the loop blocks, which is where
 * batched work such as one io_uring submit per turn belongs). Modules never own the loop.
 */
#ifndef BK_LOOP_H
#define BK_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "util/list.h"

struct bk_loop;
struct bk_watch;
struct bk_timer;
struct bk_hook;

enum {
	BK_EV_READ = 1 << 0,
	BK_EV_WRITE = 1 << 1,
};

typedef void (*bk_fd_cb)(void *data, int fd, unsigned int events);
typedef void (*bk_timer_cb)(void *data);
typedef void (*bk_hook_cb)(void *data);

int bk_loop_new(struct bk_loop **ret);
/* NULL-safe. Every watch, timer and hook must have been freed first. */
void bk_loop_free(struct bk_loop *loop);

/* Run until bk_loop_quit(). Returns 0 or -errno. */
int bk_loop_run(struct bk_loop *loop);
/* One loop turn; blocks for at most @timeout_ms (0: poll, -1: until something happens). */
void bk_loop_run_once(struct bk_loop *loop, int timeout_ms);
void bk_loop_quit(struct bk_loop *loop);

/* Watch @fd for @events (BK_EV_*). The callback gets the events that fired. */
int bk_loop_add_fd(struct bk_loop *loop, int fd, unsigned int events, bk_fd_cb cb, void *data,
		   struct bk_watch **ret);
/* Change the events watched; 0 pauses the watch. */
void bk_watch_set_events(struct bk_watch *w, unsigned int events);
/* NULL-safe; stops and frees. */
void bk_watch_free(struct bk_watch *w);

/* A timer, first firing after @after_ms, then every @repeat_ms (0: once). Starts armed. */
int bk_loop_add_timer(struct bk_loop *loop, uint64_t after_ms, uint64_t repeat_ms, bk_timer_cb cb,
		      void *data, struct bk_timer **ret);
/* Re-arm (or arm again) with new times. */
void bk_timer_rearm(struct bk_timer *t, uint64_t after_ms, uint64_t repeat_ms);
void bk_timer_stop(struct bk_timer *t);
bool bk_timer_active(const struct bk_timer *t);
/* NULL-safe. */
void bk_timer_free(struct bk_timer *t);

/*
 * A hook run once at the end of every loop turn, before the loop blocks, while it is enabled.
 * Enabling a hook from inside any callback (another hook included) guarantees it runs before
 * the loop next sleeps, so a module can batch work (collect requests, then submit once).
 */
int bk_loop_add_hook(struct bk_loop *loop, bk_hook_cb cb, void *data, struct bk_hook **ret);
void bk_hook_enable(struct bk_hook *h, bool on);
/* NULL-safe. */
void bk_hook_free(struct bk_hook *h);

/*
 * CLOCK_MONOTONIC in ns, once per loop turn of the calling thread: every call in a turn gets
 * the same value, the time the loop woke (libev's own reading, so no syscall of ours: in a PV
 * dom0 without a stable TSC every reading is one). Outside a turn (before the loop runs, after
 * it returns) each call reads the clock. bk_loop_lock starts a new reading. On one thread, no
 * value is behind one handed out in an earlier turn or by an earlier call outside a turn.
 */
uint64_t bk_loop_clock_ns(void);

/*
 * CLOCK_MONOTONIC read now, on the scale of bk_loop_clock_ns (never behind what it gave this
 * thread): for the odd moment a turn's reading is too old.
 */
uint64_t bk_loop_clock_fresh_ns(void);

/*
 * Work that waits for the end of the loop turn: @cb runs once, on the loop's thread, when the
 * loop is about to block (after every hook) or returns, with the clock at that moment on
 * bk_loop_clock_ns's scale (the reading libev takes there anyway: no syscall of its own).
 * Requests answered in the turn that took them are timed this way. The caller owns @e
 * (zeroed, or cancelled, before its first use) and cancels it before freeing it.
 */
struct bk_turn_end {
	struct list_head link;
	bool queued;
	void (*cb)(struct bk_turn_end *e, uint64_t now_ns);
};
/*
 * Queue @e for the end of @loop's current turn (true; already queued: true). False when the
 * calling thread is not running a turn of @loop (outside the loop, or another thread holding
 * its lock): then nothing is queued.
 */
bool bk_loop_at_turn_end(struct bk_loop *loop, struct bk_turn_end *e);
/* Unqueue @e if it is queued; its callback does not run. */
void bk_loop_turn_end_cancel(struct bk_turn_end *e);

/* Seconds since some fixed point, as the loop last saw the clock (cheap). */
double bk_loop_now(struct bk_loop *loop);

/* Number of live watches + timers + hooks; tests use it to prove nothing leaked. */
unsigned int bk_loop_nr_objects(const struct bk_loop *loop);

/*
 * I/O threads. A loop may run on a thread of its own (bk_loop_start_thread). That thread holds
 * the loop's lock while it runs callbacks and releases it only while blocked waiting for
 * events. Any other thread that touches the loop's objects, or what its callbacks touch, takes
 * the lock first (bk_loop_lock) and releases it with bk_loop_unlock, which wakes the loop so
 * that watches, timers and hooks added meanwhile are picked up. A thread waiting for the lock
 * gets it at the loop's next turn, however busy the loop is. Lock order: a thread that holds
 * an I/O loop's lock never waits for the main thread.
 */
/* Run @loop on a new thread named @name until bk_loop_stop_thread(). */
int bk_loop_start_thread(struct bk_loop *loop, const char *name);
/* Stop the thread (it finishes its current callback) and join it. NULL-safe; no-op if none. */
void bk_loop_stop_thread(struct bk_loop *loop);
/* True when @loop runs on a thread of its own. */
bool bk_loop_threaded(const struct bk_loop *loop);
/* True on @loop's own thread (from its callbacks); false elsewhere and for unthreaded loops. */
bool bk_loop_on_own_thread(const struct bk_loop *loop);
/*
 * From any thread but @loop's own: wait until it is between callbacks, then keep it there.
 * No-op for a loop without a thread. Not recursive.
 */
void bk_loop_lock(struct bk_loop *loop);
/* Release what bk_loop_lock took and wake the loop. */
void bk_loop_unlock(struct bk_loop *loop);

/*
 * A wakeup another thread can send: @cb runs on @loop's thread at its next turn (several
 * sends before it runs make one call).
 */
struct bk_async;
int bk_loop_add_async(struct bk_loop *loop, bk_hook_cb cb, void *data, struct bk_async **ret);
/* From any thread. */
void bk_async_send(struct bk_async *a);
/* NULL-safe; on @loop's thread, or with it locked. */
void bk_async_free(struct bk_async *a);

#endif
