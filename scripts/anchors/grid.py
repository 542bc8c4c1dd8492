#!/usr/bin/env python3
"""Grid search of sparky's criteo-train over learning rate x L1 x L2: the
reference that issue 14's automatic hyperparameters are measured against.

Usage: grid.py --train PATH/TO/criteo-train --train-dir DIR --eval-dir DIR --work DIR
               [--epochs 1] [--lr 0.01,0.02,0.05,0.1,0.2,0.4] [--l1 0,0.1,1,5] [--l2 0,1,10,40]
               [--top 15] [--csv OUT.csv] [-- EXTRA criteo-train FLAGS...]

Runs criteo-train once with no hyperparameter flag (sparky's defaults: what
a user gets) and once per grid point, each with its own --job-dir under WORK
(--overwrite, --no-export, --quiet, --epochs N, and any EXTRA flags, for
example --threads 1 --seed 1), reads each run's metrics.json (eval log_loss,
auc) and prints the points sorted by eval log loss, the default run's place
among them, and the wall time of each run. The default grid has
6 x 4 x 4 = 96 points:
  learning rate {0.01, 0.02, 0.05, 0.1, 0.2, 0.4}
  L1            {0, 0.1, 1, 5}
  L2            {0, 1, 10, 40}
It never reads the TSV: TRAIN_DIR and EVAL_DIR are criteo-prepare outputs
(train and evaluate modes, same artifacts). Needs only the standard library.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time


def floats(s):
    return [float(x) for x in s.split(",") if x]


def run(args, name, flags):
    job = os.path.join(args.work, name)
    cmd = [args.train, "--job-dir", job, "--train-dir", args.train_dir, "--eval-dir", args.eval_dir,
           "--epochs", str(args.epochs), "--overwrite", "--no-export", "--quiet"] + flags + args.extra
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    with open(os.path.join(job, "metrics.json")) as f:
        m = json.load(f)
    if not args.keep:
        shutil.rmtree(job, ignore_errors=True)
    return {"log_loss": m["log_loss"], "auc": m["auc"], "wall_s": wall}


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--train", required=True, help="criteo-train binary")
    a.add_argument("--train-dir", required=True)
    a.add_argument("--eval-dir", required=True)
    a.add_argument("--work", required=True, help="folder for the runs' job folders")
    a.add_argument("--epochs", type=int, default=1)
    a.add_argument("--lr", type=floats, default=floats("0.01,0.02,0.05,0.1,0.2,0.4"))
    a.add_argument("--l1", type=floats, default=floats("0,0.1,1,5"))
    a.add_argument("--l2", type=floats, default=floats("0,1,10,40"))
    a.add_argument("--top", type=int, default=15, help="rows of the sorted table to print (0: all)")
    a.add_argument("--csv", help="also write every point to this CSV")
    a.add_argument("--keep", action="store_true", help="keep the job folders")
    a.add_argument("extra", nargs="*", help="more criteo-train flags, after --")
    args = a.parse_args()
    os.makedirs(args.work, exist_ok=True)

    points = [(lr, l1, l2) for lr in args.lr for l1 in args.l1 for l2 in args.l2]
    print(f"grid: {len(args.lr)} learning rates x {len(args.l1)} L1 x {len(args.l2)} L2 = {len(points)} points, "
          f"{args.epochs} epoch(s); extra flags: {' '.join(args.extra) or '-'}", flush=True)
    t0 = time.monotonic()
    default = run(args, "default", [])
    print(f"defaults (no hyperparameter flags): log_loss {default['log_loss']:.5f} auc {default['auc']:.5f} "
          f"({default['wall_s']:.1f} s)", flush=True)
    rows = []
    for i, (lr, l1, l2) in enumerate(points, 1):
        r = run(args, f"lr{lr}-l1{l1}-l2{l2}", ["--learning-rate", str(lr), "--l1", str(l1), "--l2", str(l2)])
        rows.append({"learning_rate": lr, "l1": l1, "l2": l2, **r})
        if i % 12 == 0:
            print(f"  {i}/{len(points)} points ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: r["log_loss"])

    best = rows[0]
    shown = rows if args.top == 0 else rows[:args.top]
    print(f"\n{'rank':>4} {'lr':>6} {'l1':>5} {'l2':>5} {'log_loss':>9} {'auc':>8} {'wall s':>7}")
    for i, r in enumerate(shown, 1):
        print(f"{i:4d} {r['learning_rate']:6g} {r['l1']:5g} {r['l2']:5g} {r['log_loss']:9.5f} {r['auc']:8.5f} "
              f"{r['wall_s']:7.1f}")
    place = sum(r["log_loss"] < default["log_loss"] for r in rows) + 1
    print(f"\nbest point: --learning-rate {best['learning_rate']:g} --l1 {best['l1']:g} --l2 {best['l2']:g}: "
          f"log_loss {best['log_loss']:.5f} auc {best['auc']:.5f}")
    print(f"defaults:   log_loss {default['log_loss']:.5f} auc {default['auc']:.5f} "
          f"(+{default['log_loss'] - best['log_loss']:.5f} over the best; would rank {place} of {len(rows) + 1})")
    print(f"worst point: log_loss {rows[-1]['log_loss']:.5f}; total {time.monotonic() - t0:.0f} s")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["learning_rate", "l1", "l2", "log_loss", "auc", "wall_s"])
            w.writeheader()
            w.writerow({"learning_rate": "default", "l1": "default", "l2": "default", **default})
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
