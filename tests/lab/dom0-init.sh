#!/bin/sh
# SPDX-License-Identifier: MIT
#
# /init of the lab's dom0 (busybox sh). Brings up the Xen toolstack and the guests' bridges,
# starts the backend (blanketd, or the kernel's xen-blkback and xen-netback with
# lab.backend=kernel), runs the scenarios named by
# lab.scenarios=a+b+c and prints, on the serial console:
#   LAB-BEGIN <scenario>
#   LAB-RESULT <scenario> PASS|FAIL|SKIP
#   LAB-END
# then powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
export HOME=/root

mount -t proc proc /proc
# The lab's driver domain boots this same image as a PV domU (lab.role=drv): drv-init.sh.
grep -q 'lab\.role=drv' /proc/cmdline && exec /usr/bin/bash /lab/drv-init.sh
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
mkdir -p /run/lock /run/xen /run/xenstored /run/blanketd
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
exec </dev/console >/dev/console 2>&1

arg() { sed -n "s/.*lab\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
BACKEND=$(arg backend)
SCENARIOS=$(arg scenarios)
STIMEOUT=$(arg timeout)
: "${BACKEND:=blanketd}" "${STIMEOUT:=900}"
export LAB_BACKEND=$BACKEND

echo "LAB-BOOT dom0 up, backend=$BACKEND scenarios=$SCENARIOS"
for m in xenfs xen-privcmd xen-evtchn xen-gntdev xen-gntalloc loop tun bridge veth dummy \
	virtio_pci virtio_blk virtio_net crc32c_generic ext4; do
	modprobe "$m" || echo "LAB-WARN modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen

# The scratch disk from the host (ext4, preformatted by run.sh) holds the disk images.
mkdir -p /scratch
if [ -b /dev/vda ]; then
	mount -t ext4 /dev/vda /scratch || echo "LAB-WARN cannot mount /dev/vda"
fi

xenstored --pid-file=/run/xenstored.pid
i=0
while [ ! -S /run/xenstored/socket ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
xen-init-dom0 || echo "LAB-WARN xen-init-dom0 failed"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
echo "LAB-TOOLSTACK up"

# The guests' networks (see dom0-lib.sh, "Networks"): bridges xenbr0 10.0.0.1/24 and xenbr1
# 10.1.0.1/24 for vif-bridge, forwarding on for vif-nat/vif-route, and a network namespace
# "far" (192.168.77.2, reached through veth far0 192.168.77.1) standing for a host behind dom0.
# (iproute2's ip by its path: this busybox sh runs its own applets first)
IP=/usr/sbin/ip
$IP link set lo up
for b in 0 1; do
	$IP link add "xenbr$b" type bridge stp_state 0 forward_delay 0 &&
		$IP addr add "10.$b.0.1/24" dev "xenbr$b" && $IP link set "xenbr$b" up ||
		echo "LAB-WARN cannot set up bridge xenbr$b"
done
echo 1 >/proc/sys/net/ipv4/ip_forward
mkdir -p /run/netns
if $IP netns add far && $IP link add far0 type veth peer name far1 &&
	$IP link set far1 netns far && $IP addr add 192.168.77.1/24 dev far0 &&
	$IP link set far0 up && $IP -n far addr add 192.168.77.2/24 dev far1 &&
	$IP -n far link set far1 up && $IP -n far link set lo up &&
	$IP -n far route add default via 192.168.77.1; then
	:
else
	echo "LAB-WARN cannot set up the network namespace far"
fi

if [ "$BACKEND" = kernel ]; then
	modprobe xen-blkback
	modprobe xen-netback
else
	if [ ! -x /usr/sbin/blanketd ]; then
		echo "LAB-WARN no blanketd in the image"
	fi
	. /lab/dom0-lib.sh
	# Sanitizer builds (the CI's build-asan) stop at the first error, with a stack trace.
	export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	start_blanketd
fi

for s in $(echo "$SCENARIOS" | tr '+' ' '); do
	echo "LAB-BEGIN $s"
	if [ ! -f "/lab/scenarios/$s.sh" ]; then
		echo "LAB-RESULT $s FAIL (no such scenario)"
		continue
	fi
	timeout "$STIMEOUT" /usr/bin/bash "/lab/scenarios/$s.sh"
	rc=$?
	case $rc in
	0) r=PASS ;;
	77) r=SKIP ;;
	*) r="FAIL (exit $rc)" ;;
	esac
	if [ "$rc" != 0 ]; then
		echo "--- xenstore backend tree ---"
		xenstore-ls -f /local/domain/0/backend 2>&1 | tail -n 60
		if [ -f /var/log/blanketd.log ]; then
			echo "--- blanketd log (tail) ---"
			tail -n 80 /var/log/blanketd.log
		fi
		for g in /var/log/xen/console/guest-*.log; do
			[ -f "$g" ] || continue
			echo "--- $g (tail) ---"
			tail -n 40 "$g"
		done
		for g in /var/log/xen/qemu-dm-*.log; do
			[ -f "$g" ] || continue
			echo "--- $g (tail) ---"
			tail -n 20 "$g"
		done
		echo "--- hotplug log (tail) ---"
		tail -n 20 /var/log/xen/xen-hotplug.log 2>/dev/null
	fi
	# Leave no guest behind for the next scenario.
	for d in $(xl list 2>/dev/null | awk 'NR > 2 { print $1 }'); do xl destroy "$d"; done
	echo "LAB-RESULT $s $r"
done
# blanketd must stop cleanly on SIGTERM with nothing reported by the sanitizers.
if [ "$BACKEND" = blanketd ]; then
	echo "LAB-BEGIN blanketd-exit"
	pid=$(cat /run/lab-blanketd.pid 2>/dev/null)
	r=PASS
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
		r="FAIL (blanketd was not running at the end)"
	else
		kill -TERM "$pid"
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
		if kill -0 "$pid" 2>/dev/null; then
			r="FAIL (blanketd still running 30 s after SIGTERM)"
		else
			wait "$pid"
			rc=$?
			# Restarted by a scenario, not our child: its wrapper recorded the status.
			[ "$rc" = 127 ] && rc=$(spawned_blanketd_rc)
			[ "$rc" = 0 ] || r="FAIL (blanketd exit status $rc)"
		fi
	fi
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' /var/log/blanketd.log; then
		r="FAIL (sanitizer report in the blanketd log)"
	fi
	case $r in PASS) ;; *) echo "--- blanketd log (tail) ---"; tail -n 60 /var/log/blanketd.log ;; esac
	echo "LAB-RESULT blanketd-exit $r"
fi
echo "LAB-END"
sync
poweroff -f
