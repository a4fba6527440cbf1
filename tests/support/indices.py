"""Test indices with documents by id, set up through the engine's own API (never through escli)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson


def put_docs(es: httpx.Client, index: str, docs: Mapping[str, Mapping[str, Any]]) -> None:
    """Index (or replace) these documents by id and refresh, so the next search sees them."""
    lines = b"".join(orjson.dumps({"index": {"_id": k}}) + b"\n" + orjson.dumps(v) + b"\n" for k, v in docs.items())
    resp = es.post(f"/{index}/_bulk", params={"refresh": "true"}, content=lines,
                   headers={"content-type": "application/x-ndjson"})
    resp.raise_for_status()
    assert not resp.json()["errors"], resp.text[:500]


def make_index(es: httpx.Client, name: str, body: Mapping[str, Any], docs: Mapping[str, Mapping[str, Any]]) -> str:
    es.put(f"/{name}", json=body).raise_for_status()
    put_docs(es, name, docs)
    return name
