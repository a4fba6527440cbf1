"""Queries per second of `escli batch` against two baselines, and its peak RSS on a 1,000,000-line query file.

    .venv/bin/python bench/bench_batch.py                    # everything (the RSS part takes a few minutes)
    .venv/bin/python bench/bench_batch.py --queries 5000 --skip-rss

All contenders run the same query file against the same index, in one run, so the ratios compare like with like:
  (a) sequential   a loop awaiting one AsyncElasticsearch.search at a time (the naive script)
  (b) aiohttp      a minimal aiohttp + orjson client with the same concurrency, no retries, no bookkeeping.
                   It does not ask for gzip (aiohttp's default Accept-Encoding would make the engine compress
                   every answer for it and not for escli)
  (c) streams      the strongest reference: a minimal keep-alive client on asyncio streams (one connection per
                   worker, requests encoded once, Content-Length and chunked answers, orjson, one NDJSON line per
                   query to /dev/null) on uvloop, as escli runs: the ceiling for Python on this machine
  escli batch      the real command in a subprocess (startup included in the wall-clock figure; the rate it
                   reports itself excludes the ~0.5 s of start-up, and that is the one the ratios use)
Rounds of (b) and escli alternate (--rounds, default 3); each figure is the median, the spread (min-max) is
printed beside it.
Targets: escli >= 5x (a), >= 0.9x (b) and >= 0.9x (c); peak RSS < 150 MB for 1,000,000 lines.
`--short-form` writes the file as short-form lines (`"q"` and `"fields"`), which escli builds into bodies.
The query file is sample_queries/products.ndjson without its `heavy-*` queries, repeated with unique ids.
Every contender must answer every query without an error, or the run is reported as invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from escli.core.batch import MSEARCH_BODY_PARAMS, search_target  # noqa: E402
from escli.es.queries import QuerySpec, read_queries  # noqa: E402
from escli.inputs import numbered_lines  # noqa: E402

ESCLI = str(Path(sys.executable).parent / "escli")


def load_specs(path: Path, heavy: bool) -> list[QuerySpec]:
    with path.open("rb") as fh:
        specs = [q for q in read_queries(numbered_lines(fh), str(path)) if isinstance(q, QuerySpec)]
    return [q for q in specs if heavy or not q.id.startswith("heavy-")]


SHORT_WORDS = ["laptop", "kettle", "camera", "boots", "coffee", "chair", "lamp", "blender", "desk", "speaker",
               "durable", "wireless", "steel", "compact", "premium"]


SHORT: dict[str, dict[str, Any]] = {}  # id -> the short form written to the file


def short_specs(n_distinct: int = 60) -> list[QuerySpec]:
    """Short-form queries (`q` over name and description, size 10), built into bodies as batch builds them."""
    from escli.es.queries import build_short_body

    out = []
    for k in range(n_distinct):
        text = f"{SHORT_WORDS[k % len(SHORT_WORDS)]} {SHORT_WORDS[(k * 7 + 3) % len(SHORT_WORDS)]}"
        short = {"q": text, "fields": ["name^2", "description"], "size": 10}
        SHORT[f"s{k}"] = short
        out.append(QuerySpec(f"s{k}", "products", build_short_body(short), {}))
    return out


def write_query_file(path: Path, specs: list[QuerySpec], n: int) -> None:
    with path.open("wb") as fh:
        for i in range(n):
            q = specs[i % len(specs)]
            if q.id in SHORT:
                fh.write(orjson.dumps({"id": f"{q.id}-{i}", "index": q.index, **SHORT[q.id]}) + b"\n")
                continue
            line: dict[str, Any] = {"id": f"{q.id}-{i}", "index": q.index, "body": q.body}
            if q.params:
                line["params"] = q.params
            fh.write(orjson.dumps(line) + b"\n")


async def sequential(url: str, specs: list[QuerySpec], n: int) -> float:
    from elasticsearch import AsyncElasticsearch

    client = AsyncElasticsearch(url, request_timeout=60)
    try:
        started = time.perf_counter()
        for i in range(n):
            q = specs[i % len(specs)]
            body = {**q.body, **{k: v for k, v in q.params.items() if k in MSEARCH_BODY_PARAMS}}
            url_params = {k: v for k, v in q.params.items() if k not in MSEARCH_BODY_PARAMS}
            await client.search(index=q.index, body=body, **url_params)
        return n / (time.perf_counter() - started)
    finally:
        await client.close()


async def aiohttp_client(url: str, specs: list[QuerySpec], n: int, concurrency: int) -> float:
    import aiohttp

    requests = [(url + search_target(q), orjson.dumps(q.body), q.id) for q in specs]
    out = open(os.devnull, "wb")  # noqa: SIM115
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     skip_auto_headers=("Accept-Encoding",)) as session:
        counter = iter(range(n))

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                target, body, qid = requests[i % len(requests)]
                async with session.post(target, data=body, headers={"content-type": "application/json"}) as resp:
                    data = orjson.loads(await resp.read())
                    errors += resp.status != 200
                out.write(orjson.dumps({"id": qid, "ok": True, "took_ms": data.get("took"),
                                        "hits": data["hits"]["hits"]}) + b"\n")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = n / (time.perf_counter() - started)
    out.close()
    if errors:
        raise SystemExit(f"aiohttp baseline: {errors} errors")
    return rate


async def streams_client(url: str, specs: list[QuerySpec], n: int, concurrency: int) -> float:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 9200
    requests = [(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                 % (search_target(q).encode(), host.encode(), port, len(body)) + body, q.id)
                for q in specs for body in [orjson.dumps(q.body)]]
    out = open(os.devnull, "wb")  # noqa: SIM115
    errors = 0
    counter = iter(range(n))

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in counter:
                payload, qid = requests[i % len(requests)]
                writer.write(payload)
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                status = int(head.split(b" ", 2)[1])
                if b"transfer-encoding: chunked" in head:
                    chunks = []
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                        if size == 0:
                            await reader.readuntil(b"\r\n")
                            break
                        chunks.append(await reader.readexactly(size + 2))
                    raw = b"".join(c[:-2] for c in chunks)
                else:
                    at = head.index(b"content-length:") + 15
                    raw = await reader.readexactly(int(head[at:head.index(b"\r\n", at)]))
                data = orjson.loads(raw)
                errors += status != 200
                out.write(orjson.dumps({"id": qid, "ok": True, "took_ms": data.get("took"),
                                        "hits": data["hits"]["hits"]}) + b"\n")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = n / (time.perf_counter() - started)
    out.close()
    if errors:
        raise SystemExit(f"streams baseline: {errors} errors")
    return rate


def run_uvloop(coro: Any) -> Any:
    import uvloop

    return uvloop.run(coro)


SUMMARY = re.compile(r"(\d+) queries in ([\d.]+)s \(([\d,.]+)/s\): (\d+) ok, (\d+) failed")


def escli_batch(url: str, path: Path, n: int, extra: list[str]) -> tuple[float, float]:
    """(rate reported by escli, rate by wall clock including start-up)."""
    env = {**os.environ, "ESCLI_URL": url}
    started = time.perf_counter()
    proc = subprocess.run([ESCLI, "batch", str(path), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, check=False)
    wall = time.perf_counter() - started
    err = proc.stderr.decode()
    m = SUMMARY.search(err)
    if proc.returncode != 0 or m is None or int(m.group(4)) != n:
        raise SystemExit(f"escli batch failed (exit {proc.returncode}): {err[-2000:]}")
    return float(m.group(3).replace(",", "")), n / wall


def peak_rss(url: str, path: Path, lines: int, extra: list[str], stdin: bool) -> tuple[float, float, float]:
    """(peak RSS MB, RSS MB after the first 5 % of the run, queries/s) of one escli batch run."""
    import psutil

    env = {**os.environ, "ESCLI_URL": url}
    args = [ESCLI, "batch", "-" if stdin else str(path), *extra]
    fin = path.open("rb") if stdin else None
    proc = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    feeder = None
    if stdin and fin is not None:
        def feed() -> None:
            assert proc.stdin is not None and fin is not None
            try:
                while chunk := fin.read(1 << 16):
                    proc.stdin.write(chunk)
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()
                fin.close()
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
    ps = psutil.Process(proc.pid)
    early = 0.0
    started = time.perf_counter()
    size = path.stat().st_size
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss / 2**20
            if not early and time.perf_counter() - started > 3:
                early = rss
        except psutil.Error:
            break
        time.sleep(0.25)
    err = proc.stderr.read().decode() if proc.stderr else ""
    _, _status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
    if usage is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    else:
        peak = usage.ru_maxrss / 1024
    if feeder is not None:
        feeder.join()
    m = SUMMARY.search(err)
    if m is None or int(m.group(4)) != lines:
        raise SystemExit(f"RSS run failed: {err[-2000:]} (file {size} bytes)")
    return peak, early, float(m.group(3).replace(",", ""))


def spread(values: list[float]) -> str:
    return f"[{min(values):,.0f}-{max(values):,.0f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--concurrency", "-j", type=int, default=8)
    parser.add_argument("--msearch", type=int, default=20, help="also run escli batch --msearch N (0: skip)")
    parser.add_argument("--rss-lines", type=int, default=1_000_000)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--heavy", action="store_true", help="keep the heavy-* queries in the file")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of (b), (c) and escli batch")
    parser.add_argument("--short-form", action="store_true", help="a file of short-form queries (q, fields)")
    args = parser.parse_args()

    specs = short_specs() if args.short_form else load_specs(ROOT / "sample_queries" / "products.ndjson", args.heavy)
    n, j = args.queries, args.concurrency
    with tempfile.TemporaryDirectory(prefix="escli-bench-") as tmp:
        qfile = Path(tmp) / "queries.ndjson"
        write_query_file(qfile, specs, n)
        what = "short-form lines (q, fields)" if args.short_form else "sample_queries/products.ndjson without heavy-*"
        print(f"# {n} queries ({len(specs)} distinct, {what}), concurrency {j}, {os.cpu_count()} CPUs, "
              f"engine {args.url}")
        # warm up the engine and the caches every contender benefits from
        asyncio.run(aiohttp_client(args.url, specs, min(n, 2000), j))

        seq = asyncio.run(sequential(args.url, specs, min(n, 3000)))
        raws: list[float] = []
        streams: list[float] = []
        batches: list[float] = []
        walls: list[float] = []
        for _ in range(max(1, args.rounds)):
            raws.append(asyncio.run(aiohttp_client(args.url, specs, n, j)))
            streams.append(run_uvloop(streams_client(args.url, specs, n, j)))
            # --no-cache: the file repeats 55 queries, which batch's memory cache level would answer without a
            # request; the baseline asks every time, so escli must too for the ratio to compare like with like.
            rate, wall = escli_batch(args.url, qfile, n, ["--no-cache", "-j", str(j)])
            batches.append(rate)
            walls.append(wall)
        raw, batch, batch_wall = statistics.median(raws), statistics.median(batches), statistics.median(walls)
        stream = statistics.median(streams)
        rows = [("(a) sequential AsyncElasticsearch", seq),
                (f"(b) aiohttp + orjson, {j} in flight, no gzip {spread(raws)}", raw),
                (f"(c) asyncio streams + orjson on uvloop, {j} connections {spread(streams)}", stream),
                (f"escli batch --no-cache -j {j} {spread(batches)}", batch),
                (f"escli batch -j {j} (wall clock, start-up included)", batch_wall)]
        cached, _ = escli_batch(args.url, qfile, n, ["-j", str(j)])
        rows.append((f"escli batch -j {j}, memory cache on (repeats answered without a request)", cached))
        if args.msearch:
            ms, _ = escli_batch(args.url, qfile, n, ["--no-cache", "-j", str(j), "--msearch", str(args.msearch)])
            rows.append((f"escli batch -j {j} --msearch {args.msearch}", ms))
        width = max(len(r[0]) for r in rows)
        for name, rate in rows:
            print(f"{name:<{width}}  {rate:>9,.0f} queries/s")
        print(f"ratio escli / sequential: {batch / seq:.2f}x (target >= 5x)")
        print(f"ratio escli / aiohttp:    {batch / raw:.2f}x (target >= 0.9x)")
        print(f"ratio escli / streams:    {batch / stream:.2f}x (target >= 0.9x); per round: "
              + ", ".join(f"{b / c:.2f}" for b, c in zip(batches, streams, strict=True)))
        if args.msearch:
            print(f"ratio escli --msearch {args.msearch} / sequential: {ms / seq:.2f}x, / aiohttp: {ms / raw:.2f}x")

        if not args.skip_rss:
            big = Path(tmp) / "million.ndjson"
            cheap = [q for q in specs if q.body.get("size") == 0 or q.id.startswith("filter-")] or specs
            write_query_file(big, cheap, args.rss_lines)
            extra = ["-j", str(j), "--msearch", "100"]
            peak, early, rate = peak_rss(args.url, big, args.rss_lines, extra, stdin=False)
            print(f"peak RSS, {args.rss_lines:,} lines from a file (escli batch {' '.join(extra)}): {peak:.1f} MB "
                  f"(after 3 s: {early:.1f} MB), {rate:,.0f} queries/s (target < 150 MB)")
            peak, early, rate = peak_rss(args.url, big, args.rss_lines, ["-j", str(j), "--msearch", "100",
                                                                          "--ordered"], stdin=True)
            print(f"peak RSS, {args.rss_lines:,} lines on stdin, --ordered: {peak:.1f} MB (after 3 s: {early:.1f} MB),"
                  f" {rate:,.0f} queries/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
