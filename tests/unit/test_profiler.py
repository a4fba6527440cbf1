"""escli.profiler: HDR-style histogram and percentile maths, checked against numpy on many samples."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.profiler import (
    SUB_COUNT,
    Histogram,
    RequestStats,
    bucket_bounds,
    bucket_index,
    min_samples,
    parse_percentiles,
    percentile_label,
    split_percentiles,
)

values_st = st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=3000)
latency_like = st.lists(
    st.one_of(st.integers(0, 5000), st.integers(5000, 200_000), st.integers(200_000, 60_000_000)),
    min_size=1, max_size=3000,
)
percentile_st = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


def assert_close(got: int, candidates: tuple[int, ...]) -> None:
    """Within the bucket of the exact value (of one of them): exact below 2048, within 1/1024 above."""
    for exact in candidates:
        lo, hi = bucket_bounds(bucket_index(exact))
        if lo <= got <= hi:
            assert abs(got - exact) <= exact / 1024
            return
    raise AssertionError(f"{got} is not in the bucket of {candidates}")


def reference(arr: np.ndarray, p: float) -> tuple[int, ...]:
    """numpy's nearest-rank percentile (method="inverted_cdf"), with the rank computed in decimal.

    numpy computes p/100*n in binary floats, so for p99.9 of 200,000 values it takes rank 199,801 instead of
    199,800 (199800.00000000003 rounded up). The histogram takes the decimal rank, as a user means it. Where the
    rank sits on an integer up to float noise, both neighbours are acceptable answers; elsewhere numpy must agree.
    """
    s = np.sort(arr)
    n = len(s)
    exact_rank = Fraction(repr(p)) / 100 * n
    rank = min(max(1, math.ceil(exact_rank)), n)
    np_value = int(np.percentile(arr, p, method="inverted_cdf"))
    if abs(exact_rank - round(exact_rank)) > Fraction(1, 10**6):
        assert np_value == int(s[rank - 1])
        return (np_value,)
    r = round(exact_rank)
    return tuple(int(s[min(max(k, 1), n) - 1]) for k in (r, r + 1))


@given(st.integers(min_value=0, max_value=2**62))
def test_bucket_bounds_contain_the_value_and_are_narrow(value: int) -> None:
    idx = bucket_index(value)
    lo, hi = bucket_bounds(idx)
    assert lo <= value <= hi
    if value < SUB_COUNT:
        assert lo == hi == value
    else:
        assert (hi - lo + 1) / lo <= 1 / 1024


@given(st.integers(min_value=0, max_value=2**40))
def test_buckets_are_contiguous_and_ordered(value: int) -> None:
    idx = bucket_index(value)
    lo, hi = bucket_bounds(idx)
    if idx > 0:
        assert bucket_bounds(idx - 1)[1] == lo - 1
    assert bucket_bounds(idx + 1)[0] == hi + 1


@given(values_st, st.lists(percentile_st, min_size=1, max_size=8))
def test_percentiles_match_numpy_nearest_rank(values: list[int], ps: list[float]) -> None:
    h = Histogram()
    for v in values:
        h.record(v)
    arr = np.array(values, dtype=np.int64)
    got = h.values_at(ps)
    for p, g in zip(ps, got, strict=True):
        exact = reference(arr, p)
        if p == 100.0:
            assert g == arr.max()
        elif p == 0.0:
            assert g == arr.min()
        else:
            assert_close(g, exact)


@given(latency_like)
def test_default_percentiles_on_latency_shaped_samples(values: list[int]) -> None:
    h = Histogram()
    for v in values:
        h.record(v)
    arr = np.array(values)
    for p in (50, 90, 95, 99, 99.9):
        assert_close(h.value_at(p), reference(arr, p))
    assert h.count == len(values)
    assert h.min == arr.min() and h.max == arr.max()
    assert h.sum == arr.sum()
    assert math.isclose(h.mean, float(arr.mean()), rel_tol=1e-9)
    if len(values) > 1:
        assert math.isclose(h.stdev, float(arr.std()), rel_tol=1e-6, abs_tol=1e-6)


@given(values_st, values_st, percentile_st)
def test_merge_equals_recording_everything(a: list[int], b: list[int], p: float) -> None:
    ha, hb, hall = Histogram(), Histogram(), Histogram()
    for v in a:
        ha.record(v)
        hall.record(v)
    for v in b:
        hb.record(v)
        hall.record(v)
    ha.merge(hb)
    assert ha.to_dict() == hall.to_dict()
    assert ha.value_at(p) == hall.value_at(p)


@given(values_st)
def test_round_trip_through_dict(values: list[int]) -> None:
    h = Histogram()
    for v in values:
        h.record(v)
    again = Histogram.from_dict(h.to_dict())
    assert again.to_dict() == h.to_dict()
    assert again.values_at([50, 99]) == h.values_at([50, 99])


def test_large_sample_from_distributions_matches_numpy() -> None:
    rng = np.random.default_rng(42)
    for arr in (rng.lognormal(7, 1.2, 200_000).astype(np.int64), rng.exponential(3000, 100_000).astype(np.int64),
                rng.integers(0, 2048, 50_000)):
        h = Histogram()
        for v in arr.tolist():
            h.record(v)
        for p in (1, 25, 50, 75, 90, 95, 99, 99.9, 99.99):
            assert_close(h.value_at(p), reference(arr, p))


def test_record_with_count_and_errors() -> None:
    h = Histogram()
    h.record(100, times=99)
    h.record(5000)
    assert h.value_at(99) == 100
    assert h.value_at(99.5) >= 4995 and h.value_at(100) == 5000
    with pytest.raises(ValueError):
        h.record(-1)
    with pytest.raises(ValueError):
        Histogram().value_at(50)
    with pytest.raises(ValueError):
        h.value_at(101)


def test_sample_size_rule() -> None:
    assert [min_samples(p) for p in (0, 50, 90, 95, 99, 99.9, 99.99, 100)] == [1, 2, 10, 20, 100, 1000, 10000, 1]
    split = split_percentiles((50, 90, 99, 99.9, 100), 150)
    assert split.shown == (50, 90, 99, 100)
    assert split.hidden == ((99.9, "p99.9 needs at least 1,000 samples, have 150"),)
    assert split_percentiles((50, 100), 1).shown == (100,)


@given(st.integers(1, 100_000), percentile_st)
def test_a_shown_percentile_is_not_just_the_maximum(n: int, p: float) -> None:
    # With the rule, the nearest rank of a shown percentile (below 100) is below n: a value lies above it.
    if p < 100 and p in split_percentiles([p], n).shown and p > 0:
        from escli.profiler import rank_for

        assert rank_for(p, n) < n


def test_parse_percentiles_and_labels() -> None:
    assert parse_percentiles("99.9, 50,max,p90,50") == (50.0, 90.0, 99.9, 100.0)
    assert [percentile_label(p) for p in (0, 50, 99.9, 99.99, 100)] == ["min", "p50", "p99.9", "p99.99", "max"]
    for bad, msg in (("x", "'x' is not a number"), ("101", "outside"), ("", "no percentiles")):
        with pytest.raises(ValueError, match=msg):
            parse_percentiles(bad)


def test_request_stats_merge_and_counts() -> None:
    a, b = RequestStats(), RequestStats()
    a.record(1000, 900, 1, 100)
    b.record(2000, 1500, None, None)
    b.record_error("timeout")
    a.merge(b)
    assert a.ok == 2 and a.requests == 3 and a.errors == {"timeout": 1}
    assert a.took.count == 1 and a.took.max == 1 and a.service.count == 2
