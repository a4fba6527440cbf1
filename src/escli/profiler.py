"""Latency recording: HDR-style histograms, percentile maths and the sample-size rule. Nothing about printing.

The histogram is log-linear, as HdrHistogram is with three significant digits: integer values below 2048 are
kept exactly, larger ones in buckets whose width is at most 1/1024 of their lower bound, so any percentile is
within 0.1 % of the exact order statistic. Memory depends on the range of values, not on their number (about
1,000 buckets per power of two actually seen), so a 10-minute run costs the same as a 10-second one.

Percentiles follow the nearest-rank definition (numpy's ``method="inverted_cdf"``): the smallest recorded value
such that at least p % of the values are at or below it. Values are recorded in integer microseconds by callers
that time requests; the histogram itself is unit-free.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from escli.text import parse_float

SUB_BITS = 11
SUB_COUNT = 1 << SUB_BITS  # values below this are exact
HALF = SUB_COUNT >> 1
DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9, 100.0)


def bucket_index(value: int) -> int:
    """The bucket of a non-negative integer value; buckets are contiguous from 0."""
    if value < SUB_COUNT:
        return value
    shift = value.bit_length() - SUB_BITS
    return shift * HALF + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """(lowest, highest) value that falls into a bucket."""
    if index < SUB_COUNT:
        return index, index
    shift = index // HALF - 1
    mantissa = index - shift * HALF
    return mantissa << shift, ((mantissa + 1) << shift) - 1


class Histogram:
    """Counts of non-negative integer values in HDR-style buckets, with exact count, sum, min and max."""

    __slots__ = ("_counts", "count", "max", "min", "sum", "sum_sq")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.sum = 0
        self.sum_sq = 0
        self.min = 0
        self.max = 0

    def record(self, value: int, times: int = 1) -> None:
        if value < 0:
            raise ValueError(f"histogram values must be >= 0, got {value}")
        if times <= 0:
            return
        idx = value if value < SUB_COUNT else bucket_index(value)
        counts = self._counts
        counts[idx] = counts.get(idx, 0) + times
        if self.count == 0:
            self.min = self.max = value
        elif value < self.min:
            self.min = value
        elif value > self.max:
            self.max = value
        self.count += times
        self.sum += value * times
        self.sum_sq += value * value * times

    def merge(self, other: Histogram) -> None:
        if other.count == 0:
            return
        for idx, n in other._counts.items():
            self._counts[idx] = self._counts.get(idx, 0) + n
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = other.max if self.count == 0 else max(self.max, other.max)
        self.count += other.count
        self.sum += other.sum
        self.sum_sq += other.sum_sq

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    @property
    def stdev(self) -> float:
        if self.count < 2:
            return math.nan
        mean = self.sum / self.count
        return math.sqrt(max(self.sum_sq / self.count - mean * mean, 0.0))

    def value_at(self, percentile: float) -> int:
        """The nearest-rank percentile, within one bucket (<= 0.1 %) of the exact value; min at 0, max at 100."""
        return self.values_at((percentile,))[0]

    def values_at(self, percentiles: Sequence[float]) -> list[int]:
        """Several percentiles in one pass over the buckets."""
        if self.count == 0:
            raise ValueError("no values recorded")
        for p in percentiles:
            if not 0.0 <= p <= 100.0:
                raise ValueError(f"percentile must be within 0..100, got {p}")
        order = sorted(range(len(percentiles)), key=lambda i: percentiles[i])
        out = [0] * len(percentiles)
        items = sorted(self._counts.items())
        pos, seen = 0, 0
        for i in order:
            p = percentiles[i]
            if p <= 0.0:
                out[i] = self.min
                continue
            if p >= 100.0:
                out[i] = self.max
                continue
            rank = rank_for(p, self.count)
            while seen < rank:
                seen += items[pos][1]
                pos += 1
            _, high = bucket_bounds(items[pos - 1][0])
            out[i] = max(self.min, min(high, self.max))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A compact, JSON-safe form (bucket index -> count) from which `from_dict` rebuilds the histogram."""
        return {"count": self.count, "sum": self.sum, "sum_sq": self.sum_sq, "min": self.min, "max": self.max,
                "buckets": {str(k): v for k, v in sorted(self._counts.items())}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        h = cls()
        h._counts = {int(k): int(v) for k, v in data.get("buckets", {}).items()}
        h.count, h.sum, h.sum_sq = int(data["count"]), int(data["sum"]), int(data.get("sum_sq", 0))
        h.min, h.max = int(data["min"]), int(data["max"])
        return h


def rank_for(percentile: float, count: int) -> int:
    """1-based nearest rank of a percentile in `count` sorted values (with a guard against float noise)."""
    exact = percentile / 100.0 * count
    rank = math.ceil(exact - 1e-9 * max(1.0, exact))
    return min(max(rank, 1), count)


def min_samples(percentile: float) -> int:
    """The smallest sample that supports a percentile: at least one value must lie above its rank.

    p50 needs 2 values, p90 10, p99 100, p99.9 1,000; below that the "percentile" is only the maximum under
    another name. max (p100) and min (p0) need one value.
    """
    if percentile >= 100.0 or percentile <= 0.0:
        return 1
    return max(2, math.ceil(1.0 / (1.0 - percentile / 100.0) - 1e-9))


@dataclass(frozen=True)
class PercentileSplit:
    """Which percentiles a sample supports, and for the others the reason they are left out."""

    shown: tuple[float, ...]
    hidden: tuple[tuple[float, str], ...]


def split_percentiles(percentiles: Iterable[float], count: int) -> PercentileSplit:
    shown: list[float] = []
    hidden: list[tuple[float, str]] = []
    for p in percentiles:
        need = min_samples(p)
        if count >= need:
            shown.append(p)
        else:
            hidden.append((p, f"{percentile_label(p)} needs at least {need:,} samples, have {count:,}"))
    return PercentileSplit(tuple(shown), tuple(hidden))


def percentile_label(p: float) -> str:
    """p50, p99.9, max, min."""
    if p >= 100.0:
        return "max"
    if p <= 0.0:
        return "min"
    text = f"{p:.6f}".rstrip("0").rstrip(".")
    return f"p{text}"


def parse_percentiles(text: str) -> tuple[float, ...]:
    """`50,90,99.9,max` -> (50.0, 90.0, 99.9, 100.0); ValueError with the offending item otherwise."""
    out: list[float] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        if item in ("max", "p100"):
            value = 100.0
        elif item in ("min", "p0"):
            value = 0.0
        else:
            try:
                value = parse_float(item.removeprefix("p"))
            except ValueError:
                raise ValueError(f"{raw.strip()!r} is not a number") from None
            if not 0.0 <= value <= 100.0 or math.isnan(value):
                raise ValueError(f"{raw.strip()!r} is outside 0..100")
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError("no percentiles given")
    return tuple(sorted(out))


@dataclass
class RequestStats:
    """What one query id (or the whole run) recorded: three histograms in microseconds, and errors by type.

    latency: from the intended send time to the parsed response; service: from the moment the request could
    go on the wire (a pooled connection was ours) to the last byte of the response body; took: Elasticsearch's
    own figure. overhead (latency - service, closed loop) is the client's share.
    """

    latency: Histogram = field(default_factory=Histogram)  # microseconds
    service: Histogram = field(default_factory=Histogram)
    took: Histogram = field(default_factory=Histogram)  # milliseconds, as Elasticsearch reports it
    overhead: Histogram = field(default_factory=Histogram)
    errors: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    cache_lookups: int = 0

    @property
    def ok(self) -> int:
        return self.latency.count

    @property
    def requests(self) -> int:
        return self.latency.count + sum(self.errors.values())

    def record(self, latency_us: int, service_us: int | None, took_ms: int | None, overhead_us: int | None) -> None:
        self.latency.record(max(latency_us, 0))
        if service_us is not None:
            self.service.record(max(service_us, 0))
        if took_ms is not None:
            self.took.record(max(took_ms, 0))
        if overhead_us is not None:
            self.overhead.record(max(overhead_us, 0))

    def record_error(self, kind: str) -> None:
        self.errors[kind] += 1

    def to_dict(self) -> dict[str, Any]:
        """The exact, mergeable form (every histogram's buckets), for workers and saved runs."""
        return {"latency": self.latency.to_dict(), "service": self.service.to_dict(), "took": self.took.to_dict(),
                "overhead": self.overhead.to_dict(), "errors": dict(self.errors),
                "cache_hits": self.cache_hits, "cache_lookups": self.cache_lookups}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestStats:
        return cls(Histogram.from_dict(data["latency"]), Histogram.from_dict(data["service"]),
                   Histogram.from_dict(data["took"]), Histogram.from_dict(data["overhead"]),
                   Counter({str(k): int(v) for k, v in (data.get("errors") or {}).items()}),
                   int(data.get("cache_hits", 0)), int(data.get("cache_lookups", 0)))

    def merge(self, other: RequestStats) -> None:
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.took.merge(other.took)
        self.overhead.merge(other.overhead)
        self.errors.update(other.errors)
        self.cache_hits += other.cache_hits
        self.cache_lookups += other.cache_lookups


# --------------------------------------------------------------------------------------------------------------
# Pictures: the percentile distribution and a per-second time series


def distribution(h: Histogram, ticks_per_half: int = 5) -> list[tuple[float, int]]:
    """(percentile, value) pairs for an HdrHistogram-style percentile distribution plot.

    As HdrHistogram's `outputPercentileDistribution`: `ticks_per_half` points each time the distance to 100 %
    halves (50, 75, 87.5, ... with steps between), up to the last percentile the sample supports, then the max
    at 100. Plotted against 1/(1-p) on a log axis the tail gets as much room as the median.
    """
    if h.count == 0:
        return []
    ps: list[float] = [0.0]
    k = 1
    while True:
        p = 100.0 * (1.0 - 0.5 ** (k / ticks_per_half))
        if min_samples(p) > h.count or p >= 100.0 - 1e-9:
            break
        ps.append(p)
        k += 1
    # The nines themselves, so a picture's p99 is the table's p99.
    ps += [n for n in (90.0, 99.0, 99.9, 99.99, 99.999, 99.9999) if min_samples(n) <= h.count]
    ps = [*sorted(set(ps)), 100.0]
    return list(zip(ps, h.values_at(ps), strict=True))


_COARSE_BITS = 5  # 16 buckets per power of two (about 6 % wide): enough to draw a p99 line per second


def coarse_bucket(value: int) -> int:
    if value < (1 << _COARSE_BITS):
        return value
    shift = value.bit_length() - _COARSE_BITS
    return (shift << _COARSE_BITS) | (value >> shift)


def coarse_value(index: int) -> int:
    """The upper bound of a coarse bucket (a percentile read from it is never an under-statement)."""
    if index < (1 << _COARSE_BITS):
        return index
    shift, mantissa = index >> _COARSE_BITS, index & ((1 << _COARSE_BITS) - 1)
    return ((mantissa + 1) << shift) - 1


def _add_seconds(into: dict[int, list[Any]], per: dict[int, list[Any]]) -> None:
    """Per-second rows of one key added into another's: counts add, max is the max, coarse buckets add."""
    for sec, (ok, err, mx, counts) in per.items():
        row = into.setdefault(sec, [0, 0, 0, {}])
        row[0] += ok
        row[1] += err
        row[2] = max(row[2], mx)
        for b, n in counts.items():
            row[3][b] = row[3].get(b, 0) + n


class Timeline:
    """Per second of a run and per key (query id): requests answered, errors, max and a coarse latency histogram.

    Cheap enough to record on every request (two dict updates, no allocation once a second exists) and small
    whatever the rate (at most ~16 counters per power of two of latency per second), so `--report` can draw
    latency and throughput over time.
    """

    __slots__ = ("_data",)

    def __init__(self) -> None:
        # key -> second -> [ok, errors, max_us, {coarse bucket: count}]
        self._data: dict[str, dict[int, list[Any]]] = {}

    def record(self, key: str, second: int, latency_us: int | None) -> None:
        """One answer (`latency_us`) or one error (None) in that second since measuring began."""
        per = self._data.get(key)
        if per is None:
            per = self._data[key] = {}
        row = per.get(second)
        if row is None:
            row = per[second] = [0, 0, 0, {}]
        if latency_us is None:
            row[1] += 1
            return
        row[0] += 1
        if latency_us > row[2]:
            row[2] = latency_us
        b = coarse_bucket(latency_us)
        row[3][b] = row[3].get(b, 0) + 1

    def keys(self) -> list[str]:
        return list(self._data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe and exact: key -> second -> [ok, errors, max_us, {coarse bucket: count}]."""
        return {k: {str(sec): [ok, err, mx, {str(b): n for b, n in counts.items()}]
                    for sec, (ok, err, mx, counts) in per.items()} for k, per in self._data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        t = cls()
        t._data = {k: {int(sec): [int(ok), int(err), int(mx), {int(b): int(n) for b, n in counts.items()}]
                       for sec, (ok, err, mx, counts) in per.items()} for k, per in data.items()}
        return t

    def merge(self, other: Timeline, shift: int = 0) -> None:
        """Another run's seconds added to ours, second by second: runs that started together (`shift` 0), or a
        run that started `shift` seconds after ours."""
        for key, per in other._data.items():
            _add_seconds(self._data.setdefault(key, {}), {sec + shift: row for sec, row in per.items()})

    def series(self, key: str | None = None, percentiles: Sequence[float] = (50.0, 99.0)) -> list[dict[str, Any]]:
        """Rows `{"t", "ok", "errors", "p50", "p99", "max"}` (latency in ms) for one key, or for all merged."""
        merged: dict[int, list[Any]] = {}
        for per in [self._data.get(key, {})] if key is not None else list(self._data.values()):
            _add_seconds(merged, per)
        out: list[dict[str, Any]] = []
        last = max(merged, default=-1)
        for sec in range(last + 1):  # a second without any answer is a gap the picture must show as 0
            ok, err, mx, counts = merged.get(sec, (0, 0, 0, {}))
            row_out: dict[str, Any] = {"t": sec, "ok": ok, "errors": err}
            if ok:
                items = sorted(counts.items())
                for p in percentiles:
                    rank = rank_for(p, ok)
                    seen = 0
                    for b, n in items:
                        seen += n
                        if seen >= rank:
                            row_out[percentile_label(p)] = round(min(coarse_value(b), mx) / 1000.0, 3)
                            break
                row_out["max"] = round(mx / 1000.0, 3)
            out.append(row_out)
        return out
