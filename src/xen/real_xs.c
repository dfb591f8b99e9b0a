// SPDX-License-Identifier: MIT
/*
 * Xenstore over libxenstore: one xs_open(0) connection per bk_xs, its watch pipe as the
 * pollable fd, and the library's NULL/false + errno results turned into -errno.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "real_internal.h"
#include "util/macros.h"

static struct xs_handle *xsh(struct bk_xs *xs)
{
	return container_of(xs, struct real_xs, base)->h;
}

int real_xs_open(struct bk_xen *x, struct bk_xs **ret)
{
	struct real_xs *rx;
	int r;

	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->base.h.xen = x;
	/* Socket to a local xenstored if there is one, else the kernel's xenbus device. */
	rx->h = xs_open(0);
	if (!rx->h) {
		r = real_errno();
		free(rx);
		return r;
	}
	/*
	 * Create the watch pipe now, so the fd is stable from the start: the library writes one
	 * byte when its queue of fired watches goes from empty to non-empty and reads it back
	 * when the queue is drained by xs_check_watch().
	 */
	rx->fd = xs_fileno(rx->h);
	if (rx->fd < 0) {
		r = real_errno();
		xs_close(rx->h);
		free(rx);
		return r;
	}
	real_handle_get(x);
	*ret = &rx->base;
	return 0;
}

void real_xs_close(struct bk_xs *xs)
{
	struct real_xs *rx;

	if (!xs)
		return;
	rx = container_of(xs, struct real_xs, base);
	xs_close(rx->h); /* also stops the library's reader thread and closes the pipe */
	real_handle_put(rx->base.h.xen);
	free(rx);
}

int real_xs_fd(struct bk_xs *xs)
{
	return container_of(xs, struct real_xs, base)->fd;
}

int real_xs_read(struct bk_xs *xs, uint32_t t, const char *path, char **ret_val, size_t *ret_len)
{
	unsigned int len = 0;
	char *v;

	v = xs_read(xsh(xs), t, path, &len);
	if (!v)
		return real_errno();
	/* libxenstore appends a NUL past the @len bytes of the value. */
	*ret_val = v;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int real_xs_write(struct bk_xs *xs, uint32_t t, const char *path, const void *val, size_t len)
{
	if (len > UINT_MAX)
		return -E2BIG;
	if (!xs_write(xsh(xs), t, path, len ? val : "", (unsigned int)len))
		return real_errno();
	return 0;
}

int real_xs_mkdir(struct bk_xs *xs, uint32_t t, const char *path)
{
	if (!xs_mkdir(xsh(xs), t, path))
		return real_errno();
	return 0;
}

int real_xs_rm(struct bk_xs *xs, uint32_t t, const char *path)
{
	unsigned int len;
	char *v;

	/*
	 * xenstored answers RM of a missing node with success when its parent exists; the ops
	 * contract (and the simulation) say -ENOENT. Probe first, in the same transaction.
	 * Outside a transaction the probe can race with another writer, which only matters for
	 * the return code: the node is gone either way.
	 */
	v = xs_read(xsh(xs), t, path, &len);
	if (!v && errno == ENOENT)
		return -ENOENT;
	free(v);
	if (!xs_rm(xsh(xs), t, path))
		return real_errno();
	return 0;
}

int real_xs_directory(struct bk_xs *xs, uint32_t t, const char *path, char ***ret_names,
		      unsigned int *ret_n)
{
	unsigned int n = 0;
	size_t bytes = 0;
	char **names, **out;
	char *p;
	int r;

	names = xs_directory(xsh(xs), t, path, &n);
	if (!names)
		return real_errno();
	/* Repack into our own single allocation: pointer array, then the strings. */
	for (unsigned int i = 0; i < n; i++)
		bytes += strlen(names[i]) + 1;
	out = malloc(BK_MAX((size_t)n * sizeof(char *) + bytes, (size_t)1));
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	p = (char *)(out + n);
	for (unsigned int i = 0; i < n; i++) {
		size_t l = strlen(names[i]) + 1;

		memcpy(p, names[i], l);
		out[i] = p;
		p += l;
	}
	*ret_names = out;
	*ret_n = n;
	r = 0;
out:
	free(names);
	return r;
}

int real_xs_get_perms(struct bk_xs *xs, uint32_t t, const char *path, struct bk_xs_perm **ret_perms,
		      unsigned int *ret_n)
{
	struct xs_permissions *p;
	struct bk_xs_perm *out;
	unsigned int n = 0;

	p = xs_get_permissions(xsh(xs), t, path, &n);
	if (!p)
		return real_errno();
	out = calloc(BK_MAX(n, 1U), sizeof(*out));
	if (!out) {
		free(p);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		out[i].domid = p[i].id;
		/* Only read/write: the library's OWNER/ENOENT_OK/IGNORE bits are not ACL bits. */
		out[i].perms = p[i].perms & (XS_PERM_READ | XS_PERM_WRITE);
	}
	free(p);
	*ret_perms = out;
	*ret_n = n;
	return 0;
}

int real_xs_set_perms(struct bk_xs *xs, uint32_t t, const char *path,
		      const struct bk_xs_perm *perms, unsigned int n)
{
	_cleanup_free_ struct xs_permissions *p = NULL;

	_Static_assert(BK_XS_PERM_READ == XS_PERM_READ && BK_XS_PERM_WRITE == XS_PERM_WRITE,
		       "permission bits match xenstore_lib.h");
	if (n == 0)
		return -EINVAL;
	p = calloc(n, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		if (perms[i].perms & ~(uint32_t)BK_XS_PERM_BOTH ||
		    perms[i].domid >= REAL_DOMID_LIMIT)
			return -EINVAL;
		p[i].id = perms[i].domid;
		p[i].perms = perms[i].perms;
	}
	if (!xs_set_permissions(xsh(xs), t, path, p, n))
		return real_errno();
	return 0;
}

int real_xs_watch(struct bk_xs *xs, const char *path, const char *token)
{
	/* The first watch starts libxenstore's reader thread (all signals blocked in it). */
	if (!xs_watch(xsh(xs), path, token))
		return real_errno();
	return 0;
}

int real_xs_unwatch(struct bk_xs *xs, const char *path, const char *token)
{
	if (!xs_unwatch(xsh(xs), path, token))
		return real_errno();
	return 0;
}

int real_xs_read_watch(struct bk_xs *xs, char **ret_path, char **ret_token)
{
	char **w, *path, *token;

	/*
	 * Non-blocking: NULL with EAGAIN when the queue is empty. The pipe holds one byte for a
	 * whole non-empty queue, so callers loop here until -EAGAIN after each readable fd.
	 */
	errno = 0;
	w = xs_check_watch(xsh(xs));
	if (!w)
		return real_errno();
	path = strdup(w[XS_WATCH_PATH]);
	token = strdup(w[XS_WATCH_TOKEN]);
	free(w);
	if (!path || !token) {
		free(path);
		free(token);
		return -ENOMEM;
	}
	*ret_path = path;
	*ret_token = token;
	return 0;
}

int real_xs_transaction_start(struct bk_xs *xs, uint32_t *ret_t)
{
	xs_transaction_t t;

	errno = 0;
	t = xs_transaction_start(xsh(xs));
	if (t == XBT_NULL)
		return real_errno();
	*ret_t = t;
	return 0;
}

int real_xs_transaction_end(struct bk_xs *xs, uint32_t t, bool abort)
{
	/* EAGAIN: another writer touched what we read; the caller restarts the transaction. */
	if (!xs_transaction_end(xsh(xs), t, abort))
		return real_errno();
	return 0;
}
