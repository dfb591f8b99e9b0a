// SPDX-License-Identifier: MIT
/* blanketd: userspace Xen PV backends. Options, then the daemon runtime (daemon.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "config.h"
#include "daemon.h"
#include "device.h"
#include "engine.h"
#include "service.h"
#include "util/log.h"
#include "virtio/pci.h"

#include "blkif/blkif.h"
#include "netif/netif.h"

/* Backend kinds served by this daemon. Add new kinds here (NULL-terminated). */
static const struct bk_backend_ops *const backend_kinds[] = {
	&blkif_backend_ops,
	&netif_backend_ops,
	NULL,
};

struct options {
	const char *platform;
	int log_level;
	bool log_level_set;
	const char *config;         /* -c: NULL = the default file, which may be missing */
	const char *control_socket; /* overrides the control-socket key */
	char **sets;                /* --set key=value, in order */
	unsigned int nr_sets;
	bool check_config;
};

enum { OPT_SET = 256, OPT_CONTROL_SOCKET, OPT_CHECK_CONFIG };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: blanketd [OPTIONS]\n"
		"Userspace backend for Xen PV block devices (blkif).\n\n"
		"  -p, --platform=xen|sim   Xen platform (default xen); sim is an empty\n"
		"                           simulated machine for demos and tests\n"
		"  -l, --log-level=LEVEL    err, warning, notice, info (default), debug, or 0-7\n"
		"  -f, --foreground         accepted for compatibility: blanketd never forks\n"
		"  -c, --config=FILE        configuration file (default " BK_CONFIG_DEFAULT_PATH ")\n"
		"      --set KEY=VALUE      override one configuration key (repeatable)\n"
		"      --control-socket=PATH  control socket for blanketctl\n"
		"      --check-config       print the effective configuration and exit\n"
		"  -h, --help               show this help\n"
		"  -V, --version            show the version\n");
}

/* 0: run; 1: exit 0 (help, version); -EINVAL: usage error (already reported). */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "platform", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, OPT_SET },
		{ "control-socket", required_argument, NULL, OPT_CONTROL_SOCKET },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->sets = calloc((size_t)argc + 1, sizeof(*o->sets));
	if (!o->sets)
		return -ENOMEM;
	while ((c = getopt_long(argc, argv, "p:l:fc:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (strcmp(optarg, "xen") != 0 && strcmp(optarg, "sim") != 0) {
				fprintf(stderr,
					"blanketd: invalid --platform '%s' (expected xen or sim)\n",
					optarg);
				return -EINVAL;
			}
			o->platform = optarg;
			break;
		case 'l':
			o->log_level = bk_log_level_from_string(optarg);
			if (o->log_level < 0) {
				fprintf(stderr,
					"blanketd: invalid --log-level '%s' (expected err, warning, "
					"notice, info, debug or 0-7)\n",
					optarg);
				return -EINVAL;
			}
			o->log_level_set = true;
			break;
		case 'f':
			break;
		case 'c':
			o->config = optarg;
			break;
		case OPT_SET:
			o->sets[o->nr_sets++] = optarg;
			break;
		case OPT_CONTROL_SOCKET:
			o->control_socket = optarg;
			break;
		case OPT_CHECK_CONFIG:
			o->check_config = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("blanketd %s\n", BK_VERSION);
			return 1;
		default:
			fprintf(stderr, "Try 'blanketd --help' for more information.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "blanketd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/*
 * The configuration file, then --set, then the specific flags; strict, with FILE:LINE
 * messages. 0, or -EINVAL after logging.
 */
static int load_config(const struct options *o, struct bk_config *cfg)
{
	char why[160];
	int r;

	r = bk_config_build(cfg, o->config, o->sets, o->nr_sets);
	if (r < 0)
		return r;
	if (o->control_socket &&
	    bk_config_set_key(cfg, "control-socket", o->control_socket, why, sizeof(why)) < 0) {
		log_err("--control-socket: bad value '%s': %s", o->control_socket, why);
		return -EINVAL;
	}
	if (!bk_engine_find(cfg->engine)) {
		log_err("engine '%s' is not built into this blanketd (built: %s)", cfg->engine,
			bk_engine_names());
		return -EINVAL;
	}
	return 0;
}

static void on_stopping(void *data)
{
	struct bk_service **svc = data;

	if (*svc)
		bk_service_stopping(*svc);
	/* Guests stay connected for the next daemon: so do their L0 devices (virtio/pci.h). */
	vpci_keep_bound(true);
}

int main(int argc, char **argv)
{
	struct options o = { .platform = "xen", .log_level = BK_LOG_INFO };
	struct bk_daemon_params dp = { 0 };
	struct bk_service_params sp = { 0 };
	struct bk_service *svc = NULL;
	struct bk_daemon *d = NULL;
	struct bk_config cfg;
	char journal_dir[sizeof(cfg.state_directory) + 16] = "";
	int r;

	r = parse_options(argc, argv, &o);
	if (r != 0) {
		free(o.sets);
		return r > 0 ? EXIT_SUCCESS : 2;
	}
	r = load_config(&o, &cfg);
	free(o.sets);
	if (r < 0)
		return EXIT_FAILURE;
	if (o.check_config) {
		bk_config_dump(&cfg, stdout);
		return EXIT_SUCCESS;
	}
	if (bk_config_apply(&cfg) < 0)
		return EXIT_FAILURE;
	if (o.log_level_set)
		bk_log_set_level(o.log_level);

	/* As the backends decide: on the simulation only an explicit state-directory is used. */
	if (cfg.state_directory[0] && (strcmp(o.platform, "sim") != 0 || cfg.state_directory_set))
		snprintf(journal_dir, sizeof(journal_dir), "%s/inflight", cfg.state_directory);
	dp.journal_dir = journal_dir[0] ? journal_dir : NULL;
	dp.platform = o.platform;
	dp.kinds = backend_kinds;
	dp.watch_coalesce_ms = cfg.watch_coalesce_ms;
	dp.io_threads = bk_config_io_threads(&cfg);
	dp.on_stopping = on_stopping;
	dp.data = &svc;
	r = bk_daemon_new(&dp, &d);
	if (r < 0)
		return EXIT_FAILURE;
	sp.loop = bk_daemon_loop(d);
	sp.core = bk_daemon_core(d);
	sp.platform = bk_daemon_platform(d);
	sp.control_socket = cfg.control_socket;
	r = bk_service_start(&sp, &svc);
	if (r < 0) {
		bk_daemon_free(d);
		return EXIT_FAILURE;
	}
	r = bk_daemon_start(d);
	if (r < 0) {
		bk_service_free(svc);
		bk_daemon_free(d);
		return EXIT_FAILURE;
	}
	/* The xenstore watches are armed: systemd may start the guests now. */
	bk_service_ready(svc);
	r = bk_daemon_run(d);
	bk_service_free(svc);
	bk_daemon_free(d);
	log_info("exiting");
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
