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
#include <sys/stat.h>
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

/*
 * A kind the kernel already serves in this domain (its driver directory on the xenbus backend
 * bus) is left to it: two backends on one device's nodes would break the device.
 */
static void test_kernel_backend(void)
{
	static const struct bk_backend_ops *const kinds[] = { &tb_ops, NULL };
	char dir[] = "/tmp/bk-kbackends-XXXXXX", sub[64];
	struct bk_daemon_params p = { .platform = "sim", .kinds = kinds };
	struct bk_daemon *d = NULL;

	CHECK(mkdtemp(dir) != NULL);
	p.kernel_backends_dir = dir;
	/* Another kind's driver only: ours is served. */
	snprintf(sub, sizeof(sub), "%s/not-%s", dir, tb_ops.kind);
	CHECK(mkdir(sub, 0700) == 0);
	CHECK(bk_daemon_new(&p, &d) == 0);
	CHECK(d && bk_daemon_serves(d, tb_ops.kind));
	bk_daemon_free(d);
	d = NULL;
	/* Ours is the kernel's: not served, and the daemon still runs. */
	snprintf(sub, sizeof(sub), "%s/%s", dir, tb_ops.kind);
	CHECK(mkdir(sub, 0700) == 0);
	CHECK(bk_daemon_new(&p, &d) == 0);
	CHECK(d && !bk_daemon_serves(d, tb_ops.kind));
	if (d)
		CHECK(bk_daemon_start(d) == 0);
	bk_daemon_free(d);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/not-%s", dir, tb_ops.kind);
	rmdir(sub);
	rmdir(dir);
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
	test_kernel_backend();
	test_bad_platform();
	return fx_result("lifecycle-daemon");
}
