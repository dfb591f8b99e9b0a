#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario l0two (issue 10, proofs 2 and 3): two guests on two ranges of one L0 virtio-blk disk
# (0000:00:0a.0, 32 MiB each at 100 MiB and 132 MiB, clear of l0blk's 1-49 MiB: run.sh checks every scenario's data on the host after the boot), verified random I/O with flushes in both at
# once while dom0's memory is compacted every second (pages move, grant mappings churn the p2m
# generation). A third guest whose range overlaps the first one's is refused with an error
# naming both ranges. Afterwards dom0's kernel reads each guest's checksum in its range, and
# zeros between and after them.
. /lab/dom0-lib.sh

BDF=0000:00:0a.0
dir=/sys/bus/pci/devices/$BDF
[ -e "$dir" ] || skip "no L0 virtio-blk device at $BDF (run.sh adds it for l0* scenarios)"
modprobe uio_pci_generic || fail "cannot load uio_pci_generic"

t="backendtype=phy,script=blanket,target=engine=virtio-blk,pci=$BDF"
# xl create takes about 15 s here and 24 MiB of I/O about 8 s: the sleeps line the two guests'
# I/O up in time, and l0a keeps its range (sleeping) while l0c asks for an overlapping one.
write_cfg l0a 1 "wait:/dev/xvda:120;sleep:25;rw:/dev/xvda:0:24:501:2:8;sleep:45" \
	"'vdev=xvda,format=raw,access=rw,$t,offset=100M,size=32M'"
write_cfg l0b 1 "wait:/dev/xvda:120;sleep:5;rw:/dev/xvda:0:24:502:2:8" \
	"'vdev=xvda,format=raw,access=rw,$t,offset=132M,size=32M'"
write_cfg l0c 1 "wait:/dev/xvda:30" "'vdev=xvda,format=raw,access=rw,$t,offset=120M,size=8M'"
start_guest l0a
ida=$(xl domid l0a)
start_guest l0b
idb=$(xl domid l0b)
# The overlap, while l0a holds its range.
start_guest l0c
end=$((SECONDS + 120))
until grep -q "range 125829120+8388608 of virtio-blk $BDF overlaps 104857600+33554432" "$BLANKETD_LOG"; do
	[ $SECONDS -ge $end ] && fail "no overlap refusal for l0c in blanketd's log"
	sleep 1
done
show "  $(grep "range 125829120+8388608" "$BLANKETD_LOG" | tail -n 1)"
xl destroy l0c 2>/dev/null

# Compaction under I/O until both guests are done.
( while :; do echo 1 >/proc/sys/vm/compact_memory; sleep 1; done ) &
cpid=$!
wait_guest_done l0a 900
wait_guest_done l0b 900
# Both disks were connected at once (l0b connected before l0a went away).
ca=$(grep -n "vbd $ida/51712: removed" "$BLANKETD_LOG" | head -n 1 | cut -d: -f1)
cb=$(grep -n "vbd $idb/51712: connected" "$BLANKETD_LOG" | head -n 1 | cut -d: -f1)
[ -n "$ca" ] && [ -n "$cb" ] && [ "$cb" -lt "$ca" ] ||
	fail "l0a and l0b were not connected at the same time (blanketd log lines $cb, $ca)"
kill $cpid
blanketd_alive || fail "blanketd died"
grep -E "virtio-blk $BDF: .*(moved|no interrupt)" "$BLANKETD_LOG" | tail -n 3 |
	while IFS= read -r l; do show "  $l"; done
asum=$(guest_value l0a 'IOTOOL rw ok' sum)
bsum=$(guest_value l0b 'IOTOOL rw ok' sum)
[ -n "$asum" ] && [ -n "$bsum" ] || fail "a guest printed no checksum"

kdev=$(l0_kernel_dev "$BDF" 60) || fail "$BDF did not go back to dom0's virtio driver"
[ "$(iotool sum "/dev/$kdev" 100 24 | sed -n 's/.*sum=//p')" = "$asum" ] ||
	fail "l0a's range does not hold its checksum $asum"
[ "$(iotool sum "/dev/$kdev" 132 24 | sed -n 's/.*sum=//p')" = "$bsum" ] ||
	fail "l0b's range does not hold its checksum $bsum"
iotool zero "/dev/$kdev" 124 8 || fail "bytes between the two guests' data changed"
iotool zero "/dev/$kdev" 156 100 || fail "bytes after l0b's data changed"
echo "LAB-L0SUM 100 24 $asum"
echo "LAB-L0SUM 132 24 $bsum"
say "two guests on two ranges under compaction: checksums $asum and $bsum match the L0 disk"
exit 0
