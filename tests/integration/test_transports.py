"""The seam itself on the real engine: both transports give the same answers, errors and product."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from escli.errors import RefusedError, UnreachableError
from escli.es.api import ELASTICSEARCH
from escli.es.connect import open_es
from escli.settings import Settings

BOTH = pytest.mark.parametrize("pooled", [False, True], ids=["light", "pooled"])


def run(url: str, pooled: bool, work: Any) -> Any:
    async def main() -> Any:
        async with open_es(Settings(urls=(url,), timeout=10), pooled=pooled) as es:
            return await work(es)

    return asyncio.run(main())


@BOTH
def test_product_and_search_answers_are_the_same(es_url: str, sample_index: str, pooled: bool) -> None:
    body = {"query": {"match": {"name": "lamp"}}, "size": 3, "sort": ["_doc"]}

    async def work(es: Any) -> tuple[Any, Any, int]:
        resp = await es.search(sample_index, body)
        return await es.product(), resp.json(), await es.count(sample_index)

    product, answer, count = run(es_url, pooled, work)
    light = run(es_url, False, lambda es: es.search(sample_index, body))
    assert product.name == ELASTICSEARCH
    assert [h["_id"] for h in answer["hits"]["hits"]] == [h["_id"] for h in orjson.loads(light.body)["hits"]["hits"]]
    assert count > 0


@BOTH
def test_refusals_and_unreachable_become_escli_errors(es_url: str, pooled: bool) -> None:
    with pytest.raises(RefusedError) as refused:
        run(es_url, pooled, lambda es: es.search("no-such-index-here", {"size": 0}))
    assert refused.value.status == 404 and "index_not_found_exception" in str(refused.value)
    assert "no-such-index-here" in str(refused.value)
    with pytest.raises(UnreachableError):
        run("http://127.0.0.1:1", pooled, lambda es: es.count("x"))


@BOTH
def test_many_requests_at_once_share_the_connections(es_url: str, sample_index: str, pooled: bool) -> None:
    async def work(es: Any) -> list[int]:
        answers = await asyncio.gather(*(es.count(sample_index, {"term": {"category": c}})
                                         for c in ["audio", "laptops", "kitchen", "audio"] * 10))
        return list(answers)

    counts = run(es_url, pooled, work)
    assert len(counts) == 40 and counts[0] == counts[3] and all(c > 0 for c in counts)
