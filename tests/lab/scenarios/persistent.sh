#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario: persistent grants between stock blkfront and blanketd (issue 8 item 11, issue 12
# item 2). blanketd advertises feature-persistent on buffered stores (the disks here are
# cache=writeback: O_DIRECT stores are not offered them); Linux blkfront then grants a fixed set
# of its pages once and copies every segment into them, and blanketd maps each once and does the
# I/O on the mapped pages (no grant copy). One guest, two disks, both as blanketd sets them up; the guest
# runs the same workload on each in turn (sequential O_DIRECT writes then reads, 4 KiB and 1 MiB
# blocks, one request at a time, REPS times after a warm-up pass) and prints its busy CPU time
# (/proc/stat) per MiB moved (printed, not judged: xvda/xvdb shows the noise between two equal
# disks). Passes when every pass ran without error, blanketd advertised feature-persistent,
# blkfront says persistent grants are enabled on both disks and blanketd's connect lines say
# it uses them.
. /lab/dom0-lib.sh

[ "$LAB_BACKEND" = blanketd ] || skip "measures blkfront against blanketd"

SMALL=2  # MiB moved in 4 KiB blocks per pass
LARGE=128 # MiB moved in 1 MiB blocks per pass (blkfront splits them into indirect requests)
REPS=3
imga=$IMG_DIR/persistent-a.raw
imgb=$IMG_DIR/persistent-b.raw
glog=$CONSOLE_DIR/guest-pg.log
make_image "$imga" $((LARGE + 16))
make_image "$imgb" $((LARGE + 16))

steps="wait:/dev/xvda:60;wait:/dev/xvdb:60;features:/dev/xvda;features:/dev/xvdb"
steps+=";cpu:/dev/xvda:0:$SMALL:4:w;cpu:/dev/xvdb:0:$SMALL:4:w"
for ((rep = 1; rep <= REPS; rep++)); do
	for pass in "$SMALL:4:w" "$SMALL:4:r" "$LARGE:1024:w" "$LARGE:1024:r"; do
		steps+=";cpu:/dev/xvda:0:$pass;cpu:/dev/xvdb:0:$pass"
	done
done
[ ${#steps} -lt 960 ] || fail "the guest's steps (${#steps} bytes) do not fit its 1 KiB command line"
write_cfg pg 2 "$steps" "$(disk_spec "cache=writeback:$imga" xvda w)" \
	"$(disk_spec "cache=writeback:$imgb" xvdb w)"
start_guest pg
domid=$(xl domid pg)
# Written with the store's keys, once blanketd saw the hotplug script's hotplug-status (xl
# create may return just before).
for ((i = 0; i < 100; i++)); do
	advertised=$(be_read "$domid" "$(vdev_id xvdb)" feature-persistent)
	[ -n "$advertised" ] && break
	sleep 0.1
done
[ "$advertised" = 1 ] || fail "blanketd does not advertise feature-persistent (read '$advertised')"
wait_guest_done pg 900
wait_no_backend "$domid" 30

# negotiated DISK: what blkfront says of persistent grants for DISK (enabled/disabled).
negotiated() {
	tr -d '\r' <"$glog" | sed -n "s/.*blkfront: $1: .*persistent grants: \([a-z]*\).*/\1/p" | head -n 1
}
for d in xvda xvdb; do
	say "$d: $(tr -d '\r' <"$glog" | grep -o "blkfront: $d:.*" | head -n 1)"
done
neg_a=$(negotiated xvda)
neg_b=$(negotiated xvdb)
[ -n "$neg_a" ] && [ -n "$neg_b" ] || fail "no blkfront feature line for xvda or xvdb on the guest console"
[ "$neg_a" = enabled ] || fail "xvda: blanketd advertises persistent grants, blkfront says '$neg_a'"
[ "$neg_b" = enabled ] || fail "xvdb: blanketd advertises persistent grants, blkfront says '$neg_b'"
for d in xvda xvdb; do
	grep -q "vbd $domid/$(vdev_id $d): connected:.*persistent grants" "$BLANKETD_LOG" ||
		fail "$d: blanketd's connect line does not say it uses persistent grants"
done

n=$(grep -c 'IOTOOL cpu ok' "$glog")
[ "$n" = $((2 + REPS * 8)) ] || fail "the guest finished $n measurements, not $((2 + REPS * 8))"

# Mean busy ms per MiB (and the runs) of each disk and pass, warm-up passes left out.
table=$(tr -d '\r' <"$glog" | grep -E 'GUEST-STEP cpu:|IOTOOL cpu ok' | tail -n +5 |
	paste - - | sed -n 's/.*mode=\([rw]\) bs_kib=\([0-9]*\) .*ms_per_mib=\([0-9.]*\).*GUEST-STEP cpu:\/dev\/\(xvd[ab]\):.*/\4 \2 \1 \3/p' |
	awk '{ k = $2 "K " ($3 == "w" ? "write" : "read"); s[$1, k] += $4; n[$1, k]++; r[$1, k] = r[$1, k] " " $4 }
	     END { split("4K write,4K read,1024K write,1024K read", o, ",")
		   for (i = 1; i <= 4; i++) {
			   a = n["xvda", o[i]] ? s["xvda", o[i]] / n["xvda", o[i]] : 0
			   b = n["xvdb", o[i]] ? s["xvdb", o[i]] / n["xvdb", o[i]] : 0
			   printf "  %-11s %8.1f (%s) %8.1f (%s)   %.2fx\n", o[i], a, substr(r["xvda", o[i]], 2),
				  b, substr(r["xvdb", o[i]], 2), (b > 0 ? a / b : 0) } }')
show "guest busy CPU, ms per MiB moved (mean, and the $REPS runs), sequential O_DIRECT, one request at a time:"
show "  pass        xvda: persistent grants $neg_a   xvdb: persistent grants $neg_b   xvda/xvdb"
echo "$table" | while IFS= read -r l; do show "$l"; done

exit 0
