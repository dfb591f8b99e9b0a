#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 11, "a driver domain running blanketd": a PV driver domain "drv" (driver_domain=1, the
# dom0 image booted with lab.role=drv: xl devd + blanketd, see drv-init.sh) serves guest A's
# disk (backend=drv, the image on drv's own tmpfs) while dom0's blanketd serves guest B's.
#  1. A does verified I/O on its drv disk, B on its dom0 disk, both at once; A's backend nodes
#     are under drv's /local/domain/<drv>/backend, none under dom0's, and drv's blanketd counts
#     the requests.
#  2. `xl destroy drv` while A's verified I/O loop runs: A's loop makes no more progress (the
#     scenario records whether the guest saw an I/O error or its requests just stay pending:
#     stock blkfront has no request timeout), B's verified loop keeps going on dom0's blanketd,
#     which is alive and holds nothing of A; drv's xenstore nodes are gone.
#  3. A new driver domain plus `xl block-attach` (xvdb, backend=drv) serves A again: verified
#     I/O; `xl block-detach` of the dead xvda removes its frontend (libxl cleans up the frontend
#     only, the backend being gone).
. /lab/dom0-lib.sh

drv_image_present
GUEST_MEM=224

bgrounds() { tr -d '\r' <"$CONSOLE_DIR/guest-$1.log" | grep -c "GUEST-BGLOOP $2 round [0-9]* ok"; }

# --- 1. both backends at once ---
start_drv "a:64"
imgb=$IMG_DIR/drvdom-b.raw
make_image "$imgb" 64
write_cfg drvb 2 "wait:/dev/xvda:120;bgloop:/dev/xvda:8;sleep:100000" "$(disk_spec "$imgb" xvda w)"
sed -i "s/^memory = .*/memory = $GUEST_MEM/" /tmp/drvb.cfg
write_cfg drva 2 "wait:/dev/xvda:120;rw:/dev/xvda:0:16:31:2;bgloop:/dev/xvda:8;wait:/dev/xvdb:800;rw:/dev/xvdb:0:16:32:2;waitgone:/dev/xvda:120;sleep:100000" \
	"$(drv_disk a xvda)"
sed -i "s/^memory = .*/memory = $GUEST_MEM/" /tmp/drva.cfg
fds0=$(blanketd_fds)
maps0=$(blanketd_gnt_maps)
start_guest drvb
domb=$(xl domid drvb)
start_guest drva
doma=$(xl domid drva)
vd=$(vdev_id xvda)
wait_step drva 'rw:/dev/xvda:0:16:31:2' 600
be=/local/domain/$drvid/backend/vbd/$doma/$vd
[ "$(xenstore-read "$be/state" 2>/dev/null)" = 4 ] ||
	fail "guest A's disk: no Connected backend at $be ($(xenstore-ls -f "$be" 2>&1 | head -n 20))"
[ "$(xenstore-read "/local/domain/$doma/device/vbd/$vd/backend-id")" = "$drvid" ] ||
	fail "guest A's frontend does not name drv ($drvid) as its backend"
[ -z "$(backend_nodes "$doma")" ] || fail "dom0 has backend nodes for guest A (domain $doma)"
wait_console drvb 'GUEST-STEP wait:/dev/xvda:120 ok' 300
[ "$(be_read "$domb" "$vd" state)" = 4 ] || fail "guest B's disk is not Connected in dom0"
n=$(wait_drv_served)
[ "$n" -gt 0 ] || fail "drv's blanketd reports no request served"
say "guest A ($doma): verified 16 MiB on xvda served by drv's blanketd ($n requests there)"
# What blanketd said at start in the driver domain: no domctl there, and what that changes.
grep -q 'DRV-LOG.*no domctl (not privileged)' "$CONSOLE_DIR/guest-drv.log" ||
	fail "drv's blanketd did not say that it has no domctl"
tr -d '\r' <"$CONSOLE_DIR/guest-drv.log" | grep -o 'DRV-LOG.*no domctl.*' | sed 's/^/  /'
wait_console drva 'GUEST-BGLOOP /dev/xvda round 1 ok' 300
wait_console drvb 'GUEST-BGLOOP /dev/xvda round 1 ok' 300
say "both guests in verified I/O loops: A on drv, B on dom0 (B's requests in dom0: $(blanketd_served))"

# --- 2. the driver domain dies during A's I/O ---
cp "$CONSOLE_DIR/guest-drv.log" /tmp/drv1.log
a0=$(bgrounds drva /dev/xvda)
say "xl destroy drv (domain $drvid) during guest A's I/O (A: $a0 rounds so far)"
xl destroy drv || fail "xl destroy drv failed"
end=$((SECONDS + 30))
while [ -n "$(xenstore-list "/local/domain/$drvid" 2>/dev/null)" ]; do
	[ $SECONDS -ge $end ] && fail "drv's xenstore nodes still there 30 s after xl destroy"
	sleep 0.5
done
sleep 2
a1=$(bgrounds drva /dev/xvda)
b1=$(bgrounds drvb /dev/xvda)
end=$((SECONDS + 300))
while [ "$(bgrounds drvb /dev/xvda)" -lt $((b1 + 2)) ]; do
	grep -q 'GUEST-BGLOOP /dev/xvda round [0-9]* fail' "$CONSOLE_DIR/guest-drvb.log" &&
		{ guest_log drvb; fail "guest B's verified I/O on dom0's blanketd failed"; }
	[ $SECONDS -ge $end ] && fail "guest B's I/O on dom0 made no 2 rounds in 300 s after drv died"
	sleep 1
done
blanketd_alive || fail "dom0's blanketd died"
a2=$(bgrounds drva /dev/xvda)
[ "$a2" = "$a1" ] || fail "guest A's loop went on ($a1 -> $a2 rounds) with its backend domain gone"
if grep -q 'GUEST-BGLOOP /dev/xvda round [0-9]* fail' "$CONSOLE_DIR/guest-drva.log"; then
	say "guest A saw its disk fail: $(grep -o 'GUEST-BGLOOP /dev/xvda round [0-9]* fail' "$CONSOLE_DIR/guest-drva.log" | tr -d '\r')"
else
	say "guest A's I/O on xvda stays pending (no error: blkfront has no request timeout)"
fi
say "guest B went on: $b1 -> $(bgrounds drvb /dev/xvda) verified rounds on dom0's blanketd"
[ -z "$(backend_nodes "$doma")" ] || fail "dom0 has backend nodes for guest A"
if grep -E "vbd $doma/" "$BLANKETD_LOG"; then fail "dom0's blanketd logged about guest A's disk"; fi
say "left of A's dead disk (libxl's): frontend $(xenstore-read "/local/domain/$doma/device/vbd/$vd/state" 2>/dev/null || echo none), /libxl/$doma/device/vbd/$vd $(xenstore-list "/libxl/$doma/device/vbd/$vd" >/dev/null 2>&1 && echo present || echo none)"

# --- 3. a new driver domain serves A again ---
start_drv "c:64"
say "xl block-attach drva xvdb from the new drv (domain $drvid)"
xl block-attach drva "$(drv_disk c xvdb | tr -d "'")" || fail "xl block-attach failed"
wait_step drva 'rw:/dev/xvdb:0:16:32:2' 600
n=$(wait_drv_served)
[ "$n" -gt 0 ] || fail "the new drv's blanketd reports no request served"
say "guest A: verified 16 MiB on xvdb served by the new drv ($n requests there)"
say "xl block-detach drva xvda (its backend died with the old drv)"
timeout 120 xl block-detach drva xvda || fail "xl block-detach of the dead xvda failed"
[ -z "$(xenstore-list "/local/domain/$doma/device/vbd/$vd" 2>/dev/null)" ] ||
	fail "the dead xvda's frontend directory is still there after block-detach"
wait_step drva 'waitgone:/dev/xvda:120' 300
say "guest A's dead xvda is gone"
# Its requests pending since drv died: failed by the detach (blkfront's removal), or not.
end=$((SECONDS + 20))
while ! grep -q 'GUEST-BGLOOP /dev/xvda round [0-9]* fail' "$CONSOLE_DIR/guest-drva.log" &&
	[ $SECONDS -lt $end ]; do
	sleep 1
done
if grep -q 'GUEST-BGLOOP /dev/xvda round [0-9]* fail' "$CONSOLE_DIR/guest-drva.log"; then
	say "guest A's pending I/O on xvda ended in an error at the detach"
else
	say "guest A's I/O loop on xvda still has not returned after the detach"
fi
tr -d '\r' <"$CONSOLE_DIR/guest-drva.log" | grep -iE 'xvda|blkfront|I/O error' | tail -n 8 |
	sed 's/^/  A | /'
blanketd_alive || fail "dom0's blanketd died"
grep -q 'GUEST-BGLOOP /dev/xvda round [0-9]* fail' "$CONSOLE_DIR/guest-drvb.log" &&
	fail "guest B's verified I/O on dom0's blanketd failed"
say "guest B: $(bgrounds drvb /dev/xvda) verified rounds on dom0's blanketd, no error"
xl destroy drva
xl destroy drvb
wait_no_backend "$domb" 30
wait_blanketd_back "$fds0" "$maps0" 30
say "dom0's blanketd back to $fds0 fds and $maps0 gntdev maps"
xl destroy drv
exit 0
