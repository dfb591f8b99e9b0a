#!/usr/bin/bash
# SPDX-License-Identifier: MIT
#
# /init of the lab's driver domain: the dom0 image booted as a PV domU with lab.role=drv on its
# command line (dom0-init.sh hands over to this script). Does what an operator's driver domain
# does for blanketd, and nothing dom0-only:
#   - mounts, xenfs at /proc/xen, the modules xen-privcmd, xen-evtchn, xen-gntdev, xen-gntalloc
#     (no xen-blkback: blanketd is the backend);
#   - `xl devd`, which runs the hotplug scripts (script=blanket) for devices whose backend is here;
#   - blanketd with its own state under /run/blanketd;
#   - with lab.drv_net=ADDR/LEN, a bridge xenbr0 for guests' vifs and a nettool server (5001);
#   - the guests' disk images on this domain's tmpfs: lab.drv_images=NAME:MIB+NAME:MIB gives
#     /images/NAME.raw (tmpfs has no O_DIRECT in this kernel: the guests' targets use
#     cache=writeback).
# Console lines (hvc0, logged by dom0's xenconsoled as guest-<name>.log):
#   DRV-READY domid=N     xl devd and blanketd are up
#   DRV-FAIL <reason>     something needed is missing
#   DRV-STATS served=N    when it changed (polled every 2 s): requests blanketd served here (reads + writes)
#   DRV-LOG <line>        blanketd's log as it is written
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
export HOME=/root

mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
mkdir -p /run/lock /run/xen /run/blanketd /images
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
exec </dev/console >/dev/console 2>&1

drv_fail() {
	echo "DRV-FAIL $*"
	sleep 100000
}

for m in xenfs xen-privcmd xen-evtchn xen-gntdev xen-gntalloc; do
	modprobe "$m" || echo "DRV-WARN modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen || drv_fail "cannot mount xenfs"
domid=$(xenstore-read domid) || drv_fail "cannot read my domid from xenstore"
echo "DRV-BOOT domid=$domid caps='$(cat /proc/xen/capabilities 2>/dev/null)'"

for spec in $(sed -n 's/.*lab\.drv_images=\([^ ]*\).*/\1/p' /proc/cmdline | tr '+' ' '); do
	truncate -s "${spec#*:}M" "/images/${spec%%:*}.raw" || drv_fail "cannot create image $spec"
done

# lab.drv_net=ADDR/LEN: a bridge xenbr0 with that address for guests' vifs (backend=drv,
# bridge=xenbr0; the stock vif-bridge script run by xl devd), and a nettool server on port 5001.
net=$(sed -n 's/.*lab\.drv_net=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$net" ]; then
	for m in tun bridge; do
		modprobe "$m" || echo "DRV-WARN modprobe $m failed"
	done
	IP=/usr/sbin/ip
	$IP link set lo up
	$IP link add xenbr0 type bridge stp_state 0 forward_delay 0 &&
		$IP addr add "$net" dev xenbr0 && $IP link set xenbr0 up ||
		drv_fail "cannot set up bridge xenbr0 with $net"
	nettool server 5001 >/var/log/nettool.log 2>&1 &
fi

xl devd -F >/var/log/xl-devd.log 2>&1 &
devd=$!

. /lab/dom0-lib.sh
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
start_blanketd || drv_fail "blanketd did not start"
# (busybox sed cannot unbuffer: a shell loop passes each line on as it comes)
tail -n +1 -F "$BLANKETD_LOG" 2>/dev/null | while IFS= read -r l; do echo "DRV-LOG $l"; done &
sleep 1
kill -0 $devd 2>/dev/null || drv_fail "xl devd exited: $(tail -n 5 /var/log/xl-devd.log)"
echo "DRV-READY domid=$domid"

last=
while :; do
	sleep 2
	if ! blanketd_alive; then
		echo "DRV-FAIL blanketd died"
		tail -n 20 /var/log/xl-devd.log | sed 's/^/DRV-DEVD /'
		sleep 100000
	fi
	n=$(blanketd_served)
	[ "$n" = "$last" ] || echo "DRV-STATS served=$n"
	last=$n
done
