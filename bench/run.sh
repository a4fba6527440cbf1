#!/usr/bin/env bash
# Run every benchmark in bench/ against the local engine. Each prints ratios against a baseline measured in the
# same run on the same data; none of them is a test and none has a pass/fail threshold.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export ES_URL=${ES_URL:-http://127.0.0.1:9200}
DOCS=${DOCS:-20000} scripts/sample_data.sh
status=0
for b in bench/bench_*.py; do
  [ -e "$b" ] || continue
  echo "== $b"
  $BIN/python "$b" || { echo "!! $b failed" >&2; status=1; }
done
exit $status
