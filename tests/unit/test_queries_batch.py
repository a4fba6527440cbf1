"""Pure parts of `escli batch`: request targets, _msearch lines, result lines."""

from __future__ import annotations

import orjson

from escli.core.batch import BatchOptions, failure_line, msearch_lines, search_target, success_line
from escli.es.queries import QuerySpec


def test_search_target_quotes_the_index_and_encodes_params() -> None:
    spec = QuerySpec("q", "logs-*,metrics", {"size": 1}, {"request_cache": True, "preference": "a b&c"})
    assert search_target(spec) == "/logs-*,metrics/_search?request_cache=true&preference=a+b%26c"
    assert search_target(QuerySpec("q", "we/ird", {})) == "/we%2Fird/_search"


def test_msearch_lines_split_params_between_header_and_body() -> None:
    spec = QuerySpec("q", "products", {"size": 1},
                     {"preference": "p1", "routing": "r", "track_total_hits": "true", "timeout": "2s"})
    header, body, end = msearch_lines(spec).split(b"\n")
    assert orjson.loads(header) == {"index": "products", "preference": "p1", "routing": "r"}
    assert orjson.loads(body) == {"size": 1, "track_total_hits": True, "timeout": "2s"}
    assert end == b""
    assert spec.body == {"size": 1}  # the spec itself is left alone


def test_msearch_body_param_does_not_override_the_body() -> None:
    spec = QuerySpec("q", "p", {"track_total_hits": 100}, {"track_total_hits": True})
    assert orjson.loads(msearch_lines(spec).split(b"\n")[1]) == {"track_total_hits": 100}


def test_result_lines_have_the_documented_shape() -> None:
    resp = {"took": 3, "timed_out": False, "_shards": {"failed": 0},
            "hits": {"total": {"value": 12, "relation": "eq"}, "hits": [{"_id": "a"}]}}
    line = orjson.loads(success_line("q1", resp, 4.56789))
    assert line == {"id": "q1", "ok": True, "took_ms": 3, "latency_ms": 4.568, "total": 12, "hits": [{"_id": "a"}]}
    aggs = orjson.loads(success_line("q2", {**resp, "aggregations": {"a": {"value": 1}}}, 1))
    assert aggs["aggregations"] == {"a": {"value": 1}}
    bad = orjson.loads(failure_line("q3", "parsing_exception", "unknown query", 400))
    assert bad == {"id": "q3", "ok": False, "error": {"type": "parsing_exception", "reason": "unknown query",
                                                      "status": 400}}


def test_window_covers_what_is_in_flight() -> None:
    assert BatchOptions(concurrency=8).window_size >= 8
    assert BatchOptions(concurrency=8, msearch=50).window_size >= 8 * 50
    assert BatchOptions(concurrency=1).unreachable_after == 3
