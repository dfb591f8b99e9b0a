#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpus for fuzz-netif (tests/fuzz/corpus/netif/): one TX ring per netback
# rule on either side of its limit, and TAP frames with each kind of virtio_net_hdr.
# Input layout: see tests/fuzz/fuzz-netif.c.
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'netif')
os.makedirs(out, exist_ok=True)

ALL = 0x1f
MORE, EXTRA, CSUM = 4, 8, 1

def header(feats=ALL, start=0, vh=(0, 0, 0, 0, 0, 0)):
    return bytes([feats]) + struct.pack('<I', start) + struct.pack('<BBHHHH', *vh)

def req(gref, off, flags, rid, size):
    return struct.pack('<IHHHH', gref, off, flags, rid, size)

def extra(etype, eflags=0, size=0, gtype=0):
    return struct.pack('<BBHBBH', etype, eflags, size, gtype, 0, 0) + b'\0' * 4

def ring(slots, start=0, prod=None):
    mem = bytearray(4096)
    n = len(slots) if prod is None else prod
    struct.pack_into('<IIII', mem, 0, (start + n) & 0xffffffff, 0, start, 0)
    for i, s in enumerate(slots):
        off = 64 + ((start + i) % 256) * 12
        mem[off:off + 12] = s
    return bytes(mem)

def chain(n, first_own=60, each=100):
    s = [req(1, 0, MORE if n else 0, 0, first_own + n * each)]
    for i in range(1, n + 1):
        s.append(req(1 + i, 0, MORE if i < n else 0, i, each))
    return s

def csum16(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s

def eth(etype, vlan=False):
    e = b'\x02\0\0\0\0\x01' + b'\x00\x16\x3e\0\0\x02'
    if vlan:
        e += struct.pack('!HH', 0x8100, 5)
    return e + struct.pack('!H', etype)

def l4(proto, plen, sport=1000):
    if proto == 6:
        return struct.pack('!HHIIBBHHH', sport, 80, 1, 0, 0x50, 0x18, 65535, 0, 0) + bytes(i & 0xff for i in range(plen))
    return struct.pack('!HHHH', sport, 53, 8 + plen, 0) + bytes(i & 0xff for i in range(plen))

def v4(proto, plen, vlan=False):
    seg = l4(proto, plen)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(seg), 1, 0x4000, 64, proto, 0, b'\n\0\0\x02', b'\n\0\0\x01')
    ip = ip[:10] + struct.pack('!H', (~csum16(ip)) & 0xffff) + ip[12:]
    return eth(0x0800, vlan) + ip + seg

def v6(proto, plen, hbh=False):
    seg = l4(proto, plen)
    ext = struct.pack('!BB6x', proto, 0) if hbh else b''
    ip = struct.pack('!IHBB16s16s', 0x60000000, len(ext) + len(seg), 0 if hbh else proto, 64, b'\xfd' + b'\0' * 14 + b'\x02', b'\xfd' + b'\0' * 14 + b'\x01')
    return eth(0x86dd) + ip + ext + seg

NEEDS, VALID = 1, 2
tcp4 = v4(6, 1400)
seeds = {
    'tx-simple': (header(), ring([req(1, 0, 0, 7, 60)]), v4(17, 18)),
    'tx-csum': (header(), ring([req(1, 100, CSUM, 1, len(tcp4))]), tcp4),
    'tx-gso4': (header(), ring([req(1, 0, CSUM | EXTRA | MORE, 1, 3054), extra(1, 0, 1448, 1),
                               req(2, 0, MORE, 2, 2000), req(3, 0, 0, 3, 1000)]), v4(6, 3000)),
    'tx-gso6-nocsum': (header(), ring([req(1, 0, EXTRA | MORE, 1, 3082), extra(1, 0, 1000, 2),
                                      req(2, 0, 0, 2, 3000)]), v6(6, 3000, hbh=True)),
    'tx-gso-size0': (header(), ring([req(1, 0, CSUM | EXTRA, 1, 200), extra(1, 0, 0, 1)]), v4(6, 146)),
    'tx-gso-badtype': (header(), ring([req(1, 0, CSUM | EXTRA, 1, 200), extra(1, 0, 100, 3)]), b''),
    'tx-extra-chain': (header(), ring([req(1, 0, EXTRA, 1, 100), extra(4, 1), extra(5, 1), extra(1, 0, 50, 1)]), v4(6, 46)),
    'tx-extra-type0': (header(), ring([req(1, 0, EXTRA, 1, 100), extra(0)]), b''),
    'tx-extra-type6': (header(), ring([req(1, 0, EXTRA, 1, 100), extra(6)]), b''),
    'tx-extra-missing': (header(), ring([req(1, 0, EXTRA, 1, 100), extra(1, 1, 10, 1)]), b''),
    'tx-mcast': (header(), ring([req(1, 0, EXTRA | MORE, 1, 0), extra(2), req(2, 0, 0, 2, 60), req(3, 0, EXTRA, 3, 0), extra(3)]), b''),
    'tx-slots-19': (header(), ring(chain(18)), v4(17, 1818)),
    'tx-slots-20': (header(), ring(chain(19)), b''),
    'tx-slots-21': (header(), ring(chain(20)), b''),
    'tx-slots-22': (header(), ring(chain(21)), b''),
    'tx-chain-unposted': (header(), ring(chain(5)[:4]), b''),
    'tx-cross-page': (header(), ring([req(1, 4037, 0, 1, 60), req(1, 4036, 0, 2, 60)]), b''),
    'tx-frag-cross-page': (header(), ring([req(1, 0, MORE, 1, 160), req(2, 3997, 0, 2, 100)]), b''),
    'tx-size-wrap': (header(), ring([req(1, 0, MORE, 1, 70000 & 0xffff)] + [req(2 + i, 0, MORE if i < 16 else 0, 2 + i, 4096) for i in range(17)]), b''),
    'tx-short': (header(), ring([req(1, 0, 0, 1, 13), req(2, 0, 0, 2, 14), req(3, 0, MORE, 3, 100), req(4, 0, 0, 4, 87)]), b''),
    'tx-zero-len': (header(), ring([req(1, 0, MORE, 1, 100), req(2, 0, MORE, 2, 0), req(3, 4096, 0, 3, 0)]), v4(17, 58)),
    'tx-wrap-index': (header(start=0xfffffff0), ring([req(i, 0, 0, i, 60) for i in range(32)], start=0xfffffff0), v4(17, 18)),
    'tx-prod-overflow': (header(), ring([req(1, 0, 0, 1, 60)], prod=257), b''),
    'rx-partial-v4': (header(vh=(NEEDS, 0, 0, 0, 34, 16)), b'', tcp4),
    'rx-partial-v4-nocsum': (header(feats=ALL & ~8, vh=(NEEDS, 0, 0, 0, 34, 16)), b'', tcp4),
    'rx-valid': (header(vh=(VALID, 0, 0, 0, 0, 0)), b'', v4(17, 100)),
    'rx-gso4': (header(vh=(NEEDS, 1, 54, 1448, 34, 16)), b'', v4(6, 20000)),
    'rx-gso4-not-negotiated': (header(feats=ALL & ~2, vh=(NEEDS, 1, 54, 1448, 34, 16)), b'', v4(6, 20000)),
    'rx-gso6-hbh': (header(vh=(NEEDS, 4, 82, 1440, 62, 16)), b'', v6(6, 9000, hbh=True)),
    'rx-gso-ecn': (header(vh=(NEEDS, 0x81, 54, 1448, 34, 16)), b'', v4(6, 5000)),
    'rx-gso-udp': (header(vh=(NEEDS, 3, 42, 1400, 34, 6)), b'', v4(17, 5000)),
    'rx-vlan-partial': (header(vh=(NEEDS, 0, 0, 0, 38, 6)), b'', v4(17, 700, vlan=True)),
    'rx-bad-offsets': (header(vh=(NEEDS, 0, 0, 0, 0xfffe, 0xffff)), b'', v4(17, 100)),
    'rx-nosg-big': (header(feats=ALL & ~1, vh=(0, 0, 0, 0, 0, 0)), b'', v4(17, 5000)),
    'rx-max': (header(vh=(NEEDS, 1, 54, 1448, 34, 16)), b'', v4(6, 65535 - 54)),
}
for name, (h, r, frame) in seeds.items():
    if frame:
        data = h + (r if r else bytes(4096)) + frame
    else:
        data = (h + r).rstrip(b'\0')
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print('wrote %d seeds to %s' % (len(seeds), out))
