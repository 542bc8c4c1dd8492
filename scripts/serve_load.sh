#!/usr/bin/env bash
# Loads a running criteo-serve with wrk (Debian package `wrk`), one run per
# body, and prints requests/s, rows/s, latency percentiles and the server's CPU
# time per row.
#
# Usage: scripts/serve_load.sh BODIES_DIR URL [CONNECTIONS] [SECONDS] [WRK_THREADS]
#   BODIES_DIR  from scripts/serve_bodies.py ({b64,object,tsv}_{1,512}.json)
#   URL         e.g. http://127.0.0.1:8501/v1/models/sparky:predict
#   SERVER_PID  (environment, optional) the server's pid, for CPU time per row
set -euo pipefail
bodies=${1:?usage: serve_load.sh BODIES_DIR URL [CONNECTIONS] [SECONDS] [WRK_THREADS]}
url=${2:?URL}
conns=${3:-16}
secs=${4:-5}
threads=${5:-1}
lua=$(mktemp --suffix .lua)
trap 'rm -f "$lua"' EXIT
cat > "$lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT reqs %d errors %d secs %.3f p50 %.3f p99 %.3f p999 %.3f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3))
end
LUA
cpu() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
tick=$(getconf CLK_TCK)
printf '%-12s %12s %12s %9s %9s %9s %7s %12s\n' body "req/s" "rows/s" "p50 ms" "p99 ms" "p99.9 ms" errors "µs CPU/row"
for kind in b64 object tsv; do
  for n in 1 512; do
    body="$bodies/${kind}_${n}.json"
    [[ -f $body ]] || continue
    before=$([[ -n ${SERVER_PID:-} ]] && cpu || echo 0)
    line=$(BODY="$body" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$lua" "$url" | grep '^RESULT')
    after=$([[ -n ${SERVER_PID:-} ]] && cpu || echo 0)
    read -r _ _ reqs _ errs _ s _ p50 _ p99 _ p999 <<<"$line"
    awk -v k="${kind}_$n" -v r="$reqs" -v e="$errs" -v s="$s" -v n="$n" -v a="$p50" -v b="$p99" -v c="$p999" \
        -v cpu=$((after - before)) -v tick="$tick" -v pid="${SERVER_PID:-}" 'BEGIN {
      rows = r * n
      per = (pid != "" && rows > 0) ? sprintf("%.2f", cpu / tick / rows * 1e6) : "-"
      printf "%-12s %12.0f %12.0f %9.3f %9.3f %9.3f %7d %12s\n", k, r / s, rows / s, a, b, c, e, per }'
  done
done
