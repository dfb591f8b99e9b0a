#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario (a benchmark, issue 9 proof 6): the same guest image in the same boot, its vif served
# by blanketd and then by the kernel's xen-netback, then by blanketd again (interleaved, so a
# drift of the host shows). Each guest (2 vCPUs, so 2 queues) runs on xenbr0 against nettool in
# dom0: TCP push (guest -> dom0) and pull (dom0 -> guest) of MIB MiB twice each, then small UDP
# datagrams guest -> dom0 and dom0 -> guest for PPS_S seconds each. Every TCP byte is verified
# by nettool, so a broken backend fails the scenario; the numbers themselves are printed, not
# judged (a measurement, not a timed assert).
#
# Switching backends cleanly in one boot: blanketd leaves a kind to the kernel when the kernel's
# backend is loaded at its start, so with no guest running: stop blanketd (SIGTERM), modprobe
# xen-netback, start blanketd again (it says it leaves vif devices to the kernel and still serves
# disks), create the guest; afterwards modprobe -r xen-netback and restart blanketd again. The
# xl.cfg line (script vif-bridge) is the same for both backends.
#
# CPU: each guest step's window is the time between its GUEST-STEP line and the one before.
# Per window, dom0 samples its busy time (/proc/stat: all but idle and iowait), the softirq part
# of it, and the backend's own time: blanketd's process (/proc/PID/stat utime+stime), or
# netback's kthreads (vifD.N-qQ-guest-rx and -dealloc). netback's guest-TX work runs in NAPI
# softirq, which /proc/stat counts but no kthread does, so "dom0 busy per MiB" is the fair
# comparison and the backend's own column a lower bound for netback.
# Run it with a release build: tests/lab/run.sh --build BUILD-RELEASE netbench.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "switches between blanketd and xen-netback itself: run with the blanketd backend"

MIB=${NETBENCH_MIB:-32} # per TCP transfer
PPS_S=${NETBENCH_PPS_S:-6}
ORDER=${NETBENCH_ORDER:-"blanketd netback blanketd"}
RES=/tmp/netbench.results
: >"$RES"

# Guest steps, in order (their index is what the sampler attributes CPU to).
STEPS="netup:eth0:10.0.0.2/24;netinfo:eth0;ping:10.0.0.1:3"
STEPS+=";push:10.0.0.1:5001:$MIB:11;pull:10.0.0.1:5001:$MIB:12"
STEPS+=";push:10.0.0.1:5001:$MIB:13;pull:10.0.0.1:5001:$MIB:14"
STEPS+=";ppssend:10.0.0.1:5002:$PPS_S;ppsrecv:5003:$((PPS_S + 60));snmp"
NSTEPS=10
PUSH_STEPS="4 6"
PULL_STEPS="5 7"
PPS_TX_STEP=8
PPS_RX_STEP=9

# The backend's own CPU ticks (USER_HZ): blanketd's process, or netback's kthreads.
backend_ticks() {
	local f t=0 line
	if [ "$1" = blanketd ]; then
		awk '{ print $14 + $15 }' "/proc/$(blanketd_pid)/stat" 2>/dev/null || echo 0
		return
	fi
	for f in /proc/[0-9]*/stat; do
		read -r line <"$f" 2>/dev/null || continue
		case $line in
		*" (vif"[0-9]*) ;;
		*) continue ;;
		esac
		t=$((t + $(echo "$line" | awk '{ print $14 + $15 }')))
	done
	echo "$t"
}

# "UPTIME_S BUSY SOFTIRQ BACKEND" (ticks).
sample() {
	local up _ cpu u n s idle io irq sirq st
	read -r up _ </proc/uptime
	read -r cpu u n s idle io irq sirq st _ </proc/stat
	echo "$up $((u + n + s + irq + sirq + st)) $sirq $(backend_ticks "$1")"
}

# run_round N BACKEND: one guest through BACKEND; appends its numbers to $RES.
run_round() {
	local n=$1 be=$2 name=nb$1 log domid prev now k c j sent=0 sender t0
	local -a at
	log=$CONSOLE_DIR/guest-$name.log
	say "round $n: $be"
	stop_nettool_servers
	start_nettool_server 5001
	nettool pps-recv 5002 900 >/tmp/ppsrecv-$n.log 2>&1 &
	echo $! >>/run/lab-nettool.pids
	CFG_VIFS=$(vif_spec "00:16:3e:00:01:$((10 + n))" xenbr0) write_cfg "$name" 2 "$STEPS"
	start_guest "$name"
	domid=$(xl domid "$name")
	wait_vif_connected "$domid" 0 180
	if [ "$be" = netback ]; then
		[ -z "$(vif_queue_packets "$domid" 0)" ] ||
			fail "round $n: blanketd serves the vif although xen-netback is loaded"
	else
		[ -n "$(vif_queue_packets "$domid" 0)" ] ||
			fail "round $n: blanketd does not serve vif $domid/0"
	fi
	prev=$(sample "$be")
	at[0]=$prev
	k=0
	t0=$SECONDS
	while [ $k -lt $NSTEPS ]; do
		c=$(tr -d '\r' <"$log" 2>/dev/null | grep -c 'GUEST-STEP ')
		if [ "$c" -gt "$k" ]; then
			now=$(sample "$be")
			for ((j = k + 1; j <= c; j++)); do at[j]=$now; done
			# After the TCP steps: blanketd's counters (events and frames per queue),
			# the TAP's, and dom0's TCP retransmissions and checksum errors.
			if [ $k -lt $PPS_TX_STEP ] && [ "$c" -ge $PPS_TX_STEP ]; then
				[ "$be" = blanketd ] && blanketctl stats "vif $domid/0" 2>&1 | sed 's/^/  stats: /'
				for f in rx_packets rx_dropped rx_errors tx_packets tx_dropped tx_errors; do
					echo "$f=$(cat /sys/class/net/vif$domid.0/statistics/$f 2>/dev/null)"
				done | tr '\n' ' ' | sed 's/^/  vif'"$domid"'.0 (dom0 side): /; s/$/\n/'
				grep -E '^(Tcp|Udp):' /proc/net/snmp | sed 's/^/  dom0 snmp: /'
			fi
			k=$c
		fi
		if [ $sent = 0 ] && grep -q 'NETTOOL pps-recv listening' "$log" 2>/dev/null; then
			nettool pps-send 10.0.0.2 5003 "$PPS_S" >/tmp/ppssend-$n.log 2>&1 &
			sender=$!
			sent=1
		fi
		if grep -q 'GUEST-DONE' "$log" 2>/dev/null; then
			# The last steps' lines came with it: close their windows now.
			now=$(sample "$be")
			for ((j = k + 1; j <= NSTEPS; j++)); do at[j]=$now; done
			break
		fi
		[ $((SECONDS - t0)) -gt 900 ] && break
		sleep 0.2
	done
	wait_guest_done "$name" 120
	wait_no_vif_backend "$domid" 60
	nettool_check "$name" '(push|pull) '
	[ $sent = 1 ] || fail "round $n: the guest never listened for datagrams"
	wait "$sender"
	# Window of step J: at[J-1] -> at[J]. Fields: up busy softirq backend.
	window() { # window J FIELD -> delta
		local a b
		a=$(echo "${at[$(($1 - 1))]}" | awk -v f="$2" '{ print $f }')
		b=$(echo "${at[$1]}" | awk -v f="$2" '{ print $f }')
		awk -v a="$a" -v b="$b" 'BEGIN { print b - a }'
	}
	sum_windows() { # sum_windows "STEPS" FIELD
		local s=0 j
		for j in $1; do s=$(awk -v s="$s" -v d="$(window "$j" "$2")" 'BEGIN { print s + d }'); done
		echo "$s"
	}
	local push_mbps pull_mbps pps_tx pps_rx
	push_mbps=$(tr -d '\r' <"$log" | grep 'NETTOOL push ' | sed -n 's/.*mbps=\([0-9.]*\).*/\1/p' |
		awk '{ s += $1; n++ } END { printf "%.2f", n ? s / n : 0 }')
	pull_mbps=$(tr -d '\r' <"$log" | grep 'NETTOOL pull ' | sed -n 's/.*mbps=\([0-9.]*\).*/\1/p' |
		awk '{ s += $1; n++ } END { printf "%.2f", n ? s / n : 0 }')
	pps_tx=$(sed -n 's/.*NETTOOL pps-recv .*pps=\([0-9]*\).*/\1/p' /tmp/ppsrecv-$n.log | tail -n 1)
	pps_rx=$(tr -d '\r' <"$log" | sed -n 's/.*NETTOOL pps-recv .*pps=\([0-9]*\).*/\1/p' | tail -n 1)
	local pkts_tx pkts_rx
	pkts_tx=$(sed -n 's/.*NETTOOL pps-recv packets=\([0-9]*\).*/\1/p' /tmp/ppsrecv-$n.log | tail -n 1)
	pkts_rx=$(tr -d '\r' <"$log" | sed -n 's/.*NETTOOL pps-recv packets=\([0-9]*\).*/\1/p' | tail -n 1)
	sed 's/^/  dom0: /' /tmp/ppsrecv-$n.log /tmp/ppssend-$n.log
	tr -d '\r' <"$log" | grep -E 'NETTOOL pps|GUEST-NET|GUEST-IRQ' | sed 's/^/  guest: /'
	# One line: round backend push pull pps_tx pps_rx, then per direction (push, pull, pps tx,
	# pps rx): busy, softirq and backend ticks, and the MiB or packets moved.
	echo "$n $be $push_mbps $pull_mbps ${pps_tx:-0} ${pps_rx:-0}" \
		"$(sum_windows "$PUSH_STEPS" 2) $(sum_windows "$PUSH_STEPS" 3) $(sum_windows "$PUSH_STEPS" 4) $((2 * MIB))" \
		"$(sum_windows "$PULL_STEPS" 2) $(sum_windows "$PULL_STEPS" 3) $(sum_windows "$PULL_STEPS" 4) $((2 * MIB))" \
		"$(window $PPS_TX_STEP 2) $(window $PPS_TX_STEP 3) $(window $PPS_TX_STEP 4) ${pkts_tx:-0}" \
		"$(window $PPS_RX_STEP 2) $(window $PPS_RX_STEP 3) $(window $PPS_RX_STEP 4) ${pkts_rx:-0}" >>"$RES"
	say "round $n ($be): $(tail -n 1 "$RES")"
}

n=0
cur=blanketd
for be in $ORDER; do
	n=$((n + 1))
	if [ "$be" != "$cur" ]; then
		if [ "$be" = netback ]; then kernel_backend vif on; else kernel_backend vif off; fi
	fi
	cur=$be
	run_round "$n" "$be"
done
[ "$cur" = blanketd ] || kernel_backend vif off
stop_nettool_servers

# ticks are 1/100 s: ms per MiB = ticks * 10 / MiB; us per packet = ticks * 10000 / packets.
show "netif proof 6: blanketd vs xen-netback, one boot, same guest image (2 vCPUs, 2 queues), $MIB MiB x 2 per TCP direction, ${PPS_S} s of 64-byte UDP per direction"
show "  round backend   | TCP MiB/s g->d0  d0->g | UDP pps g->d0  d0->g | backend CPU ms/MiB g->d0 d0->g | dom0 busy ms/MiB g->d0 d0->g (softirq) | backend us/pkt g->d0 d0->g | dom0 busy us/pkt g->d0 d0->g"
while read -r r be push pull ptx prx b1 s1 k1 m1 b2 s2 k2 m2 b3 s3 k3 p3 b4 s4 k4 p4; do
	show "$(awk -v r="$r" -v be="$be" -v push="$push" -v pull="$pull" -v ptx="$ptx" -v prx="$prx" \
		-v b1="$b1" -v s1="$s1" -v k1="$k1" -v m1="$m1" -v b2="$b2" -v s2="$s2" -v k2="$k2" -v m2="$m2" \
		-v b3="$b3" -v k3="$k3" -v p3="$p3" -v b4="$b4" -v k4="$k4" -v p4="$p4" 'BEGIN {
		printf "  %-5s %-9s | %8.2f %8.2f | %9d %8d | %8.1f %8.1f | %8.1f %8.1f (%.1f %.1f) | %6.1f %6.1f | %6.1f %6.1f",
			r, be, push, pull, ptx, prx, k1 * 10 / m1, k2 * 10 / m2, b1 * 10 / m1, b2 * 10 / m2,
			s1 * 10 / m1, s2 * 10 / m2, p3 ? k3 * 10000 / p3 : 0, p4 ? k4 * 10000 / p4 : 0,
			p3 ? b3 * 10000 / p3 : 0, p4 ? b4 * 10000 / p4 : 0 }')"
done <"$RES"
# Ratios: blanketd's rounds averaged against netback's.
show "$(awk '{ i = ($2 == "blanketd") ? "b" : "k"; n[i]++; tp[i] += $3; tl[i] += $4; ptx[i] += $5; prx[i] += $6
		bt[i] += $7 * 10 / $10; bl[i] += $11 * 10 / $14 }
	END { if (!n["b"] || !n["k"]) exit
	      printf "  blanketd / netback: TCP g->d0 %.2fx, d0->g %.2fx; UDP pps g->d0 %.2fx, d0->g %.2fx; dom0 busy per MiB g->d0 %.2fx, d0->g %.2fx",
		(tp["b"] / n["b"]) / (tp["k"] / n["k"]), (tl["b"] / n["b"]) / (tl["k"] / n["k"]),
		(ptx["k"] ? (ptx["b"] / n["b"]) / (ptx["k"] / n["k"]) : 0), (prx["k"] ? (prx["b"] / n["b"]) / (prx["k"] / n["k"]) : 0),
		(bt["b"] / n["b"]) / (bt["k"] / n["k"]), (bl["b"] / n["b"]) / (bl["k"] / n["k"]) }' "$RES")"
exit 0
