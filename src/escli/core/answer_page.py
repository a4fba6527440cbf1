"""A search answer's page, decoded without building the documents, and what a page encoder hands back.

Shared by export's encoders (output/export_pages.py), copy's bulk writer (core/copy.py) and verify's fold
(core/verify.py): msgspec decodes the answer with each hit's `_source` kept as its raw bytes (or as a typed
Struct), and a page with failed shards or a timeout is named as not a page (page_problem).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import msgspec


class Encoded(NamedTuple):
    data: bytes
    hits: int  # hits in the answer
    rows: int  # rows in data
    last_sort: list[Any] | None
    ids: list[str] | None
    context_id: str | None
    problem: str | None


def page_problem(resp: dict[str, Any]) -> str | None:
    """A page with shard failures or a timeout is not a page: retrying beats silently losing documents."""
    shards = resp.get("_shards") or {}
    if resp.get("timed_out") or shards.get("failed"):
        failures = shards.get("failures") or []
        return str(failures[0].get("reason", {}).get("type", "shard failure")) if failures else "timed out"
    return None


EMPTY = msgspec.Raw(b"{}")


class _Shards(msgspec.Struct):
    failed: int = 0


@functools.lru_cache(maxsize=8)
def answer_decoder(source: Any = None) -> msgspec.json.Decoder[Any]:
    """A search answer's decoder with each hit's `_source` as its raw bytes (NDJSON), or decoded as the Struct
    `source` (None when missing: Parquet's typed rows, output/parquet.row_type)."""
    field = ("source", msgspec.Raw, EMPTY) if source is None else ("source", source | None, None)
    hit = msgspec.defstruct("_Hit", [("id", str), ("index", str | None, None), field,
                                     ("sort", list[Any] | None, None), ("routing", str | None, None)],
                            rename={"index": "_index", "id": "_id", "source": "_source", "routing": "_routing"})
    hits = msgspec.defstruct("_Hits", [("hits", list[hit], msgspec.field(default_factory=list))])  # type: ignore[valid-type]
    answer = msgspec.defstruct("_Answer", [("hits", hits, msgspec.field(default_factory=hits)),
                                           ("pit_id", str | None, None), ("scroll_id", str | None, None),
                                           ("timed_out", bool, False),
                                           ("shards", _Shards, msgspec.field(default_factory=_Shards))],
                               rename={"scroll_id": "_scroll_id", "shards": "_shards"})
    return msgspec.json.Decoder(answer)


class _Kept(NamedTuple):
    hits: list[Any]  # after skip and limit
    in_answer: int  # hits in the answer, before skip and limit
    last_sort: list[Any] | None
    context_id: str | None


def raw_answer(raw: bytes, skip: set[str] | None, limit: int | None,
               decoder: msgspec.json.Decoder[Any] | None = None, newlines: bool = False) -> _Kept | None:
    """The answer's hits with each `_source` as its raw bytes (or decoded by `decoder`), or None when the page
    needs the general path (a raw newline in raw bytes, unless the caller takes them: `newlines`; an answer of
    another shape, failed shards whose reason must be read)."""
    if decoder is None and not newlines and (b"\n" in raw or b"\r" in raw):
        return None
    try:
        resp = (decoder or answer_decoder()).decode(raw)
    except msgspec.DecodeError:
        return None
    if resp.timed_out or resp.shards.failed:
        return None
    hits = resp.hits.hits
    count = len(hits)
    last_sort = hits[-1].sort if hits else None
    if skip:
        hits = [h for h in hits if h.id not in skip]
    if limit is not None:
        hits = hits[:limit]
    return _Kept(hits, count, last_sort, resp.pit_id or resp.scroll_id)
