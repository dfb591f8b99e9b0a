#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario 4: the device lifecycle driven by xl.
#  a) xl block-attach / block-detach on a running guest (it uses the new disk, then sees it go),
#     then a guest reboot: the disk reconnects to the new domain with the data intact.
#  b) xl destroy during I/O: no backend node stays in xenstore, and blanketd holds no more fds
#     or grant mappings than before the guest existed.
. /lab/dom0-lib.sh

# --- a) hot-plug, unplug, reboot ---
root=$IMG_DIR/life.raw extra=$IMG_DIR/life-extra.raw
make_image "$root" 64
make_image "$extra" 64
write_cfg life 2 "phase:/dev/xvda:60;1.write:/dev/xvda:0:8:21;1.wait:/dev/xvdb:180;1.rw:/dev/xvdb:0:8:5:2;1.waitgone:/dev/xvdb:180;1.reboot;2.verify:/dev/xvda:0:8:21;2.rw:/dev/xvda:8:8:22:2" \
	"$(disk_spec "$root" xvda w)"
start_guest life
dom1=$(xl domid life)
wait_console life 'GUEST-STEP write:/dev/xvda:0:8:21 ok' 300
say "xl block-attach life xvdb"
xl block-attach life "$(disk_spec "$extra" xvdb w | tr -d "'")" || fail "xl block-attach failed"
wait_console life 'GUEST-STEP rw:/dev/xvdb:0:8:5:2 ok' 300
say "xl block-detach life xvdb"
xl block-detach life xvdb || fail "xl block-detach failed"
end=$((SECONDS + 30))
while [ -n "$(xenstore-list "/local/domain/0/backend/vbd/$dom1/$(vdev_id xvdb)" 2>/dev/null)" ]; do
	[ $SECONDS -ge $end ] && fail "backend node of the detached disk is still there"
	sleep 0.5
done
wait_console life 'GUEST-STEP waitgone:/dev/xvdb:180 ok' 120
iotool verify "$extra" 0 8 5 >/dev/null || fail "the hot-plugged disk lacks the guest's data"
say "hot-plugged disk used and detached; guest reboots"
wait_console life 'GUEST-PHASE 2' 300
dom2=$(xl domid life)
say "guest rebooted as domain $dom2 (was $dom1)"
wait_guest_done life 300
wait_no_backend "$dom1" 30
wait_no_backend "$dom2" 30
iotool verify "$root" 0 8 21 >/dev/null || fail "data written before the reboot is gone"
iotool verify "$root" 8 8 22 >/dev/null || fail "data written after the reboot is missing"

# --- b) destroy during I/O ---
img=$IMG_DIR/destroy.raw
make_image "$img" 64
fds0=$(blanketd_fds)
maps0=$(blanketd_gnt_maps)
write_cfg dstr 2 "wait:/dev/xvda:60;loop:/dev/xvda:16" "$(disk_spec "$img" xvda w)"
start_guest dstr
dom3=$(xl domid dstr)
wait_console dstr 'GUEST-LOOPING' 120
sleep 5
if [ "$LAB_BACKEND" = blanketd ]; then
	say "blanketd during I/O: fds=$(blanketd_fds) (before $fds0), gntdev maps=$(blanketd_gnt_maps) (before $maps0)"
	blanketctl_stats | sed 's/^/  /'
fi
say "xl destroy dstr during I/O"
xl destroy dstr || fail "xl destroy failed"
wait_no_backend "$dom3" 30
[ -z "$(xenstore-list "/local/domain/$dom3" 2>/dev/null)" ] || fail "domain $dom3 still has xenstore nodes"
if [ "$LAB_BACKEND" = blanketd ]; then
	wait_blanketd_back "$fds0" "$maps0" 20
	say "blanketd back to $fds0 fds and $maps0 gntdev maps"
	blanketctl_stats | sed 's/^/  /'
fi
exit 0
