#!/bin/sh
# SPDX-License-Identifier: MIT
#
# /init of the lab's PV guests (busybox, iotool, nettool). Runs the steps named on the kernel
# command line:
#   lab.steps=STEP;STEP;...  with STEP = [1.|2.]name:arg:arg...
# and prints one "GUEST-STEP <step> ok|fail" line per step and "GUEST-DONE ok|fail" on hvc0.
# A step prefixed "1." runs only before the phase marker is found on disk, "2." only after
# (see the "phase" step): that is how a guest tells its first boot from the boot after a reboot.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
exec >/dev/console 2>&1

# Multi-page rings, several queues, indirect descriptors. Keep them modest: with persistent
# grants blkfront preallocates ring slots x segments pages per queue (order 4 x 64 = 128 MiB).
modprobe xen-blkfront max_ring_page_order=2 max_queues=4 max_indirect_segments=32
modprobe xen-netfront
ip link set lo up

steps=$(sed -n 's/.*lab\.steps=\([^ ]*\).*/\1/p' /proc/cmdline)
phase=1
result=ok

wait_dev() {
	i=0
	while [ ! -b "$1" ]; do
		i=$((i + 1))
		[ "$i" -gt $(($2 * 10)) ] && return 1
		usleep 100000
	done
}

wait_gone() {
	i=0
	while [ -b "$1" ]; do
		i=$((i + 1))
		[ "$i" -gt $(($2 * 10)) ] && return 1
		usleep 100000
	done
}

# Report what blkfront negotiated for a disk (xvda -> the blkfront dmesg line and blk-mq queues).
features() {
	d=${1#/dev/}
	dmesg | grep "blkfront: $d:" | sed 's/^/GUEST-FEATURES /'
	n=0
	for h in /sys/kernel/debug/block/$d/hctx*; do
		[ -d "$h" ] || continue
		n=$((n + 1))
		echo "GUEST-HCTX $d $(basename "$h") dispatched=$(awk '{ s += $2 } END { print s + 0 }' "$h/dispatched" 2>/dev/null)"
	done
	echo "GUEST-QUEUES $d $(ls -d /sys/block/$d/mq/* 2>/dev/null | wc -l) cpus=$(nproc)"
}

wait_netdev() {
	i=0
	while [ ! -e "/sys/class/net/$1" ]; do
		i=$((i + 1))
		[ "$i" -gt $(($2 * 10)) ] && return 1
		usleep 100000
	done
}

wait_netdev_gone() {
	i=0
	while [ -e "/sys/class/net/$1" ]; do
		i=$((i + 1))
		[ "$i" -gt $(($2 * 10)) ] && return 1
		usleep 100000
	done
}

# netup IF ADDR/LEN [GATEWAY]: wait for the interface (netfront connected), address it, up.
netup() {
	wait_netdev "$1" 120 || return 1
	ip link set "$1" up && ip addr add "$2" dev "$1" || return 1
	[ -z "$3" ] || ip route add default via "$3" || return 1
}

# ping ADDR N: wait (up to 60 s) for a first answer, then N pings must all be answered, each
# within 5 s. One ping per run: busybox's ping -c N gives the last one only 2 round trips of
# the slowest so far (1 s at least), too short for a stall under TCG.
ping_all() {
	i=0
	until ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -gt 60 ] && { echo "GUEST no answer from $1"; return 1; }
	done
	i=0 ok=0
	while [ "$i" -lt "$2" ]; do
		i=$((i + 1))
		if out=$(ping -c 1 -W 5 "$1" 2>&1); then
			ok=$((ok + 1))
			echo "$out" | grep 'seq=' | sed 's/^/GUEST-PING /'
		fi
	done
	echo "GUEST-PING $ok of $2 answered"
	[ "$ok" = "$2" ]
}

# netinfo IF: what netfront negotiated, seen from the guest: queues, MTU, MAC, and the event
# channel interrupts per queue (eth0-q0-tx, ...) with their counts.
netinfo() {
	d=/sys/class/net/$1
	echo "GUEST-NET $1 txq=$(ls -d $d/queues/tx-* | wc -l) rxq=$(ls -d $d/queues/rx-* | wc -l) mtu=$(cat $d/mtu) mac=$(cat $d/address) cpus=$(nproc)"
	grep "$1" /proc/interrupts | awk '{ n = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i; print "GUEST-IRQ " $NF " " n }'
	# TCP's view: retransmissions and timeouts tell loss from delay.
	awk '/^(Tcp|TcpExt):/ { if (!h[$1]) { h[$1] = 1; split($0, n); next }
		for (i = 2; i <= NF; i++) if (n[i] ~ /^(RetransSegs|InErrs|InCsumErrors|TCPTimeouts|DelayedACKs|TCPLostRetransmit|TCPFastRetrans)$/) printf "%s=%s ", n[i], $i }
		END { print "" }' /proc/net/snmp /proc/net/netstat | sed 's/^/GUEST-TCP /'
}

# par HOST PORT MIB SEED N: N pushes and N pulls at once (different flows, so different
# queues), seeds SEED..SEED+N-1.
par() {
	k=0
	pids=
	while [ "$k" -lt "$5" ]; do
		nettool push "$1" "$2" "$3" $(($4 + k)) & pids="$pids $!"
		nettool pull "$1" "$2" "$3" $(($4 + k)) & pids="$pids $!"
		k=$((k + 1))
	done
	rc=0
	for p in $pids; do wait "$p" || rc=1; done
	return $rc
}

# fio_job DEV RW BS_KIB QD S: one fio job (libaio, O_DIRECT, time-based) on the whole device;
# prints "GUEST-FIO rw=RW bs_kib=BS qd=QD iops=N kbps=N kib=N ms=N" from fio's terse output
# (read fields 6-9, write fields 47-50). Only the blkcmp guest image has fio.
fio_job() {
	command -v fio >/dev/null || { echo "GUEST no fio in this image"; return 1; }
	out=$(fio --name="$2" --filename="$1" --ioengine=libaio --direct=1 --rw="$2" --bs="${3}k" \
		--iodepth="$4" --runtime="$5" --time_based --randrepeat=0 --minimal) || return 1
	echo "$out" | awk -F';' -v rw="$2" -v bs="$3" -v qd="$4" '
		$1 != 3 || $5 != 0 { print "GUEST fio: " $0; bad = 1; exit }
		{ f = (rw ~ /write/) ? 47 : 6
		  printf "GUEST-FIO rw=%s bs_kib=%s qd=%s iops=%s kbps=%s kib=%s ms=%s\n", rw, bs, qd,
			$(f + 2), $(f + 1), $f, $(f + 3); ok = 1 }
		END { exit bad || !ok }'
}

run_step() {
	IFS=: read -r name a1 a2 a3 a4 a5 a6 <<EOF
$1
EOF
	case $name in
	wait) wait_dev "$a1" "${a2:-60}" ;;
	waitgone) wait_gone "$a1" "${a2:-60}" ;;
	sleep) sleep "$a1" ;;
	rw) iotool rw "$a1" "$a2" "$a3" "$a4" "${a5:-1}" ${a6:+"$a6"} ;;
	# rounds:DEV:MIB:N:SEED0:THREADS[:FLUSH]: round k of N is "rw" of MIB MiB at (k-1) x MIB
	# with seed SEED0+k (one IOTOOL line per round; a long workload in a short command line).
	rounds)
		k=1
		while [ "$k" -le "$a3" ]; do
			iotool rw "$a1" $(((k - 1) * a2)) "$a2" $((a4 + k)) "${a5:-1}" ${a6:+"$a6"} ||
				return 1
			k=$((k + 1))
		done
		;;
	# cpu:DEV:OFF_MIB:LEN_MIB:BS_KIB:r|w: busy CPU per MiB of sequential O_DIRECT I/O.
	cpu) iotool cpu "$a1" "$a2" "$a3" "$a4" "$a5" ;;
	# iops:DEV:LEN_MIB:SECS[:THREADS]: random 4 KiB requests for SECS s, their rate printed.
	iops) iotool iops "$a1" "$a2" "$a3" "${a4:-4}" ;;
	bench) iotool bench "$a1" 0 "$a2" "$a3" "$a4" "$a5" "$a6" ;; # DEV:MIB:BS_KIB:QD:S:rand|seq
	fio) fio_job "$a1" "$a2" "$a3" "$a4" "$a5" ;; # DEV:RW:BS_KIB:QD:S (randread, read, write)
	write | verify) iotool "$name" "$a1" "$a2" "$a3" "$a4" ;;
	sum | discard | zero) iotool "$name" "$a1" "$a2" "$a3" ;;
	trywrite) iotool trywrite "$a1" ;;
	readonly) echo "GUEST-RO $a1 $(cat /sys/block/${a1#/dev/}/ro)" ;;
	features) features "$a1" ;;
	# The phase marker: a 4 KiB block at MiB offset a2 of a1.
	phase)
		if iotool verify "$a1" "$a2" 1 4242 >/dev/null; then
			phase=2
		else
			iotool write "$a1" "$a2" 1 4242 >/dev/null && phase=1
		fi
		echo "GUEST-PHASE $phase"
		;;
	# Endless verified I/O, for "destroy during I/O".
	loop)
		echo "GUEST-LOOPING"
		s=1
		while iotool rw "$a1" 0 "${a2:-16}" "$s" 2 >/dev/null; do s=$((s + 1)); done
		false
		;;
	# bgloop:DEV:MIB: the same endless verified I/O in the background, the next steps going on;
	# one "GUEST-BGLOOP DEV round N ok|fail" line per round, ending at the first failure (for
	# "the disk's backend dies during I/O": a step that must not end the guest's steps).
	bgloop)
		(
			s=1
			while iotool rw "$a1" 0 "${a2:-16}" "$s" 2 >/dev/null; do
				echo "GUEST-BGLOOP $a1 round $s ok"
				s=$((s + 1))
			done
			echo "GUEST-BGLOOP $a1 round $s fail"
		) &
		;;
	# Network: see netup, ping_all, netinfo, par above; nettool's --help for the rest.
	netup) netup "$a1" "$a2" "$a3" ;;
	netwait) wait_netdev "$a1" "${a2:-60}" ;;
	netgone) wait_netdev_gone "$a1" "${a2:-60}" ;;
	netinfo) netinfo "$a1" ;;
	ping) ping_all "$a1" "${a2:-5}" ;;
	push | pull) nettool "$name" "$a1" "$a2" "$a3" "$a4" ;;
	par) par "$a1" "$a2" "$a3" "$a4" "$a5" ;;
	# serve:PORT:COUNT:TIMEOUT: a nettool server until COUNT connections went well.
	serve) timeout "${a3:-600}" nettool server "$a1" "$a2" ;;
	stream) nettool stream "$a1" "$a2" "$a3" "$a4" ${a5:+"$a5"} ${a6:+"$a6"} ;;
	ppssend) nettool pps-send "$a1" "$a2" "$a3" ${a4:+"$a4"} ;;
	ppsrecv) nettool pps-recv "$a1" "$a2" ;;
	# snmp: the guest's TCP/UDP counters (retransmissions, checksum errors), one line each.
	snmp) grep -E '^(Tcp|Udp):' /proc/net/snmp | sed 's/^/GUEST-SNMP /' ;;
	reboot)
		sync
		echo "GUEST-REBOOTING"
		reboot -f
		;;
	*) echo "GUEST unknown step $name"; false ;;
	esac
}

echo "GUEST-START phase-steps=$steps"
IFS=';'
set -f
for step in $steps; do
	IFS=' '
	set +f
	case $step in
	1.*) [ "$phase" = 1 ] || continue; step=${step#1.} ;;
	2.*) [ "$phase" = 2 ] || continue; step=${step#2.} ;;
	esac
	if run_step "$step"; then
		echo "GUEST-STEP $step ok t=$(cut -d" " -f1 /proc/uptime)"
	else
		echo "GUEST-STEP $step fail"
		result=fail
		break
	fi
done
echo "GUEST-DONE $result"
sync
poweroff -f
