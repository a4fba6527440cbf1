"""A smoke set of every command against OpenSearch 2.x (`ENGINE=opensearch scripts/es.sh up`; make test starts it).

The same commands and output shapes as on Elasticsearch; what differs (no X-Elastic-Product, the point-in-time
endpoints, no `_shard_doc`) is es/api.py's and the export strategy's business, so these tests only look at what a
user sees. When the node cannot be reached they fail (conftest `opensearch`), never skip.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from escli.errors import ExitCode
from escli.sample import MAPPING, generate
from tests.conftest import OPENSEARCH_URL, Result, es_script

Cli = Callable[..., Result]
# every command through the one request path, as the Elasticsearch tests run
pytestmark = pytest.mark.opensearch
N = 600
EXE = str(Path(sys.executable).parent / "escli")


@pytest.fixture(scope="module")
def os_docs() -> dict[str, dict[str, Any]]:
    return {doc["id"]: doc for doc in generate(N, seed=13)}


@pytest.fixture(scope="module")
def os_index(opensearch: httpx.Client, os_docs: dict[str, dict[str, Any]]) -> Iterator[str]:
    """The sample mapping and N documents in three shards (so slices and the cross-shard order are exercised)."""
    name = f"t-os-products-{uuid.uuid4().hex[:8]}"
    body = {**MAPPING, "settings": {"number_of_shards": 3, "number_of_replicas": 0}}
    opensearch.put(f"/{name}", json=body).raise_for_status()
    lines = b"".join(orjson.dumps(x) + b"\n" for doc in os_docs.values()
                     for x in ({"index": {"_index": name, "_id": doc["id"]}}, doc))
    opensearch.post("/_bulk", params={"refresh": "true"}, content=lines,
                    headers={"content-type": "application/x-ndjson"}).raise_for_status()
    yield name
    opensearch.delete(f"/{name}")


@pytest.fixture()
def run(cli: Cli) -> Cli:
    """escli against the OpenSearch node (its own config and cache directories, as every `cli` call)."""
    def invoke(*args: str, **kwargs: Any) -> Result:
        return cli(*args, env={"ESCLI_URL": OPENSEARCH_URL, **kwargs.pop("env", {})}, **kwargs)
    return invoke


def test_the_engine_is_opensearch_2_and_up_is_idempotent(opensearch: httpx.Client) -> None:
    root = opensearch.get("/").json()
    assert root["version"]["distribution"] == "opensearch" and root["version"]["number"].startswith("2.")
    assert "x-elastic-product" not in opensearch.get("/").headers
    port = OPENSEARCH_URL.rsplit(":", 1)[-1]
    env = {"ENGINE": "opensearch", "ES_PORT": port}
    # the same heap as whoever started it, so `up` finds its own node with the same settings
    settings = (Path(es_script("rundir", **env).stdout.strip()) / "settings").read_text().split()
    heap = next(part.split("=", 1)[1] for part in settings if part.startswith("heap="))
    again = es_script("up", **env, ES_HEAP=heap)
    assert again.returncode == 0 and "already running" in again.stderr, again.stderr[-2000:]
    assert again.stdout.strip() == OPENSEARCH_URL
    assert es_script("status", **env).returncode == 0


def test_search_then_a_cache_hit_keyed_by_the_product(run: Cli, os_index: str, tmp_path: Path) -> None:
    args = ("search", os_index, "laptop", "-f", "name^2", "-f", "description", "--filter", "category=laptops",
            "--sort", "price:desc", "-n", "5", "-o", "json")
    first = run("-vv", *args)
    assert first.code == 0, first.stderr
    doc = json.loads(first.out)
    assert doc["_escli"]["cache"] == "miss" or doc["_escli"]["cache"] == "stored"
    hits = doc["hits"]["hits"]
    assert hits and all(h["_source"]["category"] == "laptops" for h in hits)
    prices = [h["_source"]["price"] for h in hits]
    assert prices == sorted(prices, reverse=True)
    assert "GET / " in first.stderr  # the first search of this identity asks which product answers
    memo = json.loads((tmp_path / "cache" / "escli" / "products.json").read_text())
    assert memo == {f"{OPENSEARCH_URL}|anonymous": "opensearch"}
    second = run(*args)
    assert json.loads(second.out)["_escli"]["cache"] == "hit-disk" and "cache hit" in second.stderr
    other = run("-vv", "search", os_index, "kettle", "-n", "1", "-o", "json")
    assert other.code == 0 and "GET / " not in other.stderr  # the memo and the answer agree: no second probe
    (tmp_path / "cache" / "escli" / "products.json").unlink()  # no memo: the entry's own product key still hits
    assert json.loads(run(*args).out)["_escli"]["cache"] == "hit-disk"


def test_search_errors_are_one_line(run: Cli) -> None:
    r = run("search", "t-os-missing-index", "x")
    assert r.code == ExitCode.REFUSED and "index_not_found_exception" in r.stderr and "Traceback" not in r.stderr


def test_batch_with_msearch_and_without(run: Cli, os_index: str, tmp_path: Path) -> None:
    queries = tmp_path / "q.ndjson"
    queries.write_bytes(b"".join(orjson.dumps(q) + b"\n" for q in [
        {"id": "a", "index": os_index, "q": "laptop", "size": 2},
        {"id": "b", "index": os_index, "body": {"size": 0, "query": {"term": {"category": "books"}}}},
        {"id": "c", "index": "t-os-missing-index", "q": "x"},
        {"id": "d", "index": os_index, "body": {"size": 1, "aggs": {"c": {"terms": {"field": "category"}}}}},
    ]))
    for extra in (("--msearch", "2"), ("-j", "2")):
        r = run("batch", str(queries), "--ordered", *extra)
        assert r.code == 1, r.stderr  # one query failed: a partial failure
        rows = [json.loads(line) for line in r.out.splitlines()]
        assert [row["id"] for row in rows] == ["a", "b", "c", "d"]
        assert rows[0]["ok"] and len(rows[0]["hits"]) == 2 and rows[0]["total"] > 0
        assert rows[1]["ok"] and rows[1]["hits"] == [] and rows[1]["total"] > 0
        assert not rows[2]["ok"] and rows[2]["error"]["type"] == "index_not_found_exception"
        assert rows[3]["ok"]
        assert "3 ok, 1 failed" in r.stderr


def test_import_then_count(run: Cli, opensearch: httpx.Client, tmp_path: Path) -> None:
    name = f"t-os-import-{uuid.uuid4().hex[:8]}"
    docs = list(generate(300, seed=5))
    src = tmp_path / "docs.ndjson"
    src.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    try:
        r = run("import", name, str(src), "--id-field", "id", "--chunk-size", "100", "-j", "2")
        assert r.code == 0, r.stderr
        assert "imported 300 of 300" in r.stderr
        opensearch.post(f"/{name}/_refresh")
        assert opensearch.get(f"/{name}/_count").json()["count"] == 300
    finally:
        opensearch.delete(f"/{name}")


def test_warm_cache_fills_what_search_hits(run: Cli, os_index: str, tmp_path: Path) -> None:
    warm = tmp_path / "warm.ndjson"
    warm.write_bytes(orjson.dumps({"index": os_index, "q": "laptop", "fields": ["name^2", "description"],
                                   "size": 10}) + b"\n")
    r = run("warm-cache", str(warm))
    assert r.code == 0, r.stderr
    assert json.loads(r.out)["refreshed"] == 1
    hit = run("search", os_index, "laptop", "-f", "name^2", "-f", "description", "--size", "10", "-o", "json")
    assert json.loads(hit.out)["_escli"]["cache"] == "hit-disk"


@pytest.mark.parametrize("fmt", ["table", "json", "nagios", "prometheus"])
def test_health_in_every_format(run: Cli, os_index: str, fmt: str) -> None:
    r = run("health", "-F", fmt)
    assert r.code == 0, r.stderr  # the test index has no replicas: green
    if fmt == "json":
        doc = json.loads(r.out)
        assert doc["status"] == "green" and doc["number_of_nodes"] == 1 and doc["state"] == "OK"
        node = doc["nodes"][0]
        assert {"heap_used_percent", "cpu_percent", "disk_used_percent", "round_trip_ms"} <= node.keys()
        assert "cluster_manager" in node["roles"]
    elif fmt == "nagios":
        assert r.out.startswith("ESCLI OK - ") and "node-0_heap=" in r.out
    elif fmt == "prometheus":
        assert "escli_cluster_up{" in r.out and "escli_cluster_status{" in r.out
    else:
        assert "green" in r.out and "node-0" in r.out


def test_profile_closed_loop_and_shards(run: Cli, os_index: str) -> None:
    r = run("profile", os_index, "laptop", "-n", "30", "-j", "2", "--warmup", "5", "-F", "json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.out)
    assert doc["overall"]["requests"] == 30 and doc["overall"]["ok"] == 30
    assert doc["overall"]["latency_ms"]["p50"] > 0
    shards = run("profile", os_index, "laptop", "--shards", "-F", "json")
    assert shards.code == 0, shards.stderr
    assert "shards" in shards.out


def test_cache_stats_and_clear(run: Cli, os_index: str) -> None:
    assert run("search", os_index, "phone", "-n", "1", "-o", "json").code == 0
    stats = json.loads(run("cache", "stats").out)
    assert stats["entries"] >= 1
    assert run("cache", "clear", "--index", os_index).code == 0
    assert json.loads(run("search", os_index, "phone", "-n", "1", "-o", "json").out)["_escli"]["cache"] != "hit-disk"


# --- export ----------------------------------------------------------------------------------------------------
# export reads through the Es seam and takes its order from es/paging.page_order (issue 9).


def _ids(path: Path) -> list[str]:
    return [orjson.loads(line)["_id"] for line in path.read_bytes().splitlines() if line]


def _open_pits(opensearch: httpx.Client) -> int:
    pits = opensearch.get("/_search/point_in_time/_all").json().get("pits", [])
    return len(pits)


@pytest.mark.parametrize("slices", ["1", "3"])
def test_export_exactly_once(run: Cli, opensearch: httpx.Client, os_index: str,
                             os_docs: dict[str, dict[str, Any]], tmp_path: Path, slices: str) -> None:
    out = tmp_path / "dump.ndjson"
    r = run("export", os_index, "--out", str(out), "--slices", slices, "--page-size", "50")
    assert r.code == 0, r.stderr
    ids = _ids(out)
    assert len(ids) == N and set(ids) == set(os_docs)
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert all(row["_source"] == os_docs[row["_id"]] for row in rows)
    assert _open_pits(opensearch) == 0  # ours closed


def test_export_killed_then_resumed_after_the_pit_is_gone(isolated_env: dict[str, str], run: Cli,
                                                           opensearch: httpx.Client, os_index: str,
                                                           os_docs: dict[str, dict[str, Any]],
                                                           tmp_path: Path) -> None:
    """Killed with no chance to close anything, its PIT then deleted: --resume opens a new one and the output
    holds every document exactly once (the position survives the PIT: es/api.py's OpenSearch strategy)."""
    out = tmp_path / "dump.ndjson"
    cp = tmp_path / "cp.json"
    args = ("export", os_index, "--out", str(out), "--checkpoint", str(cp), "--slices", "2")
    env = {**isolated_env, "ESCLI_URL": OPENSEARCH_URL}
    proc = subprocess.Popen([EXE, *args, "--page-size", "10"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    written = 0
    for _ in range(3000):
        if proc.poll() is not None:
            break
        try:
            written = orjson.loads(cp.read_bytes()).get("written", 0)
        except (FileNotFoundError, orjson.JSONDecodeError):
            written = 0
        if written >= 100:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the export ended before it could be interrupted ({written} written)"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    state = orjson.loads(cp.read_bytes())
    assert 0 < state["written"] < N
    if state.get("pit_id"):
        opensearch.request("DELETE", "/_search/point_in_time", json={"pit_id": [state["pit_id"]]})
    r = run("-v", *args, "--resume", "--page-size", "200")
    assert r.code == 0, r.stderr
    ids = _ids(out)
    assert len(ids) == N and set(ids) == set(os_docs)
    assert not cp.exists()
    assert _open_pits(opensearch) == 0


def test_export_scroll_method(run: Cli, os_index: str, os_docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "dump.ndjson"
    r = run("export", os_index, "--out", str(out), "--method", "scroll", "--slices", "2", "--page-size", "100")
    assert r.code == 0, r.stderr
    ids = _ids(out)
    assert len(ids) == N and set(ids) == set(os_docs)



def test_parquet_finds_the_array_fields(run: Cli, os_index: str, tmp_path: Path) -> None:
    """The look at a sample (a seeded random_score search) works on OpenSearch too: tags a list column."""
    import duckdb

    out = tmp_path / "p.parquet"
    r = run("export", os_index, "--out", str(out))
    assert r.code == 0, r.stderr
    types = {row[0]: row[1] for row in duckdb.sql(f"describe select * from read_parquet('{out}')").fetchall()}
    assert types["tags"] == "VARCHAR[]" and types["price"] == "DOUBLE"
    assert duckdb.sql(f"select count(*) from read_parquet('{out}')").fetchall() == [(N,)]
