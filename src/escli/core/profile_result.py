"""What `escli profile` measured: ProfileResult (the exact histograms per query and per cluster, merged from
workers, machines or repeats by `absorb`), its JSON form (shown percentiles, the distribution and the timeline of
the pictures), why a run that measured nothing must not pass, and the comparison with a run saved by --save
(--compare). The load that fills a result is core/profile.py's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from escli.errors import UsageError
from escli.profiler import Histogram, RequestStats, Timeline, distribution, percentile_label, split_percentiles

if TYPE_CHECKING:
    from escli.core.profile import ProfileOptions
    from escli.es.queries import QuerySpec

CACHE_NOTE = "profile measures Elasticsearch and bypasses escli's on-disk cache"
# The exact form of a run kept under "state" by --save (ProfileResult.state); `profile merge` needs it.
STATE_VERSION = 1


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class ProfileResult:
    options: ProfileOptions
    queries: list[QuerySpec]
    overall: RequestStats = field(default_factory=RequestStats)
    per_query: dict[str, RequestStats] = field(default_factory=dict)
    per_cluster: dict[str, RequestStats] = field(default_factory=dict)  # several clusters: who got what
    started_at: float = 0.0
    seconds: float = 0.0
    warmup_sent: int = 0
    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    late_sends: int = 0
    max_send_lag_us: int = 0
    interrupted: bool = False
    timeline: Timeline = field(default_factory=Timeline)  # per second, for the pictures of --report
    workers: int = 1

    def state(self) -> dict[str, Any]:
        """Everything measured, exactly (histogram buckets, not percentiles): what a worker hands back and what
        `--save` keeps so that `escli profile merge` can merge runs as if they were one."""
        return {"version": STATE_VERSION, "workers": self.workers, "started_at": self.started_at,
                "seconds": self.seconds, "warmup_sent": self.warmup_sent, "cpu_seconds": self.cpu_seconds,
                "rss_bytes": self.rss_bytes, "late_sends": self.late_sends, "max_send_lag_us": self.max_send_lag_us,
                "interrupted": self.interrupted, "timeline": self.timeline.to_dict(),
                "queries": {k: v.to_dict() for k, v in self.per_query.items()},
                "clusters": {k: v.to_dict() for k, v in self.per_cluster.items()}}

    def absorb(self, state: dict[str, Any], *, after: bool = False) -> None:
        """Add a run's `state()` to this result: counts and histograms add, so every percentile is the one of all
        samples together. Runs side by side (workers, machines): the wall time is the longest run's, the
        client's CPU and memory are the sum of theirs, the worst send lag the worst of theirs. A run `after` the
        others (--repeat): the wall times add, its seconds follow theirs on the timeline, memory is the most."""
        first = not self.started_at
        self.started_at = state["started_at"] if first else min(self.started_at, state["started_at"])
        shift = 0
        if after:
            shift = math.ceil(self.seconds)
            self.seconds += float(state["seconds"])
            self.rss_bytes = max(self.rss_bytes, int(state["rss_bytes"]))
        else:
            self.seconds = max(self.seconds, float(state["seconds"]))
            self.rss_bytes += int(state["rss_bytes"])
        self.warmup_sent += int(state["warmup_sent"])
        self.cpu_seconds += float(state["cpu_seconds"])
        self.late_sends += int(state["late_sends"])
        self.max_send_lag_us = max(self.max_send_lag_us, int(state["max_send_lag_us"]))
        self.interrupted = self.interrupted or bool(state["interrupted"])
        self.timeline.merge(Timeline.from_dict(state["timeline"]), shift)
        for target, part in ((self.per_query, "queries"), (self.per_cluster, "clusters")):
            for k, v in state[part].items():
                target.setdefault(k, RequestStats()).merge(RequestStats.from_dict(v))
        self.overall = RequestStats()
        for stats in self.per_query.values():
            self.overall.merge(stats)

    @property
    def ok(self) -> bool:
        return not self.overall.errors

    def as_dict(self) -> dict[str, Any]:
        o = self.options
        requests = self.overall.requests
        return {
            "escli_profile": 1,
            "workers": self.workers,
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(timespec="seconds"),
            "mode": o.mode,
            "concurrency": o.concurrency,
            "rate": o.rate,
            "schedule": o.schedule if o.mode == "open" else None,
            "iterations": o.iterations,
            "duration": o.duration,
            "warmup": {**o.warmup.as_dict(), "sent": self.warmup_sent},
            "seconds": round(self.seconds, 6),
            "interrupted": self.interrupted,
            "percentiles": [percentile_label(p) for p in o.percentiles],
            "overall": stats_dict(self.overall, self.seconds, o.percentiles),
            "queries": {
                q.id: {"index": q.index, "weight": q.weight,
                       **stats_dict(self.per_query[q.id], self.seconds, o.percentiles)}
                for q in self.queries
            },
            "client": {
                "cpu_seconds": round(self.cpu_seconds, 6),
                "cpu_percent": round(100.0 * self.cpu_seconds / self.seconds, 2) if self.seconds else None,
                "cpu_us_per_request": round(1e6 * self.cpu_seconds / requests, 2) if requests else None,
                "rss_bytes": self.rss_bytes,
                "late_sends": self.late_sends if o.mode == "open" else None,
                "max_send_lag_ms": round(self.max_send_lag_us / 1000, 3) if o.mode == "open" else None,
            },
            "cache": {"hit_ratio": None, "lookups": 0, "note": CACHE_NOTE},
            # For pictures (--report, --plot): latency percentile distributions and a per-second series.
            "distribution": {"overall": _points(self.overall.latency),
                             "queries": {q.id: _points(self.per_query[q.id].latency) for q in self.queries}},
            "timeline": {"interval_s": 1, "overall": self.timeline.series(),
                         "queries": {q.id: self.timeline.series(q.id) for q in self.queries}},
            **({"clusters": {n: stats_dict(s, self.seconds, o.percentiles) for n, s in self.per_cluster.items()}}
               if self.per_cluster else {}),
        }


def _points(h: Histogram) -> list[list[float]]:
    """[percentile, latency ms] pairs of the distribution plot."""
    return [[round(p, 4), round(v / 1000.0, 3)] for p, v in distribution(h)]


def histogram_dict(h: Histogram, percentiles: Sequence[float], scale: float = 1000.0) -> dict[str, Any]:
    """Shown percentiles in ms (values are microseconds), mean, and why the others are not shown."""
    split = split_percentiles(percentiles, h.count)
    out: dict[str, Any] = {"count": h.count}
    if h.count:
        for p, v in zip(split.shown, h.values_at(split.shown), strict=True):
            out[percentile_label(p)] = round(v / scale, 3)
        out["mean"] = round(h.mean / scale, 3)
    if split.hidden:
        out["not_shown"] = {percentile_label(p): why for p, why in split.hidden}
    return out


def stats_dict(s: RequestStats, seconds: float, percentiles: Sequence[float]) -> dict[str, Any]:
    return {
        "requests": s.requests,
        "ok": s.ok,
        "errors": dict(sorted(s.errors.items())),
        "error_rate": round(sum(s.errors.values()) / s.requests, 6) if s.requests else 0.0,
        "throughput": round(s.ok / seconds, 3) if seconds else 0.0,
        "latency_ms": histogram_dict(s.latency, percentiles),
        "service_time_ms": histogram_dict(s.service, percentiles),
        "took_ms": histogram_dict(s.took, percentiles, scale=1.0),
        "overhead_ms": histogram_dict(s.overhead, percentiles),
    }


def nothing_measured(doc: Mapping[str, Any]) -> str | None:
    """Why a profile that measured no request must not pass (a CI job without --fail-if would read exit 0 as a
    pass), or None. Interrupted runs are not asked: they exit 130 with what they have."""
    if doc.get("interrupted") or (doc.get("overall") or {}).get("requests"):
        return None
    sent = (doc.get("warmup") or {}).get("sent") or 0
    return (f"measured no request ({sent} warm-up request(s) sent, not counted): nothing to report; "
            "give --iterations or a longer --duration")



# --------------------------------------------------------------------------------------------------------------
# Baselines


def load_baseline(path: str) -> dict[str, Any]:
    return read_saved(path, f"--compare {path}")


def read_saved(path: str, name: str) -> dict[str, Any]:
    """A profile saved with --save, or one clear line naming it as `name` (the option and path, or the path)."""
    try:
        with open(path, "rb") as fh:
            data = orjson.loads(fh.read())
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{name}: not JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(data, dict) or data.get("escli_profile") != 1 or not isinstance(data.get("overall"), dict):
        raise UsageError(f"{name}: not a profile saved by `escli profile --save`")
    return data


FIGURES = ("latency_ms", "service_time_ms", "took_ms", "overhead_ms")


def _delta(new: Any, old: Any) -> float | None:
    if not isinstance(new, (int, float)) or not isinstance(old, (int, float)) or isinstance(new, bool):
        return None
    if old == 0:
        return 0.0 if new == 0 else None
    return round((new - old) / old * 100.0, 2)


def _stats_deltas(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("throughput", "error_rate"):
        d = _delta(new.get(key), old.get(key))
        if d is not None:
            out[key] = d
    for fig in FIGURES:
        a, b = new.get(fig) or {}, old.get(fig) or {}
        ds = {k: d for k, v in a.items() if k not in ("count", "not_shown")
              and (d := _delta(v, b.get(k))) is not None}
        if ds:
            out[fig] = ds
    return out


def compare_profiles(new: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Each figure's change in % against a saved profile: overall, and per query id present in both."""
    queries = {qid: _stats_deltas(stats, baseline["queries"][qid])
               for qid, stats in new.get("queries", {}).items()
               if isinstance(baseline.get("queries"), dict) and qid in baseline["queries"]}
    client: dict[str, Any] = {}
    for key in ("cpu_us_per_request", "rss_bytes"):
        d = _delta((new.get("client") or {}).get(key), (baseline.get("client") or {}).get(key))
        if d is not None:
            client[key] = d
    return {"baseline_started_at": baseline.get("started_at"), "overall": _stats_deltas(new["overall"],
                                                                                        baseline["overall"]),
            "queries": queries, "client": client}
