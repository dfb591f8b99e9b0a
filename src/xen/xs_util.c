// SPDX-License-Identifier: MIT
/* Convenience helpers over the xenstore ops: paths, strict number parsing, printf. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen.h"
#include "util/macros.h"

static char *join(const char *dir, const char *key)
{
	char *p;

	if (!key)
		return strdup(dir);
	if (asprintf(&p, "%s/%s", dir, key) < 0)
		return NULL;
	return p;
}

int bk_xs_read_str(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, char **ret)
{
	_cleanup_free_ char *path = join(dir, key);
	size_t len;
	char *val;
	int r;

	if (!path)
		return -ENOMEM;
	r = bk_xs_read(xs, t, path, &val, &len);
	if (r < 0)
		return r;
	if (strlen(val) != len) {
		/* An embedded NUL: never a valid value for the keys we parse. */
		free(val);
		return -EINVAL;
	}
	*ret = val;
	return 0;
}

int bk_parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 20)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		unsigned int d;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		d = (unsigned int)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int bk_xs_read_u64(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, uint64_t *ret)
{
	_cleanup_free_ char *val = NULL;
	uint64_t v;
	int r;

	r = bk_xs_read_str(xs, t, dir, key, &val);
	if (r < 0)
		return r;
	r = bk_parse_u64(val, &v);
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

int bk_xs_read_u32(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, uint32_t *ret)
{
	uint64_t v;
	int r;

	r = bk_xs_read_u64(xs, t, dir, key, &v);
	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

int bk_xs_vprintf(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, const char *fmt,
		  va_list ap)
{
	_cleanup_free_ char *path = join(dir, key);
	_cleanup_free_ char *val = NULL;
	int n;

	if (!path)
		return -ENOMEM;
	n = vasprintf(&val, fmt, ap);
	if (n < 0) {
		val = NULL;
		return -ENOMEM;
	}
	return bk_xs_write(xs, t, path, val, (size_t)n);
}

int bk_xs_printf(struct bk_xs *xs, uint32_t t, const char *dir, const char *key, const char *fmt,
		 ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = bk_xs_vprintf(xs, t, dir, key, fmt, ap);
	va_end(ap);
	return r;
}
