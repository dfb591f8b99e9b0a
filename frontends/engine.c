// SPDX-License-Identifier: MIT
/* The engine registry, and helpers every engine shares. */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "engine-internal.h"
#include "util/log.h"
#include "util/macros.h"

/* The first entry is the default engine. */
static const struct bk_engine_ops *const engines[] = {
#if HAVE_LIBURING
	&bk_engine_uring_ops,
#endif
#if HAVE_LIBAIO
	&bk_engine_aio_ops,
#endif
	&bk_engine_null_ops,
	&bk_engine_fault_ops,
	&bk_engine_vblk_ops,
};

const struct bk_engine_ops *bk_engine_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(engines); i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const char *bk_engine_names(void)
{
	return ""
#if HAVE_LIBURING
	       "io_uring,"
#endif
#if HAVE_LIBAIO
	       "aio,"
#endif
	       "null,fault,virtio-blk";
}

int bk_engine_open(const char *name, struct bk_loop *loop, struct bk_store *store,
		   const struct bk_engine_params *p, struct bk_engine **ret)
{
	const struct bk_engine_ops *ops = bk_engine_find(name);

	if (!ops) {
		log_err("%s: unknown I/O engine '%s' (built: %s)",
			p && p->name ? p->name : "engine", name ? name : "(null)",
			bk_engine_names());
		return -ENOENT;
	}
	return ops->open(loop, store, p, ret);
}

struct bk_loop *bk_engine_loop_of(const char *name, const char *options)
{
	const struct bk_engine_ops *ops = bk_engine_find(name);

	return ops && ops->loop_of ? ops->loop_of(options) : NULL;
}

bool bk_io_resume_point(const struct bk_io *io, uint64_t done, unsigned int *ret_idx,
			size_t *ret_off)
{
	for (unsigned int i = 0; i < io->iovcnt; i++) {
		if (done < io->iov[i].iov_len) {
			*ret_idx = i;
			*ret_off = (size_t)done;
			return true;
		}
		done -= io->iov[i].iov_len;
	}
	return false;
}

bool bk_io_iov_contiguous(const struct bk_io *io)
{
	for (unsigned int i = 1; i < io->iovcnt; i++)
		if ((char *)io->iov[i - 1].iov_base + io->iov[i - 1].iov_len !=
		    (char *)io->iov[i].iov_base)
			return false;
	return true;
}

int bk_io_check(const struct bk_io *io)
{
	uint64_t sum = 0;

	switch (io->op) {
	case BK_IO_READ:
	case BK_IO_WRITE:
		if (!io->iovcnt || !io->iov || !io->len || io->len > BK_IO_MAX_LEN || !io->done)
			return -EINVAL;
		/* Completions report io->len: it must be what the iov holds. */
		for (unsigned int i = 0; i < io->iovcnt; i++)
			sum += io->iov[i].iov_len;
		return sum == io->len ? 0 : -EINVAL;
	case BK_IO_FLUSH:
	case BK_IO_DISCARD:
		return io->done ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}
