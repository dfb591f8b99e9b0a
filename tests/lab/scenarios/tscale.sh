#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario tscale (issue 12 item 3's scaling proof; a benchmark: numbers, not pass/fail): four
# 1-vCPU guests, each with its own 64 MiB image in dom0's tmpfs, read 4 KiB at random at queue
# depth 32 (iotool bench) all at once, with blanketd on io-threads=1 and on io-threads=4, in
# turn (1, 4, 1, 4). Run with a 4-vCPU dom0: `run.sh --smp 4 --build BUILD-RELEASE tscale`
# (meson benchmark lab-bench-threads). The guests start their reads together: each waits for a
# second small disk that the scenario attaches to all four once they are all up. Prints per
# round each guest's IOPS, their sum, dom0's busy CPU and blanketd's (% of one CPU), and how the
# I/O threads shared blanketd's CPU (/proc/PID/task). Under TCG on a host with fewer cores than
# the emulated CPUs, the scaling seen is bounded by the host, not by blanketd.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "measures blanketd's I/O threads"
NCPU=$(grep -c ^processor /proc/cpuinfo)
[ "$NCPU" -ge 4 ] || skip "dom0 has $NCPU vCPUs: run.sh --smp 4"

S=${TSCALE_S:-30}
MIB=64
GUESTS="ts1 ts2 ts3 ts4"
ORDER="1 4 1 4"
DIR=/run/tscale
RES=$DIR/results
mkdir -p "$DIR"
: >"$RES"
for g in $GUESTS; do
	dd if=/dev/urandom of="$DIR/$g.raw" bs=1M count=$MIB 2>/dev/null || fail "cannot fill $g.raw"
	make_image "$DIR/$g-go.raw" 1
done

# CPU ticks of each of blanketd's threads: "name=ticks ..."
thread_ticks() {
	local t
	for t in /proc/"$(blanketd_pid)"/task/*; do
		awk '{ sub(/^[^(]*\(/, ""); n = $1; sub(/\).*/, "", n); split($0, f, ") ");
		       split(f[2], v, " "); printf "%s=%d ", n, v[12] + v[13] }' "$t/stat" 2>/dev/null
	done
}

run_round() {
	local n=$1 threads=$2 g domids="" sum=0 at0 at1 tt0 tt1 iops line
	stop_blanketd
	spawn_blanketd --set "io-threads=$threads" || fail "round $n: cannot start blanketd"
	sleep 2
	blanketd_alive || fail "round $n: blanketd with io-threads=$threads died"
	for g in $GUESTS; do
		CFG_MEMORY=160 write_cfg "$g" 1 \
			"wait:/dev/xvda:120;wait:/dev/xvdb:600;bench:/dev/xvda:$MIB:4:32:$S:rand" \
			"'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=cache=writeback:$DIR/$g.raw'"
		start_guest "$g"
		domids="$domids $(xl domid "$g")"
	done
	for g in $GUESTS; do
		wait_console "$g" 'GUEST-STEP wait:/dev/xvda' 300
	done
	at0=$(cpu_sample)
	tt0=$(thread_ticks)
	for g in $GUESTS; do
		xl block-attach "$g" "vdev=xvdb,format=raw,access=rw,backendtype=phy,script=blanket,target=$DIR/$g-go.raw" ||
			fail "round $n: xl block-attach $g failed"
	done
	for g in $GUESTS; do
		wait_console "$g" 'IOTOOL bench ok|IOTOOL error|GUEST-DONE' $((S + 300))
	done
	at1=$(cpu_sample)
	tt1=$(thread_ticks)
	for g in $GUESTS; do
		line=$(tr -d '\r' <"$CONSOLE_DIR/guest-$g.log" | grep 'IOTOOL bench ok mode=rand')
		[ -n "$line" ] || { guest_log "$g"; fail "round $n: guest $g has no bench result"; }
		iops=$(echo "$line" | sed 's/.*iops=\([0-9]*\).*/\1/')
		say "round $n (io-threads=$threads) $g: $line"
		sum=$((sum + iops))
		echo "$n $threads $g $iops" >>"$RES.guests"
	done
	say "round $n: blanketd's threads' CPU ticks over the round: $(awk -v a="$tt0" -v b="$tt1" 'BEGIN {
		n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); s[kv[1]] -= kv[2] }
		n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, "="); s[kv[1]] += kv[2] }
		for (k in s) printf "%s=%d ", k, s[k] }')"
	# round io-threads sum-IOPS wall-s dom0-ticks blanketd-ticks
	echo "$n $threads $sum $(cpu_delta "$at0" "$at1")" >>"$RES"
	for g in $GUESTS; do
		xl destroy "$g" 2>/dev/null
	done
	for d in $domids; do
		wait_no_backend "$d" 60
	done
}

n=0
for t in $ORDER; do
	n=$((n + 1))
	run_round "$n" "$t"
done
stop_blanketd
spawn_blanketd || fail "cannot start blanketd again"

show "issue 12 tscale: $NCPU dom0 vCPUs, 4 guests x 1 vCPU, 4 KiB random reads QD32 each, ${S} s, $MIB MiB images in dom0 tmpfs"
show "  round io-threads | sum IOPS | dom0 % | blanketd % | us blanketd CPU per I/O"
while read -r r t sum w d b; do
	# ticks are 1/100 s; the guests did about sum x S I/Os in the window
	show "$(awk -v r="$r" -v t="$t" -v s="$sum" -v w="$w" -v d="$d" -v b="$b" -v S="$S" 'BEGIN {
		printf "  %-5s %10s | %8d | %6.1f | %10.1f | %6.0f", r, t, s, (w > 0 ? d / w : 0),
			(w > 0 ? b / w : 0), (s > 0 ? b * 10000 / (s * S) : 0) }')"
done <"$RES"
show "$(awk '{ n[$2]++; s[$2] += $3 } END { if (n[1] && n[4])
	printf "  io-threads 4 / 1: sum IOPS %.2fx (means of %d and %d rounds)", (s[4] / n[4]) / (s[1] / n[1]), n[4], n[1] }' "$RES")"
exit 0
