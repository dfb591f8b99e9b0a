#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpus for fuzz-blkif (tests/fuzz/corpus/blkif/): one small ring per request
# kind and per protocol corner. Input layout: see tests/fuzz/fuzz-blkif.c.
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'blkif')
os.makedirs(out, exist_ok=True)

def header(abi32=False, order=0, ro=False, nodiscard=False, start=0, sectors=2048):
    b0 = (1 if abi32 else 0) | (order << 1) | (0x10 if ro else 0) | (0x20 if nodiscard else 0)
    return bytes([b0]) + struct.pack('<IQ', start, sectors)

def rw(op, nseg, sector, segs, abi32=False, rid=1):
    if abi32:
        b = struct.pack('<BBHQQ', op, nseg, 0, rid, sector)
    else:
        b = struct.pack('<BBHIQQ', op, nseg, 0, 0, rid, sector)
    for g, f, l in segs:
        b += struct.pack('<IBBH', g, f, l, 0)
    return b

def indirect(op, nseg, sector, grefs, abi32=False, rid=2):
    if abi32:
        b = struct.pack('<BBHQQH2x', 6, op, nseg, rid, sector, 0)
    else:
        b = struct.pack('<BBHIQQHH', 6, op, nseg, 0, rid, sector, 0, 0)[:28]
    return b + b''.join(struct.pack('<I', g) for g in grefs)

def discard(sector, nr, abi32=False, rid=3):
    if abi32:
        return struct.pack('<BBHQQQ', 5, 0, 0, rid, sector, nr)
    return struct.pack('<BBHIQQQ', 5, 0, 0, 0, rid, sector, nr)

def ring(reqs, abi32=False, order=0, start=0, prod=None, indirect_page=b''):
    slot = 108 if abi32 else 112
    pages = 1 << order
    mem = bytearray(pages * 4096)
    nr = len(reqs) if prod is None else prod
    struct.pack_into('<IIII', mem, 0, (start + nr) & 0xffffffff, 0, start, 0)
    ents = 1
    while ents * 2 <= (pages * 4096 - 64) // slot:
        ents *= 2
    for i, r in enumerate(reqs):
        off = 64 + ((start + i) % ents) * slot
        mem[off:off + len(r)] = r
    return bytes(mem) + indirect_page

def seg_page(n, first=0, last=7):
    return b''.join(struct.pack('<IBBH', i + 8, first, last, 0) for i in range(n))

seeds = {
    'read': (header(), ring([rw(0, 1, 0, [(8, 0, 7)])])),
    'write-11': (header(), ring([rw(1, 11, 8, [(i, 0, 7) for i in range(11)])])),
    'write-12': (header(), ring([rw(1, 12, 8, [(i, 0, 7) for i in range(11)])])),
    'flush-barrier': (header(), ring([rw(3, 0, 0, []), rw(2, 1, 0, [(1, 0, 7)])])),
    'discard': (header(), ring([discard(8, 64), discard(2040, 9)])),
    'indirect-256': (header(), ring([indirect(1, 256, 0, [100])], indirect_page=seg_page(256))),
    'indirect-257': (header(), ring([indirect(0, 257, 0, [100])], indirect_page=seg_page(257))),
    'indirect-flush': (header(), ring([indirect(3, 4, 0, [100])], indirect_page=seg_page(4))),
    'x86_32-mixed': (header(abi32=True), ring([rw(0, 2, 0, [(1, 0, 7), (2, 1, 3)], abi32=True),
                                              indirect(1, 20, 16, [5], abi32=True),
                                              discard(0, 8, abi32=True)], abi32=True,
                                             indirect_page=seg_page(20))),
    'order4': (header(order=4), ring([rw(0, 1, i * 8, [(i, 0, 7)], rid=i) for i in range(40)], order=4)),
    'wrap': (header(start=0xfffffffe), ring([rw(0, 1, 0, [(1, 0, 7)])] * 4, start=0xfffffffe)),
    'prod-overflow': (header(), ring([rw(0, 1, 0, [(1, 0, 7)])], prod=33)),
    'bad-sectors': (header(sectors=16), ring([rw(0, 1, 9, [(1, 0, 7)]), rw(0, 1, 0, [(1, 5, 4)]),
                                             rw(0, 1, 0, [(1, 0, 8)]),
                                             rw(0, 1, 0xfffffffffffffff9, [(1, 0, 7)])])),
    'readonly-write': (header(ro=True), ring([rw(1, 1, 0, [(1, 0, 7)]), discard(0, 8)])),
    'unknown-op': (header(nodiscard=True), ring([rw(4, 1, 0, [(1, 0, 7)]), rw(200, 0, 0, []),
                                                 discard(0, 8)])),
}
for name, (h, body) in seeds.items():
    # Trim trailing zeros: the target zero-fills what is missing.
    data = (h + body).rstrip(b'\0')
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)

# Seeds for fuzz-blkif-ring (tests/fuzz/corpus/blkif-ring/): byte 0 = guest (0: x86_64,
# 1: x86_32), byte 1 = number of requests, then the slots, then the indirect pages. Grant refs
# in that harness: 9..24 data (odd writable, even read-only), 25 and 26 indirect pages.
ring_out = os.path.join(os.path.dirname(out), 'blkif-ring')
os.makedirs(ring_out, exist_ok=True)

def slot(req, abi32):
    size = 108 if abi32 else 112
    return req + bytes(size - len(req))

def ring_seed(abi32, reqs, pages=b''):
    return bytes([1 if abi32 else 0, len(reqs)]) + b''.join(slot(r, abi32) for r in reqs) + pages

for abi32 in (False, True):
    tag = 'x86_32' if abi32 else 'x86_64'
    desc = seg_page(16)  # grefs 8.. in seg_page: rewrite to writable refs
    desc = b''.join(struct.pack('<IBBH', 9 + 2 * (i % 8), 0, 7, 0) for i in range(16))
    seeds_ring = {
        'rw': [rw(0, 1, 0, [(9, 0, 7)], abi32, 1), rw(1, 2, 8, [(10, 0, 7), (12, 1, 6)], abi32, 2)],
        'flush-barrier': [rw(3, 0, 0, [], abi32, 3), rw(2, 1, 16, [(10, 0, 7)], abi32, 4),
                          rw(3, 1, 24, [(12, 0, 7)], abi32, 5)],
        'discard': [discard(64, 64, abi32, 6), discard(2040, 9, abi32, 7)],
        'indirect': [indirect(0, 16, 0, [25], abi32, 8), indirect(1, 16, 256, [25], abi32, 9)],
        'bad': [rw(0, 12, 0, [(9, 0, 7)] * 11, abi32, 10), rw(0, 1, 0, [(9, 5, 4)], abi32, 11),
                rw(0, 1, 2047, [(9, 0, 7)], abi32, 12), rw(0, 1, 0, [(10, 0, 7)], abi32, 13),
                rw(1, 1, 0, [(999, 0, 7)], abi32, 14), rw(9, 1, 0, [(9, 0, 7)], abi32, 15),
                indirect(3, 4, 0, [25], abi32, 16), indirect(0, 300, 0, [25], abi32, 17)],
        'full': [rw(0, 1, 8 * i, [(9 + 2 * (i % 8), 0, 7)], abi32, 100 + i) for i in range(32)],
    }
    for name, reqs in seeds_ring.items():
        with open(os.path.join(ring_out, tag + '-' + name), 'wb') as f:
            f.write(ring_seed(abi32, reqs, desc if name in ('indirect', 'bad') else b''))
