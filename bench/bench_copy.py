"""Benchmark `escli copy` against what people use today, in one run, and print ratios (issue 32's targets).

    .venv/bin/python bench/bench_copy.py [--docs 200000] [--rounds 3] [--only a,b]

Contenders (each a separate process tree; rounds interleaved: round 1 runs every contender, then round 2 ...):
  escli-copy        escli copy INDEX --to TARGET (metadata and documents), Elasticsearch -> Elasticsearch
  pipe              escli export INDEX | escli import DEST - --mapping (the sample's mapping: the same index the
                    copy makes, so both targets index the same fields), Elasticsearch -> Elasticsearch
  escli-verify      escli verify INDEX --to TARGET --dest (escli-copy's copy, right after it): --verify's cost
  escli-copy-os     escli copy on OpenSearch -> OpenSearch
  elasticdump       elasticdump 6.125 --type=data with its fastest settings (--limit 5000 --concurrency 4
                    --intervalCap 1000 --concurrencyInterval 1000) into an index made with the same mapping,
                    OpenSearch -> OpenSearch (it asks `GET /`, which the Elasticsearch test build lacks);
                    installed under bench/.node by scripts/bench-deps.sh

Source and target both run on this machine (Elasticsearch: --url and --target-url, two nodes; OpenSearch: one node,
--os-url, copied into another index). Every copy is checked (the target's count is the source's, or the row says
FAILED) and deleted before the next contender. Per contender: docs/s (median of rounds from wall time, and the
spread min-max), engine CPU seconds per 1M documents on each side (from /proc: bench_export.engine_cpu_seconds),
the share of the machine's cores each side used (engine and client CPU over wall time, of os.cpu_count()), client
CPU, and peak RSS (the largest process's VmHWM, and the summed tree: bench_export.Run). Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ELASTICDUMP_JS = ROOT / "bench" / ".node" / "node_modules" / "elasticdump" / "bin" / "elasticdump"
ELASTICDUMP_FASTEST = ["--limit=5000", "--concurrency=4", "--intervalCap=1000", "--concurrencyInterval=1000"]
sys.path.insert(0, str(ROOT / "bench"))

from bench_export import Run, compiled, engine_cpu_seconds, ensure_index  # noqa: E402


def count(url: str, index: str) -> int:
    httpx.post(f"{url}/{index}/_refresh", timeout=120)
    resp = httpx.get(f"{url}/{index}/_count", timeout=60)
    return int(resp.json().get("count", 0)) if resp.status_code == 200 else 0


def drop(url: str, index: str) -> None:
    httpx.delete(f"{url}/{index}", params={"ignore_unavailable": "true"}, timeout=120)


def create_like_sample(url: str, index: str, mapping: Path) -> None:
    """The index the copy would make: the sample mapping and settings (elasticdump's target, made untimed)."""
    drop(url, index)
    httpx.put(f"{url}/{index}", content=mapping.read_bytes(), headers={"content-type": "application/json"},
              timeout=120).raise_for_status()


class Contender:
    def __init__(self, name: str, cmds: list[list[str]], src: str, dst: str, index: str, dest: str,
                 prepare: Any = None, keep: bool = False) -> None:
        self.name, self.cmds, self.src, self.dst, self.index, self.dest = name, cmds, src, dst, index, dest
        self.prepare = prepare  # untimed, before the run
        self.keep = keep  # leave the copy for the next contender (escli-verify reads escli-copy's)


def contenders(args: argparse.Namespace, mapping: Path) -> list[Contender]:
    escli = [str(BIN / "escli"), "-q"]
    es_dest, os_dest, pipe_dest, dump_dest = "bench-copy-escli", "bench-copy-os", "bench-copy-pipe", "bench-copy-dump"
    out = [
        Contender("escli-copy", [[*escli, "--url", args.url, "copy", args.index, "--to", args.target_url,
                                  "--dest", es_dest]], args.url, args.target_url, args.index, es_dest,
                  prepare=lambda: drop(args.target_url, es_dest), keep=True),
        Contender("escli-verify", [[*escli, "--url", args.url, "verify", args.index, "--to", args.target_url,
                                    "--dest", es_dest]], args.url, args.target_url, args.index, es_dest),
        Contender("pipe", [["sh", "-c", f"{escli[0]} -q --url {args.url} export {args.index} | {escli[0]} -q --url "
                            f"{args.target_url} import {pipe_dest} - --mapping {mapping}"]],
                  args.url, args.target_url, args.index, pipe_dest, prepare=lambda: drop(args.target_url, pipe_dest)),
        Contender("escli-copy-os", [[*escli, "--url", args.os_url, "copy", args.index, "--to", args.os_url,
                                     "--dest", os_dest]], args.os_url, args.os_url, args.index, os_dest,
                  prepare=lambda: drop(args.os_url, os_dest)),
    ]
    if ELASTICDUMP_JS.exists() and not args.no_elasticdump:
        out.append(Contender("elasticdump", [["node", str(ELASTICDUMP_JS), f"--input={args.os_url}/{args.index}",
                                               f"--output={args.os_url}/{dump_dest}", "--type=data", "--quiet",
                                               *ELASTICDUMP_FASTEST]], args.os_url, args.os_url, args.index,
                             dump_dest, prepare=lambda: create_like_sample(args.os_url, dump_dest, mapping)))
    else:
        print("elasticdump is not installed (scripts/bench-deps.sh puts it under bench/.node): its row is left out",
              file=sys.stderr)
    if args.only:
        wanted = set(args.only.split(","))
        if "escli-verify" in wanted:
            wanted.add("escli-copy")  # it verifies escli-copy's copy
        out = [c for c in out if c.name in wanted]
    return out


def engines(c: Contender) -> float:
    return engine_cpu_seconds(c.src) + (engine_cpu_seconds(c.dst) if c.dst != c.src else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--target-url", default=os.environ.get("ES_TARGET_URL", "http://127.0.0.1:9260"))
    parser.add_argument("--os-url", default=os.environ.get("OS_URL", "http://127.0.0.1:9230"))
    parser.add_argument("--docs", type=int, default=int(os.environ.get("COPY_DOCS", 200_000)))
    parser.add_argument("--index", default=None, help="default: products_<docs>")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated contender names")
    parser.add_argument("--no-elasticdump", action="store_true")
    args = parser.parse_args()
    args.index = args.index or f"products_{args.docs}"
    for url in {args.url, args.os_url}:
        if ensure_index(url, args.index, args.docs) != args.docs:
            print(f"{url}: index {args.index} does not hold {args.docs} documents", file=sys.stderr)
            return 2
    compiled(ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="escli-bench-copy-"))
    mapping = tmp / "mapping.json"
    mapping.write_bytes(subprocess.run([sys.executable, "-m", "escli.sample", "--docs", str(args.docs), "--mapping"],
                                       check=True, capture_output=True).stdout)
    runs = contenders(args, mapping)
    cpus = os.cpu_count() or 1
    print(f"{args.index}: {args.docs:,} documents; {cpus} CPUs shared by the engines and the clients; "
          f"{args.rounds} round(s) interleaved, medians shown", flush=True)
    rows: dict[str, list[dict[str, float]]] = {c.name: [] for c in runs}
    try:
        for rnd in range(args.rounds):
            for c in runs:
                if c.prepare is not None:
                    c.prepare()
                src_before = engine_cpu_seconds(c.src)
                dst_before = engine_cpu_seconds(c.dst) if c.dst != c.src else 0.0
                seconds, rss, code, cpu = (run := Run(c.cmds)).wait()
                src_cpu = engine_cpu_seconds(c.src) - src_before
                dst_cpu = engine_cpu_seconds(c.dst) - dst_before if c.dst != c.src else 0.0
                got = count(c.dst, c.dest)
                ok = code == 0 and got == args.docs
                per_m = 1e6 / args.docs
                rows[c.name].append({
                    "docs_s": args.docs / seconds if ok else 0.0, "seconds": seconds, "rss": rss,
                    "tree": run.tree_peak, "client": cpu * per_m, "source": src_cpu * per_m, "target": dst_cpu * per_m,
                    "source_share": src_cpu / seconds / cpus, "target_share": dst_cpu / seconds / cpus,
                    "client_share": cpu / seconds / cpus})
                same = " (source and target: one node)" if c.dst == c.src else ""
                print(f"  round {rnd + 1} {c.name:14s} {seconds:7.2f}s {args.docs / seconds:>9,.0f} docs/s  "
                      f"RSS {rss:6.1f} MB (tree {run.tree_peak:6.1f})  CPU s per 1M docs: client {cpu * per_m:6.1f} "
                      f"source engine {src_cpu * per_m:6.1f} target engine {dst_cpu * per_m:6.1f}{same}"
                      f"{'' if ok else f'  (FAILED: exit {code}, {got} of {args.docs} documents on the target)'}",
                      flush=True)
                if not c.keep:
                    drop(c.dst, c.dest)
    finally:
        for c in runs:
            drop(c.dst, c.dest)
        shutil.rmtree(tmp, ignore_errors=True)
    report(rows, args, cpus)
    return 0


def report(rows: dict[str, list[dict[str, float]]], args: argparse.Namespace, cpus: int) -> None:
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in rows.items() if rs}
    spread = {n: (min(r["docs_s"] for r in rs), max(r["docs_s"] for r in rs)) for n, rs in rows.items() if rs}
    print(f"\nmedian of {args.rounds} round(s) (docs/s min-max):")
    print(f"  {'contender':14s} {'docs/s':>9s} {'spread':>17s} {'client':>7s} {'source':>7s} {'target':>7s}  "
          f"{'share of ' + str(cpus) + ' cores: client source target':>42s} {'RSS MB':>7s} {'tree':>6s}")
    for n, r in med.items():
        lo, hi = spread[n]
        print(f"  {n:14s} {r['docs_s']:>9,.0f} {lo:>8,.0f}-{hi:<8,.0f} {r['client']:>7.1f} {r['source']:>7.1f} "
              f"{r['target']:>7.1f}  {r['client_share']:>24.0%} {r['source_share']:>7.0%} {r['target_share']:>7.0%}"
              f" {r['rss']:>7.1f} {r['tree']:>6.1f}")
    print("  (client/source/target: CPU seconds per 1M documents; on one node, source holds both engines' CPU)")

    def ratio(a: str, b: str, key: str = "docs_s") -> str:
        return f"{med[a][key] / med[b][key]:.2f}x" if a in med and b in med and med[b][key] else "n/a"

    print("\nratios:")
    print(f"  escli-copy vs pipe (Elasticsearch -> Elasticsearch): {ratio('escli-copy', 'pipe')} docs/s "
          "(target >= 1.25x); target engine CPU per document "
          f"{ratio('escli-copy', 'pipe', 'target')}")
    print(f"  escli-copy-os vs elasticdump (OpenSearch -> OpenSearch): {ratio('escli-copy-os', 'elasticdump')} "
          f"docs/s (target >= 1.25x); engine CPU per document {ratio('escli-copy-os', 'elasticdump', 'source')}")
    if "escli-verify" in med and "escli-copy" in med:
        print(f"  --verify's cost: {med['escli-verify']['seconds'] / med['escli-copy']['seconds']:.2f}x the copy's "
              "time (target <= 0.5x)")
    peaks = {n: max(r["rss"], r["tree"]) for n, r in med.items() if n.startswith("escli-copy")}
    if peaks:
        print(f"  peak RSS of escli copy: {max(peaks.values()):.1f} MB (target < 300 MB)")


if __name__ == "__main__":
    sys.exit(main())
