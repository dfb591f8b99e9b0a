#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 11, a vif from a driver domain: drv (see drvdom.sh) with a bridge xenbr0 10.9.0.1/24 and
# a nettool server; a guest whose vif says backend=drv,bridge=xenbr0 (the stock vif-bridge
# script runs in drv under xl devd, blanketd there makes the TAP): ping and verified TCP both
# ways with drv, nothing of the vif in dom0.
. /lab/dom0-lib.sh

drv_image_present
start_drv "" 10.9.0.1/24
CFG_VIFS="'backend=drv,mac=00:16:3e:00:09:02,bridge=xenbr0'"
write_cfg drvn 1 "netup:eth0:10.9.0.2/24;ping:10.9.0.1:5;push:10.9.0.1:5001:4:61;pull:10.9.0.1:5001:4:62;sleep:60"
unset CFG_VIFS
sed -i "s/^memory = .*/memory = 224/" /tmp/drvn.cfg
start_guest drvn
domn=$(xl domid drvn)
wait_step drvn 'netup:eth0:10.9.0.2/24' 300
# netup only waits for eth0, which netfront makes before the handshake: drv's vif-bridge under
# xl devd may still be running (the backend then waits in InitWait for hotplug-status). The
# guest's last step, a sleep, keeps the vif while this looks.
wait_vif_connected "$domn" 0 180 "$drvid"
[ -z "$(vif_backend_nodes "$domn")" ] || fail "dom0 has vif backend nodes for the guest"
wait_step drvn 'ping:10.9.0.1:5' 300
wait_step drvn 'push:10.9.0.1:5001:4:61' 300
wait_step drvn 'pull:10.9.0.1:5001:4:62' 300
nettool_check drvn '(push|pull)'
say "guest $domn: ping and verified TCP both ways with the driver domain over its vif"
xl destroy drvn || fail "xl destroy drvn failed"
exit 0
