#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario: blanketd SIGKILLed again and again (issue 8's acceptance). A PV guest runs verified
# write+flush rounds on its disk (round k: pattern data of seed 700+k in random-sized chunks at
# random offsets of its own 8 MiB range, O_DIRECT from 4 threads on 2 vCPUs, each thread
# flushing after every 4 chunks it wrote, fsync, read back and verified, checksum printed).
# Meanwhile dom0 kills blanketd with SIGKILL 40 times, 0.1-0.6 s apart, and starts a new one at
# once each time. Odd kills are timed from the new daemon's start, so they land while it starts,
# adopts the Connected device and recovers the journal of the daemon killed before it; even kills
# are timed from the moment the new daemon connected the device, so they land while it serves
# the guest with requests in flight.
# Passes when the guest saw no I/O error and never hung (every wait is bounded and says what it
# waited for), its kernel log has no block error and no complaint of blkfront about a response
# with a bad or not-pending id (a request answered twice) or the wrong operation, xenstore
# stayed Connected, no daemon ignored a journal, and the image in dom0 holds every round's data
# with the guest's checksums. The requests re-issued from the journals are counted and printed.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "kills concern blanketd only"
[ -x /usr/sbin/blanketctl ] || skip "no blanketctl in this build (needed to see I/O flow)"

KILLS=40
MIB=8
# Enough rounds to outlast the kills: while daemons come and go the guest moves slowly.
ROUNDS=48
THREADS=4
FLUSH=4
SEED0=700
TOTAL=$((ROUNDS * MIB))
img=$IMG_DIR/killloop.raw
glog=$CONSOLE_DIR/guest-kl.log

make_image "$img" $((TOTAL + 16))
write_cfg kl 2 "wait:/dev/xvda:60;rounds:/dev/xvda:$MIB:$ROUNDS:$SEED0:$THREADS:$FLUSH;sum:/dev/xvda:0:$TOTAL" \
	"$(disk_spec "$img" xvda w)"
# The guest's whole kernel log on its console (not only errors), so blkfront's lines are checked.
sed -i 's/quiet loglevel=4/loglevel=7/' /tmp/kl.cfg
grep -q 'loglevel=7' /tmp/kl.cfg || fail "cannot raise the guest's console log level"

start_guest kl
domid=$(xl domid kl)
dev=$(vdev_id xvda)
wait_console kl 'GUEST-STEP wait:' 180

rounds_done() { grep -c 'IOTOOL rw ok' "$glog" 2>/dev/null; }

# Fail at once when the guest reports a failure.
guest_ok() {
	if grep -qE 'GUEST-STEP .* fail|IOTOOL (error|rw FAILED)' "$glog" 2>/dev/null; then
		guest_log kl
		fail "the guest's verified I/O failed $1 (see its console above)"
	fi
}

# wait_connected FROM_LINE TIMEOUT_S WHAT: the daemon started at line FROM_LINE of the log
# connected the device (adopted it and recovered its journal).
wait_connected() {
	local end=$((SECONDS + $2))
	while ! tail -n +$(($1 + 1)) "$BLANKETD_LOG" | grep -q "vbd $domid/$dev: connected:"; do
		blanketd_alive || { tail -n 30 "$BLANKETD_LOG"; fail "$3: the new blanketd died"; }
		if [ $SECONDS -ge $end ]; then
			tail -n 30 "$BLANKETD_LOG" | sed 's/^/  | /'
			fail "$3: the new blanketd did not connect the device within $2 s"
		fi
		sleep 0.1
	done
}

# What the daemons logged since the first kill: adoptions and requests re-issued (sets $seg,
# $adopted, $reissued, $nreissue and prints the re-issue lines).
log_summary() {
	seg=$(tail -n +$((lines0 + 1)) "$BLANKETD_LOG")
	adopted=$(echo "$seg" | grep -c "vbd $domid/$dev: taking over a device a previous run left Connected")
	reissued=$(echo "$seg" | sed -n 's/.*re-issuing \([0-9]*\) request.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
	nreissue=$(echo "$seg" | grep -c 're-issuing')
	echo "$seg" | grep -E 're-issuing|does not match|ignoring' | sed 's/^/  | /'
	say "blanketd: $adopted adoption(s), $reissued request(s) re-issued from the journals in $nreissue recoveries"
}

# wait_progress TIMEOUT_S WHAT: the guest verifies all its rounds, each within TIMEOUT_S of the
# one before (a request lost in a kill hangs the guest: this says where).
wait_progress() {
	local last=-1 n end
	while ! grep -q GUEST-DONE "$glog" 2>/dev/null; do
		guest_ok "$2"
		n=$(rounds_done)
		if [ "$n" != "$last" ]; then
			last=$n
			end=$((SECONDS + $1))
		elif [ $SECONDS -ge $end ]; then
			guest_log kl
			blanketctl stats 2>&1 | sed 's/^/  | /'
			tail -n 12 "$BLANKETD_LOG" | sed 's/^/  | /'
			log_summary
			fail "guest hung $2: round $((n + 1)) of $ROUNDS not verified within $1 s"
		fi
		sleep 0.5
	done
}

# A random pause of 0.1-0.6 s. Up to 1 s, the guest verified 38 of its 48 rounds during the
# kills (the 40th kill came in round 41): a faster host would run out of rounds.
pause() { sleep "0.$((RANDOM % 50 + 10))"; }

wait_console kl 'IOTOOL rw ok' 300 # the first round also warms up QEMU's translation
check_connected "$domid" "$dev" "before the kills"
lines0=$(wc -l <"$BLANKETD_LOG")
start_line=0 # where the running daemon's log starts (0: the boot's daemon, connected long ago)
r0=$(rounds_done)
t0=$SECONDS
serving=0
for ((n = 1; n <= KILLS; n++)); do
	guest_ok "before kill $n"
	grep -q GUEST-DONE "$glog" &&
		fail "the guest finished its $ROUNDS rounds before kill $n: too few rounds for this machine"
	pid=$(blanketd_pid)
	blanketd_alive || { tail -n 30 "$BLANKETD_LOG"; fail "blanketd $pid died by itself before kill $n"; }
	[ $((n % 2)) = 0 ] && wait_connected "$start_line" 60 "kill $n"
	pause
	phase=starting
	tail -n +$((start_line + 1)) "$BLANKETD_LOG" | grep -q "vbd $domid/$dev: connected:" &&
		phase=serving && serving=$((serving + 1))
	kill -KILL "$pid" 2>/dev/null || fail "kill $n: cannot signal blanketd $pid"
	end=$((SECONDS + 10))
	while kill -0 "$pid" 2>/dev/null; do
		[ $SECONDS -ge $end ] && fail "kill $n: blanketd $pid still running 10 s after SIGKILL"
		sleep 0.05
	done
	check_connected "$domid" "$dev" "kill $n, no daemon running"
	say "kill $n: blanketd $pid ($phase) in round $(($(rounds_done) + 1)); journal: $(cd /run/blanketd/inflight 2>/dev/null && ls | tr '\n' ' ')"
	start_line=$(wc -l <"$BLANKETD_LOG")
	spawn_blanketd >/dev/null || fail "kill $n: cannot start blanketd"
done
say "$KILLS kills in $((SECONDS - t0)) s ($serving while serving the device, $((KILLS - serving)) while starting); the guest verified $(($(rounds_done) - r0)) round(s) meanwhile"
wait_connected "$start_line" 120 "after the last kill"
check_connected "$domid" "$dev" "after the last kill"
wait_progress 120 "after $KILLS kills"
wait_guest_done kl 60
wait_no_backend "$domid" 30
blanketd_alive || fail "blanketd died"

# blanketd: what the daemons logged since the first kill.
log_summary
[ "$adopted" -gt 0 ] || fail "no new blanketd adopted the device"
bad=$(echo "$seg" | grep -iE 'fail|error|corrupt|does not match|ignoring|no free slot|runtime error')
[ -z "$bad" ] || { echo "$bad" | head -n 20 | sed 's/^/  | /'; fail "blanketd reported errors across the kills"; }
[ "$reissued" -gt 0 ] || echo "LAB-WARN no kill left a journaled request to re-issue this time"

# The guest: every round verified, no I/O error, a clean kernel log.
n=$(rounds_done)
[ "$n" = "$ROUNDS" ] || fail "the guest verified $n rounds, not $ROUNDS"
grep -q 'blkfront: xvda:' "$glog" || fail "blkfront's kernel messages are not on the guest console"
kerr=$(guest_block_errors kl)
if [ -n "$kerr" ]; then
	echo "$kerr" | head -n 20 | sed 's/^/  | /'
	fail "the guest's kernel log shows block errors or a response blkfront did not expect"
fi
say "guest kernel log: $(grep -c '^\[' "$glog") lines on the console, no block error, no unexpected response"

# dom0: the image holds every round's pattern, and the checksum the guest printed at the end.
for ((k = 1; k <= ROUNDS; k++)); do
	iotool verify "$img" $(((k - 1) * MIB)) "$MIB" $((SEED0 + k)) >/dev/null ||
		fail "round $k: the image in dom0 does not hold the guest's pattern"
done
gsum=$(guest_value kl 'IOTOOL sum ok' sum)
dsum=$(iotool sum "$img" 0 "$TOTAL" | sed -n 's/.*sum=//p')
[ -n "$gsum" ] && [ "$gsum" = "$dsum" ] || fail "final checksum: guest '$gsum', image in dom0 '$dsum'"
say "PASS: $ROUNDS rounds verified through $KILLS SIGKILLs, $reissued request(s) re-issued; checksum $gsum (guest) = $dsum (dom0)"
exit 0
