#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 9 proof 3: a vif with script=vif-nat (no bridge): the stock script gives the TAP the
# router address (the guest's + 127) and a host route to the guest, and the guest reaches a
# host behind dom0 that is on no bridge: the network namespace "far" (192.168.77.2, through
# dom0's forwarding and veth far0). Ping and verified TCP both ways with nettool.
. /lab/dom0-lib.sh
trap stop_nettool_servers EXIT

NS=far start_nettool_server 5003
CFG_VIFS=$(vif_spec 00:16:3e:00:01:31 "" "script=vif-nat,ip=10.2.0.2")
write_cfg nat 1 "netup:eth0:10.2.0.2/24:10.2.0.129;ping:10.2.0.129:3;ping:192.168.77.2:5;push:192.168.77.2:5003:4:50;pull:192.168.77.2:5003:4:51;serve:5007:1:300"
start_guest nat
dom=$(xl domid nat)
wait_vif_connected "$dom" 0 180
vif=vif$dom.0
expect() { [ "$2" = "$3" ] || fail "$1 is '$2', want '$3'"; }
expect "backend script" "$(vif_be_read "$dom" 0 script)" /etc/xen/scripts/vif-nat
expect "hotplug-status" "$(vif_be_read "$dom" 0 hotplug-status)" connected
[ ! -e "/sys/class/net/$vif/brport" ] || fail "$vif is on a bridge in NAT mode"
ip -4 addr show dev "$vif" | sed 's/^/  /'
ip -4 addr show dev "$vif" | grep -q 'inet 10.2.0.129' || fail "vif-nat did not give $vif 10.2.0.129"
ip route show | grep -q "10.2.0.2 dev $vif" || fail "no host route to the guest via $vif"
# The guest's last step waits for one transfer from dom0 (over that route): it kept its vif
# while the checks above looked at it.
push_to_guest nat 10.2.0.2 5007 1 52 300
wait_guest_done nat 900
nettool_check nat '(push|pull) '
nettool_check /tmp/nettool-5003.log 'server (push|pull)'
grep -q 'server push from=[:f]*10.2.0.2 ' /tmp/nettool-5003.log ||
	fail "the far host did not see the guest's address"
if [ "$LAB_BACKEND" = blanketd ]; then
	blanketctl_stats | sed 's/^/  /'
fi
errs=$(guest_net_errors nat)
[ -z "$errs" ] || fail "netfront complained: $errs"
wait_no_vif_backend "$dom" 30
exit 0
