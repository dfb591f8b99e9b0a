#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Group the syscalls a blkcmpprof run traced in order (its " seq: " lines) into loop turns.

Usage: prof-turns.py SERIAL_LOG [TAG]   (TAG default blanketd-job1: the random reads)

A turn starts at an epoll_wait: EPB blocked (it had a timeout), EPNB did not (a hook left
enabled). Then what the turn did, clock readings left out: rd/wr the event channel's read and
unmask, sub an io_uring_enter, ntf a notify. Prints the turn shapes, most frequent first, and
the requests submitted per syscall.
"""
import collections
import re
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tag = sys.argv[2] if len(sys.argv) > 2 else "blanketd-job1"
    turns, cur, nsys, reqs = [], None, 0, 0
    for line in open(sys.argv[1], errors="replace"):
        if f"PROF {tag} seq:" not in line:
            continue
        m = re.search(r"\): \S+ (\w+)\(", line)
        if not m:
            continue
        nsys += 1
        name = m.group(1)
        if name == "epoll_wait":
            if cur is not None:
                turns.append(cur)
            cur = ["EPB" if "timeout" in line else "EPNB"]
            continue
        if cur is None:
            continue
        if name == "clock_gettime":
            continue
        if name == "read" and "evtchn" in line:
            name = "rd"
        elif name == "write" and "evtchn" in line:
            name = "wr"
        elif name == "ioctl" and "evtchn" in line:
            name = "ntf"
        elif name == "io_uring_enter":
            s = re.search(r"to_submit: (\d+)", line)
            reqs += int(s.group(1)) if s else 0
            name = "sub"
        cur.append(name)
    if cur is not None:
        turns.append(cur)
    shapes = collections.Counter(" ".join(t) for t in turns)
    for shape, n in shapes.most_common(12):
        print(f"{n:4d}  {shape}")
    print(f"{len(turns)} turns, {nsys} syscalls, {reqs} requests submitted"
          + (f", {nsys / reqs:.2f} syscalls per request" if reqs else ""))


if __name__ == "__main__":
    main()
