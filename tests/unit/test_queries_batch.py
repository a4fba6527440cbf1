"""Pure parts of `escli batch`: request targets, _msearch lines, result lines, Retry-After and backoff."""

from __future__ import annotations

import time
from email.utils import formatdate

import orjson
from hypothesis import given
from hypothesis import strategies as st

from escli.core.batch import (
    BatchOptions,
    error_fields,
    failure_line,
    msearch_lines,
    retry_after_seconds,
    retry_delay,
    search_target,
    success_line,
)
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


def test_error_fields_prefer_the_root_cause() -> None:
    err = {"type": "search_phase_execution_exception", "reason": "all shards failed",
           "root_cause": [{"type": "index_not_found_exception", "reason": "no such index [x]", "index": "x"}]}
    assert error_fields(err, 404) == ("index_not_found_exception", "no such index [x]")
    assert error_fields("plain text", 500) == ("error", "plain text")
    assert error_fields(None, 502) == ("error", "HTTP 502")


def test_retry_after_seconds_and_dates() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = retry_after_seconds(formatdate(time.time() + 30, usegmt=True))
    assert later is not None and 25 < later <= 31


@given(st.integers(0, 12), st.one_of(st.none(), st.floats(0, 1000)))
def test_delay_is_bounded_and_honours_retry_after(attempt: int, retry_after: float | None) -> None:
    opts = BatchOptions(backoff_base=0.2, backoff_cap=10.0, retry_after_cap=60.0)
    delay = retry_delay(attempt, retry_after, opts)
    assert 0 <= delay <= max(10.0, min(retry_after or 0, 60.0))
    if retry_after is not None:
        assert delay >= min(retry_after, 60.0)
    else:
        assert delay <= min(10.0, 0.2 * 2 ** attempt)


def test_window_covers_what_is_in_flight() -> None:
    assert BatchOptions(concurrency=8).window_size >= 8
    assert BatchOptions(concurrency=8, msearch=50).window_size >= 8 * 50
    assert BatchOptions(concurrency=1).unreachable_after == 3
