"""CSV import with types against the real engine, and the round trip through export read back by DuckDB."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from tests.support.flights import COLUMNS, NUMERIC, TEXT, write_csv

ROWS = 3000


@pytest.fixture(scope="module")
def flights_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flights") / "flights.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_csv(fh, ROWS)
    return path


def props(es: httpx.Client, index: str) -> dict[str, Any]:
    return es.get(f"/{index}/_mapping").json()[index]["mappings"]["properties"]  # type: ignore[no-any-return]


def table_stats(con: duckdb.DuckDBPyConnection, path: Path, null: str | None) -> dict[str, Any]:
    """What a user checks in DuckDB: rows, columns in order, and per numeric column its sum and null count."""
    src = f"read_csv_auto('{path}'" + (f", nullstr='{null}')" if null else ")")
    columns = [row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    sums = ", ".join(f"sum({c}), count(*) - count({c})" for c in NUMERIC)
    (row,) = con.sql(f"SELECT count(*), {sums} FROM {src}").fetchall()
    return {"rows": row[0], "columns": columns,
            "numeric": {c: (row[1 + 2 * i], row[2 + 2 * i]) for i, c in enumerate(NUMERIC)}}


def test_flights_round_trip_through_duckdb(cli: Callable[..., Any], es: httpx.Client,
                                           index_name: Callable[[str], str], flights_csv: Path,
                                           tmp_path: Path) -> None:
    index = index_name("flights")
    r = cli("import", index, str(flights_csv), "--null", "NA")
    assert r.code == 0, r.stderr
    assert f"imported {ROWS} of {ROWS}" in r.stderr
    mapped = props(es, index)
    assert {c: mapped[c]["type"] for c in NUMERIC} == dict.fromkeys(NUMERIC, "long")
    assert {c: mapped[c]["type"] for c in TEXT} == dict.fromkeys(TEXT, "keyword")
    assert mapped["time_hour"] == {"type": "date", "format": "strict_date_optional_time"}

    con = duckdb.connect()
    original = table_stats(con, flights_csv, "NA")
    assert original["columns"] == COLUMNS and original["rows"] == ROWS
    assert original["numeric"]["dep_delay"][1] > 0  # the fixture has missing values to lose

    # what the user found broken: a numeric range compares numbers, NA is no value
    late = es.post(f"/{index}/_count", json={"query": {"range": {"dep_delay": {"gt": 60}}}}).json()["count"]
    ((late_duck,),) = con.sql(f"SELECT count(*) FROM read_csv_auto('{flights_csv}', nullstr='NA') "
                              "WHERE dep_delay > 60").fetchall()
    assert late == late_duck > 0
    assert es.post(f"/{index}/_count", json={"query": {"term": {"dep_delay": "NA"}}}).status_code == 400

    back = tmp_path / "back.csv"
    r = cli("export", index, "--format", "csv", "--out", str(back))
    assert r.code == 0, r.stderr
    exported = table_stats(con, back, None)
    assert exported["columns"] == ["_id", *COLUMNS]
    assert exported["rows"] == original["rows"]
    assert exported["numeric"] == original["numeric"]

    bare = tmp_path / "bare.csv"
    r = cli("export", index, "--format", "csv", "--source-only", "--out", str(bare))
    assert r.code == 0, r.stderr
    assert table_stats(con, bare, None) == {**original, "columns": COLUMNS}


def test_dry_run_prints_the_mapping_and_creates_nothing(cli: Callable[..., Any], es: httpx.Client,
                                                        index_name: Callable[[str], str], flights_csv: Path) -> None:
    index = index_name("dry")
    r = cli("import", index, str(flights_csv), "--null", "NA", "--types", "flight=keyword,distance=double",
            "--dry-run")
    assert r.code == 0, r.stderr
    body = json.loads(r.out)
    assert body["mappings"]["_meta"] == {"escli": {"columns": COLUMNS}}
    assert body["mappings"]["properties"]["flight"] == {"type": "keyword"}
    assert body["mappings"]["properties"]["distance"] == {"type": "double"}
    assert body["mappings"]["properties"]["dep_delay"] == {"type": "long"}
    assert es.head(f"/{index}").status_code == 404
    # the printed body is what --mapping takes back
    mapping = flights_csv.parent / f"{index}.json"
    mapping.write_text(r.out)
    r = cli("import", index, str(flights_csv), "--null", "NA", "--mapping", str(mapping))
    assert r.code == 0, r.stderr
    assert props(es, index)["flight"] == {"type": "keyword"}
    assert es.get(f"/{index}/_mapping").json()[index]["mappings"]["_meta"]["escli"]["columns"] == COLUMNS


def test_a_value_that_breaks_the_guess_is_a_bad_line(cli: Callable[..., Any], es: httpx.Client,
                                                     index_name: Callable[[str], str], tmp_path: Path) -> None:
    # past the 10,000-row sample, so the guess (long) was made without it
    lines = ["id,n,label"] + [f"r{i},{i},x" for i in range(10_050)]
    lines[10_020] = "bad1,12abc,x"
    lines[10_030] = "bad2,3.5,x"
    src = tmp_path / "late.csv"
    src.write_text("\n".join(lines) + "\n")
    errors = tmp_path / "errors.ndjson"
    index = index_name("late")
    r = cli("import", index, str(src), "--errors", str(errors))
    assert r.code == 1
    assert f"{src}:10021: column n: '12abc' is not a long" in r.stderr
    assert f"{src}:10031: column n: '3.5' is not a long" in r.stderr
    assert "Traceback" not in r.stderr
    recs = [json.loads(x) for x in errors.read_text().splitlines()]
    assert [(x["line"], x["row"]) for x in recs] == [(10021, {"id": "bad1", "n": "12abc", "label": "x"}),
                                                     (10031, {"id": "bad2", "n": "3.5", "label": "x"})]
    assert es.get(f"/{index}/_count").json()["count"] == 10_048
    assert props(es, index)["n"] == {"type": "long"}


def test_types_epoch_and_several_nulls(cli: Callable[..., Any], es: httpx.Client,
                                       index_name: Callable[[str], str], tmp_path: Path) -> None:
    src = tmp_path / "e.csv"
    src.write_text("_id,when,code,score,ok\n"
                   "a,1357000000,007,1.5,true\n"
                   "b,-,-,n/a,\n"
                   "c,1357003600,,2,FALSE\n")
    index = index_name("epoch")
    r = cli("import", index, str(src), "--types", "when=date_epoch", "--null", "-", "--null", "n/a",
            "--null", "")
    assert r.code == 0, r.stderr
    mapped = props(es, index)
    assert mapped["when"] == {"type": "date", "format": "epoch_second||strict_date_optional_time"}
    assert mapped["code"] == {"type": "keyword"} and mapped["score"] == {"type": "double"}
    assert mapped["ok"] == {"type": "boolean"}
    docs = {h["_id"]: h["_source"] for h in es.post(f"/{index}/_search", json={"size": 10}).json()["hits"]["hits"]}
    assert docs == {"a": {"when": 1357000000, "code": "007", "score": 1.5, "ok": True},
                    "b": {},
                    "c": {"when": 1357003600, "score": 2.0, "ok": False}}
    got = es.post(f"/{index}/_search", json={"query": {"range": {"when": {"gte": "2013-01-01T01:00:00Z"}}}}).json()
    assert [h["_id"] for h in got["hits"]["hits"]] == ["c"]


@pytest.mark.parametrize("value", ["2013-01-01 05:00:00", "2013/01/01", "2013-01-01T05:00:00.123+01:00",
                                   "2013-01-01T05:00", "2013-01-01", "2013-01-01 05:00"])
def test_the_engine_reads_every_date_form_escli_guesses(cli: Callable[..., Any], es: httpx.Client,
                                                       index_name: Callable[[str], str], tmp_path: Path,
                                                       value: str) -> None:
    src = tmp_path / "d.csv"
    src.write_text(f"when\n{value}\n")
    index = index_name("date")
    r = cli("import", index, str(src))
    assert r.code == 0, r.stderr
    assert props(es, index)["when"]["type"] == "date"
    assert es.post(f"/{index}/_count", json={"query": {"range": {"when": {"gte": "2013-01-01", "lt": "2013-01-02"}}}}
                   ).json()["count"] == 1


def test_existing_index_mapping_converts_values(cli: Callable[..., Any], es: httpx.Client,
                                                index_name: Callable[[str], str], tmp_path: Path) -> None:
    index = index_name("exists")
    es.put(f"/{index}", json={"mappings": {"properties": {"zip": {"type": "keyword"}, "n": {"type": "integer"}}}}
           ).raise_for_status()
    src = tmp_path / "x.csv"
    src.write_text("zip,n,free\n00123,5,7\n")
    r = cli("import", index, str(src), "--types", "zip=long")
    assert r.code == 0, r.stderr
    assert "its mapping converts the values, --types is not used" in r.stderr
    (hit,) = es.post(f"/{index}/_search").json()["hits"]["hits"]
    assert hit["_source"] == {"zip": "00123", "n": 5, "free": "7"}


def test_export_header_follows_the_file_then_mapping_only_fields(cli: Callable[..., Any], es: httpx.Client,
                                                                 index_name: Callable[[str], str],
                                                                 tmp_path: Path) -> None:
    index = index_name("order")
    src = tmp_path / "o.csv"
    src.write_text("_id,zeta,alpha,mid\na,1,x,2013-01-01\n")
    assert cli("import", index, str(src)).code == 0
    es.post(f"/{index}/_doc/b", params={"refresh": "true"}, json={"later": 5, "alpha": "y"}).raise_for_status()
    r = cli("export", index, "--format", "csv")
    assert r.code == 0, r.stderr
    assert r.out.splitlines()[0] == "_id,zeta,alpha,mid,later"


def test_bad_options_exit_2(cli: Callable[..., Any], index_name: Callable[[str], str], tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("a\n1\n")
    r = cli("import", index_name("bt"), str(src), "--types", "a=lng")
    assert r.code == 2 and "--types: unknown type 'lng'" in r.stderr
    r = cli("import", index_name("bc"), str(src), "--types", "b=long", "--dry-run")
    assert r.code == 2 and f"--types: no column 'b' in {src} (columns: a)" in r.stderr
    nd = tmp_path / "a.ndjson"
    nd.write_text('{"a": 1}\n')
    r = cli("import", index_name("nd"), str(nd), "--null", "NA")
    assert r.code == 2 and "--null applies to CSV input" in r.stderr
    dup = tmp_path / "dup.csv"
    dup.write_text("a,a\n1,2\n")
    r = cli("import", index_name("dup"), str(dup))
    assert r.code == 2 and f"{dup}:1: column 'a' appears twice in the header" in r.stderr
