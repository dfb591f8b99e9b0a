#!/bin/bash
# SPDX-License-Identifier: MIT
# Smoke test of the lab itself: one guest, one small disk, 4 MiB written and verified.
. /lab/dom0-lib.sh

img=$IMG_DIR/smoke.raw
make_image "$img" 16
write_cfg smoke 1 "wait:/dev/xvda:60;write:/dev/xvda:0:4:7;verify:/dev/xvda:0:4:7" \
	"$(disk_spec "$img" xvda w)"
start_guest smoke
wait_guest_done smoke 240
iotool verify "$img" 0 4 7 || fail "the image does not hold the guest's data"
exit 0
