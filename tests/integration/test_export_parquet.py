"""`escli export --format parquet` against the real engine, read back with DuckDB as users do."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from tests.support.indices import make_index, put_docs

N = 2_500
Cli = Callable[..., Any]
MAPPING = {
    "settings": {"number_of_shards": 2},
    "mappings": {"properties": {
        "name": {"type": "text"}, "sku": {"type": "keyword"}, "addr": {"type": "ip"},
        "big": {"type": "long"}, "count": {"type": "integer"}, "small": {"type": "short"}, "tiny": {"type": "byte"},
        "price": {"type": "double"}, "ratio": {"type": "float"}, "half": {"type": "half_float"},
        "active": {"type": "boolean"}, "created": {"type": "date"}, "stamp": {"type": "date_nanos"},
        "specs": {"properties": {"cpu": {"type": "keyword"}, "cores": {"type": "integer"}}},
        "tags": {"type": "keyword"},
        "loose": {"type": "integer", "ignore_malformed": True},
    }},
}
TYPES = {"_id": "VARCHAR", "name": "VARCHAR", "sku": "VARCHAR", "addr": "VARCHAR", "big": "BIGINT",
         "count": "BIGINT", "small": "BIGINT", "tiny": "BIGINT", "price": "DOUBLE", "ratio": "DOUBLE",
         "half": "DOUBLE", "active": "BOOLEAN", "created": "TIMESTAMP WITH TIME ZONE",
         "stamp": "TIMESTAMPTZ_NS", "specs.cpu": "VARCHAR", "specs.cores": "BIGINT", "tags": "VARCHAR[]",
         "loose": "BIGINT"}
NUMERIC = ["big", "count", "small", "tiny", "price", "ratio", "half", "specs.cores"]
# (scaled_float lives in the mapper-extras module, which the test engine lacks; it maps to float64 like half_float)


def doc(i: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": f"Item {i}, \"quoted\"", "sku": f"S-{i:05d}", "addr": f"10.0.{i % 256}.{i % 200}",
        "big": 9_000_000_000_000 + i, "count": i, "small": i % 30_000, "tiny": i % 100 - 50,
        "price": round(i * 1.25 + 0.01, 2), "ratio": (i % 7) / 8, "half": (i % 5) / 4,
        "active": i % 2 == 0,
        # the engine's date inputs: ISO with an offset, Z, epoch millis as a number
        "created": [f"2024-03-01T10:00:{i % 60:02d}+02:00", f"2024-03-01T08:00:{i % 60:02d}Z",
                    1709280000000 + i][i % 3],
        "stamp": f"2024-03-01T08:00:00.{i:09d}Z",
        "specs": {"cpu": f"c{i % 4}", "cores": i % 16},
        "tags": ["a", f"t{i % 3}"] if i % 4 else "solo",  # an array in most documents, a bare value in others
        "loose": i,
    }
    if i % 500 == 7:
        del d["price"]  # missing values are nulls
    return d




@pytest.fixture()
def index(es: httpx.Client, index_name: Callable[[str], str]) -> Iterator[str]:
    yield make_index(es, index_name("pq"), MAPPING, {f"p{i:05d}": doc(i) for i in range(N)})


def ndjson_ids(cli: Cli, index: str) -> list[str]:
    r = cli("export", index)
    assert r.code == 0, r.stderr
    return [orjson.loads(line)["_id"] for line in r.stdout.splitlines() if line]


def test_parquet_columns_types_rows_and_sums(cli: Cli, es: httpx.Client, index: str, tmp_path: Path) -> None:
    out = tmp_path / "all.parquet"
    r = cli("export", index, "--out", str(out), "--array-fields", "tags", "--page-size", "300")
    assert r.code == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    described = duckdb.sql(f"describe select * from read_parquet('{out}')").fetchall()
    assert described[0][0] == "_id"  # _id first
    assert {row[0]: row[1] for row in described} == TYPES
    ids = [row[0] for row in duckdb.sql(f"select _id from read_parquet('{out}')").fetchall()]
    assert len(ids) == N and sorted(ids) == sorted(ndjson_ids(cli, index))
    for col in NUMERIC:
        stats = es.post(f"/{index}/_search", json={"size": 0, "aggs": {"s": {"stats": {"field": col}}}}).json()
        engine = stats["aggregations"]["s"]
        ours = duckdb.sql(f'select sum("{col}"), count("{col}") from read_parquet(\'{out}\')').fetchall()[0]
        assert ours is not None and ours[1] == engine["count"], col
        # float and half_float are indexed rounded to their type; the file keeps _source's value
        assert ours[0] == pytest.approx(engine["sum"], rel=1e-4 if col in ("ratio", "half") else 1e-12), col
    row = duckdb.sql(f"""select created, stamp, tags, "specs.cpu", active, addr from read_parquet('{out}')
                         where _id = 'p00001'""").fetchall()[0]
    assert row is not None
    assert str(row[0]).startswith("2024-03-01 08:00:01") and row[2] == ["a", "t1"] and row[3] == "c1"
    assert row[4] is False and row[5] == "10.0.1.1"
    # nanoseconds survive: the ninth digit of p00001's stamp
    nanos = duckdb.sql(f"select epoch_ns(stamp) from read_parquet('{out}') where _id = 'p00001'").fetchall()[0]
    assert nanos is not None and nanos[0] % 1000 == 1
    solo = duckdb.sql(f"select tags from read_parquet('{out}') where _id = 'p00004'").fetchall()[0]
    assert solo == (["solo"],)


@pytest.mark.parametrize("target", ["--out", "--out-dir"])
def test_a_value_that_breaks_its_column_goes_to_errors(cli: Cli, es: httpx.Client, index: str,
                                                       tmp_path: Path, target: str) -> None:
    """--out writes row groups as units finish (a thread); --out-dir each part at the end, two at a time: the
    same lines either way, each in --errors once."""
    put_docs(es, index, {"bad": {**doc(1), "loose": "not a number"}})
    dest, errors = tmp_path / ("o.parquet" if target == "--out" else "dir"), tmp_path / "errors.ndjson"
    r = cli("export", index, target, str(dest), "--format", "parquet", "--errors", str(errors), "--slices", "3",
            "--array-sample", "off")
    out = dest if target == "--out" else dest / "*.parquet"
    assert r.code == 1, r.stderr
    assert "did not fit" in r.stderr and str(errors) in r.stderr
    # the summary says how to make the arrays fit next time
    assert "tags held arrays the sample did not see: add --array-fields tags" in r.stderr
    lines = [orjson.loads(x) for x in errors.read_bytes().splitlines()]
    # with neither the sample nor --array-fields, tags' arrays do not fit the scalar column either; bare values do
    assert {"_id": "bad", "field": "loose", "value": "not a number", "error": "not an integer"} in lines
    assert {x["field"] for x in lines} == {"loose", "tags"}
    assert all(x["value"] != "solo" for x in lines)
    assert len({(x["_id"], x["field"]) for x in lines}) == len(lines)
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []  # no spool or per-part error file left
    count = duckdb.sql(f"select count(*), count(loose) from read_parquet('{out}')").fetchall()[0]
    assert count == (N + 1, N)  # every row is there; the bad cell is null
    assert errors.stat().st_mode & 0o777 == 0o600


def test_out_dir_parts_and_manifest(cli: Cli, index: str, tmp_path: Path) -> None:
    d = tmp_path / "dump"
    r = cli("export", index, "--out-dir", str(d), "--format", "parquet", "--slices", "3", "--page-size", "200",
            "--array-fields", "tags")
    assert r.code == 0, r.stderr
    manifest = orjson.loads((d / "_manifest.json").read_bytes())
    parts = sorted(d.glob("part-*"))
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(3)]
    assert manifest["format"] == "parquet" and manifest["documents"] == N
    for entry in manifest["parts"]:
        path = d / entry["file"]
        rows = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0]
        assert rows == (entry["documents"],)
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    ids = [r[0] for r in duckdb.sql(f"select _id from read_parquet('{d}/part-*.parquet')").fetchall()]
    assert sorted(ids) == sorted(ndjson_ids(cli, index))
    assert not list(d.glob(".*"))  # no spool or temporary file left


def test_parquet_needs_a_file_and_names_the_extra_when_pyarrow_is_missing(cli: Cli, index: str,
                                                                          isolated_env: dict[str, str],
                                                                          tmp_path: Path) -> None:
    r = cli("export", index, "--format", "parquet")
    assert r.code == 2 and "--out" in r.stderr
    # a Python that cannot import pyarrow: the same command, one line naming the extra
    code = ("import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None; "
            "from escli.__main__ import main; sys.argv = ['escli', *sys.argv[1:]]; main()")
    p = subprocess.run([sys.executable, "-c", code, "export", index, "--out", str(tmp_path / "x.parquet")],
                       capture_output=True, text=True, env=isolated_env, check=False)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().count("\n") == 0 and "[parquet]" in p.stderr and "pip install" in p.stderr


@pytest.mark.parametrize("target", ["--out", "--out-dir"])
def test_arrays_found_without_being_named(cli: Cli, es: httpx.Client, index: str, tmp_path: Path,
                                          target: str) -> None:
    """The look at a sample makes tags a list column with no option; a bare value is a one-element list."""
    dest = tmp_path / ("o.parquet" if target == "--out" else "dir")
    r = cli("export", index, target, str(dest), "--format", "parquet", "--slices", "3", "-v")
    assert r.code == 0, r.stderr
    assert "list columns from a sample of 2000 documents: tags" in r.stderr
    src = dest if target == "--out" else dest / "*.parquet"
    assert {row[0]: row[1] for row in duckdb.sql(f"describe select * from read_parquet('{src}')").fetchall()} \
        == TYPES
    rows = duckdb.sql(f"select _id, tags from read_parquet('{src}') where _id in ('p00001', 'p00004')").fetchall()
    assert sorted(rows) == [("p00001", ["a", "t1"]), ("p00004", ["solo"])]
    if target == "--out-dir":  # one schema for every part
        schemas = {str(duckdb.sql(f"describe select * from read_parquet('{p}')").fetchall())
                   for p in dest.glob("part-*.parquet")}
        assert len(schemas) == 1 and len(list(dest.glob("part-*.parquet"))) == 3


def test_array_fields_adds_to_the_sample_and_the_look_can_be_turned_off(cli: Cli, index: str,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    r = cli("export", index, "--out", str(out), "--array-fields", "sku", "--fields", "sku,tags")
    assert r.code == 0, r.stderr
    described = {row[0]: row[1] for row in duckdb.sql(f"describe select * from read_parquet('{out}')").fetchall()}
    assert described == {"_id": "VARCHAR", "sku": "VARCHAR[]", "tags": "VARCHAR[]"}
    r = cli("export", index, "--out", str(out), "--array-fields", "sku", "--fields", "sku,tags",
            "--array-sample", "off")
    assert r.code == 1 and "add --array-fields tags" in r.stderr
    r = cli("export", index, "--out", str(out), "--fields", "sku,tags", "--array-fields", "none")  # SPEC's spelling
    assert r.code == 1 and "add --array-fields tags" in r.stderr
    r = cli("export", index, "--out", str(out), "--array-sample", "many")
    assert r.code == 2 and r.stderr.strip() == "escli: error: --array-sample many: a number of documents (2000) or off"


@pytest.mark.parametrize("target", ["--out", "--out-dir"])
def test_the_sample_index_to_parquet_with_no_option(cli: Cli, sample_index: str, tmp_path: Path,
                                                    target: str) -> None:
    """The first try of a new user (issue 36): `make demo`'s index, no option, exit 0, tags a list column."""
    dest = tmp_path / ("p.parquet" if target == "--out" else "nightly")
    r = cli("export", sample_index, "--format", "parquet", target, str(dest))
    assert r.code == 0, r.stderr
    src = dest if target == "--out" else dest / "part-*.parquet"
    types = {row[0]: row[1] for row in duckdb.sql(f"describe select * from read_parquet('{src}')").fetchall()}
    assert types["tags"] == "VARCHAR[]"
    assert duckdb.sql(f"select count(*), count(tags) from read_parquet('{src}')").fetchall() == [(20000, 20000)]
    longest = duckdb.sql(f"select max(len(tags)) from read_parquet('{src}')").fetchall()[0]
    assert longest is not None and longest[0] > 1
