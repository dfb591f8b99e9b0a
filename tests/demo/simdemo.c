// SPDX-License-Identifier: MIT
/*
 * blanketd-simdemo: blanketd's real runtime (daemon.c on the simulated platform, the blkif
 * backend, the control socket that blanketctl talks to) with simulated guests in the same
 * process. The demo plays the toolstack: each guest gets a disk backed by a sparse file, its
 * blkfront connects and does verified random I/O, driven by a hook of the daemon's own loop
 * (no threads). Then it prints each guest's verdict and the daemon's statistics (the real
 * blanketctl), optionally keeps serving until SIGTERM (--serve), removes the devices as the
 * toolstack does, and checks that nothing leaked. Exit 0 only if every guest verified its
 * data and nothing leaked; 1 otherwise; 2 for a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blkif/blkif.h"
#include "daemon.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "report.h"
#include "service.h"
#include "simdemo.h"
#include "toolstack.h"
#include "util/log.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

#ifndef SD_BLANKETCTL
#define SD_BLANKETCTL "blanketctl"
#endif

#define SD_DEVID 51712U /* xvda */
#define SD_DEFAULT_SECONDS 10U
#define SD_MAX_GUESTS 64U

static const struct bk_backend_ops *const kinds[] = { &blkif_backend_ops, NULL };

struct demo {
	struct sd_opts o;
	struct bk_daemon *d;
	struct bk_service *svc;
	struct bk_loop *loop;
	struct bk_sim *sim;
	struct bk_toolstack *ts;
	struct bk_hook *hook;
	struct bk_timer *progress;
	struct sd_guest *guests;
	unsigned int nr_guests;
	char dir[PATH_MAX];
	bool own_dir;
	bool own_image;
	char socket[108];
	double start, deadline;
	bool stop_requested;
	bool core_stopped;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: blanketd-simdemo [OPTIONS]\n"
		"blanketd's runtime on the simulated platform, with simulated guests doing\n"
		"verified random I/O in the same process. Without options: 2 guests, about\n"
		"10 s of I/O.\n\n"
		"  -g, --guests N           guests, one disk each (default 2, at most %u)\n"
		"  -n, --ops N              requests per guest (instead of a time)\n"
		"  -t, --seconds S          seconds of I/O (default %u)\n"
		"      --size MIB           disk size in MiB (default 64)\n"
		"  -d, --dir DIR            where the sparse disk files go (default: a new\n"
		"                           directory under /var/tmp, removed at the end)\n"
		"      --image PATH         one image shared by every guest, each in its own\n"
		"                           slice (created sparse if missing, then removed)\n"
		"  -q, --queues N           queues the guests ask for (default 4)\n"
		"      --ring-order N       ring page order the guests ask for (default 4)\n"
		"      --depth N            requests in flight per queue (default 8, at most %u)\n"
		"      --no-indirect        no indirect descriptors, even if offered\n"
		"  -e, --engine NAME        blanket-engine for the devices (io_uring, aio, null;\n"
		"                           null keeps no data, so reads are not verified)\n"
		"      --hostile            the last guest writes a bogus req_prod: its device\n"
		"                           fails, the others keep serving\n"
		"      --serve              after the I/O, keep serving until SIGTERM/SIGINT\n"
		"  -s, --control-socket P   control socket (default DIR/control)\n"
		"  -r, --results FILE       write per-device results (JSON) once the I/O is done\n"
		"      --blanketctl PATH    blanketctl for the daemon's view (default: built one)\n"
		"      --seed N             random seed (default: from the clock; printed)\n"
		"  -l, --log-level LEVEL    daemon log level (default notice)\n"
		"      --quiet              no progress lines\n"
		"      --corrupt            testing: overwrite a sector guest 1 wrote, behind its\n"
		"                           back, to show the verification catches it (exit 1)\n"
		"  -h, --help               this text\n",
		SD_MAX_GUESTS, SD_DEFAULT_SECONDS, SD_MAX_DEPTH);
}

enum {
	OPT_SIZE = 0x100,
	OPT_IMAGE,
	OPT_RING_ORDER,
	OPT_DEPTH,
	OPT_NO_INDIRECT,
	OPT_HOSTILE,
	OPT_SERVE,
	OPT_BLANKETCTL,
	OPT_SEED,
	OPT_QUIET,
	OPT_CORRUPT,
};

static int parse_num(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;

	if (bk_parse_u64(s, &v) < 0 || v < min || v > max) {
		fprintf(stderr,
			"blanketd-simdemo: invalid %s '%s' (expected %" PRIu64 "..%" PRIu64 ")\n",
			opt, s, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* 0: run; 1: exit 0 (help); -EINVAL: usage error (reported). */
static int parse_options(int argc, char **argv, struct sd_opts *o, int *log_level)
{
	static const struct option longopts[] = {
		{ "guests", required_argument, NULL, 'g' },
		{ "ops", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "dir", required_argument, NULL, 'd' },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "queues", required_argument, NULL, 'q' },
		{ "ring-order", required_argument, NULL, OPT_RING_ORDER },
		{ "depth", required_argument, NULL, OPT_DEPTH },
		{ "no-indirect", no_argument, NULL, OPT_NO_INDIRECT },
		{ "engine", required_argument, NULL, 'e' },
		{ "hostile", no_argument, NULL, OPT_HOSTILE },
		{ "serve", no_argument, NULL, OPT_SERVE },
		{ "control-socket", required_argument, NULL, 's' },
		{ "results", required_argument, NULL, 'r' },
		{ "blanketctl", required_argument, NULL, OPT_BLANKETCTL },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "log-level", required_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "corrupt", no_argument, NULL, OPT_CORRUPT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "g:n:t:d:q:e:s:r:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (parse_num("--guests", optarg, 1, SD_MAX_GUESTS, &v) < 0)
				return -EINVAL;
			o->guests = (unsigned int)v;
			break;
		case 'n':
			if (parse_num("--ops", optarg, 1, UINT32_MAX, &o->ops) < 0)
				return -EINVAL;
			break;
		case 't':
			if (parse_num("--seconds", optarg, 1, 86400, &v) < 0)
				return -EINVAL;
			o->seconds = (unsigned int)v;
			break;
		case OPT_SIZE:
			if (parse_num("--size", optarg, 1, 1U << 20, &v) < 0)
				return -EINVAL;
			o->size = v << 20;
			break;
		case 'd':
			o->dir = optarg;
			break;
		case OPT_IMAGE:
			o->image = optarg;
			break;
		case 'q':
			if (parse_num("--queues", optarg, 1, SD_MAX_QUEUES, &v) < 0)
				return -EINVAL;
			o->queues = (unsigned int)v;
			break;
		case OPT_RING_ORDER:
			if (parse_num("--ring-order", optarg, 0, BLKIF_MAX_RING_ORDER, &v) < 0)
				return -EINVAL;
			o->ring_order = (unsigned int)v;
			break;
		case OPT_DEPTH:
			if (parse_num("--depth", optarg, 1, SD_MAX_DEPTH, &v) < 0)
				return -EINVAL;
			o->depth = (unsigned int)v;
			break;
		case OPT_NO_INDIRECT:
			o->indirect = false;
			break;
		case 'e':
			o->engine = optarg;
			break;
		case OPT_HOSTILE:
			o->hostile = true;
			break;
		case OPT_SERVE:
			o->serve = true;
			break;
		case 's':
			o->control_socket = optarg;
			break;
		case 'r':
			o->results = optarg;
			break;
		case OPT_BLANKETCTL:
			o->blanketctl = optarg;
			break;
		case OPT_SEED:
			if (parse_num("--seed", optarg, 0, UINT64_MAX, &o->seed) < 0)
				return -EINVAL;
			o->seeded = true;
			break;
		case 'l':
			*log_level = bk_log_level_from_string(optarg);
			if (*log_level < 0) {
				fprintf(stderr, "blanketd-simdemo: invalid --log-level '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case OPT_CORRUPT:
			o->corrupt = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, "Try 'blanketd-simdemo --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "blanketd-simdemo: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->engine && !bk_engine_find(o->engine)) {
		fprintf(stderr, "blanketd-simdemo: engine '%s' is not one of %s\n", o->engine,
			bk_engine_names());
		return -EINVAL;
	}
	if (o->dir) {
		struct stat st;

		if (stat(o->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "blanketd-simdemo: --dir %s is not a directory\n", o->dir);
			return -EINVAL;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Loop callbacks. */

static void on_stopping(void *data)
{
	struct demo *dm = data;

	dm->stop_requested = true;
	printf("simdemo: stop signal: the daemon shuts its devices down\n");
}

static bool all_done(const struct demo *dm)
{
	for (unsigned int i = 0; i < dm->nr_guests; i++)
		if (dm->guests[i].bf && !dm->guests[i].io_done)
			return false;
	return true;
}

/* Once per loop turn: every guest reaps, verifies and issues. */
static void step_all(void *data)
{
	struct demo *dm = data;
	double now = bk_loop_now(dm->loop);

	for (unsigned int i = 0; i < dm->nr_guests; i++)
		sd_guest_step(&dm->guests[i], now, dm->deadline);
}

static void on_progress(void *data)
{
	struct demo *dm = data;

	sd_report_progress(dm->guests, dm->nr_guests, bk_loop_now(dm->loop) - dm->start);
}

static void core_stopped(void *data)
{
	((struct demo *)data)->core_stopped = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Phases. */

static int make_workdir(struct demo *dm)
{
	struct sd_opts *o = &dm->o;

	if (o->dir) {
		snprintf(dm->dir, sizeof(dm->dir), "%s", o->dir);
	} else {
		snprintf(dm->dir, sizeof(dm->dir), "/var/tmp/blanketd-simdemo.XXXXXX");
		if (!mkdtemp(dm->dir)) {
			fprintf(stderr, "simdemo: mkdtemp %s: %m\n", dm->dir);
			return -errno;
		}
		dm->own_dir = true;
		o->dir = dm->dir;
	}
	if (snprintf(dm->socket, sizeof(dm->socket), "%s",
		     o->control_socket ? o->control_socket : "") >= (int)sizeof(dm->socket) ||
	    (!o->control_socket && snprintf(dm->socket, sizeof(dm->socket), "%s/control",
					    dm->dir) >= (int)sizeof(dm->socket))) {
		fprintf(stderr, "simdemo: control socket path too long\n");
		return -ENAMETOOLONG;
	}
	if (o->image) {
		struct stat st;
		int fd;

		if (stat(o->image, &st) == 0)
			return 0;
		fd = open(o->image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)o->size) < 0) {
			int r = -errno;

			fprintf(stderr, "simdemo: creating %s: %m\n", o->image);
			if (fd >= 0) {
				close(fd);
				unlink(o->image);
			}
			return r;
		}
		close(fd);
		dm->own_image = true;
		o->image_fresh = true;
	}
	return 0;
}

static int start_daemon(struct demo *dm, int log_level)
{
	struct bk_daemon_params dp = {
		.platform = "sim",
		.kinds = kinds,
		.on_stopping = on_stopping,
		.data = dm,
	};
	struct bk_service_params sp = { .platform = "sim", .control_socket = dm->socket };
	int r;

	bk_log_set_level(log_level);
	r = bk_daemon_new(&dp, &dm->d);
	if (r < 0)
		return r;
	dm->loop = bk_daemon_loop(dm->d);
	dm->sim = bk_daemon_sim(dm->d);
	sp.loop = dm->loop;
	sp.core = bk_daemon_core(dm->d);
	r = bk_service_start(&sp, &dm->svc);
	if (r < 0) {
		fprintf(stderr, "simdemo: control socket %s: %s\n", dm->socket, strerror(-r));
		return r;
	}
	r = bk_daemon_start(dm->d);
	if (r < 0)
		return r;
	bk_service_ready(dm->svc);
	return bk_ts_new(dm->sim, 0, dm->loop, &dm->ts);
}

static int setup_guests(struct demo *dm)
{
	int ret = 0;

	dm->guests = calloc(dm->o.guests, sizeof(*dm->guests));
	if (!dm->guests)
		return -ENOMEM;
	dm->nr_guests = dm->o.guests;
	for (unsigned int i = 0; i < dm->nr_guests; i++) {
		struct sd_guest *g = &dm->guests[i];
		int r;

		g->o = &dm->o;
		g->index = i;
		g->domid = i + 1;
		g->devid = SD_DEVID;
		g->hostile = dm->o.hostile && i == dm->nr_guests - 1;
		r = sd_guest_setup(g, dm->sim, dm->loop, bk_daemon_core(dm->d), dm->ts);
		if (r < 0) {
			g->failed = true;
			if (!g->verdict_why[0])
				snprintf(g->verdict_why, sizeof(g->verdict_why), "setup: %s",
					 strerror(-r));
			fprintf(stderr, "simdemo: guest %u: %s\n", g->domid, g->verdict_why);
			bk_bf_close(g->bf);
			g->bf = NULL;
			ret = r;
			continue;
		}
		printf("guest %u: %s connected: %s, %u queue(s), ring order %u, indirect %u, "
		       "discard %s%s\n",
		       g->domid, g->name, g->path, g->nr_queues, g->ring_order, g->max_indirect,
		       g->discard ? "yes" : "no", g->hostile ? " (hostile)" : "");
	}
	return ret;
}

static int run_io(struct demo *dm)
{
	int r;

	r = bk_loop_add_hook(dm->loop, step_all, dm, &dm->hook);
	if (r < 0)
		return r;
	bk_hook_enable(dm->hook, true);
	dm->start = bk_loop_now(dm->loop);
	dm->deadline = dm->start + dm->o.seconds;
	if (!dm->o.quiet) {
		r = bk_loop_add_timer(dm->loop, 1000, 1000, on_progress, dm, &dm->progress);
		if (r < 0)
			return r;
	}
	while (!all_done(dm) && !dm->stop_requested)
		bk_loop_run_once(dm->loop, 100);
	bk_hook_enable(dm->hook, false);
	bk_timer_free(dm->progress);
	dm->progress = NULL;
	if (!dm->stop_requested)
		return 0;
	for (unsigned int i = 0; i < dm->nr_guests; i++) {
		struct sd_guest *g = &dm->guests[i];

		if (g->bf && !g->io_done && !g->failed)
			snprintf(g->verdict_why, sizeof(g->verdict_why),
				 "interrupted by a stop signal before its I/O was done");
	}
	return -EINTR;
}

/* The hostile guest passes when its device failed naming the broken rule. */
static void judge_hostile(struct demo *dm)
{
	for (unsigned int i = 0; i < dm->nr_guests; i++) {
		struct sd_guest *g = &dm->guests[i];
		_cleanup_free_ char *err = NULL;

		if (!g->hostile || !g->bf || g->failed)
			continue;
		if (sd_guest_be_error(g, &err) < 0 || !strstr(err, "producer index")) {
			g->failed = true;
			snprintf(g->verdict_why, sizeof(g->verdict_why),
				 "the device did not fail with a producer index error (error node: "
				 "%.160s)",
				 err ? err : "none");
		} else {
			snprintf(g->verdict_why, sizeof(g->verdict_why),
				 "device failed as intended: %.200s", err);
		}
	}
}

static void show_daemon_view(struct demo *dm)
{
	const char *ctl = dm->o.blanketctl ? dm->o.blanketctl : SD_BLANKETCTL;
	static const char *const list[] = { "list", NULL };
	static const char *const stats[] = { "stats", NULL };
	int r;

	if (access(ctl, X_OK) < 0) {
		printf("\n(blanketctl not found at %s: skipping the daemon's view)\n", ctl);
		return;
	}
	printf("\nThe daemon's view (blanketctl --socket %s list):\n", dm->socket);
	r = sd_run_blanketctl(dm->loop, ctl, dm->socket, list);
	if (r != 0)
		printf("(blanketctl list: %s %d)\n", r < 0 ? "error" : "exit status", r);
	printf("\nblanketctl --socket %s stats:\n", dm->socket);
	r = sd_run_blanketctl(dm->loop, ctl, dm->socket, stats);
	if (r != 0)
		printf("(blanketctl stats: %s %d)\n", r < 0 ? "error" : "exit status", r);
}

static bool flag_set(void *data)
{
	return *(bool *)data;
}

/* Devices removed through the toolstack; the core stopped; no grant, node or device left. */
static bool teardown(struct demo *dm, bool daemon_stopped)
{
	struct bk_core *core = bk_daemon_core(dm->d);
	struct bk_sim_counts c;
	char why[200];
	bool ok = true;

	for (unsigned int i = 0; i < dm->nr_guests; i++) {
		struct sd_guest *g = &dm->guests[i];
		int r = daemon_stopped ? sd_guest_remove_dirs(g) : sd_guest_remove(g);

		if (r < 0) {
			printf("  FAIL removing %s: %s\n", g->name, strerror(-r));
			ok = false;
		}
	}
	if (!daemon_stopped) {
		bk_core_stop(core, core_stopped, dm);
		if (bk_test_pump_until(dm->loop, flag_set, &dm->core_stopped, 0) < 0) {
			printf("  FAIL: the core did not stop\n");
			return false;
		}
	}
	for (unsigned int i = 0; i < dm->nr_guests; i++) {
		struct sd_guest *g = &dm->guests[i];

		if (sd_guest_leak_check(g, why, sizeof(why)) < 0) {
			printf("  FAIL leak check, guest %u: %s\n", g->domid, why);
			ok = false;
		}
	}
	bk_sim_counts(dm->sim, &c);
	if (c.gnt_mapped_pages || c.evtchn_bound) {
		printf("  FAIL: the daemon still maps %u grant page(s), binds %u port(s)\n",
		       c.gnt_mapped_pages, c.evtchn_bound);
		ok = false;
	}
	if (bk_core_nr_devices(core)) {
		printf("  FAIL: %u device(s) still in the daemon\n", bk_core_nr_devices(core));
		ok = false;
	}
	if (bk_ts_exists(dm->ts, "/local/domain/0/backend/vbd") > 0) {
		char **names = NULL;
		unsigned int n = 0;

		if (bk_xs_directory(bk_ts_xs(dm->ts), BK_XS_NULL, "/local/domain/0/backend/vbd",
				    &names, &n) == 0 &&
		    n) {
			printf("  FAIL: backend nodes left under /local/domain/0/backend/vbd\n");
			ok = false;
		}
		free(names);
	}
	return ok;
}

static void cleanup(struct demo *dm)
{
	for (unsigned int i = 0; i < dm->nr_guests; i++)
		sd_guest_free(&dm->guests[i]);
	free(dm->guests);
	bk_hook_free(dm->hook);
	bk_timer_free(dm->progress);
	bk_ts_free(dm->ts);
	bk_service_free(dm->svc);
	bk_daemon_free(dm->d);
	if (dm->own_image)
		unlink(dm->o.image);
	if (dm->own_dir)
		rmdir(dm->dir);
}

static bool no_devices(void *data)
{
	return bk_core_nr_devices(data) == 0;
}

int main(int argc, char **argv)
{
	struct demo dm = {
		.o = {
			.guests = 2,
			.size = 64ULL << 20,
			.queues = 4,
			.ring_order = 4,
			.depth = 8,
			.indirect = true,
		},
	};
	int log_level = BK_LOG_NOTICE;
	bool ok = true, aborted = false, daemon_stopped = false;
	double elapsed;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = parse_options(argc, argv, &dm.o, &log_level);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;
	if (!dm.o.ops && !dm.o.seconds)
		dm.o.seconds = SD_DEFAULT_SECONDS;
	dm.o.no_verify = dm.o.engine && !strcmp(dm.o.engine, "null");
	if (!dm.o.seeded)
		dm.o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	printf("blanketd-simdemo: %u guest(s), %" PRIu64 " %s, seed %" PRIu64 "%s\n", dm.o.guests,
	       dm.o.ops ? dm.o.ops : dm.o.seconds, dm.o.ops ? "requests each" : "s of I/O",
	       dm.o.seed, dm.o.hostile ? ", the last guest hostile" : "");
	if (make_workdir(&dm) < 0)
		return EXIT_FAILURE;
	r = start_daemon(&dm, log_level);
	if (r < 0) {
		fprintf(stderr, "simdemo: cannot start the daemon: %s\n", strerror(-r));
		cleanup(&dm);
		return EXIT_FAILURE;
	}
	printf("daemon: platform sim, control socket %s\n", dm.socket);

	if (setup_guests(&dm) < 0)
		ok = false;
	r = run_io(&dm);
	if (r == -EINTR)
		aborted = true;
	else if (r < 0)
		ok = false;
	elapsed = bk_loop_now(dm.loop) - dm.start;
	judge_hostile(&dm);
	ok &= sd_report_verdicts(dm.guests, dm.nr_guests, elapsed);
	if (dm.o.results) {
		r = sd_report_results(dm.o.results, dm.guests, dm.nr_guests, dm.socket,
				      dm.o.serve && !aborted);
		if (r < 0) {
			fprintf(stderr, "simdemo: writing %s: %s\n", dm.o.results, strerror(-r));
			ok = false;
		}
	}

	if (aborted) {
		/* A stop signal during the I/O: the daemon is shutting its devices down. */
		printf("simdemo: interrupted before the I/O was done\n");
		ok = false;
		if (bk_test_pump_until(dm.loop, no_devices, bk_daemon_core(dm.d), 2000) < 0)
			printf("  FAIL: the daemon did not shut its devices down\n");
		daemon_stopped = true;
	} else {
		show_daemon_view(&dm);
	}
	if (dm.o.serve && !aborted) {
		printf("\nServing (pid %ld). Try: blanketctl --socket %s status\n"
		       "Stop with SIGTERM or Ctrl-C.\n",
		       (long)getpid(), dm.socket);
		r = bk_daemon_run(dm.d);
		if (r < 0) {
			printf("  FAIL: the daemon did not stop cleanly: %s\n", strerror(-r));
			ok = false;
		}
		daemon_stopped = true;
	}

	printf("\nTeardown (%s):\n",
	       daemon_stopped ? "the daemon stopped its devices; the toolstack removes the nodes"
			      : "the toolstack removes each device: Closing -> Closed");
	if (teardown(&dm, daemon_stopped))
		printf("  no mapped grants, no devices, no backend nodes left\n");
	else
		ok = false;
	printf("\nblanketd-simdemo: %s\n",
	       !ok		? "FAIL"
	       : dm.o.no_verify ? "PASS: nothing leaked (null engine: data not verified)"
				: "PASS: every guest verified its data, nothing leaked");
	cleanup(&dm);
	return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
