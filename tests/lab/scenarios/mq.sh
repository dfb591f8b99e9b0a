#!/bin/bash
# SPDX-License-Identifier: MIT
# Scenario 5: blkfront negotiates several queues, a multi-page ring and indirect descriptors
# (read from the frontend's and backend's xenstore keys while connected), and I/O flows on every
# queue (blk-mq hardware-queue counters in the guest, and blanketctl's per-queue counters).
. /lab/dom0-lib.sh

img=$IMG_DIR/mq.raw
make_image "$img" 128
write_cfg mq 2 "wait:/dev/xvda:60;sleep:2;rw:/dev/xvda:0:32:77:4;features:/dev/xvda;sleep:40" \
	"$(disk_spec "$img" xvda w)"
start_guest mq
domid=$(xl domid mq)
dev=$(vdev_id xvda)
wait_console mq 'GUEST-STEP wait:' 120

nq=$(fe_read "$domid" "$dev" multi-queue-num-queues)
order=$(fe_read "$domid" "$dev" ring-page-order)
maxq=$(be_read "$domid" "$dev" multi-queue-max-queues)
maxorder=$(be_read "$domid" "$dev" max-ring-page-order)
indirect=$(be_read "$domid" "$dev" feature-max-indirect-segments)
state=$(be_read "$domid" "$dev" state)
say "backend: state=$state multi-queue-max-queues=$maxq max-ring-page-order=$maxorder feature-max-indirect-segments=$indirect"
say "frontend: multi-queue-num-queues=$nq ring-page-order=$order"
[ "$state" = 4 ] || fail "backend state is '$state', not Connected (4)"
[ -n "$nq" ] && [ "$nq" -ge 2 ] || fail "blkfront did not negotiate several queues (multi-queue-num-queues='$nq', backend offers '$maxq')"
[ -n "$order" ] && [ "$order" -ge 1 ] || fail "blkfront did not negotiate a multi-page ring (ring-page-order='$order', backend offers '$maxorder')"
[ -n "$indirect" ] && [ "$indirect" -gt 11 ] || fail "backend offers no indirect descriptors (feature-max-indirect-segments='$indirect')"
for ((q = 0; q < nq; q++)); do
	for ((p = 0; p < (1 << order); p++)); do
		r=$(fe_read "$domid" "$dev" "queue-$q/ring-ref$p")
		[ -n "$r" ] || fail "frontend key queue-$q/ring-ref$p missing"
	done
	[ -n "$(fe_read "$domid" "$dev" "queue-$q/event-channel")" ] ||
		fail "frontend key queue-$q/event-channel missing"
done

# The stats below need the disk: the guest keeps it for its last 40 s sleep.
wait_console mq 'GUEST-STEP features:' 600
grep -q 'GUEST-STEP rw:.* ok' "$CONSOLE_DIR/guest-mq.log" || { guest_log mq; fail "guest I/O failed"; }
grep -q 'GUEST-FEATURES.*indirect descriptors: enabled' "$CONSOLE_DIR/guest-mq.log" ||
	{ guest_log mq; fail "blkfront reports indirect descriptors not enabled"; }
grep -E 'GUEST-(FEATURES|HCTX|QUEUES)' "$CONSOLE_DIR/guest-mq.log" | tr -d '\r' | sed 's/^/  /'
hctx=$(grep -c 'GUEST-HCTX xvda' "$CONSOLE_DIR/guest-mq.log")
[ "$hctx" -ge "$nq" ] || fail "guest shows $hctx blk-mq hardware queues for $nq negotiated"

if [ "$LAB_BACKEND" = blanketd ] && [ -x /usr/sbin/blanketctl ]; then
	blanketctl_stats | sed 's/^/  /'
	# Backend side: every queue of the device carried reads, writes and indirect requests.
	js=$(blanketctl stats --json 2>&1)
	per_q=$(echo "$js" | grep -o '"queue":[0-9]*,"requests":{"read":[0-9]*,"write":[0-9]*,[^}]*"indirect":[0-9]*')
	nqs=$(echo "$per_q" | grep -c '"queue"')
	[ "$nqs" = "$nq" ] || fail "blanketctl shows $nqs queues for $nq negotiated: $js"
	echo "$per_q" | while IFS= read -r q; do
		r=$(echo "$q" | sed -n 's/.*"read":\([0-9]*\).*/\1/p')
		w=$(echo "$q" | sed -n 's/.*"write":\([0-9]*\).*/\1/p')
		ind=$(echo "$q" | sed -n 's/.*"indirect":\([0-9]*\).*/\1/p')
		say "queue ${q#*\"queue\":}"
		[ "${r:-0}" -gt 0 ] && [ "${w:-0}" -gt 0 ] || fail "a queue carried no reads or no writes: $q"
		[ "${ind:-0}" -gt 0 ] || fail "a queue carried no indirect request: $q"
	done || exit 1
else
	# Kernel backend: the guest's per-hardware-queue dispatch counters.
	idle=$(grep 'GUEST-HCTX xvda' "$CONSOLE_DIR/guest-mq.log" | grep -c 'dispatched=0')
	[ "$idle" = 0 ] || fail "$idle hardware queue(s) in the guest dispatched nothing"
fi
wait_guest_done mq 120
exit 0
