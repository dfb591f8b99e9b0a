#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario l0blk (issue 10): a guest's disk served by blanketd's own userspace virtio-blk driver
# on the outer QEMU's virtio-blk-pci device (the "cloud's" disk, 0000:00:0a.0, added by run.sh),
# not through dom0's kernel. blanketd takes the device from dom0's virtio_blk driver, binds it
# to uio_pci_generic, gives it machine addresses (PFN -> MFN through dom0's p2m), and serves a
# 48 MiB range at 1 MiB of it. The guest writes 32 MiB of pattern data with flushes among the
# writes from two threads and verifies it; once the guest is gone blanketd hands the device
# back, and dom0's kernel reads the same checksum at 1 MiB and zeros around the range. run.sh
# then checks the image file on the host (LAB-L0SUM).
. /lab/dom0-lib.sh

BDF=0000:00:0a.0
dir=/sys/bus/pci/devices/$BDF
[ -e "$dir" ] || skip "no L0 virtio-blk device at $BDF (run.sh adds it for l0* scenarios)"
modprobe uio_pci_generic || fail "cannot load uio_pci_generic"
drv=$(basename "$(readlink "$dir/driver")" 2>/dev/null)
say "L0 device $BDF: $(cat "$dir/vendor"):$(cat "$dir/device"), dom0 driver ${drv:-none}"

spec="'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=engine=virtio-blk,pci=$BDF,offset=1M,size=48M'"
write_cfg l0blk 2 "wait:/dev/xvda:120;rw:/dev/xvda:0:32:777:2:8;features:/dev/xvda" "$spec"
start_guest l0blk
wait_guest_done l0blk 900
blanketd_alive || fail "blanketd died"
grep -E "virtio-blk $BDF: (DMA|.*bound to|took|.*bytes, block)" "$BLANKETD_LOG" |
	sed 's/^/  /' | while IFS= read -r l; do show "$l"; done

gsum=$(guest_value l0blk 'IOTOOL rw ok' sum)
[ -n "$gsum" ] || { guest_log l0blk; fail "the guest printed no checksum"; }

# Back with dom0's kernel once its last user is gone.
kdev=$(l0_kernel_dev "$BDF" 60) || fail "$BDF did not go back to dom0's virtio driver"
say "$BDF is back with dom0's virtio-pci as /dev/$kdev"
dsum=$(iotool sum "/dev/$kdev" 1 32 | sed -n 's/.*sum=//p')
[ "$gsum" = "$dsum" ] || fail "checksum mismatch: guest $gsum, L0 disk read by dom0's kernel $dsum"
iotool zero "/dev/$kdev" 0 1 || fail "bytes before the guest's range changed"
iotool zero "/dev/$kdev" 33 223 || fail "bytes after what the guest wrote changed"
echo "LAB-L0SUM 1 32 $gsum"
say "guest checksum $gsum matches the L0 disk at 1 MiB (read by dom0's kernel)"
grep -E 'GUEST-(FEATURES|QUEUES)' "$CONSOLE_DIR/guest-l0blk.log" | sed 's/^/  /'
exit 0
