// SPDX-License-Identifier: MIT
/*
 * blanketctl: query a running blanketd over its control socket (list, stats, status,
 * version). See man blanketctl(8).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "blanket/ctl.h"
#include "blanketctl.h"
#include "client.h"
#include "l0.h"
#include "output.h"
#include "util/macros.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: blanketctl [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  list                     devices: domain, device, kind, backing, state, "
		"queues,\n"
		"                           negotiated features; then the cloud's (L0) devices\n"
		"                           blanketd drives: transport, DMA mode, users\n"
		"  stats [DEVICE]           per device and per queue counters and latency\n"
		"                           percentiles; DEVICE is 'vbd 5/51712' or '5/51712';\n"
		"                           then each L0 device's per-queue counters\n"
		"  limit DEVICE [SPEC]      show or change a device's rate limits, SPEC is\n"
		"                           iops=N,bps=SIZE,burst=MS (any of them) or off;\n"
		"                           a vif's guest TX: rate=10Mb/s@20ms as in xl.cfg\n"
		"  status                   exit 0 healthy, 1 degraded, 3 not running\n"
		"  version                  blanketctl and blanketd versions\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH        control socket (default %s)\n"
		"  -j, --json               JSON output (with --watch: one object per line)\n"
		"  -w, --watch N            stats: repeat every N seconds (1..3600), show rates\n"
		"  -n, --count N            stats --watch: stop after N samples\n"
		"  -h, --help               this text\n"
		"  -V, --version            blanketctl's version\n",
		BK_CTL_DEFAULT_SOCKET);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "blanketctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'blanketctl --help'.\n");
	return EXIT_USAGE;
}

/* Strict decimal in [min, max]; -EINVAL otherwise. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -ERANGE;
	}
	if (v < min)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

/* "vbd 5/51712", "vbd", "5/51712" (the kind may also come as its own argument). */
static int parse_device(const char *arg, struct ctl_opts *o)
{
	char buf[64];
	const char *ids;
	char *slash;

	if (strlen(arg) >= sizeof(buf))
		return usage_error("bad device '%s': too long", arg);
	snprintf(buf, sizeof(buf), "%s", arg);
	ids = buf;
	if (isalpha((unsigned char)buf[0])) {
		char *sp = strchr(buf, ' ');

		if (!sp)
			return usage_error("bad device '%s': expected 'vbd DOMID/DEVID' or "
					   "'DOMID/DEVID'",
					   arg);
		*sp = '\0';
		if (strcmp(buf, "vbd") != 0 && strcmp(buf, "vif") != 0)
			return usage_error(
				"bad device '%s': unknown kind '%s' (expected vbd or vif)", arg,
				buf);
		memcpy(o->kind, buf, strlen(buf) + 1); /* "vbd" or "vif" */
		ids = sp + 1;
		while (*ids == ' ')
			ids++;
	}
	slash = strchr(ids, '/');
	if (!slash)
		return usage_error("bad device '%s': expected DOMID/DEVID such as 5/51712", arg);
	*slash = '\0';
	if (parse_u32(ids, 0, 0x7fef, &o->domid) < 0)
		return usage_error("bad device '%s': domain '%s' is not a number from 0 to 32751",
				   arg, ids);
	if (parse_u32(slash + 1, 0, UINT32_MAX, &o->devid) < 0)
		return usage_error("bad device '%s': device '%s' is not a number", arg, slash + 1);
	o->have_device = true;
	return 0;
}

int ctl_open(const struct ctl_opts *o)
{
	int fd = client_connect(o->socket);

	if (fd >= 0)
		return fd;
	if (fd == -ENOENT || fd == -ECONNREFUSED) {
		fprintf(stderr, "blanketctl: blanketd is not running (nothing listens on %s)\n",
			o->socket);
		return -EXIT_NOT_RUNNING;
	}
	fprintf(stderr, "blanketctl: cannot connect to %s: %s\n", o->socket, strerror(-fd));
	return fd == -EACCES || fd == -EPERM ? -EXIT_UNKNOWN : -EXIT_FAIL;
}

static int simple_request(int fd, uint16_t type, void *out, size_t size, const char *what)
{
	uint8_t *p = NULL;
	uint32_t len = 0;
	char err[200];
	int r = client_request(fd, type, NULL, 0, &p, &len, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "blanketctl: %s: %s\n", what, err);
		return r;
	}
	memset(out, 0, size);
	memcpy(out, p, len < size ? len : size);
	free(p);
	return 0;
}

static int cmd_limit(const struct ctl_opts *o, const char *spec)
{
	struct bk_ctl_limit_req req = { .domid = o->domid, .devid = o->devid };
	struct bk_ctl_limit now = { 0 };
	uint8_t *p = NULL;
	uint32_t len = 0;
	char err[200], text[96];
	int fd, r;

	bk_ctl_strpad(req.kind, sizeof(req.kind), o->kind);
	if (spec && !strncmp(spec, "rate=", 5)) {
		if (bk_ctl_parse_vif_rate(spec + 5, &req.limit, err, sizeof(err)) < 0)
			return usage_error("bad limit '%s': %s", spec, err);
	} else if (spec && bk_ctl_parse_limit(spec, &req.limit, err, sizeof(err)) < 0) {
		return usage_error("bad limit '%s': %s", spec, err);
	}
	fd = ctl_open(o);
	if (fd < 0)
		return -fd;
	bk_ctl_limit_req_swap(&req);
	r = client_request(fd, BK_CTL_REQ_LIMIT, &req, sizeof(req), &p, &len, err, sizeof(err));
	close(fd);
	if (r < 0) {
		fprintf(stderr, "blanketctl: limit: %s\n", err);
		return EXIT_FAIL;
	}
	memcpy(&now, p, len < sizeof(now) ? len : sizeof(now));
	free(p);
	bk_ctl_limit_swap(&now);
	if (o->json) {
		printf("{\"iops\":%llu,\"bps\":%llu,\"burst_ms\":%u}\n",
		       (unsigned long long)now.iops, (unsigned long long)now.bps, now.burst_ms);
		return EXIT_OK;
	}
	bk_ctl_format_limit(&now, text, sizeof(text));
	printf("%s%s%u/%u: %s\n", o->kind, o->kind[0] ? " " : "", o->domid, o->devid, text);
	return EXIT_OK;
}

static int cmd_version(const struct ctl_opts *o)
{
	struct bk_ctl_version v;
	int fd;

	if (!o->json)
		printf("blanketctl %s (control protocol %u)\n", BK_VERSION, BK_CTL_VERSION);
	fd = ctl_open(o);
	if (fd < 0)
		return -fd;
	if (simple_request(fd, BK_CTL_REQ_VERSION, &v, sizeof(v), "version") < 0) {
		close(fd);
		return EXIT_FAIL;
	}
	close(fd);
	bk_ctl_version_swap(&v);
	v.version[sizeof(v.version) - 1] = '\0';
	v.platform[sizeof(v.platform) - 1] = '\0';
	if (o->json) {
		printf("{\"blanketctl\":");
		json_string(stdout, BK_VERSION);
		printf(",\"blanketd\":");
		json_string(stdout, v.version);
		printf(",\"protocol\":%u,\"platform\":", v.proto_version);
		json_string(stdout, v.platform);
		printf(",\"pid\":%u,\"uptime_ms\":%" PRIu64 "}\n", v.pid, v.uptime_ms);
	} else {
		char up[32];

		printf("blanketd %s (control protocol %u, platform %s, pid %u, up %s)\n", v.version,
		       v.proto_version, v.platform, v.pid, fmt_uptime(v.uptime_ms, up, sizeof(up)));
	}
	return EXIT_OK;
}

/* Fetch LIST; returns the number of devices or -1. */
int fetch_list(int fd, struct bk_ctl_device **ret)
{
	struct bk_ctl_device *devs;
	struct bk_ctl_list l;
	uint8_t *p = NULL;
	uint32_t len = 0;
	char err[200];
	int r = client_request(fd, BK_CTL_REQ_LIST, NULL, 0, &p, &len, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "blanketctl: list: %s\n", err);
		return -1;
	}
	if (len < sizeof(l))
		goto bad;
	memcpy(&l, p, sizeof(l));
	bk_ctl_list_swap(&l);
	if (l.elem_size < sizeof(struct bk_ctl_device) || l.nr > (len - sizeof(l)) / l.elem_size)
		goto bad;
	devs = calloc(l.nr ? l.nr : 1, sizeof(*devs));
	if (!devs)
		goto bad;
	for (uint32_t i = 0; i < l.nr; i++) {
		memcpy(&devs[i], p + sizeof(l) + (size_t)i * l.elem_size, sizeof(devs[i]));
		bk_ctl_device_swap(&devs[i]);
		devs[i].kind[sizeof(devs[i].kind) - 1] = '\0';
		devs[i].name[sizeof(devs[i].name) - 1] = '\0';
		devs[i].describe[sizeof(devs[i].describe) - 1] = '\0';
		devs[i].error[sizeof(devs[i].error) - 1] = '\0';
	}
	free(p);
	*ret = devs;
	return (int)l.nr;
bad:
	free(p);
	fprintf(stderr, "blanketctl: list: malformed reply from blanketd\n");
	return -1;
}

/* Split describe into the backing store token and the rest (features). */
static void split_describe(const char *desc, char *backing, size_t blen, char *feat, size_t flen)
{
	static const char *const keys[] = { "file=", "dev=", "backing=", "path=", "target=" };
	const char *p = desc;

	backing[0] = feat[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, " ");
		bool is_backing = false;

		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && !backing[0]; k++) {
			size_t kl = strlen(keys[k]);

			if (n > kl && strncmp(p, keys[k], kl) == 0) {
				snprintf(backing, blen, "%.*s", (int)(n - kl), p + kl);
				is_backing = true;
			}
		}
		if (!is_backing && n) {
			size_t fl = strlen(feat);

			snprintf(feat + fl, flen - fl, "%s%.*s", fl ? " " : "", (int)n, p);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
}

static const char *dev_state(const struct bk_ctl_device *d)
{
	if (d->flags & BK_CTL_DEV_FAILED)
		return "failed";
	if (d->flags & BK_CTL_DEV_SHUTTING_DOWN)
		return "draining";
	return bk_ctl_state_name(d->state);
}

static void list_json(const struct bk_ctl_device *devs, int n, const struct l0_sample *l0)
{
	printf("{\"devices\":[");
	for (int i = 0; i < n; i++) {
		const struct bk_ctl_device *d = &devs[i];
		char backing[256], feat[256], vdev[16] = "";

		split_describe(d->describe, backing, sizeof(backing), feat, sizeof(feat));
		if (strcmp(d->kind, "vbd") == 0)
			vbd_name(d->devid, vdev, sizeof(vdev));
		printf("%s\n{\"kind\":", i ? "," : "");
		json_string(stdout, d->kind);
		printf(",\"domid\":%u,\"devid\":%u,\"vdev\":", d->domid, d->devid);
		json_string(stdout, vdev);
		printf(",\"name\":");
		json_string(stdout, d->name);
		printf(",\"state\":");
		json_string(stdout, bk_ctl_state_name(d->state));
		printf(",\"frontend_state\":");
		json_string(stdout, bk_ctl_state_name(d->fe_state));
		printf(",\"online\":%s,\"shutting_down\":%s,\"failed\":%s,\"queues\":%u,"
		       "\"backing\":",
		       d->flags & BK_CTL_DEV_ONLINE ? "true" : "false",
		       d->flags & BK_CTL_DEV_SHUTTING_DOWN ? "true" : "false",
		       d->flags & BK_CTL_DEV_FAILED ? "true" : "false", d->nr_queues);
		json_string(stdout, backing);
		printf(",\"features\":");
		json_string(stdout, feat);
		printf(",\"describe\":");
		json_string(stdout, d->describe);
		printf(",\"error\":");
		json_string(stdout, d->error);
		printf("}");
	}
	printf("\n],");
	l0_json(l0, false);
	printf("}\n");
}

static int cmd_list(const struct ctl_opts *o)
{
	static const char *const head[] = { "DOMAIN", "DEVICE",	  "KIND",   "BACKING",
					    "STATE",  "FRONTEND", "QUEUES", "FEATURES" };
	struct bk_ctl_device *devs = NULL;
	struct l0_sample l0 = { 0 };
	struct table *t;
	int fd, n;

	fd = ctl_open(o);
	if (fd < 0)
		return -fd;
	n = fetch_list(fd, &devs);
	if (n >= 0 && l0_fetch(fd, &l0) < 0) {
		free(devs);
		n = -1;
	}
	close(fd);
	if (n < 0)
		return EXIT_FAIL;
	if (o->json) {
		list_json(devs, n, &l0);
		free(devs);
		l0_free(&l0);
		return EXIT_OK;
	}
	if (n == 0) {
		printf("no devices\n");
		l0_print_list(&l0);
		free(devs);
		l0_free(&l0);
		return EXIT_OK;
	}
	t = table_new(8);
	if (!t) {
		free(devs);
		l0_free(&l0);
		return EXIT_FAIL;
	}
	for (unsigned int c = 1; c < 8; c++)
		if (c != 6)
			table_left(t, c);
	table_row(t, head);
	for (int i = 0; i < n; i++) {
		const struct bk_ctl_device *d = &devs[i];
		char dom[16], dev[40], q[16], backing[256], feat[256], vdev[16] = "";
		const char *cells[8];

		split_describe(d->describe, backing, sizeof(backing), feat, sizeof(feat));
		if (strcmp(d->kind, "vbd") == 0)
			vbd_name(d->devid, vdev, sizeof(vdev));
		snprintf(dom, sizeof(dom), "%u", d->domid);
		if (vdev[0])
			snprintf(dev, sizeof(dev), "%u (%s)", d->devid, vdev);
		else
			snprintf(dev, sizeof(dev), "%u", d->devid);
		snprintf(q, sizeof(q), "%u", d->nr_queues);
		cells[0] = dom;
		cells[1] = dev;
		cells[2] = d->kind;
		cells[3] = backing[0] ? backing : "-";
		cells[4] = dev_state(d);
		cells[5] = bk_ctl_state_name(d->fe_state);
		cells[6] = q;
		cells[7] = feat[0] ? feat : "-";
		table_row(t, cells);
	}
	table_print(t, stdout);
	table_free(t);
	for (int i = 0; i < n; i++)
		if (devs[i].flags & BK_CTL_DEV_FAILED)
			printf("%s: failed: %s\n", devs[i].name,
			       devs[i].error[0] ? devs[i].error : "(no error text)");
	l0_print_list(&l0);
	free(devs);
	l0_free(&l0);
	return EXIT_OK;
}

static int cmd_status(const struct ctl_opts *o)
{
	struct bk_ctl_device *devs = NULL;
	struct bk_ctl_status s;
	char up[32];
	int fd, n = 0;
	bool healthy;

	fd = ctl_open(o);
	if (fd < 0) {
		if (o->json && -fd == EXIT_NOT_RUNNING)
			printf("{\"running\":false,\"healthy\":false}\n");
		return -fd;
	}
	if (simple_request(fd, BK_CTL_REQ_STATUS, &s, sizeof(s), "status") < 0) {
		close(fd);
		return EXIT_UNKNOWN;
	}
	bk_ctl_status_swap(&s);
	healthy = s.nr_failed == 0;
	if (!healthy)
		n = fetch_list(fd, &devs);
	close(fd);
	if (o->json) {
		printf("{\"running\":true,\"healthy\":%s,\"pid\":%u,\"uptime_ms\":%" PRIu64
		       ",\"devices\":%u,\"connected\":%u,\"connecting\":%u,\"closing\":%u,"
		       "\"failed\":%u,\"failed_devices\":[",
		       healthy ? "true" : "false", s.pid, s.uptime_ms, s.nr_devices, s.nr_connected,
		       s.nr_connecting, s.nr_closing, s.nr_failed);
		for (int i = 0, k = 0; i < n; i++) {
			if (!(devs[i].flags & BK_CTL_DEV_FAILED))
				continue;
			printf("%s{\"name\":", k++ ? "," : "");
			json_string(stdout, devs[i].name);
			printf(",\"error\":");
			json_string(stdout, devs[i].error);
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("blanketd is running (pid %u, up %s): %s\n", s.pid,
		       fmt_uptime(s.uptime_ms, up, sizeof(up)), healthy ? "healthy" : "degraded");
		printf("devices: %u (%u connected, %u connecting, %u closing, %u failed)\n",
		       s.nr_devices, s.nr_connected, s.nr_connecting, s.nr_closing, s.nr_failed);
		for (int i = 0; i < n; i++)
			if (devs[i].flags & BK_CTL_DEV_FAILED)
				printf("  %s: failed: %s\n", devs[i].name, devs[i].error);
	}
	free(devs);
	return healthy ? EXIT_OK : EXIT_FAIL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "socket", required_argument, NULL, 's' },
						  { "json", no_argument, NULL, 'j' },
						  { "watch", required_argument, NULL, 'w' },
						  { "count", required_argument, NULL, 'n' },
						  { "help", no_argument, NULL, 'h' },
						  { "version", no_argument, NULL, 'V' },
						  {} };
	struct ctl_opts o = { .socket = BK_CTL_DEFAULT_SOCKET };
	const char *cmd;
	bool count_set = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:jw:n:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!optarg[0])
				return usage_error("bad value '' for --socket: empty path");
			o.socket = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'w':
			if (parse_u32(optarg, 1, 3600, &o.watch) < 0)
				return usage_error("bad value '%s' for --watch: expected seconds "
						   "from 1 to 3600",
						   optarg);
			break;
		case 'n':
			if (parse_u32(optarg, 1, UINT32_MAX, &o.count) < 0)
				return usage_error(
					"bad value '%s' for --count: expected a positive "
					"number",
					optarg);
			count_set = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("blanketctl %s (control protocol %u)\n", BK_VERSION, BK_CTL_VERSION);
			return EXIT_OK;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("missing command (list, stats, limit, status, version)");
	cmd = argv[optind++];
	if ((o.watch || count_set) && strcmp(cmd, "stats") != 0)
		return usage_error("--watch and --count only apply to 'stats'");
	if (count_set && !o.watch)
		return usage_error("--count needs --watch");

	if (strcmp(cmd, "stats") == 0) {
		int left = argc - optind;

		if (left == 2) {
			/* "stats vbd 5/51712" given as two words. */
			char joined[64];

			snprintf(joined, sizeof(joined), "%s %s", argv[optind], argv[optind + 1]);
			if (parse_device(joined, &o))
				return EXIT_USAGE;
		} else if (left == 1) {
			if (parse_device(argv[optind], &o))
				return EXIT_USAGE;
		} else if (left > 2) {
			return usage_error("too many arguments for 'stats': '%s'",
					   argv[optind + 2]);
		}
		return cmd_stats(&o);
	}
	if (strcmp(cmd, "limit") == 0) {
		int left = argc - optind;
		const char *spec = NULL;

		if (left >= 2 && (!strcmp(argv[optind], "vbd") || !strcmp(argv[optind], "vif"))) {
			char joined[64];

			snprintf(joined, sizeof(joined), "%s %s", argv[optind], argv[optind + 1]);
			if (parse_device(joined, &o))
				return EXIT_USAGE;
			optind += 2;
		} else if (left >= 1) {
			if (parse_device(argv[optind++], &o))
				return EXIT_USAGE;
		} else {
			return usage_error("'limit' needs a DEVICE such as 5/51712");
		}
		if (optind < argc)
			spec = argv[optind++];
		if (optind < argc)
			return usage_error("too many arguments for 'limit': '%s'", argv[optind]);
		return cmd_limit(&o, spec);
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s' for '%s'", argv[optind], cmd);
	if (strcmp(cmd, "list") == 0)
		return cmd_list(&o);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&o);
	if (strcmp(cmd, "version") == 0)
		return cmd_version(&o);
	return usage_error("unknown command '%s' (expected list, stats, limit, status or version)",
			   cmd);
}
