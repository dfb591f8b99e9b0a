#!/bin/sh
# SPDX-License-Identifier: MIT
#
# blanketctl against a running daemon: blanketd-simdemo --serve (the real runtime with
# simulated guests doing verified I/O) and the real blanketctl over its control socket.
#  1. healthy run: list, stats, stats DEVICE, stats --json (valid JSON), version, status (0);
#     per device the bytes the daemon counted match what the guest wrote and read (1%);
#     SIGTERM: the demo exits 0 (devices shut down, nothing leaked); then status says 3.
#  2. --hostile run: the hostile guest's device fails with a clear log line, status exits 1
#     (degraded), list shows the failed device, the other device still verified its data.
#  3. --corrupt run (no --serve): a sector changed behind a guest's back is caught (exit 1).
#
# Usage: test-ctl-daemon.sh SIMDEMO BLANKETCTL. Exits 0 pass, 1 fail, 77 skip.
set -u

SIMDEMO=${1:?usage: test-ctl-daemon.sh SIMDEMO BLANKETCTL}
CTL=${2:?usage: test-ctl-daemon.sh SIMDEMO BLANKETCTL}

if ! command -v python3 >/dev/null 2>&1; then
	echo "python3 not found (needed to read JSON): skip"
	exit 77
fi

tmp=$(mktemp -d /tmp/test-ctl-daemon.XXXXXX) || exit 1
# The disks go under /var/tmp: /tmp may be a tmpfs, which has no O_DIRECT.
img=$(mktemp -d /var/tmp/test-ctl-daemon.XXXXXX) || exit 1
sock=$tmp/control
results=$tmp/results.json
pid=
failures=0

cleanup() {
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp" "$img"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

ok() {
	echo "ok: $*"
}

# ctl EXPECTED_STATUS ARGS...: run blanketctl, output in $tmp/out; checks the exit status.
ctl() {
	want=$1
	shift
	"$CTL" --socket "$sock" "$@" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "blanketctl $* exited $got, expected $want"
		sed 's/^/    /' "$tmp/out"
		return 1
	fi
	ok "blanketctl $* exited $got"
	return 0
}

expect_out() {
	if grep -q -- "$1" "$tmp/out"; then
		ok "output has '$1'"
	else
		fail "output lacks '$1'"
		sed 's/^/    /' "$tmp/out"
	fi
}

# start ARGS...: the demo serving in the background; returns once its I/O is done (the results
# file appears). The bound only catches a hang; nothing here asserts on timing.
start() {
	rm -f "$results"
	"$SIMDEMO" --serve --quiet --ops 1500 --dir "$img" --control-socket "$sock" \
		--results "$results" "$@" >"$tmp/demo.log" 2>&1 &
	pid=$!
	n=0
	while [ ! -s "$results" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			fail "blanketd-simdemo $* exited ($?) before its I/O was done"
			sed 's/^/    /' "$tmp/demo.log"
			pid=
			return 1
		fi
		n=$((n + 1))
		if [ "$n" -gt 1800 ]; then
			fail "blanketd-simdemo $* did not finish its I/O within 180 s"
			return 1
		fi
		sleep 0.1
	done
	ok "blanketd-simdemo --serve $* finished its I/O (pid $pid)"
	return 0
}

# stop: SIGTERM; the demo must exit 0 (devices shut down, nothing leaked) within 60 s.
stop() {
	kill -TERM "$pid"
	n=0
	while kill -0 "$pid" 2>/dev/null; do
		n=$((n + 1))
		if [ "$n" -gt 600 ]; then
			fail "blanketd-simdemo still running 60 s after SIGTERM"
			kill -KILL "$pid"
			break
		fi
		sleep 0.1
	done
	wait "$pid"
	st=$?
	pid=
	if [ "$st" -eq 0 ]; then
		ok "blanketd-simdemo exited 0 after SIGTERM"
	else
		fail "blanketd-simdemo exited $st after SIGTERM"
		sed 's/^/    /' "$tmp/demo.log"
	fi
}

# check_bytes: every non-hostile device's byte counters (stats --json) within 1% of what its
# guest reported, and the guest's verdict PASS.
check_bytes() {
	"$CTL" --socket "$sock" stats --json >"$tmp/stats.json" 2>&1 || {
		fail "blanketctl stats --json failed"
		return
	}
	if python3 - "$results" "$tmp/stats.json" <<'EOF'; then
import json, sys

res = json.load(open(sys.argv[1]))
stats = json.load(open(sys.argv[2]))
by_name = {d["name"]: d for d in stats["devices"]}
bad = 0
checked = 0
for dev in res["devices"]:
    if dev["verdict"] != "PASS":
        print("  %s: guest verdict %s: %s" % (dev["device"], dev["verdict"], dev["why"]))
        bad += 1
    if dev["hostile"]:
        continue
    s = by_name.get(dev["device"])
    if s is None:
        print("  %s: not in blanketctl stats" % dev["device"])
        bad += 1
        continue
    for key in ("bytes_written", "bytes_read"):
        want, got = dev[key], s["total"][key]
        ok = want > 0 and abs(got - want) * 100 <= want
        print("  %s %s: guest %d, daemon %d%s" % (dev["device"], key, want, got,
                                                  "" if ok else "  <-- off by more than 1%"))
        bad += not ok
        checked += 1
sys.exit(1 if bad or not checked else 0)
EOF
		ok "daemon byte counters match the guests' within 1%"
	else
		fail "byte counters or verdicts"
	fi
}

# ---------------------------------------------------------------------------------------------
echo "== healthy run: 2 guests"
if start; then
	ctl 0 list && {
		expect_out "51712 (xvda)"
		expect_out "$img/guest1-disk.img"
		expect_out "$img/guest2-disk.img"
		expect_out "Connected"
	}
	ctl 0 stats && {
		expect_out "vbd 1/51712"
		expect_out "vbd 2/51712"
		expect_out "total"
	}
	ctl 0 stats "vbd 2/51712" && {
		expect_out "vbd 2/51712"
		if grep -q "vbd 1/51712" "$tmp/out"; then
			fail "stats 'vbd 2/51712' also shows vbd 1/51712"
		fi
	}
	ctl 0 stats --json && {
		if python3 -m json.tool "$tmp/out" >/dev/null; then
			ok "stats --json parses"
		else
			fail "stats --json is not valid JSON"
			sed 's/^/    /' "$tmp/out"
		fi
	}
	ctl 0 version && expect_out "platform sim"
	ctl 0 status && expect_out "healthy"
	check_bytes
	stop
	ctl 3 status
	if [ -e "$sock" ]; then
		fail "control socket $sock left behind"
	fi
	if ls "$img"/*.img >/dev/null 2>&1; then
		fail "disk images left behind"
	fi
fi

# ---------------------------------------------------------------------------------------------
echo "== hostile run: the second guest writes a bogus req_prod"
if start --hostile; then
	ctl 1 status && {
		expect_out "degraded"
		expect_out "producer index"
	}
	ctl 0 list && {
		if grep -Eq '^2 +51712 \(xvda\) +vbd .* failed ' "$tmp/out" &&
			grep -Eq '^1 +51712 \(xvda\) +vbd .* Connected +Connected ' "$tmp/out"; then
			ok "list: vbd 2/51712 failed, vbd 1/51712 still Connected"
		else
			fail "list does not show vbd 2/51712 failed beside a Connected vbd 1/51712"
			sed 's/^/    /' "$tmp/out"
		fi
	}
	if grep -q "vbd 2/51712: q0: frontend's ring producer index" "$tmp/demo.log"; then
		ok "the daemon logged the failure naming the device"
	else
		fail "no log line naming vbd 2/51712 and the producer index"
		sed 's/^/    /' "$tmp/demo.log"
	fi
	check_bytes
	stop
	ctl 3 status
fi

# ---------------------------------------------------------------------------------------------
echo "== corrupt run: a sector changed behind the guest's back must be caught"
"$SIMDEMO" --quiet --ops 400 --dir "$img" --control-socket "$sock" --corrupt \
	>"$tmp/demo.log" 2>&1
st=$?
if [ "$st" -eq 1 ] && grep -q "data mismatch at sector" "$tmp/demo.log"; then
	ok "corruption caught (exit 1)"
else
	fail "corruption not caught (exit $st)"
	sed 's/^/    /' "$tmp/demo.log"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
exit 0
