"""The pure parts around the profiler: durations, warm-up, baselines and deltas, the textfile, the tables."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from escli.core.profile import ProfileOptions, Warmup
from escli.core.profile_result import ProfileResult, compare_profiles
from escli.durations import parse_duration
from escli.errors import UsageError
from escli.es.queries import QuerySpec
from escli.output.profile_view import prometheus_text, render_profile
from escli.profiler import RequestStats


def make_doc(n: int = 150, queries: tuple[str, ...] = ("q1", "q2")) -> dict[str, Any]:
    specs = [QuerySpec(id=q, index="products", body={"query": {"match_all": {}}}, weight=i + 1.0)
             for i, q in enumerate(queries)]
    result = ProfileResult(ProfileOptions(iterations=n), specs, per_query={q: RequestStats() for q in queries})
    for i in range(n):
        stats = result.per_query[queries[i % len(queries)]]
        stats.record(1000 + 10 * i, 800 + 10 * i, 1 + i // 50, 150)
    result.per_query[queries[0]].record_error("429 es_rejected_execution_exception")
    for s in result.per_query.values():
        result.overall.merge(s)
    result.started_at = 1_764_000_000.0
    result.seconds = 2.0
    result.cpu_seconds = 0.1
    result.rss_bytes = 50 * 2**20
    return result.as_dict()


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0),
                                               ("1.5", 1.5), (" 10S ", 10.0)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, "--duration") == seconds


@pytest.mark.parametrize("text", ["", "s", "-1s", "0", "ten", "5 minutes", "1e999"])
def test_parse_duration_errors_name_the_option(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--duration "):
        parse_duration(text, "--duration")


def test_warmup_is_requests_or_time() -> None:
    assert Warmup.parse("50") == Warmup(requests=50)
    assert Warmup.parse("2s") == Warmup(seconds=2.0)
    assert Warmup.parse("0") == Warmup()
    with pytest.raises(UsageError, match=r"^--warmup -3:"):
        Warmup.parse("-3")


def test_result_document_shape() -> None:
    doc = make_doc()
    o = doc["overall"]
    assert o["requests"] == 151 and o["ok"] == 150 and o["errors"] == {"429 es_rejected_execution_exception": 1}
    assert o["throughput"] == 75.0
    assert set(o["latency_ms"]) >= {"count", "p50", "p90", "p95", "p99", "max", "mean", "not_shown"}
    assert o["latency_ms"]["not_shown"] == {"p99.9": "p99.9 needs at least 1,000 samples, have 150"}
    assert doc["queries"]["q2"]["weight"] == 2.0
    assert doc["client"]["cpu_us_per_request"] == round(1e6 * 0.1 / 151, 2)


@given(st.floats(min_value=0.5, max_value=3.0))
def test_compare_deltas_are_percent_changes(factor: float) -> None:
    old = make_doc()
    new = copy.deepcopy(old)
    for stats in [new["overall"], *new["queries"].values()]:
        for fig in ("latency_ms", "service_time_ms"):
            for k, v in stats[fig].items():
                if isinstance(v, float):
                    stats[fig][k] = v * factor
    d = compare_profiles(new, old)
    want = round((factor - 1) * 100, 2)
    assert d["overall"]["latency_ms"]["p50"] == pytest.approx(want, abs=0.02)
    assert d["queries"]["q1"]["service_time_ms"]["max"] == pytest.approx(want, abs=0.02)
    assert d["overall"]["took_ms"]["p50"] == 0.0  # unchanged
    assert "not_shown" not in d["overall"]["latency_ms"] and "count" not in d["overall"]["latency_ms"]


def test_compare_skips_queries_missing_from_the_baseline() -> None:
    old, new = make_doc(queries=("q1",)), make_doc(queries=("q1", "q9"))
    assert set(compare_profiles(new, old)["queries"]) == {"q1"}


def test_prometheus_textfile_parses_with_the_reference_parser() -> None:
    text = prometheus_text(make_doc(), labels={"host": 'a"b'})
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    lat = fams["escli_profile_latency_seconds"]
    assert lat.type == "summary"
    all_q = {s.labels["quantile"]: s.value for s in lat.samples
             if s.labels.get("query") == "_all" and "quantile" in s.labels}
    assert set(all_q) == {"0.5", "0.9", "0.95", "0.99", "1.0"}
    assert all_q["1.0"] == pytest.approx(0.00249, rel=0.01)  # seconds
    assert all(s.labels["host"] == 'a"b' for s in lat.samples)
    errs = fams["escli_profile_errors"].samples
    assert {(s.labels["query"], s.labels["type"], s.value) for s in errs} == {
        ("_all", "429 es_rejected_execution_exception", 1), ("q1", "429 es_rejected_execution_exception", 1)}
    assert fams["escli_profile_last_run_timestamp_seconds"].samples[0].value == 1_764_000_000


def test_table_names_what_is_not_shown_and_the_deltas() -> None:
    doc = make_doc()
    text = render_profile(doc, compare_profiles(doc, doc))
    assert "p99.9 n/a: needs at least 1,000 samples (have (all) 150, q1 75, q2 75)" in text
    assert "(+0.0%)" in text and "429 es_rejected_execution_exception: 1" in text
    assert "cache hit ratio: none" in text


def test_a_spike_at_the_max_leaves_every_row_a_bar() -> None:
    from escli.output.plot import _bar

    assert _bar(1.0, 10_000.0, 60).strip() == "▏"  # 1 ms on a 10 s scale: still drawn
    assert _bar(0.0, 10.0, 20).strip() == ""
    assert _bar(10.0, 10.0, 20) == "█" * 20
