#!/usr/bin/env bash
# The whole pipeline at scale, with peak memory per step: generate N training
# rows (default 20M) plus N/20 evaluation and N/20 test rows, criteo-prepare in
# the three modes, criteo-train for one epoch, criteo-predict. Prints a table
# of wall time, rows/s and peak RSS per step; run it at two sizes to see that
# memory does not grow with the number of rows.
#
# Usage: scripts/scale_test.sh [ROWS] [WORKDIR]
#   ROWS     training rows (default 20000000)
#   WORKDIR  scratch folder (default ./scale-test); needs about 1.6 KB of disk per row
set -euo pipefail
rows=${1:-20000000}
work=${2:-scale-test}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml" \
    -p criteo-generate -p criteo-prepare -p criteo-train -p criteo-predict
bin="$here/target/release"
mkdir -p "$work"
cd "$work"
eval_rows=$((rows / 20))
report=()
measure() { # name rows command...
    local name=$1 n=$2
    shift 2
    /usr/bin/time -f "%e %M" -o .time "$@" > ".$name.out" 2> ".$name.err" || { cat ".$name.err"; exit 1; }
    read -r secs kb < .time
    local rate
    rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    report+=("$(printf '%-22s %12s rows %9.2f s %12s rows/s %9.1f MiB peak RSS' "$name" "$n" "$secs" "$rate" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')")")
    echo "${report[-1]}"
}
measure generate-train "$rows" "$bin/criteo-generate" --rows "$rows" --out train.tsv
measure generate-eval "$eval_rows" "$bin/criteo-generate" --rows "$eval_rows" --first-row "$rows" --out eval.tsv
measure generate-test "$eval_rows" "$bin/criteo-generate" --rows "$eval_rows" --first-row $((rows + eval_rows)) --unlabelled --out test.tsv
measure prepare-train "$rows" "$bin/criteo-prepare" -i train.tsv -o prepared/train -m train -x model --overwrite -q
measure prepare-evaluate "$eval_rows" "$bin/criteo-prepare" -i eval.tsv -o prepared/eval -m evaluate -x model --overwrite -q
measure prepare-predict "$eval_rows" "$bin/criteo-prepare" -i test.tsv -o prepared/test -m predict -x model --overwrite -q
measure train-1-epoch "$rows" "$bin/criteo-train" --job-dir job --train-dir prepared/train --eval-dir prepared/eval --epochs 1 --overwrite -q
measure predict "$eval_rows" "$bin/criteo-predict" --model job --input prepared/test --output predictions --overwrite -q
echo
echo "scale test: $rows training rows, in $work"
printf '%s\n' "${report[@]}"
echo "metrics: $(cat job/metrics.json | tr -d '\n ')"
du -sh train.tsv prepared/train model job | tr '\n' ' '
echo
