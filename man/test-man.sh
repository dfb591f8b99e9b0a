#!/bin/sh
# SPDX-License-Identifier: MIT
# Render each manual page with every warning enabled; any diagnostic fails the test.
# Usage: test-man.sh PAGE...
set -u
if command -v groff >/dev/null 2>&1; then
	render() { groff -man -Tutf8 -ww -z -rLL=80n "$1" 2>&1; }
elif command -v man >/dev/null 2>&1; then
	render() { MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null; }
else
	echo "neither groff nor man installed: skip"
	exit 77
fi
fails=0
for page in "$@"; do
	out=$(render "$page")
	if [ -n "$out" ]; then
		echo "$page:"
		echo "$out"
		fails=$((fails + 1))
	fi
	grep -q '@[A-Z]*@' "$page" && { echo "$page: unsubstituted @VAR@"; fails=$((fails + 1)); }
	if command -v man >/dev/null 2>&1; then
		out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		[ -z "$out" ] || { echo "$page (man -l):"; echo "$out"; fails=$((fails + 1)); }
	fi
done
[ "$fails" -eq 0 ]
