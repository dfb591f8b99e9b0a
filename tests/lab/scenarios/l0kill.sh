#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario l0kill (issue 10, proof 5): blanketd killed and restarted during a guest's disk I/O
# on the L0 virtio-blk device (0000:00:0a.0, an 87 MiB range at 168 MiB, clear of l0blk's and
# l0two's ranges; run it after them in a boot: they check that the disk past their ranges
# still reads as zeros). A 2-vCPU guest runs verified rounds (round k: pattern of seed 600+k in
# random-sized chunks from 2 threads over its own 3 MiB, fsync, read back and verified); dom0
# stops blanketd up to 5 times, at least 3 (SIGKILL, SIGTERM, SIGKILL, ...) and starts a new
# one, which adopts the disk still Connected, takes the device again (a killed or stopped
# daemon leaves it bound to uio_pci_generic, a killed one maybe mid-I/O: it is reset before
# DMA is enabled) and re-issues what the journal holds. Passes when every round verified with no I/O error, no block error in the
# guest's kernel log, each new daemon adopted the disk, the device went back to dom0's kernel
# once the guest was gone, and dom0's kernel reads each round's checksum where the guest wrote
# it and the guest's checksum of the whole range (run.sh checks the image file on the host
# too: LAB-L0SUM).
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "restarts concern blanketd only"
BDF=0000:00:0a.0
dir=/sys/bus/pci/devices/$BDF
[ -e "$dir" ] || skip "no L0 virtio-blk device at $BDF (run.sh adds it for l0* scenarios)"
modprobe uio_pci_generic || fail "cannot load uio_pci_generic"
[ -x /usr/sbin/blanketctl ] || skip "no blanketctl in this build (needed to see I/O flow)"

# At least the first 3 (a TERM among them) while the guest's rounds run: a release build's
# guest may be done with its rounds before the last ones (it then idles, connected, in a last
# sleep step, so a restart racing its last round still finds it connected).
RESTARTS=(KILL TERM KILL KILL KILL)
MIN_RESTARTS=3
OFF=168 # MiB: the range on the L0 disk
MIB=3
ROUNDS=29
THREADS=2
TOTAL=$((ROUNDS * MIB))
glog=$CONSOLE_DIR/guest-lk.log
seed() { echo $((600 + $1)); }

steps="wait:/dev/xvda:120"
for ((k = 1; k <= ROUNDS; k++)); do
	steps+=";rw:/dev/xvda:$(((k - 1) * MIB)):$MIB:$(seed "$k"):$THREADS"
done
steps+=";sleep:30;sum:/dev/xvda:0:$TOTAL"
[ ${#steps} -lt 960 ] || fail "the guest's steps (${#steps} bytes) do not fit its 1 KiB command line"
write_cfg lk 2 "$steps" \
	"'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=engine=virtio-blk,pci=$BDF,offset=${OFF}M,size=${TOTAL}M'"
sed -i 's/quiet loglevel=4/loglevel=7/' /tmp/lk.cfg
grep -q 'loglevel=7' /tmp/lk.cfg || fail "cannot raise the guest's console log level"

start_guest lk
domid=$(xl domid lk)
dev=$(vdev_id xvda)
wait_console lk 'GUEST-STEP wait:' 180

RS_GUEST=lk RS_DOMID=$domid RS_DEV=$dev RS_THREADS=$THREADS RS_SHOW=$BDF
# The device as the old daemon left it: still with uio_pci_generic after a kill, and bus
# mastering (0x4 in the command register) off, as uio_pci_generic leaves it once the old
# daemon's /dev/uioN closed.
rs_stopped() {
	say "  $BDF now with '$(basename "$(readlink "$dir/driver")" 2>/dev/null)'," \
		"PCI command register $(od -An -tx2 -j4 -N2 "$dir/config" 2>/dev/null | tr -d ' ')"
}

rounds_done() { grep -c 'IOTOOL rw ok' "$glog" 2>/dev/null; }
# served_or_done AFTER: the new daemon served 16 requests (less than a round), or the guest's
# rounds are over.
served_or_done() {
	local end=$((SECONDS + 120))
	until [ "$(blanketd_served)" -ge 16 ] || [ "$(rounds_done)" -ge "$ROUNDS" ]; do
		if grep -qE 'GUEST-STEP .* fail|IOTOOL error' "$glog" 2>/dev/null; then
			guest_log lk
			fail "the guest's verified I/O failed after restart $1 (see its console above)"
		fi
		[ $SECONDS -ge $end ] && { guest_log lk; fail "guest I/O stalled after restart $1"; }
		sleep 0.5
	done
}

rs_wait_round 1 300
done_restarts=0
for ((n = 1; n <= ${#RESTARTS[@]}; n++)); do
	[ "$n" = 1 ] || served_or_done "$((n - 1))"
	# A random moment of the I/O, while enough rounds are left: a guest on a quiet host has
	# done a round in 0.3 s, and 10-14 rounds went by between restarts when this slept up to
	# 2 s, too many for 3 restarts in 29 rounds.
	[ $((ROUNDS - $(rounds_done))) -gt 12 ] && sleep "0.$((RANDOM % 5))"
	[ "$(rounds_done)" -ge "$ROUNDS" ] && break
	rs_restart "$n" "${RESTARTS[$((n - 1))]}"
	done_restarts=$n
done
[ "$done_restarts" -ge "$MIN_RESTARTS" ] ||
	fail "the guest finished its $ROUNDS rounds after $done_restarts restart(s): too few rounds for this machine"
served_or_done "$done_restarts"
say "$done_restarts restarts done (${RESTARTS[*]:0:$done_restarts}), $RS_REISSUED request(s) re-issued from the in-flight journal in all"

rs_wait_round "$ROUNDS" 600
wait_guest_done lk 300
blanketd_alive || fail "blanketd died"

n=$(grep -c 'IOTOOL rw ok' "$glog")
[ "$n" = "$ROUNDS" ] || fail "the guest verified $n rounds, not $ROUNDS"
! grep -q 'IOTOOL error' "$glog" || { grep 'IOTOOL error' "$glog" | head; fail "the guest saw I/O errors"; }
kerr=$(guest_block_errors lk)
if [ -n "$kerr" ]; then
	echo "$kerr" | head -n 20 | sed 's/^/  | /'
	fail "the guest's kernel log shows block errors"
fi

# The last daemon gives the device back to dom0's kernel once the guest is gone (it had
# inherited it bound to uio_pci_generic from a killed one).
kdev=$(l0_kernel_dev "$BDF" 60) || fail "$BDF did not go back to dom0's virtio driver after the guest"
say "$BDF is back with dom0's virtio-pci as /dev/$kdev"
# (The pattern depends on the offset the guest wrote at: compare checksums, not patterns.)
for ((k = 1; k <= ROUNDS; k++)); do
	off=$((OFF + (k - 1) * MIB))
	rsum=$(grep 'IOTOOL rw ok' "$glog" | sed -n "${k}p" | sed -n 's/.*sum=\([0-9a-f]*\).*/\1/p')
	dsum=$(iotool sum "/dev/$kdev" "$off" "$MIB" | sed -n 's/.*sum=//p')
	[ -n "$rsum" ] && [ "$rsum" = "$dsum" ] ||
		fail "round $k: guest checksum '$rsum', the L0 disk at $off MiB read by dom0 '$dsum'"
done
gsum=$(guest_value lk 'IOTOOL sum ok' sum)
dsum=$(iotool sum "/dev/$kdev" "$OFF" "$TOTAL" | sed -n 's/.*sum=//p')
[ -n "$gsum" ] && [ "$gsum" = "$dsum" ] || fail "final checksum: guest '$gsum', L0 disk in dom0 '$dsum'"
echo "LAB-L0SUM $OFF $TOTAL $gsum"
say "PASS: $ROUNDS rounds verified through $done_restarts restarts (${RESTARTS[*]:0:$done_restarts}), $RS_REISSUED re-issued; checksum $gsum (guest) = $dsum (L0 disk read by dom0's kernel)"
exit 0
