#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario l0pfn (issue 10's acceptance): the same L0 disk as l0blk, with the DMA translation
# broken on purpose (options dma=pagemap: the device is given dom0's PFNs, not machine frames).
# blanketd must refuse the device with a clear message from its DMA check before any guest
# I/O, and give the device back. Run it after l0blk: the device is sent to wrong frames.
. /lab/dom0-lib.sh

BDF=0000:00:0a.0
dir=/sys/bus/pci/devices/$BDF
[ -e "$dir" ] || skip "no L0 virtio-blk device at $BDF (run.sh adds it for l0* scenarios)"
modprobe uio_pci_generic || fail "cannot load uio_pci_generic"

before=$(grep -c "virtio-blk $BDF: DMA check" "$BLANKETD_LOG")
spec="'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=engine=virtio-blk,pci=$BDF,offset=1M,size=48M,options=dma=pagemap'"
write_cfg l0pfn 1 "wait:/dev/xvda:60" "$spec"
start_guest l0pfn
end=$((SECONDS + 180))
while [ "$(grep -c "virtio-blk $BDF: DMA check" "$BLANKETD_LOG")" -le "$before" ]; do
	[ $SECONDS -ge $end ] && fail "no DMA check result from blanketd in 180 s"
	blanketd_alive || fail "blanketd died"
	sleep 1
done
sleep 1
grep -E "virtio-blk $BDF: (DMA|.*forced)" "$BLANKETD_LOG" | tail -n 3 |
	while IFS= read -r l; do show "  $l"; done
msg=$(grep "virtio-blk $BDF: DMA check" "$BLANKETD_LOG" | tail -n 1)
case $msg in
*"DMA check passed"*) fail "the device passed the DMA check with PFNs: $msg" ;;
*"DMA mode pagemap"*) ;;
*) fail "the DMA check failed without naming the mode: $msg" ;;
esac
xl destroy l0pfn 2>/dev/null
blanketd_alive || fail "blanketd died"
say "PFN addresses refused: ${msg#*: }"
exit 0
