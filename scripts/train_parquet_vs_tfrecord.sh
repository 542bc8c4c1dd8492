#!/usr/bin/env bash
# Training from Parquet parts against TFRecord parts of the same rows (issue 15): criteo-generate
# ROWS training and ROWS/10 evaluation rows into DATA_DIR, prepare them twice (TFRecord, the default,
# and --format parquet, with the same artifacts), then ROUNDS alternating one-epoch runs of each
# (--tune off), wall time and peak RSS per run, and the medians. The model is the same when the
# rows come in the same order (--threads 1 --no-shuffle; checked at the end).
set -euo pipefail
BIN=${1:?usage: train_parquet_vs_tfrecord.sh BIN_DIR DATA_DIR [ROWS] [ROUNDS] [THREADS]}
D=${2:?usage: train_parquet_vs_tfrecord.sh BIN_DIR DATA_DIR [ROWS] [ROUNDS] [THREADS]}
ROWS=${3:-1000000}; ROUNDS=${4:-5}; THREADS=${5:-2}
mkdir -p "$D"
"$BIN/criteo-generate" --rows "$ROWS" --out "$D/train.tsv"
"$BIN/criteo-generate" --rows $((ROWS / 10)) --first-row "$ROWS" --out "$D/eval.tsv"
P="$BIN/criteo-prepare"
$P -i "$D/train.tsv" -o "$D/tf/train" -m train -x "$D/model" --no-sync -q
$P -i "$D/eval.tsv" -o "$D/tf/eval" -m evaluate -x "$D/model" --no-sync -q
$P -i "$D/train.tsv" -o "$D/pq/train" -m evaluate -x "$D/model" --no-sync -q --format parquet
$P -i "$D/eval.tsv" -o "$D/pq/eval" -m evaluate -x "$D/model" --no-sync -q --format parquet
du -sh "$D/tf/train" "$D/pq/train"
train() { # format threads extra-flags...
  local F=$1 T=$2; shift 2
  /usr/bin/time -f "$F %e s %M KB" "$BIN/criteo-train" --job-dir "$D/job-$F" --train-dir "$D/$F/train" \
    --eval-dir "$D/$F/eval" --artifact-dir "$D/model" --tune off --epochs 1 --threads "$T" --overwrite -q "$@" \
    2>&1 >/dev/null | grep -E "^$F "
}
for i in $(seq "$ROUNDS"); do train tf "$THREADS"; train pq "$THREADS"; done | tee "$D/times"
for F in tf pq; do
  grep "^$F " "$D/times" | awk '{print $2}' | sort -n | awk -v f=$F '{a[NR]=$1} END {print f, "median", a[int((NR+1)/2)], "s"}'
done
train tf 1 --no-shuffle; train pq 1 --no-shuffle
newest() { find "$D/job-$1/export/Servo" -mindepth 1 -maxdepth 1 | sort | tail -n 1; }
cmp "$(newest tf)/model.pb" "$(newest pq)/model.pb" && echo "one thread, file order: the same model.pb"
