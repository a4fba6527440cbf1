"""A copy's metadata on the real engines: core/copy_meta.py through Es objects built as the commands build them.

Each test makes its source index on one engine, plans, applies and finishes the copy onto another, and reads the
target's own mapping, settings and aliases back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from escli.core.copy_meta import MARK_PREFIX, CopyPlan, Rename, apply_plan, finish_plan, plan_copy
from escli.errors import ExitCode, RefusedError, UsageError, exit_code_for
from escli.es.api import Es
from escli.es.connect import open_es
from escli.settings import Settings
from escli.ui import SILENT
from tests.conftest import ES7_URL, ES8_URL, ES_URL, OPENSEARCH3_URL, OPENSEARCH_URL, Result, _reachable

T = TypeVar("T")


def run(url_from: str, url_to: str, work: Callable[[Es, Es], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_es(Settings(urls=(url_from,), timeout=60), SILENT) as source, \
                open_es(Settings(urls=(url_to,), timeout=60), SILENT) as target:
            return await work(source, target)

    return asyncio.run(main())


def copy_meta(url_from: str, url_to: str, expr: str, rename: Rename, **kw: Any) -> CopyPlan:
    """plan, apply, finish: the metadata half of `escli copy`."""
    async def work(source: Es, target: Es) -> CopyPlan:
        plan = await plan_copy(source, target, expr, rename, **kw)
        assert plan.refused == [], [str(c) for c in plan.refused]
        await apply_plan(target, plan)
        await finish_plan(target, plan)
        return plan

    return run(url_from, url_to, work)


def plan_only(url_from: str, url_to: str, expr: str, rename: Rename, **kw: Any) -> CopyPlan:
    return run(url_from, url_to, lambda s, t: plan_copy(s, t, expr, rename, **kw))


class Engines:
    """Plain HTTP clients for setting up and reading back; every name made here is deleted afterwards."""

    def __init__(self) -> None:
        self.clients: dict[str, httpx.Client] = {}
        self.made: list[tuple[str, str]] = []

    def __call__(self, url: str) -> httpx.Client:
        if url not in self.clients:
            self.clients[url] = _reachable(url)
        return self.clients[url]

    def name(self, tag: str) -> str:
        return f"t-copymeta-{tag}-{uuid.uuid4().hex[:8]}"

    def put(self, url: str, path: str, body: dict[str, Any]) -> None:
        resp = self(url).put(path, json=body)
        assert resp.status_code == 200, resp.text
        self.made.append((url, path))

    def remember(self, url: str, path: str) -> None:
        self.made.append((url, path))

    def get(self, url: str, path: str, flat: bool = False) -> Any:
        resp = self(url).get(path, params={"flat_settings": "true"} if flat else None)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def close(self) -> None:
        for url, path in reversed(self.made):
            self(url).delete(path)
        for client in self.clients.values():
            client.close()


@pytest.fixture()
def engines() -> Iterator[Engines]:
    e = Engines()
    yield e
    e.close()


MAPPING = {
    "_routing": {"required": True},
    "properties": {
        "name": {"type": "text", "analyzer": "folded", "fields": {"raw": {"type": "keyword"}}},
        "sku": {"type": "keyword"},
        "price": {"type": "long"},
        "at": {"type": "date_nanos"},
        "where": {"type": "geo_point"},
        "tags": {"type": "nested", "properties": {"label": {"type": "keyword"}, "weight": {"type": "float"}}},
        "owner": {"properties": {"id": {"type": "keyword"}, "since": {"type": "date"}}},
    },
}
# The Elasticsearch test build has no analysis-common module: a stop filter and lowercase are in its core.
ANALYSIS = {"filter": {"my_stop": {"type": "stop", "stopwords": ["the", "a"]}},
            "analyzer": {"folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "my_stop"]}}}


def make_source(engines: Engines, url: str, name: str, alias: str) -> None:
    engines.put(url, f"/{name}", {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0, "refresh_interval": "7s", "analysis": ANALYSIS},
        "mappings": MAPPING,
        "aliases": {alias: {"filter": {"term": {"sku": "a"}}, "is_write_index": True, "index_routing": "r1",
                            "search_routing": "r1,r2"}},
    })


def settings_of(engines: Engines, url: str, index: str) -> dict[str, Any]:
    return dict(engines.get(url, f"/{index}/_settings", flat=True)[index]["settings"])


def check_copy(engines: Engines, url: str, dest: str, alias: str, extra: dict[str, Any] | None = None) -> None:
    """What make_source made, as the target holds it (with `extra` fields added to the source's mapping)."""
    got = engines.get(url, f"/{dest}", flat=True)[dest]
    # keyword stays keyword, text keeps its analyzer, routing stays required
    assert got["mappings"] == {**MAPPING, "properties": {**MAPPING["properties"], **(extra or {})}}
    s = got["settings"]
    assert s["index.number_of_shards"] == "2"
    assert s["index.number_of_replicas"] == "0"
    assert s["index.refresh_interval"] == "7s"  # the load's -1 put back
    assert s["index.analysis.analyzer.folded.filter"] == ["lowercase", "my_stop"]
    assert s["index.analysis.filter.my_stop.stopwords"] == ["the", "a"]
    assert s["index.provided_name"] == dest  # the target's own, never the source's
    assert got["aliases"] == {alias: {"filter": {"term": {"sku": "a"}}, "index_routing": "r1",
                                      "search_routing": "r1,r2", "is_write_index": True}}
    routed = engines(url).post(f"/{alias}/_doc", params={"refresh": "true"}, json={"sku": "a", "price": 3})
    assert routed.status_code == 201 and routed.json()["_index"] == dest  # the write index takes it, routed r1


def test_8_to_9_carries_mapping_settings_analyzer_and_aliases(engines: Engines) -> None:
    name, alias = engines.name("src8"), engines.name("al")
    make_source(engines, ES8_URL, name, alias)
    dest = f"v9-{name}"
    engines.remember(ES_URL, f"/{dest}")

    plan = plan_only(ES8_URL, ES_URL, alias, Rename(prefix="v9-"))  # an alias names its index
    assert [(p.source, p.dest, p.kind, p.exists, p.status) for p in plan.pairs] == [
        (name, dest, "index", False, "create")]
    assert plan.changes == []
    assert engines(ES_URL).head(f"/{dest}").status_code == 404  # planning (--evaluate) creates nothing

    async def apply_only(source: Es, target: Es) -> CopyPlan:
        p = await plan_copy(source, target, alias, Rename(prefix="v9-"))
        await apply_plan(target, p)
        return p

    plan = run(ES8_URL, ES_URL, apply_only)
    loading = settings_of(engines, ES_URL, dest)
    assert loading["index.refresh_interval"] == "-1" and loading["index.number_of_replicas"] == "0"
    assert list(engines.get(ES_URL, f"/{dest}/_alias")[dest]["aliases"]) == [MARK_PREFIX + dest]
    run(ES8_URL, ES_URL, lambda s, t: finish_plan(t, plan))
    check_copy(engines, ES_URL, dest, alias)
    source = settings_of(engines, ES8_URL, name)
    assert source["index.uuid"] != settings_of(engines, ES_URL, dest)["index.uuid"]


def test_7_17_to_9(engines: Engines) -> None:
    name, alias = engines.name("src7"), engines.name("al")
    engines.put(ES7_URL, f"/{name}", {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0, "refresh_interval": "7s", "analysis": ANALYSIS,
                     "soft_deletes.enabled": False},
        "mappings": {**MAPPING, "properties": {**MAPPING["properties"], "boosted": {"type": "text", "boost": 2}}},
        "aliases": {alias: {"filter": {"term": {"sku": "a"}}, "is_write_index": True, "index_routing": "r1",
                            "search_routing": "r1,r2"}},
    })
    dest = f"from7-{name}"
    engines.remember(ES_URL, f"/{dest}")
    plan = copy_meta(ES7_URL, ES_URL, name, Rename(dest=dest))
    assert {(c.what, c.action) for c in plan.changes} == {("index.soft_deletes.enabled", "dropped"),
                                                         ("boosted.boost", "dropped")}
    got = engines.get(ES_URL, f"/{dest}/_mapping")[dest]["mappings"]
    assert got["properties"].pop("boosted") == {"type": "text"}
    assert got == MAPPING
    s = settings_of(engines, ES_URL, dest)
    assert "index.soft_deletes.enabled" not in s and s["index.refresh_interval"] == "7s"


@pytest.mark.parametrize("target", [OPENSEARCH_URL, OPENSEARCH3_URL], ids=["2.19", "3.x"])
def test_9_to_opensearch_rewrites_what_opensearch_names_otherwise(engines: Engines, target: str) -> None:
    name, alias = engines.name("src9"), engines.name("al")
    make_source(engines, ES_URL, name, alias)
    engines(ES_URL).put(f"/{name}/_mapping", json={"properties": {
        "labels": {"type": "flattened"}, "dim": {"type": "keyword", "time_series_dimension": True}}})
    dest = f"os-{name}"
    engines.remember(target, f"/{dest}")
    plan = copy_meta(ES_URL, target, name, Rename(prefix="os-"))
    assert {(c.what, c.action) for c in plan.changes} == {("labels", "rewritten"), ("dim.time_series_dimension",
                                                                                    "dropped")}
    check_copy(engines, target, dest, alias, {"labels": {"type": "flat_object"}, "dim": {"type": "keyword"}})
    assert "index.routing.allocation.include._tier_preference" not in settings_of(engines, target, dest)


def test_a_dense_vector_needs_knn_which_this_opensearch_lacks(engines: Engines) -> None:
    # dense_vector is rewritten to knn_vector with index.knn; the test build of OpenSearch has no k-NN plugin,
    # and the target says so while planning: the field is named, nothing is created.
    name = engines.name("vec")
    engines.put(ES_URL, f"/{name}", {"mappings": {"properties": {
        "vec": {"type": "dense_vector", "dims": 3, "similarity": "cosine"}}}})
    plan = plan_only(ES_URL, OPENSEARCH_URL, name, Rename(prefix="os-"))
    assert [(c.what, c.action) for c in plan.changes] == [("vec", "rewritten"), ("vec", "refused")]
    assert "index.knn" in plan.refused[0].why
    assert engines(OPENSEARCH_URL).head(f"/os-{name}").status_code == 404


@pytest.mark.parametrize("source", [OPENSEARCH_URL, OPENSEARCH3_URL], ids=["2.19", "3.x"])
def test_opensearch_to_9(engines: Engines, source: str) -> None:
    name, alias = engines.name("srcos"), engines.name("al")
    make_source(engines, source, name, alias)
    engines(source).put(f"/{name}/_mapping", json={"properties": {"labels": {"type": "flat_object"}}})
    dest = f"es-{name}"
    engines.remember(ES_URL, f"/{dest}")
    plan = copy_meta(source, ES_URL, name, Rename(prefix="es-"))
    assert [(c.what, c.action) for c in plan.changes] == [("labels", "rewritten")]
    check_copy(engines, ES_URL, dest, alias, {"labels": {"type": "flattened"}})
    assert "index.replication.type" not in settings_of(engines, ES_URL, dest)


def test_a_field_the_target_refuses_is_found_without_creating_anything(engines: Engines) -> None:
    # The Elasticsearch test build has no wildcard type (an x-pack module): rules cannot know, the target can.
    name = engines.name("wild")
    engines.put(OPENSEARCH_URL, f"/{name}", {"mappings": {"properties": {
        "ok": {"type": "keyword"}, "pattern": {"type": "wildcard"}}}})
    plan = plan_only(OPENSEARCH_URL, ES_URL, name, Rename(prefix="x-"))
    assert [(c.what, c.action) for c in plan.refused] == [("pattern", "refused")], [str(c) for c in plan.changes]
    assert "wildcard" in plan.refused[0].why
    assert engines(ES_URL).head(f"/x-{name}").status_code == 404


def test_a_refusal_at_create_time_is_exit_4_naming_the_field(engines: Engines) -> None:
    name = engines.name("refused")
    engines.put(OPENSEARCH_URL, f"/{name}", {"mappings": {"properties": {"pattern": {"type": "wildcard"}}}})
    engines.remember(ES_URL, f"/x-{name}")

    async def work(source: Es, target: Es) -> None:
        plan = await plan_copy(source, target, name, Rename(prefix="x-"))
        plan.changes = []  # as if the plan had not asked the target: the create itself must say it
        await apply_plan(target, plan)

    with pytest.raises(RefusedError) as caught:
        run(OPENSEARCH_URL, ES_URL, work)
    assert exit_code_for(caught.value) == ExitCode.REFUSED
    assert f"x-{name}" in str(caught.value) and "[pattern]" in str(caught.value)


def test_an_existing_target_is_refused_unless_into_existing_then_compared(engines: Engines) -> None:
    name, alias = engines.name("src"), engines.name("al")
    make_source(engines, ES8_URL, name, alias)
    dest = engines.name("existing")
    engines.put(ES_URL, f"/{dest}", {"mappings": {"properties": {"price": {"type": "keyword"}}}})
    plan = plan_only(ES8_URL, ES_URL, name, Rename(dest=dest))
    assert plan.pairs[0].exists
    assert [(c.what, c.action) for c in plan.refused] == [(dest, "refused")]
    assert "--into-existing" in plan.refused[0].why
    plan = plan_only(ES8_URL, ES_URL, name, Rename(dest=dest), into_existing=True)
    assert [(c.what, c.why) for c in plan.refused] == [("price", "long on the source, keyword on the target")]

    fine = engines.name("fine")
    engines.put(ES_URL, f"/{fine}", {"mappings": {"dynamic": "strict", "properties": {"price": {"type": "long"}}}})
    plan = plan_only(ES8_URL, ES_URL, name, Rename(dest=fine), into_existing=True)
    assert {c.what for c in plan.refused} >= {"sku", "tags", "owner"}  # strict: a new field would be rejected
    engines(ES_URL).put(f"/{fine}/_mapping", json={"dynamic": True})
    plan = copy_meta(ES8_URL, ES_URL, name, Rename(dest=fine), into_existing=True)
    assert engines.get(ES_URL, f"/{fine}/_mapping")[fine]["mappings"] == {
        "dynamic": "true", "properties": {"price": {"type": "long"}}}  # an existing index is left as it is


def test_a_resumed_copy_accepts_the_index_it_made(engines: Engines) -> None:
    name, alias = engines.name("src"), engines.name("al")
    make_source(engines, ES8_URL, name, alias)
    dest = f"r-{name}"
    engines.remember(ES_URL, f"/{dest}")
    run(ES8_URL, ES_URL, lambda s, t: _plan_and_apply(s, t, name, Rename(prefix="r-")))
    assert plan_only(ES8_URL, ES_URL, name, Rename(prefix="r-")).refused != []  # not resuming: refused
    plan = copy_meta(ES8_URL, ES_URL, name, Rename(prefix="r-"), resuming=True)
    assert plan.pairs[0].exists and plan.pairs[0].ours and plan.pairs[0].status == "resume"
    check_copy(engines, ES_URL, dest, alias)
    # finished: the mark is gone, so a later run is no longer taken for a resume of this one
    assert plan_only(ES8_URL, ES_URL, name, Rename(prefix="r-"), resuming=True).refused != []


async def _plan_and_apply(source: Es, target: Es, expr: str, rename: Rename) -> None:
    await apply_plan(target, await plan_copy(source, target, expr, rename))


def test_bad_sources_and_dest_are_usage_errors(engines: Engines) -> None:
    a, b = engines.name("a"), engines.name("b")
    for name in (a, b):
        engines.put(ES8_URL, f"/{name}", {})
    with pytest.raises(UsageError, match=r"^--dest one: SOURCE .* is 2 indices"):
        plan_only(ES8_URL, ES_URL, f"{a},{b}", Rename(dest="one"))
    with pytest.raises(UsageError, match=r"^SOURCE nothing-here-"):
        plan_only(ES8_URL, ES_URL, f"nothing-here-{a}*", Rename(prefix="x-"))
    with pytest.raises(UsageError, match=rf"^SOURCE {a},gone-{a}: no index, alias or data stream \[gone-{a}\] on "):
        plan_only(ES8_URL, ES_URL, f"{a},gone-{a}", Rename(prefix="x-"))  # never half a copy in silence
    engines(ES8_URL).post(f"/{b}/_close").raise_for_status()
    with pytest.raises(UsageError, match=rf"^SOURCE {a},{b}: {b} is closed on the source cluster"):
        plan_only(ES8_URL, ES_URL, f"{a},{b}", Rename(prefix="x-"))
    with pytest.raises(UsageError, match=rf"^SOURCE {a}: the target is the source cluster"):
        plan_only(ES8_URL, ES8_URL, a, Rename(), into_existing=True)
    pattern = plan_only(ES8_URL, ES_URL, "t-copymeta-a-*,t-copymeta-b-*", Rename(suffix="-c"))
    assert (a, f"{a}-c") in {(p.source, p.dest) for p in pattern.pairs}
    assert b not in {p.source for p in pattern.pairs}  # closed: a pattern leaves it out


@pytest.mark.parametrize("target", [OPENSEARCH_URL, OPENSEARCH3_URL], ids=["beside", "to-3.x"])
def test_an_opensearch_data_stream_with_its_templates(engines: Engines, target: str) -> None:
    # beside the source on the same OpenSearch 2.19 (renamed), and to OpenSearch 3.x
    tag = uuid.uuid4().hex[:8]
    url = OPENSEARCH_URL
    cmap, cset, tpl, stream = f"t-ct-map-{tag}", f"t-ct-set-{tag}", f"t-tpl-{tag}", f"t-logs-{tag}-app"
    engines.put(url, f"/_component_template/{cmap}", {"template": {"mappings": {"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}}}}})
    engines.put(url, f"/_component_template/{cset}", {"template": {"settings": {
        "number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "3s"}}})
    engines.put(url, f"/_index_template/{tpl}", {
        "index_patterns": [f"t-logs-{tag}-*"], "data_stream": {}, "composed_of": [cmap, cset], "priority": 77,
        "template": {"mappings": {"properties": {"msg": {"type": "text"}}}}})
    engines.put(url, f"/_data_stream/{stream}", {})
    doc = engines(url).post(f"/{stream}/_doc", params={"refresh": "true"},
                            json={"@timestamp": "2026-01-01T00:00:00Z", "host": "h", "msg": "m", "code": 7})
    assert doc.status_code == 201
    for path in (f"/_component_template/cp-{cmap}", f"/_component_template/cp-{cset}", f"/_index_template/cp-{tpl}",
                 f"/_data_stream/cp-{stream}"):
        engines.remember(target, path)

    plan = plan_only(url, target, stream, Rename(prefix="cp-"))
    assert [(p.source, p.dest, p.kind) for p in plan.pairs] == [(stream, f"cp-{stream}", "data_stream")]
    assert [(c.what, c.action) for c in plan.changes] == [(f"index template {tpl}", "rewritten")]
    # interrupted after the stream was made: a new run refuses it, a resumed one knows it for its own
    run(url, target, lambda s, t: _plan_and_apply(s, t, stream, Rename(prefix="cp-")))
    marked = engines.get(target, f"/_index_template/cp-{tpl}")["index_templates"][0]["index_template"]
    assert marked["_meta"] == {"escli_copy": {"dest": f"cp-{stream}"}}
    assert {c.what for c in plan_only(url, target, stream, Rename(prefix="cp-")).refused} == {
        f"cp-{stream}", f"index template cp-{tpl}", f"component template cp-{cmap}", f"component template cp-{cset}"}
    plan = copy_meta(url, target, stream, Rename(prefix="cp-"), resuming=True)
    assert plan.pairs[0].ours

    got = engines.get(target, f"/_index_template/cp-{tpl}")["index_templates"][0]["index_template"]
    assert got == {"index_patterns": [f"cp-{stream}"], "composed_of": [f"cp-{cmap}", f"cp-{cset}"], "priority": 78,
                   "data_stream": {"timestamp_field": {"name": "@timestamp"}},
                   "template": {"mappings": {"properties": {"msg": {"type": "text"}}}}}  # no copy mark left
    assert engines.get(target, f"/_component_template/cp-{cmap}")["component_templates"][0]["component_template"] == \
        {"template": {"mappings": {"properties": {"@timestamp": {"type": "date"}, "host": {"type": "keyword"}}}}}
    ds = engines.get(target, f"/_data_stream/cp-{stream}")["data_streams"][0]
    assert ds["template"] == f"cp-{tpl}"
    backing = ds["indices"][0]["index_name"]
    props = engines.get(target, f"/{backing}/_mapping")[backing]["mappings"]["properties"]
    assert props["host"] == {"type": "keyword"} and props["code"] == {"type": "long"}  # the dynamic one too
    s = settings_of(engines, target, backing)
    assert s["index.refresh_interval"] == "3s" and s["index.number_of_replicas"] == "0"
    # the source is untouched
    assert engines.get(url, f"/_index_template/{tpl}")["index_templates"][0]["index_template"]["priority"] == 77


def test_an_alias_whose_write_index_is_another_on_the_target_is_refused_while_planning(engines: Engines) -> None:
    name, alias = engines.name("src"), engines.name("al")
    make_source(engines, ES8_URL, name, alias)
    other = engines.name("other")
    engines.put(ES_URL, f"/{other}", {"aliases": {alias: {"is_write_index": True}}})
    plan = plan_only(ES8_URL, ES_URL, name, Rename(prefix="w-"))
    assert [(c.what, c.why) for c in plan.refused] == [(f"alias {alias}", f"its write index on the target is {other} "
                                                                          "already")]
    taken = engines.name("taken")
    engines.put(ES_URL, f"/{taken}", {})
    engines(ES8_URL).post("/_aliases", json={"actions": [{"add": {"index": name, "alias": taken}}]})
    plan = plan_only(ES8_URL, ES_URL, name, Rename(prefix="w-"))
    assert (f"alias {taken}", "an index of that name exists on the target") in [(c.what, c.why) for c in plan.refused]


def test_a_data_stream_to_an_engine_without_data_streams_is_refused_while_planning(engines: Engines) -> None:
    tag = uuid.uuid4().hex[:8]
    tpl, stream = f"t-tpl-{tag}", f"t-nods-{tag}"
    engines.put(OPENSEARCH_URL, f"/_index_template/{tpl}", {"index_patterns": [stream], "data_stream": {}})
    engines.put(OPENSEARCH_URL, f"/_data_stream/{stream}", {})
    plan = plan_only(OPENSEARCH_URL, ES_URL, stream, Rename())
    assert [(p.dest, p.kind) for p in plan.pairs] == [(stream, "data_stream")]
    assert [(c.what, c.why) for c in plan.refused] == [(stream, "the target has no data streams")]


@pytest.mark.parametrize("target", [ES_URL, OPENSEARCH_URL])
def test_a_partitioned_routed_index(engines: Engines, target: str) -> None:
    # A simulated template's index has one shard: the partition size must not be judged against it.
    name = engines.name("part")
    engines.put(ES8_URL, f"/{name}", {
        "settings": {"number_of_shards": 4, "routing_partition_size": 2, "number_of_replicas": 0},
        "mappings": {"_routing": {"required": True}, "properties": {"a": {"type": "keyword"}}}})
    engines.remember(target, f"/p-{name}")
    plan = copy_meta(ES8_URL, target, name, Rename(prefix="p-"))
    assert plan.changes == []
    s = settings_of(engines, target, f"p-{name}")
    assert (s["index.number_of_shards"], s["index.routing_partition_size"]) == ("4", "2")
    got = engines.get(target, f"/p-{name}/_mapping")[f"p-{name}"]["mappings"]
    assert got == {"_routing": {"required": True}, "properties": {"a": {"type": "keyword"}}}


def test_a_dest_that_is_an_alias_on_the_target_is_refused_while_planning(engines: Engines) -> None:
    name = engines.name("src")
    engines.put(ES8_URL, f"/{name}", {})
    holder = engines.name("holder")
    engines.put(ES_URL, f"/{holder}", {"aliases": {f"x-{name}": {}}})
    plan = plan_only(ES8_URL, ES_URL, name, Rename(prefix="x-"))
    assert [(c.what, c.why) for c in plan.refused] == [(f"x-{name}", "the target has an alias of that name")]


def test_without_metadata_nothing_is_planned_or_made(engines: Engines) -> None:
    name, alias = engines.name("src"), engines.name("al")
    make_source(engines, ES8_URL, name, alias)
    engines.remember(ES_URL, f"/n-{name}")
    plan = copy_meta(ES8_URL, ES_URL, alias, Rename(prefix="n-"), metadata=False)
    assert [(p.dest, p.status) for p in plan.pairs] == [(f"n-{name}", "no metadata")] and plan.changes == []
    assert engines(ES_URL).head(f"/n-{name}").status_code == 404


def test_escli_copy_evaluate_then_copy_with_metadata(cli: Callable[..., Result], engines: Engines) -> None:
    """The command's path: --evaluate reports the rewrites and a refusal (exit 1, nothing made); the copy itself
    then carries mapping, analyzer, routed documents and the filtered write alias to OpenSearch."""
    name, alias = engines.name("cli"), engines.name("al")
    make_source(engines, ES_URL, name, alias)
    engines(ES_URL).put(f"/{name}/_mapping", json={"properties": {"labels": {"type": "flattened"},
                                                               "vec": {"type": "dense_vector", "dims": 2}}})
    dest = f"cli-{name}"
    engines.remember(OPENSEARCH_URL, f"/{dest}")
    r = cli("--url", ES_URL, "copy", name, "--to", OPENSEARCH_URL, "--prefix", "cli-", "--evaluate", "-o", "json")
    assert r.code == ExitCode.PARTIAL, r.stderr
    report = orjson.loads(r.stdout)
    assert report["indices"] == [{"source": name, "dest": dest, "kind": "index", "exists": False,
                                  "state": "create"}]
    assert {(c["what"], c["action"]) for c in report["changes"]} == {
        ("labels", "rewritten"), ("vec", "rewritten"), ("vec", "refused")}
    assert engines(OPENSEARCH_URL).head(f"/{dest}").status_code == 404

    engines(ES_URL).delete(f"/{name}")  # the same index without the vector the target cannot take
    make_source(engines, ES_URL, name, alias)
    engines(ES_URL).put(f"/{name}/_mapping", json={"properties": {"labels": {"type": "flattened"}}})
    bulk = b"".join(orjson.dumps({"index": {"_id": str(i), "routing": f"u{i % 3}"}}) + b"\n"
                    + orjson.dumps({"sku": "a" if i % 2 else "b", "price": i, "labels": {"k": str(i)},
                                    "at": "2026-01-01T00:00:00.123456789Z", "where": {"lat": 1.5, "lon": 2.5},
                                    "tags": [{"label": "x", "weight": 0.5}], "owner": {"id": "o"}}) + b"\n"
                    for i in range(40))
    resp = engines(ES_URL).post(f"/{name}/_bulk", params={"refresh": "true"}, content=bulk,
                                headers={"content-type": "application/x-ndjson"})
    assert resp.status_code == 200 and not resp.json()["errors"]
    r = cli("--url", ES_URL, "copy", name, "--to", OPENSEARCH_URL, "--prefix", "cli-")
    assert r.code == 0, r.stderr
    check_copy(engines, OPENSEARCH_URL, dest, alias, {"labels": {"type": "flat_object"}})
    target = engines(OPENSEARCH_URL)
    assert target.get(f"/{dest}/_count").json()["count"] == 41  # 40 copied, one written through the alias
    assert target.post(f"/{dest}/_count", json={"query": {"term": {"sku": "a"}}}).json()["count"] == 21
    assert target.get(f"/{dest}/_doc/7", params={"routing": "u1"}).json()["_routing"] == "u1"



def test_a_pattern_of_many_long_names_is_planned(engines: Engines) -> None:
    # 18 names of ~245 characters: every list of them is longer than the 4 KB request line engines read
    tag = uuid.uuid4().hex[:8]
    names = [f"t-copymeta-long-{tag}-{'n' * 220}-{i:02d}" for i in range(18)]
    for name in names:
        engines.put(ES8_URL, f"/{name}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    plan = plan_only(ES8_URL, ES_URL, f"t-copymeta-long-{tag}-*", Rename(suffix="-c"))
    assert [p.dest for p in plan.pairs] == [f"{n}-c" for n in names] and plan.changes == []
    assert all(p.status == "create" for p in plan.pairs)


def test_8_source_mode_becomes_9_setting(engines: Engines) -> None:
    name = engines.name("synth")
    engines.put(ES8_URL, f"/{name}", {"mappings": {"_source": {"mode": "synthetic"},
                                                   "properties": {"k": {"type": "keyword"}}}})
    engines.remember(ES_URL, f"/s-{name}")
    plan = copy_meta(ES8_URL, ES_URL, name, Rename(prefix="s-"))
    assert [(c.what, c.action) for c in plan.changes] == [("mappings._source.mode", "rewritten")]
    assert settings_of(engines, ES_URL, f"s-{name}")["index.mapping.source.mode"] == "synthetic"
    assert engines.get(ES_URL, f"/s-{name}/_mapping")[f"s-{name}"]["mappings"] == {
        "properties": {"k": {"type": "keyword"}}}
