#!/usr/bin/env bash
# The main job on the local engine: search, batch, export, health and profile on the sample `products` index.
set -uo pipefail
cd "$(dirname "$0")/.."
ESCLI=.venv/bin/escli
export ESCLI_URL=${ES_URL:-http://127.0.0.1:9200}
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$PWD/.cache/demo}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; local rc=$?; [ $rc = 0 ] || echo "(exit $rc)"; }
out=.cache/demo
mkdir -p "$out"
step $ESCLI health
step $ESCLI search products "wireless headphones" -f name^2 -f description --size 5 -o table
step $ESCLI search products "wireless headphones" -f name^2 -f description --size 5 -o table
step $ESCLI search products --query-string 'category:laptops AND specs.ram_gb:>=32' --sort price:asc --size 3 -o json
step $ESCLI batch sample_queries/products.ndjson -j 8 -o ndjson --quiet
step $ESCLI batch sample_queries/products.ndjson -j 8 --output ndjson | head -n 3
step $ESCLI export products --query laptop --format csv --fields id,name,price,specs.ram_gb --out "$out/laptops.csv"
step head -n 5 "$out/laptops.csv"
step $ESCLI export products --format ndjson --out "$out/products.ndjson.gz"
step $ESCLI profile products "wireless headphones" --iterations 300 --warmup 20 --concurrency 4
echo
echo "demo done: outputs in $out/"
