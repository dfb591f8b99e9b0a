# SPDX-License-Identifier: MIT
# boot_guest of dom0-lib.sh against stand-ins for xl and the xenstore tools: a guest whose
# console shows its init passes at once; one whose console stays empty is destroyed and created
# once more (with a LAB-WARN line) when its backends wait in InitWait or Connected, and fails
# when that happens twice, when a backend is in another state, or when its console shows
# something but no init. Usage: bash test-boot-guest.sh DOM0-LIB
. "$1" || exit 1

err=0
bad() {
	echo "FAIL: $*"
	err=1
}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
CONSOLE_DIR=$T/console
mkdir -p "$CONSOLE_DIR" "$T/bin"
backend_nodes() { :; } # wait_no_backend: the stand-in backend goes with the domain

# xl: create counts the tries in $T/tries and gives the console what $T/mode says for this try
# (its Nth word: start, empty or noise); destroy is recorded; domid is 7 + the tries so far.
cat >"$T/bin/xl" <<EOS
#!/bin/sh
t=\$(cat "$T/tries" 2>/dev/null || echo 0)
case \$1 in
create)
	t=\$((t + 1)); echo \$t >"$T/tries"
	name=\$(basename "\$2" .cfg)
	set -- \$(cat "$T/mode")
	shift \$((t - 1))
	case \$1 in
	start) echo "GUEST-START phase-steps=" >"$CONSOLE_DIR/guest-\$name.log" ;;
	noise) echo "[    1.0] Kernel panic" >"$CONSOLE_DIR/guest-\$name.log" ;;
	empty) : >"$CONSOLE_DIR/guest-\$name.log" ;;
	esac ;;
domid) echo \$((7 + t)) ;;
destroy) echo "\$2" >>"$T/destroyed" ;;
list) echo "\$2 \$((7 + t)) 192 1 -b---- 1.0" ;;
esac
EOS
cat >"$T/bin/xenstore-list" <<EOS
#!/bin/sh
case \$1 in */device/vbd) echo 51712 ;; esac
EOS
cat >"$T/bin/xenstore-read" <<EOS
#!/bin/sh
case \$1 in
*/device/vbd/51712/backend) echo /local/domain/0/backend/vbd/7/51712 ;;
*/device/vbd/51712/state) echo 1 ;;
/local/domain/0/backend/*/state) cat "$T/be_state" ;;
*) exit 1 ;;
esac
EOS
chmod +x "$T/bin/"*
PATH=$T/bin:$PATH

# case MODE BE_STATE WANT_RC WANT_TRIES WANT_DESTROYS GREP: boot_guest g 1 in a subshell.
case_() {
	local out rc tries destroys
	echo "$1" >"$T/mode"
	echo "$2" >"$T/be_state"
	rm -f "$T/tries" "$T/destroyed"
	out=$(boot_guest g 1 2>&1)
	rc=$?
	tries=$(cat "$T/tries" 2>/dev/null || echo 0)
	destroys=0
	[ -f "$T/destroyed" ] && destroys=$(wc -l <"$T/destroyed")
	echo "--- console $1, backend state $2: rc $rc, $tries create(s), $destroys destroy(s)"
	echo "$out" | sed 's/^/  | /'
	[ "$rc" = "$3" ] || bad "$1/$2: exit status $rc, not $3"
	[ "$tries" = "$4" ] || bad "$1/$2: $tries xl create, not $4"
	[ "$destroys" = "$5" ] || bad "$1/$2: $destroys xl destroy, not $5"
	echo "$out" | grep -q "$6" || bad "$1/$2: no '$6' in the output"
}

case_ "start" 2 0 1 0 'guest g running'
case_ "empty start" 2 0 2 1 'LAB-WARN guest g printed nothing in 1 s'
case_ "empty start" 4 0 2 1 'vbd/51712: 1/4'
case_ "empty empty" 2 1 2 1 'did not reach init within 1 s, twice'
case_ "empty start" 6 1 1 0 "backend is in state '6'"
case_ "noise start" 2 1 1 0 'no GUEST-START within 1 s'
exit $err
