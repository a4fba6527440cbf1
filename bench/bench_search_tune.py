"""What each `--tune` preset changes: `escli profile` at concurrency 8, default vs throughput vs latency.

    .venv/bin/python bench/bench_search_tune.py [--url URL] [--docs 1000000] [--index products_1m]
                                                [--requests 4000] [--rounds 3] [--concurrency 8]

Self-contained: loads the deterministic sample data set into its own index (scripts/sample_data.sh with INDEX and
DOCS; skipped when the index already holds exactly that set), writes a mixed query file (text searches, a filtered
sort, an aggregation-only search, a broad match_all), then runs `escli profile --queries FILE -j 8` once per
variant per round, the variants interleaved so drift on a shared machine hits each alike. For each variant: the
median over rounds of throughput, p50 and p99 latency, and each as a ratio to the default measured in the same
run. Then, since the latency preset may change answers, one plain search per query and preset (--no-cache -o json)
shows the hit total and whether the answer was cut short (terminated early / timed out).

Not a test and no thresholds. On one node with two shards the throughput preset's settings have little to act
on (no shards to skip, nothing to batch): expect ratios near 1.0 here, and read them as such.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("BIN", str(ROOT / ".venv" / "bin")))
VARIANTS: dict[str, list[str]] = {"default": [], "throughput": ["--tune", "throughput"],
                                  "latency": ["--tune", "latency"]}


def queries(index: str) -> list[dict[str, Any]]:
    return [
        {"id": "text", "index": index, "q": "wireless laptop", "fields": ["name^2", "description"], "size": 10},
        {"id": "text-rare", "index": index, "q": "vintage camera", "fields": ["name^2", "description"], "size": 10},
        {"id": "filter-sort", "index": index, "filter": {"category": "books"}, "range": {"price": {"lte": 30}},
         "sort": [{"price": "asc"}], "size": 20},
        {"id": "aggs", "index": index, "body": {"size": 0, "query": {"term": {"category": "laptops"}},
                                                "aggs": {"brands": {"terms": {"field": "brand.keyword"}},
                                                         "price": {"stats": {"field": "price"}}}}},
        {"id": "match-all", "index": index, "body": {"query": {"match_all": {}}, "size": 10,
                                                     "track_total_hits": True}},
    ]


def escli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ESCLI_URL": url}
    return subprocess.run([str(BIN / "escli"), *args], input=stdin, capture_output=True, text=True, env=env,
                          check=False)


def load(url: str, index: str, docs: int) -> None:
    env = {**os.environ, "ES_URL": url, "INDEX": index, "DOCS": str(docs), "BIN": str(BIN)}
    subprocess.run(["bash", str(ROOT / "scripts" / "sample_data.sh")], env=env, check=True)


def profile(url: str, qfile: Path, variant: list[str], requests: int, concurrency: int) -> dict[str, float]:
    r = escli(url, "profile", "--queries", str(qfile), "-n", str(requests), "--warmup", str(max(50, requests // 10)),
              "-j", str(concurrency), "--seed", "7", "-p", "50,99", "-F", "json", *variant)
    if r.returncode != 0:
        raise SystemExit(f"escli profile {' '.join(variant)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    overall = json.loads(r.stdout)["overall"]
    lat = overall["latency_ms"]
    return {"throughput": overall["throughput"], "p50": lat.get("p50", float("nan")),
            "p99": lat.get("p99", float("nan")), "errors": float(len(overall["errors"]))}


def answers(url: str, index: str, spec: dict[str, Any], variant: list[str]) -> str:
    """One search for the 'what changes' table: hit total and whether it was cut short."""
    body = spec.get("body")
    if body is None:
        from escli.es.queries import build_short_body

        body = build_short_body(spec)
    r = escli(url, "search", index, "--body", "-", "--no-cache", "-o", "json", *variant, stdin=json.dumps(body))
    if r.returncode != 0:
        return f"error {r.returncode}"
    resp = json.loads(r.stdout)
    total = resp["hits"]["total"]
    text = f"{total['value']:,}{'+' if total['relation'] == 'gte' else ''}"
    flags = [f for f, on in (("terminated early", resp.get("terminated_early")), ("timed out", resp.get("timed_out")))
             if on]
    return text + (f" ({', '.join(flags)})" if flags else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    ap.add_argument("--docs", type=int, default=int(os.environ.get("TUNE_DOCS", "1000000")))
    ap.add_argument("--index", default=None, help="default: products_1m (or products_N for other --docs)")
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    index = args.index or ("products_1m" if args.docs == 1_000_000 else f"products_{args.docs}")
    sys.path.insert(0, str(ROOT / "src"))

    load(args.url, index, args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        qfile = Path(tmp) / "tune.ndjson"
        qfile.write_text("".join(json.dumps(q) + "\n" for q in queries(index)))
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        for rnd in range(args.rounds):
            names = list(VARIANTS)
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:  # rotate: no variant always first
                runs[name].append(profile(args.url, qfile, VARIANTS[name], args.requests, args.concurrency))
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)

    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    base = med["default"]
    print(f"# {index}: {args.docs:,} docs, {len(queries(index))} queries mixed, concurrency {args.concurrency}, "
          f"{args.requests:,} requests per run, median of {args.rounds} rounds")
    print(f"{'variant':<12} {'req/s':>9} {'x':>6} {'p50 ms':>8} {'x':>6} {'p99 ms':>8} {'x':>6} {'errors':>6}")
    for name, m in med.items():
        print(f"{name:<12} {m['throughput']:>9.1f} {m['throughput'] / base['throughput']:>6.2f} {m['p50']:>8.2f} "
              f"{m['p50'] / base['p50']:>6.2f} {m['p99']:>8.2f} {m['p99'] / base['p99']:>6.2f} {m['errors']:>6.0f}")
    print("\n# answers per query (hit total; cut short?)")
    print(f"{'query':<12} " + " ".join(f"{name:<28}" for name in VARIANTS))
    for spec in queries(index):
        print(f"{spec['id']:<12} " + " ".join(f"{answers(args.url, index, spec, v):<28}" for v in VARIANTS.values()))
    print("\n# the presets set (each overridable by its own option):")
    from escli.es.queries import TUNE_PRESETS

    for name, preset in TUNE_PRESETS.items():
        print(f"#   --tune {name}: " + ", ".join(f"{k}={v}" for k, v in preset.items()))


if __name__ == "__main__":
    main()
