"""Pure parts of profile at scale: the exact merge of runs, the split of a load over workers, the spread of
repeated runs, the find-max search, and the slowlog's collapse of per-shard lines into searches."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable

import orjson
import pytest

from escli.core.gates import Gate, parse_gates
from escli.core.profile import ProfileOptions, Warmup
from escli.core.profile_result import ProfileResult
from escli.core.profile_scale import (
    FAIL,
    PASS,
    UNDECIDED,
    Step,
    Try,
    gate_needs,
    planned_requests,
    repeat_spread,
    sample_shortfall,
    search_max,
    spread,
)
from escli.core.profile_workers import plan, split_even
from escli.core.slowlog import read_slowlog
from escli.errors import InputError
from escli.es.queries import QuerySpec
from escli.profiler import Histogram, RequestStats

QUERIES = [QuerySpec("a", "i", {}), QuerySpec("b", "i", {})]


def _run(samples: dict[str, list[int]], seconds: float, errors: int = 0) -> ProfileResult:
    r = ProfileResult(ProfileOptions(), QUERIES, per_query={q.id: RequestStats() for q in QUERIES})
    for qid, values in samples.items():
        for i, v in enumerate(values):
            r.per_query[qid].record(v, v // 2, v // 1000, 10)
            r.timeline.record(qid, i % 3, v)
        for _ in range(errors):
            r.per_query[qid].record_error("429 es_rejected_execution_exception")
    r.seconds, r.started_at, r.cpu_seconds, r.rss_bytes = seconds, 1_000.0 + seconds, 0.5, 100
    return r


def test_merged_runs_equal_one_histogram_of_all_samples() -> None:
    rng = random.Random(3)
    parts = [{q: [int(rng.lognormvariate(8, 1.2)) for _ in range(rng.randint(200, 900))] for q in ("a", "b")}
             for _ in range(3)]
    merged = ProfileResult(ProfileOptions(), QUERIES, per_query={q.id: RequestStats() for q in QUERIES})
    for i, p in enumerate(parts):  # through JSON, as a worker's pipe or a saved file carries it
        merged.absorb(orjson.loads(orjson.dumps(_run(p, 2.0 + i, errors=i).state())))
    every = Histogram()
    for p in parts:
        for values in p.values():
            for v in values:
                every.record(v)
    pcts = (0.0, 50.0, 90.0, 99.0, 99.9, 100.0)
    assert merged.overall.latency.to_dict() == every.to_dict()
    assert merged.overall.latency.values_at(pcts) == every.values_at(pcts)
    assert merged.overall.errors == {"429 es_rejected_execution_exception": 2 * (1 + 2)}
    assert merged.seconds == 4.0 and merged.cpu_seconds == 1.5 and merged.rss_bytes == 300  # side by side
    total = sum(len(v) for p in parts for v in p.values())
    assert sum(row["ok"] for row in merged.timeline.series()) == total


def test_runs_one_after_another_add_their_seconds() -> None:
    r = ProfileResult(ProfileOptions(), QUERIES, per_query={q.id: RequestStats() for q in QUERIES})
    r.absorb(_run({"a": [5, 6]}, 2.5).state(), after=True)
    r.absorb(_run({"a": [7]}, 1.0).state(), after=True)
    assert r.seconds == 3.5 and r.rss_bytes == 100 and r.overall.ok == 3
    assert [row["t"] for row in r.timeline.series() if row["ok"]] == [0, 1, 3]  # the second run starts at 3 s


def test_workers_share_the_load_exactly() -> None:
    assert split_even(10, 3) == [4, 3, 3] and sum(split_even(7, 7)) == 7 and split_even(1, 3) == [1, 0, 0]
    opts = ProfileOptions(iterations=1001, warmup=Warmup(requests=5), concurrency=3, rate=300.0, seed=4)
    shares = plan(opts, 4)
    assert sum(s.iterations or 0 for s in shares) == 1001
    assert sum(s.warmup.requests for s in shares) == 5
    assert [s.concurrency for s in shares] == [1, 1, 1, 1]  # each at least 1
    assert all(s.rate == 75.0 for s in shares)
    # fixed schedule: worker k sends k/R after the common start, so together the sends are 1/R apart
    sends = sorted(s.offset + i / s.rate for s in shares for i in range(5) if s.rate)
    assert all(abs((b - a) - 1 / 300) < 1e-12 for a, b in itertools.pairwise(sends))
    assert shares[0].seed == 4 and len({s.seed for s in shares}) == 4
    closed = plan(ProfileOptions(iterations=None, duration=5.0, concurrency=16), 3)
    assert [s.concurrency for s in closed] == [6, 5, 5] and all(s.duration == 5.0 for s in closed)


def test_spread_is_median_and_cv_of_the_runs() -> None:
    values = [100.0, 110.0, 90.0, 130.0]
    s = spread(values)
    assert s["median"] == statistics.median(values) == 105.0
    assert s["cv"] == pytest.approx(statistics.stdev(values) / statistics.fmean(values), abs=1e-6)
    assert spread([3.0])["cv"] is None and spread([0.0, 0.0])["cv"] is None
    runs = [{"overall": {"throughput": t, "latency_ms": {"count": 9, "p50": p, "not_shown": {}}}, "queries": {}}
            for t, p in ((10.0, 1.0), (20.0, 3.0), (30.0, 2.0))]
    sp = repeat_spread(runs)
    assert sp["runs"] == 3
    assert sp["overall"]["throughput"]["median"] == 20.0 and sp["overall"]["throughput"]["values"] == [10, 20, 30]
    assert sp["overall"]["latency_ms"]["p50"]["median"] == 2.0
    assert sp["overall"]["latency_ms"]["p50"]["cv"] == pytest.approx(statistics.stdev([1, 3, 2]) / 2, abs=1e-6)
    assert "count" not in sp["overall"]["latency_ms"]


def _try(outcome: str, **doc: object) -> Try:
    result = ProfileResult(ProfileOptions(), [])
    return Try({**result.as_dict(), **doc}, result, outcome)


def _step_at(limit: float, undecided_below: float = 0.0) -> tuple[list[float], Callable[[float], Step]]:
    tried: list[float] = []

    def run(rate: float) -> Step:
        tried.append(rate)
        outcome = UNDECIDED if rate < undecided_below else PASS if rate <= limit else FAIL
        return Step(rate, [_try(outcome)] if outcome != FAIL else [_try(FAIL), _try(FAIL)], 100)

    return tried, run


@pytest.mark.parametrize(("start", "limit"), [(10.0, 37.0), (10.0, 10.0), (100.0, 37.0), (1.0, 1000.0)])
def test_find_max_lands_between_a_passing_and_a_failing_rate(start: float, limit: float) -> None:
    tried, run = _step_at(limit)
    found = search_max(run, start)
    assert found.max_rate is not None and found.max_rate <= limit
    assert found.min_failing_rate is not None and found.min_failing_rate > found.max_rate
    assert found.min_failing_rate - found.max_rate <= 0.06 * found.max_rate  # within 5 % (+ rounding)
    assert tried[0] == start
    assert {s["rate"] for s in found.as_dict()["steps"]} == set(tried)


def test_find_max_with_no_passing_rate() -> None:
    _, run = _step_at(0.0)
    found = search_max(run, 10.0)
    assert found.max_rate is None and all(not s.passed for s in found.steps)


def test_an_undecided_step_moves_no_bound_and_ends_the_search_downwards() -> None:
    tried, run = _step_at(1.0, undecided_below=5.0)  # passes only at 1/s, which would take too long to measure
    found = search_max(run, 40.0)
    assert tried == [40.0, 20.0, 10.0, 5.0, 2.5] and found.max_rate is None
    assert found.min_failing_rate == 5.0 and found.as_dict()["undecided_rates"] == [2.5]


@pytest.mark.parametrize(("outcomes", "expected"), [
    ([PASS], PASS), ([FAIL, FAIL], FAIL), ([FAIL, PASS, FAIL], FAIL), ([FAIL, PASS, PASS], PASS),
    ([PASS, UNDECIDED], UNDECIDED), ([], UNDECIDED)])
def test_a_failure_counts_only_when_confirmed(outcomes: list[str], expected: str) -> None:
    assert Step(10.0, [_try(o) for o in outcomes], 100).outcome == expected


def _gates(*texts: str) -> list[Gate]:
    return parse_gates(list(texts), {"a", "b"})


def test_what_a_gate_needs_before_it_can_be_read() -> None:
    assert [gate_needs(g) for g in _gates("p99>80ms", "p90>1s", "p99.9>1s", "max>1s", "mean>1ms",
                                          "errors>0.1%", "errors>0%", "errors>5", "throughput<10")] \
        == [100, 10, 1000, 1, 1, 1000, 1, 1, 1]
    weighted = [QuerySpec("a", "i", {}, weight=1.0), QuerySpec("b", "i", {}, weight=3.0)]
    # a gate on query a (a quarter of the load) needs four times its samples in the whole step, with headroom
    assert planned_requests(_gates("a:p99>50ms"), weighted) == math.ceil(400 * 1.25)
    assert planned_requests(_gates("p90>1s"), weighted) == math.ceil(10 * 1.25)


def test_the_shortfall_of_a_run_for_its_gates() -> None:
    run = _run({"a": [1000] * 60, "b": [2000] * 20}, 1.0)
    for stats in run.per_query.values():  # the overall figures are the queries' sum (as run_profile leaves them)
        run.overall.merge(stats)
    doc = run.as_dict()
    assert sample_shortfall(doc, _gates("p90>1s")) == 0
    assert sample_shortfall(doc, _gates("p99>1s")) == 20  # 80 of the 100 it needs
    assert sample_shortfall(doc, _gates("b:p99>1s")) == 80 * 4  # b has 20 of 100, a quarter of the load


# Lines as Elasticsearch 9.5 writes them (the test engine's own file): `source` escaped twice on disk.
def _line(index: str, shard: int, source: str, *, phase: str = "query", opaque: str | None = None,
          total: int = 2) -> bytes:
    escaped = orjson.dumps(source).decode()[1:-1]  # the engine's own escape, before the layout's
    return orjson.dumps({
        "@timestamp": "2026-12-02T04:32:50.381Z", "log.level": "TRACE", "elasticsearch.slowlog.id": opaque,
        "elasticsearch.slowlog.message": f"[{index}][{shard}]", "elasticsearch.slowlog.search_type":
        "QUERY_THEN_FETCH", "elasticsearch.slowlog.source": escaped, "elasticsearch.slowlog.stats": "[]",
        "elasticsearch.slowlog.took": "2.2ms", "elasticsearch.slowlog.took_millis": 2,
        "elasticsearch.slowlog.total_hits": "0 hits", "elasticsearch.slowlog.total_shards": total,
        "ecs.version": "1.2.0", "service.name": "ES_ECS", "event.dataset": "elasticsearch.index_search_slowlog",
        "log.logger": f"index.search.slowlog.{phase}", "elasticsearch.node.name": "node-0"})


def test_slowlog_collapses_shard_lines_into_searches() -> None:
    a = '{"size":3,"query":{"match":{"a":{"query":"x"}}}}'
    b = '{"query":{"match_all":{"boost":1.0}}}'
    lines = [
        _line("i", 0, a), _line("i", 1, a), _line("i", 1, a, phase="fetch"),  # one search of a: 2 shards
        _line("i", 1, a), _line("i", 0, a),  # a second one, its shards in the other order
        _line("i", 0, b),  # b on one shard of two (the other was under the threshold)
        b"",
        orjson.dumps({"log.logger": "index.indexing.slowlog.index", "elasticsearch.slowlog.source": "{}"}),
        _line("j", 0, a, total=1),  # the same body on another index: another query
    ]
    specs = read_slowlog(enumerate(lines, start=1), "slow.json")
    assert [(s.index, s.weight, s.line) for s in specs] == [("i", 2.0, 1), ("i", 1.0, 6), ("j", 1.0, 9)]
    assert specs[0].body == orjson.loads(a) and specs[1].body == orjson.loads(b)
    assert len({s.id for s in specs}) == 3


def test_slowlog_reads_the_documented_single_escape_and_names_bad_lines() -> None:
    doc = orjson.dumps({"log.logger": "index.search.slowlog.query", "elasticsearch.slowlog.message": "[x][0]",
                        "elasticsearch.slowlog.source": '{"query":{"match_all":{}}}',
                        "elasticsearch.slowlog.total_shards": 1})
    assert read_slowlog(iter([(1, doc)]), "f")[0].body == {"query": {"match_all": {}}}
    with pytest.raises(InputError, match=r"^f:2: not a JSON slowlog line"):
        read_slowlog(iter([(1, doc), (2, b"{oops")]), "f")
    bad = orjson.dumps({"log.logger": "index.search.slowlog.query", "elasticsearch.slowlog.message": "x",
                        "elasticsearch.slowlog.source": "{}"})
    with pytest.raises(InputError, match=r"^f:1: .*\[index\]\[shard\]"):
        read_slowlog(iter([(1, bad)]), "f")


def test_find_max_stops_where_the_client_falls_behind() -> None:
    def run(rate: float) -> Step:  # every gate holds, but at 400/s each of the 2 workers is on a whole core
        cpu = 196.0 if rate >= 400 else rate / 4
        return Step(rate, [_try(PASS, workers=2, client={"cpu_percent": cpu})], 1)

    found = search_max(run, 100.0)
    assert found.client_bound and [s.rate for s in found.steps] == [100.0, 200.0, 400.0]
    assert found.max_rate == 400.0 and found.steps[-1].client_bound
