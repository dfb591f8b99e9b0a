/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by every module: cleanup attributes, container_of, barriers.
 */
#ifndef BK_UTIL_MACROS_H
#define BK_UTIL_MACROS_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _warn_unused_ __attribute__((warn_unused_result))

#define BK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BK_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BK_DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))

/* Shared-memory access: a single, untorn load or store the compiler may not repeat or merge. */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define bk_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define bk_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define bk_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand a pointer out of a _cleanup_ scope. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _tp = (p);                                                           \
		(p) = NULL;                                                                        \
		_tp;                                                                               \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _tf = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_tf;                                                                               \
	})

/* -errno of the last libc failure, never 0. */
static inline int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#endif
