#!/usr/bin/env python3
"""Time sparky's criteo-prepare (train mode, Parquet) against the Polars and
DuckDB anchors on the same TSV: runs alternate (sparky, polars, duckdb,
sparky, ...) so that a noisy machine hurts each alike; prints each run and the
median wall time and peak RSS per tool, and checks once that the three outputs
hold the same ids and vocabulary.

Usage: bench_prepare.py TRAIN.tsv WORK_DIR --prepare PATH/TO/criteo-prepare [--runs 3]
                        [--python PYTHON] [--tools sparky,polars,duckdb] [--no-check]

WORK_DIR gets one output folder per tool (rewritten by every run). The
anchors run with PYTHON (default: this interpreter), which needs polars and
duckdb (scripts/setup-anchors.sh). The input stays in the page cache after
the first run: every tool reads it from memory alike. sparky runs as
`criteo-prepare -m train --format parquet --overwrite --no-sync` (the anchors
do not fsync either).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def command(tool, args, work):
    out = os.path.join(work, tool)
    if tool == "sparky":
        return [args.prepare, "-i", args.train, "-o", out, "-m", "train", "-x", out + "-model",
                "--format", "parquet", "--overwrite", "--no-sync"]
    return [args.python, os.path.join(HERE, f"prepare_{tool}.py"), args.train, out]


def run(cmd):
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of one
    child process."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("train"); a.add_argument("work")
    a.add_argument("--prepare", required=True, help="sparky's criteo-prepare binary")
    a.add_argument("--python", default=sys.executable)
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--tools", default="sparky,polars,duckdb")
    a.add_argument("--no-check", action="store_true")
    args = a.parse_args()
    tools = args.tools.split(",")
    os.makedirs(args.work, exist_ok=True)
    size = os.path.getsize(args.train)
    print(f"input {args.train}: {size / 1e6:.1f} MB; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    results = {t: [] for t in tools}
    for r in range(args.runs):
        for tool in tools:
            out = os.path.join(args.work, tool)
            if tool != "sparky":
                shutil.rmtree(out, ignore_errors=True)
            wall, rss, cpu = run(command(tool, args, args.work))
            results[tool].append((wall, rss, cpu))
            print(f"run {r + 1} {tool:7s} {wall:7.2f} s  peak RSS {rss:7.0f} MiB  CPU {cpu:7.2f} s  "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\nmedian of {args.runs} (wall s, peak RSS MiB, CPU s):")
    med = {t: statistics.median(w for w, _, _ in v) for t, v in results.items()}
    cpu = {t: statistics.median(c for _, _, c in v) for t, v in results.items()}
    for t, v in results.items():
        print(f"  {t:7s} {med[t]:7.2f} s  {statistics.median(m for _, m, _ in v):7.0f} MiB  {cpu[t]:7.2f} s CPU  "
              f"(wall of each run: {', '.join(f'{w:.2f}' for w, _, _ in v)})")
    if "sparky" in med:
        for t in tools:
            if t != "sparky":
                print(f"  sparky is {med[t] / med['sparky']:.2f}x {t} in wall time, "
                      f"{cpu[t] / cpu['sparky']:.2f}x in CPU time")
    if not args.no_check and len(tools) > 1:
        base = tools[0]
        for t in tools[1:]:
            cmd = [args.python, os.path.join(HERE, "compare_prepared.py"), os.path.join(args.work, base),
                   os.path.join(args.work, t)]
            if base == "sparky":
                cmd += ["--vocab-a", os.path.join(args.work, "sparky-model", "categorical-value-counts.csv")]
            print(f"check {base} vs {t}:", flush=True)
            if subprocess.run(cmd).returncode != 0:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
