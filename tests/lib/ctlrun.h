/* SPDX-License-Identifier: MIT */
/*
 * Run blanketctl against an in-process daemon's control socket: the daemon's loop keeps
 * turning while the child runs (it would otherwise never answer), and the output is captured.
 */
#ifndef BK_TEST_CTLRUN_H
#define BK_TEST_CTLRUN_H

#include <stddef.h>
#include <stdint.h>

struct bk_core;
struct bk_loop;
struct bk_service;

enum {
	BK_CTLRUN_STDERR = 1 << 0, /* capture stderr as well as stdout */
};

/*
 * Run `@blanketctl -s @sock @args...` (@args NULL-terminated, at most 12) while turning @loop,
 * for at most about a minute; its output, NUL-terminated, in @out of @size bytes. The exit
 * status, or -1 if it did not exit normally (killed once the time is up).
 */
int bk_ctlrun(struct bk_loop *loop, const char *blanketctl, const char *sock,
	      const char *const *args, unsigned int flags, char *out, size_t size);

/*
 * Start the control service of @core (turned by @loop) on "@dir/control", its path in @sock
 * (@len bytes); free it with bk_service_free(). 0 or -errno.
 */
int bk_ctlrun_service(struct bk_loop *loop, struct bk_core *core, const char *dir, char *sock,
		      size_t len, struct bk_service **ret);

/* The number after "@key": in the JSON text that starts at @from (may be NULL), or UINT64_MAX. */
uint64_t bk_ctlrun_json_u64(const char *from, const char *key);

#endif
