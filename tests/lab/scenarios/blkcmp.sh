#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario blkcmp (issue 12 item 1; a benchmark: numbers, not pass/fail): one boot, one 2-vCPU
# PV guest (Debian's stock kernel, fio in its image) whose disk is served in turn by
#   blanketd: script=blanket, target cache=writeback:IMG (the page cache: no O_DIRECT on tmpfs)
#   blkback:  the kernel's xen-blkback, target IMG with no script: xl's block script puts the
#             file on a loop device (buffered, the page cache as well)
#   qdisk:    backendtype=qdisk: libxl starts Debian's qemu-system-xen as the guest's device
#             model, whose xen-block opens IMG (the page cache as well)
# interleaved (blanketd, blkback, qdisk) x ROUNDS (the default order; lab.blkcmp_order sets
# another), the guest created anew each time. The image is one 64 MiB raw file in dom0's
# tmpfs, filled with random data once. In the guest, fio (libaio, O_DIRECT, S s each, in this
# order): 4 KiB random read QD32, 1 MiB sequential read QD4, 1 MiB sequential write QD4.
#
# CPU per fio job: the window from the guest's previous GUEST-STEP line to the job's own. dom0's
# busy time (/proc/stat: all but idle and iowait, both vCPUs: 100% is one CPU) and the
# backend's own time (utime+stime from /proc/PID/stat): blanketd's process (all its threads),
# qemu's process, or blkback's kthreads plus the unbound kworkers (the loop device's work; see
# window()). Softirq time (ksoftirqd) and the scenario's own polling count in dom0's busy
# time only.
#
# Output: a table on the console (LAB-SHOW), the ratios of the means of the rounds, and one
# `LAB-BENCH blkcmp {json}` line per job and round plus one with the versions, which run.sh
# collects into BUILD/lab/blkcmp/blkcmp.json on the host. Switching the kernel's blkback in and
# out: kernel_backend (dom0-lib.sh). Use a release build: tests/lab/run.sh --build BUILD blkcmp.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "switches between blanketd, xen-blkback and qdisk itself: run with the blanketd backend"
[ -f /lab/fio.cpio ] || skip "no fio guest image (run.sh builds it for blkcmp* scenarios)"
QEMU=/usr/libexec/xen-qemu-system-i386
[ -x "$QEMU" ] || skip "no $QEMU in dom0 (run.sh adds it for blkcmp* scenarios)"
blanketd_alive || fail "no blanketd running (a scenario before this one stopped it)"

S=20
ROUNDS=3
MIB=64
DIR=/run/blkcmp
IMG=$DIR/disk.raw
RES=$DIR/results
JOBS="randread:4:32 read:1024:4 write:1024:4"
STEPS="wait:/dev/xvda:120;sleep:2"
for j in $JOBS; do STEPS+=";fio:/dev/xvda:$j:$S"; done
# A last pause keeps the guest, and so blkback's kthreads and qemu, alive when the last job's
# window closes (a thread gone before the sample takes its CPU time with it).
STEPS+=";sleep:3"
FIRST_JOB_STEP=3 # GUEST-STEP lines before the first job: wait, sleep
NSTEPS=6
QDISK_OK=1

mkdir -p "$DIR"
dd if=/dev/urandom of="$IMG" bs=1M count=$MIB 2>/dev/null || fail "cannot fill $IMG"
: >"$RES"

# dump FILE: "U uptime busy" then "pid comm ticks" for every process and kernel thread.
dump() {
	local up _ cpu u n s idle io irq sirq st f line
	read -r up _ </proc/uptime
	read -r cpu u n s idle io irq sirq st _ </proc/stat
	{
		echo "U $up $((u + n + s + irq + sirq + st))"
		for f in /proc/[0-9]*/stat; do
			read -r line <"$f" 2>/dev/null && echo "$line"
		done | awk '{ print $1, $2, $14 + $15 }'
	} >"$1"
}

# window A B BACKEND PID: "wall_s dom0_ticks backend_ticks" between dumps A and B. blkback's
# threads are chosen at B: its kthreads (6.1 shows them as "<domid>.xvda-<queue>", the
# "blkback." cut off) and all unbound kworkers, which run the loop device's work (a kworker's
# name tells only the workqueue it served last; in blanketd's and qdisk's rounds no unbound
# kworker is among dom0's busiest threads).
window() {
	awk -v be="$3" -v pid="$4" '
		FNR == 1 { if (NR == 1) { u0 = $2; b0 = $3 } else { u1 = $2; b1 = $3 }; next }
		NR == FNR { t0[$1] = $3; next }
		(be == "blkback" && ($2 ~ /^\((blkback\.)?[0-9]+\.xvd[a-z]+-[0-9]+\)$/ || $2 ~ /^\(kworker\/u/)) ||
		(be != "blkback" && $1 == pid) { k += $3 - t0[$1] }
		END { printf "%.2f %d %d\n", u1 - u0, b1 - b0, k }' "$1" "$2"
}

disk_for() {
	case $1 in
	blanketd) echo "'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=cache=writeback:$IMG'" ;;
	blkback) echo "'vdev=xvda,format=raw,access=rw,backendtype=phy,target=$IMG'" ;;
	qdisk) echo "'vdev=xvda,format=raw,access=rw,backendtype=qdisk,target=$IMG'" ;;
	esac
}

# The qemu serving domain $1 (its command line names the domain id).
qemu_pid() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "-xen-domid $1 " && { echo "${p#/proc/}"; return 0; }
	done
	return 1
}

# run_round N BACKEND: one guest through BACKEND; appends its jobs' numbers to $RES.
run_round() {
	local n=$1 be=$2 name=bc$1 log domid pid k c j t0 line w
	log=$CONSOLE_DIR/guest-$name.log
	say "round $n: $be"
	CFG_RAMDISK=/lab/fio.cpio CFG_MEMORY=512 write_cfg "$name" 2 "$STEPS" "$(disk_for "$be")"
	if [ "$be" = qdisk ]; then
		# A device model that does not start costs qdisk's rounds, not the others'.
		rm -f "$log"
		if ! xl create "/tmp/$name.cfg"; then
			say "round $n: xl create with qdisk failed; qemu's log:"
			tail -n 40 "/var/log/xen/qemu-dm-$name.log" 2>&1 | sed 's/^/  qemu-dm: /'
			xl destroy "$name" 2>/dev/null
			QDISK_OK=0
			return 0
		fi
		say "guest $name running (domid $(xl domid "$name" 2>/dev/null))"
	else
		start_guest "$name"
	fi
	domid=$(xl domid "$name")
	case $be in
	blanketd)
		pid=$(blanketd_pid)
		[ -n "$(be_read "$domid" 51712 state)" ] || fail "round $n: no vbd backend for domain $domid"
		;;
	blkback)
		pid=0
		[ -n "$(be_read "$domid" 51712 physical-device)" ] ||
			fail "round $n: blkback's vbd has no physical-device (no loop device from the block script?)"
		;;
	qdisk)
		pid=$(qemu_pid "$domid") || {
			tail -n 30 /var/log/xen/qemu-dm-"$name".log 2>/dev/null
			fail "round $n: no qemu serving domain $domid"
		}
		;;
	esac
	wait_console "$name" 'GUEST-STEP wait:' 300
	k=$(tr -d '\r' <"$log" | grep -c 'GUEST-STEP ')
	dump "$DIR/d$n.$k"
	t0=$SECONDS
	while [ "$k" -lt $NSTEPS ]; do
		# (one grep a turn: under TCG every process dom0 starts shows in its busy time)
		c=$(grep -c 'GUEST-STEP ' "$log" 2>/dev/null)
		if [ "$c" -gt "$k" ]; then
			dump "$DIR/d$n.$c"
			for ((j = k + 1; j < c; j++)); do cp "$DIR/d$n.$c" "$DIR/d$n.$j"; done
			k=$c
			# After the last job, the device still there: blanketd's view of it.
			if [ "$k" = $((NSTEPS - 1)) ] && [ "$be" = blanketd ]; then
				blanketctl stats "vbd $domid/51712" 2>&1 | sed 's/^/  stats: /'
			fi
		fi
		[ $((SECONDS - t0)) -gt $((3 * S + 600)) ] && break
		sleep 0.5
	done
	# Who used dom0's CPU in each job: the busiest processes and kernel threads.
	for ((j = FIRST_JOB_STEP; j < FIRST_JOB_STEP + 3; j++)); do
		echo "  busiest in job $((j - FIRST_JOB_STEP + 1)) (ticks pid comm): $(awk 'FNR == 1 { next }
			NR == FNR { t0[$1] = $3; next } { d = $3 - t0[$1]; if (d > 0) print d, $1, $2 }' \
			"$DIR/d$n.$((j - 1))" "$DIR/d$n.$j" | sort -rn | head -n 6 | tr '\n' ' ')"
	done
	wait_guest_done "$name" 120
	wait_no_backend "$domid" 60
	[ "$(tr -d '\r' <"$log" | grep -c 'GUEST-FIO ')" = 3 ] || { guest_log "$name"; fail "round $n: fewer than 3 fio results"; }
	j=$FIRST_JOB_STEP
	tr -d '\r' <"$log" | grep 'GUEST-FIO ' | while read -r line; do
		w=$(window "$DIR/d$n.$((j - 1))" "$DIR/d$n.$j" "$be" "$pid")
		echo "$n $be $(echo "$line" | sed 's/.*rw=\([a-z]*\) bs_kib=\([0-9]*\) qd=\([0-9]*\) iops=\([0-9]*\) kbps=\([0-9]*\) kib=\([0-9]*\) ms=\([0-9]*\).*/\1 \2 \3 \4 \5 \6 \7/') $w" >>"$RES"
		j=$((j + 1))
	done
	say "round $n ($be): $(tail -n 3 "$RES" | tr '\n' '|')"
}

# The order of rounds: (blanketd blkback qdisk) x ROUNDS, or lab.blkcmp_order=W+W+... from the
# kernel command line (run.sh's LAB_BLKCMP_ORDER), each W one of blanketd, blkback, qdisk, or
# restart (blanketd stopped and started again, as the switch back from blkback does, with no
# round of its own): to tell what a later round owes to the rounds before it.
ORDER=
for r in $(seq "$ROUNDS"); do ORDER+=" blanketd blkback qdisk"; done
o=$(sed -n 's/.*lab\.blkcmp_order=\([^ ]*\).*/\1/p' /proc/cmdline | tr '+' ' ')
if [ -n "$o" ]; then
	for be in $o; do
		case $be in
		blanketd | blkback | qdisk | restart) ;;
		*) fail "lab.blkcmp_order: '$be' is not blanketd, blkback, qdisk or restart" ;;
		esac
	done
	ORDER=$o
	say "order of rounds: $ORDER"
fi

# Rounds per backend in the order run, for the results' meta (blanketd's count; the others' are
# alike in the default order).
NROUNDS=$(echo $ORDER | tr ' ' '\n' | grep -c '^blanketd$')

cur=blanketd
n=0
for be in $ORDER; do
	if [ "$be" = restart ]; then
		[ "$cur" = blanketd ] || fail "lab.blkcmp_order: restart while the kernel's blkback serves"
		say "restarting blanketd"
		respawn_blanketd
		continue
	fi
	if [ "$be" = blkback ] && [ "$cur" != blkback ]; then
		kernel_backend vbd on
		cur=blkback
	elif [ "$be" = blanketd ] && [ "$cur" != blanketd ]; then
		kernel_backend vbd off
		cur=blanketd
	fi
	n=$((n + 1))
	[ "$be" = qdisk ] && [ $QDISK_OK = 0 ] && { say "round $n: qdisk skipped (its device model failed)"; continue; }
	run_round "$n" "$be"
done
[ "$cur" = blanketd ] || kernel_backend vbd off

# Per line of $RES: round backend rw bs_kib qd iops kbps kib ms wall dom0-ticks backend-ticks.
# Ticks are 1/100 s: us per request = ticks * 10000 / requests; ms per MB = ticks * 10 / MB.
XENV=$(xl info xen_version 2>/dev/null)
QEMUV=$("$QEMU" --version 2>/dev/null | head -n 1 | sed 's/.*version \([^ ]*\).*/\1/')
echo "LAB-BENCH blkcmp {\"meta\":{\"xen\":\"$XENV\",\"dom0_kernel\":\"$(uname -r)\",\"guest_kernel\":\"$(uname -r)\",\"qemu_xen\":\"$QEMUV\",\"dom0_vcpus\":$(grep -c ^processor /proc/cpuinfo),\"guest_vcpus\":2,\"image_mib\":$MIB,\"image_on\":\"dom0 tmpfs\",\"secs\":$S,\"rounds\":$NROUNDS,\"order\":\"$(echo $ORDER)\"}}"
# (In awk's printf arguments a bare ">" would be a redirection: the shares are computed first.)
CALC='{ mb = $8 * 1024 / 1e6; ios = $8 / $4; d0p = 0; bep = 0
	if ($10 > 0) { d0p = $11 / $10; bep = $12 / $10 }
	d0io = ios ? $11 * 10000 / ios : 0; beio = ios ? $12 * 10000 / ios : 0
	d0mb = mb ? $11 * 10 / mb : 0; bemb = mb ? $12 * 10 / mb : 0 }'
awk "$CALC"'{ printf "LAB-BENCH blkcmp {\"round\":%d,\"backend\":\"%s\",\"job\":\"%s\",\"bs_kib\":%d,\"qd\":%d,\"iops\":%d,\"mbps\":%.2f,\"ios\":%d,\"secs\":%.2f,\"wall_s\":%.2f,\"dom0_busy_pct\":%.1f,\"backend_pct\":%.1f,\"dom0_us_per_io\":%.1f,\"backend_us_per_io\":%.1f,\"dom0_ms_per_mb\":%.3f,\"backend_ms_per_mb\":%.3f}\n",
	$1, $2, $3, $4, $5, $6, $7 * 1024 / 1e6, ios, $9 / 1000, $10, d0p, bep, d0io, beio, d0mb, bemb }' "$RES"

show "issue 12 blkcmp: one boot, Xen $XENV, dom0/guest kernel $(uname -r), qemu-system-xen $QEMUV; 2-vCPU PV guest, fio libaio O_DIRECT ${S} s per job, $MIB MiB raw image in dom0 tmpfs"
show "  CPU: dom0 = both vCPUs busy (100% = one CPU); backend = blanketd's process | blkback kthreads + unbound kworkers | qemu's process"
show "  round backend  | job        | IOPS     MB/s | dom0%  backend% | us/IO dom0 backend | ms/MB dom0 backend"
awk "$CALC"'{ job = $3 "-" $4 "K"; if ($4 >= 1024) job = $3 "-" $4 / 1024 "M"
	printf "LAB-SHOW   %-5d %-8s | %-10s | %6d %8.2f | %5.1f %8.1f | %10.1f %7.1f | %8.2f %7.2f\n",
		$1, $2, job, $6, $7 * 1024 / 1e6, d0p, bep, d0io, beio, d0mb, bemb }' "$RES"
# Ratios of the means over the rounds: throughput (IOPS for the random job, MB/s for the
# sequential ones) and the backend's own CPU per request.
# Then each backend's spread over its rounds (lowest-highest throughput): rounds of one backend
# in one boot have differed by up to 2.5x under TCG, so a ratio within that spread shows little.
awk '{ k = $2 SUBSEP $3; n[k]++; t = ($3 == "randread") ? $6 : $7 * 1024 / 1e6; tp[k] += t
	if (n[k] == 1 || t < lo[k]) lo[k] = t
	if (n[k] == 1 || t > hi[k]) hi[k] = t
	ios = $8 / $4; cpu[k] += ios ? $12 * 10000 / ios : 0; d0[k] += ios ? $11 * 10000 / ios : 0; jobs[$3] = 1 }
	END { for (j in jobs) {
		b = "blanketd" SUBSEP j; k = "blkback" SUBSEP j; q = "qdisk" SUBSEP j
		if (!n[b]) continue
		line = sprintf("%-8s", j)
		if (n[k])
			line = line sprintf(" blanketd/blkback %.2fx (CPU/IO %.2fx, dom0 CPU/IO %.2fx);", (tp[b] / n[b]) / (tp[k] / n[k]),
				(cpu[k] ? (cpu[b] / n[b]) / (cpu[k] / n[k]) : 0), (d0[k] ? (d0[b] / n[b]) / (d0[k] / n[k]) : 0))
		if (n[q])
			line = line sprintf(" blanketd/qdisk %.2fx (CPU/IO %.2fx, dom0 CPU/IO %.2fx);", (tp[b] / n[b]) / (tp[q] / n[q]),
				(cpu[q] ? (cpu[b] / n[b]) / (cpu[q] / n[q]) : 0), (d0[q] ? (d0[b] / n[b]) / (d0[q] / n[q]) : 0))
		printf "LAB-SHOW   %s [means of %d rounds]\n", line, n[b]
		line = sprintf("%-8s spread", j)
		split("blanketd blkback qdisk", bes, " ")
		for (i = 1; i <= 3; i++) {
			k = bes[i] SUBSEP j
			if (n[k])
				line = line sprintf(" %s %.0f-%.0f (%d);", bes[i], lo[k], hi[k], n[k])
		}
		printf "LAB-SHOW   %s\n", line } }' "$RES"
[ $QDISK_OK = 1 ] || fail "qdisk's device model did not start (its log above): no qdisk numbers"
exit 0
