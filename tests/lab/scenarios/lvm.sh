#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 11 item 4, a PV guest whose disk is an LVM logical volume in dom0: a volume group on a
# loop device (a file on the scratch disk), a thin pool, and a thin LV given to the guest as
# target=/dev/labvg/thinlv. The guest writes, discards, checks the discarded range reads zero,
# and does verified random I/O. dom0 checks: discard requests reached blanketd (blanketctl
# stats), the thin pool gave the discarded blocks back (its data usage fell), and the LV holds
# the guest's data after the guest is gone.
. /lab/dom0-lib.sh

command -v lvm >/dev/null || skip "no lvm in the dom0 image (lvm2 not installed on the host)"
modprobe dm-thin-pool || fail "modprobe dm-thin-pool failed"
# No udev in the lab's dom0: lvm makes the /dev nodes and links itself.
mkdir -p /etc/lvm /run/lvm /run/lock/lvm
cat >/etc/lvm/lvm.conf <<'EOF'
devices {
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
}
activation {
	udev_sync = 0
	udev_rules = 0
	verify_udev_operations = 1
	monitoring = 0
}
global {
	use_lvmpolld = 0
}
EOF

pvimg=$IMG_DIR/lvm-pv.raw
make_image "$pvimg" 512
loopdev=$(losetup -f --show "$pvimg") || fail "losetup failed"
cleanup() {
	lvm vgchange -an labvg >/dev/null 2>&1
	losetup -d "$loopdev" 2>/dev/null
}
trap cleanup EXIT
lvm pvcreate -q "$loopdev" || fail "pvcreate $loopdev failed"
lvm vgcreate -q labvg "$loopdev" || fail "vgcreate failed"
lvm lvcreate -q -L 256M -T labvg/pool || fail "lvcreate thin pool failed"
lvm lvcreate -q -V 128M -T labvg/pool -n thinlv || fail "lvcreate thin LV failed"
lv=/dev/labvg/thinlv
[ -b "$lv" ] || fail "$lv is not a block device after lvcreate"
usage() { lvm lvs --noheadings -o data_percent labvg/pool | tr -d ' '; }
say "thin LV $lv ($(readlink -f "$lv")) on $loopdev, pool data usage $(usage)%"
mm=$(stat -L -c '%t:%T' "$lv")
echo "  LV queue: discard_granularity=$(cat "/sys/dev/block/$((16#${mm%:*})):$((16#${mm#*:}))/queue/discard_granularity" 2>/dev/null)"

dev=$(vdev_id xvda)
write_cfg lv 2 "wait:/dev/xvda:120;write:/dev/xvda:0:64:9;sleep:25;discard:/dev/xvda:0:48;zero:/dev/xvda:0:48;sleep:25;rw:/dev/xvda:64:32:12:2" \
	"$(disk_spec "$lv" xvda w)"
start_guest lv
dom=$(xl domid lv)
wait_console lv 'GUEST-STEP wait:' 120
fd=$(be_read "$dom" "$dev" feature-discard)
say "backend feature-discard=$fd discard-granularity=$(be_read "$dom" "$dev" discard-granularity)"
[ "$fd" = 1 ] || fail "blanketd does not offer discard on the thin LV (feature-discard='$fd')"

# The guest sleeps 25 s after its write and after its discard: time to look at the pool (lvm
# scans every device for each lvs, slow in a TCG dom0).
wait_console lv 'GUEST-STEP write:/dev/xvda:0:64:9 ok' 300
u1=$(usage)
wait_console lv 'GUEST-STEP zero:/dev/xvda:0:48 ok' 300
u2=$(usage)
nd=$(blanketctl stats --json "vbd $dom/$dev" 2>/dev/null | sed 's/.*"total":{//' |
	sed -n 's/.*"discard":\([0-9]*\).*/\1/p')
say "pool data usage: $u1% after writing 64 MiB, $u2% after discarding 48 MiB; discard requests: ${nd:-?}"
[ "${nd:-0}" -gt 0 ] || fail "no discard request reached blanketd"
awk -v a="$u1" -v b="$u2" 'BEGIN { exit !(b < a / 2) }' ||
	fail "the thin pool did not give the discarded blocks back ($u1% -> $u2%)"
wait_guest_done lv 600
wait_no_backend "$dom" 30
iotool verify "$lv" 48 16 9 >/dev/null || fail "data next to the discarded range changed"
iotool zero "$lv" 0 48 >/dev/null || fail "the discarded range does not read as zeroes in dom0"
say "the LV holds the guest's data; discarded range reads zero, the pool's usage fell"
blanketd_alive || fail "blanketd died"
exit 0
