"""Output choices that must not surprise: search's CSV header is the same for the same query, export refuses a
table instead of ignoring it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from escli.es.query_builder import BuiltSearch
from escli.output.search_view import result_columns

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


def test_search_csv_header_is_the_mapping_for_every_search(cli: Cli, sample_index: str, es: Any) -> None:
    """Two searches with different hits (and different -f) give one header, so their CSV appends."""
    a = cli("--no-cache", "search", sample_index, "laptop", "-f", "name", "-n", "3", "-o", "csv")
    b = cli("--no-cache", "search", sample_index, "--filter", "category=audio", "-n", "5", "-o", "csv")
    assert a.code == 0 and b.code == 0, a.stderr + b.stderr
    head_a, head_b = next(csv.reader(io.StringIO(a.out))), next(csv.reader(io.StringIO(b.out)))
    assert head_a == head_b
    from escli.core.columns import choose_columns

    assert head_a == ["_id", "_score", *choose_columns(es.get(f"/{sample_index}/_mapping").json(), None)]
    chosen = cli("--no-cache", "search", sample_index, "laptop", "--fields", "price,name", "-n", "2", "-o", "csv")
    rows = list(csv.reader(io.StringIO(chosen.out)))
    assert rows[0] == ["_id", "_score", "price", "name"] and len(rows) == 3
    assert cli("search", sample_index, "--fields", ",", "-o", "csv").code == 2
