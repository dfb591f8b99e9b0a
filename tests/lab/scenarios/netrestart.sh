#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 9 proof 5: a TCP stream survives restarts of blanketd. A 2-vCPU domU with one vif on
# xenbr0 runs one nettool stream with dom0 (both directions at once, every byte verified, failing
# on a gap of MAX_GAP seconds without data). While it runs dom0 stops blanketd with SIGTERM once
# and with SIGKILL three times, each time once the stream moved again, and starts a new daemon,
# which must adopt the vif still Connected. Between daemons: both ends stay Connected (4) and the
# TAP keeps its ifindex, its place on xenbr0 and its MTU. Passes when the stream verified to the
# end on both sides, netfront logged nothing, and every new daemon took the vif over.
. /lab/dom0-lib.sh
trap stop_nettool_servers EXIT

[ "$LAB_BACKEND" = blanketd ] || skip "restarts concern blanketd only"
[ -x /usr/sbin/blanketctl ] || skip "no blanketctl in this build (needed to see frames flow)"

RESTARTS=(TERM KILL KILL KILL)
SECS=300    # the stream's length: it must outlast the restarts under TCG
KIBS=256    # KiB/s each way
MAX_GAP=45  # TCP's retransmission back-off after a few seconds without a backend

start_nettool_server 5001
CFG_VIFS=$(vif_spec 00:16:3e:00:05:11 xenbr0)
write_cfg nr 2 "netup:eth0:10.0.0.15/24;ping:10.0.0.1:3;stream:10.0.0.1:5001:$SECS:77:$KIBS:$MAX_GAP;netinfo:eth0"
start_guest nr
dom=$(xl domid nr)
wait_vif_connected "$dom" 0 180
vif=vif$dom.0
[ -e "/sys/class/net/xenbr0/brif/$vif" ] || fail "$vif is not on xenbr0"
ifindex=$(cat "/sys/class/net/$vif/ifindex")
mtu=$(cat "/sys/class/net/$vif/mtu")
wait_console nr 'NETTOOL stream .*t=' 240

# Frames the running daemon moved for the vif (guest TX + RX over its queues).
vif_frames() {
	vif_queue_packets "$dom" 0 | awk '{ s += $2 + $3 } END { print s + 0 }'
}

# wait_flow N TIMEOUT_S WHAT: the running daemon moved N frames for the vif.
wait_flow() {
	local end=$((SECONDS + $2)) got
	while got=$(vif_frames) && [ "$got" -lt "$1" ]; do
		tr -d '\r' <"$CONSOLE_DIR/guest-nr.log" | grep -qE 'NETTOOL stream .*(fail|error)|GUEST-STEP stream:[^ ]* fail' &&
			{ guest_log nr; fail "the stream failed $3"; }
		[ $SECONDS -ge $end ] && { tail -n 20 "$BLANKETD_LOG" | sed 's/^/  | /'; fail "the stream stalled $3: $got frames in $2 s"; }
		sleep 0.5
	done
}

# check_vif WHAT: both ends Connected; the TAP is the same interface, on the bridge, same MTU.
check_vif() {
	local be fe
	be=$(vif_be_read "$dom" 0 state)
	fe=$(vif_fe_read "$dom" 0 state)
	[ "$be" = 4 ] && [ "$fe" = 4 ] || fail "$1: vif $dom/0 backend state '$be', frontend '$fe' (want 4)"
	[ "$(cat "/sys/class/net/$vif/ifindex" 2>/dev/null)" = "$ifindex" ] ||
		fail "$1: $vif is gone or was recreated"
	[ -e "/sys/class/net/xenbr0/brif/$vif" ] || fail "$1: $vif left xenbr0"
	[ "$(cat "/sys/class/net/$vif/mtu")" = "$mtu" ] || fail "$1: $vif's MTU changed"
}

restart() { # N SIGNAL
	local n=$1 sig=$2
	check_vif "before restart $n"
	say "restart $n: SIG$sig to blanketd $(blanketd_pid) ($(vif_frames) frames moved by it)"
	restart_blanketd "restart $n" "$sig" "vif $dom/0" \
		"vif $dom/0: taking over a vif a previous run left Connected" check_vif
	check_vif "after restart $n"
}

wait_flow 200 120 "before the first restart"
for ((n = 1; n <= ${#RESTARTS[@]}; n++)); do
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	restart "$n" "${RESTARTS[$((n - 1))]}"
	wait_flow 200 120 "after restart $n"
done
say "${#RESTARTS[@]} restarts (${RESTARTS[*]}) done; the stream goes on"
blanketctl_stats | sed 's/^/  /'

wait_step nr 'stream:[^ ]*' $((SECS + 240))
nettool_check nr 'stream client sent='
nettool_check /tmp/nettool-5001.log 'stream server sent='
errs=$(guest_net_errors nr)
[ -z "$errs" ] || { echo "$errs" | sed 's/^/  | /'; fail "netfront complained"; }
wait_guest_done nr 120
blanketd_alive || fail "blanketd died"
say "PASS: one TCP stream verified both ways through ${#RESTARTS[@]} restarts of blanketd"
exit 0
