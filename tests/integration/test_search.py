"""`escli search` against the real engine: results and options, output formats, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Result

# The tests run the path the CLI runs (the one request path, es/transport.py).

Cli = Callable[..., Result]


def hits(r: Result) -> list[dict[str, Any]]:
    assert r.code == 0, r.stderr
    return [json.loads(line) for line in r.out.splitlines()]


def es_ids(es: httpx.Client, index: str, body: dict[str, Any], **params: str) -> list[str]:
    resp = es.post(f"/{index}/_search", json=body, params=params)
    resp.raise_for_status()
    return [h["_id"] for h in resp.json()["hits"]["hits"]]


def test_multi_match_with_boosted_fields_matches_elasticsearch(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    got = hits(cli("search", sample_index, "wireless headphones", "-f", "name^3", "-f", "description", "-n", "5",
                   "-o", "ndjson"))
    assert len(got) == 5
    body = {"query": {"multi_match": {"query": "wireless headphones", "fields": ["name^3", "description"]}},
            "size": 5}
    assert [h["_id"] for h in got] == es_ids(es, sample_index, body)
    assert all("headphones" in h["_source"]["name"].lower() or "wireless" in h["_source"]["name"].lower()
               for h in got)


def test_query_string(cli: Cli, sample_index: str) -> None:
    got = hits(cli("search", sample_index, "--query-string", "category:laptops AND price:<20", "-n", "20",
                   "-o", "ndjson"))
    assert got and all(h["_source"]["category"] == "laptops" and h["_source"]["price"] < 20 for h in got)


def test_body_from_file_and_stdin(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    body = {"query": {"term": {"category": "books"}}, "size": 3, "sort": [{"id": "asc"}]}
    f = tmp_path / "body.json"
    f.write_text(json.dumps(body, indent=2))
    from_file = hits(cli("search", sample_index, "--body", str(f), "-o", "ndjson"))
    from_stdin = hits(cli("search", sample_index, "--body", "-", "-o", "ndjson", stdin=json.dumps(body).encode()))
    assert [h["_id"] for h in from_file] == [h["_id"] for h in from_stdin]
    assert len(from_file) == 3 and all(h["_source"]["category"] == "books" for h in from_file)
    # options still apply on top of a body: filters wrap its query, --size overrides
    narrowed = hits(cli("search", sample_index, "--body", str(f), "--range", "price=lt:15", "-n", "5",
                        "-o", "ndjson"))
    assert len(narrowed) == 5 and all(h["_source"]["price"] < 15 and h["_source"]["category"] == "books"
                                      for h in narrowed)


def test_filters_ranges_and_sort(cli: Cli, sample_index: str) -> None:
    got = hits(cli("search", sample_index, "--filter", "category=laptops", "--filter", "category=phones",
                   "--range", "price=gte:100,lt:200", "--range", "stock=gt:10", "--sort", "price:desc",
                   "-n", "50", "-o", "ndjson"))
    assert len(got) == 50
    prices = [h["_source"]["price"] for h in got]
    assert prices == sorted(prices, reverse=True)
    assert {h["_source"]["category"] for h in got} <= {"laptops", "phones"}
    assert all(100 <= h["_source"]["price"] < 200 and h["_source"]["stock"] > 10 for h in got)
    ascending = hits(cli("search", sample_index, "--filter", "clearance=true", "--sort", "created_at:asc",
                         "-n", "10", "-o", "ndjson"))
    dates = [h["_source"]["created_at"] for h in ascending]
    assert dates == sorted(dates) and all(h["_source"]["clearance"] is True for h in ascending)


def test_paging_and_source_filtering(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    page2 = hits(cli("search", sample_index, "--sort", "id", "--from", "10", "-n", "5",
                     "--source", "name,price", "-o", "ndjson"))
    assert [h["_id"] for h in page2] == es_ids(es, sample_index, {"sort": ["id"], "from": 10, "size": 5})
    assert all(set(h["_source"]) <= {"name", "price"} for h in page2)
    excluded = hits(cli("search", sample_index, "-n", "3", "--source", "-description,-specs", "-o", "ndjson"))
    assert all("description" not in h["_source"] and "specs" not in h["_source"] and "name" in h["_source"]
               for h in excluded)
    none = hits(cli("search", sample_index, "-n", "2", "--source", "false", "-o", "ndjson"))
    assert all("_source" not in h for h in none)


def test_preference_routing_and_request_options(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    local = hits(cli("search", sample_index, "laptop", "--preference", "_local", "-n", "3", "-o", "ndjson"))
    assert len(local) == 3
    # routing sends the search to one shard of two: the total is that shard's share, as Elasticsearch says
    r = cli("search", sample_index, "--routing", "user-7", "--track-total-hits", "true", "-n", "0", "-o", "json")
    assert r.code == 0, r.stderr
    routed = json.loads(r.out)
    direct = es.post(f"/{sample_index}/_search", params={"routing": "user-7", "track_total_hits": "true",
                                                         "size": "0"}).json()
    assert routed["_shards"]["total"] == 1
    assert routed["hits"]["total"] == direct["hits"]["total"]
    r = cli("search", sample_index, "--range", "price=gte:10", "--terminate-after", "5", "--timeout", "2s",
            "--no-request-cache", "--track-total-hits", "true", "-n", "1", "-o", "json")
    assert r.code == 0, r.stderr
    limited = json.loads(r.out)
    assert limited["terminated_early"] is True and limited["hits"]["total"]["value"] <= 10
    r = cli("search", sample_index, "--track-total-hits", "false", "-n", "1", "-o", "json")
    assert "total" not in json.loads(r.out)["hits"]
    r = cli("search", sample_index, "laptop", "--explain", "--track-total-hits", "100", "-n", "1", "-o", "json")
    explained = json.loads(r.out)
    assert "_explanation" in explained["hits"]["hits"][0]
    assert explained["hits"]["total"] == {"value": 100, "relation": "gte"}


def test_output_formats(cli: Cli, sample_index: str) -> None:
    args = ("search", sample_index, "laptop", "-f", "name^2", "--source", "name,price", "-n", "3")
    js = cli(*args, "-o", "json")
    assert js.code == 0
    doc = json.loads(js.out)
    assert len(doc["hits"]["hits"]) == 3 and doc["_escli"]["cache"] in ("miss", "hit-disk")
    nd = cli(*args, "-o", "ndjson")
    assert [json.loads(x)["_id"] for x in nd.out.splitlines()] == [h["_id"] for h in doc["hits"]["hits"]]
    assert "3 of " in nd.stderr  # the summary goes to stderr, data to stdout
    rows = list(csv.reader(io.StringIO(cli(*args, "-o", "csv").out)))
    assert rows[0] == ["_id", "_score", "name", "price"] and len(rows) == 4
    table = cli(*args, "-o", "table").out
    assert all(h["_id"] in table for h in doc["hits"]["hits"]) and "name" in table and "3 of" in table


def test_piped_output_is_ndjson_and_a_closed_pipe_is_quiet(escli_proc: Callable[..., Any], sample_index: str,
                                                           isolated_env: dict[str, str]) -> None:
    out = escli_proc("search", sample_index, "-n", "2")
    assert out.returncode == 0
    assert [json.loads(x)["_index"] for x in out.stdout.splitlines()] == [sample_index, sample_index]
    exe = str(Path(sys.executable).parent / "escli")
    piped = subprocess.run(["bash", "-c", f"'{exe}' search {sample_index} -n 5000 -o ndjson | head -n 1"],
                           capture_output=True, text=True, check=False, env=isolated_env)  # the test engine's URL
    assert len(piped.stdout.splitlines()) == 1
    assert "Traceback" not in piped.stderr and "error" not in piped.stderr


def test_invalid_json_body_names_line_and_column(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{\n  "query": {"match_all": {}},\n  "size": 1,,\n}\n')
    r = cli("search", sample_index, "--body", str(f))
    assert r.code == 2
    assert r.stderr.strip().splitlines() == [f"escli: error: {f}:3:13: invalid JSON in --body: "
                                             + r.stderr.split("invalid JSON in --body: ", 1)[1].strip()]
    r = cli("search", sample_index, "--body", "-", stdin=b'{"size": }')
    assert r.code == 2 and "<stdin>:1:10: invalid JSON" in r.stderr
    r = cli("search", sample_index, "--body", str(tmp_path / "missing.json"))
    assert r.code == 2 and "missing.json: no such file" in r.stderr


def test_unknown_index_exits_4_and_names_it(cli: Cli) -> None:
    r = cli("search", "no-such-index-xyz", "laptop")
    assert r.code == 4
    assert "no-such-index-xyz" in r.stderr and "index_not_found" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    debug = cli("--debug", "search", "no-such-index-xyz")
    assert debug.code == 4 and "Traceback" in debug.stderr and "error body" in debug.stderr


def test_refused_query_exits_4(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    f = tmp_path / "b.json"
    f.write_text('{"query": {"no_such_query": {}}}')
    r = cli("search", sample_index, "--body", str(f))
    assert r.code == 4 and "400" in r.stderr and "no_such_query" in r.stderr


def test_unreachable_cluster_exits_3(cli: Cli) -> None:
    r = cli("--url", "http://127.0.0.1:9", "--timeout", "2", "--max-retries", "2", "search", "products", "x")
    assert r.code == 3
    assert r.stderr.startswith("escli: error: cluster unreachable") and "Traceback" not in r.stderr


@pytest.mark.parametrize(("args", "named"), [
    (("--range", "price=between:1"), "--range price=between:1"),
    (("--range", "price"), "--range price"),
    (("--filter", "category"), "--filter category"),
    (("--sort", "price:sideways"), "--sort price:sideways"),
    (("--timeout", "5"), "--timeout 5"),
    (("--cache-ttl", "soon"), "--cache-ttl soon"),
    (("-n", "-1"), "--size"),
    (("-o", "yaml"), "--output yaml"),
])
def test_bad_options_exit_2_and_name_the_option(cli: Cli, sample_index: str, args: tuple[str, ...],
                                                named: str) -> None:
    r = cli("search", sample_index, *args)
    assert r.code == 2, r.stderr
    assert named in r.stderr and "Traceback" not in r.stderr


def test_global_options_after_the_command(cli: Cli, sample_index: str) -> None:
    r = cli("search", sample_index, "-n", "1", "-o", "json", "--no-cache", "-q")
    assert r.code == 0 and json.loads(r.out)["_escli"]["cache"] == "bypass" and r.stderr == ""


def test_a_dead_node_among_several_urls_is_skipped(cli: Cli, sample_index: str) -> None:
    from tests.conftest import ES_URL

    for _ in range(3):  # the pool starts in random order: whichever comes first, the search succeeds
        r = cli("--url", "http://127.0.0.1:9", "--url", ES_URL, "-v", "search", sample_index, "laptop", "-n", "1",
                "--no-cache", "-o", "ndjson")
        assert r.code == 0, r.stderr
        assert len(r.out.splitlines()) == 1
