#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 9 proof 2: two domUs on xenbr0 talk to each other through blanketd twice (guest A's
# TX is guest B's RX, through the bridge): ping and verified TCP both ways between them. Guest
# A has a second vif on xenbr1, which carries ping and verified TCP with dom0 (10.1.0.1) both
# ways; blanketctl shows frames both ways on each of A's vifs.
. /lab/dom0-lib.sh
trap stop_nettool_servers EXIT

start_nettool_server 5001
CFG_VIFS=$(vif_spec 00:16:3e:00:02:22 xenbr0)
write_cfg b 1 "netup:eth0:10.0.0.22/24;ping:10.0.0.21:3;serve:5002:2:900"
CFG_VIFS="$(vif_spec 00:16:3e:00:02:21 xenbr0),$(vif_spec 00:16:3e:00:02:31 xenbr1)"
write_cfg a 1 "netup:eth0:10.0.0.21/24;netup:eth1:10.1.0.21/24;ping:10.0.0.22:5;push:10.0.0.22:5002:4:70;pull:10.0.0.22:5002:4:71;ping:10.1.0.1:5;push:10.1.0.1:5001:4:72;pull:10.1.0.1:5001:4:73;netinfo:eth1;serve:5004:1:600"
start_guest b
start_guest a
da=$(xl domid a)
db=$(xl domid b)
wait_vif_connected "$db" 0 180
wait_vif_connected "$da" 0 180
wait_vif_connected "$da" 1 180
for v in "xenbr0 vif$da.0" "xenbr0 vif$db.0" "xenbr1 vif$da.1"; do
	set -- $v
	[ -e "/sys/class/net/$1/brif/$2" ] || fail "$2 is not on $1"
done
[ ! -e "/sys/class/net/xenbr0/brif/vif$da.1" ] || fail "vif$da.1 is on xenbr0 too"
say "vif$da.0 vif$db.0 on xenbr0, vif$da.1 on xenbr1"
wait_step a 'pull:10.1.0.1:5001:4:73' 900
wait_guest_done b 300
if [ "$LAB_BACKEND" = blanketd ]; then
	blanketctl_stats | sed 's/^/  /'
	check_vif_queues "$da" 0 1
	check_vif_queues "$da" 1 1
fi
# The last transfer, dom0 -> guest A over xenbr1, lets A finish.
push_to_guest a 10.1.0.21 5004 4 74 120
wait_guest_done a 120
nettool_check a '(push|pull) '
nettool_check b 'server (push|pull)'
nettool_check /tmp/nettool-5001.log 'server (push|pull)'
grep -q 'from=[:f]*10.1.0.21 ' /tmp/nettool-5001.log || fail "dom0 did not see 10.1.0.21 on xenbr1"
for g in a b; do
	errs=$(guest_net_errors $g)
	[ -z "$errs" ] || fail "netfront of $g complained: $errs"
done
wait_no_vif_backend "$da" 30
wait_no_vif_backend "$db" 30
exit 0
