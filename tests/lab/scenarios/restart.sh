#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario: blanketd restarts the guest never notices. A PV guest runs a verified loop on its
# disk (round k: pattern data of seed 500+k in random-sized chunks at random offsets of its own
# 16 MiB range, O_DIRECT from 4 threads on 2 vCPUs, fsync, read back and verified, checksum printed). While it
# runs dom0 stops blanketd 6 times (SIGKILL and SIGTERM in turn) and starts a new one, which
# adopts the device still Connected and re-issues what the old one left in flight; the next
# restart comes once the new daemon has served guest requests, a random 0-2 s later.
# Passes when every round verified with no I/O error, the guest's whole kernel log has no
# blkfront or block layer error, xenstore stayed Connected, each new daemon adopted the device,
# and the image in dom0 holds every round's data with the guest's checksums.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "restarts concern blanketd only"

RESTARTS=(KILL TERM KILL TERM KILL TERM)
# New daemons get the boot's lab.blanketd_args (and RS_ARGS, none here: see dom0-lib.sh).
# Enough rounds to outlast the restarts (a round takes 1.3-20 s here, a restart costs the guest
# up to 3 rounds); the steps must fit the guest's command line (1 KiB).
MIB=16
ROUNDS=28
# Two threads per vCPU (and per queue): requests complete out of order, so a kill often leaves
# answers published ahead of requests still in flight, which only the journal can re-issue.
THREADS=4
TOTAL=$((ROUNDS * MIB))
img=$IMG_DIR/restart.raw
glog=$CONSOLE_DIR/guest-rs.log
seed() { echo $((500 + $1)); }

make_image "$img" $((TOTAL + 16))
steps="wait:/dev/xvda:60"
for ((k = 1; k <= ROUNDS; k++)); do
	steps+=";rw:/dev/xvda:$(((k - 1) * MIB)):$MIB:$(seed "$k"):$THREADS"
done
steps+=";sum:/dev/xvda:0:$TOTAL"
[ ${#steps} -lt 960 ] || fail "the guest's steps (${#steps} bytes) do not fit its 1 KiB command line"
write_cfg rs 2 "$steps" "$(disk_spec "$img" xvda w)"
# The guest's whole kernel log on its console (not only errors), so blkfront's lines are checked.
sed -i 's/quiet loglevel=4/loglevel=7/' /tmp/rs.cfg
grep -q 'loglevel=7' /tmp/rs.cfg || fail "cannot raise the guest's console log level"

start_guest rs
domid=$(xl domid rs)
dev=$(vdev_id xvda)
wait_console rs 'GUEST-STEP wait:' 180
RS_GUEST=rs RS_DOMID=$domid RS_DEV=$dev RS_THREADS=$THREADS

[ -x /usr/sbin/blanketctl ] || skip "no blanketctl in this build (needed to see I/O flow)"
rs_wait_round 1 300 # the first round also warms up QEMU's translation of the guest's code
for ((n = 1; n <= ${#RESTARTS[@]}; n++)); do
	[ "$n" = 1 ] || rs_wait_served 64 120 "$((n - 1))"
	# 0-1.9 s: the guest has I/O in flight. Not once 12 rounds or fewer are left: a fast host
	# would run out of rounds before the last restart (l0kill did).
	[ $((ROUNDS - $(grep -c 'IOTOOL rw ok' "$glog"))) -gt 12 ] &&
		sleep "$((RANDOM % 2)).$((RANDOM % 10))"
	grep -q GUEST-DONE "$glog" &&
		fail "the guest finished its $ROUNDS rounds before restart $n: too few rounds for this machine"
	rs_restart "$n" "${RESTARTS[$((n - 1))]}"
done
rs_wait_served 64 120 "${#RESTARTS[@]}"
say "${#RESTARTS[@]} restarts done, $RS_REISSUED request(s) re-issued from the in-flight journal in all"
[ "$RS_REISSUED" -gt 0 ] ||
	echo "LAB-WARN no SIGKILL left a journaled request to re-issue this time"

rs_wait_round "$ROUNDS" 300
wait_guest_done rs 300
wait_no_backend "$domid" 30
blanketd_alive || fail "blanketd died"

# The guest: every round verified, no I/O error, a clean kernel log.
n=$(grep -c 'IOTOOL rw ok' "$glog")
[ "$n" = "$ROUNDS" ] || fail "the guest verified $n rounds, not $ROUNDS"
! grep -q 'IOTOOL error' "$glog" || { grep 'IOTOOL error' "$glog" | head; fail "the guest saw I/O errors"; }
grep -q 'blkfront: xvda:' "$glog" || fail "blkfront's kernel messages are not on the guest console"
kerr=$(guest_block_errors rs)
if [ -n "$kerr" ]; then
	echo "$kerr" | head -n 20 | sed 's/^/  | /'
	fail "the guest's kernel log shows block errors"
fi
say "guest kernel log: $(grep -c '^\[' "$glog") lines on the console, no block error; $(tr -d '\r' <"$glog" | grep -o 'blkfront: xvda:.*' | head -n 1)"

# dom0: the image holds every round's data, with the checksums the guest printed.
for ((k = 1; k <= ROUNDS; k++)); do
	off=$(((k - 1) * MIB))
	gsum=$(grep 'IOTOOL rw ok' "$glog" | sed -n "${k}p" | sed -n 's/.*sum=\([0-9a-f]*\).*/\1/p')
	dsum=$(iotool sum "$img" "$off" "$MIB" | sed -n 's/.*sum=//p')
	[ -n "$gsum" ] && [ "$gsum" = "$dsum" ] ||
		fail "round $k: guest checksum '$gsum', image in dom0 '$dsum'"
	iotool verify "$img" "$off" "$MIB" "$(seed "$k")" >/dev/null ||
		fail "round $k: the image does not hold the guest's pattern"
done
gsum=$(guest_value rs 'IOTOOL sum ok' sum)
dsum=$(iotool sum "$img" 0 "$TOTAL" | sed -n 's/.*sum=//p')
[ -n "$gsum" ] && [ "$gsum" = "$dsum" ] || fail "final checksum: guest '$gsum', image in dom0 '$dsum'"
say "PASS: $ROUNDS rounds verified through ${#RESTARTS[@]} restarts (${RESTARTS[*]}), $RS_REISSUED re-issued; checksum $gsum (guest) = $dsum (dom0)"
exit 0
