// SPDX-License-Identifier: MIT
/* blanketctl stats: per device and per queue counters, latency percentiles, --watch. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blanket/ctl.h"
#include "blanketctl.h"
#include "client.h"
#include "l0.h"
#include "output.h"

struct dev_sample {
	struct bk_ctl_dev_stats d;
	struct bk_queue_stats *q;
	struct bk_queue_stats total;
	int thread; /* the I/O thread serving it (io-thread= in LIST), -1: none said */
};

struct sample {
	struct dev_sample *dev;
	unsigned int nr;
	double when; /* monotonic seconds */
};

static void sample_free(struct sample *s)
{
	for (unsigned int i = 0; i < s->nr; i++)
		free(s->dev[i].q);
	free(s->dev);
	s->dev = NULL;
	s->nr = 0;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add_stats(struct bk_queue_stats *t, const struct bk_queue_stats *q)
{
	const uint64_t *src = (const uint64_t *)q;
	uint64_t *dst = (uint64_t *)t;

	/* Every field is a counter (or, for inflight, a gauge that also sums). */
	for (size_t i = 0; i < sizeof(*q) / sizeof(uint64_t); i++)
		dst[i] += src[i];
}

/* Decode a STATS reply; tolerant of larger records from a newer daemon, strict on bounds. */
static int decode(const uint8_t *p, uint32_t len, struct sample *s)
{
	struct bk_ctl_list l;
	size_t off = sizeof(l);

	if (len < sizeof(l))
		return -EBADMSG;
	memcpy(&l, p, sizeof(l));
	bk_ctl_list_swap(&l);
	if (l.elem_size < sizeof(struct bk_ctl_dev_stats) || l.nr > len / l.elem_size)
		return -EBADMSG;
	s->dev = calloc(l.nr ? l.nr : 1, sizeof(*s->dev));
	if (!s->dev)
		return -ENOMEM;
	for (uint32_t i = 0; i < l.nr; i++) {
		struct dev_sample *ds = &s->dev[i];
		size_t qsize;

		if (len - off < l.elem_size)
			return -EBADMSG;
		memcpy(&ds->d, p + off, sizeof(ds->d));
		bk_ctl_dev_stats_swap(&ds->d);
		ds->d.kind[sizeof(ds->d.kind) - 1] = '\0';
		ds->d.name[sizeof(ds->d.name) - 1] = '\0';
		off += l.elem_size;
		s->nr++;
		qsize = ds->d.queue_size;
		if (ds->d.nr_queues > BK_CTL_MAX_QUEUES || qsize < 8 ||
		    (len - off) / qsize < ds->d.nr_queues)
			return -EBADMSG;
		ds->q = calloc(ds->d.nr_queues ? ds->d.nr_queues : 1, sizeof(*ds->q));
		if (!ds->q)
			return -ENOMEM;
		for (uint32_t q = 0; q < ds->d.nr_queues; q++) {
			memcpy(&ds->q[q], p + off, qsize < sizeof(*ds->q) ? qsize : sizeof(*ds->q));
			bk_ctl_queue_stats_swap(&ds->q[q]);
			add_stats(&ds->total, &ds->q[q]);
			off += qsize;
		}
	}
	return 0;
}

/* Each device's I/O thread, from the io-thread=N its LIST line carries (none: -1). */
static void add_threads(int fd, struct sample *s)
{
	struct bk_ctl_device *devs = NULL;
	int n = fetch_list(fd, &devs);

	for (unsigned int i = 0; i < s->nr; i++) {
		struct dev_sample *d = &s->dev[i];

		d->thread = -1;
		for (int j = 0; j < n; j++) {
			const char *t = strstr(devs[j].describe, "io-thread=");

			if (t && devs[j].domid == d->d.domid && devs[j].devid == d->d.devid &&
			    strcmp(devs[j].kind, d->d.kind) == 0)
				d->thread = atoi(t + 10);
		}
	}
	free(devs);
}

static int fetch(int fd, const struct ctl_opts *o, struct sample *s)
{
	struct bk_ctl_stats_req req = { .domid = o->domid, .devid = o->devid };
	uint8_t *p = NULL;
	uint32_t len = 0;
	char err[200];
	int r;

	if (o->have_device)
		bk_ctl_strpad(req.kind, sizeof(req.kind), o->kind);
	else
		req.flags = BK_CTL_STATS_ALL;
	bk_ctl_stats_req_swap(&req);
	r = client_request(fd, BK_CTL_REQ_STATS, &req, sizeof(req), &p, &len, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "blanketctl: stats: %s\n", err);
		return r;
	}
	s->when = mono_now();
	r = decode(p, len, s);
	free(p);
	if (r < 0) {
		sample_free(s);
		fprintf(stderr, "blanketctl: stats: malformed reply from blanketd\n");
		return r;
	}
	add_threads(fd, s);
	return 0;
}

static uint64_t total_reqs(const struct bk_queue_stats *q)
{
	/* Indirect requests are also counted as the read or write inside: skip them. */
	return q->reqs[BK_REQ_READ] + q->reqs[BK_REQ_WRITE] + q->reqs[BK_REQ_FLUSH] +
	       q->reqs[BK_REQ_BARRIER] + q->reqs[BK_REQ_DISCARD] + q->reqs[BK_REQ_OTHER];
}

static const struct dev_sample *find_prev(const struct sample *prev, const struct dev_sample *d)
{
	if (!prev)
		return NULL;
	for (unsigned int i = 0; i < prev->nr; i++)
		if (prev->dev[i].d.domid == d->d.domid && prev->dev[i].d.devid == d->d.devid &&
		    strcmp(prev->dev[i].d.kind, d->d.kind) == 0)
			return &prev->dev[i];
	return NULL;
}

static const char *u64s(uint64_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

/* Columns of a vbd row and of a vif row, before the two --watch rate columns. */
enum { NCOLS_BASE = 20, NCOLS_VIF = 15, NCOLS_MAX = NCOLS_BASE };
_Static_assert(NCOLS_VIF <= NCOLS_MAX, "put_row's cell array");

static uint64_t vbd_bytes(const struct bk_queue_stats *q)
{
	return q->bytes_read + q->bytes_written;
}

static uint64_t vif_packets(const struct bk_queue_stats *q)
{
	return q->net_tx_packets + q->net_rx_packets;
}

static uint64_t vif_bytes(const struct bk_queue_stats *q)
{
	return q->net_tx_bytes + q->net_rx_bytes;
}

/* The two --watch columns: operations and bytes per second since @prev ("-" without one). */
static void put_rates(char (*c)[32], unsigned int *n, const struct bk_queue_stats *q,
		      const struct bk_queue_stats *prev, double dt,
		      uint64_t (*ops)(const struct bk_queue_stats *),
		      uint64_t (*bytes)(const struct bk_queue_stats *))
{
	if (prev && dt > 0) {
		snprintf(c[(*n)++], 32, "%.0f", (double)(ops(q) - ops(prev)) / dt);
		fmt_bytes((uint64_t)((double)(bytes(q) - bytes(prev)) / dt), c[*n], 28);
		strcat(c[(*n)++], "/s");
	} else {
		snprintf(c[(*n)++], 32, "-");
		snprintf(c[(*n)++], 32, "-");
	}
}

static void put_row(struct table *t, char (*c)[32], unsigned int n)
{
	const char *cells[NCOLS_MAX + 2];

	for (unsigned int i = 0; i < n; i++)
		cells[i] = c[i];
	table_row(t, cells);
}

static void print_row(struct table *t, const char *label, const struct bk_queue_stats *q,
		      const struct bk_queue_stats *prev, double dt, bool rates)
{
	char c[NCOLS_BASE + 2][32];
	unsigned int n = 0;

	snprintf(c[n++], 32, "%s", label);
	for (unsigned int i = 0; i < BK_REQ__MAX; i++)
		u64s(q->reqs[i], c[n++], 32);
	fmt_bytes(q->bytes_read, c[n++], 32);
	fmt_bytes(q->bytes_written, c[n++], 32);
	u64s(q->inflight, c[n++], 32);
	u64s(q->errors, c[n++], 32);
	u64s(q->ring_full, c[n++], 32);
	u64s(q->notify_in, c[n++], 32);
	u64s(q->notify_out, c[n++], 32);
	u64s(q->spurious, c[n++], 32);
	fmt_ns(q->throttled_ns, c[n++], 32);
	fmt_ns(bk_lat_percentile(q->lat_hist, 500), c[n++], 32);
	fmt_ns(bk_lat_percentile(q->lat_hist, 990), c[n++], 32);
	fmt_ns(bk_lat_percentile(q->lat_hist, 999), c[n++], 32);
	if (rates)
		put_rates(c, &n, q, prev, dt, total_reqs, vbd_bytes);
	put_row(t, c, n);
}

static uint64_t vif_tx_drops(const struct bk_queue_stats *q)
{
	return q->net_tx_drop_slots + q->net_tx_drop_copy + q->net_tx_drop_offload +
	       q->net_tx_drop_tap;
}

static uint64_t vif_rx_drops(const struct bk_queue_stats *q)
{
	return q->net_rx_drop_expired + q->net_rx_drop_offload + q->net_rx_drop_copy;
}

/* A vif queue: frames and bytes each way (TX = from the guest), drops, offloads, events. */
static void print_vif_row(struct table *t, const char *label, const struct bk_queue_stats *q,
			  const struct bk_queue_stats *prev, double dt, bool rates)
{
	char c[NCOLS_VIF + 2][32];
	unsigned int n = 0;

	snprintf(c[n++], 32, "%s", label);
	u64s(q->net_tx_packets, c[n++], 32);
	fmt_bytes(q->net_tx_bytes, c[n++], 32);
	u64s(q->net_rx_packets, c[n++], 32);
	fmt_bytes(q->net_rx_bytes, c[n++], 32);
	u64s(vif_tx_drops(q), c[n++], 32);
	u64s(vif_rx_drops(q), c[n++], 32);
	u64s(q->inflight, c[n++], 32);
	u64s(q->ring_full, c[n++], 32);
	u64s(q->net_tx_csum + q->net_rx_csum, c[n++], 32);
	u64s(q->net_tx_gso + q->net_rx_gso, c[n++], 32);
	u64s(q->notify_in, c[n++], 32);
	u64s(q->notify_out, c[n++], 32);
	u64s(q->spurious, c[n++], 32);
	fmt_ns(q->throttled_ns, c[n++], 32); /* rate=: time guest TX waited for credit */
	if (rates)
		put_rates(c, &n, q, prev, dt, vif_packets, vif_bytes);
	put_row(t, c, n);
}

static const char *const vif_head[NCOLS_VIF + 2] = {
	"QUEUE",      "TX-PKTS",  "TX-BYTES",  "RX-PKTS", "RX-BYTES",	"TX-DROPS",
	"RX-DROPS",   "BACKLOG",  "RING-FULL", "CSUM",	  "GSO",	"NOTIFY-IN",
	"NOTIFY-OUT", "SPURIOUS", "THROTTLED", "PPS",	  "THROUGHPUT",
};

static void print_human(const struct sample *s, const struct sample *prev, bool rates)
{
	static const char *const head[NCOLS_BASE + 2] = {
		"QUEUE",     "READS",	  "WRITES",	"FLUSH",      "BARRIER",   "DISCARD",
		"INDIRECT",  "OTHER",	  "READ",	"WRITTEN",    "INFLIGHT",  "ERRORS",
		"RING-FULL", "NOTIFY-IN", "NOTIFY-OUT", "SPURIOUS",   "THROTTLED", "P50",
		"P99",	     "P99.9",	  "IOPS",	"THROUGHPUT",
	};
	double dt = prev ? s->when - prev->when : 0;

	if (!s->nr)
		printf("no devices\n");
	for (unsigned int i = 0; i < s->nr; i++) {
		const struct dev_sample *d = &s->dev[i];
		const struct dev_sample *pd = find_prev(prev, d);
		bool vif = strcmp(d->d.kind, "vif") == 0;
		struct table *t = table_new((vif ? NCOLS_VIF : NCOLS_BASE) + (rates ? 2 : 0));
		void (*row)(struct table *, const char *, const struct bk_queue_stats *,
			    const struct bk_queue_stats *, double, bool) =
			vif ? print_vif_row : print_row;
		char vdev[16] = "";

		if (!t)
			return;
		if (strcmp(d->d.kind, "vbd") == 0)
			vbd_name(d->d.devid, vdev, sizeof(vdev));
		printf("%s%s%s%s  %u queue%s", i ? "\n" : "", d->d.name, vdev[0] ? " " : "",
		       vdev[0] ? vdev : "", d->d.nr_queues, d->d.nr_queues == 1 ? "" : "s");
		if (d->thread >= 0)
			printf(", I/O thread %d", d->thread);
		printf("\n");
		if (!d->d.nr_queues) {
			table_free(t);
			printf("  (no statistics from this backend)\n");
			continue;
		}
		table_row(t, vif ? vif_head : head);
		for (unsigned int q = 0; q < d->d.nr_queues; q++) {
			char label[16];

			snprintf(label, sizeof(label), "%u", q);
			row(t, label, &d->q[q], pd && q < pd->d.nr_queues ? &pd->q[q] : NULL, dt,
			    rates);
		}
		if (d->d.nr_queues > 1)
			row(t, "total", &d->total, pd ? &pd->total : NULL, dt, rates);
		table_print(t, stdout);
		table_free(t);
	}
}

/* A vif's counters, in addition to the common ones (TX = from the guest). */
static void json_net_body(const struct bk_queue_stats *q)
{
	printf(",\"net\":{\"tx_packets\":%" PRIu64 ",\"tx_bytes\":%" PRIu64
	       ",\"rx_packets\":%" PRIu64 ",\"rx_bytes\":%" PRIu64,
	       q->net_tx_packets, q->net_tx_bytes, q->net_rx_packets, q->net_rx_bytes);
	printf(",\"tx_drops\":{\"slots\":%" PRIu64 ",\"copy\":%" PRIu64 ",\"offload\":%" PRIu64
	       ",\"tap\":%" PRIu64 "}",
	       q->net_tx_drop_slots, q->net_tx_drop_copy, q->net_tx_drop_offload,
	       q->net_tx_drop_tap);
	printf(",\"rx_drops\":{\"expired\":%" PRIu64 ",\"offload\":%" PRIu64 ",\"copy\":%" PRIu64
	       "}",
	       q->net_rx_drop_expired, q->net_rx_drop_offload, q->net_rx_drop_copy);
	printf(",\"tx_csum\":%" PRIu64 ",\"tx_gso\":%" PRIu64 ",\"rx_csum\":%" PRIu64
	       ",\"rx_gso\":%" PRIu64 ",\"csum_fixup\":%" PRIu64 ",\"csum_sw\":%" PRIu64 "}",
	       q->net_tx_csum, q->net_tx_gso, q->net_rx_csum, q->net_rx_gso, q->net_csum_fixup,
	       q->net_csum_sw);
}

static void json_queue_body(const struct bk_queue_stats *q)
{
	static const char *const names[BK_REQ__MAX] = { "read",	   "write",    "flush", "barrier",
							"discard", "indirect", "other" };

	printf("\"requests\":{");
	for (unsigned int i = 0; i < BK_REQ__MAX; i++)
		printf("%s\"%s\":%" PRIu64, i ? "," : "", names[i], q->reqs[i]);
	printf("},\"bytes_read\":%" PRIu64 ",\"bytes_written\":%" PRIu64 ",\"inflight\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"ring_full\":%" PRIu64 ",\"notify_in\":%" PRIu64
	       ",\"notify_out\":%" PRIu64 ",\"spurious\":%" PRIu64,
	       q->bytes_read, q->bytes_written, q->inflight, q->errors, q->ring_full, q->notify_in,
	       q->notify_out, q->spurious);
	printf(",\"throttled\":%" PRIu64 ",\"throttled_ns\":%" PRIu64, q->throttled,
	       q->throttled_ns);
	printf(",\"latency_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p99.9\":%" PRIu64 "}",
	       bk_lat_percentile(q->lat_hist, 500), bk_lat_percentile(q->lat_hist, 990),
	       bk_lat_percentile(q->lat_hist, 999));
}

static void print_json(const struct sample *s, const struct l0_sample *l0, unsigned int interval,
		       bool pretty)
{
	const char *nl = pretty ? "\n" : "";
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("{\"timestamp\":%lld.%03ld,", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	if (interval)
		printf("\"interval_s\":%u,", interval);
	printf("\"devices\":[%s", nl);
	for (unsigned int i = 0; i < s->nr; i++) {
		const struct dev_sample *d = &s->dev[i];
		bool vif = strcmp(d->d.kind, "vif") == 0;
		char vdev[16] = "";

		if (strcmp(d->d.kind, "vbd") == 0)
			vbd_name(d->d.devid, vdev, sizeof(vdev));
		printf("{\"kind\":");
		json_string(stdout, d->d.kind);
		printf(",\"domid\":%u,\"devid\":%u,\"vdev\":", d->d.domid, d->d.devid);
		json_string(stdout, vdev);
		printf(",\"name\":");
		json_string(stdout, d->d.name);
		if (d->thread >= 0)
			printf(",\"io_thread\":%d", d->thread);
		printf(",\"queues\":[");
		for (unsigned int q = 0; q < d->d.nr_queues; q++) {
			printf("%s{\"queue\":%u,", q ? "," : "", q);
			json_queue_body(&d->q[q]);
			if (vif)
				json_net_body(&d->q[q]);
			printf("}");
		}
		printf("],\"total\":{");
		json_queue_body(&d->total);
		if (vif)
			json_net_body(&d->total);
		printf("}}%s%s", i + 1 < s->nr ? "," : "", nl);
	}
	printf("],");
	l0_json(l0, true);
	printf("}\n");
}

int cmd_stats(const struct ctl_opts *o)
{
	struct sample prev = { 0 }, cur = { 0 };
	int fd = ctl_open(o), ret = EXIT_OK;

	if (fd < 0)
		return -fd;
	for (unsigned int n = 0;; n++) {
		struct l0_sample l0 = { 0 };

		if (fetch(fd, o, &cur) < 0 || l0_fetch(fd, &l0) < 0) {
			ret = EXIT_FAIL;
			break;
		}
		if (o->json)
			print_json(&cur, &l0, o->watch, !o->watch);
		else {
			if (o->watch) {
				time_t now = time(NULL);
				char when[64];

				strftime(when, sizeof(when), "%F %T", localtime(&now));
				printf("%s--- %s (every %u s) ---\n", n ? "\n" : "", when,
				       o->watch);
			}
			print_human(&cur, n ? &prev : NULL, o->watch > 0);
			l0_print_stats(&l0);
		}
		l0_free(&l0);
		fflush(stdout);
		sample_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		if (!o->watch || (o->count && n + 1 >= o->count))
			break;
		sleep(o->watch);
	}
	sample_free(&prev);
	sample_free(&cur);
	close(fd);
	return ret;
}
