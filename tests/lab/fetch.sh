#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Fetch the Debian 12 packages the lab boots (Xen 4.17 hypervisor and toolstack, the current
# 6.1 kernel, busybox) into a cache outside the clone, keyed by their versions, and unpack them.
# Installs the host tools the lab needs when they are missing.
#
# Prints the unpacked root (…/root) on stdout; progress on stderr.
# Exit 0 ok, 77 when the packages cannot be had (no apt archive and no cache).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

HOST_PKGS=(qemu-system-x86 busybox-static cpio gcc libc6-dev util-linux bash e2fsprogs iproute2
	lvm2 thin-provisioning-tools)
# The blkcmp benchmark (LAB_BLKCMP=1, set by run.sh): QEMU's Xen device model for qdisk in dom0,
# fio in the guest. Only then: the other boots' images stay small.
[ "${LAB_BLKCMP:-}" = 1 ] && HOST_PKGS+=(qemu-system-xen qemu-system-data fio)
PKGS=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
	libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenmisc4.17 libxenstore4
	libxentoollog1 libxenhypfs1 libxendevicemodel1 libxentoolcore1 libyajl2 busybox-static)

mkdir -p "$LAB_CACHE"
exec 9>"$LAB_CACHE/fetch.lock"
flock 9

missing=()
for p in "${HOST_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	lab_say "installing host packages: ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; then
		apt-get update -q >&2 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
			lab_die "cannot install ${missing[*]}"
	fi
fi

# The newest complete cache, for when apt cannot answer.
latest_cache() {
	ls -1dt "$LAB_CACHE"/pkgs-*/root/.complete 2>/dev/null | head -n1 | xargs -r dirname
}

resolve() {
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$kpkg" ] || return 1
	all=("${PKGS[@]}" "$kpkg")
	vers=()
	mapfile -t vers < <(apt-cache policy "${all[@]}" 2>/dev/null | awk '
		/^[^ ].*:$/ { sub(/:$/, ""); p = $0 }
		/^  Candidate:/ { if ($2 != "(none)") print p "=" $2 }')
	[ "${#vers[@]}" -eq "${#all[@]}" ]
}

if ! resolve; then
	lab_say "apt-cache cannot resolve the packages, running apt-get update"
	apt-get update -q >&2 || true
	if ! resolve; then
		c=$(latest_cache)
		if [ -n "$c" ]; then
			lab_say "using cached packages $c"
			echo "$c"
			exit 0
		fi
		lab_say "packages unavailable and nothing cached"
		exit 77
	fi
fi

key=$(lab_hash -- "${vers[@]}")
dir="$LAB_CACHE/pkgs-$key"
if [ -e "$dir/root/.complete" ]; then
	echo "$dir/root"
	exit 0
fi

lab_say "fetching ${#vers[@]} packages (kernel $kpkg) into $dir"
rm -rf "$dir"
mkdir -p "$dir/debs"
if ! (cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root "${vers[@]}" >&2); then
	apt-get update -q >&2 || true
	(cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root "${vers[@]}" >&2) || {
		c=$(latest_cache)
		[ -n "$c" ] || { lab_say "apt-get download failed"; exit 77; }
		lab_say "download failed, using cached packages $c"
		echo "$c"
		exit 0
	}
fi

lab_say "unpacking"
mkdir -p "$dir/root"
for deb in "$dir"/debs/*.deb; do
	dpkg -x "$deb" "$dir/root"
done
printf '%s\n' "${vers[@]}" >"$dir/root/.versions"
echo "${kpkg#linux-image-}" >"$dir/root/.kver"
touch "$dir/root/.complete"
echo "$dir/root"
