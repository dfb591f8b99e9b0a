#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario blkcmpprof (a profile, not a test; tests/lab/README.md): one 2-vCPU guest runs
# blkcmp's fio jobs through blanketd (cache=writeback tmpfs image), then through blkback; during
# each job perf counts the backend's syscalls and samples where dom0's CPU goes (LAB_PROFILE=1);
# for blanketd it also prints the first 400 syscalls of half a second, in order (" seq: ").
. /lab/dom0-lib.sh
[ -f /lab/fio.cpio ] || skip "no fio guest image"
command -v perf >/dev/null || skip "no perf in dom0 (LAB_PROFILE=1)"
S=${PROF_S:-30}
DIR=/run/blkprof
IMG=$DIR/disk.raw
mkdir -p "$DIR"
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
dd if=/dev/urandom of="$IMG" bs=1M count=64 2>/dev/null
JOBS="randread:4:32 read:1024:4 write:1024:4"
STEPS="wait:/dev/xvda:120;sleep:2"
for j in $JOBS; do STEPS+=";fio:/dev/xvda:$j:$S"; done
STEPS+=";sleep:3"

prof() { # prof TAG BACKEND PIDOPT: while the job runs
	local tag=$1 be=$2 pidopt=$3
	sleep 3
	perf stat -e raw_syscalls:sys_enter -e cpu-clock $pidopt -o $DIR/$tag.stat -- sleep 6 >/dev/null 2>&1
	perf record -q -e cpu-clock -F 499 -g -a -o $DIR/$tag.data -- sleep 8 >/dev/null 2>&1
	[ "$be" = blanketd ] && perf trace -s $pidopt -o $DIR/$tag.trace -- sleep 4 >/dev/null 2>&1
	# The order of the backend's syscalls over half a second: what its loop's turns do.
	[ "$be" = blanketd ] && perf trace $pidopt -o $DIR/$tag.seq -- sleep 0.5 >/dev/null 2>&1
	return 0
}
report() { # report TAG: afterwards
	local tag=$1
	sed "s/^/  PROF $tag stat: /" $DIR/$tag.stat
	perf report -i $DIR/$tag.data --stdio --no-children --sort comm,dso,sym 2>/dev/null | grep -v '^#' | grep '%' | grep -v '^ *|' | grep -v -- '--' | head -n 50 | sed "s/^/  PROF $tag top: /"
	perf report -i $DIR/$tag.data --stdio --no-children --sort comm 2>/dev/null | grep -v '^#' | grep '%' | grep -v '^ *|' | grep -v -- '--' | head -n 12 | sed "s/^/  PROF $tag comm: /"
	for c in blanketd-io0 iou-wrk; do
		perf report -i $DIR/$tag.data --stdio --no-children --comm "$c" --symbols xen_hypercall_pv -g caller,0.5,callee,function,percent 2>/dev/null |
			grep -v '^#' | grep -v '^$' | head -n 60 | sed "s/^/  PROF $tag hcall $c: /"
	done
	[ -f $DIR/$tag.seq ] && head -n 400 $DIR/$tag.seq | sed "s/^/  PROF $tag seq: /"
	[ -f $DIR/$tag.trace ] && grep -E '^ +[a-z_0-9]+ +[0-9]+' $DIR/$tag.trace | sort -k2 -rn | head -n 20 | sed "s/^/  PROF $tag sys: /"
}

round() {
	local be=$1 name=pf$1 disk domid log pid pidopt k
	case $be in
	blanketd) disk="'vdev=xvda,format=raw,access=rw,backendtype=phy,script=blanket,target=cache=writeback:$IMG'" ;;
	blkback) disk="'vdev=xvda,format=raw,access=rw,backendtype=phy,target=$IMG'" ;;
	esac
	log=$CONSOLE_DIR/guest-$name.log
	CFG_RAMDISK=/lab/fio.cpio CFG_MEMORY=512 write_cfg "$name" 2 "$STEPS" "$disk"
	start_guest "$name"
	domid=$(xl domid "$name")
	pid=$(blanketd_pid)
	if [ "$be" = blanketd ]; then pidopt="-p $pid"; else pidopt="-a"; fi
	wait_console "$name" 'GUEST-STEP wait:' 300
	for k in 3 4 5; do
		while [ "$(tr -d '\r' <"$log" | grep -c 'GUEST-STEP ')" -lt $((k - 1)) ]; do sleep 0.5; done
		prof "$be-job$((k - 2))" "$be" "$pidopt"
		[ "$be" = blanketd ] && blanketctl stats "vbd $domid/51712" 2>&1 | sed "s/^/  PROF $be-job$((k - 2)) stats: /"
		[ "$be" = blanketd ] && blanketctl stats --json "vbd $domid/51712" 2>&1 | tr ',' '\n' | grep -iE 'pgnt|persist|map|cop|grant' | tr '\n' ' ' | sed "s/^/  PROF $be-job$((k - 2)) json: /"; echo
	done
	wait_guest_done "$name" 300
	tr -d '\r' <"$log" | grep 'GUEST-FIO ' | sed "s/^/  PROF $be fio: /"
	for k in 1 2 3; do report "$be-job$k"; done
	wait_no_backend "$domid" 60
}
round blanketd
kernel_backend vbd on
round blkback
kernel_backend vbd off
show "profiled"
exit 0
