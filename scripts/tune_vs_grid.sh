#!/usr/bin/env bash
# Issue 14's measurement of criteo-train's automatic hyperparameters:
# eval log loss of the default run (the search chooses the learning rate, L1
# and L2), of --tune off (the fixed defaults) and of every point of a grid,
# and the wall time of default against --tune off.
#
# Usage: scripts/tune_vs_grid.sh CRITEO_TRAIN TRAIN_DIR EVAL_DIR WORK [EPOCHS] [TIMED_RUNS]
#   CRITEO_TRAIN  the criteo-train binary (a release build)
#   TRAIN_DIR     prepared training data (criteo-prepare --mode train)
#   EVAL_DIR      prepared evaluation data (--mode evaluate, same artifacts)
#   WORK          a folder for the job folders (created; runs use --overwrite)
#   EPOCHS        passes over the training data [1]
#   TIMED_RUNS    timed runs of each of default and --tune off, alternated [5]
#
# Accuracy runs use --threads 1 --seed 1 (reproducible to the bit); the grid
# is learning rate {0.05,0.1,0.2,0.4} x L1 {0,0.3,1,3} x L2 {0,1,10}, the
# points the search itself considers (scripts/anchors/grid.py runs it). Timed
# runs use every core, as a user would, and print the median wall time.
set -euo pipefail
train=${1:?usage: tune_vs_grid.sh CRITEO_TRAIN TRAIN_DIR EVAL_DIR WORK [EPOCHS] [TIMED_RUNS]}
train_dir=${2:?}
eval_dir=${3:?}
work=${4:?}
epochs=${5:-1}
runs=${6:-5}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"

run() { # job-name, extra flags...: prints the eval log loss
    local job="$work/$1"
    shift
    "$train" --job-dir "$job" --train-dir "$train_dir" --eval-dir "$eval_dir" --epochs "$epochs" \
        --overwrite --no-export --quiet "$@" > /dev/null
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); o=m["optimizer"]; print("%.5f (lr %g, l1 %g, l2 %g)" % (m["log_loss"], o["learning_rate"], o["l1"], o["l2"]))' "$job/metrics.json"
}

echo "== accuracy, --threads 1 --seed 1, $epochs epoch(s)"
echo "default (searched): $(run acc-default --threads 1 --seed 1)"
echo "--tune off:         $(run acc-off --tune off --threads 1 --seed 1)"
python3 "$here/anchors/grid.py" --train "$train" --train-dir "$train_dir" --eval-dir "$eval_dir" \
    --work "$work/grid" --epochs "$epochs" --lr 0.05,0.1,0.2,0.4 --l1 0,0.3,1,3 --l2 0,1,10 --top 5 \
    -- --threads 1 --seed 1 | sed -n '/^rank/,$p'

echo "== wall time, all cores, $runs runs each, alternated"
python3 - "$train" "$train_dir" "$eval_dir" "$work" "$epochs" "$runs" <<'EOF'
import statistics, subprocess, sys, time
train, tdir, edir, work, epochs, runs = sys.argv[1:7]
times = {"default": [], "--tune off": []}
for _ in range(int(runs)):
    for name, extra in (("default", []), ("--tune off", ["--tune", "off"])):
        cmd = [train, "--job-dir", f"{work}/timed", "--train-dir", tdir, "--eval-dir", edir,
               "--epochs", epochs, "--overwrite", "--no-export", "--quiet"] + extra
        t = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times[name].append(time.monotonic() - t)
d, o = statistics.median(times["default"]), statistics.median(times["--tune off"])
for name, v in times.items():
    print(f"{name:>10}: median {statistics.median(v):.2f} s  ({', '.join(f'{x:.2f}' for x in v)})")
print(f"default / --tune off: {d / o:.2f}x")
EOF
