"""Several clusters: does spreading a batch over two clusters cost throughput, and how fast does a failover recover?

    .venv/bin/python bench/bench_clusters.py                         # 10,000 queries, 3 rounds, -j 16
    .venv/bin/python bench/bench_clusters.py --queries 2000 --rounds 1   # a smoke run

Needs two local engines holding the same sample index: ES_URL (default http://127.0.0.1:9200) and ES2_URL
(default http://127.0.0.1:9201; started with scripts/es.sh and loaded with the same DOCS/SEED when it does not
answer). In one run:
  one cluster     `escli --url ES_URL batch FILE -j C --no-cache` (and the same on ES2_URL: "b alone")
  round-robin     `escli -c a -c b --strategy round-robin batch FILE -j C --no-cache` (the same total concurrency)
  same twice      round-robin over `a` and `a2`, two names for ES_URL: the routing's own cost, without the
                  difference between two engines (on one small machine the second engine is often the slower)
  failover        round-robin again, but `a` is reached through tests/support/fault_proxy.py, which is stopped
                  (connections reset, new ones refused) a third of the way through: every query must still be
                  answered exactly once; the throughput after the kill is measured from the result lines' arrival
                  times, and the recovery time is from the kill to the end of the first 1 s window whose rate is
                  within 10% of the one-cluster figure of the cluster that is left (b alone).
When the two engines differ in speed, round-robin over them is bounded by the harmonic mean of their rates, so the
ratio is also printed against that.
Rounds of one-cluster and round-robin alternate; each figure is the median (min-max beside it). The rates are the
ones escli reports itself (start-up excluded). Targets: round-robin >= 0.9x one cluster; failover: no query lost
and throughput back within 10% within 5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from tests.support.fault_proxy import FaultProxy  # noqa: E402

from bench_batch import load_specs, write_query_file  # noqa: E402

ESCLI = str(Path(sys.executable).parent / "escli")
RATE = re.compile(r"\(([\d,.]+)/s\)")


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=3) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def ensure_second_engine(url: str, docs: str, seed: str) -> None:
    if not reachable(url):
        port = url.rsplit(":", 1)[1].rstrip("/")
        subprocess.run(["scripts/es.sh", "up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "ES_PORT": port, "ES_HEAP": os.environ.get("ES2_HEAP", "512m")})
    subprocess.run(["scripts/sample_data.sh"], cwd=ROOT, check=True,
                   env={**os.environ, "ES_URL": url, "DOCS": docs, "SEED": seed})


def write_config(path: Path, urls: dict[str, str]) -> None:
    path.write_text("".join(f'[clusters.{n}]\nurls = ["{u}"]\n' for n, u in urls.items()))


def run_batch(args: list[str], env: dict[str, str], n: int) -> tuple[float, list[float], dict[str, int]]:
    """(escli's own rate, arrival time of each result line, lines per cluster); checks every query once."""
    proc = subprocess.Popen([ESCLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    times: list[float] = []
    seen: set[str] = set()
    by: dict[str, int] = {}
    bad = 0
    for line in proc.stdout:
        times.append(time.monotonic())
        r = orjson.loads(line)
        if r["id"] in seen or not r.get("ok"):
            bad += 1
        seen.add(r["id"])
        by[r.get("cluster", "-")] = by.get(r.get("cluster", "-"), 0) + 1
    err = proc.stderr.read().decode()
    proc.wait()
    if proc.returncode != 0 or bad or len(seen) != n:
        raise SystemExit(f"invalid run ({' '.join(args[:6])}...): exit {proc.returncode}, {len(seen)} of {n} "
                         f"answered, {bad} failed or repeated\n{err[-2000:]}")
    m = RATE.search(err)
    return (float(m.group(1).replace(",", "")) if m else 0.0), times, by


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f}/s ({min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--concurrency", "-j", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    es1 = os.environ.get("ES_URL", "http://127.0.0.1:9200").rstrip("/")
    es2 = os.environ.get("ES2_URL", "http://127.0.0.1:9201").rstrip("/")
    if not reachable(es1):
        raise SystemExit(f"no engine at {es1} (make es-up)")
    ensure_second_engine(es2, os.environ.get("DOCS", "20000"), os.environ.get("SEED", "42"))

    with tempfile.TemporaryDirectory() as tmp:
        qfile = Path(tmp) / "queries.ndjson"
        write_query_file(qfile, load_specs(ROOT / "sample_queries" / "products.ndjson", heavy=False), a.queries)
        cfg = Path(tmp) / "config.toml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCLI_", "ELASTICSEARCH_"))}
        env.update(ESCLI_CONFIG=str(cfg), XDG_CACHE_HOME=str(Path(tmp) / "cache"))
        batch = ["--no-cache", "batch", str(qfile), "-j", str(a.concurrency)]
        write_config(cfg, {"a": es1, "b": es2, "a2": es1})

        one: list[float] = []
        one_b: list[float] = []
        rr: list[float] = []
        twice: list[float] = []
        shares: dict[str, int] = {}
        for _ in range(a.rounds):
            one.append(run_batch(["--url", es1, *batch], env, a.queries)[0])
            one_b.append(run_batch(["--url", es2, *batch], env, a.queries)[0])
            rate, _, shares = run_batch(["-c", "a", "-c", "b", "--strategy", "round-robin", *batch], env, a.queries)
            rr.append(rate)
            twice.append(run_batch(["-c", "a", "-c", "a2", "--strategy", "round-robin", *batch], env, a.queries)[0])
        base, base_b = statistics.median(one), statistics.median(one_b)
        harmonic = 2 / (1 / base + 1 / base_b)
        print(f"one cluster       {spread(one)}")
        print(f"b alone           {spread(one_b)}")
        print(f"round-robin (2)   {spread(rr)}  shares {shares}  ratio {statistics.median(rr) / base:.2f}x "
              f"(target >= 0.9x); {statistics.median(rr) / harmonic:.2f}x the harmonic mean of a and b alone")
        print(f"same twice        {spread(twice)}  ratio {statistics.median(twice) / base:.2f}x (routing cost alone)")

        # Failover: `a` through the fault proxy, stopped a third of the way through the batch.
        with FaultProxy(es1, lifetime=3600, max_connections=4 * a.concurrency) as proxy:
            write_config(cfg, {"a": proxy.url, "b": es2})
            killed: list[float] = []

            def kill() -> None:
                while proxy.forwarded < a.queries // 6:  # about a third of the queries: half of them go to a
                    time.sleep(0.001)
                killed.append(time.monotonic())
                proxy.stop()

            killer = threading.Thread(target=kill, daemon=True)
            killer.start()
            _, times, by = run_batch(["-c", "a", "-c", "b", "--strategy", "round-robin", *batch], env, a.queries)
            killer.join(30)
        if not killed:
            raise SystemExit("failover: the proxy was never stopped (too few queries?)")
        t0 = killed[0]
        after = [t - t0 for t in times if t >= t0]
        recovered = None
        for start in [x / 2 for x in range(0, 20)]:  # 1 s windows starting every 0.5 s after the kill
            n = sum(1 for t in after if start <= t < start + 1.0)
            if start + 1.0 <= (after[-1] if after else 0) and n >= 0.9 * base_b:
                recovered = start + 1.0
                break
        tail = [t for t in after if t >= (recovered or 0)]
        tail_rate = len(tail) / (tail[-1] - tail[0]) if len(tail) > 1 and tail[-1] > tail[0] else 0.0
        back = f"{recovered:.1f} s" if recovered is not None else "never (in 10 s)"
        print(f"failover          every query answered once ({a.queries:,}: {by}); "
              f"{len(after):,} answered after the kill; back within 10% of b alone after "
              f"{back} (target <= 5 s); "
              f"rate after that {tail_rate:,.0f}/s = {tail_rate / base_b:.2f}x b alone")


if __name__ == "__main__":
    main()
