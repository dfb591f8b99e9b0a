#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 11 item 3, per-disk rate limits on a real Xen (blanketd only), a measurement:
#  guest ra's disk is limited to N IOPS in its xl target (iops=N), guest rb's is not; both run
#  random 4 KiB I/O (iotool iops, 4 threads) at the same time. Prints both rates. Asserts only
#  loose bounds: ra stays under 1.5 N over the whole window, rb is above ra, and blanketctl
#  stats shows ra's throttled time (and none for rb). Then `blanketctl limit` raises ra's limit
#  live to 8 N, and ra's next window is faster than its first.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "blanketd's rate limits (the kernel backend has none)"
N=25
SECS=60
dev=$(vdev_id xvda)

# The "total" stats of a disk: json_blk_total DOMID DEVID KEY (0 when unknown).
json_blk_total() {
	local v
	v=$(blanketctl stats --json "vbd $1/$2" 2>/dev/null | sed 's/.*"total":{//' |
		sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p")
	echo "${v:-0}"
}
iops_of() {
	tr -d '\r' <"$CONSOLE_DIR/guest-$1.log" | grep 'IOTOOL iops ok' | sed -n "${2}p" |
		sed -n 's/.*iops=\([0-9]*\).*/\1/p'
}
small_cfg() { sed -i 's/^memory = .*/memory = 192/' "/tmp/$1.cfg"; }

ia=$IMG_DIR/rate-a.raw ib=$IMG_DIR/rate-b.raw
make_image "$ia" 64
make_image "$ib" 64
# rb starts first and runs three windows, so that ra's first window has rb busy throughout.
write_cfg rb 1 "wait:/dev/xvda:120;iops:/dev/xvda:64:$SECS:4;iops:/dev/xvda:64:$SECS:4;iops:/dev/xvda:64:$SECS:4" \
	"$(disk_spec "$ib" xvda w)"
small_cfg rb
write_cfg ra 1 "wait:/dev/xvda:120;iops:/dev/xvda:64:$SECS:4;sleep:30;iops:/dev/xvda:64:$SECS:4" \
	"$(disk_spec "iops=$N:$ia" xvda w)"
small_cfg ra
start_guest rb
domb=$(xl domid rb)
wait_console rb 'GUEST-STEP wait:' 120
start_guest ra
doma=$(xl domid ra)
# blanketd reads the limit when it opens the image, once the hotplug script is done: by the
# time the guest has its disk.
wait_console ra 'GUEST-STEP wait:' 300
grep "vbd $doma/$dev: rate limit" "$BLANKETD_LOG" | sed 's/^/  log: /'
grep -q "vbd $doma/$dev: rate limit iops=$N" "$BLANKETD_LOG" ||
	fail "blanketd did not take ra's limit iops=$N from its target"

wait_console ra 'IOTOOL iops' 300
a1=$(iops_of ra 1)
ta=$(json_blk_total "$doma" "$dev" throttled_ns)
blanketctl stats | sed 's/^/  /'
# Raise ra's limit live (during its 30 s pause): its second window must be faster.
blanketctl limit "$doma/$dev" iops=$((N * 8)) || fail "blanketctl limit failed"
say "blanketctl limit $doma/$dev iops=$((N * 8))"
grep "vbd $doma/$dev: .*limit" "$BLANKETD_LOG" | tail -n 1 | sed 's/^/  log: /'
# rb's stats while its disk is still there (in its third window): once the guest is gone, so
# are they, and a 0 would prove nothing.
end=$((SECONDS + 400))
until [ "$(grep -c 'IOTOOL iops ok' "$CONSOLE_DIR/guest-rb.log")" -ge 2 ]; do
	[ $SECONDS -lt $end ] || { guest_log rb; fail "rb did not finish its second window"; }
	sleep 0.5
done
nb=$(json_blk_total "$domb" "$dev" notify_in)
tb=$(json_blk_total "$domb" "$dev" throttled_ns)
[ "$nb" -gt 0 ] || fail "blanketctl stats has no counters for rb's disk (vbd $domb/$dev)"
wait_guest_done rb 400
b1=$(iops_of rb 1)
b2=$(iops_of rb 2)
say "ra (limit $N IOPS): $a1 IOPS in its first $SECS s; rb (unlimited): $b1 and $b2 IOPS in its first two windows (the second overlaps ra's)"
say "throttled time: ra $((ta / 1000000)) ms, rb $((tb / 1000000)) ms"
[ -n "$a1" ] && [ -n "$b1" ] && [ -n "$b2" ] || fail "a guest printed no iops result"
[ "$a1" -le $((N * 3 / 2)) ] || fail "ra did $a1 IOPS with a limit of $N"
[ "$b2" -gt "$a1" ] || fail "rb ($b2 IOPS) was not faster than the limited ra ($a1 IOPS)"
[ "$ta" -gt 0 ] || fail "blanketctl stats shows no throttled time for ra"
[ "$tb" = 0 ] || fail "blanketctl stats shows throttled time for the unlimited rb ($tb ns)"
wait_guest_done ra 400
a2=$(iops_of ra 2)
say "ra after the raise to $((N * 8)): $a2 IOPS (was $a1 at $N)"
[ -n "$a2" ] && [ "$a2" -gt "$a1" ] || fail "ra's IOPS did not rise with its limit ($a1 -> $a2)"
blanketd_alive || fail "blanketd died"
exit 0
