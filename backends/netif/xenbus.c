// SPDX-License-Identifier: MIT
/*
 * The netif xenbus state machine, as Linux netback drives it: at probe the port is opened (the
 * TAP vifname, or vif<domid>.<devid>, or the L0 NIC blanketd.conf's vif-port names for it)
 * before any feature key, since libxl runs the hotplug script (which expects the interface)
 * once we are in InitWait; every feature goes in one transaction,
 * with an explicit 0 for what is not implemented; then InitWait. The rings are mapped when the
 * frontend says Connected (or Initialised: frontends that skip InitWait write everything and
 * go straight to Connected), and we say Connected only once hotplug-status=connected; "error"
 * fails the device (Closing). A frontend back to Initialising after Closed reconnects.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "conf.h"
#include "loop.h"

static void nd_free(struct netif_dev *nd)
{
	if (!nd)
		return;
	bk_hook_free(nd->hook);
	bk_timer_free(nd->timer);
	netif_credit_free(nd);
	free(nd->stats);
	free(nd);
}

static const struct {
	const char *key;
	const char *val;
} probe_features[] = {
	{ "feature-sg", "1" },
	{ "feature-gso-tcpv4", "1" },
	{ "feature-gso-tcpv6", "1" },
	{ "feature-ipv6-csum-offload", "1" },
	{ "feature-rx-copy", "1" },
	{ "feature-rx-flip", "0" },
	{ "feature-split-event-channels", "1" },
	/* Not implemented: said explicitly, so a frontend never assumes them. */
	{ "feature-xdp-headroom", "0" },
	{ "feature-multicast-control", "0" },
	{ "feature-dynamic-multicast-control", "0" },
	{ "feature-ctrl-ring", "0" },
};

/* Every feature in one transaction, so a frontend never sees half of them. */
static int write_features(struct netif_dev *nd, const struct netif_port_caps *caps)
{
	struct bk_device *dev = nd->dev;
	struct bk_xs *xs = bk_device_xs(dev);
	int r;

	for (unsigned int tries = 0; tries < 16; tries++) {
		uint32_t t;

		r = bk_xs_transaction_start(xs, &t);
		if (r < 0)
			return r;
		for (unsigned int i = 0; r >= 0 && i < ARRAY_SIZE(probe_features); i++)
			r = bk_xs_printf(xs, t, dev->be_path, probe_features[i].key, "%s",
					 probe_features[i].val);
		/* GSO the port cannot carry is not offered (an L0 NIC without TSO). */
		if (r >= 0 && !caps->gso_tcpv4)
			r = bk_xs_printf(xs, t, dev->be_path, "feature-gso-tcpv4", "0");
		if (r >= 0 && !caps->gso_tcpv6)
			r = bk_xs_printf(xs, t, dev->be_path, "feature-gso-tcpv6", "0");
		if (r >= 0)
			r = bk_xs_printf(xs, t, dev->be_path, "multi-queue-max-queues", "%u",
					 nd->max_queues);
		if (r < 0) {
			bk_xs_transaction_end(xs, t, true);
			return r;
		}
		r = bk_xs_transaction_end(xs, t, false);
		if (r != -EAGAIN)
			return r;
	}
	return -EAGAIN;
}

/*
 * One vif to one L0 NIC: the cloud only passes frames from the NIC's own MAC, and netfront reads
 * its MAC from the frontend directory (libxl writes xl.cfg's mac= there), which a backend may
 * not write. So the xl.cfg mac must be the NIC's: say so when the toolstack's differs.
 */
static void check_mac(struct netif_dev *nd)
{
	_cleanup_free_ char *key = NULL;
	uint8_t mac[6];
	char want[18];

	if (!nd->port->ops->get_mac || nd->port->ops->get_mac(nd->port, mac) < 0)
		return;
	snprintf(want, sizeof(want), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
	if (bk_device_read_be(nd->dev, "mac", &key) < 0 || strcasecmp(key, want))
		dev_warn(nd->dev,
			 "the guest's MAC %s is not the L0 NIC's %s: set mac=%s in the vif's "
			 "xl.cfg entry, or the cloud network drops its frames",
			 key ? key : "(none)", want, want);
	else
		dev_info(nd->dev, "MAC %s, the L0 NIC's", want);
}

int netif_probe(struct bk_device *dev)
{
	struct netif_dev *nd = calloc(1, sizeof(*nd));
	_cleanup_free_ char *vifname = NULL;
	struct netif_port_caps caps;
	char spec[256];
	int r;

	if (!nd)
		return -ENOMEM;
	nd->dev = dev;
	nd->max_queues = NETIF_MAX_QUEUES;
	nd->stats = calloc(NETIF_MAX_QUEUES, sizeof(*nd->stats));
	if (!nd->stats) {
		r = -ENOMEM;
		goto fail;
	}
	r = bk_device_read_be(dev, "vifname", &vifname);
	if (r == 0 && vifname[0]) {
		char shown[40];

		if (strlen(vifname) >= sizeof(nd->ifname)) {
			r = log_err_errno(-EINVAL, "%s: vifname '%s' is too long", dev->name,
					  bk_printable(vifname, shown, sizeof(shown)));
			goto fail;
		}
		snprintf(nd->ifname, sizeof(nd->ifname), "%s", vifname);
	} else {
		r = bk_tap_vif_name(dev->domid, dev->devid, nd->ifname, sizeof(nd->ifname));
		if (r < 0) {
			log_err_errno(r, "%s: no interface name fits vif%u.%u", dev->name,
				      dev->domid, dev->devid);
			goto fail;
		}
	}
	/* A vif blanketd.conf names gets its L0 NIC; any other a TAP. */
	r = bk_config_vif_port(bk_config_current(), nd->ifname, spec, sizeof(spec));
	if (r < 0) {
		log_err_errno(r, "%s: vif %s: its vif-port spec is too long", dev->name,
			      nd->ifname);
		goto fail;
	}
	/* Before any feature key: the hotplug script runs on InitWait and needs the interface. */
	r = netif_port_open(dev, nd->ifname, spec, bk_device_loop(dev), &nd->port);
	if (r < 0)
		goto fail;
	nd->port->ops->caps(nd->port, &caps);
	nd->max_queues = BK_MAX(1U, BK_MIN(nd->max_queues, caps.max_queues));
	check_mac(nd);
	r = bk_loop_add_hook(bk_device_loop(dev), netif_hook_cb, nd, &nd->hook);
	if (r < 0)
		goto fail;
	r = bk_loop_add_timer(bk_device_loop(dev), 0, 0, netif_timer_cb, nd, &nd->timer);
	if (r < 0)
		goto fail;
	bk_timer_stop(nd->timer);
	r = netif_credit_init(nd);
	if (r < 0)
		goto fail;
	netif_credit_read_key(nd);
	r = write_features(nd, &caps);
	if (r < 0) {
		log_err_errno(r, "%s: writing features: %m", dev->name);
		goto fail;
	}
	dev->priv = nd;
	if (bk_device_left_connected(dev)) {
		/* The guest stays Connected: connect() maps the rings again without a word. */
		nd->adopting = true;
		dev->state = BK_XB_INITWAIT;
		dev_info(dev, "taking over a vif a previous run left Connected (%s %s)",
			 nd->port->kind, nd->port->ops->name(nd->port));
	} else {
		r = bk_device_set_state(dev, BK_XB_INITWAIT);
		if (r < 0) {
			dev->priv = NULL;
			goto fail;
		}
		dev_info(dev, "%s %s%s, waiting for the frontend and the hotplug script",
			 nd->port->kind, nd->port->ops->name(nd->port),
			 nd->port->reattached ? " (existed)" : "");
	}
	return 0;
fail:
	if (nd->port)
		nd->port->ops->close(nd->port, false);
	nd_free(nd);
	return r;
}

/* Rings up and the hotplug script done: tell the frontend, start the data path. */
static void maybe_connected(struct netif_dev *nd)
{
	struct bk_device *dev = nd->dev;
	int hs;

	if (!nd->rings_up || nd->running)
		return;
	hs = bk_device_hotplug_status(nd->dev);
	if (hs < 0) {
		bk_device_fail(dev, -EIO, "the hotplug script failed");
		return;
	}
	if (hs == 0) {
		dev_info(dev, "frontend connected, waiting for the hotplug script");
		return;
	}
	if (bk_device_set_state(dev, BK_XB_CONNECTED) < 0)
		return;
	nd->adopting = false;
	nd->running = true;
	dev_info(dev, "connected: %s %s, %u queue(s)%s%s%s", nd->port->kind,
		 nd->port->ops->name(nd->port), nd->nr_queues,
		 nd->queues[0].split ? ", split event channels" : "", nd->feat.sg ? ", sg" : "",
		 nd->rx_notify ? "" : ", no rx-notify");
	netif_start(nd);
}

static void connect(struct netif_dev *nd)
{
	if (nd->rings_up)
		return;
	if (netif_rings_connect(nd) < 0)
		return; /* failed with a log line; the core shuts the device down */
	maybe_connected(nd);
}

static void disconnect(struct netif_dev *nd)
{
	nd->running = false;
	bk_hook_enable(nd->hook, false);
	bk_timer_stop(nd->timer);
	netif_rings_release(nd);
}

void netif_frontend_changed(struct bk_device *dev, enum bk_xenbus_state state)
{
	struct netif_dev *nd = netif_of(dev);

	switch (state) {
	case BK_XB_INITIALISING:
		bk_device_frontend_reset(dev);
		break;
	case BK_XB_INITIALISED:
	case BK_XB_CONNECTED:
		if (dev->state == BK_XB_CLOSED && bk_device_set_state(dev, BK_XB_INITWAIT) < 0)
			break;
		if (dev->state == BK_XB_INITWAIT)
			connect(nd);
		break;
	case BK_XB_CLOSING:
		disconnect(nd);
		bk_device_closing(dev);
		break;
	case BK_XB_CLOSED:
	case BK_XB_UNKNOWN:
		disconnect(nd);
		bk_device_closing(dev);
		bk_device_set_state(dev, BK_XB_CLOSED);
		break;
	default:
		break;
	}
}

void netif_backend_changed(struct bk_device *dev, const char *key)
{
	struct netif_dev *nd = netif_of(dev);

	if (key && !strcmp(key, "rate"))
		netif_credit_read_key(nd); /* netback watches it too: a live change */
	if (key && strcmp(key, "hotplug-status"))
		return;
	if (bk_device_hotplug_status(nd->dev) < 0 && dev->state != BK_XB_CLOSING &&
	    dev->state != BK_XB_CLOSED) {
		bk_device_fail(dev, -EIO, "the hotplug script failed");
		return;
	}
	maybe_connected(nd);
}

void netif_shutdown(struct bk_device *dev)
{
	struct netif_dev *nd = netif_of(dev);

	if (nd) {
		if (bk_core_stopping(dev->core) && nd->running)
			dev_info(dev,
				 "daemon stopping: the guest stays connected for the next run");
		/* Every slot taken was answered and published: the journals say so. */
		nd->handover = bk_core_stopping(dev->core);
		disconnect(nd);
		nd->handover = false;
	}
	bk_device_shutdown_done(dev);
}

void netif_remove(struct bk_device *dev)
{
	struct netif_dev *nd = netif_of(dev);

	if (!nd)
		return;
	disconnect(nd);
	/* A daemon going away keeps the interface (bridge membership, addresses) for the next. */
	nd->port->ops->close(nd->port, bk_core_stopping(dev->core));
	nd_free(nd);
	dev->priv = NULL;
}

/*
 * Test-only (ops->abandon): the daemon is killed. The data path holds nothing between turns,
 * so there is no @point to reach here (tests stop a vif inside a turn with
 * netif_set_test_hook); release what a dead process loses, keep the journals and the TAP,
 * write nothing to the rings or xenstore.
 */
void netif_abandon(struct bk_device *dev, unsigned int point)
{
	struct netif_dev *nd = netif_of(dev);

	(void)point;
	if (!nd)
		return;
	nd->handover = true;
	disconnect(nd);
	nd->port->ops->close(nd->port, true);
	nd_free(nd);
	dev->priv = NULL;
}
