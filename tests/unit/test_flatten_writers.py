"""CSV flattening and the writers (pure)."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from escli.core.columns import mapping_columns
from escli.output.flatten import cell, flatten
from escli.output.writers import CsvWriter, JsonArrayWriter, NdjsonWriter


def test_flatten_nested_and_arrays() -> None:
    doc = {"a": 1, "b": {"c": {"d": "x"}, "e": [1, 2]}, "f": {}}
    assert flatten(doc) == {"a": 1, "b.c.d": "x", "b.e": [1, 2], "f": {}}
    assert cell([1, "a,b"]) == '[1,"a,b"]'
    assert cell(None) == "" and cell(True) == "true" and cell(1.5) == "1.5"
    assert cell("=SUM(A1)", excel_safe=True) == "'=SUM(A1)"
    assert cell("-1", excel_safe=True) == "'-1" and cell("ok", excel_safe=True) == "ok"


def test_mapping_columns_walks_objects() -> None:
    props = {"name": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
             "specs": {"properties": {"ram": {"type": "long"}, "cpu": {"type": "keyword"}}}, "n": {"type": "long"}}
    assert mapping_columns(props) == ["name", "specs.ram", "specs.cpu", "n"]


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(st.lists(st.fixed_dictionaries({"a": text, "b": st.dictionaries(st.sampled_from(["x", "y"]), text)}),
                max_size=20))
def test_csv_round_trips_through_python_csv(rows: list[dict[str, object]]) -> None:
    out = io.BytesIO()
    w = CsvWriter(out, ["a", "b.x", "b.y"])
    for r in rows:
        w.write(r)
    w.close()
    parsed = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert parsed[0] == ["a", "b.x", "b.y"]
    assert parsed[1:] == [[r["a"], r["b"].get("x", ""), r["b"].get("y", "")] for r in rows]  # type: ignore[union-attr]


def test_json_array_and_ndjson() -> None:
    out = io.BytesIO()
    w = JsonArrayWriter(out)
    w.close()
    assert json.loads(out.getvalue()) == []
    out = io.BytesIO()
    w = JsonArrayWriter(out)
    for i in range(3):
        w.write({"i": i})
    w.close()
    assert json.loads(out.getvalue()) == [{"i": 0}, {"i": 1}, {"i": 2}]
    out = io.BytesIO()
    n = NdjsonWriter(out)
    n.write({"x": "é\n"})
    n.close()
    assert out.getvalue() == '{"x":"é\\n"}\n'.encode()
