#!/usr/bin/env bash
# Peak memory against the number of rows, with the distinct values held
# fixed: the same N generated rows, once as they are and once repeated K
# times, through criteo-prepare (train mode), criteo-train (one epoch) and
# criteo-predict. If memory grows only with distinct values and model size,
# each step's peak RSS is about the same at N and at K*N rows.
#
# Usage: scripts/memory_vs_rows.sh [N] [K] [WORKDIR]
#   N        distinct rows (default 1000000)
#   K        repetitions (default 10)
#   WORKDIR  scratch folder (default ./memory-test); needs about 1.5 KB of disk per row, K*N rows
set -euo pipefail
n=${1:-1000000}
k=${2:-10}
work=${3:-memory-test}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    -p criteo-generate -p criteo-prepare -p criteo-train -p criteo-predict
bin="$here/target/release"
mkdir -p "$work"
cd "$work"
"$bin/criteo-generate" --rows "$n" --out once.tsv > /dev/null
for _ in $(seq "$k"); do cat once.tsv; done > repeated.tsv
"$bin/criteo-generate" --rows $((n / 10)) --first-row "$n" --out eval.tsv > /dev/null
peak() { # name command...: prints "name seconds peak-MiB"
    local name=$1
    shift
    /usr/bin/time -f "%e %M" -o .time "$@" > /dev/null 2> ".$name.err" || { cat ".$name.err"; exit 1; }
    read -r secs kb < .time
    printf '%-28s %8.2f s %9.1f MiB peak RSS\n' "$name" "$secs" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
}
for set in once repeated; do
    rows=$(wc -l < "$set.tsv")
    echo "== $set.tsv: $rows rows"
    peak "prepare-train-$set" "$bin/criteo-prepare" -i "$set.tsv" -o "$set/train" -m train -x "$set/model" --overwrite -q
    "$bin/criteo-prepare" -i eval.tsv -o "$set/eval" -m evaluate -x "$set/model" --overwrite -q
    peak "train-1-epoch-$set" "$bin/criteo-train" --job-dir "$set/job" --train-dir "$set/train" \
        --eval-dir "$set/eval" --epochs 1 --overwrite -q
    peak "predict-$set" "$bin/criteo-predict" --model "$set/job" --input "$set/train" --output "$set/pred" \
        --overwrite -q
    rm -rf "$set/train" "$set/pred"
done
