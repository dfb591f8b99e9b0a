// SPDX-License-Identifier: MIT
/* The configuration parser: every key, bad values named with file and line, CPU lists. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "util/log.h"
#include "util/macros.h"
#include "check.h"

static char tmpdir[] = "/tmp/test-config.XXXXXX";
static char errlog[300];
static int saved_stderr = -1;

/* Capture stderr (the daemon log) into errlog so the messages can be checked. */
static void capture_begin(void)
{
	int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(void)
{
	static char buf[4096];
	ssize_t n;
	int fd;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	fd = open(errlog, O_RDONLY | O_CLOEXEC);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Load @text as a file; return the result and the captured log in *log. */
static int load_text(struct bk_config *cfg, const char *text, char **log)
{
	const char *path = write_file("blanketd.conf", text);
	int r;

	capture_begin();
	r = bk_config_load(cfg, path, true);
	*log = capture_end();
	return r;
}

static void test_defaults(void)
{
	struct bk_config c;
	char *log;

	bk_config_defaults(&c);
	CHECK(c.log_level == BK_LOG_INFO);
	CHECK(strcmp(c.control_socket, "/run/blanketd/control") == 0);
	CHECK(c.queues >= 1 && c.queues <= BK_CFG_QUEUES_MAX);
	CHECK(c.max_ring_page_order == 4);
	CHECK(c.max_indirect_segments == 256);
	CHECK(c.queue_idle_ms == 30000);
	CHECK(c.bounce_pool_size % 4096 == 0);
	/* auto: a quarter of RAM, at least 64M, whole pages. */
	CHECK(c.bounce_pool_budget == 0);
	CHECK(bk_config_bounce_budget(&c) >= 64U << 20 && bk_config_bounce_budget(&c) % 4096 == 0);
	CHECK(!c.cpu_affinity_set);
	CHECK(bk_config_current() != NULL);
	/* Any PCI device unless l0-pci-allow names some (or none). */
	CHECK(strcmp(c.l0_pci_allow, "any") == 0 && bk_config_pci_allowed(&c, "0000:00:05.0"));
	CHECK(load_text(&c, "l0-pci-allow = none\n", &log) == 1);
	CHECK(!bk_config_pci_allowed(&c, "0000:00:05.0"));
}

static void test_missing_file(void)
{
	struct bk_config c;
	char path[300];

	bk_config_defaults(&c);
	snprintf(path, sizeof(path), "%s/nonexistent.conf", tmpdir);
	CHECK(bk_config_load(&c, path, false) == 0);
	capture_begin();
	CHECK(bk_config_load(&c, path, true) == -ENOENT);
	CHECK(strstr(capture_end(), "nonexistent.conf") != NULL);
}

static void test_every_key(void)
{
	struct bk_config c;
	char *log;
	int r;

	bk_config_defaults(&c);
	r = load_text(&c,
		      "# a comment\n"
		      "\n"
		      "log-level = debug\n"
		      "  control-socket=/tmp/x/ctl  \n"
		      "engine = aio\n"
		      "queues = 8\n"
		      "max-ring-page-order = 2\n"
		      "max-indirect-segments = 64\n"
		      "bounce-pool-size = 8M\n"
		      "bounce-pool-budget = 512M\n"
		      "watch-coalesce-ms = 0\n"
		      "cpu-affinity = 0-3,6\n"
		      "state-directory = /var/run/bk\n"
		      "disk-rate-limit = iops=500,bps=20M,burst=200\n"
		      "share-wait-ms = 5000\n"
		      "queue-idle-ms = 2500\n"
		      "vif-port = l0:virtio-net,pci=0000:00:05.0; sw0:vhost-user,path=/run/s\n"
		      "l0-pci-allow = 0000:00:0a.0, 0000:00:05.0\n"
		      "io-threads = 3\n"
		      "\t# indented comment\n",
		      &log);
	CHECK(r == 17);
	CHECK(c.io_threads == 3 && bk_config_io_threads(&c) == 3);
	CHECK(c.share_wait_ms == 5000);
	CHECK(c.queue_idle_ms == 2500);
	CHECK(strcmp(c.l0_pci_allow, "0000:00:0a.0,0000:00:05.0") == 0);
	CHECK(bk_config_pci_allowed(&c, "0000:00:05.0") &&
	      bk_config_pci_allowed(&c, "0000:00:0a.0"));
	CHECK(!bk_config_pci_allowed(&c, "0000:00:0b.0") &&
	      !bk_config_pci_allowed(&c, "0000:00:0a"));
	CHECK(c.disk_rate_limit.iops == 500 && c.disk_rate_limit.bps == 20U << 20);
	CHECK(c.disk_rate_limit.burst_ms == 200 && c.disk_rate_limit.flags == 0);
	CHECK(strcmp(c.state_directory, "/var/run/bk") == 0 && c.state_directory_set);
	CHECK(c.log_level == BK_LOG_DEBUG);
	CHECK(strcmp(c.control_socket, "/tmp/x/ctl") == 0);
	CHECK(strcmp(c.engine, "aio") == 0);
	CHECK(c.queues == 8);
	CHECK(c.max_ring_page_order == 2);
	CHECK(c.max_indirect_segments == 64);
	CHECK(c.bounce_pool_size == 8U << 20);
	CHECK(c.bounce_pool_budget == 512U << 20 && bk_config_bounce_budget(&c) == 512U << 20);
	CHECK(c.watch_coalesce_ms == 0);
	{
		char spec[128];

		/* Each vif finds its own entry, a name's prefix finds nothing. */
		CHECK(bk_config_vif_port(&c, "l0", spec, sizeof(spec)) == 0 &&
		      !strcmp(spec, "virtio-net,pci=0000:00:05.0"));
		CHECK(bk_config_vif_port(&c, "sw0", spec, sizeof(spec)) == 0 &&
		      !strcmp(spec, "vhost-user,path=/run/s"));
		CHECK(bk_config_vif_port(&c, "sw", spec, sizeof(spec)) == 0 && !spec[0]);
		CHECK(bk_config_vif_port(&c, "vif5.0", spec, sizeof(spec)) == 0 && !spec[0]);
		CHECK(bk_config_vif_port(&c, "l0", spec, 8) == -ENOSPC);
	}
	CHECK(c.cpu_affinity_set);
	CHECK(CPU_COUNT(&c.cpu_affinity) == 5);
	CHECK(CPU_ISSET(0, &c.cpu_affinity) && CPU_ISSET(3, &c.cpu_affinity));
	CHECK(CPU_ISSET(6, &c.cpu_affinity) && !CPU_ISSET(4, &c.cpu_affinity));

	/* The dump reads back to the same configuration. */
	{
		struct bk_config d;
		char text[2048];
		FILE *f = fmemopen(text, sizeof(text), "w");

		bk_config_dump(&c, f);
		fclose(f);
		bk_config_defaults(&d);
		CHECK(load_text(&d, text, &log) == 17);
		CHECK(memcmp(&c, &d, sizeof(c)) == 0);
	}
}

/* Each bad line must stop the load with FILE:LINE and name the value, key and reason. */
/* io-threads: "auto" (the default) is one per CPU the daemon may use; 0 keeps the main loop. */
static void test_io_threads(void)
{
	struct bk_config c;
	char why[256];
	cpu_set_t set;

	bk_config_defaults(&c);
	CHECK(c.io_threads == -1);
	CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
	CHECK(bk_config_io_threads(&c) == (unsigned int)BK_MIN(CPU_COUNT(&set), 64));
	CHECK(bk_config_set_key(&c, "io-threads", "0", why, sizeof(why)) == 0);
	CHECK(c.io_threads == 0 && bk_config_io_threads(&c) == 0);
	CHECK(bk_config_set_key(&c, "io-threads", "64", why, sizeof(why)) == 0);
	CHECK(bk_config_io_threads(&c) == 64);
	CHECK(bk_config_set_key(&c, "io-threads", "65", why, sizeof(why)) == -EINVAL);
	CHECK(bk_config_set_key(&c, "io-threads", "-1", why, sizeof(why)) == -EINVAL);
	CHECK(bk_config_set_key(&c, "io-threads", "auto", why, sizeof(why)) == 0);
	CHECK(c.io_threads == -1);
}

static void test_bad_values(void)
{
	static const struct {
		const char *line;
		const char *msg;
	} cases[] = {
		{ "log-level = loud", "bad value 'loud' for key 'log-level': expected err" },
		{ "state-directory = run",
		  "bad value 'run' for key 'state-directory': must be an absolute" },
		{ "control-socket = run/ctl",
		  "bad value 'run/ctl' for key 'control-socket': must be an absolute" },
		{ "engine = spdk",
		  "bad value 'spdk' for key 'engine': expected io_uring, aio or null" },
		{ "queues = 0", "bad value '0' for key 'queues': must be between 1 and 64" },
		{ "queues = 65", "bad value '65' for key 'queues': must be between 1 and 64" },
		{ "queues = -1", "bad value '-1' for key 'queues': not a decimal number" },
		{ "queues = 4x", "bad value '4x' for key 'queues': not a decimal number" },
		{ "queues =", "bad value '' for key 'queues': empty" },
		{ "queues = 99999999999999999999999", "number too large" },
		{ "max-ring-page-order = 5",
		  "bad value '5' for key 'max-ring-page-order': must be between 0 and 4" },
		{ "max-indirect-segments = 8", "bad value '8' for key 'max-indirect-segments': "
					       "must be 0 (off) or between 11 and 256" },
		{ "max-indirect-segments = 257", "must be between 0 and 256" },
		{ "bounce-pool-size = 1000",
		  "bad value '1000' for key 'bounce-pool-size': must be a multiple of 4096" },
		{ "bounce-pool-size = 2G", "larger than the 1G limit" },
		{ "bounce-pool-size = M", "expected a size" },
		{ "bounce-pool-budget = 1000",
		  "bad value '1000' for key 'bounce-pool-budget': must be a multiple of 4096" },
		{ "bounce-pool-budget = 512K", "must be auto or between 1M and 1T" },
		{ "bounce-pool-budget = 0", "must be auto or between 1M and 1T" },
		{ "bounce-pool-budget = lots", "expected auto or a size" },
		{ "watch-coalesce-ms = 10001", "must be between 0 and 10000" },
		{ "share-wait-ms = 600001", "must be between 0 and 600000" },
		{ "queue-idle-ms = 99", "must be between 100 and 3600000" },
		{ "cpu-affinity = 3-1",
		  "bad value '3-1' for key 'cpu-affinity': range 3-1 is backwards" },
		{ "cpu-affinity = 0,,2",
		  "bad value '0,,2' for key 'cpu-affinity': expected a CPU number" },
		{ "cpu-affinity = 0-3,2", "CPU 2 listed twice" },
		{ "cpu-affinity = 0 - 3", "unexpected ' '" },
		{ "cpu-affinity = 1-", "expected a CPU number" },
		{ "cpu-affinity = 5000", "CPU number too large" },
		{ "cpu-affinity = x", "expected a CPU number at 'x'" },
		{ "disk-rate-limit = iops=fast",
		  "bad value 'iops=fast' for key 'disk-rate-limit': iops=fast: expected requests" },
		{ "disk-rate-limit = bps=1T", "bps=1T: expected bytes per second" },
		{ "disk-rate-limit = burst=0", "burst=0: expected milliseconds, 1 to 60000" },
		{ "disk-rate-limit = iops", "'iops': expected key=value" },
		{ "disk-rate-limit = rate=5", "'rate=5': not a limit (iops, bps, burst)" },
		{ "vif-port = l0", "bad value 'l0' for key 'vif-port': entry 'l0' is not "
				   "VIFNAME:SPEC" },
		{ "vif-port = :tap", "entry ':tap' is not VIFNAME:SPEC" },
		{ "vif-port = a:tap;b:virtio-blk,pci=0000:00:05.0",
		  "vif b: port 'virtio-blk,pci=0000:00:05.0' is not tap" },
		{ "l0-pci-allow = 00:05.0",
		  "bad value '00:05.0' for key 'l0-pci-allow': '00:05.0' is not a PCI address" },
		{ "l0-pci-allow = 0000:00:05.0,,0000:00:06.0", "'' is not a PCI address" },
		{ "l0-pci-allow = 0000:00:05.0,none", "'none' is not a PCI address" },
		{ "no-such-key = 1", "unknown key 'no-such-key'" },
		{ "just words", "expected 'key = value'" },
		{ "[daemon]", "sections are not used" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bk_config c, before;
		char text[256], want[300], *log;

		bk_config_defaults(&c);
		before = c;
		snprintf(text, sizeof(text), "# header\nqueues = 2\n%s\nqueues = 3\n",
			 cases[i].line);
		CHECK(load_text(&c, text, &log) == -EINVAL);
		snprintf(want, sizeof(want), "blanketd.conf:3: ");
		if (!strstr(log, want) || !strstr(log, cases[i].msg)) {
			fprintf(stderr, "case '%s': log was: %s", cases[i].line, log);
			bk_test_failures++;
		}
		/* Stopped at the bad line: the line after it did not apply. */
		CHECK(c.queues == 2);
		(void)before;
	}
}

static void test_set(void)
{
	struct bk_config c;
	char *log;
	char why[128];

	bk_config_defaults(&c);
	CHECK(bk_config_set(&c, "--set", "queues=7") == 0);
	CHECK(c.queues == 7);
	CHECK(bk_config_set(&c, "--set", " cpu-affinity = \"2\" ") == 0);
	CHECK(c.cpu_affinity_set && CPU_COUNT(&c.cpu_affinity) == 1 &&
	      CPU_ISSET(2, &c.cpu_affinity));
	CHECK(bk_config_set(&c, "--set", "cpu-affinity=all") == 0);
	CHECK(!c.cpu_affinity_set);
	capture_begin();
	CHECK(bk_config_set(&c, "--set", "queues=abc") == -EINVAL);
	log = capture_end();
	CHECK(strstr(log, "--set: bad value 'abc' for key 'queues'") != NULL);
	CHECK(c.queues == 7);
	CHECK(bk_config_set_key(&c, "nope", "1", why, sizeof(why)) == -ENOENT);
	/* A failed set leaves the configuration untouched. */
	CHECK(bk_config_set_key(
		      &c, "control-socket",
		      "/x/"
		      "0123456789012345678901234567890123456789012345678901234567890123456789"
		      "0123456789012345678901234567890123456789",
		      why, sizeof(why)) == -EINVAL);
	CHECK(strcmp(c.control_socket, "/run/blanketd/control") == 0);
}

static void test_helpers(void)
{
	enum bk_cache_mode m;
	uint64_t v;
	bool b;
	char why[128];

	CHECK(bk_parse_cache_mode("writethrough", &m, why, sizeof(why)) == 0 &&
	      m == BK_CACHE_WRITETHROUGH);
	CHECK(bk_parse_cache_mode("unsafe", &m, why, sizeof(why)) == -EINVAL);
	CHECK(strcmp(bk_cache_mode_name(BK_CACHE_WRITEBACK), "writeback") == 0);
	CHECK(bk_parse_bool("off", &b, why, sizeof(why)) == 0 && !b);
	CHECK(bk_parse_bool("Yes", &b, why, sizeof(why)) == 0 && b);
	CHECK(bk_parse_bool("2", &b, why, sizeof(why)) == -EINVAL);
	CHECK(bk_parse_size("512K", &v, why, sizeof(why)) == 0 && v == 512 * 1024);
	CHECK(bk_parse_size("1g", &v, why, sizeof(why)) == 0 && v == 1ULL << 30);
	CHECK(bk_parse_size("", &v, why, sizeof(why)) == -EINVAL);
	CHECK(bk_parse_uint("18446744073709551615", 0, UINT64_MAX, &v, why, sizeof(why)) == 0 &&
	      v == UINT64_MAX);
	CHECK(bk_parse_uint("18446744073709551616", 0, UINT64_MAX, &v, why, sizeof(why)) ==
	      -EINVAL);
	v = 42;
	CHECK(bk_parse_uint("+1", 0, 10, &v, why, sizeof(why)) == -EINVAL && v == 42);
}

static void test_nul_and_long_lines(void)
{
	struct bk_config c;
	char *log, path[300], big[1200];
	FILE *f;

	bk_config_defaults(&c);
	snprintf(path, sizeof(path), "%s/blanketd.conf", tmpdir);
	f = fopen(path, "w");
	fwrite("queues = 2\0 junk\n", 1, 17, f);
	fclose(f);
	capture_begin();
	CHECK(bk_config_load(&c, path, true) == -EINVAL);
	log = capture_end();
	CHECK(strstr(log, "blanketd.conf:1: NUL byte") != NULL);

	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	CHECK(load_text(&c, big, &log) == -EINVAL);
	CHECK(strstr(log, "longer than") != NULL);
}

static void test_build_apply(void)
{
	struct bk_config c, saved = *bk_config_current();
	char *sets[] = { "queues=3", "log-level=warning", "cpu-affinity=0" };
	char *bad_sets[] = { "queues=3", "engine=fast" };
	const char *path = write_file("built.conf", "queues = 9\nengine = null\n");
	char missing[300], *log;

	/* File, then --set in order. */
	CHECK(bk_config_build(&c, path, sets, 3) == 0);
	CHECK(c.queues == 3 && strcmp(c.engine, "null") == 0 && c.log_level == BK_LOG_WARNING);
	CHECK(bk_config_apply(&c) == 0);
	CHECK(bk_config_current()->queues == 3);
	CHECK(bk_log_get_level() == BK_LOG_WARNING);

	capture_begin();
	CHECK(bk_config_build(&c, path, bad_sets, 2) == -EINVAL);
	log = capture_end();
	CHECK(strstr(log, "--set: bad value 'fast' for key 'engine'") != NULL);
	CHECK(c.queues == 3); /* untouched on failure */

	/* A named file must exist. */
	snprintf(missing, sizeof(missing), "%s/missing.conf", tmpdir);
	capture_begin();
	CHECK(bk_config_build(&c, missing, NULL, 0) == -ENOENT);
	capture_end();

	/* CPUs that do not exist: refused with the list named. */
	CHECK(bk_config_set(&c, "--set", "cpu-affinity=1000-1002") == 0);
	capture_begin();
	CHECK(bk_config_apply(&c) == -EINVAL);
	log = capture_end();
	CHECK(strstr(log, "cpu-affinity 1000-1002") != NULL);

	/* Leave the process as it was. */
	saved.cpu_affinity_set = false;
	bk_config_apply(&saved);
	bk_log_set_level(BK_LOG_INFO);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(errlog, sizeof(errlog), "%s/log", tmpdir);
	bk_log_set_prefix(0);

	test_defaults();
	test_missing_file();
	test_every_key();
	test_io_threads();
	test_bad_values();
	test_set();
	test_helpers();
	test_nul_and_long_lines();
	test_build_apply();

	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", tmpdir);
	}
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
