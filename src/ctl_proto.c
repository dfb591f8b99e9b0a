// SPDX-License-Identifier: MIT
/* Control protocol encoding helpers shared by blanketd and blanketctl (blanket/ctl.h). */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blanket/ctl.h"

void *bk_ctl_buf_append(struct bk_ctl_buf *b, const void *src, size_t len, int *err)
{
	void *p;

	if (len > b->max || b->len > b->max - len) {
		*err = -E2BIG;
		return NULL;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *n;

		while (cap < b->len + len)
			cap *= 2;
		if (cap > b->max)
			cap = b->max;
		n = realloc(b->data, cap);
		if (!n) {
			*err = -ENOMEM;
			return NULL;
		}
		b->data = n;
		b->cap = cap;
	}
	p = b->data + b->len;
	if (src)
		memcpy(p, src, len);
	else
		memset(p, 0, len);
	b->len += len;
	return p;
}

void bk_ctl_buf_release(struct bk_ctl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

#define SW16(x) ((x) = (__typeof__(x))htole16((uint16_t)(x)))
#define SW32(x) ((x) = (__typeof__(x))htole32((uint32_t)(x)))
#define SW64(x) ((x) = htole64(x))

void bk_ctl_hdr_encode(struct bk_ctl_hdr *h, uint16_t type, uint32_t length, int32_t status)
{
	h->magic = htole32(BK_CTL_MAGIC);
	h->version = htole16(BK_CTL_VERSION);
	h->type = htole16(type);
	h->length = htole32(length);
	h->status = (int32_t)htole32((uint32_t)status);
}

int bk_ctl_hdr_decode(const void *wire, uint32_t max_len, struct bk_ctl_hdr *ret)
{
	struct bk_ctl_hdr h;

	memcpy(&h, wire, sizeof(h));
	h.magic = le32toh(h.magic);
	h.version = le16toh(h.version);
	h.type = le16toh(h.type);
	h.length = le32toh(h.length);
	h.status = (int32_t)le32toh((uint32_t)h.status);
	*ret = h;
	if (h.magic != BK_CTL_MAGIC)
		return -EBADMSG;
	if (h.version != BK_CTL_VERSION)
		return -EPROTONOSUPPORT;
	if (h.length > max_len)
		return -EMSGSIZE;
	return 0;
}

void bk_ctl_error_swap(struct bk_ctl_error *e)
{
	SW32(e->err);
}

void bk_ctl_version_swap(struct bk_ctl_version *v)
{
	SW32(v->proto_version);
	SW32(v->pid);
	SW64(v->uptime_ms);
}

void bk_ctl_status_swap(struct bk_ctl_status *s)
{
	SW32(s->nr_devices);
	SW32(s->nr_connected);
	SW32(s->nr_connecting);
	SW32(s->nr_closing);
	SW32(s->nr_failed);
	SW32(s->pid);
	SW64(s->uptime_ms);
}

void bk_ctl_list_swap(struct bk_ctl_list *l)
{
	SW32(l->nr);
	SW32(l->elem_size);
}

void bk_ctl_device_swap(struct bk_ctl_device *d)
{
	SW32(d->domid);
	SW32(d->devid);
	SW32(d->state);
	SW32(d->fe_state);
	SW32(d->nr_queues);
	SW32(d->flags);
}

void bk_ctl_stats_req_swap(struct bk_ctl_stats_req *r)
{
	SW32(r->domid);
	SW32(r->devid);
	SW32(r->flags);
	SW32(r->pad);
}

void bk_ctl_dev_stats_swap(struct bk_ctl_dev_stats *d)
{
	SW32(d->domid);
	SW32(d->devid);
	SW32(d->nr_queues);
	SW32(d->queue_size);
}

void bk_ctl_queue_stats_swap(struct bk_queue_stats *q)
{
	uint64_t *w = (uint64_t *)q;

	/* Every field is a uint64_t (the layout is asserted in ctl.h). */
	for (size_t i = 0; i < sizeof(*q) / sizeof(uint64_t); i++)
		SW64(w[i]);
}

void bk_ctl_limit_swap(struct bk_ctl_limit *l)
{
	SW64(l->iops);
	SW64(l->bps);
	SW32(l->burst_ms);
	SW32(l->flags);
}

void bk_ctl_limit_req_swap(struct bk_ctl_limit_req *r)
{
	SW32(r->domid);
	SW32(r->devid);
	bk_ctl_limit_swap(&r->limit);
}

void bk_ctl_l0dev_swap(struct bk_ctl_l0dev *d)
{
	SW64(d->capacity);
	SW64(d->features);
	SW64(d->lost_interrupts);
	SW64(d->reconnects);
	SW32(d->block_size);
	SW32(d->flags);
	SW32(d->nr_users);
	SW32(d->user_size);
	SW32(d->nr_queues);
	SW32(d->queue_size);
}

void bk_ctl_l0user_swap(struct bk_ctl_l0user *u)
{
	SW64(u->offset);
	SW64(u->size);
}

/* The virtio-net counters are the same eight words as the virtio-blk ones swapped here. */
_Static_assert(offsetof(struct bk_ctl_l0queue, rx_frames) ==
			       offsetof(struct bk_ctl_l0queue, reads) &&
		       offsetof(struct bk_ctl_l0queue, tx_pages) ==
			       offsetof(struct bk_ctl_l0queue, inflight),
	       "one layout of counters");

void bk_ctl_l0queue_swap(struct bk_ctl_l0queue *q)
{
	SW32(q->index);
	SW32(q->size);
	SW64(q->reads);
	SW64(q->writes);
	SW64(q->flushes);
	SW64(q->discards);
	SW64(q->errors);
	SW64(q->bytes_read);
	SW64(q->bytes_written);
	SW64(q->inflight);
}

/* Digits with an optional K/M/G suffix (powers of 1024) when @suffix, at most @max. */
static int parse_num(const char *s, bool suffix, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0, mult = 1;
	size_t n = strlen(s);

	if (suffix && n && strchr("kKmMgG", s[n - 1])) {
		mult = strchr("kK", s[n - 1])	? 1ULL << 10
		       : strchr("mM", s[n - 1]) ? 1ULL << 20
						: 1ULL << 30;
		n--;
	}
	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	v *= mult;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/*
 * xl.cfg's vif rate: RATE/s[@INTERVAL], RATE a number with an optional k, M or G (powers of
 * 1000) then B (bytes) or b (bits), INTERVAL a number with s, ms or us (default 50 ms).
 */
static int parse_xl_rate(const char *s, uint64_t *ret_bps, uint64_t *ret_usec)
{
	unsigned long long v, iv;
	uint64_t mult = 1, usec = 50000;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1000;
		end++;
		break;
	case 'M':
		mult = 1000000;
		end++;
		break;
	case 'G':
		mult = 1000000000;
		end++;
		break;
	}
	if (*end == 'b')
		v = v * mult / 8;
	else if (*end == 'B')
		v = v * mult;
	else
		return -EINVAL;
	end++;
	if (strncmp(end, "/s", 2))
		return -EINVAL;
	end += 2;
	if (*end == '@') {
		if (!isdigit((unsigned char)end[1]))
			return -EINVAL;
		iv = strtoull(end + 1, &end, 10);
		if (!strcmp(end, "s"))
			usec = iv * 1000000;
		else if (!strcmp(end, "ms"))
			usec = iv * 1000;
		else if (!strcmp(end, "us"))
			usec = iv;
		else
			return -EINVAL;
		if (iv > 60000000ULL)
			return -EINVAL;
	} else if (*end) {
		return -EINVAL;
	}
	*ret_bps = v;
	*ret_usec = usec;
	return 0;
}

int bk_ctl_parse_vif_rate(const char *value, struct bk_ctl_limit *l, char *why, size_t len)
{
	uint64_t v, usec;

	/* The rate is bps, the credit window burst (whole ms). */
	if (parse_xl_rate(value, &v, &usec) < 0 || v > BK_CTL_LIMIT_BPS_MAX || usec % 1000 ||
	    usec / 1000 < BK_CTL_LIMIT_BURST_MIN || usec / 1000 > BK_CTL_LIMIT_BURST_MAX ||
	    (v && v * usec / 1000000 == 0)) {
		snprintf(why, len,
			 "rate=%.32s: expected RATE/s[@INTERVAL] as in xl.cfg (e.g. 10Mb/s@20ms), "
			 "at most 1024GB/s, a whole number of ms from %u to %u, at least a byte "
			 "per interval",
			 value, BK_CTL_LIMIT_BURST_MIN, BK_CTL_LIMIT_BURST_MAX);
		return -EINVAL;
	}
	l->bps = v;
	l->burst_ms = (uint32_t)(usec / 1000);
	l->flags |= BK_CTL_LIMIT_BPS | BK_CTL_LIMIT_BURST;
	return 0;
}

int bk_ctl_parse_limit_key(const char *key, const char *value, struct bk_ctl_limit *l, char *why,
			   size_t len)
{
	uint64_t v;
	int r;

	if (!strcmp(key, "iops")) {
		r = parse_num(value, false, 0, BK_CTL_LIMIT_IOPS_MAX, &v);
		if (r < 0)
			goto bad;
		l->iops = v;
		l->flags |= BK_CTL_LIMIT_IOPS;
		return 0;
	}
	if (!strcmp(key, "bps")) {
		r = parse_num(value, true, 0, BK_CTL_LIMIT_BPS_MAX, &v);
		if (r < 0)
			goto bad;
		l->bps = v;
		l->flags |= BK_CTL_LIMIT_BPS;
		return 0;
	}
	if (!strcmp(key, "burst")) {
		r = parse_num(value, false, BK_CTL_LIMIT_BURST_MIN, BK_CTL_LIMIT_BURST_MAX, &v);
		if (r < 0)
			goto bad;
		l->burst_ms = (uint32_t)v;
		l->flags |= BK_CTL_LIMIT_BURST;
		return 0;
	}
	snprintf(why, len, "'%.32s=%.32s': not a limit (iops, bps, burst)", key, value);
	return -ENOENT;
bad:
	if (!strcmp(key, "iops"))
		snprintf(why, len,
			 "iops=%.32s: expected requests per second, 0 (unlimited) to %llu", value,
			 BK_CTL_LIMIT_IOPS_MAX);
	else if (!strcmp(key, "bps"))
		snprintf(why, len,
			 "bps=%.32s: expected bytes per second (K, M, G suffixes), 0 (unlimited) "
			 "to 1024G",
			 value);
	else
		snprintf(why, len, "burst=%.32s: expected milliseconds, %u to %u", value,
			 BK_CTL_LIMIT_BURST_MIN, BK_CTL_LIMIT_BURST_MAX);
	return -EINVAL;
}

int bk_ctl_parse_limit(const char *spec, struct bk_ctl_limit *l, char *why, size_t len)
{
	struct bk_ctl_limit n = *l;
	char buf[128], *save = NULL;

	if (!strcmp(spec, "off") || !strcmp(spec, "none")) {
		l->iops = l->bps = 0;
		l->flags |= BK_CTL_LIMIT_IOPS | BK_CTL_LIMIT_BPS;
		return 0;
	}
	if (strlen(spec) >= sizeof(buf) || !spec[0]) {
		snprintf(why, len, "'%.32s%s': expected iops=N,bps=SIZE,burst=MS or off", spec,
			 spec[0] ? "..." : "");
		return -EINVAL;
	}
	memcpy(buf, spec, strlen(spec) + 1);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int r;

		if (!eq) {
			snprintf(why, len, "'%.32s': expected key=value (iops, bps, burst)", tok);
			return -EINVAL;
		}
		*eq = '\0';
		r = bk_ctl_parse_limit_key(tok, eq + 1, &n, why, len);
		if (r < 0)
			return -EINVAL;
	}
	*l = n;
	return 0;
}

void bk_ctl_format_limit(const struct bk_ctl_limit *l, char *buf, size_t len)
{
	static const char *const sfx[] = { "", "K", "M", "G" };
	uint64_t b = l->bps;
	unsigned int i = 0;
	int n = 0;

	if (!l->iops && !l->bps) {
		snprintf(buf, len, "off");
		return;
	}
	while (b && i < 3 && b % 1024 == 0) {
		b /= 1024;
		i++;
	}
	buf[0] = '\0';
	if (l->iops)
		n = snprintf(buf, len, "iops=%" PRIu64 ",", l->iops);
	if (l->bps && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "bps=%" PRIu64 "%s,", b, sfx[i]);
	if (n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "burst=%u", l->burst_ms);
}

void bk_ctl_strpad(char *dst, size_t size, const char *s)
{
	size_t n = s ? strnlen(s, size - 1) : 0;

	memcpy(dst, s ? s : "", n);
	memset(dst + n, 0, size - n);
}

const char *bk_ctl_state_name(uint32_t state)
{
	static const char *const names[] = {
		"Unknown", "Initialising", "InitWait",	    "Initialised",  "Connected",
		"Closing", "Closed",	   "Reconfiguring", "Reconfigured",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "Unknown";
}
