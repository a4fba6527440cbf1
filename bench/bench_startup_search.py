"""Start-up and search benchmarks for escli, as ratios against baselines measured in the same run.

    .venv/bin/python bench/bench_startup_search.py [--runs N] [--url URL] [--index products]

1. `escli --help` against `python -c "import typer"`                      (target: at most 2x)
2. a cache hit end to end (`escli search ... -o json`) against `escli --help`  (target: at most 1.2x)
3. an uncached search (`escli --no-cache search ...`, the light transport) against the same search from a plain
   elasticsearch-py script (target: at most 0.5x)
4. `escli health -o json` against a plain elasticsearch-py script doing `cluster.health()` (target: at most 0.5x)
5. for reference, the floor: one POST with urllib3 + orjson from a fresh interpreter (no target)

Every command runs as a fresh process, as a user would run it (from bytecode, as an installed package does), with
its output discarded; runs of the command and of its baseline alternate, so a busy machine slows both alike. Each
figure is the median of N runs (the minimum is printed too); the ratio is of the medians. This is a benchmark, not
a test: nothing fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ESCLI = str(BIN / "escli")
PY = sys.executable

PLAIN_SCRIPT = """
import json, sys
from elasticsearch import Elasticsearch
es = Elasticsearch(sys.argv[1])
resp = es.search(index=sys.argv[2], query={"multi_match": {"query": "laptop", "fields": ["name^2", "description"]}},
                 size=10)
sys.stdout.write(json.dumps(resp.body) + "\\n")
es.close()
"""

PLAIN_HEALTH = """
import json, sys
from elasticsearch import Elasticsearch
es = Elasticsearch(sys.argv[1])
sys.stdout.write(json.dumps(es.cluster.health().body) + "\\n")
es.close()
"""

URLLIB3_SCRIPT = """
import sys, orjson, urllib3
body = orjson.dumps({"query": {"multi_match": {"query": "laptop", "fields": ["name^2", "description"]}},
                     "size": 10})
r = urllib3.PoolManager().request("POST", sys.argv[1] + "/" + sys.argv[2] + "/_search", body=body,
                                  headers={"content-type": "application/json"})
sys.stdout.write(orjson.dumps(orjson.loads(r.data)).decode() + "\\n")
"""


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def compare(name: str, cmd: list[str], base_name: str, base: list[str], env: dict[str, str], runs: int,
            target: str) -> float:
    for _ in range(2):  # warm the OS page cache and .pyc files for both
        run_once(cmd, env)
        run_once(base, env)
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        a.append(run_once(cmd, env))
        b.append(run_once(base, env))
    ratio = statistics.median(a) / statistics.median(b)
    print(f"{name:<34} median {statistics.median(a) * 1000:7.1f} ms  min {min(a) * 1000:7.1f} ms")
    print(f"{base_name:<34} median {statistics.median(b) * 1000:7.1f} ms  min {min(b) * 1000:7.1f} ms")
    print(f"  ratio {ratio:.2f}x   (target: {target})\n")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", default="products")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="escli-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCLI_", "ELASTICSEARCH_"))}
        # An installed escli runs from bytecode (pip compiles on install), like typer and elasticsearch in
        # site-packages; with PYTHONDONTWRITEBYTECODE set (as in CI sandboxes) the editable checkout would be
        # compiled from source on every run instead. The warm-up runs write src/escli/**/__pycache__ (ignored by git).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(XDG_CONFIG_HOME=f"{tmp}/config", XDG_CACHE_HOME=f"{tmp}/cache", ESCLI_URL=args.url)
        search = [ESCLI, "search", args.index, "laptop", "-f", "name^2", "-f", "description", "-o", "json"]
        run_once(search, env)  # fill the cache entry the hit benchmark reads
        print(f"escli start-up and search, {args.runs} runs each, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f}\n")
        r1 = compare("escli --help", [ESCLI, "--help"], 'python -c "import typer"', [PY, "-c", "import typer"],
                     env, args.runs, "<= 2x")
        r2 = compare("escli search (cache hit)", search, "escli --help", [ESCLI, "--help"], env, args.runs,
                     "<= 1.2x")
        r3 = compare("escli --no-cache search", [ESCLI, "--no-cache", *search[1:]], "plain elasticsearch-py",
                     [PY, "-c", PLAIN_SCRIPT, args.url, args.index], env, args.runs, "<= 0.5x")
        r4 = compare("escli health -o json", [ESCLI, "health", "-o", "json"], "plain elasticsearch-py health",
                     [PY, "-c", PLAIN_HEALTH, args.url], env, args.runs, "<= 0.5x")
        r5 = compare("escli --no-cache search", [ESCLI, "--no-cache", *search[1:]], "urllib3 + orjson, one POST",
                     [PY, "-c", URLLIB3_SCRIPT, args.url, args.index], env, args.runs, "none: the floor")
    print(f"summary: help/typer {r1:.2f}x, hit/help {r2:.2f}x, uncached/elasticsearch-py {r3:.2f}x, "
          f"health/elasticsearch-py {r4:.2f}x, uncached/urllib3 {r5:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
