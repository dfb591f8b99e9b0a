// SPDX-License-Identifier: MIT
/* The generic test frontend: xenstore as the guest, waits by pumping the daemon's loop. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"

int bk_test_pump_until(struct bk_loop *loop, bool (*cond)(void *data), void *data,
		       unsigned int max_iters)
{
	if (max_iters == 0)
		max_iters = BK_XBF_WAIT_ITERS;
	for (unsigned int i = 0; i < max_iters; i++) {
		if (cond(data))
			return 0;
		bk_loop_run_once(loop, BK_XBF_TICK_MS);
	}
	return cond(data) ? 0 : -ETIMEDOUT;
}

int bk_xbf_open(struct bk_sim *sim, struct bk_loop *loop, uint32_t domid, const char *path,
		struct bk_xbfront **ret)
{
	struct bk_xbfront *f;
	int r;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->sim = sim;
	f->loop = loop;
	f->domid = domid;
	f->path = strdup(path);
	if (!f->path) {
		r = -ENOMEM;
		goto fail;
	}
	r = bk_sim_platform(sim, domid, &f->xen);
	if (r < 0)
		goto fail;
	r = bk_xs_open(f->xen, &f->xs);
	if (r < 0)
		goto fail;
	r = bk_xs_read_str(f->xs, BK_XS_NULL, f->path, "backend", &f->be_path);
	if (r < 0)
		goto fail;
	r = bk_xs_read_u32(f->xs, BK_XS_NULL, f->path, "backend-id", &f->be_domid);
	if (r < 0)
		goto fail;
	*ret = f;
	return 0;
fail:
	bk_xbf_close(f);
	return r;
}

void bk_xbf_close(struct bk_xbfront *f)
{
	if (!f)
		return;
	bk_xs_close(f->xs);
	bk_xen_free(f->xen);
	free(f->path);
	free(f->be_path);
	free(f);
}

int bk_xbf_write(struct bk_xbfront *f, const char *key, const char *fmt, ...)
{
	_cleanup_free_ char *val = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&val, fmt, ap);
	va_end(ap);
	if (n < 0) {
		val = NULL;
		return -ENOMEM;
	}
	return bk_xbf_write_raw(f, key, val, (size_t)n);
}

int bk_xbf_write_raw(struct bk_xbfront *f, const char *key, const void *val, size_t len)
{
	_cleanup_free_ char *p = NULL;

	if (asprintf(&p, "%s/%s", f->path, key) < 0) {
		p = NULL;
		return -ENOMEM;
	}
	return bk_xs_write(f->xs, BK_XS_NULL, p, val, len);
}

int bk_xbf_rm(struct bk_xbfront *f, const char *key)
{
	_cleanup_free_ char *p = NULL;

	if (asprintf(&p, "%s/%s", f->path, key) < 0) {
		p = NULL;
		return -ENOMEM;
	}
	return bk_xs_rm(f->xs, BK_XS_NULL, p);
}

int bk_xbf_read(struct bk_xbfront *f, const char *key, char **ret)
{
	return bk_xs_read_str(f->xs, BK_XS_NULL, f->path, key, ret);
}

int bk_xbf_read_be(struct bk_xbfront *f, const char *key, char **ret)
{
	return bk_xs_read_str(f->xs, BK_XS_NULL, f->be_path, key, ret);
}

int bk_xbf_read_be_u32(struct bk_xbfront *f, const char *key, uint32_t *ret)
{
	return bk_xs_read_u32(f->xs, BK_XS_NULL, f->be_path, key, ret);
}

int bk_xbf_set_state(struct bk_xbfront *f, unsigned int state)
{
	return bk_xbf_write(f, "state", "%u", state);
}

int bk_xbf_be_state(struct bk_xbfront *f, unsigned int *ret)
{
	uint32_t v;
	int r = bk_xbf_read_be_u32(f, "state", &v);

	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

struct state_wait {
	struct bk_xbfront *f;
	unsigned int state;
};

static bool be_state_is(void *data)
{
	struct state_wait *w = data;
	unsigned int s;

	return bk_xbf_be_state(w->f, &s) == 0 && s == w->state;
}

int bk_xbf_wait_be_state(struct bk_xbfront *f, unsigned int state, unsigned int max_iters)
{
	struct state_wait w = { .f = f, .state = state };

	return bk_test_pump_until(f->loop, be_state_is, &w, max_iters);
}

void bk_xbf_pump(struct bk_xbfront *f, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		bk_loop_run_once(f->loop, BK_XBF_TICK_MS);
}
