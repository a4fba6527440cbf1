#!/usr/bin/env bash
# Load the deterministic sample `products` index: DOCS=N (default 20000), SEED, INDEX, ES_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${DOCS:-20000}
SEED=${SEED:-42}
INDEX=${INDEX:-products}
ES_URL=${ES_URL:-http://127.0.0.1:9200}
BIN=${BIN:-.venv/bin}
mkdir -p .cache
mapping=.cache/$INDEX.mapping.json
"$BIN/python" -m escli.sample --docs "$DOCS" --seed "$SEED" --mapping >"$mapping"
# Already loaded with the same count and seed? Then there is nothing to do.
meta=$(curl -s "$ES_URL/$INDEX/_mapping" | "$BIN/python" -c '
import json, sys
try:
    m = json.load(sys.stdin)
    print(next(iter(m.values()))["mappings"].get("_meta", {}).get("escli_sample", ""))
except Exception:
    print("")' 2>/dev/null || true)
count=$(curl -s "$ES_URL/$INDEX/_count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
if [ "$meta" = "$DOCS:$SEED" ] && [ "${count:-0}" = "$DOCS" ]; then
  echo "sample-data: $INDEX already holds $DOCS documents (seed $SEED)" >&2
  exit 0
fi
curl -s -o /dev/null -X DELETE "$ES_URL/$INDEX?ignore_unavailable=true"
"$BIN/python" -m escli.sample --docs "$DOCS" --seed "$SEED" \
  | "$BIN/escli" --url "$ES_URL" import "$INDEX" - --mapping "$mapping" --id-field id --chunk-size 2000 -j 2
