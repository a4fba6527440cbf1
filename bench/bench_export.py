"""Benchmark `escli export` against its baselines on one index, in one run, and print ratios.

    .venv/bin/python bench/bench_export.py [--index products_1m] [--rounds 1] [--no-elasticdump]

Contenders (each a separate process; docs/s from wall time, peak RSS from wait4):
  escli-ndjson        escli export INDEX --out FILE (defaults: PIT + search_after, auto slices)
  escli-ndjson-ckpt   the same with --checkpoint (records progress after every page)
  escli-csv           escli export INDEX --format csv --out FILE
  async_scan          elasticsearch-py's helpers.async_scan (scroll, size=1000) writing the same NDJSON lines
  ceiling             a minimal aiohttp + orjson PIT/search_after loop (sort _shard_doc) writing NDJSON
  ceiling-sliced      the same loop reading one slice per shard concurrently (like escli's --slices auto)
  elasticdump         the npm package at its defaults (scroll, --limit 100), and with --limit 10000 (its best
                      batch size); run through bench/elasticdump_shim.js, which only answers its version probe

The index must exist: `DOCS=1000000 INDEX=products_1m scripts/sample_data.sh`. elasticdump is installed under
bench/.node (`npm install --prefix bench/.node elasticdump`); without it that row is skipped. Every contender
writes to a file in a temporary directory, which is removed afterwards. The engine runs on the same machine, so
figures are for this machine only; other load on it shows up as noise, hence --rounds (best round counts).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ELASTICDUMP = ROOT / "bench" / ".node" / "node_modules" / ".bin" / "elasticdump"
ELASTICDUMP_JS = ROOT / "bench" / ".node" / "node_modules" / "elasticdump" / "bin" / "elasticdump"
SHIM = ROOT / "bench" / "elasticdump_shim.js"  # this engine has no `GET /`, which elasticdump asks for its version


# Loopback: no gzip. aiohttp asks for it by default and Elasticsearch then spends CPU compressing every page;
# escli (elasticsearch-py without http_compress) does not ask for it either.
NO_GZIP = ("Accept-Encoding",)


# --- the baselines, run in their own process (`bench_export.py --worker NAME URL INDEX OUT`) ---------------------

async def worker_async_scan(url: str, index: str, out: str) -> int:
    import orjson
    from elasticsearch import AsyncElasticsearch, OrjsonSerializer
    from elasticsearch.helpers import async_scan

    client = AsyncElasticsearch(url, serializer=OrjsonSerializer(), request_timeout=120)
    n = 0
    try:
        with open(out, "wb", buffering=1 << 20) as fh:
            async for hit in async_scan(client, index=index, size=1000, query={"query": {"match_all": {}}}):
                fh.write(orjson.dumps({"_index": hit["_index"], "_id": hit["_id"], "_source": hit["_source"]},
                                      option=orjson.OPT_APPEND_NEWLINE))
                n += 1
    finally:
        await client.close()
    return n


async def worker_ceiling(url: str, index: str, out: str) -> int:
    """The least a client can do: one PIT, search_after on _shard_doc, orjson in and out, nothing else."""
    import aiohttp
    import orjson

    headers = {"content-type": "application/json"}
    n = 0
    async with aiohttp.ClientSession(skip_auto_headers=NO_GZIP) as session:
        async with session.post(f"{url}/{index}/_pit", params={"keep_alive": "5m"}) as resp:
            pit = orjson.loads(await resp.read())["id"]
        try:
            after: list[Any] | None = None
            with open(out, "wb", buffering=1 << 20) as fh:
                while True:
                    body: dict[str, Any] = {"size": 1000, "sort": [{"_shard_doc": "asc"}], "track_total_hits": False,
                                            "pit": {"id": pit, "keep_alive": "5m"}}
                    if after is not None:
                        body["search_after"] = after
                    async with session.post(f"{url}/_search", data=orjson.dumps(body), headers=headers) as resp:
                        hits = orjson.loads(await resp.read())["hits"]["hits"]
                    if not hits:
                        break
                    fh.write(b"".join(orjson.dumps({"_index": h["_index"], "_id": h["_id"], "_source": h["_source"]},
                                                   option=orjson.OPT_APPEND_NEWLINE) for h in hits))
                    after = hits[-1]["sort"]
                    n += len(hits)
        finally:
            async with session.delete(f"{url}/_pit", data=orjson.dumps({"id": pit}), headers=headers):
                pass
    return n


async def worker_ceiling_sliced(url: str, index: str, out: str) -> int:
    """The same minimal loop with one slice per shard read concurrently (what escli's --slices auto does)."""
    import aiohttp
    import orjson

    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(skip_auto_headers=NO_GZIP) as session:
        async with session.post(f"{url}/{index}/_pit", params={"keep_alive": "5m"}) as resp:
            opened = orjson.loads(await resp.read())
        pit, slices = opened["id"], max(1, int(opened.get("_shards", {}).get("total", 1)))
        try:
            with open(out, "wb", buffering=1 << 20) as fh:

                async def read(n: int) -> int:
                    after: list[Any] | None = None
                    count = 0
                    while True:
                        body: dict[str, Any] = {"size": 1000, "sort": [{"_shard_doc": "asc"}],
                                                "track_total_hits": False, "pit": {"id": pit, "keep_alive": "5m"}}
                        if slices > 1:
                            body["slice"] = {"id": n, "max": slices}
                        if after is not None:
                            body["search_after"] = after
                        async with session.post(f"{url}/_search", data=orjson.dumps(body), headers=headers) as resp:
                            hits = orjson.loads(await resp.read())["hits"]["hits"]
                        if not hits:
                            return count
                        fh.write(b"".join(orjson.dumps({"_index": h["_index"], "_id": h["_id"],
                                                        "_source": h["_source"]}, option=orjson.OPT_APPEND_NEWLINE)
                                          for h in hits))
                        after = hits[-1]["sort"]
                        count += len(hits)

                return sum(await asyncio.gather(*(read(n) for n in range(slices))))
        finally:
            async with session.delete(f"{url}/_pit", data=orjson.dumps({"id": pit}), headers=headers):
                pass


WORKERS = {"async_scan": worker_async_scan, "ceiling": worker_ceiling, "ceiling-sliced": worker_ceiling_sliced}


# --- the harness ----------------------------------------------------------------------------------------------------

def engine_process(url: str) -> Any:
    """The local Elasticsearch process serving `url` (for its CPU time), or None."""
    try:
        import psutil

        port = int(url.rsplit(":", 1)[1].split("/")[0])
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return psutil.Process(conn.pid)
    except (ImportError, ValueError, OSError, IndexError):
        return None
    return None


def cpu_seconds(proc: Any) -> float:
    if proc is None:
        return 0.0
    t = proc.cpu_times()
    return float(t.user + t.system)


def run_one(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, int, float]:
    """(seconds, peak RSS in MB, exit code, CPU seconds) of one process (its own rusage, from wait4)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"  ! {' '.join(cmd[:4])}... exited {proc.returncode}: {err.decode(errors='replace')[-500:]}",
              file=sys.stderr)
    return seconds, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def count_csv_rows(path: Path) -> int:
    """Records, not lines: quoted cells hold newlines."""
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", default=os.environ.get("INDEX", "products_1m"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-elasticdump", action="store_true")
    parser.add_argument("--only", help="comma-separated contender names")
    parser.add_argument("--worker", nargs=3, metavar=("NAME", "INDEX", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        name, index, out = args.worker
        n = asyncio.run(WORKERS[name](args.url, index, out))
        print(n, file=sys.stderr)
        return 0

    import httpx

    count = httpx.get(f"{args.url}/{args.index}/_count", timeout=60).json().get("count")
    if not count:
        print(f"index {args.index} is missing or empty: DOCS=1000000 INDEX={args.index} scripts/sample_data.sh",
              file=sys.stderr)
        return 2
    escli = str(BIN / "escli")
    me = [sys.executable, str(Path(__file__).resolve())]
    tmp = Path(tempfile.mkdtemp(prefix="escli-bench-export-"))
    contenders: dict[str, tuple[list[str], Path, str]] = {
        "ceiling": ([*me, "--url", args.url, "--worker", "ceiling", args.index, str(tmp / "ceiling.ndjson")],
                    tmp / "ceiling.ndjson", "ndjson"),
        "ceiling-sliced": ([*me, "--url", args.url, "--worker", "ceiling-sliced", args.index,
                            str(tmp / "ceiling-sliced.ndjson")], tmp / "ceiling-sliced.ndjson", "ndjson"),
        "escli-ndjson": ([escli, "-q", "--url", args.url, "export", args.index, "--out", str(tmp / "e.ndjson")],
                         tmp / "e.ndjson", "ndjson"),
        "escli-ndjson-ckpt": ([escli, "-q", "--url", args.url, "export", args.index, "--out", str(tmp / "c.ndjson"),
                               "--checkpoint", str(tmp / "c.ckpt")], tmp / "c.ndjson", "ndjson"),
        "escli-csv": ([escli, "-q", "--url", args.url, "export", args.index, "--out", str(tmp / "e.csv")],
                      tmp / "e.csv", "csv"),
        "async_scan": ([*me, "--url", args.url, "--worker", "async_scan", args.index, str(tmp / "scan.ndjson")],
                       tmp / "scan.ndjson", "ndjson"),
    }
    if not args.no_elasticdump and ELASTICDUMP.exists():
        for label, extra in (("elasticdump", []), ("elasticdump-limit10000", ["--limit=10000"])):
            out = tmp / f"{label}.json"
            contenders[label] = (["node", "-r", str(SHIM), str(ELASTICDUMP_JS), f"--input={args.url}/{args.index}",
                                  f"--output={out}", "--type=data", "--quiet", *extra], out, "ndjson")
    elif not args.no_elasticdump:
        print(f"elasticdump not installed ({ELASTICDUMP}); npm install --prefix bench/.node elasticdump",
              file=sys.stderr)
    if args.only:
        wanted = set(args.only.split(","))
        contenders = {k: v for k, v in contenders.items() if k in wanted}

    print(f"index {args.index}: {count:,} documents; {os.cpu_count()} CPUs shared with the engine; "
          f"{args.rounds} round(s), best counts", flush=True)
    results: dict[str, dict[str, float]] = {}
    engine = engine_process(args.url)  # CPU time is what other load on the machine cannot blur
    try:
        for rnd in range(args.rounds):
            for name, (cmd, out, fmt) in contenders.items():
                engine_before = cpu_seconds(engine)
                seconds, rss, code, cpu = run_one(cmd)
                engine_cpu = cpu_seconds(engine) - engine_before
                docs = (count_csv_rows(out) if fmt == "csv" else count_lines(out)) if out.exists() else 0
                ok = code == 0 and docs == count
                rate = docs / seconds if ok else 0.0
                print(f"  round {rnd + 1} {name:24s} {seconds:8.2f}s {rate:>10,.0f} docs/s  peak RSS {rss:7.1f} MB"
                      f"  CPU s: client {cpu:6.1f} engine {engine_cpu:6.1f}"
                      f"{'' if ok else f'  (FAILED: exit {code}, {docs} docs)'}", flush=True)
                prev = results.get(name)
                if prev is None or rate > prev["docs_s"]:
                    results[name] = {"docs_s": rate, "rss_mb": rss, "seconds": seconds, "cpu": cpu,
                                     "engine_cpu": engine_cpu}
                out.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\nbest of rounds:")
    for name, r in results.items():
        print(f"  {name:24s} {r['docs_s']:>10,.0f} docs/s  peak RSS {r['rss_mb']:7.1f} MB  "
              f"CPU s: client {r['cpu']:6.1f} engine {r['engine_cpu']:6.1f}")

    def ratio(a: str, b: str) -> str:
        if a not in results or b not in results or not results[b]["docs_s"]:
            return "n/a"
        return f"{results[a]['docs_s'] / results[b]['docs_s']:.2f}x"

    print("\nratios (docs/s):")
    for mine in ("escli-ndjson", "escli-ndjson-ckpt", "escli-csv"):
        if mine in results:
            print(f"  {mine:18s} vs ceiling {ratio(mine, 'ceiling'):>7s} (target >= 0.8x)   "
                  f"vs ceiling-sliced {ratio(mine, 'ceiling-sliced'):>7s}   "
                  f"vs async_scan {ratio(mine, 'async_scan'):>7s} (target >= 1.5x)   "
                  f"vs elasticdump {ratio(mine, 'elasticdump'):>7s} (target >= 20x)   "
                  f"vs elasticdump --limit=10000 {ratio(mine, 'elasticdump-limit10000'):>7s}")
    rss = {k: v["rss_mb"] for k, v in results.items() if k.startswith("escli")}
    if rss:
        print(f"\npeak RSS of escli: max {max(rss.values()):.1f} MB (target < 200 MB); "
              f"median {statistics.median(rss.values()):.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
