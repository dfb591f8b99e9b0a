#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 9 proof 1: a 2-vCPU domU with one vif on xenbr0, served by blanketd (xen-netback not
# loaded). Ping both ways, verified TCP transfers both ways (nettool: the receiver checks every
# byte, both ends print count and checksum), several flows at once so every queue carries
# traffic. Asserts the xenstore keys both ends wrote (multi-queue with 2 queues, rx-copy, SG,
# GSO, IPv6 checksum offload), that the TAP is on the bridge, that every queue carried frames
# both ways and that the guest's TCP went through the offloads (checksum and GSO counters).
. /lab/dom0-lib.sh
trap stop_nettool_servers EXIT

start_nettool_server 5001
CFG_VIFS=$(vif_spec 00:16:3e:00:01:11 xenbr0)
write_cfg net 2 "netup:eth0:10.0.0.11/24;netinfo:eth0;ping:10.0.0.1:5;par:10.0.0.1:5001:2:100:4;netinfo:eth0;serve:5002:3:600;netinfo:eth0"
start_guest net
dom=$(xl domid net)
wait_vif_connected "$dom" 0 180
vif=vif$dom.0
[ -e "/sys/class/net/xenbr0/brif/$vif" ] || fail "$vif is not on xenbr0 ($(ls /sys/class/net))"

# What the frontend (stock netfront) wrote, and what the backend offered.
vif_fe_dump "$dom" 0
expect_key() { # WHERE KEY WANT VALUE
	[ "$4" = "$3" ] || fail "$1 key $2 is '$4', want '$3'"
}
for k in request-rx-copy feature-rx-notify feature-sg feature-gso-tcpv4 feature-gso-tcpv6 \
	feature-ipv6-csum-offload; do
	expect_key frontend "$k" 1 "$(vif_fe_read "$dom" 0 "$k")"
done
expect_key frontend multi-queue-num-queues 2 "$(vif_fe_read "$dom" 0 multi-queue-num-queues)"
for q in 0 1; do
	for k in tx-ring-ref rx-ring-ref; do
		[ -n "$(vif_fe_read "$dom" 0 "queue-$q/$k")" ] || fail "frontend has no queue-$q/$k"
	done
done
for k in feature-rx-copy feature-sg feature-gso-tcpv4 feature-gso-tcpv6 \
	feature-ipv6-csum-offload; do
	expect_key backend "$k" 1 "$(vif_be_read "$dom" 0 "$k")"
done
expect_key backend hotplug-status connected "$(vif_be_read "$dom" 0 hotplug-status)"
maxq=$(vif_be_read "$dom" 0 multi-queue-max-queues)
[ "${maxq:-0}" -ge 2 ] || fail "backend multi-queue-max-queues is '$maxq', want >= 2"
say "keys: frontend 2 queues, rx-copy, rx-notify, sg, gso v4/v6, ipv6-csum; backend max $maxq queues"

wait_step net 'par:[^ ]*' 900
say "after the guest's transfers: dom0 TCP: $(tcp_counters)"
say "$vif: $(iface_counters "$vif")"
if [ "$LAB_BACKEND" = blanketd ]; then
	blanketctl_stats | sed 's/^/  /'
fi
say "guest -> dom0 pushes and pulls done; dom0 -> guest now"
ping_each 10.0.0.11 5
wait_console net 'NETTOOL server listening port=5002' 120
nettool push 10.0.0.11 5002 8 300 >/tmp/push.out 2>&1
nettool pull 10.0.0.11 5002 8 301 >>/tmp/push.out 2>&1
n=$(grep -c 'server .* ok$' /tmp/nettool-5001.log)
[ "$n" = 8 ] || fail "the dom0 server saw $n good transfers, want 8"

# The guest's server waits for a third connection: it stays up (and its vif) until then.
if [ "$LAB_BACKEND" = blanketd ]; then
	blanketctl_stats | sed 's/^/  /'
	check_vif_queues "$dom" 0 2
	for k in tx_csum tx_gso rx_csum rx_gso csum_fixup csum_sw; do
		eval "$k=$(json_net_total "$dom" 0 $k)"
	done
	say "offloads: tx_csum=$tx_csum tx_gso=$tx_gso rx_csum=$rx_csum rx_gso=$rx_gso csum_fixup=$csum_fixup csum_sw=$csum_sw"
	[ "$tx_csum" -gt 0 ] && [ "$tx_gso" -gt 0 ] ||
		fail "the guest's TCP did not use checksum offload and GSO (tx_csum=$tx_csum tx_gso=$tx_gso)"
fi
nettool push 10.0.0.11 5002 1 302 >>/tmp/push.out 2>&1
wait_step net 'serve:[^ ]*' 120
nettool_check /tmp/push.out '(push|pull)'
nettool_check net '(push|pull) '
nettool_check /tmp/nettool-5001.log 'server (push|pull)'
wait_guest_done net 120
errs=$(guest_net_errors net)
[ -z "$errs" ] || fail "netfront complained: $errs"
wait_no_vif_backend "$dom" 30
[ ! -e "/sys/class/net/$vif" ] || fail "$vif still exists after the guest went away"
exit 0
