"""The one request path, through the CLI, on the real engine behind the fault proxy: one retry policy for every
command (the product probe and health included), a PIT never reopened for a transient refusal, --max-docs exact
across reopens, Warning headers shown once, product-neutral refusals, failover to the next node."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ROOT / "sample_queries" / "products.ndjson"
Cli = Callable[..., Any]


@pytest.fixture()
def proxy(es_url: str, sample_index: str) -> Iterator[FaultProxy]:
    with FaultProxy(es_url, lifetime=600) as p:
        yield p


def ids(stdout: bytes) -> list[str]:
    return [json.loads(line)["_id"] for line in stdout.decode().splitlines()]


def pit_opens(proxy: FaultProxy) -> int:
    """Point-in-time opens that reached the engine."""
    return sum(1 for r in proxy.requests if r.method == "POST" and "/_pit" in r.target and r.fault is None)


def test_a_first_try_refused_is_retried_by_every_command(cli: Cli, proxy: FaultProxy, tmp_path: Path,
                                                         sample_index: str, index_name: Callable[[str], str]
                                                         ) -> None:
    """What a busy load balancer does: every distinct request is refused once with 429, Retry-After: 0."""
    proxy.refuse_first_try(429, retry_after="0")
    url = ("--url", proxy.url)
    # the product probe (`GET /`) of export and health takes the 429 for what it is, not for an answer
    r = cli(*url, "export", sample_index, "--max-docs", "1500", "--page-size", "500")
    assert r.code == 0, r.stderr
    assert len(set(ids(r.stdout))) == 1500
    assert any(q.target == "/" and q.fault == "429" for q in proxy.requests)
    r = cli(*url, "health", "--format", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["status"] in ("green", "yellow")
    r = cli(*url, "search", sample_index, "laptop", "--no-cache", "-o", "json")
    assert r.code == 0, r.stderr
    r = cli(*url, "batch", str(PRODUCTS), "--no-cache", "-j", "4")
    assert r.code == 0, r.stderr
    assert len(r.stdout.decode().splitlines()) == 60 and "60 ok" in r.stderr
    docs = tmp_path / "docs.ndjson"
    docs.write_bytes(b"".join(b'{"_id": "d%d", "_source": {"n": %d}}\n' % (i, i) for i in range(50)))
    r = cli(*url, "import", index_name("import"), str(docs))
    assert r.code == 0, r.stderr
    assert "50" in r.stderr


def test_a_transient_refusal_never_reopens_the_pit(cli: Cli, proxy: FaultProxy, sample_index: str) -> None:
    proxy.refuse_first_try(429, retry_after="0")
    r = cli("--url", proxy.url, "export", sample_index, "--slices", "4", "--page-size", "500", "--max-docs", "7000")
    assert r.code == 0, r.stderr
    got = ids(r.stdout)
    assert len(got) == len(set(got)) == 7000
    assert pit_opens(proxy) == 1
    assert "reopened" not in r.stderr
    assert proxy.refused > 10  # pages were refused and retried: the test tested something


@pytest.mark.parametrize("to_file", [True, False], ids=["file", "stdout"])
def test_max_docs_stays_exact_when_the_pit_is_lost(cli: Cli, proxy: FaultProxy, sample_index: str, tmp_path: Path,
                                                   to_file: bool) -> None:
    """Units read again in a new PIT do not count twice against --max-docs (they came out short, exit 0)."""
    proxy.fail(404, times=3, match=b'"search_after"', error_type="search_context_missing_exception")
    out = tmp_path / "out.ndjson"
    args = ["--url", proxy.url, "export", sample_index, "--slices", "4", "--page-size", "400", "--max-docs", "9000"]
    r = cli(*args, *(["--out", str(out)] if to_file else []))
    assert r.code == 0, r.stderr
    got = ids(out.read_bytes() if to_file else r.stdout)
    assert len(got) == len(set(got)) == 9000
    assert pit_opens(proxy) >= 2  # the lost PIT was replaced


def test_warning_headers_are_shown_once_per_text(cli: Cli, proxy: FaultProxy, sample_index: str) -> None:
    proxy.warn('"[Legacy] Parameter is Deprecated"')
    proxy.warn('"another notice"')
    url = ("--url", proxy.url)
    for args in (("search", sample_index, "lamp", "--no-cache"), ("batch", str(PRODUCTS), "--no-cache"),
                 ("export", sample_index, "--max-docs", "2000")):
        r = cli(*url, *args)
        assert r.code == 0, r.stderr
        assert r.stderr.count("[Legacy] Parameter is Deprecated") == 1, (args, r.stderr)  # case kept
        assert r.stderr.count("another notice") == 1, (args, r.stderr)
        quiet = cli(*url, "-q", *args)
        assert quiet.code == 0 and "Deprecated" not in quiet.stderr


@pytest.mark.parametrize("args", [("health", "--format", "json"),
                                  ("profile", "PRODUCTS", "lamp", "-n", "20", "--workers", "2", "--warmup", "0",
                                   "-F", "json")], ids=["health", "profile-workers"])
def test_every_command_shows_the_server_warnings(cli: Cli, proxy: FaultProxy, sample_index: str,
                                                 args: tuple[str, ...]) -> None:
    """The UI handed to open_es carries them: health and profile --workers lost them (a callback forgotten)."""
    proxy.warn('"[Legacy] Parameter is Deprecated"')
    args = tuple(sample_index if a == "PRODUCTS" else a for a in args)
    r = cli("--url", proxy.url, *args)
    assert r.code in (0, 1), r.stderr  # health: 1 is a yellow cluster (WARNING)
    assert r.stderr.count("the server says: [Legacy] Parameter is Deprecated") == 1, r.stderr
    quiet = cli("--url", proxy.url, "-q", *args)
    assert "Deprecated" not in quiet.stderr


def test_max_retries_bounds_the_tries_and_the_refusal_is_one_line(cli: Cli, proxy: FaultProxy,
                                                                   sample_index: str) -> None:
    proxy.fail(503, times=100)
    r = cli("--url", proxy.url, "--max-retries", "2", "search", sample_index, "lamp", "--no-cache")
    assert r.code == 4
    assert len(proxy.requests) == 3
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "refused the request (503 fault_proxy_error)" in r.stderr and "Traceback" not in r.stderr


def test_a_dead_node_is_skipped_for_the_next(cli: Cli, es_url: str, sample_index: str) -> None:
    r = cli("--url", "http://127.0.0.1:1", "--url", es_url, "--max-retries", "0", "batch", str(PRODUCTS),
            "--no-cache")
    assert r.code == 0, r.stderr
    assert "60 ok" in r.stderr


def test_refusals_name_the_server_not_a_product_it_is_not(cli: Cli, opensearch: httpx.Client) -> None:
    r = cli("--url", str(opensearch.base_url).rstrip("/"), "search", "no-such-index-here", "x", "--no-cache")
    assert r.code == 4
    assert "the server refused the request (404 index_not_found_exception)" in r.stderr
    assert "Elasticsearch" not in r.stderr


def test_export_is_paced_by_a_cluster_that_refuses_above_n_in_flight(cli: Cli, proxy: FaultProxy,
                                                                      sample_index: str) -> None:
    """The sample index has two units (one per shard): two readers; the proxy takes one request at a time."""
    proxy.limit_in_flight(1)
    r = cli("--url", proxy.url, "export", sample_index, "--page-size", "100", "--max-docs", "12000")
    assert r.code == 0, r.stderr
    got = ids(r.stdout)
    assert len(got) == len(set(got)) == 12000
    assert pit_opens(proxy) == 1
    assert "slowed down to 1 request in flight" in r.stderr and "429 from the server" in r.stderr
    assert 0 < proxy.refused <= 0.1 * len(proxy.requests)


def test_batch_is_paced_too(cli: Cli, proxy: FaultProxy) -> None:
    proxy.limit_in_flight(2)
    queries = PRODUCTS.read_bytes() * 5  # 300 queries, ids repeat: each gets its line
    r = cli("--url", proxy.url, "batch", "-", "-j", "8", "--no-cache", stdin=queries)
    assert r.code == 0, r.stderr
    assert "300 ok" in r.stderr and "slowed down to" in r.stderr
    assert 0 < proxy.refused <= 0.1 * len(proxy.requests)


def test_throttle_waits_between_pages(cli: Cli, proxy: FaultProxy, sample_index: str) -> None:
    """--throttle 1: the reader waits as long as its last page took before it asks for the next one. Every page is
    held 0.2 s by the proxy, so two pages of the one reader arrive at least 0.4 s apart: a lower bound that sleeps
    guarantee, whatever the machine's speed (without --throttle they come about 0.2 s apart)."""
    proxy.delay(0.2, match=b'"pit"')
    r = cli("--url", proxy.url, "export", sample_index, "--slices", "1", "--max-docs", "3000", "--throttle", "1")
    assert r.code == 0, r.stderr
    assert len(set(ids(r.stdout))) == 3000
    pages = [q.at for q in proxy.requests if b'"pit"' in q.body]
    gaps = [b - a for a, b in itertools.pairwise(pages)]
    assert len(gaps) >= 2 and min(gaps) >= 0.4
