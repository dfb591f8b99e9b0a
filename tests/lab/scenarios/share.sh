#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 11 item 2, shared-image safety on a real Xen (blanketd only):
#  a) two guests share an image read-only: both connect and verify its data;
#  b) guest sa has an image read-write (its disk made slow by the fault engine, 30 s a request,
#     so its device has I/O in flight for a long time); guest sb asking for the same image
#     read-write is refused: its backend's error node and blanketd's log name the image and sa;
#     guest sc with share=on (the xl way of w!) gets it anyway and does verified I/O in a region
#     sa does not touch;
#  c) xl destroy sa with that I/O in flight, and while it runs xl create sb2 on the same image:
#     sb2 connects (blanketd waits for sa's device to drain if it still holds the image, and
#     says so) and does verified I/O.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "blanketd's sharing check (the kernel backend has none)"
dev=$(vdev_id xvda)

# Smaller guests: three may run at once next to the 1 GiB dom0.
small_cfg() { sed -i 's/^memory = .*/memory = 192/' "/tmp/$1.cfg"; }

# sa first: its slow disk makes its boot long (blkfront reads the partition table through it).
# Each request is held 30 s, longer than xl destroy (up to 10 s waiting for the backend) plus
# the next guest's xl create take, so that its device still drains when sb2's disk opens.
img=$IMG_DIR/share.raw
make_image "$img" 64
write_cfg sa 2 "wait:/dev/xvda:400;loop:/dev/xvda:16" \
	"$(disk_spec "engine=fault,options=delay=30000ms:$img" xvda w)"
small_cfg sa
# Its init is waited for (boot_guest): sb, sb2 and the checks below need this very domain. Its
# kernel reads the partition table through the slow disk first: about 110 s to init in the lab.
boot_guest sa 360
doma=$(xl domid sa)

# --- a) read-only sharing (while sa's disk loop starts) ---
ro=$IMG_DIR/share-ro.raw
make_image "$ro" 32
iotool write "$ro" 0 8 31 >/dev/null || fail "cannot fill $ro"
for g in r1 r2; do
	write_cfg $g 1 "wait:/dev/xvda:120;readonly:/dev/xvda;verify:/dev/xvda:0:8:31" \
		"$(disk_spec "$ro" xvda r)"
	small_cfg $g
	start_guest $g
done
wait_guest_done r1 300
wait_guest_done r2 300
for g in r1 r2; do
	grep -q 'GUEST-RO /dev/xvda 1' "$CONSOLE_DIR/guest-$g.log" ||
		fail "guest $g: xvda is not read-only"
done
say "two guests shared $ro read-only and verified its data"

# --- b) read-write: refused, unless forced ---
wait_console sa 'GUEST-LOOPING' 600

write_cfg sb 1 "wait:/dev/xvda:30" "$(disk_spec "$img" xvda w)"
small_cfg sb
say "xl create sb (same image, read-write)"
want="$img is in use read-write by guest $doma (vbd $doma/$dev): refusing it read-write"
if xl create /tmp/sb.cfg; then
	domb=$(xl domid sb 2>/dev/null)
else
	say "xl create sb failed (a refusal too, if blanketd says why)"
	domb=
fi
end=$((SECONDS + 90))
err=
while [ $SECONDS -lt $end ]; do
	if [ -n "$domb" ]; then
		err=$(be_read "$domb" "$dev" error)
		[ -n "$err" ] && break
		[ "$(be_read "$domb" "$dev" state)" = 4 ] &&
			fail "guest sb's disk connected: $img is shared read-write with sa (domain $doma)"
	elif grep -q "$want" "$BLANKETD_LOG"; then
		break
	fi
	sleep 1
done
grep "$want" "$BLANKETD_LOG" | tail -n 1 | sed 's/^/  log: /'
[ -n "$domb" ] && grep -q "vbd $domb/$dev: connected" "$BLANKETD_LOG" &&
	fail "guest sb's disk connected: $img is shared read-write with sa (domain $doma)"
grep -q "$want to guest ${domb:-[0-9]*} " "$BLANKETD_LOG" ||
	fail "blanketd's log does not show sb refused, naming $img and guest sa (domain $doma)"
if [ -n "$domb" ]; then
	say "sb's backend error node: '$err'"
	echo "$err" | grep -q "$want" ||
		fail "sb's error node does not name $img and guest sa (domain $doma): '$err'"
fi
[ "$(be_read "$doma" "$dev" state)" = 4 ] || fail "sa's disk is no longer connected"
xl destroy sb 2>/dev/null
[ -z "$domb" ] || wait_no_backend "$domb" 30

write_cfg sc 1 "wait:/dev/xvda:120;rw:/dev/xvda:32:8:41:1" \
	"$(disk_spec "share=on:$img" xvda w)"
small_cfg sc
start_guest sc
wait_guest_done sc 600
iotool verify "$img" 32 8 41 >/dev/null || fail "sc's data is not in $img"
grep -q "$img: sharing forced" "$BLANKETD_LOG" || fail "blanketd did not log the forced sharing"
say "share=on: guest sc shared $img read-write with sa and verified its I/O"

# --- c) destroy sa mid-I/O, sb2 on the same image at once ---
n=$(blanketctl stats --json "vbd $doma/$dev" 2>/dev/null | sed -n 's/.*"total":.*"inflight":\([0-9]*\).*/\1/p')
say "sa has ${n:-?} request(s) in flight (each held 30 s); xl destroy sa, xl create sb2"
write_cfg sb2 1 "wait:/dev/xvda:180;rw:/dev/xvda:0:16:51:2" "$(disk_spec "$img" xvda w)"
small_cfg sb2
t0=$SECONDS
# xl destroy waits up to 10 s for the backend before it removes the nodes anyway: sb2 is
# created meanwhile, as an operator restarting a guest in a hurry would.
xl destroy sa >/tmp/share-destroy.log 2>&1 &
dpid=$!
sleep 1
start_guest sb2
domb2=$(xl domid sb2)
wait "$dpid" || fail "xl destroy sa failed: $(cat /tmp/share-destroy.log)"
wait_guest_done sb2 600
say "sb2 (domain $domb2) did verified I/O on $img, $((SECONDS - t0)) s after sa's destroy"
iotool verify "$img" 32 8 41 >/dev/null || fail "sc's region changed"
grep -E "vbd $doma/$dev: .*(removal|drain|removed|closed|Closed)" "$BLANKETD_LOG" | tail -n 4 |
	sed 's/^/  log: /'
if grep -q "vbd $domb2/$dev: $img is still open for guest $doma" "$BLANKETD_LOG"; then
	grep -E "vbd $domb2/$dev: $img (is still open|released)" "$BLANKETD_LOG" | sed 's/^/  log: /'
	say "sb2's device waited for sa's to drain, then connected"
else
	say "sa's device had drained before sb2's device opened the image (no wait needed)"
fi
wait_no_backend "$doma" 60
blanketd_alive || fail "blanketd died"
exit 0
