"""`escli search --agg / --highlight / --stored-fields / --tune` against the real engine, numbers included:
bucket counts equal `_count` with the same filter, histogram totals equal the hit total, stats equal what the
documents say, highlighted fragments hold the searched word."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Result

Cli = Callable[..., Result]


def lines(r: Result) -> list[dict[str, Any]]:
    assert r.code == 0, r.stderr
    return [json.loads(line) for line in r.out.splitlines()]


def agg_rows(r: Result, name: str) -> list[dict[str, Any]]:
    return [row for row in lines(r) if row.get("agg") == name]


def count(es: httpx.Client, index: str, *filters: dict[str, Any]) -> int:
    resp = es.post(f"/{index}/_count", json={"query": {"bool": {"filter": list(filters)}}})
    resp.raise_for_status()
    return int(resp.json()["count"])


def test_terms_bucket_counts_equal_count_with_the_same_filter(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    r = cli("search", sample_index, "--size", "0", "--filter", "clearance=true",
            "--agg", "brands=terms:brand.keyword:8", "-o", "ndjson")
    rows = agg_rows(r, "brands")
    assert len(rows) == 8 and all(set(row) == {"agg", "key", "count"} for row in rows)
    assert [row["count"] for row in rows] == sorted((row["count"] for row in rows), reverse=True)
    for row in rows:
        assert row["count"] == count(es, sample_index, {"term": {"clearance": True}},
                                     {"term": {"brand.keyword": row["key"]}}), row
    assert not [x for x in lines(r) if "_id" in x]  # --size 0: no hits, only rows


def test_histogram_and_date_histogram_totals(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    r = cli("search", sample_index, "-n", "0", "--filter", "category=books", "--track-total-hits", "true",
            "--agg", "price=histogram:price:25", "--agg", "months=date_histogram:created_at:1M", "-o", "ndjson")
    books = count(es, sample_index, {"term": {"category": "books"}})
    assert books > 0
    prices = agg_rows(r, "price")
    assert sum(row["count"] for row in prices) == books
    assert [row["key"] for row in prices] == sorted(row["key"] for row in prices)
    assert all(row["key"] % 25 == 0 for row in prices)
    cheapest = prices[0]
    assert cheapest["count"] == count(es, sample_index, {"term": {"category": "books"}},
                                      {"range": {"price": {"gte": cheapest["key"], "lt": cheapest["key"] + 25}}})
    months = agg_rows(r, "months")
    assert sum(row["count"] for row in months) == books
    first = months[0]  # key is key_as_string: a date a person and a CSV can read
    assert first["key"].endswith("T00:00:00.000Z") and first["key"][8:10] == "01"
    month_end = first["key"][:10] + "||+1M"
    assert first["count"] == count(es, sample_index, {"term": {"category": "books"}},
                                   {"range": {"created_at": {"gte": first["key"], "lt": month_end}}})


def _books_prices(es: httpx.Client, index: str) -> list[float]:
    resp = es.post(f"/{index}/_search", json={"query": {"term": {"category": "books"}}, "size": 10000,
                                              "_source": ["price"]})
    resp.raise_for_status()
    return [h["_source"]["price"] for h in resp.json()["hits"]["hits"]]


def test_stats_and_percentiles_equal_computed_values(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    prices = _books_prices(es, sample_index)
    assert 0 < len(prices) < 10000
    r = cli("search", sample_index, "-n", "0", "--filter", "category=books", "--agg", "p=stats:price",
            "--agg", "pct=percentiles:price:50,90", "-o", "ndjson")
    stats = {row["key"]: row["value"] for row in agg_rows(r, "p")}
    # price is a float field: the engine adds float32 values, Python the decimal ones from _source
    assert stats["count"] == len(prices)
    assert stats["min"] == pytest.approx(min(prices), rel=1e-6)
    assert stats["max"] == pytest.approx(max(prices), rel=1e-6)
    assert stats["sum"] == pytest.approx(sum(prices), rel=1e-5)
    assert stats["avg"] == pytest.approx(sum(prices) / len(prices), rel=1e-5)
    pct = {float(row["key"]): row["value"] for row in agg_rows(r, "pct")}
    ordered = sorted(prices)
    assert set(pct) == {50.0, 90.0}
    # TDigest is approximate: the median lies between the 45th and 55th percentile of the data
    assert ordered[int(0.45 * len(ordered))] <= pct[50.0] <= ordered[int(0.55 * len(ordered))]
    assert pct[50.0] < pct[90.0] <= max(prices)


def test_body_aggregations_render_as_the_same_rows(cli: Cli, sample_index: str) -> None:
    body = {"size": 0, "aggs": {"cats": {"terms": {"field": "category", "size": 5}},
                                "p": {"stats": {"field": "price"}}}}
    from_body = lines(cli("search", sample_index, "--body", "-", "-o", "ndjson", stdin=json.dumps(body).encode()))
    from_opts = lines(cli("search", sample_index, "-n", "0", "--agg", "cats=terms:category:5", "--agg", "p=stats:price",
                          "-o", "ndjson"))
    assert from_body == from_opts and len(from_body) == 10
    # nested: a sub-aggregation with one value is a column of its bucket's row
    nested = {"size": 0, "aggs": {"cats": {"terms": {"field": "category", "size": 3},
                                           "aggs": {"avg_price": {"avg": {"field": "price"}}}}}}
    rows = lines(cli("search", sample_index, "--body", "-", "-o", "ndjson", stdin=json.dumps(nested).encode()))
    assert len(rows) == 3 and all(isinstance(row["avg_price"], float) for row in rows)


def test_agg_csv_and_table(cli: Cli, sample_index: str) -> None:
    r = cli("search", sample_index, "-n", "0", "--agg", "cats=terms:category:3", "--agg", "p=stats:price", "-o", "csv")
    assert r.code == 0, r.stderr
    table = list(csv.reader(io.StringIO(r.out)))
    assert table[0] == ["agg", "key", "count", "value"]
    assert [row[0] for row in table[1:]] == ["cats"] * 3 + ["p"] * 5
    assert all(row[2].isdigit() and row[3] == "" for row in table[1:4])
    assert [row[1] for row in table[4:]] == ["count", "min", "max", "avg", "sum"]
    # with hits too, -o csv writes the rows and says what it left out
    both = cli("search", sample_index, "-n", "2", "--agg", "cats=terms:category:3", "-o", "csv")
    assert both.code == 0 and "2 hits not written" in both.stderr and both.out.startswith("agg,key,count,value")

    t = cli("search", sample_index, "-n", "0", "--agg", "cats=terms:category:3", "--agg", "p=stats:price",
            "-o", "table")
    assert t.code == 0, t.stderr
    assert "hits, took" in t.out.splitlines()[0] and "_id" not in t.out  # --size 0: no empty hits table
    assert "cats" in t.out and "statistic" in t.out and "█" in t.out and "more documents in other keys" in t.out
    assert "\x1b[" not in t.out  # not a terminal: no styles


def test_aggregations_are_cached_like_any_search(cli: Cli, sample_index: str) -> None:
    args = ("search", sample_index, "-n", "0", "--agg", "cats=terms:category:4", "-o", "ndjson")
    first, second = cli(*args), cli(*args)
    assert lines(first) == lines(second) and len(lines(second)) == 4
    assert "cache hit-disk" in second.stderr
    other = cli("search", sample_index, "-n", "0", "--agg", "cats=terms:category:5", "-o", "ndjson")
    assert "cache hit" not in other.stderr and len(lines(other)) == 5


def test_bad_agg_specs_exit_2_naming_the_option(cli: Cli, sample_index: str) -> None:
    for spec in ("x", "x=foo:price", "x=terms", "x=terms:brand:0", "x=histogram:price", "x=histogram:price:-5",
                 "x=date_histogram:created_at:fortnight", "x=stats:price:9", "a>b=stats:price"):
        r = cli("search", sample_index, "--agg", spec)
        assert r.code == 2, (spec, r.stderr)
        assert r.stderr.startswith(f"escli: error: --agg {spec}") and len(r.stderr.strip().splitlines()) == 1
    dup = cli("search", sample_index, "--agg", "x=stats:price", "--agg", "x=terms:category")
    assert dup.code == 2 and "used twice" in dup.stderr


def test_highlight_fragments_hold_the_word(cli: Cli, sample_index: str) -> None:
    got = lines(cli("search", sample_index, "wireless", "-f", "name", "-f", "description", "--highlight",
                    "description", "-n", "5", "-o", "ndjson"))
    assert len(got) == 5
    for hit in got:
        fragments = hit["highlight"]["description"]
        assert fragments and all("wireless" in f.lower() for f in fragments)
        assert not any(mark in f for f in fragments for mark in ("<em>", "</em>", "**"))
    raw = cli("search", sample_index, "wireless", "-f", "description", "--highlight", "description", "-n", "5",
              "-o", "json")
    assert raw.code == 0
    for hit in json.loads(raw.out)["hits"]["hits"]:
        assert any("<em>wireless</em>" in f.lower() for f in hit["highlight"]["description"])
    c = cli("search", sample_index, "wireless", "-f", "description", "--highlight", "description", "-n", "3",
            "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(c.out)))
    assert len(rows) == 3 and all("wireless" in row["description"].lower() and "<em>" not in row["description"]
                                  for row in rows)
    t = cli("search", sample_index, "wireless", "-f", "description", "--highlight", "description", "-n", "3",
            "-o", "table")
    assert t.code == 0 and "description" in t.out and "<em>" not in t.out and "**" not in t.out


def test_highlight_custom_tags_from_a_body(cli: Cli, sample_index: str) -> None:
    body = {"query": {"match": {"name": "laptop"}}, "size": 2,
            "highlight": {"pre_tags": ["[["], "post_tags": ["]]"], "fields": {"name": {}}}}
    got = lines(cli("search", sample_index, "--body", "-", "-o", "ndjson", stdin=json.dumps(body).encode()))
    assert all("laptop" in f.lower() and "[[" not in f for h in got for f in h["highlight"]["name"])


def test_highlight_is_emphasised_on_a_terminal(isolated_env: dict[str, str], sample_index: str) -> None:
    """A real pseudo-terminal: the match carries an ANSI style, the rest of the cell does not."""
    exe = str(Path(sys.executable).parent / "escli")
    master, slave = pty.openpty()
    env = {**isolated_env, "COLUMNS": "200", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.run([exe, "search", sample_index, "wireless", "-f", "description", "--highlight",
                           "description", "-n", "2", "--agg", "c=terms:category:2"], stdout=slave,
                          stderr=subprocess.PIPE, env=env, check=False)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = b"".join(chunks).decode()
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[1;7mwireless\x1b[0m" in out.lower()
    assert "<em>" not in out and "█" in out


def test_stored_fields(cli: Cli, es: httpx.Client, index_name: Callable[[str], str]) -> None:
    index = index_name("stored")
    es.put(f"/{index}", json={"mappings": {"properties": {
        "title": {"type": "text", "store": True}, "year": {"type": "integer", "store": True},
        "body": {"type": "text"}}}}).raise_for_status()
    for i in range(3):
        es.put(f"/{index}/_doc/{i}", json={"title": f"book {i}", "year": 2000 + i, "body": "long text"})
    es.post(f"/{index}/_refresh").raise_for_status()
    got = lines(cli("search", index, "--stored-fields", "title,year", "--sort", "year", "-o", "ndjson"))
    assert [h["fields"] for h in got] == [{"title": [f"book {i}"], "year": [2000 + i]} for i in range(3)]
    assert all("_source" not in h for h in got)
    c = cli("search", index, "--stored-fields", "title", "--stored-fields", "year", "--sort", "year", "-o", "csv")
    assert c.out.splitlines()[0] == "_id,_score,title,year"
    ids_only = lines(cli("search", index, "--stored-fields", "_none_", "-o", "ndjson"))
    assert len(ids_only) == 3 and all("_source" not in h and "fields" not in h for h in ids_only)


def test_tune_presets_verbose_and_overrides(cli: Cli, sample_index: str) -> None:
    plain = cli("search", sample_index, "laptop", "-n", "5", "-o", "ndjson", "--no-cache")
    tuned = cli("-v", "search", sample_index, "laptop", "-n", "5", "-o", "ndjson", "--tune", "throughput",
                "--max-concurrent-shard-requests", "3")
    assert tuned.code == 0, tuned.stderr
    assert lines(tuned) == lines(plain)  # execution settings only: the same hits
    assert ("--tune throughput: pre_filter_shard_size=1, max_concurrent_shard_requests=2, batched_reduce_size=64; "
            "--max-concurrent-shard-requests 3 overrides 2") in tuned.stderr
    assert "max_concurrent_shard_requests=3" in tuned.stderr and "pre_filter_shard_size=1" in tuned.stderr
    latency = cli("-v", "search", sample_index, "-n", "1", "--tune", "latency", "--terminate-after", "100",
                  "-o", "json")
    assert latency.code == 0, latency.stderr
    resp = json.loads(latency.out)
    # What was sent is checked below; whether the engine reports terminated_early for a match_all that it can
    # count cheaply varies between runs, so the answer is only checked to be a search answer.
    assert "hits" in resp and len(resp["hits"]["hits"]) == 1
    assert "terminate_after=100&timeout=100ms" in latency.stderr
    bad = cli("search", sample_index, "--tune", "fast")
    assert bad.code == 2 and "--tune fast" in bad.stderr


def test_execution_settings_share_the_cache_and_result_settings_split_it(cli: Cli, sample_index: str) -> None:
    base = ("search", sample_index, "phone", "-n", "3", "-o", "ndjson")
    assert cli(*base).code == 0
    shared = cli(*base, "--tune", "throughput", "--batched-reduce-size", "16", "--pre-filter-shard-size", "4")
    assert "cache hit-disk" in shared.stderr
    for extra in (("--tune", "latency"), ("--stored-fields", "name")):
        assert "cache hit" not in cli(*base, *extra).stderr, extra


def test_query_file_params_tune_and_validation(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    f = tmp_path / "q.ndjson"
    f.write_text(
        json.dumps({"id": "t", "index": sample_index, "q": "laptop", "size": 2,
                    "params": {"tune": "throughput", "batched_reduce_size": 8}}) + "\n"
        + json.dumps({"id": "s", "index": sample_index, "q": "laptop", "size": 2,
                      "params": {"stored_fields": ["_none_"]}}) + "\n")
    r = cli("batch", str(f), "--ordered")
    assert r.code == 0, r.stderr
    out = [json.loads(line) for line in r.out.splitlines()]
    assert [o["ok"] for o in out] == [True, True] and all("_source" not in h for h in out[1]["hits"])
    grouped = cli("batch", str(f), "--ordered", "--msearch", "2")  # the same answers through _msearch
    assert [json.loads(line)["hits"] for line in grouped.out.splitlines()] == [o["hits"] for o in out]
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps({"index": sample_index, "params": {"batched_reduce_size": 1}}) + "\n")
    b = cli("batch", str(bad))
    assert b.code != 0 and f"{bad}:1" in b.stderr and "batched_reduce_size" in b.stderr


def test_profile_takes_the_tuning_options(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    r = cli("profile", sample_index, "laptop", "-n", "40", "--warmup", "5", "-j", "2", "--save", str(base),
            "-F", "json")
    assert r.code == 0, r.stderr
    tuned = cli("-v", "profile", sample_index, "laptop", "-n", "40", "--warmup", "5", "-j", "2", "--tune",
                "throughput", "--stored-fields", "name", "--compare", str(base), "-F", "json")
    assert tuned.code == 0, tuned.stderr
    assert "--tune throughput:" in tuned.stderr
    doc = json.loads(tuned.out)
    assert doc["compare"] and doc["overall"]["requests"] == 40 and not doc["overall"]["errors"]
