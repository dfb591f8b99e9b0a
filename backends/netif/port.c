// SPDX-License-Identifier: MIT
/*
 * The ports of a vif (port.h): the TAP, one multi-queue TAP per vif (frontends/tap.h); an L0
 * virtio-net device (frontends/virtio/net.h), a NIC over PCI or a vhost-user-net back-end; and
 * the choice between them from the vif's spec.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "netif/port.h"
#include "virtio/net.h"
#include "util/log.h"
#include "util/macros.h"

/* ------------------------------------------------------------------------------------------ */
/* The TAP. */

struct tap_port {
	struct netif_port p;
	struct bk_tap *tap; /* NULL when a reopen failed twice */
	struct bk_device *dev;
	char ifname[32];
};

static struct tap_port *to_tap(struct netif_port *p)
{
	return container_of(p, struct tap_port, p);
}

static void tap_close(struct netif_port *p, bool keep)
{
	struct tap_port *t;

	if (!p)
		return;
	t = to_tap(p);
	if (keep)
		bk_tap_close(t->tap);
	else
		bk_tap_remove(t->tap);
	free(t);
}

static const char *tap_name(struct netif_port *p)
{
	struct tap_port *t = to_tap(p);

	return t->tap ? bk_tap_name(t->tap) : t->ifname;
}

static void tap_caps(struct netif_port *p, struct netif_port_caps *ret)
{
	*ret = (struct netif_port_caps){ .gso_tcpv4 = true,
					 .gso_tcpv6 = true,
					 .max_queues = BK_TAP_MAX_QUEUES };
}

/* One TAP queue per ring: re-attach the persistent TAP with the negotiated count. */
static int tap_configure(struct netif_port *p, unsigned int nq, const struct netif_feat *feat)
{
	struct tap_port *t = to_tap(p);
	int r;

	if (!t->tap)
		return log_err_errno(-ENODEV, "%s: tap %s is gone", t->dev->name, t->ifname);
	if (bk_tap_nr_queues(t->tap) != nq) {
		bk_tap_close(t->tap); /* persistent: the interface stays */
		t->tap = NULL;
		r = bk_tap_open(t->ifname, nq, &t->tap);
		if (r < 0) {
			/* Get the interface back with one queue, so removal still finds it. */
			if (bk_tap_open(t->ifname, 1, &t->tap) < 0)
				t->tap = NULL;
			return log_err_errno(r, "%s: tap %s: attaching %u queues: %m", t->dev->name,
					     t->ifname, nq);
		}
	}
	r = bk_tap_set_offload(t->tap, netif_tun_offload(feat));
	if (r < 0)
		return log_err_errno(r, "%s: tap %s: setting offloads: %m", t->dev->name,
				     t->ifname);
	return 0;
}

static int tap_watch(struct netif_port *p, unsigned int q, struct bk_loop *loop,
		     unsigned int events, bk_fd_cb cb, void *data)
{
	struct tap_port *t = to_tap(p);

	return t->tap ? bk_tap_watch(t->tap, q, loop, events, cb, data) : -ENODEV;
}

static void tap_watch_events(struct netif_port *p, unsigned int q, unsigned int events)
{
	struct tap_port *t = to_tap(p);

	if (t->tap && q < bk_tap_nr_queues(t->tap))
		bk_tap_watch_events(t->tap, q, events);
}

/*
 * One io_uring submission for several reads where there is io_uring, readv one by one
 * otherwise (bk_tap_read_many(), bk_tap_read_batch()).
 */
static int tap_read(struct netif_port *p, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n)
{
	struct tap_port *t = to_tap(p);
	int r = n > 1 ? bk_tap_read_many(t->tap, q, pkts, n) : -EOPNOTSUPP;

	if (r == -EOPNOTSUPP) {
		for (unsigned int k = 0; k < n; k++)
			pkts[k].err = -EAGAIN;
		r = bk_tap_read_batch(t->tap, q, pkts, n);
		for (int k = 0; k < r; k++)
			pkts[k].err = 0;
	}
	return r;
}

static int tap_write(struct netif_port *p, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n)
{
	return bk_tap_write_batch(to_tap(p)->tap, q, pkts, n);
}

static int tap_set_carrier(struct netif_port *p, bool on)
{
	struct tap_port *t = to_tap(p);

	return t->tap ? bk_tap_set_carrier(t->tap, on) : -ENODEV;
}

static const struct netif_port_ops tap_ops = {
	.close = tap_close,
	.name = tap_name,
	.caps = tap_caps,
	.configure = tap_configure,
	.watch = tap_watch,
	.watch_events = tap_watch_events,
	.read = tap_read,
	.write = tap_write,
	.set_carrier = tap_set_carrier,
};

static int tap_open(struct bk_device *dev, const char *ifname, struct netif_port **ret)
{
	struct tap_port *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->p.ops = &tap_ops;
	t->p.kind = "tap";
	t->dev = dev;
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	r = bk_tap_open(ifname, 1, &t->tap);
	if (r < 0) {
		free(t);
		return r;
	}
	/* The interface must outlive a queue-count change at connect and a daemon restart. */
	r = bk_tap_set_persist(t->tap, true);
	if (r < 0) {
		bk_tap_remove(t->tap);
		free(t);
		return r;
	}
	t->p.reattached = bk_tap_reattached(t->tap);
	*ret = &t->p;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* An L0 virtio-net device: a NIC over PCI, or a vhost-user-net back-end. */

struct vnet_port {
	struct netif_port p;
	struct bk_vnet *v;
	struct bk_device *dev;
	char name[128];
};

static struct vnet_port *to_vnet(struct netif_port *p)
{
	return container_of(p, struct vnet_port, p);
}

static void vnet_close(struct netif_port *p, bool keep)
{
	if (!p)
		return;
	(void)keep; /* the device is reset and handed back either way */
	bk_vnet_close(to_vnet(p)->v);
	free(to_vnet(p));
}

static const char *vnet_name(struct netif_port *p)
{
	return to_vnet(p)->name;
}

/* Guest GSO only where the device segments it: netif would otherwise have to. */
static void vnet_caps(struct netif_port *p, struct netif_port_caps *ret)
{
	uint64_t f = bk_vnet_features(to_vnet(p)->v);
	bool csum = f & (1ULL << VIRTIO_NET_F_CSUM);

	*ret = (struct netif_port_caps){
		.gso_tcpv4 = csum && (f & (1ULL << VIRTIO_NET_F_HOST_TSO4)),
		.gso_tcpv6 = csum && (f & (1ULL << VIRTIO_NET_F_HOST_TSO6)),
		.max_queues = bk_vnet_max_pairs(to_vnet(p)->v),
	};
}

static int vnet_configure(struct netif_port *p, unsigned int nq, const struct netif_feat *feat)
{
	struct vnet_port *n = to_vnet(p);

	if (nq > bk_vnet_max_pairs(n->v))
		return log_err_errno(-EINVAL, "%s: %s has %u queue pair(s), the guest asks %u",
				     n->dev->name, n->name, bk_vnet_max_pairs(n->v), nq);
	return bk_vnet_start(n->v, nq, netif_tun_offload(feat));
}

static int vnet_watch(struct netif_port *p, unsigned int q, struct bk_loop *loop,
		      unsigned int events, bk_fd_cb cb, void *data)
{
	return bk_vnet_watch(to_vnet(p)->v, q, loop, events, cb, data);
}

static void vnet_watch_events(struct netif_port *p, unsigned int q, unsigned int events)
{
	bk_vnet_watch_events(to_vnet(p)->v, q, events);
}

static int vnet_read(struct netif_port *p, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n)
{
	return bk_vnet_read(to_vnet(p)->v, q, pkts, n);
}

static int vnet_write(struct netif_port *p, unsigned int q, struct bk_tap_pkt *pkts, unsigned int n)
{
	return bk_vnet_write(to_vnet(p)->v, q, pkts, n);
}

static int vnet_get_mac(struct netif_port *p, uint8_t mac[6])
{
	return bk_vnet_mac(to_vnet(p)->v, mac);
}

/* The same for both transports: bk_vnet hides which one it is. */
static const struct netif_port_ops vnet_ops = {
	.close = vnet_close,
	.name = vnet_name,
	.caps = vnet_caps,
	.configure = vnet_configure,
	.watch = vnet_watch,
	.watch_events = vnet_watch_events,
	.read = vnet_read,
	.write = vnet_write,
	.get_mac = vnet_get_mac,
};

static int vnet_open(struct bk_device *dev, const char *ifname, const char *spec,
		     struct bk_loop *loop, struct netif_port **ret)
{
	struct bk_vnet_opts o;
	struct vnet_port *n;
	char why[160];
	int r;

	if (bk_vnet_parse(spec, &o, why, sizeof(why)) < 0)
		return log_err_errno(-EINVAL, "%s: vif %s: bad vif-port '%s': %s", dev->name,
				     ifname, spec, why);
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->p.ops = &vnet_ops;
	n->p.kind = o.pci[0] ? "virtio-net" : "vhost-user";
	n->dev = dev;
	snprintf(n->name, sizeof(n->name), "%s", o.pci[0] ? o.pci : o.path);
	r = bk_vnet_open(dev->name, loop, &o, &n->v);
	if (r < 0) {
		free(n);
		return r;
	}
	*ret = &n->p;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */

int netif_port_open(struct bk_device *dev, const char *ifname, const char *spec,
		    struct bk_loop *loop, struct netif_port **ret)
{
	if (!spec || !spec[0] || !strcmp(spec, "tap"))
		return tap_open(dev, ifname, ret);
	return vnet_open(dev, ifname, spec, loop, ret);
}
