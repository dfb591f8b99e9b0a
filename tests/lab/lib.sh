# SPDX-License-Identifier: MIT
# Shared helpers for the lab scripts (sourced, not executed).

LAB_CACHE=${LAB_CACHE:-/var/cache/blanketd-lab}
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Progress lines go to stderr so stdout can carry a result path.
lab_say() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# Short content hash of files and strings: lab_hash FILE... -- STRING...
lab_hash() {
	local f strs=0
	{
		for f in "$@"; do
			if [ "$f" = "--" ]; then strs=1; continue; fi
			if [ "$strs" = 1 ]; then printf '%s\n' "$f"; else cat "$f"; fi
		done
	} | sha256sum | cut -c1-16
}
