"""escli import vs elasticsearch-py's async_streaming_bulk on the same NDJSON file, same engine, same run.

Prints docs/s and peak RSS of each and their ratios. `.venv/bin/python bench/bench_import.py [DOCS]`
(default 200,000 documents of the sample set). Not a test: no thresholds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ES_URL = os.environ.get("ES_URL", "http://127.0.0.1:9200")
PY = sys.executable

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

WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run_child(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one child, measured through a fresh wrapper process so runs do not mix."""
    start = time.perf_counter()
    out = subprocess.run([PY, "-c", WRAPPER, *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, int(out.stdout.split()[-1]) / 1024


def main() -> None:
    docs = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    http = httpx.Client(base_url=ES_URL, timeout=120)
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "docs.ndjson"
        with data.open("wb") as fh:
            subprocess.run([PY, "-m", "escli.sample", "--docs", str(docs)], stdout=fh, check=True)
        mapping = Path(tmp) / "mapping.json"
        with mapping.open("wb") as fh:
            subprocess.run([PY, "-m", "escli.sample", "--mapping"], stdout=fh, check=True)
        for name in ("baseline", "escli"):
            index = f"bench-import-{name}"
            http.delete(f"/{index}", params={"ignore_unavailable": "true"})
            if name == "baseline":
                http.put(f"/{index}", content=mapping.read_bytes(), headers={"content-type": "application/json"})
                args = [PY, "-c", BASELINE, ES_URL, index, str(data)]
            else:
                args = [str(Path(PY).parent / "escli"), "--url", ES_URL, "-q", "import", index, str(data),
                        "--mapping", str(mapping), "--id-field", "id"]
            seconds, rss = run_child(args)
            count = http.get(f"/{index}/_count").json()["count"]
            http.delete(f"/{index}")
            if count != docs:
                raise SystemExit(f"{name}: indexed {count} of {docs}")
            results[name] = (docs / seconds, rss)
            print(f"{name:9s} {docs / seconds:10,.0f} docs/s   peak RSS {rss:6.0f} MiB")
    (e_rate, e_rss), (b_rate, b_rss) = results["escli"], results["baseline"]
    print(f"escli import / async_streaming_bulk: throughput {e_rate / b_rate:.2f}x, peak RSS {e_rss / b_rss:.2f}x "
          f"on {docs:,} documents")


if __name__ == "__main__":
    main()
