#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario l0bench (issue 10's comparison; a benchmark: numbers, not pass/fail): one boot, the
# same L0 virtio-blk disk (0000:00:0a.0), a 2-vCPU guest reading its first 64 MiB through
#   user:   blanketd's userspace virtio-blk driver on the device (uio_pci_generic, machine
#           addresses), target engine=virtio-blk,pci=BDF,offset=0,size=64M
#   kernel: blanketd's io_uring engine on dom0's kernel /dev/vdX (the device back with
#           virtio-pci), target /dev/vdX
# interleaved, 2 rounds each (user, kernel, user, kernel). Each guest runs 4 KiB random reads
# at queue depth 32 and 1 MiB sequential reads at depth 4 (iotool bench: threads doing
# O_DIRECT reads; Debian's fio needs far more libraries than the busybox guest has), for S s
# each. Per step dom0 samples its busy CPU (/proc/stat: all but idle and iowait, both vCPUs:
# 100% is one CPU) and blanketd's own CPU (/proc/PID/stat utime+stime), and prints a table.
# Use a release build (run.sh --build BUILD-RELEASE l0bench): under TCG the absolute numbers
# depend on the host's load; compare the rounds of one boot.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "compares blanketd's two paths"
BDF=0000:00:0a.0
dir=/sys/bus/pci/devices/$BDF
[ -e "$dir" ] || skip "no L0 virtio-blk device at $BDF (run.sh adds it for l0* scenarios)"
modprobe uio_pci_generic || fail "cannot load uio_pci_generic"
blanketd_alive || fail "no blanketd running (a scenario before this one stopped it)"

S=${L0BENCH_S:-15}
MIB=64
ORDER="user kernel user kernel"
RES=/tmp/l0bench.res
: >"$RES"

run_round() {
	local n=$1 path=$2 name=lb$1 spec kdev log at0 at1 at2 c domid st
	kdev=$(l0_kernel_dev "$BDF" 60) || fail "round $n: $BDF is not with dom0's virtio driver"
	if [ "$path" = user ]; then
		spec="'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=engine=virtio-blk,pci=$BDF,offset=0,size=${MIB}M'"
	else
		spec="'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=/dev/$kdev'"
	fi
	write_cfg "$name" 2 "wait:/dev/xvda:120;sleep:3;bench:/dev/xvda:$MIB:4:32:$S:rand;bench:/dev/xvda:$MIB:1024:4:$S:seq" "$spec"
	log=$CONSOLE_DIR/guest-$name.log
	start_guest "$name"
	domid=$(xl domid "$name")
	wait_console "$name" 'GUEST-STEP sleep:' 300
	at0=$(cpu_sample)
	c=0
	while ! grep -q 'GUEST-STEP bench:.*:seq ' "$log" 2>/dev/null; do
		if [ $c = 0 ] && grep -q 'GUEST-STEP bench:.*:rand ' "$log" 2>/dev/null; then
			at1=$(cpu_sample)
			c=1
		fi
		grep -q 'GUEST-DONE' "$log" && break
		sleep 0.2
	done
	at2=$(cpu_sample)
	[ $c = 1 ] || at1=$at2
	st=$(blanketctl stats 2>/dev/null | sed -n '/^L0/,$p')
	wait_guest_done "$name" 120
	grep -q 'IOTOOL error' "$log" && { guest_log "$name"; fail "round $n: the guest's reads failed"; }
	local r q
	r=$(tr -d '\r' <"$log" | grep 'IOTOOL bench ok mode=rand')
	q=$(tr -d '\r' <"$log" | grep 'IOTOOL bench ok mode=seq')
	[ -n "$r" ] && [ -n "$q" ] || { guest_log "$name"; fail "round $n: no bench results"; }
	say "round $n ($path): $r"
	say "round $n ($path): $q"
	[ -n "$st" ] && echo "$st" | sed 's/^/  /'
	# round path rand_iops rand_mbps seq_iops seq_mbps, then per step: wall s, dom0 ticks,
	# blanketd ticks (ticks are 1/100 s).
	echo "$n $path $(echo "$r" | sed 's/.*iops=\([0-9]*\) mbps=\([0-9.]*\).*/\1 \2/')" \
		"$(echo "$q" | sed 's/.*iops=\([0-9]*\) mbps=\([0-9.]*\).*/\1 \2/')" \
		"$(cpu_delta "$at0" "$at1")" \
		"$(cpu_delta "$at1" "$at2")" >>"$RES"
	xl destroy "$name" 2>/dev/null
	wait_no_backend "$domid" 60
}

n=0
for p in $ORDER; do
	n=$((n + 1))
	run_round "$n" "$p"
done

# The raw numbers too (ticks are 1/100 s): round path rand-IOPS rand-MB/s seq-IOPS seq-MB/s, then
# per test wall-s dom0-ticks blanketd-ticks.
sed 's/^/  raw: /' "$RES"
show "issue 10 comparison: one boot, L0 virtio-blk disk, 2-vCPU guest, first $MIB MiB, ${S} s per test"
show "  user = blanketd's userspace virtio-blk (uio, p2m); kernel = blanketd io_uring on dom0's /dev/vdX"
show "  CPU in % of one CPU over the test (dom0: both vCPUs, all but idle/iowait; blanketd: its process)"
show "  round path   | 4K rand QD32: IOPS    MB/s  dom0%  blanketd% | 1M seq QD4: MB/s  dom0%  blanketd%"
while read -r r p ri rm si sm w1 d1 b1 w2 d2 b2; do
	show "$(awk -v r="$r" -v p="$p" -v ri="$ri" -v rm="$rm" -v sm="$sm" -v w1="$w1" -v d1="$d1" -v b1="$b1" \
		-v w2="$w2" -v d2="$d2" -v b2="$b2" 'BEGIN {
		printf "  %-5s %-6s | %17d %7.2f %6.1f %9.1f | %16.2f %6.1f %9.1f", r, p, ri, rm,
			(w1 > 0 ? d1 / w1 : 0), (w1 > 0 ? b1 / w1 : 0), sm, (w2 > 0 ? d2 / w2 : 0),
			(w2 > 0 ? b2 / w2 : 0) }')"
done <"$RES"
show "$(awk '{ n[$2]++; ri[$2] += $3; sm[$2] += $6; d1[$2] += $8 / $7; d2[$2] += $11 / $10 }
	END { if (!n["user"] || !n["kernel"]) exit
	      printf "  user / kernel: 4K rand IOPS %.2fx, 1M seq MB/s %.2fx; dom0 CPU rand %.2fx, seq %.2fx",
		(ri["user"] / n["user"]) / (ri["kernel"] / n["kernel"]), (sm["user"] / n["user"]) / (sm["kernel"] / n["kernel"]),
		(d1["user"] / n["user"]) / (d1["kernel"] / n["kernel"]), (d2["user"] / n["user"]) / (d2["kernel"] / n["kernel"]) }' "$RES")"
exit 0
