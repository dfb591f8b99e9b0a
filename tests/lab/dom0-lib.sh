# SPDX-License-Identifier: MIT
# Helpers for the lab scenarios running in dom0 (sourced by bash scenario scripts and by init).

LAB_BACKEND=${LAB_BACKEND:-blanketd}
CONSOLE_DIR=/var/log/xen/console
IMG_DIR=/scratch
grep -q ' /scratch ' /proc/mounts || IMG_DIR=/tmp
BLANKETD_LOG=/var/log/blanketd.log

say() { echo "LAB: $*"; }
# Lines run.sh prints to the user as they come (the demo's output).
show() { echo "LAB-SHOW $*"; }
fail() {
	echo "LAB-FAIL-REASON: $*"
	exit 1
}
skip() {
	echo "LAB-SKIP-REASON: $*"
	exit 77
}

# blanketd in the foreground of a background shell, logging to $BLANKETD_LOG.
start_blanketd() {
	[ -x /usr/sbin/blanketd ] || return 1
	/usr/sbin/blanketd $(sed -n 's/.*lab\.blanketd_args=\([^ ]*\).*/\1/p' /proc/cmdline |
		tr '+' ' ') >>"$BLANKETD_LOG" 2>&1 &
	echo $! >/run/lab-blanketd.pid
	sleep 1
	if ! kill -0 "$(cat /run/lab-blanketd.pid)" 2>/dev/null; then
		echo "LAB-WARN blanketd exited at start:"
		tail -n 20 "$BLANKETD_LOG"
		return 1
	fi
	echo "LAB-BLANKETD pid $(cat /run/lab-blanketd.pid)"
}

blanketd_pid() { cat /run/lab-blanketd.pid 2>/dev/null; }

blanketd_alive() {
	[ "$LAB_BACKEND" != blanketd ] && return 0
	kill -0 "$(blanketd_pid)" 2>/dev/null
}

# A sparse raw image: make_image PATH SIZE_MIB
make_image() {
	rm -f "$1"
	truncate -s "${2}M" "$1" || fail "cannot create $1"
}

# One disk spec for xl.cfg: disk_spec TARGET VDEV r|w
disk_spec() {
	local acc=rw
	[ "$3" = r ] && acc=ro
	if [ "$LAB_BACKEND" = kernel ]; then
		echo "'vdev=$2,format=raw,access=$acc,target=$1'"
	else
		echo "'vdev=$2,format=raw,access=$acc,backendtype=phy,script=blanket,target=$1'"
	fi
}

# write_cfg NAME VCPUS "STEPS" DISKSPEC...
# With CFG_VIFS set (vif_spec lines joined by ','), the guest gets those vifs too; CFG_RAMDISK
# and CFG_MEMORY (MiB) replace the guest image and its memory (blkcmp's image with fio).
write_cfg() {
	local name=$1 vcpus=$2 steps=$3 disks
	shift 3
	disks=$(IFS=,; echo "$*")
	cat >"/tmp/$name.cfg" <<EOF
name = "$name"
type = "pv"
kernel = "/lab/vmlinuz"
ramdisk = "${CFG_RAMDISK:-/lab/domu.cpio}"
extra = "console=hvc0 quiet loglevel=4 lab.steps=$steps"
memory = ${CFG_MEMORY:-320}
vcpus = $vcpus
on_poweroff = "destroy"
on_reboot = "restart"
on_crash = "destroy"
disk = [ $disks ]
EOF
	[ -n "${CFG_VIFS:-}" ] && echo "vif = [ $CFG_VIFS ]" >>"/tmp/$name.cfg"
	return 0
}

start_guest() {
	local log=$CONSOLE_DIR/guest-$1.log
	rm -f "$log"
	say "xl create $1"
	xl create "/tmp/$1.cfg" || fail "xl create $1 failed"
	say "guest $1 running (domid $(xl domid "$1" 2>/dev/null))"
}

# wait_console NAME REGEX TIMEOUT_S: wait for a line in the guest's console log.
wait_console() {
	local log=$CONSOLE_DIR/guest-$1.log end=$((SECONDS + $3))
	while ! grep -qE "$2" "$log" 2>/dev/null; do
		if [ $SECONDS -ge $end ]; then
			guest_log "$1"
			guest_diag "$1"
			fail "guest $1: no '$2' within $3 s"
		fi
		sleep 0.5
	done
}

guest_log() {
	echo "--- console of guest $1 (tail) ---"
	tail -n 40 "$CONSOLE_DIR/guest-$1.log" 2>/dev/null | sed 's/^/  | /'
}

# guest_devices DOMID: one line per frontend of the domain (vbd, then vif): "KIND/ID
# FRONTEND-STATE BACKEND-STATE BACKEND-PATH", "-" for a node that is not there.
guest_devices() {
	local k i fe be
	for k in vbd vif; do
		for i in $(xenstore-list "/local/domain/$1/device/$k" 2>/dev/null); do
			fe=/local/domain/$1/device/$k/$i
			be=$(xenstore-read "$fe/backend" 2>/dev/null)
			echo "$k/$i $(xenstore-read "$fe/state" 2>/dev/null || echo -)" \
				"$(xenstore-read "$be/state" 2>/dev/null || echo -) ${be:--}"
		done
	done
}

# guest_diag NAME: what xl and xenstore say of a guest that did not get on: its domain, and the
# state of each of its frontends next to its backend's (blkfront or netfront stuck before
# Initialised, or a backend that did not answer).
guest_diag() {
	local d
	d=$(xl domid "$1" 2>/dev/null) || {
		echo "--- guest $1: no such domain ---"
		return 0
	}
	echo "--- guest $1: domain $d, its devices' states (frontend/backend) ---"
	xl list "$1" 2>&1 | sed 's/^/  | /'
	guest_devices "$d" | awk '{ printf "  | %s: %s/%s (backend %s)\n", $1, $2, $3, $4 }'
}

# boot_guest NAME TIMEOUT: start_guest, then wait for the guest's init (GUEST-START). A guest
# whose console stays empty, its kernel not at init after TIMEOUT s, is created once more: under
# TCG a PV guest has been seen (once in many runs) to hang before its first console line and
# before its frontends left Initialising, with the backend waiting in InitWait (a backend that
# never answered cannot do this: the kernel gives up on its devices after 30 s and goes on to
# init). A second such hang, a backend not in InitWait or Connected, or a console with
# something else in it fails.
boot_guest() {
	local log=$CONSOLE_DIR/guest-$1.log end try d stuck
	for try in 1 2; do
		start_guest "$1"
		end=$((SECONDS + $2))
		while ! grep -q 'GUEST-START' "$log" 2>/dev/null && [ $SECONDS -lt $end ]; do
			sleep 0.5
		done
		grep -q 'GUEST-START' "$log" 2>/dev/null && return 0
		guest_log "$1"
		guest_diag "$1"
		[ -s "$log" ] && fail "guest $1: no GUEST-START within $2 s"
		[ $try = 1 ] || fail "guest $1: its kernel did not reach init within $2 s, twice"
		d=$(xl domid "$1" 2>/dev/null) || fail "guest $1 is gone before its init"
		stuck=$(guest_devices "$d" | awk '$3 != 2 && $3 != 4 { print $1 " backend is in state \047" $3 "\047"; exit }')
		[ -z "$stuck" ] || fail "guest $1: no init within $2 s, and its $stuck"
		echo "LAB-WARN guest $1 printed nothing in $2 s (its kernel did not reach init; its backends wait for it): creating it again"
		xl destroy "$1" 2>/dev/null
		wait_no_backend "$d" 60
	done
}

# The value printed by the guest after KEY= on its last line matching REGEX.
guest_value() {
	grep -E "$2" "$CONSOLE_DIR/guest-$1.log" | tail -n 1 | sed -n "s/.*$3=\([^ ]*\).*/\1/p" |
		tr -d '\r'
}

# wait_guest_done NAME TIMEOUT_S: the guest printed GUEST-DONE ok and its domain went away.
wait_guest_done() {
	local end
	wait_console "$1" 'GUEST-DONE' "$2"
	if ! grep -q 'GUEST-DONE ok' "$CONSOLE_DIR/guest-$1.log"; then
		guest_log "$1"
		fail "guest $1 reported a failed step"
	fi
	end=$((SECONDS + 30))
	while xl domid "$1" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && fail "guest $1 did not go away after poweroff"
		sleep 0.5
	done
	say "guest $1 done"
}

# Backend nodes that still exist for a domain id (empty when clean).
backend_nodes() {
	xenstore-list "/local/domain/0/backend/vbd/$1" 2>/dev/null
}

# wait_no_backend DOMID TIMEOUT_S
wait_no_backend() {
	local end=$((SECONDS + $2))
	while [ -n "$(backend_nodes "$1")" ]; do
		if [ $SECONDS -ge $end ]; then
			xenstore-ls -f "/local/domain/0/backend/vbd/$1" 2>&1 | head -n 40
			fail "backend nodes of domain $1 still present after $2 s"
		fi
		sleep 0.5
	done
}

fe_read() { xenstore-read "/local/domain/$1/device/vbd/$2/$3" 2>/dev/null; }
be_read() { xenstore-read "/local/domain/0/backend/vbd/$1/$2/$3" 2>/dev/null; }

# Number of open fds / gntdev mappings of blanketd (for leak checks).
blanketd_fds() { ls "/proc/$(blanketd_pid)/fd" 2>/dev/null | wc -l; }
blanketd_gnt_maps() { grep -c gntdev "/proc/$(blanketd_pid)/maps" 2>/dev/null; }

# For the benchmarks' CPU columns: "UPTIME_S DOM0_BUSY BLANKETD" now. DOM0_BUSY is dom0's busy
# time over all its vCPUs (/proc/stat: all but idle and iowait), BLANKETD the daemon's own
# (utime + stime, 0 when it is not running), both in ticks of 1/100 s: 100 a second is one CPU.
cpu_sample() {
	local up _ cpu u n s idle io irq sirq st bt
	read -r up _ </proc/uptime
	read -r cpu u n s idle io irq sirq st _ </proc/stat
	bt=$(awk '{ print $14 + $15 }' "/proc/$(blanketd_pid)/stat" 2>/dev/null)
	echo "$up $((u + n + s + irq + sirq + st)) ${bt:-0}"
}

# cpu_delta A B: "WALL_S DOM0_TICKS BLANKETD_TICKS" from cpu_sample A to cpu_sample B.
cpu_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x); split(b, y); print y[1] - x[1], y[2] - x[2], y[3] - x[3] }'
}

blanketctl_stats() {
	if [ -x /usr/sbin/blanketctl ]; then
		blanketctl stats 2>&1
	else
		echo "(no blanketctl in this build)"
	fi
}

# Allocated KiB of a file.
file_kib() { echo $(($(stat -c '%b * %B' "$1") / 1024)); }

# The device id xl assigns to xvdX (Linux xvd scheme: 202 << 8 | disk * 16).
vdev_id() {
	local letter=${1#xvd}
	echo $(((202 << 8) | (($(printf '%d' "'$letter") - 97) << 4)))
}

# A blanketd started by a scenario (a restart) is not a child of init: a wrapper shell records
# its exit status in /run/lab-blanketd.rc, for the scenario and the final blanketd-exit check.
#   spawn_blanketd [EXTRA ARGS...]   the boot's lab.blanketd_args, then EXTRA ARGS
spawn_blanketd() {
	local i=0
	rm -f /run/lab-blanketd.rc /run/lab-blanketd.pid
	(
		/usr/sbin/blanketd $(sed -n 's/.*lab\.blanketd_args=\([^ ]*\).*/\1/p' /proc/cmdline |
			tr '+' ' ') "$@" >>"$BLANKETD_LOG" 2>&1 &
		p=$!
		echo $p >/run/lab-blanketd.pid.new
		mv /run/lab-blanketd.pid.new /run/lab-blanketd.pid
		wait $p
		# "PID STATUS": an old wrapper that writes late cannot pass for the new daemon's.
		echo "$p $?" >/run/lab-blanketd.rc.$p
		mv /run/lab-blanketd.rc.$p /run/lab-blanketd.rc
	) &
	while [ ! -s /run/lab-blanketd.pid ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && return 1
		sleep 0.1
	done
	echo "LAB-BLANKETD pid $(cat /run/lab-blanketd.pid) (restarted)"
}

# stop_blanketd: SIGTERM to the running blanketd, wait until it is gone (fails after 30 s).
stop_blanketd() {
	local pid i=0
	pid=$(blanketd_pid)
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 300 ] && fail "blanketd $pid still running 30 s after SIGTERM"
		sleep 0.1
	done
}

# start_blanketd_checked: spawn_blanketd, and fail unless the daemon still runs 2 s later.
start_blanketd_checked() {
	spawn_blanketd || fail "cannot start blanketd"
	sleep 2
	blanketd_alive || fail "blanketd exited at start"
}

# respawn_blanketd: stop the running blanketd (SIGTERM) and start a new one, checked as above.
respawn_blanketd() {
	stop_blanketd
	start_blanketd_checked
}

# kernel_backend KIND on|off (KIND vbd or vif): with no guest running, load (on) or unload
# (off) the kernel's backend for KIND (xen-blkback, xen-netback) and restart blanketd, which
# leaves a kind whose kernel backend is loaded at its start to the kernel and says so (it keeps
# serving the other kind). The benchmarks switch backends in one boot this way.
kernel_backend() {
	local mod=xen-blkback mark
	[ "$1" = vif ] && mod=xen-netback
	stop_blanketd
	if [ "$2" = on ]; then
		modprobe "$mod" || fail "cannot load $mod"
		[ -d "/sys/bus/xen-backend/drivers/$1" ] ||
			fail "$mod loaded, but no /sys/bus/xen-backend/drivers/$1"
	else
		modprobe -r "$mod" 2>/dev/null
		[ ! -d "/sys/bus/xen-backend/drivers/$1" ] || fail "$mod is still loaded"
	fi
	mark=$(wc -l <"$BLANKETD_LOG")
	start_blanketd_checked
	if [ "$2" = on ]; then
		tail -n +"$((mark + 1))" "$BLANKETD_LOG" | grep -q "leaving $1 devices to it" ||
			fail "blanketd did not say it leaves $1 devices to the kernel"
	fi
}

# Exit status of the blanketd spawn_blanketd started last, once it is gone (waits up to 5 s for
# its wrapper); 127 when there is none.
spawned_blanketd_rc() {
	local i=0 pid rcpid rc
	pid=$(cat /run/lab-blanketd.pid 2>/dev/null)
	while :; do
		read -r rcpid rc 2>/dev/null </run/lab-blanketd.rc
		[ -n "$pid" ] && [ "$rcpid" = "$pid" ] && { echo "$rc"; return 0; }
		[ $i -ge 50 ] && { echo 127; return 0; }
		sleep 0.1
		i=$((i + 1))
	done
}

# restart_blanketd WHAT SIGNAL CONNECTED ADOPTED [CHECK_FN]: stop the running blanketd with SIGNAL
# (it must be gone within 30 s; after SIGTERM it must exit 0), run CHECK_FN "WHAT, no daemon
# running" if given, wait 1 s (the guest keeps queueing), start a new one (extra arguments in
# RESTART_ARGS, split at blanks: this file is read by busybox sh too, no arrays), and wait up to
# 90 s for the line "CONNECTED: connected:" in its log. Fails unless the new log lines contain
# ADOPTED (a regex: the device was taken over) and no error. Shows the restart's lines (and
# those matching the regex RESTART_SHOW); leaves the new daemon's log lines in RESTART_SEG.
restart_blanketd() {
	local what=$1 sig=$2 conn=$3 adopted=$4 check=${5:-} pid lines0 end rc bad
	pid=$(blanketd_pid)
	lines0=$(wc -l <"$BLANKETD_LOG")
	kill -"$sig" "$pid" || fail "$what: cannot signal blanketd $pid"
	end=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		[ $SECONDS -ge $end ] && fail "$what: blanketd $pid still running 30 s after SIG$sig"
		sleep 0.1
	done
	if [ "$sig" = TERM ]; then
		rc=$(spawned_blanketd_rc)
		[ "$rc" = 0 ] || [ "$rc" = 127 ] || fail "$what: blanketd exited with status $rc after SIGTERM"
	fi
	[ -z "$check" ] || "$check" "$what, no daemon running"
	say "  journals: $(cd /run/blanketd/inflight 2>/dev/null && ls | tr '\n' ' ')"
	sleep 1
	# shellcheck disable=SC2086 # words on purpose
	spawn_blanketd $RESTART_ARGS || fail "$what: cannot start blanketd"
	end=$((SECONDS + 90))
	while ! tail -n +$((lines0 + 1)) "$BLANKETD_LOG" | grep -q "$conn: connected:"; do
		blanketd_alive || { tail -n 30 "$BLANKETD_LOG"; fail "$what: the new blanketd died"; }
		[ $SECONDS -ge $end ] && { tail -n 30 "$BLANKETD_LOG"; fail "$what: the new blanketd did not connect $conn within 90 s"; }
		sleep 0.2
	done
	RESTART_SEG=$(tail -n +$((lines0 + 1)) "$BLANKETD_LOG")
	echo "$RESTART_SEG" |
		grep -E "stopping|handed over|taking over|re-issuing|served again|connected:${RESTART_SHOW:+|$RESTART_SHOW}" |
		sed 's/^/  | /'
	echo "$RESTART_SEG" | grep -qE "$adopted" || fail "$what: the new blanketd did not take $conn over"
	bad=$(echo "$RESTART_SEG" | grep -iE 'fail|error|corrupt|does not match|no free slot|runtime error')
	[ -z "$bad" ] || { echo "$bad" | sed 's/^/  | /'; fail "$what: blanketd reported errors"; }
}

# Requests the running blanketd has served (reads + writes over all its queues).
blanketd_served() {
	blanketctl stats --json 2>/dev/null |
		grep -o '"queue":[0-9]*,"requests":{"read":[0-9]*,"write":[0-9]*' |
		sed 's/.*"read":\([0-9]*\),"write":\([0-9]*\)/\1 \2/' |
		awk '{ s += $1 + $2 } END { print s + 0 }'
}

# check_connected DOMID DEVID WHAT: both ends of the disk are Connected (4), or fail saying WHAT.
check_connected() {
	local be fe
	be=$(be_read "$1" "$2" state)
	fe=$(fe_read "$1" "$2" state)
	[ "$be" = 4 ] && [ "$fe" = 4 ] ||
		fail "$3: backend state '$be', frontend state '$fe' (both must stay 4, Connected)"
}

# What in a guest's kernel log (its console at loglevel 7) shows a block error, or blkfront
# catching a backend answering twice or out of turn (a response with a bad or not-pending id, the
# wrong operation, too many responses: blkfront then disables the disk); empty when clean.
guest_block_errors() {
	tr -d '\r' <"$CONSOLE_DIR/guest-$1.log" |
		grep -iE 'I/O error|blk_update_request|critical (target|medium)|blkfront.*(fail|error|bad|timeout|not)|Bad return|xvd[a-z].*(error|fail)|Buffer I/O|xenbus.*(error|fail)|hung_task|blocked for more than|incorrect id|no pending request|wrong operation|illegal number of responses|disabled for further use|recycled|WARNING:|BUG:|Oops|Call Trace' ||
		true
}

# --- Networks ---
# dom0-init.sh sets up: xenbr0 10.0.0.1/24, xenbr1 10.1.0.1/24, IPv4 forwarding, and a network
# namespace "far" at 192.168.77.2 (behind dom0, reached through veth far0 192.168.77.1). Guests
# take addresses 10.<bridge>.0.<n>/24 on the bridges (guest-init's netup step).

# One vif spec for xl.cfg: vif_spec MAC [BRIDGE [MORE]]; MORE is e.g. "script=vif-nat,ip=..."
# (the same line for blanketd and the kernel's xen-netback: libxl does not know who serves it).
vif_spec() {
	echo "'mac=$1${2:+,bridge=$2}${3:+,$3}'"
}

vif_fe_read() { xenstore-read "/local/domain/$1/device/vif/$2/$3" 2>/dev/null; }
# vif_be_read DOMID DEVID KEY [BACKEND_DOMID]: a key of the vif's backend (dom0's by default).
vif_be_read() { xenstore-read "/local/domain/${4:-0}/backend/vif/$1/$2/$3" 2>/dev/null; }

# vif_fe_dump DOMID DEVID: the frontend's keys (queue-N/ subkeys too), one "key = value" a line.
vif_fe_dump() {
	xenstore-ls "/local/domain/$1/device/vif/$2" 2>/dev/null | sed 's/^/  fe: /'
}

# ping_each ADDR N: N pings from dom0, each answered within 5 s (one per run: busybox's ping -c N
# gives its last ping only 2 round trips of the slowest so far, too short for a stall under
# TCG); says how many were answered and fails unless all were.
ping_each() {
	local i=0 ok=0 out
	while [ "$i" -lt "$2" ]; do
		i=$((i + 1))
		out=$(ping -c 1 -W 5 "$1" 2>&1) && ok=$((ok + 1))
		echo "$out" | grep 'seq=' | sed 's/^/  /'
	done
	say "dom0 -> $1: $ok of $2 pings answered"
	[ "$ok" = "$2" ] || fail "dom0 -> $1: $(($2 - ok)) of $2 pings unanswered"
}

# wait_vif_connected DOMID DEVID TIMEOUT_S [BACKEND_DOMID]: both ends of the vif reach 4
# (Connected); the backend is dom0's unless BACKEND_DOMID names a driver domain.
wait_vif_connected() {
	local end=$((SECONDS + $3)) be fe bd=${4:-0}
	while :; do
		be=$(vif_be_read "$1" "$2" state "$bd")
		fe=$(vif_fe_read "$1" "$2" state)
		[ "$be" = 4 ] && [ "$fe" = 4 ] && return 0
		if [ $SECONDS -ge $end ]; then
			xenstore-ls -f "/local/domain/$bd/backend/vif/$1" 2>&1 | head -n 40
			vif_fe_dump "$1" "$2"
			fail "vif $1/$2: backend (domain $bd) state '$be', frontend state '$fe' after $3 s (want 4)"
		fi
		sleep 0.5
	done
}

# Backend vif nodes left for a domain id (empty when clean); wait_no_vif_backend DOMID TIMEOUT_S.
vif_backend_nodes() {
	xenstore-list "/local/domain/0/backend/vif/$1" 2>/dev/null
}
wait_no_vif_backend() {
	local end=$((SECONDS + $2))
	while [ -n "$(vif_backend_nodes "$1")" ]; do
		if [ $SECONDS -ge $end ]; then
			xenstore-ls -f "/local/domain/0/backend/vif/$1" 2>&1 | head -n 40
			fail "vif backend nodes of domain $1 still present after $2 s"
		fi
		sleep 0.5
	done
}

# TAP devices in dom0 (by name, one a line) and how many there are.
taps() {
	local d
	for d in /sys/class/net/*; do
		[ -e "$d/tun_flags" ] && echo "${d##*/}"
	done
}
tap_count() { taps | wc -l; }

# vif_queue_packets DOMID DEVID: "QUEUE TX_PACKETS RX_PACKETS" per queue of the vif, from
# blanketctl stats --json (TX = from the guest). Nothing when blanketd does not know the vif.
vif_queue_packets() {
	blanketctl stats --json "vif $1/$2" 2>/dev/null |
		sed 's/"total":.*//; s/{"queue":/|/g' | tr '|' '\n' |
		sed -n 's/^\([0-9]*\),.*"net":{"tx_packets":\([0-9]*\),"tx_bytes":[0-9]*,"rx_packets":\([0-9]*\).*/\1 \2 \3/p'
}

# check_vif_queues DOMID DEVID NQUEUES: blanketd serves NQUEUES queues on the vif and every one
# carried frames both ways.
check_vif_queues() {
	local lines n
	[ "$LAB_BACKEND" = blanketd ] || return 0
	lines=$(vif_queue_packets "$1" "$2")
	echo "$lines" | sed "s/^/  vif $1\/$2 queue tx rx: /"
	n=$(echo "$lines" | grep -c .)
	[ "$n" = "$3" ] || fail "vif $1/$2: blanketctl shows $n queues, want $3"
	echo "$lines" | awk '$2 == 0 || $3 == 0 { bad = 1 } END { exit bad }' ||
		fail "vif $1/$2: a queue carried no frames one way (queue tx rx: $(echo $lines))"
}

# A nettool server in dom0 (or in the namespace "far" with NS=far), logging to
# /tmp/nettool-PORT.log; start_nettool_server PORT. Stopped by stop_nettool_servers.
start_nettool_server() {
	local log=/tmp/nettool-$1.log i=0
	rm -f "$log"
	if [ -n "${NS:-}" ]; then
		ip netns exec "$NS" nettool server "$1" >"$log" 2>&1 &
	else
		nettool server "$1" >"$log" 2>&1 &
	fi
	echo $! >>/run/lab-nettool.pids
	while ! grep -q listening "$log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 50 ] && fail "nettool server on port $1 did not start: $(cat "$log")"
		sleep 0.1
	done
}
stop_nettool_servers() {
	local p
	for p in $(cat /run/lab-nettool.pids 2>/dev/null); do kill "$p" 2>/dev/null; done
	rm -f /run/lab-nettool.pids
}

# nettool_check LOG_OR_GUEST REGEX: fail unless there are NETTOOL lines matching REGEX and all
# of them end in ok. $1 is a log file, or a guest's name (its console log).
nettool_check() {
	local f=$1 lines
	[ -f "$f" ] || f=$CONSOLE_DIR/guest-$1.log
	lines=$(tr -d '\r' <"$f" | grep -E "NETTOOL.*$2")
	[ -n "$lines" ] || fail "no NETTOOL '$2' line in $f"
	echo "$lines" | sed 's/^/  /'
	! echo "$lines" | grep -qv ' ok$' || fail "a NETTOOL '$2' line in $f is not ok"
}

# push_to_guest NAME ADDR PORT MIB SEED TIMEOUT_S: wait for guest NAME's nettool server on PORT
# (its serve step), push MIB MiB of SEED's data to it at ADDR, and check the transfer.
push_to_guest() {
	wait_console "$1" "NETTOOL server listening port=$3" "$6"
	nettool push "$2" "$3" "$4" "$5" >/tmp/push.out 2>&1
	nettool_check /tmp/push.out push
}

# What a guest's kernel log (console at loglevel 4) shows of netfront trouble; empty when clean.
guest_net_errors() {
	tr -d '\r' <"$CONSOLE_DIR/guest-$1.log" |
		grep -iE 'netfront.*(fail|error|bad|broken|invalid|too many)|xennet|backend does not support|rx (producer|prod)|WARNING:|BUG:|Oops|Call Trace' ||
		true
}

# wait_step NAME STEP_REGEX TIMEOUT_S: the guest reported the step ok (fails at once when it
# reported it failed, or finished without it).
wait_step() {
	local log=$CONSOLE_DIR/guest-$1.log
	wait_console "$1" "GUEST-STEP $2 (ok|fail)|GUEST-DONE" "$3"
	if ! tr -d '\r' <"$log" | grep -qE "GUEST-STEP $2 ok"; then
		guest_log "$1"
		fail "guest $1: step '$2' did not succeed ($(tr -d '\r' <"$log" |
			grep -oE 'GUEST-STEP [^ ]+ fail' | tail -n 1 | sed 's/GUEST-STEP \(.*\) fail/\1 failed/'))"
	fi
}

# json_net_total DOMID DEVID KEY: a counter of the vif's "total" net stats (0 when unknown).
json_net_total() {
	local v
	v=$(blanketctl stats --json "vif $1/$2" 2>/dev/null | sed 's/.*"total":{//' |
		sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p")
	echo "${v:-0}"
}

# tcp_counters: this host's TCP counters that tell loss from delay (from /proc/net/snmp and
# /proc/net/netstat), as "name=value" words.
tcp_counters() {
	awk '/^(Tcp|TcpExt):/ { if (!h[$1]) { h[$1] = 1; split($0, n); next }
		for (i = 2; i <= NF; i++) if (n[i] ~ /^(RetransSegs|InErrs|InCsumErrors|OutRsts|TCPLostRetransmit|TCPTimeouts|DelayedACKs|TCPFastRetrans|TCPSlowStartRetrans|TCPSpuriousRTOs)$/) printf "%s=%s ", n[i], $i }
		END { print "" }' /proc/net/snmp /proc/net/netstat
}

# iface_counters IF: the interface's drop and error counters, "name=value" words.
iface_counters() {
	local c s=/sys/class/net/$1/statistics
	for c in rx_packets tx_packets rx_dropped tx_dropped rx_errors tx_errors; do
		printf '%s=%s ' "$c" "$(cat "$s/$c" 2>/dev/null)"
	done
	echo
}

# wait_blanketd_back FDS0 MAPS0 TIMEOUT_S: blanketd is alive and, within the time, holds no
# more fds and gntdev mappings than the counts taken before a guest (leak check).
wait_blanketd_back() {
	local end=$((SECONDS + $3))
	blanketd_alive || fail "blanketd died"
	while [ "$(blanketd_fds)" != "$1" ] || [ "$(blanketd_gnt_maps)" != "$2" ]; do
		if [ $SECONDS -ge $end ]; then
			ls -l "/proc/$(blanketd_pid)/fd" | sed 's/^/  /'
			fail "blanketd holds $(blanketd_fds) fds and $(blanketd_gnt_maps) gntdev maps, $1 and $2 before the guest"
		fi
		sleep 0.5
	done
}

# --- Driver domain (scenarios drv*: run.sh puts its image at /lab/drv.cpio.gz) ---
DRV_MEM=320

drv_image_present() {
	[ -f /lab/drv.cpio.gz ] || skip "no driver-domain image (run.sh builds it for drv* scenarios)"
}

# The driver domain's xl.cfg (the one the README documents), booted and waited for; sets drvid.
#   start_drv IMAGES [NET]   IMAGES for drv-init's lab.drv_images, NET its bridge's ADDR/LEN
start_drv() {
	cat >/tmp/drv.cfg <<CFG
name = "drv"
type = "pv"
kernel = "/lab/vmlinuz"
ramdisk = "/lab/drv.cpio.gz"
extra = "console=hvc0 quiet loglevel=4 lab.role=drv lab.drv_images=$1${2:+ lab.drv_net=$2}"
memory = $DRV_MEM
vcpus = 1
driver_domain = 1
on_poweroff = "destroy"
on_crash = "destroy"
CFG
	rm -f "$CONSOLE_DIR/guest-drv.log"
	say "xl create drv (free memory $(xl info free_memory) MiB)"
	xl create /tmp/drv.cfg || fail "xl create drv failed"
	drvid=$(xl domid drv)
	wait_console drv 'DRV-(READY|FAIL)' 300
	if grep -q DRV-FAIL "$CONSOLE_DIR/guest-drv.log"; then
		guest_log drv
		fail "driver domain: $(grep -o 'DRV-FAIL.*' "$CONSOLE_DIR/guest-drv.log" | tr -d '\r')"
	fi
	say "driver domain drv is domain $drvid: $(grep -o 'DRV-BOOT.*' "$CONSOLE_DIR/guest-drv.log" | tr -d '\r')"
}

# A disk served by the driver domain from its image /images/NAME.raw: drv_disk NAME VDEV
drv_disk() {
	echo "'backend=drv,vdev=$2,format=raw,access=rw,backendtype=phy,script=blanket,target=cache=writeback:/images/$1.raw'"
}

drv_served() {
	tr -d '\r' <"$CONSOLE_DIR/guest-drv.log" | sed -n 's/.*DRV-STATS served=\([0-9]*\).*/\1/p' |
		tail -n 1
}
# The driver domain's served count once it is non-zero (it prints it every 2 s), 0 after 20 s.
wait_drv_served() {
	local end=$((SECONDS + 20)) n
	while n=$(drv_served) && [ "${n:-0}" = 0 ] && [ $SECONDS -lt $end ]; do sleep 1; done
	echo "${n:-0}"
}

# --- A disk's daemon restarted under the guest's verified rounds (restart, l0kill) ---
# (This file is also read by dom0's /init, busybox sh: no bash arrays or declare here.)
# The scenario sets RS_GUEST (guest name), RS_DOMID, RS_DEV (vbd devid), RS_THREADS (the rw
# steps' thread count) and defines seed K (round K's seed); optionally RS_ARGS (extra
# arguments of the new daemons, split at blanks), RS_SHOW (a regex of more log lines to show
# per restart) and a function rs_stopped (run once the old daemon is gone). rs_restart adds to
# RS_REISSUED.
RS_REISSUED=0
RS_ARGS=
RS_SHOW=

rs_glog() { echo "$CONSOLE_DIR/guest-$RS_GUEST.log"; }

# rs_wait_round K TIMEOUT_S: round K verified (fail at once when the guest reports a failure).
rs_wait_round() {
	local end=$((SECONDS + $2)) glog
	glog=$(rs_glog)
	while ! grep -qE "GUEST-STEP rw:[^ ]*:$(seed "$1"):$RS_THREADS ok" "$glog" 2>/dev/null; do
		if grep -qE 'GUEST-STEP .* fail|GUEST-DONE|IOTOOL error' "$glog" 2>/dev/null; then
			guest_log "$RS_GUEST"
			fail "the guest's verified I/O failed in round $1 (see its console above)"
		fi
		if [ $SECONDS -ge $end ]; then
			guest_log "$RS_GUEST"
			fail "guest made no progress: round $1 not done within $2 s (a request lost in a restart?)"
		fi
		sleep 0.5
	done
}

# rs_wait_served N TIMEOUT_S AFTER: the new blanketd served N guest requests (I/O flows again).
rs_wait_served() {
	local end=$((SECONDS + $2)) got glog
	glog=$(rs_glog)
	while got=$(blanketd_served) && [ "$got" -lt "$1" ]; do
		if grep -qE 'GUEST-STEP .* fail|GUEST-DONE|IOTOOL error' "$glog" 2>/dev/null; then
			guest_log "$RS_GUEST"
			fail "the guest's verified I/O failed after restart $3 (see its console above)"
		fi
		if [ $SECONDS -ge $end ]; then
			guest_log "$RS_GUEST"
			tail -n 20 "$BLANKETD_LOG" | sed 's/^/  | /'
			fail "guest I/O stalled after restart $3: the new blanketd served $got request(s) in $2 s"
		fi
		sleep 0.5
	done
}

# rs_restart N SIGNAL: stop blanketd with SIGNAL while the guest's I/O runs, start a new one;
# it must adopt the Connected disk (and, after SIGTERM, the old one must have handed it over)
# with no error in its log.
rs_check() {
	check_connected "$RS_DOMID" "$RS_DEV" "$1"
}
# restart_blanketd's hook, run once the old daemon is gone: the disk still Connected, then the
# scenario's rs_stopped if it has one.
rs_gone() {
	rs_check "$1"
	if command -v rs_stopped >/dev/null; then
		rs_stopped
	fi
}
rs_restart() {
	local n=$1 sig=$2 r
	rs_check "before restart $n"
	say "restart $n: SIG$sig to blanketd $(blanketd_pid) in round $(($(grep -c 'IOTOOL rw ok' "$(rs_glog)") + 1))"
	RESTART_ARGS=$RS_ARGS RESTART_SHOW=$RS_SHOW restart_blanketd "restart $n" "$sig" \
		"vbd $RS_DOMID/$RS_DEV" "vbd $RS_DOMID/$RS_DEV: taking over a device a previous run left Connected" \
		rs_gone
	if [ "$sig" = TERM ]; then
		echo "$RESTART_SEG" | grep -q "vbd $RS_DOMID/$RS_DEV: handed over" ||
			fail "restart $n: the stopping blanketd did not hand the device over"
	fi
	r=$(echo "$RESTART_SEG" | sed -n 's/.*re-issuing \([0-9]*\) request.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
	RS_REISSUED=$((RS_REISSUED + r))
	rs_check "after restart $n"
}

# --- The cloud's (L0) devices (issue 10) ---
# l0_kernel_dev BDF TIMEOUT_S: wait until PCI device BDF is with dom0's virtio-pci driver and its
# disk is there; print the disk's name (vdb). Returns 1 (after saying the driver) if not in time.
l0_kernel_dev() {
	local dir=/sys/bus/pci/devices/$1 end=$((SECONDS + $2)) drv kdev
	while [ $SECONDS -lt $end ]; do
		drv=$(basename "$(readlink "$dir/driver")" 2>/dev/null)
		kdev=$(ls "$dir"/virtio*/block 2>/dev/null | head -n 1)
		if [ "$drv" = virtio-pci ] && [ -n "$kdev" ] && [ -b "/dev/$kdev" ]; then
			echo "$kdev"
			return 0
		fi
		sleep 0.5
	done
	say "$1 is with driver '${drv:-none}', no disk of dom0's kernel" >&2
	return 1
}
