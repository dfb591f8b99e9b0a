// SPDX-License-Identifier: MIT
/* blanketd: userspace Xen PV backends. Options, then the daemon runtime (daemon.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "device.h"
#include "util/log.h"

#include "blkif/blkif.h"

/* Backend kinds served by this daemon. Add new kinds here (NULL-terminated). */
static const struct bk_backend_ops *const backend_kinds[] = {
	&blkif_backend_ops,
	NULL,
};

struct options {
	const char *platform;
	int log_level;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: blanketd [OPTIONS]\n"
		"Userspace backend for Xen PV block devices (blkif).\n\n"
		"  -p, --platform=xen|sim   Xen platform (default xen); sim is an empty\n"
		"                           simulated machine for demos and tests\n"
		"  -l, --log-level=LEVEL    err, warning, notice, info (default), debug, or 0-7\n"
		"  -f, --foreground         accepted for compatibility: blanketd never forks\n"
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "p:l:fhV", longopts, NULL)) != -1) {
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
			break;
		case 'f':
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

int main(int argc, char **argv)
{
	struct options o = { .platform = "xen", .log_level = BK_LOG_INFO };
	struct bk_daemon_params dp = { 0 };
	struct bk_daemon *d = NULL;
	int r;

	r = parse_options(argc, argv, &o);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;
	bk_log_set_level(o.log_level);

	dp.platform = o.platform;
	dp.kinds = backend_kinds;
	r = bk_daemon_new(&dp, &d);
	if (r < 0)
		return EXIT_FAILURE;
	r = bk_daemon_start(d);
	if (r < 0) {
		bk_daemon_free(d);
		return EXIT_FAILURE;
	}
	r = bk_daemon_run(d);
	bk_daemon_free(d);
	log_info("exiting");
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
