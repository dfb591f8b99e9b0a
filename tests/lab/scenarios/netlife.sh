#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 9 proof 4: a vif's lifecycle driven by xl.
#  a) xl network-attach on a running guest (a vif on xenbr1: the guest brings eth1 up and moves
#     verified TCP over it), xl network-detach (the guest sees eth1 go, the TAP and the backend
#     node go), then a guest reboot: eth0 connects to the new domain and carries traffic again.
#  b) xl destroy during a TCP stream leaves no TAP, no xenstore backend or domain node, and no
#     more blanketd fds or gntdev mappings than before the guest existed.
. /lab/dom0-lib.sh
trap stop_nettool_servers EXIT

start_nettool_server 5001
# --- a) attach, detach, reboot ---
img=$IMG_DIR/netlife.raw
make_image "$img" 64
CFG_VIFS=$(vif_spec 00:16:3e:00:03:31 xenbr0)
write_cfg life 2 "wait:/dev/xvda:60;phase:/dev/xvda:60;netup:eth0:10.0.0.31/24;1.ping:10.0.0.1:3;1.push:10.0.0.1:5001:4:80;1.netwait:eth1:300;1.netup:eth1:10.1.0.31/24;1.ping:10.1.0.1:3;1.push:10.1.0.1:5001:4:81;1.pull:10.1.0.1:5001:4:82;1.netgone:eth1:300;1.serve:5005:1:300;1.reboot;2.ping:10.0.0.1:3;2.push:10.0.0.1:5001:4:83;2.pull:10.0.0.1:5001:4:84;2.serve:5006:1:300" \
	"$(disk_spec "$img" xvda w)"
taps0=$(tap_count)
start_guest life
dom1=$(xl domid life)
wait_vif_connected "$dom1" 0 180
wait_step life 'push:10.0.0.1:5001:4:80' 600
say "xl network-attach life (xenbr1)"
xl network-attach life mac=00:16:3e:00:03:32 bridge=xenbr1 || fail "xl network-attach failed"
wait_vif_connected "$dom1" 1 120
[ -e "/sys/class/net/xenbr1/brif/vif$dom1.1" ] || fail "the attached vif$dom1.1 is not on xenbr1"
wait_step life 'pull:10.1.0.1:5001:4:82' 600
if [ "$LAB_BACKEND" = blanketd ]; then
	tx=$(json_net_total "$dom1" 1 tx_packets)
	rx=$(json_net_total "$dom1" 1 rx_packets)
	say "attached vif $dom1/1: tx_packets=$tx rx_packets=$rx"
	[ "$tx" -gt 100 ] && [ "$rx" -gt 100 ] || fail "the attached vif carried too few frames"
fi
say "xl network-detach life 1"
xl network-detach life 1 || fail "xl network-detach failed"
end=$((SECONDS + 30))
while [ -n "$(xenstore-list "/local/domain/0/backend/vif/$dom1/1" 2>/dev/null)" ]; do
	[ $SECONDS -ge $end ] && fail "backend node of the detached vif is still there"
	sleep 0.5
done
[ "$(vif_be_read "$dom1" 0 state)" = 4 ] || fail "network-detach of vif 1 disturbed vif 0"
end=$((SECONDS + 20))
while [ -e "/sys/class/net/vif$dom1.1" ]; do
	[ $SECONDS -ge $end ] && fail "TAP vif$dom1.1 still exists after network-detach"
	sleep 0.5
done
wait_step life 'netgone:eth1:300' 120
# The guest waits for one more transfer over eth0 before it reboots.
push_to_guest life 10.0.0.31 5005 2 85 60
say "attached vif used and detached; guest reboots"
wait_console life 'GUEST-PHASE 2' 300
dom2=$(xl domid life)
say "guest rebooted as domain $dom2 (was $dom1)"
# The guest's last step waits for one transfer from dom0: it keeps the vif while this looks.
wait_vif_connected "$dom2" 0 180
push_to_guest life 10.0.0.31 5006 2 86 300
wait_guest_done life 600
nettool_check life '(push|pull) '
wait_no_vif_backend "$dom1" 30
wait_no_vif_backend "$dom2" 30
if [ "$LAB_BACKEND" = blanketd ]; then
	# Reading the TAPs through attach, detach and reboot: no error, and a kernel that refuses
	# io_uring reads of TAPs (the lab's) said once, not once per batch of frames.
	n=$(grep -c 'reading queue' "$BLANKETD_LOG")
	if [ "$n" != 0 ]; then
		grep 'reading queue' "$BLANKETD_LOG" | uniq -c | tail -n 5
		fail "blanketd logged $n TAP read error(s)"
	fi
	n=$(grep -c 'refuses non-blocking io_uring reads' "$BLANKETD_LOG")
	[ "$n" -le 1 ] || fail "blanketd said $n times that the kernel refuses io_uring reads of TAPs"
fi
[ "$(tap_count)" = "$taps0" ] || fail "TAPs after the guest: $(taps | tr '\n' ' '), $taps0 before"
errs=$(guest_net_errors life)
[ -z "$errs" ] || fail "netfront complained: $errs"

# --- b) destroy during a transfer ---
fds0=$(blanketd_fds)
maps0=$(blanketd_gnt_maps)
taps0=$(tap_count)
CFG_VIFS=$(vif_spec 00:16:3e:00:03:41 xenbr0)
write_cfg dstr 2 "netup:eth0:10.0.0.41/24;stream:10.0.0.1:5001:900:90:0:60"
start_guest dstr
dom3=$(xl domid dstr)
wait_vif_connected "$dom3" 0 180
wait_console dstr 'NETTOOL stream client connected' 300
# nettool reports every 10 s of streaming: the first report shows that data flows.
wait_console dstr 'NETTOOL stream client t=' 60
if [ "$LAB_BACKEND" = blanketd ]; then
	say "blanketd during the stream: fds=$(blanketd_fds) (before $fds0), gntdev maps=$(blanketd_gnt_maps) (before $maps0), taps: $(taps | tr '\n' ' ')"
	blanketctl_stats | sed 's/^/  /'
fi
say "xl destroy dstr during the stream"
xl destroy dstr || fail "xl destroy failed"
wait_no_vif_backend "$dom3" 30
[ -z "$(xenstore-list "/local/domain/$dom3" 2>/dev/null)" ] ||
	fail "domain $dom3 still has xenstore nodes"
end=$((SECONDS + 20))
while [ -e "/sys/class/net/vif$dom3.0" ] || [ "$(tap_count)" != "$taps0" ]; do
	[ $SECONDS -ge $end ] && fail "TAPs after destroy: $(taps | tr '\n' ' '), $taps0 before"
	sleep 0.5
done
if [ "$LAB_BACKEND" = blanketd ]; then
	wait_blanketd_back "$fds0" "$maps0" 20
	say "blanketd back to $fds0 fds, $maps0 gntdev maps, $taps0 TAPs"
fi
exit 0
