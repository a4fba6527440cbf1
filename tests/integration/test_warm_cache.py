"""`escli warm-cache` against the real engine: fills what search reads, fresh/refresh-ahead/expiry, the lock."""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from escli.cache import cache_key, open_cache
from escli.cache.product import product_identity
from escli.core.warm import WarmLock
from escli.settings import Settings
from tests.support.fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_queries"
Cli = Callable[..., Any]

# Cacheable queries; the first one is what `escli search products laptop -f name^2 -f description --size 10` sends.
WARM = [
    {"id": "laptop", "index": "products", "q": "laptop", "fields": ["name^2", "description"], "size": 10},
    {"id": "books", "index": "products", "body": {"size": 5, "query": {"term": {"category": "books"}}}},
    {"id": "cats", "index": "products", "body": {"size": 0, "aggs": {"c": {"terms": {"field": "category"}}}}},
    {"id": "cheap", "index": "products", "range": {"price": {"lt": 10}}, "sort": [{"price": "asc"}], "size": 3},
]
SEARCH_LAPTOP = ["search", "products", "laptop", "-f", "name^2", "-f", "description", "--size", "10"]


@pytest.fixture()
def warm_file(tmp_path: Path, sample_index: str) -> Path:
    path = tmp_path / "warm.ndjson"
    path.write_bytes(b"# queries to keep warm\n" + b"".join(orjson.dumps(q) + b"\n" for q in WARM))
    return path


def summary(stdout: bytes) -> dict[str, Any]:
    lines = stdout.decode().splitlines()
    assert len(lines) == 1, lines  # exactly one JSON line on stdout
    result: dict[str, Any] = json.loads(lines[0])
    assert {"queries", "refreshed", "fresh", "failed", "seconds"} <= result.keys()
    return result


def cache_entries(isolated_env: dict[str, str], es_url: str) -> dict[str, float]:
    """expires_at of each WARM query's entry in the test's cache (missing ones left out)."""
    from escli.es.queries import parse_query_line

    settings = Settings(urls=(es_url,), cache_dir=Path(isolated_env["XDG_CACHE_HOME"]) / "escli")
    cache = open_cache(settings)
    try:
        out = {}
        for i, q in enumerate(WARM):
            spec = parse_query_line(orjson.dumps(q), i + 1, "w")
            assert spec is not None and not isinstance(spec, Exception)
            entry = cache.get(cache_key(product_identity(settings.identity, "elasticsearch"), spec.index, spec.body,
                                        spec.params))
            if entry is not None:
                out[spec.id] = entry.expires_at
        return out
    finally:
        cache.close()


def test_twice_second_run_all_fresh_then_search_hits(cli: Cli, warm_file: Path, isolated_env: dict[str, str],
                                                     es_url: str) -> None:
    first = cli("warm-cache", str(warm_file), "--ttl", "10m")
    assert first.code == 0, first.stderr
    s1 = summary(first.stdout)
    assert (s1["queries"], s1["refreshed"], s1["fresh"], s1["failed"]) == (4, 4, 0, 0)
    assert set(cache_entries(isolated_env, es_url)) == {q["id"] for q in WARM}

    second = cli("warm-cache", str(warm_file), "--ttl", "10m")
    assert second.code == 0
    s2 = summary(second.stdout)
    assert (s2["queries"], s2["refreshed"], s2["fresh"], s2["failed"]) == (4, 0, 4, 0)

    hit = cli("-o", "json", *SEARCH_LAPTOP)
    assert hit.code == 0, hit.stderr
    assert "cache hit" in hit.stderr
    body = json.loads(hit.stdout)
    assert body["_escli"]["cache"] == "hit-disk"
    assert len(body["hits"]["hits"]) == 10


def test_search_by_body_file_hits_what_warm_cache_stored(cli: Cli, warm_file: Path, tmp_path: Path) -> None:
    assert cli("warm-cache", str(warm_file), "--request-cache").code == 0
    body = tmp_path / "books.json"
    body.write_bytes(orjson.dumps(WARM[1]["body"]))
    r = cli("-o", "json", "search", "products", "--body", str(body))
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["_escli"]["cache"] == "hit-disk"


@pytest.mark.parametrize(("line", "search_extra"), [
    ({}, ["--size", "10", "--from", "0", "--source", "true"]),  # the search writes the defaults out
    ({"size": 10, "from": 0, "source": True, "params": {"expand_wildcards": "open"}}, []),  # the file does
])
def test_a_default_written_out_on_either_side_still_hits(cli: Cli, tmp_path: Path, sample_index: str,
                                                         line: dict[str, Any], search_extra: list[str]) -> None:
    path = tmp_path / "defaults.ndjson"
    path.write_bytes(orjson.dumps({"index": "products", "q": "laptop", "fields": ["name^2", "description"],
                                   **line}) + b"\n")
    assert summary(cli("warm-cache", str(path)).stdout)["refreshed"] == 1
    r = cli("-o", "json", "search", "products", "laptop", "-f", "name^2", "-f", "description", *search_extra)
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["_escli"]["cache"] == "hit-disk"


def test_refresh_ahead_reruns_only_entries_expiring_soon(cli: Cli, warm_file: Path, isolated_env: dict[str, str],
                                                         es_url: str, tmp_path: Path) -> None:
    assert cli("warm-cache", str(warm_file), "--ttl", "300").code == 0
    before = cache_entries(isolated_env, es_url)
    # a window shorter than the time left: nothing to do
    r = cli("warm-cache", str(warm_file), "--ttl", "300", "--refresh-ahead", "60")
    s = summary(r.stdout)
    assert (s["refreshed"], s["fresh"]) == (0, 4)
    assert cache_entries(isolated_env, es_url) == before
    # add a query with a long TTL: only the four short-lived entries fall inside a 10-minute window
    longer = tmp_path / "long.ndjson"
    longer.write_bytes(b'{"id": "long", "index": "products", "q": "kettle", "size": 2}\n')
    assert cli("warm-cache", str(longer), "--ttl", "1h").code == 0
    both = tmp_path / "both.ndjson"
    both.write_bytes(warm_file.read_bytes() + longer.read_bytes())
    r = cli("warm-cache", str(both), "--ttl", "300", "--refresh-ahead", "10m")
    s = summary(r.stdout)
    assert r.code == 0, r.stderr
    assert (s["queries"], s["refreshed"], s["fresh"]) == (5, 4, 1)
    after = cache_entries(isolated_env, es_url)
    assert all(after[k] > before[k] for k in before)  # stored again, so they expire later


def test_expired_entries_are_refreshed(cli: Cli, warm_file: Path, isolated_env: dict[str, str],
                                       es_url: str) -> None:
    assert summary(cli("warm-cache", str(warm_file), "--ttl", "1").stdout)["refreshed"] == 4
    deadline = time.time() + 30
    while cache_entries(isolated_env, es_url) and time.time() < deadline:
        time.sleep(0.2)
    assert cache_entries(isolated_env, es_url) == {}
    s = summary(cli("warm-cache", str(warm_file), "--ttl", "1").stdout)
    assert (s["refreshed"], s["fresh"]) == (4, 0)


def test_uncacheable_queries_are_skipped_not_failed(cli: Cli, sample_index: str) -> None:
    r = cli("warm-cache", str(SAMPLES / "products.ndjson"))
    assert r.code == 0, r.stderr
    s = summary(r.stdout)
    assert (s["queries"], s["refreshed"], s["skipped"], s["failed"]) == (60, 58, 2, 0)
    assert "products.ndjson:35: query pref-session: not cached: preference is set per user" in r.stderr
    assert "query recent-now-math: not cached: the query uses `now` date math" in r.stderr


def test_lock_held_means_already_running(cli: Cli, warm_file: Path, isolated_env: dict[str, str]) -> None:
    lock = WarmLock(Path(isolated_env["XDG_CACHE_HOME"]) / "escli", str(warm_file))
    assert lock.acquire()
    try:
        r = cli("warm-cache", str(warm_file))
        assert r.code == 0
        assert "already running" in r.stderr and "pid " in r.stderr
        s = summary(r.stdout)
        assert s["already_running"] is True and s["refreshed"] == 0
    finally:
        lock.release()
    r = cli("warm-cache", str(warm_file))
    assert r.code == 0 and summary(r.stdout)["refreshed"] == 4


def test_quiet_run_is_silent_on_stderr_even_when_overlapping_or_skipping(
        cli: Cli, warm_file: Path, isolated_env: dict[str, str]) -> None:
    """Under cron (-q) only real errors reach stderr: not-cached notes and the overlap stay in the summary."""
    r = cli("-q", "warm-cache", str(SAMPLES / "products.ndjson"))
    assert r.code == 0 and r.stderr == "", r.stderr
    assert summary(r.stdout)["skipped"] == 2
    lock = WarmLock(Path(isolated_env["XDG_CACHE_HOME"]) / "escli", str(warm_file))
    assert lock.acquire()
    try:
        r = cli("-q", "warm-cache", str(warm_file))
        assert r.code == 0 and r.stderr == "", r.stderr
        assert summary(r.stdout)["already_running"] is True
    finally:
        lock.release()


def test_summary_says_when_the_run_started(cli: Cli, warm_file: Path) -> None:
    before = time.time()
    s = summary(cli("warm-cache", str(warm_file)).stdout)
    started = calendar.timegm(time.strptime(s["started_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert before - 1 <= started <= time.time()
    assert next(iter(s)) == "started_at"  # first, so a log line reads in time order


def test_two_overlapping_runs_one_says_already_running(isolated_env: dict[str, str], sample_index: str) -> None:
    exe = str(Path(sys.executable).parent / "escli")
    first = subprocess.Popen([exe, "warm-cache", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=isolated_env)
    assert first.stdin is not None
    try:
        first.stdin.write(orjson.dumps(WARM[0]) + b"\n")
        first.stdin.flush()
        lock_file = Path(isolated_env["XDG_CACHE_HOME"]) / "escli" / "warm-cache-stdin.lock"
        deadline = time.time() + 60
        while time.time() < deadline and f"pid {first.pid}" not in (
                lock_file.read_text() if lock_file.exists() else ""):
            time.sleep(0.05)
        # the first run holds the lock and waits for more input: a second run of the same job leaves at once
        second = subprocess.run([exe, "warm-cache", "-"], input=orjson.dumps(WARM[1]) + b"\n",
                                capture_output=True, env=isolated_env, timeout=60, check=False)
        assert second.returncode == 0
        assert b"already running" in second.stderr and f"pid {first.pid}".encode() in second.stderr
        assert summary(second.stdout)["already_running"] is True
    finally:
        first.stdin.close()
    assert first.stdout is not None and first.stderr is not None
    out, err = first.stdout.read(), first.stderr.read()
    assert first.wait(timeout=120) == 0, err
    s = summary(out)
    assert (s["queries"], s["refreshed"]) == (1, 1) and "already_running" not in s


def test_failures_are_named_and_exit_1(cli: Cli, sample_index: str) -> None:
    path = SAMPLES / "refused.ndjson"
    r = cli("warm-cache", str(path))
    assert r.code == 1
    s = summary(r.stdout)
    assert (s["queries"], s["refreshed"], s["failed"]) == (5, 2, 3)
    assert f"{path}:3: query missing-index: index_not_found_exception (404)" in r.stderr
    assert f"{path}:4: query unknown-query-type: parsing_exception (400)" in r.stderr
    assert "3 of 5 queries could not be refreshed" in r.stderr


def test_bad_lines_are_named_and_exit_1(cli: Cli, sample_index: str) -> None:
    path = SAMPLES / "mistakes.ndjson"
    r = cli("warm-cache", str(path))
    assert r.code == 1
    s = summary(r.stdout)
    assert (s["queries"], s["refreshed"], s["bad_lines"], s["failed"]) == (3, 3, 7, 7)
    assert f"{path}:10:52: invalid JSON" in r.stderr and f"{path}:17:" in r.stderr


def test_unreachable_exits_3_with_a_summary(cli: Cli, warm_file: Path) -> None:
    r = cli("--url", "http://127.0.0.1:9", "--max-retries", "0", "warm-cache", str(warm_file))
    assert r.code == 3
    assert "cluster unreachable" in r.stderr and "Traceback" not in r.stderr
    line = summary(r.stdout)
    assert line["refreshed"] == 0
    # a log reader sees the outage (issue 36: it was a quiet line of 0 queries and 0 failures)
    assert line["exit"] == 3 and line["error"].startswith("cluster unreachable") and line["error"] in r.stderr


@pytest.fixture()
def proxy(es_url: str, sample_index: str) -> Iterator[FaultProxy]:
    with FaultProxy(es_url, lifetime=600) as p:
        yield p


def test_429_and_drops_are_retried(cli: Cli, warm_file: Path, proxy: FaultProxy) -> None:
    # faults on the searches only: the one `GET /` that learns the product (for the cache key) goes through
    proxy.fail(429, times=2, retry_after="1", match=b"_search")
    proxy.drop(times=1, match=b"_search")
    r = cli("--url", proxy.url, "warm-cache", str(warm_file), "-j", "1")
    assert r.code == 0, r.stderr
    s = summary(r.stdout)
    assert (s["refreshed"], s["failed"], s["retries"]) == (4, 0, 3)
    assert proxy.injected == 3 and proxy.forwarded == 4 + 1


def test_request_cache_parameter_is_sent(cli: Cli, warm_file: Path, proxy: FaultProxy) -> None:
    assert cli("--url", proxy.url, "warm-cache", str(warm_file), "--request-cache").code == 0
    searches = [q for q in proxy.requests if "_search" in q.target]  # and one `GET /` for the product
    assert len(searches) == 4 and len(proxy.requests) == 5
    assert all("request_cache=true" in q.target for q in searches)


def test_quiet_cron_run_prints_only_the_summary(escli_proc: Callable[..., Any], warm_file: Path) -> None:
    p = escli_proc("warm-cache", str(warm_file))
    assert p.returncode == 0
    assert p.stderr == b""  # no progress bar, no colour, nothing but the summary on stdout
    assert summary(p.stdout)["refreshed"] == 4


def test_usage_errors_exit_2(cli: Cli, warm_file: Path, tmp_path: Path) -> None:
    r = cli("--no-cache", "warm-cache", str(warm_file))
    assert r.code == 2 and "--no-cache" in r.stderr
    r = cli("warm-cache", str(warm_file), "--ttl", "soon")
    assert r.code == 2 and "--ttl soon" in r.stderr
    r = cli("warm-cache", str(tmp_path / "missing.ndjson"))
    assert r.code == 2 and "missing.ndjson: no such file" in r.stderr and r.stdout == b""
