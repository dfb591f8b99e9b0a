#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario 3: a discard from the guest frees the blocks in the backing file, and data the guest
# fsynced is in the file even when the guest is destroyed right after (no clean shutdown).
. /lab/dom0-lib.sh

img=$IMG_DIR/discard.raw
make_image "$img" 128
write_cfg dc 1 "wait:/dev/xvda:60;write:/dev/xvda:0:32:9;sleep:10;discard:/dev/xvda:0:16;zero:/dev/xvda:0:16;sleep:10;write:/dev/xvda:64:8:10;sleep:300" \
	"$(disk_spec "$img" xvda w)"
start_guest dc
domid=$(xl domid dc)
dev=$(vdev_id xvda)
wait_console dc 'GUEST-STEP wait:' 120
fd=$(be_read "$domid" "$dev" feature-discard)
say "backend feature-discard=$fd discard-granularity=$(be_read "$domid" "$dev" discard-granularity)"
[ "$fd" = 1 ] || fail "backend does not offer discard (feature-discard='$fd')"

wait_console dc 'GUEST-STEP write:/dev/xvda:0:32:9 ok' 300
# The guest sleeps 10 s after its write and after its discard: time to look at the file.
k1=$(file_kib "$img")
wait_console dc 'GUEST-STEP zero:/dev/xvda:0:16 ok' 300
k2=$(file_kib "$img")
say "file allocation after writing 32 MiB: $k1 KiB, after discarding 16 MiB: $k2 KiB"
[ "$k1" -ge 32768 ] || fail "the written data did not allocate the file ($k1 KiB)"
[ "$k2" -le $((k1 - 16384)) ] || fail "discard freed too little: $k1 -> $k2 KiB"

wait_console dc 'GUEST-STEP write:/dev/xvda:64:8:10 ok' 300
xl destroy dc || fail "xl destroy failed"
say "guest destroyed right after its fsync"
wait_no_backend "$domid" 30
iotool verify "$img" 64 8 10 >/dev/null || fail "fsynced data is not in the file after destroy"
iotool verify "$img" 16 16 9 >/dev/null || fail "data next to the discarded range changed"
iotool zero "$img" 0 16 >/dev/null || fail "discarded range does not read as zeroes"
blanketd_alive || fail "blanketd died"
exit 0
