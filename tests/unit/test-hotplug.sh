#!/bin/bash
# SPDX-License-Identifier: MIT
#
# scripts/blanket-hotplug without Xen: xenstore-read/-write/-rm are PATH shims that keep each
# key as a file under a temporary directory. Checks the target syntax (settings prefix, old
# "aio:" form, plain paths), the keys written on "add", the error reports, and that "remove"
# deletes what "add" wrote.
#
# Usage: test-hotplug.sh SCRIPT
set -u

SCRIPT=${1:?usage: test-hotplug.sh path/to/blanket-hotplug}
T=$(mktemp -d /tmp/test-hotplug.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0

mkdir -p "$T/bin" "$T/xs" "$T/img"
cat >"$T/bin/xenstore-read" <<'EOF'
#!/bin/bash
[ -f "$XS_DIR/$1" ] || { echo "could not read path $1" >&2; exit 1; }
cat "$XS_DIR/$1"
EOF
cat >"$T/bin/xenstore-write" <<'EOF'
#!/bin/bash
while [ $# -ge 2 ]; do
	mkdir -p "$XS_DIR/$(dirname "$1")" && printf '%s' "$2" >"$XS_DIR/$1" || exit 1
	shift 2
done
EOF
cat >"$T/bin/xenstore-rm" <<'EOF'
#!/bin/bash
[ -e "$XS_DIR/$1" ] || exit 1
rm -rf "${XS_DIR:?}/$1"
EOF
chmod +x "$T/bin/"*
export XS_DIR=$T/xs PATH=$T/bin:$PATH BLANKET_HOTPLUG_LOG=$T/hotplug.log

BE=/local/domain/0/backend/vbd/5/51712
truncate -s 1M "$T/img/g1.raw"
ln -s g1.raw "$T/img/link.raw"
IMG=$(readlink -f "$T/img/g1.raw")

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
key() { cat "$XS_DIR$BE/$1" 2>/dev/null; }
has() { [ -e "$XS_DIR$BE/$1" ]; }
expect() { # key value
	local v
	v=$(key "$1") || { fail "$CASE: $1 missing (wanted '$2')"; return; }
	[ "$v" = "$2" ] || fail "$CASE: $1 is '$v', wanted '$2'"
}
absent() { ! has "$1" || fail "$CASE: $1 present ('$(key "$1")')"; }

# A fresh backend directory as libxl writes it, then the script's "add".
add() { # params [mode]
	rm -rf "${XS_DIR:?}"/*
	mkdir -p "$XS_DIR$BE"
	printf '%s' "$1" >"$XS_DIR$BE/params"
	printf '%s' "${2:-w}" >"$XS_DIR$BE/mode"
	XENBUS_PATH=$BE bash "$SCRIPT" add 2>"$T/stderr"
}
remove() { XENBUS_PATH=$BE bash "$SCRIPT" remove 2>>"$T/stderr"; }

# Refused: non-zero exit, hotplug-status=error, hotplug-error containing each of the words.
refused() { # params word...
	local p=$1 err
	shift
	add "$p" && fail "$CASE: add succeeded"
	expect hotplug-status error
	err=$(key hotplug-error)
	for w in "$@"; do
		[[ $err == *"$w"* ]] || fail "$CASE: hotplug-error '$err' does not name '$w'"
	done
	for k in blanket-engine blanket-queues blanket-cache blanket-discard blanket-options \
		physical-device-path; do
		absent "$k"
	done
}

CASE="plain path"
add "$T/img/g1.raw" || fail "$CASE: add failed: $(cat "$T/stderr")"
expect hotplug-status connected
expect physical-device-path "$IMG"
absent blanket-engine
absent physical-device
absent hotplug-error

CASE="symlink is resolved"
add "$T/img/link.raw" || fail "$CASE: add failed"
expect physical-device-path "$IMG"

CASE="old aio: prefix"
add "aio:$T/img/g1.raw" || fail "$CASE: add failed"
expect hotplug-status connected
expect physical-device-path "$IMG"
absent blanket-engine

CASE="settings"
add "engine=aio,queues=2,cache=writeback,discard=off,options=depth=8;sqpoll:$T/img/g1.raw" ||
	fail "$CASE: add failed: $(cat "$T/stderr")"
expect hotplug-status connected
expect physical-device-path "$IMG"
expect blanket-engine aio
expect blanket-queues 2
expect blanket-cache writeback
expect blanket-discard off
expect blanket-options "depth=8,sqpoll"

CASE="remove deletes what add wrote"
remove || fail "$CASE: remove failed"
for k in blanket-engine blanket-queues blanket-cache blanket-discard blanket-options \
	physical-device-path hotplug-error; do
	absent "$k"
done
expect params "engine=aio,queues=2,cache=writeback,discard=off,options=depth=8;sqpoll:$T/img/g1.raw"
expect mode w

CASE="remove leaves keys the target did not set"
add "queues=1:$T/img/g1.raw" || fail "$CASE: add failed"
printf 'null' >"$XS_DIR$BE/blanket-engine" # the toolstack's, not the script's
remove || fail "$CASE: remove failed"
absent blanket-queues
expect blanket-engine null

CASE="one setting, read-only"
add "discard=no:$T/img/g1.raw" r || fail "$CASE: add failed"
expect blanket-discard no
absent blanket-queues

CASE="share"
add "share=on:$T/img/g1.raw" || fail "$CASE: add failed: $(cat "$T/stderr")"
expect blanket-share on
remove || fail "$CASE: remove failed"
absent blanket-share

CASE="persistent grants off"
add "persistent=off,cache=writeback:$T/img/g1.raw" || fail "$CASE: add failed: $(cat "$T/stderr")"
expect blanket-persistent off
expect blanket-cache writeback
remove || fail "$CASE: remove failed"
absent blanket-persistent

CASE="rate limits"
add "iops=500,bps=20M,burst=250:$T/img/g1.raw" || fail "$CASE: add failed: $(cat "$T/stderr")"
expect blanket-iops 500
expect blanket-bps 20M
expect blanket-burst 250
remove || fail "$CASE: remove failed"
absent blanket-iops
absent blanket-bps
absent blanket-burst

CASE="bad iops";		refused "iops=fast:$T/img/g1.raw" iops fast "requests per second"
CASE="bad iops range";		refused "iops=10000001:$T/img/g1.raw" iops 10000001
CASE="bad bps";			refused "bps=20T:$T/img/g1.raw" bps 20T "bytes per second"
CASE="bad bps range";		refused "bps=2048G:$T/img/g1.raw" bps 2048G
CASE="bad burst";		refused "burst=0:$T/img/g1.raw" burst "'0'" milliseconds
CASE="bad burst range";		refused "burst=60001:$T/img/g1.raw" burst 60001
CASE="bad share";		refused "share=always:$T/img/g1.raw" share always
CASE="bad persistent";		refused "persistent=maybe:$T/img/g1.raw" persistent maybe
CASE="unknown setting";		refused "engin=aio:$T/img/g1.raw" engin aio
CASE="bad engine";		refused "engine=spdk:$T/img/g1.raw" engine spdk
CASE="bad queues 0";		refused "queues=0:$T/img/g1.raw" queues "'0'"
CASE="bad queues 65";		refused "queues=65:$T/img/g1.raw" queues 65
CASE="bad queues word";		refused "queues=two:$T/img/g1.raw" queues two
CASE="bad cache";		refused "cache=unsafe:$T/img/g1.raw" cache unsafe
CASE="bad discard";		refused "discard=maybe:$T/img/g1.raw" discard maybe
CASE="value without setting";	refused "=aio:$T/img/g1.raw" "unknown setting" aio
CASE="setting without value";	refused "engine=aio,queues:$T/img/g1.raw" queues
CASE="bad options";		refused "options=a b:$T/img/g1.raw" options "a b"
CASE="missing target";		refused "engine=aio:$T/img/none.raw" none.raw "does not exist"
CASE="directory target";	refused "$T/img" "neither a regular file"
CASE="empty target";		refused "engine=aio:" "empty target"
# engine=virtio-blk: a range of a PCI device (a made-up sysfs).
export BLANKET_SYSFS=$T/sys
mkdir -p "$T/sys/bus/pci/devices/0000:00:05.0" "$T/sys/bus/pci/devices/0000:00:06.0"
echo 0x1af4 >"$T/sys/bus/pci/devices/0000:00:05.0/vendor"
echo 0x1042 >"$T/sys/bus/pci/devices/0000:00:05.0/device"
echo 0x8086 >"$T/sys/bus/pci/devices/0000:00:06.0/vendor"
echo 0x100e >"$T/sys/bus/pci/devices/0000:00:06.0/device"

CASE="virtio-blk range"
add "engine=virtio-blk,pci=0000:00:05.0,offset=1M,size=64M" ||
	fail "$CASE: add failed: $(cat "$T/stderr")"
expect hotplug-status connected
expect blanket-engine virtio-blk
expect blanket-options "pci=0000:00:05.0,range=1048576+67108864,owner=5/51712"
expect physical-device-path "virtio-blk:0000:00:05.0:1048576+67108864"
remove || fail "$CASE: remove failed"
absent blanket-options
absent blanket-engine
absent physical-device-path

CASE="virtio-blk with options and a trailing colon"
add "engine=virtio-blk,pci=0000:00:05.0,size=4096,options=qsize=64;irq=poll:" r ||
	fail "$CASE: add failed: $(cat "$T/stderr")"
expect blanket-options "pci=0000:00:05.0,range=0+4096,owner=5/51712,qsize=64,irq=poll"

CASE="virtio-blk owner from libxl's relative XENBUS_PATH"
rm -rf "${XS_DIR:?}"/*
mkdir -p "$XS_DIR/backend/vbd/7/51728"
printf '%s' "engine=virtio-blk,pci=0000:00:05.0,size=1M" >"$XS_DIR/backend/vbd/7/51728/params"
printf 'w' >"$XS_DIR/backend/vbd/7/51728/mode"
XENBUS_PATH=backend/vbd/7/51728 bash "$SCRIPT" add 2>"$T/stderr" ||
	fail "$CASE: add failed: $(cat "$T/stderr")"
v=$(cat "$XS_DIR/backend/vbd/7/51728/blanket-options" 2>/dev/null)
[ "$v" = "pci=0000:00:05.0,range=0+1048576,owner=7/51728" ] ||
	fail "$CASE: blanket-options is '$v'"

CASE="virtio-blk no device";	refused "engine=virtio-blk,pci=0000:00:09.0,size=1M" 0000:00:09.0 "does not exist"
CASE="virtio-blk not virtio";	refused "engine=virtio-blk,pci=0000:00:06.0,size=1M" 0000:00:06.0 "not a virtio-blk" 0x8086
CASE="virtio-blk bad address";	refused "engine=virtio-blk,pci=00:05.0,size=1M" pci 00:05.0
CASE="virtio-blk no pci";	refused "engine=virtio-blk,size=1M" "pci="
CASE="virtio-blk no size";	refused "engine=virtio-blk,pci=0000:00:05.0" "size="
CASE="virtio-blk bad size";	refused "engine=virtio-blk,pci=0000:00:05.0,size=1000" size 1000
CASE="virtio-blk bad offset";	refused "engine=virtio-blk,pci=0000:00:05.0,offset=x,size=1M" offset "'x'"
CASE="pci without virtio-blk";	refused "engine=aio,pci=0000:00:05.0:$T/img/g1.raw" pci "engine=virtio-blk"

CASE="bad mode"
add "$T/img/g1.raw" x && fail "$CASE: add succeeded"
expect hotplug-status error

CASE="log names the settings"
add "queues=3:$T/img/g1.raw" || fail "$CASE: add failed"
grep -q "connected file $IMG mode=w settings queues=3" "$T/hotplug.log" ||
	fail "$CASE: no log line: $(tail -n 3 "$T/hotplug.log")"

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed" >&2
	exit 1
fi
echo ok
