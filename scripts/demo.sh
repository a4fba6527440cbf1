#!/usr/bin/env bash
# The main job on the local engine: search, batch, export, health and profile on the sample `products` index.
# Tables are asked for explicitly so the demo reads the same in a terminal and in a log.
set -uo pipefail
cd "$(dirname "$0")/.."
ESCLI=.venv/bin/escli
export ESCLI_URL=${ES_URL:-http://127.0.0.1:9200}
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$PWD/.cache/demo}
export COLUMNS=${COLUMNS:-120}
out=.cache/demo
mkdir -p "$out"
failed=0
step() {
  printf '\n$ %s\n' "$*"
  bash -c "$*"
  local rc=$?
  if [ $rc != 0 ]; then echo "(exit $rc)"; failed=1; fi
}
step "$ESCLI health --format table"
step "$ESCLI health --format nagios"
step "$ESCLI search products 'wireless headphones' -f name^2 -f description --source name,brand,price --size 5 -o table"
step "$ESCLI search products 'wireless headphones' -f name^2 -f description --source name,brand,price --size 5 -o table"
step "$ESCLI search products --query-string 'category:laptops AND specs.ram_gb:>=32' --sort price:asc --size 3 --source name,price,specs -o table"
# Two machines sharing one cache: a search on the first fills the shared Redis level, the second (its own empty
# disk cache) is answered from it (hit-shared), then from its own disk.
export ESCLI_CACHE_URL=${ESCLI_CACHE_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}
rm -rf "$out/machine-a" "$out/machine-b"
step "$ESCLI cache clear --index products -q; XDG_CACHE_HOME=$out/machine-a $ESCLI search products kettle --size 3 --source name,price -o table"
step "XDG_CACHE_HOME=$out/machine-b $ESCLI search products kettle --size 3 --source name,price -o table"
step "XDG_CACHE_HOME=$out/machine-b $ESCLI search products kettle --size 3 --source name,price -o table"
unset ESCLI_CACHE_URL
step "$ESCLI batch sample_queries/products.ndjson -j 8 > $out/batch.ndjson && head -c 300 $out/batch.ndjson && echo"
step "$ESCLI export products --query laptop --format csv --fields id,name,price,specs.ram_gb --out $out/laptops.csv"
step "head -n 4 $out/laptops.csv"
step "$ESCLI export products --format ndjson --out $out/products.ndjson.gz"
# Two clusters: a second local engine (ES2_PORT, 9201) with its own sample products (another seed), and one
# search fanned out to both; each hit names the cluster it came from, _escli.clusters each one's took and total.
ES2_PORT=${ES2_PORT:-9201}
ES_PORT=$ES2_PORT ES_HEAP=${ES2_HEAP:-512m} scripts/es.sh up >/dev/null 2>&1 \
  && ES_URL=http://127.0.0.1:$ES2_PORT DOCS=5000 SEED=7 scripts/sample_data.sh 2>/dev/null \
  || { echo "demo: the second engine on $ES2_PORT did not start"; failed=1; }
printf '[clusters.a]\nurls = ["%s"]\n[clusters.b]\nurls = ["http://127.0.0.1:%s"]\n' "$ESCLI_URL" "$ES2_PORT" \
  > "$out/clusters.toml"
export ESCLI_CONFIG=$PWD/$out/clusters.toml
step "$ESCLI -c a -c b --strategy fan-out search products 'wireless headphones' --size 6 --source name,price -o table"
step "$ESCLI -c a -c b --strategy fan-out --no-cache search products 'wireless headphones' --size 2 -o json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[\"_escli\"][\"clusters\"])'"
unset ESCLI_CONFIG
step "$ESCLI profile products 'wireless headphones' --iterations 1000 --warmup 20 --concurrency 4 --format table"
step "$ESCLI health --format nagios --warn 'heap>85' --crit 'disk>95' --crit 'nodes<1'"
# The last step: a mixed workload, closed loop as the baseline, then an open loop compared with it, drawn as a page.
# Like with like: the open loop runs at half the throughput the baseline measured on this machine (two engines and
# escli may share two cores), so sends stay on schedule and the deltas show latency, not an overloaded box.
step "$ESCLI profile --queries sample_queries/profile.ndjson --duration 5s --concurrency 4 -q --save $out/baseline.json --format json > /dev/null"
rate=$(.venv/bin/python -c 'import json, sys; print(max(1, int(json.load(open(sys.argv[1]))["overall"]["throughput"] / 2)))' "$out/baseline.json" 2>/dev/null || echo 20)
step "$ESCLI profile --queries sample_queries/profile.ndjson --duration 5s --rate $rate --compare $out/baseline.json --report $out/profile-report.html --plot --fail-if 'p99>2s' --format table"
echo "profile report: $PWD/$out/profile-report.html"
exit $failed
