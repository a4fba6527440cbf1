"""`escli batch` against the real engine: answers, order, _msearch, bad lines, failures, pipes, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from escli.errors import InputError
from escli.es.queries import QuerySpec, read_queries
from escli.inputs import numbered_lines

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_queries"
PRODUCTS = SAMPLES / "products.ndjson"
Cli = Callable[..., Any]


def specs(path: Path) -> list[QuerySpec]:
    with path.open("rb") as fh:
        return [q for q in read_queries(numbered_lines(fh), str(path)) if not isinstance(q, InputError)]


def results(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.decode().splitlines()]


def by_id(stdout: bytes) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in results(stdout):
        assert r["id"] not in out, f"{r['id']} answered twice"
        out[r["id"]] = r
    return out


def hit_ids(result: dict[str, Any]) -> list[str]:
    return [h["_id"] for h in result["hits"]]


def test_every_query_answered_once_with_its_own_hits(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    queries = specs(PRODUCTS)
    r = cli("batch", str(PRODUCTS), "-j", "8")
    assert r.code == 0, r.stderr
    got = by_id(r.stdout)
    assert set(got) == {q.id for q in queries} and len(results(r.stdout)) == len(queries) >= 50
    for q in queries:
        line = got[q.id]
        assert line["ok"] is True, line
        assert set(line) >= {"id", "ok", "took_ms", "latency_ms", "total", "hits"}
        assert isinstance(line["took_ms"], int) and line["latency_ms"] > 0
        # the hits are this query's hits: ask the engine directly and compare
        direct = es.post(f"/{q.index}/_search", content=orjson.dumps(q.body),
                         params={k: str(v).lower() if isinstance(v, bool) else v for k, v in q.params.items()},
                         headers={"content-type": "application/json"}).json()
        assert hit_ids(line) == [h["_id"] for h in direct["hits"]["hits"]], q.id
        assert line["total"] == direct["hits"]["total"]["value"], q.id
        if "aggregations" in direct:
            assert line["aggregations"].keys() == direct["aggregations"].keys()
    assert f"batch {PRODUCTS}: {len(queries)} queries" in r.stderr and f"{len(queries)} ok, 0 failed" in r.stderr


@pytest.mark.parametrize("extra", [[], ["--msearch", "7"]], ids=["search", "msearch"])
def test_ordered_output_follows_the_input(cli: Cli, sample_index: str, extra: list[str]) -> None:
    r = cli("batch", str(PRODUCTS), "--ordered", "-j", "6", *extra)
    assert r.code == 0, r.stderr
    assert [x["id"] for x in results(r.stdout)] == [q.id for q in specs(PRODUCTS)]


def test_unordered_output_has_every_query_once(cli: Cli, sample_index: str) -> None:
    r = cli("batch", str(PRODUCTS), "-j", "16")
    assert r.code == 0, r.stderr
    assert sorted(x["id"] for x in results(r.stdout)) == sorted(q.id for q in specs(PRODUCTS))


def test_msearch_gives_the_same_hits_as_single_requests(cli: Cli, sample_index: str) -> None:
    single = cli("batch", str(PRODUCTS), "-j", "4")
    grouped = cli("batch", str(PRODUCTS), "-j", "3", "--msearch", "8")
    assert single.code == grouped.code == 0, grouped.stderr
    a, b = by_id(single.stdout), by_id(grouped.stdout)
    assert a.keys() == b.keys()
    for qid in a:
        assert hit_ids(a[qid]) == hit_ids(b[qid]), qid
        assert a[qid]["total"] == b[qid]["total"], qid
        assert a[qid].get("aggregations", {}).keys() == b[qid].get("aggregations", {}).keys()
    # 60 queries in groups of 8: 8 requests instead of 60
    assert "8 requests" in grouped.stderr and "60 requests" in single.stderr


def test_short_and_full_forms_give_the_same_hits(cli: Cli, sample_index: str) -> None:
    short = cli("batch", str(PRODUCTS))
    full = cli("batch", str(SAMPLES / "products-full.ndjson"), "--msearch", "10")
    assert short.code == full.code == 0
    a, b = by_id(short.stdout), by_id(full.stdout)
    assert {k: hit_ids(v) for k, v in a.items()} == {k: hit_ids(v) for k, v in b.items()}


def test_bad_lines_are_named_and_the_rest_runs_exit_2(cli: Cli, sample_index: str) -> None:
    path = SAMPLES / "mistakes.ndjson"
    r = cli("batch", str(path), "--ordered")
    assert r.code == 2
    assert [x["id"] for x in results(r.stdout)] == ["ok-1", "ok-2", "ok-3"]
    for line in (10, 12, 13, 14, 15, 16, 17):
        assert f"{path}:{line}" in r.stderr
    assert f"escli: error: {path}:14: unknown key(s): query" in r.stderr
    assert f"{path}: 7 bad lines (the first at line 10)" in r.stderr
    assert "Traceback" not in r.stderr


def test_fail_fast_stops_at_the_first_bad_line(cli: Cli, sample_index: str) -> None:
    path = SAMPLES / "mistakes.ndjson"
    r = cli("batch", str(path), "--fail-fast", "--ordered", "-j", "1")
    assert r.code == 2
    assert [x["id"] for x in results(r.stdout)] == ["ok-1"]
    assert f"{path}:10:" in r.stderr and f"{path}:12" not in r.stderr
    assert "the run stopped there" in r.stderr


def test_refused_queries_are_reported_and_exit_1(cli: Cli, sample_index: str) -> None:
    for extra in ([], ["--msearch", "5"]):
        r = cli("batch", str(SAMPLES / "refused.ndjson"), *extra)
        assert r.code == 1, r.stderr
        got = by_id(r.stdout)
        assert got["good-1"]["ok"] and got["good-2"]["ok"] and got["good-2"]["aggregations"]["c"]["buckets"]
        assert got["missing-index"]["error"] == {"type": "index_not_found_exception", "status": 404,
                                                 "reason": "no such index [no-such-index-escli]"}
        assert got["unknown-query-type"]["error"]["type"] == "parsing_exception"
        assert got["unknown-query-type"]["error"]["status"] == 400
        assert got["sort-on-text"]["error"]["status"] == 400
        assert "3 of 5 queries failed" in r.stderr
        assert "2 ok, 3 failed" in r.stderr and "index_not_found_exception 1" in r.stderr


def test_fail_fast_stops_at_the_first_failed_query(cli: Cli, sample_index: str) -> None:
    r = cli("batch", str(SAMPLES / "refused.ndjson"), "--fail-fast", "--ordered", "-j", "1")
    assert r.code == 1
    assert [(x["id"], x["ok"]) for x in results(r.stdout)] == [("good-1", True), ("missing-index", False)]
    assert "--fail-fast stopped the run" in r.stderr


def test_stdin_and_stdout_only_ndjson(cli: Cli, sample_index: str) -> None:
    data = b"# from stdin\n\n" + b"".join(
        orjson.dumps({"id": f"s{i}", "index": "products", "q": "laptop", "size": 1, "from": i}) + b"\n"
        for i in range(25))
    r = cli("batch", "-", "--ordered", stdin=data)
    assert r.code == 0, r.stderr
    lines = results(r.stdout)
    assert [x["id"] for x in lines] == [f"s{i}" for i in range(25)]
    assert len({hit_ids(x)[0] for x in lines}) == 25  # from=i: 25 different documents
    assert "<stdin>: 25 queries" in r.stderr


def test_an_id_less_line_is_named_by_its_line_number(cli: Cli, sample_index: str) -> None:
    r = cli("batch", "-", stdin=b'\n{"index": "products", "q": "kettle", "size": 1}\n')
    assert r.code == 0 and results(r.stdout)[0]["id"] == "line-2"


def test_usage_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    r = cli("batch", str(tmp_path / "nope.ndjson"))
    assert r.code == 2 and "nope.ndjson: no such file" in r.stderr
    r = cli("batch", str(PRODUCTS), "-o", "csv")
    assert r.code == 2 and "--output csv" in r.stderr
    r = cli("batch", str(PRODUCTS), "-j", "0")
    assert r.code == 2


def test_unreachable_cluster_exits_3(cli: Cli) -> None:
    r = cli("--url", "http://127.0.0.1:9", "--max-retries", "1", "batch", str(PRODUCTS))
    assert r.code == 3
    assert "cluster unreachable" in r.stderr and "Traceback" not in r.stderr
    for line in results(r.stdout):  # what was tried is reported, the rest is not run
        assert line["ok"] is False and line["error"]["type"] == "connection_error"


def test_a_single_unreachable_query_still_exits_3(cli: Cli) -> None:
    r = cli("--url", "http://127.0.0.1:9", "--max-retries", "0", "batch", "-",
            stdin=b'{"id": "only", "index": "products", "q": "x"}\n')
    assert r.code == 3 and "cluster unreachable" in r.stderr


def _query_lines(n: int, prefix: str = "b") -> bytes:
    return b"".join(orjson.dumps({"id": f"{prefix}{i}", "index": "products",
                                  "body": {"size": 3, "query": {"term": {"category": "books"}}}}) + b"\n"
                    for i in range(n))


def test_closed_pipe_ends_quietly(escli_proc: Callable[..., Any], isolated_env: dict[str, str], tmp_path: Path,
                                  sample_index: str) -> None:
    path = tmp_path / "q.ndjson"
    path.write_bytes(_query_lines(3000))
    exe = str(Path(sys.executable).parent / "escli")
    proc = subprocess.Popen([exe, "batch", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=isolated_env)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert json.loads(first)["ok"] is True
    assert "Traceback" not in err and "Exception" not in err


def test_slow_stdout_slows_the_reading_of_stdin(isolated_env: dict[str, str], sample_index: str) -> None:
    """Backpressure: while nobody reads stdout, escli stops reading stdin; nothing piles up in its memory."""
    import psutil

    total = 40_000
    data = _query_lines(total, prefix="p")
    exe = str(Path(sys.executable).parent / "escli")
    proc = subprocess.Popen([exe, "batch", "-", "-j", "4", "--msearch", "20"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=isolated_env, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    written = 0
    lock = threading.Lock()

    def feed() -> None:
        nonlocal written
        assert proc.stdin is not None
        try:
            for i in range(0, len(data), 4096):
                proc.stdin.write(data[i:i + 4096])
                with lock:
                    written = i + 4096
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    # Nobody reads stdout. Wait for the state backpressure ends in: escli's stdout pipe full (it wrote all it could)
    # and its stdin pipe full (it stopped reading). A bounded poll on that state, not a judgement of elapsed time.
    import fcntl
    import struct
    import termios

    def queued(fd: int) -> int:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])

    def full(fd: int) -> bool:
        return queued(fd) > fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) - 4096  # no room for the next 4 KiB write

    in_fd, out_fd = proc.stdin.fileno(), proc.stdout.fileno()
    for _ in range(12_000):  # not a time limit: how often to look, bounded so a broken run ends
        if full(out_fd) and full(in_fd):
            break
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.01)
    else:
        raise AssertionError("escli never stopped reading stdin while its stdout was blocked")
    with lock:
        last = written
    assert last < len(data) // 2, f"escli read {last} of {len(data)} bytes while its stdout was blocked"
    rss_stalled = psutil.Process(proc.pid).memory_info().rss
    # Now read everything: every query is answered, and the feeder finishes.
    out = proc.stdout.read()
    err = proc.stderr.read()
    feeder.join(60)
    assert proc.wait(timeout=60) == 0, err.decode()[-2000:]
    ids = [json.loads(x)["id"] for x in out.splitlines()]
    assert len(ids) == total and len(set(ids)) == total
    assert rss_stalled < 150 * 2**20


@pytest.mark.parametrize("ordered", [False, True])
def test_many_queries_on_stdin_with_msearch(cli: Cli, sample_index: str, ordered: bool) -> None:
    n = 5000
    r = cli("batch", "-", "-j", "4", "--msearch", "50", *(["--ordered"] if ordered else []),
            stdin=_query_lines(n))
    assert r.code == 0, r.stderr
    ids = [x["id"] for x in results(r.stdout)]
    assert len(ids) == n and set(ids) == {f"b{i}" for i in range(n)}
    if ordered:
        assert ids == [f"b{i}" for i in range(n)]


def test_progress_and_colour_stay_off_the_pipe(escli_proc: Callable[..., Any], sample_index: str) -> None:
    p = escli_proc("batch", str(PRODUCTS))
    assert p.returncode == 0
    assert b"\x1b[" not in p.stderr and b"\r" not in p.stderr
    assert p.stderr.decode().count("\n") == 1  # just the summary
    assert all(json.loads(x)["ok"] for x in p.stdout.splitlines())


def test_quiet_drops_the_summary(cli: Cli, sample_index: str) -> None:
    r = cli("-q", "batch", str(PRODUCTS))
    assert r.code == 0 and r.stderr == ""
    assert len(results(r.stdout)) == len(specs(PRODUCTS))


def test_sniffed_nodes_give_the_same_answers(es_url: str, sample_index: str) -> None:
    """With `sniff = true` the nodes come from `_nodes/http` (on the one request path): the same lines."""
    import asyncio
    import io
    from contextlib import aclosing

    from escli.core.batch import BatchOptions, BatchStats, run_batch
    from escli.es.connect import open_es
    from escli.es.queries import aread_queries
    from escli.es.transport import HttpTransport
    from escli.inputs import anumbered_lines
    from escli.settings import Settings
    from escli.ui import SILENT

    data = PRODUCTS.read_bytes() + (SAMPLES / "refused.ndjson").read_bytes()
    # The test engine publishes 127.0.0.1:PORT; given as localhost, a sniffed set is visibly another one.
    given = es_url.replace("127.0.0.1", "localhost")

    async def run(sniff: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
        lines: list[bytes] = []
        async with open_es(Settings(urls=(given,), max_retries=0, sniff=sniff), SILENT, concurrency=4) as client:
            queries = aread_queries(anumbered_lines(io.BytesIO(data)), "q")
            async with aclosing(run_batch(client, queries, BatchOptions(concurrency=4), BatchStats())) as batches:
                async for batch in batches:
                    lines.extend(batch)
            assert isinstance(client.transport, HttpTransport)
            urls = [n.url for n in client.transport.nodes.nodes]
        return by_id(b"".join(lines)), urls

    (plain, plain_urls), (sniffed, sniffed_urls) = asyncio.run(run(False)), asyncio.run(run(True))
    assert plain_urls == [given] and sniffed_urls == [es_url]
    assert plain.keys() == sniffed.keys() and len(plain) == 65
    for qid in plain:
        assert plain[qid]["ok"] == sniffed[qid]["ok"], qid
        if plain[qid]["ok"]:
            assert hit_ids(plain[qid]) == hit_ids(sniffed[qid]), qid
        else:
            assert plain[qid]["error"] == sniffed[qid]["error"], qid
