#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario 1: a PV guest writes 64 MiB of pattern data in random-sized chunks at random offsets
# with O_DIRECT from two threads, reads it back and verifies it, and prints a checksum; dom0
# then checks the image file against the guest's checksum and the pattern.
. /lab/dom0-lib.sh

img=$IMG_DIR/io.raw
make_image "$img" 128
write_cfg io 2 "wait:/dev/xvda:60;rw:/dev/xvda:0:64:1234:2;features:/dev/xvda" \
	"$(disk_spec "$img" xvda w)"
start_guest io
wait_guest_done io 600
blanketd_alive || fail "blanketd died"

gsum=$(guest_value io 'IOTOOL rw ok' sum)
[ -n "$gsum" ] || { guest_log io; fail "the guest printed no checksum"; }
dsum=$(iotool sum "$img" 0 64 | sed -n 's/.*sum=//p')
[ "$gsum" = "$dsum" ] || fail "checksum mismatch: guest $gsum, image in dom0 $dsum"
iotool verify "$img" 0 64 1234 || fail "the image does not hold the guest's pattern"
iotool zero "$img" 64 64 || fail "bytes beyond the written range changed"
say "guest checksum $gsum matches the image in dom0"
grep -E 'GUEST-(FEATURES|QUEUES|HCTX)' "$CONSOLE_DIR/guest-io.log" | sed 's/^/  /'
exit 0
