// SPDX-License-Identifier: MIT
/* The netif backend's ops table, per-queue statistics and the one-line description. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "netif.h"

static int netif_get_stats(struct bk_device *dev, struct bk_queue_stats *qs, unsigned int max)
{
	struct netif_dev *nd = netif_of(dev);
	unsigned int n;

	if (!nd)
		return 0;
	n = nd->stats_queues;
	for (unsigned int i = 0; i < n && i < max; i++)
		qs[i] = nd->stats[i];
	return (int)n;
}

static int netif_describe(struct bk_device *dev, char *buf, size_t len)
{
	struct netif_dev *nd = netif_of(dev);
	int n;

	if (!nd)
		return -ENODEV;
	n = snprintf(buf, len, "%s=%s", nd->port ? nd->port->kind : "tap",
		     nd->port ? nd->port->ops->name(nd->port) : nd->ifname);
	if (n >= 0 && (size_t)n < len && nd->credit.bytes)
		n += snprintf(buf + n, len - (size_t)n, " rate=%" PRIu64 ",%" PRIu64,
			      nd->credit.bytes, nd->credit.usec);
	if (n >= 0 && (size_t)n < len && nd->rings_up)
		n += snprintf(buf + n, len - (size_t)n, " queues=%u%s%s%s%s%s%s", nd->nr_queues,
			      nd->queues && nd->queues[0].split ? " split-evtchn" : "",
			      nd->feat.sg ? " sg" : "", nd->feat.gso_tcpv4 ? " gso-tcpv4" : "",
			      nd->feat.gso_tcpv6 ? " gso-tcpv6" : "",
			      nd->feat.csum_v6 ? " ipv6-csum" : "",
			      nd->rx_notify ? "" : " no-rx-notify");
	return n < 0 ? -EIO : 0;
}

const struct bk_backend_ops netif_backend_ops = {
	.kind = "vif",
	.log_name = "vif",
	.probe = netif_probe,
	.frontend_changed = netif_frontend_changed,
	.backend_changed = netif_backend_changed,
	.shutdown = netif_shutdown,
	.remove = netif_remove,
	.abandon = netif_abandon,
	.set_limit = netif_set_limit,
	.get_stats = netif_get_stats,
	.describe = netif_describe,
};
