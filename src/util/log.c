// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

static int log_level = BK_LOG_INFO;
static int log_prefix = -1;

void bk_log_set_level(int level)
{
	log_level = level;
}

int bk_log_get_level(void)
{
	return log_level;
}

void bk_log_set_prefix(int mode)
{
	log_prefix = mode;
}

int bk_log_level_from_string(const char *s)
{
	static const char *const names[] = { [BK_LOG_ERR] = "err",   [BK_LOG_WARNING] = "warning",
					     [BK_LOG_NOTICE] = "notice", [BK_LOG_INFO] = "info",
					     [BK_LOG_DEBUG] = "debug" };

	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i] && strcasecmp(s, names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "error") == 0)
		return BK_LOG_ERR;
	if (strcasecmp(s, "warn") == 0)
		return BK_LOG_WARNING;
	return -EINVAL;
}

static bool want_prefix(void)
{
	if (log_prefix < 0)
		log_prefix = getenv("JOURNAL_STREAM") ? 1 : 0;
	return log_prefix;
}

char *bk_printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static _printf_(2, 0) void log_va(int prio, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	if (prio > log_level)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	/* Strip trailing newlines: one message, one line. */
	n = (int)strnlen(buf, sizeof(buf));
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	/* Whatever slipped through a caller: a newline inside would start a forged line. */
	bk_printable(buf, buf, sizeof(buf));
	if (want_prefix())
		fprintf(stderr, "<%d>%s\n", prio, buf);
	else
		fprintf(stderr, "blanketd: %s\n", buf);
}

void bk_log(int prio, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_va(prio, fmt, ap);
	va_end(ap);
	errno = saved;
}

int bk_log_errno(int prio, int err, const char *fmt, ...)
{
	va_list ap;

	if (err < 0)
		err = -err;
	errno = err;
	va_start(ap, fmt);
	log_va(prio, fmt, ap);
	va_end(ap);
	errno = err;
	return -err;
}

uint64_t bk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

bool bk_ratelimit_ok(struct bk_ratelimit *rl)
{
	uint64_t now = bk_now_ns();

	if (rl->interval_ns == 0 || rl->burst == 0)
		return true;
	if (rl->begin_ns == 0 || now - rl->begin_ns >= rl->interval_ns) {
		if (rl->missed)
			bk_log(BK_LOG_WARNING, "%u similar messages suppressed", rl->missed);
		rl->begin_ns = now;
		rl->count = 0;
		rl->missed = 0;
	}
	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	rl->missed++;
	return false;
}
