// SPDX-License-Identifier: MIT
/*
 * The daemon runtime on the simulated platform: SIGHUP reaches the reload hook, SIGTERM stops
 * the core and leaves the loop, a second SIGTERM exits without waiting, and everything is
 * released (LeakSanitizer, fd count).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "test-lifecycle-common.h"
#include "util/log.h"

struct hooks {
	int stopping;
	int reload;
	struct bk_daemon *d;
};

static void on_stopping(void *data)
{
	((struct hooks *)data)->stopping++;
}

static void on_reload(void *data)
{
	((struct hooks *)data)->reload++;
}

static void send_signals(void *data)
{
	(void)data;
	kill(getpid(), SIGHUP);
	kill(getpid(), SIGTERM);
}

static void test_signals(void)
{
	static const struct bk_backend_ops *const kinds[] = { &tb_ops, NULL };
	struct bk_daemon_params p = { 0 };
	struct hooks h = { 0 };
	struct bk_daemon *d = NULL;
	struct bk_timer *t = NULL;
	unsigned int fds0 = bk_test_count_fds();
	sigset_t cur;

	p.platform = "sim";
	p.kinds = kinds;
	p.on_stopping = on_stopping;
	p.on_reload = on_reload;
	p.data = &h;
	CHECK(bk_daemon_new(&p, &d) == 0);
	if (!d)
		return;
	CHECK(strcmp(bk_daemon_platform(d), "sim") == 0);
	CHECK(bk_daemon_start(d) == 0);
	CHECK(bk_loop_add_timer(bk_daemon_loop(d), 10, 0, send_signals, NULL, &t) == 0);
	CHECK(bk_daemon_run(d) == 0);
	CHECK(h.reload == 1 && h.stopping == 1);
	bk_timer_free(t);
	bk_daemon_free(d);
	CHECK(bk_test_count_fds() == fds0);
	/* The signal mask is restored. */
	sigprocmask(SIG_BLOCK, NULL, &cur);
	CHECK(!sigismember(&cur, SIGTERM));
}

static void test_bad_platform(void)
{
	struct bk_daemon_params p = { .platform = "qemu" };
	struct bk_daemon *d = NULL;

	CHECK(bk_daemon_new(&p, &d) == -EINVAL);
	CHECK(d == NULL);
}

int main(void)
{
	if (!getenv("BK_TEST_DEBUG"))
		bk_log_set_level(BK_LOG_WARNING);
	test_signals();
	test_bad_platform();
	return fx_result("lifecycle-daemon");
}
