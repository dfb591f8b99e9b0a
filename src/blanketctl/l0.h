/* SPDX-License-Identifier: MIT */
/* blanketctl: the cloud's (L0) devices blanketd drives itself (the L0 request). */
#ifndef BLANKETCTL_L0_H
#define BLANKETCTL_L0_H

#include <stdbool.h>

#include "blanket/ctl.h"

struct l0_dev {
	struct bk_ctl_l0dev d; /* host order */
	struct bk_ctl_l0user *users;
	struct bk_ctl_l0queue *queues;
};

struct l0_sample {
	struct l0_dev *dev;
	unsigned int nr;
};

/* Ask over @fd; a daemon without the request gives 0 devices. -errno, said on stderr. */
int l0_fetch(int fd, struct l0_sample *ret);
void l0_free(struct l0_sample *s);
/* `list`: each device, its DMA mode and why, its users and who has which queue. */
void l0_print_list(const struct l0_sample *s);
/* `stats`: each device's per-queue counters. */
void l0_print_stats(const struct l0_sample *s);
/* "l0_devices":[...] (no braces around); per-queue counters with @counters. */
void l0_json(const struct l0_sample *s, bool counters);

#endif
