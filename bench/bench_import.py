"""escli import vs elasticsearch-py's async_streaming_bulk on the same file, same engine, same run.

NDJSON: DOCS documents of the sample set (default 200,000) with the sample mapping. CSV: a table shaped like
nycflights13's `flights` (tests/support/flights.py; 336,776 rows by default, `--csv-rows N`), imported by escli
with type inference on (`--null NA`), against async_streaming_bulk sending csv.DictReader rows as strings (what
escli did before it guessed types). `--before REF` adds escli as it was at git REF (its src/ run from a `git
archive` copy with this venv), so "with inference >= 1.0x of before" can be read off one run; `--rounds N`
interleaves N rounds and keeps each one's best. Prints docs/s, client CPU seconds and peak RSS, and the ratios.

    .venv/bin/python bench/bench_import.py [DOCS] [--only ndjson|csv] [--csv-rows N] [--before REF] [--rounds N]

Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ES_URL = os.environ.get("ES_URL", "http://127.0.0.1:9200")
PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]
ESCLI = str(Path(PY).parent / "escli")

BASELINE = r"""
import asyncio, sys, orjson
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_streaming_bulk

async def run(url, index, path):
    es = AsyncElasticsearch(url, request_timeout=120)
    async def actions():
        with open(path, "rb") as fh:
            for line in fh:
                doc = orjson.loads(line)
                yield {"_index": index, "_id": doc["id"], "_source": doc}
    n = 0
    async for ok, _ in async_streaming_bulk(es, actions(), chunk_size=1000, raise_on_error=False):
        n += ok
    await es.indices.refresh(index=index)
    await es.close()

asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3]))
"""

CSV_BASELINE = r"""
import asyncio, csv, sys
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_streaming_bulk

async def run(url, index, path):
    es = AsyncElasticsearch(url, request_timeout=120)
    async def actions():
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                yield {"_index": index, "_source": row}
    async for ok, _ in async_streaming_bulk(es, actions(), chunk_size=1000, raise_on_error=False):
        pass
    await es.indices.refresh(index=index)
    await es.close()

asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3]))
"""

WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); print(u.ru_maxrss, u.ru_utime + u.ru_stime)")


def run_child(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(seconds, CPU seconds, peak RSS MiB) of one child, through a fresh wrapper process so runs do not mix."""
    start = time.perf_counter()
    out = subprocess.run([PY, "-c", WRAPPER, *args], check=True, capture_output=True, text=True, env=env)
    rss, cpu = out.stdout.split()[-2:]
    return time.perf_counter() - start, float(cpu), int(rss) / 1024


Variant = tuple[list[str], dict[str, str] | None, Callable[[str], None]]


def measure(http: httpx.Client, variants: dict[str, Callable[[str], Variant]], docs: int, rounds: int
            ) -> dict[str, tuple[float, float, float]]:
    """Best docs/s of each variant over interleaved rounds, with that round's CPU seconds and peak RSS."""
    best: dict[str, tuple[float, float, float]] = {}
    for _ in range(rounds):
        for name, make in variants.items():
            index = f"bench-import-{name}"
            http.delete(f"/{index}", params={"ignore_unavailable": "true"})
            args, env, prepare = make(index)
            prepare(index)
            seconds, cpu, rss = run_child(args, env)
            count = http.get(f"/{index}/_count").json()["count"]
            http.delete(f"/{index}")
            if count != docs:
                raise SystemExit(f"{name}: indexed {count} of {docs}")
            if name not in best or docs / seconds > best[name][0]:
                best[name] = (docs / seconds, cpu, rss)
    for name, (rate, cpu, rss) in best.items():
        print(f"{name:16s} {rate:10,.0f} docs/s   client CPU {cpu:6.1f} s   peak RSS {rss:6.0f} MiB")
    return best


def before_tree(ref: str, tmp: Path) -> dict[str, str]:
    """An environment that runs escli's src/ as it was at git `ref`, with this venv's packages."""
    tree = tmp / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "x", "-C", str(tree)], input=archive.stdout, check=True)
    return {**os.environ, "PYTHONPATH": str(tree / "src")}


def bench_ndjson(http: httpx.Client, tmp: Path, docs: int, rounds: int, before: dict[str, str] | None) -> None:
    data = tmp / "docs.ndjson"
    with data.open("wb") as fh:
        subprocess.run([PY, "-m", "escli.sample", "--docs", str(docs)], stdout=fh, check=True)
    mapping = tmp / "mapping.json"
    with mapping.open("wb") as fh:
        subprocess.run([PY, "-m", "escli.sample", "--mapping"], stdout=fh, check=True)

    def create(index: str) -> None:
        http.put(f"/{index}", content=mapping.read_bytes(), headers={"content-type": "application/json"})

    def escli_args(index: str) -> list[str]:
        return ["--url", ES_URL, "-q", "import", index, str(data), "--mapping", str(mapping), "--id-field", "id"]

    variants: dict[str, Callable[[str], Variant]] = {
        "baseline": lambda i: ([PY, "-c", BASELINE, ES_URL, i, str(data)], None, create),
        "escli": lambda i: ([ESCLI, *escli_args(i)], None, lambda _: None),
    }
    if before is not None:
        variants["escli-before"] = lambda i: ([PY, "-m", "escli", *escli_args(i)], before, lambda _: None)
    best = measure(http, variants, docs, rounds)
    (e_rate, _, e_rss), (b_rate, _, b_rss) = best["escli"], best["baseline"]
    print(f"escli import / async_streaming_bulk: throughput {e_rate / b_rate:.2f}x, peak RSS {e_rss / b_rss:.2f}x "
          f"on {docs:,} documents")
    if "escli-before" in best:
        print(f"escli import / escli before: throughput {e_rate / best['escli-before'][0]:.2f}x")


def bench_csv(http: httpx.Client, tmp: Path, rows: int, rounds: int, before: dict[str, str] | None) -> None:
    data = tmp / "flights.csv"
    with data.open("wb") as fh:
        subprocess.run([PY, "-m", "tests.support.flights", "--rows", str(rows)], stdout=fh, check=True, cwd=ROOT)
    variants: dict[str, Callable[[str], Variant]] = {
        "csv-baseline": lambda i: ([PY, "-c", CSV_BASELINE, ES_URL, i, str(data)], None, lambda _: None),
        "escli-csv": lambda i: ([ESCLI, "--url", ES_URL, "-q", "import", i, str(data), "--null", "NA"], None,
                                lambda _: None),
    }
    if before is not None:
        # escli before type inference: every column a string (no --null then)
        variants["escli-csv-before"] = lambda i: ([PY, "-m", "escli", "--url", ES_URL, "-q", "import", i,
                                                   str(data)], before, lambda _: None)
    best = measure(http, variants, rows, rounds)
    e_rate, b_rate = best["escli-csv"][0], best["csv-baseline"][0]
    print(f"escli import CSV with inference / async_streaming_bulk of string rows: throughput {e_rate / b_rate:.2f}x "
          f"on {rows:,} rows")
    if "escli-csv-before" in best:
        print(f"escli import CSV with inference / escli before: throughput "
              f"{e_rate / best['escli-csv-before'][0]:.2f}x, client CPU "
              f"{best['escli-csv'][1] / best['escli-csv-before'][1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description="escli import vs async_streaming_bulk")
    parser.add_argument("docs", nargs="?", type=int, default=200_000, help="NDJSON documents")
    parser.add_argument("--only", choices=["ndjson", "csv"])
    parser.add_argument("--csv-rows", type=int, default=336_776)
    parser.add_argument("--before", metavar="REF", help="also run escli as it was at this git ref")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    http = httpx.Client(base_url=ES_URL, timeout=120)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        before = before_tree(args.before, tmp) if args.before else None
        if args.only in (None, "ndjson"):
            bench_ndjson(http, tmp, args.docs, args.rounds, before)
        if args.only in (None, "csv"):
            bench_csv(http, tmp, args.csv_rows, args.rounds, before)


if __name__ == "__main__":
    main()
