#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""blkcmp-plot.py's acceptance lines, on made-up boots (no gnuplot: OUT is '-').

One boot that meets every line, one that misses random reads (throughput and CPU) and the
writes' qdisk line; pooled, every round counts once, so the means and the verdicts are the
ones worked out here by hand. Also: a file without records is refused. Usage: SCRIPT PLOT.PY
"""
import json
import os
import subprocess
import sys
import tempfile

JOB = {"randread": (4, 32), "read": (1024, 4), "write": (1024, 4)}


def rec(rnd, be, job, tput, cpu):
    bs, qd = JOB[job]
    r = {"round": rnd, "backend": be, "job": job, "bs_kib": bs, "qd": qd,
         "backend_us_per_io": cpu, "dom0_us_per_io": cpu * 2}
    if job == "randread":
        r.update(iops=tput, mbps=tput * 4096 / 1e6)
    else:
        r.update(iops=int(tput), mbps=tput)
    return r


def boot(rows):
    return {"host": {}, "records": [{"meta": {"xen": "4.17"}}] + [rec(*x) for x in rows]}


# (round, backend, job, throughput, backend us per I/O)
GOOD = [(1, "blanketd", "randread", 1200, 300), (2, "blkback", "randread", 1000, 250),
        (3, "qdisk", "randread", 500, 900),
        (1, "blanketd", "read", 400, 2000), (2, "blkback", "read", 300, 2500), (3, "qdisk", "read", 100, 9000),
        (1, "blanketd", "write", 300, 3000), (2, "blkback", "write", 250, 3000), (3, "qdisk", "write", 80, 9000)]
BAD = [(4, "blanketd", "randread", 800, 500), (5, "blkback", "randread", 1000, 250),
       (6, "qdisk", "randread", 500, 900),
       (4, "blanketd", "read", 400, 2000), (5, "blkback", "read", 300, 2500), (6, "qdisk", "read", 100, 9000),
       (4, "blanketd", "write", 300, 3000), (5, "blkback", "write", 250, 3000), (6, "qdisk", "write", 120, 9000)]


def run(plot, *files):
    p = subprocess.run([sys.executable, plot, *files, "-"], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main():
    plot = sys.argv[1]
    err = 0

    def expect(out, line, what):
        nonlocal err
        if not any(line in o for o in out.splitlines()):
            print(f"FAIL: {what}: no line with {line!r}")
            err = 1

    with tempfile.TemporaryDirectory() as d:
        good, bad, empty = (os.path.join(d, n) for n in ("good.json", "bad.json", "empty.json"))
        for path, rows in ((good, GOOD), (bad, BAD)):
            with open(path, "w") as f:
                json.dump(boot(rows), f)
        with open(empty, "w") as f:
            json.dump({"records": []}, f)

        rc, out = run(plot, good)
        print(out)
        expect(out, "acceptance (one boot", "one boot")
        expect(out, "blanketd/blkback 1.20x, CPU/IO 1.20x, blanketd/qdisk 2.40x: meets", "good randread")
        expect(out, "blanketd/blkback 1.33x, CPU/IO 0.80x, blanketd/qdisk 4.00x: meets", "good read")
        expect(out, "blanketd/blkback 1.20x, CPU/IO 1.00x, blanketd/qdisk 3.75x: meets", "good write")

        rc2, out = run(plot, bad)
        print(out)
        expect(out, "misses (0.80x blkback < 1.0x, CPU/IO 2.00x > 1.5x)", "bad randread")
        expect(out, "blanketd/qdisk 2.50x: misses (2.50x qdisk < 3.0x)", "bad write")

        # Pooled: randread (1200+800)/2 = 1000 vs 1000, CPU 400 vs 250; write qdisk 100.
        rc3, out = run(plot, good, bad)
        print(out)
        expect(out, "acceptance (2 boots pooled", "pooled")
        expect(out, f"boot {good}: randread 1.20x", "each boot's ratios")
        expect(out, f"boot {bad}: randread 0.80x", "each boot's ratios")
        expect(out, "blanketd/blkback 1.00x, CPU/IO 1.60x, blanketd/qdisk 2.00x: misses (CPU/IO 1.60x > 1.5x)",
               "pooled randread")
        expect(out, "blanketd/blkback 1.20x, CPU/IO 1.00x, blanketd/qdisk 3.00x: meets", "pooled write")
        if (rc, rc2, rc3) != (0, 0, 0):
            print(f"FAIL: exit status {rc}, {rc2}, {rc3}, not 0")
            err = 1

        rc, out = run(plot, good, empty)
        print(out)
        if rc == 0 or "no records in" not in out:
            print("FAIL: a file without records was not refused")
            err = 1
    return err


if __name__ == "__main__":
    sys.exit(main())
