#!/bin/sh
# SPDX-License-Identifier: MIT
# `systemd-analyze verify` on the generated unit (ExecStart pointing at the built blanketd).
# Fails on any diagnostic, not only on errors: unknown keys are only warnings there.
# Usage: test-unit.sh UNIT_FILE
set -u
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze missing: skip"; exit 77; }
dir=$(mktemp -d /tmp/test-unit.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cp "$1" "$dir/blanketd.service"
# --man=no: the man pages are checked by their own test and are not installed yet.
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$dir/blanketd.service" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "systemd-analyze verify failed (rc $rc):"
	echo "$out"
	exit 1
fi
grep -q '^ExecStart=/' "$dir/blanketd.service" || { echo "ExecStart not substituted"; exit 1; }
exit 0
