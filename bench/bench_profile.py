"""Client CPU per request: `escli profile` against a minimal aiohttp + orjson loop, same queries, same rate.

    .venv/bin/python bench/bench_profile.py [--url URL] [--rate 300] [--requests 3000] [--rounds 3]

Both loops send the same prepared query bodies on the same fixed open-loop schedule, one after the other in this
process, alternating, `--rounds` times; each round's CPU (user + system, process_time) is divided by the requests
it sent. The baseline does only what any client must: POST the bytes, read the body, parse it with orjson.
escli's figure includes everything profile does per request (schedule, weighted choice, its es.wire keep-alive
connections that take service time where the bytes move, four histograms, error bookkeeping). The added CPU per
request is the median of the rounds' differences (negative: escli costs less than the baseline); the target is
at most 150 µs. bench_profile_vs_wrk.py compares the closed loop with wrk. The machine's noise
(Elasticsearch shares its cores) is tens of µs per request: compare rounds, not single runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

QUERIES: list[dict[str, Any]] = [
    {"id": "laptop", "index": "products", "q": "laptop", "fields": ["name^2", "description"]},
    {"id": "phone", "index": "products", "q": "phone case", "fields": ["name^2", "description"], "size": 5},
    {"id": "cat", "index": "products", "q": "", "filter": {"category": "electronics"}, "size": 10},
    {"id": "all", "index": "products", "body": {"query": {"match_all": {}}, "size": 10}},
]


def specs() -> list[Any]:
    from escli.es.queries import parse_query_line

    out = []
    for i, q in enumerate(QUERIES, 1):
        spec = parse_query_line(orjson.dumps(q), i, "bench")
        assert spec is not None and not isinstance(spec, Exception), spec
        out.append(spec)
    return out


async def baseline(url: str, rate: float, n: int) -> tuple[float, int, int]:
    """The minimal open loop: aiohttp session, fixed schedule, orjson parse. Returns (cpu s, sent, errors)."""
    import aiohttp

    from escli.core.profile import encode_query

    prepared = [encode_query(s) for s in specs()]
    headers = {"content-type": "application/json", "accept": "application/json"}
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=16)) as session:
        for p in prepared:  # connect and warm, as profile's preflight does
            async with session.post(url + p.target, data=p.body, headers=headers) as resp:
                await resp.read()
        sem = asyncio.Semaphore(16)
        tasks = set()

        async def one(i: int) -> None:
            nonlocal errors
            p = prepared[i % len(prepared)]
            try:
                async with session.post(url + p.target, data=p.body, headers=headers) as resp:
                    body = orjson.loads(await resp.read())
                    if resp.status != 200 or "took" not in body:
                        errors += 1
            finally:
                sem.release()

        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu0
    return cpu, n, errors


async def escli_profile(url: str, rate: float, n: int) -> tuple[float, int, int]:
    """escli's own open loop, as `escli profile --queries F --rate R -n N --warmup 0` runs it."""
    from escli.core.profile import ProfileOptions, Warmup, run_profile
    from escli.es.connect import open_es
    from escli.settings import Settings
    from escli.ui import SILENT

    settings = Settings(urls=(url,), max_retries=0)
    opts = ProfileOptions(iterations=n, warmup=Warmup(requests=0), concurrency=16, rate=rate, seed=1)
    async with open_es(settings, SILENT) as client:
        cpu0 = time.process_time()
        result = await run_profile(client, specs(), opts)
        cpu = time.process_time() - cpu0
    # The same clock as the baseline's, around the whole run (its 4 preflight requests and the final
    # summing of histograms included); escli's own psutil figure covers the measured requests only.
    return cpu, result.overall.requests, sum(result.overall.errors.values())


def bookkeeping_us(n: int = 200_000) -> float:
    """escli's own per-request work without the network, in µs: the weighted pick, reading `took` at the start
    of the answer, and the four histogram records."""
    from escli.core.profile import Picker, encode_query, took_of
    from escli.profiler import RequestStats

    pick = Picker([encode_query(s) for s in specs()], 1)
    stats = RequestStats()
    answer = b'{"took":3,"timed_out":false,"_shards":{"total":1}}'
    cpu0 = time.process_time()
    for i in range(n):
        pick()
        stats.record(1000 + i % 5000, 900, took_of(answer), 120)
    return (time.process_time() - cpu0) / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = os.environ.get("ESCLI_URL") or os.environ.get("ES_URL") or "http://127.0.0.1:9200"
    ap.add_argument("--url", default=default_url)
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    # escli measures its CPU with psutil (10 ms ticks on Linux): over thousands of requests, < 5 µs each.
    base: list[float] = []
    ours: list[float] = []
    for r in range(args.rounds):
        for name, fn, into in (("baseline", baseline, base), ("escli", escli_profile, ours)):
            cpu, sent, errors = asyncio.run(fn(args.url, args.rate, args.requests))
            per = cpu / sent * 1e6
            into.append(per)
            print(f"round {r + 1} {name:8s}: {sent} requests at {args.rate:g}/s, CPU {cpu:.3f} s, "
                  f"{per:,.1f} µs/request, {errors} errors", flush=True)
    b, o = statistics.median(base), statistics.median(ours)
    added = statistics.median(x - y for x, y in zip(ours, base, strict=True))
    print(f"\nmedian baseline (aiohttp + orjson): {b:,.1f} µs/request")
    print(f"median escli profile:               {o:,.1f} µs/request")
    print(f"escli adds {added:,.1f} µs of client CPU per request (median of the rounds' differences; ratio "
          f"{o / b:.2f}x); target <= 150 µs: {'met' if added <= 150 else 'NOT met'}")
    print(f"escli's own bookkeeping per request, without the network (pick, took, 4 histograms): "
          f"{bookkeeping_us():.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
