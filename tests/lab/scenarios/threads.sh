#!/bin/bash
# SPDX-License-Identifier: MIT
# I/O threads (issue 12 item 3) on a real Xen: blanketd runs with its default io-threads (one per
# dom0 vCPU, at least 2 wanted here). Three guests write, read back and verify 32 MiB each at
# the same time; the first has two disks. blanketd's log and `blanketctl list` must show every
# disk of a guest on one I/O thread, the guests spread over at least two threads, and dom0's
# images must hold each guest's pattern.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "blanketd's I/O threads"
nthreads=$(sed -n 's/.*: \([0-9]*\) I\/O thread(s)$/\1/p' "$BLANKETD_LOG" | tail -n 1)
say "blanketd started ${nthreads:-no} I/O thread(s) on $(grep -c ^processor /proc/cpuinfo) dom0 vCPU(s)"
[ -n "$nthreads" ] && [ "$nthreads" -ge 2 ] || skip "fewer than 2 I/O threads (dom0 has $(grep -c ^processor /proc/cpuinfo) vCPUs)"

for g in ta tb tc; do
	make_image "$IMG_DIR/$g.raw" 48
done
make_image "$IMG_DIR/ta2.raw" 48
small_cfg() { sed -i 's/^memory = .*/memory = 160/' "/tmp/$1.cfg"; }
# xl create takes about 10 s each under TCG: the earlier guests sleep so that all three write
# at about the same time.
write_cfg ta 1 "wait:/dev/xvda:120;wait:/dev/xvdb:120;sleep:20;rw:/dev/xvda:0:32:11:2;rw:/dev/xvdb:0:32:12:2" \
	"$(disk_spec "$IMG_DIR/ta.raw" xvda w)" "$(disk_spec "$IMG_DIR/ta2.raw" xvdb w)"
write_cfg tb 1 "wait:/dev/xvda:120;sleep:10;rw:/dev/xvda:0:32:21:2" "$(disk_spec "$IMG_DIR/tb.raw" xvda w)"
write_cfg tc 1 "wait:/dev/xvda:120;rw:/dev/xvda:0:32:31:2" "$(disk_spec "$IMG_DIR/tc.raw" xvda w)"
declare -A domid
for g in ta tb tc; do
	small_cfg $g
	start_guest $g
	domid[$g]=$(xl domid $g)
done
wait_console ta 'GUEST-STEP wait:/dev/xvdb' 120
list=$(blanketctl list)
echo "$list" | sed 's/^/  /'
nl=$(echo "$list" | grep -c 'io-thread=')
[ "$nl" -ge 4 ] || fail "blanketctl list shows $nl disks with their io-thread (want 4)"
for g in ta tb tc; do
	wait_guest_done $g 900
done
blanketd_alive || fail "blanketd died"

# Each guest's disks on one thread, the guests on at least two.
threads_of() { grep "vbd $1/[0-9]*: new device, frontend .* on I/O thread" "$BLANKETD_LOG" |
	sed 's/.*on I\/O thread //' | sort -u; }
used=""
for g in ta tb tc; do
	d=${domid[$g]}
	t=$(threads_of "$d")
	say "guest $g (domid $d): I/O thread(s) ${t:-none}"
	[ -n "$t" ] || fail "blanketd's log names no I/O thread for guest $g's disks"
	[ "$(echo "$t" | wc -l)" = 1 ] || fail "guest $g's disks are on several threads: $t"
	used="$used $t"
done
n=$(echo $used | tr ' ' '\n' | sort -u | wc -l)
[ "$n" -ge 2 ] || fail "the three guests all landed on one I/O thread ($used)"

check_img() {
	iotool verify "$IMG_DIR/$1.raw" 0 32 "$2" || fail "$1.raw does not hold guest's pattern (seed $2)"
}
check_img ta 11
check_img ta2 12
check_img tb 21
check_img tc 31
say "3 guests, 4 disks, verified on $n I/O threads"
grep -E "thread|moving" "$BLANKETD_LOG" | sed 's/^/  log: /' | head -n 12
exit 0
