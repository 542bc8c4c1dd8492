#!/usr/bin/env bash
# Peak memory of train-mode criteo-prepare per distinct categorical value,
# in memory and within a --memory-limit (spilling), for TFRecord and Parquet
# output; with OLD_BIN, an A/B of the in-memory path's time against an older
# criteo-prepare (alternating runs, medians).
#
# Usage: scripts/prepare_memory_per_value.sh [ROWS] [WORKDIR] [LIMIT]
#   ROWS     generated rows (default 4000000; about 240 bytes each)
#   WORKDIR  scratch folder (default: a new folder under ${TMPDIR:-/tmp}); removed at the end
#   LIMIT    --memory-limit of the spilling runs (default 32M)
# Environment:
#   OLD_BIN  an older criteo-prepare binary to time against (optional)
#   ROUNDS   A/B rounds (default 5)
#   FORMATS  output formats to measure (default "tfrecord parquet"; TFRecord
#            parts take about 1.2 KB a row of disk, Parquet about 70 bytes)
#
# Peak RSS is /usr/bin/time's maximum resident set size: it includes the
# pages of the mapped input that are resident at the peak (the readers
# release them behind them) and the program's own pages; bytes per value
# divide it by the vocabulary size recorded in the artifacts' manifest.
# Run it under `nice` on a shared machine; the figures are per run, not
# averaged, except the A/B medians.
set -euo pipefail
rows=${1:-4000000}
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/prepare-memory.XXXXXX")}
limit=${3:-32M}
rounds=${ROUNDS:-5}
formats=${FORMATS:-tfrecord parquet}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml" -p criteo-generate -p criteo-prepare
bin="$here/target/release"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
"$bin/criteo-generate" --rows "$rows" --out "$work/train.tsv" > /dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); $rows rows, $(du -h "$work/train.tsv" | cut -f1)"

# run LABEL BINARY ARGS...: prints "LABEL seconds peak-KB"
run() {
    local label=$1 b=$2
    shift 2
    rm -rf "$work/out" "$work/model"
    /usr/bin/time -f "%e %M" -o "$work/.time" "$b" -i "$work/train.tsv" -o "$work/out" -m train -x "$work/model" \
        --no-sync -q "$@" > /dev/null 2> "$work/.err" || { cat "$work/.err"; exit 1; }
    read -r secs kb < "$work/.time"
    echo "$label $secs $kb"
}
distinct() { grep -A4 '"counts_csv"' "$work/model/manifest.json" | awk -F': ' '/"rows"/ {print $2 + 0}'; }

printf '%-34s %8s %10s %9s %8s\n' run seconds "peak MiB" distinct "B/value"
for format in $formats; do
    for mode in memory spill; do
        extra=()
        [ "$mode" = spill ] && extra=(--memory-limit "$limit")
        read -r label secs kb < <(run "$format-$mode" "$bin/criteo-prepare" --format "$format" "${extra[@]}")
        n=$(distinct)
        spills=$(grep -o '[0-9]* runs spilled' "$work/.err" || true)
        printf '%-34s %8.2f %10.1f %9d %8.1f  %s\n' "$format ${extra[*]:-in memory}" "$secs" \
            "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')" "$n" "$(awk -v k="$kb" -v n="$n" 'BEGIN { print k * 1024 / n }')" "$spills"
        if [ "$mode" = memory ] && [ "$format" = tfrecord ]; then
            # Evaluate mode loads the vocabulary instead of counting.
            for b in "${OLD_BIN:-}" "$bin/criteo-prepare"; do
                [ -n "$b" ] || continue
                rm -rf "$work/eval"
                /usr/bin/time -f "%e %M" -o "$work/.time" "$b" -i "$work/train.tsv" -o "$work/eval" -m evaluate \
                    -x "$work/model" --no-sync -q > /dev/null 2>&1
                read -r esecs ekb < "$work/.time"
                printf '%-34s %8.2f %10.1f %9d %8.1f\n' "  evaluate mode, $([ "$b" = "${OLD_BIN:-}" ] && echo old || echo new)" \
                    "$esecs" "$(awk -v k="$ekb" 'BEGIN { print k / 1024 }')" "$n" "$(awk -v k="$ekb" -v n="$n" 'BEGIN { print k * 1024 / n }')"
            done
            rm -rf "$work/eval"
        fi
        if [ "$mode" = memory ]; then
            cp "$work/model/categorical-value-counts.csv" "$work/ref.csv"
            (cd "$work/out" && cksum part-* > "$work/ref.parts")
        else
            cmp -s "$work/model/categorical-value-counts.csv" "$work/ref.csv" || { echo "artifacts differ"; exit 1; }
            (cd "$work/out" && cksum part-*) | cmp -s - "$work/ref.parts" || { echo "parts differ"; exit 1; }
            echo "  (artifacts and parts identical to the in-memory run's)"
        fi
    done
done

if [ -n "${OLD_BIN:-}" ]; then
    echo "A/B, in-memory path, $rounds alternating rounds (old, new):"
    for format in $formats; do
        : > "$work/old.t"
        : > "$work/new.t"
        for _ in $(seq "$rounds"); do
            run old "$OLD_BIN" --format "$format" | awk '{print $2, $3}' >> "$work/old.t"
            run new "$bin/criteo-prepare" --format "$format" | awk '{print $2, $3}' >> "$work/new.t"
        done
        med() { sort -n -k"$2" "$1" | awk -v c="$2" '{v[NR] = $c} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
        printf '  %-9s old: median %6.2f s, peak %7.1f MiB   new: median %6.2f s, peak %7.1f MiB   (times old: %s; new: %s)\n' \
            "$format" "$(med "$work/old.t" 1)" "$(awk -v k="$(med "$work/old.t" 2)" 'BEGIN { print k / 1024 }')" \
            "$(med "$work/new.t" 1)" "$(awk -v k="$(med "$work/new.t" 2)" 'BEGIN { print k / 1024 }')" \
            "$(cut -d' ' -f1 "$work/old.t" | paste -sd' ')" "$(cut -d' ' -f1 "$work/new.t" | paste -sd' ')"
    done
fi
