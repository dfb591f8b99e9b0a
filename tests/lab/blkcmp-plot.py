#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Render blkcmp's results (run.sh's BUILD/lab/blkcmp/blkcmp.json) with gnuplot.

    blkcmp-plot.py RESULTS.json [MORE.json ...] OUT.svg|OUT.png|-

Three panels: each job's throughput relative to xen-blkback (IOPS for 4K random read, MB/s for
the 1M sequential jobs), each backend's own CPU per request and dom0's busy CPU per request, in
microseconds (log scale).
Every bar is the mean of the rounds, every dot one round (relative to xen-blkback's mean). The title names the
machine (CPU, cores, host kernel) and the versions (Xen, dom0/guest kernel, qemu-system-xen).
Prints the summary table it plotted, then issue 12's acceptance lines (blanketd >= 1.0x
blkback on every job at <= 1.5x its threads' CPU per request, >= 3x qdisk on the sequential
jobs), each judged on the ratio of the means.

Several RESULTS files (boots) are pooled: every round of every boot counts once in the means,
and each boot's own ratios are printed too (a ratio near 1.0 can fall either side from one
boot to the next under TCG). OUT "-" prints without plotting.
Exit status: 0, or 1 without records (the plot's content does not decide it).
"""
import json
import subprocess
import sys

BACKENDS = ["blanketd", "blkback", "qdisk"]
JOBS = [("randread", "4K random read QD32"), ("read", "1M seq read QD4"), ("write", "1M seq write QD4")]
# Issue 12's acceptance: (blkback ratio at least, CPU ratio at most, qdisk ratio at least or None).
ACCEPT = {"randread": (1.0, 1.5, None), "read": (1.0, 1.5, 3.0), "write": (1.0, 1.5, 3.0)}


def tput(r):
    return r["iops"] if r["job"] == "randread" else r["mbps"]


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def ratios(runs, job):
    """(blanketd/blkback throughput, blanketd/blkback CPU per request, blanketd/qdisk), 0 if absent."""
    def m(be, f):
        return mean([f(r) for r in runs.get((be, job), [])])
    b, k, q = (m(be, tput) for be in BACKENDS)
    bc, kc = m("blanketd", lambda r: r["backend_us_per_io"]), m("blkback", lambda r: r["backend_us_per_io"])
    return (b / k if k else 0.0, bc / kc if kc else 0.0, b / q if q else 0.0)


def verdict(job, rel, cpu, vq):
    lo, cpu_hi, q_lo = ACCEPT[job]
    misses = []
    if rel < lo:
        misses.append(f"{rel:.2f}x blkback < {lo}x")
    if cpu > cpu_hi:
        misses.append(f"CPU/IO {cpu:.2f}x > {cpu_hi}x")
    if q_lo is not None and vq < q_lo:
        misses.append(f"{vq:.2f}x qdisk < {q_lo}x")
    return "meets" if not misses else "misses (" + ", ".join(misses) + ")"


def load(path):
    with open(path) as f:
        doc = json.load(f)
    meta, runs = {}, {}
    for r in doc.get("records", []):
        if "meta" in r:
            meta = r["meta"]
            continue
        runs.setdefault((r["backend"], r["job"]), []).append(r)
    return doc.get("host", {}), meta, runs


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: blkcmp-plot.py RESULTS.json [MORE.json ...] OUT.svg|OUT.png|-")
    out = sys.argv[-1]
    host, meta, runs = {}, {}, {}
    boots = []
    for path in sys.argv[1:-1]:
        h, m, rs = load(path)
        if not rs:
            sys.exit("blkcmp-plot: no records in " + path)
        host, meta = host or h, meta or m
        boots.append((path, rs))
        for k, v in rs.items():
            runs.setdefault(k, []).extend(v)

    rows = []
    dots = []
    print("job                  backend   rounds  throughput (mean)  backend us/IO  dom0 us/IO  vs blkback")
    for job, label in JOBS:
        base = mean([tput(r) for r in runs.get(("blkback", job), [])])
        for be in BACKENDS:
            rs = runs.get((be, job), [])
            if not rs:
                continue
            t = mean([tput(r) for r in rs])
            cpu = mean([r["backend_us_per_io"] for r in rs])
            d0 = mean([r["dom0_us_per_io"] for r in rs])
            rel = t / base if base else 0.0
            unit = "IOPS" if job == "randread" else "MB/s"
            print(f"{label:20} {be:9} {len(rs):6}  {t:10.1f} {unit:6}  {cpu:13.1f}  {d0:10.1f}  {rel:9.2f}x")
            rows.append((label, be, rel, cpu, d0))
            # Each round as a dot on its bar (x: cluster + offset of the bar in it).
            ji = [j for j, _ in JOBS].index(job)
            x = ji + (BACKENDS.index(be) - 1) * 0.25
            for r in rs:
                dots.append(f"{x:.2f} {tput(r) / base if base else 0:.4f} "
                            f"{r['backend_us_per_io']:.3f} {r['dom0_us_per_io']:.3f}")

    print()
    if len(boots) > 1:
        for path, rs in boots:
            line = "; ".join(f"{job} {a:.2f}x (CPU/IO {c:.2f}x, qdisk {q:.2f}x)"
                             for job, _ in JOBS for a, c, q in [ratios(rs, job)])
            print(f"boot {path}: {line}")
        print()
    what = f"{len(boots)} boots pooled" if len(boots) > 1 else "one boot"
    print(f"issue 12 acceptance ({what}, ratios of the means):")
    for job, label in JOBS:
        rel, cpu, vq = ratios(runs, job)
        print(f"  {label:20} blanketd/blkback {rel:.2f}x, CPU/IO {cpu:.2f}x, blanketd/qdisk {vq:.2f}x: "
              f"{verdict(job, rel, cpu, vq)}")
    if out == "-":
        return

    # Rounds per backend as the records have them (a custom order may differ from meta's).
    nr = sorted({len(rs) for rs in runs.values()})
    rounds = "-".join(str(n) for n in (nr[0], nr[-1])) if nr[0] != nr[-1] else str(nr[0])
    boots_s = f" in {len(boots)} boots" if len(boots) > 1 else ""
    title = (f"blanketd vs xen-blkback vs QEMU qdisk (Xen {meta.get('xen', '?')} under QEMU TCG; "
             f"bars: means of {rounds} rounds{boots_s}, dots: each round)\\n"
             f"host: {host.get('cpu', '?')}, {host.get('cores', '?')} cores, Linux {host.get('kernel', '?')}, "
             f"{host.get('qemu', '?')}\\n"
             f"dom0 and guest kernel {meta.get('dom0_kernel', '?')}, qemu-system-xen {meta.get('qemu_xen', '?')}, "
             f"{host.get('fio', 'fio')} in a 2-vCPU PV guest, {meta.get('image_mib', '?')} MiB image in dom0 tmpfs")
    # gnuplot histogram wants one row per job and one column per backend.
    table = {}
    for label, be, rel, cpu, d0 in rows:
        table.setdefault(label, {})[be] = (rel, cpu, d0)
    lines = []
    for _, label in JOBS:
        if label not in table:
            continue
        cols = []
        for be in BACKENDS:
            rel, cpu, d0 = table[label].get(be, (0, 0, 0))
            cols += [f"{rel:.4f}", f"{cpu:.3f}", f"{d0:.3f}"]
        lines.append(f'"{label}" ' + " ".join(cols))
    block = "\n".join(lines)
    dots = "\n".join(dots)
    if out.endswith(".png"):
        term = "set terminal pngcairo size 1000,1000 font 'sans,10' background '#ffffff'"
    else:
        term = "set terminal svg size 1000,1000 dynamic font 'sans,11' background '#ffffff'"
    script = f"""
{term}
set output '{out}'
$d << EOD
{block}
EOD
$r << EOD
{dots}
EOD
set multiplot layout 3,1 title "{title}" font 'sans,10'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left
set grid ytics
set yrange [0:*]
set ylabel 'throughput / xen-blkback'
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#555555'
plot $d using 2:xtic(1) title 'blanketd' lc rgb '#1b9e77', \\
     '' using 5 title 'xen-blkback' lc rgb '#7570b3', \\
     '' using 8 title 'QEMU qdisk' lc rgb '#d95f02', \\
     $r using 1:2 with points pt 7 ps 0.8 lc rgb 'black' title 'each round'
unset arrow 1
set ylabel 'backend CPU per request (us)'
set logscale y
set yrange [*:*]
plot $d using 3:xtic(1) title 'blanketd (its process)' lc rgb '#1b9e77', \\
     '' using 6 title 'xen-blkback (kthreads + unbound kworkers)' lc rgb '#7570b3', \\
     '' using 9 title 'QEMU qdisk (its process)' lc rgb '#d95f02', \\
     $r using 1:3 with points pt 7 ps 0.8 lc rgb 'black' notitle
set ylabel 'dom0 busy CPU per request (us)'
plot $d using 4:xtic(1) title 'blanketd' lc rgb '#1b9e77', \\
     '' using 7 title 'xen-blkback' lc rgb '#7570b3', \\
     '' using 10 title 'QEMU qdisk' lc rgb '#d95f02', \\
     $r using 1:4 with points pt 7 ps 0.8 lc rgb 'black' notitle
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
