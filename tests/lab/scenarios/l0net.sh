#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario l0net (issue 10 proof 4): a guest's vif served through an L0 virtio-net-pci NIC that
# blanketd drives from userspace, not through a TAP. run.sh gives the outer QEMU two
# virtio-net-pci NICs on one hub (the "cloud network"): 0000:00:0b.0 goes to blanketd
# (uio_pci_generic, machine addresses through dom0's p2m), 0000:00:0c.0 stays with dom0's
# virtio_net driver as 10.9.0.1. The guest's vif (vifname=l0, the NIC's MAC, blanketd.conf
# vif-port = l0:virtio-net,pci=0000:00:0b.0, a hotplug script with nothing to set up) gets
# 10.9.0.2: ping both ways and verified TCP transfers both ways (nettool: the receiver checks
# every byte) between the guest and dom0 cross the hub. Checks that the vif has no TAP, that the
# NIC is bound to uio_pci_generic, and that the vif's queue carried frames both ways
# (blanketctl stats). The vif is removed with the guest, which hands the NIC back.
. /lab/dom0-lib.sh
trap stop_nettool_servers EXIT

NIC=0000:00:0b.0
KNIC=0000:00:0c.0
MAC=52:54:00:0c:10:b0
[ -e "/sys/bus/pci/devices/$NIC" ] && [ -e "/sys/bus/pci/devices/$KNIC" ] ||
	skip "no L0 virtio-net NICs at $NIC and $KNIC (run.sh adds them for l0net scenarios)"
[ "$LAB_BACKEND" = blanketd ] || skip "the L0 NIC path is blanketd's"
modprobe uio_pci_generic || fail "cannot load uio_pci_generic"
modprobe virtio_net || fail "cannot load virtio_net"

# dom0's own NIC on the cloud network.
kif=
for i in $(seq 1 50); do
	kif=$(ls /sys/bus/pci/devices/$KNIC/virtio*/net 2>/dev/null | head -n 1)
	[ -n "$kif" ] && break
	sleep 0.1
done
[ -n "$kif" ] || fail "$KNIC has no network interface in dom0"
ip addr add 10.9.0.1/24 dev "$kif" && ip link set "$kif" up || fail "cannot address $kif"
say "dom0's L0 NIC $KNIC is $kif, 10.9.0.1/24"

# The vif's hotplug script: its other end is an L0 NIC, there is no dom0 interface to set up.
cat >/etc/xen/scripts/vif-l0 <<'EOF'
#!/bin/sh
case "$1" in
online | add) xenstore-write "$XENBUS_PATH/hotplug-status" connected ;;
esac
exit 0
EOF
chmod 755 /etc/xen/scripts/vif-l0

# blanketd again, with the vif's port named.
pid=$(blanketd_pid)
kill -TERM "$pid" || fail "cannot stop blanketd $pid"
end=$((SECONDS + 30))
while kill -0 "$pid" 2>/dev/null; do
	[ $SECONDS -ge $end ] && fail "blanketd $pid still running 30 s after SIGTERM"
	sleep 0.1
done
lines0=$(wc -l <"$BLANKETD_LOG")
# A vif-port in the boot's blanketd arguments wins (run.sh --blanketd-args: the deliberate
# breaks, e.g. '--set+vif-port=l0:virtio-net,pci=0000:00:0b.0,dma=pagemap').
if grep -q 'lab\.blanketd_args=[^ ]*vif-port' /proc/cmdline; then
	spawn_blanketd || fail "cannot start blanketd"
else
	spawn_blanketd --set "vif-port=l0:virtio-net,pci=$NIC" || fail "cannot start blanketd"
fi
sleep 1
blanketd_alive || { tail -n 20 "$BLANKETD_LOG"; fail "blanketd died at start"; }

start_nettool_server 5001
CFG_VIFS="'mac=$MAC,vifname=l0,script=vif-l0'"
write_cfg l0net 1 "netup:eth0:10.9.0.2/24;netinfo:eth0;ping:10.9.0.1:5;push:10.9.0.1:5001:4:41;pull:10.9.0.1:5001:4:42;serve:5002:3:600"
start_guest l0net
dom=$(xl domid l0net)
wait_vif_connected "$dom" 0 180
tail -n +$((lines0 + 1)) "$BLANKETD_LOG" | grep -E "virtio-net $NIC|vif $dom/0: (MAC|the guest|connected)" |
	sed 's/^/  /' | while IFS= read -r l; do show "$l"; done
[ -z "$(taps)" ] || fail "a TAP exists for the L0 vif: $(taps)"
[ "$(basename "$(readlink /sys/bus/pci/devices/$NIC/driver)")" = uio_pci_generic ] ||
	fail "$NIC is not bound to uio_pci_generic"

wait_step l0net 'pull:[^ ]*' 300
say "guest -> dom0 ping, push and pull done; dom0 -> guest now"
ping_each 10.9.0.2 5
wait_console l0net 'NETTOOL server listening port=5002' 120
nettool push 10.9.0.2 5002 4 43 >/tmp/push.out 2>&1
nettool pull 10.9.0.2 5002 4 44 >>/tmp/push.out 2>&1
# The guest's server waits for a third connection: it stays up (and its vif) until then.
blanketctl_stats | sed 's/^/  /'
check_vif_queues "$dom" 0 1
nettool push 10.9.0.2 5002 1 45 >>/tmp/push.out 2>&1
wait_step l0net 'serve:[^ ]*' 120
nettool_check /tmp/push.out '(push|pull)'
nettool_check l0net '(push|pull) '
nettool_check /tmp/nettool-5001.log 'server (push|pull)'
n=$(grep -c 'server .* ok$' /tmp/nettool-5001.log)
[ "$n" = 2 ] || fail "the dom0 server saw $n good transfers, want 2"
wait_guest_done l0net 120
errs=$(guest_net_errors l0net)
[ -z "$errs" ] || fail "netfront complained: $errs"
wait_no_vif_backend "$dom" 30
exit 0
