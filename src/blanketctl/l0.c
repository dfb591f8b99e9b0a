// SPDX-License-Identifier: MIT
/*
 * blanketctl's view of the cloud's (L0) devices blanketd drives itself: the L0 request, shown
 * after the guest devices by `list` (device, transport, DMA mode and why, users) and `stats`
 * (per-queue counters), and as "l0_devices" in their JSON. A virtio-net device is a vif's
 * port: its user is the vif, its queues are queue pairs with frame counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blanket/ctl.h"
#include "client.h"
#include "l0.h"
#include "output.h"

void l0_free(struct l0_sample *s)
{
	for (unsigned int i = 0; i < s->nr; i++) {
		free(s->dev[i].users);
		free(s->dev[i].queues);
	}
	free(s->dev);
	memset(s, 0, sizeof(*s));
}

/* Copy @n records of @size bytes from *@p (bounded by @end) into @out (@want bytes each). */
static int take(const uint8_t **p, const uint8_t *end, uint32_t n, uint32_t size, void *out,
		size_t want)
{
	if (size < want || (n && (size_t)(end - *p) / size < n))
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		memcpy((uint8_t *)out + i * want, *p, want);
		*p += size;
	}
	return 0;
}

int l0_fetch(int fd, struct l0_sample *ret)
{
	struct l0_sample s = { 0 };
	struct bk_ctl_list l;
	const uint8_t *p, *end;
	uint8_t *buf = NULL;
	uint32_t len = 0;
	char err[200];
	int r = client_request(fd, BK_CTL_REQ_L0, NULL, 0, &buf, &len, err, sizeof(err));

	if (r == -EOPNOTSUPP) { /* a daemon from before L0 devices: none to show */
		*ret = s;
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "blanketctl: L0 devices: %s\n", err);
		return r;
	}
	p = buf;
	end = buf + len;
	r = -EBADMSG;
	if (len < sizeof(l))
		goto out;
	memcpy(&l, p, sizeof(l));
	bk_ctl_list_swap(&l);
	p += sizeof(l);
	if (l.elem_size < sizeof(struct bk_ctl_l0dev) || l.nr > len / l.elem_size)
		goto out;
	s.dev = calloc(l.nr ? l.nr : 1, sizeof(*s.dev));
	if (!s.dev) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < l.nr; i++, s.nr++) {
		struct l0_dev *d = &s.dev[i];

		if (take(&p, end, 1, l.elem_size, &d->d, sizeof(d->d)) < 0)
			goto out;
		bk_ctl_l0dev_swap(&d->d);
		d->d.kind[sizeof(d->d.kind) - 1] = d->d.name[sizeof(d->d.name) - 1] = '\0';
		d->d.transport[sizeof(d->d.transport) - 1] = '\0';
		d->d.dma_mode[sizeof(d->d.dma_mode) - 1] = '\0';
		d->d.dma_why[sizeof(d->d.dma_why) - 1] = d->d.irq[sizeof(d->d.irq) - 1] = '\0';
		if (d->d.nr_users > 4096 || d->d.nr_queues > 4096)
			goto out;
		d->users = calloc(d->d.nr_users + 1, sizeof(*d->users));
		d->queues = calloc(d->d.nr_queues + 1, sizeof(*d->queues));
		if (!d->users || !d->queues) {
			r = -ENOMEM;
			goto out;
		}
		if (take(&p, end, d->d.nr_users, d->d.user_size, d->users, sizeof(*d->users)) < 0 ||
		    take(&p, end, d->d.nr_queues, d->d.queue_size, d->queues, sizeof(*d->queues)) <
			    0)
			goto out;
		for (uint32_t u = 0; u < d->d.nr_users; u++) {
			bk_ctl_l0user_swap(&d->users[u]);
			d->users[u].owner[sizeof(d->users[u].owner) - 1] = '\0';
		}
		for (uint32_t q = 0; q < d->d.nr_queues; q++) {
			bk_ctl_l0queue_swap(&d->queues[q]);
			d->queues[q].owner[sizeof(d->queues[q].owner) - 1] = '\0';
		}
	}
	r = 0;
out:
	free(buf);
	if (r < 0) {
		if (r == -EBADMSG)
			fprintf(stderr, "blanketctl: L0 devices: malformed reply from blanketd\n");
		l0_free(&s);
		return r;
	}
	*ret = s;
	return 0;
}

static bool is_net(const struct l0_dev *d)
{
	return !strcmp(d->d.kind, "virtio-net");
}

/* "52:54:00:12:34:56", or "" when the device has none. */
static void fmt_mac(uint64_t mac, char *buf, size_t len)
{
	if (!mac) {
		snprintf(buf, len, "%s", "");
		return;
	}
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned int)(mac >> 40) & 0xff,
		 (unsigned int)(mac >> 32) & 0xff, (unsigned int)(mac >> 24) & 0xff,
		 (unsigned int)(mac >> 16) & 0xff, (unsigned int)(mac >> 8) & 0xff,
		 (unsigned int)mac & 0xff);
}

/* "pci, DMA p2m, INTx" */
static void how(const struct l0_dev *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s, DMA %s, %s", d->d.transport, d->d.dma_mode, d->d.irq);
}

static void offers(const struct l0_dev *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", d->d.flags & BK_CTL_L0_FLUSH ? " flush" : "",
		 d->d.flags & BK_CTL_L0_DISCARD ? " discard" : "",
		 d->d.flags & BK_CTL_L0_WRITE_ZEROES ? " write-zeroes" : "",
		 d->d.flags & BK_CTL_L0_READONLY ? " read-only" : "");
}

/* The first line of a virtio-net port in `list`, after its name: MAC, link, queue pairs. */
static void print_net_head(const struct l0_dev *d)
{
	char mac[24];

	fmt_mac(d->d.mac, mac, sizeof(mac));
	printf("%s%s, link %s, %u queue pair%s%s\n", mac[0] ? "MAC " : "no MAC", mac,
	       d->d.flags & BK_CTL_L0_LINK_UP ? "up" : "down", d->d.nr_queues,
	       d->d.nr_queues == 1 ? "" : "s",
	       d->d.flags & BK_CTL_L0_CONNECTED ? "" : ", back-end away");
}

void l0_print_list(const struct l0_sample *s)
{
	for (unsigned int i = 0; i < s->nr; i++) {
		const struct l0_dev *d = &s->dev[i];
		bool net = is_net(d);
		char h[96], cap[32], off[32], sz[32], feat[64];

		how(d, h, sizeof(h));
		printf("\nL0 %s %s (%s): ", d->d.kind, d->d.name, h);
		if (net) {
			print_net_head(d);
		} else {
			offers(d, feat, sizeof(feat));
			printf("%s, block %u,%s\n", fmt_bytes(d->d.capacity, cap, sizeof(cap)),
			       d->d.block_size, feat[0] ? feat : " no flush");
		}
		printf("  DMA mode %s: %s\n", d->d.dma_mode, d->d.dma_why[0] ? d->d.dma_why : "-");
		if (!d->d.nr_users)
			printf("  no users\n");
		for (uint32_t u = 0; u < d->d.nr_users; u++) {
			const char *who = d->users[u].owner[0] ? d->users[u].owner : "(unnamed)";

			if (net)
				printf("  used by %s\n", who);
			else
				printf("  used by %s: %s at %s (bytes %" PRIu64 "+%" PRIu64 ")\n",
				       who, fmt_bytes(d->users[u].size, sz, sizeof(sz)),
				       fmt_bytes(d->users[u].offset, off, sizeof(off)),
				       d->users[u].offset, d->users[u].size);
		}
		for (uint32_t q = 0; q < d->d.nr_queues; q++)
			printf("  queue%s %u (%u entries): %s\n", net ? " pair" : "",
			       d->queues[q].index, d->queues[q].size,
			       d->queues[q].owner[0] ? d->queues[q].owner : "free");
	}
}

/* One queue's counters as table cells (@c: 10 of 48 bytes), by the device's kind. */
static void queue_cells(const struct l0_dev *d, const struct bk_ctl_l0queue *w, char c[10][48])
{
	snprintf(c[0], 48, "%u", w->index);
	snprintf(c[1], 48, "%.47s", w->owner[0] ? w->owner : "-");
	if (is_net(d)) {
		snprintf(c[2], 48, "%" PRIu64, w->rx_frames);
		fmt_bytes(w->rx_bytes, c[3], 48);
		snprintf(c[4], 48, "%" PRIu64, w->tx_frames);
		fmt_bytes(w->tx_bytes, c[5], 48);
		snprintf(c[6], 48, "%" PRIu64, w->rx_drops);
		snprintf(c[7], 48, "%" PRIu64, w->tx_waits);
		snprintf(c[8], 48, "%" PRIu64, w->tx_csum_sw);
		snprintf(c[9], 48, "%" PRIu64, w->tx_pages);
		return;
	}
	snprintf(c[2], 48, "%" PRIu64, w->reads);
	snprintf(c[3], 48, "%" PRIu64, w->writes);
	snprintf(c[4], 48, "%" PRIu64, w->flushes);
	snprintf(c[5], 48, "%" PRIu64, w->discards);
	snprintf(c[6], 48, "%" PRIu64, w->errors);
	fmt_bytes(w->bytes_read, c[7], 48);
	fmt_bytes(w->bytes_written, c[8], 48);
	snprintf(c[9], 48, "%" PRIu64, w->inflight);
}

void l0_print_stats(const struct l0_sample *s)
{
	static const char *const head[] = { "QUEUE",   "OWNER",	 "READS", "WRITES",  "FLUSH",
					    "DISCARD", "ERRORS", "READ",  "WRITTEN", "INFLIGHT" };
	static const char *const net_head[] = { "QUEUE",     "OWNER",	 "RX-FRAMES", "RX-BYTES",
						"TX-FRAMES", "TX-BYTES", "RX-DROPS",  "TX-WAITS",
						"CSUM-SW",   "TX-PAGES" };

	for (unsigned int i = 0; i < s->nr; i++) {
		const struct l0_dev *d = &s->dev[i];
		struct table *t = table_new(10);
		bool net = is_net(d);
		char h[96];

		if (!t)
			return;
		how(d, h, sizeof(h));
		printf("\nL0 %s %s (%s)  %u %s%s, %u user%s", d->d.kind, d->d.name, h,
		       d->d.nr_queues, net ? "queue pair" : "queue", d->d.nr_queues == 1 ? "" : "s",
		       d->d.nr_users, d->d.nr_users == 1 ? "" : "s");
		if (net && !strcmp(d->d.transport, "pci"))
			printf(", link %s", d->d.flags & BK_CTL_L0_LINK_UP ? "up" : "down");
		else if (!strcmp(d->d.transport, "pci"))
			printf(", %" PRIu64 " completion(s) found by the safety poll",
			       d->d.lost_interrupts);
		else
			printf(", %" PRIu64 " back-end reconnect(s)", d->d.reconnects);
		printf("\n");
		table_left(t, 1);
		table_row(t, net ? net_head : head);
		for (uint32_t q = 0; q < d->d.nr_queues; q++) {
			char c[10][48];
			const char *cells[10];

			queue_cells(d, &d->queues[q], c);
			for (unsigned int k = 0; k < 10; k++)
				cells[k] = c[k];
			table_row(t, cells);
		}
		table_print(t, stdout);
		table_free(t);
	}
}

/* One queue's counters in JSON, by the device's kind. */
static void json_counters(const struct l0_dev *d, const struct bk_ctl_l0queue *w)
{
	if (is_net(d))
		printf(",\"rx_frames\":%" PRIu64 ",\"rx_bytes\":%" PRIu64 ",\"tx_frames\":%" PRIu64
		       ",\"tx_bytes\":%" PRIu64 ",\"rx_drops\":%" PRIu64 ",\"tx_waits\":%" PRIu64
		       ",\"tx_csum_sw\":%" PRIu64 ",\"tx_pages\":%" PRIu64,
		       w->rx_frames, w->rx_bytes, w->tx_frames, w->tx_bytes, w->rx_drops,
		       w->tx_waits, w->tx_csum_sw, w->tx_pages);
	else
		printf(",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64 ",\"flushes\":%" PRIu64
		       ",\"discards\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"bytes_read\":%" PRIu64
		       ",\"bytes_written\":%" PRIu64 ",\"inflight\":%" PRIu64,
		       w->reads, w->writes, w->flushes, w->discards, w->errors, w->bytes_read,
		       w->bytes_written, w->inflight);
}

/* A virtio-net port's keys after "irq", and its users. */
static void json_net(const struct l0_dev *d)
{
	char mac[24];

	fmt_mac(d->d.mac, mac, sizeof(mac));
	printf(",\"mac\":");
	json_string(stdout, mac);
	printf(",\"link_up\":%s,\"features\":%" PRIu64 ",\"connected\":%s,\"reconnects\":%" PRIu64
	       ",\"users\":[",
	       d->d.flags & BK_CTL_L0_LINK_UP ? "true" : "false", d->d.features,
	       d->d.flags & BK_CTL_L0_CONNECTED ? "true" : "false", d->d.reconnects);
	for (uint32_t u = 0; u < d->d.nr_users; u++) {
		printf("%s{\"owner\":", u ? "," : "");
		json_string(stdout, d->users[u].owner);
		printf("}");
	}
}

/* A virtio-blk device's keys after "irq", and its users. */
static void json_blk(const struct l0_dev *d)
{
	printf(",\"capacity\":%" PRIu64 ",\"block_size\":%u,\"features\":%" PRIu64
	       ",\"flush\":%s,\"discard\":%s,\"write_zeroes\":%s,\"readonly\":%s,"
	       "\"connected\":%s,\"lost_interrupts\":%" PRIu64 ",\"reconnects\":%" PRIu64
	       ",\"users\":[",
	       d->d.capacity, d->d.block_size, d->d.features,
	       d->d.flags & BK_CTL_L0_FLUSH ? "true" : "false",
	       d->d.flags & BK_CTL_L0_DISCARD ? "true" : "false",
	       d->d.flags & BK_CTL_L0_WRITE_ZEROES ? "true" : "false",
	       d->d.flags & BK_CTL_L0_READONLY ? "true" : "false",
	       d->d.flags & BK_CTL_L0_CONNECTED ? "true" : "false", d->d.lost_interrupts,
	       d->d.reconnects);
	for (uint32_t u = 0; u < d->d.nr_users; u++) {
		printf("%s{\"owner\":", u ? "," : "");
		json_string(stdout, d->users[u].owner);
		printf(",\"offset\":%" PRIu64 ",\"size\":%" PRIu64 "}", d->users[u].offset,
		       d->users[u].size);
	}
}

void l0_json(const struct l0_sample *s, bool counters)
{
	printf("\"l0_devices\":[");
	for (unsigned int i = 0; i < s->nr; i++) {
		const struct l0_dev *d = &s->dev[i];

		printf("%s{\"kind\":", i ? "," : "");
		json_string(stdout, d->d.kind);
		printf(",\"name\":");
		json_string(stdout, d->d.name);
		printf(",\"transport\":");
		json_string(stdout, d->d.transport);
		printf(",\"dma_mode\":");
		json_string(stdout, d->d.dma_mode);
		printf(",\"dma_why\":");
		json_string(stdout, d->d.dma_why);
		printf(",\"irq\":");
		json_string(stdout, d->d.irq);
		if (is_net(d))
			json_net(d);
		else
			json_blk(d);
		/* "index", not "queue": scripts that sum guest devices' queues match on that. */
		printf("],\"queues\":[");
		for (uint32_t q = 0; q < d->d.nr_queues; q++) {
			const struct bk_ctl_l0queue *w = &d->queues[q];

			printf("%s{\"index\":%u,\"size\":%u,\"owner\":", q ? "," : "", w->index,
			       w->size);
			json_string(stdout, w->owner);
			if (counters)
				json_counters(d, w);
			printf("}");
		}
		printf("]}");
	}
	printf("]");
}
