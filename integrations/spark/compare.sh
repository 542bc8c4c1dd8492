#!/usr/bin/env bash
# The proof that the Spark driver (prepare.py) writes exactly what a
# single-machine criteo-prepare run writes, and a throughput comparison of
# single-machine criteo-prepare, prepare.py (Spark + the Rust stages) and the
# guide's job in pure PySpark (pure_spark_prepare.py).
#
#   integrations/spark/compare.sh            # 200,000 train + 20,000 eval rows
#
# Environment (all optional):
#   PYTHON      interpreter with pyspark              [python3]
#   WORK        scratch folder (kept)                 [a new temporary folder]
#   ROWS        training rows                         [200000]
#   EVAL_ROWS   evaluation rows                       [20000]
#   PARTS       --num-partitions                      [4]
#   MASTER      Spark master                          [local[2]]
#   RETRY_CHECK 1: also rerun evaluate with a failed first attempt of part 1
#               (retried by Spark; its output must not be used)  [1]
#   PURE        1: also run and time pure_spark_prepare.py       [1]
#   BUILD       0: use target/release as it is (no cargo build)  [1]
#
# Exits 1 on any difference (artifacts, a part, the part list, _prepare.json
# apart from the artifacts folder, or the pure-Spark vocabulary), 2 on a
# failed run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
ROWS="${ROWS:-200000}"
EVAL_ROWS="${EVAL_ROWS:-20000}"
PARTS="${PARTS:-4}"
MASTER="${MASTER:-local[2]}"
RETRY_CHECK="${RETRY_CHECK:-1}"
PURE="${PURE:-1}"
WORK="${WORK:-$(mktemp -d -t sparky-spark-compare.XXXXXX)}"
BIN="$REPO/target/release"
PREPARE="$BIN/criteo-prepare"
GENERATE="$BIN/criteo-generate"

if [[ "${BUILD:-1}" == 1 || ! -x "$PREPARE" || ! -x "$GENERATE" ]]; then
    (cd "$REPO" && cargo build --release -q -p criteo-prepare -p criteo-generate)
fi
"$PYTHON" -c 'import pyspark' 2>/dev/null || { echo "compare.sh: $PYTHON has no pyspark (set PYTHON)" >&2; exit 2; }

mkdir -p "$WORK"
cd "$WORK"
rm -rf single spark spark-retry pure single-parquet
RESULTS="$WORK/timings.tsv"
printf 'run\tmode\trows\tseconds\tjob_seconds\n' >"$RESULTS"
echo "compare.sh: working in $WORK" >&2

now() { date +%s.%N; }
# timed NAME MODE ROWS COMMAND...: runs, records wall seconds (and the job's
# own seconds without Spark's start, from the JSON line a Spark script prints).
timed() {
    local name="$1" mode="$2" rows="$3"
    shift 3
    local t0 t1 log="$WORK/$name-$mode.log"
    t0="$(now)"
    if ! "$@" >"$log.out" 2>"$log"; then
        echo "compare.sh: $name $mode failed:" >&2
        tail -20 "$log" >&2
        exit 2
    fi
    t1="$(now)"
    local job
    job="$("$PYTHON" -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.startswith("{")]
print(json.loads(lines[-1]).get("job_seconds","") if lines else "")' "$log.out")"
    local secs
    secs="$("$PYTHON" -c "print(round($t1 - $t0, 3))")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$mode" "$rows" "$secs" "$job" >>"$RESULTS"
    echo "compare.sh: $name $mode: $rows rows in $secs s${job:+ ($job s after Spark started)}" >&2
}

echo "compare.sh: generating $ROWS + $EVAL_ROWS rows" >&2
[[ -s train.tsv ]] || "$GENERATE" --rows "$ROWS" --out train.tsv >/dev/null
[[ -s eval.tsv ]] || "$GENERATE" --first-row "$ROWS" --rows "$EVAL_ROWS" --out eval.tsv >/dev/null

# 1. Single machine.
timed single train "$ROWS" "$PREPARE" -q -i train.tsv -o single/train -m train -x single/model --num-partitions "$PARTS"
timed single evaluate "$EVAL_ROWS" "$PREPARE" -q -i eval.tsv -o single/eval -m evaluate -x single/model --num-partitions "$PARTS"

# 2. Spark with the Rust stages, same arguments.
SPARK=("$PYTHON" "$HERE/prepare.py" --master "$MASTER" --binary "$PREPARE")
timed spark train "$ROWS" "${SPARK[@]}" -i train.tsv -o spark/train -m train -x spark/model --num-partitions "$PARTS"
timed spark evaluate "$EVAL_ROWS" "${SPARK[@]}" -i eval.tsv -o spark/eval -m evaluate -x spark/model --num-partitions "$PARTS"

# 3. A failed first attempt (output complete, then the task fails) is retried;
# only the accepted attempt's part may end up in OUT.
if [[ "$RETRY_CHECK" == 1 ]]; then
    SPARKY_SPARK_TEST_FAULT="transform:1" timed spark-retry evaluate "$EVAL_ROWS" \
        "$PYTHON" "$HERE/prepare.py" --master "local[2,4]" --binary "$PREPARE" \
        -i eval.tsv -o spark-retry/eval -m evaluate -x spark/model --num-partitions "$PARTS"
    grep -q "injected failure" "$WORK/spark-retry-evaluate.log" \
        || { echo "compare.sh: the injected failure did not happen" >&2; exit 2; }
fi

# 4. Pure PySpark, and criteo-prepare writing Parquet (the same container).
if [[ "$PURE" == 1 ]]; then
    timed pure-spark train "$ROWS" "$PYTHON" "$HERE/pure_spark_prepare.py" --master "$MASTER" \
        -i train.tsv -o pure/train -m train -x pure/model --num-partitions "$PARTS"
    timed pure-spark evaluate "$EVAL_ROWS" "$PYTHON" "$HERE/pure_spark_prepare.py" --master "$MASTER" \
        -i eval.tsv -o pure/eval -m evaluate -x pure/model --num-partitions "$PARTS"
    timed single-parquet train "$ROWS" "$PREPARE" -q -i train.tsv -o single-parquet/train -m train \
        -x single-parquet/model --num-partitions "$PARTS" --format parquet
    timed single-parquet evaluate "$EVAL_ROWS" "$PREPARE" -q -i eval.tsv -o single-parquet/eval -m evaluate \
        -x single-parquet/model --num-partitions "$PARTS" --format parquet
fi

# 5. The checks.
status=0
"$PYTHON" - "$WORK" "$RETRY_CHECK" "$PURE" <<'EOF' || status=$?
import csv, filecmp, glob, json, os, sys

work, retry, pure = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
os.chdir(work)
bad = []

def same(a, b):
    if not filecmp.cmp(a, b, shallow=False):
        bad.append(f"{a} and {b} differ")
        return False
    return True

def parts(d):
    return sorted(f for f in os.listdir(d) if f.startswith("part-"))

checked = 0
for f in ("categorical-value-counts.csv", "manifest.json"):
    checked += same(f"single/model/{f}", f"spark/model/{f}")
pairs = [("single/train", "spark/train"), ("single/eval", "spark/eval")]
if retry:
    pairs.append(("single/eval", "spark-retry/eval"))
for a, b in pairs:
    if parts(a) != parts(b):
        bad.append(f"{a} has parts {parts(a)}, {b} has {parts(b)}")
        continue
    for p in parts(a):
        checked += same(f"{a}/{p}", f"{b}/{p}")
    ja, jb = (json.load(open(f"{d}/_prepare.json")) for d in (a, b))
    for j in (ja, jb):
        j["artifacts"].pop("dir")
    if ja != jb:
        bad.append(f"{a}/_prepare.json and {b}/_prepare.json differ beyond artifacts.dir")
    if not os.path.exists(f"{b}/_SUCCESS") or os.path.exists(f"{b}/_temporary"):
        bad.append(f"{b}: no _SUCCESS, or a _temporary folder left")
    leftovers = sorted(set(os.listdir(b)) - set(os.listdir(a)))
    if leftovers:
        bad.append(f"{b}: extra files {leftovers}")
print(f"compare.sh: {checked} files identical byte for byte "
      f"({len(parts('single/train'))} train parts, {len(parts('single/eval'))} eval parts"
      f"{' twice (plus the retried run)' if retry else ''}, 2 artifacts)", file=sys.stderr)

if pure:
    def rows(path):
        with open(path, newline="") as f:
            r = csv.reader(f)
            next(r)
            return sorted(tuple(x) for x in r)
    rust = rows("single/model/categorical-value-counts.csv")
    spark = rows(glob.glob("pure/model/vocabulary-csv/part-*.csv")[0])
    if rust != spark:
        bad.append(f"the pure-Spark vocabulary ({len(spark)} entries) differs from criteo-prepare's ({len(rust)})")
    else:
        print(f"compare.sh: the pure-Spark vocabulary equals criteo-prepare's ({len(rust)} entries)", file=sys.stderr)

for b in bad:
    print(f"compare.sh: DIFFERENCE: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

# 6. The table.
"$PYTHON" - "$RESULTS" <<'EOF'
import csv, os, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print(f"machine: {os.cpu_count()} cores, load average {open('/proc/loadavg').read().split()[:3]}")
print("| run | mode | rows | seconds | rows/s | seconds after Spark started | rows/s after Spark started |")
print("|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    n, s = int(r["rows"]), float(r["seconds"])
    j = float(r["job_seconds"]) if r["job_seconds"] else None
    print(f"| {r['run']} | {r['mode']} | {n:,} | {s:.2f} | {n / s:,.0f} | "
          f"{f'{j:.2f}' if j else '-'} | {f'{n / j:,.0f}' if j else '-'} |")
EOF
if [[ $status -ne 0 ]]; then
    echo "compare.sh: FAILED: outputs differ" >&2
    exit 1
fi
echo "compare.sh: OK: byte-identical artifacts and parts" >&2
