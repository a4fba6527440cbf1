"""A smoke set of `escli search` against Elasticsearch 8.x: one client for both majors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from escli.sample import MAPPING, generate
from tests.conftest import ES8_URL, Result

Cli = Callable[..., Result]
pytestmark = pytest.mark.es8


@pytest.fixture(scope="module")
def es8_index(es8: httpx.Client) -> Iterator[str]:
    name = f"t-es8-products-{uuid.uuid4().hex[:8]}"
    es8.put(f"/{name}", json=MAPPING).raise_for_status()
    lines = b"".join(json.dumps(x).encode() + b"\n" for doc in generate(500, seed=8)
                     for x in ({"index": {"_index": name, "_id": doc["id"]}}, doc))
    es8.post("/_bulk", params={"refresh": "true"}, content=lines,
             headers={"content-type": "application/x-ndjson"}).raise_for_status()
    yield name
    es8.delete(f"/{name}")


def run(cli: Cli, *args: str) -> Result:
    return cli(*args, env={"ESCLI_URL": ES8_URL})


def test_engine_is_8x(es8: httpx.Client) -> None:
    version = es8.get("/_nodes/_local").json()["nodes"].popitem()[1]["version"]
    assert version.startswith("8.")


def test_search_options_and_cache_on_8x(cli: Cli, es8: httpx.Client, es8_index: str) -> None:
    args = ("search", es8_index, "laptop", "-f", "name^2", "-f", "description", "--filter", "category=laptops",
            "--range", "price=gte:5", "--sort", "price:desc", "--source", "name,price,category", "-n", "5",
            "-o", "json")
    first = run(cli, *args)
    assert first.code == 0, first.stderr
    doc = json.loads(first.out)
    got = doc["hits"]["hits"]
    assert got and all(h["_source"]["category"] == "laptops" and h["_source"]["price"] >= 5 for h in got)
    prices = [h["_source"]["price"] for h in got]
    assert prices == sorted(prices, reverse=True)
    direct = es8.post(f"/{es8_index}/_search", json={
        "query": {"bool": {"must": [{"multi_match": {"query": "laptop", "fields": ["name^2", "description"]}}],
                           "filter": [{"term": {"category": "laptops"}}, {"range": {"price": {"gte": 5}}}]}},
        "sort": [{"price": {"order": "desc"}}], "size": 5}).json()
    assert [h["_id"] for h in got] == [h["_id"] for h in direct["hits"]["hits"]]
    assert doc["_escli"]["cache"] == "miss"
    second = run(cli, *args)
    assert json.loads(second.out)["_escli"]["cache"] == "hit-disk" and "cache hit" in second.stderr


def test_body_ndjson_and_errors_on_8x(cli: Cli, es8_index: str, tmp_path: Path) -> None:
    body = tmp_path / "b.json"
    body.write_text('{"query": {"query_string": {"query": "category:books"}}, "size": 4}')
    r = run(cli, "search", es8_index, "--body", str(body), "--track-total-hits", "true", "-o", "ndjson")
    assert r.code == 0, r.stderr
    assert [json.loads(x)["_source"]["category"] for x in r.out.splitlines()] == ["books"] * 4
    r = run(cli, "search", "no-such-index-es8", "x")
    assert r.code == 4 and "no-such-index-es8" in r.stderr and "index_not_found" in r.stderr
