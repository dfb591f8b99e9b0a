// SPDX-License-Identifier: MIT
/* The simulated machine for blkif tests (see blkfront.h): sim, loop, core, toolstack, files. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blanket/stats.h"
#include "blkfront.h"
#include "blkif/blkif.h"
#include "device.h"
#include "engine.h"
#include "loop.h"
#include "toolstack.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"
#include "xenbus_front.h"
/* ------------------------------------------------------------------------------------------ */
/* The machine. */

bool bk_bf_engines_missing(const char *first, ...)
{
	bool missing = false;
	const char *name;
	va_list ap;

	va_start(ap, first);
	for (name = first; name; name = va_arg(ap, const char *)) {
		if (!bk_engine_find(name)) {
			printf("engine %s not built: skip\n", name);
			missing = true;
		}
	}
	va_end(ap);
	return missing;
}

int bk_bf_env_new(struct bk_bf_env *env)
{
	static const struct bk_backend_ops *const kinds[] = { &blkif_backend_ops, NULL };

	return bk_bf_env_new_kinds(env, kinds);
}

int bk_bf_env_new_kinds(struct bk_bf_env *env, const struct bk_backend_ops *const *kinds)
{
	return bk_bf_env_new_threads(env, kinds, 0);
}

int bk_bf_env_new_threads(struct bk_bf_env *env, const struct bk_backend_ops *const *kinds,
			  unsigned int io_threads)
{
	static const struct bk_backend_ops *const blkif_only[] = { &blkif_backend_ops, NULL };
	struct bk_core_params cp = { 0 };
	int r = 0;

	if (!kinds)
		kinds = blkif_only;

	memset(env, 0, sizeof(*env));
	if ((r = bk_sim_new(&env->sim)) < 0 || (r = bk_loop_new(&env->loop)) < 0 ||
	    (r = bk_sim_platform(env->sim, 0, &env->xen)) < 0)
		goto fail;
	cp.loop = env->loop;
	cp.xen = env->xen;
	cp.watch_coalesce_ms = 0;
	cp.io_threads = io_threads;
	if ((r = bk_core_new(&cp, &env->core)) < 0)
		goto fail;
	for (unsigned int i = 0; kinds[i]; i++)
		if ((r = bk_core_register(env->core, kinds[i])) < 0)
			goto fail;
	if ((r = bk_core_start(env->core)) < 0 ||
	    (r = bk_ts_new(env->sim, 0, env->loop, &env->ts)) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "bk_bf_env_new: %s\n", strerror(-r));
	bk_bf_env_free(env);
	return r;
}

static void stopped(void *data)
{
	*(bool *)data = true;
}

static bool flag_set(void *data)
{
	return *(bool *)data;
}

void bk_bf_env_free(struct bk_bf_env *env)
{
	if (env->core) {
		bool done = false;

		bk_core_stop(env->core, stopped, &done);
		bk_test_pump_until(env->loop, flag_set, &done, 0);
		bk_core_free(env->core);
	}
	bk_ts_free(env->ts);
	bk_xen_free(env->xen);
	bk_loop_free(env->loop);
	bk_sim_free(env->sim);
	memset(env, 0, sizeof(*env));
}

int bk_bf_env_guest(struct bk_bf_env *env, uint32_t domid, unsigned int nr_pages)
{
	return bk_sim_domain_create(env->sim, domid, nr_pages);
}

int bk_bf_env_add_vbd(struct bk_bf_env *env, uint32_t domid, uint32_t devid, const char *params,
		      const char *mode, const char *device_type, const char *const *extra_be)
{
	struct bk_ts_dev d = {
		.kind = "vbd",
		.domid = domid,
		.devid = devid,
		.params = params,
		.mode = mode,
		.device_type = device_type,
		.extra_be = extra_be,
	};

	return bk_ts_attach(env->ts, &d);
}

int bk_bf_tmpfile(const char *dir, uint64_t size, int fill, char *path, size_t len)
{
	static uint8_t buf[1 << 16];
	int fd;

	if (snprintf(path, len, "%s/blkif-test-XXXXXX", dir) >= (int)len)
		return -ENAMETOOLONG;
	fd = mkstemp(path);
	if (fd < 0)
		return neg_errno();
	memset(buf, fill, sizeof(buf));
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = (size_t)BK_MIN(size - off, (uint64_t)sizeof(buf));

		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			int r = neg_errno();

			close(fd);
			unlink(path);
			return r;
		}
	}
	return fd;
}

struct bk_blkfront *bk_bf_open_connect(struct bk_bf_env *env, uint32_t domid, uint32_t devid,
				       const struct bk_bf_params *p)
{
	struct bk_blkfront *f = NULL;

	if (bk_bf_open(env, domid, devid, p, &f) < 0)
		return NULL;
	if (bk_bf_connect(f) < 0) {
		bk_bf_close(f);
		return NULL;
	}
	return f;
}

unsigned int bk_bf_env_inflight(struct bk_bf_env *env, uint32_t domid, uint32_t devid)
{
	struct bk_device *dev = bk_core_find(env->core, "vbd", domid, devid);
	struct bk_queue_stats qs;
	int n;

	if (!dev)
		return 0;
	/* Its I/O thread, if any, holds still while we read. */
	bk_loop_lock(bk_device_loop(dev));
	n = dev->ops->get_stats(dev, &qs, 1);
	bk_loop_unlock(bk_device_loop(dev));
	return n < 1 ? 0 : (unsigned int)qs.inflight;
}
