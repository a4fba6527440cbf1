"""CSV type guessing, converters, the row builder and the export header: pure functions, no engine."""

from __future__ import annotations

import io
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.core.columns import columns_meta, csv_header, mapping_columns
from escli.core.csv_import import open_csv, plan_columns
from escli.core.csv_infer import (
    BOOLEAN,
    DATE,
    DOUBLE,
    JSON,
    KEYWORD,
    LONG,
    STRING,
    TEXT,
    ColumnType,
    converter,
    from_mapping,
    infer,
    parse_types,
)
from escli.errors import InputError


@pytest.mark.parametrize(("values", "kind"), [
    (["1", "-20", "+3", "1545"], LONG),
    (["1.5", "2", "-3e4", ".5"], DOUBLE),
    (["007", "123"], KEYWORD),                     # leading zeros: a code, not a number
    (["99999999999999999999"], KEYWORD),           # beyond a long: an identifier
    (["true", "FALSE", "True"], BOOLEAN),
    (["1", "0"], LONG),                            # 0/1 are numbers, not booleans
    (["1357000000", "1357003600"], LONG),          # epoch seconds are dates only when asked
    (["UA", "AA", "B6"], KEYWORD),
    (["N14228", "N24211"], KEYWORD),
    (["New York City", "Los Angeles"], KEYWORD),
    (["the quick brown fox jumps", "over the lazy dog today"], TEXT),
    (["a b c d"] * 4, KEYWORD),                    # prose-like but repeated: a category
    (["x" * 300], TEXT),
    (['["a","b"]', "[]", '{"k": 1}'], JSON),
    (["nan", "1.5"], KEYWORD),                     # NaN is no number the engine stores
    ([], STRING),
])
def test_infer_kinds(values: list[str], kind: str) -> None:
    assert infer(values).kind == kind


@pytest.mark.parametrize(("values", "formats"), [
    (["2013-01-01T10:00:00Z", "2013-01-01T11:00:00Z"], ("strict_date_optional_time",)),
    (["2013-01-01", "2013-01-01T05:00:00.123+01:00"], ("strict_date_optional_time",)),
    (["2013-01-01 05:00:00"], ("yyyy-MM-dd HH:mm:ss",)),
    (["2013/01/01"], ("yyyy/MM/dd",)),
    (["2013-01-01", "2013-01-01 05:00:00"], ("strict_date_optional_time", "yyyy-MM-dd HH:mm:ss")),
])
def test_infer_dates(values: list[str], formats: tuple[str, ...]) -> None:
    ctype = infer(values)
    assert ctype == ColumnType(DATE, formats)
    assert ctype.mapping() == {"type": "date", "format": "||".join(dict.fromkeys(
        (*formats, "strict_date_optional_time")))}
    check = converter(ctype)
    assert check is not None and [check(v) for v in values] == values  # dates go to the engine as written


def test_us_dates_are_not_guessed() -> None:
    assert infer(["01/02/2013", "03/04/2013"]).kind == KEYWORD


@pytest.mark.parametrize(("kind", "bad"), [
    (LONG, ["1_000", " 7", "7 ", "1.5", "abc", "", "²"]),
    (DOUBLE, ["nan", "inf", "1e400", "1_0.5", "1.2.3", "x"]),
    (BOOLEAN, ["yes", "1", "t"]),
])
def test_converters_refuse_what_python_would_take(kind: str, bad: list[str]) -> None:
    conv = converter(ColumnType(kind))
    assert conv is not None
    for v in bad:
        with pytest.raises(ValueError):
            conv(v)


def test_date_checker_refuses_other_forms() -> None:
    conv = converter(infer(["2013-01-01T10:00:00Z"]))
    assert conv is not None
    with pytest.raises(ValueError, match="not a date"):
        conv("01/02/2013")


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_long_round_trips(n: int) -> None:
    text = str(n)
    assert infer([text]).kind == (LONG if not text.lstrip("-").startswith("0") or n == 0 else KEYWORD)
    conv = converter(ColumnType(LONG))
    assert conv is not None and conv(text) == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_double_round_trips(f: float) -> None:
    text = repr(f)
    assert infer([text]).kind in (DOUBLE, LONG)
    conv = converter(ColumnType(DOUBLE))
    assert conv is not None and conv(text) == f and not math.isinf(conv(text))


_cells = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["true", "false", "2013-01-01", "2013-01-01 05:00:00", "[1, 2]", "007"]),
    st.text(max_size=30).filter(lambda s: s != ""),
)


@given(st.lists(_cells, min_size=1, max_size=40))
def test_every_sampled_value_passes_its_columns_converter(values: list[str]) -> None:
    """The invariant that keeps the sample from being reported as bad lines: the guess fits what it saw."""
    conv = converter(infer(values))
    if conv is not None:
        for v in values:
            conv(v)


def test_parse_types() -> None:
    got = parse_types(["a=long,b=keyword", "when=date_epoch", "c=integer"])
    assert {k: v.kind for k, v in got.items()} == {"a": LONG, "b": KEYWORD, "when": "date_epoch", "c": LONG}
    assert got["when"].mapping() == {"type": "date", "format": "epoch_second||strict_date_optional_time"}
    with pytest.raises(ValueError, match="unknown type 'lng'"):
        parse_types(["a=lng"])
    with pytest.raises(ValueError, match="expected COLUMN=TYPE"):
        parse_types(["a"])


def test_from_mapping_reads_the_engine_types() -> None:
    assert from_mapping({"type": "integer"}).kind == LONG
    assert from_mapping({"type": "scaled_float", "scaling_factor": 100}).kind == DOUBLE
    assert from_mapping({"type": "date", "format": "epoch_millis"}).kind == "date_epoch_ms"
    assert from_mapping({"type": "text", "fields": {"keyword": {"type": "keyword"}}}).kind == TEXT
    assert from_mapping(None).kind == STRING


def _table(text: str) -> tuple[object, object]:
    table = open_csv(io.BytesIO(text.encode()), "t.csv")
    return table, plan_columns(table, frozenset({"NA"}), {}, None)


def test_plan_builds_documents_nulls_left_out() -> None:
    table, plan = _table("_id,n,x,specs.gb,when\na,1,NA,16,2013-01-01\nb,NA,,,\n")
    assert plan.properties() == {  # type: ignore[attr-defined]
        "n": {"type": "long"}, "specs": {"properties": {"gb": {"type": "long"}}},
        "when": {"type": "date", "format": "strict_date_optional_time"}}
    docs = list(table.docs(plan))  # type: ignore[attr-defined]
    # x is not null-valued by --null NA alone: an empty cell in a text column is an empty string
    assert docs == [(2, "a", {"n": 1, "specs": {"gb": 16}, "when": "2013-01-01"}), (3, "b", {"x": ""})]
    assert plan.index_body()["mappings"]["_meta"] == columns_meta(["_id", "n", "x", "specs.gb", "when"])  # type: ignore[attr-defined]


def test_a_cell_that_breaks_the_guess_names_line_and_column() -> None:
    table = open_csv(io.BytesIO(b"n,s\n1,a\n2,b\n"), "t.csv", sample_rows=1)
    plan = plan_columns(table, frozenset({""}), {"n": ColumnType(LONG)}, None)
    table.rest = iter([(4, ["x9", "c"]), (5, ["3", "d"])])
    out = list(table.docs(plan))
    assert str(out[1]) == "t.csv:4: column n: 'x9' is not a long"
    assert out[1].row == {"n": "x9", "s": "c"}  # type: ignore[union-attr]
    assert out[2] == (5, None, {"n": 3, "s": "d"})


def test_existing_mapping_converts_without_guessing() -> None:
    table = open_csv(io.BytesIO(b"zip,n,new\n00123,5,7\n"), "t.csv")
    plan = plan_columns(table, frozenset({""}), {"zip": ColumnType(LONG)},
                        {"zip": {"type": "keyword"}, "n": {"type": "integer"}})
    assert list(table.docs(plan)) == [(2, None, {"zip": "00123", "n": 5, "new": "7"})]


def test_duplicate_header_is_refused() -> None:
    with pytest.raises(InputError, match=r"t\.csv:1: column 'a' appears twice"):
        open_csv(io.BytesIO(b"a,b,a\n1,2,3\n"), "t.csv")


def test_csv_header_keeps_file_order_then_mapping_only_fields() -> None:
    resp = {"idx": {"mappings": {
        "_meta": {"escli": {"columns": ["year", "carrier", "specs", "time_hour"]}},
        "properties": {"carrier": {"type": "keyword"}, "extra": {"type": "long"}, "specs": {"properties": {
            "gb": {"type": "long"}}}, "time_hour": {"type": "date"}, "year": {"type": "long"}}}}}
    assert csv_header(resp, mapping_columns) == ["year", "carrier", "specs", "time_hour", "extra"]
    plain = {"b": {"mappings": {"properties": {"z": {"type": "long"}, "a": {"type": "long"}}}}}
    assert csv_header(plain, mapping_columns) == ["z", "a"]
    assert csv_header({"a": {"mappings": {"_meta": {"escli": "junk"}}}}, mapping_columns) == []
