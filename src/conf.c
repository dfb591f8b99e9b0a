// SPDX-License-Identifier: MIT
/* The configuration file parser and the strict value parsers (see conf.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "util/log.h"
#include "util/macros.h"

#define CONF_LINE_MAX 1024

static int why_set(char *why, size_t len, const char *fmt, ...) _printf_(3, 4);

static int why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int bk_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret, char *why,
		  size_t why_len)
{
	uint64_t v = 0;

	if (!*s)
		return why_set(why, why_len, "empty, expected a number");
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return why_set(why, why_len, "not a decimal number");
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return why_set(why, why_len, "number too large");
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		return why_set(why, why_len, "must be between %" PRIu64 " and %" PRIu64, min, max);
	*ret = v;
	return 0;
}

int bk_parse_size(const char *s, uint64_t *ret, char *why, size_t why_len)
{
	char digits[32];
	size_t n = strlen(s);
	unsigned int shift = 0;
	uint64_t v;
	int r;

	if (n && strchr("kKmMgG", s[n - 1])) {
		shift = strchr("kK", s[n - 1]) ? 10 : strchr("mM", s[n - 1]) ? 20 : 30;
		n--;
	}
	if (n >= sizeof(digits))
		return why_set(why, why_len, "number too large");
	memcpy(digits, s, n);
	digits[n] = '\0';
	r = bk_parse_uint(digits, 0, UINT64_MAX >> shift, &v, why, why_len);
	if (r < 0) {
		if (!n)
			why_set(why, why_len, "expected a size such as 4M, 512K or 1048576");
		return r;
	}
	*ret = v << shift;
	return 0;
}

int bk_parse_bool(const char *s, bool *ret, char *why, size_t why_len)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return why_set(why, why_len, "expected on or off");
}

static int parse_cpu(const char **p, unsigned int *ret, char *why, size_t why_len)
{
	unsigned int v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return why_set(why, why_len, "expected a CPU number at '%s'", s);
	while (isdigit((unsigned char)*s)) {
		v = v * 10 + (unsigned int)(*s - '0');
		if (v >= CPU_SETSIZE)
			return why_set(why, why_len, "CPU number too large (max %d)",
				       CPU_SETSIZE - 1);
		s++;
	}
	*p = s;
	*ret = v;
	return 0;
}

int bk_parse_cpu_list(const char *s, cpu_set_t *ret, char *why, size_t why_len)
{
	cpu_set_t set;
	const char *p = s;
	int r;

	CPU_ZERO(&set);
	if (!*s)
		return why_set(why, why_len, "empty CPU list");
	for (;;) {
		unsigned int a, b;

		r = parse_cpu(&p, &a, why, why_len);
		if (r < 0)
			return r;
		b = a;
		if (*p == '-') {
			p++;
			r = parse_cpu(&p, &b, why, why_len);
			if (r < 0)
				return r;
			if (b < a)
				return why_set(why, why_len, "range %u-%u is backwards", a, b);
		}
		for (unsigned int c = a; c <= b; c++) {
			if (CPU_ISSET(c, &set))
				return why_set(why, why_len, "CPU %u listed twice", c);
			CPU_SET(c, &set);
		}
		if (!*p)
			break;
		if (*p != ',')
			return why_set(why, why_len, "unexpected '%c' (use a list like 0-3,6)", *p);
		p++;
	}
	*ret = set;
	return 0;
}

static const char *const cache_names[] = {
	[BK_CACHE_NONE] = "none",
	[BK_CACHE_WRITEBACK] = "writeback",
	[BK_CACHE_WRITETHROUGH] = "writethrough",
};

int bk_parse_cache_mode(const char *s, enum bk_cache_mode *ret, char *why, size_t why_len)
{
	for (size_t i = 0; i < ARRAY_SIZE(cache_names); i++) {
		if (strcmp(s, cache_names[i]) == 0) {
			*ret = (enum bk_cache_mode)i;
			return 0;
		}
	}
	return why_set(why, why_len, "expected writeback, writethrough or none");
}

const char *bk_cache_mode_name(enum bk_cache_mode m)
{
	return (unsigned int)m < ARRAY_SIZE(cache_names) ? cache_names[m] : "?";
}

int bk_parse_engine(const char *s, char *why, size_t why_len)
{
	if (strcmp(s, "io_uring") == 0 || strcmp(s, "aio") == 0 || strcmp(s, "null") == 0)
		return 0;
	return why_set(why, why_len, "expected io_uring, aio or null");
}

/* One setter per key; each parses into a temporary and only then stores. */
struct conf_key {
	const char *name;
	int (*set)(struct bk_config *cfg, const char *v, char *why, size_t len);
	void (*dump)(const struct bk_config *cfg, FILE *out);
};

static int set_log_level(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	int l = bk_log_level_from_string(v);

	if (l < 0 || l < BK_LOG_ERR)
		return why_set(why, len, "expected err, warning, notice, info or debug");
	cfg->log_level = l;
	return 0;
}

static void dump_log_level(const struct bk_config *cfg, FILE *out)
{
	static const char *const n[] = { "err", "warning", "notice", "info", "debug" };

	fprintf(out, "%s", n[cfg->log_level - BK_LOG_ERR]);
}

static int set_control_socket(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	if (v[0] != '/')
		return why_set(why, len, "must be an absolute path");
	if (strlen(v) >= sizeof(cfg->control_socket))
		return why_set(why, len, "path longer than %zu bytes",
			       sizeof(cfg->control_socket) - 1);
	snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s", v);
	return 0;
}

static void dump_control_socket(const struct bk_config *cfg, FILE *out)
{
	fprintf(out, "%s", cfg->control_socket);
}

static int set_state_directory(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	if (v[0] != '/')
		return why_set(why, len, "must be an absolute path");
	if (strlen(v) >= sizeof(cfg->state_directory))
		return why_set(why, len, "path longer than %zu bytes",
			       sizeof(cfg->state_directory) - 1);
	snprintf(cfg->state_directory, sizeof(cfg->state_directory), "%s", v);
	cfg->state_directory_set = true;
	return 0;
}

static void dump_state_directory(const struct bk_config *cfg, FILE *out)
{
	fprintf(out, "%s", cfg->state_directory);
}

static int set_engine(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	int r = bk_parse_engine(v, why, len);

	if (r < 0)
		return r;
	snprintf(cfg->engine, sizeof(cfg->engine), "%s", v);
	return 0;
}

static void dump_engine(const struct bk_config *cfg, FILE *out)
{
	fprintf(out, "%s", cfg->engine);
}

#define UINT_KEY(field, min, max)                                                           \
	static int set_##field(struct bk_config *cfg, const char *v, char *why, size_t len) \
	{                                                                                   \
		uint64_t x;                                                                 \
		int r = bk_parse_uint(v, min, max, &x, why, len);                           \
		if (r < 0)                                                                  \
			return r;                                                           \
		cfg->field = (unsigned int)x;                                               \
		return 0;                                                                   \
	}                                                                                   \
	static void dump_##field(const struct bk_config *cfg, FILE *out)                    \
	{                                                                                   \
		fprintf(out, "%u", cfg->field);                                             \
	}

UINT_KEY(queues, 1, BK_CFG_QUEUES_MAX)
UINT_KEY(max_ring_page_order, 0, BK_CFG_RING_ORDER_MAX)
UINT_KEY(watch_coalesce_ms, 0, BK_CFG_COALESCE_MAX)
UINT_KEY(share_wait_ms, 0, BK_CFG_SHARE_WAIT_MAX)
UINT_KEY(queue_idle_ms, BK_CFG_QUEUE_IDLE_MIN, BK_CFG_QUEUE_IDLE_MAX)

static int set_io_threads(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	uint64_t x;
	int r;

	if (strcmp(v, "auto") == 0) {
		cfg->io_threads = -1;
		return 0;
	}
	r = bk_parse_uint(v, 0, BK_CFG_IO_THREADS_MAX, &x, why, len);
	if (r < 0)
		return r;
	cfg->io_threads = (int)x;
	return 0;
}

static void dump_io_threads(const struct bk_config *cfg, FILE *out)
{
	if (cfg->io_threads < 0)
		fputs("auto", out);
	else
		fprintf(out, "%d", cfg->io_threads);
}

unsigned int bk_config_io_threads(const struct bk_config *cfg)
{
	cpu_set_t set;
	int n;

	if (cfg->io_threads >= 0)
		return (unsigned int)cfg->io_threads;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return (unsigned int)BK_MAX(1, BK_MIN(n, BK_CFG_IO_THREADS_MAX));
}

static int set_max_indirect_segments(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	uint64_t x;
	int r = bk_parse_uint(v, 0, BK_CFG_INDIRECT_MAX, &x, why, len);

	if (r < 0)
		return r;
	if (x != 0 && x < BK_CFG_INDIRECT_MIN)
		return why_set(why, len, "must be 0 (off) or between %u and %u",
			       BK_CFG_INDIRECT_MIN, BK_CFG_INDIRECT_MAX);
	cfg->max_indirect_segments = (unsigned int)x;
	return 0;
}

static void dump_max_indirect_segments(const struct bk_config *cfg, FILE *out)
{
	fprintf(out, "%u", cfg->max_indirect_segments);
}

static int set_bounce_pool_size(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	uint64_t x;
	int r = bk_parse_size(v, &x, why, len);

	if (r < 0)
		return r;
	if (x % 4096)
		return why_set(why, len, "must be a multiple of 4096 bytes");
	if (x > BK_CFG_BOUNCE_MAX)
		return why_set(why, len, "larger than the 1G limit");
	cfg->bounce_pool_size = x;
	return 0;
}

static void dump_bounce_pool_size(const struct bk_config *cfg, FILE *out)
{
	uint64_t v = cfg->bounce_pool_size;

	if (v && v % (1U << 20) == 0)
		fprintf(out, "%" PRIu64 "M", v >> 20);
	else if (v && v % 1024 == 0)
		fprintf(out, "%" PRIu64 "K", v >> 10);
	else
		fprintf(out, "%" PRIu64, v);
}

static int set_bounce_pool_budget(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	uint64_t x;
	int r;

	if (strcmp(v, "auto") == 0) {
		cfg->bounce_pool_budget = 0;
		return 0;
	}
	r = bk_parse_size(v, &x, why, len);
	if (r < 0)
		return why_set(why, len, "expected auto or a size such as 512M or 2G");
	if (x % 4096)
		return why_set(why, len, "must be a multiple of 4096 bytes");
	if (x < BK_CFG_BUDGET_MIN || x > BK_CFG_BUDGET_MAX)
		return why_set(why, len, "must be auto or between 1M and 1T");
	cfg->bounce_pool_budget = x;
	return 0;
}

static void dump_bounce_pool_budget(const struct bk_config *cfg, FILE *out)
{
	uint64_t v = cfg->bounce_pool_budget;

	if (!v)
		fprintf(out, "auto");
	else if (v % (1U << 20) == 0)
		fprintf(out, "%" PRIu64 "M", v >> 20);
	else
		fprintf(out, "%" PRIu64 "K", v >> 10);
}

/*
 * The machine's memory, read once: the budget is checked on every persistent-grant map, and
 * _SC_PHYS_PAGES is a sysinfo syscall each time (a round trip through Xen in a PV dom0).
 */
static uint64_t phys_bytes(void)
{
	static _Atomic uint64_t cached;
	uint64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
	long pages, size;

	if (v)
		return v;
	pages = sysconf(_SC_PHYS_PAGES);
	size = sysconf(_SC_PAGESIZE);
	v = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 1;
	atomic_store_explicit(&cached, v, memory_order_relaxed);
	return v;
}

uint64_t bk_config_bounce_budget(const struct bk_config *cfg)
{
	if (cfg->bounce_pool_budget)
		return cfg->bounce_pool_budget;
	return BK_MAX((phys_bytes() / 4) & ~4095ULL, BK_CFG_BUDGET_AUTO_MIN);
}

static int set_cpu_affinity(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	cpu_set_t set;
	int r;

	if (strlen(v) >= sizeof(cfg->cpu_affinity_str))
		return why_set(why, len, "CPU list too long");
	if (strcmp(v, "all") == 0 || !*v) {
		cfg->cpu_affinity_set = false;
		CPU_ZERO(&cfg->cpu_affinity);
		snprintf(cfg->cpu_affinity_str, sizeof(cfg->cpu_affinity_str), "all");
		return 0;
	}
	r = bk_parse_cpu_list(v, &set, why, len);
	if (r < 0)
		return r;
	cfg->cpu_affinity = set;
	cfg->cpu_affinity_set = true;
	snprintf(cfg->cpu_affinity_str, sizeof(cfg->cpu_affinity_str), "%s", v);
	return 0;
}

static void dump_cpu_affinity(const struct bk_config *cfg, FILE *out)
{
	fprintf(out, "%s", cfg->cpu_affinity_str);
}

#define KEY(n, f)                                           \
	{                                                   \
		.name = n, .set = set_##f, .dump = dump_##f \
	}

static int set_disk_rate_limit(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	struct bk_ctl_limit l = cfg->disk_rate_limit;

	if (bk_ctl_parse_limit(v, &l, why, len) < 0)
		return -EINVAL;
	l.flags = 0;
	cfg->disk_rate_limit = l;
	return 0;
}

static void dump_disk_rate_limit(const struct bk_config *cfg, FILE *out)
{
	char buf[96];

	bk_ctl_format_limit(&cfg->disk_rate_limit, buf, sizeof(buf));
	fputs(buf, out);
}

/* Structure only: each spec is parsed (and refused naming its value) when its vif appears. */
static int set_vif_port(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	char buf[sizeof(cfg->vif_port)], *save = NULL, *ent;

	if (strlen(v) >= sizeof(buf))
		return why_set(why, len, "longer than %zu bytes", sizeof(buf) - 1);
	snprintf(buf, sizeof(buf), "%s", v);
	for (ent = strtok_r(buf, ";", &save); ent; ent = strtok_r(NULL, ";", &save)) {
		char *colon, *name;

		while (*ent == ' ')
			ent++;
		colon = strchr(ent, ':');
		name = ent;
		if (!colon || colon == ent || colon - ent > 15)
			return why_set(why, len,
				       "entry '%s' is not VIFNAME:SPEC (a name of 1-15 "
				       "characters)",
				       ent);
		*colon = '\0';
		if (strncmp(colon + 1, "virtio-net,", 11) &&
		    strncmp(colon + 1, "vhost-user,", 11) && strcmp(colon + 1, "tap"))
			return why_set(why, len,
				       "vif %s: port '%s' is not tap, virtio-net,... or "
				       "vhost-user,...",
				       name, colon + 1);
	}
	snprintf(cfg->vif_port, sizeof(cfg->vif_port), "%s", v);
	return 0;
}

static void dump_vif_port(const struct bk_config *cfg, FILE *out)
{
	fputs(cfg->vif_port, out);
}

int bk_config_vif_port(const struct bk_config *cfg, const char *ifname, char *buf, size_t size)
{
	const char *p = cfg->vif_port;
	size_t nl = strlen(ifname);

	buf[0] = '\0';
	while (*p) {
		const char *end = strchr(p, ';');
		size_t el = end ? (size_t)(end - p) : strlen(p);

		while (el && *p == ' ') {
			p++;
			el--;
		}
		if (el > nl && !strncmp(p, ifname, nl) && p[nl] == ':') {
			size_t sl = el - nl - 1;

			while (sl && p[nl + sl] == ' ')
				sl--;
			if (sl >= size)
				return -ENOSPC;
			memcpy(buf, p + nl + 1, sl);
			buf[sl] = '\0';
			return 0;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* DDDD:BB:DD.F, hexadecimal, as sysfs names PCI devices. */
static bool is_bdf(const char *s, size_t n)
{
	static const char form[] = "xxxx:xx:xx.x";

	if (n != sizeof(form) - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (form[i] == 'x' ? !isxdigit((unsigned char)s[i]) : s[i] != form[i])
			return false;
	return true;
}

static int set_l0_pci_allow(struct bk_config *cfg, const char *v, char *why, size_t len)
{
	char out[sizeof(cfg->l0_pci_allow)] = "";
	size_t o = 0;

	if (strcmp(v, "any") == 0 || strcmp(v, "none") == 0) {
		snprintf(cfg->l0_pci_allow, sizeof(cfg->l0_pci_allow), "%s", v);
		return 0;
	}
	for (const char *p = v;;) {
		const char *e = p + strcspn(p, ",");
		const char *a = p, *b = e;

		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (!is_bdf(a, (size_t)(b - a)))
			return why_set(why, len,
				       "'%.*s' is not a PCI address (expected any, none or "
				       "DDDD:BB:DD.F,...)",
				       (int)(b - a), a);
		if (o + (size_t)(b - a) + 2 > sizeof(out))
			return why_set(why, len, "too many PCI addresses");
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%.*s", o ? "," : "",
				      (int)(b - a), a);
		if (!*e)
			break;
		p = e + 1;
	}
	snprintf(cfg->l0_pci_allow, sizeof(cfg->l0_pci_allow), "%s", out);
	return 0;
}

static void dump_l0_pci_allow(const struct bk_config *cfg, FILE *out)
{
	fputs(cfg->l0_pci_allow, out);
}

bool bk_config_pci_allowed(const struct bk_config *cfg, const char *bdf)
{
	size_t n = strlen(bdf);

	if (strcmp(cfg->l0_pci_allow, "any") == 0)
		return true;
	for (const char *p = cfg->l0_pci_allow; *p;) {
		size_t l = strcspn(p, ",");

		if (l == n && strncasecmp(p, bdf, n) == 0)
			return true;
		p += l + (p[l] == ',');
	}
	return false;
}

static const struct conf_key conf_keys[] = {
	KEY("log-level", log_level),
	KEY("control-socket", control_socket),
	KEY("state-directory", state_directory),
	KEY("engine", engine),
	KEY("queues", queues),
	KEY("max-ring-page-order", max_ring_page_order),
	KEY("max-indirect-segments", max_indirect_segments),
	KEY("bounce-pool-size", bounce_pool_size),
	KEY("bounce-pool-budget", bounce_pool_budget),
	KEY("watch-coalesce-ms", watch_coalesce_ms),
	KEY("cpu-affinity", cpu_affinity),
	KEY("disk-rate-limit", disk_rate_limit),
	KEY("vif-port", vif_port),
	KEY("share-wait-ms", share_wait_ms),
	KEY("queue-idle-ms", queue_idle_ms),
	KEY("l0-pci-allow", l0_pci_allow),
	KEY("io-threads", io_threads),
};

void bk_config_defaults(struct bk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = BK_LOG_INFO;
	snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s", BK_CONFIG_DEFAULT_SOCKET);
	snprintf(cfg->state_directory, sizeof(cfg->state_directory), "%s",
		 BK_CONFIG_DEFAULT_STATE_DIR);
#if HAVE_LIBURING
	snprintf(cfg->engine, sizeof(cfg->engine), "io_uring");
#elif HAVE_LIBAIO
	snprintf(cfg->engine, sizeof(cfg->engine), "aio");
#else
	snprintf(cfg->engine, sizeof(cfg->engine), "null");
#endif
	cfg->queues = 4;
	cfg->max_ring_page_order = BK_CFG_RING_ORDER_MAX;
	cfg->max_indirect_segments = BK_CFG_INDIRECT_MAX;
	cfg->bounce_pool_size = 4U << 20;
	cfg->watch_coalesce_ms = 20;
	cfg->disk_rate_limit.burst_ms = BK_CTL_LIMIT_BURST_DEFAULT;
	cfg->share_wait_ms = 30000;
	cfg->queue_idle_ms = 30000;
	snprintf(cfg->cpu_affinity_str, sizeof(cfg->cpu_affinity_str), "all");
	snprintf(cfg->l0_pci_allow, sizeof(cfg->l0_pci_allow), "any");
	cfg->io_threads = -1;
}

int bk_config_set_key(struct bk_config *cfg, const char *key, const char *value, char *why,
		      size_t why_len)
{
	for (size_t i = 0; i < ARRAY_SIZE(conf_keys); i++) {
		struct bk_config tmp;
		int r;

		if (strcmp(key, conf_keys[i].name) != 0)
			continue;
		tmp = *cfg;
		r = conf_keys[i].set(&tmp, value, why, why_len);
		if (r < 0)
			return r;
		*cfg = tmp;
		return 0;
	}
	why_set(why, why_len, "unknown key");
	return -ENOENT;
}

static char *strip(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * Apply one "key = value" text. @where is "FILE:LINE" or "--set" for messages. A value may
 * be wrapped in double quotes (to keep leading/trailing blanks or a '#').
 */
static int apply_assignment(struct bk_config *cfg, const char *where, char *line)
{
	char why[160];
	char *eq = strchr(line, '='), *key, *value;
	size_t vl;
	int r;

	if (!eq) {
		log_err("%s: expected 'key = value', got '%s'", where, line);
		return -EINVAL;
	}
	*eq = '\0';
	key = strip(line);
	value = strip(eq + 1);
	if (!*key) {
		log_err("%s: missing key before '='", where);
		return -EINVAL;
	}
	vl = strlen(value);
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
		value[vl - 1] = '\0';
		value++;
	}
	r = bk_config_set_key(cfg, key, value, why, sizeof(why));
	if (r == -ENOENT) {
		log_err("%s: unknown key '%s'", where, key);
		return -EINVAL;
	}
	if (r < 0) {
		log_err("%s: bad value '%s' for key '%s': %s", where, value, key, why);
		return -EINVAL;
	}
	return 0;
}

int bk_config_load(struct bk_config *cfg, const char *path, bool must_exist)
{
	_cleanup_free_ char *buf = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	int nkeys = 0, r = 0;
	ssize_t n;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		r = neg_errno();
		if (r == -ENOENT && !must_exist)
			return 0;
		return log_err_errno(r, "cannot open configuration file %s: %m", path);
	}
	while ((n = getline(&buf, &cap, f)) > 0) {
		char where[300], *line;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (n > CONF_LINE_MAX) {
			log_err("%s: line longer than %d bytes", where, CONF_LINE_MAX);
			r = -EINVAL;
			break;
		}
		if (strlen(buf) != (size_t)n) {
			log_err("%s: NUL byte in line", where);
			r = -EINVAL;
			break;
		}
		line = strip(buf);
		if (!*line || *line == '#')
			continue;
		if (*line == '[') {
			log_err("%s: sections are not used; write 'key = value' lines", where);
			r = -EINVAL;
			break;
		}
		r = apply_assignment(cfg, where, line);
		if (r < 0)
			break;
		nkeys++;
	}
	if (r == 0 && ferror(f))
		r = log_err_errno(-EIO, "error reading %s", path);
	fclose(f);
	return r < 0 ? r : nkeys;
}

int bk_config_set(struct bk_config *cfg, const char *origin, const char *assignment)
{
	char buf[CONF_LINE_MAX + 1];

	if (strlen(assignment) > CONF_LINE_MAX) {
		log_err("%s: assignment too long", origin);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", assignment);
	return apply_assignment(cfg, origin, buf);
}

void bk_config_dump(const struct bk_config *cfg, FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(conf_keys); i++) {
		fprintf(out, "%s = ", conf_keys[i].name);
		conf_keys[i].dump(cfg, out);
		fputc('\n', out);
	}
}

static struct bk_config current;
static bool current_set;

const struct bk_config *bk_config_current(void)
{
	if (!current_set) {
		bk_config_defaults(&current);
		current_set = true;
	}
	return &current;
}

void bk_config_install(const struct bk_config *cfg)
{
	current = *cfg;
	current_set = true;
}

int bk_config_build(struct bk_config *ret, const char *path, char *const *sets, unsigned int nsets)
{
	struct bk_config cfg;
	int r;

	bk_config_defaults(&cfg);
	r = bk_config_load(&cfg, path ? path : BK_CONFIG_DEFAULT_PATH, path != NULL);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < nsets; i++) {
		r = bk_config_set(&cfg, "--set", sets[i]);
		if (r < 0)
			return r;
	}
	*ret = cfg;
	return 0;
}

int bk_config_apply(const struct bk_config *cfg)
{
	if (cfg->cpu_affinity_set &&
	    sched_setaffinity(0, sizeof(cfg->cpu_affinity), &cfg->cpu_affinity) < 0)
		return log_err_errno(neg_errno(), "cpu-affinity %s: cannot pin to these CPUs: %m",
				     cfg->cpu_affinity_str);
	bk_config_install(cfg);
	bk_log_set_level(cfg->log_level);
	return 0;
}
