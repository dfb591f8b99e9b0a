#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Boot Xen 4.17 + a dom0 under QEMU (TCG) and run lab scenarios in one boot.
#   run.sh [--build DIR] [--backend blanketd|kernel] [--timeout SECONDS] [--blanketd-args A+B]
#          [--smp N] SCENARIO...
# --smp: the emulated machine's CPUs (default 2), which dom0 gets as its vCPUs.
# Exit 0 when every scenario passed, 1 on any failure, 77 when QEMU (or the packages) cannot
# be had at all. The serial log is kept on failure (its path and tail are printed).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

BUILD=${MESON_BUILD_ROOT:-$(cd "$LAB_DIR/../.." && pwd)/build}
BACKEND=blanketd
TIMEOUT=${LAB_TIMEOUT:-1500}
BDARGS=${LAB_BLANKETD_ARGS:-}
SMP=${LAB_SMP:-2}
SCEN=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--backend) BACKEND=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--blanketd-args) BDARGS=$2; shift 2 ;;
	--smp) SMP=$2; shift 2 ;;
	-*) lab_die "unknown option $1" ;;
	*) SCEN+=("$1"); shift ;;
	esac
done
[ ${#SCEN[@]} -gt 0 ] || lab_die "usage: run.sh [options] SCENARIO..."
for s in "${SCEN[@]}"; do
	[ -f "$LAB_DIR/scenarios/$s.sh" ] || lab_die "no scenario $s"
done
BUILD=$(cd "$BUILD" && pwd) || lab_die "no build dir"
if [ "$BACKEND" = blanketd ] && [ ! -x "$BUILD/blanketd" ]; then
	lab_die "$BUILD/blanketd not built (ninja -C $BUILD)"
fi
if [ "$(id -u)" != 0 ]; then
	lab_say "the lab needs root (apt-get, mknod, cache in $LAB_CACHE): skipping"
	exit 77
fi

# blkcmp* adds QEMU's Xen device model to dom0 and a guest image with fio (fetch.sh installs
# them on the host, build-images.sh adds them).
for s in "${SCEN[@]}"; do
	[ "${s#blkcmp}" != "$s" ] && export LAB_BLKCMP=1
done
lab_say "fetching packages"
ROOT=$("$LAB_DIR/fetch.sh")
rc=$?
[ $rc = 77 ] && { lab_say "packages unavailable: skipping"; exit 77; }
[ $rc = 0 ] || lab_die "fetch failed"
command -v qemu-system-x86_64 >/dev/null || { lab_say "no qemu-system-x86_64: skipping"; exit 77; }
qemu-system-x86_64 --version >/dev/null 2>&1 || { lab_say "qemu cannot run: skipping"; exit 77; }

name=$(IFS=+; echo "${SCEN[*]}")
OUT=$BUILD/lab/$name
mkdir -p "$OUT"
LOG=$OUT/serial.log
lab_say "building images"
# Scenarios named drv* boot a driver domain from dom0's own image (build-images.sh adds it).
for s in "${SCEN[@]}"; do
	[ "${s#drv}" != "$s" ] && export LAB_DRVDOM=1
done
"$LAB_DIR/build-images.sh" "$ROOT" "$BUILD" "$OUT" || lab_die "image build failed"

# The scratch disk that holds the guests' disk images (ext4: O_DIRECT and hole punching work).
rm -f "$OUT/scratch.raw"
truncate -s 4G "$OUT/scratch.raw"
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$OUT/scratch.raw" ||
	lab_die "mkfs.ext4 failed"

# The "cloud's" own disk (L0) for scenarios whose name starts with l0: a modern-only
# virtio-blk-pci device at a fixed address (dom0 sees 0000:00:0a.0) on a sparse image that the
# scenario checks from the host side too. Nothing is added for other scenarios.
L0ARGS=()
for s in "${SCEN[@]}"; do
	if [ "${s#l0}" != "$s" ]; then
		rm -f "$OUT/l0.raw"
		truncate -s 256M "$OUT/l0.raw"
		L0ARGS=(-drive "file=$OUT/l0.raw,if=none,id=l0,format=raw,cache=unsafe"
			-device virtio-blk-pci,drive=l0,disable-legacy=on,num-queues=2,addr=0x0a)
		break
	fi
done
# The "cloud network" for scenarios whose name starts with l0net: two virtio-net-pci NICs on
# one QEMU hub (nothing leaves QEMU). dom0 sees 0000:00:0b.0 (for blanketd, MAC ...:b0) and
# 0000:00:0c.0 (left with dom0's virtio_net driver).
for s in "${SCEN[@]}"; do
	if [ "${s#l0net}" != "$s" ]; then
		L0ARGS+=(-netdev hubport,id=cloud0,hubid=7
			-device virtio-net-pci,netdev=cloud0,disable-legacy=on,addr=0x0b,mac=52:54:00:0c:10:b0
			-netdev hubport,id=cloud1,hubid=7
			-device virtio-net-pci,netdev=cloud1,disable-legacy=on,addr=0x0c,mac=52:54:00:0c:10:c0)
		break
	fi
done

exec 7>"$LAB_CACHE/qemu.lock"
if ! flock -n 7; then
	lab_say "waiting for another lab run to finish"
	# In the background so a SIGTERM (meson's timeout) ends the wait; the lock belongs to the
	# open file (fd 7), which stays with us.
	flock 7 &
	fpid=$!
	trap 'kill $fpid 2>/dev/null; exit 1' TERM INT HUP
	wait $fpid || exit 1
	trap - TERM INT HUP
fi

cmdline="console=hvc0 earlyprintk=xen lab.backend=$BACKEND lab.scenarios=$name"
[ -n "$BDARGS" ] && cmdline+=" lab.blanketd_args=$BDARGS"
# blkcmp's six guests with three fio jobs each take longer than dom0's default 900 s a scenario.
[ "${LAB_BLKCMP:-}" = 1 ] && cmdline+=" lab.timeout=$((TIMEOUT - 120))"
# blkcmp's order of rounds, when not its default (tests/lab/README.md): words joined by '+'.
if [ -n "${LAB_BLKCMP_ORDER:-}" ]; then
	case $LAB_BLKCMP_ORDER in
	*[!a-z+\ ]*)
		echo "run.sh: LAB_BLKCMP_ORDER='$LAB_BLKCMP_ORDER': only the words blanketd, blkback, qdisk and restart" >&2
		exit 2
		;;
	esac
	cmdline+=" lab.blkcmp_order=$(echo $LAB_BLKCMP_ORDER | tr ' ' '+')"
fi
# -initrd separates multiboot modules with ',': a comma inside the command line is doubled.
cmdline=${cmdline//,/,,}
lab_say "booting Xen + dom0 under QEMU (TCG) for: ${SCEN[*]}"
start=$(date +%s)
timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu qemu64,+svm \
	-m 2048 -smp "$SMP" -nographic -no-reboot -monitor none -serial stdio \
	-kernel "$OUT/xen.elf" \
	-append "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all noreboot" \
	-initrd "$OUT/vmlinuz $cmdline,$OUT/dom0.cpio.gz" \
	-drive "file=$OUT/scratch.raw,if=none,id=d0,format=raw,cache=unsafe" \
	-device virtio-blk-pci,drive=d0 \
	"${L0ARGS[@]}" \
	</dev/null >"$LOG" 2>&1 &
qpid=$!

# Progress lines from the serial log while QEMU runs.
# (In the background, so that a SIGTERM from meson's timeout stops QEMU at once.)
tail -n +1 -F --pid=$qpid "$LOG" 2>/dev/null | while IFS= read -r line; do
	line=${line%$'\r'}
	t=$(($(date +%s) - start))
	case $line in
	*LAB-TOOLSTACK*) lab_say "[$t s] dom0 toolstack up" ;;
	*LAB-BLANKETD*) lab_say "[$t s] ${line#*LAB-}" ;;
	*LAB-BEGIN*) lab_say "[$t s] scenario ${line#*LAB-BEGIN }" ;;
	*"LAB: guest"*running*) lab_say "[$t s]   ${line#*LAB: }" ;;
	*LAB-RESULT*) lab_say "[$t s] ${line#*LAB-RESULT }" ;;
	*LAB-FAIL-REASON*) lab_say "[$t s]   ${line#*LAB-}" ;;
	*LAB-WARN*) lab_say "[$t s]   ${line#*LAB-}" ;;
	*LAB-SHOW*) printf '%s\n' "${line#*LAB-SHOW }" ;;
	esac
done &
tpid=$!
trap 'kill $qpid $tpid 2>/dev/null; lab_say "interrupted: QEMU stopped (log $LOG)"; exit 1' TERM INT HUP
wait $qpid
qrc=$?
wait $tpid
trap - TERM INT HUP
flock -u 7

pass=0 fail=0 skip=0
checks=("${SCEN[@]}")
[ "$BACKEND" = blanketd ] && checks+=(blanketd-exit)
for s in "${checks[@]}"; do
	r=$(tr -d '\r' <"$LOG" | sed -n "s/.*LAB-RESULT $s \([A-Z]*\).*/\1/p" | tail -n1)
	case $r in
	PASS) pass=$((pass + 1)) ;;
	SKIP) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)); [ -z "$r" ] && lab_say "$s: no result (qemu exit $qrc)" ;;
	esac
done
# The L0 disk seen from the host: what a scenario saw the guest write must be in the image file.
if [ ${#L0ARGS[@]} -gt 0 ]; then
	while read -r off len sum; do
		[ -x "$OUT/iotool-host" ] ||
			gcc -O2 -static -pthread -o "$OUT/iotool-host" "$LAB_DIR/iotool.c" ||
			lab_die "cannot build iotool for the host"
		hsum=$("$OUT/iotool-host" sum "$OUT/l0.raw" "$off" "$len" | sed -n 's/.*sum=//p')
		if [ "$hsum" = "$sum" ]; then
			lab_say "L0 image on the host: $len MiB at $off MiB has the guest's checksum $sum"
			pass=$((pass + 1))
		else
			lab_say "L0 image on the host: $len MiB at $off MiB has checksum '$hsum', the guest's was $sum"
			fail=$((fail + 1))
		fi
	done < <(tr -d '\r' <"$LOG" | sed -n 's/.*LAB-L0SUM \([0-9]*\) \([0-9]*\) \([0-9a-f]*\).*/\1 \2 \3/p')
	[ $fail -eq 0 ] && rm -f "$OUT/l0.raw"
fi
# Benchmark results: a scenario's `LAB-BENCH NAME {json}` lines become OUT/NAME.json, one JSON
# document with the host's description (CPU, cores, kernel, QEMU) and the lines as "records".
for b in $(tr -d '\r' <"$LOG" | sed -n 's/.*LAB-BENCH \([a-z0-9]*\) {.*/\1/p' | sort -u); do
	{
		printf '{"host":{"cpu":"%s","cores":%d,"kernel":"%s","qemu":"%s","fio":"%s"},"records":[\n' \
			"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(nproc)" \
			"$(uname -r)" "$(qemu-system-x86_64 --version | head -n 1)" \
			"$(fio --version 2>/dev/null)"
		tr -d '\r' <"$LOG" | sed -n "s/.*LAB-BENCH $b \({.*}\)\$/\1/p" | sed '$!s/$/,/'
		printf ']}\n'
	} >"$OUT/$b.json"
	lab_say "results: $OUT/$b.json"
done
lab_say "$pass passed, $fail failed, $skip skipped in $(($(date +%s) - start)) s"
if [ $fail -gt 0 ]; then
	if [ $qrc = 124 ]; then lab_say "QEMU hit the overall timeout of $TIMEOUT s"; fi
	echo "----- serial log tail ($LOG) -----" >&2
	tail -n 150 "$LOG" | tr -d '\r' >&2
	exit 1
fi
rm -f "$OUT/scratch.raw"
[ $pass -eq 0 ] && exit 77
exit 0
