#!/bin/sh
# SPDX-License-Identifier: MIT
# A real blanketd process (sim platform) with blanketctl: the control socket's permissions,
# status/version/list, a second daemon refused on a live socket, sd_notify READY=1 and
# STOPPING=1 (when python3 can listen), and a clean SIGTERM stop that removes the socket.
# Usage: test-daemon-ctl.sh BLANKETD BLANKETCTL
set -u
D=$1
CTL=$2
dir=$(mktemp -d /tmp/test-daemon-ctl.XXXXXX)
sock=$dir/run/control
pid=
npid=
fails=0
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	[ -n "$npid" ] && kill "$npid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# Optional: a notify socket recorder.
if command -v python3 >/dev/null 2>&1; then
	python3 - "$dir/notify" "$dir/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "a") as log:
    while True:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            break
        log.write(m.replace("\n", " ") + "\n")
        log.flush()
        if m.startswith("STOPPING=1"):
            break
PY
	npid=$!
	i=0
	while [ ! -S "$dir/notify" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	export NOTIFY_SOCKET=$dir/notify
fi

"$D" --platform=sim --control-socket "$sock" 2>"$dir/daemon.log" &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -S "$sock" ] || { cat "$dir/daemon.log"; echo "daemon did not create $sock"; exit 1; }

[ "$(stat -c %a "$dir/run")" = 700 ] || fail "socket directory mode $(stat -c %a "$dir/run")"
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket mode $(stat -c %a "$sock")"

"$CTL" -s "$sock" status >"$dir/out" 2>&1 || fail "status: $(cat "$dir/out")"
grep -q healthy "$dir/out" || fail "status output: $(cat "$dir/out")"
"$CTL" -s "$sock" version >"$dir/out" 2>&1 || fail "version: $(cat "$dir/out")"
grep -q "platform sim, pid $pid" "$dir/out" || fail "version output: $(cat "$dir/out")"
"$CTL" -s "$sock" list >"$dir/out" 2>&1 || fail "list: $(cat "$dir/out")"

# A second daemon on the same socket refuses and leaves the first one's socket alone.
"$D" --platform=sim --control-socket "$sock" 2>"$dir/second.log"
rc=$?
[ $rc -eq 1 ] || fail "second daemon exited $rc"
grep -q "another blanketd is listening" "$dir/second.log" || fail "second: $(cat "$dir/second.log")"
[ -S "$sock" ] || fail "second daemon removed the socket"
"$CTL" -s "$sock" status >/dev/null 2>&1 || fail "first daemon unreachable after the second"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "daemon exited $rc after SIGTERM: $(cat "$dir/daemon.log")"
[ -e "$sock" ] && fail "socket left behind"
"$CTL" -s "$sock" status >/dev/null 2>&1
rc=$?
[ $rc -eq 3 ] || fail "status after stop exited $rc, expected 3"

if [ -n "$npid" ]; then
	wait "$npid"
	npid=
	grep -q '^READY=1' "$dir/notify.log" || fail "no READY=1: $(cat "$dir/notify.log")"
	grep -q '^STATUS=0 devices' "$dir/notify.log" || fail "no STATUS=: $(cat "$dir/notify.log")"
	grep -q '^STOPPING=1' "$dir/notify.log" || fail "no STOPPING=1: $(cat "$dir/notify.log")"
fi

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
exit 0
