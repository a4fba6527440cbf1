"""Time to the first output line: a one-query `escli batch` against an uncached `escli search` of the same query.

    .venv/bin/python bench/bench_first_line.py [--rounds 15]

Both run as fresh processes (start-up, imports, connection and the request included), the clock stops when the
first line reaches the pipe. Rounds alternate between the two; the figures are medians with the spread (min-max).
Target (issue 20): batch <= 1.3x search.
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

ESCLI = str(Path(sys.executable).parent / "escli")


def first_line(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen([ESCLI, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    took = time.perf_counter() - started
    proc.stdout.read()
    if proc.wait() != 0 or not line:
        raise SystemExit(f"escli {' '.join(args)} failed (exit {proc.returncode})")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "ESCLI_URL": args.url}
    with tempfile.TemporaryDirectory(prefix="escli-bench-") as tmp:
        env["XDG_CACHE_HOME"] = tmp
        qfile = Path(tmp) / "one.ndjson"
        qfile.write_text('{"id": "q1", "index": "products", "q": "laptop", "fields": ["name^2", "description"]}\n')
        search = ["search", "products", "laptop", "-f", "name^2", "-f", "description", "--no-cache", "-o", "ndjson"]
        batch = ["batch", str(qfile), "--no-cache"]
        first_line(search, env), first_line(batch, env)  # warm the page cache and the engine
        s_times, b_times = [], []
        for _ in range(args.rounds):
            s_times.append(first_line(search, env))
            b_times.append(first_line(batch, env))
    s, b = statistics.median(s_times), statistics.median(b_times)
    print(f"escli search (uncached)   {s * 1000:7.1f} ms  [{min(s_times) * 1000:.0f}-{max(s_times) * 1000:.0f}]")
    print(f"escli batch (one query)   {b * 1000:7.1f} ms  [{min(b_times) * 1000:.0f}-{max(b_times) * 1000:.0f}]")
    print(f"ratio batch / search: {b / s:.2f}x (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
