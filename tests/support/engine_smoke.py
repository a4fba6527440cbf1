"""A smoke set of every command against one engine, shared by the engines make test starts beside the main one.

A test module names its engine by subclassing `EngineSmoke` (the class attributes below); pytest collects the
inherited tests under the subclass's name (tests/integration/test_es7.py, test_opensearch.py, test_opensearch3.py).
What differs between products and majors (the product headers, the point-in-time endpoints, `_shard_doc`, data
streams) is es/'s business, so these tests look at what a user sees, plus the few facts a copy between engines
depends on (the product escli learnt, an export line's keys). An unreachable engine fails (conftest), never skips.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest

from escli.errors import ExitCode
from escli.es.api import ELASTICSEARCH, OPENSEARCH, ProductInfo
from escli.sample import MAPPING, generate
from escli.ui import SILENT
from tests.conftest import ES7_URL, OPENSEARCH3_URL, OPENSEARCH_URL, Result, es_script

Cli = Callable[..., Result]
EXE = str(Path(sys.executable).parent / "escli")
N = 600


def export_ids(path: Path) -> list[str]:
    return [orjson.loads(line)["_id"] for line in path.read_bytes().splitlines() if line]


def pits_opened(stderr: str) -> list[str]:
    """The PIT ids an export said (-v) it opened."""
    return [line.rsplit(" ", 1)[-1] for line in stderr.splitlines() if "opened point in time " in line]


def delete_pit(client: httpx.Client, product: str, pit_id: str) -> None:
    """Take a PIT away from under an export, as an expiry or a lost node would."""
    if product == OPENSEARCH:
        client.request("DELETE", "/_search/point_in_time", json={"pit_id": [pit_id]})
    else:
        client.request("DELETE", "/_pit", json={"id": pit_id})


def pit_is_gone(client: httpx.Client, pit_id: str) -> bool:
    """Whether the engine still knows a PIT: a search in it is refused once it is closed (ours, not all PITs: the
    copy tests share these engines)."""
    resp = client.post("/_search", json={"pit": {"id": pit_id}, "size": 0})
    return resp.status_code == 404 or "search_context_missing" in resp.text


@dataclass(frozen=True)
class Engine:
    url: str  # where the engine answers
    fixture: str  # conftest's session client for it: es7, opensearch, opensearch3
    product: str  # ELASTICSEARCH or OPENSEARCH
    version_prefix: str  # "7.17.", "3."
    marks_answers: bool  # its answers name the product (no `GET /` needed to learn it)
    manager_role: str  # the role `health` shows for the elected-master-capable node
    refuser: str  # who a refusal says refused (es/answers.py)


# Elasticsearch marks every answer with X-Elastic-Product from 7.14 on, OpenSearch 3.x with X-OpenSearch-Version;
# OpenSearch 2.x marks nothing.
ES7 = Engine(ES7_URL, "es7", ELASTICSEARCH, "7.17.", True, "master", "Elasticsearch")
OPENSEARCH2 = Engine(OPENSEARCH_URL, "opensearch", OPENSEARCH, "2.", False, "cluster_manager", "the server")
OPENSEARCH3 = Engine(OPENSEARCH3_URL, "opensearch3", OPENSEARCH, "3.", True, "cluster_manager", "OpenSearch")


class EngineSmoke:
    spec: ClassVar[Engine]  # which engine: set by the subclass

    # -- the engine, its data, escli pointed at it ---------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls, request: pytest.FixtureRequest) -> httpx.Client:
        client: httpx.Client = request.getfixturevalue(cls.spec.fixture)
        return client

    @pytest.fixture(scope="class")
    @classmethod
    def smoke_docs(cls) -> dict[str, dict[str, Any]]:
        return {doc["id"]: doc for doc in generate(N, seed=13)}

    @pytest.fixture(scope="class")
    @classmethod
    def smoke_index(cls, engine: httpx.Client, smoke_docs: dict[str, dict[str, Any]]) -> Iterator[str]:
        """The sample mapping and N documents in three shards (so slices and the cross-shard order are exercised)."""
        name = f"t-smoke-{cls.spec.fixture}-{uuid.uuid4().hex[:8]}"
        body = {**MAPPING, "settings": {"number_of_shards": 3, "number_of_replicas": 0}}
        engine.put(f"/{name}", json=body).raise_for_status()
        lines = b"".join(orjson.dumps(x) + b"\n" for doc in smoke_docs.values()
                         for x in ({"index": {"_index": name, "_id": doc["id"]}}, doc))
        engine.post("/_bulk", params={"refresh": "true"}, content=lines,
                    headers={"content-type": "application/x-ndjson"}).raise_for_status()
        yield name
        engine.delete(f"/{name}")

    @pytest.fixture()
    def run(self, cli: Cli) -> Cli:
        """escli against this engine (its own config and cache directories, as every `cli` call)."""
        def invoke(*args: str, **kwargs: Any) -> Result:
            return cli(*args, env={"ESCLI_URL": self.spec.url, **kwargs.pop("env", {})}, **kwargs)
        return invoke

    # -- the engine itself ---------------------------------------------------------------------------------------
    def test_the_engine_and_its_version(self, engine: httpx.Client) -> None:
        root = engine.get("/").json()
        assert root["version"]["number"].startswith(self.spec.version_prefix), root
        assert root["version"].get("distribution", "elasticsearch") == self.spec.product

    def test_escli_learns_the_product_from_the_answers(self) -> None:
        from escli.es.connect import open_es
        from escli.settings import Settings

        async def learn() -> tuple[ProductInfo | None, ProductInfo]:
            async with open_es(Settings(urls=(self.spec.url,)), SILENT) as es:
                await es.json("GET", "/_cluster/health")
                return es.known_product, await es.product()

        known, product = asyncio.run(learn())
        assert product.name == self.spec.product
        # Elasticsearch 7.14+ and OpenSearch 3.x mark every answer; OpenSearch 2.x needs `GET /`
        assert (known is not None) == self.spec.marks_answers

    def test_up_again_is_idempotent(self) -> None:
        port = self.spec.url.rsplit(":", 1)[-1]
        rundir = Path(es_script("rundir", ES_PORT=port).stdout.strip())
        # the same settings as whoever started it, so `up` finds its own node
        settings = dict(part.split("=", 1) for part in (rundir / "settings").read_text().split())
        env = {"ES_PORT": port, "ES_HEAP": settings["heap"]}
        if settings.get("engine") == OPENSEARCH:
            env |= {"ENGINE": OPENSEARCH, "OPENSEARCH_VERSION": settings["version"]}
        else:
            env |= {"ES_VERSION": settings["version"]}
        again = es_script("up", **env)
        assert again.returncode == 0 and "already running" in again.stderr, again.stderr[-2000:]
        assert again.stdout.strip() == self.spec.url
        assert es_script("status", **env).returncode == 0

    # -- search, batch, warm-cache, cache --------------------------------------------------------------------------
    def test_search_then_a_cache_hit_keyed_by_the_product(self, run: Cli, smoke_index: str, tmp_path: Path) -> None:
        args = ("search", smoke_index, "laptop", "-f", "name^2", "-f", "description", "--filter", "category=laptops",
                "--range", "price=gte:5", "--sort", "price:desc", "-n", "5", "-o", "json")
        first = run("-vv", *args)
        assert first.code == 0, first.stderr
        doc = json.loads(first.out)
        assert doc["_escli"]["cache"] in ("miss", "stored")
        hits = doc["hits"]["hits"]
        assert hits and all(h["_source"]["category"] == "laptops" and h["_source"]["price"] >= 5 for h in hits)
        prices = [h["_source"]["price"] for h in hits]
        assert prices == sorted(prices, reverse=True)
        # the first search of this identity asks `GET /` only where the answers do not name the product
        assert ("GET / " in first.stderr) != self.spec.marks_answers, first.stderr
        memo = json.loads((tmp_path / "cache" / "escli" / "products.json").read_text())
        assert memo == {f"{self.spec.url}|anonymous": self.spec.product}
        second = run(*args)
        assert json.loads(second.out)["_escli"]["cache"] == "hit-disk" and "cache hit" in second.stderr
        other = run("-vv", "search", smoke_index, "kettle", "-n", "1", "-o", "json")
        assert other.code == 0 and "GET / " not in other.stderr  # the memo and the answer agree: no second probe
        (tmp_path / "cache" / "escli" / "products.json").unlink()  # no memo: the entry's own product key still hits
        assert json.loads(run(*args).out)["_escli"]["cache"] == "hit-disk"

    def test_search_csv_and_errors_are_one_line(self, run: Cli, smoke_index: str) -> None:
        csv = run("search", smoke_index, "--filter", "category=books", "--source", "id,category", "-n", "3",
                  "-o", "csv")
        assert csv.code == 0, csv.stderr
        rows = csv.out.splitlines()
        assert len(rows) == 4 and all(row.endswith(",books") for row in rows[1:]), csv.out
        r = run("search", "t-smoke-missing-index", "x")
        assert r.code == ExitCode.REFUSED and "index_not_found_exception" in r.stderr and "Traceback" not in r.stderr
        # named only by an answer that names itself (OpenSearch 2.x's do not)
        assert f"{self.spec.refuser} refused the request (404 " in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1

    def test_batch_with_msearch_and_without(self, run: Cli, smoke_index: str, tmp_path: Path) -> None:
        queries = tmp_path / "q.ndjson"
        queries.write_bytes(b"".join(orjson.dumps(q) + b"\n" for q in [
            {"id": "a", "index": smoke_index, "q": "laptop", "size": 2},
            {"id": "b", "index": smoke_index, "body": {"size": 0, "query": {"term": {"category": "books"}}}},
            {"id": "c", "index": "t-smoke-missing-index", "q": "x"},
            {"id": "d", "index": smoke_index, "body": {"size": 1, "aggs": {"c": {"terms": {"field": "category"}}}}},
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

    def test_warm_cache_fills_what_search_hits(self, run: Cli, smoke_index: str, tmp_path: Path) -> None:
        warm = tmp_path / "warm.ndjson"
        warm.write_bytes(orjson.dumps({"index": smoke_index, "q": "laptop", "fields": ["name^2", "description"],
                                       "size": 10}) + b"\n")
        r = run("warm-cache", str(warm))
        assert r.code == 0, r.stderr
        assert json.loads(r.out)["refreshed"] == 1
        hit = run("search", smoke_index, "laptop", "-f", "name^2", "-f", "description", "--size", "10", "-o", "json")
        assert json.loads(hit.out)["_escli"]["cache"] == "hit-disk"

    def test_cache_stats_and_clear(self, run: Cli, smoke_index: str) -> None:
        assert run("search", smoke_index, "phone", "-n", "1", "-o", "json").code == 0
        stats = json.loads(run("cache", "stats").out)
        assert stats["entries"] >= 1
        assert run("cache", "clear", "--index", smoke_index).code == 0
        again = run("search", smoke_index, "phone", "-n", "1", "-o", "json")
        assert json.loads(again.out)["_escli"]["cache"] != "hit-disk"

    # -- import --------------------------------------------------------------------------------------------------
    def test_import_then_count(self, run: Cli, engine: httpx.Client, tmp_path: Path) -> None:
        """Import asks whether the target is a data stream first: each engine's answer for "no" is taken as no
        (404; 405 on Elasticsearch 7.17's test build, which has no data streams)."""
        name = f"t-smoke-import-{uuid.uuid4().hex[:8]}"
        src = tmp_path / "docs.ndjson"
        src.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in generate(300, seed=5)))
        try:
            r = run("import", name, str(src), "--id-field", "id", "--chunk-size", "100", "-j", "2")
            assert r.code == 0, r.stderr
            assert "imported 300 of 300" in r.stderr
            engine.post(f"/{name}/_refresh")
            assert engine.get(f"/{name}/_count").json()["count"] == 300
        finally:
            engine.delete(f"/{name}")

    def test_import_creates_the_index_from_a_typed_mapping_file(self, run: Cli, engine: httpx.Client,
                                                                 tmp_path: Path) -> None:
        """A mapping saved from a 6.x/7.x cluster (`_mapping?include_type_name=true`) has a `_doc` level, which no
        engine takes today: es/api.py's `typeless` drops it, so the index gets the mapping, not a dynamic one."""
        name = f"t-smoke-typed-{uuid.uuid4().hex[:8]}"
        mapping = tmp_path / "mapping.json"
        mapping.write_bytes(orjson.dumps({"mappings": {"_doc": MAPPING["mappings"]}, "settings": MAPPING["settings"]}))
        src = tmp_path / "docs.ndjson"
        src.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in generate(20, seed=7)))
        try:
            r = run("import", name, str(src), "--id-field", "id", "--mapping", str(mapping))
            assert r.code == 0, r.stderr
            got = engine.get(f"/{name}/_mapping").json()[name]["mappings"]["properties"]
            assert got["price"] == {"type": "float"} and got["category"] == {"type": "keyword"}
        finally:
            engine.delete(f"/{name}")

    # -- health, profile, completion -----------------------------------------------------------------------------
    @pytest.mark.parametrize("fmt", ["table", "json", "nagios", "prometheus"])
    def test_health_in_every_format(self, run: Cli, smoke_index: str, fmt: str) -> None:
        r = run("health", "-F", fmt)
        assert r.code == 0, r.stderr  # the test indices have no replicas: green
        if fmt == "json":
            doc = json.loads(r.out)
            assert doc["status"] == "green" and doc["number_of_nodes"] == 1 and doc["state"] == "OK"
            node = doc["nodes"][0]
            assert {"heap_used_percent", "cpu_percent", "disk_used_percent", "round_trip_ms"} <= node.keys()
            assert self.spec.manager_role in node["roles"]
        elif fmt == "nagios":
            assert r.out.startswith("ESCLI OK - ") and "node-0_heap=" in r.out
        elif fmt == "prometheus":
            assert "escli_cluster_up{" in r.out and "escli_cluster_status{" in r.out
        else:
            assert "green" in r.out and "node-0" in r.out

    def test_profile_closed_loop_and_shards(self, run: Cli, smoke_index: str) -> None:
        r = run("profile", smoke_index, "laptop", "-n", "30", "-j", "2", "--warmup", "5", "-F", "json")
        assert r.code == 0, r.stderr
        doc = json.loads(r.out)
        assert doc["overall"]["requests"] == 30 and doc["overall"]["ok"] == 30
        assert doc["overall"]["latency_ms"]["p50"] > 0
        shards = run("profile", smoke_index, "laptop", "--shards", "-F", "json")
        assert shards.code == 0, shards.stderr
        assert "shards" in shards.out

    def test_completion_knows_its_indices_and_fields(self, smoke_index: str,
                                                     isolated_env: dict[str, str]) -> None:
        """The names a Tab offers, from this engine's answers (`_resolve/index`, `_mapping`). A Tab waits ~300 ms
        at most for the cluster and then offers nothing, so the names are asked through the same functions first,
        without that budget; the Tab then finds them in its cache and cannot depend on the machine's speed."""
        from escli.core.names import NameCache
        from escli.es.connect import open_es
        from escli.settings import Settings, default_cache_dir

        env = {**isolated_env, "ESCLI_URL": self.spec.url}
        settings = Settings(urls=(self.spec.url,), cache_dir=default_cache_dir(env))

        async def ask() -> tuple[list[str], list[tuple[str, str]]]:
            cache = NameCache(settings.cache_dir, settings.identity, budget_s=3600)
            return (await cache.indices(lambda: open_es(settings, SILENT)),
                    await cache.fields(lambda: open_es(settings, SILENT), smoke_index))

        indices, fields = asyncio.run(ask())
        assert smoke_index in indices
        assert ("category", "keyword") in fields and ("name.keyword", "keyword") in fields

        def tab(line: str) -> list[str]:
            out = subprocess.run([EXE], env={**env, "_ESCLI_COMPLETE": "bash", "_ESCLI_COMPLETE_LINE": line},
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
            assert out.returncode == 0 and out.stderr == "", out.stderr
            return out.stdout.splitlines()

        assert tab(f"escli search {smoke_index[:-3]}") == [smoke_index]
        assert tab(f"escli search {smoke_index} --filter categ") == ["category"]

    # -- export --------------------------------------------------------------------------------------------------
    @pytest.mark.parametrize("slices", ["1", "3"])
    def test_export_exactly_once(self, run: Cli, engine: httpx.Client, smoke_index: str,
                                 smoke_docs: dict[str, dict[str, Any]], tmp_path: Path, slices: str) -> None:
        out = tmp_path / "dump.ndjson"
        r = run("-v", "export", smoke_index, "--out", str(out), "--slices", slices, "--page-size", "50")
        assert r.code == 0, r.stderr
        ids = export_ids(out)
        assert len(ids) == N and set(ids) == set(smoke_docs)
        rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        # what an import into any other engine takes: no 7.x `_type`, nothing but the document and its address
        assert all(row.keys() == {"_index", "_id", "_source"} for row in rows)
        assert all(row["_source"] == smoke_docs[row["_id"]] for row in rows)
        opened = pits_opened(r.stderr)
        assert opened and all(pit_is_gone(engine, pit) for pit in opened)  # ours, closed

    def test_export_killed_then_resumed_after_the_pit_is_gone(self, isolated_env: dict[str, str], run: Cli,
                                                               engine: httpx.Client, smoke_index: str,
                                                               smoke_docs: dict[str, dict[str, Any]],
                                                               tmp_path: Path) -> None:
        """Killed with no chance to close anything, its PIT then deleted: --resume opens a new one and the output
        holds every document exactly once (the position survives the PIT: es/paging.py's order for the product)."""
        out = tmp_path / "dump.ndjson"
        cp = tmp_path / "cp.json"
        args = ("export", smoke_index, "--out", str(out), "--checkpoint", str(cp), "--slices", "2")
        env = {**isolated_env, "ESCLI_URL": self.spec.url}
        proc = subprocess.Popen([EXE, *args, "--page-size", "10"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        written = 0
        while proc.poll() is None and written < 100:  # no time limit: it stops at 100 written or at its end
            try:
                written = orjson.loads(cp.read_bytes()).get("written", 0)
            except (FileNotFoundError, orjson.JSONDecodeError):
                written = 0
            time.sleep(0.01)
        assert proc.poll() is None, f"the export ended before it could be interrupted ({written} written)"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = orjson.loads(cp.read_bytes())
        assert 0 < state["written"] < N
        assert state["pit_id"]
        delete_pit(engine, self.spec.product, state["pit_id"])
        r = run("-v", *args, "--resume", "--page-size", "200")
        assert r.code == 0, r.stderr
        ids = export_ids(out)
        assert len(ids) == N and set(ids) == set(smoke_docs)
        assert not cp.exists()
        assert all(pit_is_gone(engine, pit) for pit in pits_opened(r.stderr))

    def test_export_without_a_point_in_time_reads_with_scroll(self, run: Cli, smoke_index: str,
                                                              smoke_docs: dict[str, dict[str, Any]],
                                                              tmp_path: Path) -> None:
        """A cluster with no point in time (Elasticsearch before 7.10: `POST /INDEX/_pit` is refused with 400)
        is read with scroll, every document once. The refusal comes from a proxy in front of this engine; every
        other request is the engine's own."""
        from tests.support.fault_proxy import FaultProxy

        opening = b"/_search/point_in_time" if self.spec.product == OPENSEARCH else b"/_pit?"
        with FaultProxy(self.spec.url) as proxy:
            proxy.fail(400, times=1, match=opening, error_type="invalid_type_name_exception")
            out = tmp_path / "dump.ndjson"
            r = run("-v", "export", smoke_index, "--out", str(out), "--slices", "2", "--page-size", "100",
                    env={"ESCLI_URL": proxy.url})
            assert proxy.injected == 1
        assert r.code == 0, r.stderr
        assert "point in time not available" in r.stderr and "reading with scroll" in r.stderr
        ids = export_ids(out)
        assert len(ids) == N and set(ids) == set(smoke_docs)

    def test_export_scroll_method(self, run: Cli, smoke_index: str, smoke_docs: dict[str, dict[str, Any]],
                                  tmp_path: Path) -> None:
        out = tmp_path / "dump.ndjson"
        r = run("export", smoke_index, "--out", str(out), "--method", "scroll", "--slices", "2", "--page-size", "100")
        assert r.code == 0, r.stderr
        ids = export_ids(out)
        assert len(ids) == N and set(ids) == set(smoke_docs)

    def test_parquet_finds_the_array_fields(self, run: Cli, smoke_index: str,
                                            smoke_docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
        """The look at a sample (a seeded random_score search) works on every engine: tags a list column."""
        import duckdb

        out = tmp_path / "p.parquet"
        r = run("export", smoke_index, "--out", str(out))
        assert r.code == 0, r.stderr
        types = {row[0]: row[1] for row in duckdb.sql(f"describe select * from read_parquet('{out}')").fetchall()}
        assert types["tags"] == "VARCHAR[]" and types["price"] == "DOUBLE"
        assert duckdb.sql(f"select count(*) from read_parquet('{out}')").fetchall() == [(len(smoke_docs),)]
