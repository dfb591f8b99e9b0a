// SPDX-License-Identifier: MIT
/*
 * The simulated xenstore's node tree: nodes, path validation, lookups, deep copies (the
 * snapshot a transaction works on) and xenstored's permission rule.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "util/macros.h"

struct xs_node *xs_node_new(struct xs_node *parent, const char *name, size_t name_len,
			    const struct bk_xs_perm *perms, unsigned int nr_perms)
{
	struct xs_node *n;

	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	list_init(&n->children);
	list_init(&n->sibling);
	n->name = strndup(name, name_len);
	n->value = strdup("");
	n->perms = malloc(nr_perms * sizeof(*perms));
	if (!n->name || !n->value || !n->perms) {
		free(n->name);
		free(n->value);
		free(n->perms);
		free(n);
		return NULL;
	}
	memcpy(n->perms, perms, nr_perms * sizeof(*perms));
	n->nr_perms = nr_perms;
	if (parent) {
		n->parent = parent;
		list_add_tail(&n->sibling, &parent->children);
	}
	return n;
}

void xs_node_free(struct xs_node *n)
{
	if (!n)
		return;
	while (!list_empty(&n->children))
		xs_node_free(list_first_entry(&n->children, struct xs_node, sibling));
	list_del(&n->sibling);
	free(n->name);
	free(n->value);
	free(n->perms);
	free(n);
}

static struct xs_node *node_copy(const struct xs_node *src, struct xs_node *parent)
{
	const struct xs_node *c;
	struct xs_node *n;

	n = xs_node_new(parent, src->name, strlen(src->name), src->perms, src->nr_perms);
	if (!n)
		return NULL;
	if (xs_node_set_value(n, src->value, src->len) < 0)
		goto fail;
	list_for_each_entry (c, &src->children, sibling)
		if (!node_copy(c, n))
			goto fail;
	return n;
fail:
	xs_node_free(n);
	return NULL;
}

struct xs_node *xs_tree_copy(const struct xs_node *root)
{
	return node_copy(root, NULL);
}

unsigned int xs_tree_count(const struct xs_node *root)
{
	const struct xs_node *c;
	unsigned int n = 1;

	if (!root)
		return 0;
	list_for_each_entry (c, &root->children, sibling)
		n += xs_tree_count(c);
	return n;
}

static struct xs_node *child_find(struct xs_node *n, const char *name, size_t len)
{
	struct xs_node *c;

	list_for_each_entry (c, &n->children, sibling)
		if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

struct xs_node *xs_lookup_prefix(struct xs_node *root, const char *path, const char **ret_rest)
{
	struct xs_node *n = root;
	const char *p = path;

	while (*p == '/')
		p++;
	while (*p) {
		size_t len = strcspn(p, "/");
		struct xs_node *c = child_find(n, p, len);

		if (!c)
			break;
		n = c;
		p += len;
		while (*p == '/')
			p++;
	}
	*ret_rest = p;
	return n;
}

struct xs_node *xs_lookup(struct xs_node *root, const char *path)
{
	const char *rest;
	struct xs_node *n = xs_lookup_prefix(root, path, &rest);

	return *rest ? NULL : n;
}

unsigned int xs_perm_of(const struct bk_xs_perm *perms, unsigned int nr, uint32_t domid)
{
	/* dom0 is privileged; the owner may do anything; then a specific entry; then default. */
	if (domid == 0 || perms[0].domid == domid)
		return BK_XS_PERM_BOTH;
	for (unsigned int i = 1; i < nr; i++)
		if (perms[i].domid == domid)
			return perms[i].perms & BK_XS_PERM_BOTH;
	return perms[0].perms & BK_XS_PERM_BOTH;
}

int xs_node_set_value(struct xs_node *n, const void *val, size_t len)
{
	char *v = malloc(len + 1);

	if (!v)
		return -ENOMEM;
	if (len)
		memcpy(v, val, len);
	v[len] = '\0';
	free(n->value);
	n->value = v;
	n->len = len;
	return 0;
}

int xs_node_set_perms(struct xs_node *n, const struct bk_xs_perm *perms, unsigned int nr)
{
	struct bk_xs_perm *p = malloc(nr * sizeof(*p));

	if (!p)
		return -ENOMEM;
	memcpy(p, perms, nr * sizeof(*p));
	free(n->perms);
	n->perms = p;
	n->nr_perms = nr;
	return 0;
}

static bool path_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '@' || c == '/';
}

int xs_path_canon(const char *path, uint32_t domid, bool allow_special, char **ret)
{
	char *abs;
	size_t len;

	if (!path || !*path)
		return -EINVAL;
	if (path[0] == '@') {
		/* Special watch paths (@introduceDomain, @releaseDomain): accepted, never fired. */
		if (!allow_special || strchr(path, '/'))
			return -EINVAL;
		abs = strdup(path);
	} else if (path[0] == '/') {
		abs = strdup(path);
	} else if (asprintf(&abs, "/local/domain/%u/%s", domid, path) < 0) {
		abs = NULL;
	}
	if (!abs)
		return -ENOMEM;
	len = strlen(abs);
	if (len > SIM_XS_PATH_MAX)
		goto invalid;
	for (size_t i = 0; i < len; i++)
		if (!path_char_ok(abs[i]))
			goto invalid;
	if (abs[0] == '/' &&
	    (strstr(abs, "//") || (len > 1 && abs[len - 1] == '/') || strchr(abs, '@')))
		goto invalid;
	*ret = abs;
	return 0;
invalid:
	free(abs);
	return -EINVAL;
}

bool xs_path_is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}
