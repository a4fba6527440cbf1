"""Cache level benchmarks, as ratios against baselines measured in the same run.

    .venv/bin/python bench/bench_cache_levels.py [--runs N] [--url URL] [--index products] [--redis-url URL]

1. a warm shared-cache hit end to end (`escli search ... -o json` with ESCLI_CACHE_URL, the entry in Redis and
   not in this machine's disk level) against a warm disk-cache hit (the same command, the entry on disk)
   (target: at most 1.3x). Each shared run gets its own cache directory, copied before the clock starts from an
   initialised empty one, so it finds the disk level ready and without the entry, as a second machine would.
2. the memory level's lookup inside a batch: `MemoryCache.get` of a present key, in-process, over many
   iterations among 2,000 entries of a real response's size (target: at most 20 µs per lookup). For reference
   also the whole batch hit path: the key from the query (canonical JSON + SHA-256), the lookup and the decode.

Redis: --redis-url, else ESCLI_BENCH_REDIS_URL, else `scripts/redis.sh up` on REDIS_PORT (default 6379), which
is idempotent and left running like `make es-up`. Every command runs as a fresh process; runs of the command and
its baseline alternate, so a busy machine slows both alike; figures are medians of N runs (minimum printed too).
This is a benchmark, not a test: nothing fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ESCLI = str(Path(sys.executable).parent / "escli")


def redis_url(given: str | None) -> str:
    if given or os.environ.get("ESCLI_BENCH_REDIS_URL"):
        return str(given or os.environ["ESCLI_BENCH_REDIS_URL"])
    port = os.environ.get("REDIS_PORT", "6379")
    subprocess.run(["bash", str(ROOT / "scripts" / "redis.sh"), "up"], env={**os.environ, "REDIS_PORT": port},
                   check=True)
    return f"redis://127.0.0.1:{port}/0"


def run_once(cmd: list[str], env: dict[str, str], expect: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    got = json.loads(done.stdout)["_escli"]["cache"]
    if got != expect:
        raise SystemExit(f"expected {expect}, got {got}: {done.stderr.decode()[-500:]}")
    return elapsed


def shared_vs_disk(url: str, index: str, rurl: str, runs: int) -> None:
    import redis

    tmp = Path(tempfile.mkdtemp(prefix="escli-bench-cache-"))
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith("ESCLI_")}
        base.update({"ESCLI_URL": url, "XDG_CONFIG_HOME": str(tmp / "config")})
        cmd = [ESCLI, "search", index, "laptop", "-n", "10", "-o", "json"]
        disk_env = {**base, "ESCLI_CACHE_DIR": str(tmp / "disk")}
        run_once(cmd, disk_env, "miss")
        # an initialised, empty disk level to copy for each shared run
        from escli.cache import DiskCache

        template = tmp / "template"
        d = DiskCache(template)
        d.set("0" * 64, b"{}", 1, "x")
        d.clear()
        d.close()
        client = redis.Redis.from_url(rurl)
        for name in client.scan_iter(match="escli:v1:*"):
            client.unlink(name)
        client.close()
        run_once(cmd, {**base, "ESCLI_CACHE_DIR": str(tmp / "warm"), "ESCLI_CACHE_URL": rurl}, "miss")

        def shared_run(i: int) -> float:
            where = tmp / f"s{i}"
            shutil.copytree(template, where)
            return run_once(cmd, {**base, "ESCLI_CACHE_DIR": str(where), "ESCLI_CACHE_URL": rurl}, "hit-shared")

        for i in range(2):  # warm the page cache and .pyc files for both
            run_once(cmd, disk_env, "hit-disk")
            shared_run(-1 - i)
        disk_t: list[float] = []
        shared_t: list[float] = []
        for i in range(runs):
            disk_t.append(run_once(cmd, disk_env, "hit-disk"))
            shared_t.append(shared_run(i))
        dm, sm = statistics.median(disk_t), statistics.median(shared_t)
        print(f"warm disk hit   (escli search): median {dm * 1000:7.1f} ms  min {min(disk_t) * 1000:7.1f} ms")
        print(f"warm shared hit (escli search): median {sm * 1000:7.1f} ms  min {min(shared_t) * 1000:7.1f} ms")
        print(f"  shared / disk = {sm / dm:.2f}x   (target <= 1.3x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def memory_lookup(url: str, index: str, iterations: int) -> None:
    import orjson

    from escli.cache import MemoryCache
    from escli.core.search import Memo

    response = None
    try:
        import httpx

        response = httpx.post(f"{url}/{index}/_search", json={"query": {"match": {"name": "laptop"}}, "size": 10},
                              timeout=30).json()
    except Exception as exc:  # the engine is not needed for this part: a synthetic answer of similar size
        print(f"(no engine answer: {exc}; using a synthetic response)")
    raw = orjson.dumps(response or {"took": 3, "hits": {"total": {"value": 120, "relation": "eq"}, "hits": [
        {"_index": index, "_id": str(i), "_score": 1.5, "_source": {"name": f"laptop {i}", "price": i * 10,
                                                                   "description": "x" * 300}} for i in range(10)]}})
    mem = MemoryCache()
    memo = Memo(mem, "http://127.0.0.1:9200|anonymous", 300)
    bodies = [{"query": {"multi_match": {"query": f"laptop {i}", "fields": ["name^2", "description"]}}, "size": 10}
              for i in range(2_000)]
    keys = []
    for body in bodies:
        key = memo.key(index, body, {})
        assert key is not None
        memo.put(key, {}, index, raw)
        keys.append(key)
    n = len(keys)
    get = mem.get
    for i in range(10_000):
        get(keys[i % n])
    started = time.perf_counter()
    for i in range(iterations):
        get(keys[i % n])
    per_lookup = (time.perf_counter() - started) / iterations * 1e6
    path_iterations = max(1, iterations // 10)
    started = time.perf_counter()
    for i in range(path_iterations):
        body = bodies[i % n]
        key = memo.key(index, body, {})
        assert key is not None and memo.get(key) is not None
    per_path = (time.perf_counter() - started) / path_iterations * 1e6
    print(f"memory level lookup (MemoryCache.get, {n:,} entries of {len(raw):,} bytes): {per_lookup:.2f} µs "
          f"per lookup over {iterations:,}   (target <= 20 µs)")
    print(f"  for reference, a batch hit's whole path (key from the query + lookup + decode): {per_path:.1f} µs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    ap.add_argument("--index", default="products")
    ap.add_argument("--redis-url", default=None)
    ap.add_argument("--iterations", type=int, default=1_000_000)
    args = ap.parse_args()
    memory_lookup(args.url, args.index, args.iterations)
    shared_vs_disk(args.url, args.index, redis_url(args.redis_url), args.runs)


if __name__ == "__main__":
    main()
