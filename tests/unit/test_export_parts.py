"""The pure parts of export: positions across PITs, bodies, checkpoints, output files, the page sink, CSV rows."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escli.core.export import Checkpoint, ExportRequest, SliceState, check_body, stable_after
from escli.errors import UsageError
from escli.output.flatten import flatten, row_cells
from escli.output.formats import Format
from escli.output.writers import CsvWriter, HitSink, OutputTarget, partial_path


def test_stable_after_keeps_the_shard_and_skips_every_doc_of_it() -> None:
    shard_doc = (3 << 32) | 12345
    assert stable_after([7, shard_doc]) == [7, (3 << 32) | 0x7FFFFFFF]
    assert stable_after(["2024-01-01", 7, 12]) == ["2024-01-01", 7, 0x7FFFFFFF]


def test_body_keys_export_owns_are_refused_by_name() -> None:
    assert check_body({"query": {"match_all": {}}}, "b.json") == {"query": {"match_all": {}}}
    with pytest.raises(UsageError, match=r"--body b.json: search_after, size: set by export itself"):
        check_body({"search_after": [1], "size": 3}, "b.json")
    with pytest.raises(UsageError, match="expected a JSON object"):
        check_body([1], "b.json")


def test_search_body_combines_queries_and_fields() -> None:
    req = ExportRequest("i", query={"query_string": {"query": "a"}}, body={"query": {"term": {"x": 1}}},
                        fields=["a", "b.c"])
    assert req.search_body() == {"query": {"bool": {"must": [{"term": {"x": 1}}, {"query_string": {"query": "a"}}]}},
                                 "_source": {"includes": ["a", "b.c"]}}
    assert ExportRequest("i").search_body() == {}
    sorted_req = ExportRequest("i", body={"sort": [{"price": "desc"}, "_doc", {"_shard_doc": "asc"}]})
    assert sorted_req.user_sort() == [{"price": "desc"}]


def test_checkpoint_round_trip_is_private(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    cp = Checkpoint(path=path, request={"index": "i"}, pit_id="abc", written=5,
                    slices=[SliceState(after=[1, 2], written=5), SliceState(done=True)])
    cp.generation = 2
    cp.slices[0].gen = 1  # its position came from an older PIT than the one named
    cp.save()
    assert path.stat().st_mode & 0o777 == 0o600
    back = Checkpoint.load(path)
    assert back.pit_id == "abc" and back.written == 5 and back.request == {"index": "i"}
    assert back.slices[0].after == [1, 2] and back.slices[0].gen == 0  # not exact: made stable before use
    assert back.slices[1].done
    path.write_text("{}")
    with pytest.raises(UsageError, match="not an escli export checkpoint"):
        Checkpoint.load(path)


def test_gzip_target_cuts_back_to_a_mark_and_continues(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson.gz"
    t = OutputTarget(path)
    t.write(b"a\n")
    t.write(b"b\n")
    mark = t.mark()
    t.write(b"lost\n" * 1000)
    t.mark()
    t.abort(keep=True)  # as if interrupted after the second page was written but before it was recorded
    assert not path.exists() and partial_path(path).exists()
    assert partial_path(path).stat().st_mode & 0o777 == 0o600
    t2 = OutputTarget(path, resume_bytes=mark)
    t2.write(b"c\n")
    t2.commit()
    assert gzip.decompress(path.read_bytes()) == b"a\nb\nc\n"
    assert not partial_path(path).exists() and path.stat().st_mode & 0o777 == 0o600


def test_resume_without_the_partial_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"partial output .* is gone"):
        OutputTarget(tmp_path / "x.ndjson", resume_bytes=10)


def hits(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"_index": "i", "_id": str(k), "_source": {"n": k, "o": {"s": f"v,{k}\n"}}, "sort": [k, k]}
            for k in range(start, start + n)]


def test_json_sink_resumes_into_one_valid_array(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    sink = HitSink(Format.JSON, OutputTarget(path))
    sink.write_hits(hits(3))
    state = sink.mark()
    sink.write_hits(hits(2, 3))  # never recorded
    sink.target.abort(keep=True)
    sink2 = HitSink(Format.JSON, OutputTarget(path, resume_bytes=state["bytes"]), rows_before=state["rows"],
                    resumed=True)
    sink2.write_hits(hits(4, 3))
    sink2.finish()
    rows = json.loads(path.read_bytes())
    assert [r["_id"] for r in rows] == [str(k) for k in range(7)]
    assert rows[0] == {"_index": "i", "_id": "0", "_source": {"n": 0, "o": {"s": "v,0\n"}}}


def test_csv_sink_writes_the_header_once_across_a_resume(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    sink = HitSink(Format.CSV, OutputTarget(path), ["n", "o.s"])
    sink.write_hits(hits(2))
    state = sink.mark()
    sink.target.abort(keep=True)
    sink2 = HitSink(Format.CSV, OutputTarget(path, resume_bytes=state["bytes"]), ["n", "o.s"],
                    rows_before=state["rows"], resumed=True)
    sink2.write_hits(hits(1, 2))
    sink2.finish()
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert rows == [["_id", "n", "o.s"], ["0", "0", "v,0\n"], ["1", "1", "v,1\n"], ["2", "2", "v,2\n"]]


def test_ndjson_sink_source_only() -> None:
    buf = io.BytesIO()
    sink = HitSink(Format.NDJSON, OutputTarget(None, buf), source_only=True)
    sink.write_hits(hits(2))
    sink.finish()
    assert [orjson.loads(x) for x in buf.getvalue().splitlines()] == [h["_source"] for h in hits(2)]


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
keys = st.sampled_from(["a", "b", "c", "=x", "d e", "ü"])
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)), max_leaves=8)
docs = st.dictionaries(keys, values, max_size=5)


@settings(max_examples=200, deadline=None)
@given(st.lists(docs, max_size=6), st.booleans())
def test_csv_write_many_matches_row_by_row_and_parses_back(rows: list[dict[str, Any]], excel_safe: bool) -> None:
    columns = sorted({c for r in rows for c in flatten(r)} | {"a", "zz"})
    one, many = io.BytesIO(), io.BytesIO()
    w1 = CsvWriter(one, columns, excel_safe)
    for r in rows:
        w1.write(r)
    CsvWriter(many, columns, excel_safe).write_many(rows)
    assert one.getvalue() == many.getvalue()
    parsed = list(csv.reader(io.StringIO(many.getvalue().decode("utf-8"), newline="")))
    assert parsed[0] == columns
    assert parsed[1:] == [row_cells(flatten(r), columns, excel_safe) for r in rows]
