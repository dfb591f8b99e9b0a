/* SPDX-License-Identifier: MIT */
/* blanketctl: shared command context. */
#ifndef BLANKETCTL_H
#define BLANKETCTL_H

#include <stdbool.h>
#include <stdint.h>

/* Exit codes: LSB-style for status; 2 for usage errors everywhere. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1, /* status: degraded */
	EXIT_USAGE = 2,
	EXIT_NOT_RUNNING = 3,
	EXIT_UNKNOWN = 4, /* status: could not tell */
};

struct ctl_opts {
	const char *socket;
	bool json;
	unsigned int watch; /* seconds, 0: once */
	unsigned int count; /* samples in watch mode, 0: until interrupted */
	bool have_device;
	char kind[8]; /* "" = any */
	uint32_t domid;
	uint32_t devid;
};

/* Connect or explain why not; returns fd or the exit code negated. */
int ctl_open(const struct ctl_opts *o);
int cmd_stats(const struct ctl_opts *o);
struct bk_ctl_device;
/* Fetch LIST into *@ret (free it); the number of devices, or -1 (said on stderr). */
int fetch_list(int fd, struct bk_ctl_device **ret);

#endif
