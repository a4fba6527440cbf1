"""`escli batch` retries: 429/503 and dropped connections injected by a fault proxy in front of the real engine."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ROOT / "sample_queries" / "products.ndjson"
Cli = Callable[..., Any]

QUERIES = b"".join(
    b'{"id": "q%d", "index": "products", "q": "%s", "fields": ["name"], "size": 2}\n' % (i, word)
    for i, word in enumerate([b"laptop", b"kettle", b"camera", b"boots", b"coffee", b"chair"]))


@pytest.fixture()
def proxy(es_url: str, sample_index: str) -> Iterator[FaultProxy]:
    with FaultProxy(es_url, lifetime=600) as p:
        yield p


def results(stdout: bytes) -> dict[str, dict[str, Any]]:
    out = {}
    for line in stdout.decode().splitlines():
        r = json.loads(line)
        assert r["id"] not in out
        out[r["id"]] = r
    return out


def test_proxy_passes_everything_through_untouched(cli: Cli, proxy: FaultProxy) -> None:
    r = cli("--url", proxy.url, "batch", str(PRODUCTS), "-j", "4")
    assert r.code == 0, r.stderr
    assert proxy.injected == 0 and proxy.forwarded == 60


def test_429_with_retry_after_is_retried_to_success(cli: Cli, proxy: FaultProxy) -> None:
    proxy.fail(429, times=3, retry_after="1")
    r = cli("--url", proxy.url, "batch", "-", "-j", "1", stdin=QUERIES)
    assert r.code == 0, r.stderr
    got = results(r.stdout)
    assert len(got) == 6 and all(x["ok"] for x in got.values())
    assert proxy.injected == 3 and proxy.forwarded == 6
    assert "3 retries, 9 requests" in r.stderr
    # the three 429s hit the first query, which was sent 4 times (max retries 3)
    assert [q.fault for q in proxy.requests[:4]] == ["429", "429", "429", None]


def test_503s_and_dropped_connections_are_retried_to_success(cli: Cli, proxy: FaultProxy) -> None:
    proxy.fail(503, times=2)
    proxy.drop(times=2)
    proxy.fail(502, times=1)
    proxy.fail(504, times=1)
    r = cli("--url", proxy.url, "--max-retries", "6", "batch", "-", "-j", "3", "--ordered", stdin=QUERIES)
    assert r.code == 0, r.stderr
    assert [x["id"] for x in map(json.loads, r.stdout.splitlines())] == [f"q{i}" for i in range(6)]
    assert proxy.injected == 6 and proxy.forwarded == 6
    assert "6 retries" in r.stderr


def test_msearch_requests_are_retried_whole(cli: Cli, proxy: FaultProxy) -> None:
    proxy.fail(429, times=2, retry_after="0")
    proxy.drop(times=1)
    r = cli("--url", proxy.url, "batch", str(PRODUCTS), "-j", "2", "--msearch", "10")
    assert r.code == 0, r.stderr
    got = results(r.stdout)
    assert len(got) == 60 and all(x["ok"] for x in got.values())
    assert proxy.injected == 3
    assert all(q.target.startswith("/_msearch") for q in proxy.requests)
    assert proxy.forwarded == 6  # 60 queries in 6 _msearch requests, each answered once


def test_429_reported_when_retries_run_out(cli: Cli, proxy: FaultProxy) -> None:
    proxy.fail(429, times=1000, retry_after="0", match=b"camera")
    r = cli("--url", proxy.url, "--max-retries", "2", "batch", "-", "-j", "2", stdin=QUERIES)
    assert r.code == 1
    got = results(r.stdout)
    assert got["q2"] == {"id": "q2", "ok": False, "error": {"type": "es_rejected_execution_exception",
                                                            "reason": "injected by the fault proxy", "status": 429}}
    assert all(got[f"q{i}"]["ok"] for i in (0, 1, 3, 4, 5))
    assert proxy.injected == 3  # the first try and two retries
    assert "1 of 6 queries failed" in r.stderr and "es_rejected_execution_exception 1" in r.stderr


def test_dropped_connections_reported_when_retries_run_out(cli: Cli, proxy: FaultProxy) -> None:
    proxy.drop(times=1000, match=b"boots")
    r = cli("--url", proxy.url, "--max-retries", "1", "batch", "-", "-j", "2", stdin=QUERIES)
    assert r.code == 1, r.stderr
    got = results(r.stdout)
    assert got["q3"]["ok"] is False
    assert got["q3"]["error"]["type"] == "connection_error" and got["q3"]["error"]["status"] is None
    assert sum(x["ok"] for x in got.values()) == 5
    assert proxy.injected == 2


def test_msearch_falls_back_to_single_searches_when_one_query_is_broken(cli: Cli, proxy: FaultProxy) -> None:
    data = QUERIES + b'{"id": "bad", "index": "products", "body": {"query": {"no_such_query": {}}}}\n'
    r = cli("--url", proxy.url, "batch", "-", "--msearch", "10", stdin=data)
    assert r.code == 1
    got = results(r.stdout)
    assert got["bad"]["error"]["type"] == "parsing_exception"
    assert all(got[f"q{i}"]["ok"] for i in range(6))
    targets = [q.target.split("?")[0] for q in proxy.requests]
    assert targets[0] == "/_msearch" and targets.count("/products/_search") == 7


def test_no_retries_with_max_retries_0(cli: Cli, proxy: FaultProxy) -> None:
    proxy.fail(503, times=1)
    r = cli("--url", proxy.url, "--max-retries", "0", "batch", "-", "-j", "1", "--ordered", stdin=QUERIES)
    assert r.code == 1
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["ok"] is False and lines[0]["error"]["status"] == 503
    assert all(x["ok"] for x in lines[1:])
    assert "0 retries" in r.stderr


def test_every_connection_dropped_is_unreachable_exit_3(cli: Cli, proxy: FaultProxy) -> None:
    proxy.drop(times=10_000)
    r = cli("--url", proxy.url, "--max-retries", "1", "batch", str(PRODUCTS), "-j", "2")
    assert r.code == 3
    assert "cluster unreachable" in r.stderr and "Traceback" not in r.stderr
    assert proxy.forwarded == 0
    assert proxy.injected < 60 * 2  # it gave up early instead of trying every query
