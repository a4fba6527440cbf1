"""Output choices that must not surprise: search's CSV header is the same for the same query, export refuses a
table instead of ignoring it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from escli.cli.search import result_columns
from escli.es.query_builder import BuiltSearch

Cli = Callable[..., Any]


def test_csv_header_does_not_depend_on_hit_or_key_order() -> None:
    built = BuiltSearch("products", {})
    a = {"_id": "1", "_source": {"name": "x", "price": 1, "specs": {"ram": 8}}}
    b = {"_id": "2", "_source": {"specs": {"ram": 4}, "price": 2, "name": "y"}}
    assert result_columns(built, [a, b], None) == result_columns(built, [b, a], None)
    assert result_columns(built, [b, a], None) == ["_id", "_score", "name", "price", "specs.ram"]


def test_search_csv_header_is_stable_for_the_same_query(cli: Cli, sample_index: str) -> None:
    args = ("--no-cache", "-o", "csv", "search", sample_index, "laptop", "-f", "name", "-n", "20")
    first = next(csv.reader(io.StringIO(cli(*args).out)))
    again = next(csv.reader(io.StringIO(cli(*args).out)))
    assert first == again and first[:2] == ["_id", "_score"] and first[2:] == sorted(first[2:])


def test_export_refuses_a_table(cli: Cli, sample_index: str) -> None:
    r = cli("-o", "table", "export", sample_index, "--max-docs", "1")
    assert r.code == 2 and r.stdout == b""
    assert r.stderr.strip() == "escli: error: -o table: export writes ndjson, csv or json (use --format)"
    assert cli("-o", "csv", "export", sample_index, "--max-docs", "1").code == 0
