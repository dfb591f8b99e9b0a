#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Build the lab's boot images.
#   build-images.sh ROOT BUILDDIR OUTDIR
# ROOT is the unpacked package tree from fetch.sh, BUILDDIR a meson build directory holding
# blanketd (and blanketctl when it exists). Writes OUTDIR/{xen.elf,vmlinuz,dom0.cpio.gz}.
#
# The base dom0 and domU images (busybox, Xen toolstack, kernel modules, libraries) are cached
# in $LAB_CACHE keyed by the package versions and a hash of the builder; the overlay (blanketd,
# blanketctl, iotool, nettool, hotplug script, init and scenario scripts, the domU image) is
# rebuilt every time and appended.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROOT=$1
BUILD=$2
OUT=$3
SRC=$(cd "$LAB_DIR/../.." && pwd)
KVER=$(cat "$ROOT/.kver")
MODS=$ROOT/lib/modules/$KVER
LIBPATH=$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu

DOM0_MODS="xenfs xen-privcmd xen-evtchn xen-gntdev xen-gntalloc xen-blkback xen-netback loop
	tun bridge veth dummy virtio_pci virtio_blk virtio_net crc32c_generic ext4 uio_pci_generic
	dm-mod dm-thin-pool"
DOMU_MODS="xen-blkfront xen-netfront"
# Full versions where busybox falls short: the hotplug scripts need bash, losetup and flock;
# vif-bridge/vif-nat/vif-common.sh need iproute2's ip (link set master, addr show primary,
# netns for the lab's "behind dom0" namespace) and bridge. No iptables: vif-common.sh skips its
# rules when iptables does not work.
FULL_TOOLS="/usr/bin/bash /usr/sbin/losetup /usr/bin/flock /usr/sbin/blkdiscard /usr/sbin/ip
	/usr/sbin/bridge"
# LVM (the lvm scenario: a thin LV as a guest's disk): lvm itself (run as "lvm pvcreate ...")
# and thin_check, which activating a thin pool runs. Only when the host has them (fetch.sh
# installs lvm2 and thin-provisioning-tools).
for t in /usr/sbin/lvm /usr/sbin/thin_check /usr/sbin/dmsetup; do
	[ -x "$t" ] && FULL_TOOLS+=" $t"
done
XEN_BINS="xl xenstored xen-init-dom0 xenconsoled xenconsole libxl-save-helper"

mkdir -p "$OUT"

# Copy the ELF files and every shared library they need (ldd) into stage dir $1.
copy_elf() {
	local stage=$1 f lib dst
	shift
	for f in "$@"; do
		LD_LIBRARY_PATH=$LIBPATH ldd "$f" 2>/dev/null |
			awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
	done | sort -u | while read -r lib; do
		dst=${lib#"$ROOT"}
		mkdir -p "$stage$(dirname "$dst")"
		cp -L "$lib" "$stage$dst"
	done
	# glibc dlopens libgcc_s for pthread_cancel (xl aborts without it).
	mkdir -p "$stage/lib/x86_64-linux-gnu"
	cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$stage/lib/x86_64-linux-gnu/"
}

# Copy kernel modules with their dependencies (from the tree's modules.dep) into $1.
copy_mods() {
	local stage=$1 m line want=()
	shift
	for m in "$@"; do
		line=$(grep -E "/${m//[-_]/[-_]}\.ko(\.xz)?:" "$MODS/modules.dep") ||
			lab_die "module $m not found"
		want+=(${line//:/})
	done
	for m in $(printf '%s\n' "${want[@]}" | sort -u); do
		mkdir -p "$stage/lib/modules/$KVER/$(dirname "$m")"
		cp "$MODS/$m" "$stage/lib/modules/$KVER/$m"
	done
	cp "$MODS/modules.order" "$MODS/modules.builtin" "$stage/lib/modules/$KVER/"
	depmod -b "$stage" "$KVER"
}

base_skeleton() {
	local stage=$1 a
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc,lib64,root}
	cp /bin/busybox "$stage/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$stage/bin/$a" ] || ln -s busybox "$stage/bin/$a"
	done
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
	printf 'root:x:0:\n' >"$stage/etc/group"
}

mkcpio() { (cd "$1" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$2"; }
# libxc inflates only the first gzip member of a PV ramdisk: the domU image stays uncompressed.
mkcpio_raw() { (cd "$1" && find . | cpio -o -H newc -R 0:0 --quiet) >"$2"; }

build_dom0_base() {
	local stage=$1 b t
	base_skeleton "$stage"
	# busybox's brctl lacks "show", which vif-bridge calls when it finds brctl: without one the
	# scripts use iproute2 (ip link set master, bridge link).
	rm -f "$stage/bin/brctl"
	for t in $FULL_TOOLS; do
		cp -L "$t" "$stage$t"
		ln -sf "$t" "$stage/bin/${t##*/}"
		copy_elf "$stage" "$t"
	done
	mkdir -p "$stage/usr/lib/xen-4.17/bin"
	for b in $XEN_BINS; do
		cp "$ROOT/usr/lib/xen-4.17/bin/$b" "$stage/usr/lib/xen-4.17/bin/"
		copy_elf "$stage" "$ROOT/usr/lib/xen-4.17/bin/$b"
		ln -sf "../lib/xen-4.17/bin/$b" "$stage/usr/sbin/$b"
	done
	for b in "$ROOT"/usr/bin/xenstore*; do
		cp "$b" "$stage/usr/bin/"
	done
	copy_elf "$stage" "$ROOT/usr/bin/xenstore"
	cp -a "$ROOT/etc/xen" "$stage/etc/"
	mkdir -p "$stage"/var/{lib/xen,lib/xenstored,log/xen/console} "$stage/lab"
	ln -s /run "$stage/var/run"
	ln -s /run/lock "$stage/var/lock"
	printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$stage/etc/ld.so.conf"
	copy_mods "$stage" $DOM0_MODS
	cp "$ROOT/boot/vmlinuz-$KVER" "$stage/lab/vmlinuz"
}

build_domu_base() {
	local stage=$1
	base_skeleton "$stage"
	copy_mods "$stage" $DOMU_MODS
}

# --- cached base images ---
key=$(lab_hash "$0" "$LAB_DIR/lib.sh" -- "$(cat "$ROOT/.versions")" "$(/bin/busybox | head -n1)")
base=$LAB_CACHE/images-$key
exec 8>"$LAB_CACHE/images.lock"
flock 8
[ -e "$MODS/modules.dep" ] || depmod -b "$ROOT" "$KVER"
if [ ! -e "$base/.complete" ]; then
	lab_say "building base images ($base)"
	rm -rf "$base"
	mkdir -p "$base"
	zcat "$ROOT/boot/xen-4.17-amd64.gz" >"$base/xen.elf"
	cp "$ROOT/boot/vmlinuz-$KVER" "$base/vmlinuz"
	tmp=$(mktemp -d)
	build_dom0_base "$tmp/dom0"
	ldconfig -r "$tmp/dom0"
	mkcpio "$tmp/dom0" "$base/dom0-base.cpio.gz"
	build_domu_base "$tmp/domu"
	mkcpio_raw "$tmp/domu" "$base/domu-base.cpio"
	rm -rf "$tmp"
	touch "$base/.complete"
fi
flock -u 8

# --- overlay: rebuilt every run (small) ---
lab_say "building overlay"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -Wall -static -pthread -o "$tmp/iotool" "$LAB_DIR/iotool.c"
# (static glibc warns that getaddrinfo wants the shared NSS libraries: nettool passes numeric
# addresses only, which need none)
gcc -O2 -Wall -static -o "$tmp/nettool" "$LAB_DIR/nettool.c" 2>&1 |
	{ grep -vE 'getaddrinfo|statically linked|in function .resolve' || true; } >&2

# domU: base + init + iotool + nettool
mkdir -p "$tmp/domu/bin"
install -m 755 "$LAB_DIR/guest-init.sh" "$tmp/domu/init"
install -m 755 "$tmp/iotool" "$tmp/domu/bin/iotool"
install -m 755 "$tmp/nettool" "$tmp/domu/bin/nettool"
mkcpio_raw "$tmp/domu" "$tmp/domu-overlay.cpio"

o=$tmp/dom0
mkdir -p "$o/lab/scenarios" "$o/bin" "$o/usr/sbin" "$o/etc/xen/scripts"
install -m 755 "$LAB_DIR/dom0-init.sh" "$o/init"
install -m 755 "$LAB_DIR/drv-init.sh" "$o/lab/drv-init.sh"
install -m 644 "$LAB_DIR/dom0-lib.sh" "$o/lab/dom0-lib.sh"
install -m 755 "$LAB_DIR"/scenarios/*.sh "$o/lab/scenarios/"
install -m 755 "$tmp/iotool" "$o/bin/iotool"
install -m 755 "$tmp/nettool" "$o/bin/nettool"
install -m 755 "$SRC/scripts/blanket-hotplug" "$o/etc/xen/scripts/blanket"
cat "$base/domu-base.cpio" "$tmp/domu-overlay.cpio" >"$o/lab/domu.cpio"
for b in blanketd blanketctl; do
	f=$(find "$BUILD" -maxdepth 3 -type f -name "$b" -perm -u+x -not -path "$BUILD/lab/*" | sort | head -n1)
	[ -n "$f" ] || continue
	install -m 755 "$f" "$o/usr/sbin/$b"
	copy_elf "$o" "$f"
done
mkcpio "$o" "$tmp/dom0-overlay.cpio.gz"

cp "$base/xen.elf" "$base/vmlinuz" "$OUT/"
cat "$base/dom0-base.cpio.gz" "$tmp/dom0-overlay.cpio.gz" >"$OUT/dom0.cpio.gz"
# The driver domain's ramdisk (LAB_DRVDOM=1, set by run.sh for drv* scenarios): this same dom0
# image, booted with lab.role=drv (dom0-init.sh hands over to drv-init.sh), as one gzip member
# (libxc inflates only the first member of a PV ramdisk), put in dom0 at /lab/drv.cpio.gz by a
# second overlay.
if [ "${LAB_DRVDOM:-}" = 1 ]; then
	mkdir -p "$tmp/drv/lab"
	zcat "$OUT/dom0.cpio.gz" | gzip -1 >"$tmp/drv/lab/drv.cpio.gz"
	mkcpio "$tmp/drv" "$tmp/drv-overlay.cpio.gz"
	cat "$tmp/drv-overlay.cpio.gz" >>"$OUT/dom0.cpio.gz"
fi
# The blkcmp benchmark (LAB_BLKCMP=1, set by run.sh for blkcmp* scenarios): Debian's
# qemu-system-xen in dom0 (libxl starts it as a PV guest's device model for backendtype=qdisk; no
# firmware: a PV device model emulates nothing; only its keymaps) and a guest image with fio (fio.cpio: the domU
# image plus fio and its ldd closure, about 80 MiB: Debian's fio links librbd, librados,
# glusterfs and RDMA libraries). Neither is in any other boot's images.
if [ "${LAB_BLKCMP:-}" = 1 ]; then
	for t in /usr/libexec/xen-qemu-system-i386 /usr/bin/fio; do
		[ -x "$t" ] || lab_die "$t missing (fetch.sh installs it for blkcmp)"
	done
	b=$tmp/bc
	mkdir -p "$b/dom0/usr/libexec" "$b/fio/bin" "$b/dom0/lab"
	cp -L /usr/libexec/xen-qemu-system-i386 "$b/dom0/usr/libexec/"
	# libxl passes "-vnc none", for which qemu still loads its keymap.
	mkdir -p "$b/dom0/usr/share/qemu"
	cp -r /usr/share/qemu/keymaps "$b/dom0/usr/share/qemu/"
	copy_elf "$b/dom0" /usr/libexec/xen-qemu-system-i386
	cp -L /usr/bin/fio "$b/fio/bin/"
	copy_elf "$b/fio" /usr/bin/fio
	mkcpio_raw "$b/fio" "$tmp/fio-overlay.cpio"
	cat "$o/lab/domu.cpio" "$tmp/fio-overlay.cpio" >"$b/dom0/lab/fio.cpio"
	mkcpio "$b/dom0" "$tmp/blkcmp-overlay.cpio.gz"
	cat "$tmp/blkcmp-overlay.cpio.gz" >>"$OUT/dom0.cpio.gz"
fi
# Profiling (LAB_PROFILE=1 in the environment of run.sh): the host's perf and strace in dom0
# (Debian's perf is the 6.1 one, the lab kernel's). Never in CI's boots.
if [ "${LAB_PROFILE:-}" = 1 ]; then
	p=$tmp/prof
	mkdir -p "$p/usr/bin"
	for t in perf strace; do
		f=$(command -v "$t") || lab_die "$t missing (apt-get install linux-perf strace)"
		cp -L "$f" "$p/usr/bin/"
		copy_elf "$p" "$f"
	done
	mkcpio "$p" "$tmp/prof-overlay.cpio.gz"
	cat "$tmp/prof-overlay.cpio.gz" >>"$OUT/dom0.cpio.gz"
fi
lab_say "images ready in $OUT ($(du -h "$OUT/dom0.cpio.gz" | cut -f1) dom0 initramfs)"
