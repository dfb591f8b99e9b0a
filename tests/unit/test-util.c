// SPDX-License-Identifier: MIT
/*
 * Unit tests for the loop binding, rate limiting, the latency histogram, number parsing and
 * printable log lines.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "loop.h"
#include "util/log.h"
#include "xen/xen.h"
#include "check.h"

struct counts {
	int fd_events;
	int timer;
	int hook;
	int efd;
};

static void on_fd(void *data, int fd, unsigned int events)
{
	struct counts *c = data;
	uint64_t v;

	if (events & BK_EV_READ && read(fd, &v, sizeof(v)) == sizeof(v))
		c->fd_events++;
}

static void on_timer(void *data)
{
	((struct counts *)data)->timer++;
}

static void on_hook(void *data)
{
	((struct counts *)data)->hook++;
}

static void test_loop(void)
{
	struct bk_loop *loop;
	struct bk_watch *w;
	struct bk_timer *t;
	struct bk_hook *h;
	struct counts c = { 0 };
	uint64_t one = 1;
	int efd;

	CHECK(bk_loop_new(&loop) == 0);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(efd >= 0);
	CHECK(bk_loop_add_fd(loop, efd, BK_EV_READ, on_fd, &c, &w) == 0);
	CHECK(bk_loop_add_fd(loop, -1, BK_EV_READ, on_fd, &c, &w) == -EINVAL);
	CHECK(bk_loop_add_timer(loop, 1, 0, on_timer, &c, &t) == 0);
	CHECK(bk_loop_add_hook(loop, on_hook, &c, &h) == 0);
	CHECK(bk_loop_nr_objects(loop) == 3);

	/* Nothing pending: a poll turn fires nothing; the hook is off. */
	bk_loop_run_once(loop, 0);
	CHECK(c.fd_events == 0);
	CHECK(c.hook == 0);

	CHECK(write(efd, &one, sizeof(one)) == sizeof(one));
	bk_loop_run_once(loop, 100);
	CHECK(c.fd_events == 1);

	/* A paused watch does not fire. */
	bk_watch_set_events(w, 0);
	CHECK(write(efd, &one, sizeof(one)) == sizeof(one));
	bk_loop_run_once(loop, 0);
	CHECK(c.fd_events == 1);
	bk_watch_set_events(w, BK_EV_READ);
	bk_loop_run_once(loop, 100);
	CHECK(c.fd_events == 2);

	/* The one-shot timer fires exactly once. */
	for (int i = 0; i < 50 && c.timer == 0; i++)
		bk_loop_run_once(loop, 20);
	CHECK(c.timer == 1);
	CHECK(!bk_timer_active(t));
	bk_loop_run_once(loop, 10);
	CHECK(c.timer == 1);

	/* An enabled hook runs once per turn. */
	bk_hook_enable(h, true);
	bk_loop_run_once(loop, 0);
	bk_loop_run_once(loop, 0);
	CHECK(c.hook >= 1);
	bk_hook_enable(h, false);
	int before = c.hook;
	bk_loop_run_once(loop, 0);
	CHECK(c.hook == before);

	bk_watch_free(w);
	bk_timer_free(t);
	bk_hook_free(h);
	bk_watch_free(NULL);
	bk_timer_free(NULL);
	bk_hook_free(NULL);
	CHECK(bk_loop_nr_objects(loop) == 0);
	close(efd);
	bk_loop_free(loop);
}

/* A hook enabled from inside another hook must run before the loop sleeps. */
struct chain {
	struct bk_loop *loop;
	struct bk_hook *second;
	int first_runs, second_runs, watchdog;
};

static void chain_first(void *data)
{
	struct chain *c = data;

	c->first_runs++;
	bk_hook_enable(c->second, true);
}

static void chain_second(void *data)
{
	struct chain *c = data;

	c->second_runs++;
	bk_loop_quit(c->loop);
}

static void chain_watchdog(void *data)
{
	struct chain *c = data;

	/* Only reached if the loop went to sleep with the second hook enabled. */
	c->watchdog++;
	bk_loop_quit(c->loop);
}

/*
 * A hook that keeps itself enabled from inside its own run (more work for the next turn, as
 * netif's per-turn hook does when a batch limit stopped it) must run again before the loop
 * sleeps, like one enabled from another hook.
 */
struct again {
	struct bk_loop *loop;
	struct bk_hook *self;
	int runs, watchdog;
};

static void again_hook(void *data)
{
	struct again *a = data;

	if (++a->runs == 3) {
		bk_hook_enable(a->self, false);
		bk_loop_quit(a->loop);
		return;
	}
	bk_hook_enable(a->self, true);
}

static void again_watchdog(void *data)
{
	struct again *a = data;

	/* Only reached if the loop went to sleep with the hook enabled. */
	a->watchdog++;
	bk_loop_quit(a->loop);
}

static void test_hook_again(void)
{
	struct again a = { 0 };
	struct bk_timer *t;

	CHECK(bk_loop_new(&a.loop) == 0);
	CHECK(bk_loop_add_hook(a.loop, again_hook, &a, &a.self) == 0);
	CHECK(bk_loop_add_timer(a.loop, 3000, 0, again_watchdog, &a, &t) == 0);
	bk_hook_enable(a.self, true);
	bk_loop_run(a.loop);
	if (a.watchdog)
		fprintf(stderr, "the self-enabled hook ran %d time(s), then the loop slept\n",
			a.runs);
	CHECK(a.runs == 3);
	CHECK(a.watchdog == 0);
	bk_hook_free(a.self);
	bk_timer_free(t);
	bk_loop_free(a.loop);
}

static void test_hook_chain(void)
{
	struct chain c = { 0 };
	struct bk_hook *first;
	struct bk_timer *t;

	CHECK(bk_loop_new(&c.loop) == 0);
	CHECK(bk_loop_add_hook(c.loop, chain_first, &c, &first) == 0);
	CHECK(bk_loop_add_hook(c.loop, chain_second, &c, &c.second) == 0);
	CHECK(bk_loop_add_timer(c.loop, 20000, 0, chain_watchdog, &c, &t) == 0);
	bk_hook_enable(first, true);
	bk_loop_run(c.loop);
	CHECK(c.second_runs == 1);
	CHECK(c.watchdog == 0);
	bk_hook_free(first);
	bk_hook_free(c.second);
	bk_timer_free(t);
	bk_loop_free(c.loop);
}

static void test_ratelimit(void)
{
	struct bk_ratelimit rl = BK_RATELIMIT_INIT(60000, 3);
	int ok = 0;

	for (int i = 0; i < 100; i++)
		ok += bk_ratelimit_ok(&rl);
	CHECK(ok == 3);
	CHECK(rl.missed == 97);
}

static void test_histogram(void)
{
	uint64_t hist[BK_LAT_BUCKETS] = { 0 };

	for (uint64_t v = 0; v < (1ULL << 39); v = v < 16 ? v + 1 : v + v / 7) {
		unsigned int b = bk_lat_bucket(v);

		CHECK(bk_lat_lower(b) <= v);
		CHECK(b + 1 == BK_LAT_BUCKETS || v < bk_lat_lower(b + 1));
	}
	CHECK(bk_lat_bucket(UINT64_MAX) == BK_LAT_BUCKETS - 1);
	CHECK(bk_lat_percentile(hist, 500) == 0);

	/* 990 samples at ~10 us, 10 at ~1 ms: p50 near 10 us, p99.9 near 1 ms. */
	hist[bk_lat_bucket(10000)] += 990;
	hist[bk_lat_bucket(1000000)] += 10;
	uint64_t p50 = bk_lat_percentile(hist, 500);
	uint64_t p999 = bk_lat_percentile(hist, 999);
	CHECK(p50 > 10000 && p50 <= 12500);
	CHECK(p999 > 1000000 && p999 <= 1250000);
	CHECK(bk_lat_percentile(hist, 990) <= 12500);
}

static void test_parse(void)
{
	uint64_t v = 42;

	CHECK(bk_parse_u64("0", &v) == 0 && v == 0);
	CHECK(bk_parse_u64("18446744073709551615", &v) == 0 && v == UINT64_MAX);
	CHECK(bk_parse_u64("18446744073709551616", &v) == -ERANGE);
	v = 7;
	CHECK(bk_parse_u64("", &v) == -EINVAL && v == 7);
	CHECK(bk_parse_u64("-1", &v) == -EINVAL);
	CHECK(bk_parse_u64(" 1", &v) == -EINVAL);
	CHECK(bk_parse_u64("1 ", &v) == -EINVAL);
	CHECK(bk_parse_u64("0x10", &v) == -EINVAL);
	CHECK(bk_parse_u64(NULL, &v) == -EINVAL);
	CHECK(v == 7);
}

static void test_log_level(void)
{
	CHECK(bk_log_level_from_string("debug") == BK_LOG_DEBUG);
	CHECK(bk_log_level_from_string("ERR") == BK_LOG_ERR);
	CHECK(bk_log_level_from_string("6") == BK_LOG_INFO);
	CHECK(bk_log_level_from_string("loud") == -EINVAL);
	CHECK(bk_log_errno(BK_LOG_DEBUG, EIO, "x") == -EIO);
	CHECK(bk_log_errno(BK_LOG_DEBUG, -EIO, "x") == -EIO);
}

/* bk_printable, and a log line that stays one line whatever its arguments hold. */
static void test_log_printable(void)
{
	char buf[8], log[256];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	CHECK(!strcmp(bk_printable("ab\ncd\x7f\xc3", buf, sizeof(buf)), "ab?cd??"));
	CHECK(!strcmp(bk_printable("abcdefghij", buf, 4), "abc"));
	CHECK(!strcmp(bk_printable("", buf, sizeof(buf)), ""));
	snprintf(buf, sizeof(buf), "a\tb");
	CHECK(bk_printable(buf, buf, sizeof(buf)) == buf && !strcmp(buf, "a?b"));

	CHECK(tmp && saved >= 0);
	if (!tmp || saved < 0)
		return;
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	bk_log_set_prefix(1);
	bk_log(BK_LOG_ERR, "vbd 1/2: protocol '%s'", "x\n<0>forged\x1b[2J");
	bk_log(BK_LOG_INFO, "trailing newline\n");
	fflush(stderr);
	bk_log_set_prefix(-1);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(log, 1, sizeof(log) - 1, tmp);
	log[n] = '\0';
	fclose(tmp);
	CHECK(!strcmp(log, "<3>vbd 1/2: protocol 'x?<0>forged?[2J'\n<6>trailing newline\n"));
}

/* The nodes the real platform needs: each missing one named, with what provides it. */
static void test_missing_node(void)
{
	char root[] = "/tmp/bk-nodes-XXXXXX", path[128], msg[256] = "";
	FILE *f;

	CHECK(mkdtemp(root) != NULL);
	CHECK(bk_xen_missing_node(root, msg, sizeof(msg)) == -ENOENT);
	CHECK(strstr(msg, "/dev/xen/evtchn") && strstr(msg, "xen-evtchn"));
	snprintf(path, sizeof(path), "%s/dev", root);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/dev/xen", root);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/dev/xen/evtchn", root);
	CHECK((f = fopen(path, "w")) != NULL && fclose(f) == 0);
	CHECK(bk_xen_missing_node(root, msg, sizeof(msg)) == -ENOENT);
	CHECK(strstr(msg, "/dev/xen/gntdev") && strstr(msg, "xen-gntdev"));
	snprintf(path, sizeof(path), "%s/dev/xen/gntdev", root);
	CHECK((f = fopen(path, "w")) != NULL && fclose(f) == 0);
	CHECK(bk_xen_missing_node(root, msg, sizeof(msg)) == -ENOENT);
	CHECK(strstr(msg, "xenstore") && strstr(msg, "/dev/xen/xenbus"));
	snprintf(path, sizeof(path), "%s/dev/xen/xenbus", root);
	CHECK((f = fopen(path, "w")) != NULL && fclose(f) == 0);
	CHECK(bk_xen_missing_node(root, msg, sizeof(msg)) == 0);
	printf("last message: %s\n", msg);
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/dev/xen/%s", root,
			 (const char *[]){ "xenbus", "gntdev", "evtchn" }[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/dev/xen", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/dev", root);
	rmdir(path);
	rmdir(root);
}

int main(void)
{
	test_loop();
	test_hook_chain();
	test_hook_again();
	test_ratelimit();
	test_missing_node();
	test_histogram();
	test_parse();
	test_log_level();
	test_log_printable();
	if (bk_test_failures)
		fprintf(stderr, "%d checks failed\n", bk_test_failures);
	return bk_test_failures ? 1 : 0;
}
