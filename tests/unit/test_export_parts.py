"""The pure parts of export: positions across PITs, bodies, checkpoints, output files, the page sink, CSV rows."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.core.export_plan import (
    WINDOW_PIECES,
    Unit,
    choose_readers,
    parse_partition,
    plan_units,
    unit_body,
    window_units,
)
from escli.core.export_state import Checkpoint, ExportRequest, ReaderState, check_body, stable_after
from escli.errors import UsageError
from escli.output.export_pages import PageSpec, encode_page
from escli.output.export_parts import MANIFEST, ExportOutput, FilePart, SharedFileView, StdoutPart
from escli.output.flatten import flatten, row_cells
from escli.output.writers import CsvWriter, csv_header


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
    cp = Checkpoint(path=path, request={"index": "i"}, pit_id="abc", written=5, shards=2,
                    units=[Unit(0, 0, 10), Unit(1, 0, 10)], done={1},
                    readers=[ReaderState(unit=0, after=[1], bytes=30, rows=5), ReaderState()])
    cp.generation = 2
    cp.readers[0].gen = 1  # its position came from an older PIT than the one named
    cp.save()
    assert path.stat().st_mode & 0o777 == 0o600
    back = Checkpoint.load(path)
    assert back.pit_id == "abc" and back.written == 5 and back.request == {"index": "i"} and back.shards == 2
    assert back.units == cp.units and back.done == {1}
    assert back.readers[0].after == [1] and back.readers[0].gen == 0  # not exact: its unit is read again
    assert back.readers[0].bytes == 30 and back.readers[1].unit is None
    path.write_text("{}")
    with pytest.raises(UsageError, match="not an escli export checkpoint"):
        Checkpoint.load(path)


def test_gzip_part_cuts_back_to_a_mark_and_continues(tmp_path: Path) -> None:
    tmp = tmp_path / ".out.ndjson.gz.escli-partial"
    p = FilePart(tmp, gz=True)
    p.write(b"a\n")
    p.write(b"b\n")
    mark = p.mark()
    p.write(b"lost\n" * 1000)
    p.rewind(mark)  # a unit read again
    p.write(b"c\n")
    mark2 = p.mark()
    p.write(b"lost again\n")
    p.close()  # as if interrupted after a page was written but before it was recorded
    assert tmp.stat().st_mode & 0o777 == 0o600
    p2 = FilePart(tmp, gz=True, resume=mark2)
    p2.write(b"d\n")
    p2.close()
    assert gzip.decompress(tmp.read_bytes()) == b"a\nb\nc\nd\n"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_readers_share_one_file_and_a_unit_read_again_is_left_out(tmp_path: Path, gz: bool) -> None:
    out = tmp_path / ("out.csv.gz" if gz else "out.csv")
    output = ExportOutput("csv", out=out, header=b"h\n", gz=gz)
    a, b = output.open_parts(2, None)
    assert isinstance(a, SharedFileView) and a.shared is b.shared  # one file, nothing to join
    a.write(b"a1\n")
    unit = b.mark()
    b.write(b"lost1\n")
    a.write(b"a2\n")
    b.write(b"lost2\n")
    b.rewind(unit)  # b's unit is read again: its two pages go, a's page between them stays
    b.write(b"b1\n")
    a.write(b"a3\n")
    output.commit([3, 1])
    data = out.read_bytes()
    assert (gzip.decompress(data) if gz else data) == b"h\na1\na2\nb1\na3\n"
    assert out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_a_shared_file_resumes_from_its_checkpointed_state(tmp_path: Path) -> None:
    """Interrupted after pages nobody recorded: the resume cuts them off, keeps the dead ranges, and can still cut
    a resumed reader's unit out (its PIT was gone)."""
    out = tmp_path / "o.ndjson"
    output = ExportOutput("ndjson", out=out)
    a, b = output.open_parts(2, None)
    assert isinstance(a, SharedFileView) and isinstance(b, SharedFileView)
    a.write(b"a1\n")
    a_unit = a.mark()
    a.write(b"a-lost\n")
    a.rewind(a_unit)  # dead before the interruption
    saved_a = (a.mark(), a.saved(a_unit))
    b_unit = b.mark()
    b.write(b"b1\n")
    saved_b = (b.mark(), b.saved(b_unit))
    a.write(b"never recorded\n")
    output.abort(keep=True)
    assert (tmp_path / ".o.ndjson.escli-partial").exists()
    again = ExportOutput("ndjson", out=out)
    a2, b2 = again.open_parts(2, [saved_a, saved_b])
    assert isinstance(b2, SharedFileView)
    b2.rewind(b_unit)  # b's unit is read again in a new PIT: its page from before the interruption goes
    b2.write(b"b1 again\n")
    a2.write(b"a2\n")
    again.commit([2, 1])
    assert out.read_bytes() == b"a1\nb1 again\na2\n"


def test_resume_without_the_partial_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"partial output .* is gone"):
        FilePart(tmp_path / "x.ndjson", gz=False, resume=10)


def hits(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"_index": "i", "_id": str(k), "_source": {"n": k, "o": {"s": f"v,{k}\n"}}, "sort": [k]}
            for k in range(start, start + n)]


def page(n: int, start: int = 0) -> bytes:
    return orjson.dumps({"pit_id": "p", "_shards": {"failed": 0}, "hits": {"hits": hits(n, start)}})


@pytest.mark.parametrize("name", ["a.json", "a.json.gz"])
def test_parts_join_into_one_valid_json_array(tmp_path: Path, name: str) -> None:
    out = ExportOutput("json", out=tmp_path / name, gz=name.endswith(".gz"))
    spec = PageSpec("json")
    parts = out.open_parts(3, None)
    parts[0].write(encode_page(page(3), spec).data)
    parts[2].write(encode_page(page(2, 3), spec).data)  # part 1 stays empty
    parts[0].write(encode_page(page(1, 5), spec).data)
    out.commit([4, 0, 2])
    raw = (tmp_path / name).read_bytes()
    rows = json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)
    assert sorted(int(r["_id"]) for r in rows) == list(range(6))
    assert rows[0] == {"_index": "i", "_id": "0", "_source": {"n": 0, "o": {"s": "v,0\n"}}}
    assert not list(tmp_path.glob(".*"))  # no hidden part left


def test_csv_parts_join_under_one_header_and_dir_parts_each_have_one(tmp_path: Path) -> None:
    cols = ["_id", "n", "o.s"]
    spec = PageSpec("csv", tuple(cols))
    out = ExportOutput("csv", out=tmp_path / "a.csv", header=csv_header(cols))
    parts = out.open_parts(2, None)
    parts[0].write(encode_page(page(2), spec).data)
    parts[1].write(encode_page(page(1, 2), spec).data)
    out.commit([2, 1])
    rows = list(csv.reader(io.StringIO((tmp_path / "a.csv").read_text(encoding="utf-8"), newline="")))
    assert rows == [cols, ["0", "0", "v,0\n"], ["1", "1", "v,1\n"], ["2", "2", "v,2\n"]]
    d = tmp_path / "d"
    d.mkdir()
    out = ExportOutput("csv", out_dir=d, header=csv_header(cols))
    parts = out.open_parts(2, None)
    parts[1].write(encode_page(page(1), spec).data)
    out.commit([0, 1], {"index": "i"})
    manifest = json.loads((d / MANIFEST).read_bytes())
    assert [p["file"] for p in manifest["parts"]] == ["part-00000.csv", "part-00001.csv"]
    assert manifest["documents"] == 1 and manifest["index"] == "i"
    for p in manifest["parts"]:
        data = (d / p["file"]).read_bytes()
        assert data.startswith(b"_id,n,o.s\r\n") and len(data) == p["bytes"]
        assert hashlib.sha256(data).hexdigest() == p["sha256"]


def test_page_encoding_skips_ids_and_reports_partial_pages() -> None:
    enc = encode_page(page(4), PageSpec("ndjson", source_only=True), skip={"1", "2"}, want_ids=True)
    assert enc.hits == 4 and enc.rows == 2 and enc.ids == ["0", "3"] and enc.last_sort == [3]
    assert [orjson.loads(x) for x in enc.data.splitlines()] == [hits(4)[0]["_source"], hits(4)[3]["_source"]]
    assert enc.context_id == "p" and enc.problem is None
    bad = orjson.dumps({"timed_out": True, "hits": {"hits": []}})
    assert encode_page(bad, PageSpec("ndjson")).problem == "timed out"
    buf = io.BytesIO()
    StdoutPart(buf, json=True).write(encode_page(page(2), PageSpec("json")).data)
    assert buf.getvalue().startswith(b"[\n{") and b"},\n{" in buf.getvalue()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@given(sources=st.lists(st.dictionaries(st.text(max_size=6), JSON, max_size=4), max_size=6),
       pretty=st.booleans(), ascii_only=st.booleans(), source_only=st.booleans(), limit=st.none() | st.integers(0, 6),
       skip_every=st.integers(0, 3))
def test_ndjson_lines_are_the_documents_whatever_their_bytes(sources: list[dict[str, Any]], pretty: bool,
                                                             ascii_only: bool, source_only: bool, limit: int | None,
                                                             skip_every: int) -> None:
    """The raw-bytes path and the orjson path agree on every page: the same documents, one per line, pretty-printed
    sources (raw newlines) included, and the same ids, positions and context."""
    hits_ = [{"_index": "i", "_id": f"d{k}\u00e9\"", "_score": None, "src": src, "sort": [k, "s"]}
             for k, src in enumerate(sources)]
    body = b",".join(
        b'{"_index":"i","_id":%s,"_score":null,"_source":%s,"sort":%s}' % (
            json.dumps(h["_id"], ensure_ascii=ascii_only).encode(),
            json.dumps(h["src"], ensure_ascii=ascii_only, indent=2 if pretty else None).encode(),
            orjson.dumps(h["sort"])) for h in hits_)
    raw = b'{"pit_id":"p2","took":3,"timed_out":false,"_shards":{"total":1,"failed":0},"hits":{"hits":[%s]}}' % body
    skip = {h["_id"] for k, h in enumerate(hits_) if skip_every and k % skip_every == 0}
    enc = encode_page(raw, PageSpec("ndjson", source_only=source_only), skip=skip, want_ids=True, limit=limit)
    kept = [h for h in hits_ if h["_id"] not in skip][:limit]
    want = [h["src"] if source_only else {"_index": "i", "_id": h["_id"], "_source": h["src"]} for h in kept]
    lines = enc.data.split(b"\n")
    assert lines.pop() == b""
    assert [orjson.loads(line) for line in lines] == want
    assert (enc.hits, enc.rows, enc.ids, enc.context_id, enc.problem) == (
        len(hits_), len(kept), [h["_id"] for h in kept], "p2", None)
    assert enc.last_sort == (hits_[-1]["sort"] if hits_ else None)


@given(st.lists(st.integers(-1, 300_000), min_size=1, max_size=6), st.integers(1, 7))
def test_partitions_cover_every_unit_exactly_once(seq_nos: list[int], n: int) -> None:
    whole = plan_units(seq_nos)
    shares = [plan_units(seq_nos, (k, n)) for k in range(1, n + 1)]
    assert sorted((u.shard, u.lo) for s in shares for u in s) == sorted((u.shard, u.lo) for u in whole)
    for shard, top in enumerate(seq_nos):  # the units of a shard tile [0, max_seq_no] without gaps
        mine = sorted((u.lo or 0, u.hi or 0) for u in whole if u.shard == shard)
        assert (mine[0][0] == 0 and mine[-1][1] == max(0, top) + 1) or top < 0
        assert all(a[1] == b[0] for a, b in itertools.pairwise(mine))


@given(st.integers(1, 6), st.integers(0, 500_000), st.integers(0, 60_000), st.integers(1, 60_000),
       st.integers(1, 10_000))
def test_window_units_tile_the_span_on_every_shard(shards: int, lo: int, width: int, docs: int, page: int) -> None:
    units = window_units(shards, (lo, lo + width), docs, page)
    for shard in range(shards):  # each shard's units tile [lo, hi] exactly: every window document in one unit
        mine = sorted((u.lo, u.hi) for u in units if u.shard == shard)
        assert mine[0][0] == lo and mine[-1][1] == lo + width + 1
        assert all(a[1] == b[0] for a, b in itertools.pairwise(mine))
        assert 1 <= len(mine) <= WINDOW_PIECES and all(a < b for a, b in mine)  # type: ignore[operator]


def test_window_units_size() -> None:
    assert window_units(2, None, 10_000, 1000) == [Unit(0), Unit(1)]  # no span: a unit per shard
    assert window_units(2, (100, 199), 100, 1000) == [Unit(0, 100, 200), Unit(1, 100, 200)]  # a page: one each
    many = window_units(2, (0, 9_999), 10_000, 1000)  # 10 pages: 4 pieces per shard, shards interleaved
    assert [(u.shard, u.lo, u.hi) for u in many[:3]] == [(0, 0, 2500), (1, 0, 2500), (0, 2500, 5000)]
    assert len(many) == 8 and window_units(1, (7, 7), 1, 1000) == [Unit(0, 7, 8)]


def test_partition_and_unit_bodies() -> None:
    assert parse_partition("2/3") == (2, 3) and parse_partition(None) is None
    for bad in ("0/3", "4/3", "a/b", "3"):
        with pytest.raises(UsageError, match="--partition"):
            parse_partition(bad)
    q = {"match": {"x": 1}}
    assert unit_body(Unit(1, 0, 10), 2, q) == {"slice": {"id": 1, "max": 2}, "query": {"bool": {
        "filter": [{"range": {"_seq_no": {"gte": 0, "lt": 10}}}], "must": [q]}}}
    assert unit_body(Unit(0, 0, 10), 1, None) == {"query": {"bool": {"filter": [
        {"range": {"_seq_no": {"gte": 0, "lt": 10}}}]}}}
    assert unit_body(Unit(0, slice=(1, 3)), 2, None) == {"slice": {"field": "_seq_no", "id": 1, "max": 3}}
    assert choose_readers(None, 2, 40) == 8 and choose_readers(None, 1, 40) == 8 and choose_readers(5, 2, 3) == 3
    assert choose_readers(None, 16, 40) == 16 and choose_readers(None, 2, 3) == 3


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
keys = st.sampled_from(["a", "b", "c", "=x", "d e", "ü"])
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)), max_leaves=8)
docs = st.dictionaries(keys, values, max_size=5)


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
