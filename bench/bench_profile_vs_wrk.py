"""Does `escli profile` agree with wrk? Same body, same concurrency, closed loop, rounds interleaved.

    .venv/bin/python bench/bench_profile_vs_wrk.py [--seconds 15] [--rounds 3] [--concurrency 4 16]

For each concurrency C, rounds alternate: wrk -t1 -cC (a C load generator, the reference), `escli profile -j C`
(a fresh process, as a user runs it), and a minimal aiohttp + orjson loop with C workers (the floor of CPU per
request for Python here). Printed per contender: req/s, p50/p90/p99 (wrk's own latency distribution; escli's
latency percentiles) and the load generator's own CPU per request (wrk and escli from their rusage, the loop
from process_time). Figures are medians over rounds, with the min-max spread of req/s. Targets (issue 10):
escli throughput >= 0.9x wrk's; p50 and p90 within 15% of wrk's. wrk is Debian's package: installed here when
missing (as root). This is a benchmark, not a test.

Then the --workers row (issue 24), against nginx answering one canned search answer: escli profile -j 16 with 1
and 2 workers, wrk -t2, and bench/minimal_client.py in 1 and 2 processes (the least a Python client can do per
request); it prints the ceiling the cores allow 2 workers (the server shares them) and what a second process
costs per request, for escli and for the minimal client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

BIN = Path(sys.executable).parent
ESCLI = str(BIN / "escli")
BODY = {"query": {"multi_match": {"query": "wireless headphones", "fields": ["name^2", "description"]}},
        "size": 10}
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


ROOT = Path(__file__).resolve().parents[1]
# What nginx answers to every request: a search answer with `took` first, as Elasticsearch writes it.
CANNED = orjson.dumps({"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0,
                                                                  "failed": 0},
                       "hits": {"total": {"value": 1, "relation": "eq"}, "max_score": 1.0,
                                "hits": [{"_index": "products", "_id": "1", "_score": 1.0,
                                          "_source": {"name": "wireless headphones"}}]}}).decode()


def ensure_tools() -> tuple[str, str]:
    """(wrk, nginx): installed by the project's bench-deps script when missing."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not shutil.which("wrk") or nginx is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "bench-deps.sh")], check=True)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return shutil.which("wrk") or "wrk", nginx


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(nginx: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """nginx in the foreground on a free port, one worker process, every request answered with CANNED."""
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{CANNED}'; }}
  }}
}}
""")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.PIPE)
    import socket

    for _ in range(500):  # until it listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}") from None
            time.sleep(0.02)
    return proc, f"http://127.0.0.1:{port}"


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def server_cpu(server: subprocess.Popen[bytes] | None) -> float:
    """CPU seconds of the canned server so far (nginx's master and its worker)."""
    if server is None:
        return 0.0
    import psutil

    procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


def run_wrk(wrk: str, url: str, index: str, conc: int, seconds: float, lua: Path, threads: int = 1,
            server: subprocess.Popen[bytes] | None = None) -> dict[str, float]:
    cpu0, srv0 = child_cpu(), server_cpu(server)
    out = subprocess.run([wrk, f"-t{threads}", f"-c{conc}", f"-d{seconds:g}s", "--latency", "-s", str(lua),
                          f"{url}/{index}/_search"], capture_output=True, text=True, check=True).stdout
    cpu, srv = child_cpu() - cpu0, server_cpu(server) - srv0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    pct = {int(p): float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    return {"rps": rate, "p50": pct[50], "p90": pct[90], "p99": pct[99], "cpu_us": cpu / total * 1e6,
            "server_us": srv / total * 1e6}


def run_escli(url: str, index: str, conc: int, seconds: float, qfile: Path, workers: int = 1) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCLI_")}
    env["ESCLI_URL"] = url
    proc = subprocess.run([ESCLI, "profile", "--queries", str(qfile), "-j", str(conc), "--duration",
                           f"{seconds:g}s", "--warmup", "1s", "--format", "json", "--workers", str(workers)],
                          capture_output=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"escli profile failed ({proc.returncode}): {proc.stderr.decode()[-1000:]}")
    doc = orjson.loads(proc.stdout)
    lat = doc["overall"]["latency_ms"]
    return {"rps": doc["overall"]["throughput"], "p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"],
            "cpu_us": doc["client"]["cpu_us_per_request"]}


async def minimal_loop(url: str, index: str, conc: int, seconds: float) -> dict[str, float]:
    import aiohttp

    body = orjson.dumps(BODY)
    target = f"{url}/{index}/_search"
    n = 0
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc),
                                     skip_auto_headers=("Accept-Encoding",)) as session:
        async def worker() -> None:
            nonlocal n
            while time.perf_counter() < stop:
                async with session.post(target, data=body, headers={"content-type": "application/json"}) as r:
                    orjson.loads(await r.read())
                n += 1

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return {"rps": n / wall, "p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "cpu_us": cpu / n * 1e6}


def median_row(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out["spread"] = f"{min(r['rps'] for r in rows):,.0f}-{max(r['rps'] for r in rows):,.0f}"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", default="products")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--skip-es", action="store_true", help="only the --workers row against nginx")
    args = parser.parse_args()
    wrk, nginx = ensure_tools()
    with tempfile.TemporaryDirectory(prefix="escli-bench-") as tmp:
        lua = Path(tmp) / "post.lua"
        lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                       f"wrk.body = [[{orjson.dumps(BODY).decode()}]]\n")
        qfile = Path(tmp) / "q.ndjson"
        qfile.write_bytes(orjson.dumps({"id": "q", "index": args.index, "body": BODY}) + b"\n")
        print(f"# wrk vs escli profile vs a minimal aiohttp loop: {args.seconds:g} s each, {args.rounds} rounds "
              f"interleaved, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        for conc in [] if args.skip_es else args.concurrency:
            runs: dict[str, list[dict[str, float]]] = {"wrk": [], "escli profile": [], "aiohttp loop": []}
            for _ in range(args.rounds):
                runs["wrk"].append(run_wrk(wrk, args.url, args.index, conc, args.seconds, lua))
                runs["escli profile"].append(run_escli(args.url, args.index, conc, args.seconds, qfile))
                runs["aiohttp loop"].append(asyncio.run(minimal_loop(args.url, args.index, conc, args.seconds)))
            med = {k: median_row(v) for k, v in runs.items()}
            print(f"\nconcurrency {conc}")
            print(f"  {'contender':<14} {'req/s':>8} {'(spread)':>15} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
                  f"{'CPU us/req':>10}")
            for name, m in med.items():
                print(f"  {name:<14} {m['rps']:>8,.0f} {m['spread']:>15} {m['p50']:>8.2f} {m['p90']:>8.2f} "
                      f"{m['p99']:>8.2f} {m['cpu_us']:>10.0f}")
            w, e = med["wrk"], med["escli profile"]
            print(f"  escli/wrk: throughput {e['rps'] / w['rps']:.2f}x (target >= 0.9x), p50 "
                  f"{e['p50'] / w['p50'] - 1:+.0%}, p90 {e['p90'] / w['p90'] - 1:+.0%} (target within 15%); "
                  f"CPU/request escli/loop {e['cpu_us'] / med['aiohttp loop']['cpu_us']:.2f}x")
        workers_row(wrk, nginx, Path(tmp), qfile, lua, args.index, args.seconds, args.rounds)
    return 0


def run_minimal(url: str, index: str, conc: int, seconds: float, body: Path, processes: int) -> dict[str, float]:
    """bench/minimal_client.py: the least per request a Python client can do, in 1 or 2 processes."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "minimal_client.py"), f"{url}/{index}/_search",
                          str(body), str(conc), f"{seconds:g}", str(processes)],
                         capture_output=True, check=True).stdout
    doc = orjson.loads(out)
    nan = float("nan")
    return {"rps": doc["rps"], "p50": nan, "p90": nan, "p99": nan, "cpu_us": doc["cpu_us"]}


def workers_row(wrk: str, nginx: str, tmp: Path, qfile: Path, lua: Path, index: str, seconds: float,
                rounds: int) -> None:
    """escli profile -j 16 with 1 and 2 workers against nginx's canned answer, rounds interleaved, wrk beside, and
    the minimal client in 1 and 2 processes: what a second process costs per request on this machine."""
    server, url = start_nginx(nginx, tmp)
    body = tmp / "minimal-body.json"
    body.write_bytes(orjson.dumps(BODY))
    try:
        runs: dict[str, list[dict[str, float]]] = {"wrk -t2": [], "escli 1 worker": [], "escli 2 workers": [],
                                                   "minimal 1 proc": [], "minimal 2 procs": []}
        for _ in range(rounds):
            runs["escli 1 worker"].append(run_escli(url, index, 16, seconds, qfile, workers=1))
            runs["escli 2 workers"].append(run_escli(url, index, 16, seconds, qfile, workers=2))
            runs["wrk -t2"].append(run_wrk(wrk, url, index, 16, seconds, lua, threads=2, server=server))
            runs["minimal 1 proc"].append(run_minimal(url, index, 16, seconds, body, 1))
            runs["minimal 2 procs"].append(run_minimal(url, index, 16, seconds, body, 2))
    finally:
        server.terminate()
        server.wait()
    med = {k: median_row(v) for k, v in runs.items()}
    print(f"\n--workers against nginx (canned answer), concurrency 16, {os.cpu_count()} CPUs")
    print(f"  {'contender':<16} {'req/s':>8} {'(spread)':>15} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10}")
    for name, m in med.items():
        print(f"  {name:<16} {m['rps']:>8,.0f} {m['spread']:>15} {m['p50']:>8.2f} {m['p99']:>8.2f} "
              f"{m['cpu_us']:>10.1f}")
    one, two = med["escli 1 worker"], med["escli 2 workers"]
    print(f"  2 workers / 1 worker: throughput {two['rps'] / one['rps']:.2f}x (target >= 1.4x); "
          f"escli 2 workers / wrk: {two['rps'] / med['wrk -t2']['rps']:.2f}x")
    # One worker keeps one core busy; two share the machine with the server. With c the client's CPU per request
    # and n the server's (measured during the wrk runs, which send the same requests), the cores give 2 workers
    # at most min(2, cpus * c / (c + n)) times one worker's throughput, if a second process cost nothing per
    # request. What it does cost: k, the CPU per request of 2 processes over 1's, for escli and the minimal client.
    c, n, cpus = one["cpu_us"], med["wrk -t2"]["server_us"], os.cpu_count() or 1
    k = two["cpu_us"] / c
    k_min = med["minimal 2 procs"]["cpu_us"] / med["minimal 1 proc"]["cpu_us"]
    print(f"  nginx CPU per request {n:.1f} us, escli {c:.1f} us: {cpus} CPUs shared with the server allow 2 workers "
          f"at most {min(2.0, cpus * c / (c + n)):.2f}x one worker at no cost per request, "
          f"{min(2.0, cpus * c / (k * c + n)):.2f}x at escli's measured cost (CPU/request x{k:.2f}; "
          f"the minimal client's x{k_min:.2f})")


if __name__ == "__main__":
    sys.exit(main())
