/* SPDX-License-Identifier: MIT */
/*
 * Logging. Lines go to stderr; under systemd (JOURNAL_STREAM set, or --log-prefix) each line
 * starts with the sd-daemon priority prefix "<N>". Every message about a device names it
 * ("vbd 5/51712: ..."), and messages a guest can trigger go through a rate limit.
 */
#ifndef BK_UTIL_LOG_H
#define BK_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include "macros.h"

enum {
	BK_LOG_ERR = 3,
	BK_LOG_WARNING = 4,
	BK_LOG_NOTICE = 5,
	BK_LOG_INFO = 6,
	BK_LOG_DEBUG = 7,
};

/* Messages above this priority number are dropped. */
void bk_log_set_level(int level);
int bk_log_get_level(void);
/* Force (1) or suppress (0) the "<N>" prefix; -1 picks it from the environment. */
void bk_log_set_prefix(int mode);
/* Parse "err", "warning", "notice", "info", "debug" or a digit; -EINVAL if unknown. */
int bk_log_level_from_string(const char *s);

/*
 * Copy @s into @buf (@len > 0 bytes) for a log line or an xenstore error node: at most
 * @len - 1 bytes, each byte outside printable ASCII (control bytes, DEL, anything >= 0x80)
 * replaced by '?'. @buf may be @s. Returns @buf. Everything a guest wrote goes through it: a
 * newline followed by "<0>" would otherwise be an emergency line to journald.
 */
char *bk_printable(const char *s, char *buf, size_t len);

/*
 * Emit one line. Returns nothing; use bk_log_errno to log and return an error in one go. The
 * line is made printable (bk_printable) whatever the arguments held: one message, one line.
 */
void bk_log(int prio, const char *fmt, ...) _printf_(2, 3);
/* Log with errno = -err available as %m, and return -|err|. */
int bk_log_errno(int prio, int err, const char *fmt, ...) _printf_(3, 4);

#define log_err(...) bk_log(BK_LOG_ERR, __VA_ARGS__)
#define log_warn(...) bk_log(BK_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) bk_log(BK_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) bk_log(BK_LOG_INFO, __VA_ARGS__)
#define log_debug(...) bk_log(BK_LOG_DEBUG, __VA_ARGS__)
#define log_err_errno(err, ...) bk_log_errno(BK_LOG_ERR, err, __VA_ARGS__)
#define log_warn_errno(err, ...) bk_log_errno(BK_LOG_WARNING, err, __VA_ARGS__)

/*
 * Token-bucket style limit: at most @burst messages per @interval_ms. Suppressed messages are
 * counted and reported when the next window opens.
 */
struct bk_ratelimit {
	uint64_t interval_ns;
	uint64_t begin_ns;
	unsigned int burst;
	unsigned int count;
	unsigned int missed;
};

#define BK_RATELIMIT_INIT(ms, b) { .interval_ns = (uint64_t)(ms)*1000000ULL, .burst = (b) }

/* True if a message may be printed now. */
bool bk_ratelimit_ok(struct bk_ratelimit *rl);

/* Monotonic clock in nanoseconds. */
uint64_t bk_now_ns(void);

/*
 * Device-named logging. @name is the device's printable name ("vbd 5/51712"); the _rl variants
 * take a struct bk_ratelimit * and must be used for anything a guest can cause.
 */
#define bk_log_dev(prio, name, fmt, ...) bk_log(prio, "%s: " fmt, name, ##__VA_ARGS__)
#define bk_log_dev_rl(rl, prio, name, fmt, ...)                                                    \
	do {                                                                                       \
		if (bk_ratelimit_ok(rl))                                                           \
			bk_log(prio, "%s: " fmt, name, ##__VA_ARGS__);                             \
	} while (0)

#endif
