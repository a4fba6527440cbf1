"""Parquet pages: the typed-row path writes exactly what the general path writes, or steps aside."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from escli.core.answer_page import Encoded
from escli.output import parquet
from escli.output.export_pages import PageSpec, general_page, typed_parquet

SCHEMA = (("_id", "string", False), ("s", "string", False), ("i", "int64", False), ("f", "float64", False),
          ("b", "bool", False), ("t", "ts_ms", False), ("n", "ts_ns", False), ("o.x", "string", False),
          ("o.y", "int64", False), ("o.p.q", "float64", False), ("l", "string", True), ("li", "int64", True),
          ("j", "json", False))
SPEC = PageSpec("parquet", schema=SCHEMA)
KEYS = ["s", "i", "f", "b", "t", "n", "o", "l", "li", "j"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.5, -2.5, 1e300, 2.0**60, 3.0]),
    st.text(max_size=8), st.sampled_from(["42", "-7", "4.5", "true", "false", "2024-03-01T10:00:00+02:00",
                                          "2024-03-01", "2024-03-01T08:00:00.123456789Z", "1709280000000", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y", "p", "q", "z"]), inner, max_size=3)), max_leaves=6)
keys = st.sampled_from([*KEYS, "u", "o.x", "o.p"])  # "u" no column names; "o.x" a literal dotted key
docs = st.dictionaries(keys, values, max_size=6)
usual = st.fixed_dictionaries({}, optional={
    "s": st.one_of(st.none(), st.text(max_size=5)), "i": st.integers(-(2**53), 2**53),
    "f": st.floats(allow_nan=False, allow_infinity=False), "b": st.booleans(),
    "t": st.sampled_from(["2024-03-01T10:00:00+02:00", "2024-03-01", 1709280000000]),
    "o": st.fixed_dictionaries({}, optional={"x": st.text(max_size=3), "y": st.integers(0, 9)}),
    "l": st.lists(st.text(max_size=3), max_size=3), "li": st.lists(st.integers(0, 9), max_size=3)})


def answer(sources: list[dict[str, Any] | None]) -> bytes:
    hits = [{"_index": "ix", "_id": f"d{k}", "_score": None, "sort": [k], **({} if s is None else {"_source": s})}
            for k, s in enumerate(sources)]
    return orjson.dumps({"pit_id": "p1", "timed_out": False, "_shards": {"total": 1, "failed": 0},
                         "hits": {"total": {"value": len(hits)}, "hits": hits}})


def frame(enc: Encoded) -> tuple[pa.Table, list[Any]]:
    n, m = parquet.FRAME.unpack(enc.data[:parquet.FRAME.size])
    ipc = enc.data[parquet.FRAME.size:parquet.FRAME.size + n]
    errors = [orjson.loads(x) for x in enc.data[parquet.FRAME.size + n:].splitlines()]
    assert len(enc.data) == parquet.FRAME.size + n + m
    return pa.ipc.open_stream(ipc).read_all(), errors


def same_or_aside(raw: bytes, **kw: Any) -> bool:
    parquet._misses = 0
    typed = typed_parquet(raw, SPEC, **kw)
    general = general_page(raw, SPEC, **kw)
    if typed is None:
        return False
    assert typed._replace(data=b"") == general._replace(data=b"")
    (t1, e1), (t2, e2) = frame(typed), frame(general)
    assert t1.equals(t2), (t1, t2)
    assert e1 == e2
    return True


@given(st.lists(st.one_of(st.none(), docs), max_size=6))
def test_any_page_comes_out_as_the_general_path_writes_it(sources: list[dict[str, Any] | None]) -> None:
    same_or_aside(answer(sources))


@given(st.lists(usual, max_size=8), st.sets(st.sampled_from([f"d{k}" for k in range(8)])), st.integers(0, 8))
def test_usual_pages_take_the_typed_path(sources: list[dict[str, Any]], skip: set[str], limit: int) -> None:
    assert same_or_aside(answer(list(sources)), skip=skip, want_ids=True, limit=limit)


def test_the_cases_that_step_aside_and_those_that_do_not() -> None:
    assert same_or_aside(answer([{"i": 0.5, "s": 7, "b": "true", "l": "solo", "t": 1709280000000}]))
    assert same_or_aside(answer([{"i": 2**63, "f": "4.5", "li": [1, None], "s": [1]}]))  # errors, both paths
    assert same_or_aside(answer([{"j": {"any": [1, "x"]}}, None, {}]))
    assert not same_or_aside(answer([{"u": 1}]))  # a key no column names
    assert not same_or_aside(answer([{"o.x": "dotted"}]))  # the general path puts it in o.x
    assert not same_or_aside(answer([{"s": {"an": "object"}}]))


def test_a_worker_stops_trying_after_pages_in_a_row_that_step_aside() -> None:
    parquet._misses = 0
    refused, usual_page = answer([{"u": 1}]), answer([{"s": "x"}])
    assert typed_parquet(usual_page, SPEC) is not None
    for _ in range(parquet.MISSES - 1):
        assert typed_parquet(refused, SPEC) is None
    assert typed_parquet(usual_page, SPEC) is not None  # a page it takes resets the count
    for _ in range(parquet.MISSES):
        typed_parquet(refused, SPEC)
    assert typed_parquet(usual_page, SPEC) is None
    parquet._misses = 0
