"""core/verify.py's extension of export: pages folded into a digest, a unit read again undone (no engine needed:
the pages are search answers as bytes)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from escli.core.digest import BYTES, Digest
from escli.core.verify import FoldEncoder, FoldPart
from escli.errors import RefusedError


def page(ids: range, failed: int = 0) -> bytes:
    hits = [{"_id": f"d{i}", "_source": {"v": i}, "sort": [i]} for i in ids]
    return orjson.dumps({"pit_id": "p", "_shards": {"failed": failed}, "hits": {"hits": hits}})


def encode(raw: bytes) -> object:
    return asyncio.run(FoldEncoder("idx", 64, BYTES).encode(raw, None, False))


def test_a_unit_read_again_counts_once() -> None:
    part = FoldPart(64, BYTES)
    first, second = encode(page(range(0, 10))), encode(page(range(10, 20)))
    part.mark()
    part.write(first.data)  # type: ignore[attr-defined]
    part.final()  # unit 1 done
    part.mark()
    part.write(second.data)  # type: ignore[attr-defined]
    part.rewind(0)  # the PIT was lost: unit 2 is read again from its start
    part.write(second.data)  # type: ignore[attr-defined]
    part.final()
    total = part.total().digest
    expected = Digest(64, BYTES)
    for i in range(20):
        expected.add_doc(f"d{i}", None, orjson.dumps({"v": i}))
    assert total == expected and total.count == 20


def test_a_stream_without_units_is_counted_at_the_end() -> None:
    part = FoldPart(64, BYTES)  # scroll: no unit is ever finished
    part.write(encode(page(range(5))).data)  # type: ignore[attr-defined]
    assert part.total().digest.count == 5


def test_pages_that_are_not_pages() -> None:
    enc = encode(page(range(3), failed=1))
    assert enc.problem and enc.rows == 0  # type: ignore[attr-defined]  # export retries such a page
    folded = encode(page(range(3)))
    assert (folded.hits, folded.rows, folded.last_sort, folded.context_id) == (3, 3, [2], "p")  # type: ignore[attr-defined]
    with pytest.raises(RefusedError, match="idx: a search answer without hits"):
        encode(b"<html>proxy error</html>")
