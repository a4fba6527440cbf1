"""The seam itself on the real engine: answers, errors and product through es.connect.open_es."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from escli.errors import RefusedError, UnreachableError
from escli.es.api import ELASTICSEARCH
from escli.es.connect import open_es
from escli.settings import Settings
from escli.ui import SILENT


def run(url: str, work: Any) -> Any:
    async def main() -> Any:
        async with open_es(Settings(urls=(url,), timeout=10), SILENT) as es:
            return await work(es)

    return asyncio.run(main())


def test_product_and_search_answers_are_the_same(es_url: str, sample_index: str) -> None:
    body = {"query": {"match": {"name": "lamp"}}, "size": 3, "sort": ["_doc"]}

    async def work(es: Any) -> tuple[Any, Any, int]:
        resp = await es.search(sample_index, body)
        return await es.product(), resp.json(), await es.count(sample_index)

    product, answer, count = run(es_url, work)
    direct = httpx.post(f"{es_url}/{sample_index}/_search", json=body, timeout=120).json()
    assert product.name == ELASTICSEARCH
    assert [h["_id"] for h in answer["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
    assert count > 0


def test_refusals_and_unreachable_become_escli_errors(es_url: str) -> None:
    with pytest.raises(RefusedError) as refused:
        run(es_url, lambda es: es.search("no-such-index-here", {"size": 0}))
    assert refused.value.status == 404 and "index_not_found_exception" in str(refused.value)
    assert "no-such-index-here" in str(refused.value)
    with pytest.raises(UnreachableError):
        run("http://127.0.0.1:1", lambda es: es.count("x"))


def test_many_requests_at_once_share_the_connections(es_url: str, sample_index: str) -> None:
    async def work(es: Any) -> list[int]:
        answers = await asyncio.gather(*(es.count(sample_index, {"term": {"category": c}})
                                         for c in ["audio", "laptops", "kitchen", "audio"] * 10))
        return list(answers)

    counts = run(es_url, work)
    assert len(counts) == 40 and counts[0] == counts[3] and all(c > 0 for c in counts)
