#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario 2: two guests at once, two disks each: a sparse raw file and a loop block device,
# one of them read-only. The guest's write to the read-only disk must fail and its read work;
# the read-write disks hold the guests' data afterwards and the read-only ones are unchanged.
. /lab/dom0-lib.sh

a_file=$IMG_DIR/a.raw b_file=$IMG_DIR/b.raw a_back=$IMG_DIR/a-loop.raw b_back=$IMG_DIR/b-loop.raw
make_image "$a_file" 64
make_image "$b_file" 64
make_image "$a_back" 64
make_image "$b_back" 64
a_loop=$(losetup -f --show "$a_back") || fail "losetup failed"
b_loop=$(losetup -f --show "$b_back") || fail "losetup failed"
trap 'losetup -d "$a_loop" "$b_loop" 2>/dev/null' EXIT
say "loop devices $a_loop $b_loop"
# Read-only content, prepared in dom0: A reads its loop device, B its file.
iotool write "$a_loop" 0 8 31 >/dev/null || fail "cannot prepare $a_loop"
iotool write "$b_file" 0 8 32 >/dev/null || fail "cannot prepare $b_file"

# The backend marks the disk read-only (info=VDISK_READONLY): the guest kernel refuses the write.
ro_steps() { echo "verify:$1:0:8:$2;readonly:$1;trywrite:$1;verify:$1:0:8:$2"; }
write_cfg da 1 "wait:/dev/xvda:60;wait:/dev/xvdb:60;rw:/dev/xvda:0:16:41:1;$(ro_steps /dev/xvdb 31)" \
	"$(disk_spec "$a_file" xvda w)" "$(disk_spec "$a_loop" xvdb r)"
write_cfg db 1 "wait:/dev/xvda:60;wait:/dev/xvdb:60;rw:/dev/xvda:0:16:42:1;$(ro_steps /dev/xvdb 32)" \
	"$(disk_spec "$b_loop" xvda w)" "$(disk_spec "$b_file" xvdb r)"
start_guest da
start_guest db
wait_guest_done da 600
wait_guest_done db 600
blanketd_alive || fail "blanketd died"

for g in da db; do
	grep 'IOTOOL trywrite' "$CONSOLE_DIR/guest-$g.log" | tr -d '\r' | while IFS= read -r line; do
		say "guest $g, read-only disk: $line"
		case $line in
		*failed*) ;;
		*) fail "guest $g could write to its read-only disk ($line)" ;;
		esac
	done || exit 1
	[ "$(grep -c 'IOTOOL trywrite' "$CONSOLE_DIR/guest-$g.log")" = 1 ] || fail "guest $g: the write attempt is missing"
	say "guest $g: $(grep GUEST-RO "$CONSOLE_DIR/guest-$g.log" | tr -d '\r')"
done
sync
iotool verify "$a_file" 0 16 41 >/dev/null || fail "file disk of guest da lacks its data"
iotool verify "$b_loop" 0 16 42 >/dev/null || fail "loop disk of guest db lacks its data"
iotool verify "$a_loop" 0 8 31 >/dev/null || fail "read-only loop disk of guest da changed"
iotool verify "$b_file" 0 8 32 >/dev/null || fail "read-only file disk of guest db changed"
a_sum=$(guest_value da 'IOTOOL rw ok' sum)
[ "$a_sum" = "$(iotool sum "$a_file" 0 16 | sed -n 's/.*sum=//p')" ] || fail "checksum of da differs"
say "read-write disks hold the guests' data, read-only disks unchanged"
exit 0
