#!/bin/bash
# SPDX-License-Identifier: MIT
# The demo (scripts/demo): one guest does verified I/O through blanketd; show its result and
# blanketd's per-device statistics while the disk is connected.
. /lab/dom0-lib.sh

img=$IMG_DIR/demo.raw
make_image "$img" 128
write_cfg demo 2 "wait:/dev/xvda:60;rw:/dev/xvda:0:32:2024:2;features:/dev/xvda;sleep:120" \
	"$(disk_spec "$img" xvda w)"
start_guest demo
domid=$(xl domid demo)
show "guest 'demo' (domain $domid) boots with /dev/xvda served by $LAB_BACKEND"
show "xl block-list: $(xl block-list demo | tail -n +2 | tr -s ' ')"
wait_console demo 'GUEST-STEP features:' 600
grep -q 'IOTOOL rw ok' "$CONSOLE_DIR/guest-demo.log" || { guest_log demo; fail "guest I/O failed"; }
show ""
show "guest: $(grep 'IOTOOL rw ok' "$CONSOLE_DIR/guest-demo.log" | tr -d '\r')"
show "       (32 MiB written in random-sized chunks at random offsets with O_DIRECT from 2 CPUs,"
show "        read back and verified)"
show "guest: $(grep 'GUEST-FEATURES' "$CONSOLE_DIR/guest-demo.log" | tr -d '\r' | sed 's/.*blkfront: //')"
# What blkfront's "persistent grants" means here, from what the two ends advertised.
if [ "$LAB_BACKEND" = blanketd ]; then
	if [ "$(be_read "$domid" "$(vdev_id xvda)" feature-persistent)" = 1 ]; then
		show "       (persistent grants: blkfront copies into pages it granted once, blanketd keeps"
		show "        them mapped and does the I/O on them: a buffered store, no grant copy)"
	else
		show "       (persistent grants: not offered: blanketd copies every segment once with"
		show "        grant copy, so blkfront grants the request's own pages and copies nothing)"
	fi
fi
dsum=$(iotool sum "$img" 0 32 | sed -n 's/.*sum=//p')
show "dom0:  checksum of the image file $img: $dsum"
[ "$dsum" = "$(guest_value demo 'IOTOOL rw ok' sum)" ] || fail "the image does not match the guest's checksum"
show ""
if [ -x /usr/sbin/blanketctl ] && [ "$LAB_BACKEND" = blanketd ]; then
	show "blanketctl list:"
	blanketctl list 2>&1 | while IFS= read -r l; do show "  $l"; done
	show "blanketctl stats:"
	blanketctl stats 2>&1 | while IFS= read -r l; do show "  $l"; done
elif [ -f "$BLANKETD_LOG" ]; then
	show "blanketd log:"
	tail -n 20 "$BLANKETD_LOG" | while IFS= read -r l; do show "  $l"; done
fi
xl destroy demo
wait_no_backend "$domid" 30
exit 0
