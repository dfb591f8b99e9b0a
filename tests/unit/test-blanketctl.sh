#!/bin/sh
# SPDX-License-Identifier: MIT
# blanketctl against a stand-in daemon (ctl-fake-daemon): every command, --json parses,
# status exit codes (0 healthy, 1 degraded, 3 not running), bad arguments exit 2 naming the value.
# Usage: test-blanketctl.sh BLANKETCTL FAKE_DAEMON
set -u
CTL=$1
FAKE=$2
command -v python3 >/dev/null 2>&1 || { echo "python3 missing: skip"; exit 77; }

dir=$(mktemp -d /tmp/test-blanketctl.XXXXXX)
sock=$dir/control
pid=
fails=0
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

start() {
	"$FAKE" "$sock" "$1" &
	pid=$!
	i=0
	while [ ! -S "$sock" ] && [ $i -lt 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	[ -S "$sock" ] || { echo "fake daemon did not start" >&2; exit 1; }
}

stop() {
	kill "$pid"
	wait "$pid" 2>/dev/null
	pid=
	rm -f "$sock"
}

# run EXPECTED_RC ARGS...: output in $dir/out, stderr in $dir/err
run() {
	want=$1
	shift
	"$CTL" -s "$sock" "$@" >"$dir/out" 2>"$dir/err"
	rc=$?
	[ "$rc" -eq "$want" ] || fail "blanketctl $* exited $rc, expected $want: $(cat "$dir/err")"
}

expect_out() {
	grep -q -- "$1" "$dir/out" || fail "output lacks '$1': $(cat "$dir/out")"
}

expect_err() {
	grep -q -- "$1" "$dir/err" || fail "stderr lacks '$1': $(cat "$dir/err")"
}

json_ok() {
	python3 -m json.tool "$dir/out" >/dev/null 2>"$dir/jerr" || fail "not JSON ($*): $(cat "$dir/jerr")"
}

# Not running.
run 3 status
expect_err "not running"
run 3 list
run 3 stats

start healthy
run 0 status
expect_out "healthy"
expect_out "2 connected\|1 connected"
run 0 status --json
json_ok status
run 0 version
expect_out "blanketctl "
expect_out "blanketd .*control protocol 1.*platform sim"
run 0 --json version
json_ok version

run 0 list
expect_out "DOMAIN"
expect_out "51712 (xvda)"
expect_out "/var/lib/images/g1.raw"
expect_out "engine=io_uring queues=2 ring-order=4 indirect=256"
expect_out "Connected"
expect_out "/dev/loop0"
run 0 list --json
json_ok list
python3 - "$dir/out" <<'PY' || fail "list JSON content"
import json, sys
d = json.load(open(sys.argv[1]))["devices"]
assert len(d) == 2, d
assert d[0]["backing"] == "/var/lib/images/g1.raw" and d[0]["queues"] == 2 and d[0]["vdev"] == "xvda"
assert d[1]["state"] == "InitWait" and d[1]["devid"] == 51728 and d[1]["vdev"] == "xvdb"
PY

run 0 stats
expect_out "vbd 5/51712 xvda  2 queues"
expect_out "P99.9"
expect_out "3.0 MiB"
expect_out "1.5 MiB"
expect_out "total"
expect_out "6.0 MiB"
# p50 within the 100 us bucket, p99.9 at the 5 ms samples
expect_out "us"
expect_out "ms"
expect_out "no statistics"
run 0 stats --json
json_ok stats
python3 - "$dir/out" <<'PY' || fail "stats JSON content"
import json, sys
d = json.load(open(sys.argv[1]))["devices"][0]
t = d["total"]
assert t["requests"]["read"] == 2001, t
assert t["bytes_read"] == 6 << 20 and t["bytes_written"] == 3 << 20
assert 100000 <= t["latency_ns"]["p50"] <= 125000, t["latency_ns"]
assert 5000000 <= t["latency_ns"]["p99.9"] <= 6000000, t["latency_ns"]
assert d["queues"][1]["inflight"] == 1
PY
run 0 stats "vbd 5/51712"
expect_out "vbd 5/51712"
grep -q "5/51728" "$dir/out" && fail "one-device stats shows another device"
run 0 stats vbd 5/51712 --json
json_ok one device
run 0 stats 5/51728
expect_out "5/51728"
run 1 stats 5/1
expect_err "no device 5/1"
run 0 stats --watch 1 --count 2
[ "$(grep -c -- '^--- ' "$dir/out")" -eq 2 ] || fail "--watch 1 --count 2 did not print 2 samples"
expect_out "IOPS"
run 0 stats --json --watch 1 --count 2
[ "$(wc -l <"$dir/out")" -eq 2 ] || fail "--json --watch: expected 2 lines"
head -n 1 "$dir/out" | python3 -m json.tool >/dev/null || fail "--json --watch line 1"
tail -n 1 "$dir/out" | python3 -m json.tool >/dev/null || fail "--json --watch line 2"
stop

start degraded
run 1 status
expect_out "degraded"
expect_out "vbd 9/268439552: failed: ring-page-order 9 above maximum 4"
run 1 status --json
json_ok degraded status
run 0 list
expect_out "failed"
run 0 list --json
json_ok list with odd characters
run 0 stats --json
json_ok stats degraded
stop

# Bad arguments: exit 2 with the value named.
run 2 stats --watch 0
expect_err "bad value '0' for --watch"
run 2 stats --watch abc
expect_err "bad value 'abc' for --watch"
run 2 stats "vbx 5/51712"
expect_err "unknown kind 'vbx'"
run 2 stats 5-51712
expect_err "bad device '5-51712'"
run 2 stats 99999/1
expect_err "domain '99999'"
run 2 stats 5/x
expect_err "device 'x'"
run 2 frobnicate
expect_err "unknown command 'frobnicate'"
run 2 list extra
expect_err "unexpected argument 'extra'"
run 2 --bogus list
expect_err "unknown option '--bogus'"
run 2 list --watch 1
run 2
expect_err "missing command"
run 0 --help
expect_out "Usage"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
exit 0
