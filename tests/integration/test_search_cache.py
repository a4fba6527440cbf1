"""The on-disk cache through `escli search` and `escli cache`, against the real engine."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from escli.cache import DEFAULT_TTL, open_cache
from escli.core.search import cache_identity, search_with_cache
from escli.es.connect import open_es
from escli.settings import resolve
from escli.ui import SILENT
from tests.conftest import ES_URL, Result
from tests.support.fault_proxy import FaultProxy

Cli = Callable[..., Result]


def meta(r: Result) -> dict[str, Any]:
    assert r.code == 0, r.stderr
    block: dict[str, Any] = json.loads(r.out)["_escli"]
    return block


def cache_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_CACHE_HOME"]) / "escli"


def entries(cli: Cli) -> dict[str, Any]:
    r = cli("cache", "stats", "-o", "json")
    assert r.code == 0, r.stderr
    stats: dict[str, Any] = json.loads(r.out)
    return stats


def test_miss_then_hit_with_the_same_answer(cli: Cli, sample_index: str) -> None:
    args = ("search", sample_index, "laptop", "-f", "name^2", "-n", "5", "-o", "json")
    first = cli(*args)
    assert meta(first)["cache"] == "miss" and "cache hit" not in first.stderr
    second = cli(*args)
    m = meta(second)
    assert m["cache"] == "hit-disk" and m["expires_in_s"] <= DEFAULT_TTL and m["age_s"] >= 0
    assert "escli: cache hit" in second.stderr
    a, b = json.loads(first.out), json.loads(second.out)
    assert a["hits"] == b["hits"] and a["took"] == b["took"]
    # key order and whitespace of a body do not matter: the same search from a body file is a hit too
    stats = entries(cli)
    assert stats["entries"] == 1 and stats["expired"] == 0
    assert stats["indices"] == {sample_index: {"entries": 1, "bytes": stats["indices"][sample_index]["bytes"]}}


def test_body_key_order_and_whitespace_share_an_entry(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text('{"size": 2, "query": {"match": {"name": {"query": "desk", "operator": "and"}}}}')
    b.write_text('{\n  "query" : { "match" : { "name" : { "operator" : "and", "query" : "desk" } } },\n'
                 '  "size" : 2\n}\n')
    assert meta(cli("search", sample_index, "--body", str(a), "-o", "json"))["cache"] == "miss"
    assert meta(cli("search", sample_index, "--body", str(b), "-o", "json"))["cache"] == "hit-disk"
    # a different parameter is a different entry
    assert meta(cli("search", sample_index, "--body", str(b), "--preference", "_local", "-o", "json"))[
        "cache"] == "miss"


def test_entries_expire(cli: Cli, sample_index: str, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("search", sample_index, "kettle", "-n", "1", "-o", "json", "--cache-ttl", "30")
    assert meta(cli(*args))["cache"] == "miss"
    assert meta(cli(*args))["cache"] == "hit-disk"
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 31)  # 31 seconds later
    assert meta(cli(*args))["cache"] == "miss"


def test_bypass_rules_and_forcing(cli: Cli, sample_index: str) -> None:
    now = ("search", sample_index, "--range", "created_at=gte:now-3000d", "-n", "1", "-o", "json")
    first = meta(cli(*now))
    assert first["cache"] == "bypass" and "now" in first["bypass_reason"]
    assert meta(cli(*now))["cache"] == "bypass"
    assert meta(cli(*now, "--cache"))["cache"] == "miss"
    assert meta(cli(*now, "--cache"))["cache"] == "hit-disk"
    per_user = ("search", sample_index, "lamp", "--preference", "session-1234", "-o", "json")
    assert meta(cli(*per_user))["cache"] == "bypass"
    assert meta(cli(*per_user))["cache"] == "bypass"
    routed = ("search", sample_index, "lamp", "--routing", "user-9", "-o", "json")
    assert meta(cli(*routed))["cache"] == "bypass"
    shared = ("search", sample_index, "lamp", "--preference", "_local", "-o", "json")
    assert meta(cli(*shared))["cache"] == "miss"
    assert meta(cli(*shared))["cache"] == "hit-disk"
    verbose = cli(*now, "-v")
    assert "cache bypass: the query uses `now` date math" in verbose.stderr


def test_no_cache_reads_and_writes_nothing(cli: Cli, sample_index: str, isolated_env: dict[str, str]) -> None:
    assert meta(cli("search", sample_index, "chair", "-o", "json", "--no-cache"))["cache"] == "bypass"
    assert meta(cli("--no-cache", "search", sample_index, "chair", "-o", "json"))["cache"] == "bypass"
    assert not cache_dir(isolated_env).exists()
    assert meta(cli("search", sample_index, "chair", "-o", "json"))["cache"] == "miss"
    assert meta(cli("search", sample_index, "chair", "-o", "json", "--no-cache"))["cache"] == "bypass"


def test_clear_by_index_and_all(cli: Cli, sample_index: str, es: httpx.Client,
                                index_name: Callable[[str], str]) -> None:
    other = index_name("other")
    es.put(f"/{other}/_doc/1", params={"refresh": "true"}, json={"name": "lamp"}).raise_for_status()
    for q in ("lamp", "desk"):
        assert meta(cli("search", sample_index, q, "-o", "json"))["cache"] == "miss"
    assert meta(cli("search", other, "lamp", "-o", "json"))["cache"] == "miss"
    assert set(entries(cli)["indices"]) == {sample_index, other}
    r = cli("cache", "clear", "--index", sample_index)
    assert r.code == 0 and f"removed 2 cache entries for index {sample_index}" in r.stderr
    assert set(entries(cli)["indices"]) == {other}
    assert meta(cli("search", other, "lamp", "-o", "json"))["cache"] == "hit-disk"
    assert meta(cli("search", sample_index, "lamp", "-o", "json"))["cache"] == "miss"
    r = cli("cache", "clear", "-o", "json")
    assert json.loads(r.out)["removed"] == 2 and entries(cli)["entries"] == 0


def test_cache_path_and_cache_dir_option(cli: Cli, sample_index: str, isolated_env: dict[str, str],
                                         tmp_path: Path) -> None:
    assert cli("cache", "path").out.strip() == str(cache_dir(isolated_env))
    elsewhere = tmp_path / "elsewhere"
    assert cli("--cache-dir", str(elsewhere), "cache", "path").out.strip() == str(elsewhere)
    assert meta(cli("--cache-dir", str(elsewhere), "search", sample_index, "-o", "json"))["cache"] == "miss"
    assert (elsewhere / "cache.db").exists() and not cache_dir(isolated_env).exists()


def test_permissions_dir_0700_files_0600(cli: Cli, sample_index: str, isolated_env: dict[str, str]) -> None:
    os.umask(0o022)
    # a large response (> 32 KiB) is stored in a file of its own, not in the database
    assert meta(cli("search", sample_index, "-n", "200", "-o", "json"))["cache"] == "miss"
    assert meta(cli("search", sample_index, "laptop", "-o", "json"))["cache"] == "miss"
    root = cache_dir(isolated_env)
    files = 0
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            assert stat.S_IMODE((Path(dirpath) / d).stat().st_mode) == 0o700, d
        for f in filenames:
            files += 1
            assert stat.S_IMODE((Path(dirpath) / f).stat().st_mode) == 0o600, f
    assert files >= 2  # the database and at least one value file
    for path in root.rglob("*"):
        if path.is_file():
            assert b"\x80\x04\x95" not in path.read_bytes()[:4096] or path.name == "cache.db"  # no pickle stream


def test_corrupt_entry_is_reported_once_and_rebuilt(cli: Cli, sample_index: str,
                                                    isolated_env: dict[str, str]) -> None:
    args = ("search", sample_index, "toaster", "-n", "2", "-o", "json")
    good = json.loads(cli(*args).out)
    with sqlite3.connect(cache_dir(isolated_env) / "cache.db") as con:
        assert con.execute("UPDATE Cache SET value = ?", (b"{not json",)).rowcount == 1
    r = cli(*args)
    assert r.code == 0 and meta(r)["cache"] == "miss"
    assert r.stderr.count("was corrupt") == 1 and "Traceback" not in r.stderr
    assert json.loads(r.out)["hits"] == good["hits"]
    assert meta(cli(*args))["cache"] == "hit-disk"


def test_corrupt_database_is_reported_once_and_rebuilt(cli: Cli, sample_index: str,
                                                       isolated_env: dict[str, str]) -> None:
    args = ("search", sample_index, "sofa", "-n", "2", "-o", "json")
    assert meta(cli(*args))["cache"] == "miss"
    root = cache_dir(isolated_env)
    (root / "cache.db").write_bytes(b"garbage, not SQLite " * 500)
    r = cli(*args)
    assert r.code == 0 and meta(r)["cache"] == "miss"
    assert r.stderr.count("was corrupt") == 1 and "rebuilt" in r.stderr and "Traceback" not in r.stderr
    assert meta(cli(*args))["cache"] == "hit-disk"
    assert cli("cache", "stats").code == 0


def test_search_with_cache_fills_what_the_cli_reads(cli: Cli, sample_index: str, isolated_env: dict[str, str]
                                                    ) -> None:
    """The contract batch and warm-cache use: the same key, the same entry."""
    settings = resolve(env=isolated_env)
    body = {"query": {"multi_match": {"query": "kettle", "fields": ["name^2"]}}, "size": 3}

    async def fill() -> tuple[str, str]:
        cache = open_cache(settings)
        try:
            async with open_es(settings, SILENT) as client:
                identity = await cache_identity(client, settings)  # keyed by the product, as search looks up
                first = await search_with_cache(client, cache, identity, sample_index, body, {}, 120)
                second = await search_with_cache(client, cache, identity, sample_index, body, {}, 120)
                refreshed = await search_with_cache(client, cache, identity, sample_index, body, {}, 120,
                                                    refresh=True)
                assert refreshed.status == "stored" and refreshed.expires_at is not None
                assert second.cache_hit and second.key == first.key
                assert second.response["hits"] == first.response["hits"]
                return first.status, second.status
        finally:
            cache.close()

    assert asyncio.run(fill()) == ("stored", "hit-disk")
    m = meta(cli("search", sample_index, "kettle", "-f", "name^2", "-n", "3", "-o", "json"))
    assert m["cache"] == "hit-disk" and m["expires_in_s"] <= 120


def test_a_hit_in_a_fresh_process_imports_no_client(escli_proc: Callable[..., Any], sample_index: str) -> None:
    args = ("search", sample_index, "blender", "-n", "2", "-o", "json")
    assert escli_proc(*args).returncode == 0
    second = escli_proc(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert second.returncode == 0 and json.loads(second.stdout)["_escli"]["cache"] == "hit-disk"
    imported = {line.split("|")[-1].strip() for line in second.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert imported and not {m for m in imported if m.split(".")[0] in ("elasticsearch", "elastic_transport",
                                                                        "aiohttp")}
    assert ES_URL  # the engine served the first search; the second one never reached it


def test_a_csv_hit_asks_the_cluster_nothing(cli: Cli, sample_index: str) -> None:
    """CSV of hits takes its columns from the mapping; a hit finds them cached beside the answer."""
    with FaultProxy(ES_URL, lifetime=120) as proxy:
        args = ("--url", proxy.url, "search", sample_index, "toaster", "-n", "3", "-o", "csv")
        first = cli(*args)
        assert first.code == 0, first.stderr
        asked = proxy.forwarded
        second = cli(*args)
        assert second.code == 0, second.stderr
        assert proxy.forwarded == asked, [(r.method, r.target) for r in proxy.requests]  # nothing went out again
        assert second.out == first.out and second.out.splitlines()[0].startswith("_id,_score,")
