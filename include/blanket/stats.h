/* SPDX-License-Identifier: MIT */
/*
 * Per-queue device counters, shared by the daemon (which fills them) and blanketctl and outside
 * tools (which read them over the control socket). Plain fixed-width integers: this layout is
 * part of the versioned control protocol (include/blanket/ctl.h); new fields go at the end.
 */
#ifndef BLANKET_STATS_H
#define BLANKET_STATS_H

#include <stdint.h>

enum bk_req_type {
	BK_REQ_READ = 0,
	BK_REQ_WRITE = 1,
	BK_REQ_FLUSH = 2,
	BK_REQ_BARRIER = 3,
	BK_REQ_DISCARD = 4,
	BK_REQ_INDIRECT = 5, /* counted in addition to the READ/WRITE inside */
	BK_REQ_OTHER = 6,    /* unknown operations (answered with an error) */
	BK_REQ__MAX = 7,
};

/*
 * Latency histogram, log-linear: 4 buckets per power of two of nanoseconds. Bucket i covers
 * [bk_lat_lower(i), bk_lat_lower(i + 1)). 160 buckets reach 2^40 ns (about 18 minutes).
 */
#define BK_LAT_BUCKETS 160

struct bk_queue_stats {
	uint64_t reqs[BK_REQ__MAX];
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t errors;     /* responses other than OKAY */
	uint64_t inflight;   /* gauge: requests taken from the ring and not yet answered */
	uint64_t ring_full;  /* times the queue stopped consuming: no buffers / engine full */
	uint64_t notify_in;  /* event channel notifications from the guest */
	uint64_t notify_out; /* notifications sent to the guest */
	uint64_t spurious;   /* notifications that found no new request */
	uint64_t lat_hist[BK_LAT_BUCKETS];
	/*
	 * vif (netif) queues only, zero for other kinds. TX is guest -> dom0 (frames written to
	 * the TAP), RX is dom0 -> guest. Drops by cause; ring_full above counts the times RX
	 * waited for the guest to post buffers. A full RX backlog stops reading the TAP (the
	 * kernel's queue then drops, as a stopped netdev queue does for netback). For a vif,
	 * inflight above is the number of frames held in the RX backlog.
	 */
	uint64_t net_tx_packets;
	uint64_t net_tx_bytes;
	uint64_t net_rx_packets;
	uint64_t net_rx_bytes;
	uint64_t net_tx_drop_slots;   /* netback's slot rules: answered ERROR */
	uint64_t net_tx_drop_copy;    /* a grant copy from the guest failed */
	uint64_t net_tx_drop_offload; /* checksum/GSO offload on headers we cannot parse */
	uint64_t net_tx_drop_tap;     /* the TAP refused the frame or was full */
	uint64_t net_rx_drop_expired; /* waited too long for guest buffers */
	uint64_t net_rx_drop_offload; /* offload the frontend cannot take, unfixable */
	uint64_t net_rx_drop_copy;    /* a grant copy to the guest failed */
	uint64_t net_tx_csum;	      /* partial checksums handed on, guest -> TAP */
	uint64_t net_tx_gso;
	uint64_t net_rx_csum;	      /* partial checksums handed to the guest */
	uint64_t net_rx_gso;
	uint64_t net_csum_fixup; /* GSO frames without csum_blank: pseudo-header rewritten */
	uint64_t net_csum_sw;	 /* checksums finished in software for the guest */
	uint64_t throttled;    /* times the device's rate limit held this queue back */
	uint64_t throttled_ns; /* time it was held back (requests waiting on the ring) */
};

static inline unsigned int bk_lat_bucket(uint64_t ns)
{
	unsigned int msb, sub;

	if (ns < 4)
		return (unsigned int)ns;
	msb = 63U - (unsigned int)__builtin_clzll(ns);
	sub = (unsigned int)(ns >> (msb - 2)) & 3U;
	if (msb * 4 + sub >= BK_LAT_BUCKETS)
		return BK_LAT_BUCKETS - 1;
	return msb * 4 + sub - 4;
}

/* Smallest latency (ns) that lands in bucket @i. */
static inline uint64_t bk_lat_lower(unsigned int i)
{
	unsigned int msb, sub;

	if (i < 4)
		return i;
	msb = (i + 4) / 4;
	sub = (i + 4) % 4;
	return ((uint64_t)(4 + sub)) << (msb - 2);
}

/* Latency (ns, bucket upper bound) below which @permille of the samples lie; 0 if empty. */
static inline uint64_t bk_lat_percentile(const uint64_t *hist, unsigned int permille)
{
	uint64_t total = 0, want, seen = 0;

	for (unsigned int i = 0; i < BK_LAT_BUCKETS; i++)
		total += hist[i];
	if (!total)
		return 0;
	want = (total * permille + 999) / 1000;
	if (want == 0)
		want = 1;
	for (unsigned int i = 0; i < BK_LAT_BUCKETS; i++) {
		seen += hist[i];
		if (seen >= want)
			return i + 1 < BK_LAT_BUCKETS ? bk_lat_lower(i + 1) : bk_lat_lower(i);
	}
	return bk_lat_lower(BK_LAT_BUCKETS - 1);
}

#endif
