#!/usr/bin/env bash
# Smoke test of a built beans-slurm: start the dummy launcher, check it against the contract,
# run the demo suite against it, re-score one task, and stop the launcher. Takes seconds.
# Usage: scripts/smoke.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)/smoke}
bin=$(mktemp -d)/beans-slurm
go build -o "$bin" ./cmd/beans-slurm

url_file=$(mktemp)
"$bin" launcher dummy --port 0 --mode tone --log-level warn >"$url_file" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$url_file" ] && break; sleep 0.1; done
url=$(head -n1 "$url_file")
[ -n "$url" ] || { echo "smoke: the dummy launcher did not start" >&2; exit 1; }

"$bin" check-launcher "$url"
"$bin" run --predict-url "$url" --suite demo --output-dir "$out"
"$bin" score "$out/demo_species/predictions.jsonl" -o "$out/rescored/demo_species"
echo "smoke: ok, results in $out"
