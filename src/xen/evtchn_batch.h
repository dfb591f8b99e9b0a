/* SPDX-License-Identifier: MIT */
/*
 * Batched reads and unmasks of an event-channel handle, shared by the real platform
 * (/dev/xen/evtchn, real_chan.c) and the simulation (sim_evtchn.c) so both behave the same.
 *
 * Reads: one read takes several pending ports, which evtchn_batch_pending then hands out one
 * at a time. A read takes at most as many ports as are bound through the handle, less those
 * handed out since the last -EAGAIN; once that many have been handed out, the next call says
 * -EAGAIN without reading, and so does the call after a read that returned fewer ports than
 * it asked for (the kernel's queue was empty then). A caller that takes, per callback, at least
 * as many ports as it bound (or stops at -EAGAIN) therefore never leaves a port read but not
 * handed out: whatever it did not take is still in the kernel's queue, and the fd still polls
 * readable.
 *
 * Unmasks: while ports of a batch are still to be handed out, the caller will come back for
 * them, so unmasks wait and go together in one write just before the batch's last port is
 * handed out. Any other unmask is written at once.
 */
#ifndef BK_XEN_EVTCHN_BATCH_H
#define BK_XEN_EVTCHN_BATCH_H

#include <stdbool.h>
#include <stdint.h>

/* Ports per read and unmasks per write at most (the kernel takes up to a page of either). */
#define EVTCHN_BATCH_MAX 64U

struct evtchn_batch;

struct evtchn_batch_ops {
	/*
	 * Read up to @max (>= 1) pending ports into @ports: their number (> 0), -EAGAIN when
	 * none, -EFBIG when events were lost (the queue reset, as evtchn_pending says), -errno.
	 */
	int (*read)(struct evtchn_batch *b, uint32_t *ports, unsigned int max);
	/* Unmask @n (>= 1) ports in one call: 0 or -errno. */
	int (*unmask)(struct evtchn_batch *b, const uint32_t *ports, unsigned int n);
};

struct evtchn_batch {
	const struct evtchn_batch_ops *ops;
	unsigned int nr_bound; /* ports bound through the handle */
	unsigned int taken;    /* ports handed out since the last -EAGAIN */
	unsigned int head;     /* next of ports[] to hand out */
	unsigned int len;      /* ports[] read and not handed out yet: [head, head + len) */
	unsigned int nr_unmask;
	bool emptied;	       /* the last read returned fewer than it asked: no read until -EAGAIN */
	uint32_t ports[EVTCHN_BATCH_MAX];
	uint32_t unmask[EVTCHN_BATCH_MAX]; /* unmasks waiting for the batch's last port */
};

void evtchn_batch_init(struct evtchn_batch *b, const struct evtchn_batch_ops *ops);
/* A port was bound through the handle. */
void evtchn_batch_bound(struct evtchn_batch *b);
/* @port was unbound: it is dropped from the ports to hand out and the unmasks waiting. */
void evtchn_batch_unbound(struct evtchn_batch *b, uint32_t port);
/* The ops' evtchn_pending, with the same results. */
int evtchn_batch_pending(struct evtchn_batch *b, uint32_t *ret_port);
/* The ops' evtchn_unmask for a port of the handle; an error of a delayed write shows later. */
int evtchn_batch_unmask(struct evtchn_batch *b, uint32_t port);

#endif
